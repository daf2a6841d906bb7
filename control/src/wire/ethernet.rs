//! Ethernet II with an optional 802.1Q tag, and the IPv4 and IPv6
//! multicast MAC mappings.

use crate::port::Mac;
use core::net::{Ipv4Addr, Ipv6Addr};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// Untagged header length.
pub const HEADER_LEN: usize = 14;
/// 802.1Q tag length.
pub const VLAN_TAG_LEN: usize = 4;
/// Minimum Ethernet frame length without FCS; shorter frames are padded.
pub const MIN_FRAME_LEN: usize = 60;

/// RFC 1112 §6.4: 01:00:5e followed by the low 23 bits of the group address.
pub fn multicast_mac(group: Ipv4Addr) -> Mac {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// RFC 2464 §7: 33:33 followed by the low 32 bits of the IPv6 group.
pub fn multicast_mac_v6(group: Ipv6Addr) -> Mac {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// A parsed Ethernet header: addresses, VLAN (0 = untagged) and the inner
/// ethertype, plus the offset of the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub dst: Mac,
    pub src: Mac,
    pub vlan: u16,
    pub ethertype: u16,
}

impl Repr {
    /// Parse with etherparse; returns the header and the payload.
    pub fn parse(frame: &[u8]) -> Option<(Repr, &[u8])> {
        let eth = etherparse::Ethernet2HeaderSlice::from_slice(frame).ok()?;
        let rest = frame.get(HEADER_LEN..)?;
        let et = eth.ether_type().0;
        if et == ETHERTYPE_VLAN {
            let tag = etherparse::SingleVlanHeaderSlice::from_slice(rest).ok()?;
            let payload = rest.get(VLAN_TAG_LEN..)?;
            let repr = Repr {
                dst: eth.destination(),
                src: eth.source(),
                vlan: tag.vlan_identifier().value(),
                ethertype: tag.ether_type().0,
            };
            Some((repr, payload))
        } else {
            let repr = Repr {
                dst: eth.destination(),
                src: eth.source(),
                vlan: 0,
                ethertype: et,
            };
            Some((repr, rest))
        }
    }

    pub const fn buffer_len(&self) -> usize {
        if self.vlan != 0 {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Append the header to `buf`.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.dst);
        buf.extend_from_slice(&self.src);
        if self.vlan != 0 {
            buf.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            buf.extend_from_slice(&(self.vlan & 0x0fff).to_be_bytes());
        }
        buf.extend_from_slice(&self.ethertype.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_mapping() {
        assert_eq!(
            multicast_mac(Ipv4Addr::new(224, 0, 0, 1)),
            [1, 0, 0x5e, 0, 0, 1]
        );
        assert_eq!(
            multicast_mac(Ipv4Addr::new(239, 129, 2, 3)),
            [1, 0, 0x5e, 1, 2, 3]
        );
        assert_eq!(
            multicast_mac(Ipv4Addr::new(224, 255, 255, 255)),
            [1, 0, 0x5e, 0x7f, 0xff, 0xff]
        );
    }

    #[test]
    fn mac_mapping_v6() {
        let g: Ipv6Addr = "ff02::1:ff00:abcd".parse().unwrap();
        assert_eq!(multicast_mac_v6(g), [0x33, 0x33, 0xff, 0, 0xab, 0xcd]);
    }

    #[test]
    fn emit_parse_tagged() {
        let r = Repr {
            dst: [1, 0, 0x5e, 0, 0, 1],
            src: [2, 0, 0, 0, 0, 1],
            vlan: 100,
            ethertype: ETHERTYPE_IPV4,
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        assert_eq!(b.len(), r.buffer_len());
        b.push(0xaa);
        let (p, rest) = Repr::parse(&b).unwrap();
        assert_eq!(p, r);
        assert_eq!(rest, &[0xaa]);
        let u = Repr { vlan: 0, ..r };
        let mut b = Vec::new();
        u.emit(&mut b);
        assert_eq!(Repr::parse(&b).unwrap().0, u);
        assert!(Repr::parse(&b[..13]).is_none());
    }
}
