//! What a plugin's answer may carry (`lutetia_policy::headers`): any status and any header list, as a
//! plugin returns them. A status that is kept is a final HTTP status; a header that is kept
//! is on the allow-list, never one that acts on the whole origin; the count and size bounds
//! hold; and a `Location` that is kept, resolved by a browser's URL parser (the `url` crate,
//! WHATWG), lands on the site or on an origin the operator granted.
//!
//! Input: the first line is the status, each later line `name: value`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lutetia_policy::headers::{
    AnswerKind, MAX_PLUGIN_HEADER_BYTES, MAX_PLUGIN_HEADERS, ResponsePolicy, filter_headers, final_status,
    location_allowed,
};

/// The page that answered, as the browser knows it.
const BASE: &str = "https://site.example/p/fuzz/page?x=1";
/// The origin an operator granted for redirects and CORS in the second policy.
const GRANTED: &str = "https://pay.example.org";

/// Headers that act on the whole origin, the connection or the proxies: never a plugin's.
const HOST_OWNED: &[&str] = &[
    "set-cookie",
    "set-cookie2",
    "strict-transport-security",
    "content-security-policy",
    "content-security-policy-report-only",
    "x-frame-options",
    "x-content-type-options",
    "x-xss-protection",
    "permissions-policy",
    "feature-policy",
    "referrer-policy",
    "cross-origin-opener-policy",
    "cross-origin-embedder-policy",
    "cross-origin-resource-policy",
    "clear-site-data",
    "refresh",
    "server",
    "date",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "upgrade",
    "trailer",
    "alt-svc",
    "public-key-pins",
    "www-authenticate",
    "proxy-authenticate",
    "x-sendfile",
    "x-accel-redirect",
    "x-request-id",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let status_line = lines.next().unwrap_or("");
    let headers: Vec<(String, String)> = lines
        .map(|line| match line.split_once(':') {
            Some((name, value)) => (name.to_owned(), value.trim_start().to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect();

    if let Ok(status) = status_line.trim().parse::<u16>() {
        if let Ok(kept) = final_status(status) {
            assert!(
                (200..=599).contains(&kept.as_u16()),
                "status {status} kept as {kept}"
            );
            assert_eq!(kept.as_u16(), status);
        } else {
            assert!(!(200..=599).contains(&status), "final status {status} refused");
        }
    }

    let none = ResponsePolicy::default();
    let granted = [GRANTED.to_owned()];
    let widened = ResponsePolicy {
        cors: &granted,
        redirect_origins: &granted,
    };
    for (policy, allowed_origins) in [(&none, &[][..]), (&widened, &granted[..])] {
        for kind in [AnswerKind::Response, AnswerKind::Page] {
            let (kept, dropped) = filter_headers(headers.clone(), kind, policy);
            let vary_added = usize::from(
                kept.get("access-control-allow-origin")
                    .is_some_and(|v| v.as_bytes() != b"*"),
            );
            assert_eq!(
                kept.len() + dropped.len(),
                headers.len() + vary_added,
                "every header is kept or dropped, once"
            );
            assert!(kept.len() <= MAX_PLUGIN_HEADERS + vary_added);
            let bytes: usize = kept.iter().map(|(n, v)| n.as_str().len() + v.len()).sum();
            assert!(
                bytes <= MAX_PLUGIN_HEADER_BYTES + 16,
                "{bytes} bytes of headers kept"
            );
            for (name, value) in &kept {
                let name = name.as_str();
                assert!(!HOST_OWNED.contains(&name), "host-owned header {name} kept");
                assert!(
                    !name.starts_with("x-forwarded-") && !name.starts_with("x-accel-"),
                    "{name} kept"
                );
                if name.starts_with("access-control-") {
                    assert!(!policy.cors.is_empty(), "{name} kept without the cors capability");
                }
                if kind == AnswerKind::Page {
                    assert!(
                        name != "content-type" && name != "content-disposition",
                        "{name} kept on a page"
                    );
                }
                if name == "location" {
                    // A plugin's value was a `str`; a browser reads the bytes as UTF-8 too.
                    let value =
                        std::str::from_utf8(value.as_bytes()).expect("a kept value is the plugin's text");
                    assert!(location_allowed(value, policy.redirect_origins));
                    lands_on_site_or_granted(value, allowed_origins);
                }
            }
        }
    }
});

/// Resolves `location` against the page the way a browser does and checks the origin.
fn lands_on_site_or_granted(location: &str, granted: &[String]) {
    let base = url::Url::parse(BASE).expect("the base is a URL");
    let Ok(target) = base.join(location) else {
        // A browser does not follow a location it cannot parse.
        return;
    };
    let origin = target.origin().ascii_serialization();
    let site = base.origin().ascii_serialization();
    let granted_origin = granted
        .iter()
        .any(|g| url::Url::parse(g).is_ok_and(|g| g.origin().ascii_serialization() == origin));
    assert!(
        origin == site || granted_origin,
        "location {location:?} sends the visitor to {origin}"
    );
}
