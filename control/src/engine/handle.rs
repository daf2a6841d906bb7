//! What the engine does with a validated membership message, written once
//! for IGMP and MLD: reports, leaves (dones), group records and queries.
//! The family's own receive path (`receive`, `mld_rx`) validates the frame
//! and hands the message here.

use super::proto::Proto;
use super::querier::Heard;
use super::{Action, Engine, MemberEvent};
use crate::family::{BadSource, Generation, Version};
use crate::port::{Mac, PortId, PortMask};
use crate::table::{
    HostChange, MembershipKey, Origin, Record, RecordKind, RecordOutcome, Reporter, TableError,
};
use crate::time::Timestamp;
use crate::wire::SourceList;
use crate::wire::igmp::RecordType;
use core::time::Duration;

/// Where a message came from.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sender {
    pub port: PortId,
    pub vlan: u16,
    pub mac: Mac,
}

/// A received query, decoded.
#[derive(Clone, Copy, Debug)]
pub(super) struct QueryIn<'a, A> {
    pub src: A,
    pub generation: Generation,
    /// Unspecified for a general query.
    pub group: A,
    /// The Max Resp Time the query asks for.
    pub max_resp: Duration,
    pub s_flag: bool,
    pub sources: SourceList<'a, A>,
}

impl Engine {
    pub(super) fn count_port_reject(&mut self, port: PortId) {
        if let Some(p) = self.counters.port(port) {
            p.rejected += 1;
        }
    }

    /// Router ports of family `A` on the sender's VLAN that are up,
    /// without the ingress port.
    fn router_targets<A: Proto>(&self, from: Sender) -> PortMask {
        let routers = A::snooper(&self.fam).routers.mask(from.vlan);
        (routers & self.up & self.vlans.carriers(from.vlan)).without(from.port)
    }

    /// Every up port of the sender's VLAN but the ingress port.
    pub(super) fn flood_targets(&self, from: Sender) -> PortMask {
        (self.up & self.vlans.carriers(from.vlan)).without(from.port)
    }

    /// A v1/v2 report (IGMPv1, IGMPv2, MLDv1): the group is joined.
    pub(super) fn on_report<A: Proto>(
        &mut self,
        now: Timestamp,
        from: Sender,
        generation: Generation,
        group: A,
        out: &mut Vec<Action>,
    ) {
        self.count_report::<A>(generation);
        if !self.check_group(from.port, group) {
            return;
        }
        if !group.never_snooped() {
            let rec = if generation == Generation::NoLeave {
                Record::v1_report()
            } else {
                Record::v2_report()
            };
            let key = MembershipKey {
                vlan: from.vlan,
                group,
            };
            self.learn(now, key, from, rec, out);
        }
        self.forward_report::<A>(from, out);
    }

    fn count_report<A: Proto>(&mut self, generation: Generation) {
        let c = self.pc::<A>();
        *match A::version(generation) {
            Version::V1 => &mut c.rx_v1_report,
            Version::V2 => &mut c.rx_v2_report,
            Version::V3 => &mut c.rx_v3_report,
        } += 1;
    }

    /// An IGMPv2 leave or MLDv1 done: TO_IN({}) for the table.
    pub(super) fn on_leave<A: Proto>(
        &mut self,
        now: Timestamp,
        from: Sender,
        group: A,
        out: &mut Vec<Action>,
    ) {
        self.pc::<A>().rx_v2_leave += 1;
        if !self.check_group(from.port, group) {
            return;
        }
        if !group.never_snooped() {
            let key = MembershipKey {
                vlan: from.vlan,
                group,
            };
            self.learn(now, key, from, Record::v2_leave(), out);
        }
        if self.forward(self.router_targets::<A>(from), out) {
            self.pc::<A>().tx_forward_leave += 1;
        }
    }

    /// A v3 report (IGMPv3, MLDv2) arrived; its records follow one by one
    /// through `on_record`.
    pub(super) fn on_v3_report<A: Proto>(&mut self) {
        self.count_report::<A>(Generation::SourceFilter);
    }

    /// Reports go to router ports only (RFC 4541 §2.1.1 (1)), of their
    /// own VLAN.
    pub(super) fn forward_report<A: Proto>(&mut self, from: Sender, out: &mut Vec<Action>) {
        if self.forward(self.router_targets::<A>(from), out) {
            self.pc::<A>().tx_forward_report += 1;
        }
    }

    /// RFC 4541 §2.1.1 (3): unrecognized messages MUST be flooded to all
    /// other ports (of their VLAN).
    pub(super) fn flood_unknown<A: Proto>(&mut self, from: Sender, out: &mut Vec<Action>) {
        if self.forward(self.flood_targets(from), out) {
            self.pc::<A>().tx_forward_unknown += 1;
        }
    }

    /// A group address in a report or leave must be multicast; groups that
    /// are never snooped are counted here and pass (the caller does not
    /// learn them).
    fn check_group<A: Proto>(&mut self, port: PortId, group: A) -> bool {
        if !group.is_multicast() {
            self.pc::<A>().reject_bad_group += 1;
            self.count_port_reject(port);
            return false;
        }
        if group.never_snooped() {
            self.pc::<A>().rx_link_local_report += 1;
        }
        true
    }

    /// One group record of a v3 report (an address record of MLDv2).
    pub(super) fn on_record<A: Proto>(
        &mut self,
        now: Timestamp,
        from: Sender,
        record_type: RecordType,
        group: A,
        list: SourceList<'_, A>,
        out: &mut Vec<Action>,
    ) {
        self.pc::<A>().rx_v3_records += 1;
        if !self.check_group(from.port, group) || group.never_snooped() {
            return;
        }
        let kind = match record_type {
            RecordType::ModeIsInclude => RecordKind::IsIn,
            RecordType::ModeIsExclude => RecordKind::IsEx,
            RecordType::ChangeToInclude => RecordKind::ToIn,
            RecordType::ChangeToExclude => RecordKind::ToEx,
            RecordType::AllowNewSources => RecordKind::Allow,
            RecordType::BlockOldSources => RecordKind::Block,
            // RFC 3376 §4.2.12, RFC 3810 §5.2.12: unrecognized record
            // types MUST be ignored.
            RecordType::Unknown(_) => {
                self.pc::<A>().rx_v3_unknown_record += 1;
                return;
            }
        };
        let mut sources = core::mem::take(&mut self.sn::<A>().scratch);
        if self.check_sources(from.port, list, &mut sources) {
            if matches!(kind, RecordKind::IsIn | RecordKind::ToIn) && sources.is_empty() {
                // IS_IN{} / TO_IN{}: the host wants nothing of the group.
                self.pc::<A>().rx_v3_leave += 1;
            }
            let rec = Record {
                kind,
                sources: &sources,
                origin: Origin::V3,
            };
            let key = MembershipKey {
                vlan: from.vlan,
                group,
            };
            self.learn(now, key, from, rec, out);
        }
        self.sn::<A>().scratch = sources;
    }

    /// Copy a record's sources into `buf`, sorted, and check them. A bad
    /// source (multicast, 0.0.0.0 or ::, broadcast: RFC 3376 §4.2.8 and
    /// RFC 3810 §5.2.9 sources are hosts' unicast addresses) or a source
    /// listed twice is counted and the record ignored: the record is not a
    /// valid set of sources, but every record of a report stands alone
    /// (its own group, RFC 3376 §4.2.4), so the report's other records
    /// still count; dropping them would lose state changes that are only
    /// retransmitted [Robustness] times.
    fn check_sources<A: Proto>(
        &mut self,
        port: PortId,
        list: SourceList<'_, A>,
        buf: &mut Vec<A>,
    ) -> bool {
        buf.clear();
        for s in list.iter() {
            if let Some(why) = s.bad_source() {
                let c = self.pc::<A>();
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
            self.pc::<A>().reject_source_duplicate += 1;
            self.count_port_reject(port);
            return false;
        }
        true
    }

    fn learn<A: Proto>(
        &mut self,
        now: Timestamp,
        key: MembershipKey<A>,
        from: Sender,
        rec: Record<'_, A>,
        out: &mut Vec<Action>,
    ) {
        let who = Reporter {
            port: from.port,
            mac: from.mac,
            fast_leave: self.fast_leave.contains(from.port),
        };
        let mut events = Vec::new();
        let table = &mut self.sn::<A>().table;
        let before = table.len();
        let res = table.learn(now, key, who, rec, &mut events);
        let added = table.len().saturating_sub(before) as u64;
        self.note_change(key);
        self.pc::<A>().groups_added += added;
        self.apply_events(events, true, out);
        if let Ok(RecordOutcome::Applied { host, .. }) = &res {
            self.log_member(key, from, &rec, *host);
        }
        self.count_outcome(now, key, from.port, &rec, res);
    }

    /// Keeps a host's join or leave, when someone asked for them.
    fn log_member<A: Proto>(
        &mut self,
        key: MembershipKey<A>,
        from: Sender,
        rec: &Record<'_, A>,
        host: HostChange,
    ) {
        let (Some(log), false) = (&mut self.member_events, host == HostChange::Kept) else {
            return;
        };
        log.push(MemberEvent {
            vlan: key.vlan,
            group: key.group.into(),
            port: from.port,
            host: from.mac,
            joined: host == HostChange::Joined,
            sources: rec.sources.iter().map(|s| (*s).into()).collect(),
        });
    }

    /// Count what became of a record; log refusals by a limit.
    fn count_outcome<A: Proto>(
        &mut self,
        now: Timestamp,
        key: MembershipKey<A>,
        port: PortId,
        rec: &Record<'_, A>,
        res: Result<RecordOutcome, TableError>,
    ) {
        let c = self.pc::<A>();
        let limit = match res {
            Ok(RecordOutcome::Applied { host, fast_leave }) => {
                let host_left = host == HostChange::Left;
                c.rx_v3_leave += u64::from(host_left && rec.kind == RecordKind::Block);
                c.fast_leaves += u64::from(fast_leave);
                return;
            }
            Ok(RecordOutcome::NotMember) => {
                let leave = rec.kind == RecordKind::ToIn && rec.sources.is_empty();
                c.ignored_leave_not_member += u64::from(leave);
                return;
            }
            Ok(RecordOutcome::IgnoredCompat) => return c.ignored_record_compat += 1,
            Ok(RecordOutcome::IgnoredLeaveV1) => return c.ignored_leave_v1_compat += 1,
            Err(TableError::GlobalLimit) => {
                c.reject_limit_global += 1;
                "global group limit reached: new group rejected"
            }
            Err(TableError::PortLimit(_)) => {
                c.reject_limit_port += 1;
                "port group limit reached: new group rejected"
            }
            Err(TableError::SourceLimit) => {
                c.reject_limit_sources += 1;
                "max-sources-per-group reached: record rejected, the group keeps its state"
            }
            Err(_) => return self.counters.reject_bad_port += 1,
        };
        self.count_port_reject(port);
        self.log_limit(now, limit, key, port);
    }

    /// A query: lowers timers (a group query of another querier), learns
    /// a router port and takes part in the election (unless from the
    /// unspecified address), and is flooded.
    pub(super) fn on_query<A: Proto>(
        &mut self,
        now: Timestamp,
        from: Sender,
        q: &QueryIn<'_, A>,
        out: &mut Vec<Action>,
    ) {
        let c = self.pc::<A>();
        *match A::version(q.generation) {
            Version::V1 => &mut c.rx_v1_query,
            Version::V2 => &mut c.rx_v2_query,
            Version::V3 => &mut c.rx_v3_query,
        } += 1;
        if self.guard.contains(from.port) {
            self.pc::<A>().ignored_guard_query += 1;
            return;
        }
        if q.group != A::UNSPECIFIED {
            if !q.group.is_multicast() {
                self.pc::<A>().reject_bad_group += 1;
                return self.count_port_reject(from.port);
            }
            self.pc::<A>().rx_group_query += 1;
            if !q.group.never_snooped() {
                let key = MembershipKey {
                    vlan: from.vlan,
                    group: q.group,
                };
                self.lower_on_query(now, from.port, key, q);
            }
        }
        if q.src == A::UNSPECIFIED {
            // A proxy query (RFC 4541 §2.1.1): no router, no election.
            self.pc::<A>().rx_query_zero_source += 1;
        } else {
            self.heard_querier(now, from, q.src);
        }
        if self.forward(self.flood_targets(from), out) {
            self.pc::<A>().tx_forward_query += 1;
        }
    }

    /// A query from `src`: its port is a router port of its VLAN; the
    /// election on that VLAN.
    fn heard_querier<A: Proto>(&mut self, now: Timestamp, from: Sender, src: A) {
        let until = now + self.config.router_timeout();
        let sn = A::snooper_mut(&mut self.fam);
        let learned = sn.routers.learn(from.vlan, from.port, src, until);
        let heard = sn.querier.heard(&self.config, from.vlan, src, now);
        let c = self.pc::<A>();
        c.router_ports_learned += u64::from(learned);
        if heard == (Heard::OtherQuerier { newly: true }) {
            c.querier_other_elected += 1;
        }
    }

    /// RFC 3376 §6.6.1 / RFC 3810 §7.6.1: a query with the S flag clear
    /// lowers the timers it is about to LMQT: Q(G) the group timer,
    /// Q(G,A) the source timers of A (RFC 2236 §3 for v2: "Last Member
    /// Query Count" × the query's Max Response Time). With the S flag set,
    /// no timer changes.
    fn lower_on_query<A: Proto>(
        &mut self,
        now: Timestamp,
        port: PortId,
        key: MembershipKey<A>,
        q: &QueryIn<'_, A>,
    ) {
        let v3 = q.generation == Generation::SourceFilter;
        if v3 && !q.sources.is_empty() {
            self.pc::<A>().rx_group_source_query += 1;
        }
        if v3 && q.s_flag {
            return;
        }
        let within = q.max_resp * u32::from(self.config.last_member_count);
        if !v3 || q.sources.is_empty() {
            self.sn::<A>().table.lower_timers(now, key, within);
            return;
        }
        let mut sources = core::mem::take(&mut self.sn::<A>().scratch);
        if self.check_sources(port, q.sources, &mut sources)
            && self
                .sn::<A>()
                .table
                .lower_source_timers(now, key, &sources, within)
        {
            self.pc::<A>().source_timers_lowered += 1;
        }
        self.sn::<A>().scratch = sources;
    }
}
