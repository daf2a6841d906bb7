//! Whole frames: Ethernet [+ 802.1Q] + IPv4 + IGMP/PIM, or + IPv6 +
//! extension headers + ICMPv6/MLD.

use super::{WireError, ethernet, igmp, ipv4, ipv6, mld};
use crate::port::Mac;
use core::net::{Ipv4Addr, Ipv6Addr};

/// The layers of a received IPv4 frame the engine looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub eth: ethernet::Repr,
    pub ip: ipv4::Repr,
    /// The IP payload, trimmed to the IPv4 total length.
    pub payload: &'a [u8],
}

/// The layers of a received IPv6 frame the engine looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame6<'a> {
    pub eth: ethernet::Repr,
    pub ip: ipv6::Repr,
    /// The upper-layer payload after the extension headers, trimmed to
    /// the IPv6 payload length.
    pub payload: &'a [u8],
}

/// A frame of either family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    Ipv4(Frame<'a>),
    Ipv6(Frame6<'a>),
}

/// Why a frame is not handed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not IP of the family asked for (or not a whole Ethernet header):
    /// not ours, not an error.
    NotIpv4,
    Malformed(WireError),
}

impl From<WireError> for FrameError {
    fn from(e: WireError) -> Self {
        FrameError::Malformed(e)
    }
}

/// Parse Ethernet, an optional single 802.1Q tag, and a valid IPv4 header.
pub fn parse(frame: &[u8]) -> Result<Frame<'_>, FrameError> {
    match parse_any(frame)? {
        Parsed::Ipv4(f) => Ok(f),
        Parsed::Ipv6(_) => Err(FrameError::NotIpv4),
    }
}

/// Parse Ethernet, an optional 802.1Q tag, and a valid IPv6 header with
/// its extension headers.
pub fn parse_ipv6(frame: &[u8]) -> Result<Frame6<'_>, FrameError> {
    match parse_any(frame)? {
        Parsed::Ipv6(f) => Ok(f),
        Parsed::Ipv4(_) => Err(FrameError::NotIpv4),
    }
}

/// Parse an IPv4 or an IPv6 frame; anything else is `NotIpv4`.
pub fn parse_any(frame: &[u8]) -> Result<Parsed<'_>, FrameError> {
    let (eth, rest) = ethernet::Repr::parse(frame).ok_or(FrameError::NotIpv4)?;
    match eth.ethertype {
        ethernet::ETHERTYPE_IPV4 => {
            let (ip, payload) = ipv4::Repr::parse(rest)?;
            Ok(Parsed::Ipv4(Frame { eth, ip, payload }))
        }
        ethernet::ETHERTYPE_IPV6 => {
            let (ip, payload) = ipv6::Repr::parse(rest)?;
            Ok(Parsed::Ipv6(Frame6 { eth, ip, payload }))
        }
        _ => Err(FrameError::NotIpv4),
    }
}

/// Build a complete IGMP frame as this switch sends it: to the multicast MAC
/// of `dst`, IPv4 TTL 1 with Router Alert (RFC 2236 §2, RFC 3376 §4: "sent
/// with IP TTL 1 ... and the Router Alert option"), tagged when `vlan != 0`,
/// padded to the Ethernet minimum.
pub fn build_igmp(
    src_mac: Mac,
    vlan: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    igmp: &igmp::Repr,
) -> Vec<u8> {
    let eth = ethernet::Repr {
        dst: ethernet::multicast_mac(dst),
        src: src_mac,
        vlan,
        ethertype: ethernet::ETHERTYPE_IPV4,
    };
    let ip = ipv4::Repr {
        src,
        dst,
        protocol: ipv4::PROTO_IGMP,
        ttl: 1,
        ident,
        router_alert: true,
        payload_len: igmp.buffer_len(),
    };
    let len = eth.buffer_len() + ip.buffer_len();
    let mut buf = Vec::with_capacity(len.max(ethernet::MIN_FRAME_LEN));
    eth.emit(&mut buf);
    ip.emit(&mut buf);
    igmp.emit(&mut buf);
    if buf.len() < ethernet::MIN_FRAME_LEN {
        buf.resize(ethernet::MIN_FRAME_LEN, 0);
    }
    buf
}

/// Build a complete MLD frame as this switch sends it: to the multicast
/// MAC of `dst`, hop limit 1 and a Hop-by-Hop Router Alert (RFC 2710 §3,
/// RFC 3810 §5: "sent with a link-local IPv6 Source Address, an IPv6 Hop
/// Limit of 1, and an IPv6 Router Alert option"), tagged when `vlan != 0`.
pub fn build_mld(
    src_mac: Mac,
    vlan: u16,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    msg: &mld::Repr,
) -> Vec<u8> {
    let eth = ethernet::Repr {
        dst: ethernet::multicast_mac_v6(dst),
        src: src_mac,
        vlan,
        ethertype: ethernet::ETHERTYPE_IPV6,
    };
    let ip = ipv6::Repr {
        src,
        dst,
        next_header: ipv6::NEXT_ICMPV6,
        hop_limit: 1,
        router_alert: Some(ipv6::ROUTER_ALERT_MLD),
        payload_len: msg.buffer_len(),
    };
    let mut buf = Vec::with_capacity(eth.buffer_len() + ip.buffer_len());
    eth.emit(&mut buf);
    ip.emit(&mut buf);
    msg.emit(src, dst, &mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_then_parse() {
        let q = igmp::Repr::Query {
            max_resp_code: 100,
            group: Ipv4Addr::UNSPECIFIED,
            v3: None,
        };
        let f = build_igmp(
            [2, 0, 0, 0, 0, 1],
            7,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(224, 0, 0, 1),
            0,
            &q,
        );
        assert_eq!(f.len(), 60);
        let p = parse(&f).unwrap();
        assert_eq!(p.eth.vlan, 7);
        assert_eq!(p.eth.dst, [1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(p.ip.ttl, 1);
        assert!(p.ip.router_alert);
        assert_eq!(p.payload.len(), 8);
        let pk = igmp::Packet::new_checked(p.payload).unwrap();
        assert!(pk.verify_checksum());
        assert_eq!(igmp::Repr::parse(&pk).unwrap(), q);
        assert_eq!(parse(&[0u8; 20]), Err(FrameError::NotIpv4));
        assert!(matches!(parse_any(&f), Ok(Parsed::Ipv4(_))));
        assert_eq!(parse_ipv6(&f), Err(FrameError::NotIpv4));
    }

    #[test]
    fn build_then_parse_mld() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let q = mld::Repr::Query {
            max_resp_code: 10_000,
            address: Ipv6Addr::UNSPECIFIED,
            v2: None,
        };
        let f = build_mld([2, 0, 0, 0, 0, 1], 5, src, dst, &q);
        assert_eq!(f.len(), 18 + 40 + 8 + 24);
        let p = parse_ipv6(&f).unwrap();
        assert_eq!(p.eth.vlan, 5);
        assert_eq!(p.eth.dst, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(
            (p.ip.hop_limit, p.ip.router_alert),
            (1, Some(ipv6::ROUTER_ALERT_MLD))
        );
        assert_eq!(p.ip.next_header, ipv6::NEXT_ICMPV6);
        let pk = mld::Packet::new_checked(p.payload).unwrap();
        assert!(pk.verify_checksum(src, dst));
        assert_eq!(mld::Repr::parse(&pk).unwrap(), q);
        assert_eq!(parse(&f), Err(FrameError::NotIpv4));
    }
}
