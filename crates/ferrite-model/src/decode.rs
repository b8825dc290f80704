//! Decoding request bodies: `{"app":{...}}` and `{"route":{...}}`.
//!
//! Errors name where in the document the problem is (`route.memory: ...`),
//! so a client learns what to fix from one line.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::text;
use crate::ApiError;

/// Decode a JSON body whose top level must carry the object under `key`
/// (`{"app":{...}}`). A body that is empty, not JSON or not an object is
/// IronFunctions' `Invalid JSON` (clients compare the text); a missing or
/// `null` wrapper is a 400 naming the key; a field of the wrong type names
/// the field.
pub fn wrapped<T: DeserializeOwned>(body: &[u8], key: &str) -> Result<T, ApiError> {
    let invalid = || ApiError::bad_request(text::INVALID_JSON);
    let document: serde_json::Value = serde_json::from_slice(body).map_err(|_| invalid())?;
    let serde_json::Value::Object(mut top) = document else {
        return Err(invalid());
    };
    match top.remove(key) {
        // IronFunctions' words for its two wrappers.
        None | Some(serde_json::Value::Null) => Err(ApiError::bad_request(match key {
            "app" => text::APP_MISSING_NEW.to_string(),
            "route" => text::ROUTE_MISSING_NEW.to_string(),
            _ => format!(
                "request body is missing the \"{key}\" object: expected {{\"{key}\":{{...}}}}"
            ),
        })),
        Some(inner) => serde_path_to_error::deserialize(inner).map_err(|e| {
            let path = e.path().to_string();
            let at = if path == "." {
                key.to_string()
            } else {
                format!("{key}.{path}")
            };
            ApiError::bad_request(format!("{at}: {}", e.into_inner()))
        }),
    }
}

/// Deserialize a field that may be absent, `null` or a value, for PATCH:
/// absent is `None` (with `#[serde(default)]`: keep), `null` is `Some(None)`
/// (remove), a value is `Some(Some(..))`. A plain `Option` reads absent and
/// `null` alike.
pub(crate) fn absent_or_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AppInput, RouteInput};

    #[test]
    fn names_the_problem() {
        for body in [&b""[..], b" ", b"{", b"[1]", b"7"] {
            let err = wrapped::<AppInput>(body, "app").unwrap_err();
            assert_eq!(err.message, text::INVALID_JSON);
        }
        let err = wrapped::<AppInput>(br#"{"name":"x"}"#, "app").unwrap_err();
        assert_eq!(err.message, text::APP_MISSING_NEW);
        let err = wrapped::<RouteInput>(br#"{"path":"/x"}"#, "route").unwrap_err();
        assert_eq!(err.message, text::ROUTE_MISSING_NEW);
        let err = wrapped::<RouteInput>(br#"{"route":{"memory":"big"}}"#, "route").unwrap_err();
        assert!(err.message.starts_with("route.memory:"), "{}", err.message);
        let err = wrapped::<AppInput>(br#"{"app":{"config":{"A":1}}}"#, "app").unwrap_err();
        assert!(err.message.starts_with("app.config.A:"), "{}", err.message);
        let err = wrapped::<AppInput>(br#"{"app":7}"#, "app").unwrap_err();
        assert!(err.message.starts_with("app:"), "{}", err.message);
    }
}
