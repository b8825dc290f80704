//! An app: a named group of routes with configuration shared by them.

use serde::{Deserialize, Serialize};

use crate::{validate, ApiError, Config};

/// An app as stored and as the API shows it. `config` is `null` when unset,
/// as IronFunctions answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    pub config: Option<Config>,
}

/// The body of `POST /v1/apps` and `PATCH /v1/apps/{app}` (inside `"app"`).
/// Every field is optional here; [`App::create`] and [`App::apply`] decide
/// which are required. Unknown fields are ignored, as IronFunctions did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AppInput {
    pub name: Option<String>,
    pub config: Option<Config>,
}

impl App {
    /// Validate a creation request. Config keys set to `""` are dropped, the
    /// same meaning `""` has in a PATCH.
    pub fn create(input: AppInput) -> Result<App, ApiError> {
        let name = input.name.unwrap_or_default();
        validate::app_name(&name)?;
        let config = input.config.unwrap_or_default();
        validate::config("app", &config)?;
        Ok(App {
            name,
            config: validate::merge_config(None, config),
        })
    }

    /// Apply a PATCH: config keys are merged (`""` removes one); the name
    /// cannot change.
    pub fn apply(&mut self, patch: AppInput) -> Result<(), ApiError> {
        if let Some(name) = patch.name.filter(|n| !n.is_empty() && *n != self.name) {
            return Err(ApiError::bad_request(format!(
                "app name cannot be changed (from {:?} to {name:?})",
                self.name
            )));
        }
        if let Some(config) = patch.config {
            validate::config("app", &config)?;
            self.config = validate::merge_config(self.config.take(), config);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_patch() {
        let mut app = App::create(AppInput {
            name: Some("myapp".into()),
            config: Some([("A".into(), "1".into()), ("E".into(), "".into())].into()),
        })
        .unwrap();
        assert_eq!(app.config, Some([("A".into(), "1".into())].into()));
        app.apply(AppInput {
            name: Some("myapp".into()),
            config: Some([("A".into(), "".into())].into()),
        })
        .unwrap();
        assert_eq!(app.config, None);
        let err = app
            .apply(AppInput {
                name: Some("other".into()),
                config: None,
            })
            .unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(App::create(AppInput::default()).is_err());
    }

    #[test]
    fn serializes_null_config() {
        let app = App::create(AppInput {
            name: Some("myapp".into()),
            config: None,
        })
        .unwrap();
        assert_eq!(
            serde_json::to_string(&app).unwrap(),
            r#"{"name":"myapp","config":null}"#
        );
    }
}
