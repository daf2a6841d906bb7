//! Socket helpers over socket2: what socket2 does not wrap (RFC 3678
//! protocol-independent source filter calls for both families, packet
//! info, reading into plain byte buffers), interface lookup, checksums.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use anyhow::{Result, anyhow, bail};
use socket2::{MaybeUninitSlice, MsgHdrMut, SockAddr, Socket};

pub fn ifindex(name: &str) -> Result<u32> {
    let c = CString::new(name)?;
    // SAFETY: c is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        bail!("interface {name}: {}", std::io::Error::last_os_error());
    }
    Ok(idx)
}

/// Sets an option socket2 has no method for; `val` is passed by its size.
pub fn setsockopt<T>(s: &Socket, level: i32, name: i32, val: &T, what: &str) -> Result<()> {
    // SAFETY: val points to a live T and we pass its exact size; the fd is
    // owned by `s` for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            val as *const T as *const libc::c_void,
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        bail!("{what}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// `a` (any family) in a sockaddr_storage, port 0.
fn storage(a: IpAddr) -> libc::sockaddr_storage {
    let sa = SockAddr::from(SocketAddr::new(a, 0));
    let mut ss = sa.as_storage();
    // SAFETY: SockAddrStorage wraps a sockaddr_storage; viewing it as one is
    // what view_as is for.
    unsafe { *ss.view_as::<libc::sockaddr_storage>() }
}

/// RFC 3678 protocol-independent source filter calls
/// (MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP, MCAST_BLOCK_SOURCE)
/// on an IPv4 or IPv6 socket (socket2 only wraps IPv4 source joins, by
/// interface address rather than index).
pub fn source_op(s: &Socket, opt: i32, group: IpAddr, source: IpAddr, ifindex: u32) -> Result<()> {
    if group.is_ipv4() != source.is_ipv4() {
        bail!("group {group} and source {source} are of different families");
    }
    let req = libc::group_source_req {
        gsr_interface: ifindex,
        gsr_group: storage(group),
        gsr_source: storage(source),
    };
    let what = match opt {
        libc::MCAST_JOIN_SOURCE_GROUP => "MCAST_JOIN_SOURCE_GROUP",
        libc::MCAST_LEAVE_SOURCE_GROUP => "MCAST_LEAVE_SOURCE_GROUP",
        _ => "MCAST_BLOCK_SOURCE",
    };
    let level = if group.is_ipv4() {
        libc::IPPROTO_IP
    } else {
        libc::IPPROTO_IPV6
    };
    setsockopt(s, level, opt, &req, &format!("{what} {group} {source}"))
}

/// `buf` as the uninitialised view socket2's receive calls take.
fn uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: same layout; the kernel (through socket2) only ever writes
    // initialised bytes into it, so `buf` stays initialised.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// recv(2) into a plain buffer.
pub fn recv(s: &Socket, buf: &mut [u8]) -> std::io::Result<usize> {
    s.recv(uninit(buf))
}

/// recvfrom(2) into a plain buffer.
pub fn recv_from(s: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, SockAddr)> {
    s.recv_from(uninit(buf))
}

/// recvmsg(2) with IP_PKTINFO / IPV6_PKTINFO on: the datagram's length and
/// its destination address.
pub fn recv_with_dst(s: &Socket, buf: &mut [u8]) -> std::io::Result<(usize, Option<IpAddr>)> {
    let mut control = [0u8; 256];
    let (n, clen) = {
        let mut bufs = [MaybeUninitSlice::new(uninit(buf))];
        let mut msg = MsgHdrMut::new()
            .with_buffers(&mut bufs)
            .with_control(uninit(&mut control));
        let n = s.recvmsg(&mut msg, 0)?;
        (n, msg.control_len())
    };
    Ok((n, pktinfo_dst(&control[..clen.min(control.len())])))
}

/// The destination address in a control buffer holding IP_PKTINFO
/// (struct in_pktinfo: ifindex, spec_dst, addr) or IPV6_PKTINFO (struct
/// in6_pktinfo: addr, ifindex). Walks the cmsg headers by hand.
fn pktinfo_dst(mut c: &[u8]) -> Option<IpAddr> {
    const ALIGN: usize = std::mem::size_of::<usize>();
    let hdr = std::mem::size_of::<libc::cmsghdr>();
    let word = |b: &[u8], at: usize| i32::from_ne_bytes(b[at..at + 4].try_into().unwrap());
    while c.len() >= hdr {
        let len = usize::from_ne_bytes(c[..ALIGN].try_into().unwrap());
        if len < hdr || len > c.len() {
            return None;
        }
        let (level, kind) = (word(c, ALIGN), word(c, ALIGN + 4));
        let data = &c[hdr..len];
        match (level, kind) {
            (libc::IPPROTO_IP, libc::IP_PKTINFO) if data.len() >= 12 => {
                let o: [u8; 4] = data[8..12].try_into().unwrap();
                return Some(Ipv4Addr::from(o).into());
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) if data.len() >= 16 => {
                let o: [u8; 16] = data[..16].try_into().unwrap();
                return Some(Ipv6Addr::from(o).into());
            }
            _ => {}
        }
        c = &c[len.next_multiple_of(ALIGN).min(c.len())..];
    }
    None
}

/// The family every address shares; errors when they differ or there are none.
pub fn one_family<'a>(what: &str, addrs: impl IntoIterator<Item = &'a IpAddr>) -> Result<bool> {
    let mut v4 = None;
    for a in addrs {
        match v4 {
            None => v4 = Some(a.is_ipv4()),
            Some(f) if f != a.is_ipv4() => bail!("{what}: IPv4 and IPv6 addresses mixed"),
            _ => {}
        }
    }
    v4.ok_or_else(|| anyhow!("{what}: no address"))
}

/// An IPv6 address with an optional `%zone` (interface name or index).
pub fn parse_scoped(s: &str, default_iface: &str) -> Result<SocketAddr> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(SocketAddr::new(a.into(), 0));
    }
    let (addr, zone) = s.split_once('%').unwrap_or((s, ""));
    let a: Ipv6Addr = addr.parse().map_err(|e| anyhow!("{s}: {e}"))?;
    let scope = match zone {
        "" if a.is_unicast_link_local() || a.is_multicast() => ifindex(default_iface)?,
        "" => 0,
        z => z.parse().or_else(|_| ifindex(z))?,
    };
    Ok(SocketAddrV6::new(a, 0, 0, scope).into())
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts`
/// (every part but the last of even length).
pub fn inet_checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    for data in parts {
        sum += data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum::<u32>();
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checksum of an upper-layer message over the IPv6 pseudo-header
/// (RFC 8200 §8.1).
pub fn checksum6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, msg: &[u8]) -> u16 {
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, next_header]);
    inet_checksum(&[&pseudo, msg])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scoped_addresses() {
        assert_eq!(
            parse_scoped("fd77::2", "lo").unwrap(),
            "[fd77::2]:0".parse::<SocketAddr>().unwrap()
        );
        let SocketAddr::V6(a) = parse_scoped("fe80::1%1", "lo").unwrap() else {
            panic!("not v6")
        };
        assert_eq!(a.scope_id(), 1);
        assert!(parse_scoped("10.0.0.1", "lo").unwrap().is_ipv4());
        assert!(parse_scoped("fe80::zz", "lo").is_err());
    }

    #[test]
    fn finds_the_destination_in_ipv6_pktinfo() {
        let hdr = std::mem::size_of::<libc::cmsghdr>();
        let mut c = vec![0u8; hdr + 20];
        c[..8].copy_from_slice(&((hdr + 20) as usize).to_ne_bytes());
        c[8..12].copy_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
        c[12..16].copy_from_slice(&libc::IPV6_PKTINFO.to_ne_bytes());
        let g: Ipv6Addr = "ff0e::1234".parse().unwrap();
        c[hdr..hdr + 16].copy_from_slice(&g.octets());
        assert_eq!(pktinfo_dst(&c), Some(g.into()));
        assert_eq!(pktinfo_dst(&c[..hdr - 1]), None);
    }
}
