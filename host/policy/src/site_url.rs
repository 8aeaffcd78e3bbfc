//! The one URL rule shared by the header filter (`Location`) and the sanitiser (form
//! actions).

/// Whether `value` is a reference that stays on the site: a path (`/a/b`, not `//host`),
/// a relative reference (`thanks`, `../x`, `?page=2`, `#top`) or empty; never a scheme,
/// never a backslash (browsers read `/\host` as `//host`), never a control character or
/// a space (browsers strip them, so `/\t/host` would become `//host`).
pub fn is_site_relative(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.iter().any(|&b| b <= b' ' || b == 0x7f || b == b'\\') {
        return false;
    }
    match bytes {
        [b'/', b'/', ..] => false,
        [b'/', ..] => true,
        _ => {
            // A scheme is whatever comes before a `:` that precedes any `/`, `?` or `#`.
            let head = value.split(['/', '?', '#']).next().unwrap_or("");
            !head.contains(':')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_site_relative;

    #[test]
    fn only_references_that_stay_on_the_site() {
        for ok in [
            "/a/b",
            "thanks",
            "../x?y=1",
            "?page=2",
            "#top",
            "",
            "/p/d\u{e9}mo/envoyer",
        ] {
            assert!(is_site_relative(ok), "{ok:?}");
        }
        for bad in [
            "//evil",
            "/\\evil",
            "\\\\evil",
            "https://evil",
            "javascript:x",
            " /x",
            "/a\tb",
            "/a\u{7f}",
        ] {
            assert!(!is_site_relative(bad), "{bad:?}");
        }
    }
}
