"""Seven ways to turn bitcoin into a stablecoin on Starknet, compared on one purchase: what it costs (bps of the
purchase), how often it completes, how long until the stablecoin can be spent, how long a failed purchase can
keep the buyer's money (bounded by a CLTV or timelock, or by nothing), what comes out and whom the buyer trusts.

Every number comes from `PARAMETERS`: a low, central and high value, a unit, and a source (a URL and what it
says) or `ASSUMPTION` with the reason. `simulate` draws every parameter from a triangular distribution over
(low, central, high), once per simulated purchase, so its intervals carry the parameters' uncertainty (and the
95 % confidence intervals of the means shrink with N); `tornado` swings one parameter from low to high with the
others at central. Nothing here is measured on mainnet; the only measured numbers are this repository's own
regtest checks (`scenarios/calibration/default.json`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scenarios.stats import mean_ci, wilson

ASSUMPTION = "assumption"
PURCHASE_USD = 1_000.0  # the stated purchase size every cost in bps is relative to
BLOCK_INTERVAL_H = 10 / 60  # Bitcoin's target block interval: CLTVs in blocks become hours

Values = Mapping[str, Any]  # parameter name -> float or numpy array (one value per simulated purchase)


@dataclass(frozen=True)
class Parameter:
    name: str
    low: float
    central: float
    high: float
    unit: str
    source: str  # a URL or a file of this repository, or ASSUMPTION
    says: str  # what the source says, or why the assumption and its range
    sourced: tuple[str, ...] = ("low", "central", "high")  # which of the three values the source gives

    def __post_init__(self) -> None:
        if not self.low <= self.central <= self.high:
            raise ValueError(f"{self.name}: need low <= central <= high, got {self.low}, {self.central}, {self.high}")
        if self.source == ASSUMPTION and self.sourced:
            object.__setattr__(self, "sourced", ())  # an assumption sources none of its values

    @property
    def is_assumption(self) -> bool:
        """No value of it is published: the source, if any, only describes the mechanism."""
        return not self.sourced

    @property
    def range_assumed(self) -> bool:
        """Its low or its high (what a tornado swings between) is not a published figure."""
        return not {"low", "high"} <= set(self.sourced)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.low == self.high:
            return np.full(n, self.central)
        return rng.triangular(self.low, self.central, self.high, n)


def _p(name: str, low: float, central: float, high: float, unit: str, source: str, says: str,
       sourced: tuple[str, ...] = ("low", "central", "high")) -> Parameter:
    return Parameter(name, low, central, high, unit, source, says, sourced)


STARKNET_CHAIN_INFO = "https://docs.starknet.io/resources/chain-info"
RIVER_REPORT = "https://www.binance.com/en/news/flash/7832999"

PARAMETER_LIST: tuple[Parameter, ...] = (
    # --- Lightning, for every design that starts with a Lightning payment
    _p("ln_success", 0.95, 0.985, 0.997, "probability", RIVER_REPORT,
       "River's Lightning report (Oct 2023): 99.7 % of 308,000 payments succeeded on River's platform in "
       "August 2023 (high). Low and central are assumptions: a typical payer is less well connected than River.",
       sourced=("high",)),
    _p("ln_routing_fee_bps", 0.0, 5.0, 50.0, "bps", "https://docs.corelightning.org/reference/lightning-renepay",
       "Core Lightning's default fee cap is 5 sat or 0.5 %, whichever is higher (high = the cap). Low and central "
       "are assumptions: no published median fee rate was found.",
       sourced=("high",)),
    _p("ln_payment_s", 1.0, 3.0, 8.6, "s", "https://blog.lnrouter.app/lightning-payment-speed-2022",
       "LnRouter (2022): c-lightning's tests found a median payment time of 8.6 s (high). Low and central are "
       "assumptions for a well-connected payer (regtest, one hop, measured 0.23 s: calibration/default.json).",
       sourced=("high",)),
    _p("ln_route_cltv_blocks", 0.0, 80.0, 240.0, "blocks",
       "https://github.com/lightningnetwork/lnd/blob/master/sample-lnd.conf",
       "lnd's bitcoin.timelockdelta defaults to 80 blocks per forwarding hop: 0 (direct channel), 1 hop "
       "(central), 3 hops (high) added to the final CLTV the payer's HTLC waits out in the worst case.",
       sourced=("central",)),
    # --- Starknet
    _p("starknet_inclusion_s", 2.0, 4.0, 9.5, "s", STARKNET_CHAIN_INFO,
       "A preconfirmed block closes after 2 s when the mempool is idle and at most after 9.5 s (v0.14.1). "
       "Central 4 s is an assumption (a block of average fill).",
       sourced=("low", "high")),
    _p("starknet_tx_usd", 0.002, 0.02, 0.2, "USD per transaction", ASSUMPTION,
       "docs.starknet.io/learn/protocol/fees gives the fee formula (L2 gas, L1 gas, L1 data gas), not a price; "
       "gas and STRK prices move, so a two-decade range around 2 cents."),
    _p("wallet_action_s", 10.0, 30.0, 120.0, "s", ASSUMPTION,
       "A person opens a wallet and signs the DEX swap to a stablecoin; no published figure."),
    # --- DEX leg on Starknet (designs that deliver BTC-like tokens)
    _p("dex_fee_bps", 1.0, 5.0, 30.0, "bps", "https://www.mintlify.com/collinsville22/Sable/integrations/ekubo",
       "Ekubo pools come in 0.01 %, 0.05 %, 0.3 % and 1 % fee tiers; central is the 0.05 % tier."),
    _p("dex_depth_usd_per_pct", 5_000.0, 25_000.0, 100_000.0, "USD per 1 % price move", ASSUMPTION,
       "Ekubo's USDC-WBTC pool held about $2.4M (dex.web3-gas.com/en/dexes/ekubo/reports/yield-guide); how much "
       "of it sits near the price is not published, so a wide range. Slippage = 100 bps x size / depth."),
    # --- This service (hold invoice) and settle-then-mint
    _p("service_spread_bps", 25.0, 50.0, 100.0, "bps", "service/config.py",
       "Settings.spread_bps defaults to 50 bps over the oracle price (central); low and high are the operator's "
       "choice (assumption).",
       sourced=("central",)),
    _p("service_checks_s", 0.0123, 0.0139, 0.0245, "s", "scenarios/calibration/default.json",
       "Measured on regtest: the service's checks, p50 0.0123 s, mean 0.0139 s, p95 0.0245 s (39 purchases)."),
    _p("service_settle_s", 0.0189, 0.0261, 0.0455, "s", "scenarios/calibration/default.json",
       "Measured on regtest: settling the held invoice, p50 0.0189 s, mean 0.0261 s, p95 0.0455 s."),
    _p("mint_success", 0.99, 0.998, 0.9995, "probability", ASSUMPTION,
       "A mint lands within max_hold_s (else the HTLC is cancelled and the buyer refunded). No mainnet record."),
    _p("inbound_refill_bps", 10.0, 25.0, 50.0, "bps", "https://moneroecosystem.com/services/boltz-exchange",
       "Receiving over Lightning drains inbound liquidity; a swap-out restores it. Boltz's fees (July 2025): "
       "Lightning -> BTC 0.5 % (high), Lightning <-> L-BTC 0.1-0.25 % (low). Central is an assumption.",
       sourced=("low", "high")),
    _p("service_invoice_cltv_blocks", 144.0, 144.0, 144.0, "blocks", "service/lightning/lnd_rest.py",
       "The service's hold invoices ask for cltv_expiry 144 blocks: an HTLC nobody settles is refunded by then."),
    # --- Atomiq (Lightning -> Starknet, LP-funded HTLC, watchtower claim)
    _p("atomiq_fee_bps", 10.0, 30.0, 100.0, "bps", ASSUMPTION,
       "Atomiq LPs quote per request (RFQ, docs.atomiq.exchange/liquidity-provider-nodes-lps); no fee figure "
       "was found in the docs."),
    _p("atomiq_lp_ok", 0.95, 0.98, 0.995, "probability", ASSUMPTION,
       "The LP funds its HTLC after the Lightning HTLC arrives; LPs' reputation drops on failed swaps "
       "(docs.atomiq.exchange) but no failure rate is published."),
    _p("watchtower_fee_usd", 0.01, 0.05, 0.5, "USD", ASSUMPTION,
       "The payee sets 'his desired watchtower fee' (docs.atomiq.exchange, Lightning -> Smart chain (new)); "
       "no typical value is published."),
    _p("watchtower_claim_s", 5.0, 15.0, 60.0, "s", ASSUMPTION,
       "Watchtowers listen for the secret over Nostr and claim (docs.atomiq.exchange); no delay is published."),
    _p("atomiq_invoice_cltv_blocks", 72.0, 144.0, 288.0, "blocks", ASSUMPTION,
       "The LP's invoice CLTV bounds the payer's refund if the LP never funds; its value is not in the docs."),
    # --- Boltz (Lightning -> USDT0 on Arbitrum via tBTC and a DEX)
    _p("boltz_fee_bps", 10.0, 50.0, 100.0, "bps", "https://moneroecosystem.com/services/boltz-exchange",
       "Boltz Lightning -> BTC 0.5 % (central), Lightning <-> L-BTC 0.1-0.25 % (low); the USDT route's fee "
       "was not found (api.docs.boltz.exchange: 'the rate varies by swap type and pair'); high is an assumption.",
       sourced=("low", "central")),
    _p("boltz_dex_bps", 5.0, 10.0, 40.0, "bps", ASSUMPTION,
       "Boltz routes Lightning -> tBTC (atomic) -> USDT0 'via a DEX swap akin to those on Uniswap' on Arbitrum "
       "(gadgetnews.io, Boltz USDT swaps launch, March 2026); pool fee plus impact not published."),
    _p("boltz_swap_s", 5.0, 15.0, 60.0, "s", "https://blog.boltz.exchange/p/introducing-usdt-swaps-from-sats",
       "Boltz: 'From Sats to Stablecoins in Seconds'; the spread is an assumption.",
       sourced=()),
    _p("boltz_ok", 0.97, 0.99, 0.998, "probability", ASSUMPTION, "No published failure rate."),
    _p("boltz_timeout_h", 12.0, 24.0, 48.0, "h", "https://github.com/boltzexchange/boltz-backend/issues/264",
       "A Boltz maintainer: 'Our BTC/BTC reverse swaps have a 24 hour expiry' (central); the USDT route's "
       "timeout is not published (low/high assumption).",
       sourced=("central",)),
    _p("bridge_to_starknet_bps", 5.0, 15.0, 50.0, "bps", ASSUMPTION,
       "Boltz delivers USDT0 on Arbitrum, not on Starknet: a further bridge is needed; its fee is assumed."),
    _p("bridge_to_starknet_s", 60.0, 300.0, 1800.0, "s", ASSUMPTION, "Arbitrum -> Starknet bridge time, assumed."),
    _p("bridge_ok", 0.97, 0.99, 0.999, "probability", ASSUMPTION, "No published failure rate."),
    # --- Garden (on-chain BTC HTLC -> Starknet)
    _p("garden_fee_bps", 10.0, 30.0, 60.0, "bps", ASSUMPTION,
       "Garden charges 'protocol and solver fees' (docs.garden.finance/next/developers/affiliate-fee) but no "
       "figure was found."),
    _p("btc_onchain_fee_usd", 0.3, 1.5, 10.0, "USD", ASSUMPTION,
       "One ~140 vB Bitcoin transaction at 2-50 sat/vB; fee markets move."),
    _p("garden_swap_s", 120.0, 210.0, 600.0, "s", "https://garden.finance/faq",
       "'Bitcoin to EVM or non-EVM swaps take about 2-5 minutes' (low 2 min, central 3.5 min); high doubles the "
       "5 min for the rest (assumption).",
       sourced=("low", "central")),
    _p("garden_ok", 0.95, 0.98, 0.995, "probability", "https://garden.finance/faq",
       "An order not confirmed within an hour is cancelled and refunded; the rate is an assumption.",
       sourced=()),
    _p("garden_timelock_h", 12.0, 24.0, 48.0, "h", ASSUMPTION,
       "Garden's Bitcoin HTLC refunds after its timelock (docs.garden.finance/contracts); the value is not in the "
       "pages read."),
    # --- tBTC (on-chain BTC deposit -> tBTC -> Starknet)
    _p("tbtc_mint_fee_bps", 10.0, 20.0, 20.0, "bps", "https://docs.threshold.network/tbtc-v2",
       "'The mint and redemption fee is 0.2 %', the mint fee reinstated on 2026-04-15 (central, high); "
       "TIP-93 had proposed 0.1 % (low)."),
    _p("tbtc_l1_gas_usd", 0.0, 2.0, 20.0, "USD", ASSUMPTION,
       "The tBTC SDK offers gasless deposits to Starknet (a relayer reveals on L1), else the depositor pays "
       "Ethereum gas; no figure."),
    _p("tbtc_mint_s", 600.0, 7_200.0, 21_600.0, "s",
       "https://docs.threshold.network/threshold-app/tbtc-minting-walkthrough",
       "'Minting may take anywhere from a few minutes to several hours' (low 10 min, high 6 h; central 2 h "
       "assumed).",
       sourced=("low", "high")),
    _p("starkgate_s", 120.0, 300.0, 900.0, "s", ASSUMPTION,
       "L1 -> L2 messages are delivered automatically by the sequencer (docs.starknet.io/learn/protocol/"
       "messaging); no delivery time is published."),
    _p("tbtc_ok", 0.97, 0.99, 0.999, "probability", ASSUMPTION,
       "No published failure rate (a deposit below 0.01 BTC is refused: threshold-app/tbtc-minting-walkthrough)."),
    _p("tbtc_refund_days", 30.0, 180.0, 180.0, "days",
       "https://github.com/threshold-network/tbtc-v2/blob/main/typescript/src/services/deposits/deposits-service.ts",
       "DEPOSIT_REFUND_LOCKTIME_DURATION_SECONDS = 15552000 (180 days) in the current SDK; 2592000 (30 days) "
       "in older releases (low)."),
    # --- Custodial exchange
    _p("exchange_fee_bps", 16.0, 26.0, 100.0, "bps", "https://cryptocurrencyexchanges.cc/s/en/Kraken+Fees/14728",
       "Kraken's lowest tier: maker 0.16 % (low), taker 0.26 % (central); high is an instant-buy spread "
       "(assumption).",
       sourced=("low", "central")),
    _p("exchange_withdraw_usd", 0.5, 1.0, 5.0, "USD", ASSUMPTION,
       "Withdrawal of a stablecoin to Starknet; exchanges publish per-asset fees that change."),
    _p("exchange_processing_s", 60.0, 300.0, 1800.0, "s", ASSUMPTION,
       "Crediting the deposit, the trade and the withdrawal queue; no published figure."),
    _p("exchange_ok", 0.97, 0.99, 0.999, "probability", ASSUMPTION,
       "Account, limits and withdrawal holds; no published rate."),
)
PARAMETERS: dict[str, Parameter] = {p.name: p for p in PARAMETER_LIST}


@dataclass(frozen=True)
class Design:
    """One bridge design: which parameters make up its cost, its time, its completion and its worst refund."""

    key: str
    label: str
    output_asset: str
    trust_model: str
    bps_terms: tuple[str, ...] = ()  # costs already in bps of the purchase
    usd_terms: tuple[str, ...] = ()  # fixed costs in USD, divided by the purchase size
    starknet_txs: int = 0  # Starknet transactions, each costing starknet_tx_usd
    amm_legs: int = 0  # swaps on a Starknet DEX: pool fee + slippage at dex_depth_usd_per_pct
    time_terms: tuple[str, ...] = ()  # seconds, summed
    inclusions: int = 0  # Starknet inclusions on the path to spendable stablecoin
    success_terms: tuple[str, ...] = ()  # probabilities, multiplied
    refund: str = ""  # how a failed purchase is refunded, in words
    refund_blocks: tuple[str, ...] = ()  # CLTV terms in blocks, or
    refund_hours: tuple[str, ...] = ()  # a timelock in hours, or
    refund_days: tuple[str, ...] = ()  # a timelock in days; none of the three: no timelock bounds it
    notes: tuple[str, ...] = field(default_factory=tuple)

    def parameters(self) -> tuple[str, ...]:
        names = list(self.bps_terms + self.usd_terms + self.time_terms + self.success_terms
                     + self.refund_blocks + self.refund_hours + self.refund_days)
        if self.starknet_txs:
            names.append("starknet_tx_usd")
        if self.amm_legs:
            names += ["dex_fee_bps", "dex_depth_usd_per_pct"]
        if self.inclusions:
            names.append("starknet_inclusion_s")
        return tuple(dict.fromkeys(names))

    @property
    def refund_bounded(self) -> bool:
        return bool(self.refund_blocks or self.refund_hours or self.refund_days)


LN_COST = ("ln_routing_fee_bps",)
DESIGNS: tuple[Design, ...] = (
    Design("hold_invoice", "hold-invoice mint (this service)", "VUSD on Starknet",
           "cannot keep the sats without minting (HTLC); mints as the operator, backs VUSD",
           bps_terms=(*LN_COST, "service_spread_bps", "inbound_refill_bps"), starknet_txs=1,
           time_terms=("ln_payment_s", "service_checks_s"), inclusions=1, success_terms=("ln_success", "mint_success"),
           refund="automatic: the service cancels the HTLC (max_hold_s 120 s); if it is down, the CLTV expires",
           refund_blocks=("service_invoice_cltv_blocks", "ln_route_cltv_blocks")),
    Design("settle_then_mint", "settle-then-mint", "VUSD on Starknet", "custodial from settle until the mint",
           bps_terms=(*LN_COST, "service_spread_bps", "inbound_refill_bps"), starknet_txs=1,
           time_terms=("ln_payment_s", "service_settle_s", "service_checks_s"), inclusions=1,
           success_terms=("ln_success", "mint_success"),
           refund="manual: the buyer must send an invoice; no timelock bounds it"),
    Design("atomiq", "Atomiq LN -> Starknet + DEX", "WBTC/ETH/STRK, then USDC via a DEX",
           "trust-minimised (HTLCs both sides); LP liquidity and a watchtower (or self-claim)",
           bps_terms=(*LN_COST, "atomiq_fee_bps"), usd_terms=("watchtower_fee_usd",), starknet_txs=3, amm_legs=1,
           time_terms=("ln_payment_s", "watchtower_claim_s", "wallet_action_s"), inclusions=3,
           success_terms=("ln_success", "atomiq_lp_ok"),
           refund="automatic: the LP's Lightning HTLC times out at its invoice CLTV",
           refund_blocks=("atomiq_invoice_cltv_blocks", "ln_route_cltv_blocks")),
    Design("boltz", "Boltz LN -> USDT0 + bridge", "USDT0 on Arbitrum, bridged to Starknet",
           "trust-minimised swap (HTLC, tBTC, DEX in one router transaction); then a bridge",
           bps_terms=(*LN_COST, "boltz_fee_bps", "boltz_dex_bps", "bridge_to_starknet_bps"),
           time_terms=("ln_payment_s", "boltz_swap_s", "bridge_to_starknet_s"),
           success_terms=("ln_success", "boltz_ok", "bridge_ok"),
           refund="automatic: the swap's timeout (the bridge leg has its own)", refund_hours=("boltz_timeout_h",)),
    Design("garden", "Garden (on-chain BTC HTLC)", "WBTC on Starknet, then USDC via a DEX",
           "trust-minimised (HTLCs both sides); a solver's liquidity", bps_terms=("garden_fee_bps",),
           usd_terms=("btc_onchain_fee_usd",), starknet_txs=2, amm_legs=1,
           time_terms=("garden_swap_s", "wallet_action_s"), inclusions=1, success_terms=("garden_ok",),
           refund="automatic: the Bitcoin HTLC's timelock", refund_hours=("garden_timelock_h",)),
    Design("tbtc", "tBTC via StarkGate", "tBTC on Starknet, then USDC via a DEX",
           "threshold signers (honest majority of a rotating group) hold the BTC", bps_terms=("tbtc_mint_fee_bps",),
           usd_terms=("btc_onchain_fee_usd", "tbtc_l1_gas_usd"), starknet_txs=1, amm_legs=1,
           time_terms=("tbtc_mint_s", "starkgate_s", "wallet_action_s"), inclusions=1, success_terms=("tbtc_ok",),
           refund="automatic after the deposit's refund locktime", refund_days=("tbtc_refund_days",)),
    Design("custodial", "custodial exchange", "USDC on Starknet (withdrawal)", "full custody by the exchange",
           bps_terms=(*LN_COST, "exchange_fee_bps"), usd_terms=("exchange_withdraw_usd",),
           time_terms=("ln_payment_s", "exchange_processing_s"), inclusions=1,
           success_terms=("ln_success", "exchange_ok"), refund="support ticket; no timelock bounds it"),
)
DESIGN_BY_KEY: dict[str, Design] = {d.key: d for d in DESIGNS}


def central(table: Mapping[str, Parameter] = PARAMETERS) -> dict[str, float]:
    return {name: p.central for name, p in table.items()}


def slippage_bps(values: Values, purchase_usd: float = PURCHASE_USD) -> Any:
    """Price impact of one swap: 100 bps for every depth's worth of USD traded (linear, small trades)."""
    return 100.0 * purchase_usd / values["dex_depth_usd_per_pct"]


def cost_bps(design: Design, values: Values, purchase_usd: float = PURCHASE_USD) -> Any:
    """Total cost of one purchase in bps of its size: fees, gas, AMM fee and slippage, inbound refill."""
    total: Any = sum((values[t] for t in design.bps_terms), 0.0)
    usd: Any = sum((values[t] for t in design.usd_terms), 0.0)
    usd = usd + design.starknet_txs * values.get("starknet_tx_usd", 0.0)
    total = total + 1e4 * usd / purchase_usd
    if design.amm_legs:
        total = total + design.amm_legs * (values["dex_fee_bps"] + slippage_bps(values, purchase_usd))
    return total


def time_s(design: Design, values: Values) -> Any:
    total: Any = sum((values[t] for t in design.time_terms), 0.0)
    return total + design.inclusions * values.get("starknet_inclusion_s", 0.0)


def success_probability(design: Design, values: Values) -> Any:
    probability: Any = 1.0
    for term in design.success_terms:
        probability = probability * values[term]
    return probability


def worst_refund_h(design: Design, values: Values) -> Any:
    """The longest a failed purchase can keep the buyer's money, by its CLTV or timelock; inf if none bounds it."""
    if not design.refund_bounded:
        return float("inf")
    blocks: Any = sum((values[t] for t in design.refund_blocks), 0.0)
    return (blocks * BLOCK_INTERVAL_H + sum((values[t] for t in design.refund_hours), 0.0)
            + 24.0 * sum((values[t] for t in design.refund_days), 0.0))


def draw(rng: np.random.Generator, n: int, table: Mapping[str, Parameter] = PARAMETERS) -> dict[str, np.ndarray]:
    """One draw of every parameter per simulated purchase, in the table's order (so a seed reproduces it)."""
    return {name: p.sample(rng, n) for name, p in table.items()}


def simulate(n: int, seed: int, purchase_usd: float = PURCHASE_USD,
             table: Mapping[str, Parameter] = PARAMETERS) -> dict[str, dict[str, Any]]:
    """Per design: cost (mean and 95 % CI, p5/p50/p95), completion (rate and Wilson CI), time to spendable
    stablecoin among completed purchases (mean and CI, p50, p95) and the worst refund (central, low, high)."""
    rng = np.random.default_rng(seed)
    summary: dict[str, dict[str, Any]] = {}
    for design in DESIGNS:
        values = draw(rng, n, table)
        cost = np.asarray(cost_bps(design, values, purchase_usd), dtype=float)
        completed = rng.random(n) < np.asarray(success_probability(design, values), dtype=float)
        seconds = np.asarray(time_s(design, values), dtype=float)[completed]
        summary[design.key] = {
            "cost_bps": mean_ci(cost), "cost_p5_p50_p95": np.percentile(cost, [5, 50, 95]).tolist(),
            "completion": wilson(int(completed.sum()), n),
            "time_s": mean_ci(seconds), "time_p50_s": float(np.percentile(seconds, 50)),
            "time_p95_s": float(np.percentile(seconds, 95)),
            "worst_refund_h": refund_range(design, table),
            "output_asset": design.output_asset, "trust_model": design.trust_model, "refund": design.refund,
        }
    return summary


def refund_range(design: Design, table: Mapping[str, Parameter] = PARAMETERS) -> list[float] | None:
    """[central, low, high] hours of the worst refund, or None where no timelock bounds it."""
    if not design.refund_bounded:
        return None
    at = {level: {n: getattr(p, level) for n, p in table.items()} for level in ("central", "low", "high")}
    return [float(worst_refund_h(design, at[level])) for level in ("central", "low", "high")]


def tornado(design: Design, metric: str = "cost_bps", purchase_usd: float = PURCHASE_USD,
            table: Mapping[str, Parameter] = PARAMETERS) -> list[dict[str, Any]]:
    """Swing each of the design's parameters from low to high with the others at central; sorted by the size
    of the swing, largest first, leaving out parameters that do not move the metric. `metric`: cost_bps or
    time_s."""
    def evaluate(values: Values) -> float:
        if metric == "cost_bps":
            return float(cost_bps(design, values, purchase_usd))
        return float(time_s(design, values))

    base_values = central(table)
    base = evaluate(base_values)
    rows: list[dict[str, Any]] = []
    for name in design.parameters():
        at_low = evaluate(base_values | {name: table[name].low})
        at_high = evaluate(base_values | {name: table[name].high})
        rows.append({"parameter": name, "at_low": at_low, "at_high": at_high, "central": base,
                     "swing": abs(at_high - at_low), "assumption": table[name].range_assumed})
    return sorted((row for row in rows if row["swing"] > 0), key=lambda row: -row["swing"])


def parameter_table(table: Mapping[str, Parameter] = PARAMETERS) -> list[dict[str, Any]]:
    """The table as rows (for the notebook and the results JSON): name, low, central, high, unit, source, says,
    and which designs use it."""
    used_by = {name: [d.key for d in DESIGNS if name in d.parameters()] for name in table}
    return [{"name": p.name, "low": p.low, "central": p.central, "high": p.high, "unit": p.unit,
             "source": p.source, "says": p.says, "sourced": list(p.sourced), "used_by": used_by[p.name]}
            for p in table.values()]
