"""Contract values -> CEL runtime values: the converter each compiled field carries, and static type checks.

A snapshot or request holds JSON-like values (instants and spans as epoch /
span milliseconds, see :mod:`arbiter.policies.snapshot`); an expression must
see the declared CEL type (``timestamp``, ``uint``, ``double`` for an integer
written into a ``double`` attribute, ...). The compiler picks one converter
per declared field (:func:`converter`) and checks YAML defaults and enum
values against the type (:func:`value_matches`).
"""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Final

from . import cel
from .cel import timefns
from .times import parse_duration_ms

__all__ = ["NS_PER_MS", "converter", "freeze", "identity", "value_matches"]

NS_PER_MS: Final = 1_000_000


def identity(value: Any) -> Any:
    """The converter of types whose runtime value is the JSON value itself."""
    return value


def _to_int(value: Any) -> Any:
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _to_float(value: Any) -> Any:
    if type(value) is int:
        return float(value)
    return value


def _to_uint(value: Any) -> Any:
    value = _to_int(value)
    return cel.UInt(value) if type(value) is int and value >= 0 else value


def _to_timestamp(value: Any) -> Any:
    if type(value) is int:
        return cel.Timestamp(value * NS_PER_MS)
    if isinstance(value, str):
        return timefns.parse_timestamp(value)
    return value


def _to_duration(value: Any) -> Any:
    if type(value) is int:
        return cel.Duration(value * NS_PER_MS)
    if isinstance(value, str):
        return cel.Duration(parse_duration_ms(value) * NS_PER_MS)
    return value


def _to_bytes(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


_CONVERTERS: Final[dict[cel.Type, Callable[[Any], Any]]] = {
    cel.INT: _to_int,
    cel.DOUBLE: _to_float,
    cel.UINT: _to_uint,
    cel.TIMESTAMP: _to_timestamp,
    cel.DURATION: _to_duration,
    cel.BYTES: _to_bytes,
}


def converter(t: cel.Type) -> Callable[[Any], Any]:
    """The snapshot / request value -> CEL runtime value function of a declared type."""
    return _CONVERTERS.get(t, identity)


def value_matches(t: cel.Type, value: Any) -> bool:
    """Static check of a YAML default / enum value against a declared type."""
    if t == cel.DYN:
        return True
    if t == cel.STRING:
        return isinstance(value, str)
    if t == cel.BOOL:
        return isinstance(value, bool)
    if t in (cel.INT, cel.UINT):
        return type(value) is int and (t == cel.INT or value >= 0)
    if t == cel.DOUBLE:
        return type(value) in (int, float)
    if t in (cel.TIMESTAMP, cel.DURATION, cel.BYTES):
        return isinstance(value, str)
    if isinstance(t, cel.ListType):
        return isinstance(value, list) and all(value_matches(t.elem, v) for v in value)
    if isinstance(t, cel.MapType):
        return isinstance(value, dict) and all(value_matches(t.value, v) for v in value.values())
    return False


def freeze(value: Any) -> Any:
    """A read-only deep copy: dicts become ``MappingProxyType``, lists tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value
