//! The build context of a function: its folder as a tar, without what its
//! `.dockerignore` leaves out (the engine's rules: patterns from the
//! folder's root, `**`, and `!` exceptions, the last match deciding), and
//! bounded so that a folder holding a data set is refused, not uploaded.

use std::path::Path;

use anyhow::{bail, Context};
use globset::{Glob, GlobMatcher};

/// Largest context sent to the engine.
pub const MAX_CONTEXT_BYTES: u64 = 500 * 1024 * 1024;
/// Most files in a context.
const MAX_FILES: usize = 100_000;
/// Largest `.dockerignore` read.
const MAX_IGNORE_BYTES: u64 = 1024 * 1024;

/// One `.dockerignore` line.
struct Rule {
    matcher: GlobMatcher,
    /// `!pattern`: put back what an earlier rule left out.
    keep: bool,
}

/// The rules of a folder's `.dockerignore` (none without one).
struct Ignore(Vec<Rule>);

impl Ignore {
    fn read(dir: &Path) -> anyhow::Result<Ignore> {
        let path = dir.join(".dockerignore");
        let text = match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_IGNORE_BYTES => {
                bail!("{} is larger than 1 MiB", path.display())
            }
            Ok(_) => std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
            Err(_) => return Ok(Ignore(Vec::new())),
        };
        Ignore::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Ignore> {
        let mut rules = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keep, pattern) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            // The engine cleans patterns as paths: `./a/`, `/a` and `a` alike.
            let pattern = pattern
                .trim_start_matches("./")
                .trim_start_matches('/')
                .trim_end_matches('/');
            if pattern.is_empty() {
                continue;
            }
            let matcher = globset::GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map(|g: Glob| g.compile_matcher())
                .with_context(|| format!("bad pattern {pattern:?}"))?;
            rules.push(Rule { matcher, keep });
        }
        Ok(Ignore(rules))
    }

    /// Whether `relative` (a `/`-separated path) is left out: a pattern
    /// matches a path or any folder above it.
    fn excludes(&self, relative: &str) -> bool {
        let mut excluded = false;
        for rule in &self.0 {
            let matches = std::iter::once(relative)
                .chain(relative.match_indices('/').map(|(at, _)| &relative[..at]))
                .any(|path| rule.matcher.is_match(path));
            if matches {
                excluded = !rule.keep;
            }
        }
        excluded
    }
}

/// The tar of `dir` for the engine; `dockerfile`, when given, is added as
/// `Dockerfile` (a folder without its own). The Dockerfile and
/// `.dockerignore` are always sent: the engine reads them.
pub fn tar(dir: &Path, dockerfile: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
    let ignore = Ignore::read(dir)?;
    let mut files = Vec::new();
    walk(dir, dir, &ignore, &mut files)?;
    let total: u64 = files.iter().map(|(_, _, len)| len).sum();
    if total > MAX_CONTEXT_BYTES {
        bail!(
            "the folder {} holds {} MiB to build from, more than {} MiB: leave what the image does not need out with a .dockerignore",
            dir.display(),
            total / (1024 * 1024),
            MAX_CONTEXT_BYTES / (1024 * 1024)
        );
    }
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    for (relative, path, _) in &files {
        builder
            .append_path_with_name(path, relative)
            .with_context(|| format!("cannot add {} to the build context", path.display()))?;
    }
    if let Some(dockerfile) = dockerfile {
        let mut header = tar::Header::new_gnu();
        header.set_size(dockerfile.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "Dockerfile", dockerfile)?;
    }
    builder
        .into_inner()
        .context("cannot write the build context")
}

/// Files of `dir` under `root` that are sent: (relative path, path, size).
fn walk(
    root: &Path,
    dir: &Path,
    ignore: &Ignore,
    files: &mut Vec<(String, std::path::PathBuf, u64)>,
) -> anyhow::Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let always = relative == "Dockerfile" || relative == ".dockerignore";
        if !always && ignore.excludes(&relative) {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(root, &path, ignore, files)?;
        } else {
            let len = if kind.is_file() {
                entry.metadata()?.len()
            } else {
                0
            };
            files.push((relative, path, len));
        }
        if files.len() > MAX_FILES {
            bail!(
                "the folder {} holds more than {MAX_FILES} files to build from: leave what the image does not need out with a .dockerignore",
                root.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules() {
        let ignore = Ignore::parse("# c\ntarget\n*.log\n!keep.log\n./docs/**/*.md\n").unwrap();
        assert!(ignore.excludes("target"));
        assert!(ignore.excludes("target/debug/x"));
        assert!(ignore.excludes("a.log"));
        assert!(!ignore.excludes("keep.log"));
        assert!(!ignore.excludes("sub/a.log"));
        assert!(ignore.excludes("docs/x/y.md"));
        assert!(!ignore.excludes("src/main.rs"));
    }

    #[test]
    fn context_leaves_ignored_files_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "secret\n").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "fn main() {}").unwrap();
        let bytes = tar(dir.path(), Some(b"FROM scratch\n")).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "src/main.rs"]);
    }
}
