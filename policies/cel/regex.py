"""CEL ``matches``: RE2 regular expressions (linear-time matching, via google-re2)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import re2

from .errors import CostLimitError, EvalError
from .runtime import no_such_overload

__all__ = ["DEFAULT_MAX_REGEX_LENGTH", "matches"]

DEFAULT_MAX_REGEX_LENGTH: Final = 1_024  # == Limits.max_regex_length

_RE2_OPTIONS: Final = re2.Options()
_RE2_OPTIONS.log_errors = False  # errors become EvalError, not stderr noise
_RE2_OPTIONS.never_capture = True  # only "is there a match" is asked
_RE2_UNANCHORED: Final[Any] = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
_RE2_NO_MATCH: Final[Any] = getattr(re2, "_NULL_SPAN", None)


@functools.lru_cache(maxsize=512)
def _compile_regex(pattern: str) -> Callable[[str], bool]:
    """A search predicate for ``pattern``; bounded LRU of compiled patterns.
    Compile errors are not cached (lru_cache does not cache exceptions)."""
    try:
        compiled = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise EvalError(f"invalid regular expression: {detail}") from exc
    match = getattr(getattr(compiled, "_regexp", None), "Match", None)
    if match is None or _RE2_UNANCHORED is None or _RE2_NO_MATCH is None:
        # The public API: about ten times slower (it builds match objects
        # and maps byte offsets back to characters).
        search = compiled.search
        return lambda text: search(text) is not None

    # google-re2's binding under the public API: one C call per search.
    def predicate(text: str) -> bool:
        encoded = text.encode("utf-8")
        spans = match(_RE2_UNANCHORED, encoded, 0, len(encoded))
        return bool(spans[0] != _RE2_NO_MATCH)

    return predicate


def matches(s: object, pattern: object, max_length: int = DEFAULT_MAX_REGEX_LENGTH) -> bool:
    """RE2 partial match (``'hubba'.matches('ubb')`` is true); linear time.
    Patterns longer than ``max_length`` raise :class:`CostLimitError`."""
    if type(s) is str and type(pattern) is str:
        if len(pattern) > max_length:
            raise CostLimitError(f"regular expression longer than {max_length} characters")
        search = _compile_regex(pattern)
        try:
            return search(s)
        except UnicodeEncodeError as exc:  # lone surrogates: not valid text
            raise EvalError("invalid UTF-8 in matches() argument") from exc
    raise no_such_overload("matches", s, pattern)
