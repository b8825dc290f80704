//! A private Docker engine for fault tests: a second `dockerd` of the
//! machine's installation, on its own socket and directories, so that a test
//! can stop and start it while the machine's engine (which everything else
//! shares) is never touched.
//!
//! It runs in a network namespace of its own (`unshare --net`): a `dockerd`
//! started with `--bridge=none` deletes the `docker0` interface it finds,
//! and in the machine's namespace that is the machine engine's bridge. It
//! has no bridge network and touches no iptables rules (`--bridge=none`,
//! `--iptables=false`): containers on it run with `network: none`, which is
//! all a function that only computes needs. Its socket is a file, reached
//! from any namespace. Images come from the machine's engine (`docker save |
//! docker load`), never from a registry. Its storage driver is `vfs` (no
//! overlay on top of the machine engine's overlay).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped) private engine; stopped and its directories
/// removed when dropped.
pub struct Dockerd {
    /// Short on purpose: a unix socket path must fit in 108 bytes.
    dir: PathBuf,
    child: Option<Child>,
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
        std::fs::write(dir.join("daemon.json"), "{}").expect("daemon.json");
        let mut engine = Dockerd { dir, child: None };
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
        assert!(self.child.is_none(), "the private engine is running");
        let began = Instant::now();
        let d = |name: &str| self.dir.join(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d("dockerd.log"))
            .expect("dockerd log");
        let child = Command::new("unshare")
            .args(["--net", "dockerd", "-H"])
            .arg(self.host())
            .arg("--data-root")
            .arg(d("root"))
            .arg("--exec-root")
            .arg(d("exec"))
            .arg("--pidfile")
            .arg(d("pid"))
            .arg("--config-file")
            .arg(d("daemon.json"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--storage-driver=vfs",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dockerd log"))
            .stderr(log)
            .spawn()
            .expect("spawn dockerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.answers() {
                return began.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the private engine did not answer:\n{}", self.log());
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
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
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
    /// images live in its directories).
    fn drop(&mut self) {
        self.stop();
        // A stopped engine may leave its mounts behind under the exec root.
        let _ = Command::new("umount")
            .arg("-R")
            .arg(self.dir.join("exec"))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
