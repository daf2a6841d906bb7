//! Learning from one group record: RFC 3376 §7.3.2 compatibility, the
//! §6.4 tables (see `filter`), explicit host tracking, and the queries
//! the tables ask for (§6.6.3), or an immediate expiry on a fast-leave
//! port.

use super::filter::{FilterMode, Queries, RecordKind};
use super::host;
use super::{
    Group, Member, MembershipKey, MembershipTable, PortSources, TableError, TableEvent, Timers,
};
use crate::family::{Family, Generation};
use crate::port::{MAX_PORTS, Mac, PortId};
use crate::time::Timestamp;
use std::collections::hash_map::Entry;

/// Where a record came from. RFC 3376 §7.3.2: v1 and v2 reports are
/// IS_EX({}), a v2 leave is TO_IN({}); RFC 3810 §8.3.2 reads an MLDv1
/// report as `V2Report` and an MLDv1 done as `V2Leave`, an MLDv2 record
/// as `V3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    V1Report,
    V2Report,
    V2Leave,
    V3,
}

/// One group record as the tables take it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a, A> {
    pub kind: RecordKind,
    /// Sorted, without duplicates, unicast (the engine checks).
    pub sources: &'a [A],
    pub origin: Origin,
}

impl<A> Record<'static, A> {
    pub fn v1_report() -> Record<'static, A> {
        Record {
            kind: RecordKind::IsEx,
            sources: &[],
            origin: Origin::V1Report,
        }
    }

    pub fn v2_report() -> Record<'static, A> {
        Record {
            kind: RecordKind::IsEx,
            sources: &[],
            origin: Origin::V2Report,
        }
    }

    pub fn v2_leave() -> Record<'static, A> {
        Record {
            kind: RecordKind::ToIn,
            sources: &[],
            origin: Origin::V2Leave,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    Applied {
        /// The reporting host joined, left (its state became INCLUDE {}),
        /// or neither.
        host: host::HostChange,
        /// What the record lowered expired at once (fast-leave port).
        fast_leave: bool,
    },
    /// The port is not a member and the record creates nothing.
    NotMember,
    /// Ignored by the compatibility mode (§7.3.2: BLOCK in v1/v2 mode).
    IgnoredCompat,
    /// A v2 leave while an IGMPv1 host is present (§7.3.2).
    IgnoredLeaveV1,
}

/// Who sent a record, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reporter {
    pub port: PortId,
    pub mac: Mac,
    /// The port removes at once what a leave would query for.
    pub fast_leave: bool,
}

/// What applying a record needs besides the group.
struct Ctx {
    now: Timestamp,
    gmi_at: Timestamp,
    timers: Timers,
    fast_leave: bool,
    max_sources: usize,
}

/// Records that may create a membership: the EXCLUDE ones, and INCLUDE
/// ones that name a source. BLOCK and TO_IN({}) never do.
fn creates<A>(rec: &Record<'_, A>) -> bool {
    match rec.kind {
        RecordKind::IsEx | RecordKind::ToEx => true,
        RecordKind::IsIn | RecordKind::ToIn | RecordKind::Allow => !rec.sources.is_empty(),
        RecordKind::Block => false,
    }
}

impl<A: Family> MembershipTable<A> {
    /// Learn from one record of a host. Limits apply only
    /// when a new group or a new (group, port) would be created, and to
    /// sources new to the group: existing memberships always refresh.
    pub fn learn(
        &mut self,
        now: Timestamp,
        key: MembershipKey<A>,
        who: Reporter,
        rec: Record<'_, A>,
        out: &mut Vec<TableEvent<A>>,
    ) -> Result<RecordOutcome, TableError> {
        let Reporter {
            port,
            mac,
            fast_leave,
        } = who;
        let p = Self::check_port(port)?;
        let ctx = Ctx {
            now,
            gmi_at: now + self.timers.gmi,
            timers: self.timers,
            fast_leave,
            max_sources: self.max_sources,
        };
        let creates = creates(&rec);
        let len = self.groups.len();
        let group = match self.groups.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                if !creates {
                    return Ok(RecordOutcome::NotMember);
                }
                if len >= self.max_groups {
                    return Err(TableError::GlobalLimit);
                }
                if self.port_groups[p] >= self.port_limits[p] {
                    return Err(TableError::PortLimit(port));
                }
                if rec.sources.len() > self.max_sources {
                    return Err(TableError::SourceLimit);
                }
                v.insert(Group::default())
            }
        };
        let (mi, fresh) = match group.member_index(port) {
            Some(i) => (i, false),
            None if !creates => return Ok(RecordOutcome::NotMember),
            None => {
                if self.port_groups[p] >= self.port_limits[p] {
                    return Err(TableError::PortLimit(port));
                }
                self.port_groups[p] += 1;
                group.members.push(Member::new(port, false));
                (group.members.len() - 1, true)
            }
        };
        let res = apply(group, key, mi, mac, rec, &ctx, &mut self.port_groups, out);
        if res.is_err() && fresh {
            // Refused (source limit): the membership just made goes again.
            group.members.retain(|m| m.port != port);
            self.port_groups[p] -= 1;
        }
        if group.members.is_empty() {
            self.groups.remove(&key);
        } else {
            Self::schedule(&mut self.heap, key, group);
        }
        res
    }
}

#[allow(clippy::too_many_arguments)]
fn apply<A: Copy + Ord>(
    group: &mut Group<A>,
    key: MembershipKey<A>,
    mi: usize,
    mac: Mac,
    rec: Record<'_, A>,
    ctx: &Ctx,
    port_groups: &mut [u32; MAX_PORTS],
    out: &mut Vec<TableEvent<A>>,
) -> Result<RecordOutcome, TableError> {
    let m = &mut group.members.as_mut_slice()[mi];
    let port = m.port;
    let Some(a) = compat_sources(m, &rec, ctx) else {
        return Ok(if rec.origin == Origin::V2Leave {
            RecordOutcome::IgnoredLeaveV1
        } else {
            RecordOutcome::IgnoredCompat
        });
    };
    if !a.is_empty() && group.source_count() + group.new_sources(a) > ctx.max_sources {
        return Err(TableError::SourceLimit);
    }
    let before = group.snapshot(!a.is_empty());
    let mut ps = group.take_sources(port);
    let m = &mut group.members.as_mut_slice()[mi];
    let q = m.state(&mut ps).apply(rec.kind, a, ctx.gmi_at);
    if matches!(rec.kind, RecordKind::IsEx | RecordKind::ToEx) {
        // The group timer is GMI again: a member answered, pending
        // group-specific queries are cancelled.
        m.gsq_left = 0;
    }
    let host = host::update(&mut m.hosts, mac, rec.kind, a, ctx.gmi_at);
    let q = spare_wanted(m, mac, ctx.now, q);
    let fast = run_queries(m, &mut ps, q, key, ctx, out);
    group.put_sources(ps);
    if fast {
        group.drop_dead(port_groups);
    }
    group.emit_changes(key, before, out);
    Ok(RecordOutcome::Applied {
        host,
        fast_leave: fast,
    })
}

/// RFC 3376 §7.3.2: set the older-version host present timer of a v1/v2
/// report, then return the record's sources as the compatibility mode
/// reads them, or None when the mode ignores the record.
fn compat_sources<'a, A: Copy + Ord>(
    m: &mut Member<A>,
    rec: &Record<'a, A>,
    ctx: &Ctx,
) -> Option<&'a [A]> {
    match rec.origin {
        Origin::V1Report => m.v1_until = ctx.gmi_at,
        Origin::V2Report => m.v2_until = ctx.gmi_at,
        Origin::V2Leave | Origin::V3 => {}
    }
    let compat = m.compat(ctx.now);
    match (rec.origin, rec.kind) {
        // IGMPv1 mode: "In addition to ignoring any IGMPv2 Leave
        // messages, IGMPv3 BLOCK messages are also ignored, ..."
        (Origin::V2Leave, _) if compat == Generation::NoLeave => None,
        // v1 and v2 mode: "IGMPv3 BLOCK messages are ignored, ..."
        (_, RecordKind::Block) if compat < Generation::SourceFilter => None,
        // "... as are source-lists in TO_EX() messages (i.e., any TO_EX()
        // message is treated as TO_EX( {} ))."
        (_, RecordKind::ToEx) if compat < Generation::SourceFilter => Some(&[]),
        _ => Some(rec.sources),
    }
}

/// Explicit tracking: one host's change never lowers what another live
/// host on the port still wants. The sources of "Send Q(G,X)" another
/// host wants are left out (no query, no lowered timer); "Send Q(G)" is
/// dropped while another host is in EXCLUDE mode (it wants the group).
fn spare_wanted<A: Copy + Ord>(
    m: &Member<A>,
    mac: Mac,
    now: Timestamp,
    mut q: Queries<A>,
) -> Queries<A> {
    if host::others(&m.hosts, mac, now).next().is_none() {
        return q;
    }
    q.sources
        .retain(|s| !host::others(&m.hosts, mac, now).any(|h| h.wants(*s)));
    if q.group && host::others(&m.hosts, mac, now).any(|h| h.mode() == FilterMode::Exclude) {
        q.group = false;
    }
    q
}

/// Carry out "Send Q(G,X)" and "Send Q(G)" (RFC 3376 §6.6.3), or, on a
/// fast-leave port, expire at once what they would have lowered. A
/// static (*,G) forwards every source: nothing to ask. Returns whether
/// a fast leave was applied.
fn run_queries<A: Copy + Ord>(
    m: &mut Member<A>,
    ps: &mut PortSources<A>,
    q: Queries<A>,
    key: MembershipKey<A>,
    ctx: &Ctx,
    out: &mut Vec<TableEvent<A>>,
) -> bool {
    if m.is_static || (q.sources.is_empty() && !q.group) {
        return false;
    }
    if ctx.fast_leave {
        if q.group {
            host::keep_wanted(&m.hosts, &mut ps.records, ctx.now);
        }
        let mut st = m.state(ps);
        st.expire_sources(&q.sources);
        if q.group {
            st.expire_group();
        }
        return true;
    }
    let lmqt_at = ctx.now + ctx.timers.lmqt();
    if !q.sources.is_empty() {
        // §6.6.3.2: each source of X whose timer is above LMQT gets LMQC
        // retransmissions and its timer lowered to LMQT; the query goes
        // out at once.
        let lowered = m.state(ps).lower(&q.sources, lmqt_at);
        for r in ps
            .records
            .iter_mut()
            .filter(|r| lowered.binary_search(&r.addr).is_ok())
        {
            r.rexmit = ctx.timers.lmqc;
        }
        if !lowered.is_empty() {
            send_source_queries(ps, key, ctx.now, &ctx.timers, out);
        }
    }
    if q.group {
        // §6.6.3.1: the group timer is lowered to LMQT; a group-specific
        // query goes out at once, LMQC-1 more LMQI apart.
        m.expires = m.expires.min(lmqt_at);
        m.gsq_left = ctx.timers.lmqc.saturating_sub(1);
        m.next_gsq = ctx.now + ctx.timers.lmqi;
        out.push(TableEvent::GroupQuery {
            key,
            port: m.port,
            generation: m.compat(ctx.now),
        });
    }
    false
}

/// RFC 3376 §6.6.3.2: of the sources with retransmission state, those
/// whose timers are above LMQT go in one query with the S flag set, the
/// others in one without; a query with no source is not sent. Each source
/// sent has one retransmission fewer; the next round is LMQI later while
/// any is left.
pub(super) fn send_source_queries<A: Copy + Ord>(
    ps: &mut PortSources<A>,
    key: MembershipKey<A>,
    now: Timestamp,
    timers: &Timers,
    out: &mut Vec<TableEvent<A>>,
) {
    let lmqt_at = now + timers.lmqt();
    let (mut high, mut low) = (Vec::new(), Vec::new());
    for r in ps.records.iter_mut().filter(|r| r.rexmit > 0) {
        if r.timer > lmqt_at {
            high.push(r.addr);
        } else {
            low.push(r.addr);
        }
        r.rexmit -= 1;
    }
    for (s_flag, sources) in [(true, high), (false, low)] {
        if !sources.is_empty() {
            out.push(TableEvent::SourceQuery {
                key,
                port: ps.port,
                s_flag,
                sources,
            });
        }
    }
    ps.next_query = if ps.records.iter().any(|r| r.rexmit > 0) {
        now + timers.lmqi
    } else {
        Timestamp::ZERO
    };
}
