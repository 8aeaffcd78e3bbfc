"""Unit tests of the Python SDK's pure parts, and of its service and export adapters
against fake generated bindings. Stdlib only:

    python3 -m unittest discover -s plugins-sdk/python/tests
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import types as pytypes
import unittest
from dataclasses import dataclass
from enum import Enum
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import lutetia  # noqa: E402
from lutetia import (  # noqa: E402  # noqa: E402
    Conflict,
    Denied,
    Invalid,
    NotFound,
    NotInHost,
    Page,
    Params,
    QuotaExceeded,
    Request,
    Response,
    ServiceError,
    Unavailable,
    User,
    _wit,
    html_escape,
    plugin,
    url,
)
from lutetia.store import field  # noqa: E402

# -- fake bindings ----------------------------------------------------------------------


@dataclass(frozen=True)
class FakeErr(Exception):
    value: Any


def _types_module() -> pytypes.ModuleType:
    m = pytypes.ModuleType("wit_world.imports.types")

    @dataclass
    class User:
        id: str
        login: str
        display_name: str
        roles: List[str]
        rights: List[str]

    @dataclass
    class Request:
        method: str
        path: str
        query: str
        headers: List[Any]
        body: bytes
        user: Optional[Any]
        locale: str
        mount: str
        request_id: str

    @dataclass
    class Response:
        status: int
        headers: List[Any]
        body: bytes

    @dataclass
    class Page:
        status: int
        title: str
        body: str
        headers: List[Any]

    @dataclass
    class Reply_Response:
        value: Any

    @dataclass
    class Reply_Page:
        value: Any

    for name in ["NotFound", "Denied", "Conflict", "QuotaExceeded"]:
        setattr(m, f"Error_{name}", dataclass(type(f"Error_{name}", (), {})))

    @dataclass
    class Error_Invalid:
        value: str

    @dataclass
    class Error_Unavailable:
        value: str

    for obj in [
        User,
        Request,
        Response,
        Page,
        Reply_Response,
        Reply_Page,
        Error_Invalid,
        Error_Unavailable,
    ]:
        setattr(m, obj.__name__, obj)
    return m


def _kv_module(t: pytypes.ModuleType) -> pytypes.ModuleType:
    m = pytypes.ModuleType("wit_world.imports.kv")
    data: Dict[str, bytes] = {}
    m.data = data  # type: ignore[attr-defined]

    def check_key(key: str) -> None:
        if not key:
            raise FakeErr(t.Error_Invalid("empty key"))
        if key == "denied":
            raise FakeErr(t.Error_Denied())

    def get(key: str) -> Optional[bytes]:
        check_key(key)
        return data.get(key)

    def set_(key: str, value: bytes) -> None:
        check_key(key)
        assert isinstance(value, bytes), type(value)
        data[key] = value

    def delete(key: str) -> bool:
        return data.pop(key, None) is not None

    def increment(key: str, delta: int) -> int:
        n = int(data.get(key, b"0")) + delta
        data[key] = str(n).encode()
        return n

    def compare_and_swap(key: str, expected: Optional[bytes], new: bytes) -> bool:
        if data.get(key) != expected:
            return False
        data[key] = new
        return True

    def list_keys(prefix: str, start_after: Optional[str], limit: int) -> List[str]:
        keys = sorted(
            k for k in data if k.startswith(prefix) and (start_after is None or k > start_after)
        )
        return keys[:limit]

    m.get, m.set, m.delete, m.increment = get, set_, delete, increment  # type: ignore[attr-defined]
    m.compare_and_swap, m.list_keys = compare_and_swap, list_keys  # type: ignore[attr-defined]
    return m


def _store_module(t: pytypes.ModuleType) -> pytypes.ModuleType:
    m = pytypes.ModuleType("wit_world.imports.store")
    m.calls = []  # type: ignore[attr-defined]

    class Comparison(Enum):
        EQ = 0
        NE = 1
        LT = 2
        LTE = 3
        GT = 4
        GTE = 5
        IN = 6
        PREFIX = 7

    @dataclass
    class Document:
        collection: str
        id: str
        version: int
        body: str

    @dataclass
    class Filter:
        field: str
        op: Comparison
        value: str

    @dataclass
    class Query:
        collection: str
        filters: List[Filter]
        order_by: Optional[str]
        descending: bool
        limit: int
        cursor: Optional[str]

    @dataclass
    class QueryPage:
        documents: List[Document]
        next_cursor: Optional[str]

    @dataclass
    class DocRef:
        collection: str
        id: str

    @dataclass
    class PutOp:
        collection: str
        id: str
        body: str
        expected_version: Optional[int]

    for name in [
        "Precondition_Absent",
        "Precondition_AtVersion",
        "Precondition_CountBelow",
        "Write_Put",
        "Write_Delete",
    ]:
        setattr(m, name, dataclass(type(name, (), {"__annotations__": {"value": Any}})))
    for obj in [Comparison, Document, Filter, Query, QueryPage, DocRef, PutOp]:
        setattr(m, obj.__name__, obj)

    docs: Dict[Any, Document] = {}

    def get(collection: str, id: str) -> Optional[Document]:
        return docs.get((collection, id))

    def put(collection: str, id: str, body: str, expected_version: Optional[int]) -> int:
        m.calls.append(("put", collection, id, body, expected_version))
        current = docs.get((collection, id))
        if expected_version is not None and (current.version if current else 0) != expected_version:
            raise FakeErr(t.Error_Conflict())
        version = (current.version if current else 0) + 1
        docs[(collection, id)] = Document(collection, id, version, body)
        return version

    def find(q: Query) -> QueryPage:
        m.calls.append(("find", q))
        found = [d for (c, _), d in sorted(docs.items()) if c == q.collection]
        return QueryPage(found[: q.limit], "abc" if len(found) > q.limit else None)

    def count(collection: str, filters: List[Filter]) -> int:
        m.calls.append(("count", collection, filters))
        return 7

    def transaction(pre: List[Any], writes: List[Any]) -> List[int]:
        m.calls.append(("transaction", pre, writes))
        return [1 for _ in writes]

    m.get, m.put, m.find, m.count, m.transaction = get, put, find, count, transaction  # type: ignore[attr-defined]
    return m


def _config_module() -> pytypes.ModuleType:
    m = pytypes.ModuleType("wit_world.imports.config")
    settings = {"greeting": "Bonjour", "page-size": "12", "bad-int": "x"}
    m.get = settings.get  # type: ignore[attr-defined]
    m.get_all = lambda: sorted(settings.items())  # type: ignore[attr-defined]
    return m


def _log_module() -> pytypes.ModuleType:
    m = pytypes.ModuleType("wit_world.imports.log")

    class Level(Enum):
        TRACE = 0
        DEBUG = 1
        INFO = 2
        WARN = 3
        ERROR = 4

    m.Level = Level  # type: ignore[attr-defined]
    m.lines = []  # type: ignore[attr-defined]
    m.log = lambda level, message: m.lines.append((level, message))  # type: ignore[attr-defined]
    return m


def _exports_module() -> pytypes.ModuleType:
    m = pytypes.ModuleType("wit_world.exports")
    for name in ["Handler", "Subscriber", "Scheduler", "Lifecycle"]:
        setattr(m, name, type(name, (), {}))
    return m


FAKE_NAMES = [
    "componentize_py_types",
    "wit_world",
    "wit_world.imports",
    "wit_world.imports.types",
    "wit_world.imports.kv",
    "wit_world.imports.store",
    "wit_world.imports.config",
    "wit_world.imports.log",
    "wit_world.exports",
    "lutetia._exports",
]


class FakeHost:
    """Installs fake generated bindings in sys.modules (without `files`, `mail` and
    `events`, as a build whose manifest asks for kv and store only)."""

    def __enter__(self) -> "FakeHost":
        cpt = pytypes.ModuleType("componentize_py_types")
        cpt.Err = FakeErr  # type: ignore[attr-defined]
        ww = pytypes.ModuleType("wit_world")
        ww.__path__ = []  # type: ignore[attr-defined]
        imports = pytypes.ModuleType("wit_world.imports")
        imports.__path__ = []  # type: ignore[attr-defined]
        self.types = _types_module()
        self.kv = _kv_module(self.types)
        self.store = _store_module(self.types)
        self.config = _config_module()
        self.log = _log_module()
        modules = {
            "componentize_py_types": cpt,
            "wit_world": ww,
            "wit_world.imports": imports,
            "wit_world.imports.types": self.types,
            "wit_world.imports.kv": self.kv,
            "wit_world.imports.store": self.store,
            "wit_world.imports.config": self.config,
            "wit_world.imports.log": self.log,
            "wit_world.exports": _exports_module(),
        }
        for name, module in modules.items():
            sys.modules[name] = module
        for name in ["types", "kv", "store", "config", "log"]:
            setattr(imports, name, modules[f"wit_world.imports.{name}"])
        ww.imports = imports  # type: ignore[attr-defined]
        ww.exports = modules["wit_world.exports"]  # type: ignore[attr-defined]
        _wit._reset()
        return self

    def __exit__(self, *exc: Any) -> None:
        for name in FAKE_NAMES:
            sys.modules.pop(name, None)
        _wit._reset()
        plugin._reset()


# -- pure helpers -----------------------------------------------------------------------


class UrlTests(unittest.TestCase):
    def test_decode(self) -> None:
        self.assertEqual(url.decode("%41%42c"), "ABc")
        self.assertEqual(url.decode("%e2%82%ac"), "€")
        self.assertEqual(url.decode("100%25"), "100%")
        self.assertEqual(url.decode("a+b"), "a+b")
        self.assertEqual(url.decode("%"), "%")
        self.assertEqual(url.decode("%4"), "%4")
        self.assertEqual(url.decode("%zz%41"), "%zzA")
        self.assertEqual(url.decode("a%FFb"), "a\ufffdb")
        self.assertEqual(url.decode("é%20"), "é ")

    def test_query(self) -> None:
        self.assertEqual(url.parse_query(""), [])
        self.assertEqual(url.parse_query("a=1&&b=&c"), [("a", "1"), ("b", ""), ("c", "")])
        self.assertEqual(url.parse_query("x=a=b"), [("x", "a=b")])
        self.assertEqual(url.parse_query("na%6De=J%C3%A9r%C3%B4me+L."), [("name", "Jérôme L.")])
        self.assertEqual(url.parse_query("p=a%2Bb+c"), [("p", "a+b c")])

    def test_encode_round_trip(self) -> None:
        for s in ["", "plain", "a b&c=d/e?f#g", "café ☕", "100%", "~-._"]:
            self.assertEqual(url.decode(url.encode(s)), s)
            self.assertEqual(url.decode_query_component(url.encode(s)), s)
        self.assertEqual(url.encode("a/b"), "a%2Fb")
        self.assertEqual(url.encode_query({"q": "a b", "n": 2}), "q=a%20b&n=2")


class HtmlTests(unittest.TestCase):
    def test_escape(self) -> None:
        self.assertEqual(html_escape(""), "")
        self.assertEqual(html_escape("a & b"), "a &amp; b")
        self.assertEqual(html_escape(r"""<"x" 'y'>"""), "&lt;&quot;x&quot; &#39;y&#39;&gt;")
        self.assertEqual(html_escape("&amp;"), "&amp;amp;")
        self.assertEqual(html_escape(42), "42")
        self.assertIs(lutetia.html.escape, html_escape)


class RequestTests(unittest.TestCase):
    def test_defaults_and_normalisation(self) -> None:
        r = Request("post", "items", headers=[("Content-Type", "text/plain")], body="hé")
        self.assertEqual(r.method, "POST")
        self.assertEqual(r.path, "/items")
        self.assertEqual(r.headers, [("content-type", "text/plain")])
        self.assertEqual(r.body, "hé".encode())
        self.assertEqual(
            (r.locale, r.mount, r.request_id, r.user), ("fr-FR", "/p/test", "test", None)
        )

    def test_segments_are_decoded(self) -> None:
        self.assertEqual(Request("GET", "/").segments, [])
        self.assertEqual(Request("GET", "/api/kv/my%20key/").segments, ["api", "kv", "my key"])
        self.assertEqual(Request("GET", "/kv/a%2Fb").segments, ["kv", "a/b"])
        self.assertEqual(Request("GET", "//a//b").segments, ["a", "b"])

    def test_query(self) -> None:
        r = Request("GET", "/", query="tag=a&tag=b+c&q=h%C3%B4tel&flag")
        self.assertEqual(
            r.query_params, [("tag", "a"), ("tag", "b c"), ("q", "hôtel"), ("flag", "")]
        )
        self.assertEqual(r.query_param("tag"), "a")
        self.assertEqual(r.query_param("flag"), "")
        self.assertIsNone(r.query_param("missing"))
        self.assertEqual(r.query_param("missing", "d"), "d")
        self.assertEqual(r.query_params.get_all("tag"), ["a", "b c"])
        self.assertEqual(r.query_params.to_dict(), {"tag": "a", "q": "hôtel", "flag": ""})

    def test_headers_case_insensitive(self) -> None:
        r = Request("GET", "/", headers=[("accept-language", "fr"), ("x-a", "1"), ("x-a", "2")])
        self.assertEqual(r.header("Accept-Language"), "fr")
        self.assertEqual(r.header("X-A"), "1")
        self.assertIsNone(r.header("accept"))

    def test_text_and_json(self) -> None:
        self.assertEqual(Request("POST", "/", body=b'{"a": [1, null]}').json(), {"a": [1, None]})
        with self.assertRaises(Invalid):
            Request("POST", "/", body=b"\xff").text()
        with self.assertRaises(Invalid):
            Request("POST", "/", body=b"\xff").json()
        with self.assertRaises(Invalid) as cm:
            Request("POST", "/", body=b"{nope").json()
        self.assertEqual(cm.exception.status, 400)

    def test_form(self) -> None:
        form_type = [("content-type", "application/x-www-form-urlencoded; charset=UTF-8")]
        r = Request(
            "POST", "/", headers=form_type, body=b"name=Jeanne+Dupont&msg=Bonjour+%21&name=x"
        )
        form = r.form()
        self.assertIsInstance(form, Params)
        self.assertEqual(form.get("name"), "Jeanne Dupont")
        self.assertEqual(form.get("missing", ""), "")
        self.assertEqual(form.to_dict(), {"name": "Jeanne Dupont", "msg": "Bonjour !"})
        self.assertTrue(form.has("msg"))
        self.assertEqual(Request("POST", "/", body=b"a=1").form(), [("a", "1")])
        with self.assertRaises(Invalid):
            Request(
                "POST", "/", headers=[("content-type", "multipart/form-data; boundary=x")], body=b""
            ).form()
        with self.assertRaises(Invalid):
            Request("POST", "/", body=b"a=\xff").form()

    def test_link_and_user(self) -> None:
        r = Request("GET", "/", mount="/p/news")
        self.assertEqual(r.link("/items/3"), "/p/news/items/3")
        self.assertEqual(r.link("items/3"), "/p/news/items/3")
        self.assertEqual(r.link(""), "/p/news/")
        u = User("7", "mmartin", "Marie Martin", ("agent",), ("publish",))
        self.assertTrue(u.has_role("agent") and u.has_right("publish"))
        self.assertFalse(u.has_right("admin"))


class LimitTests(unittest.TestCase):
    """The body parsers' limits and strictness (``lutetia.limits``), as in the Rust and
    JavaScript SDKs."""

    MAX = lutetia.limits.MAX_JSON_DEPTH

    @staticmethod
    def nested(depth: int) -> str:
        return "[" * depth + "]" * depth

    def invalid(self, body: Any, message: str) -> None:
        with self.assertRaises(Invalid) as cm:
            Request("POST", "/", body=body).json()
        self.assertEqual(cm.exception.status, 400)
        self.assertIn(message, cm.exception.message)

    def test_values(self) -> None:
        self.assertEqual(self.MAX, 64)
        self.assertEqual(lutetia.limits.MAX_FORM_FIELDS, 1000)
        self.assertEqual(lutetia.limits.MAX_MULTIPART_PARTS, 1000)

    def test_json_depth(self) -> None:
        value = Request("POST", "/", body=self.nested(self.MAX)).json()
        depth = 0
        while isinstance(value, list):
            depth, value = depth + 1, value[0] if value else None
        self.assertEqual(depth, self.MAX)
        deep = "nested deeper than 64 levels (the SDK's limit)"
        self.invalid(self.nested(self.MAX + 1), deep)
        self.invalid('{"a":' * 65 + "1" + "}" * 65, deep)
        self.invalid('{"a":[' * 33 + "]}" * 33, deep)
        # The bug report's body: 2.6 KB of unclosed brackets (RecursionError before).
        self.invalid("[" * 2600, deep)
        self.invalid(b"[" * 2_000_000, deep)
        # Brackets in strings are text, escaped quotes and backslashes included.
        text = '["' + "[" * 5000 + '\\"' + "{" * 5000 + '\\\\", "]]]"]'
        self.assertEqual(len(Request("POST", "/", body=text).json()), 2)
        # Siblings do not add up; whitespace does not matter.
        wide = "[" + ",".join([self.nested(40)] * 2000) + "]"
        self.assertEqual(len(Request("POST", "/", body=wide).json()), 2000)
        spaced = Request("POST", "/", body=" [ " * 64 + " ] " * 64).json()
        self.assertEqual(spaced, json.loads(self.nested(64)))

    def test_depth_scan_matches_a_parser(self) -> None:
        """On random bracket texts the scan is exact when they are balanced and never
        below the depth a recursive parser would reach."""
        import random

        from lutetia import _json

        def reached(text: str) -> int:
            depth = best = 0
            for c in text:
                if c in "[{":
                    depth += 1
                    best = max(best, depth)
                elif c in "]}" and depth:
                    depth -= 1
            return best

        rng = random.Random(10)
        for _ in range(3000):
            n = rng.randint(0, 300)
            text = "".join(rng.choice("[]{}") for _ in range(n))
            if rng.random() < 0.5:  # a balanced one
                depth, out = 0, []
                for _ in range(n):
                    if depth and rng.random() < 0.45:
                        out.append("]")
                        depth -= 1
                    else:
                        out.append("[")
                        depth += 1
                text = "".join(out) + "]" * depth
                self.assertEqual(_json.too_deep(text), reached(text) > self.MAX, text)
            elif reached(text) > self.MAX:
                self.assertTrue(_json.too_deep(text), text)

    def test_json_is_strict(self) -> None:
        for bad in [
            "NaN",
            "[Infinity]",
            '{"a": -Infinity}',
            "1e400",
            "[-1e400]",
            "9" * 309,
            "1" * 400,
        ]:
            self.invalid(bad, "not valid JSON")
        self.invalid('"\\ud800"', "lone surrogate")
        self.invalid('{"\\udc00": 1}', "lone surrogate")
        self.invalid('["\\ude00\\ud83d"]', "lone surrogate")
        self.invalid("\ufeff{}", "not valid JSON")
        self.invalid("1" * 5000, "not valid JSON")
        self.assertEqual(Request("POST", "/", body='"\\ud83d\\ude00"').json(), "😀")
        self.assertEqual(Request("POST", "/", body='["\\\\ud800"]').json(), ["\\ud800"])
        self.assertEqual(
            Request("POST", "/", body="[1e-400, 1e308, 2.5E3]").json(), [0.0, 1e308, 2500.0]
        )
        self.assertEqual(Request("POST", "/", body="1" + "0" * 300).json(), 10**300)

    def test_stored_data_has_serde_json_s_depth(self) -> None:
        from lutetia import _json

        self.assertEqual(_json.STORED_JSON_DEPTH, 127)
        self.assertEqual(
            _json.loads(self.nested(127), "v", _json.STORED_JSON_DEPTH),
            json.loads(self.nested(127)),
        )
        with self.assertRaises(Invalid) as cm:
            _json.loads(self.nested(128), "the value of 'k'", _json.STORED_JSON_DEPTH)
        self.assertEqual(
            cm.exception.message,
            "the value of 'k' is JSON nested deeper than 127 levels (the SDK's limit)",
        )
        with FakeHost():
            lutetia.kv.set("deep", "[" * 100_000)
            with self.assertRaises(Invalid):
                lutetia.kv.get_json("deep")
            lutetia.kv.set("ok", self.nested(100))
            self.assertEqual(lutetia.kv.get_json("ok"), json.loads(self.nested(100)))

    def test_event_payload_depth(self) -> None:
        with self.assertRaises(Invalid) as cm:
            lutetia.Event("1", "t", "p", self.nested(self.MAX + 1), 5, 1).json()
        self.assertIn("event payload is JSON nested deeper than 64 levels", cm.exception.message)
        ok = lutetia.Event("1", "t", "p", self.nested(self.MAX), 5, 1).json()
        self.assertEqual(ok, json.loads(self.nested(self.MAX)))

    def test_form_fields(self) -> None:
        limit = lutetia.limits.MAX_FORM_FIELDS
        at_limit = Request("POST", "/", body="&&".join(["a=1"] * limit) + "&").form()
        self.assertEqual(len(at_limit), limit)
        with self.assertRaises(Invalid) as cm:
            Request("POST", "/", body="&".join(["a"] * (limit + 1))).form()
        self.assertIn("more than 1000 fields (the SDK's limit)", cm.exception.message)
        self.assertEqual(len(Request("POST", "/", body="a&" * limit + "&" * 5000).form()), limit)
        # Malformed escapes are decoded leniently, as browsers do; only `+` and `%XX` change.
        lenient = Request("POST", "/", body="a=%&b=%4&c=%zz%41&d=%FF&e=%C3&f=100%25+%2B").form()
        self.assertEqual(
            lenient.to_dict(),
            {"a": "%", "b": "%4", "c": "%zzA", "d": "\ufffd", "e": "\ufffd", "f": "100% +"},
        )

    def test_multipart_parts(self) -> None:
        from lutetia import multipart

        limit = lutetia.limits.MAX_MULTIPART_PARTS

        def body(n: int) -> bytes:
            part = b'\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n--b'
            return b"--b" + part * n + b"--\r\n"

        ct = "multipart/form-data; boundary=b"
        self.assertEqual(len(multipart.parse(ct, body(limit))), limit)
        with self.assertRaises(Invalid) as cm:
            multipart.parse(ct, body(limit + 1))
        self.assertIn("more than 1000 parts", cm.exception.message)
        for bad in [
            b"",
            b"--b",
            b"--b\r\n",
            b"--b\r\n\r\n",
            b"--b\r\n\r\ndata\r\n--b--",
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n',
            b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n',
            b"--b\r\n\xff: x\r\n\r\nx\r\n--b--",
            b"--b\r\nno colon\r\n\r\nx\r\n--b--",
            b'--b\r\nContent-Disposition: attachment; name="a"\r\n\r\nx\r\n--b--',
            b"--bX\r\n",
        ]:
            with self.assertRaises(Invalid, msg=bad) as cm:
                multipart.parse(ct, bad)
            self.assertTrue(
                cm.exception.message.startswith("multipart body: "), cm.exception.message
            )


FIREFOX = (
    b"-----------------------------9051914041544843365972754266\r\n"
    b'Content-Disposition: form-data; name="text"\r\n\r\n'
    b"text default\r\n"
    b"-----------------------------9051914041544843365972754266\r\n"
    b'Content-Disposition: form-data; name="file1"; filename="C:\\dir\\a.png"\r\n'
    b"Content-Type: image/png\r\n\r\n"
    b"\x89PNG\r\n\x1a\n\0\0\r\n--not-the-boundary\r\n"
    b"-----------------------------9051914041544843365972754266\r\n"
    b'Content-Disposition: form-data; name="file2"; filename=""; filename*=UTF-8\'\'%e2%82%ac.txt\r\n'
    b"Content-Type: application/octet-stream\r\n\r\n"
    b"\r\n"
    b"-----------------------------9051914041544843365972754266--\r\n"
)


class MultipartTests(unittest.TestCase):
    CT = "multipart/form-data; boundary=---------------------------9051914041544843365972754266"

    def test_parse(self) -> None:
        parts = Request("POST", "/", headers=[("content-type", self.CT)], body=FIREFOX).multipart()
        self.assertEqual([p.name for p in parts], ["text", "file1", "file2"])
        self.assertEqual(
            (parts[0].text(), parts[0].filename, parts[0].is_file), ("text default", None, False)
        )
        self.assertEqual((parts[1].filename, parts[1].content_type), ("a.png", "image/png"))
        self.assertEqual(parts[1].data, b"\x89PNG\r\n\x1a\n\0\0\r\n--not-the-boundary")
        self.assertTrue(parts[1].is_file)
        self.assertEqual((parts[2].filename, parts[2].data), ("€.txt", b""))

    def test_boundary_and_errors(self) -> None:
        from lutetia import multipart

        self.assertEqual(
            multipart.boundary('Multipart/Form-Data; charset=utf-8; boundary="a b"'), "a b"
        )
        self.assertIsNone(multipart.boundary("application/json"))
        with self.assertRaises(Invalid):
            Request("POST", "/", body=b"x").multipart()
        with self.assertRaises(Invalid):
            multipart.parse(
                "multipart/form-data; boundary=zz",
                b"--zz\r\nContent-Disposition: form-data; name=a\r\n\r\ntruncated",
            )
        with self.assertRaises(Invalid):
            multipart.parse(
                "multipart/form-data; boundary=zz",
                b"--zz\r\nContent-Type: text/plain\r\n\r\nx\r\n--zz--",
            )


class ReplyTests(unittest.TestCase):
    def test_page(self) -> None:
        p = (
            Page("T", "<p>B</p>")
            .header("Cache-Control", "no-store")
            .header("cache-control", "no-cache")
        )
        self.assertEqual((p.status, p.title, p.body), (200, "T", "<p>B</p>"))
        self.assertEqual(p.headers, [("cache-control", "no-cache")])
        self.assertEqual(Page("N", "", status=404, headers={"X-A": "1"}).headers, [("x-a", "1")])

    def test_constructors(self) -> None:
        j = Response.json({"a": [1, None], "é": True})
        self.assertEqual(j.status, 200)
        self.assertEqual(j.get_header("Content-Type"), "application/json")
        self.assertEqual(json.loads(j.body), {"a": [1, None], "é": True})
        self.assertEqual(Response.json([], status=201).status, 201)
        t = Response.text("hé")
        self.assertEqual(
            (t.body, t.get_header("content-type")), ("hé".encode(), "text/plain; charset=utf-8")
        )
        self.assertEqual(
            Response.html("<b>").get_header("content-type"), "text/html; charset=utf-8"
        )
        r = Response.redirect("/p/x/done")
        self.assertEqual((r.status, r.headers, r.body), (303, [("location", "/p/x/done")], b""))
        self.assertEqual(Response.redirect("/x", status=302).status, 302)
        self.assertEqual(Response.not_found().status, 404)
        self.assertEqual(Response(204).body, b"")
        self.assertEqual(Response(200, bytearray(b"ab")).body, b"ab")
        with self.assertRaises(TypeError):
            Response.json({1j})
        with self.assertRaises(ValueError):
            Response.json(float("nan"))

    def test_headers(self) -> None:
        r = (
            Response.text("x")
            .header("Content-Type", "text/csv")
            .append_header("Vary", "a")
            .append_header("vary", "b")
        )
        self.assertEqual(r.headers, [("content-type", "text/csv"), ("vary", "a"), ("vary", "b")])


class ErrorTests(unittest.TestCase):
    def test_codes_and_statuses(self) -> None:
        cases = [
            (NotFound, "not-found", 404),
            (Denied, "denied", 403),
            (Conflict, "conflict", 409),
            (Invalid, "invalid", 400),
            (QuotaExceeded, "quota-exceeded", 429),
            (Unavailable, "unavailable", 503),
        ]
        for cls, code, status in cases:
            e = cls("why")
            self.assertIsInstance(e, ServiceError)
            self.assertEqual((e.code, e.status, e.message, str(e)), (code, status, "why", "why"))
            self.assertTrue(cls().message)
            r = e.response()
            self.assertEqual(r.status, status)
            self.assertEqual(r.get_header("content-type"), "application/json")
            self.assertEqual(json.loads(r.body), {"error": code, "message": "why"})

    def test_from_wit(self) -> None:
        t = _types_module()
        self.assertIsInstance(ServiceError.from_wit(t.Error_NotFound()), NotFound)
        self.assertIsInstance(ServiceError.from_wit(t.Error_QuotaExceeded()), QuotaExceeded)
        e = ServiceError.from_wit(t.Error_Invalid("key too long"))
        self.assertEqual((type(e), e.message), (Invalid, "key too long"))
        self.assertEqual(
            ServiceError.from_wit(t.Error_Unavailable("db down")), Unavailable("db down")
        )
        self.assertIsInstance(ServiceError.from_wit(object()), Unavailable)


class OutsideHostTests(unittest.TestCase):
    def test_services_raise_not_in_host(self) -> None:
        _wit._reset()
        for call in [
            lambda: lutetia.kv.get("x"),
            lambda: lutetia.config.get("x"),
            lambda: lutetia.log.info("x"),
            lambda: lutetia.store.get("c", "i"),
            lambda: lutetia.files.stat("a.png"),
            lambda: lutetia.mail.send("a@example.org", "s", "t"),
            lambda: lutetia.events.publish("t", {}),
        ]:
            with self.assertRaises(NotInHost):
                call()

    def test_pure_files_url(self) -> None:
        r = Request("GET", "/", mount="/p/hello")
        self.assertEqual(lutetia.files.url(r, "cat 1.png"), "/p/hello/_files/cat%201.png")

    def test_filters_and_events_are_pure(self) -> None:
        self.assertEqual(field("age").gt(3), lutetia.store.Filter("age", "gt", 3))
        self.assertEqual(lutetia.store.Filter("age", ">=", 3).op, "gte")
        self.assertEqual(field("n").in_((1, 2)).value, [1, 2])
        with self.assertRaises(Invalid):
            lutetia.store.Filter("age", "like", 3)
        ev = lutetia.Event("1", "t", "p", '{"a": 1}', 5, 1)
        self.assertEqual(ev.json(), {"a": 1})
        with self.assertRaises(Invalid):
            lutetia.Event("1", "t", "p", "nope", 5, 1).json()


# -- adapters against fake bindings ------------------------------------------------------


class ServiceTests(unittest.TestCase):
    def test_kv(self) -> None:
        with FakeHost() as host:
            kv = lutetia.kv
            self.assertIsNone(kv.get("a"))
            kv.set("a", "hé")
            self.assertEqual(kv.get("a"), "hé".encode())
            kv.set("b", bytearray(b"\x00\xff"))
            self.assertEqual(host.kv.data["b"], b"\x00\xff")
            self.assertEqual(kv.get_str("a"), "hé")
            with self.assertRaises(Invalid):
                kv.get_str("b")
            kv.set_json("j", {"x": [1, 2]})
            self.assertEqual(kv.get_json("j"), {"x": [1, 2]})
            self.assertEqual(kv.get_json("none", default=3), 3)
            self.assertEqual(kv.increment("n"), 1)
            self.assertEqual(kv.increment("n", 5), 6)
            with self.assertRaises(Invalid):
                kv.increment("n", 2**63)
            self.assertTrue(kv.compare_and_swap("c", None, "1"))
            self.assertFalse(kv.compare_and_swap("c", None, "2"))
            self.assertTrue(kv.compare_and_swap("c", b"1", "2"))
            self.assertEqual(kv.list_keys(), ["a", "b", "c", "j", "n"])
            self.assertEqual(kv.list_keys("", "b", 2), ["c", "j"])
            self.assertTrue(kv.delete("a"))
            self.assertFalse(kv.delete("a"))
            with self.assertRaises(Invalid) as cm:
                kv.get("")
            self.assertEqual(cm.exception.message, "empty key")
            with self.assertRaises(Denied):
                kv.set("denied", b"")
            with self.assertRaises(TypeError):
                kv.set("x", 3)  # type: ignore[arg-type]

    def test_missing_interface_is_denied(self) -> None:
        with FakeHost():
            for call, capability in [
                (lambda: lutetia.files.list(), "files"),
                (lambda: lutetia.mail.send(["a@example.org"], "s", "t"), "mail"),
                (lambda: lutetia.events.publish("t.x", {"a": 1}), "events"),
            ]:
                with self.assertRaises(Denied) as cm:
                    call()
                self.assertIn(capability, cm.exception.message)
                self.assertIn("plugin.toml", cm.exception.message)
                self.assertEqual(cm.exception.response().status, 403)

    def test_config_and_log(self) -> None:
        with FakeHost() as host:
            self.assertEqual(lutetia.config.get("greeting"), "Bonjour")
            self.assertIsNone(lutetia.config.get("nope"))
            self.assertEqual(lutetia.config.get_or("nope", "d"), "d")
            self.assertEqual(lutetia.config.get_int("page-size", 10), 12)
            self.assertEqual(lutetia.config.get_int("bad-int", 10), 10)
            self.assertEqual(lutetia.config.all()["greeting"], "Bonjour")
            lutetia.log.info("hello")
            lutetia.log.log("error", 42)
            self.assertEqual(
                [(lvl.name, msg) for lvl, msg in host.log.lines],
                [("INFO", "hello"), ("ERROR", "42")],
            )

    def test_store(self) -> None:
        with FakeHost() as host:
            store = lutetia.store
            self.assertEqual(store.put("c", "1", {"a": 1}), 1)
            self.assertEqual(store.insert("c", "2", {"a": 2}), 1)
            with self.assertRaises(Conflict):
                store.insert("c", "2", {"a": 2})
            doc = store.get("c", "1")
            assert doc is not None
            self.assertEqual(
                (doc.collection, doc.id, doc.version, doc.body), ("c", "1", 1, {"a": 1})
            )
            doc.body["a"] = 10
            self.assertEqual(store.update(doc), 2)
            self.assertEqual(doc.version, 2)
            self.assertIsNone(store.get("c", "nope"))
            with self.assertRaises(Invalid):
                store.put("c", "x", [1, 2])  # type: ignore[arg-type]
            with self.assertRaises(Invalid):
                store.put("c", "x", {"a": 1}, expected_version=-1)
            page = store.find(
                "c",
                where=[field("a").gte(2), ("b", "in", ["x"])],
                order_by="a",
                descending=True,
                limit=1,
            )
            _, q = host.store.calls[-1]
            self.assertEqual(q.collection, "c")
            self.assertEqual(
                [(f.field, f.op.name, f.value) for f in q.filters],
                [("a", "GTE", "2"), ("b", "IN", '["x"]')],
            )
            self.assertEqual((q.order_by, q.descending, q.limit, q.cursor), ("a", True, 1, None))
            self.assertEqual(len(page.documents), 1)
            self.assertEqual(page.next_cursor, "abc")
            self.assertEqual([d.id for d in store.find_all("c", page_size=5)], ["1", "2"])
            self.assertEqual(store.count("c", field("a").eq("x")), 7)
            self.assertEqual(host.store.calls[-1][2][0].value, '"x"')
            versions = store.transaction(
                [
                    store.Absent("c", "3"),
                    store.AtVersion("c", "1", 2),
                    store.CountBelow("c", [field("a").lt(5)], 3),
                ],
                [store.Put("c", "3", {"b": True}, 0), store.Delete("c", "2")],
            )
            self.assertEqual(versions, [1, 1])
            _, pre, writes = host.store.calls[-1]
            self.assertEqual(pre[0].value.id, "3")
            self.assertEqual(pre[1].value[1], 2)
            self.assertEqual(pre[2].value[2], 3)
            self.assertEqual(writes[0].value.body, '{"b":true}')
            self.assertEqual(writes[0].value.expected_version, 0)
            self.assertEqual(writes[1].value.id, "2")


class ExportTests(unittest.TestCase):
    def test_handler_and_hooks(self) -> None:
        with FakeHost() as host:
            seen: Dict[str, Any] = {}

            class P(lutetia.Plugin):
                instances = 0

                def __init__(self) -> None:
                    P.instances += 1

                def handle(self, request: Request) -> lutetia.Reply:
                    seen["request"] = request
                    if request.segments == ["page"]:
                        return Page("T", "<p>B</p>", status=201)
                    if request.segments == ["boom"]:
                        raise RuntimeError("trap")
                    if request.segments == ["error"]:
                        return NotFound("nothing")  # type: ignore[return-value]
                    return Response.text("ok")

                def on_event(self, event: lutetia.Event) -> None:
                    if event.attempt < 2:
                        raise ValueError("not yet")
                    seen["event"] = event

                def on_schedule(self, job: lutetia.Job) -> None:
                    raise Unavailable("db down")

            lutetia.export(P)
            self.assertEqual(P.instances, 0)  # lazily instantiated
            exports = importlib.import_module("lutetia._exports")
            t = host.types
            user = t.User("1", "jd", "Jeanne", ["agent"], ["publish"])
            wreq = t.Request(
                "GET", "/page", "a=1", [("x-a", "1")], b"body", user, "fr-FR", "/p/x", "r-1"
            )
            reply = exports.Handler().handle(wreq)
            self.assertIsInstance(reply, t.Reply_Page)
            self.assertEqual(
                (reply.value.status, reply.value.title, reply.value.body), (201, "T", "<p>B</p>")
            )
            req = seen["request"]
            self.assertEqual(
                (req.user.login, req.user.rights, req.mount, req.request_id),
                ("jd", ("publish",), "/p/x", "r-1"),
            )
            wreq.path = "/text"
            reply = exports.Handler().handle(wreq)
            self.assertIsInstance(reply, t.Reply_Response)
            self.assertEqual(reply.value.body, b"ok")
            wreq.path = "/error"
            self.assertEqual(exports.Handler().handle(wreq).value.status, 404)
            wreq.path = "/boom"
            with self.assertRaises(RuntimeError):  # not caught: traps the instance
                exports.Handler().handle(wreq)
            self.assertEqual(P.instances, 1)

            ev = pytypes.SimpleNamespace(
                id="e1", topic="t", publisher="p", payload="{}", published_at=5, attempt=1
            )
            with self.assertRaises(FakeErr) as cm:
                exports.Subscriber().on_event(ev)
            self.assertIn("not yet", cm.exception.value)
            ev.attempt = 2
            self.assertIsNone(exports.Subscriber().on_event(ev))
            self.assertEqual(seen["event"].id, "e1")
            with self.assertRaises(FakeErr) as cm:
                exports.Scheduler().on_schedule(
                    pytypes.SimpleNamespace(name="tick", scheduled_at=1)
                )
            self.assertIn("db down", cm.exception.value)
            self.assertIsNone(exports.Lifecycle().migrate("0.1.0"))  # the default does nothing
            self.assertTrue(any("not yet" in m for _, m in host.log.lines))

    def test_export_checks(self) -> None:
        with self.assertRaises(TypeError):
            lutetia.export(42)  # type: ignore[arg-type]
        with self.assertRaises(RuntimeError):
            plugin._reset()
            plugin.exported()

        class Q(lutetia.Plugin):
            def handle(self, request: Request) -> lutetia.Reply:
                return Response.text("q")

        instance = Q()
        self.assertIs(lutetia.export(instance), instance)
        self.assertIs(plugin.exported(), instance)
        plugin._reset()


def load_tests(
    loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Optional[str]
) -> unittest.TestSuite:
    """Also runs the examples of the docstrings."""
    import doctest

    for module in [lutetia.url, lutetia.html, lutetia.request]:
        tests.addTests(doctest.DocTestSuite(module))
    return tests


if __name__ == "__main__":
    unittest.main()
