//! The limits of the SDK's request-body parsers, the same in the Rust, Python and
//! JavaScript SDKs (`docs/plugin-guide.md`, "Request bodies and their limits").
//!
//! A body over a limit is refused with [`Error::Invalid`](crate::Error::Invalid), whose
//! message names the limit, before it is decoded: an interpreter's parser (Python's
//! `json`, a recursive walk over the value) cannot then run out of stack or time on it,
//! and a plugin answers the same in every language.
//!
//! ```
//! use lutetia_sdk::{limits, Error, Request};
//!
//! let deep = "[".repeat(limits::MAX_JSON_DEPTH + 1) + &"]".repeat(limits::MAX_JSON_DEPTH + 1);
//! match Request::new("POST", "/").with_body(deep).json::<lutetia_sdk::serde_json::Value>() {
//!     Err(Error::Invalid(why)) => assert!(why.contains("64 levels"), "{why}"),
//!     other => panic!("{other:?}"),
//! }
//! ```

/// The deepest nesting of arrays and objects a JSON body or event payload may have: `[]` is
/// depth 1, `{"a": [1]}` depth 2.
///
/// Below serde_json's own recursion limit (128) and below what the Python and JavaScript
/// engines handle on a plugin's stack, with room left for plugin code that walks the value
/// recursively.
pub const MAX_JSON_DEPTH: usize = 64;

/// The most fields an `application/x-www-form-urlencoded` body may have (empty pairs, as
/// in `a=1&&b=2`, do not count). The same bound as Django's and PHP's defaults: it keeps
/// a dictionary of the fields cheap to build even when an attacker picks colliding names.
pub const MAX_FORM_FIELDS: usize = 1000;

/// The most parts a `multipart/form-data` body may have.
pub const MAX_MULTIPART_PARTS: usize = 1000;

/// Whether `json` nests arrays and objects deeper than [`MAX_JSON_DEPTH`], counting the
/// brackets outside strings in one pass. Text that is not JSON gives an answer too (the
/// parser then reports what is wrong): the scan never fails and never recurses.
pub(crate) fn json_too_deep(json: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in json {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The error for a JSON text nested deeper than [`MAX_JSON_DEPTH`]; `what` says whose.
pub(crate) fn too_deep(what: &str) -> crate::Error {
    crate::Error::Invalid(format!(
        "{what} is JSON nested deeper than {MAX_JSON_DEPTH} levels (the SDK's limit)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        "[".repeat(depth) + &"]".repeat(depth)
    }

    #[test]
    fn depth_is_counted_outside_strings() {
        assert!(!json_too_deep(nested(MAX_JSON_DEPTH).as_bytes()));
        assert!(json_too_deep(nested(MAX_JSON_DEPTH + 1).as_bytes()));
        // Objects and arrays count alike.
        let mixed = "{\"a\":[".repeat(33) + &"]}".repeat(33);
        assert!(json_too_deep(mixed.as_bytes()));
        // Brackets inside strings, escaped quotes included, are text.
        let text = format!("[\"{}\\\"{}\"]", "[".repeat(500), "{".repeat(500));
        assert!(!json_too_deep(text.as_bytes()));
        // Siblings do not add up.
        let wide = nested(40).repeat(1000);
        assert!(!json_too_deep(wide.as_bytes()));
        // Unclosed brackets (a truncated body) are depth too.
        assert!(json_too_deep("[".repeat(2600).as_bytes()));
        assert!(!json_too_deep(b"]]]]"));
        assert!(!json_too_deep(b""));
    }
}
