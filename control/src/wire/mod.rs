//! Wire formats, in the style of smoltcp's `src/wire/`: checked views over
//! buffers (`Packet<T: AsRef<[u8]>>`) and plain `Repr`s with
//! `parse`/`emit`/`buffer_len`.

pub mod ethernet;
pub mod frame;
pub mod igmp;
pub mod ipv4;
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
