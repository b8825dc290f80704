//! Apps as a list and one app in detail.

use ferrite_model::{App, AppLimits, Config};

use super::{config_lines, render, table, NONE};

/// Longest `K=V, ...` summary of a config in a list before it becomes a count.
const CONFIG_SUMMARY_CHARS: usize = 40;

/// One line per app: NAME and CONFIG.
pub fn apps_table(apps: &[App]) -> String {
    let mut table = table();
    table.set_header(["NAME", "CONFIG"]);
    for app in apps {
        table.add_row([app.name.clone(), config_summary(app.config.as_ref())]);
    }
    render(table)
}

/// Every field of one app, one per line.
pub fn app_details(app: &App) -> String {
    let mut table = table();
    table.add_row(["NAME", &app.name]);
    table.add_row(["CONFIG", &config_lines(app.config.as_ref())]);
    table.add_row(["LIMITS", &limit_lines(app.limits.as_ref())]);
    render(table)
}

/// The app's own limits, one per line (`0`: no limit); the server's
/// defaults apply to those not shown.
fn limit_lines(limits: Option<&AppLimits>) -> String {
    let Some(limits) = limits else {
        return "server defaults".to_string();
    };
    let lines: Vec<String> = [
        ("max_in_flight", limits.max_in_flight),
        ("rate", limits.rate),
        ("burst", limits.burst),
        ("max_queued", limits.max_queued),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
    .collect();
    lines.join("\n")
}

fn config_summary(config: Option<&Config>) -> String {
    let Some(config) = config.filter(|c| !c.is_empty()) else {
        return NONE.to_string();
    };
    let joined = config
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    if joined.chars().count() <= CONFIG_SUMMARY_CHARS && !joined.contains('\n') {
        joined
    } else if config.len() == 1 {
        "1 key".to_string()
    } else {
        format!("{} keys", config.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_table_is_aligned_and_plain() {
        let apps = [
            App {
                name: "myapp".into(),
                config: None,
                limits: None,
            },
            App {
                name: "b".into(),
                config: Some([("A".into(), "1".into()), ("B".into(), "2".into())].into()),
                limits: None,
            },
            App {
                name: "c".into(),
                config: Some([("LONG".into(), "x".repeat(60))].into()),
                limits: None,
            },
        ];
        assert_eq!(
            apps_table(&apps),
            "NAME   CONFIG\nmyapp  -\nb      A=1, B=2\nc      1 key"
        );
    }
    #[test]
    fn app_details_lists_config_lines() {
        let app = App {
            name: "b".into(),
            config: Some([("A".into(), "1".into()), ("B".into(), "2".into())].into()),
            limits: None,
        };
        assert_eq!(
            app_details(&app),
            "NAME    b\nCONFIG  A=1\n        B=2\nLIMITS  server defaults"
        );
        let limited = App {
            limits: Some(AppLimits {
                rate: Some(5),
                max_queued: Some(0),
                ..AppLimits::default()
            }),
            ..app
        };
        assert!(
            app_details(&limited).ends_with("LIMITS  rate=5\n        max_queued=0"),
            "{}",
            app_details(&limited)
        );
    }
}
