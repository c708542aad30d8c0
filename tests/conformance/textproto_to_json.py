#!/usr/bin/env python3
"""Convert CEL conformance ``SimpleTestFile`` textproto files to the JSON case format.

The output format is described in ``shared/conformance/cel/README.md``
(``{"source": ..., "tests": [case, ...]}``). This is a small hand-written
reader of the text format, enough for the files in google/cel-spec
``tests/simple/testdata``: no protobuf dependency.

Usage::

    python tests/conformance/textproto_to_json.py OUT_DIR FILE.textproto [...]
    python tests/conformance/textproto_to_json.py --stdout FILE.textproto

A file named ``X.jsonstr`` is also accepted: it holds the textproto as one JSON
string literal (how text copied from a JSON-returning tool can be stored
without re-escaping), and converts as ``X.textproto`` would.

Per case it emits ``file``, ``section``, ``name``, ``expr`` and, when present,
``description``, ``disable_check``, ``disable_macros``, ``check_only``,
``container``, ``type_env`` (each Decl as one-line textproto), ``bindings``,
``expect`` and an inferred ``requires`` list:

- ``container`` when the case sets a container;
- ``proto_message`` when the expression names protobuf message types
  (``TestAllTypes``, ``google.protobuf.*``, ``proto2``/``proto3``,
  ``cel.expr``, enums) or a value/binding is a non-well-known message;
- ``proto_enum`` when a value is an enum value;
- ``unknown`` when the expected result is an unknown set.

Expectations: ``value`` -> ``{"value": V}``; ``typed_result`` ->
``{"value": V, "type": "<Type textproto>"}``; ``eval_error`` /
``any_eval_errors`` -> ``{"error": [messages]}``; ``unknown`` /
``any_unknowns`` -> ``{"unknown": [exprs]}``; no matcher -> ``{"value":
{"bool": true}}`` (the SimpleTest default).
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------
# Text format reader


@dataclass
class Scalar:
    raw: str  # for strings: the decoded bytes as latin-1 text; else the token text
    is_string: bool = False

    def as_bytes(self) -> bytes:
        return self.raw.encode("latin-1") if self.is_string else self.raw.encode()

    def as_text(self) -> str:
        if self.is_string:
            return self.as_bytes().decode("utf-8", errors="surrogateescape")
        return self.raw


Message = list  # list[tuple[str, Scalar | Message]]

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    |(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
    |(?P<ext>\[[^\]]*\])
    |(?P<word>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fFuU]?
               |[A-Za-z_][A-Za-z0-9_.]*))
    |(?P<punct>[:{}<>,;])
    """,
    re.VERBOSE | re.DOTALL,
)

_SIMPLE = {
    "n": b"\n",
    "t": b"\t",
    "r": b"\r",
    "a": b"\a",
    "b": b"\b",
    "f": b"\f",
    "v": b"\v",
    "\\": b"\\",
    "'": b"'",
    '"': b'"',
    "?": b"?",
}


def unescape(body: str) -> bytes:
    """C-style escapes of the protobuf text format; returns raw bytes."""
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8")
            i += 1
            continue
        i += 1
        esc = body[i]
        if esc in _SIMPLE:
            out += _SIMPLE[esc]
            i += 1
        elif esc in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i:])
            assert m
            out.append(int(m.group(), 8) & 0xFF)
            i += len(m.group())
        elif esc in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 1 :])
            if not m:
                raise ValueError(f"bad \\x escape in {body!r}")
            out.append(int(m.group(), 16))
            i += 1 + len(m.group())
        elif esc == "u":
            out += chr(int(body[i + 1 : i + 5], 16)).encode("utf-8", "surrogatepass")
            i += 5
        elif esc == "U":
            out += chr(int(body[i + 1 : i + 9], 16)).encode("utf-8", "surrogatepass")
            i += 9
        else:
            raise ValueError(f"unknown escape \\{esc} in {body!r}")
    return bytes(out)


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot tokenize at {pos}: {text[pos : pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            continue
        tokens.append((kind, m.group()))
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        _kind, got = self.take()
        if got != text:
            raise ValueError(f"expected {text!r}, got {got!r} at token {self.i}")

    def message(self, close: str | None) -> Message:
        fields: Message = []
        while True:
            tok = self.peek()
            if tok is None:
                if close is not None:
                    raise ValueError("unexpected end of input")
                return fields
            kind, text = tok
            if close is not None and text == close:
                self.take()
                return fields
            if text in (",", ";"):
                self.take()
                continue
            self.take()
            if kind == "ext":
                name = text  # keep brackets: [type.googleapis.com/...]
            elif kind == "word":
                name = text
            else:
                raise ValueError(f"expected a field name, got {text!r}")
            nxt = self.peek()
            if nxt is not None and nxt[1] == ":":
                self.take()
                nxt = self.peek()
            assert nxt is not None
            if nxt[1] in ("{", "<"):
                self.take()
                fields.append((name, self.message("}" if nxt[1] == "{" else ">")))
            elif nxt[1] == "[":  # not produced by the tokenizer (ext) for lists; unsupported
                raise ValueError("list syntax [a, b] is not supported")
            else:
                fields.append((name, self.scalar()))

    def scalar(self) -> Scalar:
        kind, text = self.take()
        if kind == "string":
            data = unescape(text[1:-1])
            # adjacent string literals concatenate
            while (nxt := self.peek()) is not None and nxt[0] == "string":
                self.take()
                data += unescape(nxt[1][1:-1])
            return Scalar(data.decode("latin-1"), is_string=True)
        if kind == "ext" and text.startswith("["):
            # a repeated scalar list "[a, b]" tokenized as ext; not used in these files
            raise ValueError(f"list values are not supported: {text!r}")
        if kind != "word":
            raise ValueError(f"expected a value, got {text!r}")
        return Scalar(text)


def parse_textproto(text: str) -> Message:
    return Parser(text).message(None)


def one(msg: Message, name: str) -> Any:
    for key, value in msg:
        if key == name:
            return value
    return None


def all_(msg: Message, name: str) -> list:
    return [value for key, value in msg if key == name]


# --------------------------------------------------------------------------
# Rendering a message back as one-line textproto (for type_env decls, types)


def quote(data: bytes) -> str:
    out = ['"']
    for b in data:
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif 0x20 <= b < 0x7F:
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


def render(msg: Message) -> str:
    parts = []
    for key, value in msg:
        if isinstance(value, Scalar):
            text = quote(value.as_bytes()) if value.is_string else value.raw
            parts.append(f"{key}: {text}")
        else:
            inner = render(value)
            parts.append(f"{key} {{ {inner} }}" if inner else f"{key} {{ }}")
    return " ".join(parts)


# --------------------------------------------------------------------------
# Values


class Needs(set):
    pass


_WKT_TIMESTAMP = "google.protobuf.Timestamp"
_WKT_DURATION = "google.protobuf.Duration"


def _int(s: Scalar) -> int:
    text = s.raw
    return int(text, 0) if text.lower().startswith(("0x", "-0x")) else int(text)


def _double(s: Scalar) -> float | str:
    text = s.raw.lower().lstrip("+")
    if text in ("inf", "infinity"):
        return "Infinity"
    if text in ("-inf", "-infinity"):
        return "-Infinity"
    if text in ("nan", "-nan"):
        return "NaN"
    value = float(text.rstrip("f")) if not text.startswith("0x") else float(int(text, 16))
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _rfc3339(seconds: int, nanos: int) -> str:
    from datetime import UTC, datetime, timedelta

    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        text = f"{moment.year:04d}" + text[len(str(moment.year)) :] if moment.year < 1000 else text
        text += "." + f"{nanos:09d}".rstrip("0")
    elif moment.year < 1000:
        text = f"{moment.year:04d}" + text[len(str(moment.year)) :]
    return text + "Z"


def _duration(seconds: int, nanos: int) -> str:
    total = seconds * 1_000_000_000 + nanos
    sign = "-" if total < 0 else ""
    whole, frac = divmod(abs(total), 1_000_000_000)
    text = f"{sign}{whole}"
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "s"


def _message_to_json(msg: Message) -> dict:
    out: dict = {}
    for key, value in msg:
        if isinstance(value, Scalar):
            v: Any = value.as_text() if value.is_string else value.raw
        else:
            v = _message_to_json(value)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(v)
        else:
            out[key] = v
    return out


def convert_object(msg: Message, needs: Needs) -> dict:
    """object_value { [type.googleapis.com/NAME] { fields } }"""
    for key, body in msg:
        if key.startswith("["):
            type_url = key[1:-1].strip()
            name = type_url.rsplit("/", 1)[-1]
            fields = body if isinstance(body, list) else []
            if name in (_WKT_TIMESTAMP, _WKT_DURATION):
                seconds = int(one(fields, "seconds").raw) if one(fields, "seconds") else 0
                nanos = int(one(fields, "nanos").raw) if one(fields, "nanos") else 0
                if name == _WKT_TIMESTAMP:
                    return {"timestamp": _rfc3339(seconds, nanos)}
                return {"duration": _duration(seconds, nanos)}
            needs.add("proto_message")
            return {"object": {"type_url": type_url}}
        if key in ("type_url",):
            needs.add("proto_message")
            return {"object": {"type_url": one(msg, "type_url").as_text()}}
    needs.add("proto_message")
    return {"object": {"type_url": ""}}


def convert_value(msg: Message, needs: Needs) -> dict:
    """A cel.expr.Value message as the JSON value encoding."""
    if not msg:
        # an empty Value: treat as null (kind unset)
        return {"null": None}
    kind, body = msg[0]
    if kind == "null_value":
        return {"null": None}
    if kind == "bool_value":
        return {"bool": body.raw == "true"}
    if kind == "int64_value":
        return {"int": _int(body)}
    if kind == "uint64_value":
        return {"uint": _int(body)}
    if kind == "double_value":
        return {"double": _double(body)}
    if kind == "string_value":
        return {"string": body.as_text()}
    if kind == "bytes_value":
        return {"bytes": base64.b64encode(body.as_bytes()).decode("ascii")}
    if kind == "list_value":
        return {"list": [convert_value(v, needs) for v in all_(body, "values")]}
    if kind == "map_value":
        entries = []
        for entry in all_(body, "entries"):
            entries.append(
                [
                    convert_value(one(entry, "key") or [], needs),
                    convert_value(one(entry, "value") or [], needs),
                ]
            )
        return {"map": entries}
    if kind == "type_value":
        return {"type": body.as_text()}
    if kind == "enum_value":
        needs.add("proto_enum")
        type_ = one(body, "type")
        value = one(body, "value")
        return {
            "enum": {
                "type": type_.as_text() if type_ else "",
                "value": int(value.raw) if value else 0,
            }
        }
    if kind == "object_value":
        return convert_object(body, needs)
    raise ValueError(f"unknown value kind {kind!r}")


# --------------------------------------------------------------------------
# Tests

_PROTO_EXPR = re.compile(r"TestAllTypes|google\.protobuf|proto[23]|Enum|cel\.expr")


def convert_test(file: str, section: str, test: Message) -> dict:
    needs = Needs()
    name = one(test, "name")
    expr = one(test, "expr")
    case: dict[str, Any] = {
        "file": file,
        "section": section,
        "name": name.as_text() if name else "",
        "expr": expr.as_text() if expr else "",
    }
    description = one(test, "description")
    if description is not None:
        case["description"] = description.as_text()
    for flag in ("disable_check", "disable_macros", "check_only"):
        value = one(test, flag)
        if value is not None and value.raw == "true":
            case[flag] = True
    container = one(test, "container")
    if container is not None and container.as_text():
        case["container"] = container.as_text()
        needs.add("container")

    type_env = []
    for decl in all_(test, "type_env"):
        decl_name = one(decl, "name")
        type_env.append({"name": decl_name.as_text() if decl_name else "", "decl": render(decl)})
    if type_env:
        case["type_env"] = type_env

    bindings = {}
    for entry in all_(test, "bindings"):
        key = one(entry, "key").as_text()
        expr_value = one(entry, "value") or []  # cel.expr.ExprValue
        if one(expr_value, "value") is not None:
            bindings[key] = convert_value(one(expr_value, "value"), needs)
        elif one(expr_value, "unknown") is not None:
            needs.add("unknown")
            bindings[key] = {"unknown": _message_to_json(one(expr_value, "unknown"))}
        elif one(expr_value, "error") is not None:
            bindings[key] = {"error": _message_to_json(one(expr_value, "error"))}
        else:
            bindings[key] = {"null": None}
    if bindings:
        case["bindings"] = bindings

    expect: dict[str, Any]
    if (value := one(test, "value")) is not None:
        expect = {"value": convert_value(value, needs)}
    elif (typed := one(test, "typed_result")) is not None:
        expect = {}
        if (result := one(typed, "result")) is not None:
            expect["value"] = convert_value(result, needs)
        if (deduced := one(typed, "deduced_type")) is not None:
            expect["type"] = render(deduced)
            if "message_type" in expect["type"] and not re.search(
                r"google\.protobuf\.(Timestamp|Duration)", expect["type"]
            ):
                needs.add("proto_message")
    elif (error := one(test, "eval_error")) is not None:
        expect = {
            "error": [
                one(e, "message").as_text()
                for e in all_(error, "errors")
                if one(e, "message") is not None
            ]
        }
    elif (any_errors := one(test, "any_eval_errors")) is not None:
        messages = []
        for group in all_(any_errors, "errors"):
            for e in all_(group, "errors"):
                if one(e, "message") is not None:
                    messages.append(one(e, "message").as_text())
        expect = {"error": messages}
    elif (unknown := one(test, "unknown")) is not None:
        needs.add("unknown")
        expect = {"unknown": [_int(s) for s in all_(unknown, "exprs")]}
    elif (any_unknowns := one(test, "any_unknowns")) is not None:
        needs.add("unknown")
        expect = {
            "unknown": [[_int(s) for s in all_(g, "exprs")] for g in all_(any_unknowns, "unknowns")]
        }
    else:
        expect = {"value": {"bool": True}}
    case["expect"] = expect

    if _PROTO_EXPR.search(case["expr"]):
        needs.add("proto_message")
    if needs:
        case["requires"] = sorted(needs)
    return case


def convert_text(text: str, stem: str) -> dict:
    root = parse_textproto(text)
    file_name = one(root, "name")
    file = file_name.as_text() if file_name else stem
    tests = []
    for section in all_(root, "section"):
        section_name = one(section, "name")
        for test in all_(section, "test"):
            tests.append(convert_test(file, section_name.as_text() if section_name else "", test))
    return {"source": f"google/cel-spec tests/simple/testdata/{stem}.textproto", "tests": tests}


def read_source(path: Path) -> tuple[str, str]:
    """(stem, textproto text); ``.jsonstr`` files hold the text as a JSON string."""
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonstr":
        raw = json.loads(raw)
    stem = path.name.split(".")[0]
    return stem, raw


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    to_stdout = argv[0] == "--stdout"
    out_dir = None if to_stdout else Path(argv[0])
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for arg in argv[1:]:
        stem, text = read_source(Path(arg))
        data = convert_text(text, stem)
        rendered = json.dumps(data, indent=1, ensure_ascii=False)
        if out_dir is None:
            sys.stdout.write(rendered)
        else:
            (out_dir / f"{stem}.json").write_text(rendered, encoding="utf-8")
            print(f"{arg} -> {out_dir / (stem + '.json')}: {len(data['tests'])} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
