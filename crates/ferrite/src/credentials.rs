//! Where a client command finds the server and how it proves itself: from
//! its environment or its config file, never from a flag, since a flag lands
//! in shell history and in every `ps` listing.
//!
//! The server: `--api-url`, else `API_URL`, else `api_url` of the config
//! file, else `http://localhost:8080`.
//!
//! The `/v1` credential, from the first of these that has one:
//! 1. `JWT_AUTH_KEY`, or `JWT_AUTH_KEY_FILE` (the key is the file's content,
//!    one trailing newline removed): the CLI signs its own short-lived token;
//! 2. `FERRITE_TOKEN`: a ready-made token, sent as it is (a JWT, or a per-app
//!    API key, docs/keys.md);
//! 3. the config file's `jwt_auth_key` or `token`.
//!
//! Two credentials in the environment, or two in the file, are an error
//! rather than a guess. The config file is `$XDG_CONFIG_HOME/ferrite/config.toml`,
//! else `~/.config/ferrite/config.toml`; like ssh with its keys, the CLI
//! refuses to read it while other users may read or change it.
//!
//! A route's `jwt_key`, for `ferrite routes call`: `FERRITE_ROUTE_JWT_KEY`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

/// Where the server is when nothing says otherwise.
pub const DEFAULT_API_URL: &str = "http://localhost:8080";
/// Largest config file read: it holds a URL and a key.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// How a client proves itself to `/v1`.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    /// Sign a token with this key; `from` names its source in errors.
    Key { key: String, from: String },
    /// Send this token as it is.
    Token(String),
}

/// The settings of a client command.
#[derive(Debug, PartialEq, Eq)]
pub struct Settings {
    pub api_url: String,
    pub credential: Option<Credential>,
}

/// The config file's fields; anything else is refused, so that a misspelt
/// key is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    api_url: Option<String>,
    jwt_auth_key: Option<String>,
    token: Option<String>,
}

/// The process's environment, for [`load`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Read the settings of a client command: `api_url` is the flag's or
/// `API_URL`'s value when given; `var` reads the environment (the process's,
/// or a test's); without `credential` only the server is looked for (a
/// function call needs no `/v1` credential). The config file is read only
/// when something is missing.
pub fn load(
    api_url: Option<&str>,
    credential: bool,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Settings> {
    // An empty variable is an unset one (`export JWT_AUTH_KEY=`).
    let var = |name: &str| var(name).filter(|v| !v.is_empty());
    let api_url = api_url.filter(|u| !u.is_empty()).map(str::to_string);
    let from_env = match credential {
        true => env_credential(&var)?,
        false => None,
    };
    let needs_file = api_url.is_none() || (credential && from_env.is_none());
    let file = match config_path(&var).filter(|_| needs_file) {
        Some(path) => read_config(&path)?,
        None => ConfigFile::default(),
    };
    let credential = match (from_env, credential) {
        (Some(credential), _) => Some(credential),
        (None, true) => file_credential(&file, &var)?,
        (None, false) => None,
    };
    Ok(Settings {
        api_url: api_url
            .or(file.api_url)
            .unwrap_or_else(|| DEFAULT_API_URL.to_string()),
        credential,
    })
}

/// The key to sign a call's token with, for a route with a `jwt_key`.
pub fn route_key(var: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    var("FERRITE_ROUTE_JWT_KEY").filter(|k| !k.is_empty())
}

/// `JWT_AUTH_KEY`, `JWT_AUTH_KEY_FILE` or `FERRITE_TOKEN`, at most one.
fn env_credential(var: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<Credential>> {
    let names = ["JWT_AUTH_KEY", "JWT_AUTH_KEY_FILE", "FERRITE_TOKEN"];
    match names.map(var) {
        [None, None, None] => Ok(None),
        [Some(key), None, None] => Ok(Some(Credential::Key {
            key,
            from: "JWT_AUTH_KEY".into(),
        })),
        [None, Some(path), None] => {
            let path = PathBuf::from(path);
            let key = ferrite_server::ServerConfig::read_secret_file("JWT_AUTH_KEY_FILE", &path)?;
            Ok(Some(Credential::Key {
                key,
                from: "JWT_AUTH_KEY_FILE".into(),
            }))
        }
        [None, None, Some(token)] => Ok(Some(Credential::Token(token.trim().to_string()))),
        values => {
            let set: Vec<&str> = names
                .iter()
                .zip(values)
                .filter_map(|(name, value)| value.map(|_| *name))
                .collect();
            bail!(
                "{} are set: set only one of JWT_AUTH_KEY, JWT_AUTH_KEY_FILE and FERRITE_TOKEN",
                set.join(" and ")
            )
        }
    }
}

/// The config file's `jwt_auth_key` or `token`, at most one.
fn file_credential(
    file: &ConfigFile,
    var: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<Credential>> {
    let shown = || {
        config_path(var)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the config file".into())
    };
    let key = file.jwt_auth_key.clone().filter(|k| !k.is_empty());
    let token = file.token.clone().filter(|t| !t.is_empty());
    match (key, token) {
        (Some(_), Some(_)) => bail!("{}: set jwt_auth_key or token, not both", shown()),
        (Some(key), None) => Ok(Some(Credential::Key {
            key,
            from: format!("jwt_auth_key of {}", shown()),
        })),
        (None, Some(token)) => Ok(Some(Credential::Token(token.trim().to_string()))),
        (None, None) => Ok(None),
    }
}

/// `$XDG_CONFIG_HOME/ferrite/config.toml`, else `$HOME/.config/ferrite/config.toml`.
fn config_path(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let dir = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| Path::new(&home).join(".config")))?;
    Some(dir.join("ferrite").join("config.toml"))
}

/// The config file, or nothing when there is none.
fn read_config(path: &Path) -> anyhow::Result<ConfigFile> {
    let shown = path.display();
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {shown}")),
    };
    check_private(path, &file)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {shown}"))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        bail!("{shown} is larger than {MAX_CONFIG_BYTES} bytes: not a Ferrite config file");
    }
    toml::from_str(&text).map_err(|e| {
        // toml's full message quotes the line, which may hold the key: say
        // only where and what.
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        let mut what = e.message().lines().collect::<Vec<_>>().join("; ");
        // "invalid type: integer `5`, expected a string": the value may be
        // the key, so only the expectation stays.
        if let Some((kind, expected)) = what.split_once(", expected") {
            if let Some((kind, _value)) = kind.split_once(": ") {
                what = format!("{kind}: expected{expected}");
            }
        }
        match line {
            Some(line) => anyhow::anyhow!("{shown}: line {line}: {what}"),
            None => anyhow::anyhow!("{shown}: {what}"),
        }
    })
}

/// It may hold a key: refuse it while anyone but its owner may read or
/// change it.
#[cfg(unix)]
fn check_private(path: &Path, file: &std::fs::File) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} may be read or changed by other users (mode {:04o}); run: chmod 600 {}",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _file: &std::fs::File) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn config_dir(content: &str, mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("ferrite")).unwrap();
        let path = dir.path().join("ferrite/config.toml");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    /// The error of loading a config file holding `content` with `mode`.
    fn config_file_error(content: &str, mode: u32) -> String {
        let dir = config_dir(content, mode);
        let xdg = dir.path().to_str().unwrap();
        load(None, true, &env(&[("XDG_CONFIG_HOME", xdg)]))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_without_anything() {
        let settings = load(None, true, &env(&[("HOME", "/nonexistent")])).unwrap();
        assert_eq!(settings.api_url, DEFAULT_API_URL);
        assert_eq!(settings.credential, None);
    }

    #[test]
    fn the_environment_comes_before_the_file() {
        let dir = config_dir(
            "api_url = \"http://file:1\"\ntoken = \"from-file\"\n",
            0o600,
        );
        let xdg = dir.path().to_str().unwrap();
        let settings = load(None, true, &env(&[("XDG_CONFIG_HOME", xdg)])).unwrap();
        assert_eq!(settings.api_url, "http://file:1");
        assert_eq!(
            settings.credential,
            Some(Credential::Token("from-file".into()))
        );

        let settings = load(
            Some("http://flag:2"),
            true,
            &env(&[("XDG_CONFIG_HOME", xdg), ("FERRITE_TOKEN", "from-env")]),
        )
        .unwrap();
        assert_eq!(settings.api_url, "http://flag:2");
        assert_eq!(
            settings.credential,
            Some(Credential::Token("from-env".into()))
        );

        let settings = load(
            None,
            true,
            &env(&[("XDG_CONFIG_HOME", xdg), ("JWT_AUTH_KEY", "k")]),
        )
        .unwrap();
        assert!(matches!(settings.credential, Some(Credential::Key { key, .. }) if key == "k"));
    }

    #[test]
    fn one_credential_per_source() {
        let err = load(
            None,
            true,
            &env(&[("JWT_AUTH_KEY", "k"), ("FERRITE_TOKEN", "t")]),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "JWT_AUTH_KEY and FERRITE_TOKEN are set: set only one of JWT_AUTH_KEY, \
             JWT_AUTH_KEY_FILE and FERRITE_TOKEN"
        );
        let err = config_file_error("jwt_auth_key = \"k\"\ntoken = \"t\"\n", 0o600);
        assert!(err.ends_with("set jwt_auth_key or token, not both"));
    }

    #[test]
    fn the_key_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "from-a-file\n").unwrap();
        let settings = load(
            None,
            true,
            &env(&[
                ("JWT_AUTH_KEY_FILE", path.to_str().unwrap()),
                ("HOME", "/nonexistent"),
            ]),
        )
        .unwrap();
        assert!(
            matches!(settings.credential, Some(Credential::Key { key, .. }) if key == "from-a-file")
        );
    }

    #[test]
    fn a_config_file_others_can_read_is_refused() {
        let err = config_file_error("jwt_auth_key = \"hunter2\"\n", 0o644);
        assert!(
            err.contains("may be read or changed by other users (mode 0644)"),
            "{err}"
        );
        assert!(err.contains("chmod 600"));
        assert!(!err.contains("hunter2"));
    }

    #[test]
    fn a_bad_config_file_is_one_line_without_its_content() {
        let err = config_file_error("jwt_auth_key = hunter2\n", 0o600);
        assert!(!err.contains('\n') && !err.contains("hunter2"), "{err}");
        let err = config_file_error("jwt_auth_key = 20240601\n", 0o600);
        assert!(
            err.ends_with("line 1: invalid type: expected a string"),
            "{err}"
        );
        let err = config_file_error("jwt_key = \"k\"\n", 0o600);
        assert!(err.contains("unknown field"), "{err}");
    }
}
