//! `JWT_AUTH_KEY`: every `/v1` request must carry a bearer token signed
//! (HS256) with the key, and not expired.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ferrite_model::ApiError;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{AppState, Error};

/// Checks HS256 tokens against one key. `exp` is required and checked.
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

impl Verifier {
    pub fn new(secret: &str) -> Verifier {
        Verifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation: Validation::new(Algorithm::HS256),
        }
    }

    /// Check the `Authorization` header value.
    pub fn check(&self, header: Option<&str>) -> Result<(), ApiError> {
        let Some(value) = header else {
            return Err(ApiError::unauthorized(
                "missing Authorization header: expected \"Bearer <token>\"",
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("Authorization header must be \"Bearer <token>\"")
            })?;
        jsonwebtoken::decode::<serde_json::Value>(token, &self.key, &self.validation)
            .map(|_| ())
            .map_err(|e| {
                ApiError::unauthorized(match e.kind() {
                    JwtErrorKind::ExpiredSignature => "token has expired".to_string(),
                    JwtErrorKind::InvalidSignature => "token signature is invalid".to_string(),
                    JwtErrorKind::MissingRequiredClaim(claim) => {
                        format!("token lacks the {claim:?} claim")
                    }
                    _ => format!("token is invalid: {e}"),
                })
            })
    }
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(verifier) = &state.auth {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Err(err) = verifier.check(header) {
            return Error(err).into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn token(secret: &str, exp_offset: i64) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims = json!({ "exp": now + exp_offset, "sub": "test" });
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[test]
    fn checks_signature_expiry_and_shape() {
        let v = Verifier::new("secret");
        assert!(v
            .check(Some(&format!("Bearer {}", token("secret", 600))))
            .is_ok());
        assert!(v.check(None).unwrap_err().message.contains("missing"));
        assert!(v.check(Some("Basic abc")).is_err());
        assert!(v
            .check(Some(&format!("Bearer {}", token("other", 600))))
            .unwrap_err()
            .message
            .contains("signature"));
        assert!(v
            .check(Some(&format!("Bearer {}", token("secret", -3600))))
            .unwrap_err()
            .message
            .contains("expired"));
        assert!(v.check(Some("Bearer not.a.jwt")).is_err());
    }
}
