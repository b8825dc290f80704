//! The host directory of hot containers' sockets, and each container's
//! directory in it.
//!
//! It is mounted read-write into hot containers, and Ferrite connects to
//! the sockets in it, so it must be Ferrite's alone: a directory another
//! user could write (or a path they could create first, as a predictable
//! name under `/tmp` would be) would let them plant a link that a
//! container's mount or Ferrite's connection follows.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::EngineError;

/// Where hot containers' sockets live on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketDir {
    /// No sockets: hot containers are reached through the engine's attach
    /// stream (a remote engine, whose host does not share this filesystem).
    Off,
    /// A fresh directory with an unpredictable name and mode 0700 in the
    /// system's temp directory, removed at shutdown (or, after a crash, at
    /// the node's next start).
    Private,
    /// This directory, which must be owned by Ferrite's user and not
    /// writable by group or others; created (0700) when missing. It is kept
    /// at shutdown.
    At(PathBuf),
}

/// Mode of a container's socket directory (see [`subdir`]).
pub const SUBDIR_MODE: u32 = 0o733;
/// Prefix of private directories' names.
const PREFIX: &str = "ferrite-hot-";
/// File in a private directory naming the node that made it, so that the
/// node's next start can remove it after a crash.
const NODE_FILE: &str = ".node";

/// A socket directory ready for use.
#[derive(Debug)]
pub struct Prepared {
    pub path: PathBuf,
    /// Removes a private directory (and anything left in it) when dropped.
    _private: Option<tempfile::TempDir>,
}

fn refused(path: &Path, reason: impl std::fmt::Display) -> EngineError {
    EngineError::SocketDir(format!(
        "FERRITE_HOT_SOCKET_DIR {}: {reason}",
        path.display()
    ))
}

impl SocketDir {
    /// Create or check the directory of `node`; `None` for [`SocketDir::Off`].
    pub fn prepare(&self, node: &str) -> Result<Option<Prepared>, EngineError> {
        match self {
            SocketDir::Off => Ok(None),
            SocketDir::Private => {
                let temp = std::env::temp_dir();
                remove_stale(&temp, node);
                let cannot = |e: std::io::Error| {
                    refused(
                        &temp,
                        format!("cannot create a private directory here: {e}"),
                    )
                };
                let dir = tempfile::Builder::new()
                    .prefix(PREFIX)
                    .permissions(std::fs::Permissions::from_mode(0o700))
                    .tempdir_in(&temp)
                    .map_err(cannot)?;
                std::fs::write(dir.path().join(NODE_FILE), node).map_err(cannot)?;
                Ok(Some(Prepared {
                    path: dir.path().to_path_buf(),
                    _private: Some(dir),
                }))
            }
            SocketDir::At(path) => {
                check_own(path)?;
                Ok(Some(Prepared {
                    path: path.clone(),
                    _private: None,
                }))
            }
        }
    }
}

/// Remove the private directories an earlier run of `node` left in `temp`
/// (it was killed before it could): only real directories of this user,
/// mode 0700, whose node file (a regular file) names `node`. Nobody else
/// can write in such a directory, and removal does not follow links.
fn remove_stale(temp: &Path, node: &str) {
    let me = rustix::process::geteuid().as_raw();
    let ours = |path: &Path, dir: bool| {
        std::fs::symlink_metadata(path).is_ok_and(|m| {
            m.uid() == me
                && if dir {
                    m.file_type().is_dir() && m.mode() & 0o7777 == 0o700
                } else {
                    m.file_type().is_file()
                }
        })
    };
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with(PREFIX) || !ours(&path, true) {
            continue;
        }
        let node_file = path.join(NODE_FILE);
        if ours(&node_file, false) && std::fs::read_to_string(&node_file).is_ok_and(|n| n == node) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(dir = %path.display(), "removed the hot socket directory of an earlier run")
                }
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "cannot remove the hot socket directory of an earlier run")
                }
            }
        }
    }
}

/// A configured directory: created 0700 when missing; else a directory
/// (not a link) of this user that group and others cannot write.
fn check_own(path: &Path) -> Result<(), EngineError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| refused(path, format!("cannot create it: {e}")))?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| refused(path, format!("cannot set its mode to 0700: {e}")))?;
            std::fs::symlink_metadata(path).map_err(|e| refused(path, e))?
        }
        Err(e) => return Err(refused(path, e)),
    };
    if !meta.file_type().is_dir() {
        return Err(refused(path, "is not a directory (a link is refused too)"));
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refused(
            path,
            format!(
                "is owned by user {}, not by Ferrite's user {me}; use a directory of Ferrite's user",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refused(
            path,
            format!("is writable by group or others (mode {mode:04o}); make it 0700"),
        ));
    }
    Ok(())
}

/// Create one container's socket directory in the node's. The node's
/// directory is Ferrite's alone, so no other user of the host reaches this
/// one; inside, the container's init creates its socket whatever user the
/// image runs as, which takes write access for all ([`SUBDIR_MODE`]: it
/// may not list the directory).
pub fn subdir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    // Set after creation: the mode given at creation passes through the umask.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(SUBDIR_MODE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn private_is_fresh_0700_and_removed() {
        let a = SocketDir::Private.prepare("unit-a").unwrap().unwrap();
        let b = SocketDir::Private.prepare("unit-b").unwrap().unwrap();
        assert_ne!(a.path, b.path, "unpredictable, fresh");
        assert!(a
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ferrite-hot-"));
        assert_eq!(mode(&a.path), 0o700);
        let path = a.path.clone();
        subdir(&path.join("c1")).unwrap();
        assert_eq!(mode(&path.join("c1")), SUBDIR_MODE);
        drop(a);
        assert!(!path.exists(), "removed with what it held");
    }

    #[test]
    fn a_crashed_runs_directories_go_at_the_next_start() {
        let temp = tempfile::tempdir().unwrap();
        let make = |name: &str, node: &str, mode: u32| {
            let dir = temp.path().join(name);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(dir.join(NODE_FILE), node).unwrap();
            std::fs::create_dir(dir.join("c1")).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            dir
        };
        let stale = make("ferrite-hot-aaaaaa", "n1", 0o700);
        let other_node = make("ferrite-hot-bbbbbb", "n2", 0o700);
        let not_private = make("ferrite-hot-cccccc", "n1", 0o755);
        let not_ours = make("something-else", "n1", 0o700);
        remove_stale(temp.path(), "n1");
        assert!(!stale.exists());
        assert!(other_node.exists() && not_private.exists() && not_ours.exists());
    }

    #[test]
    fn configured_is_created_0700_or_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let made = tmp.path().join("a/b");
        SocketDir::At(made.clone()).prepare("n").unwrap();
        assert_eq!(mode(&made), 0o700);
        SocketDir::At(made.clone()).prepare("n").unwrap();

        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = SocketDir::At(open.clone())
            .prepare("n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("writable by group or others (mode 0777)"),
            "{err}"
        );
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1770)).unwrap();
        assert!(
            SocketDir::At(open.clone()).prepare("n").is_err(),
            "group-writable"
        );
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        SocketDir::At(open.clone()).prepare("n").unwrap();

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&made, &link).unwrap();
        let err = SocketDir::At(link).prepare("n").unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");

        if rustix::process::geteuid().is_root() {
            let theirs = tmp.path().join("theirs");
            std::fs::create_dir(&theirs).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            let err = SocketDir::At(theirs).prepare("n").unwrap_err().to_string();
            assert!(err.contains("is owned by user 65534"), "{err}");
        }

        let file = tmp.path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(SocketDir::At(file).prepare("n").is_err());
        assert_eq!(SocketDir::Off.prepare("n").unwrap().map(|p| p.path), None);
    }
}
