//! Who is calling: principals and the authenticators that produce them.
//!
//! Transports extract a token (Socket.IO `auth.token`, or an `Authorization: Bearer`
//! header) and ask the configured [`Authenticator`] for the [`Principal`] it stands for.
//!
//! # Layout
//! - this module: [`Principal`], the [`Authenticator`] trait, `none` and `shared-secret`,
//!   and [`Principals`], which routes a token to the API keys or the JWT verifier.
//! - [`keys`]: API keys (generated, hashed, looked up in the session store, cached).
//! - [`jwt`]: JWTs signed with a shared secret or with keys from a JWKS URL.

use std::sync::Arc;

use agent_runtime_api::{QuotaOverrides, Secret};
use async_trait::async_trait;

use crate::error::{ErrorCode, RuntimeError};

pub mod jwt;
pub mod keys;

/// The identity a request acts as. Sessions belong to the principal that created them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// A stable id: the owner stored on session records.
    pub id: Arc<str>,
    /// Whether this principal may list and act on every principal's sessions, and create
    /// sessions on behalf of another principal.
    pub admin: bool,
    /// Limits that replace the configured defaults for this principal (set per API key).
    pub quotas: QuotaOverrides,
}

impl Principal {
    /// A principal with this id, no admin rights and the default limits.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        Self {
            id: id.into(),
            admin: false,
            quotas: QuotaOverrides::default(),
        }
    }

    /// An admin principal with this id.
    pub fn admin(id: impl Into<Arc<str>>) -> Self {
        Self {
            admin: true,
            ..Self::new(id)
        }
    }

    /// Whether this principal may see and act on a session owned by `owner`.
    pub fn may_access(&self, owner: &str) -> bool {
        self.admin || *self.id == *owner
    }
}

/// The longest principal id accepted (a JWT `sub`, an admin's `owner`).
pub const MAX_PRINCIPAL_LEN: usize = 256;

/// Whether `id` can be a principal: 1 to [`MAX_PRINCIPAL_LEN`] bytes without control
/// characters. Ids from identity providers (`auth0|123`, emails, URLs) all fit.
pub fn valid_principal_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_PRINCIPAL_LEN && !id.chars().any(char::is_control)
}

/// Turns the token a caller presented into a principal.
///
/// # Behavior
/// - `token` is `None` when the caller presented no token at all.
/// - A rejected caller gets [`ErrorCode::Unauthorized`]; the message never repeats the
///   token or the expected secret.
/// - It runs on every handshake and request, so it answers from memory when it can; a
///   lookup that has to leave the process (the session store, a JWKS URL) is cached and
///   bounded in time.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// The principal this token stands for, or `unauthorized`.
    async fn authenticate(&self, token: Option<&str>) -> Result<Principal, RuntimeError>;
}

/// `auth.mode = "none"`: every caller, with any token or none, is the principal `local`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoAuth;

impl NoAuth {
    /// The id of the one principal this authenticator knows.
    pub const PRINCIPAL: &'static str = "local";
}

#[async_trait]
impl Authenticator for NoAuth {
    async fn authenticate(&self, _token: Option<&str>) -> Result<Principal, RuntimeError> {
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

#[async_trait]
impl Authenticator for SharedSecret {
    async fn authenticate(&self, token: Option<&str>) -> Result<Principal, RuntimeError> {
        let presented = token.unwrap_or_default().as_bytes();
        let matches = !self.secret.is_empty() && self.secret.matches(presented);
        if matches {
            Ok(Principal::new(Self::PRINCIPAL))
        } else {
            Err(unauthorized(token.is_some()))
        }
    }
}

/// `auth.mode = "principals"`: every client is someone. A token that starts with
/// [`keys::KEY_PREFIX`] is an API key; anything else is verified as a JWT. Either kind is
/// refused when its part is not configured.
pub struct Principals {
    /// API keys, when `auth.api_keys` is on.
    pub keys: Option<keys::ApiKeys>,
    /// The JWT verifier, when `[auth.jwt]` is set.
    pub jwt: Option<jwt::JwtVerifier>,
}

#[async_trait]
impl Authenticator for Principals {
    async fn authenticate(&self, token: Option<&str>) -> Result<Principal, RuntimeError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(unauthorized(false));
        };
        if token.starts_with(keys::KEY_PREFIX) {
            return match &self.keys {
                Some(keys) => keys.authenticate(token).await,
                None => Err(unauthorized(true)),
            };
        }
        match &self.jwt {
            Some(jwt) => jwt.authenticate(token).await,
            None => Err(unauthorized(true)),
        }
    }
}

/// Checks again, for an open socket or stream, that `token` still stands for
/// `principal`, the one it stood for when the connection was let in.
///
/// # Behavior
/// - `Ok` while the token is valid for the same principal id.
/// - [`ErrorCode::Unauthorized`] when it is not any more (a revoked key, an expired JWT)
///   or now stands for someone else: the caller ends the connection.
/// - Any other error (the store that holds the keys is down) is `Ok`: an outage must not
///   cut off connections that were let in; the first answer stands until it is back.
pub async fn check_again(
    auth: &dyn Authenticator,
    token: Option<&str>,
    principal: &Principal,
) -> Result<(), RuntimeError> {
    match auth.authenticate(token).await {
        Ok(now) if now.id == principal.id => Ok(()),
        Ok(_) => Err(unauthorized(true)),
        Err(error) if error.code == ErrorCode::Unauthorized => Err(error),
        Err(error) => {
            tracing::debug!(principal = %principal.id, %error, "token not checked again");
            Ok(())
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

    #[tokio::test]
    async fn no_auth_accepts_anything_as_local() {
        for token in [None, Some(""), Some("whatever")] {
            let principal = NoAuth.authenticate(token).await.unwrap();
            assert_eq!(&*principal.id, "local");
        }
    }

    #[tokio::test]
    async fn shared_secret_accepts_the_secret() {
        let auth = SharedSecret::new(Secret::new("s3cret-value"));
        let principal = auth.authenticate(Some("s3cret-value")).await.unwrap();
        assert_eq!(&*principal.id, "shared-secret");
    }

    #[tokio::test]
    async fn shared_secret_rejects_everything_else() {
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
            let err = auth.authenticate(token).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized, "{token:?}");
            assert!(!err.message.contains("s3cret"), "{}", err.message);
        }
    }

    #[tokio::test]
    async fn empty_secret_fails_closed() {
        let auth = SharedSecret::new(Secret::default());
        assert!(auth.authenticate(Some("")).await.is_err());
        assert!(auth.authenticate(None).await.is_err());
    }

    /// An authenticator whose key store cannot be reached.
    struct Unreachable;

    #[async_trait]
    impl Authenticator for Unreachable {
        async fn authenticate(&self, _token: Option<&str>) -> Result<Principal, RuntimeError> {
            Err(RuntimeError::new(
                ErrorCode::StorageUnavailable,
                "the store is down",
            ))
        }
    }

    #[tokio::test]
    async fn a_token_checked_again_must_still_be_the_same_principal() {
        let auth = SharedSecret::new(Secret::new("s3cret-value"));
        let holder = Principal::new(SharedSecret::PRINCIPAL);
        check_again(&auth, Some("s3cret-value"), &holder)
            .await
            .unwrap();
        let revoked = check_again(&auth, Some("old-secret"), &holder).await;
        assert_eq!(revoked.unwrap_err().code, ErrorCode::Unauthorized);
        // Valid, but now someone else: refused.
        let other = check_again(&auth, Some("s3cret-value"), &Principal::new("bob")).await;
        assert_eq!(other.unwrap_err().code, ErrorCode::Unauthorized);
        // An outage keeps the connection.
        check_again(&Unreachable, Some("any"), &holder)
            .await
            .unwrap();
    }

    #[test]
    fn debug_redacts_the_secret() {
        let shown = format!("{:?}", SharedSecret::new(Secret::new("s3cret-value")));
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
