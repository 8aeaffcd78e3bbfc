"""The news items, kept in the host's document store (collection `items`)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from lutetia import store

#: The collection of the items.
COLLECTION = "items"

#: Length limits of the fields, in characters (after trimming).
LIMITS = {"title": 200, "body": 10000, "author": 100}


@dataclass
class Item:
    """One news item."""

    id: str
    title: str
    body: str
    author: str
    #: Milliseconds since the Unix epoch.
    published_at: int
    #: Login of the signed-in agent who posted it, if any.
    posted_by: Optional[str] = None

    @classmethod
    def from_document(cls, doc: store.Document) -> "Item":
        b = doc.body
        return cls(
            id=doc.id,
            title=str(b.get("title", "")),
            body=str(b.get("body", "")),
            author=str(b.get("author", "")),
            published_at=int(b.get("published_at", 0)),
            posted_by=b.get("posted_by"),
        )

    def to_body(self) -> Dict[str, Any]:
        body: Dict[str, Any] = {
            "title": self.title,
            "body": self.body,
            "author": self.author,
            "published_at": self.published_at,
        }
        if self.posted_by:
            body["posted_by"] = self.posted_by
        return body


def validate(title: str, body: str, author: str) -> Dict[str, str]:
    """The problems of a draft, by field name (empty when it is fine)."""
    errors: Dict[str, str] = {}
    for name, value in (("title", title), ("body", body), ("author", author)):
        limit = LIMITS[name]
        if not value:
            errors[name] = f"The {name} is required."
        elif len(value) > limit:
            errors[name] = f"The {name} has {len(value)} characters; at most {limit}."
    return errors


def new_id(published_at: int) -> str:
    """A fresh id: the publication time in hex (so ids sort like dates) and randomness."""
    return f"{published_at:011x}-{secrets.token_hex(3)}"


def publish(title: str, body: str, author: str, posted_by: Optional[str]) -> Item:
    """Stores a new item and returns it."""
    store.ensure_index(COLLECTION, ["published_at"])
    now = int(time.time() * 1000)
    item = Item(new_id(now), title, body, author, now, posted_by)
    store.insert(COLLECTION, item.id, item.to_body())
    return item


def get(item_id: str) -> Optional[Item]:
    """The item `item_id`, or None."""
    doc = store.get(COLLECTION, item_id)
    return None if doc is None else Item.from_document(doc)


def delete(item_id: str) -> bool:
    """Deletes an item; returns whether it existed."""
    return store.delete(COLLECTION, item_id)


@dataclass
class ItemPage:
    """One page of the list, newest first."""

    items: List[Item]
    #: The store cursor of the next (older) page, if any.
    next_cursor: Optional[str]


def newest(limit: int, cursor: Optional[str] = None) -> ItemPage:
    """A page of `limit` items, newest first, after `cursor`."""
    store.ensure_index(COLLECTION, ["published_at"])
    page = store.find(
        COLLECTION, order_by="published_at", descending=True, limit=limit, cursor=cursor
    )
    return ItemPage([Item.from_document(d) for d in page.documents], page.next_cursor)


def total() -> int:
    """How many items there are."""
    return store.count(COLLECTION)
