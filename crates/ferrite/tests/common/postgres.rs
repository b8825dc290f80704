//! The shared throwaway PostgreSQL of [`ferrite_testkit::postgres`], with
//! URLs as nodes take them (`?sslmode=disable`).

use ferrite_testkit::postgres;

/// The `DB_URL` of a new, empty database.
pub fn fresh_database() -> String {
    format!("{}?sslmode=disable", postgres::fresh_database())
}

/// The `DB_URL`, without the password, of a new, empty database owned by a
/// new role that must log in with `password` (see
/// [`postgres::database_with_password`]).
pub fn database_with_password(password: &str) -> String {
    format!(
        "{}?sslmode=disable",
        postgres::database_with_password(password)
    )
}
