"""The engine: evaluates a compiled plan (:mod:`arbiter.policies.plan`) and never imports the compiler.

One module per pipeline stage -- :mod:`.timers`, :mod:`.candidates`,
:mod:`.filters`, :mod:`.holdouts`, :mod:`.arbitration`, :mod:`.result` --
run in order by :func:`decide` (:mod:`.pipeline`); :mod:`.facts` holds the
lazily computed facts of one decision. :func:`check` answers a Check,
:func:`apply_event` a tracked event (:mod:`.events`), and :func:`settle`
folds what the store could read and commit into the final answer.
Everything here is pure: no clock, no I/O.
"""

from __future__ import annotations

from .check import check, precheck
from .events import Event, StateUnavailableError, apply_event
from .pipeline import decide
from .result import decision_id
from .settle import StoreReport, decode_decision, encode_decision, settle
from .timers import advance_timers
from .wakeups import next_wake_ms, with_wakeups

__all__ = [
    "Event",
    "StateUnavailableError",
    "StoreReport",
    "advance_timers",
    "apply_event",
    "check",
    "decide",
    "decision_id",
    "decode_decision",
    "encode_decision",
    "next_wake_ms",
    "precheck",
    "settle",
    "with_wakeups",
]
