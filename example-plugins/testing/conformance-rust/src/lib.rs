//! `conformance-rust`: a test-only plugin, never installed by a city.
//!
//! It answers the routes of `example-plugins/testing/CONFORMANCE.md` with the Rust SDK only;
//! `conformance-python` and `conformance-js` answer the same routes the same way, and
//! `tests/tests/all/contract.rs` runs one suite of host-side tests against the three. Where the
//! contract leaves a detail open, the choice made here is the one the suite checks (and the
//! other languages follow): integers in the query are ASCII digits only, a known path with
//! another method is an unknown route (404), and a repeated form field keeps its first value.

use lutetia_sdk::serde_json::{Map, Value, json};
use lutetia_sdk::store::{self, Doc, Op};
use lutetia_sdk::{
    Error, Event, Job, Page, Plugin, Reply, Request, Response, config, events, files, html, kv, log, mail,
    url,
};

/// What `GET /` says the plugin is written in.
const LANG: &str = "rust";
/// The exact body of `GET /text`.
const TEXT: &str = "Grüße aus Lutèce — 東京 🚲\n";

/// The plugin.
struct Conformance;

impl Plugin for Conformance {
    fn handle(req: Request) -> Reply {
        route(&req).into()
    }

    fn on_event(event: Event) -> Result<(), String> {
        let payload: Value = serde_json_from(&event.payload)?;
        let record = json!({
            "id": event.id,
            "topic": event.topic,
            "publisher": event.publisher,
            "payload": payload,
            "attempt": event.attempt,
        });
        kv::set_json(&format!("event:{}", event.id), &record).map_err(|e| e.to_string())
    }

    fn on_schedule(job: Job) -> Result<(), String> {
        kv::increment(&format!("job:{}", job.name), 1)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn migrate(from_version: Option<String>) -> Result<(), String> {
        kv::set("migrated-from", from_version.unwrap_or_default()).map_err(|e| e.to_string())?;
        kv::increment("migrations", 1)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

lutetia_sdk::export!(Conformance);

fn serde_json_from(text: &str) -> Result<Value, String> {
    lutetia_sdk::serde_json::from_str(text).map_err(|e| format!("payload is not JSON: {e}"))
}

fn route(req: &Request) -> Result<Reply, Error> {
    // Single segments, percent-decoded (`%2F` stays inside its segment).
    let decoded: Vec<String> = req.segments().iter().map(|s| url::decode(s)).collect();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    Ok(match (req.method(), segments.as_slice()) {
        ("GET", []) => home(),
        (_, ["echo"]) => echo(req).into(),
        ("GET", ["text"]) => Response::text(TEXT).into(),
        ("GET", ["bytes"]) => bytes(req)?.into(),
        ("GET", ["query"]) => Reply::json(&first_wins(req.query_params())),
        ("POST", ["form"]) => Reply::json(&first_wins(req.form()?)),
        ("POST", ["json"]) => {
            let value: Value = req.json()?;
            Reply::json(&json!({ "received": value }))
        }
        ("POST", ["json", "native"]) => native_json(req.body())?,
        ("GET", ["recursion"]) => recursion(req)?,
        ("POST", ["multipart"]) => {
            Reply::json(&json!({ "parts": req.multipart()?.iter().map(part_json).collect::<Vec<_>>() }))
        }
        ("GET", ["request"]) => Reply::json(&json!({
            "method": req.method(),
            "path": req.path(),
            "query": req.query(),
            "locale": req.locale(),
            "mount": req.mount(),
            "request_id": req.request_id(),
            "has_user": req.user().is_some(),
        })),
        ("GET", ["config"]) => {
            let all: Map<String, Value> = config::all()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            Reply::json(&all)
        }
        ("GET", ["config", key]) => Reply::json(&json!({ "key": key, "value": config::get(key) })),
        ("GET", ["log"]) => {
            log::info(req.query_param("message").unwrap_or_default());
            Response::new(204).into()
        }
        ("GET", ["kv"]) => {
            let prefix = req.query_param("prefix").unwrap_or_default();
            Reply::json(&json!({ "keys": kv::list_keys(&prefix, None, 1000)? }))
        }
        ("GET", ["kv", key]) => match kv::get(key)? {
            Some(bytes) => octets(bytes).into(),
            None => Error::NotFound.into(),
        },
        ("PUT", ["kv", key]) => {
            kv::set(key, req.body())?;
            Reply::json(&json!({ "key": key, "bytes": req.body().len() }))
        }
        ("DELETE", ["kv", key]) => Reply::json(&json!({ "deleted": kv::delete(key)? })),
        ("POST", ["kv", key, "increment"]) => {
            let by = match req.query_param("by") {
                Some(text) => integer(&text, "by")?,
                None => 1,
            };
            Reply::json(&json!({ "value": kv::increment(key, by)? }))
        }
        ("PUT", ["store", collection, id]) => store_put(req, collection, id)?,
        ("GET", ["store", collection, id]) => match store::get::<Value>(collection, id)? {
            Some(doc) => Reply::json(&doc_json(doc)),
            None => Error::NotFound.into(),
        },
        ("DELETE", ["store", collection, id]) => {
            Reply::json(&json!({ "deleted": store::delete(collection, id)? }))
        }
        ("GET", ["store", collection]) => store_find(req, collection)?,
        ("POST", ["store", collection, "_index"]) => {
            let fields = req.query_param("fields").unwrap_or_default();
            let fields: Vec<&str> = fields.split(',').filter(|f| !f.is_empty()).collect();
            let unique = req.query_param("unique").as_deref() == Some("1");
            store::ensure_index(collection, &fields, unique)?;
            Response::new(204).into()
        }
        ("POST", ["tx"]) => transaction(req)?,
        ("PUT", ["files", name]) => {
            let content_type = req.header("content-type").unwrap_or_default();
            let info = files::put(name, content_type, req.body())?;
            Reply::json(&json!({
                "name": info.name,
                "content_type": info.content_type,
                "size": info.size,
                "sha256": info.sha256,
            }))
        }
        ("GET", ["files", name]) => match files::get(name)? {
            Some((info, data)) => Response::new(200)
                .header("content-type", info.content_type)
                .body(data)
                .into(),
            None => Error::NotFound.into(),
        },
        ("GET", ["files"]) => {
            let prefix = req.query_param("prefix").unwrap_or_default();
            let list: Vec<Value> = files::list(&prefix, 1000)?
                .into_iter()
                .map(|f| json!({ "name": f.name, "content_type": f.content_type, "size": f.size }))
                .collect();
            Reply::json(&json!({ "files": list }))
        }
        ("DELETE", ["files", name]) => Reply::json(&json!({ "deleted": files::delete(name)? })),
        ("GET", ["files", name, "url"]) => Reply::json(&json!({ "url": files::url(req, name) })),
        ("POST", ["mail"]) => send_mail(req)?,
        ("POST", ["events", topic]) => {
            events::publish(topic, req.text()?)?;
            Response::json(&json!({ "published": topic })).status(202).into()
        }
        ("GET", ["events"]) => {
            let mut list = Vec::new();
            for key in kv::list_keys("event:", None, 1000)? {
                if let Some(record) = kv::get_json::<Value>(&key)? {
                    list.push(record);
                }
            }
            Reply::json(&json!({ "events": list }))
        }
        ("GET", ["jobs"]) => Reply::json(&json!({ "tick": stored_integer("job:tick")? })),
        ("GET", ["migrations"]) => {
            let from = kv::get_string("migrated-from")?.filter(|f| !f.is_empty());
            Reply::json(&json!({ "from": from, "count": stored_integer("migrations")? }))
        }
        ("GET", ["trap"]) => panic!("conformance trap"),
        _ => Reply::not_found(),
    })
}

/// `POST /json/native`: the body through serde_json without the SDK's checks (its own
/// recursion limit stops a deep body), then a 64-level document in the same call, and a
/// kv call: a parser failure must leave the plugin working.
fn native_json(body: &[u8]) -> Result<Reply, Error> {
    fn round_trip(bytes: &[u8]) -> Result<String, String> {
        let value: Value = lutetia_sdk::serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        lutetia_sdk::serde_json::to_string(&value).map_err(|e| e.to_string())
    }
    let failure = round_trip(body).err();
    let deep = "[".repeat(64) + &"]".repeat(64);
    let after = round_trip(deep.as_bytes()).is_ok_and(|text| text == deep);
    let count = kv::increment("native-json", 1)?;
    Ok(Reply::json(
        &json!({ "ok": failure.is_none(), "failure": failure, "after": after, "count": count }),
    ))
}

/// `GET /recursion?depth=N`: plugin code recursing N levels, then 64 levels and a kv call.
/// Rust cannot catch running out of stack: a deep one traps, as a panic does.
fn recursion(req: &Request) -> Result<Reply, Error> {
    fn down(n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        // Opaque to the optimiser, which would otherwise turn the recursion into a loop.
        std::hint::black_box(down(n - 1)) + 1
    }
    let depth = req.query_param("depth").and_then(|d| digits(&d)).unwrap_or(0);
    let reached = down(depth);
    let after = down(64) == 64;
    let count = kv::increment("recursion", 1)?;
    Ok(Reply::json(
        &json!({ "ok": reached == depth, "failure": null, "after": after, "count": count }),
    ))
}

/// One part of `POST /multipart`.
fn part_json(part: &lutetia_sdk::multipart::Part) -> Value {
    json!({
        "name": part.name,
        "filename": part.filename,
        "content_type": part.content_type,
        "size": part.data.len(),
        "text": part.text(),
    })
}

/// `GET /`: a page; the host sanitises it (the script goes) and wraps it in the layout.
fn home() -> Reply {
    let greeting = config::get_or("greeting", "");
    Page::new(
        "Conformance",
        format!(
            "<h1>Conformance</h1><p class=\"lang\">{LANG}</p><p class=\"greeting\">{}</p>\
             <script>alert(\"x\")</script>",
            html::escape(&greeting)
        ),
    )
    .into()
}

/// `/echo`: the request's status wish, method, path, query, type and body sent back.
fn echo(req: &Request) -> Response {
    let status = req
        .query_param("status")
        .and_then(|s| digits(&s))
        .filter(|n| (100..=599).contains(n))
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(200);
    let content_type = req.header("content-type").unwrap_or("application/octet-stream");
    let mut response = Response::new(status)
        .header("content-type", content_type)
        .header("x-echo-method", req.method())
        .header("x-echo-path", req.path())
        .header("x-echo-query", req.query());
    if let Some(test) = req.header("x-test") {
        response = response.header("x-echo-header", test);
    }
    response.body(req.body().to_vec())
}

/// `GET /bytes?n=N`: N bytes, byte i = i % 251.
fn bytes(req: &Request) -> Result<Response, Error> {
    let n = req
        .query_param("n")
        .as_deref()
        .and_then(digits)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| Error::Invalid("n must be a non-negative integer".into()))?;
    let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    Ok(octets(data))
}

fn octets(data: Vec<u8>) -> Response {
    Response::new(200)
        .header("content-type", "application/octet-stream")
        .body(data)
}

/// A decimal integer written with ASCII digits only (no sign, no spaces, no exponent).
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An integer parameter that may be negative (`-` then ASCII digits).
fn integer(text: &str, name: &str) -> Result<i64, Error> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let invalid = || Error::Invalid(format!("{name} must be an integer"));
    let magnitude = digits(rest).ok_or_else(invalid)?;
    let magnitude = i64::try_from(magnitude).map_err(|_| invalid())?;
    Ok(if negative { -magnitude } else { magnitude })
}

/// The decimal integer stored at `key` (0 when absent).
fn stored_integer(key: &str) -> Result<i64, Error> {
    match kv::get_string(key)? {
        Some(text) => integer(text.trim(), key),
        None => Ok(0),
    }
}

/// Decoded pairs as a JSON object; the first occurrence of a repeated name wins.
fn first_wins(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, value) in pairs {
        object.entry(name).or_insert(Value::String(value));
    }
    object
}

fn doc_json(doc: Doc<Value>) -> Value {
    json!({ "id": doc.id, "version": doc.version, "body": doc.data })
}

/// `PUT /store/{collection}/{id}`, `if-version: N` being the expected version.
fn store_put(req: &Request, collection: &str, id: &str) -> Result<Reply, Error> {
    let body: Value = req.json()?;
    let version = match req.header("if-version") {
        Some(expected) => {
            let expected = digits(expected.trim())
                .ok_or_else(|| Error::Invalid("if-version must be a non-negative integer".into()))?;
            store::update(&Doc {
                collection: collection.to_owned(),
                id: id.to_owned(),
                version: expected,
                data: body,
            })?
        }
        None => store::put(collection, id, &body)?,
    };
    Ok(Reply::json(&json!({ "version": version })))
}

fn op(name: &str) -> Result<Op, Error> {
    Op::from_name(name).ok_or_else(|| Error::Invalid(format!("unknown operator {name:?}")))
}

/// `GET /store/{collection}?order=&desc=1&limit=&cursor=&field=&op=&value=`.
fn store_find(req: &Request, collection: &str) -> Result<Reply, Error> {
    let param = |name: &str| req.query_param(name);
    let filter = match (param("field"), param("op"), param("value")) {
        (None, None, None) => None,
        (Some(field), Some(op_name), Some(value)) => {
            let value: Value = lutetia_sdk::serde_json::from_str(&value)
                .map_err(|e| Error::Invalid(format!("value is not JSON: {e}")))?;
            Some((field, op(&op_name)?, value))
        }
        _ => return Err(Error::Invalid("a filter needs field, op and value".into())),
    };
    let with_filter = |query: store::Query| match &filter {
        Some((field, op, value)) => query.filter(field, *op, value),
        None => query,
    };
    let limit = match param("limit") {
        Some(text) => digits(&text)
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::Invalid("limit must be a positive integer".into()))?,
        None => 100,
    };
    let mut query = with_filter(store::query(collection))
        .limit(limit)
        .after(param("cursor"));
    if let Some(field) = param("order") {
        query = if param("desc").as_deref() == Some("1") {
            query.order_by_desc(&field)
        } else {
            query.order_by(&field)
        };
    }
    let page = query.fetch::<Value>()?;
    let count = with_filter(store::query(collection)).count()?;
    let documents: Vec<Value> = page.documents.into_iter().map(doc_json).collect();
    Ok(Reply::json(&json!({
        "documents": documents,
        "next": page.next_cursor,
        "count": count,
    })))
}

fn invalid(what: &str) -> Error {
    Error::Invalid(format!("malformed transaction: {what}"))
}

fn text_at<'a>(items: &'a [Value], i: usize, what: &str) -> Result<&'a str, Error> {
    items.get(i).and_then(Value::as_str).ok_or_else(|| invalid(what))
}

fn number_at(items: &[Value], i: usize, what: &str) -> Result<u64, Error> {
    items.get(i).and_then(Value::as_u64).ok_or_else(|| invalid(what))
}

/// `{"NAME": [...]}`: the operation's name and its arguments.
fn operation(value: &Value) -> Result<(&str, &[Value]), Error> {
    match value.as_object() {
        Some(object) if object.len() == 1 => object
            .iter()
            .next()
            .and_then(|(name, args)| Some((name.as_str(), args.as_array()?.as_slice())))
            .ok_or_else(|| invalid("arguments must be an array")),
        _ => Err(invalid("each operation is an object with one key")),
    }
}

fn list<'a>(body: &'a Value, key: &str) -> Result<&'a [Value], Error> {
    match &body[key] {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        _ => Err(invalid(&format!("{key} must be an array"))),
    }
}

/// `POST /tx`: preconditions and writes, all or nothing.
fn transaction(req: &Request) -> Result<Reply, Error> {
    let body: Value = req.json()?;
    let mut tx = store::transaction();
    for precondition in list(&body, "preconditions")? {
        tx = match operation(precondition)? {
            ("absent", args) => tx.require_absent(text_at(args, 0, "collection")?, text_at(args, 1, "id")?),
            ("at_version", args) => tx.require_version(
                text_at(args, 0, "collection")?,
                text_at(args, 1, "id")?,
                number_at(args, 2, "version")?,
            ),
            ("count_below", args) => {
                let mut query = store::query(text_at(args, 0, "collection")?);
                let filters = args
                    .get(1)
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid("filters"))?;
                for filter in filters {
                    let parts = filter.as_array().map(Vec::as_slice).unwrap_or_default();
                    let value = parts.get(2).ok_or_else(|| invalid("filter value"))?;
                    query = query.filter(
                        text_at(parts, 0, "filter field")?,
                        op(text_at(parts, 1, "filter op")?)?,
                        value,
                    );
                }
                tx.require_count_below(query, number_at(args, 2, "count")?)
            }
            (other, _) => return Err(invalid(&format!("unknown precondition {other:?}"))),
        };
    }
    for write in list(&body, "writes")? {
        tx = match operation(write)? {
            ("put", args) => {
                let (collection, id) = (text_at(args, 0, "collection")?, text_at(args, 1, "id")?);
                let data = args.get(2).cloned().ok_or_else(|| invalid("body"))?;
                match args.get(3).unwrap_or(&Value::Null) {
                    Value::Null => tx.put(collection, id, &data),
                    expected => tx.update(&Doc {
                        collection: collection.to_owned(),
                        id: id.to_owned(),
                        version: expected.as_u64().ok_or_else(|| invalid("expected version"))?,
                        data,
                    }),
                }
            }
            ("delete", args) => tx.delete(text_at(args, 0, "collection")?, text_at(args, 1, "id")?),
            (other, _) => return Err(invalid(&format!("unknown write {other:?}"))),
        };
    }
    Ok(Reply::json(&json!({ "versions": tx.commit()? })))
}

/// `POST /mail`: `{"to": [...], "subject", "text", "html"?, "attachments"?}`.
fn send_mail(req: &Request) -> Result<Reply, Error> {
    let body: Value = req.json()?;
    let field = |name: &str| body[name].as_str().unwrap_or_default().to_owned();
    let to: Vec<&str> = body["to"]
        .as_array()
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut message = mail::Message::new(
        to.first().copied().unwrap_or_default(),
        field("subject"),
        field("text"),
    );
    for address in to.iter().skip(1) {
        message = message.to(*address);
    }
    if let Some(html) = body["html"].as_str() {
        message = message.html(html);
    }
    for attachment in body["attachments"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let part = |name: &str| attachment[name].as_str().unwrap_or_default();
        message = message.attach(part("filename"), part("content_type"), part("text"));
    }
    Ok(Reply::json(&json!({ "id": message.send()? })))
}
