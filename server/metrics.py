"""Prometheus metrics of the server (default registry; served on ``--metrics-port`` / ``--metrics-listen``), shared by every transport.

Conventions: counters end in ``_total`` (prometheus_client appends it),
durations are ``_seconds``, labels are bounded (RPC names, status codes,
reason codes, and the action / channel / journey ids of the loaded policy
set). ``docs/observability.md`` lists every metric with its labels and the
questions it answers.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import REGISTRY, Counter, Gauge, Histogram

__all__ = ["LATENCY_BUCKETS", "METRICS", "Metrics", "count_across_processes"]

# 0.1 ms .. 1 s: a Decide takes a few hundred microseconds on a quiet server.
LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.00075,
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class Metrics:
    """The server's metrics (one instance: :data:`METRICS`)."""

    def __init__(self) -> None:
        self._rpc()
        self._decisions()
        self._store()
        self._decision_log()
        self._volume_guards()

    def _rpc(self) -> None:
        self.requests = Counter(
            "arbiter_requests",
            "RPCs by method, final status code and transport, including calls refused before "
            "the handler (authentication, malformed bodies)",
            ["method", "code", "transport"],
        )
        self.latency = Histogram(
            "arbiter_request_seconds",
            "Server-side RPC latency, from the handler's invocation (after the body was read) "
            "to the response: guard, validation, store calls, engine, rendering",
            ["method", "transport"],
            buckets=LATENCY_BUCKETS,
        )

    def _decisions(self) -> None:
        self.grants = Counter(
            "arbiter_grants",
            "Actions chosen by Decide and Check answers (not dry runs), by action and channel",
            ["action", "channel"],
        )
        self.rejections = Counter(
            "arbiter_rejections",
            "Candidates not chosen, by method and reason code (FILTERED and NOT_SELECTED)",
            ["method", "reason"],
        )
        self.degraded = Counter(
            "arbiter_degraded_responses",
            "Decide/Check answers that fell back toward not sending, by method and cause "
            "(the degradation's reason code; an answer counts once per cause)",
            ["method", "cause"],
        )
        self.replays = Counter("arbiter_replays", "Idempotent replays", ["method"])
        self.journeys = Counter(
            "arbiter_journey_transitions",
            "Journey state changes applied, by journey and kind "
            "(enter, reenter, transition, complete, exit, timeout)",
            ["journey", "kind"],
        )
        self.schema_rejections = Counter(
            "arbiter_schema_rejections", "Events rejected by their type's contract", ["event_type"]
        )
        self.events = Counter("arbiter_events", "Tracked events by status", ["status"])
        self.shed = Counter(
            "arbiter_shed",
            "DecisionService calls refused by admission control (RESOURCE_EXHAUSTED), by why",
            ["method", "reason"],
        )
        self.policy_info = Gauge(
            "arbiter_policy_info",
            "The policy set this server decides with (1 for the active one)",
            ["policy_id", "version", "digest"],
            multiprocess_mode="livemax",
        )
        self.policy_sync_failed = Gauge(
            "arbiter_policy_sync_failed",
            "1 while this server cannot load the fleet's active policy set and serves its last good one",
            multiprocess_mode="livemax",
        )

    def _store(self) -> None:
        self.store_latency = Histogram(
            "arbiter_store_seconds",
            "Store call latency by operation (load, commit_decision, apply_event, ...)",
            ["operation"],
            buckets=LATENCY_BUCKETS,
        )
        self.store_errors = Counter(
            "arbiter_store_errors",
            "Failed store calls by operation and error (unavailable, timeout, conflict, error)",
            ["operation", "error"],
        )
        self.circuit_state = Gauge(
            "arbiter_store_circuit_state",
            "The store's circuit breaker: 0 closed, 1 half-open, 2 open",
            multiprocess_mode="livemax",
        )
        self.circuit_opens = Counter(
            "arbiter_store_circuit_opens", "Times the store's circuit breaker opened"
        )

    def _decision_log(self) -> None:
        self.log_records = Counter(
            "arbiter_decision_log_records",
            "Decision log records written, by sink (file, redis)",
            ["sink"],
        )
        self.log_dropped = Counter(
            "arbiter_decision_log_dropped",
            "Decision log records lost, by reason (queue_full, shutdown, error)",
            ["reason"],
        )
        self.log_errors = Counter(
            "arbiter_decision_log_errors",
            "Failed writes to the decision log sink (the batch is retried)",
            ["sink"],
        )
        self.log_queue = Gauge(
            "arbiter_decision_log_queue_depth",
            "Decision log records waiting to be written",
            multiprocess_mode="livesum",
        )
        self.log_lag = Gauge(
            "arbiter_decision_log_lag_seconds",
            "Age of the oldest decision log record not yet written (0 when none waits)",
            multiprocess_mode="livemax",
        )

    def _volume_guards(self) -> None:
        self.guard_grants = Gauge(
            "arbiter_volume_guard_grants",
            "Grants a volume guard counted across the fleet in its current window (as last read)",
            ["guard"],
            multiprocess_mode="max",
        )
        self.guard_limit = Gauge(
            "arbiter_volume_guard_limit",
            "A volume guard's max_grants per window",
            ["guard"],
            multiprocess_mode="max",
        )
        self.guard_trips = Counter(
            "arbiter_volume_guard_trips",
            "Times a volume guard tripped (once per window and process), by what it does",
            ["guard", "on_trip"],
        )
        self.guard_paused = Gauge(
            "arbiter_volume_guard_paused",
            "1 while a tripped volume guard with on_trip: pause refuses its grants",
            ["guard"],
            multiprocess_mode="max",
        )
        self.guard_errors = Counter(
            "arbiter_volume_guard_errors",
            "Failed volume guard counter updates (the counts are kept and retried)",
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
