//! Who is calling: principals and the authenticators that produce them.
//!
//! Transports extract a token (Socket.IO `auth.token`, or an `Authorization: Bearer`
//! header) and ask the configured [`Authenticator`] for the [`Principal`] it stands for.

use std::sync::Arc;

use agent_runtime_api::Secret;

use crate::error::{ErrorCode, RuntimeError};

/// The identity a request acts as. Sessions belong to the principal that created them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// A stable id: the owner stored on session records.
    pub id: Arc<str>,
}

impl Principal {
    /// A principal with this id.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self { id: id.into() }
    }
}

/// Turns the token a caller presented into a principal.
///
/// # Behavior
/// - `token` is `None` when the caller presented no token at all.
/// - A rejected caller gets [`ErrorCode::Unauthorized`]; the message never repeats the
///   token or the expected secret.
/// - Implementations are cheap and synchronous: they run on every handshake and request.
pub trait Authenticator: Send + Sync {
    /// The principal this token stands for, or `unauthorized`.
    fn authenticate(&self, token: Option<&str>) -> Result<Principal, RuntimeError>;
}

/// `auth.mode = "none"`: every caller, with any token or none, is the principal `local`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth;

impl NoAuth {
    /// The id of the one principal this authenticator knows.
    pub const PRINCIPAL: &'static str = "local";
}

impl Authenticator for NoAuth {
    fn authenticate(&self, _token: Option<&str>) -> Result<Principal, RuntimeError> {
        Ok(Principal::new(Self::PRINCIPAL))
    }
}

/// `auth.mode = "shared-secret"`: callers that present the one configured secret are the
/// principal `shared-secret`.
///
/// The comparison runs in constant time for tokens of the secret's length, so response
/// timing does not reveal how many leading bytes were right. An empty secret rejects
/// every caller: a misconfiguration fails closed.
#[derive(Clone, Debug)]
pub struct SharedSecret {
    secret: Secret,
}

impl SharedSecret {
    /// The id of the principal a valid secret stands for.
    pub const PRINCIPAL: &'static str = "shared-secret";

    /// An authenticator that accepts exactly this secret.
    pub fn new(secret: Secret) -> Self {
        Self { secret }
    }
}

impl Authenticator for SharedSecret {
    fn authenticate(&self, token: Option<&str>) -> Result<Principal, RuntimeError> {
        let presented = token.unwrap_or_default().as_bytes();
        let matches = !self.secret.is_empty() && self.secret.matches(presented);
        if matches {
            Ok(Principal::new(Self::PRINCIPAL))
        } else {
            Err(unauthorized(token.is_some()))
        }
    }
}

/// The rejection every authenticator returns; it says whether a token was presented,
/// never what it was.
pub fn unauthorized(token_presented: bool) -> RuntimeError {
    let message = if token_presented {
        "the token is not valid"
    } else {
        "a token is required (Socket.IO `auth.token` or `Authorization: Bearer <token>`)"
    };
    RuntimeError::new(ErrorCode::Unauthorized, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_auth_accepts_anything_as_local() {
        for token in [None, Some(""), Some("whatever")] {
            let principal = NoAuth.authenticate(token).unwrap();
            assert_eq!(&*principal.id, "local");
        }
    }

    #[test]
    fn shared_secret_accepts_the_secret() {
        let auth = SharedSecret::new(Secret::new("s3cret-value"));
        let principal = auth.authenticate(Some("s3cret-value")).unwrap();
        assert_eq!(&*principal.id, "shared-secret");
    }

    #[test]
    fn shared_secret_rejects_everything_else() {
        let auth = SharedSecret::new(Secret::new("s3cret-value"));
        let wrong = [
            None,
            Some(""),
            Some("s3cret-valuE"),
            Some("s3cret-valu"),
            Some("s3cret-value "),
            Some("S3CRET-VALUE"),
        ];
        for token in wrong {
            let err = auth.authenticate(token).unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized, "{token:?}");
            assert!(!err.message.contains("s3cret"), "{}", err.message);
        }
    }

    #[test]
    fn empty_secret_fails_closed() {
        let auth = SharedSecret::new(Secret::default());
        assert!(auth.authenticate(Some("")).is_err());
        assert!(auth.authenticate(None).is_err());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let shown = format!("{:?}", SharedSecret::new(Secret::new("s3cret-value")));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
