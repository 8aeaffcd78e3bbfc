"""What a handler answers: a :class:`Page` (wrapped in the site layout) or a raw
:class:`Response`."""

from __future__ import annotations

import json as _json
from typing import Any, Iterable, List, Optional, Tuple, Union

__all__ = ["Page", "Response", "Reply", "Headers"]

#: Header fields as ``(name, value)`` pairs, names in lower case.
Headers = List[Tuple[str, str]]


def _headers(headers: Optional[Iterable[Tuple[str, str]]]) -> Headers:
    if headers is None:
        return []
    if isinstance(headers, dict):
        headers = headers.items()
    return [(str(n).lower(), str(v)) for n, v in headers]


def _set_header(headers: Headers, name: str, value: str) -> None:
    name = name.lower()
    headers[:] = [(n, v) for n, v in headers if n != name]
    headers.append((name, str(value)))


class Page:
    """A page: the host wraps :attr:`body` (an HTML fragment) in the site layout, with
    :attr:`title` in the layout's heading and the browser tab. The host sanitises the
    HTML; still, escape every untrusted text with :func:`lutetia.html_escape`::

        Page("Bienvenue", f"<p>Bonjour {html_escape(name)} !</p>")
        Page("Not found", "<p>No such item.</p>", status=404)
    """

    __slots__ = ("title", "body", "status", "headers")

    def __init__(
        self,
        title: str,
        body: str,
        status: int = 200,
        headers: Optional[Iterable[Tuple[str, str]]] = None,
    ) -> None:
        #: Plain-text title (the host escapes it).
        self.title: str = title
        #: HTML fragment placed in the layout's main area.
        self.body: str = body
        #: HTTP status, usually 200 (100-599).
        self.status: int = status
        #: Extra response headers (``cache-control``...), names in lower case.
        self.headers: Headers = _headers(headers)

    def header(self, name: str, value: str) -> "Page":
        """Sets a header (replacing any of the same name); returns the page, to chain."""
        _set_header(self.headers, name, value)
        return self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Page) and (self.title, self.body, self.status, self.headers) == (
            other.title,
            other.body,
            other.status,
            other.headers,
        )

    def __repr__(self) -> str:
        return f"Page(title={self.title!r}, status={self.status}, body={self.body[:60]!r}...)"


class Response:
    """A raw HTTP response, sent as is (JSON APIs, files, redirects). `body` may be
    ``bytes`` or ``str`` (encoded as UTF-8)::

        Response.json({"id": 7}, status=201).header("location", req.link("/items/7"))
        Response(204)
    """

    __slots__ = ("status", "body", "headers")

    def __init__(
        self,
        status: int = 200,
        body: Union[bytes, bytearray, memoryview, str] = b"",
        headers: Optional[Iterable[Tuple[str, str]]] = None,
    ) -> None:
        #: HTTP status (100-599).
        self.status: int = status
        #: The body's bytes.
        self.body: bytes = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        #: Response headers, names in lower case.
        self.headers: Headers = _headers(headers)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> "Response":
        """`value` serialised as compact JSON, ``content-type: application/json``.
        ``TypeError``/``ValueError`` if it is not JSON-serialisable (NaN included)."""
        body = _json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return cls(status, body, [("content-type", "application/json")])

    @classmethod
    def text(cls, text: str, status: int = 200) -> "Response":
        """A plain-text response (``text/plain; charset=utf-8``)."""
        return cls(status, text, [("content-type", "text/plain; charset=utf-8")])

    @classmethod
    def html(cls, html: str, status: int = 200) -> "Response":
        """A complete HTML document sent without the site layout
        (``text/html; charset=utf-8``); use a :class:`Page` to get the layout."""
        return cls(status, html, [("content-type", "text/html; charset=utf-8")])

    @classmethod
    def redirect(cls, location: str, status: int = 303) -> "Response":
        """A redirect (``303 See Other`` by default, the answer to a form post) to
        `location`; build it with :meth:`lutetia.Request.link`."""
        return cls(status, b"", [("location", location)])

    @classmethod
    def not_found(cls, message: str = "Not found") -> "Response":
        """A plain-text ``404 Not Found``."""
        return cls.text(message, status=404)

    @classmethod
    def empty(cls, status: int = 204) -> "Response":
        """A response without body (``204 No Content`` by default)."""
        return cls(status)

    def header(self, name: str, value: str) -> "Response":
        """Sets a header (replacing any of the same name); returns the response, to chain."""
        _set_header(self.headers, name, value)
        return self

    def append_header(self, name: str, value: str) -> "Response":
        """Adds a header, keeping any of the same name (for headers that may repeat)."""
        self.headers.append((name.lower(), str(value)))
        return self

    def get_header(self, name: str) -> Optional[str]:
        """The value of the first header named `name` (case-insensitive), or ``None``."""
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Response) and (self.status, self.body, self.headers) == (
            other.status,
            other.body,
            other.headers,
        )

    def __repr__(self) -> str:
        return f"Response(status={self.status}, headers={self.headers!r}, body={self.body[:60]!r})"


#: What :meth:`lutetia.Plugin.handle` returns.
Reply = Union[Page, Response]


def _status(status: Any) -> int:
    # An int outside u16 would trap inside the bindings with a Rust panic message; say it
    # in Python instead (the host itself answers 500 for a status outside 100-599).
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"a reply's status must be an integer from 100 to 599, not {status!r}")
    return status


def to_wit(reply: Reply, types: Any) -> Any:
    """Converts a reply into the generated ``types.Reply`` value (used by the exports)."""
    if isinstance(reply, (Response, Page)):
        _status(reply.status)
    if isinstance(reply, Response):
        return types.Reply_Response(types.Response(reply.status, list(reply.headers), reply.body))
    if isinstance(reply, Page):
        return types.Reply_Page(
            types.Page(reply.status, reply.title, reply.body, list(reply.headers))
        )
    from .errors import ServiceError

    if isinstance(reply, ServiceError):
        return to_wit(reply.response(), types)
    raise TypeError(
        f"Plugin.handle must return a lutetia.Page or a lutetia.Response, not {type(reply).__name__}"
    )
