//! The membership table, keyed by (VLAN, group), modelled on Open vSwitch's
//! lib/mcast-snooping: one table type with a small explicit API — learn,
//! age, lookup, flush.
//!
//! Each (group, port) member holds the RFC 3376 §6 router state of that
//! port (group timer and source records, see `filter`), the hosts that
//! reported on it with their own filters (explicit tracking, see `host`)
//! and its IGMPv1/v2 compatibility timers. A group without source records
//! carries no source storage at all (one empty pointer).
//!
//! Timers are kept in a min-heap of (deadline, key) with lazy
//! invalidation: refreshing a group only moves its deadline later, so a
//! refresh pushes nothing; a popped entry whose group has a later deadline
//! is simply re-scheduled. `next_deadline` is a heap peek.

mod age;
pub mod filter;
mod forward;
mod host;
mod learn;
mod small;
mod sole;
mod statics;

pub use filter::{FilterMode, RecordKind};
pub use forward::{MemberInfo, SourceInfo};
pub use host::HostChange;
pub use learn::{Origin, Record, RecordOutcome, Reporter};
pub use sole::SoleHost;

use crate::family::{Family, Generation};
use crate::port::{MAX_PORTS, PortId, PortMask};
use crate::time::Timestamp;
use core::net::IpAddr;
use core::time::Duration;
use filter::SourceRecord;
use host::Host;
use small::Small;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use thiserror::Error;

/// A membership table key: VLAN (0 = untagged) and group address. (The
/// fast path's map key is `igmpsnoop_common::GroupKey`, another thing.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct MembershipKey<A> {
    pub vlan: u16,
    pub group: A,
}

impl<A: Family> Hash for MembershipKey<A> {
    /// One word for IPv4, so the table's hasher does one mixing round.
    fn hash<H: Hasher>(&self, state: &mut H) {
        A::hash_key(self.vlan, &self.group, state);
    }
}

/// A seeded murmur3-finalizer hasher for `MembershipKey`'s word hash: much
/// cheaper than SipHash on the per-report path, and the per-table random
/// seed keeps bucket placement unpredictable to a sender choosing groups.
#[derive(Clone, Copy, Debug)]
pub struct KeyHasherBuilder(u64);

impl KeyHasherBuilder {
    fn new() -> KeyHasherBuilder {
        KeyHasherBuilder(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
    }
}

impl BuildHasher for KeyHasherBuilder {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0 ^ v)
            .rotate_left(29)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum TableError {
    #[error("group table full (global limit)")]
    GlobalLimit,
    #[error("group limit of port {0} reached")]
    PortLimit(PortId),
    #[error("source limit of the group reached")]
    SourceLimit,
    #[error("no such port {0}")]
    BadPort(PortId),
    #[error("{0} is not a snoopable multicast group")]
    BadGroup(IpAddr),
    #[error("{0} is not a unicast source address")]
    BadSource(IpAddr),
    #[error("no such membership")]
    NotFound,
    #[error("port {port} does not carry VLAN {vlan}")]
    VlanNotCarried { port: PortId, vlan: u16 },
}

/// The timer values the table applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Group membership interval.
    pub gmi: Duration,
    /// Last member query interval.
    pub lmqi: Duration,
    /// Last member query count.
    pub lmqc: u8,
}

impl Timers {
    /// Last member query time = LMQC × LMQI.
    pub fn lmqt(&self) -> Duration {
        self.lmqi * u32::from(self.lmqc)
    }
}

/// Changes produced by learning, aging and flushing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableEvent<A> {
    /// The ports of a live group in EXCLUDE mode (which forward every
    /// source without an entry of its own) are now `ports`.
    Ports {
        key: MembershipKey<A>,
        ports: PortMask,
    },
    /// Traffic from `source` goes to exactly `ports` (Some), or follows
    /// `Ports` again (None).
    Source {
        key: MembershipKey<A>,
        source: A,
        ports: Option<PortMask>,
    },
    /// The group is gone (after `Source { ports: None }` for each of its
    /// source entries).
    Gone { key: MembershipKey<A> },
    /// A member's hosts or its compatibility mode changed on a timer (a
    /// host's report aged out, an older-version host present timer ended),
    /// which may leave forwarding as it was but changes whose leave ends
    /// the port's membership (fast leave).
    Hosts { key: MembershipKey<A> },
    /// A group-specific query is due out of `port`.
    GroupQuery {
        key: MembershipKey<A>,
        port: PortId,
        generation: Generation,
    },
    /// A group-and-source-specific query is due out of `port`.
    SourceQuery {
        key: MembershipKey<A>,
        port: PortId,
        s_flag: bool,
        sources: Vec<A>,
    },
}

/// One port's membership of a group.
#[derive(Clone, Debug)]
struct Member<A> {
    hosts: Small<Host<A>>,
    /// RFC 3376 §6.2.2 group timer; ZERO = not running (INCLUDE mode).
    expires: Timestamp,
    /// RFC 3376 §7.3.2 / RFC 3810 §8.3.2 older-version host present
    /// timers: IGMPv1 (`v1_until`), IGMPv2 or MLDv1 (`v2_until`).
    v1_until: Timestamp,
    v2_until: Timestamp,
    next_gsq: Timestamp,
    port: PortId,
    gsq_left: u8,
    /// Static (*,G): EXCLUDE {} for good.
    is_static: bool,
}

impl<A: Copy + Ord> Member<A> {
    fn new(port: PortId, is_static: bool) -> Member<A> {
        Member {
            hosts: Small::Empty,
            expires: Timestamp::ZERO,
            v1_until: Timestamp::ZERO,
            v2_until: Timestamp::ZERO,
            next_gsq: Timestamp::ZERO,
            port,
            gsq_left: 0,
            is_static,
        }
    }

    /// RFC 3376 §7.3.2 / RFC 3810 §8.3.2 group compatibility mode.
    fn compat(&self, now: Timestamp) -> Generation {
        if self.v1_until > now {
            Generation::NoLeave
        } else if self.v2_until > now {
            Generation::AnySource
        } else {
            Generation::SourceFilter
        }
    }

    /// In EXCLUDE mode: forwards every source without a record.
    fn exclude(&self) -> bool {
        self.is_static || self.expires != Timestamp::ZERO
    }

    fn deadline(&self) -> Option<Timestamp> {
        let mut d = (self.expires != Timestamp::ZERO).then_some(self.expires);
        if self.gsq_left > 0 {
            d = Some(d.map_or(self.next_gsq, |x| x.min(self.next_gsq)));
        }
        // The compatibility timers too (cleared when they end), so that the
        // end of an older-version mode is seen when it happens.
        let compat = [self.v1_until, self.v2_until];
        let hosts = self.hosts.iter().map(|h| h.expires);
        for t in hosts.chain(compat.into_iter().filter(|t| *t != Timestamp::ZERO)) {
            d = Some(d.map_or(t, |x| x.min(t)));
        }
        d
    }

    /// Ends the compatibility timers due at `now` (RFC 3376 §7.3.2, RFC 3810
    /// §8.3.2: the older-version host present timer expired); returns
    /// whether any did.
    fn end_compat(&mut self, now: Timestamp) -> bool {
        let mut ended = false;
        for t in [&mut self.v1_until, &mut self.v2_until] {
            if *t != Timestamp::ZERO && *t <= now {
                *t = Timestamp::ZERO;
                ended = true;
            }
        }
        ended
    }

    /// Router state borrowed for the `filter` tables.
    fn state<'a>(&'a mut self, ps: &'a mut PortSources<A>) -> filter::RouterState<'a, A> {
        filter::RouterState {
            group_timer: &mut self.expires,
            pinned: self.is_static,
            records: &mut ps.records,
        }
    }
}

/// The source records of one (group, port) and their query schedule.
#[derive(Clone, Debug)]
struct PortSources<A> {
    port: PortId,
    /// Sorted by address.
    records: Vec<SourceRecord<A>>,
    /// Next Q(G,A) retransmission (§6.6.3.2); ZERO = none.
    next_query: Timestamp,
}

impl<A> PortSources<A> {
    fn new(port: PortId) -> PortSources<A> {
        PortSources {
            port,
            records: Vec::new(),
            next_query: Timestamp::ZERO,
        }
    }

    fn deadline(&self) -> Option<Timestamp> {
        self.records
            .iter()
            .map(|r| r.timer)
            .chain([self.next_query])
            .filter(|t| *t != Timestamp::ZERO)
            .min()
    }
}

#[derive(Clone, Debug)]
struct Group<A> {
    members: Small<Member<A>>,
    /// The earliest deadline of this group currently in the heap (ZERO:
    /// none).
    scheduled: Timestamp,
    /// Source records per port; None while no port has any.
    #[allow(clippy::box_collection)]
    sources: Option<Box<Vec<PortSources<A>>>>,
}

impl<A> Default for Group<A> {
    fn default() -> Self {
        Group {
            members: Small::Empty,
            scheduled: Timestamp::ZERO,
            sources: None,
        }
    }
}

impl<A: Copy + Ord> Group<A> {
    /// Ports in EXCLUDE mode: they take every source without an entry.
    fn mask(&self) -> PortMask {
        let mut m = PortMask::EMPTY;
        for mem in self.members.iter().filter(|m| m.exclude()) {
            m.insert(mem.port);
        }
        m
    }

    fn deadline(&self) -> Option<Timestamp> {
        let m = self.members.iter().filter_map(Member::deadline).min();
        let s = self
            .sources
            .iter()
            .flat_map(|v| v.iter())
            .filter_map(PortSources::deadline)
            .min();
        m.into_iter().chain(s).min()
    }

    fn member_index(&self, port: PortId) -> Option<usize> {
        self.members.iter().position(|m| m.port == port)
    }

    fn port_sources(&self, port: PortId) -> Option<&PortSources<A>> {
        self.sources.as_ref()?.iter().find(|p| p.port == port)
    }

    /// Move a port's records out (an empty set, without allocating, when
    /// it has none); hand them back with `put_sources`.
    fn take_sources(&mut self, port: PortId) -> PortSources<A> {
        let Some(v) = self.sources.as_mut() else {
            return PortSources::new(port);
        };
        match v.iter().position(|p| p.port == port) {
            Some(i) => v.swap_remove(i),
            None => PortSources::new(port),
        }
    }

    fn drop_sources(&mut self, port: PortId) {
        if let Some(v) = self.sources.as_mut() {
            v.retain(|p| p.port != port);
            if v.is_empty() {
                self.sources = None;
            }
        }
    }

    fn put_sources(&mut self, ps: PortSources<A>) {
        if !ps.records.is_empty() || ps.next_query != Timestamp::ZERO {
            self.sources
                .get_or_insert_with(|| Box::new(Vec::with_capacity(1)))
                .push(ps);
        } else if self.sources.as_ref().is_some_and(|v| v.is_empty()) {
            self.sources = None;
        }
    }

    /// Drop the members that hold nothing any more (no static part, no
    /// group timer, no source record). Returns the ports removed.
    fn drop_dead(&mut self, port_groups: &mut [u32; MAX_PORTS]) -> PortMask {
        let sources = &self.sources;
        let mut gone = PortMask::EMPTY;
        self.members.retain(|m| {
            let has = sources
                .as_ref()
                .is_some_and(|v| v.iter().any(|p| p.port == m.port && !p.records.is_empty()));
            let keep = m.exclude() || has;
            if !keep {
                gone.insert(m.port);
                if let Some(c) = port_groups.get_mut(usize::from(m.port)) {
                    *c = c.saturating_sub(1);
                }
            }
            keep
        });
        if !gone.is_empty()
            && let Some(v) = self.sources.as_mut()
        {
            v.retain(|p| !gone.contains(p.port));
            if v.is_empty() {
                self.sources = None;
            }
        }
        gone
    }
}

/// The membership table.
#[derive(Debug)]
pub struct MembershipTable<A> {
    groups: HashMap<MembershipKey<A>, Group<A>, KeyHasherBuilder>,
    heap: BinaryHeap<Reverse<(Timestamp, MembershipKey<A>)>>,
    port_groups: [u32; MAX_PORTS],
    port_limits: [u32; MAX_PORTS],
    max_groups: usize,
    max_sources: usize,
    timers: Timers,
}

impl<A: Family> MembershipTable<A> {
    /// `max_groups` bounds distinct (VLAN, group) keys learned dynamically,
    /// `max_sources` the distinct sources a group may have entries for.
    /// Room for all groups is reserved up front: growing a big table moves
    /// every entry at once, a stall of tens of milliseconds at 100k groups
    /// in which control frames pile up in the socket (the reservation is
    /// address space; pages are touched as groups arrive).
    pub fn new(timers: Timers, max_groups: usize, max_sources: usize) -> MembershipTable<A> {
        MembershipTable {
            groups: HashMap::with_capacity_and_hasher(max_groups, KeyHasherBuilder::new()),
            heap: BinaryHeap::new(),
            port_groups: [0; MAX_PORTS],
            port_limits: [u32::MAX; MAX_PORTS],
            max_groups,
            max_sources,
            timers,
        }
    }

    /// The same table with no room reserved up front: it grows as groups
    /// arrive (each doubling moves every entry once).
    pub fn unreserved(mut self) -> MembershipTable<A> {
        self.groups = HashMap::with_hasher(*self.groups.hasher());
        self
    }

    /// Bound the groups `port` may join dynamically (None = no bound).
    pub fn set_port_limit(&mut self, port: PortId, limit: Option<usize>) {
        if let Some(l) = self.port_limits.get_mut(usize::from(port)) {
            *l = limit.map_or(u32::MAX, |v| u32::try_from(v).unwrap_or(u32::MAX));
        }
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// Every (VLAN, group) key, in no order.
    pub fn keys(&self) -> impl Iterator<Item = &MembershipKey<A>> + '_ {
        self.groups.keys()
    }

    /// Number of distinct (VLAN, group) keys.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// Distinct groups per VLAN.
    pub fn count_by_vlan(&self, counts: &mut std::collections::BTreeMap<u16, usize>) {
        for k in self.groups.keys() {
            *counts.entry(k.vlan).or_default() += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The ports a new (*,G) membership would not be refused for by a
    /// limit (the table's `max_groups`, a port's own limit); none when the
    /// table is full.
    pub fn ports_with_room(&self) -> PortMask {
        if self.groups.len() >= self.max_groups {
            return PortMask::EMPTY;
        }
        let mut mask = PortMask::EMPTY;
        for (p, (&n, &limit)) in self.port_groups.iter().zip(&self.port_limits).enumerate() {
            if n < limit {
                mask.insert(p as u8);
            }
        }
        mask
    }

    /// Number of groups `port` is a member of.
    pub fn port_group_count(&self, port: PortId) -> u32 {
        self.port_groups
            .get(usize::from(port))
            .copied()
            .unwrap_or(0)
    }

    /// The ports of a group in EXCLUDE mode (they forward every source
    /// without an entry of its own; for a (*,G) group, every member).
    pub fn lookup(&self, key: MembershipKey<A>) -> PortMask {
        self.groups.get(&key).map_or(PortMask::EMPTY, Group::mask)
    }

    /// The earliest timer in the table. May be earlier than the real one (a
    /// refreshed group); aging then just re-schedules it.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    fn schedule(
        heap: &mut BinaryHeap<Reverse<(Timestamp, MembershipKey<A>)>>,
        key: MembershipKey<A>,
        g: &mut Group<A>,
    ) {
        if let Some(d) = g.deadline()
            && (g.scheduled == Timestamp::ZERO || d < g.scheduled)
        {
            heap.push(Reverse((d, key)));
            g.scheduled = d;
        }
    }

    fn check_port(port: PortId) -> Result<usize, TableError> {
        let p = usize::from(port);
        if p < MAX_PORTS {
            Ok(p)
        } else {
            Err(TableError::BadPort(port))
        }
    }

    /// Someone else's group-specific query for `key`: lower the group
    /// timer of every port and every host timer to `now + within` (RFC
    /// 2236 §3 non-querier, RFC 3376 §6.6.1 "Q(G): Group Timer is lowered
    /// to LMQT"). Returns whether the group exists.
    pub fn lower_timers(
        &mut self,
        now: Timestamp,
        key: MembershipKey<A>,
        within: Duration,
    ) -> bool {
        let Some(group) = self.groups.get_mut(&key) else {
            return false;
        };
        let at = now + within;
        for m in group.members.iter_mut() {
            if m.expires != Timestamp::ZERO {
                m.expires = m.expires.min(at);
            }
            for h in m.hosts.iter_mut() {
                h.expires = h.expires.min(at);
            }
        }
        Self::schedule(&mut self.heap, key, group);
        true
    }

    /// Someone else's group-and-source-specific query (S flag clear):
    /// RFC 3376 §6.6.1 "Q(G,A): Source Timer for sources in A are lowered
    /// to LMQT", on every port. Returns whether the group exists.
    pub fn lower_source_timers(
        &mut self,
        now: Timestamp,
        key: MembershipKey<A>,
        sources: &[A],
        within: Duration,
    ) -> bool {
        let Some(group) = self.groups.get_mut(&key) else {
            return false;
        };
        let at = now + within;
        if let Some(v) = group.sources.as_mut() {
            for ps in v.iter_mut() {
                for &s in sources {
                    if let Ok(i) = ps.records.binary_search_by_key(&s, |r| r.addr) {
                        let r = &mut ps.records[i];
                        if !r.is_static && r.timer > at {
                            r.timer = at;
                        }
                    }
                }
            }
        }
        Self::schedule(&mut self.heap, key, group);
        true
    }

    /// Remove `port`'s membership of `key` outright, with events.
    fn remove_member(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        out: &mut Vec<TableEvent<A>>,
    ) -> bool {
        let Some(group) = self.groups.get_mut(&key) else {
            return false;
        };
        let before = group.snapshot(false);
        let removed = group.members.retain(|m| m.port != port);
        if removed == 0 {
            return false;
        }
        group.drop_sources(port);
        if let Some(c) = self.port_groups.get_mut(usize::from(port)) {
            *c = c.saturating_sub(1);
        }
        group.emit_changes(key, before, out);
        if group.members.is_empty() {
            self.groups.remove(&key);
        }
        true
    }

    /// Drop every membership of `port` (static ones too).
    pub fn flush_port(&mut self, port: PortId, out: &mut Vec<TableEvent<A>>) {
        let keys: Vec<MembershipKey<A>> = self
            .groups
            .iter()
            .filter(|(_, g)| g.member_index(port).is_some())
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            self.remove_member(key, port, out);
        }
    }

    /// Drop everything.
    pub fn flush(&mut self, out: &mut Vec<TableEvent<A>>) {
        for (key, group) in self.groups.iter_mut() {
            let before = group.snapshot(false);
            group.members.clear();
            group.sources = None;
            group.emit_changes(*key, before, out);
        }
        self.groups.clear();
        self.heap.clear();
        self.port_groups = [0; MAX_PORTS];
    }
}
