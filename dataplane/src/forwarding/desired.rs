//! What the fast path should forward, kept apart from what the kernel holds:
//! the member ports the control plane set per group and per (group, source),
//! what an earlier run left (held until released), and router ports. From
//! these it derives, per entry, the port set the kernel must have.
//!
//! The rules (the contract with the engine):
//! - a group is registered while its own ports are not empty or it has any
//!   source entry; registered with no port at all is a real state (its
//!   traffic goes to router ports only, or is dropped);
//! - a source entry, once set, exists until removed, even with no port
//!   (nobody wants that source);
//! - router ports are added to every set (RFC 4541 §2.1.2): the caller
//!   passes them in (they are shared by both address families);
//! - held (adopted) ports are added to the entry they were adopted with.
//!
//! One per address family ([`Addr`]); the rules are the same.
use std::collections::HashMap;

use igmpsnoop_common::set_flags;

use super::PortMask;
use super::family::Addr;

/// The kernel entry one group or source must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Want {
    /// Its port set, router and held ports included (empty: nobody).
    pub mask: PortMask,
    /// `set_flags::*`: SOURCES (never for a source) and the format.
    pub flags: u8,
    /// `SetRef::solo_untagged`, `SetRef::solo_tagged`.
    pub solo: [u8; 2],
}

impl Want {
    pub fn new(mask: PortMask, flags: u8) -> Self {
        Want {
            mask,
            flags,
            solo: [0; 2],
        }
    }
}

pub(crate) struct Desired<A: Addr> {
    /// Member ports per group, as the control plane set them (never empty).
    members: HashMap<A::GroupKey, PortMask>,
    /// Member ports per source entry, as set (empty = nobody wants the source).
    sources: HashMap<A::SourceKey, PortMask>,
    /// Adopted groups and their ports, until released.
    held: HashMap<A::GroupKey, PortMask>,
    /// Adopted source entries and their ports (empty included), until released.
    held_sources: HashMap<A::SourceKey, PortMask>,
    /// Per group, how many of its sources are in `sources` or `held_sources`:
    /// the group is flagged (and registered) while this is above 0.
    source_count: HashMap<A::GroupKey, u32>,
}

impl<A: Addr> Default for Desired<A> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<A: Addr> Desired<A> {
    pub fn with_capacity(groups: usize) -> Self {
        Self {
            members: HashMap::with_capacity(groups),
            sources: HashMap::new(),
            held: HashMap::new(),
            held_sources: HashMap::new(),
            source_count: HashMap::new(),
        }
    }

    /// Sets a group's member ports; an empty set removes them.
    pub fn set_group(&mut self, key: A::GroupKey, members: PortMask) {
        if members.is_empty() {
            self.members.remove(&key);
        } else {
            self.members.insert(key, members);
        }
    }

    /// Sets a source entry (Some, possibly empty) or removes it (None).
    pub fn set_source(&mut self, key: A::SourceKey, members: Option<PortMask>) {
        self.counting(key, |d| match members {
            Some(mask) => {
                d.sources.insert(key, mask);
            }
            None => {
                d.sources.remove(&key);
            }
        });
    }

    pub fn hold_group(&mut self, key: A::GroupKey, mask: PortMask) {
        self.held.insert(key, mask);
    }

    pub fn hold_source(&mut self, key: A::SourceKey, mask: PortMask) {
        self.counting(key, |d| {
            d.held_sources.insert(key, mask);
        });
    }

    /// Ends every hold; returns the groups and sources whose entries that
    /// may change.
    pub fn release_held(&mut self) -> (Vec<A::GroupKey>, Vec<A::SourceKey>) {
        let mut groups: Vec<A::GroupKey> = self.held.drain().map(|(k, _)| k).collect();
        let sources: Vec<A::SourceKey> = self.held_sources.keys().copied().collect();
        for &key in &sources {
            self.counting(key, |d| {
                d.held_sources.remove(&key);
            });
            groups.push(A::group_of(&key));
        }
        (groups, sources)
    }

    /// Applies `change` to the source entries of `key` and keeps its group's
    /// count of source entries right.
    fn counting(&mut self, key: A::SourceKey, change: impl FnOnce(&mut Self)) {
        let before = self.source_exists(&key);
        change(self);
        let after = self.source_exists(&key);
        let group = A::group_of(&key);
        match (before, after) {
            (false, true) => *self.source_count.entry(group).or_default() += 1,
            (true, false) => {
                if let Some(n) = self.source_count.get_mut(&group) {
                    *n -= 1;
                    if *n == 0 {
                        self.source_count.remove(&group);
                    }
                }
            }
            _ => {}
        }
    }

    fn source_exists(&self, key: &A::SourceKey) -> bool {
        self.sources.contains_key(key) || self.held_sources.contains_key(key)
    }

    /// Whether (vlan, group) has any source entry (set or held).
    pub fn has_sources(&self, key: &A::GroupKey) -> bool {
        self.source_count.contains_key(key)
    }

    /// The ports `key` holds from an earlier run until the hold ends.
    pub fn held_ports(&self, key: &A::GroupKey) -> PortMask {
        self.held.get(key).copied().unwrap_or_default()
    }

    /// The member ports the control plane set for `key` (held ones not
    /// included, router ports neither).
    pub fn members_of(&self, key: &A::GroupKey) -> PortMask {
        self.members.get(key).copied().unwrap_or_default()
    }

    /// The entry `key` must have in the group map, `routers` (the effective
    /// router ports) included; None: unregistered.
    pub fn group(&self, key: &A::GroupKey, routers: PortMask) -> Option<Want> {
        let own = self.members_of(key) | self.held_ports(key);
        let flags = if self.has_sources(key) {
            set_flags::SOURCES
        } else {
            0
        };
        if own.is_empty() && flags == 0 {
            return None;
        }
        Some(Want::new(own | routers, flags))
    }

    /// The entry `key` must have in the source map, `routers` included;
    /// None: no entry (the source follows its group).
    pub fn source(&self, key: &A::SourceKey, routers: PortMask) -> Option<Want> {
        let set = self.sources.get(key).copied();
        let held = self.held_sources.get(key).copied();
        if set.is_none() && held.is_none() {
            return None;
        }
        Some(Want::new(
            set.unwrap_or_default() | held.unwrap_or_default() | routers,
            0,
        ))
    }

    pub fn members(&self) -> impl Iterator<Item = (A::GroupKey, PortMask)> + '_ {
        self.members.iter().map(|(k, m)| (*k, *m))
    }

    pub fn sources(&self) -> impl Iterator<Item = (A::SourceKey, PortMask)> + '_ {
        self.sources.iter().map(|(k, m)| (*k, *m))
    }

    pub fn held(&self) -> impl Iterator<Item = (A::GroupKey, PortMask)> + '_ {
        self.held.iter().map(|(k, m)| (*k, *m))
    }

    pub fn held_sources(&self) -> impl Iterator<Item = (A::SourceKey, PortMask)> + '_ {
        self.held_sources.iter().map(|(k, m)| (*k, *m))
    }

    pub fn held_groups(&self) -> usize {
        self.held.len()
    }

    /// Every group and source entry that exists for any reason (for a
    /// change of router ports, which touches them all).
    pub fn all_keys(&self) -> (Vec<A::GroupKey>, Vec<A::SourceKey>) {
        let mut groups: Vec<A::GroupKey> = self
            .members
            .keys()
            .chain(self.held.keys())
            .copied()
            .collect();
        groups.extend(self.source_count.keys().copied());
        let sources = self
            .sources
            .keys()
            .chain(self.held_sources.keys())
            .copied()
            .collect();
        (groups, sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use igmpsnoop_common::{GroupKey, Source6Key, SourceKey};

    type D = Desired<[u8; 4]>;

    const NONE: PortMask = PortMask::EMPTY;

    const G: GroupKey = GroupKey::new(0, [239, 1, 1, 1]);
    const S1: SourceKey = SourceKey::new(0, [239, 1, 1, 1], [10, 0, 0, 1]);
    const S2: SourceKey = SourceKey::new(0, [239, 1, 1, 1], [10, 0, 0, 2]);

    fn want(mask: PortMask, flags: u8) -> Option<Want> {
        Some(Want::new(mask, flags))
    }

    #[test]
    fn a_group_without_sources_is_registered_by_its_ports_only() {
        let mut d = D::default();
        assert_eq!(d.group(&G, NONE), None);
        d.set_group(G, PortMask(0b10));
        assert_eq!(d.group(&G, NONE), want(PortMask(0b10), 0));
        d.set_group(G, NONE);
        assert_eq!(d.group(&G, NONE), None);
    }

    #[test]
    fn a_source_entry_keeps_its_group_registered_and_flagged_even_empty() {
        let mut d = D::default();
        d.set_source(S1, Some(NONE));
        assert_eq!(d.group(&G, NONE), want(NONE, set_flags::SOURCES));
        assert_eq!(d.source(&S1, NONE), want(NONE, 0));
        d.set_source(S2, Some(PortMask(0b100)));
        d.set_source(S1, None);
        assert_eq!(d.source(&S1, NONE), None);
        assert_eq!(d.group(&G, NONE), want(NONE, set_flags::SOURCES));
        d.set_source(S2, None);
        assert_eq!(
            d.group(&G, NONE),
            None,
            "no ports, no sources: unregistered"
        );
    }

    #[test]
    fn setting_a_source_twice_counts_it_once() {
        let mut d = D::default();
        d.set_source(S1, Some(PortMask(1)));
        d.set_source(S1, Some(PortMask(2)));
        d.set_source(S1, None);
        assert!(!d.has_sources(&G));
        d.set_source(S1, None);
        assert!(!d.has_sources(&G));
    }

    #[test]
    fn router_ports_join_every_set_including_empty_ones() {
        let mut d = D::default();
        d.set_group(G, PortMask(0b10));
        d.set_source(S1, Some(NONE));
        assert_eq!(
            d.group(&G, PortMask(0b1000)),
            want(PortMask(0b1010), set_flags::SOURCES)
        );
        assert_eq!(d.source(&S1, PortMask(0b1000)), want(PortMask(0b1000), 0));
        let (groups, sources) = d.all_keys();
        assert!(groups.contains(&G));
        assert_eq!(sources, vec![S1]);
    }

    #[test]
    fn held_sources_keep_their_ports_until_released() {
        let mut d = D::default();
        d.hold_source(S1, PortMask(0b100));
        d.hold_source(S2, NONE);
        assert_eq!(
            d.group(&G, PortMask(0b1)),
            want(PortMask(0b1), set_flags::SOURCES)
        );
        assert_eq!(d.source(&S1, PortMask(0b1)), want(PortMask(0b101), 0));
        d.set_source(S1, Some(PortMask(0b10)));
        assert_eq!(d.source(&S1, PortMask(0b1)), want(PortMask(0b111), 0));
        let (groups, sources) = d.release_held();
        assert!(groups.contains(&G));
        assert_eq!(sources.len(), 2);
        assert_eq!(
            d.source(&S1, NONE),
            want(PortMask(0b10), 0),
            "set since: kept as set"
        );
        assert_eq!(d.source(&S2, NONE), None, "not set since: gone");
        assert_eq!(d.group(&G, NONE), want(NONE, set_flags::SOURCES));
    }

    #[test]
    fn ipv6_sources_keep_their_group_registered_by_the_same_rules() {
        let g: [u8; 16] = [0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34];
        let s1 = Source6Key::new(3, g, [0xfd; 16]);
        let mut d = Desired::<[u8; 16]>::default();
        d.set_source(s1, Some(NONE));
        assert_eq!(
            d.group(&s1.group_key(), PortMask(0b100)),
            want(PortMask(0b100), set_flags::SOURCES)
        );
        d.set_group(s1.group_key(), PortMask(0b1));
        d.set_source(s1, None);
        assert_eq!(d.group(&s1.group_key(), NONE), want(PortMask(0b1), 0));
    }
}
