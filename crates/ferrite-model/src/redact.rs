//! Connection URLs as they may be shown: in log lines, error messages and
//! answers. `DB_URL` and `MQ_URL` may carry a password (in the user info, or
//! for PostgreSQL as a `password` query parameter); every layer that names
//! such a URL names it through [`url`], so the password never leaves the
//! process.

/// What replaces a password.
pub const MASK: &str = "***";

/// `url` with its password masked: `postgres://u:***@host/db`,
/// `redis://:***@host:6379/prefix`, `...?password=***`.
///
/// It errs on the side of hiding: the user info ends at the last `@` of the
/// URL, since a password may hold characters (`/`, `?`, `#`) that a careless
/// URL leaves unencoded; a URL whose `@` belongs to its path loses a little of
/// its host in the log line, never the other way round.
pub fn url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return query_password(url);
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, after)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:{MASK}@{after}"),
            None => format!("{userinfo}@{after}"),
        },
        None => rest.to_string(),
    };
    query_password(&format!("{scheme}://{rest}"))
}

/// Mask the values of `password=` query parameters (libpq's and sqlx's way
/// of giving a password outside the user info).
fn query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_string();
    };
    let masked: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={MASK}"),
            _ => pair.to_string(),
        })
        .collect();
    format!("{base}?{}", masked.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        for (raw, shown) in [
            (
                "postgres://ferrite:hunter2@db:5432/f?sslmode=disable",
                "postgres://ferrite:***@db:5432/f?sslmode=disable",
            ),
            ("redis://:hunter2@r:6379/p", "redis://:***@r:6379/p"),
            ("redis://r:6379/p", "redis://r:6379/p"),
            ("postgres://ferrite@db/f", "postgres://ferrite@db/f"),
            ("postgres://u:a/b?c@db/f", "postgres://u:***@db/f"),
            (
                "postgres://u@db/f?sslmode=disable&Password=hunter2",
                "postgres://u@db/f?sslmode=disable&Password=***",
            ),
            ("sqlite://./data/ferrite.db", "sqlite://./data/ferrite.db"),
            ("postgresql://u:p:q@h/d", "postgresql://u:***@h/d"),
            (
                "postgres://db/ferrite?user=a@b",
                "postgres://db/ferrite?user=a@b",
            ),
            ("postgres:nothing", "postgres:nothing"),
            ("sqlite:f.db?mode=rwc", "sqlite:f.db?mode=rwc"),
        ] {
            assert_eq!(url(raw), shown, "{raw}");
            assert!(!url(raw).contains("hunter2"));
        }
    }
}
