//! Percent-encoding helpers for query strings, form bodies and path segments.
//!
//! Decoding is lenient, as browsers are: a `%` not followed by two hex digits is kept as
//! is, and bytes that do not form valid UTF-8 after decoding become `U+FFFD`.

/// Decodes a percent-encoded string (`%41` becomes `A`); `+` is kept as is.
///
/// Use it for path segments; query strings and form bodies use [`parse_query`], which
/// also turns `+` into a space.
///
/// ```
/// use lutetia_sdk::url;
///
/// assert_eq!(url::decode("caf%C3%A9%20cr%C3%A8me"), "café crème");
/// assert_eq!(url::decode("a+b%2"), "a+b%2");
/// ```
pub fn decode(s: &str) -> String {
    decode_bytes(s.as_bytes(), false)
}

/// Decodes one component of a query string or form body: `+` becomes a space, then
/// percent-escapes are decoded.
///
/// ```
/// use lutetia_sdk::url;
///
/// assert_eq!(url::decode_query_component("Jean+Dupont%21"), "Jean Dupont!");
/// ```
pub fn decode_query_component(s: &str) -> String {
    decode_bytes(s.as_bytes(), true)
}

/// Percent-encodes a string for use as a path segment or query component: everything but
/// ASCII letters, digits and `-`, `.`, `_`, `~` is escaped.
///
/// ```
/// use lutetia_sdk::url;
///
/// assert_eq!(url::encode("café & co"), "caf%C3%A9%20%26%20co");
/// ```
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// Parses an `application/x-www-form-urlencoded` string (a query string or a form body)
/// into decoded `(name, value)` pairs, in order.
///
/// Pairs are separated by `&`; a pair without `=` has an empty value; empty pairs are
/// skipped; `+` means a space.
///
/// ```
/// use lutetia_sdk::url;
///
/// let pairs = url::parse_query("q=rue+de+Rivoli&page=2&debug");
/// assert_eq!(
///     pairs,
///     vec![
///         ("q".to_string(), "rue de Rivoli".to_string()),
///         ("page".to_string(), "2".to_string()),
///         ("debug".to_string(), String::new()),
///     ]
/// );
/// ```
pub fn parse_query(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_component(name), decode_query_component(value))
        })
        .collect()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_bytes(input: &[u8], plus_as_space: bool) -> String {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_value);
                let lo = input.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(decode("%41%42c"), "ABc");
        assert_eq!(decode("%e2%82%ac"), "€");
        assert_eq!(decode("100%25"), "100%");
        assert_eq!(decode(""), "");
    }

    #[test]
    fn keeps_malformed_escapes() {
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%zz%41"), "%zzA");
        assert_eq!(decode("50%+"), "50%+");
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        assert_eq!(decode("a%FFb"), "a\u{FFFD}b");
        assert_eq!(decode("%C3"), "\u{FFFD}");
    }

    #[test]
    fn plus_is_space_only_in_query_components() {
        assert_eq!(decode("a+b"), "a+b");
        assert_eq!(decode_query_component("a+b"), "a b");
        assert_eq!(decode_query_component("a%2Bb"), "a+b");
    }

    #[test]
    fn parses_queries() {
        assert_eq!(parse_query(""), pairs(&[]));
        assert_eq!(parse_query("a=1&b=2"), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(
            parse_query("a=1&&b=&c"),
            pairs(&[("a", "1"), ("b", ""), ("c", "")])
        );
        assert_eq!(parse_query("x=a=b"), pairs(&[("x", "a=b")]));
        assert_eq!(
            parse_query("na%6De=J%C3%A9r%C3%B4me+L."),
            pairs(&[("name", "Jérôme L.")])
        );
        assert_eq!(parse_query("t=1&t=2"), pairs(&[("t", "1"), ("t", "2")]));
        assert_eq!(parse_query("=v"), pairs(&[("", "v")]));
    }

    #[test]
    fn encode_round_trips() {
        for s in ["", "plain", "a b&c=d/e?f#g", "café ☕", "100%", "~-._"] {
            assert_eq!(decode(&encode(s)), s);
            assert_eq!(decode_query_component(&encode(s)), s);
        }
        assert_eq!(encode("a/b"), "a%2Fb");
        assert_eq!(encode("~-._AZaz09"), "~-._AZaz09");
    }
}
