//! IGMPv3 source filtering in a lab: datagrams from chosen source
//! addresses, raw IGMP messages, and per-source counts at a host's
//! interface (all through `mcast-tool`, see src/bin/mcast.rs).
//!
//! Counting happens on an AF_PACKET socket, below the host's IP stack:
//! a kernel host filters by source itself, so its sockets cannot tell
//! whether the switch forwarded a source it does not want.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd::ChildGuard;
use crate::lab::{HOST_IFACE, Lab};
use crate::tools::mcast_tool_bin;

/// The Internet checksum (RFC 1071) of `data`.
pub fn igmp_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IGMPv3 membership report (RFC 3376 §4.2) with records
/// (record type, group, sources), checksummed.
pub fn v3_report(records: &[(u8, Ipv4Addr, &[Ipv4Addr])]) -> Vec<u8> {
    let mut m = vec![0x22, 0, 0, 0, 0, 0];
    m.extend_from_slice(&(records.len() as u16).to_be_bytes());
    for (kind, group, sources) in records {
        m.extend_from_slice(&[*kind, 0]);
        m.extend_from_slice(&(sources.len() as u16).to_be_bytes());
        m.extend_from_slice(&group.octets());
        for s in *sources {
            m.extend_from_slice(&s.octets());
        }
    }
    let ck = igmp_checksum(&m);
    m[2..4].copy_from_slice(&ck.to_be_bytes());
    m
}

/// One raw IGMP message sent by a lab host (`mcast-tool igmp`).
#[derive(Debug, Clone)]
pub struct IgmpSend {
    /// IP destination (and its MAC); reports go to 224.0.0.22 (RFC 3376 §4.2.14).
    pub dst: Ipv4Addr,
    /// IP source; the host's own address by default.
    pub src: Option<Ipv4Addr>,
    /// Ethernet source; the host's own by default (another one stands for a
    /// second host behind the same port).
    pub mac: Option<String>,
    /// RFC 3376 §4: TTL 1, and the Router Alert option.
    pub ttl: u8,
    pub router_alert: bool,
    /// Send the IPv4 header checksum wrong.
    pub bad_ip_checksum: bool,
}

impl Default for IgmpSend {
    fn default() -> Self {
        IgmpSend {
            dst: Ipv4Addr::new(224, 0, 0, 22),
            src: None,
            mac: None,
            ttl: 1,
            router_alert: true,
            bad_ip_checksum: false,
        }
    }
}

impl IgmpSend {
    /// Sends `message` (the IGMP bytes as given) from host `host`.
    pub fn send(&self, lab: &Lab, host: usize, message: &[u8]) -> Result<()> {
        let tool = mcast_tool_bin().to_string_lossy().into_owned();
        let hex: String = message.iter().map(|b| format!("{b:02x}")).collect();
        let (dst, src, ttl) = (
            self.dst.to_string(),
            self.src.unwrap_or_else(|| lab.host_ip(host)).to_string(),
            self.ttl.to_string(),
        );
        let mut args = vec![
            tool.as_str(),
            "igmp",
            "--iface",
            HOST_IFACE,
            "--dst",
            &dst,
            "--src",
            &src,
            "--ttl",
            &ttl,
            "--hex",
            &hex,
        ];
        if let Some(mac) = &self.mac {
            args.extend(["--mac", mac.as_str()]);
        }
        if !self.router_alert {
            args.push("--no-router-alert");
        }
        if self.bad_ip_checksum {
            args.push("--bad-ip-checksum");
        }
        lab.exec(&lab.host_ns(host), &args).map(|_| ())
    }
}

/// Sends `count` datagrams to `group`:`port` from each of `sources` in turn
/// (from host `host`, whatever its own address), `interval_ms` apart.
/// IPv4 or IPv6 (group and sources of one family).
pub fn send_from_sources<A: Copy + Display>(
    lab: &Lab,
    host: usize,
    group: A,
    port: u16,
    sources: &[A],
    count: u64,
    interval_ms: u64,
) -> Result<()> {
    let tool = mcast_tool_bin().to_string_lossy().into_owned();
    let (g, p, c, i) = (
        group.to_string(),
        port.to_string(),
        count.to_string(),
        interval_ms.to_string(),
    );
    let mut args = vec![
        tool.as_str(),
        "spoof",
        "--iface",
        HOST_IFACE,
        "--group",
        &g,
        "--port",
        &p,
        "--count",
        &c,
        "--interval-ms",
        &i,
    ];
    let srcs: Vec<String> = sources.iter().map(A::to_string).collect();
    for s in &srcs {
        args.extend(["--src", s.as_str()]);
    }
    lab.exec(&lab.host_ns(host), &args).map(|_| ())
}

/// Datagrams to one group:port arriving at a host's eth0, counted per
/// source (`mcast-tool sniff`). Stopped on drop.
pub struct SourceCounter {
    child: ChildGuard,
    out: PathBuf,
}

impl SourceCounter {
    /// Starts counting on host `host` (an IPv4 or IPv6 group); returns once
    /// the socket is bound.
    pub fn start(
        lab: &Lab,
        host: usize,
        group: impl Into<IpAddr>,
        port: u16,
    ) -> Result<SourceCounter> {
        let group: IpAddr = group.into();
        let out = lab.scratch_file(&format!("sniff-h{host}"));
        let tool = mcast_tool_bin().to_string_lossy().into_owned();
        let (g, p, o) = (
            group.to_string(),
            port.to_string(),
            out.to_string_lossy().into_owned(),
        );
        let args = [
            tool.as_str(),
            "sniff",
            "--iface",
            HOST_IFACE,
            "--group",
            &g,
            "--port",
            &p,
            "--out",
            &o,
        ];
        let mut child = lab.spawn(&lab.host_ns(host), &args)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !out.exists() {
            if !child.is_running() {
                bail!("mcast-tool sniff exited: {}", child.stderr().trim());
            }
            if Instant::now() >= deadline {
                bail!("mcast-tool sniff not ready after 10 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(SourceCounter { child, out })
    }

    /// Datagrams counted so far, per source (within 20 ms of their arrival).
    pub fn counts(&self) -> BTreeMap<IpAddr, u64> {
        let read = || -> Result<BTreeMap<IpAddr, u64>> {
            let text = std::fs::read_to_string(&self.out)?;
            let raw: BTreeMap<String, u64> = serde_json::from_str(&text)?;
            raw.into_iter()
                .map(|(k, v)| Ok((k.parse().context("source address")?, v)))
                .collect()
        };
        read().unwrap_or_else(|e| panic!("sniffer counts {:?}: {e:#}", self.out))
    }

    /// Datagrams counted from `source` so far.
    pub fn count(&self, source: impl Into<IpAddr>) -> u64 {
        self.counts().get(&source.into()).copied().unwrap_or(0)
    }

    /// Whether the sniffer still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }
}

impl Drop for SourceCounter {
    fn drop(&mut self) {
        let _ = self.child.stop(libc::SIGTERM, Duration::from_secs(2));
    }
}

/// Datagrams from chosen sources to one group (`Ipv4Addr` or `Ipv6Addr`),
/// checked per receiver.
#[derive(Debug, Clone, Copy)]
pub struct Stream<'a, A = Ipv4Addr> {
    pub lab: &'a Lab,
    /// The sending host.
    pub from: usize,
    pub group: A,
    pub port: u16,
    /// Datagrams per source.
    pub n: u64,
}

/// How long a check waits for the datagrams that must arrive.
const DELIVERY_WAIT: Duration = Duration::from_secs(10);
/// How long it listens on for copies that must not arrive, after the ones
/// that must have.
const DELIVERY_GRACE: Duration = Duration::from_millis(250);

impl<A: Copy + Display + std::fmt::Debug + PartialEq + Into<IpAddr>> Stream<'_, A> {
    /// Sends `n` datagrams from each of `sources`, then checks that each
    /// receiver `(name, counter, wanted)` got exactly `n` from each wanted
    /// source and none from the others (a duplicate is a failure too).
    /// Panics naming every difference. `what` names the step.
    pub fn check(&self, what: &str, sources: &[A], receivers: &[(&str, &SourceCounter, &[A])]) {
        let send = || {
            send_from_sources(
                self.lab, self.from, self.group, self.port, sources, self.n, 1,
            )
        };
        check_delivery(
            what,
            self.n,
            self.group,
            DELIVERY_GRACE,
            send,
            sources,
            receivers,
        );
    }
}

/// A per-source datagram counter that a delivery check reads.
pub(crate) trait CountsBySource {
    /// Datagrams counted so far, per source.
    fn counts_by_source(&self) -> BTreeMap<IpAddr, u64>;
}

impl CountsBySource for SourceCounter {
    fn counts_by_source(&self) -> BTreeMap<IpAddr, u64> {
        self.counts()
    }
}

/// The check of [`Stream::check`] and [`crate::Stream6::check`]: sends
/// (`send`: `per_source` datagrams from each of `sources` to `group`), then
/// checks that each receiver `(name, counter, wanted)` got exactly that
/// many from each wanted source and none from the others. `grace` is how
/// long it listens on for copies that must not arrive, after the ones that
/// must have. Panics naming every difference; `what` names the step.
pub(crate) fn check_delivery<A, C>(
    what: &str,
    per_source: u64,
    group: A,
    grace: Duration,
    send: impl FnOnce() -> Result<()>,
    sources: &[A],
    receivers: &[(&str, &C, &[A])],
) where
    A: Copy + Display + std::fmt::Debug + PartialEq + Into<IpAddr>,
    C: CountsBySource,
{
    let before: Vec<BTreeMap<IpAddr, u64>> = receivers
        .iter()
        .map(|(_, c, _)| c.counts_by_source())
        .collect();
    send().unwrap_or_else(|e| panic!("{what}: sending: {e:#}"));
    let got = |i: usize, s: A| {
        let s: IpAddr = s.into();
        let now = receivers[i].1.counts_by_source().get(&s).copied();
        now.unwrap_or(0) - before[i].get(&s).copied().unwrap_or(0)
    };
    let deadline = Instant::now() + DELIVERY_WAIT;
    while Instant::now() < deadline
        && !receivers
            .iter()
            .enumerate()
            .all(|(i, (_, _, want))| want.iter().all(|s| got(i, *s) >= per_source))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(grace);
    let mut wrong = Vec::new();
    for (i, (name, _, want)) in receivers.iter().enumerate() {
        for &s in sources {
            let (n, expect) = (got(i, s), if want.contains(&s) { per_source } else { 0 });
            if n != expect {
                wrong.push(format!(
                    "{name} got {n} datagrams from {s}, expected {expect}"
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: {} from each of {sources:?} to {}:\n  {}",
        per_source,
        group,
        wrong.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The selftest's IS_INC {192.0.2.1, .2, .3} vector, checksum included
    /// (tools/testing/selftests/net/forwarding/bridge_igmp.sh).
    #[test]
    fn v3_report_matches_the_kernel_selftest_vector() {
        let s = |n| Ipv4Addr::new(192, 0, 2, n);
        let got = v3_report(&[(1, Ipv4Addr::new(239, 10, 10, 10), &[s(1), s(2), s(3)])]);
        let want = "22009dde00000001010000".to_string() + "03ef0a0a0ac0000201c0000202c0000203";
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want);
    }
}
