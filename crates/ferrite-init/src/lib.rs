//! ferrite-init: the init Ferrite places in a pre-started function container.
//!
//! The binary (`src/main.rs`) waits on its stdin for a call, runs the image's
//! own entrypoint with the call's environment and payload, and reports the
//! function's output and exit status back in-band. This library exposes only
//! the wire format, so the host side writes and reads exactly the same frames.
//! The protocol is described in `docs/init-protocol.md`.
#![forbid(unsafe_code)]

pub mod frame;
