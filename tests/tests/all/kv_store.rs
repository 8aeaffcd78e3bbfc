//! The `kv` storage semantics, on the real SQLite and PostgreSQL: the same results on both.

use lutetia_db::kv::Increment;
use lutetia_model::manifest::KvCapability;

/// A quota these tests never reach (the quota itself is tested in `quotas.rs`).
const Q: KvCapability = KvCapability {
    max_keys: 1_000_000,
    max_bytes: 1 << 30,
};
use lutetia_tests::{Backend, TestDb, on_both_backends};

on_both_backends! {
    async fn set_get_delete(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = test_db.open().await;
        assert_eq!(db.kv_get("a", "k").await.expect("get"), None);
        db.kv_set("a", Q, "k", b"\x00\xffbinary").await.expect("set");
        assert_eq!(db.kv_get("a", "k").await.expect("get"), Some(b"\x00\xffbinary".to_vec()));
        db.kv_set("a", Q, "k", b"v2").await.expect("overwrite");
        assert_eq!(db.kv_get("a", "k").await.expect("get"), Some(b"v2".to_vec()));
        assert!(db.kv_delete("a", Q, "k").await.expect("delete"));
        assert!(!db.kv_delete("a", Q, "k").await.expect("delete again"));
        assert_eq!(db.kv_get("a", "k").await.expect("get"), None);
        db.close().await;
    }

    async fn plugins_never_see_each_others_keys(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = test_db.open().await;
        db.kv_set("a", Q, "shared-name", b"from a").await.expect("set");
        db.kv_set("b", Q, "shared-name", b"from b").await.expect("set");
        assert_eq!(db.kv_get("a", "shared-name").await.expect("get"), Some(b"from a".to_vec()));
        assert_eq!(db.kv_get("b", "shared-name").await.expect("get"), Some(b"from b".to_vec()));
        assert!(db.kv_delete("a", Q, "shared-name").await.expect("delete"));
        assert_eq!(db.kv_get("b", "shared-name").await.expect("get"), Some(b"from b".to_vec()));
        assert_eq!(db.kv_list_keys("a", "", None, 100).await.expect("list"), Vec::<String>::new());
        db.close().await;
    }

    async fn compare_and_swap(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = test_db.open().await;
        assert!(db.kv_compare_and_swap("p", Q, "k", None, b"1").await.expect("create"));
        assert!(!db.kv_compare_and_swap("p", Q, "k", None, b"2").await.expect("already exists"));
        assert!(!db.kv_compare_and_swap("p", Q, "k", Some(b"0"), b"2").await.expect("stale"));
        assert!(db.kv_compare_and_swap("p", Q, "k", Some(b"1"), b"2").await.expect("swap"));
        assert_eq!(db.kv_get("p", "k").await.expect("get"), Some(b"2".to_vec()));
        db.close().await;
    }

    async fn increment_is_atomic_under_concurrency(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = test_db.open().await;
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move { db.kv_increment("p", Q, "n", 1).await.expect("increment") }));
        }
        let mut values = Vec::new();
        for task in tasks {
            match task.await.expect("task") {
                Increment::Value(v) => values.push(v),
                other => panic!("unexpected {other:?}"),
            }
        }
        values.sort_unstable();
        assert_eq!(values, (1..=100).collect::<Vec<i64>>());
        assert_eq!(db.kv_increment("p", Q, "n", -100).await.expect("decrement"), Increment::Value(0));
        db.kv_set("p", Q, "text", b"twelve").await.expect("set");
        assert_eq!(db.kv_increment("p", Q, "text", 1).await.expect("increment"), Increment::NotAnInteger);
        db.kv_set("p", Q, "big", i64::MAX.to_string().as_bytes()).await.expect("set");
        assert_eq!(db.kv_increment("p", Q, "big", 1).await.expect("increment"), Increment::Overflow);
        db.close().await;
    }

    async fn list_keys_by_prefix_and_page(backend: Backend) {
        let test_db = TestDb::new(backend).await;
        let db = test_db.open().await;
        for key in ["news/1", "news/2", "news/3", "news_x", "news%", "other", "new"] {
            db.kv_set("p", Q, key, b"x").await.expect("set");
        }
        let all = db.kv_list_keys("p", "news/", None, 100).await.expect("list");
        assert_eq!(all, ["news/1", "news/2", "news/3"]);
        let page = db.kv_list_keys("p", "news/", Some("news/1"), 1).await.expect("page");
        assert_eq!(page, ["news/2"]);
        // `%` and `_` are ordinary characters in a prefix.
        assert_eq!(db.kv_list_keys("p", "news%", None, 10).await.expect("list"), ["news%"]);
        assert_eq!(db.kv_list_keys("p", "news_", None, 10).await.expect("list"), ["news_x"]);
        assert_eq!(db.kv_list_keys("p", "", None, 3).await.expect("list").len(), 3);
        db.close().await;
    }
}
