"""Prometheus metrics: the seed's success metrics (success rate, payment time, double-spend count)
made observable. Counts by state come from the database at scrape time, so they survive restarts."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from service.domain.reconciliation import Finding
from service.domain.states import HELD_STATUSES, OrderStatus
from service.storage.models import OrderRow
from service.storage.orders import OrderRepository

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60)


class OrderStateCollector(Collector):
    def __init__(self, repository: OrderRepository) -> None:
        self.repository = repository

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.repository.counts_by_status()
        by_state = GaugeMetricFamily("volta_orders", "Orders by state", labels=["state"])
        for status in OrderStatus:
            by_state.add_metric([status.value], counts.get(status.value, 0))
        yield by_state
        yield GaugeMetricFamily("volta_held_htlcs", "HTLCs held right now (payment_held, minting, minted)",
                                value=sum(counts.get(status.value, 0) for status in HELD_STATUSES))
        refunds = GaugeMetricFamily("volta_refunds", "Refunded orders by reason", labels=["reason"])
        for reason, count in self.repository.refunds_by_reason().items():
            refunds.add_metric([reason], count)
        yield refunds


class Metrics:
    def __init__(self, repository: OrderRepository) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(OrderStateCollector(repository))
        self.end_to_end_seconds = Histogram(
            "volta_purchase_seconds", "HTLC accepted to HTLC settled", buckets=LATENCY_BUCKETS, registry=self.registry)
        self.mint_seconds = Histogram(
            "volta_mint_seconds", "minting to minted (mint accepted, event verified)", buckets=LATENCY_BUCKETS,
            registry=self.registry)
        self.webhook_deliveries = Counter(
            "volta_webhook_deliveries", "Webhook delivery attempts by outcome", ["outcome"], registry=self.registry)
        self.double_mint_refusals = Counter(
            "volta_double_mint_refusals", "Mints the vault refused because the payment hash was already used",
            registry=self.registry)
        self.reconcile_findings = Counter(
            "volta_reconcile_findings", "Finished orders that lnd or the vault contradicted, by kind and repair",
            ["kind", "repaired"], registry=self.registry)

    def observe_finding(self, finding: Finding) -> None:
        self.reconcile_findings.labels(finding.kind.value, str(finding.repaired).lower()).inc()

    def observe(self, order: OrderRow) -> None:
        """Record latencies when an order completes (listener on committed changes)."""
        if order.status != OrderStatus.COMPLETED.value:
            return
        times = {event.status: event.at for event in order.events}
        if OrderStatus.PAYMENT_HELD.value in times:
            held = times[OrderStatus.PAYMENT_HELD.value]
            self.end_to_end_seconds.observe((times[OrderStatus.COMPLETED.value] - held).total_seconds())
        if OrderStatus.MINTING.value in times and OrderStatus.MINTED.value in times:
            mint = times[OrderStatus.MINTED.value] - times[OrderStatus.MINTING.value]
            self.mint_seconds.observe(mint.total_seconds())
