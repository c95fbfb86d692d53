"""Small statistics for the model and the notebooks: a rate and a mean with their 95 % intervals, and
observed outcome counts held against a model's probabilities."""

from __future__ import annotations

import numpy as np

SECONDS_PER_YEAR = 365.25 * 24 * 3600  # annualised volatility is per this many seconds
Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """A proportion with its Wilson score interval (good for small n and rates near 0 or 1)."""
    if n == 0:
        return (float("nan"),) * 3
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, float(max(0.0, centre - half)), float(min(1.0, centre + half))


def mean_ci(values: np.ndarray, z: float = Z95) -> tuple[float, float, float]:
    """A mean (NaNs left out) with its normal-approximation interval; the bounds are nan below two values."""
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return (float(values.mean()) if len(values) else float("nan"),) + (float("nan"),) * 2
    mean, half = float(values.mean()), z * float(values.std(ddof=1)) / float(np.sqrt(len(values)))
    return mean, mean - half, mean + half


def agreement(counts: dict[str, int], probabilities: dict[str, float], z: float = 3.0) -> dict[str, dict[str, float]]:
    """Per outcome: observed count, expected n*p and whether they agree within z binomial standard
    deviations (+1 for the discreteness of small n)."""
    n = sum(counts.values())
    table: dict[str, dict[str, float]] = {}
    for name in sorted(set(counts) | {k for k, p in probabilities.items() if p > 0}):
        p = probabilities.get(name, 0.0)
        expected, sd = n * p, float(np.sqrt(n * p * (1 - p)))
        observed = counts.get(name, 0)
        table[name] = {"observed": observed, "expected": round(expected, 2), "sd": round(sd, 2),
                       "agrees": abs(observed - expected) <= z * sd + 1}
    return table
