//! What a plugin answers: a raw [`Response`] or a [`Page`] wrapped in the site layout.

use serde::Serialize;

use crate::__bindings::lutetia::plugin::types::{
    Page as WitPage, Reply as WitReply, Response as WitResponse,
};
use crate::Error;

/// What a handler answers.
///
/// Build one from a [`Page`] or a [`Response`] with `.into()`, or from an [`Error`]
/// (a JSON error response) or a `Result` of those.
///
/// ```
/// use lutetia_sdk::{Error, Page, Reply, Response};
///
/// let page: Reply = Page::new("Hello", "<p>Bonjour</p>").into();
/// assert_eq!(page.status(), 200);
/// let api: Reply = Response::json(&[1, 2, 3]).into();
/// assert_eq!(api.status(), 200);
/// let missing: Reply = Error::NotFound.into();
/// assert_eq!(missing.status(), 404);
/// let result: Result<Response, Error> = Err(Error::Denied);
/// assert_eq!(Reply::from(result).status(), 403);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A raw response, sent as is (JSON APIs, files, redirects).
    Response(Response),
    /// A page, wrapped by the host in the site layout.
    Page(Page),
}

impl Reply {
    /// A page with status 200: shorthand for `Page::new(title, body).into()`.
    ///
    /// ```
    /// # use lutetia_sdk::Reply;
    /// assert!(matches!(Reply::page("Hello", "<p>Bonjour</p>"), Reply::Page(_)));
    /// ```
    pub fn page(title: impl Into<String>, body: impl Into<String>) -> Reply {
        Page::new(title, body).into()
    }

    /// A JSON response: shorthand for `Response::json(value).into()`.
    ///
    /// ```
    /// # use lutetia_sdk::Reply;
    /// assert_eq!(Reply::json(&["a", "b"]).status(), 200);
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Reply {
        Response::json(value).into()
    }

    /// A plain-text response: shorthand for `Response::text(text).into()`.
    ///
    /// ```
    /// # use lutetia_sdk::Reply;
    /// assert_eq!(Reply::text("ok").status(), 200);
    /// ```
    pub fn text(text: impl Into<String>) -> Reply {
        Response::text(text).into()
    }

    /// A complete HTML document sent without the layout: shorthand for
    /// `Response::html(html).into()`.
    ///
    /// ```
    /// # use lutetia_sdk::Reply;
    /// assert_eq!(Reply::html("<!doctype html>").status(), 200);
    /// ```
    pub fn html(html: impl Into<String>) -> Reply {
        Response::html(html).into()
    }

    /// A `303 See Other` redirect: shorthand for `Response::redirect(location).into()`.
    ///
    /// ```
    /// # use lutetia_sdk::Reply;
    /// assert_eq!(Reply::redirect("/p/hello/").status(), 303);
    /// ```
    pub fn redirect(location: impl Into<String>) -> Reply {
        Response::redirect(location).into()
    }

    /// A plain-text 404: shorthand for `Response::not_found().into()`.
    ///
    /// ```
    /// # use lutetia_sdk::Reply;
    /// assert_eq!(Reply::not_found().status(), 404);
    /// ```
    pub fn not_found() -> Reply {
        Response::not_found().into()
    }

    /// The reply's HTTP status.
    ///
    /// ```
    /// # use lutetia_sdk::{Reply, Response};
    /// assert_eq!(Reply::from(Response::new(204)).status(), 204);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            Reply::Response(r) => r.status,
            Reply::Page(p) => p.status,
        }
    }

    /// The reply's headers.
    ///
    /// ```
    /// # use lutetia_sdk::{Reply, Response};
    /// let reply = Reply::from(Response::text("hi"));
    /// assert_eq!(reply.headers()[0].0, "content-type");
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        match self {
            Reply::Response(r) => &r.headers,
            Reply::Page(p) => &p.headers,
        }
    }
}

impl From<Page> for Reply {
    fn from(page: Page) -> Reply {
        Reply::Page(page)
    }
}

impl From<Response> for Reply {
    fn from(response: Response) -> Reply {
        Reply::Response(response)
    }
}

impl From<Error> for Reply {
    fn from(error: Error) -> Reply {
        Reply::Response(error.into())
    }
}

impl<T: Into<Reply>> From<Result<T, Error>> for Reply {
    fn from(result: Result<T, Error>) -> Reply {
        match result {
            Ok(reply) => reply.into(),
            Err(error) => error.into(),
        }
    }
}

/// A page: the host wraps `body` (an HTML fragment) in the site layout, with `title` in
/// the layout's heading and the browser tab.
///
/// ```
/// use lutetia_sdk::{html, Page};
///
/// let who = "Jeanne & Marie";
/// let page = Page::new("Bienvenue", format!("<p>Bonjour {} !</p>", html::escape(who)))
///     .header("cache-control", "no-store");
/// assert_eq!(page.status, 200);
/// assert_eq!(page.body, "<p>Bonjour Jeanne &amp; Marie !</p>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// HTTP status code, 200 unless set with [`Page::status`].
    pub status: u16,
    /// Plain-text title (the host escapes it).
    pub title: String,
    /// HTML fragment placed in the layout's main area: escape untrusted text with
    /// [`html::escape`](crate::html::escape).
    pub body: String,
    /// Extra response headers, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Page {
    /// A page with status 200, a plain-text `title` and an HTML `body` fragment.
    ///
    /// ```
    /// # use lutetia_sdk::Page;
    /// let page = Page::new("Hello", "<p>Hi</p>");
    /// assert_eq!((page.status, page.title.as_str()), (200, "Hello"));
    /// ```
    pub fn new(title: impl Into<String>, body: impl Into<String>) -> Page {
        Page {
            status: 200,
            title: title.into(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    /// Sets the HTTP status (100-599; the host rejects others).
    ///
    /// ```
    /// # use lutetia_sdk::Page;
    /// assert_eq!(Page::new("Not found", "<p>No such page.</p>").status(404).status, 404);
    /// ```
    pub fn status(mut self, status: u16) -> Page {
        self.status = status;
        self
    }

    /// Sets a response header, replacing any with the same name; the name is
    /// lower-cased.
    ///
    /// ```
    /// # use lutetia_sdk::Page;
    /// let page = Page::new("T", "").header("Cache-Control", "no-store");
    /// assert_eq!(page.headers, vec![("cache-control".to_string(), "no-store".to_string())]);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Page {
        set_header(&mut self.headers, name.into(), value.into());
        self
    }
}

/// A raw HTTP response, sent as is.
///
/// ```
/// use lutetia_sdk::Response;
///
/// let created = Response::json(&serde_json::json!({ "id": 7 }))
///     .status(201)
///     .header("location", "/p/reports/api/reports/7");
/// assert_eq!(created.status, 201);
/// assert_eq!(created.body, br#"{"id":7}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// HTTP status code (100-599).
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Response {
    /// An empty response with this status and no headers.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// let r = Response::new(204);
    /// assert!(r.headers.is_empty() && r.body.is_empty());
    /// ```
    pub fn new(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A 200 response with `value` serialized as JSON and `content-type:
    /// application/json`.
    ///
    /// If `value` cannot be serialized (a map with non-string keys, a failing `Serialize`
    /// impl), the response is a 500 whose JSON body says why.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// #[derive(serde::Serialize)]
    /// struct Stop {
    ///     name: &'static str,
    ///     lines: Vec<u8>,
    /// }
    /// let r = Response::json(&Stop { name: "Châtelet", lines: vec![1, 4, 7] });
    /// assert_eq!(r.body, "{\"name\":\"Châtelet\",\"lines\":[1,4,7]}".as_bytes());
    /// assert_eq!(r.headers, vec![("content-type".to_string(), "application/json".to_string())]);
    /// ```
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(body) => Response::new(200)
                .header("content-type", "application/json")
                .body(body),
            Err(e) => Response::new(500)
                .header("content-type", "application/json")
                .body(error_json(
                    "serialization",
                    &format!("could not serialize the response: {e}"),
                )),
        }
    }

    /// A 200 response with a plain-text body (`text/plain; charset=utf-8`).
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// assert_eq!(Response::text("ok").body, b"ok");
    /// ```
    pub fn text(text: impl Into<String>) -> Response {
        Response::new(200)
            .header("content-type", "text/plain; charset=utf-8")
            .body(text.into())
    }

    /// A 200 response with a complete HTML document (`text/html; charset=utf-8`), sent
    /// without the site layout; use a [`Page`] to get the layout.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// let r = Response::html("<!doctype html><title>x</title>");
    /// assert_eq!(r.headers[0].1, "text/html; charset=utf-8");
    /// ```
    pub fn html(html: impl Into<String>) -> Response {
        Response::new(200)
            .header("content-type", "text/html; charset=utf-8")
            .body(html.into())
    }

    /// A `303 See Other` redirect to `location` (the usual answer to a form post). Build
    /// links inside the plugin with [`Request::link`](crate::Request::link).
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// let r = Response::redirect("/p/hello/thanks");
    /// assert_eq!(r.status, 303);
    /// assert_eq!(r.headers, vec![("location".to_string(), "/p/hello/thanks".to_string())]);
    /// ```
    pub fn redirect(location: impl Into<String>) -> Response {
        Response::new(303).header("location", location)
    }

    /// A plain-text `404 Not Found`.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// assert_eq!(Response::not_found().status, 404);
    /// ```
    pub fn not_found() -> Response {
        Response::text("Not found").status(404)
    }

    /// Sets the status.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// assert_eq!(Response::text("gone").status(410).status, 410);
    /// ```
    pub fn status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Sets a header, replacing any with the same name; the name is lower-cased.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// let r = Response::text("a,b").header("Content-Type", "text/csv");
    /// assert_eq!(r.headers, vec![("content-type".to_string(), "text/csv".to_string())]);
    /// ```
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        set_header(&mut self.headers, name.into(), value.into());
        self
    }

    /// Adds a header, keeping any with the same name (for headers that may repeat).
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// let r = Response::new(200).append_header("vary", "accept").append_header("vary", "accept-language");
    /// assert_eq!(r.headers.len(), 2);
    /// ```
    pub fn append_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// # use lutetia_sdk::Response;
    /// let r = Response::new(200).header("content-type", "image/svg+xml").body("<svg/>");
    /// assert_eq!(r.body, b"<svg/>");
    /// ```
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Response {
        self.body = body.into();
        self
    }
}

impl From<Error> for Response {
    /// A JSON error response: the status from [`Error::status`] and a body
    /// `{"error": <code>, "message": <text>}`.
    fn from(error: Error) -> Response {
        Response::new(error.status())
            .header("content-type", "application/json")
            .body(error_json(error.code(), &error.to_string()))
    }
}

fn error_json(code: &str, message: &str) -> Vec<u8> {
    let value = serde_json::json!({ "error": code, "message": message });
    value.to_string().into_bytes()
}

fn set_header(headers: &mut Vec<(String, String)>, name: String, value: String) {
    let name = name.to_ascii_lowercase();
    headers.retain(|(n, _)| *n != name);
    headers.push((name, value));
}

impl From<Page> for WitPage {
    fn from(p: Page) -> WitPage {
        WitPage {
            status: p.status,
            title: p.title,
            body: p.body,
            headers: p.headers,
        }
    }
}

impl From<Response> for WitResponse {
    fn from(r: Response) -> WitResponse {
        WitResponse {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

impl From<Reply> for WitReply {
    fn from(reply: Reply) -> WitReply {
        match reply {
            Reply::Response(r) => WitReply::Response(r.into()),
            Reply::Page(p) => WitReply::Page(p.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn page_builder() {
        let page = Page::new("Hello", "<p>x</p>")
            .status(404)
            .header("X-Test", "1")
            .header("x-test", "2");
        assert_eq!(page.status, 404);
        assert_eq!(page.title, "Hello");
        assert_eq!(page.body, "<p>x</p>");
        assert_eq!(page.headers, vec![("x-test".to_string(), "2".to_string())]);
    }

    #[test]
    fn response_constructors() {
        let json = Response::json(&serde_json::json!({"a": [1, null]}));
        assert_eq!(json.status, 200);
        assert_eq!(header(&json.headers, "content-type"), Some("application/json"));
        assert_eq!(json.body, br#"{"a":[1,null]}"#);

        let text = Response::text("hé");
        assert_eq!(
            header(&text.headers, "content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(text.body, "hé".as_bytes());

        let html = Response::html("<b>x</b>");
        assert_eq!(
            header(&html.headers, "content-type"),
            Some("text/html; charset=utf-8")
        );

        let redirect = Response::redirect("/p/x/done");
        assert_eq!(redirect.status, 303);
        assert_eq!(header(&redirect.headers, "location"), Some("/p/x/done"));
        assert!(redirect.body.is_empty());

        let missing = Response::not_found();
        assert_eq!(missing.status, 404);
        assert_eq!(missing.body, b"Not found");
    }

    #[test]
    fn json_serialization_failure_is_a_500() {
        let mut map = BTreeMap::new();
        map.insert(vec![1u8], "non-string key");
        let r = Response::json(&map);
        assert_eq!(r.status, 500);
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON body");
        assert_eq!(body["error"], "serialization");
    }

    #[test]
    fn headers_replace_or_append() {
        let r = Response::text("x")
            .header("Content-Type", "text/csv")
            .append_header("Vary", "a")
            .append_header("vary", "b");
        assert_eq!(
            r.headers,
            vec![
                ("content-type".to_string(), "text/csv".to_string()),
                ("vary".to_string(), "a".to_string()),
                ("vary".to_string(), "b".to_string()),
            ]
        );
    }

    #[test]
    fn errors_become_json_responses() {
        let r = Response::from(Error::Invalid("key too long".into()));
        assert_eq!(r.status, 400);
        let body: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON body");
        assert_eq!(body["error"], "invalid");
        assert_eq!(body["message"], "invalid: key too long");
        assert_eq!(Reply::from(Error::Unavailable("x".into())).status(), 503);
    }

    #[test]
    fn replies_from_results() {
        let ok: Result<Page, Error> = Ok(Page::new("T", "B"));
        assert!(matches!(Reply::from(ok), Reply::Page(_)));
        let err: Result<Page, Error> = Err(Error::Conflict);
        let reply = Reply::from(err);
        assert_eq!(reply.status(), 409);
        assert!(matches!(reply, Reply::Response(_)));
    }

    #[test]
    fn converts_to_wit() {
        let page = Page::new("T", "<p>B</p>").status(201).header("a", "b");
        match WitReply::from(Reply::from(page)) {
            WitReply::Page(p) => {
                assert_eq!(p.status, 201);
                assert_eq!(p.title, "T");
                assert_eq!(p.body, "<p>B</p>");
                assert_eq!(p.headers, vec![("a".to_string(), "b".to_string())]);
            }
            WitReply::Response(_) => panic!("expected a page"),
        }
        match WitReply::from(Reply::from(Response::text("x").status(418))) {
            WitReply::Response(r) => {
                assert_eq!(r.status, 418);
                assert_eq!(r.body, b"x");
            }
            WitReply::Page(_) => panic!("expected a response"),
        }
    }
}
