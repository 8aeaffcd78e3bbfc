//! The request a plugin receives.

use serde::de::DeserializeOwned;

use crate::__bindings::lutetia::plugin::types::{Request as WitRequest, User as WitUser};
use crate::Error;

/// An HTTP request routed to the plugin.
///
/// The host strips the plugin's mount from the path (`/p/hello/a/b` arrives as `/a/b`),
/// lower-cases header names and removes hop-by-hop and cookie headers.
///
/// ```no_run
/// use lutetia_sdk::{Page, Plugin, Reply, Request, Response};
///
/// struct Forms;
///
/// impl Plugin for Forms {
///     fn handle(req: Request) -> Reply {
///         match (req.method(), req.segments().as_slice()) {
///             ("GET", ["search"]) => {
///                 let q = req.query_param("q").unwrap_or_default();
///                 Response::json(&q).into()
///             }
///             ("POST", ["contact"]) => match req.form() {
///                 Ok(fields) => Response::json(&fields).into(),
///                 Err(e) => e.into(),
///             },
///             _ => Page::new("Not found", "<p>Nothing here.</p>").status(404).into(),
///         }
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    user: Option<User>,
    locale: String,
    mount: String,
    request_id: String,
}

impl Request {
    /// Builds a request by hand, for unit tests of a plugin's handlers: no query, headers,
    /// body or user; locale `fr-FR`, mount `/p/test`, request id `test`. The `with_*`
    /// methods set the rest.
    ///
    /// `method` is upper-cased; a `path` not starting with `/` gets one.
    ///
    /// ```
    /// use lutetia_sdk::Request;
    ///
    /// let req = Request::new("post", "/api/items")
    ///     .with_query("dry-run=1")
    ///     .with_header("Content-Type", "application/json")
    ///     .with_body(r#"{"name":"bench"}"#);
    /// assert_eq!(req.method(), "POST");
    /// assert_eq!(req.header("content-type"), Some("application/json"));
    /// assert_eq!(req.query_param("dry-run").as_deref(), Some("1"));
    /// ```
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Request {
        let mut path = path.into();
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        Request {
            method: method.into().to_ascii_uppercase(),
            path,
            query: String::new(),
            headers: Vec::new(),
            body: Vec::new(),
            user: None,
            locale: "fr-FR".to_owned(),
            mount: "/p/test".to_owned(),
            request_id: "test".to_owned(),
        }
    }

    /// Sets the raw query string (without the leading `?`).
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("GET", "/").with_query("a=1");
    /// assert_eq!(req.query(), "a=1");
    /// ```
    pub fn with_query(mut self, query: impl Into<String>) -> Request {
        self.query = query.into();
        self
    }

    /// Adds a header (its name is lower-cased, as the host does).
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("GET", "/").with_header("Accept", "text/html");
    /// assert_eq!(req.headers(), &[("accept".to_string(), "text/html".to_string())]);
    /// ```
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets the body.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("POST", "/").with_body("hi");
    /// assert_eq!(req.body(), b"hi");
    /// ```
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sets the signed-in user.
    ///
    /// ```
    /// # use lutetia_sdk::{Request, User};
    /// let req = Request::new("GET", "/").with_user(User::new("42", "jdupont", "Jeanne Dupont"));
    /// assert_eq!(req.user().map(|u| u.login()), Some("jdupont"));
    /// ```
    pub fn with_user(mut self, user: User) -> Request {
        self.user = Some(user);
        self
    }

    /// Sets the visitor's locale.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").with_locale("en-GB").locale(), "en-GB");
    /// ```
    pub fn with_locale(mut self, locale: impl Into<String>) -> Request {
        self.locale = locale.into();
        self
    }

    /// Sets the plugin's mount path.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").with_mount("/p/hello").mount(), "/p/hello");
    /// ```
    pub fn with_mount(mut self, mount: impl Into<String>) -> Request {
        self.mount = mount.into();
        self
    }

    /// Sets the request identifier.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").with_request_id("r-1").request_id(), "r-1");
    /// ```
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Request {
        self.request_id = request_id.into();
        self
    }

    /// The method, in upper case: `GET`, `POST`, ...
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").method(), "GET");
    /// ```
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path below the plugin's mount, always starting with `/`, still percent-encoded
    /// as sent by the browser.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/a/b").path(), "/a/b");
    /// ```
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The non-empty segments of [`path`](Request::path), still percent-encoded (decode
    /// one with [`url::decode`](crate::url::decode)): `/` gives `[]`, `/api/kv/x/` gives
    /// `["api", "kv", "x"]`. Handy to route with a slice pattern.
    ///
    /// ```
    /// use lutetia_sdk::Request;
    ///
    /// let req = Request::new("GET", "/api/kv/my%20key");
    /// match req.segments().as_slice() {
    ///     ["api", "kv", key] => assert_eq!(lutetia_sdk::url::decode(key), "my key"),
    ///     _ => unreachable!(),
    /// }
    /// assert!(Request::new("GET", "/").segments().is_empty());
    /// ```
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The raw query string, without the leading `?` (may be empty).
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").with_query("a=%C3%A9").query(), "a=%C3%A9");
    /// ```
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The decoded query parameters, in order (a name may repeat); see
    /// [`url::parse_query`](crate::url::parse_query).
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("GET", "/").with_query("tag=a&tag=b+c");
    /// assert_eq!(
    ///     req.query_params(),
    ///     vec![("tag".to_string(), "a".to_string()), ("tag".to_string(), "b c".to_string())]
    /// );
    /// ```
    pub fn query_params(&self) -> Vec<(String, String)> {
        crate::url::parse_query(&self.query)
    }

    /// The decoded value of the first query parameter named `name` (percent-escapes
    /// decoded, `+` read as a space), or `None`. A parameter without `=` has an empty
    /// value.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("GET", "/").with_query("q=h%C3%B4tel+de+ville&verbose");
    /// assert_eq!(req.query_param("q").as_deref(), Some("hôtel de ville"));
    /// assert_eq!(req.query_param("verbose").as_deref(), Some(""));
    /// assert_eq!(req.query_param("page"), None);
    /// ```
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_params()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Every header, in order, names in lower case.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert!(Request::new("GET", "/").headers().is_empty());
    /// ```
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The value of the first header named `name`, compared case-insensitively.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("GET", "/").with_header("accept-language", "fr");
    /// assert_eq!(req.header("Accept-Language"), Some("fr"));
    /// assert_eq!(req.header("accept"), None);
    /// ```
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body's bytes.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("POST", "/").with_body(vec![1, 2]).body(), &[1, 2]);
    /// ```
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Takes the body, consuming the request.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("POST", "/").with_body("x").into_body(), b"x".to_vec());
    /// ```
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }

    /// The body as UTF-8 text; [`Error::Invalid`] if it is not valid UTF-8.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("POST", "/").with_body("héllo").text(), Ok("héllo"));
    /// assert!(Request::new("POST", "/").with_body(vec![0xff]).text().is_err());
    /// ```
    pub fn text(&self) -> Result<&str, Error> {
        std::str::from_utf8(&self.body).map_err(|e| Error::Invalid(format!("request body is not UTF-8: {e}")))
    }

    /// Deserializes the body as JSON; [`Error::Invalid`] says why it could not.
    ///
    /// The `content-type` header is not checked. A body nested deeper than
    /// [`limits::MAX_JSON_DEPTH`](crate::limits::MAX_JSON_DEPTH) levels is refused before
    /// it is parsed; numbers beyond the range of `f64`, `NaN` and lone surrogate escapes
    /// (`"\ud800"`) are invalid, as in the Python and JavaScript SDKs.
    ///
    /// ```
    /// use lutetia_sdk::Request;
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Report {
    ///     street: String,
    ///     kind: String,
    /// }
    ///
    /// let req = Request::new("POST", "/reports")
    ///     .with_body(r#"{"street":"rue de Rivoli","kind":"pothole"}"#);
    /// let report: Report = req.json()?;
    /// assert_eq!(report.street, "rue de Rivoli");
    /// # assert_eq!(report.kind, "pothole");
    /// # Ok::<(), lutetia_sdk::Error>(())
    /// ```
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        if crate::limits::json_too_deep(&self.body) {
            return Err(crate::limits::too_deep("request body"));
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Invalid(format!("request body is not valid JSON: {e}")))
    }

    /// Parses an `application/x-www-form-urlencoded` body (an HTML form) into decoded
    /// `(name, value)` pairs, in order.
    ///
    /// [`Error::Invalid`] if the request has a `content-type` other than
    /// `application/x-www-form-urlencoded` (a `multipart/form-data` upload, for example),
    /// a body that is not UTF-8, or more than
    /// [`limits::MAX_FORM_FIELDS`](crate::limits::MAX_FORM_FIELDS) fields. Malformed
    /// percent-escapes are decoded leniently, as browsers do (see [`url`](crate::url)).
    ///
    /// ```
    /// use lutetia_sdk::Request;
    ///
    /// let req = Request::new("POST", "/contact")
    ///     .with_header("content-type", "application/x-www-form-urlencoded")
    ///     .with_body("name=Jeanne+Dupont&msg=Bonjour+%21");
    /// let fields = req.form()?;
    /// assert_eq!(fields[0], ("name".to_string(), "Jeanne Dupont".to_string()));
    /// assert_eq!(fields[1], ("msg".to_string(), "Bonjour !".to_string()));
    /// # Ok::<(), lutetia_sdk::Error>(())
    /// ```
    pub fn form(&self) -> Result<Vec<(String, String)>, Error> {
        if let Some(content_type) = self.header("content-type") {
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(Error::Invalid(format!(
                    "expected an application/x-www-form-urlencoded body, got {content_type}"
                )));
            }
        }
        let text = self.text()?;
        let max = crate::limits::MAX_FORM_FIELDS;
        // Counted before anything is decoded, and only up to one past the limit.
        if text
            .split('&')
            .filter(|pair| !pair.is_empty())
            .take(max + 1)
            .count()
            > max
        {
            return Err(Error::Invalid(format!(
                "request body is a form of more than {max} fields (the SDK's limit)"
            )));
        }
        Ok(crate::url::parse_query(text))
    }

    /// Parses a `multipart/form-data` body (a form with `enctype="multipart/form-data"`,
    /// typically with file inputs) into its parts, in order.
    ///
    /// ```
    /// use lutetia_sdk::Request;
    ///
    /// let req = Request::new("POST", "/upload")
    ///     .with_header("content-type", "multipart/form-data; boundary=zz")
    ///     .with_body(&b"--zz\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--zz--\r\n"[..]);
    /// let parts = req.multipart()?;
    /// assert_eq!(parts[0].filename.as_deref(), Some("a.jpg"));
    /// assert_eq!(parts[0].data, b"\xff\xd8\xff");
    /// # Ok::<(), lutetia_sdk::Error>(())
    /// ```
    pub fn multipart(&self) -> Result<Vec<crate::multipart::Part>, Error> {
        let content_type = self
            .header("content-type")
            .ok_or_else(|| Error::Invalid("the request has no content-type".into()))?;
        crate::multipart::parse(content_type, &self.body)
    }

    /// The signed-in user, if any.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert!(Request::new("GET", "/").user().is_none());
    /// ```
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// The visitor's preferred locale, a BCP 47 tag such as `fr-FR`.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").locale(), "fr-FR");
    /// ```
    pub fn locale(&self) -> &str {
        &self.locale
    }

    /// The absolute path where the plugin is mounted, such as `/p/hello`.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").mount(), "/p/test");
    /// ```
    pub fn mount(&self) -> &str {
        &self.mount
    }

    /// An absolute link to `path` inside the plugin: the mount followed by `path`, for
    /// `href`s and redirects.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// let req = Request::new("GET", "/").with_mount("/p/hello");
    /// assert_eq!(req.link("/api/echo"), "/p/hello/api/echo");
    /// assert_eq!(req.link("form"), "/p/hello/form");
    /// assert_eq!(req.link(""), "/p/hello/");
    /// ```
    pub fn link(&self, path: &str) -> String {
        let mount = self.mount.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        format!("{mount}/{path}")
    }

    /// The request's identifier, also found in the host's logs.
    ///
    /// ```
    /// # use lutetia_sdk::Request;
    /// assert_eq!(Request::new("GET", "/").request_id(), "test");
    /// ```
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl From<WitRequest> for Request {
    fn from(r: WitRequest) -> Request {
        Request {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            body: r.body,
            user: r.user.map(User::from),
            locale: r.locale,
            mount: r.mount,
            request_id: r.request_id,
        }
    }
}

/// The signed-in person making a request, as the host knows them.
///
/// ```
/// use lutetia_sdk::User;
///
/// let agent = User::new("7", "mmartin", "Marie Martin")
///     .with_roles(["agent"])
///     .with_rights(["reports.edit"]);
/// assert!(agent.has_role("agent"));
/// assert!(!agent.has_role("admin"));
/// assert!(agent.has_right("reports.edit"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    id: String,
    login: String,
    display_name: String,
    roles: Vec<String>,
    rights: Vec<String>,
}

impl User {
    /// Builds a user with no roles nor rights, for unit tests.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// let u = User::new("1", "jdupont", "Jeanne Dupont");
    /// assert_eq!(u.display_name(), "Jeanne Dupont");
    /// ```
    pub fn new(id: impl Into<String>, login: impl Into<String>, display_name: impl Into<String>) -> User {
        User {
            id: id.into(),
            login: login.into(),
            display_name: display_name.into(),
            roles: Vec::new(),
            rights: Vec::new(),
        }
    }

    /// Sets the back-office roles.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert_eq!(User::new("1", "a", "A").with_roles(["admin"]).roles(), &["admin".to_string()]);
    /// ```
    pub fn with_roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> User {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the rights on this plugin.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert_eq!(User::new("1", "a", "A").with_rights(["edit"]).rights(), &["edit".to_string()]);
    /// ```
    pub fn with_rights<S: Into<String>>(mut self, rights: impl IntoIterator<Item = S>) -> User {
        self.rights = rights.into_iter().map(Into::into).collect();
        self
    }

    /// The account's stable identifier.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert_eq!(User::new("1", "a", "A").id(), "1");
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The login name.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert_eq!(User::new("1", "a", "A").login(), "a");
    /// ```
    pub fn login(&self) -> &str {
        &self.login
    }

    /// The name to show.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert_eq!(User::new("1", "a", "A").display_name(), "A");
    /// ```
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The back-office roles held (for example `agent`, `admin`).
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert!(User::new("1", "a", "A").roles().is_empty());
    /// ```
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The rights held on this plugin, as declared in its manifest.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert!(User::new("1", "a", "A").rights().is_empty());
    /// ```
    pub fn rights(&self) -> &[String] {
        &self.rights
    }

    /// Whether the user holds the back-office role `role`.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert!(User::new("1", "a", "A").with_roles(["agent"]).has_role("agent"));
    /// ```
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the user holds the right `right` on this plugin.
    ///
    /// ```
    /// # use lutetia_sdk::User;
    /// assert!(!User::new("1", "a", "A").has_right("edit"));
    /// ```
    pub fn has_right(&self, right: &str) -> bool {
        self.rights.iter().any(|r| r == right)
    }
}

impl From<WitUser> for User {
    fn from(u: WitUser) -> User {
        User {
            id: u.id,
            login: u.login,
            display_name: u.display_name,
            roles: u.roles,
            rights: u.rights,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_normalises_method_and_path() {
        let req = Request::new("get", "a/b");
        assert_eq!(req.method(), "GET");
        assert_eq!(req.path(), "/a/b");
        assert_eq!(req.query(), "");
        assert!(req.body().is_empty());
    }

    #[test]
    fn segments() {
        assert_eq!(Request::new("GET", "/").segments(), Vec::<&str>::new());
        assert_eq!(Request::new("GET", "/api/echo").segments(), vec!["api", "echo"]);
        assert_eq!(Request::new("GET", "//a//b/").segments(), vec!["a", "b"]);
    }

    #[test]
    fn query_params() {
        let req = Request::new("GET", "/").with_query("a=1&b=x+y&a=2&c=%2B%26&empty=");
        assert_eq!(req.query_param("a").as_deref(), Some("1"));
        assert_eq!(req.query_param("b").as_deref(), Some("x y"));
        assert_eq!(req.query_param("c").as_deref(), Some("+&"));
        assert_eq!(req.query_param("empty").as_deref(), Some(""));
        assert_eq!(req.query_param("A"), None);
        assert_eq!(req.query_params().len(), 5);
    }

    #[test]
    fn headers_are_case_insensitive() {
        let req = Request::new("GET", "/")
            .with_header("X-Forwarded-Proto", "https")
            .with_header("accept", "a")
            .with_header("Accept", "b");
        assert_eq!(req.header("x-forwarded-proto"), Some("https"));
        assert_eq!(req.header("X-FORWARDED-PROTO"), Some("https"));
        assert_eq!(req.header("accept"), Some("a"));
        assert_eq!(req.header("content-type"), None);
    }

    #[test]
    fn json_body() {
        let req = Request::new("POST", "/").with_body(r#"{"n": 3, "tags": ["a"]}"#);
        let v: serde_json::Value = req.json().expect("valid JSON");
        assert_eq!(v["n"], 3);
        let bad = Request::new("POST", "/").with_body("{nope");
        match bad.json::<serde_json::Value>() {
            Err(Error::Invalid(why)) => assert!(why.contains("not valid JSON"), "{why}"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn json_limits_and_strictness() {
        let invalid = |body: &str| match Request::new("POST", "/")
            .with_body(body)
            .json::<serde_json::Value>()
        {
            Err(Error::Invalid(why)) => why,
            other => panic!("{body:.80}: {other:?}"),
        };
        let max = crate::limits::MAX_JSON_DEPTH;
        let nested = |d: usize| "[".repeat(d) + &"]".repeat(d);
        let ok: serde_json::Value = Request::new("POST", "/")
            .with_body(nested(max))
            .json()
            .expect("depth 64");
        assert!(ok.is_array());
        assert!(invalid(&nested(max + 1)).contains("nested deeper than 64 levels"));
        // The body of the bug report: 2.6 KB of unclosed brackets.
        assert!(invalid(&"[".repeat(2600)).contains("nested deeper than 64 levels"));
        for bad in [
            "NaN",
            "Infinity",
            "-Infinity",
            "1e400",
            "-1e400",
            "\"\\ud800\"",
            "\u{feff}{}",
            "{\"a\":1,}",
        ] {
            assert!(invalid(bad).contains("not valid JSON"), "{bad}");
        }
    }

    #[test]
    fn form_fields_are_limited() {
        let max = crate::limits::MAX_FORM_FIELDS;
        let form = |n: usize| Request::new("POST", "/").with_body(vec!["a=1"; n].join("&&"));
        assert_eq!(form(max).form().map(|f| f.len()), Ok(max));
        match form(max + 1).form() {
            Err(Error::Invalid(why)) => assert!(why.contains("more than 1000 fields"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn form_body() {
        let form = Request::new("POST", "/")
            .with_header("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
            .with_body("street=10+rue+de+la+Paix&note=caf%C3%A9+%26+th%C3%A9&ok");
        let fields = form.form().expect("a form");
        assert_eq!(
            fields,
            vec![
                ("street".to_string(), "10 rue de la Paix".to_string()),
                ("note".to_string(), "café & thé".to_string()),
                ("ok".to_string(), String::new()),
            ]
        );
        let no_type = Request::new("POST", "/").with_body("a=1");
        assert_eq!(no_type.form(), Ok(vec![("a".to_string(), "1".to_string())]));
        let multipart = Request::new("POST", "/")
            .with_header("content-type", "multipart/form-data; boundary=x")
            .with_body("--x");
        assert!(matches!(multipart.form(), Err(Error::Invalid(_))));
        let not_utf8 = Request::new("POST", "/").with_body(vec![b'a', b'=', 0xff]);
        assert!(matches!(not_utf8.form(), Err(Error::Invalid(_))));
    }

    #[test]
    fn links() {
        let req = Request::new("GET", "/").with_mount("/p/hello/");
        assert_eq!(req.link("/x"), "/p/hello/x");
        assert_eq!(req.link("x"), "/p/hello/x");
    }

    #[test]
    fn from_wit() {
        let wit = WitRequest {
            method: "PUT".into(),
            path: "/x".into(),
            query: "a=b".into(),
            headers: vec![("accept".into(), "*/*".into())],
            body: b"body".to_vec(),
            user: Some(WitUser {
                id: "1".into(),
                login: "jd".into(),
                display_name: "J D".into(),
                roles: vec!["agent".into()],
                rights: vec!["edit".into()],
            }),
            locale: "en-GB".into(),
            mount: "/p/x".into(),
            request_id: "rid".into(),
        };
        let req = Request::from(wit);
        assert_eq!(req.method(), "PUT");
        assert_eq!(req.path(), "/x");
        assert_eq!(req.query_param("a").as_deref(), Some("b"));
        assert_eq!(req.header("accept"), Some("*/*"));
        assert_eq!(req.body(), b"body");
        let user = req.user().expect("a user");
        assert!(user.has_role("agent") && user.has_right("edit"));
        assert_eq!(user.display_name(), "J D");
        assert_eq!(req.locale(), "en-GB");
        assert_eq!(req.mount(), "/p/x");
        assert_eq!(req.request_id(), "rid");
    }
}
