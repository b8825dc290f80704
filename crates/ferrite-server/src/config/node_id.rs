//! This node's id when `FERRITE_NODE_ID` is unset: generated once (`n-` and
//! 12 random hex digits) and kept in the data directory, so that it survives
//! restarts (a restarted node removes its own leftovers) and two nodes on
//! one engine never share it (each removes only what it made). The host
//! name, the old default, is shared by every server of a host.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The file in the data directory that holds the generated id.
pub const FILE: &str = "node-id";
/// Longest id read back from the file: far above a generated one, and
/// short enough for container names.
const MAX_ID_BYTES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum NodeIdError {
    #[error(
        "FERRITE_NODE_ID is unset and {} cannot hold this node's generated id: {reason}; \
         make the data directory writable or set FERRITE_NODE_ID",
        path.display()
    )]
    Unwritable {
        path: PathBuf,
        // Not `source`: the message says it already, in one line.
        reason: std::io::Error,
    },
    #[error(
        "{}: not a node id (1 to {MAX_ID_BYTES} of a-z, A-Z, 0-9, '-', '_', '.'); \
         remove the file to have a new one generated, or set FERRITE_NODE_ID",
        path.display()
    )]
    Invalid { path: PathBuf },
}

/// The id kept in `dir`, generated and written there first when missing.
pub fn load_or_create(dir: &Path) -> Result<String, NodeIdError> {
    let path = dir.join(FILE);
    let unwritable = |reason| NodeIdError::Unwritable {
        path: path.clone(),
        reason,
    };
    if !path.exists() {
        std::fs::create_dir_all(dir).map_err(unwritable)?;
        let id = generate().map_err(|e| unwritable(std::io::Error::other(e)))?;
        // `create_new`: of two servers starting at once on one directory,
        // one writes and both read the same id.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(format!("{id}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(unwritable)?;
                tracing::info!(node = %id, file = %path.display(), "generated this node's id");
                return Ok(id);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(unwritable(e)),
        }
    }
    read(&path)
}

fn read(path: &Path) -> Result<String, NodeIdError> {
    let invalid = || NodeIdError::Invalid {
        path: path.to_path_buf(),
    };
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_ID_BYTES as u64 + 2).read_to_string(&mut text))
        .map_err(|_| invalid())?;
    let id = text.trim();
    let valid = !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match valid {
        true => Ok(id.to_string()),
        false => Err(invalid()),
    }
}

/// `n-` and 12 random hex digits: short, readable, and 2^48 apart.
fn generate() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)?;
    Ok(format!(
        "n-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = load_or_create(&data).unwrap();
        assert!(first.starts_with("n-") && first.len() == 14, "{first}");
        assert!(first[2..].chars().all(|c| c.is_ascii_hexdigit()), "{first}");
        assert_eq!(load_or_create(&data).unwrap(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(load_or_create(other.path()).unwrap(), first);
    }

    #[test]
    fn a_bad_file_or_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "no/slashes\n").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a node id"), "{err}");

        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = load_or_create(&file.join("data")).unwrap_err().to_string();
        assert!(
            err.contains("cannot hold this node's generated id"),
            "{err}"
        );
        assert!(err.contains("FERRITE_NODE_ID"), "{err}");
    }
}
