//! `ferrite deploy APP`: build the function (and push it with `--push`),
//! create the app when it is missing, create the route of func.yaml or
//! update it to func.yaml's settings, and print the URL to call.

use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use super::args::given_fields;
use super::build::BuildArgs;
use crate::client::{self, ApiArgs, Client, ClientError};
use crate::func::funcfile::FuncFile;
use crate::output;

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The app to serve the function in; created when missing.
    pub app: String,
    #[command(flatten)]
    pub build: BuildArgs,
    /// Deploy the image built before, without building.
    #[arg(long)]
    pub no_build: bool,
    /// Push the image to the registry its name starts with first, so that
    /// servers on other hosts can pull it.
    #[arg(long)]
    pub push: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub async fn run(args: DeployArgs) -> anyhow::Result<()> {
    // The server is asked first: a wrong API_URL should not cost a build.
    let client = Client::new(&args.api)?;
    let app_exists = exists(client.get(&client::app_path(&args.app)).await)?;
    let loaded = args.build.prepare(args.no_build, args.push).await?;
    let func = &loaded.func;
    if !app_exists {
        client
            .post(&["v1", "apps"], &json!({ "app": { "name": args.app } }))
            .await?;
    }
    let path = func.route_path();
    let route_path = client::route_path(&args.app, &path);
    let fields = route_fields(func);
    let done = if exists(client.get(&route_path).await)? {
        client
            .patch(&route_path, &json!({ "route": fields }))
            .await?;
        "updated"
    } else {
        let mut route = Map::from_iter([("path".to_string(), json!(path))]);
        route.extend(fields);
        client
            .post(
                &["v1", "apps", &args.app, "routes"],
                &json!({ "route": route }),
            )
            .await?;
        "created"
    };
    output::print(&format!(
        "Deployed {} to app {}, route {path} {done}; call it at:\n{}",
        func.image(),
        args.app,
        client.function_url(&args.app, &path)
    ))
}

/// Whether a GET found its object: a 404 is "no", any other error is one.
fn exists(answer: anyhow::Result<Value>) -> anyhow::Result<bool> {
    match answer {
        Ok(_) => Ok(true),
        Err(e) => match e.downcast_ref::<ClientError>() {
            Some(ClientError::Status { status, .. }) if *status == StatusCode::NOT_FOUND => {
                Ok(false)
            }
            _ => Err(e),
        },
    }
}

/// The route's fields that func.yaml sets; the others keep the server's
/// defaults (a new route) or their values (an update).
fn route_fields(func: &FuncFile) -> Map<String, Value> {
    let input = func.route_input();
    given_fields([
        ("image", Some(json!(func.image()))),
        ("memory", input.memory.map(Value::from)),
        ("type", input.kind.map(Value::from)),
        ("format", input.format.map(Value::from)),
        ("max_concurrency", input.max_concurrency.map(Value::from)),
        ("timeout", input.timeout.map(Value::from)),
        ("idle_timeout", input.idle_timeout.map(Value::from)),
        ("headers", input.headers.map(|h| json!(h))),
        ("config", input.config.map(|c| json!(c))),
        ("jwt_key", input.jwt_key.map(Value::from)),
    ])
}
