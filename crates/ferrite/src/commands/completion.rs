//! `ferrite completion SHELL`: the shell's completion script for every
//! command and flag, written by `clap_complete` from the same clap model the
//! binary parses with, so it cannot drift from the real commands.

use std::io::{ErrorKind, Write};

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;

/// Arguments of `ferrite completion`.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Write the completion script of `shell` for `command` (the whole CLI) to stdout.
pub fn run(args: CompletionArgs, command: &mut clap::Command) -> anyhow::Result<()> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, command, "ferrite", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        // `ferrite completion bash | head` is not an error.
        Err(e) if e.kind() != ErrorKind::BrokenPipe => {
            Err(e).context("cannot write the completion script")
        }
        _ => Ok(()),
    }
}
