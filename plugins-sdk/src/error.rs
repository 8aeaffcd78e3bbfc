//! The SDK's error type, mirroring the WIT `error` variant.

use std::fmt;

use crate::__bindings::lutetia::plugin::types::Error as WitError;

/// An error from one of the host's services, or from decoding a request body.
///
/// The cases mirror the `error` variant of `lutetia:plugin/types`. [`Error::status`] maps
/// each one to an HTTP status, and an `Error` converts into a JSON [`Response`] or a
/// [`Reply`], so a handler can use `?` in a helper and convert at the end:
///
/// ```no_run
/// use lutetia_sdk::{kv, Error, Plugin, Reply, Request, Response};
///
/// fn counter(req: &Request) -> Result<Reply, Error> {
///     let n = kv::increment(req.path(), 1)?;
///     Ok(Response::json(&n).into())
/// }
///
/// struct Counter;
///
/// impl Plugin for Counter {
///     fn handle(req: Request) -> Reply {
///         counter(&req).into()
///     }
/// }
/// ```
///
/// [`Response`]: crate::Response
/// [`Reply`]: crate::Reply
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The thing asked for does not exist.
    NotFound,
    /// The plugin was not granted this capability, or the call is not allowed.
    Denied,
    /// A concurrent change won (stale version, unique constraint, failed precondition).
    Conflict,
    /// The arguments (or the request body being decoded) are invalid; the string says why.
    Invalid(String),
    /// The plugin's quota for this service is used up.
    QuotaExceeded,
    /// The service is temporarily unavailable; the string says why.
    Unavailable(String),
}

impl Error {
    /// The HTTP status that best describes the error: 404, 403, 409, 400, 429 or 503.
    ///
    /// ```
    /// use lutetia_sdk::Error;
    ///
    /// assert_eq!(Error::NotFound.status(), 404);
    /// assert_eq!(Error::Invalid("bad key".into()).status(), 400);
    /// ```
    pub fn status(&self) -> u16 {
        match self {
            Error::NotFound => 404,
            Error::Denied => 403,
            Error::Conflict => 409,
            Error::Invalid(_) => 400,
            Error::QuotaExceeded => 429,
            Error::Unavailable(_) => 503,
        }
    }

    /// A short machine-readable code, the WIT case name: `not-found`, `denied`,
    /// `conflict`, `invalid`, `quota-exceeded` or `unavailable`.
    ///
    /// ```
    /// use lutetia_sdk::Error;
    ///
    /// assert_eq!(Error::QuotaExceeded.code(), "quota-exceeded");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound => "not-found",
            Error::Denied => "denied",
            Error::Conflict => "conflict",
            Error::Invalid(_) => "invalid",
            Error::QuotaExceeded => "quota-exceeded",
            Error::Unavailable(_) => "unavailable",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotFound => f.write_str("not found"),
            Error::Denied => f.write_str("denied"),
            Error::Conflict => f.write_str("conflict"),
            Error::Invalid(why) => write!(f, "invalid: {why}"),
            Error::QuotaExceeded => f.write_str("quota exceeded"),
            Error::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<WitError> for Error {
    fn from(e: WitError) -> Error {
        match e {
            WitError::NotFound => Error::NotFound,
            WitError::Denied => Error::Denied,
            WitError::Conflict => Error::Conflict,
            WitError::Invalid(why) => Error::Invalid(why),
            WitError::QuotaExceeded => Error::QuotaExceeded,
            WitError::Unavailable(why) => Error::Unavailable(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_codes() {
        assert_eq!(Error::NotFound.to_string(), "not found");
        assert_eq!(
            Error::Invalid("key too long".into()).to_string(),
            "invalid: key too long"
        );
        assert_eq!(
            Error::Unavailable("db down".into()).to_string(),
            "unavailable: db down"
        );
        assert_eq!(Error::Denied.code(), "denied");
        assert_eq!(Error::Conflict.status(), 409);
        assert_eq!(Error::QuotaExceeded.status(), 429);
        assert_eq!(Error::Unavailable(String::new()).status(), 503);
    }

    #[test]
    fn from_wit() {
        assert_eq!(Error::from(WitError::NotFound), Error::NotFound);
        assert_eq!(
            Error::from(WitError::Invalid("x".into())),
            Error::Invalid("x".into())
        );
        assert_eq!(
            Error::from(WitError::Unavailable("y".into())),
            Error::Unavailable("y".into())
        );
    }
}
