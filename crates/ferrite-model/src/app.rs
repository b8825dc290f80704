//! An app: a named group of routes with configuration shared by them.

use serde::{Deserialize, Serialize};

use crate::decode::absent_or_null;
use crate::limits::{AppLimits, LimitsInput};
use crate::{validate, ApiError, Config};

/// An app as stored and as the API shows it. `config` is `null` when unset,
/// as IronFunctions answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct App {
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub config: Option<Config>,
    /// This app's own call limits over the server's defaults. Left out of
    /// the JSON when unset, so IronFunctions clients see the documents they
    /// know.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<AppLimits>,
}

/// The body of `POST /v1/apps` and `PATCH /v1/apps/{app}` (inside `"app"`).
/// Every field is optional here; [`App::create`] and [`App::apply`] decide
/// which are required. Unknown fields are ignored, as IronFunctions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppInput {
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub config: Option<Config>,
    /// Absent: keep (on creation: none). `null`: remove the section (the
    /// server's defaults apply). An object: merged field by field.
    #[serde(default, deserialize_with = "absent_or_null")]
    pub limits: Option<Option<LimitsInput>>,
}

impl App {
    /// Validate a creation request. Config keys set to `""` are dropped, the
    /// same meaning `""` has in a PATCH.
    pub fn create(input: AppInput) -> Result<App, ApiError> {
        let name = input.name.unwrap_or_default();
        validate::app_name(&name)?;
        let config = input.config.unwrap_or_default();
        validate::config("app", &config)?;
        let limits = match input.limits.flatten() {
            Some(limits) => AppLimits::merge(None, limits)?,
            None => None,
        };
        Ok(App {
            name,
            config: validate::merge_config(None, config),
            limits,
        })
    }

    /// Apply a PATCH: config keys are merged (`""` removes one), so are
    /// limits (`null` removes one, or the whole section); the name cannot
    /// change.
    pub fn apply(&mut self, patch: AppInput) -> Result<(), ApiError> {
        if patch.name.is_some_and(|n| !n.is_empty() && n != self.name) {
            return Err(ApiError::bad_request(
                crate::error::text::APP_NAME_IMMUTABLE,
            ));
        }
        // Everything is checked before anything changes.
        let limits = match patch.limits {
            None => self.limits.clone(),
            Some(None) => None,
            Some(Some(limits)) => AppLimits::merge(self.limits.clone(), limits)?,
        };
        let config = match patch.config {
            None => self.config.clone(),
            Some(config) => {
                validate::config("app", &config)?;
                let merged = validate::merge_config(self.config.clone(), config);
                // A key added beside one of the same environment name.
                validate::config("app", merged.as_ref().unwrap_or(&Config::new()))?;
                merged
            }
        };
        self.config = config;
        self.limits = limits;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn create_and_patch() {
        let mut app = App::create(AppInput {
            name: Some("myapp".into()),
            config: Some([("A".into(), "1".into()), ("E".into(), "".into())].into()),
            limits: None,
        })
        .unwrap();
        assert_eq!(app.config, Some([("A".into(), "1".into())].into()));
        app.apply(AppInput {
            name: Some("myapp".into()),
            config: Some([("A".into(), "".into())].into()),
            limits: None,
        })
        .unwrap();
        assert_eq!(app.config, None);
        let err = app
            .apply(AppInput {
                name: Some("other".into()),
                config: None,
                limits: None,
            })
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
        assert!(App::create(AppInput::default()).is_err());
    }

    #[test]
    fn limits_are_validated_merged_and_removed() {
        let decode = |json: &str| crate::decode::wrapped::<AppInput>(json.as_bytes(), "app");
        let mut app =
            App::create(decode(r#"{"app":{"name":"a","limits":{"rate":5}}}"#).unwrap()).unwrap();
        assert_eq!(app.limits.as_ref().and_then(|l| l.rate), Some(5));
        app.apply(decode(r#"{"app":{"limits":{"max_in_flight":2}}}"#).unwrap())
            .unwrap();
        let limits = app.limits.clone().unwrap();
        assert_eq!((limits.rate, limits.max_in_flight), (Some(5), Some(2)));
        let err = app
            .apply(decode(r#"{"app":{"limits":{"rate":-2}}}"#).unwrap())
            .unwrap_err();
        assert!(err.message.contains("limits.rate"), "{}", err.message);
        assert_eq!(app.limits, Some(limits), "nothing changed");
        let err = decode(r#"{"app":{"name":"a","limits":{"rat":1}}}"#).unwrap_err();
        assert!(err.message.contains("app.limits"), "{}", err.message);
        app.apply(decode(r#"{"app":{"limits":null}}"#).unwrap())
            .unwrap();
        assert_eq!(app.limits, None);
        assert_eq!(
            serde_json::to_string(&app).unwrap(),
            r#"{"name":"a","config":null}"#
        );
    }

    #[test]
    fn serializes_null_config() {
        let app = App::create(AppInput {
            name: Some("myapp".into()),
            config: None,
            limits: None,
        })
        .unwrap();
        assert_eq!(
            serde_json::to_string(&app).unwrap(),
            r#"{"name":"myapp","config":null}"#
        );
    }
}
