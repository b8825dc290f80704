//! A route's versions: the numbered, immutable definitions its changes
//! make, how two of them differ, and how a route's `traffic` shares its
//! calls between them.
//!
//! A version is everything that decides how a call runs ([`Definition`]):
//! the image and every setting a PATCH can change, except `jwt_key`, which
//! decides who may call the route at all and so stays the route's. A route
//! with no `traffic` sends every call to its newest version; with one, the
//! versions it names share the calls: a header rule first (a request with
//! that header value goes to its version), then by weight. The weighted
//! choice is a hash of the call's id, not a random draw, so every node of a
//! cluster makes the same choice for the same call.

use serde::{Deserialize, Serialize};

use super::*;
use crate::Millis;

/// Most entries of a route's `traffic` (weights and header rules together).
pub const MAX_TRAFFIC_ENTRIES: usize = 4;
/// Longest header name or value a header rule may match.
pub const MAX_RULE_HEADER_LEN: usize = 256;

/// What one version of a route runs: every field of the route that a
/// change may alter and that decides how a call runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Definition {
    pub image: String,
    pub memory: u64,
    #[serde(rename = "type")]
    pub kind: RouteType,
    pub format: Format,
    pub max_concurrency: u64,
    pub timeout: u64,
    pub idle_timeout: u64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, Vec<String>>>))]
    pub headers: Option<Headers>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<BTreeMap<String, String>>))]
    pub config: Option<Config>,
    #[serde(default)]
    pub max_retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<ConfinementSpec>,
}

/// One version of a route, as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RouteVersion {
    pub app_name: String,
    pub path: String,
    /// From 1, one more for each change that made a version.
    pub version: u32,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Millis,
    #[serde(flatten)]
    pub definition: Definition,
}

/// A field that differs between two versions, with its value in each
/// (`null` where a version does not have it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldDiff {
    pub field: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub from: serde_json::Value,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub to: serde_json::Value,
}

/// The fields that differ from `from` to `to`, by name.
pub fn diff(from: &Definition, to: &Definition) -> Vec<FieldDiff> {
    let fields = |d: &Definition| match serde_json::to_value(d) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (a, b) = (fields(from), fields(to));
    let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (x, y) = (
                a.get(name).cloned().unwrap_or_default(),
                b.get(name).cloned().unwrap_or_default(),
            );
            (x != y).then(|| FieldDiff {
                field: name.clone(),
                from: x,
                to: y,
            })
        })
        .collect()
}

/// A request header and the value that sends a call to a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeaderRule {
    #[cfg_attr(feature = "openapi", schema(example = "X-Canary"))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(example = "1"))]
    pub value: String,
}

/// One entry of a route's `traffic`: a version with its share of the calls
/// (`weight`, percent) or with a header rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrafficEntry {
    pub version: u32,
    /// Percent of the calls no header rule took (the weights add up to 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Calls with this header value go to `version`, whatever the weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<HeaderRule>,
}

/// An entry of `traffic` as a request gives it; numbers are signed so that
/// a negative one gets a message about the rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrafficInput {
    pub version: Option<i64>,
    pub weight: Option<i64>,
    pub header: Option<HeaderRule>,
}

/// Check a `traffic` list's own rules (whether its versions exist is the
/// store's to check) and return it as stored.
pub fn traffic(input: Vec<TrafficInput>) -> Result<Vec<TrafficEntry>, ApiError> {
    let bad = |why: String| Err(ApiError::bad_request(format!("route traffic {why}")));
    if input.len() > MAX_TRAFFIC_ENTRIES {
        return bad(format!(
            "has {} entries; at most {MAX_TRAFFIC_ENTRIES} are allowed",
            input.len()
        ));
    }
    let mut entries = Vec::with_capacity(input.len());
    for entry in input {
        let Some(version) = entry.version else {
            return bad("entry is missing its version".to_string());
        };
        let Some(version) = u32::try_from(version).ok().filter(|v| *v >= 1) else {
            return bad(format!(
                "version must be a version number from 1, got {version}"
            ));
        };
        match (entry.weight, entry.header) {
            (Some(weight), None) => {
                let Some(weight) = u32::try_from(weight).ok().filter(|w| *w <= 100) else {
                    return bad(format!(
                        "weight of version {version} must be between 0 and 100 (percent), got {weight}"
                    ));
                };
                if entries
                    .iter()
                    .any(|e: &TrafficEntry| e.weight.is_some() && e.version == version)
                {
                    return bad(format!("gives version {version} a weight twice"));
                }
                entries.push(TrafficEntry {
                    version,
                    weight: Some(weight),
                    header: None,
                });
            }
            (None, Some(rule)) => {
                header_rule(version, &rule)?;
                entries.push(TrafficEntry {
                    version,
                    weight: None,
                    header: Some(rule),
                });
            }
            _ => {
                return bad(format!(
                    "entry of version {version} must have either a weight or a header, not both or neither"
                ))
            }
        }
    }
    let weighted: Vec<u32> = entries.iter().filter_map(|e| e.weight).collect();
    if weighted.is_empty() {
        return bad(
            "must give at least one version a weight (use null to send every call to the newest version)"
                .to_string(),
        );
    }
    let sum: u32 = weighted.iter().sum();
    if sum != 100 {
        return bad(format!("weights must add up to 100, not {sum}"));
    }
    Ok(entries)
}

fn header_rule(version: u32, rule: &HeaderRule) -> Result<(), ApiError> {
    let valid_name = !rule.name.is_empty()
        && rule.name.len() <= MAX_RULE_HEADER_LEN
        && http::HeaderName::from_bytes(rule.name.as_bytes()).is_ok();
    if !valid_name {
        return Err(ApiError::bad_request(format!(
            "route traffic header rule of version {version}: {:?} is not a header name",
            rule.name
        )));
    }
    if rule.value.len() > MAX_RULE_HEADER_LEN || http::HeaderValue::from_str(&rule.value).is_err() {
        return Err(ApiError::bad_request(format!(
            "route traffic header rule of version {version}: the value must be visible ASCII of at most {MAX_RULE_HEADER_LEN} bytes"
        )));
    }
    Ok(())
}

/// The version that serves a call with id `call_id` whose request headers
/// are `headers`, among `traffic` (a checked, non-empty list): the first
/// header rule that matches, else the weighted choice by the call id's
/// hash, the same on every node.
pub fn pick(traffic: &[TrafficEntry], call_id: &str, headers: &http::HeaderMap) -> Option<u32> {
    let by_header = traffic.iter().find(|e| {
        e.header.as_ref().is_some_and(|rule| {
            headers
                .get_all(rule.name.as_str())
                .iter()
                .any(|v| v.as_bytes() == rule.value.as_bytes())
        })
    });
    if let Some(entry) = by_header {
        return Some(entry.version);
    }
    let bucket = u32::try_from(stable_hash(call_id.as_bytes()) % 100).unwrap_or(0);
    let mut below = 0;
    let mut weighted = traffic.iter().filter_map(|e| Some((e.version, e.weight?)));
    for (version, weight) in weighted.clone() {
        below += weight;
        if bucket < below {
            return Some(version);
        }
    }
    weighted.next_back().map(|(version, _)| version)
}

/// FNV-1a with a 64-bit finalizer: fixed by this code rather than by the
/// standard library (whose hasher may change between Rust releases), so
/// nodes built apart still agree, and mixed so that ids alike in their
/// first bytes (UUIDv7s of one millisecond) spread over every bucket.
fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

impl Route {
    /// What this route runs now (its newest version's definition).
    pub fn definition(&self) -> Definition {
        Definition {
            image: self.image.clone(),
            memory: self.memory,
            kind: self.kind,
            format: self.format,
            max_concurrency: self.max_concurrency,
            timeout: self.timeout,
            idle_timeout: self.idle_timeout,
            headers: self.headers.clone(),
            config: self.config.clone(),
            max_retries: self.max_retries,
            service: self.service.clone(),
            confinement: self.confinement.clone(),
        }
    }

    /// This route as version `version` of it defines it: what a call that
    /// version serves runs. The route's `jwt_key` stays (it was checked
    /// before the version was picked); the result has no traffic.
    pub fn at(&self, version: &RouteVersion) -> Route {
        let d = version.definition.clone();
        Route {
            app_name: self.app_name.clone(),
            path: self.path.clone(),
            image: d.image,
            memory: d.memory,
            kind: d.kind,
            format: d.format,
            max_concurrency: d.max_concurrency,
            timeout: d.timeout,
            idle_timeout: d.idle_timeout,
            headers: d.headers,
            config: d.config,
            jwt_key: self.jwt_key.clone(),
            max_retries: d.max_retries,
            service: d.service,
            confinement: d.confinement,
            version: version.version,
            traffic: None,
        }
    }

    /// Which versions serve, with their share: the `traffic` when set, else
    /// the newest version with all of it.
    pub fn serving(&self) -> Vec<TrafficEntry> {
        self.traffic.clone().unwrap_or_else(|| {
            vec![TrafficEntry {
                version: self.version,
                weight: Some(100),
                header: None,
            }]
        })
    }

    /// The versions that `traffic` names, each once, ascending.
    pub fn traffic_versions(&self) -> Vec<u32> {
        let mut versions: Vec<u32> = self.traffic.iter().flatten().map(|e| e.version).collect();
        versions.sort_unstable();
        versions.dedup();
        versions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(json: &str) -> Result<Vec<TrafficEntry>, ApiError> {
        traffic(serde_json::from_str(json).unwrap())
    }

    #[test]
    fn traffic_rules() {
        assert!(entries(r#"[{"version":3,"weight":90},{"version":4,"weight":10}]"#).is_ok());
        assert!(entries(
            r#"[{"version":4,"header":{"name":"X-Canary","value":"1"}},{"version":3,"weight":100}]"#
        )
        .is_ok());
        for (json, needle) in [
            ("[]", "at least one version a weight"),
            (r#"[{"version":3,"weight":90}]"#, "add up to 100, not 90"),
            (r#"[{"version":0,"weight":100}]"#, "from 1, got 0"),
            (r#"[{"weight":100}]"#, "missing its version"),
            (r#"[{"version":1,"weight":-1}]"#, "between 0 and 100"),
            (r#"[{"version":1,"weight":101}]"#, "between 0 and 100"),
            (
                r#"[{"version":1,"weight":50},{"version":1,"weight":50}]"#,
                "a weight twice",
            ),
            (r#"[{"version":1}]"#, "either a weight or a header"),
            (
                r#"[{"version":1,"weight":100,"header":{"name":"X","value":"1"}}]"#,
                "either a weight or a header",
            ),
            (
                r#"[{"version":2,"header":{"name":"bad name","value":"1"}},{"version":1,"weight":100}]"#,
                "not a header name",
            ),
            (
                r#"[{"version":1,"weight":20},{"version":2,"weight":20},{"version":3,"weight":20},{"version":4,"weight":20},{"version":5,"weight":20}]"#,
                "at most 4",
            ),
        ] {
            let err = entries(json).unwrap_err();
            assert!(err.message.contains(needle), "{json}: {}", err.message);
            assert!(err.message.starts_with("route traffic"), "{}", err.message);
        }
    }

    #[test]
    fn picks_by_header_then_by_weight_the_same_way_each_time() {
        let split =
            entries(r#"[{"version":9,"header":{"name":"X-Canary","value":"1"}},{"version":3,"weight":90},{"version":4,"weight":10}]"#)
                .unwrap();
        let mut canary = http::HeaderMap::new();
        canary.insert("x-canary", http::HeaderValue::from_static("1"));
        assert_eq!(pick(&split, "any", &canary), Some(9));
        let none = http::HeaderMap::new();
        let mut fours = 0;
        for i in 0..10_000 {
            let id = format!("0193a5b2-7c1e-7{i:03x}-8000-00000000{i:04x}");
            let v = pick(&split, &id, &none).unwrap();
            assert_eq!(
                pick(&split, &id, &none),
                Some(v),
                "the same call, the same version"
            );
            assert!(v == 3 || v == 4);
            fours += usize::from(v == 4);
        }
        // 10% of 10,000 ids, give or take what a fair hash spreads.
        assert!((800..1200).contains(&fours), "{fours}");
    }

    #[test]
    fn diff_names_the_fields_that_differ() {
        let route = Route::create(
            "a",
            serde_json::from_str(r#"{"path":"/x","image":"i"}"#).unwrap(),
        )
        .unwrap();
        let mut other = route.clone();
        other.image = "j".into();
        other.memory = 256;
        let changes = diff(&route.definition(), &other.definition());
        let fields: Vec<&str> = changes.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["image", "memory"]);
        assert_eq!(changes[0].from, "i");
        assert_eq!(changes[0].to, "j");
        assert!(diff(&route.definition(), &route.definition()).is_empty());
    }
}
