"""Write Lutetia plugins in Python.

A Lutetia plugin is a WebAssembly component for the ``lutetia:plugin@0.1.0`` world: the
host calls it once per HTTP request under ``/p/{plugin-id}/`` and the plugin answers a
raw :class:`Response` or a :class:`Page` that the host wraps in the site layout. A fresh
instance serves each call, so keep state in the host's services (:mod:`lutetia.kv`,
:mod:`lutetia.store`...), not in globals.

A plugin is a folder with ``plugin.toml`` and ``app.py``; ``lutetia plugin build DIR``
turns it into a component::

    import lutetia
    from lutetia import Page, Request, Response, html_escape, kv

    class Hello(lutetia.Plugin):
        def handle(self, request: Request) -> lutetia.Reply:
            match (request.method, request.segments):
                case ("GET", []):
                    visits = kv.increment("visits")
                    return Page("Hello", f"<p>Visits: {visits}</p>")
                case ("GET", ["hello", name]):
                    return Page("Hello", f"<p>Hello {html_escape(name)}</p>")
                case _:
                    return Response.not_found()

    lutetia.export(Hello)

The services only exist inside the host: called from plain Python (a unit test) they
raise :class:`NotInHost`. The pure helpers (:class:`Request`, :class:`Page`,
:class:`Response`, :mod:`lutetia.html`, :mod:`lutetia.url`) work everywhere.
"""

from __future__ import annotations

from . import config, events, files, html, kv, limits, log, mail, multipart, store, url
from .errors import (
    Conflict,
    Denied,
    Invalid,
    NotFound,
    NotInHost,
    QuotaExceeded,
    ServiceError,
    Unavailable,
)
from .events import Event, Job
from .html import escape as html_escape
from .plugin import Plugin, export
from .reply import Headers, Page, Reply, Response
from .request import Params, Request, User

#: The version of the ``lutetia:plugin`` WIT package this SDK targets: the ``api`` field
#: of ``plugin.toml``.
API_VERSION = "0.1.0"

__all__ = [
    "API_VERSION",
    "Plugin",
    "export",
    "Request",
    "User",
    "Params",
    "Page",
    "Response",
    "Reply",
    "Headers",
    "Event",
    "Job",
    "ServiceError",
    "NotFound",
    "Denied",
    "Conflict",
    "Invalid",
    "QuotaExceeded",
    "Unavailable",
    "NotInHost",
    "html_escape",
    "config",
    "events",
    "files",
    "html",
    "kv",
    "limits",
    "log",
    "mail",
    "multipart",
    "store",
    "url",
]
