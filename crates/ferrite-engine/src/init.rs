//! The init placed in every function container: the static `ferrite-init`
//! binary built by `build.rs`, delivered on a read-only volume.
//!
//! The volume (`ferrite-init-<digest>`) is made once per engine and binary:
//! the binary is imported as a one-layer image (`ferrite/init:<digest>`), and
//! a container of that image created with the empty volume at `/.ferrite`
//! makes the engine copy the image's `/.ferrite` into it. Function containers
//! then mount it read-only, without copying. Compared with uploading the init
//! into each container (the engine's archive upload), this works for a
//! read-only root filesystem, costs no request per container, and leaves the
//! function no way to change the init; a remote engine keeps the volume on
//! its own host, so it works there too.

use std::collections::HashMap;
use std::io::Read;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountTypeEnum, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions,
    RemoveContainerOptions,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::{labels, EngineError};

/// Where the volume is mounted inside every function container.
pub const INIT_DIR: &str = "/.ferrite";
/// The init inside the container.
pub const INIT_PATH: &str = "/.ferrite/init";
/// Where a hot container's socket directory is mounted. It exists in the
/// volume: the volume is mounted read-only, so the runtime could not create
/// the mount point there.
pub const SOCKET_DIR: &str = "/.ferrite/sock";
/// The hot function's socket in [`SOCKET_DIR`] (and in its host directory).
pub const SOCKET_NAME: &str = "fn.sock";

/// Labels the volume and the image with the digest of what they hold.
pub const LABEL_INIT: &str = "org.ferrite.init";

/// The layout of the volume; part of the digest, so a new layout gets a
/// new volume even with the same binary.
const LAYOUT: &[u8] = b"ferrite-init volume v1: init, sock/\n";

/// How long to wait for another node that is filling the same volume: up
/// to 30 s, for an engine slowed by a loaded host.
const FILL_WAIT: Duration = Duration::from_millis(100);
const FILL_TRIES: usize = 300;

static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ferrite-init"));

/// The first 16 hex digits of the SHA-256 of the layout and the binary.
fn digest() -> String {
    let mut hasher = Sha256::new();
    hasher.update(LAYOUT);
    hasher.update(BINARY);
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The name of the init volume of this build of Ferrite.
pub fn volume_name() -> String {
    format!("ferrite-init-{}", digest())
}

fn image_name() -> (String, String) {
    ("ferrite/init".to_string(), digest())
}

/// A tar of `.ferrite/`, `.ferrite/init` (0755) and `.ferrite/sock/`: the
/// root filesystem of the init image.
pub fn archive() -> std::io::Result<Bytes> {
    let mut builder = tar::Builder::new(Vec::with_capacity(BINARY.len() + 4096));
    let dir = |mode| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(mode);
        header.set_size(0);
        header
    };
    builder.append_data(&mut dir(0o755), ".ferrite/", std::io::empty())?;
    let mut file = tar::Header::new_gnu();
    file.set_entry_type(tar::EntryType::Regular);
    file.set_mode(0o755);
    file.set_size(BINARY.len() as u64);
    builder.append_data(&mut file, ".ferrite/init", BINARY)?;
    builder.append_data(&mut dir(0o755), ".ferrite/sock/", std::io::empty())?;
    Ok(Bytes::from(builder.into_inner()?))
}

fn failed(why: impl std::fmt::Display) -> EngineError {
    EngineError::Init(format!("volume {}: {why}", volume_name()))
}

/// Make sure the engine has the init volume of this build, filled; returns
/// its name. Safe to run from several nodes on one engine at once: every
/// step is idempotent, and each node waits until the volume holds exactly
/// this binary before it uses it.
pub async fn ensure_volume(docker: &Docker, node: &str) -> Result<String, EngineError> {
    ensure_named(docker, node, volume_name()).await
}

/// [`ensure_volume`] with the volume's `name`.
async fn ensure_named(docker: &Docker, node: &str, name: String) -> Result<String, EngineError> {
    let (repo, tag) = image_name();
    let image = format!("{repo}:{tag}");
    match docker.inspect_image(&image).await {
        Ok(_) => {}
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => import(docker, &repo, &tag).await?,
        Err(e) => return Err(e.into()),
    }
    let managed = HashMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (LABEL_INIT.to_string(), digest()),
    ]);
    docker
        .create_volume(VolumeCreateOptions {
            name: Some(name.clone()),
            labels: Some(managed.clone()),
            ..Default::default()
        })
        .await?;
    // Creating a container with the volume empty fills it from the image.
    let helper = format!("ferrite-{node}-init-{}", std::process::id());
    let mut helper_labels = managed;
    helper_labels.insert(labels::NODE.to_string(), node.to_string());
    helper_labels.insert(labels::KIND.to_string(), "init".to_string());
    let body = ContainerCreateBody {
        image: Some(image),
        entrypoint: Some(vec![INIT_PATH.to_string()]),
        labels: Some(helper_labels),
        network_disabled: Some(true),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some(INIT_DIR.to_string()),
                source: Some(name.clone()),
                typ: Some(MountTypeEnum::VOLUME),
                ..Default::default()
            }]),
            log_config: Some(HostConfigLogConfig {
                typ: Some("none".to_string()),
                config: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(helper.clone()),
        ..Default::default()
    };
    let mut tries = 0;
    let created = loop {
        tries += 1;
        match docker
            .create_container(Some(options.clone()), body.clone())
            .await
        {
            Ok(created) => break created,
            // The engine copies the image's files into an empty volume when
            // a first container mounts it; a second node's helper created
            // at that moment fails on a directory the copy just made. Once
            // the copy is done the volume is not empty and nothing is
            // copied again, so the next try finds it filled.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 500,
                message,
            }) if message.contains("file exists") && tries < FILL_TRIES => {
                tracing::debug!(volume = %name, error = %message, "another node is filling the init volume");
                let remove = RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                };
                let _ = docker.remove_container(&helper, Some(remove)).await;
                tokio::time::sleep(FILL_WAIT).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let checked = wait_filled(docker, &created.id).await;
    let remove = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    if let Err(e) = docker.remove_container(&created.id, Some(remove)).await {
        tracing::warn!(container = %helper, error = %e, "cannot remove the init volume's helper container; it is removed at next start");
    }
    checked?;
    tracing::info!(volume = %name, "init volume ready");
    Ok(name)
}

/// Import the archive as the image `repo:tag`.
async fn import(docker: &Docker, repo: &str, tag: &str) -> Result<(), EngineError> {
    let options = CreateImageOptions {
        from_src: Some("-".to_string()),
        repo: Some(repo.to_string()),
        tag: Some(tag.to_string()),
        changes: vec![format!("LABEL {}=true {LABEL_INIT}={tag}", labels::MANAGED)],
        ..Default::default()
    };
    let archive = archive().map_err(|e| failed(format!("cannot pack the init: {e}")))?;
    let mut progress = docker.create_image(Some(options), Some(bollard::body_full(archive)), None);
    while let Some(item) = progress.next().await {
        let info = item?;
        if let Some(error) = info.error_detail.and_then(|d| d.message) {
            return Err(failed(format!("cannot import the init image: {error}")));
        }
    }
    Ok(())
}

/// Wait until the volume, seen through the helper `container`, holds this
/// binary: another node may be filling it at this moment.
async fn wait_filled(docker: &Docker, container: &str) -> Result<(), EngineError> {
    for _ in 0..FILL_TRIES {
        if read_init(docker, container).await?.as_deref() == Some(BINARY) {
            return Ok(());
        }
        tokio::time::sleep(FILL_WAIT).await;
    }
    Err(failed(format!(
        "it does not hold this version's init; remove it (docker volume rm {}) and start again",
        volume_name()
    )))
}

/// The init file in the helper container, if it is there.
async fn read_init(docker: &Docker, container: &str) -> Result<Option<Vec<u8>>, EngineError> {
    let options = DownloadFromContainerOptions {
        path: INIT_PATH.to_string(),
    };
    let mut stream = docker.download_from_container(container, Some(options));
    let mut tar = Vec::with_capacity(BINARY.len() + 4096);
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => tar.extend_from_slice(&bytes),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    let mut archive = tar::Archive::new(&tar[..]);
    let entries = archive
        .entries()
        .map_err(|e| failed(format!("unreadable archive from the engine: {e}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| failed(format!("unreadable archive from the engine: {e}")))?;
        if entry.header().entry_type().is_file() {
            let mut bytes = Vec::with_capacity(BINARY.len());
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| failed(format!("unreadable archive from the engine: {e}")))?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real engine: nodes starting at once on an engine that has no init
    /// volume yet all get it filled (the engine's copy into a new volume
    /// races with a second container mounting it).
    #[tokio::test]
    async fn nodes_filling_a_new_volume_at_once_all_get_it() {
        let docker = Docker::connect_with_local_defaults().expect("the engine");
        let name = format!(
            "ferrite-init-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let nodes: Vec<String> = (0..6).map(|i| format!("init-test-{i}")).collect();
        let fills = nodes
            .iter()
            .map(|node| ensure_named(&docker, node, name.clone()));
        let results = futures_util::future::join_all(fills).await;
        let _ = docker
            .remove_volume(
                &name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await;
        for result in results {
            assert_eq!(result.expect("filled"), name);
        }
    }

    #[test]
    fn archive_holds_the_executable_and_the_socket_mount_point() {
        let bytes = super::archive().unwrap();
        let mut archive = tar::Archive::new(&bytes[..]);
        let entries: Vec<_> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().mode().unwrap(),
                    e.size(),
                )
            })
            .collect();
        assert_eq!(entries[0].0, ".ferrite/");
        assert_eq!(entries[1].0, ".ferrite/init");
        assert_eq!(entries[1].1, 0o755);
        assert!(entries[1].2 > 10_000, "the init binary is embedded");
        assert_eq!(entries[2].0, ".ferrite/sock/");
    }

    #[test]
    fn names_follow_the_binary() {
        let name = super::volume_name();
        assert!(name.starts_with("ferrite-init-"), "{name}");
        assert_eq!(name.len(), "ferrite-init-".len() + 16);
        assert_eq!(name, super::volume_name());
    }
}
