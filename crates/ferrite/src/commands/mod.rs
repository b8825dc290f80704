//! One module per top-level command; `args` holds what several of them
//! parse alike, and this file the one way they change an app or a route.

pub mod apps;
pub(crate) mod args;
pub mod build;
pub mod bump;
pub mod calls;
pub mod completion;
pub mod dead_letters;
pub mod deploy;
pub mod init;
pub mod keys;
pub mod routes;
pub mod run;
pub mod schedules;
pub mod server;
pub mod services;
pub mod top;
pub mod version;
pub mod watchdog;

use serde_json::{json, Map, Value};

use crate::client::{self, ApiArgs, Client};
use crate::output::{self, OutputArgs};

/// PATCH the `kind` object (`"app"`, `"route"`) at `path` with `fields`;
/// print the object the server answers with `--json`, else `message`.
async fn patch_and_print(
    api: &ApiArgs,
    path: &[&str],
    kind: &str,
    fields: Map<String, Value>,
    output: OutputArgs,
    message: &str,
) -> anyhow::Result<()> {
    let answer = Client::new(api)?
        .patch(path, &json!({ kind: fields }))
        .await?;
    output::print_done(&client::take(answer, kind)?, output, message)
}
