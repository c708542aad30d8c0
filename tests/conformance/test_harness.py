"""The conformance runner's oracle (value decoding, equality, declarations), its
outcome rules and the ``arbiter cel`` command line, against a fake compiler."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from arbiter.policies import cel
from arbiter.policies.cel import compiler
from arbiter.policies.cel.types import ANY, ERROR
from arbiter.policies.cel.values import Duration, Timestamp, TypeValue, UInt
from arbiter.server.cli import main
from arbiter.server.cli_cel import load_harness

_harness = load_harness()
CaseStatus = _harness.CaseStatus
Unsupported = _harness.Unsupported
UnsupportedFeature = _harness.UnsupportedFeature
cel_repr = _harness.cel_repr
decode_value = _harness.decode_value
parse_decl = _harness.parse_decl
parse_type = _harness.parse_type
run_case = _harness.run_case
values_equal = _harness.values_equal

# --------------------------------------------------------------------------
# decode_value


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ({"null": None}, None),
        ({"bool": True}, True),
        ({"int": -(2**63)}, -(2**63)),
        ({"int": "42"}, 42),
        ({"uint": 2**64 - 1}, UInt(2**64 - 1)),
        ({"double": 1.5}, 1.5),
        ({"double": 3}, 3.0),
        ({"double": "Infinity"}, math.inf),
        ({"double": "-Infinity"}, -math.inf),
        ({"string": "héllo"}, "héllo"),
        ({"bytes": ""}, b""),
        ({"bytes": "AP8="}, b"\x00\xff"),
        ({"bytes": "AP8"}, b"\x00\xff"),  # unpadded
        ({"list": [{"int": 1}, {"uint": 1}]}, [1, UInt(1)]),
        ({"map": []}, {}),
        (
            {"map": [[{"string": "a"}, {"int": 1}], [{"int": 2}, {"bool": False}]]},
            {"a": 1, 2: False},
        ),
        ({"type": "google.protobuf.Timestamp"}, TypeValue("google.protobuf.Timestamp")),
        ({"timestamp": "1970-01-01T00:00:00Z"}, Timestamp(0)),
        ({"timestamp": "2009-02-13T23:31:30Z"}, Timestamp(1_234_567_890 * 10**9)),
        ({"timestamp": "2009-02-14T00:31:30.5+01:00"}, Timestamp(1_234_567_890_500_000_000)),
        ({"timestamp": "0001-01-01T00:00:00Z"}, Timestamp(-62_135_596_800 * 10**9)),
        ({"timestamp": "9999-12-31T23:59:59.999999999Z"}, Timestamp(253_402_300_799_999_999_999)),
        ({"duration": "1.5s"}, Duration(1_500_000_000)),
        ({"duration": "-0.000000001s"}, Duration(-1)),
        ({"duration": "1000000s"}, Duration(10**15)),
        ({"duration": "1h30m"}, Duration(5_400 * 10**9)),
        ({"duration": "-1.5ms"}, Duration(-1_500_000)),
        ({"duration": {"seconds": 2, "nanos": 5}}, Duration(2_000_000_005)),
    ],
)
def test_decode_value(encoded: object, expected: object) -> None:
    decoded = decode_value(encoded)
    assert values_equal(expected, decoded), (decoded, expected)


def test_decode_nan_and_uint_type() -> None:
    nan = decode_value({"double": "NaN"})
    assert isinstance(nan, float) and math.isnan(nan)
    assert type(decode_value({"uint": 3})) is UInt
    assert type(decode_value({"int": 3})) is int
    assert type(decode_value({"bool": True})) is bool


@pytest.mark.parametrize(
    "encoded",
    [
        {"enum": {"type": "cel.expr.conformance.proto3.GlobalEnum", "value": 1}},
        {"object": {"type_url": "type.googleapis.com/cel.expr.conformance.proto3.TestAllTypes"}},
        {"optional": {"int": 1}},  # a value kind this runner does not know
    ],
)
def test_decode_unsupported(encoded: object) -> None:
    assert isinstance(decode_value(encoded), Unsupported)


def test_decode_well_known_object() -> None:
    encoded = {
        "object": {
            "type_url": "type.googleapis.com/google.protobuf.Duration",
            "value": {"seconds": 123, "nanos": 321456789},
        }
    }
    assert decode_value(encoded) == Duration(123_321_456_789)


@pytest.mark.parametrize(
    "encoded",
    [
        {"int": 2**63},
        {"uint": -1},
        {"int": 1.5},
        {"bool": 1},
        {"double": "many"},
        {"bytes": "!!!"},
        {"timestamp": "2009-02-30T00:00:00Z"},
        {"timestamp": "2009-02-13 23:31"},
        {"duration": "5 minutes"},
        {"map": [[{"int": 1}, {"int": 1}], [{"int": 1}, {"int": 2}]]},  # duplicate key
        {"int": 1, "uint": 1},
        "int",
    ],
)
def test_decode_malformed(encoded: object) -> None:
    with pytest.raises(ValueError):
        decode_value(encoded)


# --------------------------------------------------------------------------
# values_equal


@pytest.mark.parametrize(
    ("left", "right", "equal"),
    [
        (1, 1, True),
        (1, UInt(1), False),
        (1, 1.0, False),
        (1, True, False),
        (UInt(1), UInt(1), True),
        (math.nan, math.nan, True),
        (math.nan, 1.0, False),
        (-0.0, 0.0, True),
        ("a", b"a", False),
        (None, None, True),
        (None, 0, False),
        ([1, 2], (1, 2), True),
        ([1, 2], [2, 1], False),
        ([1], [1, 1], False),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ({"a": 1}, {"a": UInt(1)}, False),
        ({1: "x"}, {UInt(1): "x"}, False),
        ({"a": [math.nan]}, {"a": [math.nan]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        (Timestamp(5), Timestamp(5), True),
        (Timestamp(5), Duration(5), False),
        (TypeValue("int"), TypeValue("int"), True),
        (TypeValue("int"), "int", False),
        (Unsupported("x"), Unsupported("x"), False),
        (object(), object(), False),
    ],
)
def test_values_equal(left: object, right: object, equal: bool) -> None:
    assert values_equal(left, right) is equal
    assert values_equal(right, left) is equal


def test_cel_repr() -> None:
    value = [None, True, 1, UInt(2), 1.5, math.nan, 'q"', b"\x00a", {"k": Duration(1_500_000_000)}]
    assert cel_repr(value) == (
        '[null, true, 1, 2u, 1.5, double("NaN"), "q\\"", b"\\x00a", {"k": duration("1.5s")}]'
    )
    assert cel_repr(Timestamp(1_234_567_890_500_000_000)) == 'timestamp("2009-02-13T23:31:30.5Z")'


# --------------------------------------------------------------------------
# parse_decl / parse_type


@pytest.mark.parametrize(
    ("decl", "name", "type_"),
    [
        ('name: "x" ident { type { primitive: INT64 } }', "x", cel.INT),
        ('name: "x" ident { type { primitive: UINT64 } }', "x", cel.UINT),
        ('name: "x" ident { type { primitive: DOUBLE } }', "x", cel.DOUBLE),
        ('name: "x" ident { type { primitive: BOOL } }', "x", cel.BOOL),
        ('name: "x" ident { type { primitive: STRING } }', "x", cel.STRING),
        ('name: "x" ident { type { primitive: BYTES } }', "x", cel.BYTES),
        ('name: "x" ident { type { null: NULL_VALUE } }', "x", cel.NULL),
        ('name: "x" ident { type { dyn {} } }', "x", cel.DYN),
        ('name: "a.b.c" ident { type { primitive: STRING } }', "a.b.c", cel.STRING),
        (
            'name: "a" ident { type { list_type { elem_type { primitive: INT64 } } } }',
            "a",
            cel.ListType(cel.INT),
        ),
        (
            'name: "x" ident { type { map_type { key_type { primitive: STRING } '
            "value_type { primitive: INT64 } } } }",
            "x",
            cel.MapType(cel.STRING, cel.INT),
        ),
        ('name: "t" ident { type { well_known: TIMESTAMP } }', "t", cel.TIMESTAMP),
        ('name: "d" ident { type { well_known: DURATION } }', "d", cel.DURATION),
        ('name: "a" ident { type { well_known: ANY } }', "a", ANY),
        (
            'name: "d" ident: { type: { message_type: "google.protobuf.Duration" } }',
            "d",
            cel.DURATION,
        ),
        ('name: "t" ident { type { type { primitive: INT64 } } }', "t", cel.TypeType(cel.INT)),
        ('name: "e" ident { type { error {} } }', "e", ERROR),
        # multi-line, with a comment and angle brackets
        ('name: "x"\n# comment\nident < type < primitive: INT64 > >', "x", cel.INT),
        # proto3 JSON form
        (
            {"name": "x", "ident": {"type": {"list_type": {"elem_type": {"dyn": {}}}}}},
            "x",
            cel.ListType(cel.DYN),
        ),
    ],
)
def test_parse_decl_ident(decl: str | Mapping[str, object], name: str, type_: cel.Type) -> None:
    assert parse_decl(decl) == (name, type_)


def test_parse_decl_function() -> None:
    name, decl = parse_decl(
        'name: "fn" function { overloads { overload_id: "fn_string_int" '
        "result_type { primitive: STRING } params { primitive: STRING } "
        'params { type_param: "T" } } overloads { overload_id: "x_fn" '
        "is_instance_function: true params { primitive: INT64 } result_type { dyn {} } } }"
    )
    assert name == "fn"
    assert isinstance(decl, cel.FunctionDecl)
    first, second = decl.overloads
    assert first == cel.Overload(
        "fn_string_int", (cel.STRING, cel.TypeParam("T")), cel.STRING, None, receiver=False
    )
    assert second.receiver and second.params == (cel.INT,) and second.result == cel.DYN


def test_parse_type_forms() -> None:
    assert parse_type("primitive: INT64") == cel.INT
    assert parse_type(
        'abstract_type { name: "optional_type" parameter_types { primitive: INT64 } }'
    ) == cel.OpaqueType("optional_type", (cel.INT,))
    assert parse_type({"map_type": {"key_type": {"primitive": "STRING"}, "value_type": {}}}) == (
        cel.MapType(cel.STRING, cel.DYN)
    )


@pytest.mark.parametrize(
    "decl",
    [
        'name: "m" ident { type { message_type: "cel.expr.conformance.proto3.TestAllTypes" } }',
        'name: "w" ident { type { wrapper: INT64 } }',
        'name: "f" ident { type { function { result_type { primitive: INT64 } } } }',
    ],
)
def test_parse_decl_unsupported(decl: str) -> None:
    with pytest.raises(UnsupportedFeature):
        parse_decl(decl)


@pytest.mark.parametrize(
    "decl",
    [
        'name: "x"',
        'name: "x" ident { type { primitive: INT128 } }',
        'name: "x" ident { type { primitive: INT64 }',
        "ident { type { primitive: INT64 } }",
        'name: "x" ident { type { bogus: 1 } }',
    ],
)
def test_parse_decl_malformed(decl: str) -> None:
    with pytest.raises(ValueError):
        parse_decl(decl)


# --------------------------------------------------------------------------
# run_case rules, against a fake compiler


class FakeProgram:
    def __init__(
        self, value: object = None, *, error: str | None = None, result_type: cel.Type = cel.DYN
    ) -> None:
        self.value, self.error, self.result_type = value, error, result_type

    def evaluate(self, activation: Mapping[str, object]) -> object:
        if self.error is not None:
            raise cel.EvalError(self.error)
        if self.value == "echo x":
            return activation["x"]
        return self.value


CompileTable = dict[str, FakeProgram | Exception]


@pytest.fixture
def fake_compiler(monkeypatch: pytest.MonkeyPatch) -> Callable[[CompileTable], list[cel.Env]]:
    """Replace the compiler with a table ``expr -> FakeProgram | exception``;
    returns the list of Envs it was called with."""

    def install(table: CompileTable) -> list[cel.Env]:
        envs: list[cel.Env] = []

        def fake_compile(source: str, env: cel.Env | None = None, *, macros: bool = True) -> object:
            assert env is not None
            envs.append(env)
            entry = table[source]
            if isinstance(entry, Exception):
                raise entry
            return entry

        monkeypatch.setattr(compiler, "compile", fake_compile)
        return envs

    return install


def case(expr: str, expect: Mapping[str, object], **extra: object) -> dict[str, object]:
    return {"file": "f", "section": "s", "name": expr, "expr": expr, "expect": expect, **extra}


def compile_error() -> cel.CompileError:
    return cel.CompileError([cel.Issue(1, 1, "nope")])


def test_value_must_match_type(fake_compiler: Callable[[CompileTable], list[cel.Env]]) -> None:
    fake_compiler({"ok": FakeProgram(UInt(1)), "bad": FakeProgram(1)})
    assert run_case(case("ok", {"value": {"uint": 1}})).status is CaseStatus.PASSED
    failed = run_case(case("bad", {"value": {"uint": 1}}))
    assert failed.status is CaseStatus.FAILED
    assert (failed.reason, failed.expected, failed.got) == ("wrong value", "1u", "1 (int)")


def test_bindings_and_declarations(fake_compiler: Callable[[CompileTable], list[cel.Env]]) -> None:
    envs = fake_compiler({"x": FakeProgram("echo x")})
    checked = case(
        "x",
        {"value": {"int": 7}},
        bindings={"x": {"int": 7}},
        type_env=[{"name": "x", "decl": 'name: "x" ident { type { primitive: INT64 } }'}],
    )
    assert run_case(checked).status is CaseStatus.PASSED
    assert envs[-1].variables == {"x": cel.INT} and not envs[-1].disable_check
    unchecked = case("x", {"value": {"int": 7}}, bindings={"x": {"int": 7}}, disable_check=True)
    assert run_case(unchecked).status is CaseStatus.PASSED
    assert envs[-1].variables == {"x": cel.DYN} and envs[-1].disable_check


def test_error_expectations(fake_compiler: Callable[[CompileTable], list[cel.Env]]) -> None:
    fake_compiler(
        {"1/0": FakeProgram(error="divide by zero"), "bad": compile_error(), "1": FakeProgram(1)}
    )
    passed = run_case(case("1/0", {"error": ["divide by zero"]}))
    assert passed.status is CaseStatus.PASSED and "message matches" in passed.note
    # A constant expression rejected at compile time fails for every input: accepted ...
    early = run_case(case("bad", {"error": ["x"]}))
    assert early.status is CaseStatus.PASSED and early.note.startswith("rejected at compile time")
    # ... but not in strict mode, nor when the failure depends on bindings.
    assert run_case(case("bad", {"error": ["x"]}), strict_errors=True).status is CaseStatus.FAILED
    bound = case("bad", {"error": ["x"]}, bindings={"x": {"int": 1}}, disable_check=True)
    assert run_case(bound).status is CaseStatus.FAILED
    assert run_case(case("1", {"error": ["x"]})).reason == "expected an error"
    assert run_case(case("bad", {"value": {"int": 1}})).reason == "compile error"
    assert run_case(case("1/0", {"value": {"int": 1}})).reason == "evaluation error"


def test_deduced_type_and_check_only(
    fake_compiler: Callable[[CompileTable], list[cel.Env]],
) -> None:
    fake_compiler(
        {
            "[1]": FakeProgram([1], result_type=cel.ListType(cel.INT)),
            "fn('a')": FakeProgram(error="never evaluated", result_type=cel.STRING),
        }
    )
    typed = case(
        "[1]",
        {"value": {"list": [{"int": 1}]}, "type": "list_type { elem_type { primitive: INT64 } }"},
    )
    assert run_case(typed).status is CaseStatus.PASSED
    wrong = run_case(case("[1]", {"value": {"list": [{"int": 1}]}, "type": "list(uint)"}))
    assert (wrong.status, wrong.expected, wrong.got) == (
        CaseStatus.FAILED,
        "list(uint)",
        "list(int)",
    )
    fn_decl = 'name: "fn" function { overloads { overload_id: "f" params { primitive: STRING } result_type { primitive: STRING } } }'
    check_only = case(
        "fn('a')",
        {"type": {"primitive": "STRING"}},
        check_only=True,
        type_env=[{"name": "fn", "decl": fn_decl}],
    )
    assert run_case(check_only).status is CaseStatus.PASSED
    evaluated = dict(check_only, check_only=False)
    skipped = run_case(evaluated)
    assert skipped.status is CaseStatus.SKIPPED and "function" in skipped.reason


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"requires": ["proto_message"]}, "requires proto_message"),
        ({"requires": ["container", "proto_enum"]}, "requires proto_enum"),
        ({"container": "cel.expr.conformance.proto3"}, "container"),
        ({"bindings": {"x": {"enum": {"value": 1}}}}, "protobuf enum"),
        ({"expect": {"value": {"int": 1}, "type": "wrapper: INT64"}}, "wrapper type int64"),
        ({"expect": {"value": {"int": 1}, "unknown": [1]}}, "expectation kind unknown"),
        (
            {
                "type_env": [
                    {"name": "m", "decl": 'name: "m" ident { type { message_type: "a.B" } }'}
                ]
            },
            "message type a.B",
        ),
    ],
)
def test_skips_carry_reasons(
    fake_compiler: Callable[[CompileTable], list[cel.Env]], extra: dict[str, object], reason: str
) -> None:
    fake_compiler({"1": FakeProgram(1)})
    result = run_case({**case("1", {"value": {"int": 1}}), **extra})
    assert result.status is CaseStatus.SKIPPED
    assert reason in result.reason


def test_disable_macros_reaches_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []

    def fake_compile(source: str, env: cel.Env | None = None, *, macros: bool = True) -> object:
        seen.append(macros)
        return FakeProgram(True)

    monkeypatch.setattr(compiler, "compile", fake_compile)
    assert (
        run_case(case("x", {"value": {"bool": True}}, disable_macros=True)).status
        is CaseStatus.PASSED
    )
    assert seen == [False]


def test_crash_is_a_failure_with_traceback(
    fake_compiler: Callable[[CompileTable], list[cel.Env]],
) -> None:
    fake_compiler({"boom": ZeroDivisionError("oops")})
    result = run_case(case("boom", {"value": {"int": 1}}))
    assert result.status is CaseStatus.FAILED
    assert result.reason == "crash: ZeroDivisionError: oops"
    assert "Traceback" in result.traceback


def test_bad_test_data_is_a_failure(fake_compiler: Callable[[CompileTable], list[cel.Env]]) -> None:
    fake_compiler({"1": FakeProgram(1)})
    result = run_case(case("1", {"value": {"timestamp": "yesterday"}}))
    assert result.status is CaseStatus.FAILED and result.reason.startswith("bad test data")


# --------------------------------------------------------------------------
# arbiter cel conformance / eval


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    tiny = [
        case("1 + 1", {"value": {"int": 2}}),
        case("2 + 2", {"value": {"int": 4}}),
        case("TestAllTypes{}", {"value": {"object": {}}}, requires=["proto_message"]),
    ]
    (tmp_path / "tiny.json").write_text(json.dumps({"source": "hand-made", "tests": tiny}))
    (tmp_path / "all_pass.json").write_text(json.dumps({"tests": [tiny[0]]}))
    (tmp_path / "README.md").write_text("not a suite file")
    return tmp_path


def test_cli_conformance(
    suite_dir: Path,
    fake_compiler: Callable[[CompileTable], list[cel.Env]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_compiler({"1 + 1": FakeProgram(2), "2 + 2": FakeProgram(UInt(4))})
    assert main(["cel", "conformance", str(suite_dir)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "all_pass.json passed=1 failed=0 skipped=0",
        "tiny.json passed=1 failed=1 skipped=1",
        "TOTAL passed=2 failed=1 skipped=1 rate=0.667",
    ]
    assert main(["cel", "conformance", str(suite_dir), "--min-rate", "0.6"]) == 0
    assert main(["cel", "conformance", str(suite_dir), "--min-rate", "0.7"]) == 1
    assert "total rate 0.667 < 0.700" in capsys.readouterr().err
    assert main(["cel", "conformance", str(suite_dir), "--file-min-rate", "0.6"]) == 1
    assert "tiny.json rate 0.500 < 0.600" in capsys.readouterr().err

    assert main(["cel", "conformance", str(suite_dir), "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "  FAILED f/s/2 + 2: wrong value\n" in out
    assert "    expected: 4\n    got:      4u (uint)\n" in out
    assert "  SKIPPED f/s/TestAllTypes{}: requires proto_message: " in out


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cel", "conformance", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    assert main(["cel", "conformance", str(tmp_path)]) == 2  # no *.json files
    (tmp_path / "broken.json").write_text("{")
    assert main(["cel", "conformance", str(tmp_path)]) == 2
    assert main(["cel", "conformance"]) == 2
    assert main(["cel", "conformance", str(tmp_path), "--min-rate", "1.5"]) == 2
    assert main([]) == 2
    assert main(["cel"]) == 2
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("arbiter ")


def test_cli_eval(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[tuple[str, cel.Env]] = []

    def fake_compile(source: str, env: cel.Env | None = None) -> FakeProgram:
        assert env is not None
        calls.append((source, env))
        return FakeProgram("echo x", result_type=cel.DYN)

    monkeypatch.setattr(cel, "compile", fake_compile)
    assert main(["cel", "eval", "x", "--var", 'x={"uint": 3}']) == 0
    assert capsys.readouterr().out == "3u  # dyn\n"
    assert calls[-1][1].variables == {"x": cel.DYN}
    assert main(["cel", "eval", "x", "--var", 'x={"a": [1, 2.5, null]}']) == 0
    assert capsys.readouterr().out == '{"a": [1, 2.5, null]}  # dyn\n'
    assert main(["cel", "eval", "x", "--var", "x"]) == 2
    assert main(["cel", "eval", "x", "--var", "x={"]) == 2


def test_cli_eval_renders_cel_values(capsys: pytest.CaptureFixture[str]) -> None:
    expr = "[t + d, b, 0.0 / 0.0, -1.0 / 0.0, x]"
    args = ["--var", 't={"timestamp": "2024-01-01T00:00:00Z"}', "--var", 'd={"duration": "90s"}']
    args += ["--var", 'b={"bytes": "/yI="}', "--var", 'x={"uint": 7}']
    assert main(["cel", "eval", expr, *args]) == 0
    assert capsys.readouterr().out == (
        '[timestamp("2024-01-01T00:01:30Z"), b"\\xff\\x22", double("NaN"), '
        'double("-Infinity"), 7u]  # list(dyn)\n'
    )


def test_cli_conformance_without_the_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An installed wheel has no tools/: the command says so instead of crashing."""
    from arbiter.server import cli_cel

    monkeypatch.delitem(sys.modules, "cel_conformance")
    monkeypatch.setattr(cli_cel, "HARNESS_PATH", tmp_path / "tools" / "cel_conformance.py")
    (tmp_path / "case.json").write_text('{"tests": []}')
    assert main(["cel", "conformance", str(tmp_path)]) == 2
    assert "conformance harness is not installed" in capsys.readouterr().err
    assert "cel_conformance" not in sys.modules
