//! Test-only plugin: answers which version served the request (the `label` setting, which
//! the tests set to the manifest version when they pack each version), in a header and in
//! the body, so a test can check an answer never mixes two versions. Its `migrate` hook
//! records the version it migrated from in kv, or fails or traps when the `migrate`
//! setting says so.

use lutetia_sdk::{Plugin, Reply, Request, Response, config, kv};

struct Versioned;

impl Plugin for Versioned {
    fn handle(req: Request) -> Reply {
        let first = config::get_or("label", "?");
        match req.path() {
            "/migrated-from" => {
                let from = kv::get("migrated-from")
                    .ok()
                    .flatten()
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_else(|| "-".into());
                Response::text(from).into()
            }
            _ => {
                // Read the label twice: a request served across a swap would disagree.
                let second = config::get_or("label", "?");
                Response::text(format!("version={first};again={second}"))
                    .header("x-version", &first)
                    .into()
            }
        }
    }

    fn migrate(from_version: Option<String>) -> Result<(), String> {
        match config::get_or("migrate", "ok").as_str() {
            "fail" => Err("this version refuses to migrate".into()),
            "trap" => panic!("migrate trapped on purpose"),
            _ => {
                let from = from_version.unwrap_or_else(|| "none".into());
                kv::set("migrated-from", from.as_bytes()).map_err(|e| e.to_string())
            }
        }
    }
}

lutetia_sdk::export!(Versioned);
