//! The sanitiser of plugin pages on any HTML. Its output must be safe to put in the site's
//! layout: no script-capable element, no event-handler attribute, no `javascript:` (or other
//! script-running) URL; and it must be stable: cleaning it again changes nothing (if it did,
//! a browser re-parsing the output could build a tree the sanitiser never saw).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lutetia_policy::sanitize::fragment as sanitize_fragment;

/// Elements that run script or pull in active content.
const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "base", "link", "meta",
    "svg", "math", "template", "noscript",
];
/// Attributes that hold a URL the browser may follow or load.
const URL_ATTRIBUTES: &[&str] = &[
    "href",
    "src",
    "action",
    "formaction",
    "cite",
    "poster",
    "background",
    "longdesc",
    "srcset",
    "data",
    "xlink:href",
];
/// Schemes that run code or render attacker-built documents.
const SCRIPT_SCHEMES: &[&str] = &["javascript:", "vbscript:", "data:"];

fuzz_target!(|data: &[u8]| {
    let html = String::from_utf8_lossy(data);
    // A page that does not settle is refused, which is safe.
    let Ok(clean) = sanitize_fragment(&html) else {
        return;
    };
    if let Err(problem) = check_safe(&clean) {
        panic!("unsafe output: {problem}\n--- input\n{html}\n--- output\n{clean}");
    }
    // What is sent is a fixed point: the tree a browser builds from it is the one that
    // was checked.
    let again = sanitize_fragment(&clean).expect("the output of a pass that settled settles");
    assert_eq!(again, clean, "cleaning is not idempotent\n--- input\n{html}");
});

/// Walks the serialised output. html5ever escapes `<` in text and `"` in attribute values,
/// so every `<` opens a tag (or a comment) and every attribute value is double-quoted.
fn check_safe(html: &str) -> Result<(), String> {
    let lower = html.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut pos = 0;
    while let Some(offset) = lower[pos..].find('<') {
        pos += offset + 1;
        if lower[pos..].starts_with("!--") {
            return Err("a comment was kept".into());
        }
        if lower[pos..].starts_with('/') {
            continue;
        }
        let name_end = lower[pos..]
            .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
            .map_or(lower.len(), |n| pos + n);
        let name = &lower[pos..name_end];
        if FORBIDDEN_ELEMENTS.contains(&name) {
            return Err(format!("element <{name}> was kept"));
        }
        pos = name_end;
        // Attributes: ` name="value"` or ` name`, up to `>`.
        loop {
            while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
                pos += 1;
            }
            if pos >= bytes.len() || bytes[pos] == b'>' {
                break;
            }
            let attr_end = lower[pos..]
                .find(|c: char| c.is_ascii_whitespace() || c == '=' || c == '>')
                .map_or(lower.len(), |n| pos + n);
            let attr = &lower[pos..attr_end];
            pos = attr_end;
            if attr.starts_with("on") {
                return Err(format!("event handler attribute `{attr}` on <{name}>"));
            }
            if attr == "style" {
                return Err(format!("style attribute on <{name}>"));
            }
            if bytes.get(pos) == Some(&b'=') {
                if bytes.get(pos + 1) != Some(&b'"') {
                    return Err(format!("unquoted value of `{attr}` on <{name}>"));
                }
                let value_start = pos + 2;
                let value_end = lower[value_start..]
                    .find('"')
                    .map(|n| value_start + n)
                    .ok_or_else(|| format!("unterminated value of `{attr}`"))?;
                let value = &html[value_start..value_end];
                pos = value_end + 1;
                if URL_ATTRIBUTES.contains(&attr) {
                    let url = as_browser_reads_it(value);
                    if let Some(scheme) = SCRIPT_SCHEMES.iter().find(|s| url.contains(*s)) {
                        if url.starts_with(scheme) || attr == "srcset" {
                            return Err(format!("`{scheme}` URL in `{attr}` on <{name}>: {value}"));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// An attribute value as a browser's URL parser sees it: the serialiser's three entities
/// decoded, leading spaces and controls dropped, tabs and newlines removed, lower case.
fn as_browser_reads_it(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect::<String>()
        .to_ascii_lowercase()
}
