"""Percent-encoding helpers for query strings, form bodies and path segments.

Decoding is lenient, as browsers are: a ``%`` not followed by two hex digits is kept as
is, and bytes that do not form valid UTF-8 once decoded become U+FFFD.
"""

from __future__ import annotations

from typing import Iterable, List, Mapping, Tuple, Union

__all__ = ["decode", "decode_query_component", "encode", "parse_query", "encode_query"]

_HEX = "0123456789abcdefABCDEF"
#: Every two-digit escape (``b"e9"``, ``b"E9"``...) → its byte.
_ESCAPES = {(a + b).encode(): bytes([int(a + b, 16)]) for a in _HEX for b in _HEX}
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _decode(s: str, plus_as_space: bool) -> str:
    # Whole-string operations and one step per `%`, not per character: a component may
    # be a whole form body, and a loop over its bytes is slow in the interpreter.
    if plus_as_space and "+" in s:
        s = s.replace("+", " ")
    if "%" not in s:
        return s
    pieces = s.encode("utf-8").split(b"%")
    out = [pieces[0]]
    for piece in pieces[1:]:
        byte = _ESCAPES.get(piece[:2])
        if byte is None:
            out.append(b"%")
            out.append(piece)
        else:
            out.append(byte)
            out.append(piece[2:])
    return b"".join(out).decode("utf-8", errors="replace")


def decode(s: str) -> str:
    """Decodes percent-escapes (``%41`` → ``A``); ``+`` is kept. For path segments::

    >>> decode("caf%C3%A9%20cr%C3%A8me")
    'café crème'
    """
    return _decode(s, False)


def decode_query_component(s: str) -> str:
    """Decodes one component of a query string or form body: ``+`` is a space, then
    percent-escapes are decoded::

    >>> decode_query_component("Jean+Dupont%21")
    'Jean Dupont!'
    """
    return _decode(s, True)


def encode(s: str) -> str:
    """Percent-encodes `s` for a path segment or a query component: everything but ASCII
    letters, digits and ``-._~`` is escaped::

    >>> encode("café & co")
    'caf%C3%A9%20%26%20co'
    """
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in s.encode("utf-8"))


def parse_query(s: str) -> List[Tuple[str, str]]:
    """Parses an ``application/x-www-form-urlencoded`` string (a query string or a form
    body) into decoded ``(name, value)`` pairs, in order. A pair without ``=`` has an
    empty value; empty pairs are skipped::

    >>> parse_query("q=rue+de+Rivoli&page=2&debug")
    [('q', 'rue de Rivoli'), ('page', '2'), ('debug', '')]
    """
    pairs: List[Tuple[str, str]] = []
    for pair in s.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        pairs.append((decode_query_component(name), decode_query_component(value)))
    return pairs


def encode_query(pairs: Union[Iterable[Tuple[object, object]], Mapping[object, object]]) -> str:
    """Builds a query string from pairs or a dict (the reverse of :func:`parse_query`)::

    >>> encode_query([("q", "a b"), ("page", "2")])
    'q=a%20b&page=2'
    """
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return "&".join(f"{encode(str(k))}={encode(str(v))}" for k, v in items)
