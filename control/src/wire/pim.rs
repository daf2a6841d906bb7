//! Just enough PIMv2 (RFC 7761 §4.9) to recognise a Hello, which marks a
//! multicast router port.

use super::{WireError, be16, checksum, checksum_ok};
use core::net::Ipv4Addr;

/// ALL-PIM-ROUTERS, where Hellos are sent.
pub const ALL_PIM_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 13);
pub const TYPE_HELLO: u8 = 0;
pub const HEADER_LEN: usize = 4;

mod field {
    pub const VER_TYPE: usize = 0;
    pub const CHECKSUM: usize = 2;
}

/// A checked view over a PIM message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Packet { buffer })
    }

    pub fn version(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::VER_TYPE)
            .map_or(0, |v| v >> 4)
    }

    pub fn msg_type(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::VER_TYPE)
            .map_or(0, |v| v & 0x0f)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.buffer.as_ref(), field::CHECKSUM).unwrap_or(0)
    }

    /// RFC 7761 §4.9: the checksum covers the whole message (for all types
    /// but Register, which a Hello is not).
    pub fn verify_checksum(&self) -> bool {
        checksum_ok(self.buffer.as_ref())
    }
}

/// A PIMv2 message header; the body (Hello options) is not interpreted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub msg_type: u8,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        if p.version() != 2 || p.msg_type() > 0x0f {
            return Err(WireError::BadPim);
        }
        Ok(Repr {
            msg_type: p.msg_type(),
        })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        buf.extend_from_slice(&[0x20 | (self.msg_type & 0x0f), 0, 0, 0]);
        let c = checksum(&buf[start..]).to_be_bytes();
        buf[start + field::CHECKSUM] = c[0];
        buf[start + field::CHECKSUM + 1] = c[1];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_roundtrip() {
        let r = Repr {
            msg_type: TYPE_HELLO,
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert!(Packet::new_checked(&b[..3]).is_err());
        assert_eq!(
            Repr::parse(&Packet::new_checked(&[0x10u8, 0, 0, 0][..]).unwrap()),
            Err(WireError::BadPim)
        );
    }
}
