//! A private Docker engine for fault tests: a second `dockerd` of the
//! machine's installation, on its own socket and directories, so that a test
//! can stop and start it while the machine's engine (which everything else
//! shares) is never touched. Started and stopped by scripts/dockerd.sh (the
//! one way, shared with bench/chaos.sh), which says how it is confined: its
//! own network namespace, no bridge and no iptables rules, so containers on
//! it run with `network: none`; its socket is a file, reached from any
//! namespace. Images come from the machine's engine (`docker save | docker
//! load`), never from a registry.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) private engine; stopped and its directories
/// removed when dropped.
pub struct Dockerd {
    /// Short on purpose: a unix socket path must fit in 108 bytes.
    dir: PathBuf,
    running: bool,
}

static ENGINES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Dockerd {
    /// Start a fresh engine and wait until it answers.
    pub fn start() -> Dockerd {
        let dir = PathBuf::from(format!(
            "/tmp/fd-{}-{}",
            std::process::id(),
            ENGINES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("private engine directory");
        let mut engine = Dockerd {
            dir,
            running: false,
        };
        engine.start_again();
        engine
    }

    /// `DOCKER_HOST` for this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// Start the engine on the same directories (its containers, images and
    /// volumes are kept) and wait until it answers; returns how long it took.
    pub fn start_again(&mut self) -> Duration {
        assert!(!self.running, "the private engine is running");
        let began = Instant::now();
        self.script("start");
        self.running = true;
        began.elapsed()
    }

    /// Whether the engine answers a ping (`docker version`).
    pub fn answers(&self) -> bool {
        self.docker()
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Stop the engine (SIGTERM) and wait for it to exit: its containers
    /// stop with it, as on a real engine restart. The engine bounds its own
    /// shutdown (it kills containers that do not stop in time).
    pub fn stop(&mut self) {
        if std::mem::take(&mut self.running) {
            self.script("stop");
        }
    }

    /// scripts/dockerd.sh `verb` on this engine's directory.
    fn script(&self, verb: &str) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/dockerd.sh");
        let output = Command::new(script)
            .arg(verb)
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output()
            .expect("scripts/dockerd.sh");
        assert!(
            output.status.success(),
            "scripts/dockerd.sh {verb}: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }

    /// The docker CLI pointed at this engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        command.arg("-H").arg(self.host());
        command
    }

    /// Copy `image` from the machine's engine into this one.
    pub fn load(&self, image: &str) {
        let mut save = Command::new("docker")
            .args(["save", image])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let stdout = save.stdout.take().expect("docker save output");
        let load = self
            .docker()
            .arg("load")
            .stdin(stdout)
            .stdout(Stdio::null())
            .status()
            .expect("docker load");
        assert!(
            save.wait().is_ok_and(|s| s.success()) && load.success(),
            "cannot load {image}"
        );
    }

    /// The states of Ferrite's containers of `node` on this engine
    /// (`running`, `exited`, ...), one per container.
    pub fn node_container_states(&self, node: &str) -> Vec<String> {
        let output = self
            .docker()
            .args(["ps", "-a", "--format", "{{.State}}", "--filter"])
            .arg(format!("label=org.ferrite.node={node}"))
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// What the engine logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Dockerd {
    /// Stop the engine and remove everything it kept (its containers and
    /// images live in its directories; the script unmounts what it left).
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
