//! Short-lived JWTs: reading their expiry and deciding when to fetch a new one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use tokio::time::Instant;

/// Lifetime assumed for a token whose payload has no `exp`.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(20 * 60);

/// A token and the instants that matter for it.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The JWT as sent in headers.
    pub value: String,
    /// After this instant the token is fetched again before use.
    pub refresh_at: Instant,
    /// The token's own expiry, as far as it tells.
    pub expires_at: Instant,
}

impl Token {
    /// Wraps a fresh JWT. Its refresh is due after 50–60 % of its remaining lifetime (the
    /// jitter keeps many runtimes from refreshing at once), as Modal's clients do.
    pub fn new(value: String) -> Self {
        let now = Instant::now();
        let lifetime = remaining_lifetime(&value).unwrap_or(DEFAULT_LIFETIME);
        Token {
            refresh_at: now + lifetime.mul_f64(0.5 + jitter() * 0.1),
            expires_at: now + lifetime,
            value,
        }
    }

    /// Whether the token should be used as it is.
    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.refresh_at
    }

    /// Whether the token expires within `margin`.
    pub fn expires_within(&self, margin: Duration) -> bool {
        Instant::now() + margin >= self.expires_at
    }
}

/// How long until the JWT's `exp`, read without verifying the signature (only the issuer
/// needs to verify it). `None` when the token carries no readable `exp`.
pub(crate) fn remaining_lifetime(jwt: &str) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    Some(Duration::from_secs_f64((exp - now).max(0.0)))
}

/// A number in [0, 1) that differs between calls; good enough for spreading refreshes.
fn jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", engine.encode(b"{}"), engine.encode(claims))
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn reads_the_expiry_of_a_token() {
        let token = jwt(&format!(r#"{{"exp": {}}}"#, unix_now() + 600));
        let left = remaining_lifetime(&token).unwrap();
        assert!(left > Duration::from_secs(590) && left <= Duration::from_secs(600));
        let expired = jwt(&format!(r#"{{"exp": {}}}"#, unix_now() - 5));
        assert_eq!(remaining_lifetime(&expired), Some(Duration::ZERO));
    }

    #[test]
    fn tokens_without_expiry_live_twenty_minutes() {
        for odd in ["", "abc", "a.b.c", &jwt(r#"{"sub": "x"}"#)] {
            assert_eq!(remaining_lifetime(odd), None, "{odd}");
        }
        let token = Token::new("opaque".into());
        let lifetime = token.expires_at - Instant::now();
        assert!(lifetime > Duration::from_secs(19 * 60), "{lifetime:?}");
    }

    #[test]
    fn refreshes_after_half_to_sixty_percent_of_the_lifetime() {
        let token = Token::new(jwt(&format!(r#"{{"exp": {}}}"#, unix_now() + 1000)));
        let until_refresh = (token.refresh_at - Instant::now()).as_secs_f64();
        assert!((490.0..=601.0).contains(&until_refresh), "{until_refresh}");
        assert!(token.is_fresh());
        assert!(!token.expires_within(Duration::from_secs(30)));
        assert!(token.expires_within(Duration::from_secs(2000)));
    }
}
