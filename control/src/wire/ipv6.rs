//! IPv6 (RFC 8200): the fixed header, a bounded walk of the extension
//! headers down to the upper-layer protocol, the Hop-by-Hop Router Alert
//! option (RFC 2711), and emission of the header MLD is sent with (hop
//! limit 1, Hop-by-Hop with Router Alert value 0, RFC 2710 §3 / RFC 3810
//! §5).

use super::WireError;
use core::net::Ipv6Addr;

pub const HEADER_LEN: usize = 40;
pub const NEXT_HOP_BY_HOP: u8 = 0;
pub const NEXT_ROUTING: u8 = 43;
pub const NEXT_FRAGMENT: u8 = 44;
pub const NEXT_ICMPV6: u8 = 58;
pub const NEXT_NONE: u8 = 59;
pub const NEXT_DEST_OPTS: u8 = 60;
/// RFC 2711 §2.1: option type of Router Alert.
pub const OPT_ROUTER_ALERT: u8 = 0x05;
/// RFC 2711 §2.1: value 0, "Datagram contains a Multicast Listener
/// Discovery message".
pub const ROUTER_ALERT_MLD: u16 = 0;
/// The extension headers walked before giving up. Real MLD carries one
/// (Hop-by-Hop); a longer chain is refused (and counted) rather than
/// followed without bound.
pub const MAX_EXT_HEADERS: usize = 8;
/// Hop-by-Hop as this switch sends it: next header ICMPv6, length 0 (8
/// bytes), Router Alert MLD, PadN of 2 bytes (as Linux sends it).
const HBH_MLD: [u8; 8] = [NEXT_ICMPV6, 0, OPT_ROUTER_ALERT, 2, 0, 0, 1, 0];

/// An IPv6 header, extension headers walked, as the engine needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The upper-layer protocol after the extension headers.
    pub next_header: u8,
    pub hop_limit: u8,
    /// The value of a Router Alert option in the Hop-by-Hop header.
    pub router_alert: Option<u16>,
    /// Length of the upper-layer payload.
    pub payload_len: usize,
}

impl Repr {
    /// Parse and validate the fixed header and walk at most
    /// [`MAX_EXT_HEADERS`] extension headers. Returns the header and the
    /// upper-layer payload (trimmed to the payload length; link padding
    /// dropped).
    pub fn parse(data: &[u8]) -> Result<(Repr, &[u8]), WireError> {
        if data.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if data[0] >> 4 != 6 {
            return Err(WireError::BadIpv6Header);
        }
        let plen = usize::from(u16::from_be_bytes([data[4], data[5]]));
        // A jumbogram (payload length 0, RFC 2675) never carries MLD.
        if plen == 0 {
            return Err(WireError::BadIpv6Header);
        }
        let mut payload = data
            .get(HEADER_LEN..HEADER_LEN + plen)
            .ok_or(WireError::Truncated)?;
        let mut next = data[6];
        let mut router_alert = None;
        let mut walked = 0;
        while is_extension(next) {
            if walked == MAX_EXT_HEADERS {
                return Err(WireError::ExtChainTooLong);
            }
            // RFC 8200 §4.3: Hop-by-Hop only immediately after the header.
            if next == NEXT_HOP_BY_HOP && walked != 0 {
                return Err(WireError::BadExtHeader);
            }
            if next == NEXT_FRAGMENT {
                return Err(WireError::Fragment);
            }
            let len = ext_len(payload)?;
            let (hdr, rest) = payload.split_at(len);
            if next == NEXT_HOP_BY_HOP {
                router_alert = parse_options(&hdr[2..])?;
            }
            next = hdr[0];
            payload = rest;
            walked += 1;
        }
        let repr = Repr {
            src: addr(&data[8..24]),
            dst: addr(&data[24..40]),
            next_header: next,
            hop_limit: data[7],
            router_alert,
            payload_len: payload.len(),
        };
        Ok((repr, payload))
    }

    pub const fn header_len(&self) -> usize {
        if self.router_alert.is_some() {
            HEADER_LEN + HBH_MLD.len()
        } else {
            HEADER_LEN
        }
    }

    pub const fn buffer_len(&self) -> usize {
        self.header_len() + self.payload_len
    }

    /// Append the header, with a Hop-by-Hop Router Alert (value
    /// `router_alert`) when set, to `buf`. Traffic class 0, flow label 0.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let ext = self.header_len() - HEADER_LEN;
        let plen = u16::try_from(ext + self.payload_len).unwrap_or(u16::MAX);
        buf.extend_from_slice(&[0x60, 0, 0, 0]);
        buf.extend_from_slice(&plen.to_be_bytes());
        buf.push(if self.router_alert.is_some() {
            NEXT_HOP_BY_HOP
        } else {
            self.next_header
        });
        buf.push(self.hop_limit);
        buf.extend_from_slice(&self.src.octets());
        buf.extend_from_slice(&self.dst.octets());
        if let Some(v) = self.router_alert {
            let mut h = HBH_MLD;
            h[0] = self.next_header;
            h[4..6].copy_from_slice(&v.to_be_bytes());
            buf.extend_from_slice(&h);
        }
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut o = [0u8; 16];
    o.copy_from_slice(b);
    Ipv6Addr::from(o)
}

/// The extension headers walked (RFC 8200 §4). Anything else is the
/// upper layer (ICMPv6 for MLD; No Next Header and unknown protocols end
/// the walk too).
fn is_extension(next: u8) -> bool {
    matches!(
        next,
        NEXT_HOP_BY_HOP | NEXT_ROUTING | NEXT_FRAGMENT | NEXT_DEST_OPTS
    )
}

/// Length of the extension header at the start of `b`: (Hdr Ext Len + 1)
/// × 8 (RFC 8200 §4.3), checked to fit.
fn ext_len(b: &[u8]) -> Result<usize, WireError> {
    let units = usize::from(*b.get(1).ok_or(WireError::Truncated)?);
    let len = (units + 1) * 8;
    if len > b.len() {
        return Err(WireError::Truncated);
    }
    Ok(len)
}

/// Walk the TLV options of a Hop-by-Hop header (RFC 8200 §4.2): Pad1 is
/// one byte, every other option has a length that stays inside the
/// header. Returns the Router Alert value, which must be 2 bytes long
/// (RFC 2711 §2.1).
fn parse_options(mut opts: &[u8]) -> Result<Option<u16>, WireError> {
    let mut ra = None;
    while let Some((&kind, rest)) = opts.split_first() {
        if kind == 0 {
            opts = rest;
            continue;
        }
        let len = usize::from(*rest.first().ok_or(WireError::BadExtHeader)?);
        let value = rest.get(1..1 + len).ok_or(WireError::BadExtHeader)?;
        if kind == OPT_ROUTER_ALERT {
            if len != 2 {
                return Err(WireError::BadExtHeader);
            }
            ra = Some(u16::from_be_bytes([value[0], value[1]]));
        }
        opts = &rest[1 + len..];
    }
    Ok(ra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mld_header(payload_len: usize) -> Repr {
        Repr {
            src: "fe80::1".parse().unwrap(),
            dst: "ff02::16".parse().unwrap(),
            next_header: NEXT_ICMPV6,
            hop_limit: 1,
            router_alert: Some(ROUTER_ALERT_MLD),
            payload_len,
        }
    }

    #[test]
    fn emit_parse() {
        let r = mld_header(8);
        let mut b = Vec::new();
        r.emit(&mut b);
        assert_eq!(b.len(), 48);
        assert_eq!(&b[40..48], &HBH_MLD);
        b.extend_from_slice(&[0xaa; 8]);
        b.extend_from_slice(&[0xee; 6]); // link padding
        let (p, payload) = Repr::parse(&b).unwrap();
        assert_eq!(p, r);
        assert_eq!(payload, &[0xaa; 8]);
        let plain = Repr {
            router_alert: None,
            ..r
        };
        let mut b = Vec::new();
        plain.emit(&mut b);
        b.extend_from_slice(&[0; 8]);
        assert_eq!(Repr::parse(&b).unwrap().0, plain);
    }

    /// A frame with `n` Destination Options headers before ICMPv6.
    fn chain(n: usize) -> Vec<u8> {
        let mut b = Vec::new();
        let r = Repr {
            next_header: if n > 0 { NEXT_DEST_OPTS } else { NEXT_ICMPV6 },
            router_alert: None,
            payload_len: n * 8 + 8,
            ..mld_header(0)
        };
        r.emit(&mut b);
        for i in 0..n {
            let next = if i + 1 < n {
                NEXT_DEST_OPTS
            } else {
                NEXT_ICMPV6
            };
            b.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
        }
        b.extend_from_slice(&[0; 8]);
        b
    }

    #[test]
    fn extension_chain_is_bounded() {
        let ok = chain(MAX_EXT_HEADERS);
        let (r, p) = Repr::parse(&ok).unwrap();
        assert_eq!((r.next_header, p.len()), (NEXT_ICMPV6, 8));
        assert_eq!(
            Repr::parse(&chain(MAX_EXT_HEADERS + 1)),
            Err(WireError::ExtChainTooLong)
        );
    }

    #[test]
    fn rejects() {
        let mut b = Vec::new();
        mld_header(8).emit(&mut b);
        b.extend_from_slice(&[0; 8]);
        assert_eq!(Repr::parse(&b[..40]), Err(WireError::Truncated));
        assert_eq!(Repr::parse(&b[..55]), Err(WireError::Truncated));
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(Repr::parse(&v4), Err(WireError::BadIpv6Header));
        // Router Alert of length 3 that runs past the header.
        let mut ra = b.clone();
        ra[43] = 3;
        assert_eq!(Repr::parse(&ra), Err(WireError::BadExtHeader));
        // Hop-by-Hop length beyond the packet.
        let mut long = b.clone();
        long[41] = 4;
        assert_eq!(Repr::parse(&long), Err(WireError::Truncated));
        // A fragment header.
        let mut frag = b.clone();
        frag[40] = NEXT_FRAGMENT;
        assert_eq!(Repr::parse(&frag), Err(WireError::Fragment));
        // Pad1 options only: no Router Alert.
        let mut pad = b.clone();
        pad[42..48].copy_from_slice(&[0; 6]);
        assert_eq!(Repr::parse(&pad).unwrap().0.router_alert, None);
    }
}
