//! The example plugins written in other languages, built with the real `lutetia plugin
//! build` and served by the real host: `news` (Python) and `directory` (JavaScript), on
//! SQLite and PostgreSQL. What a city's agent and a visitor do, over HTTP.

use lutetia_tests::polyglot::{PluginFiles, build_plugin, plugins_folder, repo_root, start_host};
use lutetia_tests::{Backend, Host, TestDb, on_both_backends};

const BIN: &str = env!("CARGO_BIN_EXE_lutetia-test-host");

/// A host serving `news` and `directory` with the operator's keys set.
async fn start(db: &TestDb) -> Host {
    let mut plugins = Vec::new();
    for id in ["news", "directory"] {
        let package = build_plugin(BIN, &repo_root().join("example-plugins").join(id)).await;
        plugins.push(PluginFiles::from_package(&package));
    }
    let folder = plugins_folder(db.dir(), &plugins.iter().collect::<Vec<_>>(), None);
    let config = db.dir().join("lutetia.toml");
    std::fs::write(
        &config,
        "[plugins.news.config]\npublish-key = \"s3cret\"\npage-size = \"3\"\n\
         [plugins.directory.config]\nedit-key = \"k3y\"\n",
    )
    .expect("config");
    start_host(BIN, db, &folder, &["--config", &config.to_string_lossy()]).await
}

async fn post_form(host: &Host, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
    let response = host
        .client
        .post(host.url(path))
        .form(fields)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, response.text().await.expect("body"), location)
}

on_both_backends! {
    async fn news_agents_post_and_visitors_page_through(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;

        let (status, body) = host.get("/p/news/").await;
        assert_eq!(status, 200, "{body}\n{}", host.log());

        // A wrong key is refused and nothing is stored.
        let item = [("title", "Travaux"), ("body", "x"), ("author", "Mairie"), ("key", "nope")];
        let (status, _, _) = post_form(&host, "/p/news/new", &item).await;
        assert_eq!(status, 403);
        // Invalid fields come back with the typed values.
        let (status, body, _) =
            post_form(&host, "/p/news/new", &[("title", ""), ("body", "Texte gardé"), ("author", "A"), ("key", "s3cret")]).await;
        assert_eq!(status, 400);
        assert!(body.contains("Texte gardé"), "{body}");
        let (_, api) = host.get("/p/news/api/items").await;
        assert!(api.contains("\"items\":[]") || api.contains("\"items\": []"), "{api}");

        // Five items, posted in order; the page lists them newest first, three per page.
        for n in 1..=5 {
            let title = format!("Info {n} <b>&</b>");
            let fields = [("title", title.as_str()), ("body", "Premier.\n\nSecond."), ("author", "Service com"), ("key", "s3cret")];
            let (status, body, location) = post_form(&host, "/p/news/new", &fields).await;
            assert_eq!(status, 303, "{body}");
            let location = location.expect("redirect to the item");
            let (status, page) = host.get(&location).await;
            assert_eq!(status, 200, "{location}");
            assert!(page.contains(&format!("Info {n} &lt;b&gt;&amp;&lt;")), "not shown: {page}");
            assert!(!page.contains(&format!("Info {n} <b>")), "not escaped: {page}");
            assert!(page.contains("<p>Premier.</p>") && page.contains("<p>Second.</p>"), "{page}");
        }
        let (_, first) = host.get("/p/news/").await;
        let order: Vec<usize> = (1..=5).filter_map(|n| first.find(&format!("Info {n} "))).collect();
        assert_eq!(order.len(), 3, "three per page: {first}");
        assert!(first.find("Info 5 ") < first.find("Info 4 ") && first.find("Info 4 ") < first.find("Info 3 "));

        // The JSON API pages with the store's cursor, without repeats or gaps.
        let mut seen = Vec::new();
        let mut url = "/p/news/api/items?limit=2".to_owned();
        loop {
            let (status, text) = host.get(&url).await;
            assert_eq!(status, 200, "{text}");
            let json: serde_json::Value = serde_json::from_str(&text).expect("json");
            for item in json["items"].as_array().expect("items") {
                seen.push(item["title"].as_str().expect("title").to_owned());
            }
            match json["next"].as_str() {
                Some(next) => url = format!("/p/news/api/items?limit=2&cursor={}", urlencode(next)),
                None => break,
            }
        }
        let expected: Vec<String> = (1..=5).rev().map(|n| format!("Info {n} <b>&</b>")).collect();
        assert_eq!(seen, expected);
        let (status, _) = host.get("/p/news/api/items?limit=0").await;
        assert_eq!(status, 400);
    }

    async fn directory_agents_edit_and_visitors_search(backend: Backend) {
        let db = TestDb::new(backend).await;
        let host = start(&db).await;

        let entries = [
            ("Hélène Dupont", "Direction de la voirie", "01 42 76 40 40", "B-204"),
            ("Émile Zola", "État civil", "+33 1 42 76 00 00", "A-001"),
            ("Émilie Martin", "Direction de la voirie", "01 42 76 40 41", "B-205"),
            ("Paul Hélio", "Bibliothèques", "01 00 00 00 00", ""),
        ];
        for (name, service, phone, office) in entries {
            let fields = [("name", name), ("service", service), ("phone", phone), ("office", office), ("key", "k3y")];
            let (status, body, location) = post_form(&host, "/p/directory/new", &fields).await;
            assert_eq!(status, 303, "{name}: {body}\n{}", host.log());
            assert!(location.is_some());
        }
        // A wrong key and an invalid phone are refused.
        let fields = [("name", "X"), ("service", "Y"), ("phone", "0142"), ("office", ""), ("key", "bad")];
        assert_eq!(post_form(&host, "/p/directory/new", &fields).await.0, 403);
        let fields = [("name", "X"), ("service", "Y"), ("phone", "call me"), ("office", ""), ("key", "k3y")];
        let (status, body, _) = post_form(&host, "/p/directory/new", &fields).await;
        assert_eq!(status, 400);
        assert!(body.contains("call me"), "typed values are kept: {body}");

        let names = |json: &str| -> Vec<String> {
            let json: serde_json::Value = serde_json::from_str(json).expect("json");
            json["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|e| e["name"].as_str().expect("name").to_owned())
                .collect()
        };
        // Case- and accent-insensitive prefix of any word of the name or the service.
        let (_, hel) = host.get("/p/directory/api/search?q=hel").await;
        assert_eq!(names(&hel), ["Hélène Dupont", "Paul Hélio"], "{hel}");
        let (_, emi) = host.get("/p/directory/api/search?q=EMI").await;
        assert_eq!(names(&emi), ["Émile Zola", "Émilie Martin"], "{emi}");
        let (_, voirie) = host.get("/p/directory/api/search?q=voi").await;
        assert_eq!(names(&voirie), ["Émilie Martin", "Hélène Dupont"], "{voirie}");
        let (_, none) = host.get("/p/directory/api/search?q=zzz").await;
        assert!(names(&none).is_empty());

        let (status, page) = host.get("/p/directory/?q=hel").await;
        assert_eq!(status, 200);
        assert!(page.contains("Hélène Dupont") && page.contains("tel:"), "{page}");
        assert!(!page.contains("Émile Zola"));
    }
}

/// Percent-encodes a cursor for a query string.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
