//! What a plugin's answer may carry: a status a browser reads as final, headers from an
//! allow-list, and redirects that keep the visitor on the site unless the operator
//! granted other origins.
//!
//! The allow-list is what describes *this* answer (type, caching, validators, language,
//! disposition, links, a plugin's own `x-` headers). Headers that act on the whole origin
//! or on the proxies in front of the host (cookies, security policies, framing, HSTS,
//! `x-forwarded-*`, `x-accel-redirect`, `x-sendfile`...) stay the host's; CORS headers
//! need the `cors` capability and name only the granted origins.

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};

pub use crate::site_url::is_site_relative;

/// Most headers kept from one answer; the rest are dropped.
pub const MAX_PLUGIN_HEADERS: usize = 64;
/// Most bytes (names and values) of the headers kept from one answer.
pub const MAX_PLUGIN_HEADER_BYTES: usize = 32 * 1024;

/// What the operator granted that widens the allow-list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponsePolicy<'a> {
    /// Origins that may read the answer cross-origin (`cors` capability); `"*"` for any.
    pub cors: &'a [String],
    /// Origins the plugin may redirect visitors to (`redirect-origins` capability).
    pub redirect_origins: &'a [String],
}

/// Which kind of answer the headers belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// A raw response, sent as the plugin built it.
    Response,
    /// A page wrapped in the site layout: its type and disposition are the host's.
    Page,
}

/// A header that was not kept, and why (for the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The header's name as the plugin gave it.
    pub name: String,
    /// Why it was dropped.
    pub reason: &'static str,
}

/// Why a status cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StatusRefused {
    /// Outside 100–599.
    #[error("status {0} is not an HTTP status (100-599)")]
    OutOfRange(u16),
    /// 1xx is informational: never the final answer.
    #[error("status {0} is informational and cannot be a final answer")]
    Informational(u16),
}

/// The status to send for a plugin's `status`.
pub fn final_status(status: u16) -> Result<StatusCode, StatusRefused> {
    if !(100..=599).contains(&status) {
        return Err(StatusRefused::OutOfRange(status));
    }
    if status < 200 {
        return Err(StatusRefused::Informational(status));
    }
    StatusCode::from_u16(status).map_err(|_| StatusRefused::OutOfRange(status))
}

/// `x-` headers that belong to the host or to the proxies in front of it.
fn is_host_owned_x(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "x-frame-options",
        "x-xss-protection",
        "x-content-type-options",
        "x-content-security-policy",
        "x-webkit-csp",
        "x-permitted-cross-domain-policies",
        "x-dns-prefetch-control",
        "x-download-options",
        "x-ua-compatible",
        "x-powered-by",
        "x-real-ip",
        "x-request-id",
        "x-sendfile",
        "x-original-url",
        "x-rewrite-url",
        "x-http-method-override",
    ];
    const PREFIXES: &[&str] = &[
        "x-forwarded-",
        "x-accel-",
        "x-envoy-",
        "x-lighttpd-",
        "x-litespeed-",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `scheme://host[:port]` of an absolute http(s) URL without user information, with the
/// host lower-cased and the port made explicit.
fn absolute_origin(value: &str) -> Option<(String, String, u16)> {
    if value.bytes().any(|b| b <= b' ' || b >= 0x7f || b == b'\\') {
        return None;
    }
    let (scheme, rest) = value.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().ok()?),
        None => (authority, default_port),
    };
    if host.is_empty() || host.starts_with('[') {
        return None;
    }
    Some((scheme, host.to_ascii_lowercase(), port))
}

/// Whether the granted origin (`https://pay.example.org`, `https://*.example.org:8443`)
/// covers `scheme://host:port`.
fn origin_covers(granted: &str, scheme: &str, host: &str, port: u16) -> bool {
    let Some((g_scheme, g_host, g_port)) = absolute_origin(granted) else {
        return false;
    };
    if g_scheme != scheme || g_port != port {
        return false;
    }
    match g_host.strip_prefix("*.") {
        Some(domain) => host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => g_host == host,
    }
}

/// Whether a plugin may send the visitor to `location`: on the site, or to a granted
/// origin.
pub fn location_allowed(location: &str, redirect_origins: &[String]) -> bool {
    if is_site_relative(location) {
        return true;
    }
    absolute_origin(location).is_some_and(|(scheme, host, port)| {
        redirect_origins
            .iter()
            .any(|granted| origin_covers(granted, &scheme, &host, port))
    })
}

/// `*` granted lets the plugin name any origin (or `*`); otherwise it names a granted one.
fn cors_origin_allowed(value: &str, cors: &[String]) -> bool {
    cors.iter()
        .any(|granted| granted == "*" || granted.eq_ignore_ascii_case(value.trim()))
}

/// Why the header `name` (lower case) with `value` may not be sent, if it may not.
fn refusal(name: &str, value: &str, kind: AnswerKind, policy: &ResponsePolicy<'_>) -> Option<&'static str> {
    match name {
        "cache-control" | "expires" | "etag" | "last-modified" | "content-language" | "vary" | "link"
        | "allow" | "retry-after" => None,
        "content-type" | "content-disposition" => {
            (kind == AnswerKind::Page).then_some("a page's type and disposition are the site's")
        }
        "location" => (!location_allowed(value, policy.redirect_origins))
            .then_some("redirects only to the site itself or to origins the operator granted"),
        "access-control-allow-origin" => {
            if policy.cors.is_empty() {
                Some("CORS headers need the `cors` capability")
            } else if !cors_origin_allowed(value, policy.cors) {
                Some("this origin was not granted for CORS")
            } else {
                None
            }
        }
        _ if name.starts_with("access-control-") => policy
            .cors
            .is_empty()
            .then_some("CORS headers need the `cors` capability"),
        _ if name.starts_with("x-") => is_host_owned_x(name).then_some("this header is the host's"),
        _ => Some("not on the allow-list of response headers"),
    }
}

/// Copies the headers a plugin may set into a map; the others are returned with the
/// reason they were dropped.
pub fn filter_headers(
    headers: Vec<(String, String)>,
    kind: AnswerKind,
    policy: &ResponsePolicy<'_>,
) -> (HeaderMap, Vec<Dropped>) {
    let mut kept = HeaderMap::new();
    let mut dropped = Vec::new();
    let mut bytes = 0;
    for (index, (name, value)) in headers.into_iter().enumerate() {
        bytes += name.len() + value.len();
        if index >= MAX_PLUGIN_HEADERS || bytes > MAX_PLUGIN_HEADER_BYTES {
            dropped.push(Dropped {
                name,
                reason: "too many headers, or too large",
            });
            continue;
        }
        let parsed = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        );
        let reason = match &parsed {
            (Ok(n), Ok(_)) => refusal(n.as_str(), &value, kind, policy),
            _ => Some("malformed name or value"),
        };
        match (reason, parsed) {
            (None, (Ok(n), Ok(v))) => {
                kept.append(n, v);
            }
            (reason, _) => dropped.push(Dropped {
                name,
                reason: reason.unwrap_or("malformed name or value"),
            }),
        }
    }
    // A CORS answer for one origin differs by origin: caches must know.
    let specific_origin = kept
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_some_and(|v| v.as_bytes() != b"*");
    if specific_origin {
        kept.append(header::VARY, HeaderValue::from_static("origin"));
    }
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(map: &HeaderMap) -> Vec<&str> {
        map.keys().map(HeaderName::as_str).collect()
    }

    #[test]
    fn statuses_are_final_http_statuses() {
        assert_eq!(final_status(200), Ok(StatusCode::OK));
        assert_eq!(final_status(599).map(|s| s.as_u16()), Ok(599));
        assert_eq!(final_status(99), Err(StatusRefused::OutOfRange(99)));
        assert_eq!(final_status(600), Err(StatusRefused::OutOfRange(600)));
        assert_eq!(final_status(0), Err(StatusRefused::OutOfRange(0)));
        assert_eq!(final_status(101), Err(StatusRefused::Informational(101)));
        assert_eq!(final_status(100), Err(StatusRefused::Informational(100)));
    }

    #[test]
    fn only_allowed_headers_pass() {
        let given = [
            ("Content-Type", "text/csv"),
            ("cache-control", "no-store"),
            ("ETag", "\"1\""),
            ("x-total-count", "3"),
            ("set-cookie", "a=b"),
            ("strict-transport-security", "max-age=1"),
            ("x-frame-options", "ALLOW"),
            ("x-forwarded-host", "evil.example"),
            ("x-accel-redirect", "/internal/secret"),
            ("refresh", "0; url=https://evil.example"),
            ("access-control-allow-origin", "*"),
            ("bad name", "1"),
            ("x-bad-value", "a\nb"),
        ]
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .to_vec();
        let (kept, dropped) = filter_headers(given, AnswerKind::Response, &ResponsePolicy::default());
        assert_eq!(
            names(&kept),
            ["content-type", "cache-control", "etag", "x-total-count"]
        );
        assert_eq!(dropped.len(), 9, "{dropped:?}");
        let (kept, _) = filter_headers(
            vec![
                ("content-type".into(), "text/plain".into()),
                ("vary".into(), "accept".into()),
            ],
            AnswerKind::Page,
            &ResponsePolicy::default(),
        );
        assert_eq!(names(&kept), ["vary"], "a page's type is the host's");
    }

    #[test]
    fn too_many_or_too_large_headers_are_cut() {
        let many = (0..100).map(|i| (format!("x-h{i}"), "1".to_owned())).collect();
        let (kept, dropped) = filter_headers(many, AnswerKind::Response, &ResponsePolicy::default());
        assert_eq!(
            (kept.len(), dropped.len()),
            (MAX_PLUGIN_HEADERS, 100 - MAX_PLUGIN_HEADERS)
        );
        let large = vec![
            ("x-a".to_owned(), "a".repeat(20_000)),
            ("x-b".to_owned(), "b".repeat(20_000)),
        ];
        let (kept, dropped) = filter_headers(large, AnswerKind::Response, &ResponsePolicy::default());
        assert_eq!((kept.len(), dropped.len()), (1, 1));
    }

    #[test]
    fn cors_needs_a_grant_and_a_granted_origin() {
        let granted = vec!["https://app.example.org".to_owned()];
        let policy = ResponsePolicy {
            cors: &granted,
            redirect_origins: &[],
        };
        let cors = |origin: &str| {
            filter_headers(
                vec![
                    ("access-control-allow-origin".into(), origin.into()),
                    ("access-control-allow-methods".into(), "GET".into()),
                ],
                AnswerKind::Response,
                &policy,
            )
            .0
        };
        let kept = cors("https://app.example.org");
        assert_eq!(kept["access-control-allow-origin"], "https://app.example.org");
        assert_eq!(kept["vary"], "origin");
        assert_eq!(
            names(&cors("https://evil.example")),
            ["access-control-allow-methods"]
        );
        assert_eq!(
            names(&cors("*")),
            ["access-control-allow-methods"],
            "`*` was not granted"
        );
        let any = vec!["*".to_owned()];
        let kept = filter_headers(
            vec![("access-control-allow-origin".into(), "*".into())],
            AnswerKind::Response,
            &ResponsePolicy {
                cors: &any,
                redirect_origins: &[],
            },
        )
        .0;
        assert_eq!(kept["access-control-allow-origin"], "*");
        assert!(kept.get("vary").is_none());
    }

    #[test]
    fn locations_stay_on_the_site_unless_granted() {
        for ok in [
            "/p/demo/thanks",
            "thanks",
            "../list?page=2",
            "?page=2",
            "#top",
            "",
            "/p/d%C3%A9mo/",
        ] {
            assert!(location_allowed(ok, &[]), "{ok:?}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "/\t/evil.example",
            " //evil.example",
            "/a\nb",
            "https://pay.example.org@evil.example/",
        ] {
            assert!(!location_allowed(bad, &[]), "{bad:?}");
        }
        let granted = vec![
            "https://pay.example.org".to_owned(),
            "https://*.maps.example.org:8443".to_owned(),
        ];
        for ok in [
            "https://pay.example.org/checkout?id=1",
            "HTTPS://PAY.example.org",
            "https://pay.example.org:443/x",
            "https://a.maps.example.org:8443/",
        ] {
            assert!(location_allowed(ok, &granted), "{ok:?}");
        }
        for bad in [
            "http://pay.example.org/",
            "https://pay.example.org:8443/",
            "https://evil.example/?https://pay.example.org",
            "https://pay.example.org.evil.example/",
            "https://pay.example.org@evil.example/",
            "https://maps.example.org:8443/",
            "https://xmaps.example.org:8443/",
        ] {
            assert!(!location_allowed(bad, &granted), "{bad:?}");
        }
    }
}
