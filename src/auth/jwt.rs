//! JWTs issued by an application's backend, so that its users' browsers can connect
//! directly: `sub` is the principal, a configured claim set to `true` grants admin.
//!
//! Signed either with a shared secret (HS256) or with a key from a JWKS URL (RS256, ES256,
//! EdDSA). `iss`, `aud`, `exp` and `sub` are required; `exp` and `nbf` are checked with
//! `leeway`. The key set is fetched on first use, again after `jwks_refresh`, and at once
//! when a token names a `kid` the set does not have, at most one attempt a second (failed
//! attempts count) and waiting at most [`FETCH_TIMEOUT`]: a rotated key works from its
//! first token, and a flood of made-up `kid`s cannot turn into a flood of fetches, even
//! while the URL fails or hangs (the tokens are refused, or checked against the cached set).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Principal, unauthorized};
use crate::config::{JwtConfig, Secret};
use crate::error::RuntimeError;

/// The longest a request waits for the JWKS URL to answer.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The least time between two attempts to fetch the key set, successful or not, so that
/// unknown `kid`s cannot queue fetches while the URL fails or hangs.
const MIN_REFETCH: Duration = Duration::from_secs(1);

/// The algorithms accepted with keys from a JWKS URL. HMAC is left out: a public key set
/// must never be usable as a shared secret.
const JWKS_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Verifies JWTs and turns them into principals.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    admin_claim: Option<String>,
    leeway: Duration,
    keys: Keys,
}

enum Keys {
    Secret(DecodingKey),
    Jwks(Jwks),
}

/// The claims read from a verified token; the rest are kept for the admin claim.
#[derive(Deserialize)]
struct Claims {
    sub: String,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl JwtVerifier {
    /// A verifier for `[auth.jwt]`. The config is validated at load: exactly one of
    /// `secret` and `jwks_url` is set.
    pub fn new(config: &JwtConfig, http: reqwest::Client) -> Result<Self, String> {
        let keys = match (&config.secret, &config.jwks_url) {
            (Some(secret), None) => Keys::Secret(hmac_key(secret)?),
            (None, Some(url)) => Keys::Jwks(Jwks::new(url.clone(), http, config.jwks_refresh)),
            _ => return Err("set exactly one of `secret` and `jwks_url`".to_owned()),
        };
        Ok(Self {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            admin_claim: config.admin_claim.clone().filter(|c| !c.is_empty()),
            leeway: config.leeway,
            keys,
        })
    }

    /// The principal `sub` names, or `unauthorized` for a token that is malformed, signed
    /// with another key or algorithm, expired, not yet valid, or meant for another issuer
    /// or audience.
    pub async fn authenticate(&self, token: &str) -> Result<Principal, RuntimeError> {
        let rejected = |reason: &str| {
            tracing::debug!(reason, "JWT rejected");
            unauthorized(true)
        };
        let header = decode_header(token).map_err(|e| rejected(&e.to_string()))?;
        let (key, algorithm) = match &self.keys {
            Keys::Secret(key) if header.alg == Algorithm::HS256 => (key.clone(), header.alg),
            Keys::Secret(_) => return Err(rejected("not HS256")),
            Keys::Jwks(jwks) => {
                if !JWKS_ALGORITHMS.contains(&header.alg) {
                    return Err(rejected("algorithm not accepted with a JWKS"));
                }
                let key = jwks
                    .key(header.kid.as_deref(), header.alg)
                    .await
                    .ok_or_else(|| rejected("no key in the JWKS for this token"))?;
                (key, header.alg)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.leeway.as_secs();
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| rejected(&e.to_string()))?
            .claims;
        if !super::valid_principal_id(&claims.sub) {
            return Err(rejected("sub is empty, too long or has control characters"));
        }
        let admin = self
            .admin_claim
            .as_ref()
            .is_some_and(|claim| claims.other.get(claim) == Some(&Value::Bool(true)));
        Ok(Principal {
            admin,
            ..Principal::new(claims.sub)
        })
    }
}

impl JwtVerifier {
    /// For `agent-runtime check`: fetches the JWKS now and counts its usable keys. `None`
    /// with a secret instead of a JWKS URL.
    pub async fn check_key_set(&self) -> Option<Result<usize, String>> {
        let Keys::Jwks(jwks) = &self.keys else {
            return None;
        };
        let fetched = tokio::time::timeout(FETCH_TIMEOUT, jwks.fetch()).await;
        Some(match fetched {
            Ok(Ok(set)) if set.by_kid.is_empty() && set.only.is_none() => {
                Err("it holds no usable RS256, ES256 or EdDSA key".to_owned())
            }
            Ok(Ok(set)) => Ok(set.by_kid.len().max(usize::from(set.only.is_some()))),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(format!("no answer within {FETCH_TIMEOUT:?}")),
        })
    }
}

fn hmac_key(secret: &Secret) -> Result<DecodingKey, String> {
    DecodingKey::from_secret(secret.expose().as_bytes())
        .map_err(|e| format!("the secret cannot be used: {e}"))
}

/// A key set fetched from a URL and cached.
struct Jwks {
    url: String,
    http: reqwest::Client,
    refresh_every: Duration,
    current: RwLock<Option<Arc<KeySet>>>,
    // Held while fetching, so that concurrent misses wait for one fetch; holds when the
    // last fetch was attempted (successful or not), which `MIN_REFETCH` is measured from.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

struct KeySet {
    by_kid: HashMap<String, (DecodingKey, Option<Algorithm>)>,
    /// The one key of a set that has exactly one, for tokens without a `kid`.
    only: Option<(DecodingKey, Option<Algorithm>)>,
    fetched_at: Instant,
}

impl Jwks {
    fn new(url: String, http: reqwest::Client, refresh_every: Duration) -> Self {
        Self {
            url,
            http,
            refresh_every,
            current: RwLock::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    /// The key for `kid` usable with `algorithm`, fetching the set when it is missing,
    /// stale, or lacks the `kid`, unless a fetch was attempted less than [`MIN_REFETCH`]
    /// ago: then the cached set answers, or nothing does.
    async fn key(&self, kid: Option<&str>, algorithm: Algorithm) -> Option<DecodingKey> {
        let set = self.set(kid).await?;
        let (key, declared) = match kid {
            Some(kid) => set.by_kid.get(kid)?,
            None => set.only.as_ref()?,
        };
        // A key that names its algorithm is used with that one only.
        declared.is_none_or(|d| d == algorithm).then(|| key.clone())
    }

    async fn set(&self, kid: Option<&str>) -> Option<Arc<KeySet>> {
        let usable = |set: &KeySet| {
            set.fetched_at.elapsed() < self.refresh_every
                && kid.is_none_or(|kid| set.by_kid.contains_key(kid))
        };
        let cached = self.current.read().unwrap().clone();
        if let Some(set) = &cached
            && usable(set)
        {
            return cached;
        }
        let mut last_attempt = self.last_attempt.lock().await;
        // Another request may have fetched while this one waited, or tried and failed.
        let cached = self.current.read().unwrap().clone();
        if cached.as_deref().is_some_and(usable)
            || last_attempt.is_some_and(|at| at.elapsed() < MIN_REFETCH)
        {
            return cached;
        }
        *last_attempt = Some(Instant::now());
        match tokio::time::timeout(FETCH_TIMEOUT, self.fetch()).await {
            Ok(Ok(set)) => {
                let set = Arc::new(set);
                *self.current.write().unwrap() = Some(set.clone());
                Some(set)
            }
            Ok(Err(error)) => {
                tracing::warn!(url = %self.url, %error, "fetching the JWKS failed");
                cached
            }
            Err(_) => {
                tracing::warn!(url = %self.url, "fetching the JWKS timed out");
                cached
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, String> {
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        Ok(parse_key_set(&body))
    }
}

/// The usable keys of a JWKS document. Keys of unknown types, symmetric keys and keys
/// declared for another use than signatures are skipped, not fatal: a set may carry keys
/// for other consumers.
fn parse_key_set(body: &Value) -> KeySet {
    let mut by_kid = HashMap::new();
    let mut usable = Vec::new();
    let keys = body.get("keys").and_then(Value::as_array);
    for raw in keys.into_iter().flatten() {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if raw.get("kty").and_then(Value::as_str) == Some("oct") {
            continue;
        }
        if raw
            .get("use")
            .and_then(Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let declared = match jwk.common.key_algorithm {
            None => None,
            Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
            Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
            Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
            Some(_) => continue,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        if let Some(kid) = &jwk.common.key_id {
            by_kid.insert(kid.clone(), (key.clone(), declared));
        }
        usable.push((key, declared));
    }
    let only = if usable.len() == 1 {
        usable.pop()
    } else {
        None
    };
    KeySet {
        by_kid,
        only,
        fetched_at: Instant::now(),
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    const SECRET: &str = "an hs256 secret of enough length";

    fn config() -> JwtConfig {
        JwtConfig {
            issuer: "https://app.example".into(),
            audience: "agent-runtime".into(),
            secret: Some(Secret::new(SECRET)),
            jwks_url: None,
            admin_claim: Some("agentAdmin".into()),
            leeway: Duration::ZERO,
            jwks_refresh: Duration::from_secs(600),
        }
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn token(claims: Value, secret: &str) -> String {
        let key = EncodingKey::from_secret(secret.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    }

    fn claims(sub: &str) -> Value {
        json!({
            "sub": sub, "iss": "https://app.example", "aud": "agent-runtime",
            "exp": now() + 300, "nbf": now() - 10,
        })
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(&config(), reqwest::Client::new()).unwrap()
    }

    #[tokio::test]
    async fn a_valid_token_is_its_sub() {
        let principal = verifier()
            .authenticate(&token(claims("user-1"), SECRET))
            .await
            .unwrap();
        assert_eq!(&*principal.id, "user-1");
        assert!(!principal.admin);
    }

    #[tokio::test]
    async fn the_admin_claim_grants_admin_only_when_true() {
        let mut admin = claims("ops");
        admin["agentAdmin"] = json!(true);
        assert!(
            verifier()
                .authenticate(&token(admin, SECRET))
                .await
                .unwrap()
                .admin
        );
        let mut not = claims("ops");
        not["agentAdmin"] = json!("true");
        assert!(
            !verifier()
                .authenticate(&token(not, SECRET))
                .await
                .unwrap()
                .admin
        );
    }

    #[tokio::test]
    async fn bad_tokens_are_unauthorized() {
        let with = |field: &str, value: Value| {
            let mut c = claims("user-1");
            c[field] = value;
            token(c, SECRET)
        };
        let without = |field: &str| {
            let mut c = claims("user-1");
            c.as_object_mut().unwrap().remove(field);
            token(c, SECRET)
        };
        let cases = [
            ("expired", with("exp", json!(now() - 60))),
            ("not yet valid", with("nbf", json!(now() + 600))),
            ("wrong audience", with("aud", json!("someone-else"))),
            ("wrong issuer", with("iss", json!("https://evil.example"))),
            (
                "wrong key",
                token(claims("user-1"), "another secret entirely"),
            ),
            ("no exp", without("exp")),
            ("no sub", without("sub")),
            ("empty sub", with("sub", json!(""))),
            ("control characters in sub", with("sub", json!("a\nb"))),
            ("overlong sub", with("sub", json!("x".repeat(300)))),
            ("garbage", "not.a.jwt".to_owned()),
        ];
        for (what, token) in cases {
            let err = verifier().authenticate(&token).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized, "{what}");
        }
    }

    #[tokio::test]
    async fn an_unsigned_or_other_algorithm_token_is_refused() {
        // alg "none": header {"alg":"none"}, no signature.
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert!(verifier().authenticate(none).await.is_err());
        let key = EncodingKey::from_secret(SECRET.as_bytes()).unwrap();
        let hs384 = encode(&Header::new(Algorithm::HS384), &claims("x"), &key).unwrap();
        assert!(verifier().authenticate(&hs384).await.is_err());
    }

    /// A token whose header names `kid` (EdDSA); its claims and signature do not matter,
    /// it is refused before them.
    fn with_kid(header: &str) -> String {
        format!("{header}.e30.c2ln")
    }

    #[tokio::test]
    async fn made_up_kids_fetch_at_most_once_a_second_while_the_jwks_url_fails() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let fetches = Arc::new(AtomicUsize::new(0));
        let counted = fetches.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = JwtConfig {
            secret: None,
            jwks_url: Some(format!("http://{address}/jwks.json")),
            ..config()
        };
        let verifier = JwtVerifier::new(&config, reqwest::Client::new()).unwrap();
        // `{"alg":"EdDSA","kid":"made-up-N"}`
        let tokens = [
            "eyJhbGciOiJFZERTQSIsImtpZCI6Im1hZGUtdXAtMSJ9",
            "eyJhbGciOiJFZERTQSIsImtpZCI6Im1hZGUtdXAtMiJ9",
            "eyJhbGciOiJFZERTQSIsImtpZCI6Im1hZGUtdXAtMyJ9",
        ]
        .map(with_kid);
        for token in &tokens {
            let err = verifier.authenticate(token).await.unwrap_err();
            assert_eq!(err.code, ErrorCode::Unauthorized);
        }
        let together = futures::future::join_all(tokens.iter().map(|t| verifier.authenticate(t)));
        assert!(together.await.iter().all(Result::is_err));
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one failed fetch, then none"
        );
        tokio::time::sleep(MIN_REFETCH + Duration::from_millis(100)).await;
        assert!(verifier.authenticate(&tokens[0]).await.is_err());
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "a second later, one more"
        );
    }

    #[test]
    fn a_key_set_keeps_only_signature_keys() {
        let set = parse_key_set(&json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "oct", "kid": "b", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "c", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "unknown", "kid": "d"},
        ]}));
        assert_eq!(set.by_kid.keys().collect::<Vec<_>>(), vec!["a"]);
        assert!(set.only.is_some());
    }
}
