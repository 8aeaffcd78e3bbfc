//! `lutetia-web`, the HTTP layer: the connection loop (`serve`), routes, body limits, page
//! wrapping (`layout`), error answers (`refusal`), the admin API (`admin`), request ids,
//! the access log and `/metrics` (`observe`), and the host's start (`server`). It applies
//! `lutetia-policy`'s rules (what a plugin sees of a request, what its answer may carry,
//! its page cleaned) to real requests and answers. The only crate that uses axum, hyper,
//! tower and minijinja.
//!
//! Depends on `lutetia-model`, `lutetia-policy`, `lutetia-runtime` and `lutetia-platform`;
//! nothing of the project depends on it but the command line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request as HttpRequest, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response as HttpResponse};
use axum::routing::{any, get};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use tracing::Instrument;

use crate::app::App;
use lutetia_model::manifest::Capability;
use lutetia_model::settings::HttpSettings;
use lutetia_policy::request::plugin_id_in_path;
use lutetia_policy::{headers, sanitize};
use lutetia_runtime::{LoadedPlugin, Page, Reply, Request, Response};
use refusal::{Refusal, prefers_json};

mod admin;
pub mod app;
mod layout;
mod observe;
mod refusal;
mod serve;
pub mod server;
mod upload;

pub use layout::{Layout, LayoutError, NavItem};
pub use serve::serve;

/// Builds the router; tests and `serve` share it.
pub fn router(app: Arc<App>) -> Router {
    let mut router = Router::new();
    if app.platform.settings.metrics.enabled {
        router = router.route("/metrics", get(observe::metrics));
    }
    router
        .route("/", get(home))
        .route("/healthz", get(healthz))
        .route("/assets/site.css", get(site_css))
        .route("/p/{plugin}", any(plugin_root))
        .route("/p/{plugin}/", any(call_plugin))
        .route("/p/{plugin}/_files/{name}", get(plugin_file))
        .route("/p/{plugin}/{*rest}", any(call_plugin))
        .merge(admin::routes(app.clone()))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(app.clone(), bound_request))
        // Outermost: it sees every answer, the 414 of `bound_request` included.
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe::track))
        .with_state(app)
}

/// Refuses a request target longer than `http.max-uri-bytes` (414) before any route.
async fn bound_request(
    State(app): State<Arc<App>>,
    request: HttpRequest,
    next: axum::middleware::Next,
) -> HttpResponse {
    let limit = app.platform.settings.http.max_uri_bytes;
    let length = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if length > limit {
        tracing::info!(length, limit, "request target too long");
        return Refusal::UriTooLong { limit }.respond(&app, prefers_json(request.headers()), None);
    }
    next.run(request).await
}

async fn healthz(State(app): State<Arc<App>>) -> HttpResponse {
    let db_ok = app.platform.db.ping().await.is_ok();
    let body = serde_json::json!({
        "status": if db_ok { "ok" } else { "degraded" },
        "database": if db_ok { "ok" } else { "unreachable" },
        "plugins": app.platform.registry.list().len(),
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

async fn not_found(State(app): State<Arc<App>>, headers: HeaderMap) -> HttpResponse {
    Refusal::NoPage.respond(&app, prefers_json(&headers), None)
}

/// `/p/{id}` redirects to the mount `/p/{id}/`, built from the id only once it is known
/// to be a plugin id (a decoded control character would not fit in a header).
async fn plugin_root(State(app): State<Arc<App>>, request: HttpRequest) -> HttpResponse {
    match plugin_id_in_path(request.uri().path()) {
        Some(id) => Redirect::permanent(&format!("/p/{id}/")).into_response(),
        None => Refusal::NoService.respond(&app, prefers_json(request.headers()), None),
    }
}

/// The site's language, for a visitor whose browser names none that can be used (and
/// for the layout's `lang`), until the site's language is a setting.
pub(crate) const DEFAULT_LOCALE: &str = "en";

/// The WIT request a plugin receives for an HTTP request to its mount `/p/{plugin_id}`:
/// what [`lutetia_policy::request::forwarded`] lets through, the body, no user yet.
fn wit_request(parts: &Parts, body: Vec<u8>, plugin_id: &str, request_id: &str) -> Request {
    let seen = lutetia_policy::request::forwarded(parts, plugin_id, DEFAULT_LOCALE);
    Request {
        method: seen.method,
        path: seen.path,
        query: seen.query,
        headers: seen.headers,
        body,
        user: None,
        locale: seen.locale,
        mount: seen.mount,
        request_id: request_id.to_owned(),
    }
}

/// Time allowed to receive a body: the base timeout, plus the expected length (declared,
/// or the route's limit) at the slowest rate allowed for.
fn body_deadline(http: &HttpSettings, headers: &HeaderMap, limit: usize) -> Duration {
    let limit = limit as u64;
    let expected = content_length(headers).map_or(limit, |n| n.min(limit));
    let allowance_ms = expected
        .saturating_mul(1000)
        .checked_div(http.min_body_bytes_per_second)
        .unwrap_or(0);
    Duration::from_millis(http.body_read_timeout_ms.saturating_add(allowance_ms))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Serves one request with the plugin mounted at `/p/{plugin}/`.
async fn call_plugin(State(app): State<Arc<App>>, request: HttpRequest) -> HttpResponse {
    let request_id = observe::request_id(&request);
    let json = prefers_json(request.headers());
    let plugin = plugin_id_in_path(request.uri().path()).and_then(|id| app.platform.registry.get(&id));
    let Some(plugin) = plugin else {
        return Refusal::NoService.respond(&app, json, Some(&request_id));
    };
    let span = tracing::info_span!("plugin_call", plugin = %plugin.context.id, version = %plugin.context.version, request_id = %request_id);
    async move {
        let files = plugin.context.grants.files.as_ref();
        let limit = upload::body_limit(app.platform.settings.limits.max_body_bytes, files);
        let (parts, body) = request.into_parts();
        let deadline = body_deadline(&app.platform.settings.http, &parts.headers, limit);
        let read = async {
            match (files, upload::multipart_boundary(&parts.headers)) {
                (Some(grant), Some(boundary)) => {
                    read_upload(&parts.headers, body, limit, grant, boundary).await
                }
                _ => read_body(&parts.headers, body, limit).await,
            }
        };
        let body = match tokio::time::timeout(deadline, read).await {
            Ok(Ok(body)) => body,
            Ok(Err(error)) => return body_refused(error, limit).respond(&app, json, Some(&request_id)),
            Err(_) => {
                tracing::info!(?deadline, "request body did not arrive in time");
                return Refusal::BodyTimeout.respond(&app, json, Some(&request_id));
            }
        };
        let wit_request = wit_request(&parts, body.to_vec(), &plugin.context.id, &request_id);
        let started = std::time::Instant::now();
        let outcome = app.platform.runtime.handle(&plugin, wit_request).await;
        let elapsed_us = started.elapsed().as_micros();
        let answer = Answer {
            app: &app,
            plugin: &plugin,
            json,
            request_id: &request_id,
        };
        match outcome {
            Ok(Reply::Response(response)) => {
                tracing::debug!(status = response.status, elapsed_us, "plugin response");
                answer.response(response, parts.method == Method::HEAD)
            }
            Ok(Reply::Page(page)) => {
                tracing::debug!(status = page.status, elapsed_us, "plugin page");
                answer.page(page).await
            }
            Err(error) => {
                tracing::error!(error = %error, "plugin call failed");
                Refusal::CallFailed {
                    service: plugin.manifest.name.clone(),
                    error,
                }
                .respond(&app, json, Some(&request_id))
            }
        }
    }
    .instrument(span)
    .await
}

/// The refusal of a body that was refused before it was fully read.
fn body_refused(error: BodyError, limit: usize) -> Refusal {
    match error {
        BodyError::TypeNotAllowed(declared) => {
            tracing::info!(content_type = %declared, "upload of a type the plugin may not store");
            Refusal::TypeNotAllowed(declared)
        }
        BodyError::Malformed(reason) => {
            tracing::info!(reason = %reason, "malformed multipart body");
            Refusal::MalformedForm
        }
        BodyError::TooLarge => {
            tracing::info!(limit, "request body too large");
            Refusal::BodyTooLarge { limit }
        }
        BodyError::Unreadable => Refusal::BodyUnreadable,
    }
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
    grant: &lutetia_model::manifest::FilesCapability,
    boundary: Result<String, upload::UploadError>,
) -> Result<Bytes, BodyError> {
    if content_length(headers).is_some_and(|n| n > limit as u64) {
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
    path: Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
) -> HttpResponse {
    let json = prefers_json(&headers);
    // A segment that does not decode to UTF-8 names no file.
    let Ok(Path((plugin_id, name))) = path else {
        return Refusal::NoFile.respond(&app, json, None);
    };
    let granted = app
        .platform
        .registry
        .get(&plugin_id)
        .is_some_and(|p| p.context.grants.files.is_some());
    let found = match app.platform.runtime.files() {
        Some(store) if granted => store.get(&plugin_id, &name).await,
        _ => Ok(None),
    };
    let (info, data) = match found {
        Ok(Some(found)) => found,
        Ok(None) | Err(lutetia_services::files::FilesError::Invalid(_)) => {
            return Refusal::NoFile.respond(&app, json, None);
        }
        Err(e) => {
            tracing::error!(plugin = %plugin_id, error = %e, "cannot read a stored file");
            return Refusal::Unavailable.respond(&app, json, None);
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
    if content_length(headers).is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Unreadable),
    }
}

/// Headers a plugin may see: credentials and hop-by-hop headers stay with the host.
/// What a plugin's answer becomes, for one request.
struct Answer<'a> {
    app: &'a Arc<App>,
    plugin: &'a LoadedPlugin,
    json: bool,
    request_id: &'a str,
}

/// Why a page could not be rendered.
enum PageError {
    Refused(sanitize::PageRefused),
    Layout(LayoutError),
    Worker,
}

impl Answer<'_> {
    /// What the operator granted that widens the header allow-list.
    fn policy(&self) -> headers::ResponsePolicy<'_> {
        let capabilities = &self.plugin.manifest.capabilities;
        let granted = |c: Capability| self.plugin.granted.contains(&c);
        headers::ResponsePolicy {
            cors: if granted(Capability::Cors) {
                &capabilities.cors
            } else {
                &[]
            },
            redirect_origins: if granted(Capability::RedirectOrigins) {
                &capabilities.redirect_origins
            } else {
                &[]
            },
        }
    }

    /// The 502 page for an answer the site cannot send, counted against the plugin.
    fn refused(&self, reason: &str) -> HttpResponse {
        let plugin = &self.plugin.context.id;
        let refused_answers = self.app.http.charge(plugin);
        self.app.platform.runtime.penalize(self.plugin);
        tracing::error!(%plugin, reason, refused_answers, "plugin answer refused");
        Refusal::InvalidAnswer.respond(self.app, self.json, Some(self.request_id))
    }

    /// The plugin's headers through the allow-list; the dropped ones are logged. `None`
    /// when a redirect lost its location (the visitor would be stranded).
    fn headers(
        &self,
        status: StatusCode,
        given: Vec<(String, String)>,
        kind: headers::AnswerKind,
    ) -> Option<HeaderMap> {
        let (kept, dropped) = headers::filter_headers(given, kind, &self.policy());
        let mut location_refused = false;
        for d in &dropped {
            tracing::warn!(plugin = %self.plugin.context.id, header = %d.name, reason = d.reason, "plugin header dropped");
            location_refused |= d.name.eq_ignore_ascii_case("location");
        }
        (!(location_refused && status.is_redirection())).then_some(kept)
    }

    fn response(&self, response: Response, head: bool) -> HttpResponse {
        let status = match headers::final_status(response.status) {
            Ok(status) => status,
            Err(e) => return self.refused(&e.to_string()),
        };
        if response.body.len() > self.app.platform.settings.limits.max_response_bytes {
            return self.refused(&format!(
                "response of {} bytes, over limits.max-response-bytes",
                response.body.len()
            ));
        }
        let Some(mut kept) = self.headers(status, response.headers, headers::AnswerKind::Response) else {
            return self.refused("redirect to a location that is not allowed");
        };
        kept.entry(header::CONTENT_TYPE)
            .or_insert(HeaderValue::from_static("application/octet-stream"));
        // A plugin must not make the browser guess a type (and run a script it did not
        // mean), and a raw response is never a document allowed to run scripts or post
        // forms off-site.
        security_headers(&mut kept, RAW_RESPONSE_CSP);
        let body = if head {
            Body::empty()
        } else {
            Body::from(response.body)
        };
        let mut http = HttpResponse::new(body);
        *http.status_mut() = status;
        *http.headers_mut() = kept;
        http
    }

    async fn page(&self, page: Page) -> HttpResponse {
        let status = match headers::final_status(page.status) {
            Ok(status) => status,
            Err(e) => return self.refused(&e.to_string()),
        };
        let settings = &self.app.platform.settings;
        let max = settings
            .http
            .max_page_bytes
            .min(settings.limits.max_response_bytes);
        let size = page.body.len() + page.title.len();
        if size > max {
            return self.refused(&format!(
                "page of {size} bytes, over the {max} bytes a page may have"
            ));
        }
        let Some(kept) = self.headers(status, page.headers, headers::AnswerKind::Page) else {
            return self.refused("redirect to a location that is not allowed");
        };
        let limits = sanitize::PageLimits {
            max_depth: settings.http.max_page_depth,
            max_attributes: settings.http.max_page_attributes,
        };
        let plugin = self.plugin.context.id.clone();
        let runtime = &self.app.platform.runtime;
        let rendered = if runtime.is_expensive(self.plugin) {
            // The plugin's calls or pages have been expensive: its page is cleaned at the
            // background lane's low priority, like its calls, and charged to it.
            let app = self.app.clone();
            runtime
                .background_work(self.plugin, move || {
                    render_page(&app, &plugin, &page.title, &page.body, limits)
                })
                .await
                .unwrap_or(Err(PageError::Worker))
        } else if size >= settings.http.offload_page_bytes {
            // Cleaning is CPU work proportional to the page: on a blocking thread, a
            // bounded number at once, so connection threads keep serving meanwhile.
            match self.app.http.pages.clone().acquire_owned().await {
                Ok(permit) => {
                    let app = self.app.clone();
                    let timed = tokio::task::spawn_blocking(move || {
                        let _permit = permit;
                        lutetia_runtime::cpu_time_of(|| {
                            render_page(&app, &plugin, &page.title, &page.body, limits)
                        })
                    })
                    .await;
                    match timed {
                        Ok((rendered, used)) => {
                            runtime.charge(self.plugin, used);
                            rendered
                        }
                        Err(_) => Err(PageError::Worker),
                    }
                }
                Err(_) => Err(PageError::Worker),
            }
        } else {
            let (rendered, used) = lutetia_runtime::cpu_time_of(|| {
                render_page(self.app, &plugin, &page.title, &page.body, limits)
            });
            runtime.charge(self.plugin, used);
            rendered
        };
        match rendered {
            Ok(html) => {
                let mut response = html_response(status, html);
                // The allow-list keeps a page's type and the security headers the host's.
                response.headers_mut().extend(kept);
                response
            }
            Err(PageError::Refused(why)) => self.refused(&format!("page refused: {why}")),
            Err(PageError::Layout(e)) => layout_failure(&e),
            Err(PageError::Worker) => {
                tracing::error!("the page worker failed");
                Refusal::InvalidAnswer.respond(self.app, self.json, Some(self.request_id))
            }
        }
    }
}

/// Cleans a plugin's page within its budget and wraps it in the layout.
fn render_page(
    app: &App,
    plugin: &str,
    title: &str,
    body: &str,
    limits: sanitize::PageLimits,
) -> Result<String, PageError> {
    let clean = sanitize::bounded_fragment(body, limits).map_err(PageError::Refused)?;
    app.layout
        .page(&app.site_nav(), plugin, title, &clean)
        .map_err(PageError::Layout)
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
/// Content-Security-Policy of raw plugin responses: no scripts, sandboxed, forms post to
/// the site only.
const RAW_RESPONSE_CSP: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; \
                                form-action 'self'; base-uri 'none'; frame-ancestors 'self'; \
                                sandbox allow-forms allow-same-origin";

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
    fn the_wit_request_is_what_the_policy_forwards_and_the_body() {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/p/demo/a%2Fb/c?x=%20y&z")
            .header("cookie", "s=1")
            .header("x-test", "1")
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        let wit = wit_request(&parts, b"body".to_vec(), "demo", "r-1");
        assert_eq!(
            (wit.method.as_str(), wit.path.as_str(), wit.query.as_str()),
            ("POST", "/a%2Fb/c", "x=%20y&z")
        );
        assert_eq!(
            (wit.mount.as_str(), wit.locale.as_str()),
            ("/p/demo", DEFAULT_LOCALE)
        );
        assert_eq!(
            (wit.body.as_slice(), wit.request_id.as_str()),
            (&b"body"[..], "r-1")
        );
        assert!(wit.user.is_none());
        assert!(wit.headers.iter().all(|(n, _)| n != "cookie"));
        assert!(wit.headers.contains(&("x-test".to_owned(), "1".to_owned())));
    }

    #[test]
    fn slow_bodies_get_time_in_proportion_to_their_length() {
        let http = HttpSettings::default();
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("655360"));
        assert_eq!(body_deadline(&http, &h, 1 << 20), Duration::from_millis(20_000));
        // Without a declared length the route's limit is what may come.
        assert_eq!(
            body_deadline(&http, &HeaderMap::new(), 65_536),
            Duration::from_millis(11_000)
        );
        let none = HttpSettings {
            min_body_bytes_per_second: 0,
            ..HttpSettings::default()
        };
        assert_eq!(body_deadline(&none, &h, 1 << 20), Duration::from_millis(10_000));
    }

    #[test]
    fn request_ids_are_unique() {
        assert_ne!(next_request_id(), next_request_id());
    }
}
