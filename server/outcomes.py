"""What answers did, counted: grants per action and channel, rejections per reason, degradations per cause, journey transitions.

Called on the request path with the settled, traced decision (the core
always evaluates with the trace on; the client gets it only when it asked
for ``explain``), so it is kept cheap: the labelled children of each metric
are looked up once and cached (a plain dict hit and one ``inc`` per count).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from prometheus_client import Counter

from arbiter.policies import Decision, JourneyChange, Outcome
from arbiter.server.metrics import METRICS

__all__ = ["count_answer", "count_journeys"]

_SELECTED: Final = Outcome.SELECTED


class _Children:
    """The labelled children of one counter of :data:`METRICS`, cached by label values (the
    cache follows the counter when ``--workers`` rebuilds the metrics for multiprocess mode)."""

    __slots__ = ("_cache", "_metric", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._metric: Counter | None = None
        self._cache: dict[tuple[str, ...], Any] = {}

    def inc(self, *labels: str) -> None:
        metric = getattr(METRICS, self._name)
        if metric is not self._metric:
            self._metric, self._cache = metric, {}
        child = self._cache.get(labels)
        if child is None:
            child = self._cache[labels] = metric.labels(*labels)
        child.inc()


_GRANTS: Final = _Children("grants")
_REJECTIONS: Final = _Children("rejections")
_DEGRADED: Final = _Children("degraded")
_JOURNEYS: Final = _Children("journeys")


def count_answer(method: str, decision: Decision, *, dry_run: bool = False) -> None:
    """Count one answered Decide or Check (not a replay): its grants (unless a dry run), every
    candidate it did not choose by reason, and each cause of degradation once."""
    if not dry_run:
        for action in decision.actions:
            _GRANTS.inc(action.action, action.channel)
    for candidate in decision.candidates:
        if candidate.outcome is not _SELECTED:
            _REJECTIONS.inc(method, candidate.reason.value)
    if decision.degradations:
        for cause in {d.reason.value for d in decision.degradations}:
            _DEGRADED.inc(method, cause)


def count_journeys(changes: Iterable[JourneyChange]) -> None:
    """Count applied journey changes by journey and kind."""
    for change in changes:
        _JOURNEYS.inc(change.journey, change.kind)
