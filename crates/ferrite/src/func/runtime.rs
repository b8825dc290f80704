//! The runtimes `ferrite init` writes functions in, their templates (the
//! folder `templates/<runtime>/<format>/`, built into the binary), and
//! telling a folder's runtime from the files in it.

use std::path::Path;

use include_dir::{include_dir, Dir};

/// Every template, as `<runtime>/<format>/<files>`.
static TEMPLATES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/templates");

/// What a template writes in place of the function's name.
const NAME_MARK: &str = "{{name}}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Rust,
    Go,
    Python,
    Node,
}

/// The runtimes in the order `--runtime` lists them.
pub const ALL: [Runtime; 4] = [Runtime::Rust, Runtime::Go, Runtime::Python, Runtime::Node];

/// The choices as a user types them, for messages.
pub const CHOICES: &str = "rust, go, python or node";

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Rust => "rust",
            Runtime::Go => "go",
            Runtime::Python => "python",
            Runtime::Node => "node",
        }
    }

    /// A runtime as func.yaml or `--runtime` names it; IronFunctions'
    /// spellings of the same languages are taken too.
    pub fn parse(text: &str) -> Result<Runtime, String> {
        match text {
            "rust" => Ok(Runtime::Rust),
            "go" | "golang" => Ok(Runtime::Go),
            "python" | "python3" | "python3.11" => Ok(Runtime::Python),
            "node" | "nodejs" => Ok(Runtime::Node),
            other => Err(format!("{other:?} is not a runtime: use {CHOICES}")),
        }
    }

    /// The runtime of the code in `dir`, by its files: a project file
    /// first (Cargo.toml, go.mod, requirements.txt, package.json), then
    /// source files by their extension.
    pub fn detect(dir: &Path) -> std::io::Result<Option<Runtime>> {
        let markers = [
            ("Cargo.toml", Runtime::Rust),
            ("go.mod", Runtime::Go),
            ("requirements.txt", Runtime::Python),
            ("package.json", Runtime::Node),
        ];
        if let Some((_, runtime)) = markers.iter().find(|(file, _)| dir.join(file).is_file()) {
            return Ok(Some(*runtime));
        }
        let mut found = None;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let by_extension = match path.extension().and_then(|e| e.to_str()) {
                Some("rs") => Some(Runtime::Rust),
                Some("go") => Some(Runtime::Go),
                Some("py") => Some(Runtime::Python),
                Some("js") => Some(Runtime::Node),
                _ => None,
            };
            // The earliest in ALL wins, whatever order the folder lists in.
            if let Some(runtime) = by_extension {
                found = Some(found.map_or(runtime, |f: Runtime| {
                    let rank = |r: Runtime| ALL.iter().position(|a| *a == r);
                    if rank(runtime) < rank(f) {
                        runtime
                    } else {
                        f
                    }
                }));
            }
        }
        Ok(found)
    }

    /// The template's files for `format`, with `name` in place of
    /// `{{name}}`: (path inside the function's folder, content).
    pub fn template(self, format: &str, name: &str) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let dir = TEMPLATES
            .get_dir(format!("{}/{format}", self.as_str()))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "this ferrite has no {} template in the {format} format",
                    self.as_str()
                )
            })?;
        let mut files = Vec::new();
        collect(dir, dir.path(), name, &mut files);
        files.sort();
        Ok(files)
    }

    /// The template's Dockerfile for `format`, for a folder that has none.
    pub fn dockerfile(self, format: &str, name: &str) -> anyhow::Result<Vec<u8>> {
        self.template(format, name)?
            .into_iter()
            .find(|(path, _)| path == "Dockerfile")
            .map(|(_, content)| content)
            .ok_or_else(|| anyhow::anyhow!("the {} template has no Dockerfile", self.as_str()))
    }
}

fn collect(dir: &Dir<'_>, root: &Path, name: &str, files: &mut Vec<(String, Vec<u8>)>) {
    for file in dir.files() {
        let relative = file.path().strip_prefix(root).unwrap_or(file.path());
        let content = match std::str::from_utf8(file.contents()) {
            Ok(text) => text.replace(NAME_MARK, name).into_bytes(),
            Err(_) => file.contents().to_vec(),
        };
        files.push((relative.to_string_lossy().into_owned(), content));
    }
    for sub in dir.dirs() {
        collect(sub, root, name, files);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_by_project_file_then_extension() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Runtime::detect(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("func.py"), "").unwrap();
        std::fs::write(dir.path().join("func.js"), "").unwrap();
        assert_eq!(Runtime::detect(dir.path()).unwrap(), Some(Runtime::Python));
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(Runtime::detect(dir.path()).unwrap(), Some(Runtime::Node));
        std::fs::write(dir.path().join("go.mod"), "").unwrap();
        assert_eq!(Runtime::detect(dir.path()).unwrap(), Some(Runtime::Go));
    }

    #[test]
    fn runtime_names() {
        assert_eq!(Runtime::parse("python3"), Ok(Runtime::Python));
        assert!(Runtime::parse("cobol").unwrap_err().contains(CHOICES));
    }
}
