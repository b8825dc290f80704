//! Function containers, cold and hot: the one place they are created (with
//! the route's confinement, `confine.rs`, and the ownership labels),
//! attached (before start, so no output is lost) and started; and removed
//! in every case, even when the call that holds one is dropped half way.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::container::AttachContainerResults;
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use bollard::Docker;
use ferrite_model::Confinement;
use tokio_util::task::TaskTracker;

use crate::image::{Images, Resolved};
use crate::{confine, init, labels, socket_dir, EngineError, MemoryPermit};

/// What a container is made from: everything but the call itself (and, for
/// a hot one, its environment: see [`Launch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    pub app: String,
    pub path: String,
    /// The route's version it runs: two versions serving at once keep a
    /// pool each (see `pool`), rather than one replacing the other's.
    pub version: u32,
    pub image: String,
    pub memory_mib: u64,
    pub confinement: Confinement,
}

/// What runs in a container, and how the node talks to it.
#[derive(Debug, Clone, Copy)]
pub enum Launch<'a> {
    /// `format: default`: the init waits on stdin for one call's frames.
    /// `call_id` is known for a container made for a waiting call, not for
    /// one started ahead.
    Cold { call_id: Option<&'a str> },
    /// `format: http`: the function serves HTTP on its stdio for the
    /// container's life, with `env`. With `socket_parent`, the init bridges
    /// that stdio to a unix socket in a private subdirectory of this host
    /// directory (mounted in, removed with the container); without, the
    /// image's own command is spoken to over the attach stream.
    Hot {
        env: &'a [(String, String)],
        socket_parent: Option<&'a Path>,
    },
}

/// A started container: a cold one's init waits for a call on stdin, a hot
/// one's function for requests.
pub struct Started {
    pub id: String,
    pub io: AttachContainerResults,
    pub removal: Removal,
    /// A hot container's socket on the host, when it is reached through one.
    pub socket: Option<PathBuf>,
    /// The image it was made from (its id): it serves calls only while the
    /// route's image name still names this image.
    pub image_id: String,
    /// The call id in its labels: the call it was started for, if any (a
    /// waiting call may be served by a container started for another).
    pub call_id: Option<String>,
}

/// Removes its container when dropped (force: kills it if still running),
/// in a task the engine tracks, then gives the container's memory back.
pub struct Removal {
    docker: Docker,
    id: String,
    tracker: TaskTracker,
    permit: Option<MemoryPermit>,
    /// A host directory mounted into the container (a hot function's
    /// socket), removed with it.
    host_dir: Option<std::path::PathBuf>,
}

impl Drop for Removal {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let id = std::mem::take(&mut self.id);
        let permit = self.permit.take();
        let host_dir = self.host_dir.take();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(container = %id, "no runtime to remove the container; it is removed at next start");
            return;
        };
        self.tracker.spawn_on(
            async move {
                remove_with_retries(&docker, &id).await;
                drop(permit);
                if let Some(dir) = host_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
            },
            &runtime,
        );
    }
}

/// Waits between attempts at removing a container.
const REMOVAL_RETRIES: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Remove a container, trying again when the engine fails: a busy engine
/// sometimes fails a removal (a mount still busy while the container exits,
/// or a removal already in progress) and would leave the container
/// "Removal In Progress" until someone asks again.
async fn remove_with_retries(docker: &Docker, id: &str) {
    let mut waits = REMOVAL_RETRIES.iter();
    loop {
        match docker.remove_container(id, Some(force())).await {
            Ok(()) => return,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return,
            Err(e) => match waits.next() {
                Some(wait) => {
                    tracing::debug!(container = %id, error = %e, "container removal failed; trying again");
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    tracing::warn!(container = %id, error = %e, "cannot remove container; it is removed at next start");
                    return;
                }
            },
        }
    }
}

impl Removal {
    /// Guard a container that exists on the engine.
    pub fn new(
        docker: Docker,
        id: String,
        tracker: TaskTracker,
        permit: MemoryPermit,
        host_dir: Option<std::path::PathBuf>,
    ) -> Removal {
        Removal {
            docker,
            id,
            tracker,
            permit: Some(permit),
            host_dir,
        }
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Take the container's memory for its replacement, which is started
    /// while this one is being removed (the budget is over by one container
    /// for that moment).
    pub fn take_permit(&mut self) -> Option<MemoryPermit> {
        self.permit.take()
    }
}

fn force() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    }
}

/// Makes and finds Ferrite's function containers on one engine.
pub struct Containers {
    pub docker: Docker,
    pub images: Images,
    /// This node's id, in labels and names.
    pub node: String,
    /// Every background removal, so that shutdown waits for them.
    pub tracker: TaskTracker,
    /// What every container's `HostConfig` is made with.
    pub host: confine::Host,
    counter: AtomicU64,
}

impl Containers {
    pub fn new(
        docker: Docker,
        images: Images,
        node: String,
        tracker: TaskTracker,
        host: confine::Host,
    ) -> Containers {
        Containers {
            docker,
            images,
            node,
            tracker,
            host,
            counter: AtomicU64::new(0),
        }
    }

    /// A container name that says whose and which call (or a sequence
    /// number for one started ahead of its call).
    pub fn name(&self, call_id: Option<&str>) -> String {
        match call_id {
            Some(id) => format!("ferrite-{}-{id}", self.node),
            None => format!(
                "ferrite-{}-ahead-{}-{}",
                self.node,
                std::process::id(),
                self.counter.fetch_add(1, Ordering::Relaxed)
            ),
        }
    }

    /// The ownership labels of a container of this node.
    pub fn labels(
        &self,
        app: &str,
        path: &str,
        call_id: Option<&str>,
        kind: &str,
    ) -> HashMap<String, String> {
        HashMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::NODE.to_string(), self.node.clone()),
            (labels::APP.to_string(), app.to_string()),
            (labels::ROUTE.to_string(), path.to_string()),
            (
                labels::CALL_ID.to_string(),
                call_id.unwrap_or_default().to_string(),
            ),
            (labels::KIND.to_string(), kind.to_string()),
        ])
    }

    /// Create, equip, attach and start a container for `spec`, run as
    /// `launch` says; it holds `permit` until it is removed.
    pub async fn start(
        &self,
        spec: &ContainerSpec,
        launch: Launch<'_>,
        permit: MemoryPermit,
    ) -> Result<Started, EngineError> {
        let resolved = self.images.resolve(&spec.image).await?;
        self.start_resolved(spec, resolved, launch, permit).await
    }

    /// [`Containers::start`] from an image already resolved (and pulled),
    /// so that a slow pull does not hold a start slot.
    pub async fn start_resolved(
        &self,
        spec: &ContainerSpec,
        resolved: Resolved,
        launch: Launch<'_>,
        permit: MemoryPermit,
    ) -> Result<Started, EngineError> {
        let t0 = std::time::Instant::now();
        let argv = resolved.argv;
        let (name, call_id, kind) = match launch {
            Launch::Cold { call_id } => (self.name(call_id), call_id, "cold"),
            Launch::Hot { .. } => (self.name(None).replace("-ahead-", "-hot-"), None, "hot"),
        };
        let socket_dir = match launch {
            Launch::Hot {
                socket_parent: Some(parent),
                ..
            } => Some(parent.join(&name)),
            _ => None,
        };
        if let Some(dir) = &socket_dir {
            socket_dir::subdir(dir).map_err(|e| {
                EngineError::Protocol(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut body = ContainerCreateBody {
            image: Some(resolved.id.clone()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            labels: Some(self.labels(&spec.app, &spec.path, call_id, kind)),
            host_config: Some(self.host.config(
                spec.memory_mib,
                &spec.confinement,
                socket_dir.as_deref(),
            )),
            ..Default::default()
        };
        match launch {
            Launch::Cold { .. } => {
                body.entrypoint = Some(vec![init::INIT_PATH.to_string()]);
                body.cmd = Some(argv);
                body.attach_stdin = Some(true);
                body.open_stdin = Some(true);
                body.stdin_once = Some(true);
            }
            Launch::Hot { env, .. } => {
                body.env = Some(env.iter().map(|(k, v)| format!("{k}={v}")).collect());
                if socket_dir.is_some() {
                    let mut entrypoint = vec![
                        init::INIT_PATH.to_string(),
                        "--ferrite-hot".to_string(),
                        format!("{}/{}", init::SOCKET_DIR, init::SOCKET_NAME),
                    ];
                    entrypoint.extend(argv);
                    body.entrypoint = Some(entrypoint);
                    body.cmd = Some(Vec::new());
                } else {
                    body.attach_stdin = Some(true);
                    body.open_stdin = Some(true);
                    body.stdin_once = Some(false);
                }
            }
        }
        let options = CreateContainerOptions {
            name: Some(name),
            ..Default::default()
        };
        let created = match self.docker.create_container(Some(options), body).await {
            Ok(created) => created,
            Err(e) => {
                if let Some(dir) = &socket_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return Err(e.into());
            }
        };
        let t_create = t0.elapsed();
        // From here on the container exists: the guard removes it on any error.
        let removal = Removal::new(
            self.docker.clone(),
            created.id.clone(),
            self.tracker.clone(),
            permit,
            socket_dir.clone(),
        );
        // Attach before start, or the first output could be lost. A hot
        // function reached through its socket takes no input from here.
        let attach = AttachContainerOptions {
            stream: true,
            stdin: socket_dir.is_none(),
            stdout: true,
            stderr: true,
            logs: false,
            detach_keys: None,
        };
        let io = self
            .docker
            .attach_container(&created.id, Some(attach))
            .await?;
        let t_attach = t0.elapsed();
        self.docker
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await?;
        tracing::debug!(
            container = %created.id, kind, create_ms = t_create.as_millis(),
            attach_ms = t_attach.as_millis(), start_ms = t0.elapsed().as_millis(),
            "container started"
        );
        Ok(Started {
            id: created.id,
            io,
            removal,
            socket: socket_dir.map(|dir| dir.join(init::SOCKET_NAME)),
            image_id: resolved.id,
            call_id: call_id.map(str::to_string),
        })
    }

    /// Ferrite's containers of this node on the engine (running or not).
    pub async fn list_own(&self) -> Result<Vec<String>, EngineError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                format!("{}=true", labels::MANAGED),
                format!("{}={}", labels::NODE, self.node),
            ],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let containers = self.docker.list_containers(Some(options)).await?;
        Ok(containers.into_iter().filter_map(|c| c.id).collect())
    }

    /// Remove what an earlier run of this node left behind (a crash, a kill -9).
    pub async fn remove_leftovers(&self) -> Result<usize, EngineError> {
        let ids = self.list_own().await?;
        for id in &ids {
            if let Err(e) = self.docker.remove_container(id, Some(force())).await {
                tracing::warn!(container = %id, error = %e, "cannot remove leftover container");
            }
        }
        Ok(ids.len())
    }
}
