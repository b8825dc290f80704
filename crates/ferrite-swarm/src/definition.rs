//! What a route's service is made from ([`ServiceDefinition`]), the name
//! Swarm knows it by, and the hash that tells whether a running service
//! still matches its route.

use std::collections::BTreeMap;
use std::fmt::Write;

use ferrite_model::Confinement;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::SwarmError;

/// Labels on Ferrite's services (and on their task containers), so that a
/// restarted server finds and adopts its services instead of duplicating them.
pub mod labels {
    /// The cluster or installation that owns the service; the caller chooses it.
    pub const OWNER: &str = "org.ferrite.owner";
    pub const APP: &str = ferrite_engine::labels::APP;
    /// The route's path (`/a/b`).
    pub const PATH: &str = "org.ferrite.path";
    /// Hash of the definition the service was last made from.
    pub const SPEC: &str = "org.ferrite.spec";
    /// Port the tasks serve HTTP on, so an adopted service can be routed to.
    pub const PORT: &str = "org.ferrite.port";
    /// Hash of a definition whose rolling update failed (Swarm restored the
    /// previous one): it is not tried again until its route changes.
    pub const FAILED_SPEC: &str = "org.ferrite.failed-spec";
    /// Why that update failed, as Swarm and the failed task said.
    pub const FAILED_WHY: &str = "org.ferrite.failed-why";
    /// `service` on task containers (as `cold`/`hot` on the others).
    pub const KIND: &str = ferrite_engine::labels::KIND;
}

/// Bumped whenever the way a definition becomes a Swarm spec changes (a new
/// restart policy, say), so that existing services are updated to it.
/// 2: confined tasks (capabilities, limits, capped log) and the watchdog key.
const SPEC_FORMAT: u32 = 2;
/// Longest Swarm service name (a DNS label).
const MAX_NAME: usize = 63;
/// Longest app part of a name, so that the path keeps some room.
const MAX_APP_SLUG: usize = 20;

/// A route as a Swarm service: everything Ferrite decides about it, in plain
/// terms. The server maps a route (and its `service` section) to this.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDefinition {
    /// Who owns the service: the Ferrite cluster or installation id. Only
    /// services with this owner are ever updated, adopted or removed.
    pub owner: String,
    pub app: String,
    /// The route's path, `/` included (`/hello`, `/a/b`).
    pub path: String,
    pub image: String,
    /// Port the image serves HTTP on inside its tasks.
    pub port: u16,
    /// Memory limit and reservation of each task, in MiB; 0 for none.
    pub memory_mib: u64,
    /// Replicas when the service is created. Ignored when it exists: the
    /// autoscaler owns the count from then on (see [`Swarm::scale`](super::Swarm::scale)).
    pub replicas: u64,
    /// The function's environment (its config and the contract's variables).
    pub env: BTreeMap<String, String>,
    /// Extra labels for the service and its containers; Ferrite's own
    /// (`org.ferrite.*`) win over these.
    pub labels: BTreeMap<String, String>,
    /// Swarm placement constraints (`node.role==worker`, ...).
    pub constraints: Vec<String>,
    /// The overlay network the tasks join, by name; Ferrite reaches them there.
    pub network: String,
    /// What the tasks may do and take: the route's confinement, as for its
    /// containers (see `spec` for how Swarm applies it).
    pub confinement: Confinement,
}

/// The part of a definition that the hash covers: everything but the
/// replica count, which changes with load and must not look like a new
/// definition.
#[derive(Serialize)]
struct Hashed<'a> {
    format: u32,
    owner: &'a str,
    app: &'a str,
    path: &'a str,
    image: &'a str,
    port: u16,
    memory_mib: u64,
    env: &'a BTreeMap<String, String>,
    labels: &'a BTreeMap<String, String>,
    constraints: &'a [String],
    network: &'a str,
    confinement: HashedConfinement<'a>,
}

/// What the hash covers of a confinement: the fields a service applies.
#[derive(Serialize)]
struct HashedConfinement<'a> {
    read_only: bool,
    network_none: bool,
    cap_add: &'a [String],
    pids_limit: u32,
    nofile: u32,
    cpus: Option<f64>,
    tmp_size_mib: u64,
}

impl ServiceDefinition {
    /// The Swarm service name of this route: see [`service_name`].
    pub fn service_name(&self) -> String {
        service_name(&self.owner, &self.app, &self.path)
    }

    /// A hash of everything that shapes the service but the replica count:
    /// equal hashes mean nothing to update. Maps are ordered (BTreeMap), so
    /// the same definition always hashes the same.
    pub fn spec_hash(&self) -> String {
        let hashed = Hashed {
            format: SPEC_FORMAT,
            owner: &self.owner,
            app: &self.app,
            path: &self.path,
            image: &self.image,
            port: self.port,
            memory_mib: self.memory_mib,
            env: &self.env,
            labels: &self.labels,
            constraints: &self.constraints,
            network: &self.network,
            confinement: HashedConfinement {
                read_only: self.confinement.read_only,
                network_none: self.confinement.network_none,
                cap_add: &self.confinement.cap_add,
                pids_limit: self.confinement.pids_limit,
                nofile: self.confinement.nofile,
                cpus: self.confinement.cpus,
                tmp_size_mib: self.confinement.tmp_size_mib,
            },
        };
        // Serializing borrowed strings and ordered maps cannot fail; an
        // empty input would still hash, so no error path is needed.
        let json = serde_json::to_vec(&hashed).unwrap_or_default();
        hex(&Sha256::digest(&json))
    }

    /// Refuse what Swarm would refuse late or what would make a broken
    /// service, with a message that names the field.
    pub fn validate(&self) -> Result<(), SwarmError> {
        let invalid = |m: String| Err(SwarmError::Invalid(m));
        if self.owner.is_empty() {
            return invalid("owner is empty".into());
        }
        if self.image.trim().is_empty() {
            return invalid("image is empty".into());
        }
        if self.port == 0 {
            return invalid("port 0: the tasks must serve HTTP on a port".into());
        }
        if self.network.trim().is_empty() {
            return invalid("network is empty".into());
        }
        if i64::try_from(self.replicas).is_err() {
            return invalid(format!("{} replicas", self.replicas));
        }
        if let Some(key) = self
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return invalid(format!("environment variable name {key:?}"));
        }
        if let Some(c) = self.constraints.iter().find(|c| c.trim().is_empty()) {
            return invalid(format!("placement constraint {c:?}"));
        }
        if self.confinement.network_none {
            return invalid(
                "confinement.network none: a service's tasks are reached over its overlay network"
                    .into(),
            );
        }
        Ok(())
    }
}

/// The Swarm service name of a route: `ferrite-<app>-<path>-<hash>`.
///
/// Swarm names are DNS labels (63 characters of `[a-zA-Z0-9-]`), while app
/// names allow `_` and paths allow anything: the readable part is a
/// lower-cased slug, cut to fit, and the 8-hex-digit hash of the exact
/// owner, app and path keeps names unique where slugs collide (`/a_b` and
/// `/a-b`, two installations sharing a Swarm, long paths cut alike).
pub fn service_name(owner: &str, app: &str, path: &str) -> String {
    let mut digest = Sha256::new();
    for part in [owner, app, path] {
        digest.update(part.as_bytes());
        // A separator, so ("ab", "c") and ("a", "bc") hash differently.
        digest.update([0]);
    }
    let short = hex(&digest.finalize()[..4]);
    let app_slug = cut(&slug(app), MAX_APP_SLUG);
    let fixed = "ferrite-".len() + 1 + short.len();
    let mut name = String::from("ferrite-");
    if !app_slug.is_empty() {
        name.push_str(&app_slug);
        name.push('-');
    }
    let room = MAX_NAME.saturating_sub(fixed + name.len() - "ferrite-".len());
    let path_slug = cut(&slug(path), room);
    if !path_slug.is_empty() {
        name.push_str(&path_slug);
        name.push('-');
    }
    name.push_str(&short);
    name
}

/// Lower-case ASCII letters and digits, runs of anything else as one `-`,
/// no `-` at either end.
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_string()
}

/// At most `max` characters (all ASCII here), no `-` left at the end.
fn cut(slug: &str, max: usize) -> String {
    slug.get(..max.min(slug.len()))
        .unwrap_or_default()
        .trim_end_matches('-')
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_name(name: &str) -> bool {
        name.len() <= MAX_NAME
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-')
    }

    fn definition() -> ServiceDefinition {
        ServiceDefinition {
            owner: "cluster-1".into(),
            app: "myapp".into(),
            path: "/hello".into(),
            image: "ferrite/hello".into(),
            port: 8080,
            memory_mib: 128,
            replicas: 1,
            env: BTreeMap::from([("A".into(), "1".into())]),
            labels: BTreeMap::new(),
            constraints: vec![],
            network: "ferrite".into(),
            confinement: Confinement::resolve(None, 128),
        }
    }

    #[test]
    fn names_are_readable_unique_and_valid() {
        let name = service_name("c", "myapp", "/hello");
        assert!(name.starts_with("ferrite-myapp-hello-"), "{name}");
        assert!(valid_name(&name), "{name}");
        assert_ne!(name, service_name("c", "myapp", "/Hello"));
        assert_ne!(name, service_name("other", "myapp", "/hello"));
        assert_ne!(
            service_name("c", "a_b", "/x"),
            service_name("c", "a-b", "/x")
        );
        assert_eq!(name, service_name("c", "myapp", "/hello"));
    }

    #[test]
    fn odd_and_long_inputs_still_give_valid_names() {
        let long = format!("/{}", "segment/".repeat(40));
        for (app, path) in [
            ("a", "/"),
            ("", ""),
            ("___", "/---/"),
            ("x".repeat(30).as_str(), long.as_str()),
            ("ünï", "/çà/日本"),
            ("a", "/-a-"),
        ] {
            let name = service_name("owner", app, path);
            assert!(valid_name(&name), "{app:?} {path:?} -> {name}");
        }
        assert!(service_name("o", "a", "/").starts_with("ferrite-a-"));
    }

    #[test]
    fn the_hash_ignores_replicas_only() {
        let a = definition();
        let mut b = a.clone();
        b.replicas = 7;
        assert_eq!(a.spec_hash(), b.spec_hash());
        b.env.insert("B".into(), "2".into());
        assert_ne!(a.spec_hash(), b.spec_hash());
        let mut c = a.clone();
        c.memory_mib = 256;
        assert_ne!(a.spec_hash(), c.spec_hash());
        let mut d = a.clone();
        d.confinement.pids_limit += 1;
        assert_ne!(a.spec_hash(), d.spec_hash());
    }

    #[test]
    fn bad_definitions_are_refused() {
        assert!(definition().validate().is_ok());
        for change in [
            (|d: &mut ServiceDefinition| d.port = 0) as fn(&mut ServiceDefinition),
            |d| d.image = " ".into(),
            |d| d.owner.clear(),
            |d| d.network.clear(),
            |d| d.replicas = u64::MAX,
            |d| {
                d.env.insert("A=B".into(), "x".into());
            },
            |d| d.constraints.push(String::new()),
            |d| d.confinement.network_none = true,
        ] {
            let mut d = definition();
            change(&mut d);
            assert!(matches!(d.validate(), Err(SwarmError::Invalid(_))), "{d:?}");
        }
    }
}
