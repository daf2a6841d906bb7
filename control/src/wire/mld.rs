//! MLDv1 (RFC 2710) and MLDv2 (RFC 3810) messages, carried in ICMPv6.

pub use super::igmp::RecordType;
use super::{SourceList, WireAddr, WireError, be16, icmpv6};
use core::net::Ipv6Addr;

/// RFC 2710 §3.1 / RFC 3810 §5.1: Multicast Listener Query (both versions).
pub const TYPE_QUERY: u8 = 130;
/// RFC 2710 §3.1: Version 1 Multicast Listener Report.
pub const TYPE_V1_REPORT: u8 = 131;
/// RFC 2710 §3.1: Multicast Listener Done.
pub const TYPE_DONE: u8 = 132;
/// RFC 3810 §5.2: Version 2 Multicast Listener Report.
pub const TYPE_V2_REPORT: u8 = 143;

mod field {
    pub const TYPE: usize = 0;
    pub const MAX_RESP: usize = 4;
    pub const ADDRESS: usize = 8;
    // v2 query (RFC 3810 §5.1)
    pub const RESV_S_QRV: usize = 24;
    pub const QQIC: usize = 25;
    pub const NUM_SOURCES: usize = 26;
    pub const QUERY_SOURCES: usize = 28;
    // v2 report (RFC 3810 §5.2)
    pub const NUM_RECORDS: usize = 6;
    pub const RECORDS: usize = 8;
    // multicast address record (RFC 3810 §5.2.4)
    pub const REC_TYPE: usize = 0;
    pub const REC_AUX_LEN: usize = 1;
    pub const REC_NUM_SOURCES: usize = 2;
    pub const REC_ADDRESS: usize = 4;
    pub const REC_SOURCES: usize = 20;
}

/// MLDv1 messages and the MLDv1 query (RFC 2710 §3).
pub const V1_LEN: usize = 24;
/// Fixed part of an MLDv2 query (RFC 3810 §5.1).
pub const V2_QUERY_LEN: usize = 28;
/// Sources of an MLDv2 query that fit a 1500-byte IPv6 packet with the
/// 8-byte Hop-by-Hop header: (1500 - 40 - 8 - 28) / 16.
pub const MAX_QUERY_SOURCES: usize = 89;

/// RFC 3810 §5.1.3 Maximum Response Code to Maximum Response Delay (ms):
/// below 32768 literal; above, 1|exp(3)|mant(12) means
/// (mant | 0x1000) << (exp + 3).
pub const fn decode_max_resp(code: u16) -> u32 {
    super::float_code::decode(code as u32, 12)
}

/// Encode a delay in ms as §5.1.3 says, rounding down; beyond the largest
/// representable (8387584 ms) it saturates.
pub const fn encode_max_resp(ms: u32) -> u16 {
    super::float_code::encode(ms, 12) as u16
}

/// A checked view over an MLD message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap `buffer`, checking that every length field fits inside it.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.b();
        match self.msg_type() {
            TYPE_V2_REPORT => {
                if b.len() < field::RECORDS {
                    return Err(WireError::Truncated);
                }
                let mut off = field::RECORDS;
                for _ in 0..self.num_records() {
                    let rec = b.get(off..).ok_or(WireError::Truncated)?;
                    off += AddressRecord::new_checked(rec)?.len();
                }
            }
            _ if b.len() < V1_LEN => return Err(WireError::Truncated),
            // RFC 3810 §8.1: a query of 25..27 bytes is no version of
            // MLD and is ignored.
            TYPE_QUERY if b.len() > V1_LEN => {
                if b.len() < V2_QUERY_LEN {
                    return Err(WireError::Truncated);
                }
                let n = usize::from(self.num_sources());
                if V2_QUERY_LEN + 16 * n > b.len() {
                    return Err(WireError::SourceOverrun);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn msg_type(&self) -> u8 {
        self.b().get(field::TYPE).copied().unwrap_or(0)
    }

    /// Maximum Response Code (v2) or Maximum Response Delay in ms (v1).
    pub fn max_resp_code(&self) -> u16 {
        be16(self.b(), field::MAX_RESP).unwrap_or(0)
    }

    /// The multicast address (queries, v1 reports, done).
    pub fn address(&self) -> Ipv6Addr {
        self.b()
            .get(field::ADDRESS..field::ADDRESS + 16)
            .map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::read)
    }

    /// RFC 4443 §2.3 with the pseudo-header of `src` and `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        icmpv6::checksum_ok(src, dst, self.b())
    }

    /// RFC 3810 §8.1: a 24-byte query is MLDv1, 28 bytes or more MLDv2.
    pub fn is_v2_query(&self) -> bool {
        self.msg_type() == TYPE_QUERY && self.b().len() >= V2_QUERY_LEN
    }

    pub fn s_flag(&self) -> bool {
        self.b()
            .get(field::RESV_S_QRV)
            .is_some_and(|v| v & 0x08 != 0)
    }

    pub fn qrv(&self) -> u8 {
        self.b().get(field::RESV_S_QRV).map_or(0, |v| v & 0x07)
    }

    pub fn qqic(&self) -> u8 {
        self.b().get(field::QQIC).copied().unwrap_or(0)
    }

    pub fn num_sources(&self) -> u16 {
        be16(self.b(), field::NUM_SOURCES).unwrap_or(0)
    }

    pub fn query_sources(&self) -> SourceList<'_, Ipv6Addr> {
        let n = usize::from(self.num_sources());
        SourceList::new(
            self.b()
                .get(field::QUERY_SOURCES..field::QUERY_SOURCES + 16 * n)
                .unwrap_or(&[]),
        )
    }

    pub fn num_records(&self) -> u16 {
        be16(self.b(), field::NUM_RECORDS).unwrap_or(0)
    }

    /// The address records of a v2 report; stops at the first that does
    /// not fit (which `new_checked` has ruled out).
    pub fn records(&self) -> impl Iterator<Item = AddressRecord<&[u8]>> + '_ {
        let mut off = field::RECORDS;
        let mut left = self.num_records();
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let rec = AddressRecord::new_checked(self.b().get(off..)?).ok()?;
            off += rec.len();
            Some(rec)
        })
    }
}

/// A checked view over one Multicast Address Record (RFC 3810 §5.2.4).
#[derive(Debug, Clone)]
pub struct AddressRecord<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AddressRecord<T> {
    pub fn new_checked(buffer: T) -> Result<AddressRecord<T>, WireError> {
        if buffer.as_ref().len() < field::REC_SOURCES {
            return Err(WireError::Truncated);
        }
        let r = AddressRecord { buffer };
        if r.len() > r.buffer.as_ref().len() {
            return Err(WireError::SourceOverrun);
        }
        Ok(r)
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn record_type(&self) -> RecordType {
        RecordType::from(self.b().get(field::REC_TYPE).copied().unwrap_or(0))
    }

    pub fn aux_data_len(&self) -> u8 {
        self.b().get(field::REC_AUX_LEN).copied().unwrap_or(0)
    }

    pub fn num_sources(&self) -> u16 {
        be16(self.b(), field::REC_NUM_SOURCES).unwrap_or(0)
    }

    pub fn address(&self) -> Ipv6Addr {
        self.b()
            .get(field::REC_ADDRESS..field::REC_ADDRESS + 16)
            .map_or(Ipv6Addr::UNSPECIFIED, Ipv6Addr::read)
    }

    pub fn sources(&self) -> SourceList<'_, Ipv6Addr> {
        let n = usize::from(self.num_sources());
        SourceList::new(
            self.b()
                .get(field::REC_SOURCES..field::REC_SOURCES + 16 * n)
                .unwrap_or(&[]),
        )
    }

    /// Header, sources and aux data (in 32-bit words, §5.2.6).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        field::REC_SOURCES
            + 16 * usize::from(self.num_sources())
            + 4 * usize::from(self.aux_data_len())
    }
}

/// A multicast address record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressRecordRepr {
    pub record_type: RecordType,
    pub address: Ipv6Addr,
    pub sources: Vec<Ipv6Addr>,
}

/// An MLDv2 query's extra fields (RFC 3810 §5.1.7-§5.1.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryV2 {
    /// Suppress Router-Side Processing.
    pub s_flag: bool,
    /// Querier's Robustness Variable (0..=7; 0 means above 7).
    pub qrv: u8,
    /// Querier's Query Interval Code (the IGMPv3 float format, seconds).
    pub qqic: u8,
    pub sources: Vec<Ipv6Addr>,
}

/// A parsed MLD message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repr {
    /// A query: MLDv1 when `v2` is None (then `max_resp_code` is the delay
    /// in ms), MLDv2 otherwise (§5.1.3 encoding).
    Query {
        max_resp_code: u16,
        address: Ipv6Addr,
        v2: Option<QueryV2>,
    },
    ReportV1 {
        address: Ipv6Addr,
    },
    Done {
        address: Ipv6Addr,
    },
    ReportV2 {
        records: Vec<AddressRecordRepr>,
    },
}

impl Repr {
    /// Parse a checked packet. The checksum is not verified here (see
    /// [`Packet::verify_checksum`]). Aux data is skipped.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        Ok(match p.msg_type() {
            TYPE_QUERY => Repr::Query {
                max_resp_code: p.max_resp_code(),
                address: p.address(),
                v2: p.is_v2_query().then(|| QueryV2 {
                    s_flag: p.s_flag(),
                    qrv: p.qrv(),
                    qqic: p.qqic(),
                    sources: p.query_sources().iter().collect(),
                }),
            },
            TYPE_V1_REPORT => Repr::ReportV1 {
                address: p.address(),
            },
            TYPE_DONE => Repr::Done {
                address: p.address(),
            },
            TYPE_V2_REPORT => Repr::ReportV2 {
                records: p
                    .records()
                    .map(|r| AddressRecordRepr {
                        record_type: r.record_type(),
                        address: r.address(),
                        sources: r.sources().iter().collect(),
                    })
                    .collect(),
            },
            _ => return Err(WireError::UnknownMldType),
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Query { v2: Some(q), .. } => V2_QUERY_LEN + 16 * q.sources.len(),
            Repr::ReportV2 { records } => {
                field::RECORDS
                    + records
                        .iter()
                        .map(|r| field::REC_SOURCES + 16 * r.sources.len())
                        .sum::<usize>()
            }
            _ => V1_LEN,
        }
    }

    /// Append the message to `buf`, its checksum computed over the
    /// pseudo-header of `src` and `dst`. Counts saturate at u16::MAX.
    pub fn emit(&self, src: Ipv6Addr, dst: Ipv6Addr, buf: &mut Vec<u8>) {
        let start = buf.len();
        let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
        match self {
            Repr::Query {
                max_resp_code,
                address,
                v2,
            } => {
                buf.extend_from_slice(&[TYPE_QUERY, 0, 0, 0]);
                buf.extend_from_slice(&max_resp_code.to_be_bytes());
                buf.extend_from_slice(&[0, 0]);
                address.write(buf);
                if let Some(q) = v2 {
                    buf.push(if q.s_flag { 0x08 } else { 0 } | (q.qrv & 0x07));
                    buf.push(q.qqic);
                    buf.extend_from_slice(&count(q.sources.len()));
                    q.sources.iter().for_each(|s| s.write(buf));
                }
            }
            Repr::ReportV1 { address } | Repr::Done { address } => {
                let t = if matches!(self, Repr::Done { .. }) {
                    TYPE_DONE
                } else {
                    TYPE_V1_REPORT
                };
                buf.extend_from_slice(&[t, 0, 0, 0, 0, 0, 0, 0]);
                address.write(buf);
            }
            Repr::ReportV2 { records } => {
                buf.extend_from_slice(&[TYPE_V2_REPORT, 0, 0, 0, 0, 0]);
                buf.extend_from_slice(&count(records.len()));
                for r in records {
                    buf.push(u8::from(r.record_type));
                    buf.push(0);
                    buf.extend_from_slice(&count(r.sources.len()));
                    r.address.write(buf);
                    r.sources.iter().for_each(|s| s.write(buf));
                }
            }
        }
        if let Some(msg) = buf.get_mut(start..) {
            icmpv6::fill_checksum(src, dst, msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn roundtrip(r: &Repr) {
        let (src, dst) = (a("fe80::1"), a("ff02::1"));
        let mut b = Vec::new();
        r.emit(src, dst, &mut b);
        assert_eq!(b.len(), r.buffer_len());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!(&Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn max_resp_codes() {
        // §5.1.3: literal below 32768, then exp/mant.
        assert_eq!(decode_max_resp(10_000), 10_000);
        assert_eq!(decode_max_resp(0x8000), 32768);
        assert_eq!(decode_max_resp(0xffff), 0x1fff << 10);
        assert_eq!(encode_max_resp(32767), 32767);
        assert_eq!(encode_max_resp(32768), 0x8000);
        assert_eq!(encode_max_resp(u32::MAX), 0xffff);
        for code in (0..=u16::MAX).step_by(7) {
            assert_eq!(encode_max_resp(decode_max_resp(code)), code);
        }
        assert_eq!(decode_max_resp(encode_max_resp(100_007)), 100_000);
    }

    #[test]
    fn roundtrips() {
        roundtrip(&Repr::Query {
            max_resp_code: 10_000,
            address: Ipv6Addr::UNSPECIFIED,
            v2: None,
        });
        roundtrip(&Repr::Query {
            max_resp_code: 0x8123,
            address: a("ff3e::1"),
            v2: Some(QueryV2 {
                s_flag: true,
                qrv: 2,
                qqic: 125,
                sources: vec![a("2001:db8::1"), a("2001:db8::2")],
            }),
        });
        roundtrip(&Repr::ReportV1 {
            address: a("ff3e::1"),
        });
        roundtrip(&Repr::Done {
            address: a("ff3e::1"),
        });
        let records = (1..=6u8)
            .map(|t| AddressRecordRepr {
                record_type: RecordType::from(t),
                address: a("ff3e::1"),
                sources: (0..u16::from(t) - 1)
                    .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i + 1))
                    .collect(),
            })
            .collect();
        roundtrip(&Repr::ReportV2 { records });
    }

    #[test]
    fn lengths() {
        let mut q = Vec::new();
        Repr::Query {
            max_resp_code: 1000,
            address: Ipv6Addr::UNSPECIFIED,
            v2: Some(QueryV2 {
                s_flag: false,
                qrv: 2,
                qqic: 125,
                sources: vec![a("2001:db8::1")],
            }),
        }
        .emit(a("fe80::1"), a("ff02::1"), &mut q);
        assert_eq!(
            Packet::new_checked(&q[..43]).unwrap_err(),
            WireError::SourceOverrun
        );
        assert_eq!(
            Packet::new_checked(&q[..26]).unwrap_err(),
            WireError::Truncated
        );
        assert!(!Packet::new_checked(&q[..24]).unwrap().is_v2_query());
        assert_eq!(
            Packet::new_checked(&q[..23]).unwrap_err(),
            WireError::Truncated
        );
        // A report whose one record claims a source it lacks, and one
        // claiming two records with one present.
        let mut r = vec![143, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1];
        r.extend_from_slice(&a("ff3e::1").octets());
        assert_eq!(
            Packet::new_checked(&r[..]).unwrap_err(),
            WireError::SourceOverrun
        );
        r[7] = 2;
        r[11] = 0;
        assert_eq!(
            Packet::new_checked(&r[..]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&[133u8; 24][..])),
            Err(WireError::UnknownMldType)
        );
    }
}
