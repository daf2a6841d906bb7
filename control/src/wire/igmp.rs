//! IGMPv1 (RFC 1112), v2 (RFC 2236) and v3 (RFC 3376) messages.

pub use super::SourceList;
use super::{WireError, addr, be16, checksum, checksum_ok};
use core::net::Ipv4Addr;

pub const TYPE_QUERY: u8 = 0x11;
pub const TYPE_V1_REPORT: u8 = 0x12;
pub const TYPE_V2_REPORT: u8 = 0x16;
pub const TYPE_V2_LEAVE: u8 = 0x17;
pub const TYPE_V3_REPORT: u8 = 0x22;

/// Named field offsets.
mod field {
    pub const TYPE: usize = 0;
    pub const MAX_RESP: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const GROUP: usize = 4;
    // v3 query (RFC 3376 §4.1)
    pub const RESV_S_QRV: usize = 8;
    pub const QQIC: usize = 9;
    pub const NUM_SOURCES: usize = 10;
    pub const QUERY_SOURCES: usize = 12;
    // v3 report (RFC 3376 §4.2)
    pub const NUM_RECORDS: usize = 6;
    pub const RECORDS: usize = 8;
    // group record (RFC 3376 §4.2.4)
    pub const REC_TYPE: usize = 0;
    pub const REC_AUX_LEN: usize = 1;
    pub const REC_NUM_SOURCES: usize = 2;
    pub const REC_GROUP: usize = 4;
    pub const REC_SOURCES: usize = 8;
}

/// Fixed header length of v1/v2 messages.
pub const HEADER_LEN: usize = 8;
/// Fixed header length of a v3 query.
pub const V3_QUERY_LEN: usize = 12;
/// Sources in a v3 query that fit a 1500-byte IPv4 packet with the Router
/// Alert option (24-byte header): (1500 - 24 - 12) / 4.
pub const MAX_QUERY_SOURCES: usize = 366;

/// Decode an RFC 3376 §4.1.1 Max Resp Code (or §4.1.7 QQIC): values below
/// 128 are literal; above, 1|exp(3)|mant(4) means (mant | 0x10) << (exp + 3).
pub const fn decode_float(code: u8) -> u32 {
    super::float_code::decode(code as u32, 4)
}

/// Encode a value in the §4.1.1/§4.1.7 format, rounding down; values
/// above the largest representable (31744) saturate.
pub const fn encode_float(value: u32) -> u8 {
    super::float_code::encode(value, 4) as u8
}

/// A checked view over an IGMP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap `buffer`, checking that every length field fits inside it, so
    /// that accessors never read past the end.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        match self.msg_type() {
            TYPE_QUERY if b.len() > HEADER_LEN => {
                // RFC 3376 §7.1: a query of 9..11 bytes matches no version
                // and MUST be ignored.
                if b.len() < V3_QUERY_LEN {
                    return Err(WireError::Truncated);
                }
                let n = usize::from(self.num_sources());
                if V3_QUERY_LEN + 4 * n > b.len() {
                    return Err(WireError::SourceOverrun);
                }
            }
            TYPE_V3_REPORT => {
                let mut off = field::RECORDS;
                for _ in 0..self.num_records() {
                    let rec = b.get(off..).ok_or(WireError::Truncated)?;
                    let r = GroupRecord::new_checked(rec)?;
                    off += r.len();
                }
            }
            _ => {}
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    pub fn msg_type(&self) -> u8 {
        self.b().get(field::TYPE).copied().unwrap_or(0)
    }

    pub fn max_resp_code(&self) -> u8 {
        self.b().get(field::MAX_RESP).copied().unwrap_or(0)
    }

    pub fn checksum(&self) -> u16 {
        be16(self.b(), field::CHECKSUM).unwrap_or(0)
    }

    /// The group address (queries, v1/v2 reports, leaves).
    pub fn group_addr(&self) -> Ipv4Addr {
        addr(self.b(), field::GROUP).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// RFC 3376 §4.1: the whole message, checksum included, sums to ones.
    pub fn verify_checksum(&self) -> bool {
        checksum_ok(self.b())
    }

    /// Which query version this is (RFC 3376 §7.1), for type 0x11.
    pub fn query_version(&self) -> u8 {
        if self.b().len() >= V3_QUERY_LEN {
            3
        } else if self.max_resp_code() == 0 {
            1
        } else {
            2
        }
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

    /// Number of sources in a v3 query.
    pub fn num_sources(&self) -> u16 {
        be16(self.b(), field::NUM_SOURCES).unwrap_or(0)
    }

    /// Source addresses of a v3 query.
    pub fn query_sources(&self) -> SourceList<'_> {
        let n = usize::from(self.num_sources());
        let b = self.b();
        SourceList::new(
            b.get(field::QUERY_SOURCES..field::QUERY_SOURCES + 4 * n)
                .unwrap_or(&[]),
        )
    }

    /// Number of group records in a v3 report.
    pub fn num_records(&self) -> u16 {
        be16(self.b(), field::NUM_RECORDS).unwrap_or(0)
    }

    /// The group records of a v3 report; stops at the first that does not
    /// fit (which `new_checked` has already ruled out).
    pub fn records(&self) -> impl Iterator<Item = GroupRecord<&[u8]>> + '_ {
        let mut off = field::RECORDS;
        let mut left = self.num_records();
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let rec = GroupRecord::new_checked(self.b().get(off..)?).ok()?;
            off += rec.len();
            Some(rec)
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Compute and store the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        let b = self.buffer.as_mut();
        if b.len() < HEADER_LEN {
            return;
        }
        b[field::CHECKSUM] = 0;
        b[field::CHECKSUM + 1] = 0;
        let c = checksum(b).to_be_bytes();
        b[field::CHECKSUM] = c[0];
        b[field::CHECKSUM + 1] = c[1];
    }
}

/// RFC 3376 §4.2.12 record types; unknown values are kept so they can be
/// ignored (they MUST be silently ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordType {
    ModeIsInclude,
    ModeIsExclude,
    ChangeToInclude,
    ChangeToExclude,
    AllowNewSources,
    BlockOldSources,
    Unknown(u8),
}

impl From<u8> for RecordType {
    fn from(v: u8) -> Self {
        match v {
            1 => RecordType::ModeIsInclude,
            2 => RecordType::ModeIsExclude,
            3 => RecordType::ChangeToInclude,
            4 => RecordType::ChangeToExclude,
            5 => RecordType::AllowNewSources,
            6 => RecordType::BlockOldSources,
            other => RecordType::Unknown(other),
        }
    }
}

impl From<RecordType> for u8 {
    fn from(t: RecordType) -> u8 {
        match t {
            RecordType::ModeIsInclude => 1,
            RecordType::ModeIsExclude => 2,
            RecordType::ChangeToInclude => 3,
            RecordType::ChangeToExclude => 4,
            RecordType::AllowNewSources => 5,
            RecordType::BlockOldSources => 6,
            RecordType::Unknown(v) => v,
        }
    }
}

/// A checked view over one v3 group record.
#[derive(Debug, Clone)]
pub struct GroupRecord<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> GroupRecord<T> {
    /// Checks that the record header, its sources and aux data fit.
    pub fn new_checked(buffer: T) -> Result<GroupRecord<T>, WireError> {
        let b = buffer.as_ref();
        if b.len() < field::REC_SOURCES {
            return Err(WireError::Truncated);
        }
        let r = GroupRecord { buffer };
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

    pub fn group_addr(&self) -> Ipv4Addr {
        addr(self.b(), field::REC_GROUP).unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    pub fn sources(&self) -> SourceList<'_> {
        let n = usize::from(self.num_sources());
        SourceList::new(
            self.b()
                .get(field::REC_SOURCES..field::REC_SOURCES + 4 * n)
                .unwrap_or(&[]),
        )
    }

    /// Length of the whole record: header, sources and aux data (in words).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        field::REC_SOURCES
            + 4 * usize::from(self.num_sources())
            + 4 * usize::from(self.aux_data_len())
    }
}

/// A v3 group record, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecordRepr {
    pub record_type: RecordType,
    pub group: Ipv4Addr,
    pub sources: Vec<Ipv4Addr>,
}

/// A v3 query's extra fields (RFC 3376 §4.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryV3 {
    /// Suppress Router-Side Processing.
    pub s_flag: bool,
    /// Querier's Robustness Variable (0..=7; 0 means above 7).
    pub qrv: u8,
    /// Querier's Query Interval Code.
    pub qqic: u8,
    pub sources: Vec<Ipv4Addr>,
}

/// A parsed IGMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repr {
    /// A membership query: v1 when `max_resp_code` is 0 and `v3` is None,
    /// v2 when non-zero and `v3` is None, v3 when `v3` is Some.
    Query {
        max_resp_code: u8,
        group: Ipv4Addr,
        v3: Option<QueryV3>,
    },
    ReportV1 {
        group: Ipv4Addr,
    },
    ReportV2 {
        group: Ipv4Addr,
    },
    LeaveV2 {
        group: Ipv4Addr,
    },
    ReportV3 {
        records: Vec<GroupRecordRepr>,
    },
}

impl Repr {
    /// Parse a checked packet. The checksum is not verified here (see
    /// [`Packet::verify_checksum`]). Aux data in v3 records is skipped.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr, WireError> {
        p.check_len()?;
        Ok(match p.msg_type() {
            TYPE_QUERY => {
                let v3 = (p.query_version() == 3).then(|| QueryV3 {
                    s_flag: p.s_flag(),
                    qrv: p.qrv(),
                    qqic: p.qqic(),
                    sources: p.query_sources().iter().collect(),
                });
                Repr::Query {
                    max_resp_code: p.max_resp_code(),
                    group: p.group_addr(),
                    v3,
                }
            }
            TYPE_V1_REPORT => Repr::ReportV1 {
                group: p.group_addr(),
            },
            TYPE_V2_REPORT => Repr::ReportV2 {
                group: p.group_addr(),
            },
            TYPE_V2_LEAVE => Repr::LeaveV2 {
                group: p.group_addr(),
            },
            TYPE_V3_REPORT => Repr::ReportV3 {
                records: p
                    .records()
                    .map(|r| GroupRecordRepr {
                        record_type: r.record_type(),
                        group: r.group_addr(),
                        sources: r.sources().iter().collect(),
                    })
                    .collect(),
            },
            _ => return Err(WireError::UnknownType),
        })
    }

    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::Query { v3: Some(q), .. } => V3_QUERY_LEN + 4 * q.sources.len(),
            Repr::ReportV3 { records } => {
                field::RECORDS
                    + records
                        .iter()
                        .map(|r| field::REC_SOURCES + 4 * r.sources.len())
                        .sum::<usize>()
            }
            _ => HEADER_LEN,
        }
    }

    /// Append the message, checksum filled, to `buf`. Source and record
    /// counts saturate at u16::MAX (callers keep lists far shorter).
    pub fn emit(&self, buf: &mut Vec<u8>) {
        let start = buf.len();
        let count = |n: usize| u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes();
        match self {
            Repr::Query {
                max_resp_code,
                group,
                v3,
            } => {
                buf.extend_from_slice(&[TYPE_QUERY, *max_resp_code, 0, 0]);
                buf.extend_from_slice(&group.octets());
                if let Some(q) = v3 {
                    buf.push(if q.s_flag { 0x08 } else { 0 } | (q.qrv & 0x07));
                    buf.push(q.qqic);
                    buf.extend_from_slice(&count(q.sources.len()));
                    for s in &q.sources {
                        buf.extend_from_slice(&s.octets());
                    }
                }
            }
            Repr::ReportV1 { group } | Repr::ReportV2 { group } | Repr::LeaveV2 { group } => {
                let t = match self {
                    Repr::ReportV1 { .. } => TYPE_V1_REPORT,
                    Repr::ReportV2 { .. } => TYPE_V2_REPORT,
                    _ => TYPE_V2_LEAVE,
                };
                buf.extend_from_slice(&[t, 0, 0, 0]);
                buf.extend_from_slice(&group.octets());
            }
            Repr::ReportV3 { records } => {
                buf.extend_from_slice(&[TYPE_V3_REPORT, 0, 0, 0, 0, 0]);
                buf.extend_from_slice(&count(records.len()));
                for r in records {
                    buf.push(u8::from(r.record_type));
                    buf.push(0);
                    buf.extend_from_slice(&count(r.sources.len()));
                    buf.extend_from_slice(&r.group.octets());
                    for s in &r.sources {
                        buf.extend_from_slice(&s.octets());
                    }
                }
            }
        }
        if let Some(msg) = buf.get_mut(start..) {
            Packet::new_unchecked(msg).fill_checksum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_codes() {
        // RFC 3376 §4.1.1 examples: literal below 128, then exp/mant.
        assert_eq!(decode_float(100), 100);
        assert_eq!(decode_float(0x80), 128);
        assert_eq!(decode_float(0xff), 31744);
        assert_eq!(encode_float(125), 125);
        assert_eq!(encode_float(128), 0x80);
        assert_eq!(encode_float(31744), 0xff);
        assert_eq!(encode_float(u32::MAX), 0xff);
        for code in 0..=255u8 {
            assert_eq!(encode_float(decode_float(code)), code);
        }
        // Rounds down between representable values.
        assert_eq!(decode_float(encode_float(1000)), 992);
    }

    #[test]
    fn v3_query_roundtrip() {
        let r = Repr::Query {
            max_resp_code: 100,
            group: Ipv4Addr::new(239, 1, 1, 1),
            v3: Some(QueryV3 {
                s_flag: true,
                qrv: 2,
                qqic: 125,
                sources: vec![Ipv4Addr::new(10, 0, 0, 1)],
            }),
        };
        let mut b = Vec::new();
        r.emit(&mut b);
        assert_eq!(b.len(), r.buffer_len());
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn overruns() {
        // v3 query claiming 2 sources with room for 1.
        let mut b = vec![0x11, 100, 0, 0, 0, 0, 0, 0, 0, 125, 0, 2, 1, 2, 3, 4];
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::SourceOverrun
        );
        b.truncate(10);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
        // v3 report: one record claiming 1 source, none present.
        let r = [0x22, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 1, 239, 1, 1, 1];
        assert_eq!(
            Packet::new_checked(&r[..]).unwrap_err(),
            WireError::SourceOverrun
        );
        // two records claimed, one present.
        let r = [0x22, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0, 239, 1, 1, 1];
        assert_eq!(
            Packet::new_checked(&r[..]).unwrap_err(),
            WireError::Truncated
        );
        assert_eq!(
            Packet::new_checked(&[0x16u8, 0, 0][..]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn query_versions() {
        let v1 = [0x11u8, 0, 0, 0, 0, 0, 0, 0];
        let v2 = [0x11u8, 100, 0, 0, 0, 0, 0, 0];
        assert_eq!(Packet::new_checked(&v1[..]).unwrap().query_version(), 1);
        assert_eq!(Packet::new_checked(&v2[..]).unwrap().query_version(), 2);
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&[0x99u8, 0, 0, 0, 0, 0, 0, 0][..])),
            Err(WireError::UnknownType)
        );
    }
}
