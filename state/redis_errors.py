"""Which Redis failures are outages (unavailable: fail safe, count for the breaker) and which are bugs.

redis-py strips the code from an error reply -- ``-OOM command not allowed``
arrives as ``OutOfMemoryError("command not allowed ...")`` -- and keeps it in
``status_code`` (and in the exception class), so replies are classified by
code, never by the message text:

===========================================  ===========  =========================================
failure                                      class        why
===========================================  ===========  =========================================
timeout, connection refused / reset,         unavailable  the server is away, slow or overloaded
too many clients, authentication
``LOADING`` ``BUSY``                         unavailable  the server cannot answer now
``OOM`` ``READONLY`` ``MISCONF``             unavailable  the server cannot take writes now (full,
``NOREPLICAS``                                            a replica, failing persistence, replicas
                                                          missing)
``CLUSTERDOWN`` ``MASTERDOWN`` ``TRYAGAIN``  unavailable  the cluster or a shard is failing over,
``MOVED`` ``ASK`` (redirections left over),               resharding or down
slot not covered, cluster unreachable
``NOSCRIPT`` (after the ``EVAL`` fallback)   unavailable  the server cannot run scripts (a proxy)
``CROSSSLOT``, keys in different slots       bug          Arbiter sent a call it must never send
any other reply (``ERR``, ``WRONGTYPE``...)  bug          a script or key layout error
===========================================  ===========  =========================================

A bug must fail loudly (``StoreError`` -> ``INTERNAL`` with a reference) and
must not open the circuit breaker: the server is fine, and every other
customer's calls must go on.
"""

from __future__ import annotations

from typing import Final

from redis import exceptions as rex

__all__ = ["UNAVAILABLE_CODES", "reply_code", "unavailable_reason"]

UNAVAILABLE_CODES: Final = frozenset(
    {
        "ASK",
        "BUSY",
        "CLUSTERDOWN",
        "LOADING",
        "MASTERDOWN",
        "MISCONF",
        "MOVED",
        "NOREPLICAS",
        "NOSCRIPT",
        "OOM",
        "READONLY",
        "TRYAGAIN",
    }
)

# For replies whose exception lost its status code (older redis-py): the class says it.
_CLASS_CODES: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (rex.OutOfMemoryError, "OOM"),
    (rex.ReadOnlyError, "READONLY"),
    (rex.MasterDownError, "MASTERDOWN"),
    (rex.ClusterDownError, "CLUSTERDOWN"),
    (rex.TryAgainError, "TRYAGAIN"),
    (rex.MovedError, "MOVED"),
    (rex.AskError, "ASK"),
    (rex.NoScriptError, "NOSCRIPT"),
    (rex.BusyLoadingError, "LOADING"),
    (rex.ClusterCrossSlotError, "CROSSSLOT"),
)


def reply_code(exc: BaseException) -> str:
    """The error code of a Redis error reply (``OOM``, ``READONLY``, ``ERR`` ...)."""
    code = getattr(exc, "status_code", None)
    if isinstance(code, str) and code:
        return code
    for kind, name in _CLASS_CODES:
        if isinstance(exc, kind):
            return name
    head = str(exc).split(" ", 1)[0]
    return head if head.isalpha() and head.isupper() else "ERR"


def unavailable_reason(exc: BaseException) -> str | None:
    """A short reason when ``exc`` means "the store cannot serve now"; ``None`` when it is a bug."""
    if isinstance(exc, TimeoutError | rex.TimeoutError):
        return "timeout"
    if isinstance(exc, rex.ClusterCrossSlotError | rex.CrossSlotTransactionError):
        return None
    if isinstance(exc, rex.ResponseError | rex.BusyLoadingError):
        code = reply_code(exc)
        return code if code in UNAVAILABLE_CODES else None
    if isinstance(exc, rex.RedisClusterException):
        # redis-py raises this base class both for "no node answers" and, before sending
        # anything, for keys that do not map to one slot (our bug).
        return None if "same key slot" in str(exc) else type(exc).__name__
    if isinstance(exc, rex.ConnectionError | OSError):
        return type(exc).__name__
    return None
