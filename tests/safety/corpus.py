"""The escape-and-bomb corpus for the CEL compiler, as data.

Every :class:`Case` is one hostile (or hostile-looking) expression with its
declarations, its activation and what must happen:

- ``compile_error``: :func:`policies.cel.compile` raises ``CompileError``;
- ``eval_error``: it compiles, and ``Program.evaluate`` raises ``EvalError``
  (``CostLimitError`` included);
- ``value``: it compiles and evaluates to exactly ``value`` (CEL type
  included) -- for escape attempts that are legitimate CEL, e.g. a string
  that merely *contains* ``__import__('os')``, or a map key named
  ``__class__``.

``expect`` may list several outcomes where the CEL specification leaves the
choice to the implementation (an unchecked call of an unknown function fails
either when planning or when running; ``1e999999`` is ``+inf`` in cel-cpp but
an error in cel-go; a very deep but legal expression may be rejected by a
size bound or evaluated). Whatever the outcome, it must be reached within the
time budget and no other exception may escape.

Large inputs (a 10 MB literal, a million-element list) are built lazily and
cached, so building them is never timed and importing this module is cheap.
The test driver is ``test_cel_safety.py``.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from arbiter.policies.cel import (
    BOOL,
    BYTES,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    Env,
    Limits,
    ListType,
    MapType,
    OpaqueType,
    Type,
)
from arbiter.policies.cel.values import INT64_MAX, INT64_MIN, UINT64_MAX, Timestamp, UInt

__all__ = [
    "CASES",
    "CATEGORIES",
    "HOST_ACCESS_LOG",
    "Case",
    "HostCanary",
]

Outcome = Literal["compile_error", "eval_error", "value"]
OUTCOMES: Final = ("compile_error", "eval_error", "value")
ERROR: Final[tuple[Outcome, ...]] = ("compile_error", "eval_error")


class _NoValue:
    def __repr__(self) -> str:
        return "<no value>"


NO_VALUE: Final = _NoValue()

CATEGORIES: Final = {
    "dunder": "Python dunder and attribute escapes",
    "helper-names": "names of the generated code's internals used as CEL identifiers",
    "builtins": "calls of Python builtins and methods that CEL does not have",
    "injection": "Python syntax smuggled through strings, identifiers and lexemes",
    "map-select": "field selection on maps: a key named __class__ is just a key",
    "host-object": "dyn/opaque variables bound to Python objects",
    "format": "format-string attempts",
    "huge-literal": "oversized literals",
    "deep-nesting": "deep nesting of every nestable construct",
    "long-chain": "long ||, &&, + and - chains",
    "comprehension-bomb": "nested and oversized comprehensions (iteration budget)",
    "value-bomb": "runtime value growth and per-iteration amplification",
    "regex": "catastrophic, oversized and non-RE2 regular expressions",
    "conversion": "numeric conversions and arithmetic at the edges",
    "time": "timestamps, durations and time zones at the edges",
    "utf8": "invalid UTF-8 and unusual code points",
    "keyword-names": "Python keywords and builtins as legitimate CEL names",
    "activation": "hostile shapes in the activation data",
    "limits-raised": "defence in depth: the same bombs with the length bound raised",
    "limits-honored": "every Limits field, tightened, is the bound that applies",
}


@dataclass(frozen=True)
class Case:
    """One corpus entry; see the module docstring for the outcomes."""

    id: str
    category: str
    expr: str | Callable[[], str]
    expect: tuple[Outcome, ...]
    value: object = NO_VALUE
    variables: Mapping[str, Type] = field(default_factory=dict)
    activation: Mapping[str, object] | Callable[[], Mapping[str, object]] = field(
        default_factory=dict
    )
    checked: bool = True
    limits: Limits | None = None
    # None: the product budget (10 ms; the benchmark reports it, the test
    # caps steps instead). Only the "limits-raised" cases, whose inputs are
    # up to 600x the default length bound, get a larger one (and a 100x step
    # cap): for them the point is "no crash, no hang".
    budget_ms: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        assert self.category in CATEGORIES, self.category
        assert self.expect and set(self.expect) <= set(OUTCOMES), self.expect
        assert ("value" in self.expect) == (self.value is not NO_VALUE), self.id

    def source(self) -> str:
        return self.expr() if callable(self.expr) else self.expr

    def make_activation(self) -> Mapping[str, object]:
        return self.activation() if callable(self.activation) else self.activation

    def env(self) -> Env:
        return Env(
            variables=dict(self.variables),
            limits=self.limits or Limits(),
            disable_check=not self.checked,
        )


CASES: list[Case] = []


def _add(
    id: str,
    category: str,
    expr: str | Callable[[], str],
    expect: Outcome | tuple[Outcome, ...],
    value: object = NO_VALUE,
    **kwargs: object,
) -> None:
    outcomes = (expect,) if isinstance(expect, str) else expect
    if any(case.id == id for case in CASES):
        raise ValueError(f"duplicate corpus id {id}")
    CASES.append(Case(id, category, expr, outcomes, value, **kwargs))  # type: ignore[arg-type]


def _both(
    id: str,
    category: str,
    expr: str,
    *,
    unchecked: Outcome | tuple[Outcome, ...] = "eval_error",
    **kwargs: object,
) -> None:
    """A name/function that does not exist: a compile error when checked;
    unchecked, an evaluation error (unknown variables), or either for unknown
    functions (the plan or the run may reject them)."""
    _add(f"{id}-checked", category, expr, "compile_error", **kwargs)
    _add(f"{id}-unchecked", category, expr, unchecked, checked=False, **kwargs)


# ---------------------------------------------------------------------------
# Host objects: Python values bound under dyn / opaque types. Every hook
# records its use; the test asserts the log stays empty, so a runtime that
# touches a host object's Python protocol (getattr, len, iter, bool, str,
# ...) is caught even when it ends up raising the right error.

HOST_ACCESS_LOG: list[str] = []


class HostCanary:
    """Not a CEL value. ``secret`` is a real attribute, so ``getattr`` would
    find it; everything else records and fails."""

    def __repr__(self) -> str:  # safe to call: used by failure messages
        return "<HostCanary>"

    @property
    def secret(self) -> int:
        HOST_ACCESS_LOG.append("secret")
        return 42

    def __getattr__(self, name: str) -> object:
        HOST_ACCESS_LOG.append(f"__getattr__({name})")
        raise AttributeError(name)

    def __getitem__(self, key: object) -> int:
        HOST_ACCESS_LOG.append(f"__getitem__({key!r})")
        return 42

    def __len__(self) -> int:
        HOST_ACCESS_LOG.append("__len__")
        return 7

    def __iter__(self) -> object:
        HOST_ACCESS_LOG.append("__iter__")
        return iter(["secret"])

    def __contains__(self, item: object) -> bool:
        HOST_ACCESS_LOG.append("__contains__")
        return True

    def __bool__(self) -> bool:
        HOST_ACCESS_LOG.append("__bool__")
        return True

    def __str__(self) -> str:
        HOST_ACCESS_LOG.append("__str__")
        return "secret"

    def __format__(self, spec: str) -> str:
        HOST_ACCESS_LOG.append("__format__")
        return "secret"

    def __int__(self) -> int:
        HOST_ACCESS_LOG.append("__int__")
        return 42

    def __float__(self) -> float:
        HOST_ACCESS_LOG.append("__float__")
        return 42.0

    def __index__(self) -> int:
        HOST_ACCESS_LOG.append("__index__")
        return 42

    def __call__(self, *args: object) -> int:
        HOST_ACCESS_LOG.append("__call__")
        return 42

    def __add__(self, other: object) -> int:
        HOST_ACCESS_LOG.append("__add__")
        return 42

    __radd__ = __add__

    # Comparisons: generated code must never hand a host object to Python's
    # operators (the compiler inlines some comparisons of dyn values).
    def __eq__(self, other: object) -> bool:
        HOST_ACCESS_LOG.append("__eq__")
        return True

    def __ne__(self, other: object) -> bool:
        HOST_ACCESS_LOG.append("__ne__")
        return False

    def __lt__(self, other: object) -> bool:
        HOST_ACCESS_LOG.append("__lt__")
        return True

    def __le__(self, other: object) -> bool:
        HOST_ACCESS_LOG.append("__le__")
        return True

    def __gt__(self, other: object) -> bool:
        HOST_ACCESS_LOG.append("__gt__")
        return True

    def __ge__(self, other: object) -> bool:
        HOST_ACCESS_LOG.append("__ge__")
        return True

    __hash__ = object.__hash__


def _recording_system(command: object) -> int:
    HOST_ACCESS_LOG.append(f"system({command!r})")
    return 0


def _fake_os() -> types.ModuleType:
    module = types.ModuleType("os")
    module.system = _recording_system  # type: ignore[attr-defined]
    module.environ = {"SECRET": "hunter2"}  # type: ignore[attr-defined]
    return module


def _host_lambda() -> object:
    return lambda: 42


# ---------------------------------------------------------------------------
# Lazily built large inputs (built outside the timed region, cached).


@functools.cache
def _text(char: str, n: int, suffix: str = "") -> str:
    return char * n + suffix


@functools.cache
def _int_list(n: int) -> list[int]:
    return list(range(n))


@functools.cache
def _big_map(n: int) -> dict[str, int]:
    return {f"k{i}": i for i in range(n)}


@functools.cache
def _nested_list(depth: int) -> list[object]:
    value: list[object] = [1]
    for _ in range(depth):
        value = [value]
    return value


@functools.cache
def _nested_map(depth: int, key: str = "b") -> dict[str, object]:
    value: object = 1
    for _ in range(depth):
        value = {key: value}
    return value  # type: ignore[return-value]


def _lazy(builder: Callable[[], str]) -> Callable[[], str]:
    return functools.cache(builder)


def _repeat_join(term: str, op: str, n: int) -> Callable[[], str]:
    return _lazy(lambda: op.join([term] * n))


def _literal_list(n: int, item: str = "1") -> Callable[[], str]:
    return _lazy(lambda: "[" + ",".join([item] * n) + "]")


def _seq(n: int) -> str:
    return "[" + ", ".join(str(i) for i in range(1, n + 1)) + "]"


TS_ZERO: Final = 'timestamp("2000-01-01T00:00:00Z")'
NS: Final = 1_000_000_000
EPOCH_2000: Final = 946_684_800

# ===========================================================================
# dunder: Python dunder and attribute escapes

_both("dunder-import-os", "dunder", '__import__("os")', unchecked=ERROR)
_both("dunder-import-os-system", "dunder", "__import__('os').system('id')", unchecked=ERROR)
_both("dunder-builtins", "dunder", "__builtins__")
_both("dunder-builtins-open", "dunder", "__builtins__.open")
_both("dunder-builtins-index", "dunder", '__builtins__["open"]')
_both("dunder-class-ident", "dunder", "__class__")
_both("dunder-string-class", "dunder", '"".__class__')
_both("dunder-list-class", "dunder", "[].__class__")
_both("dunder-int-class", "dunder", "1.__class__")
_both("dunder-paren-int-real", "dunder", "(1).real")
_both("dunder-type-dict", "dunder", "type(1).__dict__")
_both("dunder-type-name", "dunder", "type(1).name", note="TypeValue has a Python .name")
_both("dunder-int-type-name", "dunder", "int.__name__")
_both("dunder-int-subclasses", "dunder", "int.__subclasses__()", unchecked=ERROR)
_both(
    "dunder-tuple-subclasses",
    "dunder",
    "().__class__.__bases__[0].__subclasses__()",
    unchecked="compile_error",
)
_add(
    "dunder-dyn-class",
    "dunder",
    "x.__class__",
    "eval_error",
    variables={"x": DYN},
    activation={"x": 1},
)
_add(
    "dunder-dyn-class-mro",
    "dunder",
    "x.__class__.__mro__",
    "eval_error",
    variables={"x": DYN},
    activation={"x": ""},
)
_add(
    "dunder-dyn-subclasses-call",
    "dunder",
    "x.__class__.__bases__[0].__subclasses__()",
    "compile_error",
    variables={"x": DYN},
    activation={"x": 1},
)
_add(
    "dunder-dyn-subclasses-call-unchecked",
    "dunder",
    "x.__class__.__bases__[0].__subclasses__()",
    ERROR,
    activation={"x": 1},
    checked=False,
)
_add(
    "dunder-dyn-init-globals",
    "dunder",
    "x.__init__.__globals__",
    "eval_error",
    variables={"x": DYN},
    activation={"x": {}},
)
_add(
    "dunder-dyn-getattribute-call",
    "dunder",
    'x.__getattribute__("__class__")',
    "compile_error",
    variables={"x": DYN},
    activation={"x": {}},
)
_add(
    "dunder-dyn-reduce-ex",
    "dunder",
    "x.__reduce_ex__(2)",
    "compile_error",
    variables={"x": DYN},
    activation={"x": []},
)
_add(
    "dunder-dyn-wrapped-dict",
    "dunder",
    "dyn(x).__dict__",
    "eval_error",
    variables={"x": DYN},
    activation={"x": {"a": 1}},
)
_add(
    "dunder-has-class-on-map",
    "dunder",
    "has(x.__class__)",
    "value",
    False,
    variables={"x": DYN},
    activation={"x": {"a": 1}},
)
_add(
    "dunder-has-class-on-int",
    "dunder",
    "has(x.__class__)",
    "eval_error",
    variables={"x": DYN},
    activation={"x": 1},
)
_both("dunder-lambda", "dunder", "lambda: 1", unchecked="compile_error")
_add(
    "dunder-map-literal-class",
    "dunder",
    "{}.__class__",
    "eval_error",
    note="select on an empty map: no such key, not dict's class",
)
_add(
    "dunder-index-class-name",
    "dunder",
    '[x][0]["__class__"]',
    "eval_error",
    variables={"x": DYN},
    activation={"x": {}},
)

# ===========================================================================
# helper-names: identifiers that name the generated code's internals (the
# real ones: _a, _b, _cN, _vN, _factory, _strict, _evaluate, _CelError,
# _EvalError, _wrap, exc, and the whitelisted builtins all/any/sum/len/
# Exception/RecursionError), plus typical guesses. Undeclared they are unknown
# identifiers; declared, they are ordinary variables with the activation's
# value, never the Python object of the same name.

_HELPER_NAMES: Final = (
    "_a",
    "_b",
    "_c0",
    "_c1",
    "_v1",
    "_v2",
    "_factory",
    "_strict",
    "_evaluate",
    "_CelError",
    "_EvalError",
    "_wrap",
    "exc",
    "all",
    "any",
    "sum",
    "len",
    "Exception",
    "RecursionError",
    "_rt",
    "_act",
    "_env",
    "_ctx",
    "self",
    "activation",
    "_",
    "__name__",
    "__file__",
    "__spec__",
    "__loader__",
    "runtime",
    "evalsupport",
    "re2",
    "os",
    "sys",
)

for _index, _name in enumerate(_HELPER_NAMES):
    _both(f"helper-{_name}", "helper-names", _name)
    _add(
        f"helper-{_name}-declared",
        "helper-names",
        f"{_name} + 1",
        "value",
        1000 + _index + 1,
        variables={_name: INT},
        activation={_name: 1000 + _index},
    )
    _add(
        f"helper-{_name}-iter-var",
        "helper-names",
        f"[1, 2].map({_name}, {_name} * 10)",
        "value",
        [10, 20],
    )
_add(
    "helper-all-declared-at-once",
    "helper-names",
    " + ".join(_HELPER_NAMES[:19]),
    "value",
    sum(range(19)),
    variables=dict.fromkeys(_HELPER_NAMES[:19], INT),
    activation={name: i for i, name in enumerate(_HELPER_NAMES[:19])},
)
_add(
    "helper-a-unchecked-bound",
    "helper-names",
    "_a + _b",
    "value",
    12,
    activation={"_a": 5, "_b": 7},
    checked=False,
)
_add(
    "helper-nested-iter-vars",
    "helper-names",
    "[1, 2].map(_v1, [3].map(_v2, [_v1, _v2, _c0]))",
    "value",
    [[[1, 3, 9]], [[2, 3, 9]]],
    variables={"_c0": INT},
    activation={"_c0": 9},
)
_add(
    "helper-shadowing-iter-vars",
    "helper-names",
    "[1, 2].map(x, [3, 4].map(x, x))",
    "value",
    [[3, 4], [3, 4]],
)
_both("helper-result-accumulator", "helper-names", "[1, 2].map(x, __result__)")
_add("helper-at-result", "helper-names", "[1, 2].map(x, @result)", "compile_error")
_add("helper-at-it", "helper-names", "[1, 2].exists(x, @it)", "compile_error")

# ===========================================================================
# builtins: Python builtins and methods CEL does not have

_BUILTIN_CALLS: Final = {
    "eval": 'eval("1")',
    "exec": 'exec("import os")',
    "open": 'open("/etc/passwd")',
    "open-read": 'open("/etc/passwd").read()',
    "getattr": 'getattr(x, "__class__")',
    "setattr": 'setattr(x, "y", 1)',
    "globals": "globals()",
    "locals": "locals()",
    "vars": "vars()",
    "dir": "dir()",
    "compile": 'compile("1", "", "eval")',
    "breakpoint": "breakpoint()",
    "print": 'print("x")',
    "input": "input()",
    "len": "len([1])",
    "all": "all([true])",
    "sum": "sum([1, 2])",
    "exception": 'Exception("x")',
    "object": "object()",
    "str-join": '"".join(["a", "b"])',
    "str-upper": '"a".upper()',
    "str-encode": '"a".encode()',
    "bytes-decode": 'b"a".decode()',
    "list-append": "[1].append(2)",
    "map-keys": '{"a": 1}.keys()',
    "map-get": '{"a": 1}.get("a")',
    "map-pop": '{"a": 1}.pop("a")',
    "size-globals": "size.__globals__",
    "timestamp-nanos": f"{TS_ZERO}.nanos",
}
for _name, _expr in _BUILTIN_CALLS.items():
    _both(
        f"builtins-{_name}",
        "builtins",
        _expr,
        unchecked=ERROR,
    )

# ===========================================================================
# injection: Python syntax through strings, identifiers and lexemes

_INJECTION_VALUES: Final[dict[str, tuple[str, object]]] = {
    "dq-escaped-quotes": (
        r'"\" + __import__(\'os\').system(\'id\') + \""',
        "\" + __import__('os').system('id') + \"",
    ),
    "sq-escaped-quotes": (
        r"'\' + __import__(\"os\").system(\"id\") + \''",
        '\' + __import__("os").system("id") + \'',
    ),
    "triple-dq-newlines": (
        '"""\n__import__(\'os\').system(\'id\')\n"""',
        "\n__import__('os').system('id')\n",
    ),
    "triple-sq-breakout": (
        "'''\"); __import__('os').system('id'); (\"'''",
        "\"); __import__('os').system('id'); (\"",
    ),
    "triple-dq-inner-quotes": ('"""a"b\'\'\'c"""', "a\"b'''c"),
    "nul-escape": (r'"\x00"', "\x00"),
    "raw-nul-in-string": ('"a\x00b"', "a\x00b"),
    "line-separators": (
        r'"\u2028\u2029\x85\x0c\r\n\x1a\ufeff"',
        "\u2028\u2029\x85\x0c\r\n\x1a\ufeff",
    ),
    "raw-line-separators": ('"a\u2028b\u2029c\x85d\x0ce\x1af"', "a\u2028b\u2029c\x85d\x0ce\x1af"),
    "all-cel-escapes": (r'"\a\b\f\n\r\t\v\\\?\"\'\`"', "\a\b\f\n\r\t\v\\?\"'`"),
    "raw-string-hex": (r'r"\x41"', "\\x41"),
    "raw-bytes": (r'br"\x00"', b"\\x00"),
    "python-format-braces": (
        '"{0.__class__}{x.__init__.__globals__}%s%n"',
        "{0.__class__}{x.__init__.__globals__}%s%n",
    ),
    "map-key-breakout": (
        "{\"'] + __import__('os') + ['\": 1}[\"'] + __import__('os') + ['\"]",
        1,
    ),
    "bytes-quotes": (r'b"\xff\x00\'\"\\"', b"\xff\x00'\"\\"),
    "comment-after-value": ("1 // __import__('os').system('id')", 1),
    "comment-then-newline-code": ("1 // '''\n+ 1", 2),
    "form-feed-whitespace": ("1\x0c+\x0c1", 2),
    "string-with-octal": (r'"\101\102"', "AB"),
}
for _name, (_expr, _value) in _INJECTION_VALUES.items():
    _add(f"injection-{_name}", "injection", _expr, "value", _value)
    _add(f"injection-{_name}-unchecked", "injection", _expr, "value", _value, checked=False)

_INJECTION_ERRORS: Final = {
    "raw-string-breakout": r'r"\" + __import__(\'os\') + \""',
    "raw-nul-outside-string": "1 +\x001",
    "raw-newline-in-string": '"a\nb"',
    "raw-cr-in-string": '"a\rb"',
    "semicolon-import": "a; import os",
    "hash-comment": "a # comment",
    "backslash-newline-outside": "a \\\n+ 1",
    "backslash-newline-in-string": '"a\\\nb"',
    "fullwidth-eval": 'ｅｖａｌ("1")',
    "math-bold-eval": '𝐞𝐯𝐚𝐥("1")',
    "cyrillic-e-eval": 'еval("1")',
    "ligature-file": "ﬁle",
    "zero-width-space": "a\u200b",
    "nbsp-whitespace": "1\u00a0+ 1",
    "vertical-tab": "1\x0b+ 1",
    "arabic-digits": "١٢٣",
    "python-underscore-int": "1_000",
    "python-octal": "0o17",
    "python-binary": "0b101",
    "python-complex": "1j",
    "python-long": "1L",
    "fstring": "f\"{__import__('os')}\"",
    "u-prefix": 'u"x"',
    "rb-prefix": r'rb"\x00"',
    "named-unicode-escape": r'"\N{BULLET}"',
    "octal-out-of-range": r'"\777"',
    "lone-surrogate": r'"\uD800"',
    "beyond-unicode": r'"\U00110000"',
    "python-conditional": "1 if true else 2",
    "python-listcomp": "[x for x in [1]]",
    "python-not": "not true",
    "python-and": "true and false",
    "python-is-none": "x is None",
    "python-star-star": "{**x}",
    "python-star": "[*x]",
    "python-yield": "(yield)",
    "python-walrus": "(a := 1)",
    "python-slice": "[1, 2, 3][0:2]",
    "python-call-kwargs": 'size(x="a")',
    "python-decorator": "@x",
    "dollar-ident": "$x",
    "backtick": "`x`",
    "empty-parens": "()",
    "unterminated-triple": '"""abc',
    "tuple-syntax": "(1, 2)",
    "python-dict-attr": "{}.__class__.__base__.__subclasses__()[0]",
}
# Lexically valid CEL after all: they fail only for lack of declarations.
_INJECTION_UNCHECKED: Final[dict[str, Outcome | tuple[Outcome, ...]]] = {
    "python-yield": "eval_error",  # "(yield)" is a parenthesised identifier
    "python-dict-attr": ERROR,
}
for _name, _expr in _INJECTION_ERRORS.items():
    _both(
        f"injection-{_name}",
        "injection",
        _expr,
        unchecked=_INJECTION_UNCHECKED.get(_name, "compile_error"),
    )
_add(
    "injection-slash-comment-legit",
    "injection",
    "a // comment",
    "value",
    7,
    variables={"a": INT},
    activation={"a": 7},
)
_add(
    "injection-long-identifier",
    "injection",
    _lazy(lambda: "a" * 10_000),
    "compile_error",
)
_add(
    "injection-long-identifier-unchecked",
    "injection",
    _lazy(lambda: "a" * 10_000),
    "compile_error",
    checked=False,
    note="longer than Limits.max_expression_length",
)
_add(
    "injection-hex-int-legit",
    "injection",
    "0x1F + 0x1f",
    "value",
    62,
)

# ===========================================================================
# map-select: a map key named like a Python attribute is just a key

_add("map-select-class-eq", "map-select", '{"__class__": 1}.__class__ == 1', "value", True)
_add("map-select-class", "map-select", '{"__class__": 1}.__class__', "value", 1)
_add(
    "map-select-class-unchecked",
    "map-select",
    '{"__class__": 1}.__class__',
    "value",
    1,
    checked=False,
)
_add(
    "map-select-nested-dunders",
    "map-select",
    '{"__globals__": {"__builtins__": 2}}.__globals__.__builtins__',
    "value",
    2,
)
_add(
    "map-select-declared-map",
    "map-select",
    "m.__class__.__mro__",
    "value",
    "x",
    variables={"m": MapType(STRING, DYN)},
    activation={"m": {"__class__": {"__mro__": "x"}}},
)
for _attr in ("__class__", "__dict__", "__len__", "keys", "items", "get", "copy", "fromkeys"):
    _add(
        f"map-select-missing-{_attr.strip('_')}",
        "map-select",
        f"m.{_attr}",
        "eval_error",
        variables={"m": MapType(STRING, INT)},
        activation={"m": {}},
        note="dict has this Python attribute; CEL says no such key",
    )
    _add(
        f"map-select-missing-{_attr.strip('_')}-dyn",
        "map-select",
        f"m.{_attr}",
        "eval_error",
        variables={"m": DYN},
        activation={"m": {"a": 1}},
    )
_add(
    "map-select-keys-present",
    "map-select",
    "m.keys + m.items",
    "value",
    3,
    variables={"m": MapType(STRING, INT)},
    activation={"m": {"keys": 1, "items": 2}},
)
_add(
    "map-select-has-class-absent",
    "map-select",
    "has(m.__class__)",
    "value",
    False,
    variables={"m": MapType(STRING, INT)},
    activation={"m": {}},
)
_add(
    "map-select-has-class-present",
    "map-select",
    "has(m.__class__)",
    "value",
    True,
    variables={"m": MapType(STRING, INT)},
    activation={"m": {"__class__": 0}},
)
_add(
    "map-select-unchecked-bound",
    "map-select",
    "m.__class__",
    "value",
    9,
    activation={"m": {"__class__": 9}},
    checked=False,
)
_add(
    "map-select-in-comprehension",
    "map-select",
    "[m].map(v, v.__class__)",
    "value",
    [9],
    variables={"m": DYN},
    activation={"m": {"__class__": 9}},
)
_add(
    "map-select-index-dunder",
    "map-select",
    'm["__class__"]',
    "value",
    9,
    variables={"m": MapType(STRING, INT)},
    activation={"m": {"__class__": 9}},
)
_add(
    "map-select-python-keywords",
    "map-select",
    "m.class + m.def + m.lambda + m.None + m.not + m.pass + m.yield",
    "value",
    28,
    variables={"m": MapType(STRING, INT)},
    activation={
        "m": {"class": 1, "def": 2, "lambda": 3, "None": 4, "not": 5, "pass": 6, "yield": 7}
    },
)
_add(
    "map-select-exists-key",
    "map-select",
    'm.exists(k, k == "__class__")',
    "value",
    True,
    variables={"m": MapType(STRING, INT)},
    activation={"m": {"__class__": 9}},
)
_add(
    "map-select-deep-chain",
    "map-select",
    "x.a.b.c",
    "value",
    5,
    variables={"x": DYN},
    activation={"x": {"a": {"b": {"c": 5}}}},
)
_add(
    "map-select-list-not-map",
    "map-select",
    "x.append",
    "eval_error",
    variables={"x": DYN},
    activation={"x": [1]},
)
_add(
    "map-select-string-not-map",
    "map-select",
    "x.upper",
    "eval_error",
    variables={"x": DYN},
    activation={"x": "a"},
)

# ===========================================================================
# host-object: Python objects bound to dyn / opaque variables

_HOST: Final = {"x": DYN}
_HOST_CASES: Final[dict[str, tuple[str, Callable[[], object]]]] = {
    "canary-secret": ("x.secret", HostCanary),
    "canary-class": ("x.__class__", HostCanary),
    "canary-dict": ("x.__dict__", HostCanary),
    "canary-index": ('x["secret"]', HostCanary),
    "canary-size": ("size(x)", HostCanary),
    "canary-all": ("x.all(k, true)", HostCanary),
    "canary-map": ("x.map(k, k)", HostCanary),
    "canary-or": ("x || false", HostCanary),
    "canary-and": ("x && true", HostCanary),
    "canary-not": ("!x", HostCanary),
    "canary-ternary": ("x ? 1 : 2", HostCanary),
    "canary-string": ("string(x)", HostCanary),
    "canary-int": ("int(x)", HostCanary),
    "canary-double": ("double(x)", HostCanary),
    "canary-in": ('"secret" in x', HostCanary),
    "canary-add": ("x + 1", HostCanary),
    "canary-radd": ("1 + x", HostCanary),
    "canary-concat": ('"a" + x', HostCanary),
    "canary-list-index": ("[1, 2][x]", HostCanary),
    "canary-has": ("has(x.secret)", HostCanary),
    "canary-matches": ('x.matches("s")', HostCanary),
    "canary-starts-with": ('x.startsWith("s")', HostCanary),
    "canary-ge-int": ("x >= 18", HostCanary),
    "canary-lt-int-reversed": ("18 < x", HostCanary),
    "canary-gt-double": ("x > 1.5", HostCanary),
    "canary-size-dyn": ("size(x)", HostCanary),
    "lambda-globals": ("x.__globals__", _host_lambda),
    "lambda-code": ("x.__code__", _host_lambda),
    "lambda-closure": ("x.__closure__", _host_lambda),
    "lambda-func-globals": ("x.func_globals", _host_lambda),
    "lambda-size": ("size(x)", _host_lambda),
    "module-system": ("x.system", _fake_os),
    "module-environ": ("x.environ", _fake_os),
    "module-environ-index": ('x.environ["SECRET"]', _fake_os),
    "module-dict": ('x.__dict__["system"]', _fake_os),
    "builtin-len-self": ("x.__self__", lambda: len),
    "int-real": ("x.real", lambda: 5),
    "uint-numerator": ("x.numerator", lambda: UInt(5)),
    "double-hex": ("x.hex", lambda: 1.5),
    "bytes-decode": ("x.decode", lambda: b"a"),
    "timestamp-nanos": ("x.nanos", lambda: Timestamp(5)),
    "type-object": ("x.__subclasses__", lambda: object),
    # The extension libraries never reach a host object's protocol either.
    "ext-format-s": ('"%s".format([x])', HostCanary),
    "ext-format-x": ('"%x".format([x])', HostCanary),
    "ext-format-f": ('"%.2f".format([x])', HostCanary),
    "ext-format-list": ('"{0.__class__}".format(x)', HostCanary),
    "ext-char-at": ("x.charAt(0)", HostCanary),
    "ext-lower": ("x.lowerAscii()", HostCanary),
    "ext-reverse": ("x.reverse()", HostCanary),
    "ext-split": ('x.split(",")', HostCanary),
    "ext-join": ("[x].join()", HostCanary),
    "ext-quote": ("strings.quote(x)", HostCanary),
    "ext-greatest": ("math.greatest(x, 1)", HostCanary),
    "ext-greatest-list": ("math.greatest([x, 1])", HostCanary),
    "ext-abs": ("math.abs(x)", HostCanary),
    "ext-bit-and": ("math.bitAnd(x, 1)", HostCanary),
    "ext-sort": ("[x, x].sort()", HostCanary),
    "ext-slice": ("x.slice(0, 1)", HostCanary),
    "ext-flatten": ("x.flatten(1)", HostCanary),
    "ext-range": ("lists.range(x)", HostCanary),
    "ext-sets-contains": ("sets.contains(x, [1])", HostCanary),
    "ext-sets-intersects": ("sets.intersects([1], x)", HostCanary),
    "ext-lambda-sort": ("[x, x].sort()", _host_lambda),
    "opt-select": ("x.?secret", HostCanary),
    "opt-select-dunder": ("x.?__class__", HostCanary),
    "opt-index": ('x[?"secret"]', HostCanary),
    "opt-value": ("x.value()", HostCanary),
    "opt-has-value": ("x.hasValue()", HostCanary),
    "opt-or-value": ("x.orValue(1)", HostCanary),
    "opt-list-element": ("[?x]", HostCanary),
    "opt-map-entry": ('{?"k": x}', HostCanary),
    "opt-chain": ("optional.of(x).secret.value()", HostCanary),
    "opt-chain-index": ('optional.of(x)["secret"].value()', HostCanary),
}
for _name, (_expr, _factory) in _HOST_CASES.items():
    _add(
        f"host-{_name}",
        "host-object",
        _expr,
        "eval_error",
        variables=_HOST,
        activation=(lambda factory=_factory: {"x": factory()}),
    )
# Equality never errors in CEL: a host object equals no literal. The value is
# decided without calling the object's __eq__ (the canary records any call).
for _name, (_expr, _value) in {
    "canary-eq-string": ('x == "secret"', False),
    "canary-ne-string": ('x != "secret"', True),
    "canary-eq-null": ("x == null", False),
    "canary-in-string-list": ('x in ["secret"]', False),
    "canary-eq-in-loop": ('[1].all(i, x == "secret")', False),
}.items():
    _add(
        f"host-{_name}",
        "host-object",
        _expr,
        "value",
        _value,
        variables=_HOST,
        activation=lambda: {"x": HostCanary()},
    )
_add(
    "host-module-system-call",
    "host-object",
    'x.system("id")',
    "compile_error",
    variables=_HOST,
    activation=lambda: {"x": _fake_os()},
)
_add(
    "host-module-system-call-unchecked",
    "host-object",
    'x.system("id")',
    ERROR,
    activation=lambda: {"x": _fake_os()},
    checked=False,
)
_add(
    "host-canary-secret-unchecked",
    "host-object",
    "x.secret",
    "eval_error",
    activation=lambda: {"x": HostCanary()},
    checked=False,
)
_EVENTS: Final = OpaqueType("arbiter.Events")
_add(
    "host-opaque-select",
    "host-object",
    "ev.secret",
    "compile_error",
    variables={"ev": _EVENTS},
    activation=lambda: {"ev": HostCanary()},
)
_add(
    "host-opaque-has",
    "host-object",
    "has(ev.secret)",
    "compile_error",
    variables={"ev": _EVENTS},
    activation=lambda: {"ev": HostCanary()},
)
_add(
    "host-opaque-index",
    "host-object",
    'ev["secret"]',
    "compile_error",
    variables={"ev": _EVENTS},
    activation=lambda: {"ev": HostCanary()},
)
_add(
    "host-opaque-via-dyn",
    "host-object",
    "dyn(ev).secret",
    "eval_error",
    variables={"ev": _EVENTS},
    activation=lambda: {"ev": HostCanary()},
)
_add(
    "host-timestamp-declared-nanos",
    "host-object",
    "t.nanos",
    "compile_error",
    variables={"t": TIMESTAMP},
    activation={"t": Timestamp(5)},
)
_add(
    "host-call-variable",
    "host-object",
    "x(1)",
    "compile_error",
    variables=_HOST,
    activation=lambda: {"x": _host_lambda()},
)
_add(
    "host-call-variable-unchecked",
    "host-object",
    "x(1)",
    ERROR,
    activation=lambda: {"x": _host_lambda()},
    checked=False,
)

# ===========================================================================
# format: format-string attempts

# The strings extension's format() exists: with a dyn argument the check
# passes, and the run refuses a non-list (Python's str.format never runs).
_add(
    "format-attr-field-checked",
    "format",
    '"{0.__class__}".format(x)',
    "eval_error",
    variables=_HOST,
)
_add(
    "format-attr-field-unchecked",
    "format",
    '"{0.__class__}".format(x)',
    ERROR,
    checked=False,
    variables=_HOST,
)
_both("format-plain", "format", '"{}".format(1)', unchecked=ERROR)
_both("format-width-bomb", "format", '"{0:>1000000000}".format(1)', unchecked=ERROR)
_both("format-map", "format", '"{a}".format_map({"a": 1})', unchecked=ERROR)
_both("format-percent-string", "format", '"%s" % "a"')
_both("format-percent-int", "format", '"%d" % 5')
_both("format-percent-map", "format", '"%(a)s" % {"a": 1}')
_add(
    "format-percent-dyn",
    "format",
    '"%s" % x',
    "compile_error",
    variables=_HOST,
    activation={"x": "a"},
)
_add("format-literal-braces", "format", '"{x.__class__}"', "value", "{x.__class__}")
_add("format-percent-n", "format", 'string("%n%n%n%s")', "value", "%n%n%n%s")
_add(
    "format-string-conversion-of-map",
    "format",
    'string({"a": 1})',
    "compile_error",
)
_add(
    "format-string-conversion-of-dyn-map",
    "format",
    "string(x)",
    "eval_error",
    variables=_HOST,
    activation={"x": {"a": 1}},
)

# ===========================================================================
# huge-literal

_add(
    "huge-literal-10mb-string",
    "huge-literal",
    _lazy(lambda: '"' + "a" * 10_000_000 + '"'),
    "compile_error",
)
_add(
    "huge-literal-10mb-bytes",
    "huge-literal",
    _lazy(lambda: 'b"' + "a" * 10_000_000 + '"'),
    "compile_error",
)
_add("huge-literal-10k-list", "huge-literal", _literal_list(10_000), "compile_error")
_add("huge-literal-2k-list", "huge-literal", _literal_list(2_000), "compile_error")
_add("huge-literal-1100-list", "huge-literal", _literal_list(1_100, "0"), "compile_error")
_add(
    "huge-literal-1500-map",
    "huge-literal",
    _lazy(lambda: "{" + ",".join(f"{i}:0" for i in range(1_500)) + "}"),
    "compile_error",
)
_add("huge-literal-1e7-digit-int", "huge-literal", _lazy(lambda: "1" * 10_000_000), "compile_error")
_add(
    "huge-literal-5000-digit-int",
    "huge-literal",
    _lazy(lambda: "1" * 5_000),
    "compile_error",
    note="Python refuses int() of more than 4300 digits with ValueError",
)
_add(
    "huge-literal-5000-digit-uint",
    "huge-literal",
    _lazy(lambda: "1" * 5_000 + "u"),
    "compile_error",
)
_add(
    "huge-literal-5000-digit-hex",
    "huge-literal",
    _lazy(lambda: "0x" + "f" * 5_000),
    "compile_error",
)
_add(
    "huge-literal-5000-digit-double",
    "huge-literal",
    _lazy(lambda: "1" * 5_000 + ".0"),
    ("compile_error", "value"),
    math.inf,
)
_add("huge-literal-1e999999", "huge-literal", "1e999999", ("compile_error", "value"), math.inf)
_add(
    "huge-literal-neg-1e999999", "huge-literal", "-1e999999", ("compile_error", "value"), -math.inf
)
_add("huge-literal-1e-999999", "huge-literal", "1e-999999", "value", 0.0)
_add("huge-literal-int64-max-plus-1", "huge-literal", "9223372036854775808", "compile_error")
_add("huge-literal-int64-min", "huge-literal", "-9223372036854775808", "value", INT64_MIN)
_add("huge-literal-int64-min-minus-1", "huge-literal", "-9223372036854775809", "compile_error")
_add("huge-literal-uint64-max", "huge-literal", "18446744073709551615u", "value", UInt(UINT64_MAX))
_add("huge-literal-uint64-max-plus-1", "huge-literal", "18446744073709551616u", "compile_error")
_add("huge-literal-hex-17-digits", "huge-literal", "0xFFFFFFFFFFFFFFFFF", "compile_error")
_add(
    "huge-literal-4k-string-legit",
    "huge-literal",
    _lazy(lambda: '"' + "a" * 4_000 + '"'),
    "value",
    "a" * 4_000,
)
_add(
    "huge-literal-escapes-legit",
    "huge-literal",
    _lazy(lambda: '"' + r"\U0010FFFF" * 400 + '"'),
    "value",
    "\U0010ffff" * 400,
)

# ===========================================================================
# deep-nesting

_DEEP_OK: Final[tuple[Outcome, ...]] = ("compile_error", "value")


def _nest(n: int, open_: str, inner: str, close: str) -> Callable[[], str]:
    return _lazy(lambda: open_ * n + inner + close * n)


_add("deep-parens-10k", "deep-nesting", _nest(10_000, "(", "1", ")"), "compile_error")
_add("deep-parens-8k", "deep-nesting", _nest(8_000, "(", "1", ")"), "compile_error")
_add("deep-parens-30-legit", "deep-nesting", _nest(30, "(", "1", ")"), "value", 1)
_add("deep-lists-10k", "deep-nesting", _nest(10_000, "[", "1", "]"), "compile_error")
_add("deep-lists-8k", "deep-nesting", _nest(8_000, "[", "1", "]"), "compile_error")
_add("deep-maps-2500", "deep-nesting", _nest(2_500, '{"a":', "1", "}"), "compile_error")
_add("deep-dyn-calls-3k", "deep-nesting", _nest(3_000, "dyn(", "1", ")"), "compile_error")
_add(
    "deep-index-5k",
    "deep-nesting",
    _lazy(lambda: "x" + "[0]" * 5_000),
    _DEEP_OK,
    1,
    variables={"x": DYN},
    activation=lambda: {"x": _nested_list(4_999)},
)
_add("deep-unclosed-parens", "deep-nesting", _lazy(lambda: "(" * 16_000), "compile_error")
_add("deep-unclosed-lists", "deep-nesting", _lazy(lambda: "[" * 16_000), "compile_error")
_add("deep-not-100k", "deep-nesting", _lazy(lambda: "!" * 100_000 + "true"), "compile_error")
_add("deep-not-16k", "deep-nesting", _lazy(lambda: "!" * 16_000 + "true"), _DEEP_OK, True)
_add(
    "deep-not-5001",
    "deep-nesting",
    _lazy(lambda: "!" * 5_001 + "x"),
    _DEEP_OK,
    False,
    variables={"x": BOOL},
    activation={"x": True},
)
_add("deep-neg-100k", "deep-nesting", _lazy(lambda: "-" * 100_000 + "1"), "compile_error")
_add("deep-neg-16k", "deep-nesting", _lazy(lambda: "-" * 16_000 + "1"), _DEEP_OK, 1)
_add(
    "deep-neg-5001-var",
    "deep-nesting",
    _lazy(lambda: "-" * 5_001 + "x"),
    _DEEP_OK,
    -3,
    variables={"x": INT},
    activation={"x": 3},
)
_add(
    "deep-neg-not-mixed",
    "deep-nesting",
    _lazy(lambda: "!" * 3_000 + "(" + "-" * 3_000 + "x == 1)"),
    _DEEP_OK,
    True,
    variables={"x": INT},
    activation={"x": 1},
)
_add(
    "deep-ternary-4k",
    "deep-nesting",
    _lazy(lambda: "x?0:" * 4_000 + "1"),
    _DEEP_OK,
    1,
    variables={"x": BOOL},
    activation={"x": False},
)
_add(
    "deep-ternary-1k",
    "deep-nesting",
    _lazy(lambda: "x?0:" * 1_000 + "1"),
    _DEEP_OK,
    1,
    variables={"x": BOOL},
    activation={"x": False},
)
_add(
    "deep-ternary-condition-nesting",
    "deep-nesting",
    _nest(2_000, "(x?", "x", ":x)"),
    _DEEP_OK,
    False,
    variables={"x": BOOL},
    activation={"x": False},
)
_add(
    "deep-select-10k",
    "deep-nesting",
    _lazy(lambda: "a" + ".b" * 10_000),
    "compile_error",
    variables={"a": DYN},
)
_add(
    "deep-select-8k",
    "deep-nesting",
    _lazy(lambda: "a" + ".b" * 8_000),
    _DEEP_OK,
    1,
    variables={"a": DYN},
    activation=lambda: {"a": _nested_map(8_000)},
)
_add(
    "deep-select-2k",
    "deep-nesting",
    _lazy(lambda: "a" + ".b" * 2_000),
    _DEEP_OK,
    1,
    variables={"a": DYN},
    activation=lambda: {"a": _nested_map(2_000)},
)
_add(
    "deep-select-2k-unchecked",
    "deep-nesting",
    _lazy(lambda: "a" + ".b" * 2_000),
    _DEEP_OK,
    1,
    activation=lambda: {"a": _nested_map(2_000)},
    checked=False,
)
_add(
    "deep-has-select-2k",
    "deep-nesting",
    _lazy(lambda: "has(a" + ".b" * 2_000 + ")"),
    _DEEP_OK,
    True,
    variables={"a": DYN},
    activation=lambda: {"a": _nested_map(2_000)},
)
_add(
    "deep-comprehensions-100",
    "deep-nesting",
    _lazy(lambda: "".join(f"[1].map(v{i}, " for i in range(100)) + "v0" + ")" * 100),
    _DEEP_OK,
    _nested_list(99),
)
_add(
    "deep-comprehension-chain-200",
    "deep-nesting",
    _lazy(lambda: "[1]" + ".map(v, v)" * 200),
    _DEEP_OK,
    [1],
)
# At the edge of the parser's depth bound: deep enough to stress the Python
# code generated from it, shallow enough to be accepted.
for _depth in (20, 40, 60):
    _add(
        f"deep-edge-comprehensions-{_depth}",
        "deep-nesting",
        _lazy(lambda d=_depth: "".join(f"x.exists(v{i}, " for i in range(d)) + "v0 == 0" + ")" * d),
        _DEEP_OK,
        True,
        variables={"x": DYN},
        activation={"x": [0]},
    )
    _add(
        f"deep-edge-strict-logic-{_depth}",
        "deep-nesting",
        _lazy(lambda d=_depth: "(x || " * d + "y" + ")" * d),
        _DEEP_OK,
        True,
        variables={"x": DYN, "y": DYN},
        activation={"x": False, "y": True},
    )
    _add(
        f"deep-edge-dyn-select-{_depth}",
        "deep-nesting",
        _lazy(lambda d=_depth: "dyn(" * d + "x" + ".b)" * d),
        _DEEP_OK,
        1,
        variables={"x": DYN},
        activation=lambda d=_depth: {"x": _nested_map(d)},
    )
    _add(
        f"deep-edge-lists-{_depth}",
        "deep-nesting",
        _nest(_depth, "[", "x", "]"),
        _DEEP_OK,
        _nested_list(_depth - 1),
        variables={"x": INT},
        activation={"x": 1},
    )
    _add(
        f"deep-edge-arith-{_depth}",
        "deep-nesting",
        _lazy(lambda d=_depth: "(x + " * d + "x" + ")" * d),
        _DEEP_OK,
        _depth + 1,
        variables={"x": DYN},
        activation={"x": 1},
    )

# ===========================================================================
# long-chain

_add(
    "chain-or-100k",
    "long-chain",
    _repeat_join("x", "||", 100_000),
    "compile_error",
    variables={"x": BOOL},
)
_add(
    "chain-or-5k",
    "long-chain",
    _repeat_join("x", "||", 5_000),
    _DEEP_OK,
    False,
    variables={"x": BOOL},
    activation={"x": False},
)
_add(
    "chain-or-2k",
    "long-chain",
    _repeat_join("x", "||", 2_000),
    _DEEP_OK,
    False,
    variables={"x": BOOL},
    activation={"x": False},
)
_add(
    "chain-or-2k-dyn-error-absorbing",
    "long-chain",
    _lazy(lambda: "||".join(["x"] * 1_999 + ["y"])),
    _DEEP_OK,
    True,
    variables={"x": DYN, "y": DYN},
    activation={"x": 1, "y": True},
    note="strict path: every x is an error absorbed by the final true",
)
_add(
    "chain-and-100k",
    "long-chain",
    _repeat_join("x", "&&", 100_000),
    "compile_error",
    variables={"x": BOOL},
)
_add(
    "chain-and-2k",
    "long-chain",
    _repeat_join("x", "&&", 2_000),
    _DEEP_OK,
    True,
    variables={"x": BOOL},
    activation={"x": True},
)
_add("chain-plus-100k", "long-chain", _repeat_join("1", "+", 100_000), "compile_error")
_add("chain-plus-5k", "long-chain", _repeat_join("1", "+", 5_000), _DEEP_OK, 5_000)
_add("chain-plus-2k", "long-chain", _repeat_join("1", "+", 2_000), _DEEP_OK, 2_000)
_add(
    "chain-plus-2k-var",
    "long-chain",
    _repeat_join("x", "+", 2_000),
    _DEEP_OK,
    2_000,
    variables={"x": INT},
    activation={"x": 1},
)
_add(
    "chain-plus-2k-dyn",
    "long-chain",
    _repeat_join("x", "+", 2_000),
    _DEEP_OK,
    2_000,
    variables={"x": DYN},
    activation={"x": 1},
)
_add(
    "chain-plus-strings-2k",
    "long-chain",
    _repeat_join("s", "+", 2_000),
    _DEEP_OK,
    "ab" * 2_000,
    variables={"s": STRING},
    activation={"s": "ab"},
)
_add(
    "chain-plus-lists-2k",
    "long-chain",
    _repeat_join("l", "+", 2_000),
    _DEEP_OK,
    [1] * 2_000,
    variables={"l": ListType(INT)},
    activation={"l": [1]},
)
_add("chain-minus-2k", "long-chain", _repeat_join("1", "-", 2_000), _DEEP_OK, 1 - 1_999)
_add(
    "chain-times-overflow",
    "long-chain",
    _repeat_join("2", "*", 70),
    ("compile_error", "eval_error"),
)
_add(
    "chain-mixed-2k",
    "long-chain",
    _lazy(lambda: "x" + "||x&&x" * 1_000),
    _DEEP_OK,
    False,
    variables={"x": BOOL},
    activation={"x": False},
)
_add(
    "chain-eq-2k",
    "long-chain",
    _lazy(lambda: "x" + "==x" * 1_999),
    ("compile_error", "eval_error", "value"),
    True,
    variables={"x": DYN},
    activation={"x": True},
)

# ===========================================================================
# comprehension-bomb: the cost budget (Limits.max_cost per evaluation)

_L100: Final = _seq(100)
_XS: Final = {"xs": ListType(INT)}


def _xs(n: int) -> Callable[[], Mapping[str, object]]:
    return lambda: {"xs": _int_list(n)}


_add(
    "comp-literal-100-cubed",
    "comprehension-bomb",
    f"{_L100}.map(x, {_L100}.map(y, {_L100}.map(z, x * y * z)))",
    "eval_error",
)
_add(
    "comp-var-100-cubed",
    "comprehension-bomb",
    "xs.map(x, xs.map(y, xs.map(z, x * y * z)))",
    "eval_error",
    variables=_XS,
    activation=_xs(100),
)
_add(
    "comp-var-100-cubed-dyn",
    "comprehension-bomb",
    "xs.map(x, xs.map(y, xs.map(z, x * y * z)))",
    "eval_error",
    variables={"xs": DYN},
    activation=_xs(100),
)
_add(
    "comp-1000-squared",
    "comprehension-bomb",
    "xs.map(x, xs.map(y, x + y))",
    "eval_error",
    variables=_XS,
    activation=_xs(1_000),
)
_add(
    "comp-all-cubed",
    "comprehension-bomb",
    "xs.all(x, xs.all(y, xs.all(z, true)))",
    "eval_error",
    variables=_XS,
    activation=_xs(100),
)
_add(
    "comp-exists-cubed",
    "comprehension-bomb",
    "xs.exists(x, xs.exists(y, xs.exists(z, false)))",
    "eval_error",
    variables=_XS,
    activation=_xs(100),
)
_add(
    "comp-exists-one-squared",
    "comprehension-bomb",
    "xs.exists_one(x, xs.exists_one(y, true))",
    "eval_error",
    variables=_XS,
    activation=_xs(1_000),
)
_add(
    "comp-filter-squared",
    "comprehension-bomb",
    "xs.filter(x, size(xs.filter(y, true)) > 0)",
    "eval_error",
    variables=_XS,
    activation=_xs(1_000),
)
_add(
    "comp-filter-1m",
    "comprehension-bomb",
    "xs.filter(x, true)",
    "eval_error",
    variables=_XS,
    activation=_xs(1_000_000),
)
_add(
    "comp-exists-1m",
    "comprehension-bomb",
    "xs.exists(x, x < 0)",
    "eval_error",
    variables=_XS,
    activation=_xs(1_000_000),
)
_add(
    "comp-map-200k-keys",
    "comprehension-bomb",
    "m.all(k, true)",
    "eval_error",
    variables={"m": MapType(STRING, INT)},
    activation=lambda: {"m": _big_map(200_000)},
)
_add(
    "comp-map-chain-squared",
    "comprehension-bomb",
    "xs.map(x, xs).map(ys, ys.map(y, y))",
    "eval_error",
    variables=_XS,
    activation=_xs(400),
)
_add(
    "comp-exponential-maps",
    "comprehension-bomb",
    _lazy(
        lambda: (
            "".join(f"[0,1,2,3,4,5,6,7,8,9].map(a{i}, " for i in range(6)) + '{"k": a5}' + ")" * 6
        )
    ),
    "eval_error",
)
_add(
    "comp-bomb-hidden-in-short-circuit",
    "comprehension-bomb",
    "x || xs.map(a, xs.map(b, xs.map(c, 0))) == []",
    "eval_error",
    variables={"x": BOOL, **_XS},
    activation=lambda: {"x": False, "xs": _int_list(100)},
)
_add(
    "comp-budget-edge-flat",
    "comprehension-bomb",
    "xs.all(x, x >= 0)",
    "value",
    True,
    variables=_XS,
    activation=_xs(4_900),
    note="just under the default cost budget (5,000): must still finish within 10 ms",
)
_add(
    "comp-budget-edge-nested",
    "comprehension-bomb",
    "size(xs.map(x, xs.map(y, xs.map(z, 0))))",
    "value",
    16,
    variables=_XS,
    activation=_xs(16),
    note="16 + 16^2 + 16^3 = 4,368 iterations, under the 5,000 budget",
)
_add(
    "comp-small-legit",
    "comprehension-bomb",
    "xs.map(x, x * 2)",
    "value",
    [2 * i for i in range(1_000)],
    variables=_XS,
    activation=_xs(1_000),
)


# ===========================================================================
# ext-bomb: the extension libraries at and past the cost budget. Each
# expression runs at the largest size the budget accepts when the
# estimates were calibrated (a value) and at ten times that (a cost-limit
# error, raised before the work); the step cap bounds both.
def _rendered_list_size(n: int) -> int:
    return len("[" + ", ".join(map(str, range(n))) + "]")


def _rendered_map_size(n: int) -> int:
    return len("{" + ", ".join(f"{i}: [{i}]" for i in range(n)) + "}")


_EXT_BOMBS: Final[dict[str, tuple[str, int, Callable[[int], object]]]] = {
    "range": ("size(lists.range(n))", 39_999, lambda n: n),
    "range-sort": ("size(lists.range(n).sort())", 3_478, lambda n: n),
    "range-distinct": ("size(lists.range(n).distinct())", 3_999, lambda n: n),
    "range-greatest": ("math.greatest(lists.range(n))", 3_999, lambda n: n - 1),
    "nested-distinct": ("size(lists.range(n).map(i, [i]).distinct())", 49, lambda n: n),
    "nested-sets-equivalent": (
        "sets.equivalent(lists.range(n).map(i, [i]), lists.range(n).map(i, [i]))",
        48,
        lambda n: True,
    ),
    "replace-grow": (
        "size(lists.range(n).map(i, 'a').join('').replace('', 'xxxx'))",
        3_719,
        lambda n: 5 * n + 4,
    ),
    "format-list": ("size('%s'.format([lists.range(n)]))", 4_438, _rendered_list_size),
    "format-map": (
        "size('%s'.format([lists.range(n).transformMap(i, v, [v])]))",
        547,
        _rendered_map_size,
    ),
    "format-clauses": (
        "size(lists.range(n).map(i, '%d').join('').format(lists.range(n)))",
        1_415,
        lambda n: len("".join(map(str, range(n)))),
    ),
    "flatten": ("size(lists.range(n).map(i, lists.range(n)).flatten())", 65, lambda n: n * n),
    "flatten-depth": ("size(lists.range(n).map(i, [[[i]]]).flatten(3))", 689, lambda n: n),
    "split-join": (
        "size(lists.range(n).map(i, 'ab').join('').split('').join('-'))",
        3_018,
        lambda n: 4 * n - 1,
    ),
    "sets-scalars": (
        "sets.intersects(lists.range(n), lists.range(n).map(i, -i - 1))",
        1_428,
        lambda n: False,
    ),
    "strings-loop": (
        "lists.range(n).map(i, '%d-%s'.format([i, string(i)]).upperAscii().indexOf('-')).size()",
        493,
        lambda n: n,
    ),
    "optional-loop": ("lists.range(n).map(i, {'a': i}.?a.orValue(0)).size()", 4_444, lambda n: n),
}
for _name, (_expr, _n, _value) in _EXT_BOMBS.items():
    _add(
        f"ext-bomb-{_name}-at-budget",
        "value-bomb",
        _expr,
        "value",
        _value(_n),
        variables={"n": INT},
        activation={"n": _n},
    )
    _add(
        f"ext-bomb-{_name}-past-budget",
        "value-bomb",
        _expr,
        "eval_error",
        variables={"n": INT},
        activation={"n": 10 * _n},
    )

# value-bomb: runtime growth (max_value_size = 1,000,000) and amplification


def _doubling_chain(seed: str, step: str, n: int) -> Callable[[], str]:
    return _lazy(lambda: f"[{seed}]" + f".map(a, {step})" * n)


_add(
    "value-string-doubling-nested",
    "value-bomb",
    _lazy(
        lambda: (
            "".join(f"[a{i} + a{i}].map(a{i + 1}, " for i in range(11)).replace(
                "[a0 + a0]", "[s]", 1
            )
            + "size(a11)"
            + ")" * 11
        )
    ),
    "eval_error",
    variables={"s": STRING},
    activation=lambda: {"s": _text("a", 1_000)},
)
_add(
    "value-string-doubling-chain",
    "value-bomb",
    _doubling_chain("s", "a + a", 12),
    "eval_error",
    variables={"s": STRING},
    activation=lambda: {"s": _text("a", 1_000)},
)
_add(
    "value-string-doubling-literal",
    "value-bomb",
    _doubling_chain('"ab"', "a + a", 25),
    "eval_error",
)
_add(
    "value-list-doubling-chain",
    "value-bomb",
    _doubling_chain("l", "a + a", 11),
    "eval_error",
    variables={"l": ListType(INT)},
    activation=lambda: {"l": _int_list(1_000)},
)
_add(
    "value-bytes-doubling-chain",
    "value-bomb",
    _doubling_chain("b", "a + a", 12),
    "eval_error",
    variables={"b": BYTES},
    activation=lambda: {"b": b"a" * 1_000},
)
_add(
    "value-flat-string-concat",
    "value-bomb",
    _repeat_join("s", "+", 2_000),
    ("compile_error", "eval_error"),
    variables={"s": STRING},
    activation=lambda: {"s": _text("a", 1_000)},
)
_add(
    "value-concat-huge-input",
    "value-bomb",
    "s + s",
    "eval_error",
    variables={"s": STRING},
    activation=lambda: {"s": _text("a", 10_000_000)},
)
_add(
    "value-list-concat-huge",
    "value-bomb",
    "xs + xs",
    "eval_error",
    variables=_XS,
    activation=_xs(600_000),
)
_add(
    "value-size-10m-string",
    "value-bomb",
    "size(s)",
    "value",
    10_000_000,
    variables={"s": STRING},
    activation=lambda: {"s": _text("a", 10_000_000)},
)
_add(
    "value-size-1m-list",
    "value-bomb",
    "size(xs)",
    "value",
    1_000_000,
    variables=_XS,
    activation=_xs(1_000_000),
)
_add(
    "value-size-200k-map",
    "value-bomb",
    "size(m)",
    "value",
    200_000,
    variables={"m": MapType(STRING, INT)},
    activation=lambda: {"m": _big_map(200_000)},
)
_add(
    "value-size-10m-dyn",
    "value-bomb",
    "size(s)",
    "value",
    10_000_000,
    variables={"s": DYN},
    activation=lambda: {"s": _text("a", 10_000_000)},
)
_add(
    "value-amplified-concat",
    "value-bomb",
    "xs.all(x, size(s + s) > 0)",
    "eval_error",
    variables={"s": STRING, **_XS},
    activation=lambda: {"s": _text("a", 499_999), "xs": _int_list(99_000)},
    note="99,000 iterations (under budget) x a 1 MB concatenation (under the size bound)",
)
_add(
    "value-amplified-contains",
    "value-bomb",
    'xs.all(x, !s.contains("b"))',
    "eval_error",
    variables={"s": STRING, **_XS},
    activation=lambda: {"s": _text("a", 1_000_000), "xs": _int_list(99_000)},
)
_add(
    "value-amplified-regex",
    "value-bomb",
    'xs.all(x, s.matches("a+$"))',
    "eval_error",
    variables={"s": STRING, **_XS},
    activation=lambda: {"s": _text("a", 100_000), "xs": _int_list(99_000)},
)
_add(
    "value-exponential-list-equality",
    "value-bomb",
    _lazy(lambda: ("[[1]]" + ".map(a, [a, a])" * 22) + " == " + ("[[1]]" + ".map(b, [b, b])" * 22)),
    "value",
    True,
    note="two distinct DAGs that unfold to 2^22 leaves each: equality memoizes shared structure",
)
_add(
    "value-exponential-map-equality",
    "value-bomb",
    _lazy(
        lambda: (
            ('[{"k": 1}]' + '.map(a, {"l": a, "r": a})' * 22)
            + " == "
            + ('[{"k": 1}]' + '.map(b, {"l": b, "r": b})' * 22)
        )
    ),
    "value",
    True,
)
_add(
    "value-exponential-in",
    "value-bomb",
    _lazy(
        lambda: ("[[1]]" + ".map(a, [a, a])" * 22) + "[0] in " + ("[[1]]" + ".map(b, [b, b])" * 22)
    ),
    "value",
    True,
)

# ===========================================================================
# regex: RE2 semantics; catastrophic patterns on 100,001 characters

_LONG: Final = {"s": STRING}


def _long_a() -> Mapping[str, object]:
    return {"s": _text("a", 100_000, "!")}


_REGEX_VALUES: Final[dict[str, tuple[str, bool]]] = {
    "nested-plus": ("(a+)+$", False),
    "alternation": ("(a|aa)+$", False),
    "dot-star-20": ("(.*a){20}", True),
    "dot-star-20-anchored": ("(.*a){20}$", False),
    "optional-30": ("^(a?){30}a{30}$", False),
    "anchored-nested-plus": ("^(a+)+$", False),
    "star-star-b": ("(a*)*b", False),
    "alternation-same": ("(?:a|a)*!", True),
    "word-space": (r"(\w+\s?)*$", True),
    "not-a": ("[^a]", True),
    "unicode-class": (r"\p{L}+$", False),
    "python-named-group": ("(?P<n>a)", True),
}
for _name, (_pattern, _result) in _REGEX_VALUES.items():
    _cel_pattern = _pattern.replace("\\", "\\\\")
    _add(
        f"regex-{_name}",
        "regex",
        f's.matches("{_cel_pattern}")',
        "value",
        _result,
        variables=_LONG,
        activation=_long_a,
    )
_add(
    "regex-global-form",
    "regex",
    'matches(s, "(a+)+$")',
    "value",
    False,
    variables=_LONG,
    activation=_long_a,
)
_add(
    "regex-x-plus-x-plus-y",
    "regex",
    's.matches("(x+x+)+y")',
    "value",
    False,
    variables=_LONG,
    activation=lambda: {"s": _text("x", 100_000)},
)
_add(
    "regex-dynamic-pattern",
    "regex",
    "s.matches(p)",
    "value",
    False,
    variables={"s": STRING, "p": STRING},
    activation=lambda: {"s": _text("a", 100_000, "!"), "p": "(a+)+$"},
)
_REGEX_ERRORS: Final = {
    "repetition-bomb": "a{1000}{1000}",
    "repetition-nested": "((a{100}){100}){100}",
    "repetition-over-1000": "a{1001}",
    "counted-nested-product": "(((a{10}){10}){10}){10}",
    "backreference": r"(a)\1",
    "lookahead": "(?=a)",
    "lookbehind": "(?<=a)b",
    "possessive": "a++",
    "python-named-backref": "(?P<n>a)(?P=n)",
    "unbalanced": "(",
    "bad-class": "[z-a]",
    "atomic-group": "(?>a)",
    "conditional": "(?(1)a|b)",
}
for _name, _pattern in _REGEX_ERRORS.items():
    _cel_pattern = _pattern.replace("\\", "\\\\")
    _add(
        f"regex-{_name}",
        "regex",
        f's.matches("{_cel_pattern}")',
        ERROR,
        variables=_LONG,
        activation=_long_a,
    )
_add(
    "regex-huge-literal-pattern",
    "regex",
    _lazy(lambda: 's.matches("' + "a" * 2_000 + '")'),
    ERROR,
    variables=_LONG,
    activation=_long_a,
)
_add(
    "regex-huge-literal-alternation",
    "regex",
    _lazy(lambda: 's.matches("' + "|".join(f"a{i}" for i in range(1_000)) + '")'),
    ERROR,
    variables=_LONG,
    activation=_long_a,
)
_add(
    "regex-huge-dynamic-pattern",
    "regex",
    "s.matches(p)",
    "eval_error",
    variables={"s": STRING, "p": STRING},
    activation=lambda: {"s": "a", "p": _text("a", 2_000)},
)
_add(
    "regex-huge-dynamic-pattern-10m",
    "regex",
    "s.matches(p)",
    "eval_error",
    variables={"s": STRING, "p": STRING},
    activation=lambda: {"s": "a", "p": _text("a", 10_000_000)},
)
_add(
    "regex-dynamic-in-loop",
    "regex",
    'xs.exists(x, "a".matches(p + string(x)))',
    ("eval_error", "value"),
    False,
    variables={"p": STRING, **_XS},
    activation=lambda: {"p": "(a+)+b", "xs": _int_list(2_000)},
    note="2,000 distinct patterns: regex compilation cost is per evaluation",
)
_add("regex-nul", "regex", r'"a".matches("\x00")', "value", False)

# ===========================================================================
# conversion: numeric conversions and arithmetic at the edges

_CONVERSION_ERRORS: Final = {
    "uint-1e20": "uint(1e20)",
    "int-1e19": "int(1e19)",
    "int-inf": 'int(double("inf"))',
    "int-nan": 'int(double("nan"))',
    "uint-nan": 'uint(double("nan"))',
    "uint-negative": "uint(-1)",
    "uint-2-64-double": "uint(18446744073709551616.0)",
    "int-from-uint-max": "int(18446744073709551615u)",
    "int-string-20-digits": 'int("99999999999999999999")',
    "int-string-python-underscore": 'int("1_000")',
    "int-string-arabic-digits": 'int("١٢٣")',
    "double-string-python-underscore": 'double("1_0.5")',
    "double-string-arabic-digits": 'double("١.٥")',
    "div-zero": "1 / 0",
    "mod-zero": "1 % 0",
    "uint-div-zero": "1u / 0u",
    "uint-mod-zero": "1u % 0u",
    "int-min-div-neg1": "-9223372036854775808 / -1",
    "int-min-mod-neg1": "-9223372036854775808 % -1",
    "int-add-overflow": "9223372036854775807 + 1",
    "int-mul-overflow": "2 * 4611686018427387904",
    "int-neg-overflow": "-(-9223372036854775808)",
    "uint-add-overflow": "18446744073709551615u + 1u",
    "uint-sub-underflow": "0u - 1u",
}
for _name, _expr in _CONVERSION_ERRORS.items():
    _add(f"conversion-{_name}", "conversion", _expr, ERROR)
_add(
    "conversion-int-5000-digit-string",
    "conversion",
    _lazy(lambda: 'int("' + "1" * 5_000 + '")'),
    ERROR,
    note="int() digit limit: ValueError",
)
_add(
    "conversion-uint-5000-digit-string",
    "conversion",
    _lazy(lambda: 'uint("' + "1" * 5_000 + '")'),
    ERROR,
)
_add(
    "conversion-int-5000-digit-var",
    "conversion",
    "int(s)",
    "eval_error",
    variables={"s": STRING},
    activation=lambda: {"s": _text("9", 5_000)},
)
_add(
    "conversion-int-10m-digit-var",
    "conversion",
    "int(s)",
    "eval_error",
    variables={"s": STRING},
    activation=lambda: {"s": _text("9", 10_000_000)},
)
_add(
    "conversion-double-3000-digit-string",
    "conversion",
    _lazy(lambda: 'double("' + "1" * 3_000 + '")'),
    ("eval_error", "value"),
    math.inf,
)
_add(
    "conversion-double-1e999999",
    "conversion",
    'double("1e999999")',
    ("eval_error", "value"),
    math.inf,
)
_add(
    "conversion-double-uint-max",
    "conversion",
    "double(18446744073709551615u)",
    "value",
    18446744073709551615.0,
)
_add("conversion-double-div-zero", "conversion", "1.0 / 0.0", "value", math.inf)
_add(
    "conversion-int-overflow-dyn",
    "conversion",
    "x * x",
    "eval_error",
    variables={"x": DYN},
    activation={"x": INT64_MAX},
)
_add(
    "conversion-int-overflow-int",
    "conversion",
    "x * x",
    "eval_error",
    variables={"x": INT},
    activation={"x": INT64_MAX},
)
_add(
    "conversion-int-unbounded-activation",
    "conversion",
    "x + 0",
    "eval_error",
    variables={"x": INT},
    activation={"x": 10**5000},
    note="an out-of-range int in the activation must not flow through arithmetic",
)

# ===========================================================================
# time: range edges, overflow, and time zone names that look like paths


def _ts(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds * NS + nanos)


_add(
    "time-max",
    "time",
    'timestamp("9999-12-31T23:59:59.999999999Z")',
    "value",
    _ts(253_402_300_799, 999_999_999),
)
_add("time-min", "time", 'timestamp("0001-01-01T00:00:00Z")', "value", _ts(-62_135_596_800))
_add(
    "time-max-string",
    "time",
    'string(timestamp("9999-12-31T23:59:59.999999999Z"))',
    "value",
    "9999-12-31T23:59:59.999999999Z",
)
_add("time-int-max", "time", "timestamp(253402300799)", "value", _ts(253_402_300_799))
_TIME_ERRORS: Final = {
    "year-10000": 'timestamp("10000-01-01T00:00:00Z")',
    "year-0": 'timestamp("0000-01-01T00:00:00Z")',
    "max-plus-1ns": 'timestamp("9999-12-31T23:59:59.999999999Z") + duration("1ns")',
    "min-minus-1ns": 'timestamp("0001-01-01T00:00:00Z") - duration("1ns")',
    "int-past-max": "timestamp(253402300800)",
    "int-before-min": "timestamp(-62135596801)",
    "int-int64-max": "timestamp(9223372036854775807)",
    "duration-huge": 'duration("999999999999999999999s")',
    "duration-past-range": 'duration("315576000001s")',
    "duration-sum-overflow": 'duration("315576000000s") + duration("315576000000s")',
    "duration-5000-digits": 'duration("' + "1" * 5_000 + 's")',
    "duration-python-float-exp": 'duration("1.5e3s")',
    "duration-inf": 'duration("infs")',
    "duration-nan": 'duration("nans")',
    "duration-underscore": 'duration("1_000s")',
    "ts-plus-huge-duration": f'{TS_ZERO} + duration("99999999999999999999s")',
    "garbage-date": 'timestamp("2000-13-45T99:99:99Z")',
    "fullwidth-digits": 'timestamp("２０００-01-01T00:00:00Z")',
    "tz-etc-passwd": f'{TS_ZERO}.getHours("/etc/passwd")',
    "tz-traversal": f'{TS_ZERO}.getHours("../../../../etc/passwd")',
    "tz-traversal-in-zone": f'{TS_ZERO}.getHours("Europe/../../../../etc/localtime")',
    "tz-proc-environ": f'{TS_ZERO}.getHours("/proc/self/environ")',
    "tz-nul": f'{TS_ZERO}.getHours("\\x00")',
    "tz-newline": f'{TS_ZERO}.getHours("UTC\\n")',
    "tz-huge": f'{TS_ZERO}.getHours("' + "A" * 10_000 + '")',
    "tz-bad-offset": f'{TS_ZERO}.getHours("+99:99")',
    "tz-unknown": f'{TS_ZERO}.getHours("Not/AZone")',
}
for _name, _expr in _TIME_ERRORS.items():
    _add(f"time-{_name}", "time", _expr, ERROR)
_add(
    "time-tz-variable-path",
    "time",
    "t.getHours(tz)",
    "eval_error",
    variables={"t": TIMESTAMP, "tz": STRING},
    activation={"t": _ts(EPOCH_2000), "tz": "/etc/passwd"},
)
_add("time-tz-legit-zone", "time", f'{TS_ZERO}.getHours("Europe/Berlin")', "value", 1)
_add("time-tz-legit-offset", "time", f'{TS_ZERO}.getHours("+01:00")', "value", 1)
_add(
    "time-local-year-10000",
    "time",
    'timestamp("9999-12-31T23:59:59Z").getFullYear("+23:59")',
    ("eval_error", "value"),
    10_000,
    note="local time past datetime.MAXYEAR",
)
_add(
    "time-local-year-0",
    "time",
    'timestamp("0001-01-01T00:00:00Z").getFullYear("-23:59")',
    ("eval_error", "value"),
    0,
    note="local time before datetime.MINYEAR",
)
_add(
    "time-local-year-0-zone",
    "time",
    'timestamp("0001-01-01T00:00:00Z").getDayOfWeek("America/Los_Angeles")',
    ("eval_error", "value"),
    0,
)
_add(
    "time-3000-digit-fraction",
    "time",
    'timestamp("2000-01-01T00:00:00.' + "0" * 3_000 + 'Z")',
    ("eval_error", "value"),
    _ts(EPOCH_2000),
)

# ===========================================================================
# utf8

_UTF8_ERRORS: Final = {
    "ff": r'string(b"\xff")',
    "overlong-nul": r'string(b"\xc0\x80")',
    "encoded-surrogate": r'string(b"\xed\xa0\x80")',
    "beyond-10ffff": r'string(b"\xf4\x90\x80\x80")',
    "truncated": r'string(b"\xe2\x82")',
}
for _name, _expr in _UTF8_ERRORS.items():
    _add(f"utf8-{_name}", "utf8", _expr, "eval_error")
_add(
    "utf8-variable",
    "utf8",
    "string(b)",
    "eval_error",
    variables={"b": BYTES},
    activation={"b": b"\xff" * 1_000},
)
_add("utf8-nul", "utf8", r'string(b"\x00")', "value", "\x00")
_add("utf8-bom", "utf8", r'string(b"\xef\xbb\xbf")', "value", "\ufeff")
_add("utf8-bytes-literal-non-ascii", "utf8", 'b"ÿ"', "value", b"\xc3\xbf")
_add("utf8-bytes-octal", "utf8", r'b"\377"', "value", b"\xff")
_add("utf8-bytes-unicode-escape", "utf8", r'b"\u00ff"', "compile_error")
_add("utf8-size-bytes", "utf8", r'size(b"\xff\xfe")', "value", 2)
_add("utf8-size-astral", "utf8", r'size("\U0001F600")', "value", 1)
_add("utf8-no-normalization", "utf8", r'"\u00e9" == "e\u0301"', "value", False)

# ===========================================================================
# keyword-names: Python keywords, builtins and dunders as legitimate CEL names

_PY_NAMES: Final = (
    "def",
    "class",
    "lambda",
    "None",
    "True",
    "False",
    "not",
    "and",
    "or",
    "is",
    "pass",
    "yield",
    "await",
    "async",
    "del",
    "global",
    "nonlocal",
    "raise",
    "try",
    "except",
    "finally",
    "with",
    "from",
    "assert",
    "elif",
    "print",
    "eval",
    "exec",
    "open",
    "getattr",
    "__builtins__",
    "__import__",
    "__class__",
)
_add(
    "keyword-names-declared-sum",
    "keyword-names",
    " + ".join(_PY_NAMES),
    "value",
    sum(range(len(_PY_NAMES))),
    variables=dict.fromkeys(_PY_NAMES, INT),
    activation={name: i for i, name in enumerate(_PY_NAMES)},
)
_add(
    "keyword-names-unchecked-sum",
    "keyword-names",
    " + ".join(_PY_NAMES),
    "value",
    sum(range(len(_PY_NAMES))),
    activation={name: i for i, name in enumerate(_PY_NAMES)},
    checked=False,
)
for _name in ("lambda", "None", "class", "__builtins__", "__import__", "yield"):
    _add(
        f"keyword-names-iter-var-{_name.strip('_')}",
        "keyword-names",
        f"[1, 2].map({_name}, {_name} + 1)",
        "value",
        [2, 3],
    )
_add(
    "keyword-names-dotted-variable",
    "keyword-names",
    "__class__.__mro__ + 1",
    "value",
    2,
    variables={"__class__.__mro__": INT},
    activation={"__class__.__mro__": 1},
)
_add(
    "keyword-names-undeclared-none",
    "keyword-names",
    "None",
    "compile_error",
)

# ===========================================================================
# activation: hostile shapes in the data


def _two_deep_lists() -> Mapping[str, object]:
    def build() -> list[object]:
        value: list[object] = [1]
        for _ in range(5_000):
            value = [value]
        return value

    return {"x": build(), "y": build()}


_add(
    "activation-deep-list-equality",
    "activation",
    "x == y",
    ("eval_error", "value"),
    True,
    variables={"x": DYN, "y": DYN},
    activation=functools.cache(_two_deep_lists),
)
_add(
    "activation-deep-list-in",
    "activation",
    "x in [y]",
    ("eval_error", "value"),
    True,
    variables={"x": DYN, "y": DYN},
    activation=functools.cache(_two_deep_lists),
)
_add(
    "activation-deep-map-has",
    "activation",
    "has(x.b)",
    "value",
    True,
    variables={"x": DYN},
    activation=lambda: {"x": _nested_map(5_000)},
)
_add(
    "activation-missing-variable",
    "activation",
    "x",
    "eval_error",
    variables={"x": INT},
)
_add(
    "activation-bool-is-not-int",
    "activation",
    "x + 1",
    "eval_error",
    variables={"x": DYN},
    activation={"x": True},
)

# ===========================================================================
# limits-raised: the same bombs with the expression-length bound lifted, so
# the depth/node/element bounds (or the interpreter's own limits) are what
# stops them. Time budget: no hang (1 s), not the product's 10 ms.

_RAISED: Final = Limits(max_expression_length=10_000_000)
_NO_HANG_MS: Final = 1_000.0
_RAISED_CASES: Final[dict[str, tuple[Callable[[], str], tuple[Outcome, ...], object]]] = {
    "parens-100k": (_nest(100_000, "(", "1", ")"), ("compile_error",), NO_VALUE),
    "lists-100k": (_nest(100_000, "[", "1", "]"), ("compile_error",), NO_VALUE),
    "maps-100k": (_nest(100_000, "{1:", "1", "}"), ("compile_error",), NO_VALUE),
    "not-100k": (_lazy(lambda: "!" * 100_000 + "true"), _DEEP_OK, True),
    "neg-100k": (_lazy(lambda: "-" * 100_000 + "1"), _DEEP_OK, 1),
    "or-100k": (_repeat_join("true", "||", 100_000), _DEEP_OK, True),
    "and-100k": (_repeat_join("true", "&&", 100_000), _DEEP_OK, True),
    "plus-100k": (_repeat_join("1", "+", 100_000), _DEEP_OK, 100_000),
    "select-100k": (
        _lazy(lambda: "{}" + ".b" * 100_000),
        ("compile_error", "eval_error"),
        NO_VALUE,
    ),
    "ternary-100k": (_lazy(lambda: "false?0:" * 100_000 + "1"), _DEEP_OK, 1),
    "list-100k-elements": (_literal_list(100_000), ("compile_error",), NO_VALUE),
    "int-1e6-digits": (_lazy(lambda: "1" * 1_000_000), ("compile_error",), NO_VALUE),
}
for _name, (_builder, _expect, _value) in _RAISED_CASES.items():
    _add(
        f"raised-{_name}",
        "limits-raised",
        _builder,
        _expect,
        _value,
        limits=_RAISED,
        budget_ms=_NO_HANG_MS,
    )
_DEEP_LIMITS: Final = Limits(
    max_expression_length=10_000_000, max_nesting_depth=100_000, max_ast_nodes=1_000_000
)
for _name, (_builder, _value) in {
    "deep-parens-20k": (_nest(20_000, "(", "1", ")"), 1),
    "deep-lists-5k": (_nest(5_000, "[", "1", "]"), _nested_list(4_999)),
    "deep-dyn-5k": (_nest(5_000, "dyn(", "1", ")"), 1),
    "deep-neg-5k": (_nest(5_000, "-(", "1", ")"), 1),
    "deep-ternary-5k": (_lazy(lambda: "false?0:" * 5_000 + "1"), 1),
}.items():
    _add(
        f"raised-{_name}",
        "limits-raised",
        _builder,
        _DEEP_OK,
        _value,
        limits=_DEEP_LIMITS,
        budget_ms=_NO_HANG_MS,
        note="depth bound configured beyond the interpreter's stack",
    )

# ===========================================================================
# limits-honored: each Limits field, set low, is enforced (a configured bound
# that silently falls back to the default is no bound).

_LIMITS_HONORED: Final[
    list[tuple[str, Limits, str, Outcome | tuple[Outcome, ...], dict[str, Type], dict[str, object]]]
] = [
    (
        "expression-length",
        Limits(max_expression_length=10),
        "1 + 2 + 3 + 4",
        "compile_error",
        {},
        {},
    ),
    (
        "nesting-depth",
        Limits(max_nesting_depth=5),
        "((((((((((1))))))))))",
        "compile_error",
        {},
        {},
    ),
    (
        "ast-nodes",
        Limits(max_ast_nodes=10),
        "1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1",
        "compile_error",
        {},
        {},
    ),
    (
        "literal-elements",
        Limits(max_literal_elements=4),
        "[1, 2, 3, 4, 5, 6]",
        "compile_error",
        {},
        {},
    ),
    (
        "literal-entries",
        Limits(max_literal_elements=4),
        "{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}",
        "compile_error",
        {},
        {},
    ),
    (
        "regex-length-literal",
        Limits(max_regex_length=8),
        's.matches("aaaaaaaaaaaaaaaa")',
        ERROR,
        {"s": STRING},
        {"s": "a"},
    ),
    (
        "regex-length-dynamic",
        Limits(max_regex_length=8),
        "s.matches(p)",
        "eval_error",
        {"s": STRING, "p": STRING},
        {"s": "a", "p": "a" * 16},
    ),
    (
        "iterations",
        Limits(max_cost=10),
        "xs.all(x, true)",
        "eval_error",
        {"xs": ListType(INT)},
        {"xs": list(range(20))},
    ),
    (
        "iterations-nested",
        Limits(max_cost=50),
        "xs.map(x, xs.map(y, 0))",
        "eval_error",
        {"xs": ListType(INT)},
        {"xs": list(range(10))},
    ),
    (
        "value-size-string",
        Limits(max_value_size=100),
        "s + s",
        "eval_error",
        {"s": STRING},
        {"s": "a" * 60},
    ),
    (
        "value-size-bytes",
        Limits(max_value_size=100),
        "b + b",
        "eval_error",
        {"b": BYTES},
        {"b": b"a" * 60},
    ),
    (
        "value-size-list",
        Limits(max_value_size=100),
        "xs + xs",
        "eval_error",
        {"xs": ListType(INT)},
        {"xs": list(range(60))},
    ),
]
for _name, _limits, _expr, _outcome, _variables, _activation in _LIMITS_HONORED:
    _add(
        f"limits-honored-{_name}",
        "limits-honored",
        _expr,
        _outcome,
        variables=_variables,
        activation=_activation,
        limits=_limits,
    )
