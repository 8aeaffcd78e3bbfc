//! Test-only plugin: its `migrate` hook writes through every host service (store indexes
//! and documents, kv, a file, an event, a mail) stamped with the `label` setting, then
//! succeeds, answers an error, traps, spins or keeps reading kv until its deadline (or for
//! a second and a half, then succeeds) as the `migrate` setting says. `GET /state` shows what the serving version sees, so a test can check that a
//! failed migration left nothing behind; `POST /touch` writes one document (to see what a
//! write of the serving version meets while another version migrates).

use lutetia_sdk::serde_json::{Value, json};
use lutetia_sdk::store::Op;
use lutetia_sdk::{Plugin, Reply, Request, Response, config, events, files, kv, log, mail, store};

/// The collection migrate fills.
const ITEMS: &str = "items";

struct Migrating;

fn text(value: Option<Vec<u8>>) -> Value {
    value.map_or(Value::Null, |v| {
        Value::from(String::from_utf8_lossy(&v).into_owned())
    })
}

fn ids(page: store::Page<Value>) -> Vec<String> {
    page.documents.into_iter().map(|d| d.id).collect()
}

/// Everything the serving version can read of what migrations wrote.
fn state() -> Result<Value, lutetia_sdk::Error> {
    let items = store::query(ITEMS).limit(100).fetch::<Value>()?;
    let items: Vec<Value> = items
        .documents
        .into_iter()
        .map(|d| json!({ "id": d.id, "version": d.version, "data": d.data }))
        .collect();
    let tag_x = ids(store::query(ITEMS)
        .filter("tag", Op::Eq, "x")
        .limit(100)
        .fetch()?);
    let n_above_1 = ids(store::query(ITEMS)
        .filter("n", Op::Gt, 1)
        .order_by("n")
        .limit(100)
        .fetch()?);
    let file = files::get("migrated.txt")?.map(|(_, data)| data);
    let names: Vec<String> = files::list("", 100)?.into_iter().map(|f| f.name).collect();
    Ok(json!({
        "version": config::get_or("label", "?"),
        "kv": {
            "migrated-by": text(kv::get("migrated-by")?),
            "from": text(kv::get("from")?),
        },
        "keys": kv::list_keys("", None, 100)?,
        "items": items,
        "tag_x": tag_x,
        "n_above_1": n_above_1,
        "file": text(file),
        "files": names,
    }))
}

fn write_everything(label: &str, from: &str) -> Result<(), lutetia_sdk::Error> {
    for field in config::get_or("indexes", "").split(',').filter(|f| !f.is_empty()) {
        store::ensure_index(ITEMS, &[field], false)?;
    }
    for (id, n, tag, code) in [("a", 1, "x", "A"), ("b", 2, "y", "B"), (label, 3, "x", label)] {
        store::put(
            ITEMS,
            id,
            &json!({ "n": n, "tag": tag, "code": code, "label": label }),
        )?;
    }
    // Declared after the documents it covers (PostgreSQL builds it once the upgrade is
    // recorded, checking the migration's documents first).
    store::ensure_index(ITEMS, &["code"], true)?;
    kv::set("migrated-by", label)?;
    kv::set("from", from)?;
    files::put("migrated.txt", "text/plain", label)?;
    events::publish_json("migrating.migrated", &json!({ "version": label }))?;
    mail::Message::new(
        "ops@example.org",
        format!("migrated to {label}"),
        format!("from {from}"),
    )
    .send()?;
    Ok(())
}

impl Plugin for Migrating {
    fn handle(req: Request) -> Reply {
        let done = match (req.method(), req.path()) {
            ("GET", "/state") => state(),
            ("POST", "/touch") => {
                store::put(ITEMS, "touched", &json!({ "n": 0 })).map(|v| json!({ "version": v }))
            }
            _ => return Response::not_found().into(),
        };
        match done {
            Ok(value) => Response::json(&value).into(),
            Err(e) => Response::text(e.to_string()).status(e.status()).into(),
        }
    }

    fn migrate(from_version: Option<String>) -> Result<(), String> {
        let label = config::get_or("label", "?");
        let from = from_version.unwrap_or_else(|| "none".into());
        if config::get_or("writes", "all") == "all" {
            write_everything(&label, &from).map_err(|e| format!("writing: {e:?}"))?;
        }
        let mode = config::get_or("migrate", "ok");
        // Tests wait for this line to know the migration is under way.
        log::info(format!("migrate to {label} wrote everything; now: {mode}"));
        match mode.as_str() {
            "fail" => Err("this version refuses to migrate".into()),
            "trap" => panic!("migrate trapped on purpose"),
            "spin" => loop {
                std::hint::spin_loop();
            },
            // A long migration doing database work, until its deadline.
            "busy" => loop {
                kv::get("migrated-by").map_err(|e| e.to_string())?;
            },
            // The same for a second and a half, then success.
            "slow" => {
                let start = std::time::Instant::now();
                while start.elapsed() < std::time::Duration::from_millis(1500) {
                    kv::get("migrated-by").map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

lutetia_sdk::export!(Migrating);
