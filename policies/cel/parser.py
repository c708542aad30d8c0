"""The CEL parser: source text to the :mod:`policies.cel.ast` tree, within :class:`Limits`.

Hand-written (the lexer in :mod:`.lexer` plus precedence climbing) rather than
generated, because that gives us:

- no dependency: ``policies`` stays stdlib + msgspec (no ANTLR runtime);
- precise positions: every node and every error carries a character offset;
- bounded recursion: the parser recurses only where the source nests
  (parentheses, literals, call arguments, indexes, ternaries) and checks a
  depth counter before each descent, so hostile input yields a
  :class:`CompileError`, never a ``RecursionError``; operator chains, unary
  chains and member chains are loops;
- speed: one precompiled regex finds each token, and the AST is built
  directly, with no parse tree to walk afterwards (a 200-character policy
  condition parses in about 0.2 ms).

Bounds, all from :class:`Limits`: the source length is checked first, in
O(1), so oversized input costs nothing; lexing is then linear in the bounded
length; nesting depth (recursion *and* the height of the built tree, after
balancing), node count and literal sizes are enforced while parsing, so
consumers that walk the tree recursively are safe.

The grammar (``doc/langdef.md`` of google/cel-spec), lowest precedence first::

    Expr    = Or ["?" Or ":" Expr]                  right-associative
    Or      = And {"||" And}                        built as a balanced tree
    And     = Rel {"&&" Rel}                        built as a balanced tree
    Rel     = Add {("<"|"<="|">="|">"|"=="|"!="|"in") Add}   left-associative
    Add     = Mul {("+"|"-") Mul}                   left-associative
    Mul     = Unary {("*"|"/"|"%") Unary}           left-associative
    Unary   = {"!" | "-"} Member
    Member  = Primary {"." NAME ["(" [Args] ")"] | "[" Expr "]" | "{" [Fields] "}"}
    Primary = ["."] IDENT ["(" [Args] ")"] | "(" Expr ")" | "[" [List] "]"
            | "{" [MapEntries] "}" | LITERAL

``&&`` and ``||`` are associative in CEL (commutative too, for errors), so
long chains become balanced trees of logarithmic depth, as cel-go does. A
``-`` directly before a numeric literal is folded into it, so
``-9223372036854775808`` is a valid int while ``-(1)`` stays a ``-_`` call.

Node offsets: literals, identifiers, lists, maps and struct literals point at
their first token; operators at the operator; calls and selections at the
function or field name; ``_[_]`` at ``[``; macros at the macro name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, NoReturn, cast

from .ast import (
    Call,
    Comprehension,
    Const,
    CreateList,
    CreateMap,
    CreateStruct,
    Expr,
    Ident,
    MacroKind,
    Select,
    Source,
)
from .env import Limits
from .errors import CompileError, Issue
from .lexer import RESERVED_WORDS, LexError, Token, iter_tokens
from .values import INT64_MAX, INT64_MIN, UINT64_MAX, UInt

__all__ = ["parse"]

_DEFAULT_LIMITS: Final = Limits()

# Binary operators below ``&&``: token kind -> (precedence, function name).
_BINARY: Final[dict[str, tuple[int, str]]] = {
    "<": (1, "_<_"),
    "<=": (1, "_<=_"),
    ">=": (1, "_>=_"),
    ">": (1, "_>_"),
    "==": (1, "_==_"),
    "!=": (1, "_!=_"),
    "in": (1, "@in"),
    "+": (2, "_+_"),
    "-": (2, "_-_"),
    "*": (3, "_*_"),
    "/": (3, "_/_"),
    "%": (3, "_%_"),
}
_LOWEST_BINARY: Final = 1

_UNARY: Final = {"!": "!_", "-": "-_"}

_LITERAL_KEYWORDS: Final[dict[str, object]] = {"true": True, "false": False, "null": None}

# math.greatest / math.least with three or more arguments take them as one list.
_MATH_LIST_MACROS: Final = frozenset({"greatest", "least"})

# Receiver-style comprehension macros: method name -> (macro, accepted arities).
# Arity 3 of all/exists/exists_one and 3-4 of the transform macros are the
# two-variable comprehensions (``l.all(i, v, p)``, ``m.transformMap(k, v, t)``).
_COMPREHENSIONS: Final[dict[str, tuple[MacroKind, tuple[int, ...]]]] = {
    "all": ("all", (2, 3)),
    "exists": ("exists", (2, 3)),
    "exists_one": ("exists_one", (2, 3)),
    "existsOne": ("exists_one", (2, 3)),
    "filter": ("filter", (2,)),
    "map": ("map", (2, 3)),
    "transformList": ("transformList", (3, 4)),
    "transformMap": ("transformMap", (3, 4)),
    "transformMapEntry": ("transformMapEntry", (3, 4)),
}
_TWO_VARIABLE_ONLY: Final = frozenset({"transformList", "transformMap", "transformMapEntry"})

# Longest token text quoted in an error message.
_MAX_QUOTED: Final = 24


class _Abort(Exception):
    """Stops the parse; the issue has already been recorded."""


def parse(
    source: Source | str,
    limits: Limits = _DEFAULT_LIMITS,
    *,
    macros: bool = True,
) -> Expr:
    """Parse one CEL expression into an AST.

    ``macros=False`` leaves ``has``/``all``/``exists``/``exists_one``/
    ``map``/``filter`` as ordinary calls. Raises :class:`CompileError` with
    located issues: the first syntax error (plus any literal, name or macro
    errors found before it), or every lexical error, or the exceeded limit.
    """
    text = source if isinstance(source, str) else source.text
    # Checked before any other work (even indexing the lines of a plain
    # string) so oversized input is rejected in O(1).
    if len(text) > limits.max_expression_length:
        anchor = (
            Source("")
            if isinstance(source, str)
            else Source("", source.description, source.line_offset, source.column_offset)
        )
        message = (
            f"expression is {len(text)} characters; the limit is {limits.max_expression_length}"
        )
        raise _compile_error(anchor, [(0, message)])
    if isinstance(source, str):
        source = Source(source)
    tokens = iter_tokens(text)
    try:
        parser = _Parser(source, tokens, limits, macros)
    except LexError as error:
        raise _compile_error(source, error.errors) from None
    result: Expr | None
    try:
        result = parser.parse()
    except LexError as error:
        raise _compile_error(source, error.errors) from None
    except _Abort:
        result = None
    except RecursionError:
        # Only reachable when max_nesting_depth is configured beyond what the
        # interpreter's stack allows; the contract is still a CompileError.
        parser.issues.append((parser.offset, "expression nests too deeply"))
        result = None
    if parser.issues or result is None:
        raise _compile_error(source, parser.issues)
    return result


def _compile_error(source: Source, problems: list[tuple[int, str]]) -> CompileError:
    issues = []
    for offset, message in problems:
        line, column = source.location(offset)
        issues.append(Issue(line, column, message, source=source.description))
    return CompileError(issues)


class _Parser:
    """One parse. Node ids are allocated in construction order (children
    before parents), starting at 1; ``_depths[id]`` is the height of that
    node's subtree, which bounds the depth of every later tree walk."""

    __slots__ = (
        "_depths",
        "_limits",
        "_macros",
        "_nesting",
        "_next_token",
        "_text",
        "_tok",
        "issues",
    )

    def __init__(
        self, source: Source, tokens: Iterator[Token], limits: Limits, macros: bool
    ) -> None:
        self._text = source.text
        self._next_token = tokens.__next__
        self._tok = self._next_token()
        self._limits = limits
        self._macros = macros
        self._depths: list[int] = [0]
        self._nesting = 0
        self.issues: list[tuple[int, str]] = []

    @property
    def offset(self) -> int:
        return self._tok.start

    def parse(self) -> Expr:
        expr = self._expr()
        if self._tok.kind != "eof":
            self._unexpected()
        return expr

    # -- bookkeeping -------------------------------------------------------

    def _advance(self) -> Token:
        tok = self._tok
        if tok.kind != "eof":
            self._tok = self._next_token()
        return tok

    def _expect(self, kind: str, expected: str) -> Token:
        if self._tok.kind != kind:
            self._fail(
                self._tok.start, f"syntax error: expected {expected}, found {self._describe()}"
            )
        return self._advance()

    def _unexpected(self) -> NoReturn:
        self._fail(self._tok.start, f"syntax error: unexpected {self._describe()}")

    def _describe(self) -> str:
        tok = self._tok
        if tok.kind == "eof":
            return "end of expression"
        if tok.kind in ("string", "bytes"):
            return f"{tok.kind} literal"
        text = self._text[tok.start : tok.end]
        if len(text) > _MAX_QUOTED:
            text = text[: _MAX_QUOTED - 3] + "..."
        return f"'{text}'"

    def _error(self, offset: int, message: str) -> None:
        """Record a problem that does not stop parsing."""
        self.issues.append((offset, message))

    def _fail(self, offset: int, message: str) -> NoReturn:
        self.issues.append((offset, message))
        raise _Abort

    def _enter(self, offset: int) -> None:
        """Account one level of syntactic nesting before recursing into it."""
        self._nesting += 1
        if self._nesting > self._limits.max_nesting_depth:
            self._too_deep(offset)

    def _too_deep(self, offset: int) -> NoReturn:
        self._fail(
            offset,
            f"expression nests too deeply: the limit is {self._limits.max_nesting_depth} levels",
        )

    def _id(self, offset: int, *children: Expr | None) -> int:
        """Allocate the id of a new node over ``children``, enforcing the
        node-count and tree-depth limits."""
        depths = self._depths
        node_id = len(depths)
        if node_id > self._limits.max_ast_nodes:
            self._fail(
                offset,
                f"expression is too large: the limit is {self._limits.max_ast_nodes} nodes",
            )
        depth = 0
        for child in children:
            if child is not None:
                child_depth = depths[child.id]
                depth = max(depth, child_depth)
        depth += 1
        if depth > self._limits.max_nesting_depth:
            self._too_deep(offset)
        depths.append(depth)
        return node_id

    def _check_elements(self, count: int) -> None:
        if count >= self._limits.max_literal_elements:
            self._fail(
                self._tok.start,
                f"literal has too many elements: the limit is {self._limits.max_literal_elements}",
            )

    # -- expressions -------------------------------------------------------

    def _expr(self) -> Expr:
        condition = self._or()
        if self._tok.kind != "?":
            return condition
        question = self._advance()
        self._enter(question.start)
        then = self._or()
        self._expect(":", "':'")
        otherwise = self._expr()
        self._nesting -= 1
        offset = question.start
        return Call(
            self._id(offset, condition, then, otherwise),
            offset,
            "_?_:_",
            (condition, then, otherwise),
        )

    def _or(self) -> Expr:
        first = self._and()
        if self._tok.kind != "||":
            return first
        terms = [first]
        offsets: list[int] = []
        while self._tok.kind == "||":
            offsets.append(self._advance().start)
            terms.append(self._and())
        return self._balance("_||_", terms, offsets, 0, len(offsets) - 1)

    def _and(self) -> Expr:
        first = self._binary(_LOWEST_BINARY)
        if self._tok.kind != "&&":
            return first
        terms = [first]
        offsets: list[int] = []
        while self._tok.kind == "&&":
            offsets.append(self._advance().start)
            terms.append(self._binary(_LOWEST_BINARY))
        return self._balance("_&&_", terms, offsets, 0, len(offsets) - 1)

    def _balance(
        self, function: str, terms: list[Expr], offsets: list[int], lo: int, hi: int
    ) -> Expr:
        """Join ``terms[lo..hi+1]`` with the operators ``offsets[lo..hi]`` as
        a balanced tree (cel-go's ``balancer``); recursion is logarithmic."""
        mid = (lo + hi + 1) // 2
        left = terms[mid] if mid == lo else self._balance(function, terms, offsets, lo, mid - 1)
        right = (
            terms[mid + 1] if mid == hi else self._balance(function, terms, offsets, mid + 1, hi)
        )
        offset = offsets[mid]
        return Call(self._id(offset, left, right), offset, function, (left, right))

    def _binary(self, min_precedence: int) -> Expr:
        """Precedence climbing over the left-associative levels; recursion is
        bounded by the number of levels, chains are a loop."""
        left = self._unary()
        while True:
            tok = self._tok
            entry = _BINARY.get(tok.kind)
            if entry is None or entry[0] < min_precedence:
                return left
            self._advance()
            right = self._binary(entry[0] + 1)
            left = Call(self._id(tok.start, left, right), tok.start, entry[1], (left, right))

    def _unary(self) -> Expr:
        kind = self._tok.kind
        if kind not in _UNARY:
            return self._member()
        ops: list[Token] = []
        while self._tok.kind in _UNARY:
            ops.append(self._advance())
        if ops[-1].kind == "-" and self._tok.kind in ("int", "float"):
            sign = ops.pop()
            operand = self._suffixes(self._number(self._advance(), sign), None, 0)
        else:
            operand = self._member()
        for op in reversed(ops):
            operand = Call(self._id(op.start, operand), op.start, _UNARY[op.kind], (operand,))
        return operand

    def _member(self) -> Expr:
        expr, name, name_offset = self._primary()
        return self._suffixes(expr, name, name_offset)

    def _suffixes(self, expr: Expr, name: str | None, name_offset: int) -> Expr:
        """Apply ``.field``, ``.method(...)``, ``[index]`` and ``{fields}``.

        ``name`` is the qualified name spelled so far (``a.b.c``) while the
        chain is only identifiers and field selections; only such a name may
        be followed by ``{`` to create a message."""
        while True:
            tok = self._tok
            kind = tok.kind
            if kind == ".":
                self._advance()
                optional = self._tok.kind == "?"
                if optional:  # ``a.?f``: optional field selection
                    self._advance()
                field = self._tok
                if optional:
                    if field.kind not in ("ident", "qident"):
                        self._fail(
                            field.start,
                            f"syntax error: expected a field name after '.?', "
                            f"found {self._describe()}",
                        )
                    self._advance()
                    name_const = Const(self._id(field.start), field.start, field.value)
                    expr = Call(
                        self._id(field.start, expr, name_const),
                        field.start,
                        "_?._",
                        (expr, name_const),
                    )
                    name = None
                    continue
                if field.kind == "ident":
                    # Reserved words are fine here: ``m.if`` is unambiguous.
                    self._advance()
                    field_name = cast(str, field.value)
                    if self._tok.kind == "(":
                        args, starts = self._args()
                        expr = self._method(expr, field_name, field.start, args, starts)
                        name = None
                        continue
                    name = None if name is None else f"{name}.{field_name}"
                elif field.kind == "qident":
                    self._advance()
                    field_name = cast(str, field.value)
                    name = None
                else:
                    self._fail(
                        field.start,
                        f"syntax error: expected a field name after '.', found {self._describe()}",
                    )
                expr = Select(self._id(field.start, expr), field.start, expr, field_name)
            elif kind == "[":
                self._advance()
                self._enter(tok.start)
                function = "_[_]"
                if self._tok.kind == "?":  # ``a[?k]``: optional index
                    self._advance()
                    function = "_[?_]"
                index = self._expr()
                self._expect("]", "']'")
                self._nesting -= 1
                expr = Call(self._id(tok.start, expr, index), tok.start, function, (expr, index))
                name = None
            elif kind == "{":
                if name is None:
                    self._fail(
                        tok.start,
                        "syntax error: '{' after an expression must follow a message type name",
                    )
                expr = self._struct(name, name_offset)
                name = None
            else:
                return expr

    def _primary(self) -> tuple[Expr, str | None, int]:
        tok = self._tok
        kind = tok.kind
        if kind in ("ident", "."):
            return self._ident_or_call()
        if kind in ("int", "uint", "float"):
            self._advance()
            return self._number(tok, None), None, 0
        if kind in ("string", "bytes"):
            self._advance()
            return Const(self._id(tok.start), tok.start, tok.value), None, 0
        if kind in _LITERAL_KEYWORDS:
            self._advance()
            return Const(self._id(tok.start), tok.start, _LITERAL_KEYWORDS[kind]), None, 0
        if kind == "(":
            self._advance()
            self._enter(tok.start)
            inner = self._expr()
            self._expect(")", "')'")
            self._nesting -= 1
            return inner, None, 0
        if kind == "[":
            return self._list(), None, 0
        if kind == "{":
            return self._map(), None, 0
        return self._unexpected()

    def _ident_or_call(self) -> tuple[Expr, str | None, int]:
        ident = self._advance()
        start = ident.start
        if ident.kind == ".":
            # A leading dot names the root scope; it stays part of the name.
            if self._tok.kind != "ident":
                self._fail(
                    self._tok.start,
                    f"syntax error: expected an identifier after '.', found {self._describe()}",
                )
            ident = self._advance()
            name = "." + cast(str, ident.value)
        else:
            name = cast(str, ident.value)
        if ident.value in RESERVED_WORDS:
            self._error(
                ident.start, f"reserved identifier '{ident.value}' cannot be used as a name"
            )
        if self._tok.kind == "(":
            args, starts = self._args()
            return self._global_call(name, start, args, starts), None, 0
        return Ident(self._id(start), start, name), name, start

    def _number(self, tok: Token, sign: Token | None) -> Const:
        offset = tok.start if sign is None else sign.start
        value = tok.value
        if tok.kind == "int":
            number = cast(int, value)
            if sign is not None:
                number = -number
            if not INT64_MIN <= number <= INT64_MAX:
                self._error(offset, "integer literal is out of the int64 range")
                number = 0
            value = number
        elif tok.kind == "uint":
            number = cast(int, value)
            if number > UINT64_MAX:
                self._error(offset, "unsigned integer literal is out of the uint64 range")
                number = 0
            value = UInt(number)
        elif sign is not None:
            value = -cast(float, value)
        return Const(self._id(offset), offset, value)

    def _args(self) -> tuple[list[Expr], list[int]]:
        """``(`` [Expr {"," Expr}] ``)`` — the current token is ``(``.
        Returns the arguments and the offsets where they start (for macro
        errors, which are about the argument as written)."""
        open_paren = self._advance()
        self._enter(open_paren.start)
        args: list[Expr] = []
        starts: list[int] = []
        if self._tok.kind != ")":
            starts.append(self._tok.start)
            args.append(self._expr())
            while self._tok.kind == ",":
                self._advance()
                starts.append(self._tok.start)
                args.append(self._expr())
        self._expect(")", "',' or ')'")
        self._nesting -= 1
        return args, starts

    def _list(self) -> CreateList:
        open_bracket = self._advance()
        self._enter(open_bracket.start)
        elements: list[Expr] = []
        optional: list[int] = []
        while self._tok.kind != "]":
            self._check_elements(len(elements))
            if self._tok.kind == "?":  # ``[?e]``: an optional element
                self._advance()
                optional.append(len(elements))
            elements.append(self._expr())
            if self._tok.kind != ",":
                break
            self._advance()  # a trailing comma is allowed
        self._expect("]", "',' or ']'")
        self._nesting -= 1
        offset = open_bracket.start
        return CreateList(self._id(offset, *elements), offset, tuple(elements), tuple(optional))

    def _map(self) -> CreateMap:
        open_brace = self._advance()
        self._enter(open_brace.start)
        entries: list[tuple[Expr, Expr]] = []
        optional: list[int] = []
        while self._tok.kind != "}":
            self._check_elements(len(entries))
            if self._tok.kind == "?":  # ``{?k: v}``: an optional entry
                self._advance()
                optional.append(len(entries))
            key = self._expr()
            self._expect(":", "':'")
            entries.append((key, self._expr()))
            if self._tok.kind != ",":
                break
            self._advance()
        self._expect("}", "',' or '}'")
        self._nesting -= 1
        offset = open_brace.start
        children = [part for entry in entries for part in entry]
        return CreateMap(self._id(offset, *children), offset, tuple(entries), tuple(optional))

    def _struct(self, message_name: str, offset: int) -> CreateStruct:
        open_brace = self._advance()
        self._enter(open_brace.start)
        fields: list[tuple[str, Expr]] = []
        while self._tok.kind != "}":
            self._check_elements(len(fields))
            field = self._tok
            if field.kind not in ("ident", "qident"):
                self._fail(
                    field.start,
                    f"syntax error: expected a field name, found {self._describe()}",
                )
            self._advance()
            self._expect(":", "':'")
            fields.append((cast(str, field.value), self._expr()))
            if self._tok.kind != ",":
                break
            self._advance()
        self._expect("}", "',' or '}'")
        self._nesting -= 1
        values = [value for _, value in fields]
        return CreateStruct(self._id(offset, *values), offset, message_name, tuple(fields))

    # -- calls and macros --------------------------------------------------

    def _global_call(self, function: str, offset: int, args: list[Expr], starts: list[int]) -> Expr:
        if self._macros and function == "has" and len(args) == 1:
            arg = args[0]
            if isinstance(arg, Select) and not arg.test_only:
                return Select(
                    self._id(offset, arg.operand), offset, arg.operand, arg.field, test_only=True
                )
            self._error(starts[0], "invalid argument to has() macro: expected a field selection")
        return Call(self._id(offset, *args), offset, function, tuple(args))

    def _method(
        self, target: Expr, function: str, offset: int, args: list[Expr], starts: list[int]
    ) -> Expr:
        if (
            self._macros
            and function == "bind"
            and len(args) == 3
            and isinstance(target, Ident)
            and target.name == "cel"
        ):
            name = self._simple_name(args[0], starts[0])
            return Comprehension(
                self._id(offset, args[1], args[2]), offset, "bind", name, args[1], None, args[2]
            )
        if (
            self._macros
            and function in _MATH_LIST_MACROS
            and len(args) >= 3
            and isinstance(target, Ident)
            and target.name == "math"
        ):
            # cel-go's math.greatest/least macro: three or more arguments
            # become one list argument, so the checker sees fixed arities.
            elements = CreateList(self._id(starts[0], *args), starts[0], tuple(args))
            return Call(self._id(offset, target, elements), offset, function, (elements,), target)
        macro = _COMPREHENSIONS.get(function) if self._macros else None
        if macro is None or len(args) not in macro[1]:
            return Call(self._id(offset, target, *args), offset, function, tuple(args), target)
        kind = macro[0]
        two_variables = kind in _TWO_VARIABLE_ONLY or (kind != "map" and len(args) == 3)
        iter_var = self._simple_name(args[0], starts[0])
        iter_var2: str | None = None
        body = args[1:]
        if two_variables:
            iter_var2 = self._simple_name(args[1], starts[1])
            if iter_var2 == iter_var:
                self._error(starts[1], "the two iteration variables must have different names")
            body = args[2:]
        predicate: Expr | None
        transform: Expr | None
        if kind in ("map", "transformList", "transformMap", "transformMapEntry"):
            predicate = body[0] if len(body) == 2 else None
            transform = body[-1]
        else:
            predicate, transform = body[0], None
        return Comprehension(
            self._id(offset, target, predicate, transform),
            offset,
            kind,
            iter_var,
            target,
            predicate,
            transform,
            iter_var2,
        )

    def _simple_name(self, variable: Expr, start: int) -> str:
        if isinstance(variable, Ident) and not variable.name.startswith("."):
            return variable.name
        self._error(start, "argument must be a simple name")
        return "_"
