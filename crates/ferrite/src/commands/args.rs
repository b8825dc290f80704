//! What several verbs parse alike: `KEY=VALUE` pairs, one-key config
//! changes, durations, route paths, the Docker engine's address, and
//! objects built from the flags given.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use ferrite_engine::ConnectSettings;
use ferrite_model::Config;
use serde_json::{json, Map, Value};

use crate::client::ApiArgs;
use crate::output::OutputArgs;

/// What `ferrite <group> config set` takes after naming the app or route.
#[derive(Debug, clap::Args)]
pub struct ConfigSet {
    pub key: String,
    pub value: String,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// What `ferrite <group> config unset` takes after naming the app or route.
#[derive(Debug, clap::Args)]
pub struct ConfigUnset {
    pub key: String,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// Parse repeated `KEY=VALUE` arguments of `flag`; a later key wins.
pub fn parse_pairs(flag: &str, args: &[String]) -> anyhow::Result<Config> {
    args.iter()
        .map(|arg| split_pair(flag, "KEY=VALUE", arg))
        .collect()
}

/// Split one `KEY=VALUE` argument of `flag` at the first `=`; `form` names the
/// expected shape in the error. The value may be empty, which removes the key
/// in an update.
pub fn split_pair(flag: &str, form: &str, arg: &str) -> anyhow::Result<(String, String)> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        Some(_) => bail!("invalid {flag} {arg:?}: the key before '=' is empty"),
        None => bail!("invalid {flag} {arg:?}: expected {form}"),
    }
}

/// clap's parser of a repeatable `--label KEY=VALUE` (image labels).
pub fn label(text: &str) -> Result<(String, String), String> {
    split_pair("--label", "KEY=VALUE", text).map_err(|e| e.to_string())
}

/// The PATCH fields of `ferrite <group> config set KEY VALUE` (`value`
/// given) or `... unset KEY` (`None`): the API removes a key set to `""`, so
/// an empty value is refused rather than taken for an unset.
pub fn config_change(
    group: &str,
    key: String,
    value: Option<String>,
) -> anyhow::Result<Map<String, Value>> {
    if key.is_empty() || key.contains('=') {
        bail!("invalid config key {key:?}: it must be non-empty and without '='");
    }
    let value = match value {
        Some(value) if value.is_empty() => bail!(
            "the value of {key:?} is empty; to remove the key, use `ferrite {group} config unset`"
        ),
        Some(value) => value,
        None => String::new(),
    };
    let config = Config::from([(key, value)]);
    Ok(Map::from_iter([("config".to_string(), json!(config))]))
}

/// A duration flag's value as the whole seconds the API takes: bare seconds
/// (`30`) or humantime's notation (`30s`, `2m`, `1h 30m`). A clap value
/// parser, so that a bad value is one line and exit 2 like any bad flag.
pub fn parse_seconds(text: &str) -> Result<u64, String> {
    if let Ok(seconds) = text.trim().parse::<u64>() {
        return Ok(seconds);
    }
    let duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; expected seconds or a duration such as 30s, 2m or 1h"))?;
    if duration.subsec_nanos() != 0 {
        return Err("expected a whole number of seconds, as in 2s or 1m 30s".into());
    }
    Ok(duration.as_secs())
}

/// Route paths are absolute; `hello` is taken to mean `/hello`.
pub fn absolute(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

/// The JSON object of the fields given; a `None` is left out, so that the
/// server's default or the current value holds.
pub fn given_fields<const N: usize>(fields: [(&str, Option<Value>); N]) -> Map<String, Value> {
    fields
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key.to_string(), value)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let args = ["A=1".to_string(), "B=x=y".to_string(), "C=".to_string()];
        let parsed = parse_pairs("--config", &args).unwrap();
        assert_eq!(parsed["B"], "x=y");
        assert_eq!(parsed["C"], "");
        let err = parse_pairs("--config", &["nope".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --config \"nope\": expected KEY=VALUE"
        );
        assert!(parse_pairs("--config", &["=1".to_string()]).is_err());
    }

    #[test]
    fn seconds_or_durations() {
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("30s"), Ok(30));
        assert_eq!(parse_seconds("2m"), Ok(120));
        assert_eq!(parse_seconds("1h 30m"), Ok(5400));
        assert_eq!(parse_seconds(" 90s "), Ok(90));
        assert!(parse_seconds("1500ms").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("-5").is_err());
        assert!(parse_seconds("").is_err());
    }
}

/// The Docker engine, named as the docker CLI names it.
#[derive(Debug, Args)]
pub struct DockerArgs {
    /// The Docker engine: `unix:///var/run/docker.sock` or `tcp://host:port`.
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,
    /// Any non-empty value: talk TLS to the engine and verify it.
    #[arg(long, env = "DOCKER_TLS_VERIFY")]
    pub docker_tls_verify: Option<String>,
    /// Directory with `ca.pem`, `cert.pem` and `key.pem` (default ~/.docker).
    #[arg(long, env = "DOCKER_CERT_PATH")]
    pub docker_cert_path: Option<PathBuf>,
}

impl DockerArgs {
    pub fn settings(&self) -> ConnectSettings {
        ConnectSettings {
            host: self.docker_host.clone().filter(|h| !h.is_empty()),
            tls_verify: self
                .docker_tls_verify
                .as_deref()
                .is_some_and(|v| !v.is_empty()),
            cert_path: self.docker_cert_path.clone(),
        }
    }
}
