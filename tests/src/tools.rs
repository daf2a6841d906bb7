//! Locating tools and binaries.

use std::path::{Path, PathBuf};

/// The workspace root (the directory holding `scripts/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests crate lives inside the workspace")
        .to_path_buf()
}

/// `scripts/lab.sh`, the single source of truth for the lab topology.
pub fn lab_script() -> PathBuf {
    repo_root().join("scripts/lab.sh")
}

/// Finds `tool` on PATH plus the sbin directories (`ip`, `ethtool` live there and
/// a test runner's PATH may lack them).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Panics, naming everything missing, unless running as root with every tool in
/// `tools` (plus `ip`, `ethtool` and `nsenter`, which every lab needs) available. A netns
/// test must fail rather than skip when it cannot run.
pub fn require_root_and_tools(tools: &[&str]) {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (euid 0)".to_string());
    }
    for t in ["ip", "ethtool", "nsenter"].iter().chain(tools) {
        if which(t).is_none() && !missing.iter().any(|m| m == t) {
            missing.push((*t).to_string());
        }
    }
    if !missing.is_empty() {
        panic!(
            "netns test cannot run, missing: {} (run scripts/setup.sh as root)",
            missing.join(", ")
        );
    }
}

/// The cargo output directory of the running test executable
/// (`target/<profile>`), where cargo puts the workspace's binaries.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe has a parent").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir
    }
}

fn bin_path(env: &str, name: &str) -> PathBuf {
    match std::env::var_os(env) {
        Some(p) => PathBuf::from(p),
        None => profile_dir().join(name),
    }
}

/// The `igmpsnoop` binary under test: `$IGMPSNOOP_BIN`, else
/// `target/<profile>/igmpsnoop` next to the test executable. It may not exist.
pub fn igmpsnoop_bin() -> PathBuf {
    bin_path("IGMPSNOOP_BIN", "igmpsnoop")
}

/// The `mcast-tool` helper: `$MCAST_TOOL`, else `target/<profile>/mcast-tool`
/// (cargo builds it whenever this crate's tests are built).
pub fn mcast_tool_bin() -> PathBuf {
    bin_path("MCAST_TOOL", "mcast-tool")
}
