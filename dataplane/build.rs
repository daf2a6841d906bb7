//! Builds the XDP program and hands its object file to the crate (include_bytes).
//!
//! The eBPF crate is compiled for the host target with `-C linker-plugin-lto`, so
//! the staticlib holds LLVM bitcode (and the shipped libcore carries embedded
//! bitcode); bpf-linker then links that bitcode for the BPF target with BTF. This
//! needs only the stable toolchain and bpf-linker (scripts/setup.sh installs it):
//! no rust-src, no nightly. The nested cargo tracks source changes itself, and
//! this script reruns whenever an eBPF source changes, so a stale object is never
//! embedded.
use std::{
    env,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

/// Symbols the object must keep besides the maps: the program and the license.
const EXPORTS: &[&str] = &["igmpsnoop", "igmpsnoop_tc", "LICENSE"];

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .parent()
        .context("dataplane has no parent dir")?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let host = env::var("HOST")?;
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());

    for path in [
        "ebpf/xdp/src",
        "ebpf/xdp/Cargo.toml",
        "ebpf/common/src",
        "ebpf/common/Cargo.toml",
        "Cargo.lock",
        "Cargo.toml",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=BPF_LINKER");

    let linker = find_bpf_linker()?;
    let target_dir = out_dir.join("ebpf-target");
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args([
            "rustc",
            "-p",
            "igmpsnoop-ebpf",
            "--profile",
            "bpf",
            "--crate-type",
            "staticlib",
        ])
        .args(["--target", &host])
        .arg("--target-dir")
        .arg(&target_dir)
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            ["-Clinker-plugin-lto", "-Cpanic=abort", "-Cdebuginfo=2"].join("\x1f"),
        );
    // The outer build's wrappers and flags (clippy, coverage, a cross target)
    // must not leak into the eBPF build.
    for var in [
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().context("running cargo for the eBPF crate")?;
    if !status.success() {
        bail!("building the eBPF crate failed ({status})");
    }

    let archive = target_dir
        .join(&host)
        .join("bpf")
        .join("libigmpsnoop_ebpf.a");
    let object = out_dir.join("igmpsnoop.bpf.o");
    let status = Command::new(&linker)
        .args([
            "--target",
            "bpf",
            "--btf",
            "-O3",
            "--export",
            &EXPORTS
                .iter()
                .chain(igmpsnoop_common::MAP_NAMES.iter())
                .copied()
                .collect::<Vec<_>>()
                .join(","),
        ])
        .arg("-o")
        .arg(&object)
        .arg(&archive)
        .status()
        .with_context(|| format!("running {}", linker.display()))?;
    if !status.success() {
        bail!("bpf-linker failed ({status}) on {}", archive.display());
    }
    Ok(())
}

fn find_bpf_linker() -> anyhow::Result<PathBuf> {
    if let Some(path) = env::var_os("BPF_LINKER") {
        return Ok(path.into());
    }
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("bpf-linker"))
        .find(|p| p.is_file())
        .context("bpf-linker not found: run scripts/setup.sh (it builds bpf-linker 0.13 against the toolchain's LLVM 22)")
}
