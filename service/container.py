"""Wiring: from Settings to the running parts (database, Lightning backend, Starknet, worker).

Both the Flask app and `python -m service.worker` build their parts here, so they cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import httpx

from service.config import Settings
from service.domain.orders import PlaceOrder
from service.domain.preimages import PreimageKeys
from service.domain.reconciliation import Reconciliation
from service.domain.rules import OrderRules
from service.domain.settlement import Settlement, no_checkpoint
from service.events import OrderChanges, StreamSlots, make_order_changes
from service.faults import pause_checkpoint
from service.lightning.base import LightningBackend
from service.lightning.lnd import LndBackend
from service.lightning.lnd_rest import LndRestClient
from service.metrics import Metrics
from service.starknet.client import StarknetClient, StarknetConfig
from service.storage.database import make_engine, make_session_factory, migrate
from service.storage.idempotency import IdempotencyStore
from service.storage.lanes import LaneLeaseStore
from service.storage.orders import OrderRepository
from service.storage.workers import WorkerRoster
from service.webhooks.inbound import InboundWebhooks
from service.webhooks.outbox import WebhookDispatcher, WebhookOutbox
from service.worker import ROSTER_TTL_PASSES, Worker


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Container:
    """The composition root: every running part of one service process, built by `build_container`."""

    settings: Settings
    repository: OrderRepository
    lightning: LightningBackend
    starknet: StarknetClient
    place_order: PlaceOrder
    settlement: Settlement
    worker: Worker | None
    changes: OrderChanges
    metrics: Metrics
    outbox: WebhookOutbox
    dispatcher: WebhookDispatcher | None
    inbound: InboundWebhooks
    idempotency: IdempotencyStore
    preimages: PreimageKeys
    stream_slots: StreamSlots
    lanes: LaneLeaseStore | None = None  # a worker's mint lane leases

    @property
    def worker_id(self) -> str:
        """Who this process is to the other workers: the holder named on its claims, leases and roster row."""
        return self.repository.claims.worker_id

    def start_background(self) -> None:
        if self.worker:
            self.worker.start()
        if self.dispatcher:
            self.dispatcher.start()

    def close(self) -> None:
        self.changes.close()
        if self.worker:
            self.worker.stop()
        if self.dispatcher:
            self.dispatcher.stop()
        self.repository.claims.close()  # claims still held expire: a step may still act until the process ends
        if self.lanes:
            self.lanes.close()
        self.starknet.close()


def make_lightning(settings: Settings) -> LightningBackend:
    if settings.lightning_backend == "cln":
        from service.lightning.cln import ClnBackend

        return ClnBackend(settings.cln_rpc_path)
    if not settings.lnd_rest_url:
        raise ValueError("no Lightning node configured: set VOLTA_LND_REST_URL (or VOLTA_REGTEST_STATE)")
    client = LndRestClient(settings.lnd_rest_url, settings.lnd_tls_cert, settings.lnd_macaroon,
                           limits=httpx.Limits(max_connections=None, max_keepalive_connections=50))
    return LndBackend(client)


def make_starknet(settings: Settings, checkpoint: Callable[[str], None] = no_checkpoint,
                  lanes: LaneLeaseStore | None = None, signs_mints: bool = True) -> StarknetClient:
    return StarknetClient(StarknetConfig.from_settings(settings, signs_mints=signs_mints), checkpoint=checkpoint,
                          leases=lanes)


def order_rules(settings: Settings) -> OrderRules:
    """The operator's settings the domain applies to orders, each under its name in `Settings`; the only place
    they are copied from."""
    values = {field.name: getattr(settings, field.name) for field in fields(OrderRules)}
    return OrderRules(**values | {"redirect_hosts": tuple(settings.redirect_hosts)})


def make_checkpoint(settings: Settings) -> Callable[[str], None]:
    """Test-only pauses, built only when fault injection is configured."""
    return pause_checkpoint(settings.fault_pause_after) if settings.fault_pause_after else no_checkpoint


def load_preimage_keys(settings: Settings, repository: OrderRepository) -> PreimageKeys:
    """The operator's preimage keys; refuses to start without the key of an unfinished order (its HTLC could
    not be settled, and a mint for it would then leave VUSD minted for a payment that is refunded)."""
    keys = PreimageKeys.parse(settings.preimage_key_text())
    needed = {order.preimage_key_id for order in repository.unfinished() if order.preimage_key_id}
    if missing := keys.missing(needed):
        raise RuntimeError(f"unfinished orders were made with preimage keys {sorted(missing)}, which are not "
                           "loaded: add them back to the preimage key file (below the current key)")
    return keys


def build_container(settings: Settings, with_worker: bool, clock: Callable[[], datetime] = utc_now,
                    signs_mints: bool | None = None) -> Container:
    """Everything the service runs; background threads start with `start_background()`. `signs_mints` (default:
    with the worker) loads the minting keys and leases mint lanes as a worker does: the reconcile command mints
    again without running a worker."""
    signs_mints = with_worker if signs_mints is None else signs_mints
    migrate(settings.database_url)
    sessions = make_session_factory(make_engine(settings.database_url))
    repository = OrderRepository(sessions, clock, settings.claim_lease_s, settings.claim_renew_interval_s)
    preimages = load_preimage_keys(settings, repository)
    changes, metrics = make_order_changes(settings.redis_url), Metrics(repository)
    repository.subscribe(changes.notify)
    repository.subscribe(metrics.observe)
    outbox = WebhookOutbox(sessions, settings.webhook_urls, settings.webhook_secret, clock,
                           settings.webhook_backoff_s, settings.webhook_max_attempts,
                           on_outcome=lambda outcome: metrics.webhook_deliveries.labels(outcome).inc())
    if settings.webhook_urls:
        repository.add_outbox_writer(outbox.write)
    checkpoint = make_checkpoint(settings)  # one for the settlement and its Starknet client (mint_sent)
    # A worker sends mints only from the operator accounts (mint lanes) it leases; an API instance never mints and
    # never reads a minting key.
    lanes = LaneLeaseStore(sessions, clock, lambda: repository.claims.worker_id,
                           settings.mint_lane_lease_s) if signs_mints else None
    lightning, starknet = make_lightning(settings), make_starknet(settings, checkpoint, lanes, signs_mints=signs_mints)
    rules = order_rules(settings)
    settlement = Settlement(rules, repository, lightning, starknet, starknet, clock, preimages,
                            on_double_mint_refused=metrics.double_mint_refusals.inc, checkpoint=checkpoint)
    reconciliation = Reconciliation(repository, lightning, starknet, preimages, on_finding=metrics.observe_finding)
    worker = Worker(
        settlement, repository, lightning, clock, settings.settlement_threads, settings.recheck_interval_s,
        reconciliation, settings.reconcile_interval_s, timedelta(seconds=settings.reconcile_window_s),
        WorkerRoster(sessions, clock, lambda: repository.claims.worker_id,
                     ROSTER_TTL_PASSES * settings.recheck_interval_s),
    ) if with_worker else None
    if worker is not None:
        changes.on_new_order(worker.on_new_order)  # a new invoice followed from the moment it exists, in any process
    dispatcher = WebhookDispatcher(outbox) if with_worker and settings.webhook_urls else None
    place_order = PlaceOrder(rules, repository, lightning, starknet, clock, preimages)
    inbound = InboundWebhooks(sessions, settings.inbound_webhook_secret, repository, clock)
    return Container(settings, repository, lightning, starknet, place_order, settlement, worker, changes, metrics,
                    outbox, dispatcher, inbound, IdempotencyStore(sessions, clock), preimages,
                    StreamSlots(settings.max_event_streams_per_ip), lanes)
