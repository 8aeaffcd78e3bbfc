//! Answers the host makes itself (a page not found, a body too large, a plugin that
//! failed or answered something unusable): one type that picks the status, the code and
//! the visitor's message, shown as an error page in the site layout, or as
//! `{"error", "message"}` JSON when the request prefers JSON. Internals go to the log,
//! never into the answer.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};

use crate::app::App;
use lutetia_runtime::CallError;

/// Why the host answers instead of a plugin (or instead of the plugin's answer).
#[derive(Debug)]
pub(crate) enum Refusal {
    /// No page at this address.
    NoPage,
    /// No plugin at this address (or an id that is not a plugin id).
    NoService,
    /// No stored file at this address.
    NoFile,
    /// The request target is longer than `http.max-uri-bytes`.
    UriTooLong { limit: usize },
    /// The body is larger than the route accepts.
    BodyTooLarge { limit: usize },
    /// The body did not arrive in time (slow, or shorter than its `Content-Length`).
    BodyTimeout,
    /// The connection failed while the body was read.
    BodyUnreadable,
    /// A `multipart/form-data` body that does not parse.
    MalformedForm,
    /// A file part of a type the plugin may not store.
    TypeNotAllowed(String),
    /// The plugin's call failed (trap, deadline, memory, overload).
    CallFailed { service: String, error: CallError },
    /// The plugin answered something the site cannot send.
    InvalidAnswer,
    /// A host service (the file store) is unavailable.
    Unavailable,
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::NoPage | Refusal::NoService | Refusal::NoFile => StatusCode::NOT_FOUND,
            Refusal::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Refusal::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Refusal::BodyUnreadable | Refusal::MalformedForm => StatusCode::BAD_REQUEST,
            Refusal::TypeNotAllowed(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::CallFailed { error, .. } => match error {
                CallError::Trap(_) => StatusCode::INTERNAL_SERVER_ERROR,
                CallError::Timeout(_) | CallError::MemoryExceeded(_) | CallError::Overloaded(_) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
            },
            Refusal::InvalidAnswer => StatusCode::BAD_GATEWAY,
            Refusal::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A stable code for programs (the `error` of the JSON answer).
    fn code(&self) -> &'static str {
        match self {
            Refusal::NoPage | Refusal::NoService | Refusal::NoFile => "not_found",
            Refusal::UriTooLong { .. } => "uri_too_long",
            Refusal::BodyTooLarge { .. } => "payload_too_large",
            Refusal::BodyTimeout => "request_timeout",
            Refusal::BodyUnreadable | Refusal::MalformedForm => "bad_request",
            Refusal::TypeNotAllowed(_) => "unsupported_media_type",
            Refusal::CallFailed { error, .. } => match error {
                CallError::Trap(_) => "service_failed",
                CallError::Timeout(_) => "service_timeout",
                CallError::MemoryExceeded(_) => "service_out_of_resources",
                CallError::Overloaded(_) => "overloaded",
            },
            Refusal::InvalidAnswer => "bad_gateway",
            Refusal::Unavailable => "unavailable",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Refusal::NoPage => "Page not found",
            Refusal::NoService => "Service not found",
            Refusal::NoFile => "File not found",
            Refusal::UriTooLong { .. } => "Address too long",
            Refusal::BodyTooLarge { .. } => "Request too large",
            Refusal::BodyTimeout => "Request too slow",
            Refusal::BodyUnreadable | Refusal::MalformedForm => "Bad request",
            Refusal::TypeNotAllowed(_) => "File type not accepted",
            Refusal::CallFailed { .. } | Refusal::InvalidAnswer | Refusal::Unavailable => {
                "Service unavailable"
            }
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::NoPage => "There is no page at this address.".to_owned(),
            Refusal::NoService => "No service is installed at this address.".to_owned(),
            Refusal::NoFile => "There is no file at this address.".to_owned(),
            Refusal::UriTooLong { limit } => {
                format!("The address is longer than the {limit} bytes this site accepts.")
            }
            Refusal::BodyTooLarge { limit } => {
                format!("The request body is larger than the {limit} bytes this site accepts.")
            }
            Refusal::BodyTimeout => "The request body did not arrive in time.".to_owned(),
            Refusal::BodyUnreadable => "The request body could not be read.".to_owned(),
            Refusal::MalformedForm => "The form data could not be read.".to_owned(),
            Refusal::TypeNotAllowed(declared) => {
                format!("This service does not accept files of type {declared}.")
            }
            Refusal::CallFailed { service, error } => match error {
                CallError::Trap(_) => {
                    format!("The service “{service}” failed while answering. The incident has been logged.")
                }
                CallError::Timeout(_) => {
                    format!("The service “{service}” took too long to answer. Please try again later.")
                }
                CallError::MemoryExceeded(_) => {
                    format!("The service “{service}” ran out of resources. Please try again later.")
                }
                CallError::Overloaded(_) => "The site is very busy. Please try again in a moment.".to_owned(),
            },
            Refusal::InvalidAnswer => {
                "The service gave an answer this site cannot use. The incident has been logged.".to_owned()
            }
            Refusal::Unavailable => "The file cannot be read right now. Please try again later.".to_owned(),
        }
    }

    /// The rest of the request is still on the wire: close rather than read it.
    fn closes_connection(&self) -> bool {
        matches!(
            self,
            Refusal::BodyTooLarge { .. }
                | Refusal::BodyTimeout
                | Refusal::BodyUnreadable
                | Refusal::MalformedForm
                | Refusal::TypeNotAllowed(_)
                | Refusal::UriTooLong { .. }
        )
    }

    /// The answer: JSON when `json`, else an error page in the layout.
    pub(crate) fn respond(self, app: &App, json: bool, request_id: Option<&str>) -> HttpResponse {
        let status = self.status();
        let message = self.message();
        let mut response = if json {
            let mut body = serde_json::json!({ "error": self.code(), "message": message });
            if let Some(id) = request_id {
                body["request_id"] = id.into();
            }
            (status, Json(body)).into_response()
        } else {
            super::error_page(app, status, self.title(), &message, request_id)
        };
        let headers = response.headers_mut();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.closes_connection() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// Whether the request ranks `application/json` above `text/html` in `Accept` (a
/// browser's `*/*;q=0.8` ranks both the same: it gets the page).
pub(crate) fn prefers_json(headers: &HeaderMap) -> bool {
    let mut json: (u8, f32) = (0, 0.0);
    let mut html: (u8, f32) = (0, 0.0);
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok());
    for range in accept.flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0)
            .clamp(0.0, 1.0);
        // The most specific range that matches a type decides its weight.
        let specificity = |full: &str, family: &str| match media.as_str() {
            m if m == full => 3,
            m if m == family => 2,
            "*/*" => 1,
            _ => 0,
        };
        for (target, full, family) in [
            (&mut json, "application/json", "application/*"),
            (&mut html, "text/html", "text/*"),
        ] {
            let s = specificity(full, family);
            if s > target.0 {
                *target = (s, q);
            }
        }
    }
    json.1 > html.1
}

#[cfg(test)]
mod tests {
    use super::prefers_json;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn with_accept(accept: &'static str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_static(accept));
        prefers_json(&h)
    }

    #[test]
    fn json_only_when_ranked_above_html() {
        assert!(!prefers_json(&HeaderMap::new()));
        assert!(with_accept("application/json"));
        assert!(with_accept("application/json, text/html;q=0.9"));
        assert!(with_accept("text/html;q=0.5, application/*"));
        assert!(with_accept("APPLICATION/JSON;q=0.8, */*;q=0.1"));
        assert!(!with_accept(
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        ));
        assert!(!with_accept("*/*"));
        assert!(!with_accept("application/json;q=0.5, text/html"));
        assert!(!with_accept("application/json;q=0"));
        assert!(!with_accept("text/plain"));
    }
}
