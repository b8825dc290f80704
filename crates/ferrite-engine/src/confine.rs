//! The one `HostConfig` of every function container, cold and hot: its
//! memory, and the confinement of the route (`ferrite_model::Confinement`)
//! as the engine applies it.
//!
//! Always: every capability dropped (the route may give some back from the
//! model's allowlist), `no-new-privileges`, a pids limit, an open-files
//! limit, a CPU weight tied to memory (a hard cap when the route sets one),
//! no Docker log (Ferrite reads the output through attach), and no host path
//! but the init's read-only volume and, for a hot container, its own socket
//! directory. On request: a read-only root filesystem with a tmpfs `/tmp`,
//! and no network.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    HostConfig, HostConfigLogConfig, Mount, MountTypeEnum, MountVolumeOptions, ResourcesUlimits,
};
use ferrite_model::Confinement;

use crate::init;

/// What the engine's host adds to a route's confinement.
#[derive(Debug, Clone)]
pub struct Host {
    /// The init's volume on this engine ([`init::ensure_volume`]).
    pub init_volume: String,
    /// The engine host's CPUs, in billionths: the engine refuses a cap above
    /// them, and a cap at or above them would cap nothing.
    pub nano_cpus: i64,
}

/// Options of the `/tmp` tmpfs of a read-only container. Programs may run
/// from it, as from Lambda's `/tmp`; set-user-ID bits and devices may not.
fn tmp_options(bytes: u64) -> String {
    format!("rw,nosuid,nodev,size={bytes},mode=1777")
}

impl Host {
    /// The `HostConfig` of a function container of `memory_mib` confined by
    /// `confinement`; `socket_dir` is a hot container's socket directory on
    /// the host, mounted at [`init::SOCKET_DIR`].
    pub fn config(
        &self,
        memory_mib: u64,
        confinement: &Confinement,
        socket_dir: Option<&Path>,
    ) -> HostConfig {
        let memory = i64::try_from(memory_mib.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
        let mut mounts = vec![Mount {
            target: Some(init::INIT_DIR.to_string()),
            source: Some(self.init_volume.clone()),
            typ: Some(MountTypeEnum::VOLUME),
            read_only: Some(true),
            volume_options: Some(MountVolumeOptions {
                // An empty volume (removed by hand meanwhile) must not be
                // filled from the function's image.
                no_copy: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        }];
        if let Some(dir) = socket_dir {
            mounts.push(Mount {
                target: Some(init::SOCKET_DIR.to_string()),
                source: Some(dir.display().to_string()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(false),
                ..Default::default()
            });
        }
        let nofile = i64::from(confinement.nofile);
        HostConfig {
            memory: Some(memory),
            // No swap on top of the limit.
            memory_swap: Some(memory),
            cap_drop: Some(vec!["ALL".to_string()]),
            cap_add: (!confinement.cap_add.is_empty()).then(|| confinement.cap_add.clone()),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            pids_limit: Some(i64::from(confinement.pids_limit)),
            ulimits: Some(vec![ResourcesUlimits {
                name: Some("nofile".to_string()),
                soft: Some(nofile),
                hard: Some(nofile),
            }]),
            cpu_shares: Some(i64::try_from(confinement.cpu_weight).unwrap_or(i64::MAX)),
            nano_cpus: confinement.nano_cpus().filter(|n| *n < self.nano_cpus),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_string()),
                config: None,
            }),
            readonly_rootfs: Some(confinement.read_only),
            tmpfs: confinement.read_only.then(|| {
                HashMap::from([(
                    "/tmp".to_string(),
                    tmp_options(confinement.tmp_size_bytes()),
                )])
            }),
            network_mode: confinement.network_none.then(|| "none".to_string()),
            mounts: Some(mounts),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrite_model::{ConfinementInput, ConfinementSpec};

    fn host() -> Host {
        Host {
            init_volume: "ferrite-init-x".to_string(),
            nano_cpus: 2_000_000_000,
        }
    }

    fn confinement(json: &str, memory_mib: u64) -> Confinement {
        let input: ConfinementInput = serde_json::from_str(json).unwrap();
        let spec = ConfinementSpec::create(input).unwrap();
        Confinement::resolve(Some(&spec), memory_mib)
    }

    #[test]
    fn default_is_confined() {
        let config = host().config(128, &Confinement::resolve(None, 128), None);
        assert_eq!(config.memory, Some(128 * 1024 * 1024));
        assert_eq!(config.memory_swap, config.memory);
        assert_eq!(config.cap_drop.as_deref(), Some(&["ALL".to_string()][..]));
        assert_eq!(config.cap_add, None);
        assert_eq!(
            config.security_opt.as_deref(),
            Some(&["no-new-privileges".to_string()][..])
        );
        assert_eq!(config.pids_limit, Some(256));
        let nofile = &config.ulimits.as_ref().unwrap()[0];
        assert_eq!(
            (nofile.name.as_deref(), nofile.soft, nofile.hard),
            (Some("nofile"), Some(1024), Some(1024))
        );
        assert_eq!(config.cpu_shares, Some(1024));
        assert_eq!(config.nano_cpus, None);
        assert_eq!(config.log_config.unwrap().typ.as_deref(), Some("none"));
        assert_eq!(config.readonly_rootfs, Some(false));
        assert_eq!(config.tmpfs, None);
        assert_eq!(config.network_mode, None);
        assert_eq!(config.binds, None);
        assert_eq!(config.privileged, None);
        let mounts = config.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].target.as_deref(), Some("/.ferrite"));
        assert_eq!(mounts[0].typ, Some(MountTypeEnum::VOLUME));
        assert_eq!(mounts[0].read_only, Some(true));
    }

    #[test]
    fn opt_ins_are_applied() {
        let c = confinement(
            r#"{"read_only":true,"network":"none","cap_add":["NET_BIND_SERVICE"],
                "pids_limit":512,"nofile":4096,"cpus":0.5}"#,
            64,
        );
        let config = host().config(64, &c, Some(Path::new("/run/f/hot-1")));
        assert_eq!(config.readonly_rootfs, Some(true));
        assert_eq!(
            config.tmpfs.unwrap()["/tmp"],
            format!("rw,nosuid,nodev,size={},mode=1777", 64 * 1024 * 1024)
        );
        assert_eq!(config.network_mode.as_deref(), Some("none"));
        assert_eq!(
            config.cap_add.as_deref(),
            Some(&["NET_BIND_SERVICE".to_string()][..])
        );
        assert_eq!(config.pids_limit, Some(512));
        assert_eq!(config.ulimits.unwrap()[0].soft, Some(4096));
        assert_eq!(config.nano_cpus, Some(500_000_000));
        assert_eq!(config.cpu_shares, Some(512), "the weight stays");
        let mounts = config.mounts.unwrap();
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[1].target.as_deref(), Some("/.ferrite/sock"));
        assert_eq!(mounts[1].source.as_deref(), Some("/run/f/hot-1"));
        assert_eq!(mounts[1].typ, Some(MountTypeEnum::BIND));
    }

    #[test]
    fn a_cap_at_or_above_the_host_caps_nothing() {
        let c = confinement(r#"{"cpus":2}"#, 128);
        assert_eq!(host().config(128, &c, None).nano_cpus, None);
        let c = confinement(r#"{"cpus":1.99}"#, 128);
        assert_eq!(host().config(128, &c, None).nano_cpus, Some(1_990_000_000));
    }
}
