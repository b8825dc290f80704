//! The `--read-only`, `--network`, `--cap-add`, `--pids-limit`, `--nofile`
//! and `--cpus` flags of `ferrite routes create|update`: a route's
//! `confinement` section.

use clap::Args;
use serde_json::{json, Value};

use crate::commands::args::given_fields;

/// The ids of the confinement flags, which `--no-confinement` excludes.
pub(super) const CONFINEMENT_FLAGS: [&str; 6] = [
    "read_only",
    "network",
    "cap_add",
    "pids_limit",
    "nofile",
    "cpus",
];

/// The route's `confinement` section (docs/security.md): what its
/// containers may do beyond Ferrite's confined default. In an update, the
/// flags given are merged into the current section (created with the
/// server's defaults when missing).
#[derive(Debug, Args)]
pub struct ConfinementFields {
    /// Read-only root filesystem, with a writable tmpfs at /tmp the size of
    /// the memory limit (`--read-only=false` in an update turns it off)
    /// [server default: false].
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    read_only: Option<bool>,
    /// `none`: no network at all, only the loopback interface [server default: default].
    #[arg(long, value_parser = ["default", "none"])]
    network: Option<String>,
    /// Capability given back to the function, from the allowlist in
    /// docs/security.md, as NET_BIND_SERVICE (repeatable; in an update, the
    /// ones given replace the current ones, and `--cap-add ''` clears them).
    #[arg(long = "cap-add", value_name = "CAP")]
    cap_add: Vec<String>,
    /// Most processes and threads of a container (16 to 32768) [server default: 256].
    #[arg(long, value_name = "N")]
    pids_limit: Option<u64>,
    /// Open-files limit of a container (64 to 1048576) [server default: 1024].
    #[arg(long, value_name = "N")]
    nofile: Option<u64>,
    /// Hard CPU cap in CPUs, as 0.5; `none` removes it [server default: none,
    /// only a CPU weight tied to memory].
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    cpus: Option<Value>,
}

/// A CPU cap: a number of CPUs, or `none` (JSON null: no cap).
fn parse_cpus(text: &str) -> Result<Value, String> {
    if text == "none" {
        return Ok(Value::Null);
    }
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(Value::from)
        .ok_or_else(|| "expected a number of CPUs, as 0.5, or none".to_string())
}

impl ConfinementFields {
    /// The `confinement` object the flags ask for, `None` when no
    /// confinement flag was given.
    pub(super) fn into_json(self) -> Option<Value> {
        let mut section = given_fields([
            ("read_only", self.read_only.map(Value::from)),
            ("network", self.network.map(Value::from)),
            ("pids_limit", self.pids_limit.map(Value::from)),
            ("nofile", self.nofile.map(Value::from)),
            ("cpus", self.cpus),
        ]);
        if !self.cap_add.is_empty() {
            let caps: Vec<&String> = self.cap_add.iter().filter(|c| !c.is_empty()).collect();
            section.insert("cap_add".into(), json!(caps));
        }
        (!section.is_empty()).then_some(Value::Object(section))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confinement_json(args: &[&str]) -> Option<Value> {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            confinement: ConfinementFields,
        }
        let cli = Cli::try_parse_from([&["ferrite"], args].concat()).unwrap();
        cli.confinement.into_json()
    }

    #[test]
    fn confinement_flags() {
        assert_eq!(confinement_json(&[]), None);
        assert_eq!(
            confinement_json(&["--read-only"]),
            Some(json!({"read_only": true}))
        );
        assert_eq!(
            confinement_json(&[
                "--read-only=false",
                "--network",
                "none",
                "--cap-add",
                "CHOWN",
                "--cap-add",
                "KILL",
                "--pids-limit",
                "512",
                "--nofile",
                "4096",
                "--cpus",
                "0.5",
            ]),
            Some(
                json!({"read_only": false, "network": "none", "cap_add": ["CHOWN", "KILL"],
                        "pids_limit": 512, "nofile": 4096, "cpus": 0.5})
            )
        );
        assert_eq!(
            confinement_json(&["--cpus", "none", "--cap-add", ""]),
            Some(json!({"cpus": null, "cap_add": []})),
            "none removes the cap, '' clears the capabilities"
        );
        assert!(parse_cpus("half").is_err());
    }
}
