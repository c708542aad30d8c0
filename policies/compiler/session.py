"""One compilation's shared state: the diagnostics it collects and CEL compiled at its place in the YAML.

Every section compiler (:mod:`.contracts`, :mod:`.channels`, ...) takes the
:class:`Session`, reports problems through it -- located at the model path
where they were written -- and compiles expressions with :meth:`Session.expr`,
which maps CEL issue positions back into the file (quoted and block
scalars included) and rewrites the checker's messages about the opaque
domain variables into the policy's own words ("unknown profile attribute
`agee`; did you mean `age`?").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from typing import Final

from arbiter.policies import cel
from arbiter.policies.cel.ast import Source
from arbiter.policies.diagnostics import Diagnostic, Location, Severity
from arbiter.policies.loader import LoadedPolicySet, Locator, ModelPath
from arbiter.policies.model import PolicySet
from arbiter.policies.plan import Expression
from arbiter.policies.snapshot import SnapshotPart
from arbiter.policies.times import parse_duration_ms

__all__ = ["EVENTS_CALL", "Session", "parts_read"]

# An ``events.<fn>("type")`` call; group 1 or 2 is the literal event type (absent: not a literal).
EVENTS_CALL: Final = re.compile(
    r"\bevents\s*\.\s*(?:count|since|seen|last)\s*\(\s*(?:\"([^\"\\]*)\"|'([^'\\]*)')?"
)
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PART_HEADS: Final[dict[str, SnapshotPart]] = {
    "profile": "profile",
    "events": "events",
    "segments": "segments",
    "journeys": "journeys",
}


def parts_read(references: Iterable[str]) -> frozenset[SnapshotPart]:
    """The snapshot parts an expression reads (for fail-safe on unavailable parts)."""
    parts: set[SnapshotPart] = set()
    for ref in references:
        part = _PART_HEADS.get(ref.split(".", 1)[0])
        if part is not None:
            parts.add(part)
    return frozenset(parts)


class Session:
    """The state of one compilation (see the module docstring)."""

    def __init__(self, loaded: LoadedPolicySet, model: PolicySet) -> None:
        self.loaded = loaded
        self.model = model
        self.locator: Locator = loaded.locator
        self.diags: list[Diagnostic] = []
        self.programs: list[Expression] = []
        # Filled from the contracts before any expression compiles.
        self.event_names: frozenset[str] = frozenset()
        self.profile_names: frozenset[str] = frozenset()
        self.context_names: frozenset[str] = frozenset()

    # -- reporting -------------------------------------------------------------
    def report(
        self, path: ModelPath, message: str, severity: Severity = "error", *, key: bool = False
    ) -> None:
        """A problem at the model ``path`` (at its key with ``key=True``)."""
        self.diags.append(Diagnostic(self.locator.locate(path, key=key), severity, message))

    def at(self, location: Location, message: str, severity: Severity = "error") -> None:
        """A problem at a known location."""
        self.diags.append(Diagnostic(location, severity, message))

    @property
    def failed(self) -> bool:
        return any(d.severity == "error" for d in self.diags)

    def duration(self, text: str | None, path: ModelPath) -> int | None:
        """A duration in ms (``None`` when absent or invalid, the latter reported)."""
        if text is None:
            return None
        try:
            return parse_duration_ms(text)
        except ValueError as exc:
            self.report(path, str(exc))
            return None

    def expect_known(
        self, value: str, known: Collection[str], what: str, path: ModelPath, suffix: str = ""
    ) -> bool:
        """Whether ``value`` is one of ``known``; else report it, with a "did you mean"."""
        if value in known:
            return True
        close = difflib.get_close_matches(value, list(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        self.report(path, f"unknown {what} `{value}`{suffix}{hint}")
        return False

    def check_unique(self, ids: list[str], path: ModelPath, what: str) -> set[str]:
        """The distinct ids; every repeated one is reported with where it was first defined."""
        seen: dict[str, int] = {}
        for index, ident in enumerate(ids):
            if ident in seen:
                first = self.locator.locate((*path, seen[ident], "id"))
                self.report(
                    (*path, index, "id"),
                    f"duplicate {what} id `{ident}` (first defined at {first})",
                )
            else:
                seen[ident] = index
        return set(seen)

    # -- CEL ---------------------------------------------------------------------
    def expr(
        self,
        text: str | None,
        path: ModelPath,
        env: cel.Env,
        expect: tuple[cel.Type, ...],
        what: str,
    ) -> Expression | None:
        """Compile the expression written at ``path`` (``None`` when absent or invalid, reported)."""
        if text is None:
            return None
        source, first_line, indent = self._source(text, path)
        self._check_event_literals(text, source, first_line, indent)
        try:
            program = cel.compile(source, env)
        except cel.CompileError as exc:
            for issue in exc.issues:
                shifted = first_line and issue.line > first_line
                column = issue.column + indent if shifted else issue.column
                location = Location(source.description, issue.line, column)
                message = self._explain(
                    issue.message,
                    text,
                    source=source,
                    line=issue.line,
                    column=column,
                    indent=indent,
                )
                self.at(location, message)
            return None
        except cel.CelError as exc:  # pragma: no cover - compile raises CompileError
            self.report(path, f"{what}: {exc}")
            return None
        if program.result_type != cel.DYN and program.result_type not in expect:
            wanted = " or ".join(str(t) for t in expect)
            self.report(
                path, f"{what} must be {wanted}, but this expression is {program.result_type}"
            )
            return None
        expression = Expression(
            text=text,
            location=self.locator.locate(path),
            program=program,
            parts=parts_read(program.references),
            compact=" ".join(text.split()),
        )
        self.programs.append(expression)
        return expression

    def _source(self, text: str, path: ModelPath) -> tuple[Source, int, int]:
        """The CEL Source positioned in the file; plus (first line, indent) of
        block scalars so later lines' columns can be shifted too."""
        loc = self.locator.locate(path)
        style = self.locator.scalar_style(path)
        if style in ('"', "'"):
            return Source(text, loc.file, loc.line - 1, loc.column), 0, 0
        if style in ("|", ">"):
            line = loc.line + 1
            raw = ""
            for line in range(loc.line + 1, loc.line + 200):
                raw = self.locator.line_text(loc.file, line)
                if raw.strip():
                    break
            indent = len(raw) - len(raw.lstrip(" "))
            return Source(text, loc.file, line - 1, indent), line, indent
        return Source(text, loc.file, loc.line - 1, loc.column - 1), 0, 0

    @staticmethod
    def _offset_in_text(text: str, *, line: int, column: int, source: Source, indent: int) -> int:
        """Map a file (line, column) back to an offset in the expression text."""
        rel_line = line - source.line_offset
        lines = text.split("\n")
        if rel_line < 1 or rel_line > len(lines):
            return -1
        col = column - (source.column_offset if rel_line == 1 else indent)
        return sum(len(x) + 1 for x in lines[: rel_line - 1]) + col - 1

    def _explain(
        self, message: str, text: str, *, source: Source, line: int, column: int, indent: int
    ) -> str:
        """Make checker messages about the opaque domain variables speak the policy's language."""
        if "does not support field selection" not in message:
            return message
        offset = self._offset_in_text(text, line=line, column=column, source=source, indent=indent)
        word = _NAME.match(text[offset:]) if offset >= 0 else None
        name = word.group(0) if word else "?"
        before = text[:offset].rstrip()
        if "arbiter.Profile" in message:
            if before.endswith("has(profile") or re.match(r"has\s*\(\s*profile\b", text[offset:]):
                return 'has() does not apply to profile attributes; use profile.has("name")'
            return _unknown_field(name, self.profile_names, "profile attribute")
        if "arbiter.Context" in message:
            return _unknown_field(name, self.context_names, "context field")
        if "arbiter.EventProperties" in message:
            return f"unknown property `{name}` of this event type"
        if "arbiter." in message:
            return message + " (only its declared functions can be called)"
        return message

    def _check_event_literals(
        self, text: str, source: Source, first_line: int, indent: int
    ) -> None:
        for match in EVENTS_CALL.finditer(text):
            name = match.group(1) if match.group(1) is not None else match.group(2)
            if name is None or name in self.event_names:
                continue
            start = match.start(1) if match.group(1) is not None else match.start(2)
            line, column = source.location(start)
            if first_line and line > first_line:
                column += indent
            self.at(
                Location(source.description, line, column),
                f"unknown event type `{name}` (not in contracts.events)",
            )


def _unknown_field(name: str, known: frozenset[str], what: str) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"; did you mean `{close[0]}`?" if close else ""
    return f"unknown {what} `{name}`{hint}"
