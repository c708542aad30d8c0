"""Arbiter's CEL (Common Expression Language) toolchain.

One door for the rest of the product::

    from arbiter.policies import cel

    env = cel.Env(variables={"profile": cel.MapType(cel.STRING, cel.DYN)})
    program = cel.compile('profile.country == "DE" && profile.age >= 18', env)
    program.evaluate({"profile": {"country": "DE", "age": 30}})  # -> True
    program.references  # -> frozenset({"profile.country", "profile.age"})

``compile`` parses, type-checks and generates Python code; it raises
:class:`CompileError` listing every issue with line and column.
``Program.evaluate`` returns the CEL value or raises :class:`EvalError`
(the CEL error value as an exception); :class:`CostLimitError` when a
runtime bound is exceeded.
"""

from .compiler import Program, compile
from .env import Env, FunctionDecl, Limits, Overload
from .errors import CelError, CompileError, CostLimitError, EvalError, Issue
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    ListType,
    MapType,
    OpaqueType,
    Type,
    TypeParam,
    TypeType,
)
from .values import Duration, Timestamp, TypeValue, UInt

__all__ = [
    "BOOL",
    "BYTES",
    "DOUBLE",
    "DURATION",
    "DYN",
    "INT",
    "NULL",
    "STRING",
    "TIMESTAMP",
    "UINT",
    "CelError",
    "CompileError",
    "CostLimitError",
    "Duration",
    "Env",
    "EvalError",
    "FunctionDecl",
    "Issue",
    "Limits",
    "ListType",
    "MapType",
    "OpaqueType",
    "Overload",
    "Program",
    "Timestamp",
    "Type",
    "TypeParam",
    "TypeType",
    "TypeValue",
    "UInt",
    "compile",
]
