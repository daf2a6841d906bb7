//! Whole frames: Ethernet [+ 802.1Q] + IPv4 + IGMP/PIM.

use super::{WireError, ethernet, igmp, ipv4};
use crate::port::Mac;
use core::net::Ipv4Addr;

/// The layers of a received IPv4 frame the engine looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub eth: ethernet::Repr,
    pub ip: ipv4::Repr,
    /// The IP payload, trimmed to the IPv4 total length.
    pub payload: &'a [u8],
}

/// Why a frame is not handed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not IPv4 (or not a whole Ethernet header): not ours, not an error.
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
    let (eth, rest) = ethernet::Repr::parse(frame).ok_or(FrameError::NotIpv4)?;
    if eth.ethertype != ethernet::ETHERTYPE_IPV4 {
        return Err(FrameError::NotIpv4);
    }
    let (ip, payload) = ipv4::Repr::parse(rest)?;
    Ok(Frame { eth, ip, payload })
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
    }
}
