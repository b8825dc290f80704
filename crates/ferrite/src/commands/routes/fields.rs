//! The settings a route is created or updated with: the flags `ferrite
//! routes create` and `update` share, and the `"route"` object they make.

use std::path::PathBuf;

use clap::Args;
use ferrite_model::Headers;
use serde_json::{json, Map, Value};

use super::confinement_flags::ConfinementFields;
use super::service_flags::ServiceFields;
use crate::commands::args::{given_fields, parse_pairs, parse_seconds, split_pair};

/// The optional settings of a route, shared by `create` and `update`.
#[derive(Debug, Args)]
pub struct RouteFields {
    /// Memory limit of the function's container in MiB [server default: 128].
    #[arg(long, short = 'm', value_name = "MIB")]
    memory: Option<u64>,
    /// Whether callers wait for the answer (sync) or get a call id (async) [server default: sync].
    #[arg(long = "type", value_name = "TYPE", value_parser = ["sync", "async"])]
    kind: Option<String>,
    /// One container per call (default) or a hot container speaking HTTP (http).
    #[arg(long, value_parser = ["default", "http"])]
    format: Option<String>,
    /// Most hot containers of the route per node [server default: 1].
    #[arg(long, value_name = "N")]
    max_concurrency: Option<u64>,
    /// Time limit of one call, as seconds or as 30s, 2m [server default: 30s].
    #[arg(long, short = 't', value_name = "DURATION", value_parser = parse_seconds)]
    timeout: Option<u64>,
    /// Time a hot container waits for work before it stops, as seconds or
    /// as 30s, 2m [server default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = parse_seconds)]
    idle_timeout: Option<u64>,
    /// Times an async call whose function fails is run again (0 to 10) [server default: 0].
    #[arg(long, value_name = "N")]
    max_retries: Option<u64>,
    /// Header added to every answer (repeatable; in an update, `NAME=` removes it).
    #[arg(long = "header", value_name = "NAME=VALUE")]
    headers: Vec<String>,
    /// Config given to the function as an environment variable (repeatable;
    /// in an update, `KEY=` removes it).
    #[arg(long = "config", short = 'c', value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Require calls to carry an HS256 bearer token signed with the key in
    /// FILE (its content, one trailing newline removed; `/dev/stdin` reads
    /// it from a pipe). A file, not the key: a flag lands in shell history.
    #[arg(long, value_name = "FILE", conflicts_with = "no_jwt_key")]
    jwt_key_file: Option<PathBuf>,
    /// In an update: remove the route's jwt_key, so that calls need no token.
    #[arg(long)]
    no_jwt_key: bool,
    /// Boxed: the service flags would double the size of every
    /// `ferrite` command value (clippy's `large_enum_variant`).
    #[command(flatten)]
    service: Box<ServiceFields>,
    #[command(flatten)]
    confinement: Box<ConfinementFields>,
}

impl RouteFields {
    /// The given settings as fields of a `"route"` object; `None` leaves a
    /// field out so that the server's default or the current value holds.
    pub(super) fn into_json(self) -> anyhow::Result<Map<String, Value>> {
        let headers = if self.headers.is_empty() {
            None
        } else {
            Some(json!(parse_headers(&self.headers)?))
        };
        let config = if self.config.is_empty() {
            None
        } else {
            Some(json!(parse_pairs("--config", &self.config)?))
        };
        let jwt_key = match &self.jwt_key_file {
            Some(path) => Some(Value::from(ferrite_server::ServerConfig::read_secret_file(
                "--jwt-key-file",
                path,
            )?)),
            // The API's way of removing the key.
            None if self.no_jwt_key => Some(Value::from("")),
            None => None,
        };
        let route = given_fields([
            ("memory", self.memory.map(Value::from)),
            ("type", self.kind.map(Value::from)),
            ("format", self.format.map(Value::from)),
            ("max_concurrency", self.max_concurrency.map(Value::from)),
            ("timeout", self.timeout.map(Value::from)),
            ("idle_timeout", self.idle_timeout.map(Value::from)),
            ("max_retries", self.max_retries.map(Value::from)),
            ("headers", headers),
            ("config", config),
            ("jwt_key", jwt_key),
            ("service", self.service.into_json()?),
            ("confinement", self.confinement.into_json()),
        ]);
        Ok(route)
    }
}

/// `NAME=VALUE` arguments as the API's header map: a repeated name gets
/// several values, and `NAME=` alone an empty list (removal in an update).
fn parse_headers(args: &[String]) -> anyhow::Result<Headers> {
    let mut headers = Headers::new();
    for arg in args {
        let (name, value) = split_pair("--header", "NAME=VALUE", arg)?;
        let values = headers.entry(name).or_default();
        if !value.is_empty() {
            values.push(value);
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_group_by_name() {
        let args = ["X-A=1", "X-A=2", "X-B="].map(String::from);
        let headers = parse_headers(&args).unwrap();
        assert_eq!(headers["X-A"], ["1", "2"]);
        assert!(headers["X-B"].is_empty());
        let err = parse_headers(&["X-A: 1".to_string()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --header \"X-A: 1\": expected NAME=VALUE"
        );
    }
}
