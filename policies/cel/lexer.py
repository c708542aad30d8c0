"""The CEL lexer: source text to tokens with decoded literal values and offsets.

Follows the lexis of the CEL language definition (google/cel-spec
``doc/langdef.md``) plus the backquoted field names of cel-go
(``m.`content-type```). One precompiled alternation regex finds each token;
string bodies are scanned by per-delimiter regexes and escapes decoded by a
second one. Literal *values* are decoded here; range checks of integers
happen in the parser, which knows whether a unary minus was folded in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final, NamedTuple

__all__ = ["KEYWORDS", "RESERVED_WORDS", "LexError", "Token", "tokenize"]

# Lexed as their own token kinds (``in`` is an operator, the rest literals).
KEYWORDS: Final = frozenset({"true", "false", "null", "in"})

# Reserved so CEL embeds cleanly in host languages: an error as an identifier,
# allowed as a field or method name after ``.`` and as a struct field name.
RESERVED_WORDS: Final = frozenset(
    {
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    }
)

# Stop collecting lexical errors after this many; the rest is usually noise.
_MAX_ERRORS: Final = 20


class Token(NamedTuple):
    """One token. ``kind`` is the operator text (``"&&"``, ``"("``), a keyword
    (``"in"``, ``"true"``), or one of ``int uint float string bytes ident
    qident eof``. ``value`` is the decoded literal: the magnitude for
    ``int``/``uint`` (range checked by the parser), ``float``, ``str`` or
    ``bytes``; the name for identifiers. ``start``/``end`` are character
    offsets into the source."""

    kind: str
    value: object
    start: int
    end: int


class LexError(Exception):
    """Lexical errors as ``(offset, message)`` pairs, in source order."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(message for _, message in errors))


_TOKEN_RE: Final = re.compile(
    r"""
      (?P<ws>[\t\n\f\r\x20]+)
    | (?P<comment>//[^\n\r]*)
    | (?P<float>[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+)
    | (?P<hex>0x[0-9a-fA-F]+[uU]?)
    | (?P<dec>[0-9]+[uU]?)
    | (?P<str>(?:[bB][rR]?|[rR])?(?:'''|\"\"\"|'|\"))
    | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
    | (?P<op>\|\||&&|<=|>=|==|!=|[-+*/%!<>?:.,()\[\]{}])
    | (?P<qident>`)
    """,
    re.VERBOSE | re.ASCII,
)

# String bodies after the opening delimiter, up to and including the closing
# one. Escapes are only recognised here (``\\[\s\S]`` skips the escaped
# character so ``\'`` does not close the literal); they are validated while
# decoding. Possessive quantifiers keep matching linear.
_BODY_RE: Final = {
    ("'", False): re.compile(r"(?:[^'\\\n\r]++|\\[\s\S])*+'"),
    ('"', False): re.compile(r'(?:[^"\\\n\r]++|\\[\s\S])*+"'),
    ("'''", False): re.compile(r"(?:[^'\\]++|\\[\s\S]|'(?!''))*+'''"),
    ('"""', False): re.compile(r'(?:[^"\\]++|\\[\s\S]|"(?!""))*+"""'),
    ("'", True): re.compile(r"[^'\n\r]*+'"),
    ('"', True): re.compile(r'[^"\n\r]*+"'),
    ("'''", True): re.compile(r"[\s\S]*?'''"),
    ('"""', True): re.compile(r'[\s\S]*?"""'),
}

_QIDENT_RE: Final = re.compile(r"[A-Za-z0-9_./\- ]+`", re.ASCII)

_ESCAPE_RE: Final = re.compile(
    r"""\\(?:
      (?P<simple>[abfnrtv\\?"'`])
    | [xX](?P<hex>[0-9a-fA-F]{2})
    | u(?P<u4>[0-9a-fA-F]{4})
    | U(?P<u8>[0-9a-fA-F]{8})
    | (?P<oct>[0-3][0-7]{2})
    | (?P<bad>[\s\S]?)
    )""",
    re.VERBOSE,
)

_SIMPLE_ESCAPES: Final = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "?": "?",
    '"': '"',
    "'": "'",
    "`": "`",
}


class _EscapeError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        self.offset = offset
        self.message = message


def _code_point(match: re.Match[str], body_offset: int) -> int:
    """The code point of a ``\\u``/``\\U`` escape; surrogates and values
    beyond U+10FFFF are not Unicode scalar values, so they are errors."""
    digits = match["u4"] or match["u8"]
    value = int(digits, 16)
    if 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
        raise _EscapeError(
            body_offset + match.start(), f"invalid Unicode code point in escape {match[0]!r}"
        )
    return value


def _bad_escape(match: re.Match[str], body_offset: int) -> _EscapeError:
    text = match[0]
    if len(text) == 1:
        return _EscapeError(
            body_offset + match.start(), "incomplete escape sequence at end of literal"
        )
    return _EscapeError(body_offset + match.start(), f"invalid escape sequence {text!r}")


def _decode_string(body: str, body_offset: int) -> str:
    if "\\" not in body:
        return body

    def replace(match: re.Match[str]) -> str:
        if (simple := match["simple"]) is not None:
            return _SIMPLE_ESCAPES[simple]
        if (hex_digits := match["hex"]) is not None:
            return chr(int(hex_digits, 16))
        if (octal := match["oct"]) is not None:
            return chr(int(octal, 8))
        if match["u4"] is not None or match["u8"] is not None:
            return chr(_code_point(match, body_offset))
        raise _bad_escape(match, body_offset)

    return _ESCAPE_RE.sub(replace, body)


def _decode_bytes(body: str, body_offset: int) -> bytes:
    """Bytes literals are the UTF-8 of their text, except that ``\\x`` and
    octal escapes denote single octets; ``\\u``/``\\U`` are not allowed."""
    out = bytearray()
    position = 0
    for match in _ESCAPE_RE.finditer(body):
        out += body[position : match.start()].encode("utf-8")
        position = match.end()
        if (simple := match["simple"]) is not None:
            out.append(ord(_SIMPLE_ESCAPES[simple]))
        elif (hex_digits := match["hex"]) is not None:
            out.append(int(hex_digits, 16))
        elif (octal := match["oct"]) is not None:
            out.append(int(octal, 8))
        elif match["u4"] is not None or match["u8"] is not None:
            raise _EscapeError(
                body_offset + match.start(),
                f"escape {match[0][:2]!r} is only allowed in string literals, not bytes",
            )
        else:
            raise _bad_escape(match, body_offset)
    out += body[position:].encode("utf-8")
    return bytes(out)


# Longest integer literal worth converting: uint64 max has 20 decimal digits.
_MAX_INT_DIGITS: Final = 40
_OUT_OF_RANGE: Final = 1 << 80


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with one ``eof`` token.

    Raises :class:`LexError` listing every lexical error (bad characters,
    unterminated or malformed literals), up to a small cap.
    """
    return list(iter_tokens(text))


def iter_tokens(text: str) -> Iterator[Token]:
    """:func:`tokenize`, lazily: the parser pulls tokens as it goes, so input
    it rejects early (too deep, too large) is never lexed to its end. After
    the first lexical error no more tokens are yielded; the rest of the text
    is scanned for further errors and :class:`LexError` is raised."""
    tokens: list[Token] = []
    errors: list[tuple[int, str]] = []
    append = tokens.append
    match_token = _TOKEN_RE.match
    length = len(text)
    pos = 0
    while pos < length:
        match = match_token(text, pos)
        if match is None:
            errors.append((pos, f"unexpected character {text[pos]!r}"))
            if len(errors) >= _MAX_ERRORS:
                break
            pos += 1
            continue
        kind = match.lastgroup
        end = match.end()
        if kind == "ident":
            word = match[0]
            append(Token(word if word in KEYWORDS else "ident", word, pos, end))
        elif kind == "op":
            append(Token(match[0], None, pos, end))
        elif kind in ("dec", "hex"):
            literal = match[0]
            unsigned = literal[-1] in "uU"
            digits = literal[:-1] if unsigned else literal
            if len(digits) > _MAX_INT_DIGITS:
                # Far out of any CEL range; avoid int() of a huge string
                # (Python refuses > 4300 digits and it costs quadratic time).
                value = _OUT_OF_RANGE
            else:
                value = int(digits[2:], 16) if kind == "hex" else int(digits, 10)
            append(Token("uint" if unsigned else "int", value, pos, end))
        elif kind == "float":
            append(Token("float", float(match[0]), pos, end))
        elif kind == "str":
            end = _string(text, pos, match[0], tokens, errors)
        elif kind == "qident":
            quoted = _QIDENT_RE.match(text, end)
            if quoted is None:
                errors.append(
                    (
                        pos,
                        "invalid quoted identifier: use letters, digits, '_', '.', '-', '/' or ' '",
                    )
                )
                close = text.find("`", end)
                end = length if close < 0 else close + 1
            else:
                append(Token("qident", quoted[0][:-1], pos, quoted.end()))
                end = quoted.end()
        # ws and comment produce no token.
        if len(errors) >= _MAX_ERRORS:
            break
        pos = end
        if tokens and not errors:
            yield from tokens
            tokens.clear()
    if errors:
        raise LexError(errors)
    append(Token("eof", None, length, length))
    yield from tokens


def _string(
    text: str,
    start: int,
    opening: str,
    tokens: list[Token],
    errors: list[tuple[int, str]],
) -> int:
    """Lex one string or bytes literal whose prefix and opening quote are
    ``opening`` (at ``start``); returns the offset after it."""
    quote = opening.lstrip("bBrR")
    prefix = opening[: len(opening) - len(quote)].lower()
    raw = "r" in prefix
    is_bytes = "b" in prefix
    body_start = start + len(opening)
    match = _BODY_RE[quote, raw].match(text, body_start)
    if match is None:
        kind = "bytes" if is_bytes else "string"
        errors.append((start, f"unterminated {kind} literal"))
        return len(text)
    end = match.end()
    body = text[body_start : end - len(quote)]
    value: str | bytes
    try:
        if raw:
            value = body.encode("utf-8") if is_bytes else body
        else:
            value = (
                _decode_bytes(body, body_start) if is_bytes else _decode_string(body, body_start)
            )
    except _EscapeError as error:
        errors.append((error.offset, error.message))
        return end
    except UnicodeEncodeError:
        errors.append((start, "bytes literal text is not valid Unicode (lone surrogate)"))
        return end
    tokens.append(Token("bytes" if is_bytes else "string", value, start, end))
    return end
