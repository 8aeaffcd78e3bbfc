"""The request a plugin receives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Dict, List, Optional, Tuple, overload

from . import _json, multipart, url
from .errors import Invalid
from .limits import MAX_FORM_FIELDS

__all__ = ["Params", "User", "Request"]

_FIELD = re.compile(r"[^&]+")


class Params(List[Tuple[str, str]]):
    """Decoded ``(name, value)`` pairs of a query string or a form body, in order (a name
    may repeat). It is a ``list`` of pairs, with dictionary-like helpers where the first
    occurrence of a name wins::

        >>> p = Params([("tag", "a"), ("tag", "b"), ("q", "x")])
        >>> p.get("tag"), p.get_all("tag"), p.to_dict()
        ('a', ['a', 'b'], {'tag': 'a', 'q': 'x'})
    """

    @overload
    def get(self, name: str) -> Optional[str]: ...
    @overload
    def get(self, name: str, default: str) -> str: ...

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of the first pair named `name`, or `default`."""
        for n, v in self:
            if n == name:
                return v
        return default

    def get_all(self, name: str) -> List[str]:
        """Every value of the pairs named `name`, in order."""
        return [v for n, v in self if n == name]

    def has(self, name: str) -> bool:
        """Whether a pair is named `name`."""
        return any(n == name for n, _ in self)

    def names(self) -> List[str]:
        """The distinct names, in order of first appearance."""
        return list(self.to_dict())

    def to_dict(self) -> Dict[str, str]:
        """A ``dict`` name → value where the first occurrence of a name wins."""
        out: Dict[str, str] = {}
        for n, v in self:
            out.setdefault(n, v)
        return out


@dataclass(frozen=True)
class User:
    """The signed-in person making a request, as the host knows them."""

    #: Stable identifier of the account.
    id: str
    #: Login name.
    login: str
    #: Name to show.
    display_name: str
    #: Back-office roles held (for example ``agent``, ``admin``).
    roles: Tuple[str, ...] = ()
    #: Rights held on this plugin (names the plugin defines for its back office).
    rights: Tuple[str, ...] = ()

    def has_role(self, role: str) -> bool:
        """Whether the user holds the back-office role `role`."""
        return role in self.roles

    def has_right(self, right: str) -> bool:
        """Whether the user holds the right `right` on this plugin."""
        return right in self.rights


@dataclass
class Request:
    """An HTTP request routed to the plugin.

    The host strips the plugin's mount from the path (``/p/news/items/3`` arrives as
    ``/items/3``), lower-cases header names and removes hop-by-hop, cookie and credential
    headers. Build one by hand to unit-test a handler::

        req = Request("POST", "/new", headers=[("content-type", "application/x-www-form-urlencoded")],
                      body=b"title=Hello")
    """

    #: The method in upper case: ``GET``, ``POST``...
    method: str = "GET"
    #: The path below the mount, starting with ``/``, still percent-encoded.
    path: str = "/"
    #: The raw query string, without the leading ``?`` (may be empty).
    query: str = ""
    #: Every header as ``(name, value)``, in order, names in lower case.
    headers: List[Tuple[str, str]] = field(default_factory=list)
    #: The body's bytes.
    body: bytes = b""
    #: The signed-in user, or ``None``.
    user: Optional[User] = None
    #: The visitor's preferred locale, a BCP 47 tag such as ``fr-FR``.
    locale: str = "fr-FR"
    #: The absolute path where the plugin is mounted, such as ``/p/news``.
    mount: str = "/p/test"
    #: The request's identifier, also found in the host's logs.
    request_id: str = "test"

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        if not self.path.startswith("/"):
            self.path = "/" + self.path
        self.headers = [(str(n).lower(), str(v)) for n, v in self.headers]
        if isinstance(self.body, str):
            self.body = self.body.encode("utf-8")
        elif not isinstance(self.body, bytes):
            self.body = bytes(self.body)

    @property
    def segments(self) -> List[str]:
        """The non-empty segments of :attr:`path`, each percent-decoded (``%2F`` stays
        inside its segment): ``/`` gives ``[]``, ``/items/a%20b/`` gives
        ``["items", "a b"]``. Handy for ``match``::

            match (req.method, req.segments):
                case ("GET", []): ...
                case ("GET", ["items", item_id]): ...
        """
        return [url.decode(s) for s in self.path.split("/") if s]

    @property
    def query_params(self) -> Params:
        """The decoded query parameters (``+`` is a space), in order."""
        return Params(url.parse_query(self.query))

    @overload
    def query_param(self, name: str) -> Optional[str]: ...
    @overload
    def query_param(self, name: str, default: str) -> str: ...

    def query_param(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The decoded value of the first query parameter named `name`, or `default`. A
        parameter without ``=`` has an empty value."""
        return self.query_params.get(name, default)  # type: ignore[arg-type]

    @overload
    def header(self, name: str) -> Optional[str]: ...
    @overload
    def header(self, name: str, default: str) -> str: ...

    def header(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of the first header named `name` (case-insensitive), or `default`."""
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return default

    @property
    def content_type(self) -> Optional[str]:
        """The ``content-type`` header's media type, lower-cased, without parameters
        (``application/json``), or ``None``."""
        value = self.header("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    def text(self) -> str:
        """The body as UTF-8 text; :class:`~lutetia.Invalid` if it is not UTF-8."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Invalid(f"request body is not UTF-8: {e}") from None

    def json(self) -> Any:
        """The body parsed as JSON; :class:`~lutetia.Invalid` says why it could not be
        (the ``content-type`` is not checked). As in the Rust and JavaScript SDKs, a body
        nested deeper than :data:`~lutetia.limits.MAX_JSON_DEPTH` levels is refused before
        it is parsed, and ``NaN``, ``Infinity``, numbers beyond the range of a double and
        lone surrogate escapes (``"\\ud800"``) are invalid."""
        return _json.loads(self.text(), "request body")

    def form(self) -> Params:
        """The fields of an ``application/x-www-form-urlencoded`` body (an HTML form), as
        :class:`Params`. :class:`~lutetia.Invalid` if the request has another
        ``content-type`` (a ``multipart/form-data`` upload...), a body that is not UTF-8
        or more than :data:`~lutetia.limits.MAX_FORM_FIELDS` fields. Malformed
        percent-escapes are decoded leniently, as browsers do (see :mod:`lutetia.url`)."""
        content_type = self.content_type
        if content_type is not None and content_type != "application/x-www-form-urlencoded":
            raise Invalid(
                "expected an application/x-www-form-urlencoded body, got "
                + (self.header("content-type") or "")
            )
        text = self.text()
        # Counted before anything is decoded, and only up to one past the limit.
        if text.count("&") >= MAX_FORM_FIELDS and any(
            True for _ in islice(_FIELD.finditer(text), MAX_FORM_FIELDS, None)
        ):
            raise Invalid(
                f"request body is a form of more than {MAX_FORM_FIELDS} fields (the SDK's limit)"
            )
        return Params(url.parse_query(text))

    def multipart(self) -> "List[multipart.Part]":
        """The parts of a ``multipart/form-data`` body (a form with file inputs), in
        order; :class:`~lutetia.Invalid` if it is not one, is malformed or has more than
        :data:`~lutetia.limits.MAX_MULTIPART_PARTS` parts."""
        content_type = self.header("content-type")
        if content_type is None:
            raise Invalid("the request has no content-type")
        return multipart.parse(content_type, self.body)

    def link(self, path: str = "") -> str:
        """An absolute link to `path` inside the plugin (the mount, then `path`), for
        ``href`` attributes and redirects: with mount ``/p/news``, ``link("/items/3")``
        and ``link("items/3")`` both give ``/p/news/items/3``."""
        return self.mount.rstrip("/") + "/" + path.lstrip("/")

    @classmethod
    def _from_wit(cls, r: Any) -> "Request":
        user = None
        if r.user is not None:
            u = r.user
            user = User(u.id, u.login, u.display_name, tuple(u.roles), tuple(u.rights))
        return cls(
            method=r.method,
            path=r.path,
            query=r.query,
            headers=list(r.headers),
            body=bytes(r.body),
            user=user,
            locale=r.locale,
            mount=r.mount,
            request_id=r.request_id,
        )
