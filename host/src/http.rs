//! The HTTP layer: routes, body limits, page wrapping and error pages. Only this module
//! uses axum.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response as HttpResponse};
use axum::routing::{any, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::Instrument;

use crate::app::App;
use crate::runtime::{CallError, Page, Reply, Request, Response};

mod admin;
mod layout;
mod sanitize;
mod upload;

pub use layout::{Layout, LayoutError, NavItem};

/// Builds the router; tests and `serve` share it.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/assets/site.css", get(site_css))
        .route("/p/{plugin}", any(plugin_root))
        .route("/p/{plugin}/", any(plugin_root_slash))
        .route("/p/{plugin}/_files/{name}", get(plugin_file))
        .route("/p/{plugin}/{*rest}", any(plugin_path))
        .merge(admin::routes(app.clone()))
        .fallback(not_found)
        .with_state(app)
}

async fn healthz(State(app): State<Arc<App>>) -> HttpResponse {
    let db_ok = app.db.ping().await.is_ok();
    let body = serde_json::json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "database": if db_ok { "ok" } else { "unreachable" },
        "plugins": app.registry.list().len(),
    });
    let status = if db_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn site_css() -> HttpResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../assets/site.css"),
    )
        .into_response()
}

async fn home(State(app): State<Arc<App>>) -> HttpResponse {
    app.layout
        .home(&app.site_nav())
        .map_or_else(|e| layout_failure(&e), |html| html_response(StatusCode::OK, html))
}

async fn not_found(State(app): State<Arc<App>>) -> HttpResponse {
    error_page(
        &app,
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is no page at this address.",
        None,
    )
}

async fn plugin_root(Path(plugin): Path<String>) -> HttpResponse {
    Redirect::permanent(&format!("/p/{plugin}/")).into_response()
}

async fn plugin_root_slash(
    State(app): State<Arc<App>>,
    Path(plugin): Path<String>,
    request: HttpRequest,
) -> HttpResponse {
    call_plugin(app, plugin, request).await
}

async fn plugin_path(
    State(app): State<Arc<App>>,
    Path((plugin, _rest)): Path<(String, String)>,
    request: HttpRequest,
) -> HttpResponse {
    call_plugin(app, plugin, request).await
}

/// The path below `/p/{plugin}`, as the client sent it (still percent-encoded).
fn path_below_mount(raw: &str) -> String {
    let below = raw
        .strip_prefix("/p/")
        .and_then(|rest| rest.find('/').map(|slash| &rest[slash..]))
        .unwrap_or("/");
    below.to_owned()
}

/// Serves one request with the plugin mounted at `/p/{plugin}/`.
async fn call_plugin(app: Arc<App>, plugin_id: String, request: HttpRequest) -> HttpResponse {
    let request_id = next_request_id();
    let Some(plugin) = app.registry.get(&plugin_id) else {
        return error_page(
            &app,
            StatusCode::NOT_FOUND,
            "Service not found",
            "No service is installed at this address.",
            Some(&request_id),
        );
    };
    let span = tracing::info_span!("plugin_call", plugin = %plugin_id, version = %plugin.context.version, request_id = %request_id);
    async move {
        let files = plugin.context.grants.files.as_ref();
        let limit = upload::body_limit(app.settings.limits.max_body_bytes, files);
        let (parts, body) = request.into_parts();
        let read = match (files, upload::multipart_boundary(&parts.headers)) {
            (Some(grant), Some(boundary)) => read_upload(&parts.headers, body, limit, grant, boundary).await,
            _ => read_body(&parts.headers, body, limit).await,
        };
        let body = match read {
            Ok(body) => body,
            Err(error) => return body_refused(&app, &error, limit, &request_id),
        };
        let query = parts.uri.query().unwrap_or("").to_owned();
        let wit_request = Request {
            method: parts.method.as_str().to_owned(),
            path: path_below_mount(parts.uri.path()),
            query,
            headers: forwarded_headers(&parts.headers),
            body: body.to_vec(),
            user: None,
            locale: preferred_locale(&parts.headers),
            mount: format!("/p/{plugin_id}"),
            request_id: request_id.clone(),
        };
        let started = std::time::Instant::now();
        let outcome = app.runtime.handle(&plugin, wit_request).await;
        let elapsed_us = started.elapsed().as_micros();
        match outcome {
            Ok(Reply::Response(response)) => {
                tracing::debug!(status = response.status, elapsed_us, "plugin response");
                plugin_response(
                    &app,
                    &plugin_id,
                    response,
                    parts.method == Method::HEAD,
                    &request_id,
                )
            }
            Ok(Reply::Page(page)) => {
                tracing::debug!(status = page.status, elapsed_us, "plugin page");
                plugin_page(&app, &plugin_id, page, &request_id)
            }
            Err(error) => call_failed(&app, &plugin.manifest.name, &error, &request_id),
        }
    }
    .instrument(span)
    .await
}

/// The answer to a body that was refused before it was fully read. The rest of that body
/// is still on the wire, so the connection is closed after the answer rather than reused.
fn body_refused(app: &App, error: &BodyError, limit: usize, request_id: &str) -> HttpResponse {
    let (status, title, message) = match error {
        BodyError::TypeNotAllowed(declared) => {
            tracing::info!(content_type = %declared, "upload of a type the plugin may not store");
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "File type not accepted",
                format!("This service does not accept files of type {declared}."),
            )
        }
        BodyError::Malformed(reason) => {
            tracing::info!(reason = %reason, "malformed multipart body");
            (
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The form data could not be read.".to_owned(),
            )
        }
        BodyError::TooLarge => {
            tracing::info!(limit, "request body too large");
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request too large",
                format!("The request body is larger than the {limit} bytes this site accepts."),
            )
        }
        BodyError::Unreadable => (
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The request body could not be read.".to_owned(),
        ),
    };
    let mut response = error_page(app, status, title, &message, Some(request_id));
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Maps a failed call to a clean error page; the details go to the log only.
fn call_failed(app: &App, name: &str, error: &CallError, request_id: &str) -> HttpResponse {
    tracing::error!(error = %error, "plugin call failed");
    let (status, message) = match error {
        CallError::Trap(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("The service “{name}” failed while answering. The incident has been logged."),
        ),
        CallError::Timeout(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The service “{name}” took too long to answer. Please try again later."),
        ),
        CallError::MemoryExceeded(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("The service “{name}” ran out of resources. Please try again later."),
        ),
        CallError::Overloaded(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The site is very busy. Please try again in a moment.".to_owned(),
        ),
    };
    let mut response = error_page(app, status, "Service unavailable", &message, Some(request_id));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    response
}

enum BodyError {
    TooLarge,
    Unreadable,
    TypeNotAllowed(String),
    Malformed(String),
}

/// Reads a `multipart/form-data` body for a plugin holding the `files` grant.
async fn read_upload(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    grant: &crate::manifest::FilesCapability,
    boundary: Result<String, upload::UploadError>,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let result = match boundary {
        Ok(boundary) => upload::read_multipart(body, boundary, limit, grant).await,
        Err(e) => Err(e),
    };
    result.map_err(|e| match e {
        upload::UploadError::TooLarge => BodyError::TooLarge,
        upload::UploadError::TypeNotAllowed(t) => BodyError::TypeNotAllowed(t),
        upload::UploadError::Malformed(m) => BodyError::Malformed(m),
        upload::UploadError::Unreadable => BodyError::Unreadable,
    })
}

/// Serves a file the plugin stored (`files` interface) with a safe type and disposition.
async fn plugin_file(
    State(app): State<Arc<App>>,
    Path((plugin_id, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> HttpResponse {
    let granted = app
        .registry
        .get(&plugin_id)
        .is_some_and(|p| p.context.grants.files.is_some());
    let found = match app.runtime.files() {
        Some(store) if granted => store.get(&plugin_id, &name).await,
        _ => Ok(None),
    };
    let (info, data) = match found {
        Ok(Some(found)) => found,
        Ok(None) | Err(crate::files::FilesError::Invalid(_)) => {
            return error_page(
                &app,
                StatusCode::NOT_FOUND,
                "File not found",
                "There is no file at this address.",
                None,
            );
        }
        Err(e) => {
            tracing::error!(plugin = %plugin_id, error = %e, "cannot read a stored file");
            return error_page(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "The file cannot be read right now. Please try again later.",
                None,
            );
        }
    };
    let etag = format!("\"{}\"", info.sha256);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Body::from(data).into_response()
    };
    let inline = info.content_type.starts_with("image/")
        || info.content_type == "application/pdf"
        || info.content_type == "text/plain";
    let h = response.headers_mut();
    // Stored types are validated lower-case `type/subtype`, names are [A-Za-z0-9._-].
    let content_type = if info.content_type == "text/plain" {
        HeaderValue::from_static("text/plain; charset=utf-8")
    } else {
        HeaderValue::from_str(&info.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"))
    };
    h.insert(header::CONTENT_TYPE, content_type);
    let disposition = format!(
        "{}; filename=\"{}\"",
        if inline { "inline" } else { "attachment" },
        info.name
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    security_headers(h, FILE_CSP);
    response
}

/// Reads the body up to `limit` bytes; a declared length over the limit is refused before
/// anything is read.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// Headers a plugin may see: credentials and hop-by-hop headers stay with the host.
fn forwarded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !is_private_request_header(name))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

fn is_private_request_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "cookie"
            | "authorization"
            | "proxy-authorization"
            | "connection"
            | "keep-alive"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

/// Headers a plugin may not set: the host owns framing, cookies and security policy.
fn is_reserved_response_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "set-cookie"
            | "content-length"
            | "transfer-encoding"
            | "connection"
            | "keep-alive"
            | "upgrade"
            | "trailer"
            | "content-security-policy"
            | "strict-transport-security"
    )
}

/// The first language of `Accept-Language`, if it looks like a BCP 47 tag.
fn preferred_locale(headers: &HeaderMap) -> String {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(|tag| tag.split(';').next().unwrap_or("").trim())
        .filter(|tag| {
            !tag.is_empty()
                && tag.len() <= 35
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && *tag != "*"
        })
        .unwrap_or("en")
        .to_owned()
}

/// Copies a plugin's headers, dropping reserved or malformed ones (with a log line).
fn plugin_headers(plugin: &str, target: &mut HeaderMap, headers: Vec<(String, String)>) {
    for (name, value) in headers {
        let parsed = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        );
        match parsed {
            (Ok(name), Ok(value)) if !is_reserved_response_header(&name) => {
                target.append(name, value);
            }
            (Ok(name), Ok(_)) => {
                tracing::warn!(plugin, header = %name, "plugin may not set this header; dropped")
            }
            _ => tracing::warn!(plugin, header = %name, "malformed header from plugin; dropped"),
        }
    }
}

fn plugin_response(
    app: &App,
    plugin: &str,
    response: Response,
    head: bool,
    request_id: &str,
) -> HttpResponse {
    let Ok(status) = StatusCode::from_u16(response.status) else {
        tracing::error!(status = response.status, "plugin answered an invalid status");
        return invalid_answer(app, request_id);
    };
    if response.body.len() > app.settings.limits.max_response_bytes {
        tracing::error!(
            bytes = response.body.len(),
            "plugin response larger than the limit"
        );
        return invalid_answer(app, request_id);
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(response.body)
    };
    let mut http = HttpResponse::new(body);
    *http.status_mut() = status;
    plugin_headers(plugin, http.headers_mut(), response.headers);
    let headers = http.headers_mut();
    headers
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/octet-stream"));
    // A plugin must not make the browser guess a type (and run a script it did not mean),
    // and a raw response is never a document allowed to run scripts.
    security_headers(headers, RAW_RESPONSE_CSP);
    http
}

fn plugin_page(app: &App, plugin: &str, page: Page, request_id: &str) -> HttpResponse {
    let Ok(status) = StatusCode::from_u16(page.status) else {
        tracing::error!(status = page.status, "plugin page has an invalid status");
        return invalid_answer(app, request_id);
    };
    if page.body.len() > app.settings.limits.max_response_bytes {
        tracing::error!(bytes = page.body.len(), "plugin page larger than the limit");
        return invalid_answer(app, request_id);
    }
    let clean = sanitize::fragment(&page.body);
    let nav = app.site_nav();
    match app.layout.page(&nav, plugin, &page.title, &clean) {
        Ok(html) => {
            let mut response = html_response(status, html);
            plugin_headers(plugin, response.headers_mut(), page.headers);
            response
        }
        Err(e) => layout_failure(&e),
    }
}

fn invalid_answer(app: &App, request_id: &str) -> HttpResponse {
    error_page(
        app,
        StatusCode::BAD_GATEWAY,
        "Service unavailable",
        "The service gave an answer this site cannot use. The incident has been logged.",
        Some(request_id),
    )
}

/// An error page in the site layout.
pub(crate) fn error_page(
    app: &App,
    status: StatusCode,
    title: &str,
    message: &str,
    request_id: Option<&str>,
) -> HttpResponse {
    match app.layout.error(&app.site_nav(), title, message, request_id) {
        Ok(html) => html_response(status, html),
        Err(e) => layout_failure(&e),
    }
}

/// Content-Security-Policy of pages in the layout: only the site's own resources.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                        object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'";
/// Content-Security-Policy of raw plugin responses: no scripts, sandboxed.
const RAW_RESPONSE_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; \
                                frame-ancestors 'self'; sandbox allow-forms allow-same-origin";

/// Content-Security-Policy of stored files: nothing runs, nothing loads.
const FILE_CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox; \
                        frame-ancestors 'self'";

/// Headers every response from the site carries.
fn security_headers(headers: &mut HeaderMap, csp: &'static str) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
}

fn html_response(status: StatusCode, html: String) -> HttpResponse {
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    security_headers(headers, PAGE_CSP);
    response
}

fn layout_failure(error: &LayoutError) -> HttpResponse {
    tracing::error!(error = %error, "layout rendering failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal error: the page could not be rendered.",
    )
        .into_response()
}

/// A short unique id for each request, found in error pages and logs.
fn next_request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{n:x}", start & 0xff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locale_is_the_first_valid_tag() {
        let mut h = HeaderMap::new();
        assert_eq!(preferred_locale(&h), "en");
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-FR,fr;q=0.9,en;q=0.8"),
        );
        assert_eq!(preferred_locale(&h), "fr-FR");
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("<script>"));
        assert_eq!(preferred_locale(&h), "en");
    }

    #[test]
    fn credentials_are_not_forwarded() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("session=secret"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        assert_eq!(
            forwarded_headers(&h),
            vec![("accept".to_owned(), "text/html".to_owned())]
        );
    }

    #[test]
    fn reserved_response_headers_are_dropped() {
        let mut target = HeaderMap::new();
        plugin_headers(
            "p",
            &mut target,
            vec![
                ("Set-Cookie".into(), "a=b".into()),
                ("x-ok".into(), "1".into()),
                ("bad name".into(), "1".into()),
                ("x-bad-value".into(), "a\nb".into()),
            ],
        );
        assert_eq!(target.len(), 1);
        assert_eq!(target["x-ok"], "1");
    }

    #[test]
    fn plugin_paths_stay_encoded() {
        assert_eq!(path_below_mount("/p/hello/"), "/");
        assert_eq!(path_below_mount("/p/hello/a%2Fb/c%20d"), "/a%2Fb/c%20d");
        assert_eq!(path_below_mount("/p/hello"), "/");
    }

    #[test]
    fn request_ids_are_unique() {
        assert_ne!(next_request_id(), next_request_id());
    }
}
