"""`conformance-python`: the contract suite's routes (CONFORMANCE.md), in Python.

Test-only plugin, never installed by a city. Written with the `lutetia` SDK only.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Optional

import lutetia
from lutetia import (
    Event,
    Invalid,
    Job,
    NotFound,
    Page,
    Reply,
    Request,
    Response,
    ServiceError,
    config,
    events,
    files,
    html_escape,
    kv,
    log,
    mail,
    store,
)

LANG = "python"
TEXT = "Grüße aus Lutèce — 東京 🚲\n"
_UINT = re.compile(r"[0-9]+")
_INT = re.compile(r"-?[0-9]+")


def parse_uint(value: Optional[str]) -> Optional[int]:
    """A non-negative integer in ASCII digits (no sign, no spaces), or None."""
    if value is None or not _UINT.fullmatch(value):
        return None
    return int(value)


def parse_int(value: str, what: str) -> int:
    """A decimal integer, or `Invalid` naming `what`."""
    if not _INT.fullmatch(value):
        raise Invalid(f"{what} must be an integer, not {value!r}")
    return int(value)


def native_json(body: bytes) -> Reply:
    """`POST /json/native`: the body through `json` without the SDK's checks (a deep one
    raises RecursionError), then a 64-level document in the same call, and a kv call: a
    caught RecursionError must leave the interpreter working."""

    def round_trip(data: bytes) -> str:
        return json.dumps(json.loads(data), separators=(",", ":"))

    failure: Optional[str] = None
    try:
        round_trip(body)
    except (ValueError, RecursionError) as e:
        failure = type(e).__name__
    deep = "[" * 64 + "]" * 64
    try:
        after = round_trip(deep.encode()) == deep
    except RecursionError:
        after = False
    count = kv.increment("native-json")
    return Response.json(
        {"ok": failure is None, "failure": failure, "after": after, "count": count}
    )


def recursion(depth: int) -> Reply:
    """`GET /recursion?depth=N`: plugin code recursing N levels (Python frames, counted by
    the interpreter: past `sys.getrecursionlimit()` a RecursionError), then 64 levels and a
    kv call in the same call: the caught error must leave the interpreter working."""

    def down(n: int) -> int:
        return 0 if n == 0 else 1 + down(n - 1)

    failure: Optional[str] = None
    try:
        down(depth)
    except RecursionError as e:
        failure = type(e).__name__
    after = down(64) == 64
    count = kv.increment("recursion")
    return Response.json(
        {"ok": failure is None, "failure": failure, "after": after, "count": count}
    )


def part_json(part: lutetia.multipart.Part) -> Dict[str, Any]:
    """One part of `POST /multipart`."""
    return {
        "name": part.name,
        "filename": part.filename,
        "content_type": part.content_type,
        "size": len(part.data),
        "text": part.text(),
    }


class Conformance(lutetia.Plugin):
    def handle(self, request: Request) -> Reply:
        try:
            return self.route(request)
        except ServiceError as e:
            return e.response()

    def route(self, req: Request) -> Reply:
        m = req.method
        match req.segments:
            case [] if m == "GET":
                return home()
            case ["echo"]:
                return echo(req)
            case ["text"] if m == "GET":
                return Response.text(TEXT)
            case ["bytes"] if m == "GET":
                return some_bytes(req)
            case ["query"] if m == "GET":
                return Response.json(req.query_params.to_dict())
            case ["form"] if m == "POST":
                return Response.json(req.form().to_dict())
            case ["json"] if m == "POST":
                return Response.json({"received": req.json()})
            case ["json", "native"] if m == "POST":
                return native_json(req.body)
            case ["recursion"] if m == "GET":
                return recursion(parse_uint(req.query_param("depth")) or 0)
            case ["multipart"] if m == "POST":
                return Response.json({"parts": [part_json(p) for p in req.multipart()]})
            case ["request"] if m == "GET":
                return Response.json(
                    {
                        "method": req.method,
                        "path": req.path,
                        "query": req.query,
                        "locale": req.locale,
                        "mount": req.mount,
                        "request_id": req.request_id,
                        "has_user": req.user is not None,
                    }
                )
            case ["config"] if m == "GET":
                return Response.json(config.all())
            case ["config", key] if m == "GET":
                return Response.json({"key": key, "value": config.get(key)})
            case ["log"] if m == "GET":
                log.info(req.query_param("message", ""))
                return Response(204)
            case ["kv"] if m == "GET":
                return Response.json(
                    {"keys": kv.list_keys(req.query_param("prefix", ""), None, 1000)}
                )
            case ["kv", key]:
                return kv_value(req, key)
            case ["kv", key, "increment"] if m == "POST":
                by = req.query_param("by")
                delta = 1 if by is None else parse_int(by, "by")
                return Response.json({"value": kv.increment(key, delta)})
            case ["store", collection] if m == "GET":
                return store_query(req, collection)
            case ["store", collection, "_index"] if m == "POST":
                fields = [f for f in req.query_param("fields", "").split(",") if f]
                store.ensure_index(collection, fields, unique=req.query_param("unique") == "1")
                return Response(204)
            case ["store", collection, doc_id]:
                return store_document(req, collection, doc_id)
            case ["tx"] if m == "POST":
                return transaction(req)
            case ["files"] if m == "GET":
                listed = files.list(req.query_param("prefix", ""), 1000)
                return Response.json(
                    {
                        "files": [
                            {"name": f.name, "content_type": f.content_type, "size": f.size}
                            for f in listed
                        ]
                    }
                )
            case ["files", name, "url"] if m == "GET":
                return Response.json({"url": files.url(req, name)})
            case ["files", name]:
                return file_value(req, name)
            case ["mail"] if m == "POST":
                return send_mail(req)
            case ["events", topic] if m == "POST":
                events.publish_raw(topic, req.text())
                return Response.json({"published": topic}, status=202)
            case ["events"] if m == "GET":
                keys = kv.list_keys("event:", None, 1000)
                return Response.json({"events": [kv.get_json(k) for k in keys]})
            case ["jobs"] if m == "GET":
                return Response.json({"tick": int(kv.get_str("job:tick") or "0")})
            case ["migrations"] if m == "GET":
                origin = kv.get_str("migrated-from")
                return Response.json(
                    {"from": origin or None, "count": int(kv.get_str("migrations") or "0")}
                )
            case ["trap"] if m == "GET":
                raise RuntimeError("conformance trap")
            case _:
                return Response.not_found()

    def on_event(self, event: Event) -> None:
        kv.set_json(
            f"event:{event.id}",
            {
                "id": event.id,
                "topic": event.topic,
                "publisher": event.publisher,
                "payload": event.json(),
                "attempt": event.attempt,
            },
        )

    def on_schedule(self, job: Job) -> None:
        kv.increment("job:" + job.name, 1)

    def migrate(self, from_version: Optional[str]) -> None:
        kv.set_str("migrated-from", from_version or "")
        kv.increment("migrations", 1)


def home() -> Page:
    greeting = config.get_or("greeting", "")
    body = (
        "<h1>Conformance</h1>"
        f'<p class="lang">{LANG}</p>'
        f'<p class="greeting">{html_escape(greeting)}</p>'
        '<script>alert("x")</script>'
    )
    return Page("Conformance", body)


def echo(req: Request) -> Response:
    status = parse_uint(req.query_param("status"))
    if status is None or not 100 <= status <= 599:
        status = 200
    resp = Response(status, req.body)
    resp.header("content-type", req.header("content-type") or "application/octet-stream")
    resp.header("x-echo-method", req.method)
    resp.header("x-echo-path", req.path)
    resp.header("x-echo-query", req.query)
    test = req.header("x-test")
    if test is not None:
        resp.header("x-echo-header", test)
    return resp


def some_bytes(req: Request) -> Response:
    n = parse_uint(req.query_param("n"))
    if n is None:
        raise Invalid("n must be a non-negative integer")
    block = bytes(range(251))
    data = (block * (n // 251 + 1))[:n]
    return Response(200, data, [("content-type", "application/octet-stream")])


def kv_value(req: Request, key: str) -> Response:
    match req.method:
        case "GET":
            value = kv.get(key)
            if value is None:
                raise NotFound(f"no value stored at {key!r}")
            return Response(200, value, [("content-type", "application/octet-stream")])
        case "PUT":
            kv.set(key, req.body)
            return Response.json({"key": key, "bytes": len(req.body)})
        case "DELETE":
            return Response.json({"deleted": kv.delete(key)})
        case _:
            return Response.not_found()


def doc_json(doc: store.Document) -> Dict[str, Any]:
    return {"id": doc.id, "version": doc.version, "body": doc.body}


def store_document(req: Request, collection: str, doc_id: str) -> Response:
    match req.method:
        case "PUT":
            body = req.json()
            if not isinstance(body, dict):
                raise Invalid("the body must be a JSON object")
            header = req.header("if-version")
            expected = None if header is None else parse_uint(header.strip())
            if header is not None and expected is None:
                raise Invalid(f"if-version must be a non-negative integer, not {header!r}")
            return Response.json({"version": store.put(collection, doc_id, body, expected)})
        case "GET":
            doc = store.get(collection, doc_id)
            if doc is None:
                raise NotFound(f"no document {doc_id!r} in {collection!r}")
            return Response.json(doc_json(doc))
        case "DELETE":
            return Response.json({"deleted": store.delete(collection, doc_id)})
        case _:
            return Response.not_found()


def json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise Invalid(f"{what} is not JSON: {e}") from None


def store_query(req: Request, collection: str) -> Response:
    q = req.query_params
    where: List[store.Filter] = []
    field_name = q.get("field")
    if field_name is not None:
        value = json_value(q.get("value", ""), "value")
        where.append(store.Filter(field_name, q.get("op", "eq"), value))
    limit_text = q.get("limit")
    limit = 100 if limit_text is None else parse_uint(limit_text)
    if limit is None:
        raise Invalid(f"limit must be a non-negative integer, not {limit_text!r}")
    page = store.find(
        collection,
        where=where,
        order_by=q.get("order") or None,
        descending=q.get("desc") == "1",
        limit=limit,
        cursor=q.get("cursor") or None,
    )
    return Response.json(
        {
            "documents": [doc_json(d) for d in page.documents],
            "next": page.next_cursor,
            "count": store.count(collection, where),
        }
    )


def transaction(req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    try:
        preconditions = [precondition(p) for p in body.get("preconditions", [])]
        writes = [write(w) for w in body.get("writes", [])]
    except (TypeError, ValueError, KeyError, IndexError) as e:
        raise Invalid(f"malformed transaction: {e}") from None
    return Response.json({"versions": store.transaction(preconditions, writes)})


def precondition(p: Dict[str, Any]) -> store.Precondition:
    if "absent" in p:
        c, i = p["absent"]
        return store.Absent(c, i)
    if "at_version" in p:
        c, i, n = p["at_version"]
        return store.AtVersion(c, i, int(n))
    if "count_below" in p:
        c, filters, n = p["count_below"]
        return store.CountBelow(c, [store.Filter(f, op, v) for f, op, v in filters], int(n))
    raise ValueError(f"unknown precondition {p!r}")


def write(w: Dict[str, Any]) -> store.Write:
    if "put" in w:
        c, i, body, expected = w["put"]
        return store.Put(c, i, body, None if expected is None else int(expected))
    if "delete" in w:
        c, i = w["delete"]
        return store.Delete(c, i)
    raise ValueError(f"unknown write {w!r}")


def file_value(req: Request, name: str) -> Response:
    match req.method:
        case "PUT":
            content_type = req.header("content-type") or "application/octet-stream"
            info = files.put(name, content_type, req.body)
            return Response.json(
                {
                    "name": info.name,
                    "content_type": info.content_type,
                    "size": info.size,
                    "sha256": info.sha256,
                }
            )
        case "GET":
            found = files.get(name)
            if found is None:
                raise NotFound(f"no file {name!r}")
            info, data = found
            return Response(200, data, [("content-type", info.content_type)])
        case "DELETE":
            return Response.json({"deleted": files.delete(name)})
        case _:
            return Response.not_found()


def send_mail(req: Request) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    try:
        attachments = [
            mail.Attachment(a["filename"], a["content_type"], str(a["text"]))
            for a in body.get("attachments") or []
        ]
        message_id = mail.send(
            to=body["to"],
            subject=str(body["subject"]),
            text=str(body["text"]),
            html=body.get("html"),
            attachments=attachments,
        )
    except (TypeError, KeyError) as e:
        raise Invalid(f"malformed message: {e}") from None
    return Response.json({"id": message_id})


lutetia.export(Conformance)
