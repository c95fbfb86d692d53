"""Service settings: environment variables (VOLTA_*), optionally a TOML file, validated by pydantic.

The lnd connection and the Starknet contracts can also come from the harness's `state.json`
(`VOLTA_REGTEST_STATE`), so a developer's service finds the regtest network by itself.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

from limits import parse_many
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from service.validation import validation_problems

ENV_PREFIX = "VOLTA_"
# A host and optional port in an origin the settings name (CSP sources, public URLs): ASCII only, nothing that
# could end a CSP directive or a header.
HOST_PORT = r"[A-Za-z0-9.-]+(:[0-9]{1,5})?"


class SettingsError(ValueError):
    """Settings that do not validate, named by field and rule; never carries a value (it may be a secret)."""


class MintLaneAccount(BaseModel):
    """One more operator account the vault accepts mints from: a mint lane with its own nonce."""

    address: str = Field(pattern=r"^0x[0-9a-fA-F]{1,64}$")
    private_key_file: str

    def private_key(self) -> int:
        return _parse_key(Path(self.private_key_file).read_text().strip(), f"the file {self.private_key_file}")


class Settings(BaseModel):
    database_url: str = "sqlite:///volta.sqlite"

    lightning_backend: str = Field(default="lnd", pattern="^(lnd|cln)$")
    cln_rpc_path: str = ""
    lnd_rest_url: str = ""
    lnd_tls_cert: str = ""
    lnd_macaroon: str = ""

    starknet_rpc_url: str = ""
    starknet_chain_id: str = "0x534e5f5345504f4c4941"  # SN_SEPOLIA, what starknet-devnet reports by default
    vault_address: str = ""
    vusd_address: str = ""
    # The done page links the mint transaction in an explorer: "{tx_hash}" is replaced by the transaction's hash,
    # e.g. "https://voyager.online/tx/{tx_hash}". Empty: no link, the page shows only the hash.
    explorer_tx_url: str = Field(default="", pattern=r"^(|https?://\S*\{tx_hash\}\S*)$")
    oracle_address: str = ""
    operator_address: str = ""
    operator_private_key: str = Field(default="", repr=False)
    operator_private_key_file: str = ""
    # Mint lanes: the operator above is the first; these accounts (added to the vault with `add_operator`) are
    # the others. Each lane is leased to one worker at a time and sends its own batches with its own nonce.
    # VOLTA_MINT_LANE_ACCOUNTS is JSON: [{"address": "0x…", "private_key_file": "/…"}, …].
    mint_lane_accounts: list[MintLaneAccount] = []
    mint_lane_lease_s: float = Field(default=15, gt=0)
    mint_lane_idle_release_s: float = Field(default=10, gt=0)  # an idle lane is given back for other workers
    mint_lanes_per_worker: int = Field(default=0, ge=0)  # 0: as many as it finds free when its lanes are busy
    # Preimages are HMACs of the order id under these keys (service.domain.preimages), never stored. Hex keys,
    # newest first, in a file (default: beside a SQLite database, created on first start) or in the variable.
    preimage_key_file: str = ""
    preimage_keys: str = Field(default="", repr=False)

    # A quote is an option the payer holds until the invoice expires. Notebook 5 (notebooks/05_market_risk.ipynb,
    # docs/plots/05_market_risk.json: volatility regimes from real BTC/USD history, fat tails, an oracle that may
    # lag 60 s) puts the protocol's expected loss at these defaults (300 s, a 50 bps fall bound, 50 bps spread) at
    # under 0.1 bps a quote and its CVaR99 at 0.1-7 bps, calm to stressed. Its optimum moves with the price of
    # open exposure, which nobody has measured: 900 s and 40 bps at an assumed 10 bps/hour, 300-600 s at 100.
    # 300 s is the short end of that range: time to scan and pay from a phone, the least exposure.
    quote_lifetime_s: int = Field(default=300, ge=5, le=86_400)
    spread_bps: int = Field(default=50, ge=0, le=2_000)
    # Slippage has two sides. If BTC rises between quote and mint, the buyer's sats buy less than they are
    # worth: the buyer bounds that (max_slippage_bps, default and ceiling here). If BTC falls, the protocol
    # sells VUSD below the oracle: only the operator bounds that, near the spread, so a payer who waits
    # for a fall takes at most the spread back.
    default_max_slippage_bps: int = Field(default=100, ge=0, le=10_000)
    max_allowed_slippage_bps: int = Field(default=500, ge=0, le=10_000)
    max_price_drop_bps: int = Field(default=50, ge=0, le=10_000)
    # The oracle's price may be this old at quote and at mint. Pragma publishes BTC/USD every few seconds on
    # mainnet: 60 s tolerates several missed updates, and BTC moves about 8 bps (one sigma) in a minute,
    # well inside the operator's side of the bound; an hour-old price would make that bound meaningless.
    max_price_age_s: int = Field(default=60, ge=1)
    min_order_vusd: Decimal = Decimal("1")
    max_order_vusd: Decimal = Decimal("1000")
    max_vusd_per_address_per_day: Decimal = Decimal("5000")
    # How long we hold a payer's HTLC at most; far below the invoice's CLTV so it never times out on chain.
    max_hold_s: int = Field(default=120, ge=5)
    # How long a sent mint may take to be accepted; with its answer margin it must fit twice in max_hold_s.
    mint_timeout_s: float = Field(default=30, gt=0)
    # Time for signing, fee estimation and sending on top of mint_timeout_s: together, one mint attempt's budget.
    mint_answer_margin_s: float = Field(default=30, gt=0)
    # The HTLC's own expiry (its CLTV) bounds how long a held payment can wait for an undecided mint. lnd
    # cancels held HTLCs `holdexpirydelta` blocks before expiry (its default: 10 + 2). We void an undecided
    # mint's nonce a few blocks before that, and start no mint unless a few more remain: each margin is 6
    # blocks, about an hour on mainnet, far longer than a mint or a void takes to be accepted.
    htlc_cancel_delta_blocks: int = Field(default=12, ge=1)
    void_mint_blocks_before_expiry: int = Field(default=18, ge=1)
    min_htlc_blocks_to_mint: int = Field(default=24, ge=1)
    # A signed mint the Starknet node has not seen this long after we recorded it is voided (its nonce used by
    # a harmless transaction), so the order can be minted again or refunded without waiting for the bound.
    void_unseen_mint_after_s: float = Field(default=15, gt=0)
    recheck_interval_s: float = Field(default=2.0, gt=0)
    # Completed orders are compared with the vault, refunded and expired ones with lnd, this often, this far back.
    reconcile_interval_s: float = Field(default=300, gt=0)
    reconcile_window_s: int = Field(default=86_400, gt=0)
    settlement_threads: int = Field(default=8, ge=1, le=64)
    # A worker acts on an order only under its claim on it (any number of workers may run on one database): the
    # claim lasts a lease and is renewed while the work lasts. A crashed worker's orders wait at most this long
    # for another worker. Safety does not rest on the lease: every write and side effect checks the claim first.
    claim_lease_s: float = Field(default=15, gt=0)
    claim_renew_interval_s: float = Field(default=5, gt=0)
    run_worker: bool = True
    log_level: str = "INFO"

    # Rate limits on order creation (Flask-Limiter syntax); storage "memory://" or a redis:// URL.
    rate_limit_orders_per_ip: str = "30/minute;300/hour"
    rate_limit_orders_per_address: str = "10/minute;100/day"
    rate_limit_storage_url: str = "memory://"
    # Where processes tell each other of order changes (live events); empty: one process, or polling.
    redis_url: str = ""
    # Reverse proxies in front that append the client to X-Forwarded-For and set X-Forwarded-Proto (nginx: 1). The
    # client address for rate limits and stream caps, and the scheme (https behind a TLS proxy), are read that many
    # hops back; 0 trusts no header (a client could forge it).
    proxy_hops: int = Field(default=0, ge=0, le=5)
    max_event_streams_per_ip: int = Field(default=20, ge=1)
    # Per client IP on each of GET /api/v1/rate, /health and /balance, which ask lnd, the devnet or the database.
    rate_limit_reads_per_ip: str = "20/second;600/minute"

    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: str = Field(default="", repr=False)
    webhook_backoff_s: float = Field(default=5.0, gt=0)
    webhook_max_attempts: int = Field(default=10, ge=1)
    inbound_webhook_secret: str = Field(default="", repr=False)
    # The webhook delivery log and redelivery are closed (403) unless this is set; then they need
    # `Authorization: Bearer <token>`.
    admin_token: str = Field(default="", repr=False)
    # Reading an address's purchase history needs a SNIP-12 message signed by that account (service/api/history.py).
    # The key signs its challenges and sessions. Empty: a random key per process, never written anywhere, so a
    # restart ends every session and challenge (cheap: one more signature) and no config file holds it; set it
    # (with a shared rate_limit_storage_url, which also holds the used challenges) when several processes serve.
    history_session_key: str = Field(default="", repr=False)
    history_challenge_lifetime_s: int = Field(default=300, ge=1, le=3_600)
    history_session_lifetime_s: int = Field(default=900, ge=10, le=86_400)
    rate_limit_history_per_ip: str = "30/minute"  # per route; a sign-in takes one challenge and one session
    rate_limit_accounts_per_ip: str = "60/minute"  # GET /api/v1/accounts/<address>: each answer asks the Starknet node
    # Test-only fault injection: pause this many seconds at a settlement checkpoint (e.g. "mint_signed:30").
    fault_pause_after: str = ""
    # Lightning Address (LUD-16) and LNURL-pay (LUD-06), service/api/lnurl.py. The public base URL wallets reach
    # the service at ("https://pay.example.com"): callbacks and the identifier in the metadata are made from it.
    # Empty: the URL the request came to (enough on loopback; behind a TLS proxy, set it).
    lnurl_public_url: str = ""
    # Optional usernames for Starknet addresses, a JSON object {"alice": "0x…"}; a Starknet address always works
    # as the username itself. Usernames as LUD-16 allows them: a-z 0-9 - _ . (and not 0x + hex: that is an address).
    lnurl_aliases: dict[str, str] = Field(default_factory=dict)
    # Hosts an order's redirect_url may name: exactly, or any subdomain of an entry written ".shop.example".
    # VOLTA_REDIRECT_HOSTS is comma-separated. Empty: no order may carry a redirect_url.
    redirect_hosts: list[str] = Field(default_factory=list)
    # Origins that may show the pages in an iframe (CSP frame-ancestors), e.g. "https://shop.example". Comma-
    # separated in VOLTA_FRAME_ANCESTORS. Empty (the default): no site may frame them ('none').
    frame_ancestors: list[str] = Field(default_factory=list)

    # Nostr Wallet Connect relays the checkout may open a WebSocket to (CSP connect-src; service/web/security.py
    # says why): origins such as wss://relay.getalby.com, ws://127.0.0.1:7447 for a relay on this machine, or
    # `wss:` for any relay over TLS. Comma-separated in VOLTA_NWC_RELAYS. Empty (the default): any TLS relay.
    nwc_relays: list[str] = Field(default_factory=list)

    @field_validator("nwc_relays", mode="after")
    @classmethod
    def _relay_origins(cls, value: list[str]) -> list[str]:
        relays = [entry.rstrip("/") for entry in value]
        for relay in relays:
            if not re.fullmatch(rf"wss:|wss?://{HOST_PORT}", relay):
                raise ValueError(f"{relay!r} is not a relay origin: use wss://host[:port], ws://host[:port] or wss:")
        return relays

    @field_validator("frame_ancestors", mode="after")
    @classmethod
    def _origins_only(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not re.fullmatch(rf"https?://(\*\.)?{HOST_PORT}", origin):
                raise ValueError(f"{origin!r} is not an origin such as https://shop.example (scheme, host, port)")
        return value

    @field_validator("webhook_urls", "redirect_hosts", "frame_ancestors", "nwc_relays", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return [url.strip() for url in value.split(",") if url.strip()]
        return value

    @field_validator("rate_limit_orders_per_ip", "rate_limit_orders_per_address", "rate_limit_reads_per_ip",
                     "rate_limit_history_per_ip", "rate_limit_accounts_per_ip")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError:
            raise ValueError('must look like "10/minute;100/day"') from None
        return value

    @model_validator(mode="after")
    def _check_webhooks(self) -> Settings:
        if self.webhook_urls and not self.webhook_secret:
            raise ValueError("webhook_urls are set but webhook_secret is empty: deliveries must be signed")
        return self

    @property
    def mint_budget_s(self) -> float:
        """The longest one mint attempt can keep an HTLC held (the client waits this long for an answer)."""
        return self.mint_timeout_s + self.mint_answer_margin_s

    @model_validator(mode="after")
    def _check_hold_bound(self) -> Settings:
        if 2 * self.mint_budget_s > self.max_hold_s:
            # The bound comes from two timing settings (never secrets); the value given is not repeated.
            raise ValueError(f"max_hold_s must be at least twice mint_timeout_s + mint_answer_margin_s (here "
                             f"{2 * self.mint_budget_s:g} s), so a held HTLC is released within its bound")
        return self

    @model_validator(mode="after")
    def _check_htlc_margins(self) -> Settings:
        if not self.htlc_cancel_delta_blocks < self.void_mint_blocks_before_expiry < self.min_htlc_blocks_to_mint:
            raise ValueError("need htlc_cancel_delta_blocks < void_mint_blocks_before_expiry < "
                             "min_htlc_blocks_to_mint: a mint must be decided before lnd lets the HTLC go")
        return self

    @model_validator(mode="after")
    def _check_claim_renewal(self) -> Settings:
        if 2 * self.claim_renew_interval_s > self.claim_lease_s:
            raise ValueError("claim_renew_interval_s must be at most half of claim_lease_s, so one late renewal "
                             "does not lose a claim")
        return self

    @model_validator(mode="after")
    def _check_slippage_bounds(self) -> Settings:
        if self.default_max_slippage_bps > self.max_allowed_slippage_bps:
            raise ValueError("default_max_slippage_bps must not exceed max_allowed_slippage_bps")
        return self

    @field_validator("mint_lane_accounts", "lnurl_aliases", mode="before")
    @classmethod
    def _from_json(cls, value: Any) -> Any:
        """A list or table given as a VOLTA_* variable is JSON text; from TOML it comes parsed already."""
        return json.loads(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _lanes_are_distinct_accounts(self) -> Settings:
        # Two lanes on one account would each keep their own nonce and fight over it on every send.
        accounts = [int(lane.address, 16) for lane in self.mint_lane_accounts]
        if self.operator_address:
            accounts.append(int(self.operator_address, 16))
        if len(set(accounts)) != len(accounts):
            raise ValueError("mint_lane_accounts must name distinct accounts, none of them the operator_address")
        return self

    @field_validator("lnurl_public_url")
    @classmethod
    def _lnurl_public_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.fullmatch(rf"https?://{HOST_PORT}", value):
            raise ValueError('must be a scheme and host without a path, such as "https://pay.example.com"')
        return value

    @field_validator("lnurl_aliases")
    @classmethod
    def _lnurl_aliases(cls, value: dict[str, str]) -> dict[str, str]:
        for username, address in value.items():
            if not re.fullmatch(r"[a-z0-9\-_.]{1,64}", username) or re.fullmatch(r"0x[0-9a-f]*", username):
                raise ValueError("each username must be 1 to 64 of a-z 0-9 - _ . and not look like a 0x address")
            if not re.fullmatch(r"0x[0-9a-fA-F]{1,64}", address.strip()):
                raise ValueError("each alias must map to a Starknet address, 0x followed by 1 to 64 hex digits")
        return value

    def operator_key(self) -> int:
        if self.operator_private_key:
            return _parse_key(self.operator_private_key, "VOLTA_OPERATOR_PRIVATE_KEY")
        if self.operator_private_key_file:
            text = Path(self.operator_private_key_file).read_text().strip()
            return _parse_key(text, f"the file {self.operator_private_key_file}")
        raise ValueError("set VOLTA_OPERATOR_PRIVATE_KEY or VOLTA_OPERATOR_PRIVATE_KEY_FILE")

    def preimage_key_text(self) -> str:
        """The preimage keys' text: from the variable, the file, or a file made beside a SQLite database on
        its first start (an in-memory database gets an in-memory key: both end with the process)."""
        if self.preimage_keys:
            return self.preimage_keys
        if self.preimage_key_file:
            path = Path(self.preimage_key_file)
            if not path.exists():  # never replace a configured key: orders made with it could not settle
                raise ValueError(f"VOLTA_PREIMAGE_KEY_FILE {path} does not exist")
            return path.read_text()
        database = self.database_url.removeprefix("sqlite:///")
        if database == self.database_url:
            raise ValueError("set VOLTA_PREIMAGE_KEY_FILE (or VOLTA_PREIMAGE_KEYS): with a shared database every "
                             "process must derive preimages from the same key")
        if database in ("", ":memory:"):
            return secrets.token_hex(32)
        return _key_file_beside(Path(database))


def _key_file_beside(database: Path) -> str:
    """Read the key file next to the database, creating it (mode 0600) the first time; when two processes
    start at once, one creates it and the other reads it."""
    path = database.with_name(database.name + ".preimage-key")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text()
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32) + "\n")
    return path.read_text()


def _parse_key(text: str, source: str) -> int:
    try:
        return int(text, 16)
    except ValueError:
        # `from None`: the original message would quote the key itself into a traceback or log.
        raise ValueError(f"the operator private key in {source} is not a hex number") from None


def settings_from_regtest_state(state: dict[str, Any]) -> dict[str, Any]:
    merchant = state["lightning"]["nodes"]["merchant"]
    values: dict[str, Any] = {
        "lnd_rest_url": merchant["rest_url"],
        "lnd_tls_cert": merchant["tls_cert"],
        "lnd_macaroon": merchant["macaroon"],
    }
    starknet = state.get("starknet")
    if starknet:
        values |= {
            "starknet_rpc_url": starknet["rpc_url"],
            "starknet_chain_id": starknet["chain_id"],
            "vault_address": starknet["contracts"]["vault"],
            "vusd_address": starknet["contracts"]["vusd"],
            "oracle_address": starknet["contracts"]["oracle"],
            "operator_address": starknet["operator"]["address"],
            "operator_private_key_file": starknet["operator"]["private_key_file"],
            "mint_lane_accounts": starknet.get("mint_lanes", []),
        }
    return values


def load_settings(overrides: dict[str, Any] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Regtest state, then the TOML file, then VOLTA_* variables, then explicit overrides: later wins."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    state_file = environ.get(f"{ENV_PREFIX}REGTEST_STATE")
    if state_file:
        values |= settings_from_regtest_state(json.loads(Path(state_file).read_text()))
    config_file = environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file:
        values |= tomllib.loads(Path(config_file).read_text())
    for name in Settings.model_fields:
        env_value = environ.get(f"{ENV_PREFIX}{name.upper()}")
        if env_value is not None:
            values[name] = env_value
    if "DATABASE_URL" in environ and f"{ENV_PREFIX}DATABASE_URL" not in environ:
        values["database_url"] = environ["DATABASE_URL"]
    try:
        return Settings(**(values | (overrides or {})))
    except ValidationError as exc:
        # pydantic's own text repeats the input (all of it, for a rule across fields): secrets included.
        problems = "\n".join(f"  {problem}" for problem in validation_problems(exc, top_level="settings"))
        raise SettingsError(f"the service's settings are not valid (VOLTA_* variables, "
                            f"{ENV_PREFIX}CONFIG):\n{problems}") from None
