//! `func.yaml`: a function's settings, read and written with the fields
//! IronFunctions' func.yaml has, so that its functions deploy unchanged.
//!
//! A field that is not one of these is refused with its line: a misspelt
//! `memroy:` must not deploy silently with the default. Values are checked
//! with the API's own rules (ferrite-model), one field at a time, so that
//! the message names the field and its line.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ferrite_model::{Config, Headers, Route, RouteInput};
use serde::{Deserialize, Serialize};

/// The file's name in a function's folder.
pub const FILE_NAME: &str = "func.yaml";
/// The version a new function starts at, and that a file without one has.
pub const FIRST_VERSION: &str = "0.0.1";
/// Largest func.yaml read: settings, not data.
const MAX_BYTES: u64 = 256 * 1024;
/// Validation needs an app; any valid name will do, none is shown.
const SOME_APP: &str = "app";

/// The fields of func.yaml. `Option`s are left out when not set, so a file
/// written back holds what it held.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuncFile {
    /// The image's name without its tag (`hello`, `localhost:5000/team/hello`).
    pub name: String,
    /// Semantic version; the image's tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `rust`, `go`, `python` or `node`: which template's Dockerfile builds
    /// a folder without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// IronFunctions' fn wrote its runtime Dockerfiles' command from these;
    /// kept so those files load, unused by Ferrite's Dockerfiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// The route's path; by default `/` and the last part of `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `sync` or `async`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// `default` (one container per call) or `http` (hot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Seconds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i64>,
    /// Response headers the route adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Headers>,
    /// The route's config: environment variables of the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Config>,
    /// Shell commands run in the folder before the image is built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Vec<String>>,
    /// The route's `jwt_key` (IronFunctions' fn wrote it too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_key: Option<String>,
    /// IronFunctions' `fn test` cases: accepted so those files load; Ferrite
    /// does not run them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<serde_yaml_ng::Value>,
}

/// A duration in whole seconds: a number (`30`) or, as IronFunctions' Go
/// durations were written, text (`30s`, `1m`). Read as either and checked
/// by [`parse`], which knows the field to name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    Number(i64),
    Text(String),
}

impl Seconds {
    pub fn get(&self) -> Result<i64, String> {
        match self {
            Seconds::Number(n) => Ok(*n),
            Seconds::Text(text) => crate::commands::args::parse_seconds(text)
                .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
                .map_err(|e| format!("{text:?}: {e}")),
        }
    }
}

/// A func.yaml as read: its fields and the text they came from.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub func: FuncFile,
    pub path: PathBuf,
    pub text: String,
}

impl FuncFile {
    /// A new function's file.
    pub fn new(name: &str, runtime: &str, format: &str) -> FuncFile {
        FuncFile {
            name: name.to_string(),
            version: Some(FIRST_VERSION.to_string()),
            runtime: Some(runtime.to_string()),
            format: Some(format.to_string()),
            ..FuncFile::default()
        }
    }

    /// The file's text, with a first line saying where its fields are told.
    pub fn to_text(&self) -> anyhow::Result<String> {
        let body = serde_yaml_ng::to_string(self).context("cannot write func.yaml")?;
        Ok(format!(
            "# Ferrite function settings; every field: docs/func-yaml.md\n{body}"
        ))
    }

    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or(FIRST_VERSION)
    }

    /// `name:version`, the image built and deployed.
    pub fn image(&self) -> String {
        format!("{}:{}", self.name, self.version())
    }

    /// The route's path: `path`, else `/` and the last part of the name.
    pub fn route_path(&self) -> String {
        match &self.path {
            Some(path) => crate::commands::args::absolute(path),
            None => format!("/{}", short_name(&self.name)),
        }
    }

    /// The route's fields as the API takes them.
    pub fn route_input(&self) -> RouteInput {
        RouteInput {
            path: Some(self.route_path()),
            image: Some(self.image()),
            memory: self.memory,
            kind: self.kind.clone(),
            format: self.format.clone(),
            max_concurrency: self.max_concurrency,
            timeout: self.timeout.as_ref().and_then(|s| s.get().ok()),
            idle_timeout: self.idle_timeout.as_ref().and_then(|s| s.get().ok()),
            headers: self.headers.clone(),
            config: self.config.clone(),
            jwt_key: self.jwt_key.clone(),
            ..RouteInput::default()
        }
    }
}

/// The last part of an image name: `localhost:5000/team/hello` gives `hello`.
pub fn short_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Whether `name` can be a function's name: an image name without a tag,
/// whose last part is lowercase letters, digits, `-`, `_` and `.`.
fn check_name(name: &str) -> Result<(), String> {
    let last = short_name(name);
    let last_ok = !last.is_empty()
        && last.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && last
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !last_ok {
        return Err(format!(
            "{name:?} must end in lowercase letters, digits, '-', '_' or '.', as in hello or localhost:5000/hello"
        ));
    }
    if last.contains(':') || name.contains('@') {
        return Err(format!(
            "{name:?} must not hold a tag: the tag is `version`"
        ));
    }
    ferrite_model::validate::image(name).map_err(|e| e.message)
}

/// The folder's func.yaml, read and checked.
pub fn load(dir: &Path) -> anyhow::Result<Loaded> {
    let path = dir.join(FILE_NAME);
    let text = match read_bounded(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no {FILE_NAME} in {}: create a function with `ferrite init`",
            dir.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let func = parse(&text).map_err(|e| anyhow::anyhow!("{}:{e}", path.display()))?;
    Ok(Loaded { func, path, text })
}

fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} KiB",
            MAX_BYTES / 1024
        )));
    }
    Ok(text)
}

/// Parse and check a func.yaml's text; an error reads `LINE: field: rule`.
pub fn parse(text: &str) -> Result<FuncFile, String> {
    let func: FuncFile = serde_yaml_ng::from_str(text).map_err(|e| {
        let line = e.location().map_or(1, |l| l.line());
        // serde_yaml_ng ends its message with the place; the line leads ours.
        let message = e.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        format!("{line}: {message}")
    })?;
    check(&func).map_err(|(field, rule)| format!("{}: {field}: {rule}", line_of(text, field)))?;
    Ok(func)
}

/// The first failing field and its rule, with the API's rules: each given
/// field is checked in a route that has only it, so the field is known.
fn check(func: &FuncFile) -> Result<(), (&'static str, String)> {
    check_name(&func.name).map_err(|rule| ("name", rule))?;
    let version = func.version();
    semver::Version::parse(version).map_err(|e| {
        (
            "version",
            format!("{version:?} is not a semantic version such as 0.0.1 ({e})"),
        )
    })?;
    for (field, value) in [
        ("timeout", &func.timeout),
        ("idle_timeout", &func.idle_timeout),
    ] {
        if let Some(value) = value {
            value.get().map_err(|rule| (field, rule))?;
        }
    }
    if let Some(runtime) = &func.runtime {
        super::runtime::Runtime::parse(runtime).map_err(|rule| ("runtime", rule))?;
    }
    let base = RouteInput {
        path: Some("/f".into()),
        image: Some("f".into()),
        ..RouteInput::default()
    };
    let given = func.route_input();
    // Each given field copied alone onto a valid route.
    type Copy = fn(&mut RouteInput, &RouteInput);
    let fields: [(&'static str, bool, Copy); 9] = [
        ("path", func.path.is_some(), |i, g| {
            i.path.clone_from(&g.path)
        }),
        ("type", given.kind.is_some(), |i, g| {
            i.kind.clone_from(&g.kind)
        }),
        ("memory", given.memory.is_some(), |i, g| i.memory = g.memory),
        ("format", given.format.is_some(), |i, g| {
            i.format.clone_from(&g.format)
        }),
        ("timeout", given.timeout.is_some(), |i, g| {
            i.timeout = g.timeout
        }),
        ("idle_timeout", given.idle_timeout.is_some(), |i, g| {
            i.idle_timeout = g.idle_timeout
        }),
        (
            "max_concurrency",
            given.max_concurrency.is_some(),
            |i, g| i.max_concurrency = g.max_concurrency,
        ),
        ("headers", given.headers.is_some(), |i, g| {
            i.headers.clone_from(&g.headers)
        }),
        ("config", given.config.is_some(), |i, g| {
            i.config.clone_from(&g.config)
        }),
    ];
    for (field, is_given, copy) in fields {
        if is_given {
            let mut input = base.clone();
            copy(&mut input, &given);
            Route::create(SOME_APP, input).map_err(|e| (field, e.message))?;
        }
    }
    // The image reference as a whole (name and version together).
    Route::create(SOME_APP, given).map_err(|e| ("name", e.message))?;
    Ok(())
}

/// The line of top-level `field:` in `text`, 1 when it is not there.
fn line_of(text: &str, field: &str) -> usize {
    text.lines()
        .position(|line| {
            line.strip_prefix(field)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map_or(1, |i| i + 1)
}

/// Which part of the version `ferrite bump` raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Major,
    Minor,
    Patch,
}

/// `text` with its version raised by `part`, and the new version. Only the
/// `version:` line changes (a comment after the value stays); a file
/// without one gets it after its `name:` line.
pub fn bump(text: &str, current: &str, part: Part) -> anyhow::Result<(String, String)> {
    let mut version = semver::Version::parse(current)
        .with_context(|| format!("version {current:?} is not a semantic version"))?;
    match part {
        Part::Major => {
            version.major += 1;
            version.minor = 0;
            version.patch = 0;
        }
        Part::Minor => {
            version.minor += 1;
            version.patch = 0;
        }
        Part::Patch => version.patch += 1,
    }
    version.pre = semver::Prerelease::EMPTY;
    version.build = semver::BuildMetadata::EMPTY;
    let next = version.to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match lines.iter().position(|l| is_field_line(l, "version")) {
        Some(i) => {
            let line = &lines[i];
            let comment = line.find(" #").map(|at| &line[at..]).unwrap_or("");
            lines[i] = format!("version: {next}{comment}");
        }
        None => {
            let at = lines
                .iter()
                .position(|l| is_field_line(l, "name"))
                .map_or(lines.len(), |i| i + 1);
            lines.insert(at, format!("version: {next}"));
        }
    }
    let mut bumped = lines.join("\n");
    if text.ends_with('\n') {
        bumped.push('\n');
    }
    Ok((bumped, next))
}

fn is_field_line(line: &str, field: &str) -> bool {
    line.strip_prefix(field)
        .is_some_and(|rest| rest.trim_start().starts_with(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ironfunctions_files_load() {
        let text = "name: iron/hello\nversion: 0.0.3\nruntime: go\nentrypoint: ./func\n\
                    type: sync\nmemory: 256\nformat: http\ntimeout: 1m\nidle_timeout: 45\n\
                    max_concurrency: 2\npath: /hi\nheaders:\n  content-type:\n  - text/plain\n\
                    config:\n  GREETING: Hi\nbuild:\n- make\n\
                    tests:\n- input:\n    body: '{}'\n  output:\n    body: Hi\n";
        let func = parse(text).unwrap();
        assert_eq!(func.image(), "iron/hello:0.0.3");
        assert_eq!(func.route_input().timeout, Some(60));
        let route = Route::create("myapp", func.route_input()).unwrap();
        assert_eq!(route.path, "/hi");
        assert_eq!(route.memory, 256);
        assert_eq!(route.idle_timeout, 45);
        assert_eq!(route.headers.unwrap()["content-type"], ["text/plain"]);
    }

    #[test]
    fn bad_fields_name_their_line() {
        let err = parse("name: hello\nversion: 0.0.1\nmemroy: 64\n").unwrap_err();
        assert!(err.starts_with("3: unknown field `memroy`"), "{err}");
        let err = parse("name: hello\n# a comment\nmemory: 1\n").unwrap_err();
        assert!(
            err.starts_with("3: memory: route memory must be at least"),
            "{err}"
        );
        let err = parse("name: hello\nversion: one\n").unwrap_err();
        assert!(err.starts_with("2: version: \"one\" is not"), "{err}");
        let err = parse("name: Hello\n").unwrap_err();
        assert!(err.starts_with("1: name: "), "{err}");
        let err = parse("name: h\nformat: hot\n").unwrap_err();
        assert!(err.starts_with("2: format: "), "{err}");
        let err = parse("name: h\ntimeout: soon\n").unwrap_err();
        assert!(err.starts_with("2: timeout: \"soon\": "), "{err}");
        let err = parse("name: h\nmemory: lots\n").unwrap_err();
        assert!(err.starts_with("2: memory: invalid type"), "{err}");
    }

    #[test]
    fn default_route_path_is_the_last_name_part() {
        let func = parse("name: localhost:5000/team/hello\n").unwrap();
        assert_eq!(func.route_path(), "/hello");
        assert_eq!(func.image(), "localhost:5000/team/hello:0.0.1");
    }

    #[test]
    fn bump_changes_only_the_version_line() {
        let text = "# mine\nname: hello\nversion: 1.2.3 # the tag\nmemory: 64 # MiB\n";
        let (bumped, next) = bump(text, "1.2.3", Part::Patch).unwrap();
        assert_eq!(next, "1.2.4");
        assert_eq!(
            bumped,
            "# mine\nname: hello\nversion: 1.2.4 # the tag\nmemory: 64 # MiB\n"
        );
        assert_eq!(bump(text, "1.2.3", Part::Minor).unwrap().1, "1.3.0");
        assert_eq!(bump(text, "1.2.3", Part::Major).unwrap().1, "2.0.0");
        let (bumped, next) = bump("name: hello\nmemory: 64\n", "0.0.1", Part::Patch).unwrap();
        assert_eq!(next, "0.0.2");
        assert_eq!(bumped, "name: hello\nversion: 0.0.2\nmemory: 64\n");
    }

    #[test]
    fn written_files_read_back() {
        let func = FuncFile::new("hello", "go", "http");
        let text = func.to_text().unwrap();
        assert_eq!(parse(&text).unwrap(), func);
        assert!(text.contains("version: 0.0.1"), "{text}");
    }
}
