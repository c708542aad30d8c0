"""Load a policy set (a directory of YAML files) into the typed model, locating every error.

YAML is composed into nodes (with marks), turned into plain data while a map
from path -> (line, column) is recorded, then converted with
``msgspec.convert`` item by item; a failed conversion is diagnosed field by
field, so one bad field neither hides the others nor drops the whole file.

Scalars follow the YAML 1.2 core schema, not PyYAML's YAML 1.1 defaults:
``on``, ``no``, ``yes``, ``off`` stay strings (``NO`` is Norway, ``on:`` is a
transition field), ``010`` is ten, and timestamps stay strings (msgspec
parses RFC 3339). Duplicate keys are errors. Files are read in sorted path
order; ``.``-hidden paths, ``tests/`` directories and ``*_test.yaml`` /
``*.test.yaml`` files (scenario tests) are not policy files.

Errors are :class:`Diagnostic` values, never exceptions, so a caller gets all
of them at once; :func:`arbiter.policies.compiler.compile_policy` adds the semantic
ones.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from .diagnostics import Diagnostic, Location, PolicyError, Severity
from .model import Contracts, PolicyFile, PolicySet, PolicySetInfo

__all__ = [
    "Diagnostic",
    "LoadedPolicySet",
    "Location",
    "Locator",
    "PolicyError",
    "Severity",
    "SourceFile",
    "YamlLoader",
    "convert_located",
    "digest_sources",
    "load_directory",
    "load_document",
    "load_sources",
    "read_directory",
    "read_yaml",
]

PathElem = str | int
ModelPath = tuple[PathElem, ...]

_T = typing.TypeVar("_T")

_MAX_NODES: Final = 200_000  # alias bombs
_MAX_DEPTH: Final = 64


class SourceFile(msgspec.Struct, frozen=True):
    """One file of the set. ``path`` is relative to the set root, with ``/`` separators."""

    path: str
    text: str


class _FilePositions:
    """Marks of one file: value-node and key positions by path (1-based)."""

    __slots__ = ("keys", "styles", "values")

    def __init__(self) -> None:
        self.values: dict[ModelPath, tuple[int, int]] = {}
        self.keys: dict[ModelPath, tuple[int, int]] = {}
        self.styles: dict[ModelPath, str | None] = {}


class Locator:
    """Maps a path in the merged :class:`PolicySet` (``("actions", 7, "channel")``)
    to the file, line and column where it was written."""

    def __init__(self) -> None:
        self._files: dict[str, _FilePositions] = {}
        # merged prefix -> (file, prefix in that file)
        self._origins: dict[ModelPath, tuple[str, ModelPath]] = {}
        self._lines: dict[str, list[str]] = {}

    def _add_file(self, file: str, positions: _FilePositions, text: str) -> None:
        self._files[file] = positions
        self._lines[file] = text.splitlines()

    def line_text(self, file: str, line: int) -> str:
        """The text of a 1-based line of a file (``""`` when out of range)."""
        lines = self._lines.get(file, [])
        return lines[line - 1] if 0 < line <= len(lines) else ""

    def _add_origin(self, merged: ModelPath, file: str, local: ModelPath) -> None:
        self._origins[merged] = (file, local)

    def file_of(self, path: ModelPath) -> tuple[str, ModelPath] | None:
        for n in range(len(path), 0, -1):
            origin = self._origins.get(path[:n])
            if origin is not None:
                return origin[0], origin[1] + path[n:]
        return None

    def written(self, path: ModelPath) -> bool:
        """Whether ``path`` was written in a file (not filled in by a default)."""
        found = self.file_of(path)
        if found is None:
            return False
        positions = self._files.get(found[0])
        return positions is not None and found[1] in positions.values

    def locate(self, path: ModelPath, *, key: bool = False) -> Location:
        """The position of the value at ``path`` (of its key with ``key=True``),
        or of the closest enclosing node that was written."""
        found = self.file_of(path)
        if found is None:
            return Location(next(iter(self._files), "<policy>"))
        return self.locate_in_file(found[0], found[1], key=key)

    def locate_in_file(self, file: str, path: ModelPath, *, key: bool = False) -> Location:
        positions = self._files.get(file)
        if positions is None:
            return Location(file)
        if key and path in positions.keys:
            line, col = positions.keys[path]
            return Location(file, line, col)
        for n in range(len(path), -1, -1):
            mark = positions.values.get(path[:n])
            if mark is not None:
                return Location(file, mark[0], mark[1])
        return Location(file, 1, 1)

    def scalar_style(self, path: ModelPath) -> str | None:
        """The YAML style of the scalar at ``path``: ``None`` (plain), ``'"'``,
        ``"'"``, ``"|"`` or ``">"`` -- used to map CEL positions into the file."""
        found = self.file_of(path)
        if found is None:
            return None
        positions = self._files.get(found[0])
        return None if positions is None else positions.styles.get(found[1])


class LoadedPolicySet(msgspec.Struct, frozen=True):
    """The merged model (``None`` if the set is unusable), the sources, every
    diagnostic of loading and the locator for later (semantic) diagnostics."""

    model: PolicySet | None
    files: tuple[SourceFile, ...]
    diagnostics: tuple[Diagnostic, ...]
    locator: Locator
    digest: str

    @property
    def ok(self) -> bool:
        return self.model is not None and not any(d.severity == "error" for d in self.diagnostics)


# --------------------------------------------------------------------------- reading


def _is_policy_file(rel: Path) -> bool:
    if any(part.startswith(".") for part in rel.parts):
        return False
    if any(part == "tests" for part in rel.parts[:-1]):
        return False
    name = rel.name
    if not name.endswith((".yaml", ".yml")):
        return False
    stem = name.rsplit(".", 1)[0]
    return not stem.endswith(("_test", ".test"))


def read_directory(root: str | os.PathLike[str]) -> dict[str, str]:
    """Read the policy files under ``root`` (relative posix path -> text). Raises ``OSError``."""
    base = Path(root)
    if not base.is_dir():
        raise NotADirectoryError(f"not a directory: {root}")
    result: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(base)
        if _is_policy_file(rel):
            result[rel.as_posix()] = path.read_text(encoding="utf-8")
    return result


def digest_sources(files: Mapping[str, str]) -> str:
    """``sha256:<hex>`` of the set's files: for each file in path order,
    ``<path>\\n<byte length>\\n<content>``, content UTF-8 with CRLF normalised to LF."""
    h = hashlib.sha256()
    for path in sorted(files):
        data = files[path].replace("\r\n", "\n").encode("utf-8")
        h.update(path.encode("utf-8") + b"\n" + str(len(data)).encode("ascii") + b"\n")
        h.update(data)
    return "sha256:" + h.hexdigest()


def load_directory(root: str | os.PathLike[str]) -> LoadedPolicySet:
    """Read and load a policy directory (see :func:`load_sources`)."""
    return load_sources(read_directory(root))


# --------------------------------------------------------------------------- YAML -> data


class YamlLoader(yaml.SafeLoader):
    """SafeLoader resolving plain scalars by the YAML 1.2 core schema."""


YamlLoader.yaml_implicit_resolvers = {}

YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


class _Builder:
    def __init__(self, file: str, positions: _FilePositions, diags: list[Diagnostic]) -> None:
        self.file = file
        self.positions = positions
        self.diags = diags
        self.count = 0

    def error(self, mark: yaml.Mark, message: str) -> None:
        self.diags.append(
            Diagnostic(Location(self.file, mark.line + 1, mark.column + 1), "error", message)
        )

    def build(self, node: yaml.Node, path: ModelPath, depth: int = 0) -> Any:
        self.count += 1
        if self.count > _MAX_NODES or depth > _MAX_DEPTH:
            if self.count == _MAX_NODES + 1 or depth == _MAX_DEPTH + 1:
                self.error(node.start_mark, "document too large or too deeply nested")
            return None
        self.positions.values[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.ScalarNode):
            self.positions.styles[path] = node.style
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i), depth + 1) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        self.error(node.start_mark, "unsupported YAML node")  # pragma: no cover
        return None

    def _mapping(self, node: yaml.MappingNode, path: ModelPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in _merged_pairs(node):
            if not isinstance(key_node, yaml.ScalarNode):
                self.error(key_node.start_mark, "mapping keys must be strings")
                continue
            key = str(key_node.value)
            if key in result:
                first = self.positions.keys.get((*path, key))
                where = f" (first at line {first[0]})" if first else ""
                self.error(key_node.start_mark, f"duplicate key `{key}`{where}")
                continue
            self.positions.keys[(*path, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result


def _merged_pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """Key/value pairs with YAML merge keys (``<<: *base``) expanded; explicit keys win."""
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if isinstance(source, yaml.MappingNode):
                    merged.extend(_merged_pairs(source))
        else:
            pairs.append((key_node, value_node))
    explicit = {k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)}
    seen: set[str] = set()
    inherited: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in merged:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if name in explicit or name in seen:
            continue
        if isinstance(name, str):
            seen.add(name)
        inherited.append((key_node, value_node))
    return inherited + pairs


def _scalar(node: yaml.ScalarNode) -> Any:
    value: str = node.value
    tag = node.tag
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        try:
            return int(value, 10)
        except ValueError:
            return value
    if tag == "tag:yaml.org,2002:float":
        lowered = value.lower()
        if lowered.endswith(".inf"):
            return float("-inf") if lowered.startswith("-") else float("inf")
        if lowered == ".nan":
            return float("nan")
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _parse_file(file: str, text: str, diags: list[Diagnostic]) -> tuple[Any, _FilePositions]:
    positions = _FilePositions()
    loader = YamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, positions
        return _Builder(file, positions, diags).build(node, ()), positions
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        parts = [p for p in (exc.context, exc.problem) if p]
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        diags.append(
            Diagnostic(
                Location(file, line, col), "error", "YAML: " + (", ".join(parts) or "syntax error")
            )
        )
        return None, positions
    except yaml.YAMLError as exc:
        diags.append(Diagnostic(Location(file, 1, 1), "error", f"YAML: {exc}"))
        return None, positions
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- data -> model


_AT = re.compile(r" - at `(\$[^`]*)`$")
_PATH_TOKEN = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_ID_PATTERN = "^[A-Za-z][A-Za-z0-9_.-]{0,63}$"

# (relative path, message, where: "value" | "key")
_Problem = tuple[ModelPath, str, str]


def _strip_annotated(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> tuple[Any, ...]:
    tp = _strip_annotated(tp)
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return tuple(_strip_annotated(t) for t in typing.get_args(tp))
    return (tp,)


def _leaf_message(exc: msgspec.ValidationError, path: ModelPath) -> tuple[ModelPath, str]:
    text = str(exc)
    match = _AT.search(text)
    if match:
        text = text[: match.start()]
        tokens = _PATH_TOKEN.findall(match.group(1)[1:])
        if not any(not a and not b for a, b in tokens):  # no `[...]`
            path = path + tuple(a if a else int(b) for a, b in tokens)
    if text.startswith("Expected `str`, got `") and "str |" not in text:
        text += " (quote the value to make it a string)"
    elif text.startswith("Invalid RFC3339"):
        text = "invalid timestamp: use RFC 3339 with a zone, e.g. 2024-11-01T00:00:00Z"
    if text.startswith("Expected"):
        text = "e" + text[1:]
    if path and isinstance(path[-1], str) and not text.startswith("invalid"):
        text = f"`{path[-1]}`: {text}"
    if "matching regex" in text:
        if _ID_PATTERN in text:
            text = "invalid id: use a letter then letters, digits, '_', '.' or '-' (at most 64)"
        elif "A-Z" in text:
            text = "invalid reason code: use UPPER_SNAKE_CASE (at most 64 characters)"
    return path, text


def _diagnose(value: Any, tp: Any, path: ModelPath, out: list[_Problem]) -> None:
    """Explain why ``value`` does not convert to ``tp``: every failing field, not just the first."""
    try:
        msgspec.convert(value, tp)
        return
    except msgspec.ValidationError as exc:
        error = exc
    before = len(out)
    members = _members(tp)
    if isinstance(value, dict):
        struct = next(
            (m for m in members if isinstance(m, type) and issubclass(m, msgspec.Struct)), None
        )
        mapping = next((m for m in members if typing.get_origin(m) is dict), None)
        if struct is not None:
            _diagnose_struct(value, struct, path, out)
        elif mapping is not None:
            value_type = typing.get_args(mapping)[1]
            for key, item in value.items():
                _diagnose(item, value_type, (*path, key), out)
    elif isinstance(value, list):
        seq = next((m for m in members if typing.get_origin(m) in (list, tuple)), None)
        if seq is not None:
            args = typing.get_args(seq)
            if typing.get_origin(seq) is list or (len(args) == 2 and args[1] is Ellipsis):
                for i, item in enumerate(value):
                    _diagnose(item, args[0], (*path, i), out)
    if len(out) == before:
        where, message = _leaf_message(error, path)
        out.append((where, message, "value"))


def _diagnose_struct(
    value: dict[str, Any], struct: type[msgspec.Struct], path: ModelPath, out: list[_Problem]
) -> None:
    fields = {f.encode_name: f for f in msgspec.structs.fields(struct)}
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = (
                f"; did you mean `{close[0]}`?"
                if close
                else f"; expected one of: {', '.join(fields)}"
            )
            out.append(((*path, key), f"unknown field `{key}`{hint}", "key"))
    for name, info in fields.items():
        if name in value:
            _diagnose(value[name], info.type, (*path, name), out)
        elif info.required:
            out.append((path, f"missing required field `{name}`", "value"))


def load_document(
    file: str,
    text: str,
    tp: type[_T],
    check: typing.Callable[[Any], Iterable[tuple[ModelPath, str]]] | None = None,
) -> tuple[_T | None, tuple[Diagnostic, ...]]:
    """One YAML document converted to ``tp`` (a msgspec Struct), or ``None`` and every problem
    located at ``file:line:col`` -- the policy loader's rules, for other YAML files (server config).
    ``check`` returns further problems of the converted value as (path, message)."""
    diags: list[Diagnostic] = []
    data, positions = _parse_file(file, text, diags)
    if diags:
        return None, tuple(sorted(diags))
    locator = Locator()
    locator._add_file(file, positions, text)
    problems: list[_Problem] = []
    _diagnose({} if data is None else data, tp, (), problems)
    if problems:
        located = (
            Diagnostic(locator.locate_in_file(file, where, key=kind == "key"), "error", message)
            for where, message, kind in problems
        )
        return None, tuple(sorted(located))
    value = msgspec.convert({} if data is None else data, tp)
    more = [
        Diagnostic(locator.locate_in_file(file, where), "error", message)
        for where, message in (check(value) if check else ())
    ]
    return (None, tuple(sorted(more))) if more else (value, ())


def read_yaml(file: str, text: str) -> tuple[Any, Locator, tuple[Diagnostic, ...]]:
    """One YAML document as plain data (YAML 1.2 scalars, duplicate keys refused), the locator
    of its nodes, and its syntax errors (data ``None`` when there are any)."""
    diags: list[Diagnostic] = []
    data, positions = _parse_file(file, text, diags)
    locator = Locator()
    locator._add_file(file, positions, text)
    return (None if diags else data), locator, tuple(diags)


def convert_located(
    value: Any, tp: type[_T], path: ModelPath, file: str, locator: Locator
) -> tuple[_T | None, tuple[Diagnostic, ...]]:
    """``value`` (found at ``path`` of ``file``) converted to ``tp``, or ``None`` and every
    problem located, with "did you mean" for unknown fields -- the policy loader's rules."""
    problems: list[_Problem] = []
    _diagnose(value, tp, path, problems)
    if problems:
        return None, tuple(
            Diagnostic(locator.locate_in_file(file, where, key=kind == "key"), "error", message)
            for where, message, kind in problems
        )
    return msgspec.convert(value, tp), ()


_LIST_SECTIONS: Final = (
    "channels",
    "caps",
    "suppressions",
    "journeys",
    "actions",
    "volume_guards",
)
_SINGLE_SECTIONS: Final = ("policy_set", "consent", "holdouts", "arbitration")
_CONTRACT_PARTS: Final = ("profile", "events", "context")
# ``contracts.context_open``: a flag, set in one file at most (recorded among the contract
# origins as ("context_open", "true" | "false") -> file).
_OPEN: Final = "context_open"


def load_sources(files: Mapping[str, str]) -> LoadedPolicySet:
    """Load a policy set from ``{relative path: YAML text}``.

    Never raises for content problems: every one is a :class:`Diagnostic`.
    Items that fail validation are left out of the model (and reported);
    ``model`` is ``None`` only if no ``policy_set`` section could be read.
    """
    diags: list[Diagnostic] = []
    locator = Locator()
    sources = tuple(SourceFile(path, files[path]) for path in sorted(files))
    lists: dict[str, list[Any]] = {name: [] for name in _LIST_SECTIONS}
    singles: dict[str, tuple[Any, str]] = {}
    contracts: dict[str, dict[str, Any]] = {part: {} for part in _CONTRACT_PARTS}
    contract_origin: dict[tuple[str, str], str] = {}
    section_types = {f.encode_name: f.type for f in msgspec.structs.fields(PolicyFile)}

    for source in sources:
        file = source.path
        data, positions = _parse_file(file, source.text, diags)
        locator._add_file(file, positions, source.text)

        def report(problems: list[_Problem], *, _file: str = file) -> None:
            for where, message, kind in problems:
                loc = locator.locate_in_file(_file, where, key=kind == "key")
                diags.append(Diagnostic(loc, "error", message))

        if data is None:
            continue
        if not isinstance(data, dict):
            report([((), "a policy file must be a mapping of sections", "value")])
            continue
        for section, value in data.items():
            if section not in section_types:
                close = difflib.get_close_matches(section, list(section_types), n=1)
                hint = f"; did you mean `{close[0]}`?" if close else ""
                report([((section,), f"unknown section `{section}`{hint}", "key")])
                continue
            if section in _LIST_SECTIONS:
                if not isinstance(value, list):
                    report([((section,), f"`{section}` must be a list", "value")])
                    continue
                item_type = typing.get_args(_strip_annotated(section_types[section]))[0]
                for index, item in enumerate(value):
                    problems: list[_Problem] = []
                    _diagnose(item, item_type, (section, index), problems)
                    if problems:
                        report(problems)
                        continue
                    locator._add_origin((section, len(lists[section])), file, (section, index))
                    lists[section].append(msgspec.convert(item, item_type))
            elif section == "contracts":
                _load_contracts(value, file, locator, contracts, contract_origin, report, diags)
            else:
                if section in singles:
                    other = singles[section][1]
                    report(
                        [((section,), f"section `{section}` is already defined in {other}", "key")]
                    )
                    continue
                problems = []
                member = next(m for m in _members(section_types[section]) if m is not type(None))
                _diagnose(value, member, (section,), problems)
                if problems:
                    report(problems)
                    continue
                locator._add_origin((section,), file, (section,))
                singles[section] = (msgspec.convert(value, member), file)

    model: PolicySet | None = None
    info = singles.get("policy_set")
    if info is None and not any(d.message.startswith("YAML:") for d in diags):
        first = sources[0].path if sources else "<policy>"
        diags.append(
            Diagnostic(
                Location(first, 1, 1),
                "error",
                "no `policy_set` section (id and version) in any file",
            )
        )
    elif info is not None:
        assert isinstance(info[0], PolicySetInfo)
        kwargs: dict[str, Any] = {name: tuple(items) for name, items in lists.items()}
        for name in ("consent", "holdouts", "arbitration"):
            if name in singles:
                kwargs[name] = singles[name][0]
        model = PolicySet(
            policy_set=info[0],
            contracts=Contracts(**contracts, context_open=(_OPEN, "true") in contract_origin),
            **kwargs,
        )
    return LoadedPolicySet(
        model=model,
        files=sources,
        diagnostics=tuple(sorted(diags)),
        locator=locator,
        digest=digest_sources(files),
    )


def _load_contracts(  # noqa: PLR0917
    value: Any,
    file: str,
    locator: Locator,
    contracts: dict[str, dict[str, Any]],
    origin: dict[tuple[str, str], str],
    report: Any,
    diags: list[Diagnostic],
) -> None:
    if not isinstance(value, dict):
        report([(("contracts",), "`contracts` must be a mapping", "value")])
        return
    part_types = {f.encode_name: f.type for f in msgspec.structs.fields(Contracts)}
    for part, entries in value.items():
        if part == _OPEN:
            _context_open(entries, file, locator, origin, diags)
            continue
        if part not in part_types:
            report(
                [
                    (
                        ("contracts", part),
                        _unknown_part(part),
                        "key",
                    )
                ]
            )
            continue
        if not isinstance(entries, dict):
            report(
                [(("contracts", part), f"`contracts.{part}` must be a mapping of names", "value")]
            )
            continue
        entry_type = typing.get_args(_strip_annotated(part_types[part]))[1]
        for name, spec in entries.items():
            path = ("contracts", part, name)
            if (part, name) in origin:
                loc = locator.locate_in_file(file, path, key=True)
                diags.append(
                    Diagnostic(
                        loc,
                        "error",
                        f"`{name}` is already declared in contracts.{part} of {origin[part, name]}",
                    )
                )
                continue
            problems: list[_Problem] = []
            _diagnose(spec, entry_type, path, problems)
            if problems:
                report(problems)
                continue
            origin[part, name] = file
            locator._add_origin(path, file, path)
            contracts[part][name] = msgspec.convert(spec, entry_type)


def _unknown_part(part: str) -> str:
    known = [*_CONTRACT_PARTS, _OPEN]
    close = difflib.get_close_matches(part, known, n=1)
    hint = f"; did you mean `{close[0]}`?" if close else f"; expected one of: {', '.join(known)}"
    return f"unknown field `{part}`{hint}"


def _context_open(
    value: Any,
    file: str,
    locator: Locator,
    origin: dict[tuple[str, str], str],
    diags: list[Diagnostic],
) -> None:
    path = ("contracts", "context_open")
    if not isinstance(value, bool):
        loc = locator.locate_in_file(file, path)
        diags.append(Diagnostic(loc, "error", "`context_open`: expected true or false"))
        return
    first = origin.get((_OPEN, "true")) or origin.get((_OPEN, "false"))
    if first is not None:
        loc = locator.locate_in_file(file, path, key=True)
        diags.append(
            Diagnostic(loc, "error", f"`contracts.context_open` is already set in {first}")
        )
        return
    origin[_OPEN, "true" if value else "false"] = file
