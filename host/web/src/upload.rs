//! Request bodies of plugins holding the `files` grant: `multipart/form-data` bodies are
//! checked as they stream (`multer`), so a file of a type the plugin may not store (415) or
//! larger than it may store (413) is refused before the rest of the body is read; a body
//! that passes reaches the plugin byte for byte.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::http::{HeaderMap, header};
use futures_util::{Stream, StreamExt};

use lutetia_model::manifest::FilesCapability;

/// Room for the multipart framing (boundaries, part headers) on top of the largest file.
pub const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Why an upload was refused.
#[derive(Debug)]
pub enum UploadError {
    /// The body or one part is larger than allowed.
    TooLarge,
    /// A file part declares a media type the plugin may not store.
    TypeNotAllowed(String),
    /// The body is not well-formed multipart.
    Malformed(String),
    /// The connection failed while reading.
    Unreadable,
}

/// The body limit of a plugin: the host's, raised to fit the largest file it may store.
pub fn body_limit(host_limit: usize, grant: Option<&FilesCapability>) -> usize {
    match grant {
        Some(g) => host_limit
            .max(usize::try_from(g.max_size.saturating_add(MULTIPART_OVERHEAD)).unwrap_or(usize::MAX)),
        None => host_limit,
    }
}

/// The boundary when the request is `multipart/form-data`.
pub fn multipart_boundary(headers: &HeaderMap) -> Option<Result<String, UploadError>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let is_form = content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("multipart/form-data"));
    is_form.then(|| multer::parse_boundary(content_type).map_err(|e| UploadError::Malformed(e.to_string())))
}

struct TeeState {
    stream: BodyDataStream,
    copy: Vec<u8>,
    limit: usize,
    over: bool,
}

/// Passes the body's chunks on to the parser while keeping a copy, up to `limit` bytes.
#[derive(Clone)]
struct Tee(Arc<Mutex<TeeState>>);

#[derive(Debug, thiserror::Error)]
#[error("request body larger than the limit")]
struct OverLimit;

impl Stream for Tee {
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Ok(mut state) = self.0.lock() else {
            return Poll::Ready(None);
        };
        match state.stream.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if state.copy.len() + chunk.len() > state.limit {
                    state.over = true;
                    return Poll::Ready(Some(Err(Box::new(OverLimit))));
                }
                state.copy.extend_from_slice(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Reads a multipart body, checking every file part against the grant as it arrives.
pub async fn read_multipart(
    body: Body,
    boundary: String,
    limit: usize,
    grant: &FilesCapability,
) -> Result<Bytes, UploadError> {
    let tee = Tee(Arc::new(Mutex::new(TeeState {
        stream: body.into_data_stream(),
        copy: Vec::new(),
        limit,
        over: false,
    })));
    let constraints = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(limit as u64)
            .per_field(grant.max_size),
    );
    let mut multipart = multer::Multipart::with_constraints(tee.clone(), boundary, constraints);
    let over = |tee: &Tee| tee.0.lock().map(|s| s.over).unwrap_or(true);
    let failed = |e: multer::Error, tee: &Tee| match e {
        _ if over(tee) => UploadError::TooLarge,
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            UploadError::TooLarge
        }
        multer::Error::StreamReadFailed(_) => UploadError::Unreadable,
        other => UploadError::Malformed(other.to_string()),
    };
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(failed(e, &tee)),
        };
        // A browser sends an empty part with no file name when no file was chosen.
        if field.file_name().is_some_and(|name| !name.is_empty()) {
            let declared = field.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |m| m.essence_str().to_owned(),
            );
            if !lutetia_services::files::type_allowed(grant, &declared) {
                return Err(UploadError::TypeNotAllowed(declared));
            }
        }
        loop {
            match field.chunk().await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err(failed(e, &tee)),
            }
        }
    }
    drop(multipart);
    // Whatever follows the closing boundary belongs to the body too.
    let mut rest = tee.clone();
    while let Some(chunk) = rest.next().await {
        if chunk.is_err() {
            return Err(if over(&tee) {
                UploadError::TooLarge
            } else {
                UploadError::Unreadable
            });
        }
    }
    let copy = tee
        .0
        .lock()
        .map(|mut s| std::mem::take(&mut s.copy))
        .map_err(|_| UploadError::Unreadable)?;
    Ok(Bytes::from(copy))
}
