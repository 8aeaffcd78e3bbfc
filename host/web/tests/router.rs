//! The router in process, with `tower::ServiceExt::oneshot`: the host's own routes and
//! refusals, which need no plugin and no process (the integration tests in `tests/` start
//! the real binary for everything that does). A real platform on a temporary SQLite file.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use lutetia_model::settings::Settings;
use lutetia_platform::platform::{Opened, Platform};
use lutetia_web::app::{App, HttpState};
use lutetia_web::{Layout, router};
use tower::ServiceExt;

/// A platform with no plugin on a fresh database, its router, and the admin token.
struct Site {
    app: Arc<App>,
    token: String,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn open() -> Site {
        let dir = tempfile::tempdir().expect("temporary folder");
        let settings = Settings {
            database_url: format!("sqlite://{}", dir.path().join("lutetia.db").display()),
            files_dir: dir.path().join("files"),
            compiled_cache_dir: Some(dir.path().join("compiled")),
            site_name: "Ville de Test".to_owned(),
            ..Settings::default()
        };
        let Opened {
            platform,
            new_admin_token,
            ..
        } = Platform::open(settings).await.expect("the platform opens");
        let layout = Layout::new(&platform.settings.site_name).expect("templates");
        let http = HttpState::new(&platform.settings.http);
        Site {
            app: Arc::new(App {
                platform,
                layout,
                http,
            }),
            token: new_admin_token.expect("a first start creates the admin token"),
            _dir: dir,
        }
    }

    /// One request through the whole router (its middleware included); status, content
    /// type and body.
    async fn send(&self, request: Request<Body>) -> (StatusCode, String, String) {
        let response = router(self.app.clone())
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.into_body().collect().await.expect("body").to_bytes();
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, uri: &str, accept: &str) -> (StatusCode, String, String) {
        let request = Request::get(uri)
            .header(header::ACCEPT, accept)
            .body(Body::empty())
            .expect("request");
        self.send(request).await
    }
}

#[tokio::test]
async fn health_and_home_answer() {
    let site = Site::open().await;
    let (status, kind, body) = site.get("/healthz", "*/*").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(kind.starts_with("application/json"), "{kind}");
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        (&health["status"], &health["database"], &health["plugins"]),
        (&"ok".into(), &"ok".into(), &0.into())
    );
    let (status, kind, body) = site.get("/", "text/html").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(body.contains("Ville de Test"), "{body}");
}

#[tokio::test]
async fn unknown_addresses_are_a_page_or_json_by_accept() {
    let site = Site::open().await;
    let (status, kind, body) = site.get("/no/such/page", "text/html").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        kind.starts_with("text/html") && body.contains("There is no page at this address."),
        "{body}"
    );
    let (status, kind, body) = site.get("/no/such/page", "application/json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(kind.starts_with("application/json"), "{kind}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json["error"], "not_found", "{json}");
    // No plugin of that id; and ids that decode to control characters or are no ids at
    // all are the same 404, never a 500.
    for uri in ["/p/hello/", "/p/hello/x", "/p/%0A/", "/p/%0A", "/p/%FF/x"] {
        let (status, _, body) = site.get(uri, "application/json").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}: {body}");
    }
    // A valid id without its slash goes to its mount, built from the checked id only.
    let response = router(site.app.clone())
        .oneshot(Request::get("/p/hello").body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok()),
        Some("/p/hello/")
    );
}

#[tokio::test]
async fn a_target_over_the_limit_is_414() {
    let site = Site::open().await;
    let limit = site.app.platform.settings.http.max_uri_bytes;
    let uri = format!("/p/hello/?q={}", "a".repeat(limit));
    let (status, _, body) = site.get(&uri, "application/json").await;
    assert_eq!(status, StatusCode::URI_TOO_LONG, "{body}");
    assert!(body.contains("uri_too_long"), "{body}");
}

#[tokio::test]
async fn the_admin_api_and_metrics_need_the_token() {
    let site = Site::open().await;
    for uri in ["/api/admin/plugins", "/metrics"] {
        let (status, _, body) = site.get(uri, "application/json").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {body}");
        let wrong = Request::get(uri)
            .header(header::AUTHORIZATION, "Bearer not-the-token")
            .body(Body::empty())
            .expect("request");
        assert_eq!(site.send(wrong).await.0, StatusCode::UNAUTHORIZED, "{uri}");
    }
    let listed = Request::get("/api/admin/plugins")
        .header(header::AUTHORIZATION, format!("Bearer {}", site.token))
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = site.send(listed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(json, serde_json::json!({ "plugins": [] }));
    let scraped = Request::get("/metrics")
        .header(header::AUTHORIZATION, format!("Bearer {}", site.token))
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = site.send(scraped).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("lutetia_build_info"), "{body}");
}

#[tokio::test]
async fn an_upload_that_is_no_package_is_a_precise_400() {
    let site = Site::open().await;
    let upload = Request::post("/api/admin/plugins")
        .header(header::AUTHORIZATION, format!("Bearer {}", site.token))
        .header(header::CONTENT_TYPE, "application/wasm")
        .body(Body::from("not a component"))
        .expect("request");
    let (status, _, body) = site.send(upload).await;
    assert!(status.is_client_error(), "{status}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(json["error"].as_str().is_some_and(|e| !e.is_empty()), "{json}");
    assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
}
