//! `ferrite top`: what every route of a node is doing now, from its
//! `/metrics` scraped once per interval: calls and errors per second,
//! median and 95th percentile duration, cold starts and containers.

mod rates;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;

use self::rates::{Row, Scrape};
use crate::client::{ApiArgs, Client};
use crate::output;

/// The shortest and longest `--interval`: shorter ones measure too few calls
/// to say much, longer ones are not "now" any more.
const MIN_INTERVAL: Duration = Duration::from_millis(500);
const MAX_INTERVAL: Duration = Duration::from_secs(60);
/// The most of a `/metrics` answer read; a node's is a few hundred KiB at most.
const MAX_SCRAPE_BYTES: usize = 16 * 1024 * 1024;

/// Arguments of `ferrite top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between two scrapes, from 0.5s to 60s (`2s`, `500ms`, or seconds as in `0.5`).
    #[arg(long, value_name = "TIME", default_value = "2s", value_parser = parse_interval)]
    interval: Duration,
    /// Scrape twice, one interval apart, print one table and exit.
    #[arg(long)]
    once: bool,
    /// With --once: print the rows as JSON.
    #[arg(long, short = 'j', requires = "once")]
    json: bool,
    #[command(flatten)]
    api: ApiArgs,
}

/// Scrape, wait, scrape and show the difference, until interrupted (or once).
pub async fn run(args: TopArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api)?;
    let mut before = Reading::take(&client).await?;
    if args.once {
        tokio::time::sleep(args.interval).await;
        let after = Reading::take(&client).await?;
        let rows = rates::rows(&before.scrape, &after.scrape, after.at - before.at);
        return if args.json {
            output::print_json(&serde_json::to_value(rows).context("cannot format the rows")?)
        } else {
            output::print(&table(&rows))
        };
    }
    let terminal = std::io::stdout().is_terminal();
    loop {
        tokio::time::sleep(args.interval).await;
        let after = Reading::take(&client).await?;
        let elapsed = after.at - before.at;
        let rows = rates::rows(&before.scrape, &after.scrape, elapsed);
        let routes = match rows.len() {
            1 => "1 route".to_string(),
            n => format!("{n} routes"),
        };
        let title = format!(
            "ferrite top: {routes} over the last {:.1}s (Ctrl-C to stop)",
            elapsed.as_secs_f64()
        );
        show(&format!("{title}\n\n{}", table(&rows)), terminal)?;
        before = after;
    }
}

/// A node's metrics, and when they were read.
struct Reading {
    at: Instant,
    scrape: Scrape,
}

impl Reading {
    async fn take(client: &Client) -> anyhow::Result<Reading> {
        let response = client.get_raw(&["metrics"]).await?;
        let mut body = Capped(Vec::new());
        client.write_body(response, &mut body).await?;
        let text = String::from_utf8(body.0).context("the metrics are not UTF-8 text")?;
        Ok(Reading {
            at: Instant::now(),
            scrape: Scrape::parse(&text)?,
        })
    }
}

/// A buffer that refuses to grow past [`MAX_SCRAPE_BYTES`].
struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_SCRAPE_BYTES {
            return Err(std::io::Error::other(format!(
                "the metrics are larger than {} MiB",
                MAX_SCRAPE_BYTES / (1024 * 1024)
            )));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Print `screen`; on a terminal over the previous one, line by line (no
/// flicker), clearing what is left of each line and below.
fn show(screen: &str, terminal: bool) -> anyhow::Result<()> {
    if !terminal {
        return output::print(&format!("{screen}\n"));
    }
    let mut text = String::from("\x1b[H");
    for line in screen.lines() {
        text.push_str(line);
        text.push_str("\x1b[K\n");
    }
    text.push_str("\x1b[J");
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the output")
}

fn table(rows: &[Row]) -> String {
    let mut table = output::table();
    table.set_header([
        "APP",
        "ROUTE",
        "CALLS/S",
        "ERRORS/S",
        "P50",
        "P95",
        "COLD",
        "BUSY",
        "CONTAINERS",
    ]);
    for row in rows {
        table.add_row([
            row.app.clone(),
            row.route.clone(),
            format!("{:.1}", row.calls_per_s),
            format!("{:.1}", row.errors_per_s),
            seconds(row.p50_s),
            seconds(row.p95_s),
            row.cold_starts.to_string(),
            row.busy.to_string(),
            row.containers.to_string(),
        ]);
    }
    output::render(table)
}

/// A duration as people read it: `12.3ms`, `1.25s`; `-` for none.
fn seconds(value: Option<f64>) -> String {
    match value {
        None => "-".to_string(),
        Some(s) if s < 1.0 => format!("{:.1}ms", s * 1000.0),
        Some(s) => format!("{s:.2}s"),
    }
}

/// An `--interval`: a humantime duration (`2s`, `500ms`) or seconds (`0.5`).
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s),
        Ok(_) => return Err("expected a positive time, as in 2s or 500ms".to_string()),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("expected a time, as in 2s or 500ms ({e})"))?,
    };
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err("the interval must be from 0.5s to 60s".to_string());
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("1m"), Ok(Duration::from_secs(60)));
        for bad in ["100ms", "61s", "0", "-1", "NaN", "soon"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(seconds(None), "-");
        assert_eq!(seconds(Some(0.0123)), "12.3ms");
        assert_eq!(seconds(Some(1.25)), "1.25s");
    }
}
