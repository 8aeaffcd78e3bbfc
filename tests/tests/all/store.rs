//! Conformance suite of the `store` interface: the real binary, the `store-conformance`
//! test plugin (every operation over HTTP through the SDK), on SQLite and on PostgreSQL
//! with identical expectations.

use std::path::PathBuf;

use lutetia_tests::{Backend, Host, TestDb, on_both_backends, plugins_subset};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");
const A: &str = "store-conformance";
const B: &str = "store-conformance-b";

/// The conformance plugin, plus a copy of it under a second id (for isolation).
fn plugins(db: &TestDb) -> PathBuf {
    let dir = plugins_subset(db.dir(), &[A], None);
    std::fs::copy(dir.join(format!("{A}.wasm")), dir.join(format!("{B}.wasm"))).expect("copy wasm");
    let manifest = std::fs::read_to_string(dir.join(format!("{A}.toml"))).expect("manifest");
    let manifest = manifest.replacen(&format!("id = \"{A}\""), &format!("id = \"{B}\""), 1);
    std::fs::write(dir.join(format!("{B}.toml")), manifest).expect("write manifest");
    dir
}

async fn start(db: &TestDb) -> Host {
    Host::start_with_plugins(BIN, db, &plugins(db), &[]).await
}

/// One store operation through the plugin: (status, JSON answer).
async fn op_as(host: &Host, plugin: &str, body: Value) -> (u16, Value) {
    let response = host
        .client
        .post(host.url(&format!("/p/{plugin}/op")))
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, value)
}

async fn op(host: &Host, body: Value) -> (u16, Value) {
    op_as(host, A, body).await
}

/// An operation that must succeed.
async fn ok(host: &Host, body: Value) -> Value {
    let (status, answer) = op(host, body.clone()).await;
    assert_eq!(status, 200, "{body} -> {answer}");
    answer
}

async fn put(host: &Host, c: &str, id: &str, body: Value) -> u64 {
    ok(host, json!({ "op": "put", "c": c, "id": id, "body": body })).await["version"]
        .as_u64()
        .expect("version")
}

async fn ids(host: &Host, c: &str, filters: Value) -> Vec<String> {
    let answer = ok(
        host,
        json!({ "op": "find", "c": c, "filters": filters, "limit": 1000 }),
    )
    .await;
    let mut ids: Vec<String> = answer["docs"]
        .as_array()
        .expect("docs")
        .iter()
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

async fn count(host: &Host, c: &str, filters: Value) -> u64 {
    ok(host, json!({ "op": "count", "c": c, "filters": filters })).await["count"]
        .as_u64()
        .expect("count")
}

on_both_backends! {
    async fn crud_and_optimistic_versions(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let (status, answer) = op(&host, json!({ "op": "get", "c": "notes", "id": "n1" })).await;
        assert_eq!((status, answer), (200, json!({ "doc": null })));

        assert_eq!(put(&host, "notes", "n1", json!({ "text": "première", "n": 1 })).await, 1);
        let doc = ok(&host, json!({ "op": "get", "c": "notes", "id": "n1" })).await["doc"].clone();
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["body"], json!({ "text": "première", "n": 1 }));
        assert_eq!(put(&host, "notes", "n1", json!({ "text": "seconde" })).await, 2);

        // expected-version: 0 requires absence, N requires version N.
        let (status, answer) = op(&host, json!({ "op": "put", "c": "notes", "id": "n1", "body": {}, "expected": 0 })).await;
        assert_eq!((status, answer["error"].as_str()), (409, Some("conflict")));
        let (status, _) = op(&host, json!({ "op": "put", "c": "notes", "id": "n1", "body": {}, "expected": 1 })).await;
        assert_eq!(status, 409, "a stale write is a conflict");
        let v = ok(&host, json!({ "op": "put", "c": "notes", "id": "n1", "body": { "text": "3" }, "expected": 2 })).await;
        assert_eq!(v["version"], 3);
        let v = ok(&host, json!({ "op": "put", "c": "notes", "id": "n2", "body": {}, "expected": 0 })).await;
        assert_eq!(v["version"], 1);

        assert_eq!(ok(&host, json!({ "op": "delete", "c": "notes", "id": "n1" })).await["existed"], true);
        assert_eq!(ok(&host, json!({ "op": "delete", "c": "notes", "id": "n1" })).await["existed"], false);
        // A deleted document starts again at version 1.
        assert_eq!(put(&host, "notes", "n1", json!({})).await, 1);

        // Invalid input is a precise 400, never a trap.
        for (body, needle) in [
            (json!({ "op": "put", "c": "Bad Name", "id": "x", "body": {} }), "collection"),
            (json!({ "op": "put", "c": "notes", "id": "x", "body": [1, 2] }), "JSON object"),
            (json!({ "op": "put", "c": "notes", "id": "", "body": {} }), "document id"),
            (json!({ "op": "find", "c": "notes", "limit": 0 }), "limit"),
            (json!({ "op": "find", "c": "notes", "limit": 1001 }), "limit"),
            (json!({ "op": "find", "c": "notes", "filters": [["a'b", "eq", 1]] }), "field"),
            (json!({ "op": "find", "c": "notes", "filters": [["a", "in", 1]] }), "array"),
            (json!({ "op": "find", "c": "notes", "cursor": "nonsense" }), "cursor"),
        ] {
            let (status, answer) = op(&host, body.clone()).await;
            assert_eq!(status, 400, "{body} -> {answer}");
            assert_eq!(answer["error"], "invalid");
            assert!(answer["message"].as_str().unwrap_or("").contains(needle), "{body} -> {answer}");
        }
        let big = "x".repeat(1024 * 1024);
        let (status, answer) = op(&host, json!({ "op": "put", "c": "notes", "id": "big", "body": { "t": big } })).await;
        assert_eq!(status, 400, "{answer}");
    }

    async fn every_filter_and_count(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        let docs = [
            ("a", json!({ "n": 1, "s": "apple", "b": true, "tag": "x", "addr": { "city": "Paris" } })),
            ("b", json!({ "n": 2, "s": "apricot", "b": false, "tag": null })),
            ("c", json!({ "n": 3.5, "s": "banana", "addr": { "city": "Lyon" } })),
            ("d", json!({ "n": "3", "s": "ap" })),
            ("e", json!({ "s": "été" })),
        ];
        let writes: Vec<Value> = docs
            .iter()
            .map(|(id, body)| json!({ "put": { "c": "things", "id": id, "body": body } }))
            .collect();
        ok(&host, json!({ "op": "tx", "writes": writes })).await;
        ok(&host, json!({ "op": "index", "c": "things", "fields": ["n"] })).await;
        ok(&host, json!({ "op": "index", "c": "things", "fields": ["s"] })).await;

        let cases = [
            (json!([["n", "eq", 1]]), vec!["a"]),
            (json!([["n", "eq", "3"]]), vec!["d"]),
            (json!([["n", "eq", 3]]), vec![]),
            (json!([["n", "ne", 1]]), vec!["b", "c", "d", "e"]),
            (json!([["n", "lt", 3]]), vec!["a", "b"]),
            (json!([["n", "lte", 2]]), vec!["a", "b"]),
            (json!([["n", "gt", 2]]), vec!["c"]),
            (json!([["n", "gte", 2]]), vec!["b", "c"]),
            (json!([["s", "gt", "b"]]), vec!["c", "e"]),
            (json!([["n", "in", [1, 3.5, "3"]]]), vec!["a", "c", "d"]),
            (json!([["n", "in", []]]), vec![]),
            (json!([["s", "prefix", "ap"]]), vec!["a", "b", "d"]),
            (json!([["s", "prefix", "apr"]]), vec!["b"]),
            (json!([["s", "prefix", "é"]]), vec!["e"]),
            (json!([["b", "eq", true]]), vec!["a"]),
            (json!([["b", "eq", false]]), vec!["b"]),
            (json!([["b", "ne", true]]), vec!["b", "c", "d", "e"]),
            (json!([["tag", "eq", null]]), vec!["b"]),
            (json!([["addr.city", "eq", "Lyon"]]), vec!["c"]),
            (json!([["s", "prefix", "a"], ["n", "lt", 2]]), vec!["a"]),
        ];
        for (filters, expected) in cases {
            assert_eq!(ids(&host, "things", filters.clone()).await, expected, "{filters}");
            assert_eq!(count(&host, "things", filters.clone()).await, expected.len() as u64, "{filters}");
        }
        assert_eq!(count(&host, "things", json!([])).await, 5);
        assert_eq!(count(&host, "other", json!([])).await, 0);
    }

    async fn order_and_pagination_stay_stable_while_writing(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        ok(&host, json!({ "op": "index", "c": "items", "fields": ["rank"] })).await;
        // 30 documents, ranks 0, 10, ..., with ties in pairs (ties are ordered by id).
        let writes: Vec<Value> = (0..30)
            .map(|i| json!({ "put": { "c": "items", "id": format!("i{i:02}"), "body": { "rank": (i / 2) * 10 } } }))
            .collect();
        ok(&host, json!({ "op": "tx", "writes": writes })).await;
        // One without the field: last ascending, first descending.
        put(&host, "items", "norank", json!({ "other": 1 })).await;

        for desc in [false, true] {
            let mut seen: Vec<(Option<i64>, String)> = Vec::new();
            let mut cursor: Option<String> = None;
            let mut page_no = 0;
            loop {
                let answer = ok(&host, json!({
                    "op": "find", "c": "items", "order": "rank", "desc": desc, "limit": 7, "cursor": cursor,
                })).await;
                for d in answer["docs"].as_array().expect("docs") {
                    seen.push((d["body"]["rank"].as_i64(), d["id"].as_str().expect("id").to_owned()));
                }
                // Writes between pages: new documents on both sides of the cursor, and an
                // update of a document already read (its rank unchanged).
                page_no += 1;
                put(&host, "items", &format!("new-{desc}-{page_no}-lo"), json!({ "rank": -1 })).await;
                put(&host, "items", &format!("new-{desc}-{page_no}-hi"), json!({ "rank": 1000 })).await;
                put(&host, "items", "i00", json!({ "rank": 0, "touched": page_no })).await;
                match answer["next"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => break,
                }
            }
            // Every original document exactly once, in order.
            let originals: Vec<&(Option<i64>, String)> =
                seen.iter().filter(|(_, id)| !id.starts_with("new-")).collect();
            let mut expected: Vec<(Option<i64>, String)> =
                (0..30).map(|i| (Some((i / 2) * 10), format!("i{i:02}"))).collect();
            if desc {
                expected.reverse();
                expected.insert(0, (None, "norank".to_owned()));
            } else {
                expected.push((None, "norank".to_owned()));
            }
            let originals: Vec<(Option<i64>, String)> = originals.into_iter().cloned().collect();
            assert_eq!(originals, expected, "desc={desc}");
            let mut unique = seen.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), seen.len(), "no document twice");
        }
        // Ordered by id when no field is given.
        let answer = ok(&host, json!({ "op": "find", "c": "items", "limit": 3 })).await;
        let first: Vec<&str> = answer["docs"].as_array().expect("docs").iter().map(|d| d["id"].as_str().unwrap_or("")).collect();
        assert_eq!(first, ["i00", "i01", "i02"]);
    }

    async fn unique_index_violations_are_conflicts(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        ok(&host, json!({ "op": "index", "c": "users", "fields": ["email"], "unique": true })).await;
        // Idempotent.
        ok(&host, json!({ "op": "index", "c": "users", "fields": ["email"], "unique": true })).await;
        put(&host, "users", "u1", json!({ "email": "a@x.fr" })).await;
        let (status, answer) = op(&host, json!({ "op": "put", "c": "users", "id": "u2", "body": { "email": "a@x.fr" } })).await;
        assert_eq!((status, answer["error"].as_str()), (409, Some("conflict")));
        // Same value in another collection or another plugin is fine.
        put(&host, "others", "u2", json!({ "email": "a@x.fr" })).await;
        let (status, _) = op_as(&host, B, json!({ "op": "index", "c": "users", "fields": ["email"], "unique": true })).await;
        assert_eq!(status, 200);
        let (status, _) = op_as(&host, B, json!({ "op": "put", "c": "users", "id": "u2", "body": { "email": "a@x.fr" } })).await;
        assert_eq!(status, 200);
        // A transaction hitting the index writes nothing at all.
        let (status, _) = op(&host, json!({ "op": "tx", "writes": [
            { "put": { "c": "users", "id": "u3", "body": { "email": "c@x.fr" } } },
            { "put": { "c": "users", "id": "u4", "body": { "email": "a@x.fr" } } },
        ] })).await;
        assert_eq!(status, 409);
        assert_eq!(ok(&host, json!({ "op": "get", "c": "users", "id": "u3" })).await["doc"], Value::Null);
        // Changing one's own value keeps working; a unique index over duplicates is refused.
        put(&host, "users", "u1", json!({ "email": "b@x.fr" })).await;
        put(&host, "dups", "1", json!({ "k": 1 })).await;
        put(&host, "dups", "2", json!({ "k": 1 })).await;
        let (status, _) = op(&host, json!({ "op": "index", "c": "dups", "fields": ["k"], "unique": true })).await;
        assert_eq!(status, 409);
    }

    async fn transactions_are_all_or_nothing(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        put(&host, "acc", "a", json!({ "balance": 10 })).await;
        // Failed precondition: nothing written.
        let (status, _) = op(&host, json!({ "op": "tx",
            "pre": [{ "version": { "c": "acc", "id": "a", "v": 7 } }],
            "writes": [{ "put": { "c": "acc", "id": "b", "body": { "balance": 1 } } }] })).await;
        assert_eq!(status, 409);
        assert_eq!(count(&host, "acc", json!([])).await, 1);
        let (status, _) = op(&host, json!({ "op": "tx",
            "pre": [{ "absent": { "c": "acc", "id": "a" } }],
            "writes": [{ "put": { "c": "acc", "id": "b", "body": {} } }] })).await;
        assert_eq!(status, 409);
        // All hold: every write applied, versions in order, 0 for deletes.
        let answer = ok(&host, json!({ "op": "tx",
            "pre": [{ "version": { "c": "acc", "id": "a", "v": 1 } }, { "absent": { "c": "acc", "id": "b" } },
                    { "count_below": { "c": "acc", "filters": [["balance", "gte", 0]], "k": 2 } }],
            "writes": [
                { "put": { "c": "acc", "id": "a", "body": { "balance": 5 }, "expected": 1 } },
                { "put": { "c": "acc", "id": "b", "body": { "balance": 5 }, "expected": 0 } },
                { "put": { "c": "acc", "id": "tmp", "body": {} } },
                { "delete": { "c": "acc", "id": "tmp" } },
            ] })).await;
        assert_eq!(answer["versions"], json!([2, 1, 1, 0]));
        assert_eq!(count(&host, "acc", json!([])).await, 2);
        let too_many: Vec<Value> = (0..101).map(|i| json!({ "put": { "c": "acc", "id": format!("x{i}"), "body": {} } })).collect();
        let (status, _) = op(&host, json!({ "op": "tx", "writes": too_many })).await;
        assert_eq!(status, 400);
    }

    async fn quota_is_enforced_exactly(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        // max-documents = 1000.
        for batch in 0..10 {
            let writes: Vec<Value> = (0..100)
                .map(|i| json!({ "put": { "c": "many", "id": format!("{batch}-{i}"), "body": { "i": i } } }))
                .collect();
            ok(&host, json!({ "op": "tx", "writes": writes })).await;
        }
        let (status, answer) = op(&host, json!({ "op": "put", "c": "many", "id": "one-more", "body": {} })).await;
        assert_eq!((status, answer["error"].as_str()), (429, Some("quota-exceeded")));
        // Replacing an existing document does not add one; deleting frees room.
        put(&host, "many", "0-0", json!({ "i": "replaced" })).await;
        ok(&host, json!({ "op": "delete", "c": "many", "id": "0-1" })).await;
        put(&host, "many", "one-more", json!({})).await;
        // The other plugin has its own quota.
        let (status, _) = op_as(&host, B, json!({ "op": "put", "c": "many", "id": "x", "body": {} })).await;
        assert_eq!(status, 200);
        // max-bytes = 1 MiB: free the documents, then two bodies of 600 kB do not fit.
        for batch in 0..10 {
            let writes: Vec<Value> = (0..100)
                .map(|i| json!({ "delete": { "c": "many", "id": format!("{batch}-{i}") } }))
                .collect();
            ok(&host, json!({ "op": "tx", "writes": writes })).await;
        }
        let big = "x".repeat(600 * 1024);
        put(&host, "big", "1", json!({ "t": big })).await;
        let (status, answer) = op(&host, json!({ "op": "put", "c": "big", "id": "2", "body": { "t": big } })).await;
        assert_eq!((status, answer["error"].as_str()), (429, Some("quota-exceeded")));
        // Shrinking is always allowed.
        put(&host, "big", "1", json!({ "t": "small" })).await;
        put(&host, "big", "2", json!({ "t": big })).await;
    }

    async fn plugins_are_isolated(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        put(&host, "secrets", "s1", json!({ "v": "a" })).await;
        let (status, answer) = op_as(&host, B, json!({ "op": "get", "c": "secrets", "id": "s1" })).await;
        assert_eq!((status, answer), (200, json!({ "doc": null })));
        let (_, answer) = op_as(&host, B, json!({ "op": "count", "c": "secrets" })).await;
        assert_eq!(answer["count"], 0);
        let (_, answer) = op_as(&host, B, json!({ "op": "find", "c": "secrets", "limit": 10 })).await;
        assert_eq!(answer["docs"], json!([]));
        // The same id in B is another document; B's delete does not touch A's.
        let (_, answer) = op_as(&host, B, json!({ "op": "put", "c": "secrets", "id": "s1", "body": { "v": "b" }, "expected": 0 })).await;
        assert_eq!(answer["version"], 1);
        let (_, answer) = op_as(&host, B, json!({ "op": "delete", "c": "secrets", "id": "s1" })).await;
        assert_eq!(answer["existed"], true);
        let doc = ok(&host, json!({ "op": "get", "c": "secrets", "id": "s1" })).await;
        assert_eq!(doc["doc"]["body"], json!({ "v": "a" }));
        let db_direct = db.open().await;
        assert_eq!(db_direct.store_usage(B).await.expect("usage"), (0, 0));
        assert_eq!(db_direct.store_usage(A).await.expect("usage").1, 1);
    }

    async fn two_hundred_transactions_compete_for_the_last_unit(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;
        // A bounded counter of 100 units, 99 already taken.
        let writes: Vec<Value> = (0..99).map(|i| json!({ "put": { "c": "units", "id": format!("taken-{i}"), "body": { "by": i } } })).collect();
        ok(&host, json!({ "op": "tx", "writes": writes })).await;
        // 200 concurrent HTTP requests, each a transaction: count below 100, then take one.
        let mut tasks = Vec::new();
        for i in 0..200 {
            let client = host.client.clone();
            let url = host.url(&format!("/p/{A}/op"));
            tasks.push(tokio::spawn(async move {
                let body = json!({ "op": "tx",
                    "pre": [{ "count_below": { "c": "units", "filters": [], "k": 100 } }],
                    "writes": [{ "put": { "c": "units", "id": format!("claim-{i}"), "body": { "by": i } } }] });
                let response = client.post(url).json(&body).send().await.expect("request");
                let status = response.status().as_u16();
                let answer: Value = response.json().await.expect("json");
                (status, answer)
            }));
        }
        let (mut won, mut conflicts) = (0, 0);
        for task in tasks {
            match task.await.expect("task") {
                (200, _) => won += 1,
                (409, answer) => {
                    assert_eq!(answer["error"], "conflict");
                    conflicts += 1;
                }
                other => panic!("unexpected answer {other:?}"),
            }
        }
        assert_eq!((won, conflicts), (1, 199));
        assert_eq!(count(&host, "units", json!([])).await, 100);
    }

    async fn hello_guestbook_lists_messages_newest_first(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = Host::start(BIN, &db, &[]).await;
        for (name, message) in [("Jeanne", "Bonjour <b>Paris</b>"), ("", "Second")] {
            let response = host.client.post(host.url("/p/hello/guestbook"))
                .form(&[("name", name), ("message", message)]).send().await.expect("post");
            assert!(response.status().is_redirection(), "{}", response.status());
        }
        let (status, body) = host.get("/p/hello/guestbook").await;
        assert_eq!(status, 200);
        assert!(body.contains("2 messages"), "{body}");
        let second = body.find("Second").expect("second message");
        let first = body.find("Bonjour &lt;b&gt;Paris&lt;/b&gt;").expect("first message, escaped");
        assert!(second < first, "newest first:\n{body}");
        assert!(body.contains("Anonyme"));
    }

    async fn thirty_two_first_writes_to_a_fresh_store_all_succeed(backend: Backend) {
        // Each guestbook write declares its index first: 32 sessions racing to create the
        // same index once answered 409 on PostgreSQL (a unique violation on pg_class).
        let db = TestDb::new(backend).await;
        let host = Host::start_with_plugins(BIN, &db, &plugins_subset(db.dir(), &["hello"], None), &[]).await;
        let writes: Vec<_> = (0..32)
            .map(|n| {
                let request = host
                    .client
                    .post(host.url("/p/hello/guestbook"))
                    .form(&[("name", format!("n{n}")), ("message", format!("message {n}"))]);
                tokio::spawn(async move {
                    let response = request.send().await.expect("post");
                    let status = response.status().as_u16();
                    (status, response.text().await.unwrap_or_default())
                })
            })
            .collect();
        let mut failed = Vec::new();
        for write in writes {
            let (status, body) = write.await.expect("write task");
            if !(300..400).contains(&status) {
                failed.push(format!("{status}: {}", body.chars().take(200).collect::<String>()));
            }
        }
        assert!(failed.is_empty(), "{} of 32 first writes failed: {failed:?}", failed.len());
        let (status, page) = host.get("/p/hello/guestbook").await;
        assert_eq!(status, 200);
        assert!(page.contains("32 messages"), "{page}");
    }

    async fn index_builds_recover_from_failures_and_leftovers(backend: Backend) {
        use lutetia_db::store::{Quota, StoreError};
        let db = TestDb::new(backend).await;
        let store = db.open().await;
        let quota = Quota { max_bytes: 1 << 20, max_documents: 100 };
        let unique = ["k".to_owned()];
        for id in ["1", "2"] {
            store.store_put("p", quota, "c", id, r#"{"k": 1}"#, None).await.expect("put");
        }
        // A unique index over duplicates: a conflict that leaves no index behind (a failed
        // concurrent build leaves an invalid one on PostgreSQL, dropped at once).
        let refused = store.store_ensure_index("p", "c", &unique, true, "1.0.0").await;
        assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM store_indexes").await, 0);
        assert_eq!(physical(&db).await, 0);
        store.store_delete("p", quota, "c", "2", None).await.expect("delete");
        store.store_ensure_index("p", "c", &unique, true, "1.0.0").await.expect("index");
        assert_eq!(physical(&db).await, 1);
        // A record whose index is gone (a crash between a migration's commit and its build)
        // is built again by the next declaration.
        let name = text_scalar(&db, "SELECT name FROM store_indexes").await;
        exec_owned(&db, &format!("DROP INDEX \"{name}\"")).await;
        assert_eq!(physical(&db).await, 0);
        store.store_ensure_index("p", "c", &unique, true, "1.0.0").await.expect("index");
        assert_eq!(physical(&db).await, 1);
        let duplicate = store.store_put("p", quota, "c", "3", r#"{"k": 1}"#, None).await;
        assert!(matches!(duplicate, Err(StoreError::Conflict)), "{duplicate:?}");
        // Dropping what no version declares any more, on both backends.
        let dropped = store.store_drop_undeclared_indexes("p", &["2.0.0"]).await.expect("drop");
        assert_eq!(dropped, [name]);
        assert_eq!(physical(&db).await, 0);
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM store_indexes").await, 0);
        store.store_put("p", quota, "c", "3", r#"{"k": 1}"#, None).await.expect("no index any more");
    }

    async fn filtered_query_over_100k_documents_uses_the_index(backend: Backend) {
        let db = TestDb::new(backend).await;
        let store = db.open().await;
        // Bulk insert at the database layer (the plugin path is measured by the benchmark).
        let bulk = match backend {
            Backend::Sqlite => "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
                INSERT INTO documents (plugin_id, collection, id, version, body, size, updated_at) \
                SELECT 'p', 'reports', printf('r%06d', i), 1, \
                json_object('status', CASE WHEN i % 1000 = 0 THEN 'rare' ELSE 'open' END, 'n', i, 'email', 'u' || i || '@x.fr'), 60, 0 FROM n",
            Backend::Postgres => "INSERT INTO documents (plugin_id, collection, id, version, body, size, updated_at) \
                SELECT 'p', 'reports', 'r' || lpad(i::text, 6, '0'), 1, \
                jsonb_build_object('status', CASE WHEN i % 1000 = 0 THEN 'rare' ELSE 'open' END, 'n', i, 'email', 'u' || i || '@x.fr'), 60, 0 \
                FROM generate_series(1, 100000) AS i",
        };
        let url = db.url.clone();
        exec(&url, backend, bulk).await;
        store.store_ensure_index("p", "reports", &["status".to_owned()], false, "1.0.0").await.expect("index");
        store.store_ensure_index("p", "reports", &["status".to_owned(), "n".to_owned()], false, "1.0.0").await.expect("index");
        store.store_ensure_index("p", "reports", &["email".to_owned()], true, "1.0.0").await.expect("index");
        exec(&url, backend, "ANALYZE").await;
        // A new pool: its connections load the fresh statistics.
        store.close().await;
        let store = db.open().await;

        use lutetia_db::store::{Filter, Op, Query};
        let filter = |field: &str, op, value: &str| Filter { field: field.into(), op, value: value.into() };
        let queries = [
            Query { collection: "reports".into(), filters: vec![filter("status", Op::Eq, "\"rare\"")],
                order_by: None, descending: false, limit: 20, cursor: None },
            Query { collection: "reports".into(), filters: vec![filter("email", Op::Eq, "\"u4242@x.fr\"")],
                order_by: None, descending: false, limit: 20, cursor: None },
            Query { collection: "reports".into(),
                filters: vec![filter("status", Op::Eq, "\"open\""), filter("n", Op::Gt, "99900")],
                order_by: Some("n".into()), descending: false, limit: 20, cursor: None },
            Query { collection: "reports".into(), filters: vec![filter("email", Op::Prefix, "\"u4242\"")],
                order_by: None, descending: false, limit: 20, cursor: None },
        ];
        for q in &queries {
            let plan = store.store_explain("p", q).await.expect("explain");
            println!("{backend:?} {:?}:\n{plan}\n", q.filters);
            assert!(plan.contains("store_idx_"), "no declared index used:\n{plan}");
            assert!(!plan.contains("SCAN documents") && !plan.contains("Seq Scan"), "full scan:\n{plan}");
            let page = store.store_find("p", q).await.expect("find");
            assert!(!page.documents.is_empty());
        }
        assert_eq!(store.store_count("p", "reports", &queries[0].filters).await.expect("count"), 100);
    }
}

async fn exec(url: &str, backend: Backend, sql: &'static str) {
    use sqlx::Connection;
    match backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect("exec");
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect("exec");
        }
    }
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
        }
    }
}

async fn text_scalar(db: &TestDb, sql: &str) -> String {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
        }
    }
}

async fn exec_owned(db: &TestDb, sql: &str) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match db.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&db.url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect("exec");
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url).await.expect("connect");
            sqlx::query(sql).execute(&mut conn).await.expect("exec");
        }
    }
}

/// The store's physical indexes (`sqlite_master` / `pg_indexes`), valid or not.
async fn physical(db: &TestDb) -> i64 {
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'store_idx_%'"
        }
        Backend::Postgres => "SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE 'store_idx_%'",
    };
    scalar(db, sql).await
}
