//! Receive path: validate a frame and act on IGMP messages and PIM hellos.

use super::{Action, BadSource, Engine, bad_source, is_link_local};
use crate::port::{Mac, PortId, PortMask};
use crate::table::{
    GroupKey, Origin, Record, RecordKind, RecordOutcome, Reporter, Source, TableError,
};
use crate::time::Timestamp;
use crate::wire::frame::{self, Frame, FrameError};
use crate::wire::igmp::{self, RecordType, SourceList};
use crate::wire::{WireError, ipv4, pim};
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
        let f = match frame::parse(bytes) {
            Ok(f) => f,
            Err(FrameError::NotIpv4) => {
                self.counters.rx_not_ipv4 += 1;
                return;
            }
            Err(FrameError::Malformed(e)) => return self.reject(port, e),
        };
        match f.ip.protocol {
            ipv4::PROTO_IGMP => self.receive_igmp(now, port, &f, out),
            ipv4::PROTO_PIM if f.ip.dst == pim::ALL_PIM_ROUTERS => {
                self.receive_pim(now, port, &f, out)
            }
            _ => self.counters.rx_other_ip += 1,
        }
    }

    fn reject(&mut self, port: PortId, e: WireError) {
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
            WireError::BadIpv6Header => &mut c.reject_bad_ip_header,
            WireError::BadExtHeader => &mut c.reject_bad_ip_options,
            WireError::ExtChainTooLong => &mut c.reject_bad_ip_options,
            WireError::BadIcmpv6Checksum => &mut c.reject_bad_igmp_checksum,
            WireError::UnknownMldType => &mut c.reject_unknown_igmp_type,
        } += 1;
        self.count_port_reject(port);
    }

    fn count_port_reject(&mut self, port: PortId) {
        if let Some(p) = self.counters.port(port) {
            p.rejected += 1;
        }
    }

    /// Router ports that are up, without the ingress port.
    fn router_targets(&self, ingress: PortId) -> PortMask {
        (self.routers.mask() & self.up).without(ingress)
    }

    /// Every up port but the ingress port.
    fn flood_targets(&self, ingress: PortId) -> PortMask {
        self.up.without(ingress)
    }

    fn receive_igmp(&mut self, now: Timestamp, port: PortId, f: &Frame<'_>, out: &mut Vec<Action>) {
        // RFC 2236 §2 / RFC 3376 §4: IGMP is sent with TTL 1; anything else
        // was routed and is not a link-local membership message.
        if f.ip.ttl != 1 {
            self.counters.reject_bad_ttl += 1;
            return self.count_port_reject(port);
        }
        if !f.ip.dst.is_multicast() {
            self.counters.reject_not_multicast += 1;
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
        let mac = f.eth.src;
        let vlan = f.eth.vlan;
        match pkt.msg_type() {
            igmp::TYPE_QUERY => self.receive_query(now, port, f, &pkt, out),
            igmp::TYPE_V1_REPORT | igmp::TYPE_V2_REPORT => {
                let version = if pkt.msg_type() == igmp::TYPE_V1_REPORT {
                    self.counters.rx_v1_report += 1;
                    1
                } else {
                    self.counters.rx_v2_report += 1;
                    2
                };
                let group = pkt.group_addr();
                if !self.check_group(port, group) {
                    return;
                }
                if !is_link_local(group) {
                    let key = GroupKey { vlan, group };
                    let rec = if version == 1 {
                        Record::v1_report()
                    } else {
                        Record::v2_report()
                    };
                    self.learn(now, key, port, mac, rec, out);
                }
                self.forward_report(port, out);
            }
            igmp::TYPE_V2_LEAVE => {
                self.counters.rx_v2_leave += 1;
                let group = pkt.group_addr();
                if !self.check_group(port, group) {
                    return;
                }
                if !is_link_local(group) {
                    let key = GroupKey { vlan, group };
                    self.learn(now, key, port, mac, Record::v2_leave(), out);
                }
                if self.forward(self.router_targets(port), out) {
                    self.counters.tx_forward_leave += 1;
                }
            }
            igmp::TYPE_V3_REPORT => {
                self.counters.rx_v3_report += 1;
                for rec in pkt.records() {
                    self.receive_record(now, port, vlan, mac, &rec, out);
                }
                self.forward_report(port, out);
            }
            _ => {
                // RFC 4541 §2.1.1 (3): unrecognized IGMP messages MUST be
                // flooded to all other ports.
                self.counters.reject_unknown_igmp_type += 1;
                if self.forward(self.flood_targets(port), out) {
                    self.counters.tx_forward_unknown += 1;
                }
            }
        }
    }

    /// Reports go to router ports only (RFC 4541 §2.1.1 (1)).
    fn forward_report(&mut self, port: PortId, out: &mut Vec<Action>) {
        if self.forward(self.router_targets(port), out) {
            self.counters.tx_forward_report += 1;
        }
    }

    /// A group address in a report or leave must be multicast; 224.0.0.x
    /// is counted here and passes (the caller does not learn it).
    fn check_group(&mut self, port: PortId, group: Ipv4Addr) -> bool {
        if !group.is_multicast() {
            self.counters.reject_bad_group += 1;
            self.count_port_reject(port);
            return false;
        }
        if is_link_local(group) {
            self.counters.rx_link_local_report += 1;
        }
        true
    }

    /// One group record of a v3 report.
    fn receive_record(
        &mut self,
        now: Timestamp,
        port: PortId,
        vlan: u16,
        mac: Mac,
        rec: &igmp::GroupRecord<&[u8]>,
        out: &mut Vec<Action>,
    ) {
        self.counters.rx_v3_records += 1;
        let group = rec.group_addr();
        if !self.check_group(port, group) || is_link_local(group) {
            return;
        }
        let kind = match rec.record_type() {
            RecordType::ModeIsInclude => RecordKind::IsIn,
            RecordType::ModeIsExclude => RecordKind::IsEx,
            RecordType::ChangeToInclude => RecordKind::ToIn,
            RecordType::ChangeToExclude => RecordKind::ToEx,
            RecordType::AllowNewSources => RecordKind::Allow,
            RecordType::BlockOldSources => RecordKind::Block,
            // RFC 3376 §4.2.12: unrecognized record types MUST be ignored.
            RecordType::Unknown(_) => {
                self.counters.rx_v3_unknown_record += 1;
                return;
            }
        };
        let mut sources = core::mem::take(&mut self.scratch);
        if self.check_sources(port, rec.sources(), &mut sources) {
            if matches!(kind, RecordKind::IsIn | RecordKind::ToIn) && sources.is_empty() {
                // IS_IN{} / TO_IN{}: the host wants nothing of the group.
                self.counters.rx_v3_leave += 1;
            }
            let rec = Record {
                kind,
                sources: &sources,
                origin: Origin::V3,
            };
            self.learn(now, GroupKey { vlan, group }, port, mac, rec, out);
        }
        self.scratch = sources;
    }

    /// Copy a record's sources into `buf`, sorted, and check them. A bad
    /// source (multicast, 0.0.0.0, broadcast: RFC 3376 §4.2.8 sources are
    /// hosts' unicast addresses) or a source listed twice is counted and
    /// the record ignored: the record is not a valid set of sources, but
    /// every record of a report stands alone (its own group, RFC 3376
    /// §4.2.4), so the report's other records still count; dropping them
    /// would lose state changes that are only retransmitted [Robustness]
    /// times.
    fn check_sources(&mut self, port: PortId, list: SourceList<'_>, buf: &mut Vec<Source>) -> bool {
        buf.clear();
        for s in list.iter() {
            if let Some(why) = bad_source(s) {
                let c = &mut self.counters;
                *match why {
                    BadSource::Multicast => &mut c.reject_source_multicast,
                    BadSource::Zero => &mut c.reject_source_zero,
                    BadSource::Broadcast => &mut c.reject_source_broadcast,
                } += 1;
                self.count_port_reject(port);
                return false;
            }
            buf.push(s);
        }
        buf.sort_unstable();
        if buf.windows(2).any(|w| w[0] == w[1]) {
            self.counters.reject_source_duplicate += 1;
            self.count_port_reject(port);
            return false;
        }
        true
    }

    fn learn(
        &mut self,
        now: Timestamp,
        key: GroupKey,
        port: PortId,
        mac: Mac,
        rec: Record<'_>,
        out: &mut Vec<Action>,
    ) {
        let before = self.table.len();
        let who = Reporter {
            port,
            mac,
            fast_leave: self.fast_leave.contains(port),
        };
        let mut events = Vec::new();
        let res = self.table.learn(now, key, who, rec, &mut events);
        self.counters.groups_added += self.table.len().saturating_sub(before) as u64;
        self.apply_events(events, true, out);
        match res {
            Ok(RecordOutcome::Applied {
                host_left,
                fast_leave,
            }) => {
                if host_left && rec.kind == RecordKind::Block {
                    self.counters.rx_v3_leave += 1;
                }
                if fast_leave {
                    self.counters.fast_leaves += 1;
                }
            }
            Ok(RecordOutcome::NotMember) => {
                if rec.kind == RecordKind::ToIn && rec.sources.is_empty() {
                    self.counters.ignored_leave_not_member += 1;
                }
            }
            Ok(RecordOutcome::IgnoredCompat) => self.counters.ignored_record_compat += 1,
            Ok(RecordOutcome::IgnoredLeaveV1) => self.counters.ignored_leave_v1_compat += 1,
            Err(TableError::GlobalLimit) => {
                self.counters.reject_limit_global += 1;
                self.count_port_reject(port);
                self.log_limit(
                    now,
                    "global group limit reached: new group rejected",
                    key,
                    port,
                );
            }
            Err(TableError::PortLimit(_)) => {
                self.counters.reject_limit_port += 1;
                self.count_port_reject(port);
                self.log_limit(
                    now,
                    "port group limit reached: new group rejected",
                    key,
                    port,
                );
            }
            Err(TableError::SourceLimit) => {
                self.counters.reject_limit_sources += 1;
                self.count_port_reject(port);
                self.log_limit(
                    now,
                    "max-sources-per-group reached: record rejected, the group keeps its state",
                    key,
                    port,
                );
            }
            Err(_) => self.counters.reject_bad_port += 1,
        }
    }

    fn receive_query(
        &mut self,
        now: Timestamp,
        port: PortId,
        f: &Frame<'_>,
        pkt: &igmp::Packet<&[u8]>,
        out: &mut Vec<Action>,
    ) {
        let version = pkt.query_version();
        match version {
            1 => self.counters.rx_v1_query += 1,
            2 => self.counters.rx_v2_query += 1,
            _ => self.counters.rx_v3_query += 1,
        }
        if self.guard.contains(port) {
            self.counters.ignored_guard_query += 1;
            return;
        }
        let group = pkt.group_addr();
        if !group.is_unspecified() {
            if !group.is_multicast() {
                self.counters.reject_bad_group += 1;
                return self.count_port_reject(port);
            }
            self.counters.rx_group_query += 1;
            if !is_link_local(group) {
                self.lower_on_query(
                    now,
                    port,
                    GroupKey {
                        vlan: f.eth.vlan,
                        group,
                    },
                    pkt,
                );
            }
        }
        let src = f.ip.src;
        if src.is_unspecified() {
            // A proxy query (RFC 4541 §2.1.1): no router, no election.
            self.counters.rx_query_zero_source += 1;
        } else {
            if self
                .routers
                .learn(port, src, now + self.config.router_timeout())
            {
                self.counters.router_ports_learned += 1;
            }
            if let super::querier::Heard::OtherQuerier { newly: true } =
                self.querier.heard(&self.config, f.eth.vlan, src, now)
            {
                self.counters.querier_other_elected += 1;
            }
        }
        if self.forward(self.flood_targets(port), out) {
            self.counters.tx_forward_query += 1;
        }
    }

    /// RFC 3376 §6.6.1: a query with the S flag clear lowers the timers it
    /// is about to LMQT: Q(G) the group timer, Q(G,A) the source timers of
    /// A (RFC 2236 §3 for v2: "Last Member Query Count" × the query's Max
    /// Response Time). With the S flag set, no timer changes.
    fn lower_on_query(
        &mut self,
        now: Timestamp,
        port: PortId,
        key: GroupKey,
        pkt: &igmp::Packet<&[u8]>,
    ) {
        let v3 = pkt.query_version() == 3;
        if v3 && pkt.num_sources() > 0 {
            self.counters.rx_group_source_query += 1;
        }
        if v3 && pkt.s_flag() {
            return;
        }
        let tenths = if v3 {
            igmp::decode_float(pkt.max_resp_code())
        } else {
            u32::from(pkt.max_resp_code())
        };
        let within = Duration::from_millis(u64::from(tenths) * 100)
            * u32::from(self.config.last_member_count);
        if !v3 || pkt.num_sources() == 0 {
            self.table.lower_timers(now, key, within);
            return;
        }
        let mut sources = core::mem::take(&mut self.scratch);
        if self.check_sources(port, pkt.query_sources(), &mut sources)
            && self.table.lower_source_timers(now, key, &sources, within)
        {
            self.counters.source_timers_lowered += 1;
        }
        self.scratch = sources;
    }

    fn receive_pim(&mut self, now: Timestamp, port: PortId, f: &Frame<'_>, out: &mut Vec<Action>) {
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
        if !f.ip.src.is_unspecified()
            && self
                .routers
                .learn(port, f.ip.src, now + self.config.router_timeout())
        {
            self.counters.router_ports_learned += 1;
        }
        // 224.0.0.13 is link-local: flood it.
        if self.forward(self.flood_targets(port), out) {
            self.counters.tx_forward_pim += 1;
        }
    }
}
