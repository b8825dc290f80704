//! The function's processes: started, waited for and killed in one place.
//!
//! The watchdog is usually PID 1 of its container, so every orphan in the
//! container becomes its child and must be reaped, or zombies pile up. One
//! reaper therefore waits for *every* child (`waitpid(-1)`) and hands the
//! exit of each function process to whoever started it. Nothing else in
//! the process may wait for children (no `tokio::process`): it would race
//! the reaper for exit statuses.
//!
//! Each function process leads a process group of its own, so that a
//! timeout or the end of a call kills it with everything it started, as
//! removing a container would.

use std::collections::HashMap;
use std::io;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ferrite_wire::headers::WATCHDOG_KEY_ENV;
use rustix::io::Errno;
use rustix::process::{kill_process_group, wait, Pid, Signal, WaitOptions};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// How a function process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// Every function process of this watchdog; cheap to clone.
#[derive(Clone, Default)]
pub struct Children {
    /// Function processes not reaped yet, with where their exit goes. The
    /// lock is held while a process is spawned and while children are
    /// reaped, so a child's exit can never be reaped before it is known
    /// (std waits for a child whose exec failed; that also happens under
    /// the lock, so the reaper cannot steal that status either).
    running: Arc<Mutex<HashMap<i32, oneshot::Sender<Exit>>>>,
}

/// A started function process. Dropping it while the process still runs
/// kills its process group: a call that is abandoned (timeout, client gone)
/// leaves nothing behind.
pub struct Child {
    pub pid: i32,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
    /// Resolves when the reaper has collected the process.
    pub exit: oneshot::Receiver<Exit>,
    children: Children,
}

impl Drop for Child {
    fn drop(&mut self) {
        self.children.kill(self.pid);
    }
}

impl Child {
    /// Kill the process group and wait (up to `within`) for the reaper to
    /// collect the leader, so that the caller answers with nothing left.
    pub async fn kill_and_wait(&mut self, within: Duration) -> Option<Exit> {
        self.children.kill(self.pid);
        tokio::time::timeout(within, &mut self.exit)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

impl Children {
    pub fn new() -> Children {
        Children::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<i32, oneshot::Sender<Exit>>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start `command` (program then arguments) with the watchdog's own
    /// environment less its key, plus `env`; stdin and stdout are pipes,
    /// stderr is the watchdog's (so the container's log shows it).
    pub fn spawn(&self, command: &[String], env: &[(String, String)]) -> io::Result<Child> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command to run"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_remove(WATCHDOG_KEY_ENV)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let (sender, exit) = oneshot::channel();
        let mut running = self.lock();
        let mut child = cmd.spawn()?;
        let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
        running.insert(pid, sender);
        drop(running);
        // The std handle is only dropped, never waited for: the reaper owns
        // the exit status.
        let stdin = child.stdin.take().map(ChildStdin::from_std).transpose();
        let stdout = child.stdout.take().map(ChildStdout::from_std).transpose();
        let mut child = Child {
            pid,
            stdin: None,
            stdout: None,
            exit,
            children: self.clone(),
        };
        // On an error here the Child is dropped, which kills the process.
        child.stdin = stdin?;
        child.stdout = stdout?;
        Ok(child)
    }

    /// SIGKILL the process group of `pid`, if its leader has not been
    /// reaped yet. Only then is the group id certain to still be ours: a
    /// reaped leader's id may be reused.
    pub fn kill(&self, pid: i32) {
        let running = self.lock();
        if running.contains_key(&pid) {
            kill_group(pid);
        }
    }

    /// SIGKILL every function process group (shutdown).
    pub fn kill_all(&self) {
        let running = self.lock();
        for pid in running.keys() {
            kill_group(*pid);
        }
    }

    /// Function processes not reaped yet.
    pub fn running(&self) -> usize {
        self.lock().len()
    }

    /// Collect every child that has ended; tell the owners of function
    /// processes how theirs ended.
    pub fn reap(&self) {
        let mut running = self.lock();
        loop {
            match wait(WaitOptions::NOHANG) {
                Ok(Some((pid, status))) => {
                    let pid = pid.as_raw_nonzero().get();
                    let exit = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => Exit::Code(code),
                        (None, Some(signal)) => Exit::Signal(signal),
                        // Stopped or continued: waitpid without WUNTRACED
                        // does not report these; nothing ended.
                        (None, None) => continue,
                    };
                    match running.remove(&pid) {
                        Some(owner) => {
                            // Whatever the function left running dies with
                            // it. Its group id is still reserved while any
                            // member lives, and no new group of ours can be
                            // made while the lock is held.
                            kill_group(pid);
                            let _ = owner.send(exit);
                        }
                        None => tracing::debug!(pid, ?exit, "reaped an orphaned process"),
                    }
                }
                Ok(None) => break,
                Err(Errno::INTR) => continue,
                // No children at all.
                Err(Errno::CHILD) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "waitpid failed");
                    break;
                }
            }
        }
    }

    /// Reap on every SIGCHLD until `stop`. SIGCHLDs merge, so each one
    /// reaps everything that ended; a slow tick covers a lost one.
    pub async fn reap_forever(self, stop: CancellationToken) {
        let mut sigchld = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::child())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGCHLD: reaping every 100 ms");
                None
            }
        };
        let tick = if sigchld.is_some() {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        };
        loop {
            self.reap();
            tokio::select! {
                () = stop.cancelled() => break,
                _ = async {
                    match sigchld.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                } => {}
                () = tokio::time::sleep(tick) => {}
            }
        }
        self.reap();
    }
}

fn kill_group(pid: i32) {
    if let Some(pid) = Pid::from_raw(pid) {
        // ESRCH: the group is gone already.
        let _ = kill_process_group(pid, Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    /// The tests of this crate that start processes run one at a time: each
    /// reaper collects every child of the test process.
    pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    /// Children with their own reaper, for a test that runs alone: the turn
    /// it holds, the children, and what stops the reaper.
    async fn reaping() -> (
        tokio::sync::MutexGuard<'static, ()>,
        Children,
        CancellationToken,
    ) {
        let serial = SERIAL.lock().await;
        let children = Children::new();
        let stop = CancellationToken::new();
        tokio::spawn(children.clone().reap_forever(stop.clone()));
        (serial, children, stop)
    }

    /// All that `child` writes to its stdout, until it closes it.
    async fn read_stdout(child: &mut Child) -> String {
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        out
    }

    /// Wait up to 2 s until none of `pids` is alive.
    async fn wait_gone(pids: &[i32]) {
        for _ in 0..100 {
            if !pids.iter().any(|p| alive(*p)) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn alive(pid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }

    #[tokio::test]
    async fn exit_codes_and_io_come_back() {
        let (_serial, children, stop) = reaping().await;
        let mut child = children
            .spawn(
                &sh("read x; echo \"got $x $FOO\"; exit 3"),
                &[("FOO".into(), "bar".into())],
            )
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hi\n").await.unwrap();
        drop(stdin);
        let out = read_stdout(&mut child).await;
        assert_eq!(out, "got hi bar\n");
        assert_eq!((&mut child.exit).await.unwrap(), Exit::Code(3));
        assert_eq!(children.running(), 0);
        stop.cancel();
    }

    #[tokio::test]
    async fn a_dropped_child_takes_its_whole_group_along() {
        let (_serial, children, stop) = reaping().await;
        let mut child = children
            .spawn(&sh("sleep 30 & echo $!; wait"), &[])
            .unwrap();
        let mut line = [0u8; 32];
        let n = child
            .stdout
            .as_mut()
            .unwrap()
            .read(&mut line)
            .await
            .unwrap();
        let grandchild: i32 = std::str::from_utf8(&line[..n])
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let leader = child.pid;
        assert!(alive(grandchild));
        drop(child);
        wait_gone(&[leader, grandchild]).await;
        assert!(!alive(leader), "leader {leader} left");
        assert!(!alive(grandchild), "grandchild {grandchild} left");
        stop.cancel();
    }

    #[tokio::test]
    async fn background_processes_die_with_their_function() {
        let (_serial, children, stop) = reaping().await;
        let mut child = children
            .spawn(&sh("sleep 30 >/dev/null & echo $!"), &[])
            .unwrap();
        let out = read_stdout(&mut child).await;
        assert_eq!((&mut child.exit).await.unwrap(), Exit::Code(0));
        let straggler: i32 = out.trim().parse().unwrap();
        wait_gone(&[straggler]).await;
        assert!(!alive(straggler));
        stop.cancel();
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error() {
        let _serial = SERIAL.lock().await;
        let children = Children::new();
        let err = children
            .spawn(&["/no/such/program".to_string()], &[])
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(children.spawn(&[], &[]).is_err());
        assert_eq!(children.running(), 0);
    }
}
