//! What the operator sees of the traffic: every request's id, HTTP series and access log
//! line ([`track`], the outermost layer of the router), and the `/metrics` endpoint
//! ([`metrics`]). Labels and log fields come from the route template (axum's
//! [`MatchedPath`]) and the plugins served, never from the raw path or query.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use lutetia_services::metrics::{CONTENT_TYPE, PluginLoad, RouteKind};

use crate::app::App;

/// The id of a request, made by [`track`] before any route sees it; error pages and the
/// plugin's `request-id` show the same one as the access log.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(String);

/// The request id [`track`] gave `request`, or a new one (a router without that layer).
pub(crate) fn request_id(request: &HttpRequest) -> String {
    request
        .extensions()
        .get::<RequestId>()
        .map_or_else(crate::next_request_id, |id| id.0.clone())
}

/// The kind of route a template belongs to; `None`: no route matched.
pub(crate) fn route_kind(template: Option<&str>) -> RouteKind {
    match template {
        None => RouteKind::Unmatched,
        Some(t) if t.starts_with("/p/") => RouteKind::Plugin,
        Some(t) if t.starts_with("/api/admin/") => RouteKind::Admin,
        Some("/metrics") => RouteKind::Metrics,
        Some(_) => RouteKind::Host,
    }
}

/// Gives the request its id, then counts its answer (`lutetia_http_requests_total`, the
/// duration until the answer's head) and, with `http.access-log`, writes one `info` line
/// of target `access`: method, route template, status, duration, plugin, request id.
pub(crate) async fn track(
    State(app): State<Arc<App>>,
    mut request: HttpRequest,
    next: axum::middleware::Next,
) -> HttpResponse {
    let started = Instant::now();
    let id = crate::next_request_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let kind = route_kind(route.as_deref());
    // Only the id of a plugin this host serves: a made-up `/p/{id}` logs none.
    let plugin = match kind {
        RouteKind::Plugin => lutetia_policy::request::plugin_id_in_path(request.uri().path())
            .filter(|id| app.platform.registry.get(id).is_some()),
        _ => None,
    };
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    app.platform.runtime.metrics().http_request(kind, status, elapsed);
    if app.platform.settings.http.access_log {
        tracing::info!(
            target: "access",
            method = %method,
            route = %route.as_deref().unwrap_or("-"),
            status,
            duration_ms = elapsed.as_micros() as f64 / 1000.0,
            plugin = %plugin.as_deref().unwrap_or("-"),
            request_id = %id,
            "request"
        );
    }
    response
}

/// `GET /metrics`: every series in the OpenMetrics text format. With
/// `metrics.require-admin-token` (the default) it needs the admin API's bearer token, and
/// answers like the admin API without it (401, JSON).
pub(crate) async fn metrics(State(app): State<Arc<App>>, headers: HeaderMap) -> HttpResponse {
    if app.platform.settings.metrics.require_admin_token
        && let Err(refused) = crate::admin::authorize(&app, &headers).await
    {
        return refused.into_response();
    }
    let loads: Vec<PluginLoad> = app
        .platform
        .registry
        .list()
        .iter()
        .map(|plugin| plugin.load())
        .collect();
    match app.platform.runtime.metrics().render(&loads) {
        Ok(text) => (
            [
                (header::CONTENT_TYPE, CONTENT_TYPE),
                (header::CACHE_CONTROL, "no-store"),
            ],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_kinds_come_from_templates() {
        assert_eq!(route_kind(None), RouteKind::Unmatched);
        assert_eq!(route_kind(Some("/p/{plugin}/{*rest}")), RouteKind::Plugin);
        assert_eq!(route_kind(Some("/p/{plugin}")), RouteKind::Plugin);
        assert_eq!(route_kind(Some("/api/admin/plugins/{id}")), RouteKind::Admin);
        assert_eq!(route_kind(Some("/metrics")), RouteKind::Metrics);
        assert_eq!(route_kind(Some("/healthz")), RouteKind::Host);
        assert_eq!(route_kind(Some("/")), RouteKind::Host);
    }
}
