//! MLD receive path (RFC 2710, RFC 3810): validate an ICMPv6 frame as MLD
//! and hand its messages to the family-generic handlers.

use super::handle::{QueryIn, Sender};
use super::{Action, Engine};
use crate::family::{Generation, is_link_local_unicast};
use crate::port::PortId;
use crate::time::Timestamp;
use crate::wire::frame::Frame6;
use crate::wire::{WireError, ipv6, mld};
use core::net::Ipv6Addr;
use core::time::Duration;

fn is_mld(msg_type: u8) -> bool {
    matches!(
        msg_type,
        mld::TYPE_QUERY | mld::TYPE_V1_REPORT | mld::TYPE_DONE | mld::TYPE_V2_REPORT
    )
}

impl Engine {
    /// An ICMPv6 frame: MLD is acted on; anything else (neighbour
    /// discovery, echo) is not ours and follows the flooding rules.
    pub(super) fn receive_icmpv6(
        &mut self,
        now: Timestamp,
        from: Sender,
        f: &Frame6<'_>,
        out: &mut Vec<Action>,
    ) {
        let port = from.port;
        if !f.payload.first().copied().is_some_and(is_mld) {
            self.counters.rx_other_ip += 1;
            return;
        }
        let Some(pkt) = self.validate_mld(port, f) else {
            return;
        };
        self.counters.rx_mld += 1;
        match pkt.msg_type() {
            mld::TYPE_QUERY => self.on_query(now, from, &mld_query(f.ip.src, &pkt), out),
            mld::TYPE_V1_REPORT => {
                self.on_report(now, from, Generation::AnySource, pkt.address(), out)
            }
            mld::TYPE_DONE => self.on_leave(now, from, pkt.address(), out),
            _ => {
                self.on_v3_report::<Ipv6Addr>();
                for rec in pkt.records() {
                    let (t, g) = (rec.record_type(), rec.address());
                    self.on_record(now, from, t, g, rec.sources(), out);
                }
                self.forward_report::<Ipv6Addr>(from, out);
            }
        }
    }

    /// The checks of RFC 3810 §5.1.14 and §5.2.13 (RFC 2710 §3 for MLDv1):
    /// a valid ICMPv6 checksum, hop limit 1, the Router Alert option, a
    /// multicast destination, lengths that fit, and a link-local source
    /// (queries), or link-local or :: (reports and dones, RFC 3590 §4: a
    /// host without an address yet reports from ::). Each failure is
    /// counted; nothing is learned or forwarded.
    fn validate_mld<'a>(&mut self, port: PortId, f: &Frame6<'a>) -> Option<mld::Packet<&'a [u8]>> {
        let reject = |e: &mut Engine, c: fn(&mut Engine) -> &mut u64| {
            *c(e) += 1;
            e.count_port_reject(port);
            None
        };
        if !mld::Packet::new_unchecked(f.payload).verify_checksum(f.ip.src, f.ip.dst) {
            self.reject(port, WireError::BadIcmpv6Checksum);
            return None;
        }
        if f.ip.hop_limit != 1 {
            return reject(self, |e| &mut e.counters.mld.reject_bad_ttl);
        }
        if f.ip.router_alert != Some(ipv6::ROUTER_ALERT_MLD) {
            return reject(self, |e| &mut e.counters.reject_no_router_alert);
        }
        if !f.ip.dst.is_multicast() {
            return reject(self, |e| &mut e.counters.mld.reject_not_multicast);
        }
        let pkt = match mld::Packet::new_checked(f.payload) {
            Ok(p) => p,
            Err(e) => {
                self.reject(port, e);
                return None;
            }
        };
        let src = f.ip.src;
        if pkt.msg_type() == mld::TYPE_QUERY {
            if !is_link_local_unicast(src) {
                return reject(self, |e| &mut e.counters.reject_query_not_link_local);
            }
        } else if !is_link_local_unicast(src) && !src.is_unspecified() {
            return reject(self, |e| &mut e.counters.reject_report_not_link_local);
        }
        Some(pkt)
    }
}

/// An MLD query decoded: RFC 3810 §8.1 tells MLDv1 (24 bytes, Maximum
/// Response Delay in ms) from MLDv2 (28 or more, §5.1.3 code).
fn mld_query<'a>(src: Ipv6Addr, pkt: &'a mld::Packet<&[u8]>) -> QueryIn<'a, Ipv6Addr> {
    let (generation, ms) = if pkt.is_v2_query() {
        (
            Generation::SourceFilter,
            mld::decode_max_resp(pkt.max_resp_code()),
        )
    } else {
        (Generation::AnySource, u32::from(pkt.max_resp_code()))
    };
    QueryIn {
        src,
        generation,
        group: pkt.address(),
        max_resp: Duration::from_millis(u64::from(ms)),
        s_flag: pkt.s_flag(),
        sources: pkt.query_sources(),
    }
}
