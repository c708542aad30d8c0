"""Prometheus metrics of the decision service (default registry; served on ``--metrics-port``), shared by every transport."""

from __future__ import annotations

from typing import Final

from prometheus_client import REGISTRY, Counter, Histogram

__all__ = ["METRICS", "Metrics", "count_across_processes"]


class Metrics:
    """The service's counters and histograms (one instance: :data:`METRICS`)."""

    def __init__(self) -> None:
        self.requests = Counter(
            "arbiter_requests",
            "DecisionService calls by method and status code",
            ["method", "code"],
        )
        self.latency = Histogram(
            "arbiter_request_seconds",
            "DecisionService handler latency",
            ["method"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
        )
        self.degraded = Counter(
            "arbiter_degraded_responses", "Decide/Check answers that fell back toward not sending"
        )
        self.replays = Counter("arbiter_replays", "Idempotent replays", ["method"])
        self.schema_rejections = Counter(
            "arbiter_schema_rejections", "Events rejected by their type's contract", ["event_type"]
        )
        self.events = Counter("arbiter_events", "Tracked events by status", ["status"])
        self.shed = Counter(
            "arbiter_shed",
            "DecisionService calls refused by admission control (RESOURCE_EXHAUSTED), by why",
            ["method", "reason"],
        )


METRICS: Final = Metrics()


def count_across_processes() -> None:
    """In a forked ``--workers`` process: count from now on in the files of
    ``PROMETHEUS_MULTIPROC_DIR`` (set by the supervisor before the fork), which worker 0's
    ``/metrics`` sums. prometheus_client picks its value class when it is imported, which may
    have happened in the supervisor (the CLI imports the service core), so the value class is
    switched and :data:`METRICS` rebuilt in place; nothing has been counted yet."""
    from prometheus_client import values

    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    for name in vars(METRICS):
        REGISTRY.unregister(getattr(METRICS, name))
    METRICS.__init__()  # type: ignore[misc]
