//! The error every adapter call returns.
//!
//! An [`AdapterError`] carries what the runtime branches on, its [`ErrorKind`], and what a
//! person reading a log needs: the operation that failed (`"SessionStore::append_batch"`),
//! what it was about (`session`, `key`, `path`, …), a message, and the backend's own
//! error as its [`source`](std::error::Error::source). Its `Display` writes all of them on
//! one line:
//!
//! ```text
//! SessionStore::append_batch: unavailable: appending events (session=s-1): connection refused
//! ```
//!
//! An adapter builds the error where it converts a backend's failure, with the kind, a
//! message, the context it knows and the backend error as the source; the runtime adds
//! the operation where it calls the adapter, in one place per trait, so an adapter does
//! not have to.
//!
//! ```
//! use agent_runtime_api::{AdapterError, ErrorKind};
//!
//! let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
//! let error = AdapterError::unavailable("appending events")
//!     .with_context("session", "s-1")
//!     .with_source(refused)
//!     .with_operation("SessionStore::append_batch");
//! assert_eq!(error.kind(), ErrorKind::Unavailable);
//! assert!(error.is_transient());
//! assert_eq!(
//!     error.to_string(),
//!     "SessionStore::append_batch: unavailable: appending events (session=s-1): connection refused",
//! );
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;

/// The result of every adapter call.
pub type AdapterResult<T> = Result<T, AdapterError>;

/// What went wrong in an adapter, in the terms the runtime branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist.
    NotFound,
    /// The write lost a race or would overwrite something that must not be overwritten
    /// (an existing session id, a stale record version).
    Conflict,
    /// The caller passed something the adapter refuses (a bad path, an out-of-order seq).
    InvalidInput,
    /// The thing asked for is larger than the caller allows (a file over a size limit).
    TooLarge,
    /// The backend cannot be reached or answered with a transient failure; retrying later
    /// may succeed.
    Unavailable,
    /// Any other failure; not worth retrying.
    Other,
}

impl ErrorKind {
    /// The kind as the words an error's `Display` starts with (`"not found"`), or `""`
    /// for [`ErrorKind::Other`], whose message says it all.
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::TooLarge => "too large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Other => "",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Other => f.write_str("other"),
            kind => f.write_str(kind.as_str()),
        }
    }
}

/// The source of an error: any error that may cross threads, shared so that the
/// [`AdapterError`] stays `Clone`.
type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// The error of an adapter call: its [`ErrorKind`], a message, the operation that failed,
/// what it was about (key/value context) and the backend error that caused it.
///
/// Match on [`kind`](Self::kind) (`error.kind() == ErrorKind::NotFound`); read
/// [`message`](Self::message) for the adapter's own words without the rest, e.g. to show
/// a person why a path was refused. The `Display` is one line: `operation: kind: message
/// (key=value, …): source: source's source…`, each part only where there is one. The
/// source is also returned by [`std::error::Error::source`], for code that downcasts it
/// or walks the chain.
#[derive(Clone)]
pub struct AdapterError {
    kind: ErrorKind,
    message: String,
    operation: Option<&'static str>,
    context: Vec<(&'static str, String)>,
    source: Option<Source>,
}

impl AdapterError {
    /// An error of `kind` saying `message`, with no operation, context or source yet.
    /// The message may be empty where the source says it all.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        AdapterError {
            kind,
            message: message.into(),
            operation: None,
            context: Vec::new(),
            source: None,
        }
    }

    /// An [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// An [`ErrorKind::Conflict`] error.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// An [`ErrorKind::InvalidInput`] error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// An [`ErrorKind::TooLarge`] error.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }

    /// An [`ErrorKind::Unavailable`] error: the backend is away, retrying may succeed.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// An [`ErrorKind::Other`] error.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// Names the operation that failed, as `Trait::method` (`"BlobStore::put"`,
    /// `"Sandbox::exec"`). An operation named before (an adapter's inner call) is kept
    /// as the context `called`, so the outer call names the error and the inner one
    /// stays visible.
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        if let Some(inner) = self.operation.replace(operation)
            && inner != operation
        {
            self.context.push(("called", inner.to_owned()));
        }
        self
    }

    /// Adds what the failed call was about: `("session", id)`, `("key", key)`,
    /// `("path", path)`. A key already there is given its new value.
    pub fn with_context(mut self, key: &'static str, value: impl fmt::Display) -> Self {
        let value = value.to_string();
        match self.context.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.context.push((key, value)),
        }
        self
    }

    /// Keeps `source`, the error that caused this one, as the error's source: its text
    /// ends the `Display`, and [`std::error::Error::source`] returns it. A source set
    /// before is replaced.
    pub fn with_source(mut self, source: impl StdError + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// What kind of failure this is: what the runtime branches on.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The adapter's message, without the operation, context or source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The operation that failed, once one is named.
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// What the failed call was about, in the order it was added.
    pub fn context(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.context.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Unavailable
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each part is written where there is one, after a `: ` where something precedes.
        let mut first = true;
        let mut part = |f: &mut fmt::Formatter<'_>, text: &dyn fmt::Display| {
            let separator = if std::mem::take(&mut first) { "" } else { ": " };
            write!(f, "{separator}{text}")
        };
        if let Some(operation) = self.operation {
            part(f, &operation)?;
        }
        if self.kind != ErrorKind::Other {
            part(f, &self.kind.as_str())?;
        }
        if !self.message.is_empty() {
            part(f, &self.message)?;
        }
        if !self.context.is_empty() {
            let pairs = self
                .context
                .iter()
                .map(|(key, value)| format!("{key}={value}"));
            let pairs = format!("({})", pairs.collect::<Vec<_>>().join(", "));
            // The context belongs to what precedes it: a space, not a `: `.
            if self.operation.is_some() || self.kind != ErrorKind::Other || !self.message.is_empty()
            {
                write!(f, " {pairs}")?;
            } else {
                part(f, &pairs)?;
            }
        }
        // The whole chain, so that one line says why; a link whose text its parent
        // already wrote (many errors print their source inline) is not written again.
        let mut written = String::new();
        let mut next: Option<&(dyn StdError + 'static)> = self.source.as_deref().map(|s| s as _);
        while let Some(error) = next {
            let text = error.to_string();
            if !text.is_empty() && !written.contains(&text) {
                part(f, &text)?;
                written = text;
            }
            next = error.source();
        }
        Ok(())
    }
}

impl fmt::Debug for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("AdapterError");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(operation) = self.operation {
            s.field("operation", &operation);
        }
        if !self.context.is_empty() {
            s.field("context", &self.context);
        }
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        s.finish()
    }
}

impl StdError for AdapterError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl fmt::Display for Wrapped {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error sending request")
        }
    }

    impl StdError for Wrapped {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    fn sample() -> AdapterError {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        AdapterError::unavailable("writing the object")
            .with_context("key", "sessions/s-1/files/a.txt")
            .with_source(Wrapped(refused))
            .with_operation("BlobStore::put")
    }

    /// One line names the call, the kind, the message, what it was about and the whole
    /// chain of causes; the source is also the error's `source()`.
    #[test]
    fn display_names_the_operation_context_and_every_source() {
        let error = sample();
        assert_eq!(
            error.to_string(),
            "BlobStore::put: unavailable: writing the object \
             (key=sessions/s-1/files/a.txt): error sending request: refused"
        );
        let source = StdError::source(&error).expect("a source");
        assert_eq!(source.to_string(), "error sending request");
        assert!(source.source().is_some());
    }

    #[test]
    fn debug_shows_every_field() {
        let debug = format!("{:?}", sample());
        assert_eq!(
            debug,
            "AdapterError { kind: Unavailable, message: \"writing the object\", \
             operation: \"BlobStore::put\", context: [(\"key\", \"sessions/s-1/files/a.txt\")], \
             source: Wrapped(Custom { kind: ConnectionRefused, error: \"refused\" }) }"
        );
    }

    /// Without operation, context or source the text is the kind and the message, as
    /// an adapter's own tests and the runtime's refusals read it.
    #[test]
    fn a_bare_error_is_its_kind_and_message() {
        assert_eq!(
            AdapterError::not_found("session s-1").to_string(),
            "not found: session s-1"
        );
        assert_eq!(AdapterError::other("disk full").to_string(), "disk full");
        assert_eq!(
            format!("{:?}", AdapterError::conflict("x")),
            "AdapterError { kind: Conflict, message: \"x\" }"
        );
    }

    /// An outer operation names the error; the inner one stays as `called`.
    #[test]
    fn a_second_operation_keeps_the_first_as_context() {
        let error = AdapterError::other("boom")
            .with_operation("Modal::SandboxCreate")
            .with_operation("SandboxProvider::create");
        assert_eq!(error.operation(), Some("SandboxProvider::create"));
        assert_eq!(
            error.to_string(),
            "SandboxProvider::create: boom (called=Modal::SandboxCreate)"
        );
        let again = error.clone().with_operation("SandboxProvider::create");
        assert_eq!(again.context().count(), 1);
    }

    #[test]
    fn a_source_printing_its_own_source_is_not_repeated() {
        #[derive(Debug)]
        struct Inline(std::io::Error);
        impl fmt::Display for Inline {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "query failed: {}", self.0)
            }
        }
        impl StdError for Inline {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let io = std::io::Error::other("pipe closed");
        let error = AdapterError::other("reading events").with_source(Inline(io));
        assert_eq!(
            error.to_string(),
            "reading events: query failed: pipe closed"
        );
    }

    /// An empty message leaves the words to the source.
    #[test]
    fn a_source_may_say_it_all() {
        let io = std::io::Error::other("disk full");
        let error = AdapterError::new(ErrorKind::Other, "").with_source(io);
        assert_eq!(error.to_string(), "disk full");
        let io = std::io::Error::other("timed out");
        let error = AdapterError::unavailable("").with_source(io);
        assert_eq!(error.to_string(), "unavailable: timed out");
    }

    #[test]
    fn only_unavailable_is_transient() {
        assert!(AdapterError::unavailable("down").is_transient());
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::InvalidInput,
            ErrorKind::TooLarge,
            ErrorKind::Other,
        ] {
            assert!(!AdapterError::new(kind, "x").is_transient(), "{kind}");
        }
    }
}
