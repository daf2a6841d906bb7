//! IPv4: parsing (header fields via etherparse, checksum and lengths checked
//! here) and emission with TTL 1 and the Router Alert option.

use super::{WireError, checksum, checksum_ok};
use core::net::Ipv4Addr;

pub const PROTO_IGMP: u8 = 2;
pub const PROTO_PIM: u8 = 103;
/// RFC 2113 §2.1: Router Alert option, value 0 ("examine packet").
pub const ROUTER_ALERT: [u8; 4] = [0x94, 0x04, 0x00, 0x00];
const MIN_HEADER_LEN: usize = 20;

/// An IPv4 header as the engine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ttl: u8,
    pub ident: u16,
    /// Carries the Router Alert option (on parse: anywhere in the options).
    pub router_alert: bool,
    pub payload_len: usize,
}

impl Repr {
    /// Parse and validate an IPv4 header: version, IHL, header checksum,
    /// total length, no fragmentation. Returns the header and the payload
    /// (trimmed to the total length; link padding dropped).
    pub fn parse(data: &[u8]) -> Result<(Repr, &[u8]), WireError> {
        use etherparse::err::ipv4::{HeaderError, HeaderSliceError};
        let hdr = etherparse::Ipv4HeaderSlice::from_slice(data).map_err(|e| match e {
            HeaderSliceError::Len(_) => WireError::Truncated,
            HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { .. }) => {
                WireError::BadIhl
            }
            HeaderSliceError::Content(_) => WireError::BadIpHeader,
        })?;
        let header_len = usize::from(hdr.ihl()) * 4;
        if !checksum_ok(hdr.slice()) {
            return Err(WireError::BadIpChecksum);
        }
        let total = usize::from(hdr.total_len());
        if total < header_len {
            return Err(WireError::BadIpHeader);
        }
        if total > data.len() {
            return Err(WireError::Truncated);
        }
        if hdr.more_fragments() || hdr.fragments_offset().value() != 0 {
            return Err(WireError::Fragment);
        }
        let payload = data.get(header_len..total).ok_or(WireError::Truncated)?;
        let repr = Repr {
            src: hdr.source_addr(),
            dst: hdr.destination_addr(),
            protocol: hdr.protocol().0,
            ttl: hdr.ttl(),
            ident: hdr.identification(),
            router_alert: parse_options(hdr.options())?,
            payload_len: payload.len(),
        };
        Ok((repr, payload))
    }

    pub const fn header_len(&self) -> usize {
        if self.router_alert {
            MIN_HEADER_LEN + ROUTER_ALERT.len()
        } else {
            MIN_HEADER_LEN
        }
    }

    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Append the header (checksum filled) to `buf`. TOS is 0xc0 (network
    /// control), as the Linux host stack sends IGMP.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        let hl = self.header_len();
        let total = u16::try_from(hl + self.payload_len).unwrap_or(u16::MAX);
        // hl is 20 or 24, so hl / 4 fits the IHL nibble.
        buf.push(0x40 | (hl / 4) as u8);
        buf.push(0xc0);
        buf.extend_from_slice(&total.to_be_bytes());
        buf.extend_from_slice(&self.ident.to_be_bytes());
        buf.extend_from_slice(&[0, 0]); // flags, fragment offset
        buf.push(self.ttl);
        buf.push(self.protocol);
        buf.extend_from_slice(&[0, 0]); // checksum, filled below
        buf.extend_from_slice(&self.src.octets());
        buf.extend_from_slice(&self.dst.octets());
        if self.router_alert {
            buf.extend_from_slice(&ROUTER_ALERT);
        }
        let c = checksum(&buf[start..]).to_be_bytes();
        buf[start + 10] = c[0];
        buf[start + 11] = c[1];
    }
}

/// Walks the option list (RFC 791 §3.1): every option but EOL and NOP has a
/// length of at least 2 that stays inside the header, as the kernel's own
/// ip_options_compile() demands. Returns whether Router Alert is present.
fn parse_options(mut opts: &[u8]) -> Result<bool, WireError> {
    let mut router_alert = false;
    while let Some((&kind, rest)) = opts.split_first() {
        match kind {
            0 => break,
            1 => opts = rest,
            _ => {
                let len = usize::from(*rest.first().ok_or(WireError::BadIpOptions)?);
                if len < 2 || len > opts.len() {
                    return Err(WireError::BadIpOptions);
                }
                // RFC 2113 §2.1: Router Alert is exactly 4 bytes.
                if kind == ROUTER_ALERT[0] {
                    if len != ROUTER_ALERT.len() {
                        return Err(WireError::BadIpOptions);
                    }
                    router_alert = true;
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(router_alert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_must_be_well_formed() {
        assert_eq!(parse_options(&[]), Ok(false));
        assert_eq!(parse_options(&[0x94, 0x04, 0x00, 0x00]), Ok(true));
        assert_eq!(
            parse_options(&[0x01, 0x94, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00]),
            Ok(true)
        );
        assert_eq!(parse_options(&[0x00, 0xff, 0xff, 0xff]), Ok(false));
        // Length beyond the options, below 2, missing, or a wrong RA length.
        assert_eq!(
            parse_options(&[0x94, 0x09, 0x00, 0x00]),
            Err(WireError::BadIpOptions)
        );
        assert_eq!(
            parse_options(&[0x07, 0x01, 0x00, 0x00]),
            Err(WireError::BadIpOptions)
        );
        assert_eq!(
            parse_options(&[0x01, 0x01, 0x01, 0x07]),
            Err(WireError::BadIpOptions)
        );
        assert_eq!(
            parse_options(&[0x94, 0x06, 0x00, 0x00, 0x00, 0x00]),
            Err(WireError::BadIpOptions)
        );
    }

    #[test]
    fn emit_parse() {
        let r = Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(224, 0, 0, 1),
            protocol: PROTO_IGMP,
            ttl: 1,
            ident: 7,
            router_alert: true,
            payload_len: 8,
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        assert_eq!(b.len(), 24);
        assert_eq!(&b[20..24], &ROUTER_ALERT);
        b.extend_from_slice(&[0; 8]);
        b.extend_from_slice(&[0xee; 6]); // link padding
        let (p, payload) = Repr::parse(&b).unwrap();
        assert_eq!(p, r);
        assert_eq!(payload.len(), 8);
    }

    #[test]
    fn rejects() {
        let r = Repr {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(224, 0, 0, 1),
            protocol: PROTO_IGMP,
            ttl: 1,
            ident: 0,
            router_alert: false,
            payload_len: 8,
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        b.extend_from_slice(&[0; 8]);
        let mut bad = b.clone();
        bad[10] ^= 1;
        assert_eq!(Repr::parse(&bad), Err(WireError::BadIpChecksum));
        assert_eq!(Repr::parse(&b[..27]), Err(WireError::Truncated));
        assert_eq!(Repr::parse(&b[..10]), Err(WireError::Truncated));
        let mut ihl = b.clone();
        ihl[0] = 0x44;
        assert_eq!(Repr::parse(&ihl), Err(WireError::BadIhl));
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert_eq!(Repr::parse(&v6), Err(WireError::BadIpHeader));
    }
}
