//! Kernel-stack multicast hosts: wrappers around `mcast-tool` run in host
//! namespaces (see src/bin/mcast.rs for its CLI and signal protocol).

use std::collections::HashMap;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cmd::ChildGuard;
use crate::lab::{HOST_IFACE, Lab};
use crate::tools::mcast_tool_bin;

/// What `mcast-tool recv` printed when it finished. Keys are destination
/// addresses as strings.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RecvReport {
    /// Datagrams per destination group.
    pub received: HashMap<String, u64>,
    /// Datagrams per destination group and sender tag (`send --tag`).
    pub by_tag: HashMap<String, HashMap<String, u64>>,
    /// Datagrams per group that arrived after `leave()`.
    pub after_leave: HashMap<String, u64>,
    /// Whether `leave()` happened.
    pub left: bool,
    pub total: u64,
}

impl RecvReport {
    /// `received` keyed by IPv4 address (other keys dropped).
    pub fn counts(&self) -> HashMap<Ipv4Addr, u64> {
        self.received
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
            .collect()
    }

    /// `received` keyed by IPv6 address (other keys dropped).
    pub fn counts6(&self) -> HashMap<Ipv6Addr, u64> {
        self.received
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
            .collect()
    }

    /// Datagrams received for `group` (0 when none).
    pub fn count(&self, group: impl Into<IpAddr>) -> u64 {
        let g: IpAddr = group.into();
        self.received.get(&g.to_string()).copied().unwrap_or(0)
    }
}

/// The source filter a [`Receiver`] sets on its groups (addresses of the
/// groups' family: `Ipv4Addr` or `Ipv6Addr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFilter<A = Ipv4Addr> {
    /// Any source (IP_ADD_MEMBERSHIP / IPV6_ADD_MEMBERSHIP): EXCLUDE {}.
    Any,
    /// Only these (MCAST_JOIN_SOURCE_GROUP each).
    Include(Vec<A>),
    /// Any but these (an any-source join, then MCAST_BLOCK_SOURCE each).
    Exclude(Vec<A>),
}

/// A joined multicast receiver on one lab host.
pub struct Receiver {
    child: ChildGuard,
    ready: PathBuf,
}

impl Receiver {
    /// Starts `mcast-tool recv` on host `host` for `groups` on UDP `port` and
    /// returns once every IP_ADD_MEMBERSHIP has returned. The kernel sends its
    /// first report right then (v3 and v2 alike, within a jiffy or so), but has
    /// the switch *processed* it? Tests must still poll the switch for that.
    /// Groups are IPv4 or IPv6 (`Ipv4Addr`, `Ipv6Addr` or `IpAddr`; one
    /// family: the kernel's MLD host code answers for IPv6 ones).
    pub fn start<A: Copy + Display>(
        lab: &Lab,
        host: usize,
        groups: &[A],
        port: u16,
    ) -> Result<Receiver> {
        Receiver::start_filtered(lab, host, groups, port, &SourceFilter::Any)
    }

    /// [`Receiver::start`] with a source filter on every group (RFC 3376
    /// §2: the socket's INCLUDE or EXCLUDE list, through the RFC 3678 calls).
    pub fn start_filtered<A: Copy + Display>(
        lab: &Lab,
        host: usize,
        groups: &[A],
        port: u16,
        filter: &SourceFilter<A>,
    ) -> Result<Receiver> {
        let ready = lab.scratch_file("recv-ready");
        let tool = mcast_tool_bin();
        let (tool_s, ready_s, port_s) = (
            tool.to_string_lossy().into_owned(),
            ready.to_string_lossy().into_owned(),
            port.to_string(),
        );
        let group_s: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        let mut args = vec![
            tool_s.as_str(),
            "recv",
            "--port",
            &port_s,
            "--iface",
            HOST_IFACE,
        ];
        for g in &group_s {
            args.extend(["--group", g.as_str()]);
        }
        let (flag, sources) = match filter {
            SourceFilter::Any => ("", &[][..]),
            SourceFilter::Include(s) => ("--include", &s[..]),
            SourceFilter::Exclude(s) => ("--exclude", &s[..]),
        };
        let source_s: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
        for s in &source_s {
            args.extend([flag, s.as_str()]);
        }
        args.extend(["--ready-file", &ready_s]);
        let child = lab.spawn(&lab.host_ns(host), &args)?;
        let mut r = Receiver { child, ready };
        r.wait_state("joined")?;
        Ok(r)
    }

    fn wait_state(&mut self, state: &str) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::fs::read_to_string(&self.ready).is_ok_and(|s| s.trim() == state) {
                return Ok(());
            }
            if !self.child.is_running() {
                bail!(
                    "mcast-tool recv exited before `{state}`: {}",
                    self.child.stderr().trim()
                );
            }
            if Instant::now() >= deadline {
                bail!("mcast-tool recv not `{state}` after 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Drops membership of every group (SIGUSR1: the kernel sends leaves; with
    /// an INCLUDE filter, every source is dropped) but keeps counting; returns
    /// once the drops are done.
    pub fn leave(&mut self) -> Result<()> {
        self.child.signal(libc::SIGUSR1)?;
        self.wait_state("left")
    }

    /// Joins every group again after `leave` (SIGUSR2).
    pub fn rejoin(&mut self) -> Result<()> {
        self.child.signal(libc::SIGUSR2)?;
        self.wait_state("joined")
    }

    /// The receiver process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Stops (SIGTERM; the tool leaves its groups) and returns the full report.
    pub fn finish_report(mut self) -> Result<RecvReport> {
        let st = self.child.stop(libc::SIGTERM, Duration::from_secs(5))?;
        if !st.success() {
            bail!(
                "mcast-tool recv failed ({st}): {}",
                self.child.stderr().trim()
            );
        }
        let out = self.child.stdout();
        serde_json::from_str(out.trim()).with_context(|| format!("mcast-tool output {out:?}"))
    }

    /// Stops and returns datagrams received per group.
    pub fn finish(self) -> Result<HashMap<Ipv4Addr, u64>> {
        Ok(self.finish_report()?.counts())
    }
}

/// Options for [`send_with`].
#[derive(Debug, Clone)]
pub struct SendOpts {
    /// An IPv4 or IPv6 group.
    pub group: IpAddr,
    pub port: u16,
    pub count: u64,
    /// Gap between datagrams; 0 = back to back (a veth NAPI ring holds 256 frames,
    /// so bursts much larger than that can drop).
    pub interval_ms: u64,
    /// TTL, or hop limit for IPv6.
    pub ttl: u8,
    /// Payload tag, reported per group by the receiver in `by_tag`.
    pub tag: String,
    /// Pad payload to this many bytes (0 = minimal, ~25 bytes).
    pub size: usize,
    /// Also deliver to receivers on the sending host (IP_MULTICAST_LOOP).
    pub mcast_loop: bool,
}

impl SendOpts {
    pub fn new(group: impl Into<IpAddr>, port: u16, count: u64) -> SendOpts {
        SendOpts {
            group: group.into(),
            port,
            count,
            interval_ms: 1,
            ttl: 4,
            tag: "mcast-tool".into(),
            size: 0,
            mcast_loop: false,
        }
    }
}

/// Sends `count` datagrams to `group:port` (IPv4 or IPv6) from host `host`
/// (1 ms apart, TTL / hop limit 4, no loopback) and returns when all are sent.
pub fn send(lab: &Lab, host: usize, group: impl Into<IpAddr>, port: u16, count: u64) -> Result<()> {
    send_with(lab, host, &SendOpts::new(group, port, count))
}

/// `send` with every option.
pub fn send_with(lab: &Lab, host: usize, o: &SendOpts) -> Result<()> {
    let tool = mcast_tool_bin().to_string_lossy().into_owned();
    let (g, p, c, i, t, s) = (
        o.group.to_string(),
        o.port.to_string(),
        o.count.to_string(),
        o.interval_ms.to_string(),
        o.ttl.to_string(),
        o.size.to_string(),
    );
    let mut args = vec![
        tool.as_str(),
        "send",
        "--group",
        &g,
        "--port",
        &p,
        "--iface",
        HOST_IFACE,
        "--count",
        &c,
        "--interval-ms",
        &i,
        "--ttl",
        &t,
        "--tag",
        &o.tag,
        "--size",
        &s,
    ];
    if o.mcast_loop {
        args.push("--loop");
    }
    lab.exec(&lab.host_ns(host), &args).map(|_| ())
}
