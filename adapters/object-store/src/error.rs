//! Mapping `object_store` errors onto [`AdapterError`], the terms the runtime branches on.

use std::error::Error as StdError;

use agent_runtime_api::{AdapterError, ErrorKind};

/// Maps an error of operation `operation` on `target` (a key or prefix) to an
/// [`AdapterError`] about `key` `target`, whose source is the backend's error.
pub(crate) fn map_error(operation: &str, target: &str, error: object_store::Error) -> AdapterError {
    use object_store::Error as E;
    let kind = match &error {
        E::NotFound { .. } => ErrorKind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => ErrorKind::Conflict,
        E::InvalidPath { .. } => ErrorKind::InvalidInput,
        _ if is_transient(&error) => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    };
    AdapterError::new(kind, format!("object store {operation}"))
        .with_context("key", target)
        .with_source(error)
}

/// Whether retrying later may help: the service could not be reached, timed out, or
/// answered with a 5xx or 429 after the client's own retries ran out.
fn is_transient(error: &object_store::Error) -> bool {
    let mut current: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(error) = current {
        if is_transient_http(error) || status_in_message(&error.to_string()).is_some_and(retryable)
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
            )
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// The HTTP client's own classification, present only when an HTTP backend is compiled in.
#[cfg(feature = "s3")]
fn is_transient_http(error: &(dyn StdError + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    error.downcast_ref::<HttpError>().is_some_and(|http| {
        matches!(
            http.kind(),
            HttpErrorKind::Connect
                | HttpErrorKind::Request
                | HttpErrorKind::Timeout
                | HttpErrorKind::Interrupted
        )
    })
}

#[cfg(not(feature = "s3"))]
fn is_transient_http(_error: &(dyn StdError + 'static)) -> bool {
    false
}

/// The HTTP status in an error message of the form "... status code: 503 ...".
///
/// `object_store` does not export the error type that carries the status, so its message,
/// which it formats as "Server returned non-2xx status code: {status}", is the only place
/// the status can be read from.
fn status_in_message(message: &str) -> Option<u16> {
    const MARKER: &str = "status code: ";
    let start = message.find(MARKER)? + MARKER.len();
    let digits = message.get(start..start + 3)?;
    digits.parse().ok()
}

fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_from_the_message() {
        let message = "Generic S3 error: Error performing PUT http://h/b/k in 1s, after 10 retries - \
                       Server returned non-2xx status code: 503 Service Unavailable: slow down";
        assert_eq!(status_in_message(message), Some(503));
        assert_eq!(status_in_message("status code: 4"), None);
        assert_eq!(status_in_message("no status here"), None);
        assert!(retryable(503) && retryable(429) && !retryable(404) && !retryable(400));
    }

    #[test]
    fn maps_each_kind() {
        let not_found = object_store::Error::NotFound {
            path: "k".into(),
            source: "gone".into(),
        };
        assert_eq!(map_error("get", "k", not_found).kind(), ErrorKind::NotFound);
        let server = object_store::Error::Generic {
            store: "S3",
            source: "Server returned non-2xx status code: 502 Bad Gateway: ".into(),
        };
        assert!(map_error("put", "k", server).is_transient());
        let refused = object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        };
        assert!(map_error("put", "k", refused).is_transient());
        let denied = object_store::Error::PermissionDenied {
            path: "k".into(),
            source: "Server returned non-2xx status code: 403 Forbidden".into(),
        };
        let mapped = map_error("put", "k", denied);
        assert!(mapped.kind() == ErrorKind::Other, "{mapped:?}");
        assert!(
            mapped.to_string().contains("object store put (key=k)"),
            "{mapped}"
        );
    }
}
