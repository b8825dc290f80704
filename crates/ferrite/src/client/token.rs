//! The HS256 bearer tokens the CLI signs: for `/v1` with the configured
//! key, and for a function call with the route's key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde::Serialize;

/// Lifetime of the bearer token the CLI signs for one command: longer than
/// any command's requests, short enough that a token seen on the way (a
/// proxy's log) is soon worthless.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

/// The claims of the token the CLI signs; the server checks `exp`.
#[derive(Serialize)]
struct Claims {
    exp: u64,
    iat: u64,
    sub: &'static str,
}

/// An `Authorization` value with a token signed with `key`, named `what` in errors.
pub(super) fn bearer(key: &str, what: &str) -> anyhow::Result<String> {
    let token = sign_token(key).with_context(|| format!("cannot sign a token with {what}"))?;
    Ok(format!("Bearer {token}"))
}

fn sign_token(key: &str) -> anyhow::Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let claims = Claims {
        exp: now + TOKEN_LIFETIME.as_secs(),
        iat: now,
        sub: "ferrite-cli",
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(key.as_bytes()),
    )
    .map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_a_verifiable_token() {
        let token = sign_token("secret").unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &jsonwebtoken::DecodingKey::from_secret(b"secret"),
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256),
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "ferrite-cli");
    }
}
