//! Fixtures for tests, used only as a dev-dependency: real servers started
//! from Debian's packages, one way each, for every crate whose tests need
//! them (the store's, the queue's and the binary's).
//!
//! - [`postgres`]: one shared throwaway cluster per test process, one fresh
//!   database per test;
//! - [`PrivatePostgres`]: a cluster of one test's own, to stop and start;
//! - [`redis`]: a `redis-server` per test, restartable, and able to hang.
//!
//! It must not know Ferrite: nothing here depends on Ferrite's crates, so
//! that any of them can use it. A missing server binary fails the test with
//! the package to install; nothing is skipped.
#![forbid(unsafe_code)]

pub mod postgres;
mod postgres_private;
pub mod redis;

use std::net::TcpListener;

pub use postgres_private::PrivatePostgres;

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
