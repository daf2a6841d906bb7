//! One address family's forwarding state: its GROUPS and SOURCES tables (IPv4:
//! GROUPS and SOURCES; IPv6: GROUPS6 and SOURCES6), what the control plane
//! wants in them, and the changes staged for the next flush. Both families
//! run this one state machine; only the keys differ ([`Addr`]).
use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;

use igmpsnoop_common::{
    FAMILY_IPV4, FAMILY_IPV6, Group6Key, GroupKey, MAX_SOURCE_ENTRIES, Source6Key, SourceKey,
};

use super::desired::Desired;
use super::table::Table;
use super::vlans::VlanTable;
use super::{PortMask, Routers};
use crate::{error::Error, error::Result, port_sets::PortSets};

/// A group or source address of one family, in network byte order:
/// `[u8; 4]` (IPv4, IGMP) or `[u8; 16]` (IPv6, MLD). The forwarding API
/// takes either; the family picks the maps.
pub trait Addr: sealed::Family + Copy + Eq + Hash + Debug + 'static {
    /// Key of the family's group map.
    type GroupKey: Copy + Eq + Hash + Debug + aya::Pod;
    /// Key of the family's source map.
    type SourceKey: Copy + Eq + Hash + Debug + aya::Pod;
    /// The maps' names, for errors and logs.
    const GROUPS: &'static str;
    const SOURCES: &'static str;
    /// `FAMILY_IPV4` or `FAMILY_IPV6`: the family of ROUTER_SETS' keys.
    const FAMILY: u16;

    fn group_key(vlan: u16, group: Self) -> Self::GroupKey;
    fn source_key(vlan: u16, group: Self, source: Self) -> Self::SourceKey;
    /// The (VLAN, group) a source entry belongs to.
    fn group_of(key: &Self::SourceKey) -> Self::GroupKey;
    fn group_vlan(key: &Self::GroupKey) -> u16;
    fn source_vlan(key: &Self::SourceKey) -> u16 {
        Self::group_vlan(&Self::group_of(key))
    }
}

pub(crate) mod sealed {
    use super::super::Forwarding;
    use super::FamilyState;

    /// Where [`super::Addr`]'s family lives in [`Forwarding`]; not
    /// implementable outside this crate.
    pub trait Family: Sized {
        fn state(f: &Forwarding) -> &FamilyState<Self>
        where
            Self: super::Addr;
        fn state_mut(f: &mut Forwarding) -> &mut FamilyState<Self>
        where
            Self: super::Addr;
    }
}

impl Addr for [u8; 4] {
    type GroupKey = GroupKey;
    type SourceKey = SourceKey;
    const GROUPS: &'static str = "GROUPS";
    const SOURCES: &'static str = "SOURCES";
    const FAMILY: u16 = FAMILY_IPV4;

    fn group_key(vlan: u16, group: Self) -> GroupKey {
        GroupKey::new(vlan, group)
    }
    fn source_key(vlan: u16, group: Self, source: Self) -> SourceKey {
        SourceKey::new(vlan, group, source)
    }
    fn group_of(key: &SourceKey) -> GroupKey {
        key.group_key()
    }
    fn group_vlan(key: &GroupKey) -> u16 {
        key.vlan
    }
}

impl sealed::Family for [u8; 4] {
    fn state(f: &super::Forwarding) -> &FamilyState<Self> {
        &f.v4
    }
    fn state_mut(f: &mut super::Forwarding) -> &mut FamilyState<Self> {
        &mut f.v4
    }
}

impl Addr for [u8; 16] {
    type GroupKey = Group6Key;
    type SourceKey = Source6Key;
    const GROUPS: &'static str = "GROUPS6";
    const SOURCES: &'static str = "SOURCES6";
    const FAMILY: u16 = FAMILY_IPV6;

    fn group_key(vlan: u16, group: Self) -> Group6Key {
        Group6Key::new(vlan, group)
    }
    fn source_key(vlan: u16, group: Self, source: Self) -> Source6Key {
        Source6Key::new(vlan, group, source)
    }
    fn group_of(key: &Source6Key) -> Group6Key {
        key.group_key()
    }
    fn group_vlan(key: &Group6Key) -> u16 {
        key.vlan
    }
}

impl sealed::Family for [u8; 16] {
    fn state(f: &super::Forwarding) -> &FamilyState<Self> {
        &f.v6
    }
    fn state_mut(f: &mut super::Forwarding) -> &mut FamilyState<Self> {
        &mut f.v6
    }
}

/// One family's tables, wishes and staged changes.
pub struct FamilyState<A: Addr> {
    pub(super) groups: Table<A::GroupKey>,
    pub(super) sources: Table<A::SourceKey>,
    pub(super) desired: Desired<A>,
    /// Groups whose kernel entry the next flush recomputes.
    pub(super) pending: HashSet<A::GroupKey>,
    /// Source entries the next flush recomputes.
    pub(super) pending_sources: HashSet<A::SourceKey>,
}

impl<A: Addr> FamilyState<A> {
    /// Takes over the family's two maps; `groups_max`: the group map's
    /// max_entries; `expected`: groups to size the records for.
    pub(super) fn new(
        groups: aya::maps::Map,
        sources: aya::maps::Map,
        groups_max: usize,
        expected: usize,
    ) -> Result<Self> {
        Ok(Self {
            groups: Table::new(A::GROUPS, groups, groups_max, expected)?,
            sources: Table::new(A::SOURCES, sources, MAX_SOURCE_ENTRIES as usize, 0)?,
            desired: Desired::with_capacity(expected),
            pending: HashSet::new(),
            pending_sources: HashSet::new(),
        })
    }

    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty() || !self.pending_sources.is_empty()
    }

    /// Every group and source entry that exists for any reason is
    /// recomputed by the next flush (router ports or VLAN config changed).
    pub(super) fn touch_all(&mut self) {
        let (groups, sources) = self.desired.all_keys();
        self.pending.extend(groups);
        self.pending_sources.extend(sources);
    }

    /// Ends the hold on adopted entries; returns how many adopted groups go.
    pub(super) fn release_held(&mut self) -> usize {
        let (groups, sources) = self.desired.release_held();
        let removed = groups
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|k| {
                self.desired.group(k, PortMask::EMPTY).is_none() && self.groups.get(k).is_some()
            })
            .count();
        self.pending.extend(groups);
        self.pending_sources.extend(sources);
        removed
    }

    /// Writes the staged changes in the order the module documentation
    /// gives (new sources, groups, removed sources, removed groups), with
    /// the VLAN's router ports in every set, each set restricted to the
    /// ports carrying its VLAN and given its format; errors go to
    /// `first_error`.
    pub(super) fn flush(
        &mut self,
        sets: &mut PortSets,
        routers: &Routers,
        vlans: &VlanTable,
        first_error: &mut Option<Error>,
    ) {
        if !self.has_pending() {
            return;
        }
        let source_keys: Vec<A::SourceKey> = self.pending_sources.drain().collect();
        let group_keys: Vec<A::GroupKey> = self.pending.drain().collect();
        let desired = &self.desired;
        let family = A::FAMILY;
        let mut sources = self.sources.plan(
            sets,
            source_keys,
            |k| {
                let vlan = A::source_vlan(k);
                let want = desired.source(k, routers.of(vlan, family));
                want.map(|w| vlans.shape(vlan, w))
            },
            first_error,
        );
        let mut groups = self.groups.plan(
            sets,
            group_keys,
            |k| {
                let vlan = A::group_vlan(k);
                let want = desired.group(k, routers.of(vlan, family));
                want.map(|w| vlans.shape(vlan, w))
            },
            first_error,
        );
        self.sources.write_updates(sets, &mut sources, first_error);
        self.groups.write_updates(sets, &mut groups, first_error);
        self.sources.write_deletes(sets, &mut sources, first_error);
        self.groups.write_deletes(sets, &mut groups, first_error);
        for full in [self.sources.take_full(), self.groups.take_full()]
            .into_iter()
            .flatten()
        {
            first_error.get_or_insert(full);
        }
    }
}
