"""`news`: an information channel, as in a city intranet's channels.

Agents post news items; `GET /` lists them newest first, with pagination; each item has
its page; `GET /api/items` gives them as JSON for portlets and other sites. The items live
in the host's document store (collection `items`, indexed on `published_at`).

Until the host has sign-in, posting and deleting need the operator's `publish-key`
setting typed in the form (posting is closed while it is empty); a signed-in user holding
the plugin's `publish` right needs no key.
"""

from __future__ import annotations

import hmac
import re
from typing import Dict

import news_store
import news_views
from news_store import Item

import lutetia
from lutetia import Invalid, Page, Reply, Request, Response, ServiceError, config, log

#: The right (declared in plugin.toml) that lets a signed-in agent post without the key.
PUBLISH_RIGHT = "publish"
#: At most this many cursors of earlier pages are kept in a list page's address.
MAX_BACK = 20
#: The JSON API's largest page.
MAX_API_LIMIT = 100

_CURSOR = re.compile(r"[0-9a-f]{1,2048}")
_ID = re.compile(r"[0-9a-f]{1,16}-[0-9a-f]{1,16}")


def channel_name() -> str:
    return config.get_or("channel-name", "News").strip() or "News"


def page_size() -> int:
    size = config.get_int("page-size", 10)
    return size if 1 <= size <= MAX_API_LIMIT else 10


class Access:
    """Who may post and delete, for one request."""

    def __init__(self, req: Request) -> None:
        self.key = config.get_or("publish-key", "")
        user = req.user
        #: A signed-in agent holding the `publish` right: no key needed.
        self.agent = user is not None and user.has_right(PUBLISH_RIGHT)
        #: Whether posting is possible at all (a key is set, or the visitor is an agent).
        self.open = self.agent or bool(self.key)
        self.needs_key = not self.agent

    def allows(self, typed_key: str) -> bool:
        """Whether the visitor may write, given the key typed in the form."""
        if self.agent:
            return True
        if not self.key:
            return False
        return hmac.compare_digest(typed_key.encode("utf-8"), self.key.encode("utf-8"))


CLOSED = (
    "Posting is closed: the operator has not set this plugin's publish-key setting yet. "
    "Ask them to set it (or sign in as an agent holding the publish right)."
)


class News(lutetia.Plugin):
    def handle(self, request: Request) -> Reply:
        try:
            return self.route(request)
        except ServiceError as e:
            log.warn(f"{request.method} {request.path}: {e.code}: {e}")
            if request.segments[:1] == ["api"]:
                return e.response()
            return error_page(request, e)

    def route(self, req: Request) -> Reply:
        match (req.method, req.segments):
            case ("GET" | "HEAD", []):
                return list_items(req)
            case ("GET" | "HEAD", ["items", item_id]):
                return show_item(req, item_id)
            case ("POST", ["items", item_id, "delete"]):
                return delete_item(req, item_id)
            case ("GET" | "HEAD", ["new"]):
                return new_form(req)
            case ("POST", ["new"]):
                return post_item(req)
            case ("GET" | "HEAD", ["api", "items"]):
                return api_items(req)
            case (_, [] | ["items", _] | ["new"] | ["api", "items"]):
                allow = "GET, POST" if req.segments == ["new"] else "GET"
                return Response.text("Method not allowed", status=405).header("allow", allow)
            case _:
                return not_found(req)


def page(title: str, body: str, status: int = 200) -> Page:
    return Page(title, body, status=status, headers=[("cache-control", "no-cache")])


def not_found(req: Request, what: str = "There is no page at this address.") -> Page:
    body = f'<p>{lutetia.html_escape(what)}</p>\n<p><a href="{lutetia.html_escape(req.link("/"))}">← All news</a></p>'
    return page("Not found", body, 404)


def error_page(req: Request, e: ServiceError) -> Page:
    messages = {
        "invalid": "This request could not be understood (an outdated link?).",
        "quota-exceeded": "The channel is full: the operator must raise its quota or delete old items.",
        "unavailable": "The news are temporarily unavailable. Please try again in a moment.",
        "denied": "This plugin was not granted the document store: the operator must grant it.",
        "conflict": "Someone changed this item at the same time. Please try again.",
        "not-found": "There is no such item.",
    }
    text = messages.get(e.code, "Something went wrong.")
    body = (
        f"<p>{lutetia.html_escape(text)}</p>\n"
        f'<p><a href="{lutetia.html_escape(req.link("/"))}">← All news</a></p>'
    )
    return page(channel_name(), body, e.status)


def list_items(req: Request) -> Page:
    """`GET /?cursor=&back=`: one page of items, newest first."""
    cursor = req.query_param("cursor") or None
    back = [c for c in (req.query_param("back") or "").split(".") if c]
    if (
        cursor is not None
        and not _CURSOR.fullmatch(cursor)
        or not all(_CURSOR.fullmatch(c) for c in back)
    ):
        raise Invalid("malformed page link")
    result = news_store.newest(page_size(), cursor)
    older = newer = None
    if result.next_cursor:
        trail = (back + [cursor])[-MAX_BACK:] if cursor else []
        older = news_views.list_href(req, result.next_cursor, trail)
    if cursor is not None:
        newer = news_views.list_href(req, back[-1], back[:-1]) if back else req.link("/")
    body = news_views.list_page(
        req, result.items, news_store.total(), older, newer, Access(req).open
    )
    return page(channel_name(), body)


def valid_id(item_id: str) -> bool:
    return bool(_ID.fullmatch(item_id))


def show_item(req: Request, item_id: str) -> Page:
    """`GET /items/{id}`."""
    item = news_store.get(item_id) if valid_id(item_id) else None
    if item is None:
        return not_found(req, "There is no such news item (it may have been deleted).")
    access = Access(req)
    return page(item.title, news_views.item_page(req, item, access.open, access.needs_key))


def new_form(req: Request) -> Page:
    """`GET /new`: the form, or the closed message."""
    access = Access(req)
    if not access.open:
        return closed(req)
    return page(f"{channel_name()}: new item", news_views.form_page(req, {}, {}, access.needs_key))


def closed(req: Request) -> Page:
    body = (
        f'<p class="news-error">{lutetia.html_escape(CLOSED)}</p>\n'
        f'<p><a href="{lutetia.html_escape(req.link("/"))}">← All news</a></p>'
    )
    return page("Posting is closed", body, 403)


def clean(value: str) -> str:
    """A form value: line breaks normalised, outer white space trimmed."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def post_item(req: Request) -> Reply:
    """`POST /new`: validate, store, redirect to the item."""
    access = Access(req)
    if not access.open:
        return closed(req)
    form = req.form()
    values = {name: clean(form.get(name, "")) for name in ("title", "body", "author")}
    title = f"{channel_name()}: new item"
    if not access.allows(form.get("key", "")):
        errors = {"key": "This publishing key is not correct."}
        body = news_views.form_page(
            req,
            values,
            errors,
            access.needs_key,
            "Only agents may post: the publishing key is not correct.",
        )
        return page(title, body, 403)
    errors = news_store.validate(values["title"], values["body"], values["author"])
    if errors:
        return page(title, news_views.form_page(req, values, errors, access.needs_key), 400)
    posted_by = req.user.login if access.agent and req.user else None
    item = news_store.publish(values["title"], values["body"], values["author"], posted_by)
    log.info(f"news item {item.id} published by {posted_by or item.author!r}")
    return Response.redirect(req.link("/items/" + item.id))


def delete_item(req: Request, item_id: str) -> Reply:
    """`POST /items/{id}/delete`: with the key (or the right), delete and go to the list."""
    access = Access(req)
    if not access.open:
        return closed(req)
    typed = req.form().get("key", "")
    if not access.allows(typed):
        body = (
            '<p class="news-error">Only agents may delete items: the publishing key is not correct.</p>\n'
            f'<p><a href="{lutetia.html_escape(req.link("/items/" + item_id))}">← Back to the item</a></p>'
        )
        return page("Not allowed", body, 403)
    if not valid_id(item_id) or not news_store.delete(item_id):
        return not_found(req, "There is no such news item (it may have been deleted already).")
    log.info(f"news item {item_id} deleted")
    return Response.redirect(req.link("/"))


def item_json(req: Request, item: Item) -> Dict[str, object]:
    return {
        "id": item.id,
        "title": item.title,
        "body": item.body,
        "author": item.author,
        "published_at": item.published_at,
        "url": req.link("/items/" + item.id),
    }


def api_items(req: Request) -> Response:
    """`GET /api/items?limit=&cursor=`: `{"items": [...], "next": cursor | null}`."""
    limit_text = req.query_param("limit")
    if limit_text is None or limit_text == "":
        limit = page_size()
    elif limit_text.isdigit() and limit_text.isascii() and 1 <= int(limit_text) <= MAX_API_LIMIT:
        limit = int(limit_text)
    else:
        return Invalid(f"limit must be an integer from 1 to {MAX_API_LIMIT}").response()
    cursor = req.query_param("cursor") or None
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        return Invalid("malformed cursor").response()
    result = news_store.newest(limit, cursor)
    resp = Response.json(
        {"items": [item_json(req, i) for i in result.items], "next": result.next_cursor}
    )
    return resp.header("cache-control", "no-cache").header("access-control-allow-origin", "*")


lutetia.export(News)
