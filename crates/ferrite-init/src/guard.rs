//! What keeps the function from reaching the init itself.
//!
//! The init runs as PID 1 with the same user as the function, and its stdout
//! carries the frames the host trusts (`docs/init-protocol.md`). A process
//! of the same user may normally open another's `/proc/PID/fd/*`, read its
//! `/proc/PID/mem` and `environ`, or trace it; a function could then write a
//! forged `X` frame into the init's stdout and report success for a call
//! that failed. Marking the init non-dumpable makes all of these need
//! `CAP_SYS_PTRACE`, which function containers never have (Ferrite drops
//! every capability and refuses to give this one back).
//!
//! The rest is closed by how the init is made and run, and not repeated here:
//! - Signals: as PID 1 of its PID namespace, the init gets only the signals
//!   it has a handler for from processes inside the namespace, and it has
//!   none (SIGPIPE is ignored, as in every Rust program): the function cannot
//!   stop, kill or interrupt it.
//! - File descriptors: everything the init opens is close-on-exec (std's
//!   default), so the function starts with its own three pipes (cold) or its
//!   connection and the container's stderr (hot) and nothing else.
//! - The binary: it lives on a read-only volume.

use rustix::process::{set_dumpable_behavior, DumpableBehavior};

/// Make this process non-dumpable. Called first thing, before any child
/// exists; the flag survives for the init's whole life (the init never
/// changes its user or executes another program), and is not inherited
/// across the function's `execve`, so the function's own `/proc/self` works
/// as usual.
pub fn seal() -> std::io::Result<()> {
    set_dumpable_behavior(DumpableBehavior::NotDumpable)
        .map_err(|e| std::io::Error::other(format!("cannot make the init non-dumpable: {e}")))
}
