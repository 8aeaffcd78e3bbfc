//! What a plugin receives of a visitor's request (`lutetia_policy::request::forwarded`,
//! `plugin_id_in_path`): any method, URI and headers that the `http` crate accepts,
//! as a client can send them. Credentials and hop-by-hop headers never reach the plugin;
//! the path is the part below the mount; the locale is a short tag; a plugin id found in a
//! path is a valid id that names the same plugin when put back in a path.
//!
//! Input: the first line is `METHOD URI`, each later line `name: value` up to an empty
//! line; what follows an empty line (a body) is ignored: the body reaches the plugin
//! unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lutetia_policy::http::Request;
use lutetia_policy::request::{forwarded, plugin_id_in_path};

/// Request headers a plugin must never see: the visitor's credentials and what belongs to
/// the connection.
const PRIVATE: &[&str] = &[
    "cookie",
    "authorization",
    "proxy-authorization",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let head = text.split_once("\n\n").map_or(&*text, |(head, _body)| head);
    let mut lines = head.split('\n');
    let request_line = lines.next().unwrap_or("");
    let (method, uri) = request_line.split_once(' ').unwrap_or(("GET", request_line));
    let mut builder = Request::builder().method(method).uri(uri);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            builder = builder.header(name, value.trim_start());
        }
    }
    let Ok(request) = builder.body(()) else {
        return;
    };
    let (parts, ()) = request.into_parts();
    let path = parts.uri.path().to_owned();

    if let Some(id) = plugin_id_in_path(&path) {
        assert!(
            !id.is_empty()
                && id.len() <= 63
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            "plugin id {id:?} from path {path:?}"
        );
        assert_eq!(
            plugin_id_in_path(&format!("/p/{id}/x")).as_deref(),
            Some(id.as_str())
        );
    }

    let seen = forwarded(&parts, "fuzz", "fr");
    assert_eq!(seen.method, parts.method.as_str());
    assert_eq!(seen.mount, "/p/fuzz");
    assert!(seen.path.starts_with('/'), "path {:?} from {path:?}", seen.path);
    assert!(
        path.ends_with(&seen.path) || seen.path == "/",
        "path {:?} is not below {path:?}",
        seen.path
    );
    assert_eq!(seen.query, parts.uri.query().unwrap_or(""));
    for (name, value) in &seen.headers {
        assert!(!PRIVATE.contains(&name.as_str()), "{name} reached the plugin");
        assert!(
            parts
                .headers
                .get_all(name.as_str())
                .iter()
                .any(|v| v.as_bytes() == value.as_bytes()),
            "{name}: {value} was not in the request"
        );
    }
    let forwardable = parts
        .headers
        .iter()
        .filter(|(n, v)| !PRIVATE.contains(&n.as_str()) && v.to_str().is_ok())
        .count();
    assert_eq!(
        seen.headers.len(),
        forwardable,
        "every other readable header is forwarded"
    );
    assert!(
        !seen.locale.is_empty()
            && seen.locale.len() <= 35
            && seen.locale.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
        "locale {:?}",
        seen.locale
    );
});
