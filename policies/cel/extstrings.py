"""The CEL strings extension (cel-go ``ext.Strings``): declarations and implementations.

Indexes and lengths count Unicode code points, as ``size`` does. Out-of-range
positions are errors, never clamped. Every implementation checks its
arguments' runtime types (the fast body may call it with ``dyn`` operands)
and raises "no such overload" on a mismatch; work that grows with the
arguments is charged by the code generator (see :mod:`.cost`: ``replace``,
``join`` and ``format`` by an estimate of their output, the others by their
arguments' sizes).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

from . import conversions as conv
from .env import FunctionDecl, Overload
from .errors import EvalError
from .runtime import DEFAULT_MAX_SIZE, no_such_overload
from .types import DYN, INT, STRING, ListType, Type
from .values import BoolKey, Duration, Timestamp, TypeValue, UInt, type_name

__all__ = ["STRING_FUNCTIONS", "format_string", "quote"]

_LIST_STRING: Final = ListType(STRING)
_LIST_DYN: Final = ListType(DYN)
# Unicode White_Space (Go's unicode.IsSpace, used by cel-go's trim). Python's
# str.strip() would also strip U+001C..U+001F, which are not white space.
_WHITE_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_UPPER: Final = str.maketrans("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _str(name: str, *args: object) -> None:
    for arg in args:
        if type(arg) is not str:
            raise no_such_overload(name, *args)


def _int(name: str, value: object, *args: object) -> int:
    if type(value) is not int:
        raise no_such_overload(name, *args)
    return value


def _check_size(text: str) -> str:
    if len(text) > DEFAULT_MAX_SIZE:
        raise EvalError(f"string too long: {len(text)} characters (limit {DEFAULT_MAX_SIZE})")
    return text


def char_at(s: object, i: object) -> str:
    _str("charAt", s)
    pos = _int("charAt", i, s, i)
    if pos < 0:
        raise EvalError("<string>.charAt(<pos>): <pos> is less than 0")
    text: str = s  # type: ignore[assignment]
    if pos > len(text):
        raise EvalError("<string>.charAt(<pos>): <pos> is greater than <string>.size()")
    return text[pos : pos + 1]


def index_of(s: object, sub: object, offset: object = 0) -> int:
    _str("indexOf", s, sub)
    start = _int("indexOf", offset, s, sub, offset)
    text: str = s  # type: ignore[assignment]
    if start < 0 or start > len(text):
        raise EvalError(f"index out of range: {start}")
    return text.find(sub, start)  # type: ignore[arg-type]


def last_index_of(s: object, sub: object, offset: object = None) -> int:
    _str("lastIndexOf", s, sub)
    text: str = s  # type: ignore[assignment]
    needle: str = sub  # type: ignore[assignment]
    if offset is None:
        start = len(text)
    else:
        start = _int("lastIndexOf", offset, s, sub, offset)
        if start < 0 or start > len(text):
            raise EvalError(f"index out of range: {start}")
    # The last occurrence that begins at or before ``start``.
    return text.rfind(needle, 0, start + len(needle))


def lower_ascii(s: object) -> str:
    _str("lowerAscii", s)
    return s.translate(_ASCII_LOWER)  # type: ignore[attr-defined, no-any-return]


def upper_ascii(s: object) -> str:
    _str("upperAscii", s)
    return s.translate(_ASCII_UPPER)  # type: ignore[attr-defined, no-any-return]


def replace(s: object, old: object, new: object, n: object = -1) -> str:
    _str("replace", s, old, new)
    count = _int("replace", n, s, old, new, n)
    text: str = s  # type: ignore[assignment]
    return _check_size(text.replace(old, new, count if count >= 0 else -1))  # type: ignore[arg-type]


def split(s: object, sep: object, n: object = -1) -> list[str]:
    _str("split", s, sep)
    limit = _int("split", n, s, sep, n)
    text: str = s  # type: ignore[assignment]
    if limit == 0:
        return []
    if sep == "":
        chars = list(text)
        if 0 < limit < len(chars):
            return [*chars[: limit - 1], "".join(chars[limit - 1 :])]
        return chars
    return text.split(sep, limit - 1 if limit > 0 else -1)  # type: ignore[arg-type]


def substring(s: object, start: object, end: object = None) -> str:
    _str("substring", s)
    text: str = s  # type: ignore[assignment]
    first = _int("substring", start, s, start)
    last = len(text) if end is None else _int("substring", end, s, start, end)
    if first < 0:
        raise EvalError("<string>.substring(<start>, <end>): <start> is less than 0")
    if first > len(text) or last > len(text):
        raise EvalError(
            "<string>.substring(<start>, <end>): <start> or <end> is greater than <string>.size()"
        )
    if last < first:
        raise EvalError("<string>.substring(<start>, <end>): <end> is less than <start>")
    return text[first:last]


def trim(s: object) -> str:
    _str("trim", s)
    return s.strip(_WHITE_SPACE)  # type: ignore[attr-defined, no-any-return]


def join(seq: object, sep: object = "") -> str:
    _str("join", sep)
    if type(seq) not in (list, tuple):
        raise no_such_overload("join", seq, sep)
    for item in seq:  # type: ignore[attr-defined]
        if type(item) is not str:
            raise EvalError(f"join: list element is {type_name(item)}, not string")
    return _check_size(str(sep).join(seq))  # type: ignore[arg-type]


def reverse(s: object) -> str:
    _str("reverse", s)
    return s[::-1]  # type: ignore[index, no-any-return]


_QUOTE_ESCAPES: Final = str.maketrans(
    {
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
        "\\": "\\\\",
        '"': '\\"',
    }
)


def quote(s: object) -> str:
    """``strings.quote``: the string as a double-quoted CEL literal (escaping
    only the control characters with a short escape, ``\\`` and ``"``)."""
    _str("strings.quote", s)
    return '"' + str(s).translate(_QUOTE_ESCAPES) + '"'


# --------------------------------------------------------------------------
# format


def _plain(value: object) -> str:
    """A value as ``%s`` renders it: strings unquoted, scalars as
    ``string()`` converts them, lists and maps element-wise (map entries
    sorted by their rendered key)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bytes:
        return conv.bytes_to_string(value)
    if value is None:
        return "null"
    if kind is float:
        return _special_double(value) or conv.format_double(value)  # type: ignore[arg-type]
    if kind in (bool, int, UInt, Timestamp, Duration):
        return conv.to_string(value)
    if kind is TypeValue:
        return value.name  # type: ignore[attr-defined, no-any-return]
    if kind is BoolKey:
        return conv.to_string(value.value)  # type: ignore[attr-defined]
    if kind in (list, tuple):
        return "[" + ", ".join(_plain(item) for item in value) + "]"  # type: ignore[attr-defined]
    if kind is dict:
        entries = sorted(
            (_plain(k), _plain(v))
            for k, v in value.items()  # type: ignore[attr-defined]
        )
        return "{" + ", ".join(f"{k}: {v}" for k, v in entries) + "}"
    raise EvalError(
        f"string clause can only be used on printable values, was given {type_name(value)}"
    )


def _special_double(d: float) -> str | None:
    if math.isnan(d):
        return "NaN"
    if math.isinf(d):
        return "Infinity" if d > 0 else "-Infinity"
    return None


def _as_double(value: object, clause: str) -> float:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[return-value]
    if kind in (int, UInt):
        return float(value)  # type: ignore[arg-type]
    if kind is str and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    raise EvalError(f"{clause} clause can only be used on doubles, was given {type_name(value)}")


def _integer(value: object, clause: str, *, allow_bool: bool = False) -> int:
    kind = type(value)
    if kind is int or kind is UInt:
        return int(value)  # type: ignore[call-overload, no-any-return]
    if allow_bool and kind is bool:
        return int(value)  # type: ignore[call-overload, no-any-return]
    raise EvalError(f"{clause} clause can only be used on integers, was given {type_name(value)}")


def _radix(value: object, verb: str) -> str:
    if verb in "xX" and type(value) in (str, bytes):
        data = value.encode("utf-8") if isinstance(value, str) else value
        text = bytes(data).hex()  # type: ignore[call-overload]
    else:
        name = {"b": "binary", "o": "octal", "x": "hex", "X": "hex"}[verb]
        number = _integer(value, name, allow_bool=verb == "b")
        spec = {"b": "b", "o": "o", "x": "x", "X": "x"}[verb]
        text = format(number, spec)
    return str(text).upper() if verb == "X" else str(text)


def _fixed(value: object, precision: int) -> str:
    d = _as_double(value, "fixed-point")
    return _special_double(d) or f"{d:.{precision}f}"


def _scientific(value: object, precision: int) -> str:
    d = _as_double(value, "scientific")
    return _special_double(d) or f"{d:.{precision}e}"


def _decimal(value: object) -> str:
    return str(_integer(value, "decimal"))


_MAX_PRECISION: Final = 100


def format_string(fmt: object, args: object) -> str:
    """``"...".format([args])``: ``%s``, ``%d``, ``%f``, ``%e``, ``%b``,
    ``%o``, ``%x``, ``%X`` and ``%%``; ``%.Nf`` / ``%.Ne`` set the precision
    (default 6). An argument index past the list, an unknown verb or a value
    of the wrong type for its verb is an error."""
    if type(fmt) is not str or type(args) not in (list, tuple):
        raise no_such_overload("format", fmt, args)
    text: str = fmt
    items: list[object] = list(args)  # type: ignore[call-overload]
    out: list[str] = []
    i = 0
    n = 0
    size = 0
    length = len(text)
    while i < length:
        ch = text[i]
        if ch != "%":
            j = text.find("%", i)
            j = length if j < 0 else j
            out.append(text[i:j])
            size += j - i
            i = j
            continue
        i += 1
        if i >= length:
            raise EvalError("unexpected end of format string")
        if text[i] == "%":
            out.append("%")
            i += 1
            continue
        precision: int | None = None
        if text[i] == ".":
            j = i + 1
            while j < length and text[j].isdigit() and text[j].isascii():
                j += 1
            if j == i + 1:
                raise EvalError("unable to find end of precision specifier")
            precision = int(text[i + 1 : j])
            if precision > _MAX_PRECISION:
                raise EvalError(f"precision {precision} is larger than {_MAX_PRECISION}")
            i = j
            if i >= length:
                raise EvalError("unexpected end of format string")
        verb = text[i]
        i += 1
        if verb not in "sdfebxXo":
            raise EvalError(f'unrecognized formatting clause "{verb}"')
        if n >= len(items):
            raise EvalError(f"index {n} out of range")
        value = items[n]
        n += 1
        if verb == "s":
            piece = _plain(value)
        elif verb == "d":
            piece = _decimal(value)
        elif verb == "f":
            piece = _fixed(value, 6 if precision is None else precision)
        elif verb == "e":
            piece = _scientific(value, 6 if precision is None else precision)
        else:
            piece = _radix(value, verb)
        out.append(piece)
        size += len(piece)
        if size > DEFAULT_MAX_SIZE:
            raise EvalError(f"string too long: over {DEFAULT_MAX_SIZE} characters")
    return "".join(out)


def _o(
    overload_id: str, params: tuple[Type, ...], result: Type, impl: Callable[..., object]
) -> Overload:
    return Overload(overload_id, params, result, impl, receiver=True)


STRING_FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "charAt",
        (_o("string_char_at_int", (STRING, INT), STRING, char_at),),
        "The code point at a position as a string; the size itself gives ''.",
    ),
    FunctionDecl(
        "indexOf",
        (
            _o("string_index_of_string", (STRING, STRING), INT, index_of),
            _o("string_index_of_string_int", (STRING, STRING, INT), INT, index_of),
        ),
        "Code-point index of the first occurrence (from an offset), or -1.",
    ),
    FunctionDecl(
        "lastIndexOf",
        (
            _o("string_last_index_of_string", (STRING, STRING), INT, last_index_of),
            _o("string_last_index_of_string_int", (STRING, STRING, INT), INT, last_index_of),
        ),
        "Code-point index of the last occurrence (starting at or before an offset), or -1.",
    ),
    FunctionDecl(
        "lowerAscii",
        (_o("string_lower_ascii", (STRING,), STRING, lower_ascii),),
        "ASCII letters to lower case; other characters unchanged.",
    ),
    FunctionDecl(
        "upperAscii",
        (_o("string_upper_ascii", (STRING,), STRING, upper_ascii),),
        "ASCII letters to upper case; other characters unchanged.",
    ),
    FunctionDecl(
        "replace",
        (
            _o("string_replace_string_string", (STRING, STRING, STRING), STRING, replace),
            _o(
                "string_replace_string_string_int",
                (STRING, STRING, STRING, INT),
                STRING,
                replace,
            ),
        ),
        "Replace occurrences (all, or the first n; n < 0 means all).",
    ),
    FunctionDecl(
        "split",
        (
            _o("string_split_string", (STRING, STRING), _LIST_STRING, split),
            _o("string_split_string_int", (STRING, STRING, INT), _LIST_STRING, split),
        ),
        "Split by a separator (at most n parts; n = 0 gives []; '' splits into code points).",
    ),
    FunctionDecl(
        "substring",
        (
            _o("string_substring_int", (STRING, INT), STRING, substring),
            _o("string_substring_int_int", (STRING, INT, INT), STRING, substring),
        ),
        "The code points [start, end); out-of-range positions are errors.",
    ),
    FunctionDecl(
        "trim",
        (_o("string_trim", (STRING,), STRING, trim),),
        "Strip leading and trailing Unicode white space.",
    ),
    FunctionDecl(
        "join",
        (
            _o("list_join", (_LIST_STRING,), STRING, join),
            _o("list_join_string", (_LIST_STRING, STRING), STRING, join),
        ),
        "Concatenate a list of strings, with an optional separator.",
    ),
    FunctionDecl(
        "reverse",
        (_o("string_reverse", (STRING,), STRING, reverse),),
        "The code points in reverse order.",
    ),
    FunctionDecl(
        "strings.quote",
        (Overload("strings_quote", (STRING,), STRING, quote),),
        "The string as a double-quoted, escaped literal.",
    ),
    FunctionDecl(
        "format",
        (_o("string_format", (STRING, _LIST_DYN), STRING, format_string),),
        "printf-style formatting: %s %d %f %e %b %o %x %X %%, precision as %.3f.",
    ),
)
"""The strings extension's functions (``strings.quote`` is global, the rest are methods)."""
