//! Explicit host tracking: each host's own filter state for a group on a
//! port, as its reports describe it (RFC 3376 §3.2's per-interface state,
//! seen from the router).
//!
//! The router state of the port (see `filter`) decides forwarding; host
//! states only decide whether a host's change may lower timers: a source
//! (or, for Q(G), the group) another tracked host on the port still wants
//! is not queried for.

use super::filter::{self, FilterMode, RecordKind, SourceRecord};
use super::small::Small;
use crate::port::Mac;
use crate::time::Timestamp;

/// A host's filter: mode and sorted source list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostFilter<A> {
    pub mode: FilterMode,
    pub sources: Vec<A>,
}

/// A host that reported on a port.
#[derive(Clone, Debug)]
pub(crate) struct Host<A> {
    pub mac: Mac,
    pub expires: Timestamp,
    /// None = EXCLUDE {} (what v1/v2 hosts and most v3 joins are), boxed so
    /// that such a host costs one pointer.
    #[allow(clippy::box_collection)]
    filter: Option<Box<HostFilter<A>>>,
}

impl<A: Copy + Ord> Host<A> {
    pub fn new(mac: Mac) -> Host<A> {
        Host {
            mac,
            expires: Timestamp::ZERO,
            filter: None,
        }
    }

    pub fn mode(&self) -> FilterMode {
        self.filter.as_ref().map_or(FilterMode::Exclude, |f| f.mode)
    }

    pub fn sources(&self) -> &[A] {
        self.filter.as_ref().map_or(&[], |f| &f.sources)
    }

    /// Does this host want traffic from `s`?
    pub fn wants(&self, s: A) -> bool {
        let listed = self.sources().binary_search(&s).is_ok();
        match self.mode() {
            FilterMode::Include => listed,
            FilterMode::Exclude => !listed,
        }
    }

    fn set(&mut self, f: HostFilter<A>) {
        self.filter = if f.mode == FilterMode::Exclude && f.sources.is_empty() {
            None
        } else {
            Some(Box::new(f))
        };
    }
}

/// The filter of a host after `kind` with sources `a` (sorted), from
/// `prev` (None: a host we do not know, i.e. INCLUDE {}). INCLUDE {} means
/// the host wants nothing of the group.
pub(crate) fn next_filter<A: Copy + Ord>(
    prev: Option<&Host<A>>,
    kind: RecordKind,
    a: &[A],
) -> HostFilter<A> {
    let (mode, list) = prev.map_or((FilterMode::Include, &[][..]), |h| (h.mode(), h.sources()));
    let (mode, sources) = match (kind, mode) {
        (RecordKind::IsIn | RecordKind::ToIn, _) => (FilterMode::Include, a.to_vec()),
        (RecordKind::IsEx | RecordKind::ToEx, _) => (FilterMode::Exclude, a.to_vec()),
        (RecordKind::Allow, FilterMode::Include) => (mode, union(list, a)),
        (RecordKind::Allow, FilterMode::Exclude) => (mode, minus(list, a)),
        (RecordKind::Block, FilterMode::Include) => (mode, minus(list, a)),
        (RecordKind::Block, FilterMode::Exclude) => (mode, union(list, a)),
    };
    HostFilter { mode, sources }
}

/// What a record did to its host's membership of the group on the port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostChange {
    /// The host was not tracked and now wants something.
    Joined,
    /// The host was tracked and now wants nothing.
    Left,
    /// Tracked before and after (refreshed or its filter changed), or
    /// untracked before and after.
    Kept,
}

/// Apply a record of host `mac` to `hosts`: the host is added, updated
/// (expiring at `expires`) or, when it now wants nothing, removed.
pub(crate) fn update<A: Copy + Ord>(
    hosts: &mut Small<Host<A>>,
    mac: Mac,
    kind: RecordKind,
    a: &[A],
    expires: Timestamp,
) -> HostChange {
    let i = hosts.iter().position(|h| h.mac == mac);
    let f = next_filter(i.map(|i| &hosts.as_slice()[i]), kind, a);
    if f.mode == FilterMode::Include && f.sources.is_empty() {
        return if hosts.retain(|h| h.mac != mac) > 0 {
            HostChange::Left
        } else {
            HostChange::Kept
        };
    }
    let (h, change) = match i {
        Some(i) => (&mut hosts.as_mut_slice()[i], HostChange::Kept),
        None => (hosts.push(Host::new(mac)), HostChange::Joined),
    };
    h.set(f);
    h.expires = expires;
    change
}

/// Hosts on the port other than `mac` whose state has not run out.
pub(crate) fn others<A: Copy + Ord>(
    hosts: &Small<Host<A>>,
    mac: Mac,
    now: Timestamp,
) -> impl Iterator<Item = &Host<A>> {
    hosts
        .iter()
        .filter(move |h| h.mac != mac && h.expires > now)
}

/// Before a group timer runs out (§6.5 switch to INCLUDE): every source a
/// live INCLUDE-mode host still wants keeps a running record until that
/// host's own state expires. The switch keeps sources with running timers
/// only, and another host's IS_EX/TO_EX may have deleted a wanted record
/// ("Delete (X-A)", harmless in EXCLUDE mode, where such a source is
/// forwarded anyway); explicit tracking knows better.
pub(crate) fn keep_wanted<A: Copy + Ord>(
    hosts: &Small<Host<A>>,
    records: &mut Vec<SourceRecord<A>>,
    now: Timestamp,
) {
    for h in hosts.iter().filter(|h| h.expires > now) {
        if h.mode() == FilterMode::Include {
            for &s in h.sources() {
                filter::keep_until(records, s, h.expires);
            }
        }
    }
}

fn union<A: Copy + Ord>(a: &[A], b: &[A]) -> Vec<A> {
    let mut v: Vec<A> = a.iter().chain(b).copied().collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn minus<A: Copy + Ord>(a: &[A], b: &[A]) -> Vec<A> {
    a.iter()
        .copied()
        .filter(|s| b.binary_search(s).is_err())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn s(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn host_filters_follow_records() {
        let mut hosts = Small::Empty;
        let t = Timestamp::from_secs(1);
        let change = update(&mut hosts, [1; 6], RecordKind::Block, &[s(1)], t);
        assert_eq!(change, HostChange::Kept);
        assert!(hosts.is_empty(), "BLOCK from an unknown host: nothing");
        let change = update(&mut hosts, [1; 6], RecordKind::Allow, &[s(2), s(3)], t);
        assert_eq!(change, HostChange::Joined);
        let h = &hosts.as_slice()[0];
        assert_eq!(
            (h.mode(), h.sources()),
            (FilterMode::Include, &[s(2), s(3)][..])
        );
        let change = update(&mut hosts, [1; 6], RecordKind::IsEx, &[s(4)], t);
        assert_eq!(change, HostChange::Kept);
        let h = &hosts.as_slice()[0];
        assert!(h.wants(s(2)) && !h.wants(s(4)));
        update(&mut hosts, [1; 6], RecordKind::Allow, &[s(4)], t);
        assert!(
            hosts.as_slice()[0].filter.is_none(),
            "EXCLUDE {{}} is unboxed"
        );
        update(&mut hosts, [1; 6], RecordKind::ToIn, &[s(5)], t);
        let change = update(&mut hosts, [1; 6], RecordKind::Block, &[s(5)], t);
        assert_eq!(change, HostChange::Left);
        assert!(hosts.is_empty());
    }
}
