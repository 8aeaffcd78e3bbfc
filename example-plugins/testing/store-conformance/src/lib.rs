//! Test-only plugin: every store operation over HTTP, so the conformance suite drives the
//! store through real plugin calls and the SDK.
//!
//! `POST /op` with a JSON object `{"op": ..., ...}`; the answer is JSON, or
//! `{"error": code, "message": ...}` with the status of the store's error (409 conflict,
//! 429 quota-exceeded, 400 invalid, ...).
//!
//! Filters are `[field, op, value]` with op one of eq, ne, lt, lte, gt, gte, in, prefix.

use lutetia_sdk::serde_json::{Value, json};
use lutetia_sdk::store::{self, Doc, Op};
use lutetia_sdk::{Error, Plugin, Reply, Request, Response};

/// The plugin.
struct Conformance;

impl Plugin for Conformance {
    fn handle(req: Request) -> Reply {
        match (req.method(), req.segments().as_slice()) {
            ("POST", ["op"]) => run(&req).into(),
            _ => Response::text("not found").status(404).into(),
        }
    }
}

lutetia_sdk::export!(Conformance);

fn bad(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, Error> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("missing string {key:?}")))
}

fn op_named(name: &str) -> Result<Op, Error> {
    Op::from_name(name).ok_or_else(|| bad(format!("unknown op {name:?}")))
}

/// A query on `collection` with the `filters` of `v` (`[[field, op, value], ...]`).
fn filtered(collection: &str, filters: Option<&Value>) -> Result<store::Query, Error> {
    let mut q = store::query(collection);
    for f in filters
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (Some(field), Some(op), Some(value)) = (
            f.get(0).and_then(Value::as_str),
            f.get(1).and_then(Value::as_str),
            f.get(2),
        ) else {
            return Err(bad("a filter is [field, op, value]"));
        };
        q = q.filter(field, op_named(op)?, value);
    }
    Ok(q)
}

fn doc_json(d: &Doc<Value>) -> Value {
    json!({ "collection": d.collection, "id": d.id, "version": d.version, "body": d.data })
}

fn run(req: &Request) -> Result<Reply, Error> {
    let v: Value =
        lutetia_sdk::serde_json::from_slice(req.body()).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let answer = match text(&v, "op")? {
        "get" => {
            let doc = store::get::<Value>(text(&v, "c")?, text(&v, "id")?)?;
            json!({ "doc": doc.as_ref().map(doc_json) })
        }
        "put" => {
            let (c, id) = (text(&v, "c")?, text(&v, "id")?);
            let body = v.get("body").cloned().unwrap_or(Value::Null);
            let version = match v.get("expected").and_then(Value::as_u64) {
                None => store::put(c, id, &body)?,
                Some(0) => store::insert(c, id, &body)?,
                Some(n) => store::update(&Doc {
                    collection: c.to_owned(),
                    id: id.to_owned(),
                    version: n,
                    data: body,
                })?,
            };
            json!({ "version": version })
        }
        "delete" => json!({ "existed": store::delete(text(&v, "c")?, text(&v, "id")?)? }),
        "find" => {
            let mut q = filtered(text(&v, "c")?, v.get("filters"))?;
            if let Some(field) = v.get("order").and_then(Value::as_str) {
                q = if v.get("desc").and_then(Value::as_bool).unwrap_or(false) {
                    q.order_by_desc(field)
                } else {
                    q.order_by(field)
                };
            }
            if let Some(n) = v.get("limit").and_then(Value::as_u64) {
                q = q.limit(u32::try_from(n).unwrap_or(u32::MAX));
            }
            let cursor = v.get("cursor").and_then(Value::as_str).map(str::to_owned);
            let page = q.after(cursor).fetch::<Value>()?;
            let docs: Vec<Value> = page.documents.iter().map(doc_json).collect();
            json!({ "docs": docs, "next": page.next_cursor })
        }
        "count" => json!({ "count": filtered(text(&v, "c")?, v.get("filters"))?.count()? }),
        "index" => {
            let fields: Vec<&str> = v
                .get("fields")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let unique = v.get("unique").and_then(Value::as_bool).unwrap_or(false);
            store::ensure_index(text(&v, "c")?, &fields, unique)?;
            json!({})
        }
        "tx" => {
            let mut t = store::transaction();
            for p in v
                .get("pre")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(a) = p.get("absent") {
                    t = t.require_absent(text(a, "c")?, text(a, "id")?);
                } else if let Some(a) = p.get("version") {
                    let n = a.get("v").and_then(Value::as_u64).unwrap_or(0);
                    t = t.require_version(text(a, "c")?, text(a, "id")?, n);
                } else if let Some(a) = p.get("count_below") {
                    let k = a.get("k").and_then(Value::as_u64).unwrap_or(0);
                    t = t.require_count_below(filtered(text(a, "c")?, a.get("filters"))?, k);
                } else {
                    return Err(bad("unknown precondition"));
                }
            }
            for w in v
                .get("writes")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(a) = w.get("put") {
                    let body = a.get("body").cloned().unwrap_or(Value::Null);
                    let (c, id) = (text(a, "c")?, text(a, "id")?);
                    t = match a.get("expected").and_then(Value::as_u64) {
                        None => t.put(c, id, &body),
                        Some(0) => t.insert(c, id, &body),
                        Some(n) => t.update(&Doc {
                            collection: c.to_owned(),
                            id: id.to_owned(),
                            version: n,
                            data: body,
                        }),
                    };
                } else if let Some(a) = w.get("delete") {
                    t = t.delete(text(a, "c")?, text(a, "id")?);
                } else {
                    return Err(bad("unknown write"));
                }
            }
            json!({ "versions": t.commit()? })
        }
        other => return Err(bad(format!("unknown op {other:?}"))),
    };
    Ok(Response::json(&answer).into())
}
