//! The real `igmpsnoop` daemon in a lab: [`Switch`] runs `igmpsnoop run` in the
//! lab's switch namespace with its control socket in the lab's scratch
//! directory, and drives the CLI against it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use igmpsnoop_control::api::listing::GroupRow;
use serde_json::Value;

use crate::cmd::{ChildGuard, nsenter_command};
use crate::lab::Lab;
use crate::tools::igmpsnoop_bin;

/// How long `Switch::start` waits for the control socket to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs the `igmpsnoop` CLI (in the root namespace: the control socket is a
/// path, reachable from anywhere) with `args`, whatever its exit status.
pub fn igmpsnoop_cli(args: &[&str]) -> Output {
    Command::new(igmpsnoop_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", igmpsnoop_bin()))
}

/// Polls `f` every few milliseconds until it returns `Some` or `timeout`
/// passes (then `None`). `f` is always called at least once.
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How the daemon is started in the switch's network namespace: each gives
/// it another mount namespace, which decides whether a bpffs it mounts
/// outlives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// `nsenter --net=/run/netns/NS`: the caller's mount namespace.
    Nsenter,
    /// `ip netns exec NS`: a mount namespace of its own per command.
    IpNetnsExec,
    /// `unshare --mount --propagation private` then nsenter: a private mount
    /// namespace, as systemd's PrivateMounts gives a service.
    UnshareMount,
}

impl Launcher {
    pub const ALL: [Launcher; 3] = [
        Launcher::Nsenter,
        Launcher::IpNetnsExec,
        Launcher::UnshareMount,
    ];

    fn command(self, ns: &str, args: &[&str]) -> Command {
        match self {
            Launcher::Nsenter => nsenter_command(ns, args),
            Launcher::IpNetnsExec => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).args(args);
                c
            }
            Launcher::UnshareMount => {
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "nsenter"])
                    .arg(format!("--net=/run/netns/{ns}"))
                    .arg("--")
                    .args(args);
                c
            }
        }
    }
}

/// A running `igmpsnoop run` in the lab's switch namespace, stopped on drop
/// (SIGTERM, then SIGKILL if it does not exit within 2 s). Its state is pinned
/// next to its socket (`<socket>.bpf`) unless the arguments say otherwise.
pub struct Switch {
    child: ChildGuard,
    socket: PathBuf,
    pin_dir: Option<PathBuf>,
}

impl Switch {
    /// Starts `igmpsnoop run ARGS --socket <scratch>/igmpsnoop-N.sock` in the
    /// switch namespace and returns once the socket answers a `groups` request.
    /// `args` are everything after `run` (ports, timers, ...).
    pub fn start(lab: &Lab, args: &[&str]) -> Result<Switch> {
        let socket = lab.scratch_file("igmpsnoop").with_extension("sock");
        Switch::start_at(lab, &socket, args)
    }

    /// [`Switch::start`] with a given socket path. Started again on the same
    /// socket, a switch adopts what the one before left pinned.
    pub fn start_at(lab: &Lab, socket: &Path, args: &[&str]) -> Result<Switch> {
        Switch::start_with(lab, socket, args, Launcher::Nsenter)
    }

    /// [`Switch::start_at`] through a given launcher.
    pub fn start_with(
        lab: &Lab,
        socket: &Path,
        args: &[&str],
        launcher: Launcher,
    ) -> Result<Switch> {
        let bin = igmpsnoop_bin();
        if !bin.is_file() {
            bail!("igmpsnoop not built at {bin:?} (cargo build -p igmpsnoop-control)");
        }
        let bin_s = bin.to_string_lossy().into_owned();
        let sock_s = socket.to_string_lossy().into_owned();
        let mut full = vec![bin_s.as_str(), "run"];
        full.extend_from_slice(args);
        full.extend(["--socket", sock_s.as_str()]);
        let chosen = args.iter().any(|a| *a == "--pin-dir" || *a == "--no-pin");
        let pin_dir = (!chosen).then(|| socket.with_extension("bpf"));
        let pin_s = pin_dir.as_ref().map(|p| p.to_string_lossy().into_owned());
        if let Some(p) = &pin_s {
            full.extend(["--pin-dir", p.as_str()]);
        }
        let mut cmd = launcher.command(&lab.switch_ns(), &full);
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "info");
        }
        let child = ChildGuard::spawn(cmd, &lab.scratch_file("igmpsnoop-run"))?;
        let mut sw = Switch {
            child,
            socket: socket.to_path_buf(),
            pin_dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !sw.child.is_running() {
                bail!(
                    "igmpsnoop run {args:?} exited during start-up: {}",
                    sw.child.stderr().trim()
                );
            }
            if sw.socket.exists() && sw.cli(&["groups", "--json"]).status.success() {
                return Ok(sw);
            }
            if Instant::now() >= deadline {
                bail!(
                    "igmpsnoop run {args:?}: control socket not answering after {START_TIMEOUT:?}: {}",
                    sw.child.stderr().trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The control socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Where the daemon pins its state (when the test did not choose).
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pin_dir.as_deref()
    }

    /// `kill -9`: the daemon gets no chance to clean up; waits for the exit.
    pub fn kill9(&mut self) -> Result<ExitStatus> {
        self.child.stop(libc::SIGKILL, Duration::from_secs(5))
    }

    /// The daemon's pid.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Whether the daemon is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.child.stderr()
    }

    /// Runs `igmpsnoop ARGS --socket <this daemon's socket>`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let sock = self.socket.to_string_lossy().into_owned();
        let mut full = args.to_vec();
        full.extend(["--socket", sock.as_str()]);
        igmpsnoop_cli(&full)
    }

    /// The engine's counters by name (`igmpsnoop stats`, `engine`; its
    /// numbers only).
    pub fn engine_counters(&self) -> BTreeMap<String, u64> {
        let stats = self.json(&["stats"]).expect("stats --json");
        stats["engine"]
            .as_object()
            .expect("stats.engine")
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
            .collect()
    }

    /// Runs `igmpsnoop ARGS --json` and parses its output; errors on a
    /// non-zero exit.
    pub fn json(&self, args: &[&str]) -> Result<Value> {
        let mut full = args.to_vec();
        full.push("--json");
        let out = self.cli(&full);
        if !out.status.success() {
            bail!(
                "igmpsnoop {full:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("igmpsnoop {full:?}: output is not JSON"))
    }

    /// `igmpsnoop groups --json`: one row per (group, vlan, port).
    pub fn groups_json(&self) -> Result<Vec<Value>> {
        match self.json(&["groups"])? {
            Value::Array(rows) => Ok(rows),
            v => bail!("groups --json is not an array: {v}"),
        }
    }

    /// `igmpsnoop groups --json`, read with the schema the daemon and the
    /// CLI share.
    pub fn groups(&self) -> Result<Vec<GroupRow>> {
        serde_json::from_value(self.json(&["groups"])?).context("groups --json rows")
    }

    /// Ports listed in `groups` for `group` (untagged; IPv4 or IPv6).
    pub fn group_ports(&self, group: impl Into<std::net::IpAddr>) -> Result<BTreeSet<String>> {
        self.vlan_group_ports(group, 0)
    }

    /// Ports listed in `groups` for `group` on `vlan`.
    pub fn vlan_group_ports(
        &self,
        group: impl Into<std::net::IpAddr>,
        vlan: u16,
    ) -> Result<BTreeSet<String>> {
        let group = group.into();
        Ok(self
            .groups()?
            .into_iter()
            .filter(|r| r.group == group && r.vlan == vlan)
            .map(|r| r.port)
            .collect())
    }

    /// Waits until `groups` lists exactly the ports `want` for `group`; panics
    /// with the table after `timeout`. Returns the time it took.
    pub fn wait_ports(
        &self,
        group: impl Into<std::net::IpAddr>,
        want: &[&str],
        timeout: Duration,
    ) -> Duration {
        self.wait_vlan_ports(group, 0, want, timeout)
    }

    /// [`Switch::wait_ports`] on `vlan`.
    pub fn wait_vlan_ports(
        &self,
        group: impl Into<std::net::IpAddr>,
        vlan: u16,
        want: &[&str],
        timeout: Duration,
    ) -> Duration {
        let group: std::net::IpAddr = group.into();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        let t0 = Instant::now();
        poll_until(timeout, || {
            (self.vlan_group_ports(group, vlan).unwrap() == want).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "groups did not list {group} on exactly {want:?} (VLAN {vlan}) within {timeout:?}: {:#?}",
                self.groups_json().unwrap()
            )
        });
        t0.elapsed()
    }

    /// The `groups --json` row of (group, port), if listed.
    pub fn row(&self, group: impl Into<std::net::IpAddr>, port: &str) -> Option<Value> {
        let group: std::net::IpAddr = group.into();
        self.groups_json()
            .unwrap()
            .into_iter()
            .find(|r| r["group"] == group.to_string().as_str() && r["port"] == port)
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: i32) -> Result<()> {
        self.child.signal(sig)
    }

    /// SIGTERM, then waits up to `timeout` for the exit (SIGKILL after that).
    pub fn stop(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.child.stop(libc::SIGTERM, timeout)
    }
}

impl Drop for Switch {
    /// An orderly stop (SIGTERM: detach, remove the socket); the guard
    /// SIGKILLs after 2 s.
    fn drop(&mut self) {
        let _ = self.child.stop(libc::SIGTERM, Duration::from_secs(2));
    }
}

/// The counters that moved from `before` to `after`, by how much.
pub fn counters_moved(
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d != 0).then(|| (k.clone(), d))
        })
        .collect()
}
