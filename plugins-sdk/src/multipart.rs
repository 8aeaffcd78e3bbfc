//! A small `multipart/form-data` parser (RFC 7578) for HTML forms with file uploads
//! (`<form method="post" enctype="multipart/form-data">`). The host hands the body over
//! byte for byte; [`Request::multipart`](crate::Request::multipart) parses it.
//!
//! ```
//! use lutetia_sdk::multipart;
//!
//! let body = b"--XyZ\r\n\
//! Content-Disposition: form-data; name=\"title\"\r\n\r\n\
//! Pothole\r\n\
//! --XyZ\r\n\
//! Content-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\n\
//! Content-Type: image/png\r\n\r\n\
//! \x89PNG\r\n\
//! --XyZ--\r\n";
//! let parts = multipart::parse("multipart/form-data; boundary=XyZ", body)?;
//! assert_eq!(parts[0].name, "title");
//! assert_eq!(parts[0].text(), Some("Pothole"));
//! assert_eq!(parts[1].filename.as_deref(), Some("a.png"));
//! assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
//! assert_eq!(parts[1].data, b"\x89PNG");
//! # Ok::<(), lutetia_sdk::Error>(())
//! ```

use crate::Error;

/// One part of a form: a field, or a file when it has a `filename`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// The form control's name.
    pub name: String,
    /// The file's name as the browser sent it (no folders), for file parts.
    pub filename: Option<String>,
    /// The part's declared `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The content, exactly as sent.
    pub data: Vec<u8>,
}

impl Part {
    /// Whether this part is a file input with a file chosen.
    pub fn is_file(&self) -> bool {
        self.filename.as_deref().is_some_and(|f| !f.is_empty())
    }

    /// The content as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.data).ok()
    }
}

/// The `boundary` parameter of a `multipart/form-data` content type.
///
/// ```
/// use lutetia_sdk::multipart::boundary;
///
/// assert_eq!(boundary("multipart/form-data; boundary=abc").as_deref(), Some("abc"));
/// assert_eq!(boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").as_deref(), Some("a b"));
/// assert_eq!(boundary("application/json"), None);
/// ```
pub fn boundary(content_type: &str) -> Option<String> {
    let mut pieces = content_type.split(';');
    let essence = pieces.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let rest = content_type.split_once(';')?.1;
    params(rest)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty() && b.len() <= 70)
}

/// Parses a `multipart/form-data` body; [`Error::Invalid`] says what is wrong, including
/// a body of more than [`limits::MAX_MULTIPART_PARTS`](crate::limits::MAX_MULTIPART_PARTS)
/// parts.
pub fn parse(content_type: &str, body: &[u8]) -> Result<Vec<Part>, Error> {
    let invalid = |m: &str| Error::Invalid(format!("multipart body: {m}"));
    let boundary = boundary(content_type)
        .ok_or_else(|| invalid("the content type is not multipart/form-data with a boundary"))?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut next_delimiter = delimiter.clone();
    next_delimiter.splice(0..0, *b"\r\n");

    // The first delimiter: at the very start, or after a preamble ending in CRLF.
    let mut pos = if body.starts_with(&delimiter) {
        delimiter.len()
    } else {
        find(body, &next_delimiter, 0).ok_or_else(|| invalid("no boundary found"))? + next_delimiter.len()
    };
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding, then the line break ending the delimiter line.
        while matches!(body.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        if !body[pos..].starts_with(b"\r\n") {
            return Err(invalid("a boundary line is not followed by a line break"));
        }
        pos += 2;
        // The headers end with an empty line; a part without headers starts with it.
        let (headers_end, data_start) = if body[pos..].starts_with(b"\r\n") {
            (pos, pos + 2)
        } else {
            let end = find(body, b"\r\n\r\n", pos).ok_or_else(|| invalid("a part's headers do not end"))?;
            (end, end + 4)
        };
        let headers = std::str::from_utf8(&body[pos..headers_end])
            .map_err(|_| invalid("a part's headers are not UTF-8"))?;
        let data_end = find(body, &next_delimiter, data_start)
            .ok_or_else(|| invalid("a part does not end with the boundary (truncated body?)"))?;
        if parts.len() == crate::limits::MAX_MULTIPART_PARTS {
            return Err(invalid(&format!(
                "more than {} parts (the SDK's limit)",
                crate::limits::MAX_MULTIPART_PARTS
            )));
        }
        parts.push(part(headers, &body[data_start..data_end]).map_err(|m| invalid(&m))?);
        pos = data_end + next_delimiter.len();
    }
}

fn part(headers: &str, data: &[u8]) -> Result<Part, String> {
    let mut name = None;
    let mut filename = None;
    let mut filename_star = None;
    let mut content_type = None;
    for line in headers.split("\r\n").filter(|l| !l.is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("malformed part header {line:?}"))?;
        let key = key.trim();
        if key.eq_ignore_ascii_case("content-disposition") {
            let (kind, rest) = value.split_once(';').unwrap_or((value, ""));
            if !kind.trim().eq_ignore_ascii_case("form-data") {
                return Err(format!("part disposition is {:?}, not form-data", kind.trim()));
            }
            for (k, v) in params(rest) {
                match k.to_ascii_lowercase().as_str() {
                    "name" => name = Some(v),
                    "filename" => filename = Some(v),
                    "filename*" => filename_star = ext_value(&v),
                    _ => {}
                }
            }
        } else if key.eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_owned());
        }
    }
    let name = name.ok_or("a part has no name")?;
    // Keep the last path component: old browsers sent `C:\Users\...\photo.jpg`.
    let filename = filename_star
        .or(filename)
        .map(|f| f.rsplit(['/', '\\']).next().unwrap_or_default().to_owned());
    Ok(Part {
        name,
        filename,
        content_type,
        data: data.to_vec(),
    })
}

/// `key=value; key="quoted \"value\""` parameters, in order.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ';' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    // Only `\"` and `\\` are escapes: browsers send Windows paths as is.
                    '\\' if matches!(chars.peek(), Some('"' | '\\')) => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
            while matches!(chars.peek(), Some(c) if *c != ';') {
                chars.next();
            }
        } else {
            value = chars
                .by_ref()
                .take_while(|c| *c != ';')
                .collect::<String>()
                .trim()
                .to_owned();
        }
        out.push((key.trim().to_owned(), value));
    }
}

/// An RFC 8187 value: `UTF-8''%e2%82%ac.txt`.
fn ext_value(v: &str) -> Option<String> {
    let mut pieces = v.splitn(3, '\'');
    let charset = pieces.next()?;
    let _language = pieces.next()?;
    let encoded = pieces.next()?;
    charset
        .eq_ignore_ascii_case("utf-8")
        .then(|| crate::url::decode(encoded))
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from > haystack.len() || needle.is_empty() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As Firefox sends it: a text field, a PNG file, an empty file input.
    const FIREFOX: &[u8] = b"-----------------------------9051914041544843365972754266\r\n\
Content-Disposition: form-data; name=\"text\"\r\n\r\n\
text default\r\n\
-----------------------------9051914041544843365972754266\r\n\
Content-Disposition: form-data; name=\"file1\"; filename=\"a.png\"\r\n\
Content-Type: image/png\r\n\r\n\
\x89PNG\r\n\x1a\n\0\0\r\n--not-the-boundary\r\n\
-----------------------------9051914041544843365972754266\r\n\
Content-Disposition: form-data; name=\"file2\"; filename=\"\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\
\r\n\
-----------------------------9051914041544843365972754266--\r\n";

    #[test]
    fn parses_a_firefox_body() {
        let ct = "multipart/form-data; boundary=---------------------------9051914041544843365972754266";
        let parts = parse(ct, FIREFOX).expect("parses");
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].name, "text");
        assert_eq!(parts[0].filename, None);
        assert_eq!(parts[0].text(), Some("text default"));
        assert!(parts[1].is_file());
        assert_eq!(parts[1].data, b"\x89PNG\r\n\x1a\n\0\0\r\n--not-the-boundary");
        assert_eq!(parts[1].content_type.as_deref(), Some("image/png"));
        assert!(!parts[2].is_file());
        assert!(parts[2].data.is_empty());
    }

    #[test]
    fn parses_a_chrome_body_with_escaped_names() {
        let body = b"------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
Content-Disposition: form-data; name=\"caption\"\r\n\r\n\
Rue de \xc3\xa9cole\r\n\
------WebKitFormBoundaryePkpFF7tjBAqx29L\r\n\
Content-Disposition: form-data; name=\"photo\"; filename=\"my %22best%22 photo.jpg\"\r\n\
Content-Type: image/jpeg\r\n\r\n\
\xff\xd8\xff\xe0\r\n\
------WebKitFormBoundaryePkpFF7tjBAqx29L--\r\n";
        let ct = "multipart/form-data; boundary=----WebKitFormBoundaryePkpFF7tjBAqx29L";
        let parts = parse(ct, body).expect("parses");
        assert_eq!(parts[0].text(), Some("Rue de école"));
        assert_eq!(parts[1].filename.as_deref(), Some("my %22best%22 photo.jpg"));
        assert_eq!(parts[1].data, b"\xff\xd8\xff\xe0");
    }

    #[test]
    fn preamble_paths_and_rfc8187_names() {
        let body = b"ignored preamble\r\n--b\r\n\
Content-Disposition: form-data; name=f; filename=\"C:\\\\Users\\\\x\\\\old.txt\"\r\n\r\n\
a\r\n--b\r\n\
Content-Disposition: form-data; name=\"g\"; filename*=UTF-8''%E2%82%AC.txt\r\n\r\n\
b\r\n--b--";
        let parts = parse("multipart/form-data; boundary=b", body).expect("parses");
        assert_eq!(parts[0].filename.as_deref(), Some("old.txt"));
        assert_eq!(parts[1].filename.as_deref(), Some("€.txt"));
    }

    #[test]
    fn malformed_bodies_are_invalid() {
        let ct = "multipart/form-data; boundary=b";
        for body in [
            &b""[..],
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\ntruncated",
            b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--",
            b"--bX\r\n",
            // A part without headers (so without a name), with nothing after it: the
            // parser once sliced backwards here and panicked.
            b"--b\r\n\r\ndata\r\n--b--",
            b"--b\r\n\r\n",
            b"--b\r\n",
            b"--b",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n",
            b"--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n",
            b"--b\r\n\xff: x\r\n\r\nx\r\n--b--",
            b"--b\r\nno colon\r\n\r\nx\r\n--b--",
            b"--b\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--b--",
        ] {
            match parse(ct, body) {
                Err(Error::Invalid(why)) => assert!(why.starts_with("multipart body: "), "{why}"),
                other => panic!("{body:?}: {other:?}"),
            }
        }
        assert!(parse("text/plain", b"--b--").is_err());
        // A part without headers is read as one (and refused for its missing name), even
        // when an empty line follows in its data.
        let headerless = b"--b\r\n\r\nline\r\n\r\nmore\r\n--b--";
        assert_eq!(
            parse(ct, headerless),
            Err(Error::Invalid("multipart body: a part has no name".into()))
        );
    }

    #[test]
    fn the_number_of_parts_is_limited() {
        let ct = "multipart/form-data; boundary=b";
        let body = |n: usize| {
            let mut body = b"--b".to_vec();
            for i in 0..n {
                body.extend_from_slice(
                    format!("\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n--b").as_bytes(),
                );
            }
            body.extend_from_slice(b"--\r\n");
            body
        };
        let max = crate::limits::MAX_MULTIPART_PARTS;
        assert_eq!(parse(ct, &body(max)).map(|p| p.len()), Ok(max));
        match parse(ct, &body(max + 1)) {
            Err(Error::Invalid(why)) => assert!(why.contains("more than 1000 parts"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
