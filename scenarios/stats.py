"""Small statistics for the model and the notebooks: a rate and a mean with their 95 % intervals, observed
outcome counts held against a model's probabilities (exact binomial tests), and latency samples held against
the model's (two-sample Kolmogorov-Smirnov). The tests are scipy's."""

from __future__ import annotations

from typing import Any

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


def outcome_test(counts: dict[str, int], probabilities: dict[str, float],
                 alpha: float = 0.01) -> dict[str, dict[str, Any]]:
    """Per outcome: an exact two-sided binomial test of the observed count against n*p, Bonferroni-corrected
    over the outcomes (the family-wise chance of a false alarm is at most `alpha`). An outcome the model says
    never happens disagrees as soon as it is seen once."""
    from scipy.stats import binomtest

    n = sum(counts.values())
    names = sorted(set(counts) | {k for k, p in probabilities.items() if p > 0})
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        p, observed = probabilities.get(name, 0.0), counts.get(name, 0)
        p_value = float(binomtest(observed, n, p).pvalue) if 0 < p < 1 else float(observed == round(n * p))
        table[name] = {"observed": observed, "expected": round(n * p, 2), "p_value": p_value,
                       "agrees": p_value > alpha / len(names)}
    return table


def latency_test(observed: list[float] | np.ndarray, simulated: list[float] | np.ndarray,
                 alpha: float = 0.001) -> dict[str, Any]:
    """Two-sample Kolmogorov-Smirnov: could the observed latencies come from the model's distribution?"""
    from scipy.stats import ks_2samp

    result = ks_2samp(np.asarray(observed, dtype=float), np.asarray(simulated, dtype=float))
    return {"statistic": float(result.statistic), "p_value": float(result.pvalue), "n_observed": len(observed),
            "agrees": float(result.pvalue) > alpha}
