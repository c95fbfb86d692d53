"""The scenario file: a small declarative YAML description of purchases, price, payers and faults.

Validated by pydantic; `load_scenario` turns every problem into one `ScenarioError` that names the file,
the field (e.g. `purchases.0.payer.behaviour`) and what is wrong, so a bad file is fixed in one go.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from harness.faults import Stream
from harness.network import DEVNET_PROXY, MERCHANT_PROXY
from service.config import Settings
from service.domain.settlement import Checkpoint
from service.domain.states import FINAL_STATUSES, OrderStatus, RefundReason
from service.validation import validation_problems

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


def _final(status: OrderStatus) -> OrderStatus:
    if status not in FINAL_STATUSES:
        finals = ", ".join(final for final in OrderStatus if final.is_final)
        raise ValueError(f"{status} is not a final status: one of {finals}")
    return status


FinalStatus = Annotated[OrderStatus, AfterValidator(_final)]


class Expect(Strict):
    """What each order of the group must end as; a list allows any of several outcomes."""

    status: list[FinalStatus] | None = None
    refund_reason: list[RefundReason] | None = None

    @field_validator("status", "refund_reason", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PurchaseGroup(Strict):
    """One entry of the scenario's `purchases`: a group of `count` orders of the same kind."""

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
    def _one_amount(self) -> PurchaseGroup:
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
    KILL_SERVICE = "kill_service"  # SIGKILL while the service is paused at `at_checkpoint`, then start it again
    RESTART_MERCHANT = "restart_merchant"
    RESTART_DEVNET = "restart_devnet"
    PAUSE_VAULT = "pause_vault"  # mints fail until `until_s` (or the end of the scenario)
    PROXY_LATENCY = "proxy_latency"  # data through `proxy` delayed `latency_ms` (one `stream`), while the fault lasts
    PROXY_OUTAGE = "proxy_outage"  # `proxy` cut (connections refused, open ones dropped), then restored


PROXY_FAULTS = (FaultKind.PROXY_LATENCY, FaultKind.PROXY_OUTAGE)
LASTING_FAULTS = (FaultKind.PAUSE_VAULT, *PROXY_FAULTS)  # on for a while, then undone
# The toxiproxy proxies `Network(fault_proxy=True)` puts between the service and its dependencies.
PROXIES = (DEVNET_PROXY, MERCHANT_PROXY)

# The order's status while the service sits at each checkpoint: a trigger checks the fault's order is there.
CHECKPOINT_STATUS: dict[Checkpoint, OrderStatus] = {
    Checkpoint.PAYMENT_HELD: OrderStatus.PAYMENT_HELD,
    Checkpoint.MINTING: OrderStatus.MINTING,
    Checkpoint.MINT_SIGNED: OrderStatus.MINTING,
    Checkpoint.MINT_SENT: OrderStatus.MINTING,
    Checkpoint.MINT_ACCEPTED: OrderStatus.MINTING,
    Checkpoint.MINTED: OrderStatus.MINTED,
    Checkpoint.REFUNDED: OrderStatus.REFUNDED,
    Checkpoint.SETTLED: OrderStatus.MINTED,  # HTLC settled, `completed` not yet recorded
}


class Fault(Strict):
    """One fault, triggered at a moment (`at_s`) or when the service reaches a settlement checkpoint with
    the fault's order (`at_checkpoint`, formerly `in_state`; the service pauses there while the fault acts)."""

    kind: FaultKind
    at_s: float | None = Field(default=None, ge=0, le=3_600)
    order: int | None = Field(default=None, ge=0, description="index of the order whose checkpoint triggers the fault")
    at_checkpoint: Checkpoint | None = Field(default=None, validation_alias=AliasChoices("at_checkpoint", "in_state"))
    until_s: float | None = Field(default=None, ge=0, le=3_600, description="undo a lasting fault at this moment")
    for_s: float | None = Field(default=None, gt=0, le=3_600, description="undo a lasting fault this long after")
    proxy: str | None = Field(default=None, description=f"proxy faults: one of {', '.join(PROXIES)}")
    latency_ms: int | None = Field(default=None, gt=0, le=600_000)
    stream: Stream | None = Field(default=None, description="proxy_latency: delay the requests (upstream) or "
                                                           "the answers (downstream, the default)")

    @model_validator(mode="before")
    @classmethod
    def _not_both_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and "at_checkpoint" in data and "in_state" in data:
            raise ValueError("give at_checkpoint or its old name in_state, not both")
        return data

    @model_validator(mode="after")
    def _trigger(self) -> Fault:
        if self.kind is FaultKind.KILL_SERVICE and self.at_checkpoint is None:
            raise ValueError(f"kill_service needs at_checkpoint: one of {', '.join(Checkpoint)}")
        if (self.at_s is None) == (self.at_checkpoint is None):
            raise ValueError("give either at_s or at_checkpoint (with order, default 0) as the trigger")
        if self.at_checkpoint is not None and self.kind is FaultKind.PAUSE_VAULT:
            raise ValueError("pause_vault is triggered by at_s")
        return self

    @model_validator(mode="after")
    def _duration(self) -> Fault:
        if self.kind not in LASTING_FAULTS and (self.until_s is not None or self.for_s is not None):
            raise ValueError(f"until_s and for_s only apply to {', '.join(LASTING_FAULTS)}")
        if self.until_s is not None and self.for_s is not None:
            raise ValueError("give until_s or for_s, not both")
        # A checkpoint's moment is not known in advance, so an absolute end could come before it.
        if self.until_s is not None and self.at_checkpoint is not None:
            raise ValueError("a fault triggered at_checkpoint lasts for_s seconds (or to the end), not until_s")
        if self.until_s is not None and self.at_s is not None and self.until_s <= self.at_s:
            raise ValueError(f"until_s ({self.until_s}) must come after at_s ({self.at_s})")
        return self

    @model_validator(mode="after")
    def _proxy_settings(self) -> Fault:
        is_proxy_fault = self.kind in PROXY_FAULTS
        if is_proxy_fault and self.proxy not in PROXIES:
            raise ValueError(f"{self.kind} needs proxy: one of {', '.join(PROXIES)}")
        if not is_proxy_fault and self.proxy is not None:
            raise ValueError("proxy only applies to proxy_latency and proxy_outage")
        if (self.kind is FaultKind.PROXY_LATENCY) != (self.latency_ms is not None):
            raise ValueError("latency_ms is needed by proxy_latency and only applies to it")
        if self.kind is not FaultKind.PROXY_LATENCY and self.stream is not None:
            raise ValueError("stream only applies to proxy_latency")
        return self


class Service(Strict):
    """Service settings for this scenario, passed as VOLTA_* variables (see service/config.py)."""

    quote_lifetime_s: int | None = Field(default=None, ge=5, le=86_400)
    max_hold_s: int | None = Field(default=None, ge=5)
    mint_timeout_s: float | None = Field(default=None, gt=0)
    mint_answer_margin_s: float | None = Field(default=None, gt=0)
    void_unseen_mint_after_s: float | None = Field(default=None, gt=0)
    spread_bps: int | None = Field(default=None, ge=0, le=2_000)
    default_max_slippage_bps: int | None = Field(default=None, ge=0, le=10_000)
    max_allowed_slippage_bps: int | None = Field(default=None, ge=0, le=10_000)
    max_price_drop_bps: int | None = Field(default=None, ge=0, le=10_000)
    min_order_vusd: Decimal | None = Field(default=None, gt=0)
    max_order_vusd: Decimal | None = Field(default=None, gt=0)
    recheck_interval_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _hold_fits_two_mints(self) -> Service:
        """The service refuses to start otherwise; say so here, with the service's defaults filled in."""
        timeout, margin, hold = (self._or_default(name) for name in ("mint_timeout_s", "mint_answer_margin_s",
                                                                      "max_hold_s"))
        if 2 * (timeout + margin) > hold:
            raise ValueError(f"max_hold_s ({hold}) must be at least twice mint_timeout_s ({timeout}) + "
                             f"mint_answer_margin_s ({margin}): the service refuses to start otherwise")
        return self

    def _or_default(self, name: str) -> float:
        value = getattr(self, name)
        return float(value if value is not None else Settings.model_fields[name].default)

    def env(self) -> dict[str, str]:
        return {f"VOLTA_{name.upper()}": str(value) for name, value in self.model_dump().items() if value is not None}


class Starknet(Strict):
    """What the devnet must be like; `--own-network` starts it so, another network must already be so."""

    block_time: int | None = Field(default=None, ge=1, le=60,
                                   description="close a block every N seconds (Starknet: about 2-9.5); "
                                               "unset: one block per transaction")


class Scenario(Strict):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_\-]+$", max_length=80)]
    description: str = ""
    service: Service = Service()
    starknet: Starknet = Starknet()
    fault_proxy: bool = Field(default=False, description="service through toxiproxy (implied by proxy faults)")
    price: Price = Price()
    purchases: Annotated[list[PurchaseGroup], Field(min_length=1)]
    faults: list[Fault] = []
    timeout_s: float = Field(default=300, gt=0, le=3_600, description="give up waiting for orders after this")

    @model_validator(mode="after")
    def _fault_orders_exist(self) -> Scenario:
        total = self.order_count()
        for index, fault in enumerate(self.faults):
            if fault.order is not None and fault.order >= total:
                raise ValueError(f"faults.{index}.order is {fault.order} but the scenario has {total} orders")
        return self

    @model_validator(mode="after")
    def _one_checkpoint(self) -> Scenario:
        # VOLTA_FAULT_PAUSE_AFTER names one checkpoint, and a kill restarts the service without it.
        named = sorted({fault.at_checkpoint for fault in self.faults if fault.at_checkpoint is not None})
        if len(named) > 1:
            raise ValueError(f"faults at a checkpoint must all name the same one (the service pauses at one "
                             f"checkpoint per run), not {', '.join(named)}")
        if len([fault for fault in self.faults if fault.kind is FaultKind.KILL_SERVICE]) > 1:
            raise ValueError("one kill_service per scenario: the service is started again without its pause")
        return self

    def order_count(self) -> int:
        return sum(group.count for group in self.purchases)

    def checkpoint(self) -> Checkpoint | None:
        """The one checkpoint the service pauses at in this run, if any fault is triggered there."""
        return next((fault.at_checkpoint for fault in self.faults if fault.at_checkpoint is not None), None)

    def kills_service(self) -> bool:
        return any(fault.kind is FaultKind.KILL_SERVICE for fault in self.faults)

    def needs_fault_proxy(self) -> bool:
        return self.fault_proxy or any(fault.kind in PROXY_FAULTS for fault in self.faults)


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping (name, purchases, …), got {type(data).__name__}")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = "\n".join(f"  {problem}" for problem in validation_problems(exc, top_level="(top level)"))
        raise ScenarioError(f"{source}: {exc.error_count()} problem(s):\n{problems}") from None


def load_scenario(path: Path | str) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    return parse_scenario(data, str(path))
