//! Per-app API keys: what a key may do ([`Access`]), the key as stored and
//! shown ([`ApiKey`], never its secret), and the body that asks for one
//! ([`KeyInput`]). Making the secret and checking a presented one belong to
//! the server; this module holds the rules.

use serde::{Deserialize, Serialize};

use crate::{validate, ApiError, Millis};

/// Longest name a key may have, in characters.
pub const MAX_KEY_NAME_CHARS: usize = 64;

/// What a key of an app may do there; each level includes the ones before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Read the app, its routes, its calls (history, logs, output) and its
    /// dead letters.
    Read,
    /// Also act on its calls: cancel queued ones, replay dead letters.
    Call,
    /// Also change the app: its config, its routes, delete it.
    Manage,
}

impl Access {
    const CHOICES: [(&'static str, Access); 3] = [
        ("read", Access::Read),
        ("call", Access::Call),
        ("manage", Access::Manage),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Call => "call",
            Access::Manage => "manage",
        }
    }

    /// The access named `text`, or a refusal that lists the names.
    pub fn parse(text: &str) -> Result<Access, ApiError> {
        validate::choice("access", text, &Self::CHOICES)
    }
}

/// A key as stored and as the API shows it: who it is for and what it may
/// do. Its secret is not here: the store keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKey {
    /// Names the key in listings and in `DELETE /v1/keys/{id}`; also the
    /// start of its token, so a presented key is looked up by it.
    pub id: String,
    /// The one app the key reaches.
    pub app: String,
    pub access: Access,
    /// Whom or what it was given to, for people reading the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    /// After this time the key is refused; none: until revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<Millis>,
}

/// The body of `POST /v1/keys`. Unknown fields are refused: a misspelt
/// `access` must not quietly give a key other powers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyInput {
    /// The app the key is for; it must exist.
    pub app: Option<String>,
    /// `read`, `call` or `manage`.
    pub access: Option<String>,
    /// Up to 64 printable characters.
    pub name: Option<String>,
    /// When the key stops working (RFC 3339); none: until revoked.
    pub expires_at: Option<String>,
}

impl ApiKey {
    /// Validate a creation request: the key `id`, made `now`.
    pub fn create(id: String, input: KeyInput, now: Millis) -> Result<ApiKey, ApiError> {
        let app = input
            .app
            .ok_or_else(|| ApiError::bad_request("a key needs an \"app\""))?;
        validate::app_name(&app)?;
        let access = Access::parse(input.access.as_deref().ok_or_else(|| {
            ApiError::bad_request("a key needs an \"access\": \"read\", \"call\" or \"manage\"")
        })?)?;
        let name = input.name.filter(|n| !n.is_empty());
        if let Some(name) = &name {
            if name.chars().count() > MAX_KEY_NAME_CHARS {
                return Err(ApiError::bad_request(format!(
                    "a key's name must be at most {MAX_KEY_NAME_CHARS} characters"
                )));
            }
            if name.chars().any(char::is_control) {
                return Err(ApiError::bad_request(
                    "a key's name must not hold control characters",
                ));
            }
        }
        let expires_at = match input.expires_at.as_deref() {
            None => None,
            Some(text) => {
                let at = Millis::parse_rfc3339(text).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "expires_at must be an RFC 3339 time like 2027-01-31T12:00:00Z, got {text:?}"
                    ))
                })?;
                if at <= now {
                    return Err(ApiError::bad_request(
                        "expires_at is in the past: the key would never work",
                    ));
                }
                Some(at)
            }
        };
        Ok(ApiKey {
            id,
            app,
            access,
            name,
            created_at: now,
            expires_at,
        })
    }

    /// Whether the key has run out at `now`.
    pub fn expired(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(app: &str, access: &str) -> KeyInput {
        KeyInput {
            app: Some(app.into()),
            access: Some(access.into()),
            ..KeyInput::default()
        }
    }

    #[test]
    fn access_levels_are_ordered_and_named() {
        assert!(Access::Read < Access::Call && Access::Call < Access::Manage);
        for access in [Access::Read, Access::Call, Access::Manage] {
            assert_eq!(Access::parse(access.as_str()).unwrap(), access);
        }
        assert!(Access::parse("admin")
            .unwrap_err()
            .message
            .contains("\"manage\""));
    }

    #[test]
    fn creation_checks_every_field() {
        let now = Millis(1_000_000);
        let key = ApiKey::create("k1".into(), input("a", "read"), now).unwrap();
        assert_eq!((key.app.as_str(), key.access), ("a", Access::Read));
        assert!(ApiKey::create("k".into(), KeyInput::default(), now).is_err());
        assert!(ApiKey::create("k".into(), input("a", "owner"), now).is_err());
        assert!(ApiKey::create("k".into(), input("a b", "read"), now).is_err());
        let long = KeyInput {
            name: Some("n".repeat(MAX_KEY_NAME_CHARS + 1)),
            ..input("a", "call")
        };
        assert!(ApiKey::create("k".into(), long, now).is_err());
        let past = KeyInput {
            expires_at: Some("1970-01-01T00:00:00Z".into()),
            ..input("a", "call")
        };
        assert!(ApiKey::create("k".into(), past, now).is_err());
        let later = KeyInput {
            expires_at: Some("2100-01-01T00:00:00Z".into()),
            ..input("a", "manage")
        };
        let key = ApiKey::create("k".into(), later, now).unwrap();
        assert!(!key.expired(now));
        assert!(key.expired(Millis(i64::MAX)));
    }
}
