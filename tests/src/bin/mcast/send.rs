//! `send` (UDP datagrams to groups through the kernel stack, either
//! family) and `ping` (ICMP or ICMPv6 echo on a raw socket).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::net::{ifindex, inet_checksum, one_family, parse_scoped, recv, recv_from, setsockopt};
use super::{PingArgs, SendArgs};

/// A UDP socket sending out of `idx` with hop limit `ttl`, multicast
/// loopback as asked.
fn sender(v4: bool, idx: u32, ttl: u32, mcast_loop: bool) -> Result<Socket> {
    if v4 {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        // By index (ip_mreqn): socket2 sets IP_MULTICAST_IF by address only.
        let mreq = libc::ip_mreqn {
            imr_multiaddr: libc::in_addr { s_addr: 0 },
            imr_address: libc::in_addr { s_addr: 0 },
            imr_ifindex: idx as i32,
        };
        setsockopt(
            &s,
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &mreq,
            "IP_MULTICAST_IF",
        )?;
        s.set_multicast_ttl_v4(ttl).context("IP_MULTICAST_TTL")?;
        s.set_multicast_loop_v4(mcast_loop)
            .context("IP_MULTICAST_LOOP")?;
        Ok(s)
    } else {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
        s.set_multicast_if_v6(idx).context("IPV6_MULTICAST_IF")?;
        s.set_multicast_hops_v6(ttl)
            .context("IPV6_MULTICAST_HOPS")?;
        s.set_multicast_loop_v6(mcast_loop)
            .context("IPV6_MULTICAST_LOOP")?;
        Ok(s)
    }
}

pub fn send(a: SendArgs) -> Result<()> {
    let v4 = one_family("--group", &a.group)?;
    let idx = ifindex(&a.iface)?;
    let s = sender(v4, idx, a.ttl.unwrap_or(4), a.mcast_loop)?;
    for &g in &a.group {
        let sa: SockAddr = match g {
            IpAddr::V4(g) => SocketAddr::new(g.into(), a.port).into(),
            IpAddr::V6(g) => SocketAddrV6::new(g, a.port, 0, idx).into(),
        };
        // Paced on the clock (datagram N leaves at start + N × interval), so
        // the rate holds however long each send and sleep take.
        let interval = Duration::from_millis(a.interval_ms);
        let start = Instant::now();
        for seq in 0..a.count {
            let mut payload = format!("MCT1 tag={} seq={seq}", a.tag).into_bytes();
            if payload.len() < a.size {
                payload.resize(a.size, b'.');
            }
            s.send_to(&payload, &sa)
                .with_context(|| format!("sendto {g}:{}", a.port))?;
            if !interval.is_zero() && seq + 1 < a.count {
                let due = start + interval * (seq as u32 + 1);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
            }
        }
    }
    Ok(())
}

/// An echo request (ICMP type 8, or ICMPv6 type 128: the kernel fills the
/// ICMPv6 checksum of a raw socket in itself, RFC 3542 §3.1).
fn echo_request(v4: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut pkt = vec![if v4 { 8 } else { 128 }, 0, 0, 0];
    pkt.extend_from_slice(&id.to_be_bytes());
    pkt.extend_from_slice(&seq.to_be_bytes());
    pkt.extend_from_slice(b"igmpsnoop-lab-ping");
    if v4 {
        let ck = inet_checksum(&[&pkt]);
        pkt[2..4].copy_from_slice(&ck.to_be_bytes());
    }
    pkt
}

/// Whether `pkt` (an IPv4 packet, or an ICMPv6 message: raw IPv6 sockets
/// hand over no IP header) is the echo reply to (`id`, `seq`) from `dst`.
fn is_reply(pkt: &[u8], from: Option<IpAddr>, dst: IpAddr, id: u16, seq: u16) -> bool {
    let (src, icmp, reply) = match dst {
        IpAddr::V4(_) => {
            if pkt.len() < 20 {
                return false;
            }
            let ihl = usize::from(pkt[0] & 0x0f) * 4;
            let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
            (Some(src.into()), &pkt[ihl.min(pkt.len())..], 0)
        }
        IpAddr::V6(_) => (from, pkt, 129),
    };
    src == Some(dst)
        && icmp.len() >= 8
        && icmp[0] == reply
        && icmp[4..6] == id.to_be_bytes()
        && icmp[6..8] == seq.to_be_bytes()
}

pub fn ping(a: PingArgs) -> Result<()> {
    let dst_sa = parse_scoped(&a.dst, &a.iface)?;
    let dst = dst_sa.ip();
    let s = if dst.is_ipv4() {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
    } else {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))
    }
    .context("raw ICMP socket")?;
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    let id = (std::process::id() & 0xffff) as u16;
    let to: SockAddr = dst_sa.into();
    let mut got = 0u64;
    let mut buf = [0u8; 2048];
    for seq in 0..a.count as u16 {
        s.send_to(&echo_request(dst.is_ipv4(), id, seq), &to)
            .with_context(|| format!("sendto {}", a.dst))?;
        let deadline = Instant::now() + Duration::from_millis(a.timeout_ms);
        while Instant::now() < deadline {
            let (n, from) = if dst.is_ipv4() {
                match recv(&s, &mut buf) {
                    Ok(n) => (n, None),
                    Err(_) => continue,
                }
            } else {
                match recv_from(&s, &mut buf) {
                    Ok((n, from)) => (n, from.as_socket().map(|f| f.ip())),
                    Err(_) => continue,
                }
            };
            if is_reply(&buf[..n], from, dst, id, seq) {
                got += 1;
                break;
            }
        }
    }
    println!("{}", serde_json::json!({"sent": a.count, "received": got}));
    if got == 0 {
        bail!("no echo reply from {}", a.dst);
    }
    Ok(())
}
