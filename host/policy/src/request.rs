//! What a plugin sees of a visitor's request, and which plugin a request path names.
//!
//! A plugin receives the method, the path below its mount and the raw query (both still
//! percent-encoded, so that `a%2Fb` stays one segment), the headers without the visitor's
//! credentials and without the connection's own headers, and a short language tag. The
//! web layer adds the body and the signed-in user.

use http::request::Parts;
use http::{HeaderMap, HeaderName, header};

/// What a plugin mounted at `/p/{id}` receives of an HTTP request, but for the body and
/// the user (the WIT `request` record is built from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The method, as sent (`GET`, `POST`, an extension method...).
    pub method: String,
    /// The path below the mount, still percent-encoded; `/` at the mount itself.
    pub path: String,
    /// The raw query, without `?`; empty when there is none.
    pub query: String,
    /// The headers a plugin may see, in the order sent (see [`is_private`]).
    pub headers: Vec<(String, String)>,
    /// The visitor's first language (`Accept-Language`) if it looks like a BCP 47 tag,
    /// else `default_locale`.
    pub locale: String,
    /// Where the plugin is mounted: `/p/{id}`.
    pub mount: String,
}

/// What the plugin `plugin_id` receives of the request `parts`; `default_locale` is the
/// site's language, for a visitor whose browser names none that can be used.
pub fn forwarded(parts: &Parts, plugin_id: &str, default_locale: &str) -> Forwarded {
    Forwarded {
        method: parts.method.as_str().to_owned(),
        path: path_below_mount(parts.uri.path()),
        query: parts.uri.query().unwrap_or("").to_owned(),
        headers: forwarded_headers(&parts.headers),
        locale: preferred_locale(&parts.headers)
            .unwrap_or(default_locale)
            .to_owned(),
        mount: format!("/p/{plugin_id}"),
    }
}

/// The plugin id of a `/p/{id}...` path, percent-decoded, if it is a valid plugin id.
pub fn plugin_id_in_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/p/")?;
    let segment = rest.split('/').next()?;
    let id = String::from_utf8(percent_decode(segment.as_bytes())).ok()?;
    lutetia_model::manifest::is_valid_id(&id).then_some(id)
}

/// Whether a request header stays with the host: the visitor's credentials and the
/// headers of the connection (hop-by-hop).
pub fn is_private(name: &HeaderName) -> bool {
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

/// `%XX` sequences decoded; anything else (an invalid `%` included) kept as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let decoded = match input[i..] {
            [b'%', h, l, ..] => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match decoded {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(input[i]);
                i += 1;
            }
        }
    }
    out
}

/// The path below `/p/{plugin}`, as the client sent it (still percent-encoded).
fn path_below_mount(raw: &str) -> String {
    let below = raw
        .strip_prefix("/p/")
        .and_then(|rest| rest.find('/').map(|slash| &rest[slash..]))
        .unwrap_or("/");
    below.to_owned()
}

fn forwarded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(name, _)| !is_private(name))
        .filter_map(|(name, value)| Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned())))
        .collect()
}

/// The first language of `Accept-Language`, if it looks like a BCP 47 tag.
fn preferred_locale(headers: &HeaderMap) -> Option<&str> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn locale_is_the_first_valid_tag() {
        let mut h = HeaderMap::new();
        assert_eq!(preferred_locale(&h), None);
        h.insert(
            header::ACCEPT_LANGUAGE,
            HeaderValue::from_static("fr-FR,fr;q=0.9,en;q=0.8"),
        );
        assert_eq!(preferred_locale(&h), Some("fr-FR"));
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("<script>"));
        assert_eq!(preferred_locale(&h), None);
        h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("*"));
        assert_eq!(preferred_locale(&h), None);
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
    fn plugin_ids_come_from_the_path_decoded_and_checked() {
        assert_eq!(plugin_id_in_path("/p/hello/a/b").as_deref(), Some("hello"));
        assert_eq!(plugin_id_in_path("/p/hello").as_deref(), Some("hello"));
        assert_eq!(plugin_id_in_path("/p/%68ello/").as_deref(), Some("hello"));
        for bad in [
            "/p/%0A/",
            "/p/%0a",
            "/p/he%00llo/",
            "/p/%FF/",
            "/p/%ZZ/",
            "/p/Hello/",
            "/p//x",
            "/x/hello/",
            "/p/a%2Fb/",
        ] {
            assert_eq!(plugin_id_in_path(bad), None, "{bad}");
        }
        assert_eq!(percent_decode(b"a%20b%zz%4"), b"a b%zz%4");
    }

    #[test]
    fn the_forwarded_request_keeps_the_raw_path_and_query() {
        let request = http::Request::builder()
            .method("POST")
            .uri("/p/demo/a%2Fb/c?x=%20y&z")
            .header("cookie", "s=1")
            .header("accept-language", "fr-CA,fr;q=0.8")
            .header("x-test", "1")
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        let seen = forwarded(&parts, "demo", "fr");
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str(), seen.query.as_str()),
            ("POST", "/a%2Fb/c", "x=%20y&z")
        );
        assert_eq!(seen.mount, "/p/demo");
        assert_eq!(seen.locale, "fr-CA");
        assert!(seen.headers.iter().all(|(n, _)| n != "cookie"));
        assert!(seen.headers.contains(&("x-test".to_owned(), "1".to_owned())));
    }

    #[test]
    fn without_a_usable_language_the_site_default_applies() {
        let request = http::Request::builder()
            .uri("/p/demo/")
            .body(())
            .expect("request");
        let (parts, ()) = request.into_parts();
        assert_eq!(forwarded(&parts, "demo", "fr").locale, "fr");
        assert_eq!(forwarded(&parts, "demo", "en").locale, "en");
    }

    #[test]
    fn plugin_paths_stay_encoded() {
        assert_eq!(path_below_mount("/p/hello/"), "/");
        assert_eq!(path_below_mount("/p/hello/a%2Fb/c%20d"), "/a%2Fb/c%20d");
        assert_eq!(path_below_mount("/p/hello"), "/");
    }
}
