//! MLDv2 source filtering in a lab: raw IPv6 frames (MLD messages as a host
//! sends them, or deliberately not; UDP datagrams from chosen source
//! addresses) sent on a host's eth0, and datagrams counted per source at a
//! host's eth0, below its IP stack (a kernel host filters by source itself,
//! so its sockets cannot tell whether the switch forwarded a source it does
//! not want).
//!
//! Both ends are AF_PACKET sockets opened in the host's namespace by a
//! short-lived thread (a socket keeps the namespace it was made in), so
//! nothing is spawned per frame and the test's own process does the work.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::lab::{HOST_IFACE, Lab};
use crate::sources::{CountsBySource, check_delivery, igmp_checksum};

/// ff02::16, where MLDv2 reports go (RFC 3810 §5.2.14).
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
/// ff02::1, where queries go.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

const ETH_P_IPV6: u16 = 0x86dd;
const NEXT_HOP_BY_HOP: u8 = 0;
const NEXT_DEST_OPTS: u8 = 60;
const NEXT_ICMPV6: u8 = 58;
const NEXT_UDP: u8 = 17;

/// The Internet checksum of an upper-layer message over the IPv6
/// pseudo-header (RFC 8200 §8.1), as ICMPv6 and UDP carry it.
pub fn ipv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, next: u8, msg: &[u8]) -> u16 {
    let mut data = Vec::with_capacity(40 + msg.len());
    data.extend_from_slice(&src.octets());
    data.extend_from_slice(&dst.octets());
    data.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    data.extend_from_slice(&[0, 0, 0, next]);
    data.extend_from_slice(msg);
    igmp_checksum(&data)
}

/// An MLDv2 report (RFC 3810 §5.2) with records (record type, multicast
/// address, sources), its checksum left 0 (it depends on the addresses:
/// [`MldSend`] fills it in).
pub fn mldv2_report(records: &[(u8, Ipv6Addr, &[Ipv6Addr])]) -> Vec<u8> {
    let mut m = vec![143, 0, 0, 0, 0, 0];
    m.extend_from_slice(&(records.len() as u16).to_be_bytes());
    for (kind, group, sources) in records {
        m.extend_from_slice(&[*kind, 0]);
        m.extend_from_slice(&(sources.len() as u16).to_be_bytes());
        m.extend_from_slice(&group.octets());
        for s in *sources {
            m.extend_from_slice(&s.octets());
        }
    }
    m
}

/// The Ethernet address of IPv6 multicast address `g` (RFC 2464 §7).
pub fn ipv6_multicast_mac(g: Ipv6Addr) -> [u8; 6] {
    let o = g.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// How an MLD message is wrapped and sent by a lab host. The default is
/// what RFC 3810 asks of a host (§5: hop limit 1, a Hop-by-Hop header with
/// the Router Alert option; §5.2.13: from its link-local address; §5.2.14:
/// reports to ff02::16); each field lets a test break one rule.
#[derive(Debug, Clone)]
pub struct MldSend {
    /// IPv6 source; the host's link-local address by default.
    pub src: Option<Ipv6Addr>,
    pub dst: Ipv6Addr,
    /// Ethernet destination; that of `dst` when `dst` is multicast, the
    /// switch's port otherwise.
    pub mac_dst: Option<[u8; 6]>,
    pub hop_limit: u8,
    /// The Router Alert option (RFC 2711, value 0: MLD) in the Hop-by-Hop
    /// header; without it there is no Hop-by-Hop header at all.
    pub router_alert: bool,
    /// Destination Options headers (PadN only) after the Hop-by-Hop header,
    /// to make the extension-header chain longer.
    pub dest_opts: usize,
    /// Send the message's checksum wrong (inverted).
    pub bad_checksum: bool,
}

impl Default for MldSend {
    fn default() -> Self {
        MldSend {
            src: None,
            dst: ALL_MLDV2_ROUTERS,
            mac_dst: None,
            hop_limit: 1,
            router_alert: true,
            dest_opts: 0,
            bad_checksum: false,
        }
    }
}

impl MldSend {
    /// The whole Ethernet frame host `host` sends for MLD message `msg`
    /// (its checksum field is overwritten).
    pub fn frame(&self, lab: &Lab, host: usize, msg: &[u8]) -> Vec<u8> {
        let src = self.src.unwrap_or_else(|| lab.host_link_local(host));
        let mut msg = msg.to_vec();
        msg[2..4].fill(0);
        let mut ck = ipv6_checksum(src, self.dst, NEXT_ICMPV6, &msg);
        if self.bad_checksum {
            ck = !ck;
        }
        msg[2..4].copy_from_slice(&ck.to_be_bytes());
        // The chain: [Hop-by-Hop] then dest_opts Destination Options, each
        // 8 bytes naming the header after it.
        let mut kinds = Vec::new();
        if self.router_alert {
            kinds.push(NEXT_HOP_BY_HOP);
        }
        kinds.extend(std::iter::repeat_n(NEXT_DEST_OPTS, self.dest_opts));
        let mut ext = Vec::new();
        for (i, kind) in kinds.iter().enumerate() {
            let next = kinds.get(i + 1).copied().unwrap_or(NEXT_ICMPV6);
            if *kind == NEXT_HOP_BY_HOP {
                // Router Alert (type 5, length 2, value 0), then PadN.
                ext.extend_from_slice(&[next, 0, 5, 2, 0, 0, 1, 0]);
            } else {
                ext.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
            }
        }
        let first = kinds.first().copied().unwrap_or(NEXT_ICMPV6);
        let mac_dst = self.mac_dst.unwrap_or_else(|| {
            if self.dst.is_multicast() {
                ipv6_multicast_mac(self.dst)
            } else {
                let i = lab.hosts().next().unwrap_or(1);
                parse_mac(&lab.port_mac(i))
            }
        });
        let ip = ipv6_header(src, self.dst, first, self.hop_limit, ext.len() + msg.len());
        let mut f = ethernet(mac_dst, lab.host_mac_bytes(host));
        f.extend(ip);
        f.extend(ext);
        f.extend(msg);
        f
    }

    /// Sends MLD message `msg` from host `host`.
    pub fn send(&self, lab: &Lab, host: usize, msg: &[u8]) -> Result<()> {
        RawPort::open(lab, host)?.send(&self.frame(lab, host, msg))
    }
}

fn parse_mac(s: &str) -> [u8; 6] {
    let mut m = [0u8; 6];
    for (b, part) in m.iter_mut().zip(s.split(':')) {
        *b = u8::from_str_radix(part, 16).unwrap_or(0);
    }
    m
}

fn ethernet(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = Vec::with_capacity(1514);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
    f
}

fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, plen: usize) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(plen as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop_limit]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// A UDP datagram from `src` to group `g` on `port`, hop limit 4, as a
/// frame from MAC `mac`.
pub fn udp6_frame(mac: [u8; 6], src: Ipv6Addr, g: Ipv6Addr, port: u16, seq: u64) -> Vec<u8> {
    let payload = format!("seq-{seq}");
    let len = 8 + payload.len();
    let mut udp = Vec::with_capacity(len);
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&(len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload.as_bytes());
    // RFC 8200 §8.1: the UDP checksum is mandatory over IPv6.
    let ck = match ipv6_checksum(src, g, NEXT_UDP, &udp) {
        0 => 0xffff,
        c => c,
    };
    udp[6..8].copy_from_slice(&ck.to_be_bytes());
    let mut f = ethernet(ipv6_multicast_mac(g), mac);
    f.extend(ipv6_header(src, g, NEXT_UDP, 4, udp.len()));
    f.extend(udp);
    f
}

/// Runs `f` on a thread that entered host `host`'s network namespace.
fn in_host_netns<T: Send + 'static>(
    lab: &Lab,
    host: usize,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{}", lab.host_ns(host));
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).with_context(|| format!("open {path}"))?;
        // SAFETY: setns on a valid namespace fd; affects this thread only.
        if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            bail!("setns({path}): {}", std::io::Error::last_os_error());
        }
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}

/// An AF_PACKET socket bound to the host's eth0 for protocol `proto`
/// (0: send only). Made in the calling thread's namespace.
fn packet_socket(proto: u16) -> Result<OwnedFd> {
    let iface = std::ffi::CString::new(HOST_IFACE).expect("no NUL");
    // SAFETY: a NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(iface.as_ptr()) };
    if ifindex == 0 {
        bail!("no {HOST_IFACE}: {}", std::io::Error::last_os_error());
    }
    let proto_be = i32::from(proto.to_be());
    // SAFETY: plain socket call; the fd is owned at once.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto_be) };
    if fd < 0 {
        bail!("socket(AF_PACKET): {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto.to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: sll is a valid sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        bail!(
            "bind(AF_PACKET, {HOST_IFACE}): {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(fd)
}

/// A host's eth0, to send whole Ethernet frames on.
pub struct RawPort {
    fd: OwnedFd,
}

impl RawPort {
    pub fn open(lab: &Lab, host: usize) -> Result<RawPort> {
        let fd = in_host_netns(lab, host, || packet_socket(0))?;
        Ok(RawPort { fd })
    }

    pub fn send(&self, frame: &[u8]) -> Result<()> {
        // SAFETY: frame is a valid buffer of the length passed.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 || n as usize != frame.len() {
            bail!("send on {HOST_IFACE}: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Sends `count` UDP datagrams to `group`:`port` from each of `sources` in
/// turn, from host `host` (its MAC, whatever the source address), about
/// `interval` apart.
pub fn send_from_sources6(
    lab: &Lab,
    host: usize,
    group: Ipv6Addr,
    port: u16,
    sources: &[Ipv6Addr],
    count: u64,
    interval: Duration,
) -> Result<()> {
    let raw = RawPort::open(lab, host)?;
    let mac = lab.host_mac_bytes(host);
    for seq in 0..count {
        for s in sources {
            raw.send(&udp6_frame(mac, *s, group, port, seq))?;
        }
        std::thread::sleep(interval);
    }
    Ok(())
}

type Counts = Arc<Mutex<BTreeMap<Ipv6Addr, u64>>>;

/// UDP datagrams to one group:port arriving at a host's eth0 (not those it
/// sends), counted per IPv6 source. Stopped on drop.
pub struct SourceCounter6 {
    counts: Counts,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SourceCounter6 {
    /// Starts counting on host `host`; the socket is bound on return.
    pub fn start(lab: &Lab, host: usize, group: Ipv6Addr, port: u16) -> Result<SourceCounter6> {
        let fd = in_host_netns(lab, host, || packet_socket(ETH_P_IPV6))?;
        let timeout = libc::timeval {
            tv_sec: 0,
            tv_usec: 50_000,
        };
        // SAFETY: a timeval of the size passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const timeout).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if rc != 0 {
            bail!("SO_RCVTIMEO: {}", std::io::Error::last_os_error());
        }
        let counts: Counts = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (counts.clone(), stop.clone());
        let thread = std::thread::spawn(move || count_loop(&fd, group, port, &c, &s));
        Ok(SourceCounter6 {
            counts,
            stop,
            thread: Some(thread),
        })
    }

    /// Datagrams counted so far, per source.
    pub fn counts(&self) -> BTreeMap<Ipv6Addr, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Datagrams counted from `source` so far.
    pub fn count(&self, source: Ipv6Addr) -> u64 {
        self.counts().get(&source).copied().unwrap_or(0)
    }
}

impl Drop for SourceCounter6 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn count_loop(fd: &OwnedFd, group: Ipv6Addr, port: u16, counts: &Counts, stop: &AtomicBool) {
    let mut buf = vec![0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: buf and from are valid for the sizes passed.
        let n = unsafe {
            libc::recvfrom(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                0,
                (&raw mut from).cast(),
                &mut len,
            )
        };
        if n <= 0 || from.sll_pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        if let Some(src) = udp6_source(&buf[..n as usize], group, port) {
            *counts
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(src)
                .or_default() += 1;
        }
    }
}

/// The source of a frame that is a UDP datagram (no extension headers) to
/// `group`:`port`.
fn udp6_source(f: &[u8], group: Ipv6Addr, port: u16) -> Option<Ipv6Addr> {
    let ip = f.get(14..54)?;
    let udp = f.get(54..62)?;
    let dst: [u8; 16] = ip[24..40].try_into().ok()?;
    let ok = f[12..14] == ETH_P_IPV6.to_be_bytes()
        && ip[6] == NEXT_UDP
        && Ipv6Addr::from(dst) == group
        && udp[2..4] == port.to_be_bytes();
    let src: [u8; 16] = ip[8..24].try_into().ok()?;
    ok.then(|| Ipv6Addr::from(src))
}

/// Datagrams from chosen IPv6 sources to one group, checked per receiver
/// (the IPv6 counterpart of [`crate::Stream`]).
#[derive(Debug, Clone, Copy)]
pub struct Stream6<'a> {
    pub lab: &'a Lab,
    /// The sending host.
    pub from: usize,
    pub group: Ipv6Addr,
    pub port: u16,
    /// Datagrams per source.
    pub n: u64,
}

/// How long a check listens on for copies that must not arrive.
const DELIVERY_GRACE: Duration = Duration::from_millis(300);

impl CountsBySource for SourceCounter6 {
    fn counts_by_source(&self) -> BTreeMap<IpAddr, u64> {
        self.counts()
            .into_iter()
            .map(|(s, n)| (IpAddr::V6(s), n))
            .collect()
    }
}

impl Stream6<'_> {
    /// Sends `n` datagrams from each of `sources`, then checks that each
    /// receiver `(name, counter, wanted)` got exactly `n` from each wanted
    /// source and none from the others. Panics naming every difference.
    pub fn check(
        &self,
        what: &str,
        sources: &[Ipv6Addr],
        receivers: &[(&str, &SourceCounter6, &[Ipv6Addr])],
    ) {
        let send = || {
            send_from_sources6(
                self.lab,
                self.from,
                self.group,
                self.port,
                sources,
                self.n,
                Duration::from_millis(1),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The ICMPv6 part of bridge_mld.sh's MZPKT_IS_INC (IS_IN ff02::cc
    /// {2001:db8:1::1, ::2, ::3}, from fe80::fc54:ff:fe04:5eba to ff02::1),
    /// checksum 0x8ed9 included.
    #[test]
    fn mldv2_report_matches_the_kernel_selftest_vector() {
        let s = |n| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, n);
        let g = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xcc);
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xfc54, 0xff, 0xfe04, 0x5eba);
        let mut got = mldv2_report(&[(1, g, &[s(1), s(2), s(3)])]);
        let ck = ipv6_checksum(src, ALL_NODES, NEXT_ICMPV6, &got);
        got[2..4].copy_from_slice(&ck.to_be_bytes());
        let hex: String = got.iter().map(|b| format!("{b:02x}")).collect();
        let want = "8f008ed90000000101000003ff0200000000000000000000000000cc".to_string()
            + "20010db8000100000000000000000001"
            + "20010db8000100000000000000000002"
            + "20010db8000100000000000000000003";
        assert_eq!(hex, want);
    }

    #[test]
    fn udp6_frame_is_counted_by_its_source() {
        let g = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0xcc);
        let s = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
        let f = udp6_frame([2, 0, 0, 0, 0, 2], s, g, 4096, 3);
        assert_eq!(udp6_source(&f, g, 4096), Some(s));
        assert_eq!(udp6_source(&f, g, 4097), None);
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0, 0xcc]);
    }
}
