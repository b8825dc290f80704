//! The `confinement` section of a route: what a function's container may do
//! beyond Ferrite's confined default, and how much it may take.
//!
//! Every function runs confined whether or not its route has this section:
//! all capabilities dropped, no new privileges, a pids limit, an open-files
//! limit and a CPU weight tied to its memory. The section only opens a
//! little more (capabilities from an allowlist, more processes or files) or
//! closes more (a read-only root filesystem, no network, a hard CPU cap).
//!
//! This module owns the fields, their defaults, their rules, how a PATCH
//! merges into them, and the one resolved [`Confinement`] that the container
//! code and the Swarm service definition both apply, so the defaults live here
//! only. Which capabilities a route may add, and why the others are refused,
//! is the `capability` module's.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decode::absent_or_null;
use crate::{validate, ApiError};

mod capability;

pub use capability::{capability, CAP_ALLOWLIST, MAX_CAP_ADD};

/// Most processes and threads of one container when the route does not say:
/// far above what a function needs, low enough that a fork bomb stops there.
pub const DEFAULT_PIDS_LIMIT: u32 = 256;
/// Fewest a route may ask for: the init, the function and a few helpers.
pub const MIN_PIDS_LIMIT: u32 = 16;
pub const MAX_PIDS_LIMIT: u32 = 32_768;
/// Open-files limit (soft = hard) when the route does not say: the usual
/// soft limit of a Linux login.
pub const DEFAULT_NOFILE: u32 = 1024;
/// Fewest a route may ask for: the init needs a handful of its own.
pub const MIN_NOFILE: u32 = 64;
/// Linux's default `fs.nr_open`: no process may open more.
pub const MAX_NOFILE: u32 = 1_048_576;
/// Smallest hard CPU cap, in thousandths of a CPU (Docker's own minimum, 0.01).
pub const MIN_MILLI_CPUS: u32 = 10;
/// Largest hard CPU cap, in thousandths of a CPU (256 CPUs). The engine
/// treats a cap at or above the node's CPUs as no cap.
pub const MAX_MILLI_CPUS: u32 = 256_000;
/// CPU weight (Docker's `CpuShares`) per MiB of the route's memory, so that a
/// route of the default 128 MiB weighs 1024, Docker's default weight, and a
/// route with twice the memory gets twice the CPU when CPUs are contended.
pub const CPU_SHARES_PER_MIB: u64 = 8;
/// Bounds of Docker's `CpuShares` (the kernel's `cpu.shares`).
pub const MIN_CPU_SHARES: u64 = 2;
pub const MAX_CPU_SHARES: u64 = 262_144;
/// The network of a function's container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The network Ferrite puts function containers on.
    #[default]
    Default,
    /// No network at all: only the loopback interface.
    None,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Default => "default",
            Network::None => "none",
        }
    }

    fn parse(value: &str) -> Result<Self, ApiError> {
        validate::choice(
            "route confinement.network",
            value,
            &[("default", Network::Default), ("none", Network::None)],
        )
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hard CPU cap, kept in thousandths of a CPU so that routes stay `Eq` and
/// a stored value reads back exactly; shown in JSON as a number of CPUs (`0.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cpus(u32);

impl Cpus {
    /// `cpus` rounded to the thousandth, within
    /// [`MIN_MILLI_CPUS`]..=[`MAX_MILLI_CPUS`] thousandths.
    pub fn new(cpus: f64) -> Result<Cpus, ApiError> {
        let milli = (cpus * 1000.0).round();
        if !milli.is_finite()
            || milli < f64::from(MIN_MILLI_CPUS)
            || milli > f64::from(MAX_MILLI_CPUS)
        {
            return Err(ApiError::bad_request(format!(
                "route confinement.cpus must be between {} and {} CPUs, got {cpus}; \
                 null removes the cap",
                f64::from(MIN_MILLI_CPUS) / 1000.0,
                f64::from(MAX_MILLI_CPUS) / 1000.0,
            )));
        }
        // In range, so the conversion is exact.
        Ok(Cpus(milli as u32))
    }

    pub fn milli(self) -> u32 {
        self.0
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

impl Serialize for Cpus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Cpus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let cpus = f64::deserialize(deserializer)?;
        Cpus::new(cpus).map_err(|e| serde::de::Error::custom(e.message))
    }
}

/// A route's confinement section as stored and as the API shows it.
///
/// Every field is always present in the JSON (`cpus` is `null` without a
/// cap). Reading a stored section that lacks a field gives its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct ConfinementSpec {
    /// Read-only root filesystem, with a writable tmpfs at `/tmp`.
    pub read_only: bool,
    pub network: Network,
    /// Capabilities given back, from [`CAP_ALLOWLIST`], without `CAP_`,
    /// sorted and without duplicates.
    pub cap_add: Vec<String>,
    /// Most processes and threads in the container.
    pub pids_limit: u32,
    /// Open-files limit, soft and hard.
    pub nofile: u32,
    /// Hard CPU cap; `None`: only the weight tied to memory.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub cpus: Option<Cpus>,
}

impl Default for ConfinementSpec {
    fn default() -> Self {
        ConfinementSpec {
            read_only: false,
            network: Network::Default,
            cap_add: Vec::new(),
            pids_limit: DEFAULT_PIDS_LIMIT,
            nofile: DEFAULT_NOFILE,
            cpus: None,
        }
    }
}

/// The `confinement` object of a route creation or PATCH. Absent or `null`
/// fields are "not given" (the default, or the current value), except `cpus`,
/// where `null` removes the cap. Unknown fields are refused: a misspelt
/// `read_onyl` silently ignored would leave a route less confined than meant.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConfinementInput {
    pub read_only: Option<bool>,
    pub network: Option<String>,
    /// Replaces the whole list when given (`[]` clears it).
    pub cap_add: Option<Vec<String>>,
    pub pids_limit: Option<i64>,
    pub nofile: Option<i64>,
    /// Absent: keep; `null`: no cap; a number: the cap in CPUs.
    #[serde(default, deserialize_with = "absent_or_null")]
    pub cpus: Option<Option<f64>>,
}

fn whole(field: &str, value: i64, min: u32, max: u32, unit: &str) -> Result<u32, ApiError> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "route confinement.{field} must be between {min} and {max} {unit}, got {value}"
            ))
        })
}

impl ConfinementSpec {
    /// A new section from `input`, with defaults for what it does not give.
    pub fn create(input: ConfinementInput) -> Result<ConfinementSpec, ApiError> {
        let mut spec = ConfinementSpec::default();
        spec.apply(input)?;
        Ok(spec)
    }

    /// Merge `patch` into this section, field by field: values given
    /// replace, `cap_add` given replaces the list, `cpus: null` removes the
    /// cap. Nothing changes when an error is returned.
    pub fn apply(&mut self, patch: ConfinementInput) -> Result<(), ApiError> {
        let mut next = self.clone();
        if let Some(read_only) = patch.read_only {
            next.read_only = read_only;
        }
        if let Some(network) = patch.network {
            next.network = Network::parse(&network)?;
        }
        if let Some(caps) = patch.cap_add {
            if caps.len() > MAX_CAP_ADD {
                return Err(ApiError::bad_request(format!(
                    "route confinement.cap_add may hold at most {MAX_CAP_ADD} entries, got {}",
                    caps.len()
                )));
            }
            let mut caps = caps
                .iter()
                .map(|c| capability(c))
                .collect::<Result<Vec<_>, _>>()?;
            caps.sort();
            caps.dedup();
            next.cap_add = caps;
        }
        if let Some(v) = patch.pids_limit {
            next.pids_limit = whole("pids_limit", v, MIN_PIDS_LIMIT, MAX_PIDS_LIMIT, "processes")?;
        }
        if let Some(v) = patch.nofile {
            next.nofile = whole("nofile", v, MIN_NOFILE, MAX_NOFILE, "files")?;
        }
        match patch.cpus {
            None => {}
            Some(None) => next.cpus = None,
            Some(Some(cpus)) => next.cpus = Some(Cpus::new(cpus)?),
        }
        *self = next;
        Ok(())
    }
}

/// The confinement a function's container gets: a route's section (or the
/// defaults) resolved against its memory. The one value the container code
/// and the Swarm service definition read.
#[derive(Debug, Clone, PartialEq)]
pub struct Confinement {
    /// Read-only root filesystem, with a tmpfs of [`tmp_size_mib`](Self::tmp_size_mib) at `/tmp`.
    pub read_only: bool,
    /// No network at all (only `lo`).
    pub network_none: bool,
    /// Capabilities given back after dropping all, without `CAP_`.
    pub cap_add: Vec<String>,
    pub pids_limit: u32,
    /// Open-files limit, soft and hard.
    pub nofile: u32,
    /// Hard CPU cap in CPUs, when the route sets one.
    pub cpus: Option<f64>,
    /// CPU weight (Docker's `CpuShares`): [`CPU_SHARES_PER_MIB`] per MiB of
    /// memory, within [`MIN_CPU_SHARES`]..=[`MAX_CPU_SHARES`]. Only matters
    /// when CPUs are contended.
    pub cpu_weight: u64,
    /// Size of the `/tmp` tmpfs of a read-only container: the route's memory,
    /// since tmpfs pages count against the container's memory anyway.
    pub tmp_size_mib: u64,
}

impl Confinement {
    /// `spec` (the defaults when `None`) for a function of `memory_mib`.
    pub fn resolve(spec: Option<&ConfinementSpec>, memory_mib: u64) -> Confinement {
        let default = ConfinementSpec::default();
        let spec = spec.unwrap_or(&default);
        Confinement {
            read_only: spec.read_only,
            network_none: spec.network == Network::None,
            cap_add: spec.cap_add.clone(),
            pids_limit: spec.pids_limit,
            nofile: spec.nofile,
            cpus: spec.cpus.map(Cpus::as_f64),
            cpu_weight: memory_mib
                .saturating_mul(CPU_SHARES_PER_MIB)
                .clamp(MIN_CPU_SHARES, MAX_CPU_SHARES),
            tmp_size_mib: memory_mib,
        }
    }

    /// The hard cap in Docker's unit (billionths of a CPU).
    pub fn nano_cpus(&self) -> Option<i64> {
        self.cpus.map(|c| (c * 1e9).round() as i64)
    }

    /// The `/tmp` tmpfs size in bytes.
    pub fn tmp_size_bytes(&self) -> u64 {
        self.tmp_size_mib.saturating_mul(1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::assert_refused;

    fn input(json: &str) -> ConfinementInput {
        serde_json::from_str(json).unwrap()
    }

    fn create(json: &str) -> Result<ConfinementSpec, ApiError> {
        ConfinementSpec::create(input(json))
    }

    #[track_caller]
    pub(super) fn refused(json: &str, needle: &str) {
        assert_refused(create(json), needle);
    }

    #[test]
    fn empty_section_gives_defaults() {
        let spec = create("{}").unwrap();
        assert_eq!(spec, ConfinementSpec::default());
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"read_only":false,"network":"default","cap_add":[],
                "pids_limit":256,"nofile":1024,"cpus":null})
        );
        assert_eq!(
            create(
                r#"{"read_only":null,"network":null,"cap_add":null,"pids_limit":null,
                "nofile":null}"#
            )
            .unwrap(),
            ConfinementSpec::default(),
            "null is not given"
        );
    }

    #[test]
    fn every_field_is_taken_and_reads_back() {
        let spec = create(
            r#"{"read_only":true,"network":"none","cap_add":["net_bind_service","CAP_CHOWN","CHOWN"],
                "pids_limit":512,"nofile":4096,"cpus":0.5}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            ConfinementSpec {
                read_only: true,
                network: Network::None,
                cap_add: vec!["CHOWN".into(), "NET_BIND_SERVICE".into()],
                pids_limit: 512,
                nofile: 4096,
                cpus: Some(Cpus(500)),
            }
        );
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["cpus"], 0.5);
        assert_eq!(json["network"], "none");
        let back: ConfinementSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn bounds_are_inclusive() {
        for ok in [
            r#"{"pids_limit":16}"#,
            r#"{"pids_limit":32768}"#,
            r#"{"nofile":64}"#,
            r#"{"nofile":1048576}"#,
            r#"{"cpus":0.01}"#,
            r#"{"cpus":256}"#,
            r#"{"cpus":1}"#,
        ] {
            assert!(create(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn out_of_range_names_the_field_and_rule() {
        for (json, needle) in [
            (
                r#"{"pids_limit":15}"#,
                "route confinement.pids_limit must be between 16 and 32768 processes, got 15",
            ),
            (r#"{"pids_limit":-1}"#, "confinement.pids_limit"),
            (r#"{"pids_limit":99999999999}"#, "confinement.pids_limit"),
            (
                r#"{"nofile":0}"#,
                "route confinement.nofile must be between 64 and 1048576 files, got 0",
            ),
            (
                r#"{"cpus":0}"#,
                "route confinement.cpus must be between 0.01 and 256 CPUs, got 0",
            ),
            (r#"{"cpus":-1}"#, "confinement.cpus"),
            (r#"{"cpus":257}"#, "confinement.cpus"),
            (r#"{"cpus":1e300}"#, "confinement.cpus"),
            (
                r#"{"network":"host"}"#,
                "route confinement.network must be \"default\" or \"none\", got \"host\"",
            ),
        ] {
            refused(json, needle);
        }
    }

    #[test]
    fn unknown_and_mistyped_fields_are_refused() {
        let err = serde_json::from_str::<ConfinementInput>(r#"{"read_onyl":true}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `read_onyl`"),
            "{err}"
        );
        assert!(serde_json::from_str::<ConfinementInput>(r#"{"read_only":"yes"}"#).is_err());
        assert!(serde_json::from_str::<ConfinementInput>(r#"{"cap_add":"CHOWN"}"#).is_err());
        assert!(serde_json::from_str::<ConfinementInput>(r#"{"pids_limit":1.5}"#).is_err());
    }

    #[test]
    fn patch_merges_field_by_field() {
        let mut spec =
            create(r#"{"read_only":true,"cap_add":["KILL"],"pids_limit":100,"cpus":2}"#).unwrap();
        spec.apply(input(r#"{"nofile":2048}"#)).unwrap();
        assert_eq!(
            (
                spec.read_only,
                spec.pids_limit,
                spec.nofile,
                spec.cpus.map(Cpus::milli)
            ),
            (true, 100, 2048, Some(2000))
        );
        assert_eq!(spec.cap_add, ["KILL"]);
        spec.apply(input(r#"{"cpus":null,"cap_add":[]}"#)).unwrap();
        assert_eq!(spec.cpus, None, "null removes the cap");
        assert!(spec.cap_add.is_empty(), "[] clears");
        spec.apply(input(r#"{"read_only":false,"network":"none"}"#))
            .unwrap();
        assert_eq!((spec.read_only, spec.network), (false, Network::None));
        spec.apply(input("{}")).unwrap();
        assert_eq!(spec.network, Network::None, "absent keeps");
    }

    #[test]
    fn patch_is_all_or_nothing() {
        let mut spec = create(r#"{"nofile":100}"#).unwrap();
        let before = spec.clone();
        for bad in [
            r#"{"read_only":true,"pids_limit":1}"#,
            r#"{"cap_add":["KILL","SYS_ADMIN"]}"#,
            r#"{"network":"none","cpus":0}"#,
        ] {
            assert!(spec.apply(input(bad)).is_err(), "{bad}");
            assert_eq!(spec, before, "{bad}");
        }
    }

    #[test]
    fn stored_sections_missing_fields_get_defaults() {
        let spec: ConfinementSpec = serde_json::from_str(r#"{"read_only":true}"#).unwrap();
        assert_eq!(
            spec,
            ConfinementSpec {
                read_only: true,
                ..ConfinementSpec::default()
            }
        );
    }

    #[test]
    fn resolve_applies_defaults_and_ties_cpu_to_memory() {
        let default = Confinement::resolve(None, 128);
        assert_eq!(
            default,
            Confinement {
                read_only: false,
                network_none: false,
                cap_add: vec![],
                pids_limit: DEFAULT_PIDS_LIMIT,
                nofile: DEFAULT_NOFILE,
                cpus: None,
                cpu_weight: 1024,
                tmp_size_mib: 128,
            }
        );
        assert_eq!(default.nano_cpus(), None);
        assert_eq!(Confinement::resolve(None, 256).cpu_weight, 2048);
        assert_eq!(Confinement::resolve(None, 6).cpu_weight, 48);
        assert_eq!(
            Confinement::resolve(None, 1024 * 1024).cpu_weight,
            MAX_CPU_SHARES
        );
        let spec = create(r#"{"read_only":true,"network":"none","cpus":0.25}"#).unwrap();
        let resolved = Confinement::resolve(Some(&spec), 64);
        assert!(resolved.read_only && resolved.network_none);
        assert_eq!(resolved.cpus, Some(0.25));
        assert_eq!(resolved.nano_cpus(), Some(250_000_000));
        assert_eq!(resolved.tmp_size_bytes(), 64 * 1024 * 1024);
    }
}
