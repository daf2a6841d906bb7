//! The ICMPv6 checksum (RFC 4443 §2.3): over an IPv6 pseudo-header
//! (RFC 8200 §8.1: source, destination, upper-layer length, next header
//! 58) and the whole message.

use super::ipv6::NEXT_ICMPV6;
use core::net::Ipv6Addr;

/// The ones'-complement sum of the pseudo-header and `msg` (checksum
/// field included), folded, not inverted.
fn sum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut pseudo = [0u8; 40];
    pseudo[..16].copy_from_slice(&src.octets());
    pseudo[16..32].copy_from_slice(&dst.octets());
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    pseudo[32..36].copy_from_slice(&len.to_be_bytes());
    pseudo[39] = NEXT_ICMPV6;
    let a = u32::from(super::ones_sum(&pseudo));
    let b = u32::from(super::ones_sum(msg));
    let mut s = a + b;
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    // The loop above leaves s <= 0xffff.
    s as u16
}

/// True when `msg`, checksum included, sums with its pseudo-header to
/// all ones.
pub fn checksum_ok(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> bool {
    sum(src, dst, msg) == 0xffff
}

/// Compute and store the checksum (bytes 2..4) of `msg`.
pub fn fill_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &mut [u8]) {
    if msg.len() < 4 {
        return;
    }
    msg[2] = 0;
    msg[3] = 0;
    let c = (!sum(src, dst, msg)).to_be_bytes();
    msg[2] = c[0];
    msg[3] = c[1];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_then_verify() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::16".parse().unwrap();
        let mut m = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0xff, 0x05];
        m.resize(28, 0);
        fill_checksum(src, dst, &mut m);
        assert!(checksum_ok(src, dst, &m));
        // The pseudo-header counts: another source breaks it.
        assert!(!checksum_ok("fe80::2".parse().unwrap(), dst, &m));
        m[9] ^= 1;
        assert!(!checksum_ok(src, dst, &m));
    }
}
