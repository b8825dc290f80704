//! `ferrite routes call`: call a route's function with stdin as the request
//! body, and copy the answer's body to stdout.

use std::io::{IsTerminal, Read};

use anyhow::Context;
use clap::{Args, ValueEnum};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::client::{Client, FunctionCall, ServerArgs};
use crate::commands::args::absolute;
use crate::credentials;

/// The arguments of `ferrite routes call`. For a route with a `jwt_key`,
/// the call's token is signed with `FERRITE_ROUTE_JWT_KEY` from the
/// environment (a key given as a flag would land in shell history).
#[derive(Debug, Args)]
pub struct CallArgs {
    /// Name of the app.
    app: String,
    /// Path of the route, as in /hello or /a/b.
    path: String,
    /// HTTP method of the call; with GET, the body is sent as the `payload`
    /// query parameter.
    #[arg(long, short = 'X', value_enum, ignore_case = true, default_value_t = CallMethod::Post)]
    method: CallMethod,
    /// Request header, which the function sees as HEADER_<NAME> (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Print the answer's status line and headers (such as fn-call-id) to stderr.
    #[arg(long, short = 'i')]
    include: bool,
    #[command(flatten)]
    server: ServerArgs,
}

/// The methods a function can be called with.
#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum CallMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl From<CallMethod> for reqwest::Method {
    fn from(method: CallMethod) -> Self {
        match method {
            CallMethod::Get => reqwest::Method::GET,
            CallMethod::Post => reqwest::Method::POST,
            CallMethod::Put => reqwest::Method::PUT,
            CallMethod::Patch => reqwest::Method::PATCH,
            CallMethod::Delete => reqwest::Method::DELETE,
        }
    }
}

/// `ferrite routes call`: a 2xx answer's body to stdout, any other answer an
/// error with the server's message.
pub(super) async fn run(args: CallArgs) -> anyhow::Result<()> {
    let headers = parse_request_headers(&args.headers)?;
    let body = tokio::task::spawn_blocking(read_body)
        .await
        .context("cannot read the request body from stdin")??;
    let client = Client::for_calls(&args.server)?;
    let route_key = credentials::route_key(&credentials::process_env);
    let response = client
        .call(FunctionCall {
            method: args.method.into(),
            app: &args.app,
            path: &absolute(&args.path),
            headers,
            body,
            jwt_key: route_key.as_deref(),
        })
        .await?;
    if args.include {
        eprint!("{}", head(&response));
    }
    if !response.status().is_success() {
        return Err(client.failure(response).await);
    }
    client.write_body(response, &mut std::io::stdout()).await
}

/// All of stdin; nothing when it is a terminal, so that a call without a body
/// does not wait for one.
fn read_body() -> anyhow::Result<Vec<u8>> {
    let mut stdin = std::io::stdin();
    let mut body = Vec::new();
    if !stdin.is_terminal() {
        stdin
            .read_to_end(&mut body)
            .context("cannot read the request body from stdin")?;
    }
    Ok(body)
}

/// The status line and headers of an answer, as `curl -i` shows them.
fn head(response: &reqwest::Response) -> String {
    let mut head = format!("{:?} {}\n", response.version(), response.status());
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        head.push_str(&format!("{name}: {value}\n"));
    }
    head.push('\n');
    head
}

/// `NAME: VALUE` arguments as request headers; a repeated name is sent repeated.
fn parse_request_headers(args: &[String]) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for arg in args {
        let invalid = || anyhow::anyhow!("invalid --header {arg:?}: expected 'NAME: VALUE'");
        let (name, value) = arg.split_once(':').ok_or_else(invalid)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| invalid())?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_headers_are_name_colon_value() {
        let args = ["X-A: 1", "x-a:2", "Content-Type: text/plain; x=y"].map(String::from);
        let headers = parse_request_headers(&args).unwrap();
        assert_eq!(headers.get_all("x-a").iter().count(), 2);
        assert_eq!(headers["content-type"], "text/plain; x=y");
        for bad in ["X-A=1", ": 1", "X A: 1"] {
            let err = parse_request_headers(&[bad.to_string()]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid --header {bad:?}: expected 'NAME: VALUE'")
            );
        }
    }
}
