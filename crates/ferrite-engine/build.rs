//! Build ferrite-init as a static binary and embed it.
//!
//! The init is placed in every function container, so it must run in any
//! image (FROM scratch included): linked statically, small, aborting on
//! panic. Cargo cannot build one crate of the workspace with other flags in
//! the same run, so this script runs a second cargo for it, in a target
//! directory of its own under OUT_DIR, offline and locked: every crate it
//! needs was already fetched for this build (its only crates from a
//! registry, rustix and what rustix uses, are this crate's too; its other
//! dependency is ferrite-wire, in the workspace, without its `http` part).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let init = manifest.join("../ferrite-init");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for path in [
        "src",
        "Cargo.toml",
        "../ferrite-wire/src",
        "../ferrite-wire/Cargo.toml",
        "../../Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", init.join(path).display());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = std::env::var("TARGET").expect("TARGET");
    let target_dir = out_dir.join("init-target");
    // Naming the target makes RUSTFLAGS apply to the init only, not to the
    // build scripts of its dependencies (a static build script would fail).
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--offline",
            "--locked",
            "--bin",
            "ferrite-init",
        ])
        .arg("--manifest-path")
        .arg(init.join("Cargo.toml"))
        .args(["--target", &target])
        .arg("--target-dir")
        .arg(&target_dir)
        .args([
            "--config",
            "profile.release.opt-level=\"s\"",
            "--config",
            "profile.release.panic=\"abort\"",
            "--config",
            "profile.release.strip=\"symbols\"",
            "--config",
            "profile.release.debug=false",
            "--config",
            "profile.release.codegen-units=1",
            "--config",
            "profile.release.lto=true",
        ])
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .status()
        .expect("run cargo for ferrite-init");
    assert!(status.success(), "building the static ferrite-init failed");
    let built = target_dir
        .join(&target)
        .join("release")
        .join("ferrite-init");
    std::fs::copy(&built, out_dir.join("ferrite-init")).expect("copy the static ferrite-init");
}
