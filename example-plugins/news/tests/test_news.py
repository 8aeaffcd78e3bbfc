"""Unit tests of the news plugin, in plain Python: the store and the settings are
replaced by in-memory fakes (the SDK's services only exist inside the host).

    python3 -m unittest discover -s example-plugins/news/tests
"""

from __future__ import annotations

import json
import os
import sys
import unittest
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "plugins-sdk", "python"))

import app  # noqa: E402
import news_store  # noqa: E402
import news_views  # noqa: E402
from news_store import Item, ItemPage  # noqa: E402

import lutetia  # noqa: E402
from lutetia import Page, Request, Response, User  # noqa: E402

FORM = [("content-type", "application/x-www-form-urlencoded")]


class FakeServices:
    """In-memory settings and items, patched over the plugin's service calls."""

    def __init__(self, settings: Dict[str, str]) -> None:
        self.settings = settings
        self.items: Dict[str, Item] = {}
        self.clock = 1_700_000_000_000
        self._saved: List[tuple] = []

    def __enter__(self) -> "FakeServices":
        def patch(module: object, name: str, value: object) -> None:
            self._saved.append((module, name, getattr(module, name)))
            setattr(module, name, value)

        def publish(title: str, body: str, author: str, posted_by: Optional[str]) -> Item:
            self.clock += 1
            item = Item(news_store.new_id(self.clock), title, body, author, self.clock, posted_by)
            self.items[item.id] = item
            return item

        def newest(limit: int, cursor: Optional[str] = None) -> ItemPage:
            ordered = sorted(
                self.items.values(), key=lambda i: (i.published_at, i.id), reverse=True
            )
            start = int(cursor, 16) if cursor else 0
            rest = ordered[start:]
            more = len(rest) > limit
            return ItemPage(rest[:limit], format(start + limit, "x") if more else None)

        patch(lutetia.config, "get", self.settings.get)
        patch(lutetia.log, "log", lambda level, message: None)
        patch(news_store, "publish", publish)
        patch(news_store, "get", self.items.get)
        patch(news_store, "delete", lambda i: self.items.pop(i, None) is not None)
        patch(news_store, "newest", newest)
        patch(news_store, "total", lambda: len(self.items))
        return self

    def __exit__(self, *exc: object) -> None:
        for module, name, value in reversed(self._saved):
            setattr(module, name, value)


def call(
    method: str, path: str, query: str = "", body: str = "", user: Optional[User] = None
) -> lutetia.Reply:
    req = Request(
        method,
        path,
        query=query,
        headers=FORM if body else [],
        body=body,
        mount="/p/news",
        user=user,
    )
    return app.News().handle(req)


class PureTests(unittest.TestCase):
    def test_validate(self) -> None:
        self.assertEqual(news_store.validate("t", "b", "a"), {})
        errors = news_store.validate("", "b" * 10001, "a" * 100)
        self.assertEqual(sorted(errors), ["body", "title"])
        self.assertIn("10001", errors["body"])

    def test_paragraphs_escape(self) -> None:
        html = news_views.paragraphs("One <b>\r\nline & two\n\n \n\nTwo")
        self.assertEqual(html, "<p>One &lt;b&gt;<br>\nline &amp; two</p>\n<p>Two</p>")

    def test_ids_sort_like_dates(self) -> None:
        a, b = news_store.new_id(1_700_000_000_000), news_store.new_id(1_700_000_000_001)
        self.assertLess(a, b)
        self.assertTrue(app.valid_id(a))
        self.assertFalse(app.valid_id("../x"))

    def test_dates(self) -> None:
        self.assertEqual(news_views.date(0), "1970-01-01 00:00 UTC")
        self.assertEqual(news_views.iso(1_700_000_000_000), "2023-11-14T22:13:20Z")


class RouteTests(unittest.TestCase):
    def test_closed_without_key(self) -> None:
        with FakeServices({"publish-key": ""}):
            reply = call("GET", "/new")
            self.assertIsInstance(reply, Page)
            self.assertEqual(reply.status, 403)
            self.assertIn("publish-key", reply.body)
            self.assertEqual(call("POST", "/new", body="title=a&body=b&author=c&key=").status, 403)
            empty = call("GET", "/")
            self.assertIn("No news yet", empty.body)
            self.assertNotIn("/p/news/new", empty.body)

    def test_post_with_key_then_list_and_delete(self) -> None:
        with FakeServices({"publish-key": "k", "page-size": "2", "channel-name": "Mairie"}) as fake:
            wrong = call("POST", "/new", body="title=T&body=B&author=A&key=x")
            self.assertEqual(wrong.status, 403)
            self.assertIn('value="T"', wrong.body)
            bad = call("POST", "/new", body="title=&body=B&author=A+%3Cb%3E&key=k")
            self.assertEqual(bad.status, 400)
            self.assertIn("The title is required.", bad.body)
            self.assertIn('value="A &lt;b&gt;"', bad.body)
            for n in range(5):
                ok = call("POST", "/new", body=f"title=Item+{n}&body=Hello&author=A&key=k")
                self.assertIsInstance(ok, Response)
                self.assertEqual(ok.status, 303)
                self.assertTrue(ok.get_header("location").startswith("/p/news/items/"))
            first = call("GET", "/")
            self.assertEqual(first.title, "Mairie")
            self.assertIn("Item 4", first.body)
            self.assertNotIn("Item 2", first.body)
            self.assertIn("Older", first.body)
            self.assertNotIn("Newer", first.body)
            second = call("GET", "/", query="cursor=2")
            self.assertIn("Item 2", second.body)
            self.assertIn('href="/p/news/"', second.body)  # newer: the first page
            self.assertIn("cursor=4&amp;back=2", second.body)
            third = call("GET", "/", query="cursor=4&back=2")
            self.assertIn("Item 0", third.body)
            self.assertIn("cursor=2", third.body)
            self.assertNotIn("Older", third.body)
            item_id = next(iter(fake.items))
            page = call("GET", f"/items/{item_id}")
            self.assertEqual(page.status, 200)
            self.assertEqual(call("POST", f"/items/{item_id}/delete", body="key=x").status, 403)
            gone = call("POST", f"/items/{item_id}/delete", body="key=k")
            self.assertEqual((gone.status, gone.get_header("location")), (303, "/p/news/"))
            self.assertEqual(call("GET", f"/items/{item_id}").status, 404)

    def test_agent_posts_without_key(self) -> None:
        agent = User("7", "mmartin", "Marie Martin", ("agent",), ("publish",))
        with FakeServices({"publish-key": ""}) as fake:
            form = call("GET", "/new", user=agent)
            self.assertEqual(form.status, 200)
            self.assertNotIn('name="key"', form.body)
            ok = call("POST", "/new", body="title=T&body=B&author=A", user=agent)
            self.assertEqual(ok.status, 303)
            self.assertEqual(next(iter(fake.items.values())).posted_by, "mmartin")
            other = User("8", "x", "X", ("agent",), ())
            self.assertEqual(
                call("POST", "/new", body="title=T&body=B&author=A", user=other).status, 403
            )

    def test_api(self) -> None:
        with FakeServices({"publish-key": "k"}):
            for n in range(3):
                call("POST", "/new", body=f"title=N{n}&body=B&author=A&key=k")
            reply = call("GET", "/api/items", query="limit=2")
            self.assertEqual(reply.status, 200)
            data = json.loads(reply.body)
            self.assertEqual([i["title"] for i in data["items"]], ["N2", "N1"])
            self.assertEqual(data["next"], "2")
            self.assertEqual(call("GET", "/api/items", query="limit=0").status, 400)
            self.assertEqual(call("GET", "/api/items", query="cursor=%3C").status, 400)

    def test_methods_and_unknown(self) -> None:
        with FakeServices({}):
            self.assertEqual(call("DELETE", "/").status, 405)
            self.assertEqual(call("GET", "/nope").status, 404)


if __name__ == "__main__":
    unittest.main()
