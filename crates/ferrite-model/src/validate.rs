//! Field rules shared by apps and routes. Each function returns the message
//! a client sees, naming the field and the rule it broke.

use crate::error::text;
use crate::{ApiError, Config, Headers};

/// Longest app name IronFunctions accepted; kept for compatibility.
pub const MAX_APP_NAME_LEN: usize = 30;
/// Longest route path and image reference accepted.
pub const MAX_PATH_LEN: usize = 255;
pub const MAX_IMAGE_LEN: usize = 255;
/// Longest config key or header name; values may be longer.
pub const MAX_KEY_LEN: usize = 256;
/// Longest config value or header value (environment variables and header
/// lines are both limited in practice; 32 KiB is far above normal use).
pub const MAX_VALUE_LEN: usize = 32 * 1024;

/// `name`: 1 to 30 characters of `[A-Za-z0-9_-]`.
pub fn app_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::bad_request(text::APP_NAME_MISSING));
    }
    if name.chars().count() > MAX_APP_NAME_LEN {
        return Err(ApiError::bad_request(text::APP_NAME_TOO_LONG));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(ApiError::bad_request(text::APP_NAME_INVALID));
    }
    Ok(())
}

/// `path`: absolute, segments of `[A-Za-z0-9._~-]`, no empty segment, no
/// trailing slash, no `.` or `..` segment.
pub fn route_path(path: &str) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::bad_request(format!("route path {path:?} {why}")));
    if path.is_empty() {
        return Err(ApiError::bad_request(text::ROUTE_PATH_MISSING));
    }
    // IronFunctions' two path rules keep its words; Ferrite's stricter
    // ones below name the rule.
    if !path.starts_with('/') {
        return Err(ApiError::bad_request(text::ROUTE_PATH_INVALID));
    }
    if path.contains(':') {
        return Err(ApiError::bad_request(text::ROUTE_PATH_DYNAMIC));
    }
    if path.len() > MAX_PATH_LEN {
        return bad(&format!("is longer than {MAX_PATH_LEN} characters"));
    }
    let rest = path.strip_prefix('/').unwrap_or(path);
    if rest.is_empty() {
        return bad("must name at least one segment, as in /hello");
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return bad("has an empty segment or a trailing '/'");
        }
        if segment == "." || segment == ".." {
            return bad("may not contain '.' or '..' segments");
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '-'))
        {
            return bad("may contain only letters, digits, '.', '_', '~', '-' and '/'");
        }
    }
    Ok(())
}

/// `image`: a Docker image reference, without whitespace or control characters.
pub fn image(image: &str) -> Result<(), ApiError> {
    if image.is_empty() {
        return Err(ApiError::bad_request(text::ROUTE_IMAGE_MISSING));
    }
    if image.len() > MAX_IMAGE_LEN {
        return Err(ApiError::bad_request(format!(
            "route image is longer than {MAX_IMAGE_LEN} characters"
        )));
    }
    let valid_char =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@');
    let edges_ok = image
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && !image.ends_with([':', '/', '@']);
    if !image.chars().all(valid_char) || !edges_ok {
        return Err(ApiError::bad_request(format!(
            "route image {image:?} is not a valid image reference (as in ferrite/hello:latest)"
        )));
    }
    Ok(())
}

/// A whole number in `1..=max`; `field` and `unit` make the message.
/// `None` and `0` mean "not given" (Go clients send zero values) and are
/// answered with `None`, so the caller applies its default or keeps the old value.
pub fn bounded(
    field: &str,
    value: Option<i64>,
    max: u64,
    unit: &str,
) -> Result<Option<u64>, ApiError> {
    match value {
        None | Some(0) => Ok(None),
        Some(v) if v < 0 => Err(ApiError::bad_request(format!(
            "{field} must be a positive number of {unit}, got {v}"
        ))),
        Some(v) if v.unsigned_abs() > max => Err(ApiError::bad_request(format!(
            "{field} must be at most {max} {unit}, got {v}"
        ))),
        Some(v) => Ok(Some(v.unsigned_abs())),
    }
}

/// Config keys become environment variables: no `=`, no NUL, not empty,
/// and no two keys of one config with the same environment name
/// ([`crate::contract::env_name`]: `my-key` and `MY_KEY` would both be
/// `MY_KEY`, and which value the function sees would be a guess).
pub fn config(owner: &str, config: &Config) -> Result<(), ApiError> {
    let mut names: std::collections::HashMap<String, &str> = std::collections::HashMap::new();
    for (key, value) in config {
        // An empty value removes its key (PATCH), so it names nothing.
        let named = (!value.is_empty())
            .then(|| names.insert(crate::contract::env_name(key), key))
            .flatten();
        if let Some(other) = named {
            return Err(ApiError::bad_request(format!(
                "{owner} config keys {other:?} and {key:?} are both the environment variable {}; keep one of them",
                crate::contract::env_name(key)
            )));
        }
        if key.is_empty() || key.len() > MAX_KEY_LEN || key.contains(['=', '\0']) {
            return Err(ApiError::bad_request(format!(
                "{owner} config key {key:?} is not valid: 1 to {MAX_KEY_LEN} characters, without '=' or NUL"
            )));
        }
        if value.len() > MAX_VALUE_LEN || value.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "{owner} config value of {key:?} is not valid: at most {MAX_VALUE_LEN} bytes, without NUL"
            )));
        }
    }
    Ok(())
}

/// Route headers are added to every response: names must be HTTP tokens and
/// values may not break the header line.
pub fn headers(headers: &Headers) -> Result<(), ApiError> {
    for (name, values) in headers {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || name.len() > MAX_KEY_LEN || !name.chars().all(token) {
            return Err(ApiError::bad_request(format!(
                "route header name {name:?} is not a valid HTTP header name"
            )));
        }
        for value in values {
            if value.len() > MAX_VALUE_LEN
                || value.chars().any(|c| c.is_ascii_control() && c != '\t')
            {
                return Err(ApiError::bad_request(format!(
                    "route header {name:?} has a value with control characters or over {MAX_VALUE_LEN} bytes"
                )));
            }
        }
    }
    Ok(())
}

/// Merge `patch` into `base`: a key set to `""` is removed, any other value
/// replaces. An empty result is `None`, which the API shows as `null`.
pub fn merge_config(base: Option<Config>, patch: Config) -> Option<Config> {
    let mut merged = base.unwrap_or_default();
    for (key, value) in patch {
        if value.is_empty() {
            merged.remove(&key);
        } else {
            merged.insert(key, value);
        }
    }
    (!merged.is_empty()).then_some(merged)
}

/// `value` as one of `choices` (its name in the API, its value), or a
/// refusal that names `field` and every accepted name.
pub fn choice<T: Copy>(field: &str, value: &str, choices: &[(&str, T)]) -> Result<T, ApiError> {
    if let Some((_, chosen)) = choices.iter().find(|(name, _)| *name == value) {
        return Ok(*chosen);
    }
    let names: Vec<String> = choices
        .iter()
        .map(|(name, _)| format!("{name:?}"))
        .collect();
    let accepted = match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nothing".to_string(),
    };
    Err(ApiError::bad_request(format!(
        "{field} must be {accepted}, got {value:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        // IronFunctions' text states the limit: they must agree.
        assert!(text::APP_NAME_TOO_LONG.contains(&format!(" {MAX_APP_NAME_LEN} ")));
        assert_eq!(
            app_name(&"a".repeat(MAX_APP_NAME_LEN + 1))
                .unwrap_err()
                .message,
            text::APP_NAME_TOO_LONG
        );
        assert!(app_name("myapp").is_ok());
        assert!(app_name("a-b_C9").is_ok());
        assert!(app_name(&"a".repeat(30)).is_ok());
        assert!(app_name(&"a".repeat(31)).is_err());
        assert!(app_name("").is_err());
        assert!(app_name("my app").is_err());
        assert!(app_name("my/app").is_err());
        assert!(app_name("é").is_err());
    }

    #[test]
    fn route_paths() {
        for ok in ["/hello", "/a/b/c", "/v1.2/x_y~z-w"] {
            assert!(route_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/", "hello", "/a/", "//a", "/a//b", "/a/../b", "/a b", "/a?b", "/:id",
        ] {
            assert!(route_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn images() {
        for ok in [
            "ferrite/hello",
            "busybox",
            "localhost:5000/x/y:1.0",
            "img@sha256:abc",
        ] {
            assert!(image(ok).is_ok(), "{ok}");
        }
        for bad in ["", "has space", "x:", "-x", "a\nb", "x/"] {
            assert!(image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounded_numbers() {
        assert_eq!(bounded("memory", None, 10, "MiB"), Ok(None));
        assert_eq!(bounded("memory", Some(0), 10, "MiB"), Ok(None));
        assert_eq!(bounded("memory", Some(10), 10, "MiB"), Ok(Some(10)));
        assert!(bounded("memory", Some(11), 10, "MiB").is_err());
        let err = bounded("memory", Some(-1), 10, "MiB").unwrap_err();
        assert!(err.message.contains("memory"), "{}", err.message);
    }

    #[test]
    fn config_merge_removes_empty_values() {
        let base: Config = [("A".into(), "1".into()), ("B".into(), "2".into())].into();
        let patch: Config = [("A".into(), "".into()), ("C".into(), "3".into())].into();
        let merged = merge_config(Some(base), patch).unwrap();
        assert_eq!(merged.keys().collect::<Vec<_>>(), ["B", "C"]);
        let emptied = merge_config(
            Some([("A".into(), "1".into())].into()),
            [("A".into(), "".into())].into(),
        );
        assert_eq!(emptied, None);
    }

    #[test]
    fn header_rules() {
        let good: Headers = [("X-Ferrite".into(), vec!["a".into(), "b".into()])].into();
        assert!(headers(&good).is_ok());
        let bad_name: Headers = [("X Bad".into(), vec![])].into();
        assert!(headers(&bad_name).is_err());
        let bad_value: Headers = [("X".into(), vec!["a\r\nb".into()])].into();
        assert!(headers(&bad_value).is_err());
    }
}
