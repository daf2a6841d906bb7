//! The `Lab` guard: a switch namespace and N host namespaces built by
//! `scripts/lab.sh` (the one place the topology is defined; the accessors here
//! only mirror its naming scheme).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cmd::{ChildGuard, netns_command, output_ok};
use crate::tools::{lab_script, repo_root, which};

/// Names of labs created by tests start with this; `cleanup_stale` only ever
/// touches names of the form `<TEST_PREFIX><creator pid>n<seq>`.
pub const TEST_PREFIX: &str = "isnt";
/// Host i has `LAB_SUBNET.i/24` (only inside the lab namespaces).
pub const LAB_SUBNET: [u8; 3] = [10, 77, 0];
/// The host end of every veth pair.
pub const HOST_IFACE: &str = "eth0";

/// Labs alive in this process, removed at exit if their guards never dropped
/// (e.g. leaked, or a thread still holding one when the harness exits).
static REGISTRY: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Root directory for per-lab scratch files (captures, child output).
fn scratch_root() -> PathBuf {
    std::env::temp_dir().join("igmpsnoop-lab")
}

fn lab_sh(args: &[&str]) -> Result<Output> {
    let mut c = Command::new("bash");
    c.arg(lab_script()).args(args);
    // setup.sh already ran once in this process (see `once_per_process`).
    c.env("IGMPSNOOP_SETUP_DONE", "1");
    output_ok(c)
}

fn lab_down(name: &str) -> Result<()> {
    lab_sh(&["down", name]).map(|_| ())?;
    let scratch = scratch_root().join(name);
    unmount_below(&scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Lazily unmounts whatever is mounted at or below `dir` (the bpffs a killed
/// daemon left pinned state on), deepest first.
fn unmount_below(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let mut points: Vec<PathBuf> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        // /proc/mounts escapes spaces and the like as octal; lab paths have none.
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) {
            // SAFETY: c is a valid NUL-terminated path for the call.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

extern "C" fn remove_registered_labs() {
    // try_lock: never deadlock at exit if some thread died holding the lock.
    if let Ok(reg) = REGISTRY.try_lock() {
        for name in reg.iter() {
            let _ = lab_down(name);
        }
    }
}

fn once_per_process() -> Result<()> {
    static SETUP: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    static HOOKS: Once = Once::new();
    SETUP
        .get_or_init(|| {
            if std::env::var("IGMPSNOOP_SETUP_DONE").as_deref() == Ok("1") {
                return Ok(());
            }
            let mut c = Command::new("bash");
            c.arg(repo_root().join("scripts/setup.sh"));
            output_ok(c).map(|_| ()).map_err(|e| format!("{e:#}"))
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("scripts/setup.sh: {e}"))?;
    HOOKS.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with no captured state.
        unsafe { libc::atexit(remove_registered_labs) };
        if let Err(e) = cleanup_stale() {
            eprintln!("igmpsnoop-tests: cleanup_stale: {e:#}");
        }
    });
    Ok(())
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence/permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Lab name part of a namespace name `<lab>-sw` / `<lab>-h<i>`.
fn lab_of_ns(ns: &str) -> Option<&str> {
    let (lab, suffix) = ns.rsplit_once('-')?;
    let is_host = suffix
        .strip_prefix('h')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    (suffix == "sw" || is_host).then_some(lab)
}

/// Creator pid encoded in a test lab name `isnt<pid>n<seq>`.
fn creator_pid(lab: &str) -> Option<i32> {
    let rest = lab.strip_prefix(TEST_PREFIX)?;
    let (pid, seq) = rest.split_once('n')?;
    seq.parse::<u64>().ok()?;
    pid.parse().ok()
}

fn netns_names() -> Result<Vec<String>> {
    let out = crate::cmd::run(&["ip", "netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Removes every test lab (name `isnt<pid>n<seq>`) whose creator process is gone,
/// e.g. after a SIGKILLed test run. Returns the names removed. Runs automatically
/// once per process on the first `Lab::new`.
pub fn cleanup_stale() -> Result<Vec<String>> {
    let labs: BTreeSet<String> = netns_names()?
        .iter()
        .filter_map(|ns| lab_of_ns(ns))
        .filter(|lab| creator_pid(lab).is_some_and(|pid| !pid_alive(pid)))
        .map(str::to_string)
        .collect();
    for lab in &labs {
        lab_down(lab)?;
    }
    Ok(labs.into_iter().collect())
}

/// Packet and byte counters of one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IfaceStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// Counters of `iface` in namespace `ns` (`ip -s -j link show`).
pub fn iface_stats(ns: &str, iface: &str) -> Result<IfaceStats> {
    let out = output_ok(netns_command(
        ns,
        &["ip", "-s", "-j", "link", "show", "dev", iface],
    ))?;
    let v: Value = serde_json::from_slice(&out.stdout).context("ip -j output")?;
    let s = &v[0]["stats64"];
    let get = |dir: &str, k: &str| -> Result<u64> {
        s[dir][k]
            .as_u64()
            .with_context(|| format!("no stats64.{dir}.{k} for {iface} in {ns}"))
    };
    Ok(IfaceStats {
        rx_packets: get("rx", "packets")?,
        tx_packets: get("tx", "packets")?,
        rx_bytes: get("rx", "bytes")?,
        tx_bytes: get("tx", "bytes")?,
        rx_dropped: get("rx", "dropped")?,
        tx_dropped: get("tx", "dropped")?,
    })
}

/// A lab of network namespaces, removed (with every process inside) on drop,
/// including during a panic unwind.
///
/// Host indexes are 1-based: hosts `1..=n_hosts()`, or `first..` for a lab
/// built with [`Lab::with_hosts`].
#[derive(Debug)]
pub struct Lab {
    name: String,
    first: usize,
    n_hosts: usize,
    scratch: PathBuf,
    files: AtomicU64,
}

impl Lab {
    /// Builds a lab with `n_hosts` hosts (1..=250) under a fresh unique name.
    pub fn new(n_hosts: usize) -> Result<Lab> {
        Lab::with_hosts(1, n_hosts)
    }

    /// Builds a lab whose hosts are numbered `first..first + n_hosts` (their
    /// ports, addresses and MACs follow the number), so that several labs
    /// joined into one layer-2 fabric never share an address or a MAC.
    pub fn with_hosts(first: usize, n_hosts: usize) -> Result<Lab> {
        Lab::build(first, n_hosts, &[])
    }

    /// A lab whose veths are left at the kernel's defaults (GRO off, checksum
    /// offload on), as container runtimes make them.
    pub fn at_kernel_defaults(n_hosts: usize) -> Result<Lab> {
        Lab::build(1, n_hosts, &["--defaults"])
    }

    /// A lab with IPv6 on (`scripts/lab.sh up N --ipv6`): every host has its
    /// link-local address and [`Lab::host_ip6`] (fd77::i/64, without
    /// duplicate address detection, so it is usable at once), and sends the
    /// MLD reports, router solicitations and neighbour discovery a kernel
    /// sends.
    pub fn ipv6(n_hosts: usize) -> Result<Lab> {
        Lab::build_ipv6(n_hosts, &["--ipv6"])
    }

    /// [`Lab::ipv6`] with every veth at the kernel's defaults (see
    /// [`Lab::at_kernel_defaults`]).
    pub fn ipv6_at_kernel_defaults(n_hosts: usize) -> Result<Lab> {
        Lab::build_ipv6(n_hosts, &["--ipv6", "--defaults"])
    }

    fn build_ipv6(n_hosts: usize, options: &[&str]) -> Result<Lab> {
        let lab = Lab::build(1, n_hosts, options)?;
        for i in lab.hosts() {
            let addr = format!("{}/64", lab.host_ip6(i));
            lab.exec(
                &lab.host_ns(i),
                &["ip", "-6", "addr", "add", &addr, "dev", HOST_IFACE, "nodad"],
            )?;
        }
        Ok(lab)
    }

    fn build(first: usize, n_hosts: usize, options: &[&str]) -> Result<Lab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!("Lab::new needs root (network namespaces)");
        }
        let missing: Vec<_> = ["ip", "ethtool", "bash"]
            .into_iter()
            .filter(|t| which(t).is_none())
            .collect();
        if !missing.is_empty() {
            bail!("Lab::new: missing tools: {}", missing.join(", "));
        }
        once_per_process()?;
        let name = format!(
            "{TEST_PREFIX}{}n{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let scratch = scratch_root().join(&name);
        std::fs::create_dir_all(&scratch).with_context(|| format!("mkdir {scratch:?}"))?;
        // Registered before creation so a half-made lab is still removed at exit.
        REGISTRY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.clone());
        let lab = Lab {
            name,
            first,
            n_hosts,
            scratch,
            files: AtomicU64::new(0),
        };
        // On error `lab` drops here and removes whatever was built.
        let (n_s, first_s) = (n_hosts.to_string(), first.to_string());
        let mut args = vec!["up", &n_s, "--name", &lab.name, "--first", &first_s];
        args.extend_from_slice(options);
        lab_sh(&args).with_context(|| format!("building lab {}", lab.name))?;
        Ok(lab)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn n_hosts(&self) -> usize {
        self.n_hosts
    }

    /// Host indexes, `1..=n_hosts` (`first..` for [`Lab::with_hosts`]).
    pub fn hosts(&self) -> std::ops::RangeInclusive<usize> {
        self.first..=self.first + self.n_hosts - 1
    }

    fn check(&self, i: usize) {
        assert!(
            self.hosts().contains(&i),
            "host/port index {i} out of range {:?} in lab {}",
            self.hosts(),
            self.name
        );
    }

    /// The switch namespace, `<lab>-sw`.
    pub fn switch_ns(&self) -> String {
        format!("{}-sw", self.name)
    }

    /// Host i's namespace, `<lab>-h<i>`.
    pub fn host_ns(&self, i: usize) -> String {
        self.check(i);
        format!("{}-h{i}", self.name)
    }

    /// Switch-side interface facing host i, `p<i>`.
    pub fn port(&self, i: usize) -> String {
        self.check(i);
        format!("p{i}")
    }

    /// Every switch port facing a host, `p1..pN`.
    pub fn ports(&self) -> Vec<String> {
        self.hosts().map(|i| self.port(i)).collect()
    }

    /// `--port p1 ... --port pN`: every port of the lab, for `igmpsnoop run`.
    pub fn port_args(&self) -> Vec<String> {
        self.ports()
            .into_iter()
            .flat_map(|p| ["--port".to_string(), p])
            .collect()
    }

    /// Host i's address, 10.77.0.i.
    pub fn host_ip(&self, i: usize) -> Ipv4Addr {
        self.check(i);
        let [a, b, c] = LAB_SUBNET;
        Ipv4Addr::new(a, b, c, i as u8)
    }

    /// Host i's IPv6 address in a lab built by [`Lab::ipv6`], fd77::i.
    pub fn host_ip6(&self, i: usize) -> Ipv6Addr {
        self.check(i);
        Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, i as u16)
    }

    /// Host i's link-local address (from its MAC, EUI-64), fe80::ff:fe00:i.
    pub fn host_link_local(&self, i: usize) -> Ipv6Addr {
        let m = self.host_mac_bytes(i);
        Ipv6Addr::new(
            0xfe80,
            0,
            0,
            0,
            u16::from_be_bytes([m[0] ^ 2, m[1]]),
            u16::from_be_bytes([m[2], 0xff]),
            u16::from_be_bytes([0xfe, m[3]]),
            u16::from_be_bytes([m[4], m[5]]),
        )
    }

    /// Host i's MAC as bytes, 02:00:00:00:hi:lo.
    pub fn host_mac_bytes(&self, i: usize) -> [u8; 6] {
        self.check(i);
        [2, 0, 0, 0, (i >> 8) as u8, i as u8]
    }

    /// Host i's MAC as tshark/ip print it, e.g. "02:00:00:00:00:01".
    pub fn host_mac(&self, i: usize) -> String {
        fmt_mac(self.host_mac_bytes(i))
    }

    /// Switch port i's own MAC, 02:00:00:01:hi:lo.
    pub fn port_mac(&self, i: usize) -> String {
        self.check(i);
        fmt_mac([2, 0, 0, 1, (i >> 8) as u8, i as u8])
    }

    /// Per-lab scratch directory (removed with the lab).
    pub fn scratch_dir(&self) -> &Path {
        &self.scratch
    }

    /// A fresh path in the scratch directory, `<stem>-<n>`.
    pub fn scratch_file(&self, stem: &str) -> PathBuf {
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        self.scratch.join(format!("{stem}-{n}"))
    }

    /// Runs `cmd` inside `ns` and returns stdout; errors (with stderr) on failure.
    pub fn exec(&self, ns: &str, cmd: &[&str]) -> Result<String> {
        let out = output_ok(netns_command(ns, cmd))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs `cmd` inside `ns` and returns its output whatever the exit status.
    pub fn exec_output(&self, ns: &str, cmd: &[&str]) -> Result<Output> {
        netns_command(ns, cmd)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("ip netns exec {ns} {cmd:?}"))
    }

    /// Runs a shell snippet inside `ns` (`sh -c SCRIPT`), returns stdout.
    pub fn sh(&self, ns: &str, script: &str) -> Result<String> {
        self.exec(ns, &["sh", "-c", script])
    }

    /// Starts `cmd` inside `ns`; the guard SIGKILLs it on drop. stdout/stderr are
    /// kept in scratch files (`ChildGuard::stdout`/`stderr`).
    pub fn spawn(&self, ns: &str, cmd: &[&str]) -> Result<ChildGuard> {
        let stem = Path::new(cmd.first().copied().unwrap_or("cmd"))
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "cmd".into());
        ChildGuard::spawn(netns_command(ns, cmd), &self.scratch_file(&stem))
    }

    /// Sets `net.ipv4.conf.eth0.force_igmp_version` (0 = auto, 1, 2, 3) on host i.
    /// A host that already heard a v2 query stays in v2 even after `=3`: use a
    /// fresh lab per IGMP version.
    pub fn set_igmp_version(&self, host: usize, version: u8) -> Result<()> {
        let kv = format!("net.ipv4.conf.{HOST_IFACE}.force_igmp_version={version}");
        self.exec(&self.host_ns(host), &["sysctl", "-qw", &kv])
            .map(|_| ())
    }

    /// Sets host `host`'s IGMPv2 and IGMPv3 unsolicited report intervals
    /// (the kernel's defaults: 10 s and 1 s): a join's repeated reports
    /// then all go out within `ms`, so that none comes later, in the middle
    /// of what a test measures.
    pub fn set_unsolicited_report_interval(&self, host: usize, ms: u32) -> Result<()> {
        for v in [2, 3] {
            let kv =
                format!("net.ipv4.conf.{HOST_IFACE}.igmpv{v}_unsolicited_report_interval={ms}");
            self.exec(&self.host_ns(host), &["sysctl", "-qw", &kv])?;
        }
        Ok(())
    }

    /// Sets host `host`'s `force_mld_version` (0: the kernel's own, MLDv2
    /// with MLDv1 compatibility; 1: MLDv1 only; 2: MLDv2 only).
    pub fn set_mld_version(&self, host: usize, version: u8) -> Result<()> {
        let kv = format!("net.ipv6.conf.{HOST_IFACE}.force_mld_version={version}");
        self.exec(&self.host_ns(host), &["sysctl", "-qw", &kv])
            .map(|_| ())
    }

    /// Counters of `iface` in `ns`.
    pub fn iface_stats(&self, ns: &str, iface: &str) -> Result<IfaceStats> {
        iface_stats(ns, iface)
    }

    /// Counters of switch port i.
    pub fn port_stats(&self, i: usize) -> Result<IfaceStats> {
        iface_stats(&self.switch_ns(), &self.port(i))
    }

    /// Counters of host i's eth0.
    pub fn host_stats(&self, i: usize) -> Result<IfaceStats> {
        iface_stats(&self.host_ns(i), HOST_IFACE)
    }

    /// ICMP or ICMPv6 echo from host `from` to `dst` (`count` tries, 1 s
    /// each; a link-local IPv6 address is reached through eth0); Ok iff at
    /// least one reply arrived. (No ping binary on this machine: mcast-tool ping.)
    pub fn ping(&self, from: usize, dst: impl Into<IpAddr>, count: u32) -> Result<()> {
        let dst: IpAddr = dst.into();
        let tool = crate::tools::mcast_tool_bin();
        self.exec(
            &self.host_ns(from),
            &[
                &tool.to_string_lossy(),
                "ping",
                "--dst",
                &dst.to_string(),
                "--count",
                &count.to_string(),
            ],
        )
        .map(|_| ())
    }
}

fn fmt_mac(m: [u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = lab_down(&self.name) {
            eprintln!("igmpsnoop-tests: removing lab {}: {e:#}", self.name);
        }
        REGISTRY
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(lab_of_ns("isnt12n3-sw"), Some("isnt12n3"));
        assert_eq!(lab_of_ns("isnt12n3-h10"), Some("isnt12n3"));
        assert_eq!(lab_of_ns("isnt12n3-hx"), None);
        assert_eq!(lab_of_ns("other"), None);
        assert_eq!(creator_pid("isnt12n3"), Some(12));
        assert_eq!(creator_pid("isnab12f"), None);
        assert_eq!(creator_pid("isntxn3"), None);
    }
}
