//! The Debian package end to end: `scripts/package.sh` builds it, its
//! contents are checked (`dpkg-deb -c`/`-I`), it is installed into this
//! system with `dpkg -i`, and what a user would try works: `igmpsnoop
//! --version` from /usr/bin, `man igmpsnoop`, the completions, the unit
//! (`systemd-analyze verify`), the unit's bpffs mount step, and the default
//! config refusing to attach anywhere. Then it is purged, also on failure.
//!
//! systemd is not PID 1 on the machines this runs on (containers), so the
//! unit is verified, never started here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use igmpsnoop_tests::{repo_root, which};

const UNIT: &str = "/usr/lib/systemd/system/igmpsnoop.service";
const CONFIG: &str = "/etc/igmpsnoop/igmpsnoop.toml";

/// Root, and every tool the test uses; fails naming what is missing.
fn require() {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (euid 0: dpkg -i installs into the system)".to_string());
    }
    for (tool, package) in [
        ("dpkg", "dpkg"),
        ("dpkg-deb", "dpkg"),
        ("man", "man-db"),
        ("systemd-analyze", "systemd"),
        ("unshare", "util-linux"),
        ("gzip", "gzip"),
    ] {
        if which(tool).is_none() {
            missing.push(format!("{tool} (apt package {package})"));
        }
    }
    assert!(
        missing.is_empty(),
        "package test cannot run, missing: {} (scripts/setup.sh installs them)",
        missing.join(", ")
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed; returns its stdout.
fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    run(Command::new("dpkg-query").args(["-W", "-f=${Status}", "igmpsnoop"]))
        .stdout
        .starts_with(b"install ok installed")
}

/// Purges the package when dropped: the system is left as it was, also
/// when an assertion fails.
struct Installed;

impl Installed {
    fn install(deb: &Path) -> Installed {
        let guard = Installed;
        ok(Command::new("dpkg").arg("-i").arg(deb));
        guard
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let out = run(Command::new("dpkg").args(["--purge", "igmpsnoop"]));
        if !out.status.success() {
            eprintln!(
                "dpkg --purge igmpsnoop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn build_deb() -> PathBuf {
    let script = repo_root().join("scripts/package.sh");
    let stdout = ok(Command::new(&script).current_dir(repo_root()));
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        deb.is_file() && deb.extension().is_some_and(|e| e == "deb"),
        "scripts/package.sh did not name a .deb on its last line: {stdout:?}"
    );
    deb
}

fn check_contents(deb: &Path) {
    let list = ok(Command::new("dpkg-deb").arg("-c").arg(deb));
    let paths: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .collect();
    for want in [
        "./usr/bin/igmpsnoop",
        &format!(".{UNIT}"),
        &format!(".{CONFIG}"),
        "./usr/share/man/man1/igmpsnoop.1.gz",
        "./usr/share/man/man1/igmpsnoop-run.1.gz",
        "./usr/share/man/man1/igmpsnoop-groups.1.gz",
        "./usr/share/bash-completion/completions/igmpsnoop",
        "./usr/share/zsh/vendor-completions/_igmpsnoop",
        "./usr/share/fish/vendor_completions.d/igmpsnoop.fish",
    ] {
        assert!(paths.contains(&want), "{want} not in the package: {list}");
    }
    assert!(
        !paths.iter().any(|p| p.contains("generate")),
        "the hidden generate command got a man page: {list}"
    );
    let info = ok(Command::new("dpkg-deb").arg("-I").arg(deb));
    assert!(info.contains("Package: igmpsnoop\n"), "{info}");
    assert!(
        info.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{info}"
    );
    let conffiles = ok(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles"));
    assert_eq!(conffiles.trim(), CONFIG, "conffiles");
}

fn check_binary_and_man() {
    let version = ok(Command::new("/usr/bin/igmpsnoop").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("igmpsnoop {}", env!("CARGO_PKG_VERSION"))
    );
    // Rendered by man-db, the way a user reads it (no pager, plain ASCII,
    // wide enough that no line wraps).
    let man = |page: &str| {
        ok(Command::new("man")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "250")
            .env("LC_ALL", "C"))
    };
    let main = man("igmpsnoop");
    for want in ["NAME", "SUBCOMMANDS", "igmpsnoop-run(1)", CONFIG, "SIGHUP"] {
        assert!(main.contains(want), "man igmpsnoop lacks {want:?}: {main}");
    }
    let run_page = man("igmpsnoop-run");
    for want in [
        "--query-interval <DUR>",
        "[default: 125s]",
        "--config <FILE>",
    ] {
        assert!(
            run_page.contains(want),
            "man igmpsnoop-run lacks {want:?}: {run_page}"
        );
    }
}

fn check_completions() {
    let bash = ok(Command::new("bash")
        .arg("-c")
        .arg("source /usr/share/bash-completion/completions/igmpsnoop && complete -p igmpsnoop"));
    assert!(bash.contains("igmpsnoop"), "bash: {bash}");
    let zsh = std::fs::read_to_string("/usr/share/zsh/vendor-completions/_igmpsnoop").unwrap();
    assert!(zsh.starts_with("#compdef igmpsnoop"), "zsh: {zsh:.80}");
    let fish =
        std::fs::read_to_string("/usr/share/fish/vendor_completions.d/igmpsnoop.fish").unwrap();
    assert!(fish.contains("complete -c igmpsnoop"), "fish: {fish:.80}");
    assert!(fish.contains("query-interval"), "fish lacks run's options");
    assert!(
        !fish.contains("generate"),
        "the package-build command is offered for completion"
    );
}

fn check_unit() {
    // Offline: systemd-analyze loads the unit, checks every directive, that
    // the binaries exist and that the man pages in Documentation= open.
    let out = run(Command::new("systemd-analyze").args(["verify", UNIT]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {UNIT} ({}): {stderr}",
        out.status
    );
    if !Path::new("/run/systemd/system").exists() {
        eprintln!("note: systemd is not PID 1 on this machine: the unit is verified, not started");
    }
}

/// The unit's ExecStartPre= mounts the bpffs for the pins; run here in a
/// mount namespace of its own (the host's stays untouched), twice: the
/// second run must not stack a second, empty bpffs over the first.
fn check_bpffs_step() {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let pre = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStartPre=+"))
        .expect("an ExecStartPre=+ line");
    let sh = pre
        .strip_prefix("/bin/sh -c '")
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or_else(|| panic!("ExecStartPre is not /bin/sh -c '...': {pre}"));
    let existed = Path::new("/run/igmpsnoop").exists();
    let script = format!(
        "{sh} && {sh} && stat -f -c %T /run/igmpsnoop/bpf && \
         grep -c ' /run/igmpsnoop/bpf ' /proc/self/mountinfo"
    );
    let out = ok(Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(&script));
    if !existed {
        let _ = std::fs::remove_dir("/run/igmpsnoop/bpf");
        let _ = std::fs::remove_dir("/run/igmpsnoop");
    }
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["bpf_fs", "1"],
        "{out}"
    );
}

/// The shipped config names no ports: the daemon attaches nowhere and exits
/// 78 (EX_CONFIG), which the unit does not restart.
fn check_default_config() {
    let out = run(Command::new("/usr/bin/igmpsnoop").args(["run", "--config", CONFIG]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("no ports"), "{stderr}");
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert!(unit.contains("RestartPreventExitStatus=78"), "{unit}");
    assert!(unit.contains(&format!("--config {CONFIG}")), "{unit}");
}

#[test]
fn debian_package_builds_installs_and_purges() {
    require();
    assert!(
        !installed(),
        "an igmpsnoop package is installed on this machine already; this test installs and \
         purges its own: remove it first (dpkg --purge igmpsnoop)"
    );
    let deb = build_deb();
    check_contents(&deb);
    {
        let _pkg = Installed::install(&deb);
        assert!(installed());
        check_binary_and_man();
        check_completions();
        check_unit();
        check_bpffs_step();
        check_default_config();
    }
    assert!(!installed(), "still installed after dpkg --purge");
    for gone in ["/usr/bin/igmpsnoop", UNIT, CONFIG] {
        assert!(!Path::new(gone).exists(), "{gone} left after dpkg --purge");
    }
}
