//! Build ferrite-init as a static binary with a bare `rustc` and embed it.
//!
//! The init is copied into every function container through the Engine API,
//! so it must run in any image (FROM scratch included): static, std only.
//! Cargo cannot build one crate of the workspace with other flags, hence rustc.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let source = manifest.join("../ferrite-init/src/main.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("ferrite-init");
    println!(
        "cargo:rerun-if-changed={}",
        manifest.join("../ferrite-init/src").display()
    );
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "ferrite_init",
            "--crate-type",
            "bin",
        ])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "strip=symbols", "-C", "codegen-units=1"])
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .env_remove("RUSTFLAGS")
        .status()
        .expect("run rustc for ferrite-init");
    assert!(status.success(), "building the static ferrite-init failed");
}
