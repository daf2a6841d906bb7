//! Raw frames through an AF_PACKET socket: datagrams from any source
//! address, IPv4 or IPv6 (`spoof`), IGMP messages whose bytes the caller
//! gives (`igmp`), IGMPv2 report floods (`reports`), and a sniffer that
//! counts datagrams per source as they arrive on an interface (`sniff`),
//! below the kernel's own source filtering.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

use super::net::{checksum6, ifindex, inet_checksum, one_family, recv, setsockopt};
use super::{IgmpArgs, ReportsArgs, SniffArgs, SpoofArgs};

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
/// linux/if_packet.h: do not hand the socket what its interface sends.
const PACKET_IGNORE_OUTGOING: i32 = 23;

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

/// The Ethernet address multicast `g` maps to (RFC 1112 §6.4, RFC 2464 §7).
fn mcast_mac(g: IpAddr) -> [u8; 6] {
    match g {
        IpAddr::V4(g) => {
            let o = g.octets();
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
        }
        IpAddr::V6(g) => {
            let o = g.octets();
            [0x33, 0x33, o[12], o[13], o[14], o[15]]
        }
    }
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
    let ck = inet_checksum(&[&ip]);
    ip[10..12].copy_from_slice(&ck.to_be_bytes());
    ip.extend_from_slice(payload);
    ip
}

/// An IPv6 packet without extension headers.
fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8, next: u8, payload: &[u8]) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0];
    ip.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    ip.extend_from_slice(&[next, hop_limit]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    ip.extend_from_slice(payload);
    ip
}

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An AF_PACKET socket bound to one interface and EtherType.
struct Packet(Socket);

impl Packet {
    fn open(iface: &str, protocol: u16) -> Result<Packet> {
        let idx = ifindex(iface)?;
        let proto = i32::from(protocol.to_be());
        let s = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(proto)))
            .context("AF_PACKET socket")?;
        let mut storage = SockAddrStorage::zeroed();
        // SAFETY: a sockaddr_ll fits in the storage (it is what the storage
        // is for) and every field of it is plain data.
        let addr = unsafe {
            let ll = storage.view_as::<libc::sockaddr_ll>();
            ll.sll_family = libc::AF_PACKET as u16;
            ll.sll_protocol = protocol.to_be();
            ll.sll_ifindex = idx as i32;
            ll.sll_halen = 6;
            // SAFETY: family and length match the sockaddr_ll just written.
            SockAddr::new(
                storage,
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        // Bound, so that send() goes out of `iface` and recv() sees only it.
        s.bind(&addr)
            .with_context(|| format!("bind AF_PACKET to {iface}"))?;
        Ok(Packet(s))
    }

    /// Sends one frame; a full transmit queue is waited for, never dropped.
    fn send(&self, frame: &[u8]) -> Result<()> {
        self.send_counting(frame).map(drop)
    }

    /// Sends `frame`, again while the kernel refuses it for want of room
    /// (ENOBUFS); returns how many times it was refused.
    fn send_counting(&self, frame: &[u8]) -> Result<u64> {
        let mut refused = 0;
        loop {
            match self.0.send(frame) {
                Ok(_) => return Ok(refused),
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    refused += 1;
                    std::thread::yield_now()
                }
                Err(e) => bail!("send AF_PACKET: {e}"),
            }
        }
    }
}

/// One UDP datagram from `s` to `g`:`port` as an Ethernet frame: TTL (hop
/// limit) 4; IPv4 without UDP checksum (RFC 768), IPv6 with it (RFC 8200
/// §8.1: mandatory, receivers drop a zero one).
fn udp_frame(mac: [u8; 6], s: IpAddr, g: IpAddr, port: u16, payload: &[u8]) -> Result<Vec<u8>> {
    let mut udp = 4000u16.to_be_bytes().to_vec();
    udp.extend_from_slice(&port.to_be_bytes());
    udp.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    Ok(match (s, g) {
        (IpAddr::V4(s), IpAddr::V4(g)) => ether(
            mcast_mac(g.into()),
            mac,
            ETH_P_IP,
            &ipv4(s, g, 4, 17, &[], &udp),
        ),
        (IpAddr::V6(s), IpAddr::V6(g)) => {
            let ck = match checksum6(s, g, 17, &udp) {
                0 => 0xffff,
                c => c,
            };
            udp[6..8].copy_from_slice(&ck.to_be_bytes());
            ether(
                mcast_mac(g.into()),
                mac,
                ETH_P_IPV6,
                &ipv6(s, g, 4, 17, &udp),
            )
        }
        _ => bail!("source {s} and group {g} are of different families"),
    })
}

/// `spoof`: `count` UDP datagrams to each group:port from each source in
/// turn (s1 #0, s2 #0, s1 #1, ...), `interval` apart, payload
/// `MCT1 tag=SOURCE seq=N`.
pub fn spoof(a: &SpoofArgs) -> Result<()> {
    let v4 = one_family("--group", &a.group)?;
    if one_family("--src", &a.src)? != v4 {
        bail!("--src and --group are of different families");
    }
    let mac = iface_mac(&a.iface)?;
    let p = Packet::open(&a.iface, if v4 { ETH_P_IP } else { ETH_P_IPV6 })?;
    for seq in 0..a.count {
        for &g in &a.group {
            for &s in &a.src {
                let payload = format!("MCT1 tag={s} seq={seq}");
                p.send(&udp_frame(mac, s, g, a.port, payload.as_bytes())?)?;
            }
        }
        if a.interval_ms > 0 && seq + 1 < a.count {
            std::thread::sleep(Duration::from_millis(a.interval_ms));
        }
    }
    Ok(())
}

/// `igmp`: one IGMP message in an IPv4 packet (protocol 2, to `dst` and
/// its MAC), with the Router Alert option unless told otherwise.
pub fn igmp(a: &IgmpArgs) -> Result<()> {
    let mac = match &a.mac {
        Some(m) => parse_mac(m)?,
        None => iface_mac(&a.iface)?,
    };
    let message = parse_hex(&a.hex).context("--hex")?;
    let ra: &[u8] = if a.no_router_alert {
        &[]
    } else {
        &[0x94, 0x04, 0, 0]
    };
    let mut ip = ipv4(a.src, a.dst, a.ttl, 2, ra, &message);
    if a.bad_ip_checksum {
        ip[10] ^= 0xff;
        ip[11] ^= 0xff;
    }
    let p = Packet::open(&a.iface, ETH_P_IP)?;
    p.send(&ether(mcast_mac(a.dst.into()), mac, ETH_P_IP, &ip))
}

/// One IGMPv2 report for `group` from `src` (TTL 1, Router Alert).
fn v2_report(mac: [u8; 6], src: Ipv4Addr, group: Ipv4Addr) -> Vec<u8> {
    let mut igmp = vec![0x16, 0, 0, 0];
    igmp.extend_from_slice(&group.octets());
    let ck = inet_checksum(&[&igmp]);
    igmp[2..4].copy_from_slice(&ck.to_be_bytes());
    let ip = ipv4(src, group, 1, 2, &[0x94, 0x04, 0, 0], &igmp);
    ether(mcast_mac(group.into()), mac, ETH_P_IP, &ip)
}

/// `reports`: `count` IGMPv2 reports for the groups first, first+1, ...
/// at a steady rate, paced on the clock.
pub fn reports(a: &ReportsArgs) -> Result<()> {
    if a.rate.is_nan() || a.rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let mac = iface_mac(&a.iface)?;
    let p = Packet::open(&a.iface, ETH_P_IP)?;
    let first = u32::from(a.group);
    let period = Duration::from_secs_f64(1.0 / a.rate);
    let t0 = Instant::now();
    let mut refused = 0u64;
    for i in 0..a.count {
        let due = t0 + period.mul_f64(i as f64);
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if due - now > Duration::from_micros(300) {
                std::thread::sleep(due - now - Duration::from_micros(200));
            } else {
                std::hint::spin_loop();
            }
        }
        let step = if a.same_group { 0 } else { i as u32 };
        let group = Ipv4Addr::from(first.wrapping_add(step));
        refused += p.send_counting(&v2_report(mac, a.src, group))?;
    }
    let secs = t0.elapsed().as_secs_f64();
    // `refused`: sends the kernel refused (ENOBUFS: the veth's peer ring
    // was full, counted in eth0's tx_dropped) and that were sent again.
    println!(
        "{}",
        serde_json::json!({"sent": a.count, "seconds": secs, "pps": a.count as f64 / secs,
            "refused": refused})
    );
    Ok(())
}

/// Source of a UDP datagram to one of `groups`:`port` in an IPv4 or IPv6
/// packet (IPv6 without extension headers: what `spoof` and the kernel
/// send).
fn datagram_source(pkt: &[u8], groups: &[IpAddr], port: u16) -> Option<IpAddr> {
    let (src, dst, udp): (IpAddr, IpAddr, &[u8]) = match pkt.first()? >> 4 {
        4 if pkt.len() >= 20 && pkt[9] == 17 => {
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let ip4 = |at: usize| Ipv4Addr::new(pkt[at], pkt[at + 1], pkt[at + 2], pkt[at + 3]);
            (ip4(12).into(), ip4(16).into(), pkt.get(ihl..ihl + 8)?)
        }
        6 if pkt.len() >= 48 && pkt[6] == 17 => {
            let ip6 = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&pkt[at..at + 16]).unwrap());
            (ip6(8).into(), ip6(24).into(), &pkt[40..48])
        }
        _ => return None,
    };
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    (groups.contains(&dst) && dport == port).then_some(src)
}

fn write_counts(out: &str, counts: &BTreeMap<String, u64>) -> Result<()> {
    let tmp = format!("{out}.tmp");
    std::fs::write(&tmp, serde_json::to_string(counts)?).with_context(|| format!("write {tmp}"))?;
    std::fs::rename(&tmp, out).with_context(|| format!("rename {tmp} -> {out}"))
}

/// `sniff`: counts the datagrams to `groups`:`port` arriving on `iface`
/// (not those it sends) per source, and keeps `out` holding
/// `{"SOURCE": N, ...}`, rewritten (atomically) within 20 ms of a change.
/// `out` exists once the socket is bound. Runs until `stop`.
pub fn sniff(a: &SniffArgs, stop: &AtomicBool) -> Result<()> {
    let v4 = one_family("--group", &a.group)?;
    let p = Packet::open(&a.iface, if v4 { ETH_P_IP } else { ETH_P_IPV6 })?;
    let one: libc::c_int = 1;
    setsockopt(
        &p.0,
        libc::SOL_PACKET,
        PACKET_IGNORE_OUTGOING,
        &one,
        "PACKET_IGNORE_OUTGOING",
    )?;
    p.0.set_read_timeout(Some(Duration::from_millis(20)))?;
    p.0.set_recv_buffer_size(4 << 20)?;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    write_counts(&a.out, &counts)?;
    let (mut dirty, mut written) = (false, Instant::now());
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        match recv(&p.0, &mut buf) {
            // SOCK_RAW hands over the Ethernet header.
            Ok(n) => {
                if let Some(s) = buf
                    .get(14..n)
                    .and_then(|ip| datagram_source(ip, &a.group, a.port))
                {
                    *counts.entry(s.to_string()).or_default() += 1;
                    dirty = true;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => bail!("recv: {e}"),
        }
        if dirty && written.elapsed() >= Duration::from_millis(20) {
            write_counts(&a.out, &counts)?;
            (dirty, written) = (false, Instant::now());
        }
    }
    write_counts(&a.out, &counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_datagram_carries_a_valid_udp_checksum_and_is_counted() {
        let (s, g): (Ipv6Addr, Ipv6Addr) =
            ("fd77::101".parse().unwrap(), "ff0e::1234".parse().unwrap());
        let f = udp_frame([2, 0, 0, 0, 0, 1], s.into(), g.into(), 5000, b"MCT1 tag=x").unwrap();
        assert_eq!(&f[..6], &[0x33, 0x33, 0, 0, 0x12, 0x34]);
        let ip = &f[14..];
        let udp = &ip[40..];
        assert_eq!(
            checksum6(s, g, 17, udp),
            0,
            "checksum over the pseudo-header"
        );
        assert_eq!(datagram_source(ip, &[g.into()], 5000), Some(s.into()));
        assert_eq!(datagram_source(ip, &[g.into()], 5001), None);
    }
}
