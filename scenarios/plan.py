"""What a scenario asks for, laid out on its clock: one `OrderRun` per order, and the price path to set."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from scenarios.schema import PurchaseGroup, Scenario, ScenarioError
from scenarios.stats import SECONDS_PER_YEAR


@dataclass
class OrderRun:
    index: int
    group: int
    spec: PurchaseGroup
    address: str
    planned_s: float
    order: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    payments: list[dict[str, Any]] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)  # states as the client saw them, with when


def resolve_address(spec: str, users: list[str]) -> str:
    if spec == "fresh":
        return hex(secrets.randbits(248) | 1)  # balance 0, daily limit untouched
    if spec.startswith("user "):
        index = int(spec.split()[1])
        if index >= len(users):
            raise ScenarioError(f'"{spec}": the devnet has {len(users)} user accounts (user 0 … user {len(users) - 1})')
        return users[index]
    return spec


def plan_orders(scenario: Scenario, users: list[str]) -> list[OrderRun]:
    runs: list[OrderRun] = []
    for group, spec in enumerate(scenario.purchases):
        for n in range(spec.count):
            runs.append(OrderRun(len(runs), group, spec, resolve_address(spec.address, users),
                                 spec.start_s + n * spec.spacing_s))
    return runs


def price_path(scenario: Scenario) -> list[tuple[float, Decimal]]:
    """(seconds, price) to set during the run: the fixed moves, or a seeded GBM walk."""
    walk = scenario.price.random_walk
    if walk is None:
        return [(move.at_s, move.price) for move in scenario.price.moves]
    steps = int(walk.duration_s // walk.step_s)
    dt_years = walk.step_s * walk.time_scale / SECONDS_PER_YEAR
    shocks = np.random.default_rng(walk.seed).standard_normal(steps)
    log_returns = walk.volatility * np.sqrt(dt_years) * shocks - 0.5 * walk.volatility**2 * dt_years
    prices = float(scenario.price.start) * np.exp(np.cumsum(log_returns))
    return [((i + 1) * walk.step_s, Decimal(f"{p:.2f}")) for i, p in enumerate(prices)]
