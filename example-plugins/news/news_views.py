"""The HTML of the news pages (fragments the host wraps in the site layout)."""

from __future__ import annotations

import re
import time
from typing import Dict, List, Optional

from news_store import LIMITS, Item

from lutetia import Request
from lutetia import html_escape as esc
from lutetia.url import encode_query

_BLANK_LINES = re.compile(r"\n[ \t\r]*\n")


def date(ms: int) -> str:
    """A publication time for people: `2025-03-14 09:30 UTC`."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))


def iso(ms: int) -> str:
    """A publication time for machines (the `datetime` attribute)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def paragraphs(text: str) -> str:
    """Body text as HTML paragraphs: blank lines separate paragraphs, single line breaks
    stay line breaks; everything escaped."""
    text = text.replace("\r\n", "\n").strip()
    out = []
    for para in _BLANK_LINES.split(text):
        para = para.strip()
        if para:
            out.append("<p>" + "<br>\n".join(esc(line) for line in para.split("\n")) + "</p>")
    return "\n".join(out)


def item_link(req: Request, item: Item) -> str:
    return req.link("/items/" + item.id)


def item_meta(item: Item) -> str:
    return (
        f'<p class="news-meta"><time datetime="{iso(item.published_at)}">'
        f"{esc(date(item.published_at))}</time> · {esc(item.author)}</p>"
    )


def list_page(
    req: Request,
    items: List[Item],
    total: int,
    older: Optional[str],
    newer: Optional[str],
    can_post: bool,
) -> str:
    """The body of `GET /`: the items and the pagination links."""
    parts: List[str] = []
    if can_post:
        parts.append(
            f'<p class="news-actions"><a href="{esc(req.link("/new"))}">Agents: post a news item</a></p>'
        )
    if not items:
        if total:
            parts.append(
                '<p class="news-empty">No more items here. '
                f'<a href="{esc(req.link("/"))}">Back to the newest</a>.</p>'
            )
        else:
            parts.append(
                '<p class="news-empty">No news yet. Items will appear here as soon as they are posted.</p>'
            )
        return "\n".join(parts)
    parts.append(f'<p class="news-count">{total} item{"" if total == 1 else "s"}</p>')
    parts.append('<div class="news-list">')
    for item in items:
        parts.append(
            '<article class="news-item">\n'
            f'<h2><a href="{esc(item_link(req, item))}">{esc(item.title)}</a></h2>\n'
            f"{item_meta(item)}\n"
            f'<div class="news-body">{paragraphs(item.body)}</div>\n'
            "</article>"
        )
    parts.append("</div>")
    nav = []
    if newer is not None:
        nav.append(f'<a class="news-newer" href="{esc(newer)}">← Newer</a>')
    if older is not None:
        nav.append(f'<a class="news-older" href="{esc(older)}">Older →</a>')
    if nav:
        parts.append('<nav class="news-pages">' + " ".join(nav) + "</nav>")
    return "\n".join(parts)


def list_href(req: Request, cursor: Optional[str], back: List[str]) -> str:
    """The address of a list page: its store cursor and the cursors of the pages before."""
    if cursor is None:
        return req.link("/")
    params = [("cursor", cursor)]
    if back:
        params.append(("back", ".".join(back)))
    return req.link("/") + "?" + encode_query(params)


def item_page(req: Request, item: Item, can_delete: bool, needs_key: bool) -> str:
    """The body of `GET /items/{id}`."""
    parts = [
        '<article class="news-item">',
        item_meta(item),
        f'<div class="news-body">{paragraphs(item.body)}</div>',
        "</article>",
        f'<p><a href="{esc(req.link("/"))}">← All news</a></p>',
    ]
    if can_delete:
        key = (
            '<label>Publishing key <input type="password" name="key" required autocomplete="off"></label> '
            if needs_key
            else ""
        )
        parts.append(
            '<details class="news-manage"><summary>Agents: delete this item</summary>'
            f'<form method="post" action="{esc(req.link("/items/" + item.id + "/delete"))}" class="news-delete">'
            f'<p>{key}<button type="submit">Delete this item</button></p></form></details>'
        )
    return "\n".join(parts)


def form_page(
    req: Request,
    values: Dict[str, str],
    errors: Dict[str, str],
    needs_key: bool,
    message: Optional[str] = None,
) -> str:
    """The body of `GET /new`, or of a rejected `POST /new` (messages, typed values kept)."""

    def error(name: str) -> str:
        if name not in errors:
            return ""
        return f'<br><strong class="news-error" id="{name}-error">{esc(errors[name])}</strong>'

    def described(name: str) -> str:
        return f' aria-invalid="true" aria-describedby="{name}-error"' if name in errors else ""

    parts = []
    if message:
        parts.append(f'<p class="news-error" role="alert"><strong>{esc(message)}</strong></p>')
    elif errors:
        parts.append(
            '<p class="news-error" role="alert"><strong>Please correct the fields below.</strong></p>'
        )
    parts.append(f'<form method="post" action="{esc(req.link("/new"))}" class="news-form">')
    parts.append(
        f'<p><label>Title<br><input name="title" maxlength="{LIMITS["title"]}" required '
        f'value="{esc(values.get("title", ""))}"{described("title")}></label>{error("title")}</p>'
    )
    parts.append(
        f'<p><label>Text (a blank line starts a new paragraph)<br><textarea name="body" rows="10" cols="60" '
        f'maxlength="{LIMITS["body"]}" required{described("body")}>{esc(values.get("body", ""))}</textarea>'
        f"</label>{error('body')}</p>"
    )
    parts.append(
        f'<p><label>Author<br><input name="author" maxlength="{LIMITS["author"]}" required '
        f'value="{esc(values.get("author", ""))}"{described("author")}></label>{error("author")}</p>'
    )
    if needs_key:
        parts.append(
            '<p><label>Publishing key<br><input type="password" name="key" required autocomplete="off"'
            f"{described('key')}></label>{error('key')}</p>"
        )
    parts.append('<p><button type="submit">Publish</button></p>')
    parts.append("</form>")
    parts.append(f'<p><a href="{esc(req.link("/"))}">← All news</a></p>')
    return "\n".join(parts)
