//! The init copied into every cold container: the static `ferrite-init`
//! binary built by `build.rs`, packed as the tar archive the Engine API's
//! upload endpoint takes.

use bytes::Bytes;

/// Where the init lives inside the container.
pub const INIT_DIR: &str = ".ferrite";
pub const INIT_PATH: &str = "/.ferrite/init";

static BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ferrite-init"));

/// A tar with `/.ferrite/` and `/.ferrite/init` (mode 0755), to upload at `/`.
pub fn archive() -> std::io::Result<Bytes> {
    let mut builder = tar::Builder::new(Vec::with_capacity(BINARY.len() + 4096));
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder.append_data(&mut dir, format!("{INIT_DIR}/"), std::io::empty())?;
    let mut file = tar::Header::new_gnu();
    file.set_entry_type(tar::EntryType::Regular);
    file.set_mode(0o755);
    file.set_size(BINARY.len() as u64);
    builder.append_data(&mut file, format!("{INIT_DIR}/init"), BINARY)?;
    Ok(Bytes::from(builder.into_inner()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn archive_holds_the_executable() {
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
    }
}
