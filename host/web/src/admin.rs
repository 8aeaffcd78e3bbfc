//! The admin JSON API, `/api/admin/...`: the operator's plugin lifecycle over HTTP.
//!
//! Every route needs `Authorization: Bearer TOKEN` with the token created at the first
//! start (`admin-token` in the data folder). Errors are `{"error": code, "message": ...}`
//! with a precise 4xx status for anything the caller can fix; nothing is changed then.
//! After a successful change this host serves it at once (`Registry::sync`); the other
//! hosts follow within a second.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use lutetia_model::manifest::format_capabilities;
use lutetia_platform::lifecycle::{GrantRequest, Lifecycle, LifecycleError, Outcome, read_package};
use lutetia_runtime::LoadedPlugin;

/// Largest package accepted.
const MAX_PACKAGE_BYTES: usize = 64 * 1024 * 1024;

/// The admin routes, to merge into the site router. Every route requires the admin token,
/// checked before any extractor runs (so an unauthenticated upload is never read).
pub fn routes(app: Arc<App>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/admin/plugins", get(list).post(install))
        .route("/api/admin/plugins/inspect", post(inspect_package))
        .route("/api/admin/plugins/{id}", get(show).delete(remove))
        .route("/api/admin/plugins/{id}/upgrade", post(upgrade))
        .route("/api/admin/plugins/{id}/grant", post(grant))
        .route("/api/admin/plugins/{id}/rollback", post(rollback))
        .route("/api/admin/plugins/{id}/enable", post(enable))
        .route("/api/admin/plugins/{id}/disable", post(disable))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            read_package_body,
        ))
        .route_layer(axum::middleware::from_fn_with_state(app, require_admin))
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES))
}

/// Reads an authorised request's body before any handler: a declared length over
/// [`MAX_PACKAGE_BYTES`] is refused before anything is read, a longer body as soon as it
/// passes the limit, a body that does not arrive in time (`http.body-read-timeout-ms`
/// plus its length at `http.min-body-bytes-per-second`) with 408; all in the API's JSON.
async fn read_package_body(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        let mut refused = ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the {MAX_PACKAGE_BYTES} bytes a package may have"),
        )
        .into_response();
        // The rest of the body is still on the wire.
        refused
            .headers_mut()
            .insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        refused
    };
    if declared.is_some_and(|n| n > MAX_PACKAGE_BYTES as u64) {
        return too_large();
    }
    let deadline = super::body_deadline(&app.platform.settings.http, &parts.headers, MAX_PACKAGE_BYTES);
    let read = http_body_util::BodyExt::collect(http_body_util::Limited::new(body, MAX_PACKAGE_BYTES));
    let bytes = match tokio::time::timeout(deadline, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
        Ok(Err(_)) => {
            return ApiError(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "the body could not be read".into(),
            )
            .into_response();
        }
        Err(_) => {
            let mut refused = ApiError(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                "the body did not arrive in time".into(),
            )
            .into_response();
            refused
                .headers_mut()
                .insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
            return refused;
        }
    };
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(bytes),
    ))
    .await
}

/// Answers 401/503 unless the request carries a valid admin token.
async fn require_admin(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> HttpResponse {
    match authorize(&app, request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// An API error: status, stable code, message.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> HttpResponse {
        (self.0, Json(json!({ "error": self.1, "message": self.2 }))).into_response()
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        let status = match &e {
            LifecycleError::NotInstalled(_) => StatusCode::NOT_FOUND,
            LifecycleError::AlreadyInstalled(_)
            | LifecycleError::NotNewer { .. }
            | LifecycleError::NoPrevious(_)
            | LifecycleError::Conflict(_) => StatusCode::CONFLICT,
            LifecycleError::Runtime(_) | LifecycleError::MigrateFailed { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            e if e.is_client_error() => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %e, "admin operation failed");
            return ApiError(status, e.code(), "internal error; see the host's log".into());
        }
        ApiError(status, e.code(), e.to_string())
    }
}

/// Checks the bearer token.
pub(crate) async fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the admin token as `Authorization: Bearer TOKEN`".into(),
        ));
    };
    match app
        .platform
        .db
        .admin_token_exists(&lutetia_model::hash::sha256_hex(token.as_bytes()))
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown admin token".into(),
        )),
        Err(e) => {
            tracing::error!(error = %e, "cannot check the admin token");
            Err(ApiError(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "database unavailable".into(),
            ))
        }
    }
}

fn ops(app: &App) -> Lifecycle<'_> {
    Lifecycle {
        db: &app.platform.db,
        runtime: &app.platform.runtime,
        settings: &app.platform.settings,
    }
}

/// Serves the change here at once, then answers.
async fn applied(app: &App, loaded: Vec<LoadedPlugin>) {
    if let Err(e) = app
        .platform
        .registry
        .sync(
            &app.platform.runtime,
            &app.platform.db,
            &app.platform.settings,
            loaded,
        )
        .await
    {
        tracing::warn!(error = %e, "cannot apply the change now; the periodic re-check will");
    }
}

#[derive(Debug, Deserialize)]
struct GrantQuery {
    grant: Option<String>,
}

/// A query string that does not parse is a JSON 400 like every other refusal.
fn query<T>(parsed: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    parsed
        .map(|Query(q)| q)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

fn grant_request(query: &GrantQuery, required: bool) -> Result<GrantRequest, ApiError> {
    match &query.grant {
        Some(text) => {
            GrantRequest::parse(text).map_err(|m| ApiError(StatusCode::BAD_REQUEST, "invalid_grant", m))
        }
        None if required => Err(ApiError(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "give `?grant=all` or `?grant=kv,store,...`".into(),
        )),
        None => Ok(GrantRequest::Unspecified),
    }
}

fn outcome_json(o: &Outcome) -> Value {
    json!({
        "id": o.id,
        "version": o.version,
        "grants": o.grants.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "pending": o.pending.as_ref().map(|(version, missing)| json!({
            "version": version,
            "needs": missing.iter().map(|c| c.name()).collect::<Vec<_>>(),
        })),
    })
}

async fn finish(app: &App, outcome: Outcome, status: StatusCode) -> HttpResponse {
    let body = outcome_json(&outcome);
    applied(app, outcome.loaded.into_iter().collect()).await;
    (status, Json(body)).into_response()
}

/// What applies to a plugin on this host, and a warning for each ask beyond a ceiling:
/// `{"effective_limits": {...}, "warnings": [...]}`.
fn limits_json(app: &App, manifest: &lutetia_model::manifest::Manifest) -> Value {
    let effective = lutetia_model::limits::EffectiveLimits::of(manifest, &app.platform.settings.limits);
    json!({
        "effective_limits": {
            "memory_mb": effective.memory_mb,
            "timeout_ms": effective.timeout_ms,
            "quotas": effective.quotas,
        },
        "capped": effective.capped,
        "warnings": effective.warnings(),
    })
}

/// [`finish`] for an install or an upgrade: the answer also shows the limits that apply.
async fn finish_install(
    app: &App,
    outcome: Outcome,
    status: StatusCode,
    manifest: &lutetia_model::manifest::Manifest,
) -> HttpResponse {
    let mut body = outcome_json(&outcome);
    if let (Some(body), Value::Object(limits)) = (body.as_object_mut(), limits_json(app, manifest)) {
        body.extend(limits);
    }
    applied(app, outcome.loaded.into_iter().collect()).await;
    (status, Json(body)).into_response()
}

fn who() -> &'static str {
    "api:admin-token"
}

async fn list(State(app): State<Arc<App>>) -> Result<HttpResponse, ApiError> {
    let rows = app
        .platform
        .db
        .plugin_rows()
        .await
        .map_err(LifecycleError::from)?;
    let plugins: Vec<Value> = rows
        .iter()
        .map(|r| {
            let served = app
                .platform
                .registry
                .get(&r.id)
                .map(|p| p.context.version.clone());
            json!({
                "id": r.id,
                "version": r.version,
                "enabled": r.enabled,
                "served_version": served,
                "grants": if r.grants.is_empty() { Vec::new() } else { r.grants.split(',').collect() },
                "previous_version": r.previous_version,
                "pending_version": r.pending_version,
            })
        })
        .collect();
    Ok(Json(json!({ "plugins": plugins })).into_response())
}

async fn show(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<HttpResponse, ApiError> {
    let row = app
        .platform
        .db
        .plugin_row(&id)
        .await
        .map_err(LifecycleError::from)?
        .ok_or_else(|| ApiError::from(LifecycleError::NotInstalled(id.clone())))?;
    let versions = app
        .platform
        .db
        .plugin_versions(&id)
        .await
        .map_err(LifecycleError::from)?;
    let current = versions.iter().find(|v| v.version == row.version);
    Ok(Json(json!({
        "id": row.id,
        "version": row.version,
        "enabled": row.enabled,
        "served_version": app.platform.registry.get(&id).map(|p| p.context.version.clone()),
        "grants": if row.grants.is_empty() { Vec::new() } else { row.grants.split(',').collect() },
        "previous_version": row.previous_version,
        "pending_version": row.pending_version,
        "manifest": current.map(|v| v.manifest.clone()),
        "versions": versions.iter().map(|v| json!({
            "version": v.version,
            "sha256": v.sha256,
            "installed_by": v.installed_by,
            "installed_at": v.installed_at,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn inspect_package(State(app): State<Arc<App>>, body: Bytes) -> Result<HttpResponse, ApiError> {
    let info = read_package(&body)?;
    let interfaces = app
        .platform
        .runtime
        .interfaces(&info.manifest.id, body.to_vec())
        .await
        .map_err(LifecycleError::from)?;
    let mut body = json!({
        "manifest": info.manifest,
        "sha256": info.sha256,
        "requested": format_capabilities(&info.manifest.capabilities.requested()),
        "imports": interfaces.imports,
        "exports": interfaces.exports,
    });
    if let (Some(body), Value::Object(limits)) = (body.as_object_mut(), limits_json(&app, &info.manifest)) {
        body.extend(limits);
    }
    Ok(Json(body).into_response())
}

async fn install(
    State(app): State<Arc<App>>,
    parsed: Result<Query<GrantQuery>, QueryRejection>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let request = grant_request(&query(parsed)?, false)?;
    let info = read_package(&body)?;
    if app.platform.registry.is_from_folder(&info.manifest.id).await {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "already_installed",
            format!(
                "plugin `{}` is served from this host's plugins folder, which takes precedence: \
                 remove it from the folder first",
                info.manifest.id
            ),
        ));
    }
    let outcome = ops(&app).install(body.to_vec(), &request, who()).await?;
    Ok(finish_install(&app, outcome, StatusCode::CREATED, &info.manifest).await)
}

async fn upgrade(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    parsed: Result<Query<GrantQuery>, QueryRejection>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let request = grant_request(&query(parsed)?, false)?;
    let info = read_package(&body)?;
    if info.manifest.id != id {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "id_mismatch",
            format!("the package is plugin `{}`, not `{id}`", info.manifest.id),
        ));
    }
    let outcome = ops(&app).upgrade(body.to_vec(), &request, who()).await?;
    let status = if outcome.pending.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(finish_install(&app, outcome, status, &info.manifest).await)
}

async fn grant(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    parsed: Result<Query<GrantQuery>, QueryRejection>,
) -> Result<HttpResponse, ApiError> {
    let request = grant_request(&query(parsed)?, true)?;
    let outcome = ops(&app).grant(&id, &request, who()).await?;
    Ok(finish(&app, outcome, StatusCode::OK).await)
}

async fn rollback(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<HttpResponse, ApiError> {
    let outcome = ops(&app).rollback(&id, who()).await?;
    Ok(finish(&app, outcome, StatusCode::OK).await)
}

async fn set_enabled(app: &App, id: &str, enabled: bool) -> Result<HttpResponse, ApiError> {
    let row = ops(app).set_enabled(id, enabled, who()).await?;
    applied(app, Vec::new()).await;
    Ok(Json(json!({ "id": row.id, "version": row.version, "enabled": row.enabled })).into_response())
}

async fn enable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<HttpResponse, ApiError> {
    set_enabled(&app, &id, true).await
}

async fn disable(State(app): State<Arc<App>>, Path(id): Path<String>) -> Result<HttpResponse, ApiError> {
    set_enabled(&app, &id, false).await
}

#[derive(Debug, Deserialize)]
struct RemoveQuery {
    #[serde(rename = "purge-data", default)]
    purge_data: bool,
}

async fn remove(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    parsed: Result<Query<RemoveQuery>, QueryRejection>,
) -> Result<HttpResponse, ApiError> {
    let purge = query(parsed)?.purge_data;
    ops(&app).remove(&id, purge, who()).await?;
    applied(&app, Vec::new()).await;
    Ok(Json(json!({ "id": id, "removed": true, "purged": purge })).into_response())
}
