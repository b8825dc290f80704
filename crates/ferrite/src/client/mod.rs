//! The HTTP client of the v1 API that every client command talks through.
//!
//! It owns the three things a command should not care about: where the server
//! is and how to authenticate (both from [`crate::credentials`]: the
//! environment or the config file, never a flag), and how a failure becomes
//! one readable line: "cannot reach the server at ..." when there is no
//! answer, or the status and the server's own message when there is one.
//! Function calls through `/r/` go through it too, with their own timeout and
//! token (see [`Client::for_calls`]).

mod error;
mod token;

use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, Response, Url};
use serde_json::Value;

use self::error::{error_message, excerpt, root_cause};
use self::token::bearer;
use crate::credentials::{self, Credential};

pub use self::error::ClientError;

/// Where the server is: all that a function call needs, since the `/v1`
/// credential guards only `/v1`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// URL of the Ferrite API (a bare `host:port` means http) [default:
    /// api_url of ~/.config/ferrite/config.toml, else http://localhost:8080].
    #[arg(long, env = "API_URL")]
    pub api_url: Option<String>,
}

/// The server a client command talks to. How it authenticates is not a
/// flag: see [`crate::credentials`].
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

/// How long to wait for a TCP connection before saying the server is unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a management call may take in all; they are small reads and writes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a function call may take in all: the longest `timeout` a route
/// may have, plus room for waiting on a free slot and starting a container.
const CALL_TIMEOUT: Duration = Duration::from_secs(ferrite_model::route::MAX_TIMEOUT_S + 10 * 60);

/// A client of one Ferrite server.
pub struct Client {
    http: reqwest::Client,
    /// The API root; request paths are appended to its segments.
    base: Url,
    /// `base` as the user would write it, for messages.
    shown: String,
    /// `Authorization` header value, when a JWT key is configured.
    bearer: Option<String>,
    /// The total time a request may take, for the message when it runs out.
    timeout: Duration,
}

/// One call of a function through `/r/{app}/{path}`.
pub struct FunctionCall<'a> {
    pub method: Method,
    pub app: &'a str,
    /// The route's path, as in `/hello` or `/a/b`.
    pub path: &'a str,
    /// Request headers, given to the function as `HEADER_<NAME>`.
    pub headers: HeaderMap,
    /// The function's stdin; for a GET, sent as the `payload` query parameter.
    pub body: Vec<u8>,
    /// Key of the route's `jwt_key`, to sign the call's bearer token with
    /// (`FERRITE_ROUTE_JWT_KEY`).
    pub jwt_key: Option<&'a str>,
}

impl Client {
    /// Build a client of `/v1` from the command's `--api-url` / `API_URL`
    /// and the credential of the environment or the config file.
    pub fn new(args: &ApiArgs) -> anyhow::Result<Client> {
        let settings = credentials::load(
            args.server.api_url.as_deref(),
            true,
            &credentials::process_env,
        )?;
        let bearer = match settings.credential {
            Some(Credential::Key { key, from }) => Some(bearer(&key, &from)?),
            Some(Credential::Token(token)) => Some(format!("Bearer {token}")),
            None => None,
        };
        Client::build(&settings.api_url, REQUEST_TIMEOUT, bearer)
    }

    /// Build a client for [`Client::call`]: it sends no `/v1` credential
    /// (that guards only `/v1`) and waits as long as a function may run.
    pub fn for_calls(args: &ServerArgs) -> anyhow::Result<Client> {
        let settings =
            credentials::load(args.api_url.as_deref(), false, &credentials::process_env)?;
        Client::build(&settings.api_url, CALL_TIMEOUT, None)
    }

    fn build(api_url: &str, timeout: Duration, bearer: Option<String>) -> anyhow::Result<Client> {
        let base = parse_base_url(api_url)?;
        let shown = base.as_str().trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .user_agent(concat!("ferrite-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            http,
            base,
            shown,
            bearer,
            timeout,
        })
    }

    /// Call a function. The answer comes back whatever its status, with its
    /// body unread so that it can be streamed with [`Client::write_body`];
    /// turn a non-2xx one into its error with [`Client::failure`].
    pub async fn call(&self, call: FunctionCall<'_>) -> anyhow::Result<Response> {
        let mut url = self.url(&invoke_path(call.app, call.path), &[]);
        let mut body = call.body;
        // As IronFunctions: a GET's payload is its `payload` query parameter.
        if call.method == Method::GET && !body.is_empty() {
            let payload = String::from_utf8(std::mem::take(&mut body)).map_err(|_| {
                anyhow::anyhow!(
                    "with GET the body is sent as the `payload` query parameter, \
                     which must be UTF-8 text"
                )
            })?;
            url.query_pairs_mut().append_pair("payload", &payload);
        }
        let mut headers = call.headers;
        if let Some(key) = call.jwt_key.filter(|k| !k.is_empty()) {
            let value = HeaderValue::from_str(&bearer(key, "FERRITE_ROUTE_JWT_KEY")?)
                .context("the signed token is not a valid header value")?;
            headers.insert(AUTHORIZATION, value);
        }
        let get = call.method == Method::GET;
        let mut request = self.http.request(call.method, url).headers(headers);
        if !get {
            request = request.body(body);
        }
        request
            .send()
            .await
            .map_err(|e| self.transport_error(&e).into())
    }

    /// The URL a function of `app` at `path` is called at.
    pub fn function_url(&self, app: &str, path: &str) -> String {
        self.url(&invoke_path(app, path), &[]).to_string()
    }

    /// Copy an answer's body to `out` as it arrives, byte for byte.
    pub async fn write_body(
        &self,
        mut response: Response,
        out: &mut impl std::io::Write,
    ) -> anyhow::Result<()> {
        let cannot_write = "cannot write the answer";
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            out.write_all(&chunk).context(cannot_write)?;
        }
        out.flush().context(cannot_write)
    }

    /// The error of a non-2xx answer: its status and the server's message.
    pub async fn failure(&self, response: Response) -> anyhow::Error {
        let status = response.status();
        let path = response.url().path().to_string();
        match response.bytes().await {
            Ok(bytes) => ClientError::Status {
                status,
                message: error_message(&bytes),
                path,
            }
            .into(),
            Err(e) => self.transport_error(&e).into(),
        }
    }

    /// `GET` the resource at `path` (segments, each encoded on its own).
    pub async fn get(&self, path: &[&str]) -> anyhow::Result<Value> {
        self.send(Method::GET, path, &[], None).await
    }

    /// `GET` the resource at `path` with query parameters.
    pub async fn get_query(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(Method::GET, path, query, None).await
    }

    /// `GET` a resource that is not JSON (a call's log or output), with its
    /// body unread for [`Client::write_body`]; a non-2xx answer is its error.
    pub async fn get_raw(&self, path: &[&str]) -> anyhow::Result<Response> {
        let response = self
            .request(Method::GET, path, &[])
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !response.status().is_success() {
            return Err(self.failure(response).await);
        }
        Ok(response)
    }

    /// `POST` `body` to the resource at `path`.
    pub async fn post(&self, path: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    /// `PATCH` the resource at `path` with `body`.
    pub async fn patch(&self, path: &[&str], body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PATCH, path, &[], Some(body)).await
    }

    /// `DELETE` the resource at `path`, with optional query parameters.
    pub async fn delete(&self, path: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Value> {
        self.send(Method::DELETE, path, query, None).await
    }

    async fn send(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.request(method, path, query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let path = response.url().path().to_string();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if !status.is_success() {
            return Err(ClientError::Status {
                status,
                message: error_message(&bytes),
                path,
            }
            .into());
        }
        serde_json::from_slice(&bytes).map_err(|e| {
            ClientError::BadAnswer {
                url: self.shown.clone(),
                reason: format!("{status} with a body that is not JSON ({e})"),
            }
            .into()
        })
    }

    /// A `/v1` request, with the bearer token when there is one.
    fn request(
        &self,
        method: Method,
        path: &[&str],
        query: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let request = self.http.request(method, self.url(path, query));
        match &self.bearer {
            Some(bearer) => request.header(AUTHORIZATION, bearer),
            None => request,
        }
    }

    fn url(&self, path: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(path);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    fn transport_error(&self, error: &reqwest::Error) -> ClientError {
        if error.is_timeout() && !error.is_connect() {
            return ClientError::TimedOut {
                url: self.shown.clone(),
                after: self.timeout,
            };
        }
        ClientError::Unreachable {
            url: self.shown.clone(),
            reason: root_cause(error),
        }
    }
}

/// The URL segments of an app.
pub fn app_path(app: &str) -> [&str; 3] {
    ["v1", "apps", app]
}

/// The URL segments of a route: `/a/b` becomes `a`, `b` after the app's routes.
pub fn route_path<'a>(app: &'a str, path: &'a str) -> Vec<&'a str> {
    let mut segments = vec!["v1", "apps", app, "routes"];
    segments.extend(path.trim_start_matches('/').split('/'));
    segments
}

/// The URL segments of an app's call history.
pub fn calls_path(app: &str) -> [&str; 4] {
    ["v1", "apps", app, "calls"]
}

/// The URL segments of one call, or of its `log` or `output` with `part`.
pub fn call_path<'a>(app: &'a str, id: &'a str, part: Option<&'a str>) -> Vec<&'a str> {
    let mut segments = vec!["v1", "apps", app, "calls", id];
    segments.extend(part);
    segments
}

/// The URL segments of a function call: `/r/{app}/{path...}`.
pub fn invoke_path<'a>(app: &'a str, path: &'a str) -> Vec<&'a str> {
    let mut segments = vec!["r", app];
    segments.extend(path.trim_start_matches('/').split('/'));
    segments
}

/// Take the object under `key` out of an API answer (`{"message":..,"app":{..}}`).
pub fn take(mut answer: Value, key: &str) -> anyhow::Result<Value> {
    match answer.get_mut(key).map(Value::take) {
        Some(value) if !value.is_null() => Ok(value),
        _ => Err(anyhow::anyhow!(
            "unexpected answer from the server: no \"{key}\" in {}",
            excerpt(&answer.to_string())
        )),
    }
}

fn parse_base_url(raw: &str) -> anyhow::Result<Url> {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("http://{raw}")
    };
    let url =
        Url::parse(&with_scheme).with_context(|| format!("API_URL {raw:?} is not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        anyhow::bail!("API_URL {raw:?} must be an http:// or https:// URL");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str) -> Client {
        Client::build(url, REQUEST_TIMEOUT, None).unwrap()
    }

    #[test]
    fn base_url_forms() {
        for raw in [
            "http://localhost:8080",
            "http://localhost:8080/",
            "localhost:8080",
        ] {
            let c = client(raw);
            assert_eq!(c.shown, "http://localhost:8080", "{raw}");
            assert_eq!(
                c.url(&app_path("myapp"), &[]).as_str(),
                "http://localhost:8080/v1/apps/myapp"
            );
        }
        let c = client("https://example.com/ferrite/");
        assert_eq!(
            c.url(&["version"], &[]).as_str(),
            "https://example.com/ferrite/version"
        );
        assert!(Client::build("ftp://x", REQUEST_TIMEOUT, None).is_err());
    }

    #[test]
    fn route_urls_encode_each_segment() {
        let c = client("http://h:1");
        assert_eq!(
            c.url(&route_path("a", "/x/y z/%"), &[]).as_str(),
            "http://h:1/v1/apps/a/routes/x/y%20z/%25"
        );
        assert_eq!(
            c.url(&invoke_path("a", "/x/y z"), &[]).as_str(),
            "http://h:1/r/a/x/y%20z"
        );
        assert_eq!(
            c.url(&call_path("a", "x/y", Some("log")), &[]).as_str(),
            "http://h:1/v1/apps/a/calls/x%2Fy/log"
        );
        assert_eq!(
            c.url(&app_path("a"), &[("cascade", "true")]).as_str(),
            "http://h:1/v1/apps/a?cascade=true"
        );
    }
}
