//! Raw frames through an AF_PACKET socket: datagrams from any source
//! address (`spoof`), IGMP messages whose bytes the caller gives (`igmp`),
//! and a sniffer that counts datagrams per source as they arrive on an
//! interface (`sniff`), below the kernel's own source filtering.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::{Sock, ifindex, inet_checksum, os_err};

const ETH_P_IP: u16 = 0x0800;

pub fn parse_hex(s: &str) -> Result<Vec<u8>> {
    let digits: String = s.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    if !digits.len().is_multiple_of(2) {
        bail!("odd number of hex digits");
    }
    (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|e| anyhow!("{e}")))
        .collect()
}

pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bytes = parse_hex(s)?;
    bytes
        .try_into()
        .map_err(|_| anyhow!("a MAC address has 6 bytes"))
}

fn iface_mac(iface: &str) -> Result<[u8; 6]> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
        .with_context(|| format!("MAC address of {iface}"))?;
    parse_mac(text.trim())
}

/// The Ethernet address IPv4 multicast `g` maps to (RFC 1112 §6.4).
fn mcast_mac(g: Ipv4Addr) -> [u8; 6] {
    let o = g.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// An IPv4 packet (DF, no fragment) with `options` and `payload`, checksummed.
fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    proto: u8,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let hl = 20 + options.len();
    let total = (hl + payload.len()) as u16;
    let mut ip = vec![0x40 | (hl / 4) as u8, 0xc0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, ttl, proto, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(options);
    let ck = inet_checksum(&ip);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

fn ether(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ETH_P_IP.to_be_bytes());
    f.extend_from_slice(ip);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An AF_PACKET socket bound to one interface.
struct Packet {
    sock: Sock,
    addr: libc::sockaddr_ll,
}

impl Packet {
    fn open(iface: &str, protocol: u16) -> Result<Packet> {
        let idx = ifindex(iface)?;
        let proto = protocol.to_be() as i32;
        // SAFETY: plain socket(2) call.
        let fd =
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
        if fd < 0 {
            return Err(os_err("AF_PACKET socket"));
        }
        let sock = Sock(fd);
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol.to_be();
        addr.sll_ifindex = idx;
        addr.sll_halen = 6;
        Ok(Packet { sock, addr })
    }

    fn bind(&self) -> Result<()> {
        // SAFETY: addr is a valid sockaddr_ll and we pass its size.
        let rc = unsafe {
            libc::bind(
                self.sock.0,
                &self.addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err("bind AF_PACKET"));
        }
        Ok(())
    }

    /// Sends one frame; a full transmit queue is waited for, never dropped.
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        loop {
            // SAFETY: frame and addr are live and sized as passed.
            let n = unsafe {
                libc::sendto(
                    self.sock.0,
                    frame.as_ptr() as *const libc::c_void,
                    frame.len(),
                    0,
                    &self.addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            if std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOBUFS) {
                return Err(os_err("sendto AF_PACKET"));
            }
            std::thread::yield_now();
        }
    }
}

/// `spoof`: `count` UDP datagrams to each group:port from each source in
/// turn (s1 #0, s2 #0, s1 #1, ...), `interval` apart, payload
/// `MCT1 tag=SOURCE seq=N`, TTL 4, UDP checksum 0 (none, RFC 768).
pub fn spoof(
    iface: &str,
    groups: &[Ipv4Addr],
    port: u16,
    srcs: &[Ipv4Addr],
    count: u64,
    interval: Duration,
) -> Result<()> {
    let mac = iface_mac(iface)?;
    let mut p = Packet::open(iface, ETH_P_IP)?;
    for seq in 0..count {
        for &g in groups {
            for &s in srcs {
                let payload = format!("MCT1 tag={s} seq={seq}");
                let mut udp = 4000u16.to_be_bytes().to_vec();
                udp.extend_from_slice(&port.to_be_bytes());
                udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                udp.extend_from_slice(&[0, 0]);
                udp.extend_from_slice(payload.as_bytes());
                p.send(&ether(mcast_mac(g), mac, &ipv4(s, g, 4, 17, &[], &udp)))?;
            }
        }
        if !interval.is_zero() && seq + 1 < count {
            std::thread::sleep(interval);
        }
    }
    Ok(())
}

/// What `igmp` sends.
pub struct IgmpOpts<'a> {
    pub iface: &'a str,
    pub dst: Ipv4Addr,
    pub src: Ipv4Addr,
    pub mac: Option<[u8; 6]>,
    pub ttl: u32,
    pub router_alert: bool,
    /// The IGMP message, checksum included, sent as given.
    pub message: &'a [u8],
}

/// `igmp`: one IGMP message in an IPv4 packet (protocol 2, to `dst` and
/// its MAC), with the Router Alert option unless told otherwise.
pub fn igmp(o: &IgmpOpts<'_>) -> Result<()> {
    let mac = match o.mac {
        Some(m) => m,
        None => iface_mac(o.iface)?,
    };
    let ra: &[u8] = if o.router_alert {
        &[0x94, 0x04, 0, 0]
    } else {
        &[]
    };
    let ttl = u8::try_from(o.ttl).map_err(|_| anyhow!("--ttl {}: at most 255", o.ttl))?;
    let ip = ipv4(o.src, o.dst, ttl, 2, ra, o.message);
    let mut p = Packet::open(o.iface, ETH_P_IP)?;
    p.send(&ether(mcast_mac(o.dst), mac, &ip))
}

/// Source of a UDP datagram to one of `groups`:`port` in an IPv4 packet.
fn datagram_source(pkt: &[u8], groups: &[Ipv4Addr], port: u16) -> Option<Ipv4Addr> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 || pkt[9] != 17 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0x0f) * 4;
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    let udp = pkt.get(ihl..ihl + 8)?;
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    (groups.contains(&dst) && dport == port)
        .then(|| Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]))
}

fn write_counts(out: &str, counts: &BTreeMap<String, u64>) -> Result<()> {
    let tmp = format!("{out}.tmp");
    std::fs::write(&tmp, serde_json::to_string(counts)?).with_context(|| format!("write {tmp}"))?;
    std::fs::rename(&tmp, out).with_context(|| format!("rename {tmp} -> {out}"))
}

/// `sniff`: counts the datagrams to `groups`:`port` arriving on `iface`
/// (not those it sends) per IPv4 source, and keeps `out` holding
/// `{"SOURCE": N, ...}`, rewritten (atomically) within 20 ms of a change.
/// `out` exists once the socket is bound. Runs until `stop`.
pub fn sniff(
    iface: &str,
    groups: &[Ipv4Addr],
    port: u16,
    out: &str,
    stop: &AtomicBool,
) -> Result<()> {
    let p = Packet::open(iface, ETH_P_IP)?;
    p.bind()?;
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 20_000,
    };
    p.sock
        .setopt(libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv, "SO_RCVTIMEO")?;
    let rcvbuf: libc::c_int = 4 << 20;
    p.sock
        .setopt(libc::SOL_SOCKET, libc::SO_RCVBUF, &rcvbuf, "SO_RCVBUF")?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    write_counts(out, &counts)?;
    let (mut dirty, mut written) = (false, Instant::now());
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid start.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: buf and from are live and their sizes are passed.
        let n = unsafe {
            libc::recvfrom(
                p.sock.0,
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
                0,
                &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                &mut len,
            )
        };
        if n > 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
            // SOCK_RAW hands over the Ethernet header.
            if let Some(s) = buf
                .get(14..n as usize)
                .and_then(|ip| datagram_source(ip, groups, port))
            {
                *counts.entry(s.to_string()).or_default() += 1;
                dirty = true;
            }
        } else if n < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
                return Err(anyhow!("recvfrom: {e}"));
            }
        }
        if dirty && written.elapsed() >= Duration::from_millis(20) {
            write_counts(out, &counts)?;
            (dirty, written) = (false, Instant::now());
        }
    }
    write_counts(out, &counts)
}
