//! Long work told as it goes, on stderr (stdout is the function's answer in
//! `ferrite run`): on a terminal one line rewritten in place, elsewhere one
//! line per step, so that logs of scripts and CI stay readable.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};

/// Lines of the engine's output kept to show when a build fails.
pub const KEPT_LINES: usize = 40;
/// Longest status line on a terminal: one that wraps cannot be rewritten.
const MAX_WIDTH: usize = 100;

pub struct Progress {
    terminal: bool,
    /// Whether the terminal's line holds a status to clear.
    shown: bool,
    /// The last steps of output, for a failure.
    tail: VecDeque<String>,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            shown: false,
            tail: VecDeque::with_capacity(KEPT_LINES),
        }
    }

    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// A line of output to keep for [`Progress::fail`], not shown now.
    pub fn output(&mut self, line: &str) {
        if self.tail.len() == KEPT_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());
    }

    /// Show a step (`Step 3/7 : RUN ...`, `Pushing ...`), after passing it
    /// to [`Progress::output`].
    pub fn step(&mut self, line: &str) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let cut = crate::output::one_line(line, MAX_WIDTH);
            let _ = write!(err, "\r\x1b[K{cut}");
            self.shown = true;
        } else {
            let _ = writeln!(err, "{line}");
            // What came before is in the log already: a failure adds only
            // what followed.
            self.tail.clear();
        }
        let _ = err.flush();
    }

    /// The work is over: clear the status line.
    pub fn done(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
            self.shown = false;
        }
    }

    /// The work failed: the last lines of its output, before the error line
    /// the caller returns.
    pub fn fail(&mut self) {
        self.done();
        let mut err = std::io::stderr().lock();
        for line in self.tail.drain(..) {
            let _ = writeln!(err, "{line}");
        }
    }
}
