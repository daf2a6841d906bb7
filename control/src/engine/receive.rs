//! Receive path: validate a frame and hand IGMP messages and MLD messages
//! (see `mld_rx`) to the family-generic handlers; PIM hellos.

use super::handle::{QueryIn, Sender};
use super::{Action, Engine};
use crate::family::Generation;
use crate::port::PortId;
use crate::time::Timestamp;
use crate::wire::frame::{self, Frame, FrameError, Parsed};
use crate::wire::{WireError, igmp, ipv4, ipv6, pim};
use core::net::Ipv4Addr;
use core::time::Duration;

impl Engine {
    pub(super) fn receive(
        &mut self,
        now: Timestamp,
        port: PortId,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) {
        let parsed = match frame::parse_any(bytes) {
            Ok(f) => f,
            Err(FrameError::NotIpv4) => {
                self.counters.rx_not_ipv4 += 1;
                return;
            }
            Err(FrameError::Malformed(e)) => return self.reject(port, e),
        };
        let tag = match &parsed {
            Parsed::Ipv4(f) => f.eth.vlan,
            Parsed::Ipv6(f) => f.eth.vlan,
        };
        // The fast path drops these before they reach us; a frame that got
        // here anyway must not be learned on a VLAN its port is not in.
        let Some(vlan) = self.vlans.ingress(port, tag) else {
            self.counters.reject_vlan_not_carried += 1;
            return self.count_port_reject(port);
        };
        let from = |mac| Sender { port, vlan, mac };
        match parsed {
            Parsed::Ipv4(f) => match f.ip.protocol {
                ipv4::PROTO_IGMP => self.receive_igmp(now, from(f.eth.src), &f, out),
                ipv4::PROTO_PIM if f.ip.dst == pim::ALL_PIM_ROUTERS => {
                    self.receive_pim(now, from(f.eth.src), &f, out)
                }
                _ => self.counters.rx_other_ip += 1,
            },
            Parsed::Ipv6(f) if self.config.mld && f.ip.next_header == ipv6::NEXT_ICMPV6 => {
                self.receive_icmpv6(now, from(f.eth.src), &f, out)
            }
            Parsed::Ipv6(_) => self.counters.rx_other_ip += 1,
        }
    }

    pub(super) fn reject(&mut self, port: PortId, e: WireError) {
        let c = &mut self.counters;
        *match e {
            WireError::Truncated | WireError::Malformed => &mut c.reject_truncated,
            WireError::BadIpHeader => &mut c.reject_bad_ip_header,
            WireError::BadIpOptions => &mut c.reject_bad_ip_options,
            WireError::BadIhl => &mut c.reject_bad_ihl,
            WireError::BadIpChecksum => &mut c.reject_bad_ip_checksum,
            WireError::Fragment => &mut c.reject_fragment,
            WireError::BadIgmpChecksum => &mut c.reject_bad_igmp_checksum,
            WireError::BadPim => &mut c.reject_bad_pim,
            WireError::UnknownType => &mut c.reject_unknown_igmp_type,
            WireError::SourceOverrun => &mut c.reject_source_overrun,
            WireError::BadIpv6Header => &mut c.reject_bad_ipv6_header,
            WireError::BadExtHeader => &mut c.reject_bad_ext_header,
            WireError::ExtChainTooLong => &mut c.reject_ext_header_chain,
            WireError::BadIcmpv6Checksum => &mut c.reject_bad_icmpv6_checksum,
            WireError::UnknownMldType => &mut c.reject_unknown_mld_type,
        } += 1;
        self.count_port_reject(port);
    }

    fn receive_igmp(&mut self, now: Timestamp, from: Sender, f: &Frame<'_>, out: &mut Vec<Action>) {
        let port = from.port;
        // RFC 2236 §2 / RFC 3376 §4: IGMP is sent with TTL 1; anything else
        // was routed and is not a link-local membership message.
        if f.ip.ttl != 1 {
            self.counters.igmp.reject_bad_ttl += 1;
            return self.count_port_reject(port);
        }
        if !f.ip.dst.is_multicast() {
            self.counters.igmp.reject_not_multicast += 1;
            return self.count_port_reject(port);
        }
        let pkt = match igmp::Packet::new_checked(f.payload) {
            Ok(p) => p,
            Err(e) => return self.reject(port, e),
        };
        if !pkt.verify_checksum() {
            return self.reject(port, WireError::BadIgmpChecksum);
        }
        self.counters.rx_igmp += 1;
        match pkt.msg_type() {
            igmp::TYPE_QUERY => self.on_query(now, from, &igmp_query(f.ip.src, &pkt), out),
            igmp::TYPE_V1_REPORT => {
                self.on_report(now, from, Generation::NoLeave, pkt.group_addr(), out)
            }
            igmp::TYPE_V2_REPORT => {
                self.on_report(now, from, Generation::AnySource, pkt.group_addr(), out)
            }
            igmp::TYPE_V2_LEAVE => self.on_leave(now, from, pkt.group_addr(), out),
            igmp::TYPE_V3_REPORT => {
                self.on_v3_report::<Ipv4Addr>();
                for rec in pkt.records() {
                    let (t, g) = (rec.record_type(), rec.group_addr());
                    self.on_record(now, from, t, g, rec.sources(), out);
                }
                self.forward_report::<Ipv4Addr>(from, out);
            }
            _ => {
                self.counters.reject_unknown_igmp_type += 1;
                self.flood_unknown::<Ipv4Addr>(from, out);
            }
        }
    }

    fn receive_pim(&mut self, now: Timestamp, from: Sender, f: &Frame<'_>, out: &mut Vec<Action>) {
        let port = from.port;
        let pkt = match pim::Packet::new_checked(f.payload) {
            Ok(p) => p,
            Err(e) => return self.reject(port, e),
        };
        if !pkt.verify_checksum() || pim::Repr::parse(&pkt).is_err() {
            return self.reject(port, WireError::BadPim);
        }
        if pkt.msg_type() != pim::TYPE_HELLO {
            self.counters.rx_other_ip += 1;
            return;
        }
        self.counters.rx_pim_hello += 1;
        if self.guard.contains(port) {
            self.counters.ignored_guard_pim += 1;
            return;
        }
        let until = now + self.config.router_timeout();
        let src = f.ip.src;
        if !src.is_unspecified() && self.fam.igmp.routers.learn(from.vlan, port, src, until) {
            self.counters.igmp.router_ports_learned += 1;
        }
        // 224.0.0.13 is link-local: flood it.
        if self.forward(self.flood_targets(from), out) {
            self.counters.tx_forward_pim += 1;
        }
    }
}

/// An IGMP query decoded: RFC 3376 §7.1 tells the version from the length
/// and the Max Resp Code (v1: 0; v2: tenths; v3: §4.1.1 float of tenths).
fn igmp_query<'a>(src: Ipv4Addr, pkt: &'a igmp::Packet<&[u8]>) -> QueryIn<'a, Ipv4Addr> {
    let (generation, tenths) = match pkt.query_version() {
        1 => (Generation::NoLeave, 0),
        2 => (Generation::AnySource, u32::from(pkt.max_resp_code())),
        _ => (
            Generation::SourceFilter,
            igmp::decode_float(pkt.max_resp_code()),
        ),
    };
    QueryIn {
        src,
        generation,
        group: pkt.group_addr(),
        max_resp: Duration::from_millis(u64::from(tenths) * 100),
        s_flag: pkt.s_flag(),
        sources: pkt.query_sources(),
    }
}
