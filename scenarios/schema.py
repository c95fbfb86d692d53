"""The scenario file: a small declarative YAML description of purchases, price, payers and faults.

Validated by pydantic; `load_scenario` turns every problem into one `ScenarioError` that names the file,
the field (e.g. `purchases.0.payer.behaviour`) and what is wrong, so a bad file is fixed in one go.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

ORDER_STATES = ("awaiting_payment", "payment_held", "minting", "minted", "completed", "expired", "refunded", "failed")
FINAL_STATES = ("completed", "expired", "refunded", "failed")
REFUND_REASONS = ("quote_expired", "slippage_exceeded", "underpaid", "limit_exceeded", "mint_failed")
RefundReason = Literal["quote_expired", "slippage_exceeded", "underpaid", "limit_exceeded", "mint_failed"]
_ADDRESS = re.compile(r"^(0x[0-9a-fA-F]{1,64}|user \d+|fresh)$")


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with every problem listed."""


class Strict(BaseModel):
    # A misspelt key must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Behaviour(StrEnum):
    PAYS = "pays"  # pays right after `delay_s`
    PAYS_LATE = "pays_late"  # same, but the delay is meant to outlive the quote
    NEVER_PAYS = "never_pays"
    PAYS_TWICE = "pays_twice"  # pays, then the second payer pays the same invoice once the first is done
    TWO_PAYERS = "two_payers"  # both payers send the same invoice at the same moment


class Payer(Strict):
    behaviour: Behaviour = Behaviour.PAYS
    delay_s: float = Field(default=0.0, ge=0, le=600, description="seconds between the order and the payment")


class Expect(Strict):
    """What each order of the group must end as; a list allows any of several outcomes."""

    status: list[Literal["completed", "expired", "refunded", "failed"]] | None = None
    refund_reason: list[RefundReason] | None = None

    @field_validator("status", "refund_reason", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Purchase(Strict):
    """A group of `count` orders of the same kind."""

    count: int = Field(default=1, ge=1, le=500)
    vusd_amount: Decimal | None = Field(default=None, gt=0, le=1_000_000)
    amount_sat: int | None = Field(default=None, gt=0)
    address: str = Field(default="fresh", description='"0x…", "user N" (a devnet account) or "fresh" (random)')
    max_slippage_bps: int | None = Field(default=None, ge=0, le=10_000)
    start_s: float = Field(default=0.0, ge=0, le=3_600, description="when the first order is created")
    spacing_s: float = Field(default=0.0, ge=0, le=600, description="gap between successive orders of the group")
    concurrency: int = Field(default=1, ge=1, le=64, description="how many of the group pay at the same time")
    payer: Payer = Payer()
    expect: Expect | None = None

    @field_validator("address")
    @classmethod
    def _address_form(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError(f'{value!r} is not "0x<hex>", "user N" or "fresh"')
        return value

    @model_validator(mode="after")
    def _one_amount(self) -> Purchase:
        if (self.vusd_amount is None) == (self.amount_sat is None):
            raise ValueError("give exactly one of vusd_amount or amount_sat")
        return self


class PriceMove(Strict):
    at_s: float = Field(ge=0, le=3_600)
    price: Decimal = Field(gt=0)


class RandomWalk(Strict):
    """Geometric Brownian motion sampled every `step_s`, from a seed so a run can be repeated."""

    volatility: float = Field(gt=0, le=10, description="annualised, e.g. 0.6 for 60 %")
    step_s: float = Field(default=2.0, ge=1, le=600)
    duration_s: float = Field(gt=0, le=3_600)
    seed: int = 0
    # Real BTC moves ~0.01 % in a few seconds; this scales time so a short run shows a visible move.
    time_scale: float = Field(default=1.0, ge=1, le=1e6)


class Price(Strict):
    start: Decimal = Field(default=Decimal("97000.00"), gt=0)
    moves: list[PriceMove] = []
    random_walk: RandomWalk | None = None

    @model_validator(mode="after")
    def _moves_or_walk(self) -> Price:
        if self.moves and self.random_walk:
            raise ValueError("give either fixed moves or a random_walk, not both")
        return self


class FaultKind(StrEnum):
    KILL_SERVICE = "kill_service"  # SIGKILL while an order sits in `in_state`, then start it again
    RESTART_MERCHANT = "restart_merchant"
    RESTART_DEVNET = "restart_devnet"
    PAUSE_VAULT = "pause_vault"  # mints fail until `until_s` (or the end of the scenario)


class Fault(Strict):
    kind: FaultKind
    at_s: float | None = Field(default=None, ge=0, le=3_600)
    order: int | None = Field(default=None, ge=0, description="index of the order whose state triggers the fault")
    in_state: Literal["payment_held", "minting", "minted"] | None = None
    until_s: float | None = Field(default=None, ge=0, le=3_600)

    @model_validator(mode="after")
    def _trigger(self) -> Fault:
        has_moment, has_state = self.at_s is not None, self.in_state is not None
        # The service can only be stopped mid-order where it has a fault pause: right after minting / minted.
        if self.kind is FaultKind.KILL_SERVICE and self.in_state not in ("minting", "minted"):
            raise ValueError("kill_service needs in_state: minting or minted")
        if has_moment == has_state:
            raise ValueError("give either at_s or in_state (with order, default 0) as the trigger")
        if self.until_s is not None and self.kind is not FaultKind.PAUSE_VAULT:
            raise ValueError("until_s only applies to pause_vault")
        if self.in_state is not None and self.kind is FaultKind.PAUSE_VAULT:
            raise ValueError("pause_vault is triggered by at_s")
        return self


class Service(Strict):
    """Service settings for this scenario, passed as VOLTA_* variables (see service/config.py)."""

    quote_lifetime_s: int | None = Field(default=None, ge=5, le=86_400)
    max_hold_s: int | None = Field(default=None, ge=5)
    spread_bps: int | None = Field(default=None, ge=0, le=2_000)
    default_max_slippage_bps: int | None = Field(default=None, ge=0, le=10_000)
    max_allowed_slippage_bps: int | None = Field(default=None, ge=0, le=10_000)
    min_order_vusd: Decimal | None = Field(default=None, gt=0)
    max_order_vusd: Decimal | None = Field(default=None, gt=0)
    recheck_interval_s: float | None = Field(default=None, gt=0)

    def env(self) -> dict[str, str]:
        return {f"VOLTA_{name.upper()}": str(value) for name, value in self.model_dump().items() if value is not None}


class Scenario(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_\-]+$", max_length=80)]
    description: str = ""
    service: Service = Service()
    price: Price = Price()
    purchases: Annotated[list[Purchase], Field(min_length=1)]
    faults: list[Fault] = []
    timeout_s: float = Field(default=300, gt=0, le=3_600, description="give up waiting for orders after this")

    @model_validator(mode="after")
    def _fault_orders_exist(self) -> Scenario:
        total = self.order_count()
        for index, fault in enumerate(self.faults):
            if fault.order is not None and fault.order >= total:
                raise ValueError(f"faults.{index}.order is {fault.order} but the scenario has {total} orders")
        return self

    def order_count(self) -> int:
        return sum(group.count for group in self.purchases)

    def service_faults(self) -> list[Fault]:
        return [fault for fault in self.faults if fault.kind is FaultKind.KILL_SERVICE]


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"  {where}: {problem['msg']}")
    return "\n".join(lines)


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping (name, purchases, …), got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source}: {exc.error_count()} problem(s):\n{_describe(exc)}") from None


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(data, str(path))
