//! What a group forwards: the EXCLUDE-mode port set and one entry per
//! source any port's state mentions; changes between two moments become
//! `TableEvent`s. Also the table's views.

use super::filter::{self, FilterMode};
use super::{Group, Member, MembershipKey, MembershipTable, PortSources, TableEvent};
use crate::family::{Family, Generation};
use crate::port::{Mac, PortId, PortMask};
use crate::time::Timestamp;

/// A group's forwarding at one moment.
#[derive(Clone, Debug)]
pub(super) struct Snapshot<A> {
    mask: PortMask,
    /// None when the group had no source state (and none was coming).
    entries: Option<Vec<(A, PortMask)>>,
}

impl<A: Copy + Ord> Group<A> {
    /// Every source any port mentions, sorted.
    fn mentioned(&self) -> Vec<A> {
        let mut v: Vec<A> = self
            .sources
            .iter()
            .flat_map(|v| v.iter())
            .flat_map(|p| p.records.iter().map(|r| r.addr))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// How many distinct sources the group has entries for.
    pub(super) fn source_count(&self) -> usize {
        match self.sources.as_deref().map(Vec::as_slice) {
            None => 0,
            Some([one]) => one.records.len(),
            Some(_) => self.mentioned().len(),
        }
    }

    /// How many of `a` (sorted) the group has no entry for yet.
    pub(super) fn new_sources(&self, a: &[A]) -> usize {
        if self.sources.is_none() {
            return a.len();
        }
        let known = self.mentioned();
        a.iter().filter(|s| known.binary_search(s).is_err()).count()
    }

    /// The ports that forward `s`.
    fn source_mask(&self, s: A) -> PortMask {
        let mut m = PortMask::EMPTY;
        for mem in self.members.iter() {
            let records = self.port_sources(mem.port).map_or(&[][..], |p| &p.records);
            if filter::admits(mem.is_static, mem.expires, records, s) {
                m.insert(mem.port);
            }
        }
        m
    }

    fn entries(&self) -> Vec<(A, PortMask)> {
        self.mentioned()
            .into_iter()
            .map(|s| (s, self.source_mask(s)))
            .collect()
    }

    /// Forwarding now. `with_sources`: take the source entries even if the
    /// group has no source state yet (a change is about to add some).
    pub(super) fn snapshot(&self, with_sources: bool) -> Snapshot<A> {
        Snapshot {
            mask: self.mask(),
            entries: (with_sources || self.sources.is_some()).then(|| self.entries()),
        }
    }

    /// Events for what changed since `before`: source entries first, then
    /// the EXCLUDE port set, or `Gone` when no member is left.
    pub(super) fn emit_changes(
        &self,
        key: MembershipKey<A>,
        before: Snapshot<A>,
        out: &mut Vec<TableEvent<A>>,
    ) {
        let old = before.entries.unwrap_or_default();
        let new = if self.sources.is_some() {
            self.entries()
        } else {
            Vec::new()
        };
        diff_entries(key, &old, &new, out);
        if self.members.is_empty() {
            out.push(TableEvent::Gone { key });
            return;
        }
        let mask = self.mask();
        if mask != before.mask {
            out.push(TableEvent::Ports { key, ports: mask });
        }
    }
}

/// Merge two sorted entry lists into Source events.
fn diff_entries<A: Copy + Ord>(
    key: MembershipKey<A>,
    old: &[(A, PortMask)],
    new: &[(A, PortMask)],
    out: &mut Vec<TableEvent<A>>,
) {
    let (mut i, mut j) = (0, 0);
    let mut ev = |source, ports| out.push(TableEvent::Source { key, source, ports });
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a.1 != b.1 {
                    ev(b.0, Some(b.1));
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                ev(a.0, None);
                i += 1;
            }
            (Some(a), None) => {
                ev(a.0, None);
                i += 1;
            }
            (_, Some(b)) => {
                ev(b.0, Some(b.1));
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// One source of a (group, port), for views.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SourceInfo<A> {
    pub address: A,
    /// When the source timer runs out; None for a static source and for
    /// an excluded one (no timer runs).
    pub expires: Option<Timestamp>,
    /// EXCLUDE mode only: on the excluded list (not forwarded).
    pub excluded: bool,
}

/// One (group, port) membership, for views.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo<A> {
    pub key: MembershipKey<A>,
    pub port: PortId,
    pub hosts: Vec<Mac>,
    pub generation: Generation,
    pub filter_mode: FilterMode,
    pub sources: Vec<SourceInfo<A>>,
    /// When the membership ends unless refreshed: the group timer in
    /// EXCLUDE mode, the last source timer in INCLUDE mode. None for a
    /// static membership.
    pub expires: Option<Timestamp>,
    pub is_static: bool,
}

fn member_info<A: Copy + Ord>(
    key: MembershipKey<A>,
    m: &Member<A>,
    ps: Option<&PortSources<A>>,
    now: Timestamp,
) -> MemberInfo<A> {
    let records = ps.map_or(&[][..], |p| &p.records);
    let exclude = m.exclude();
    let sources = records
        .iter()
        .map(|r| SourceInfo {
            address: r.addr,
            expires: (!r.is_static && r.timer != Timestamp::ZERO).then_some(r.timer),
            excluded: exclude && !r.running(),
        })
        .collect();
    let last_source = records.iter().map(|r| r.timer).max();
    let has_static_source = records.iter().any(|r| r.is_static);
    let expires = if m.is_static || (!exclude && has_static_source) {
        None
    } else if exclude {
        Some(m.expires)
    } else {
        last_source
    };
    MemberInfo {
        key,
        port: m.port,
        hosts: m.hosts.iter().map(|h| h.mac).collect(),
        generation: m.compat(now),
        filter_mode: if exclude {
            FilterMode::Exclude
        } else {
            FilterMode::Include
        },
        sources,
        expires,
        is_static: m.is_static,
    }
}

impl<A: Family> MembershipTable<A> {
    /// Every (group, port) membership, sorted by key then port.
    pub fn members(&self, now: Timestamp) -> Vec<MemberInfo<A>> {
        let mut v: Vec<MemberInfo<A>> = self
            .groups
            .iter()
            .flat_map(|(k, g)| {
                g.members
                    .iter()
                    .map(move |m| member_info(*k, m, g.port_sources(m.port), now))
            })
            .collect();
        v.sort_by_key(|m| (m.key, m.port));
        v
    }

    /// Every (S,G) forwarding entry: (group, source, ports), sorted.
    pub fn source_entries(&self) -> Vec<(MembershipKey<A>, A, PortMask)> {
        let mut v: Vec<(MembershipKey<A>, A, PortMask)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.sources.is_some())
            .flat_map(|(k, g)| g.entries().into_iter().map(move |(s, m)| (*k, s, m)))
            .collect();
        v.sort_by_key(|e| (e.0, e.1));
        v
    }

    /// The ports traffic from `source` to `key` goes to, when `source` has
    /// an entry of its own (else it follows `lookup`).
    pub fn lookup_source(&self, key: MembershipKey<A>, source: A) -> Option<PortMask> {
        let g = self.groups.get(&key)?;
        g.sources
            .as_ref()?
            .iter()
            .any(|p| p.records.iter().any(|r| r.addr == source))
            .then(|| g.source_mask(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    #[test]
    fn entry_diff() {
        let key = MembershipKey {
            vlan: 0,
            group: Ipv4Addr::new(239, 1, 1, 1),
        };
        let s = |n| Ipv4Addr::new(10, 0, 0, n);
        let m = PortMask::single;
        let old = [(s(1), m(1)), (s(2), m(2)), (s(4), m(1))];
        let new = [(s(2), m(3)), (s(3), m(1)), (s(4), m(1))];
        let mut out = Vec::new();
        diff_entries(key, &old, &new, &mut out);
        let src = |source, ports| TableEvent::Source { key, source, ports };
        assert_eq!(
            out,
            vec![
                src(s(1), None),
                src(s(2), Some(m(3))),
                src(s(3), Some(m(1)))
            ]
        );
    }
}
