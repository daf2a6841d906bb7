//! Wire formats, in the style of smoltcp's `src/wire/`: checked views over
//! buffers (`Packet<T: AsRef<[u8]>>`) and plain `Repr`s with
//! `parse`/`emit`/`buffer_len`.

pub mod ethernet;
pub mod float_code;
pub mod frame;
pub mod icmpv6;
pub mod igmp;
pub mod ipv4;
pub mod ipv6;
pub mod mld;
pub mod pim;

use thiserror::Error;

/// Why a frame or message was rejected. Each maps to a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("truncated")]
    Truncated,
    #[error("bad IPv4 header (version or length fields)")]
    BadIpHeader,
    #[error("malformed IPv4 options")]
    BadIpOptions,
    #[error("bad IPv4 IHL")]
    BadIhl,
    #[error("bad IPv4 header checksum")]
    BadIpChecksum,
    #[error("IPv4 fragment")]
    Fragment,
    #[error("bad IGMP checksum")]
    BadIgmpChecksum,
    #[error("bad PIM message")]
    BadPim,
    #[error("unknown IGMP type")]
    UnknownType,
    #[error("source count overruns the packet")]
    SourceOverrun,
    #[error("malformed message")]
    Malformed,
    #[error("bad IPv6 header (version or payload length)")]
    BadIpv6Header,
    #[error("malformed IPv6 extension header or option")]
    BadExtHeader,
    #[error("IPv6 extension header chain longer than parsed")]
    ExtChainTooLong,
    #[error("bad ICMPv6 checksum")]
    BadIcmpv6Checksum,
    #[error("unknown MLD type")]
    UnknownMldType,
}

/// An address as it sits in a packet: IPv4 (4 bytes) or IPv6 (16).
pub trait WireAddr: Copy + Ord + core::fmt::Debug {
    const LEN: usize;
    /// Read from the first `LEN` bytes of `b` (callers check the length).
    fn read(b: &[u8]) -> Self;
    fn write(&self, buf: &mut Vec<u8>);
}

impl WireAddr for core::net::Ipv4Addr {
    const LEN: usize = 4;
    fn read(b: &[u8]) -> Self {
        core::net::Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }
    fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.octets());
    }
}

impl WireAddr for core::net::Ipv6Addr {
    const LEN: usize = 16;
    fn read(b: &[u8]) -> Self {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        core::net::Ipv6Addr::from(o)
    }
    fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.octets());
    }
}

/// A list of addresses stored as consecutive fields (the sources of a
/// query or a group record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceList<'a, A = core::net::Ipv4Addr>(pub &'a [u8], core::marker::PhantomData<A>);

impl<A> Default for SourceList<'_, A> {
    fn default() -> Self {
        SourceList(&[], core::marker::PhantomData)
    }
}

impl<'a, A: WireAddr + 'a> SourceList<'a, A> {
    pub fn new(bytes: &'a [u8]) -> Self {
        SourceList(bytes, core::marker::PhantomData)
    }

    pub fn len(&self) -> usize {
        self.0.len() / A::LEN
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = A> + 'a {
        self.0.chunks_exact(A::LEN).map(A::read)
    }
}

/// RFC 1071 ones'-complement sum of `data`, folded to 16 bits (not inverted).
pub fn ones_sum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop above leaves sum <= 0xffff.
    sum as u16
}

/// The Internet checksum of `data` (with the checksum field zeroed).
pub fn checksum(data: &[u8]) -> u16 {
    !ones_sum(data)
}

/// True when `data`, checksum field included, sums to all ones.
pub fn checksum_ok(data: &[u8]) -> bool {
    ones_sum(data) == 0xffff
}

/// Read a big-endian u16 at `at`, or None if out of range.
pub(crate) fn be16(data: &[u8], at: usize) -> Option<u16> {
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// Read an IPv4 address at `at`, or None if out of range.
pub(crate) fn addr(data: &[u8], at: usize) -> Option<core::net::Ipv4Addr> {
    let b = data.get(at..at.checked_add(4)?)?;
    Some(core::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 example bytes.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(ones_sum(&d), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
        assert_eq!(ones_sum(&[0xff]), 0xff00);
    }
}
