//! The membership table, keyed by (VLAN, group), modelled on Open vSwitch's
//! lib/mcast-snooping: one table type with a small explicit API — learn,
//! leave, age, lookup, flush.
//!
//! Each (group, port) member tracks the hosts (MACs) that reported on it
//! (explicit host tracking), its IGMPv1/v2 compatibility timers and its own
//! membership timer. Timers are kept in a min-heap of (deadline, key) with
//! lazy invalidation: refreshing a group only moves its deadline later, so a
//! refresh pushes nothing; a popped entry whose group has a later deadline is
//! simply re-scheduled. `next_deadline` is a heap peek.

mod small;

use crate::port::{MAX_PORTS, Mac, PortId, PortMask};
use crate::time::Timestamp;
use crate::wire::igmp::SourceList;
use core::net::Ipv4Addr;
use core::time::Duration;
use small::Small;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasher, Hash, Hasher};
use thiserror::Error;

/// A table key: VLAN (0 = untagged) and group address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct GroupKey {
    pub vlan: u16,
    pub group: Ipv4Addr,
}

impl GroupKey {
    /// Both fields packed in one word.
    pub fn as_u64(&self) -> u64 {
        (u64::from(self.vlan) << 32) | u64::from(u32::from(self.group))
    }
}

impl Hash for GroupKey {
    /// One word, so the table's hasher does one mixing round.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.as_u64());
    }
}

/// A seeded murmur3-finalizer hasher for `GroupKey`'s one-word hash: much
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
    #[error("no such port {0}")]
    BadPort(PortId),
    #[error("{0} is not a snoopable multicast group")]
    BadGroup(Ipv4Addr),
    #[error("no such membership")]
    NotFound,
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

/// What a host said about a group, reduced to what snooping needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostReport<'a> {
    /// v1/v2 report (version 1 or 2) or v3 IS_EX/TO_EX (version 3): (*,G).
    Exclude { version: u8 },
    /// v3 IS_IN/TO_IN with a non-empty list (`change` = TO_IN).
    Include {
        sources: SourceList<'a>,
        change: bool,
    },
    /// v3 ALLOW.
    Allow(SourceList<'a>),
    /// v3 BLOCK.
    Block(SourceList<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The port became a member: the group's port set changed.
    Joined,
    /// Timers refreshed or host state updated; port set unchanged.
    Refreshed,
    /// Ignored because of the compatibility mode (RFC 3376 §7.3.2).
    IgnoredCompat,
    /// Nothing to do (e.g. BLOCK for an unknown host).
    Unchanged,
    /// The host's INCLUDE set became empty: the caller treats it as a leave.
    Leave,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// The port was not a member.
    NotMember,
    /// IGMPv1 host present: leaves are ignored.
    IgnoredV1,
    /// Other hosts remain on the port: it stays, no query needed.
    HostRemoved,
    /// Static membership: the port stays.
    Static,
    /// Fast leave: the port was removed at once.
    PortRemoved,
    /// Last host gone: the caller sends the first group-specific query now,
    /// of this IGMP version; the table schedules the rest.
    Querying { version: u8 },
}

/// Changes produced by aging and flushing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableEvent {
    /// The member ports of `key` are now `ports` (empty: group gone).
    Ports { key: GroupKey, ports: PortMask },
    /// A group-specific query is due out of `port`.
    GroupQuery {
        key: GroupKey,
        port: PortId,
        version: u8,
    },
}

/// A host that reported on a port.
#[derive(Clone, Debug)]
struct Host {
    mac: Mac,
    expires: Timestamp,
    /// INCLUDE-mode source list; None = EXCLUDE mode, i.e. (*,G). Boxed so
    /// that the common (*,G) host costs one pointer.
    #[allow(clippy::box_collection)]
    include: Option<Box<Vec<Ipv4Addr>>>,
}

/// One port's membership of a group.
#[derive(Clone, Debug)]
struct Member {
    hosts: Small<Host>,
    /// Dynamic membership timer; ZERO when there is no dynamic membership
    /// (a static member whose learned part has gone).
    expires: Timestamp,
    /// RFC 3376 §7.3.2 older-version host present timers.
    v1_until: Timestamp,
    v2_until: Timestamp,
    next_gsq: Timestamp,
    port: PortId,
    gsq_left: u8,
    is_static: bool,
}

impl Member {
    fn new(port: PortId, is_static: bool) -> Member {
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

    /// RFC 3376 §7.3.2 group compatibility mode.
    fn compat(&self, now: Timestamp) -> u8 {
        if self.v1_until > now {
            1
        } else if self.v2_until > now {
            2
        } else {
            3
        }
    }

    fn deadline(&self) -> Option<Timestamp> {
        let mut d = (self.expires != Timestamp::ZERO).then_some(self.expires);
        if self.gsq_left > 0 {
            d = Some(d.map_or(self.next_gsq, |x| x.min(self.next_gsq)));
        }
        for h in self.hosts.iter() {
            d = Some(d.map_or(h.expires, |x| x.min(h.expires)));
        }
        d
    }
}

#[derive(Clone, Debug, Default)]
struct Group {
    members: Small<Member>,
    /// The earliest deadline of this group currently in the heap.
    scheduled: Option<Timestamp>,
}

impl Group {
    fn mask(&self) -> PortMask {
        let mut m = PortMask::EMPTY;
        for mem in self.members.iter() {
            m.insert(mem.port);
        }
        m
    }

    fn deadline(&self) -> Option<Timestamp> {
        self.members.iter().filter_map(Member::deadline).min()
    }
}

/// One (group, port) membership, for views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub key: GroupKey,
    pub port: PortId,
    pub hosts: Vec<Mac>,
    pub version: u8,
    /// None for a static membership.
    pub expires: Option<Timestamp>,
    pub is_static: bool,
}

/// The membership table.
#[derive(Debug)]
pub struct MembershipTable {
    groups: HashMap<GroupKey, Group, KeyHasherBuilder>,
    heap: BinaryHeap<Reverse<(Timestamp, GroupKey)>>,
    port_groups: [u32; MAX_PORTS],
    port_limits: [u32; MAX_PORTS],
    max_groups: usize,
    timers: Timers,
}

impl MembershipTable {
    /// `max_groups` bounds distinct (VLAN, group) keys learned dynamically.
    /// Room for all of them is reserved up front: growing a big table moves
    /// every entry at once, a stall of tens of milliseconds at 100k groups
    /// in which control frames pile up in the socket (the reservation is
    /// address space; pages are touched as groups arrive).
    pub fn new(timers: Timers, max_groups: usize) -> MembershipTable {
        MembershipTable {
            groups: HashMap::with_capacity_and_hasher(max_groups, KeyHasherBuilder::new()),
            heap: BinaryHeap::new(),
            port_groups: [0; MAX_PORTS],
            port_limits: [u32::MAX; MAX_PORTS],
            max_groups,
            timers,
        }
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

    /// Number of distinct (VLAN, group) keys.
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Number of groups `port` is a member of.
    pub fn port_group_count(&self, port: PortId) -> u32 {
        self.port_groups
            .get(usize::from(port))
            .copied()
            .unwrap_or(0)
    }

    /// The member ports of a group.
    pub fn lookup(&self, key: GroupKey) -> PortMask {
        self.groups.get(&key).map_or(PortMask::EMPTY, Group::mask)
    }

    /// The earliest timer in the table. May be earlier than the real one (a
    /// refreshed group); aging then just re-schedules it.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    fn schedule(
        heap: &mut BinaryHeap<Reverse<(Timestamp, GroupKey)>>,
        key: GroupKey,
        g: &mut Group,
    ) {
        if let Some(d) = g.deadline()
            && g.scheduled.is_none_or(|s| d < s)
        {
            heap.push(Reverse((d, key)));
            g.scheduled = Some(d);
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

    /// Learn from a report by host `mac` on `port`. Limits apply only when
    /// a new group or a new (group, port) would be created: existing
    /// memberships always refresh.
    pub fn learn(
        &mut self,
        now: Timestamp,
        key: GroupKey,
        port: PortId,
        mac: Mac,
        report: HostReport<'_>,
    ) -> Result<ReportOutcome, TableError> {
        let p = Self::check_port(port)?;
        let creates = match report {
            HostReport::Exclude { .. } | HostReport::Include { .. } => true,
            HostReport::Allow(s) => !s.is_empty(),
            HostReport::Block(_) => false,
        };
        let gmi_at = now + self.timers.gmi;
        let len = self.groups.len();
        let group = match self.groups.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                if !creates {
                    return Ok(ReportOutcome::Unchanged);
                }
                if len >= self.max_groups {
                    return Err(TableError::GlobalLimit);
                }
                if self.port_groups[p] >= self.port_limits[p] {
                    return Err(TableError::PortLimit(port));
                }
                v.insert(Group::default())
            }
        };
        let mut joined = false;
        let member = match group.members.iter().position(|m| m.port == port) {
            Some(i) => &mut group.members.as_mut_slice()[i],
            None if !creates => return Ok(ReportOutcome::Unchanged),
            None => {
                if self.port_groups[p] >= self.port_limits[p] {
                    return Err(TableError::PortLimit(port));
                }
                self.port_groups[p] += 1;
                joined = true;
                group.members.push(Member::new(port, false))
            }
        };
        let compat = member.compat(now);
        let outcome = match report {
            HostReport::Exclude { version } => {
                // RFC 3376 §7.3.2: an older-version report sets that
                // version's host present timer to GMI.
                match version {
                    1 => member.v1_until = gmi_at,
                    2 => member.v2_until = gmi_at,
                    _ => {}
                }
                let h = host_entry(&mut member.hosts, mac);
                h.include = None;
                h.expires = gmi_at;
                refresh(member, gmi_at);
                ReportOutcome::Refreshed
            }
            // RFC 3376 §7.3.2: in v1 compatibility mode TO_IN is ignored.
            HostReport::Include { change: true, .. } if compat == 1 && !joined => {
                ReportOutcome::IgnoredCompat
            }
            HostReport::Include { sources, .. } => {
                let h = host_entry(&mut member.hosts, mac);
                h.include = Some(Box::new(sources.iter().collect()));
                h.expires = gmi_at;
                refresh(member, gmi_at);
                ReportOutcome::Refreshed
            }
            HostReport::Allow(sources) => {
                if sources.is_empty() {
                    ReportOutcome::Unchanged
                } else {
                    let fresh = !member.hosts.iter().any(|h| h.mac == mac);
                    let h = host_entry(&mut member.hosts, mac);
                    if fresh {
                        h.include = Some(Box::new(Vec::new()));
                    }
                    if let Some(list) = h.include.as_mut() {
                        for s in sources.iter() {
                            if !list.contains(&s) {
                                list.push(s);
                            }
                        }
                    }
                    h.expires = gmi_at;
                    refresh(member, gmi_at);
                    ReportOutcome::Refreshed
                }
            }
            // RFC 3376 §7.3.2: BLOCK is ignored in v1 and v2 compatibility mode.
            HostReport::Block(_) if compat <= 2 => ReportOutcome::IgnoredCompat,
            HostReport::Block(sources) => match member.hosts.find_mut(|h| h.mac == mac) {
                Some(Host {
                    include: Some(list),
                    ..
                }) => {
                    list.retain(|a| !sources.iter().any(|s| s == *a));
                    if list.is_empty() {
                        ReportOutcome::Leave
                    } else {
                        ReportOutcome::Refreshed
                    }
                }
                _ => ReportOutcome::Unchanged,
            },
        };
        Self::schedule(&mut self.heap, key, group);
        Ok(if joined {
            ReportOutcome::Joined
        } else {
            outcome
        })
    }

    /// Host `mac` left `key` on `port` (v2 leave, v3 TO_IN{} or a BLOCK that
    /// emptied its INCLUDE set).
    pub fn leave(
        &mut self,
        now: Timestamp,
        key: GroupKey,
        port: PortId,
        mac: Mac,
        fast_leave: bool,
    ) -> LeaveOutcome {
        let Some(group) = self.groups.get_mut(&key) else {
            return LeaveOutcome::NotMember;
        };
        let Some(i) = group.members.iter().position(|m| m.port == port) else {
            return LeaveOutcome::NotMember;
        };
        let member = &mut group.members.as_mut_slice()[i];
        let compat = member.compat(now);
        // RFC 3376 §7.3.2 (and RFC 2236 §4's v1 router rules): while an
        // IGMPv1 host is present, leaves are ignored; v1 hosts never send one.
        if compat == 1 {
            return LeaveOutcome::IgnoredV1;
        }
        member.hosts.retain(|h| h.mac != mac && h.expires > now);
        if !member.hosts.is_empty() {
            return LeaveOutcome::HostRemoved;
        }
        if member.is_static {
            member.expires = Timestamp::ZERO;
            member.gsq_left = 0;
            return LeaveOutcome::Static;
        }
        if fast_leave {
            self.remove_member(key, port);
            return LeaveOutcome::PortRemoved;
        }
        // RFC 2236 §3 / RFC 3376 §6.4.2: on the last leave the timer is
        // lowered to LMQT and LMQC group-specific queries go out, LMQI apart.
        let lmqt_at = now + self.timers.lmqt();
        member.expires = if member.expires == Timestamp::ZERO {
            lmqt_at
        } else {
            member.expires.min(lmqt_at)
        };
        member.gsq_left = self.timers.lmqc.saturating_sub(1);
        member.next_gsq = now + self.timers.lmqi;
        Self::schedule(&mut self.heap, key, group);
        LeaveOutcome::Querying { version: compat }
    }

    /// Someone else's group-specific query for `key`: lower every dynamic
    /// timer of the group to `now + within` (RFC 2236 §3 non-querier, RFC
    /// 3376 §6.6.1). Returns whether the group exists.
    pub fn lower_timers(&mut self, now: Timestamp, key: GroupKey, within: Duration) -> bool {
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

    /// Fire every timer due at or before `now`.
    pub fn age(&mut self, now: Timestamp, out: &mut Vec<TableEvent>) {
        while let Some(&Reverse((t, key))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            if group.scheduled != Some(t) {
                continue; // superseded by an earlier entry
            }
            group.scheduled = None;
            let before = group.mask();
            let lmqi = self.timers.lmqi;
            let port_groups = &mut self.port_groups;
            group.members.retain(|m| {
                if m.gsq_left > 0 && m.next_gsq <= now {
                    out.push(TableEvent::GroupQuery {
                        key,
                        port: m.port,
                        version: m.compat(now),
                    });
                    m.gsq_left -= 1;
                    m.next_gsq = now + lmqi;
                }
                m.hosts.retain(|h| h.expires > now);
                if m.expires != Timestamp::ZERO && m.expires <= now {
                    m.expires = Timestamp::ZERO;
                    m.gsq_left = 0;
                    m.hosts.clear();
                }
                let keep = m.is_static || m.expires != Timestamp::ZERO;
                if !keep && let Some(c) = port_groups.get_mut(usize::from(m.port)) {
                    *c = c.saturating_sub(1);
                }
                keep
            });
            let after = group.mask();
            if after != before {
                out.push(TableEvent::Ports { key, ports: after });
            }
            if group.members.is_empty() {
                self.groups.remove(&key);
            } else {
                Self::schedule(&mut self.heap, key, group);
            }
        }
    }

    fn remove_member(&mut self, key: GroupKey, port: PortId) -> bool {
        let Some(group) = self.groups.get_mut(&key) else {
            return false;
        };
        let removed = group.members.retain(|m| m.port != port);
        if removed > 0
            && let Some(c) = self.port_groups.get_mut(usize::from(port))
        {
            *c = c.saturating_sub(1);
        }
        if group.members.is_empty() {
            self.groups.remove(&key);
        }
        removed > 0
    }

    /// Add a static membership. Static entries bypass the limits (they are
    /// configuration) but count towards them. Returns whether the port set
    /// changed.
    pub fn add_static(&mut self, key: GroupKey, port: PortId) -> Result<bool, TableError> {
        let p = Self::check_port(port)?;
        let group = self.groups.entry(key).or_default();
        if let Some(m) = group.members.find_mut(|m| m.port == port) {
            m.is_static = true;
            return Ok(false);
        }
        group.members.push(Member::new(port, true));
        self.port_groups[p] += 1;
        Ok(true)
    }

    /// Remove a static membership; a learned membership on the same port
    /// stays until it expires. Returns whether the port set changed.
    pub fn del_static(&mut self, key: GroupKey, port: PortId) -> Result<bool, TableError> {
        let group = self.groups.get_mut(&key).ok_or(TableError::NotFound)?;
        let m = group
            .members
            .find_mut(|m| m.port == port && m.is_static)
            .ok_or(TableError::NotFound)?;
        m.is_static = false;
        if m.expires == Timestamp::ZERO {
            self.remove_member(key, port);
            return Ok(true);
        }
        Ok(false)
    }

    /// Drop every membership of `port` (static ones too).
    pub fn flush_port(&mut self, port: PortId, out: &mut Vec<TableEvent>) {
        let keys: Vec<GroupKey> = self
            .groups
            .iter()
            .filter(|(_, g)| g.members.iter().any(|m| m.port == port))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if self.remove_member(key, port) {
                out.push(TableEvent::Ports {
                    key,
                    ports: self.lookup(key),
                });
            }
        }
    }

    /// Drop everything.
    pub fn flush(&mut self, out: &mut Vec<TableEvent>) {
        for key in self.groups.keys() {
            out.push(TableEvent::Ports {
                key: *key,
                ports: PortMask::EMPTY,
            });
        }
        self.groups.clear();
        self.heap.clear();
        self.port_groups = [0; MAX_PORTS];
    }

    /// Every (group, port) membership, sorted by key then port.
    pub fn members(&self, now: Timestamp) -> Vec<MemberInfo> {
        let mut v: Vec<MemberInfo> = self
            .groups
            .iter()
            .flat_map(|(k, g)| {
                g.members.iter().map(move |m| MemberInfo {
                    key: *k,
                    port: m.port,
                    hosts: m.hosts.iter().map(|h| h.mac).collect(),
                    version: m.compat(now),
                    expires: (!m.is_static).then_some(m.expires),
                    is_static: m.is_static,
                })
            })
            .collect();
        v.sort_by_key(|m| (m.key, m.port));
        v
    }

    /// The INCLUDE source list of a host, if it is in INCLUDE mode.
    pub fn host_sources(&self, key: GroupKey, port: PortId, mac: Mac) -> Option<Vec<Ipv4Addr>> {
        let m = self
            .groups
            .get(&key)?
            .members
            .iter()
            .find(|m| m.port == port)?;
        let h = m.hosts.iter().find(|h| h.mac == mac)?;
        h.include.as_ref().map(|l| l.to_vec())
    }
}

/// A report refreshes the membership timer and cancels pending
/// group-specific queries (a member answered).
fn refresh(member: &mut Member, gmi_at: Timestamp) {
    member.expires = gmi_at;
    member.gsq_left = 0;
}

fn host_entry(hosts: &mut Small<Host>, mac: Mac) -> &mut Host {
    match hosts.iter().position(|h| h.mac == mac) {
        Some(i) => &mut hosts.as_mut_slice()[i],
        None => hosts.push(Host {
            mac,
            expires: Timestamp::ZERO,
            include: None,
        }),
    }
}
