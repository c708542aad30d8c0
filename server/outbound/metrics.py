"""Prometheus metrics of ``arbiter worker`` (default registry; ``--metrics-port``).

Listed in docs/outbound.md ("Metrics").
"""

from __future__ import annotations

from typing import Final

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["OUTBOUND", "OutboundMetrics"]

_LAG_BUCKETS: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


class OutboundMetrics:
    def __init__(self) -> None:
        self.due_lag = Histogram(
            "arbiter_outbound_due_lag_seconds",
            "Claim time minus the wake-up's due time (due-to-fire lag).",
            buckets=_LAG_BUCKETS,
        )
        self.due_backlog = Gauge(
            "arbiter_outbound_due_backlog",
            "Wake-ups due now and not yet claimed (sampled by each worker).",
            multiprocess_mode="max",
        )
        self.wakeups = Counter(
            "arbiter_outbound_wakeups_total",
            "Claimed wake-ups by outcome: sent, nothing, deferred, retry, skipped, stale, error.",
            ["outcome"],
        )
        self.appended = Counter(
            "arbiter_outbound_appended_total", "Entries appended to an outbox (once per key)."
        )
        self.deliveries = Counter(
            "arbiter_outbound_deliveries_total",
            "Delivery attempts by destination and outcome: delivered, retry, dead_lettered.",
            ["destination", "outcome"],
        )
        self.retries = Counter(
            "arbiter_outbound_retries_total", "Deliveries scheduled again.", ["destination"]
        )
        self.dlq = Counter(
            "arbiter_outbound_dead_lettered_total", "Entries moved to the DLQ.", ["destination"]
        )
        self.rate_waits = Counter(
            "arbiter_outbound_rate_limit_waits_total",
            "Times a delivery waited for the destination's shared token bucket.",
            ["destination"],
        )
        self.breaker_open = Gauge(
            "arbiter_outbound_breaker_open",
            "1 while this worker's circuit breaker of the destination is open.",
            ["destination"],
            multiprocess_mode="max",
        )
        self.outbox_backlog = Gauge(
            "arbiter_outbound_outbox_backlog",
            "Entries in the destination's outbox stream (sampled).",
            ["destination"],
            multiprocess_mode="max",
        )


OUTBOUND: Final = OutboundMetrics()
