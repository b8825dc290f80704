//! API keys as a list.

use ferrite_model::ApiKey;

use super::{render, table, NONE};

/// One line per key: ID, APP, ACCESS, NAME, CREATED, EXPIRES (never a token:
/// the server shows it only when the key is made).
pub fn keys_table(keys: &[ApiKey]) -> String {
    let mut table = table();
    table.set_header(["ID", "APP", "ACCESS", "NAME", "CREATED", "EXPIRES"]);
    for key in keys {
        table.add_row([
            key.id.clone(),
            key.app.clone(),
            key.access.as_str().to_string(),
            key.name.clone().unwrap_or_else(|| NONE.to_string()),
            key.created_at.to_string(),
            key.expires_at
                .map_or_else(|| NONE.to_string(), |t| t.to_string()),
        ]);
    }
    render(table)
}
