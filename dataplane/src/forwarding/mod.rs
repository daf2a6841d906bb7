//! The fast path's forwarding state: per-group and per-(group, source) port
//! sets, router ports, flood set and policy.
//!
//! The control plane's record of a group is a u64 bitmap of port indexes. The
//! kernel sees, per (VLAN, group), an entry of the GROUPS hash naming a slot
//! of the port-set pool ([`crate::port_sets`]), and per (VLAN, group, source)
//! with a filter of its own (IGMPv3), an entry of the SOURCES hash naming
//! another slot of the same pool. Changing an entry's ports swaps that one
//! entry, atomically, so no frame of any other group or source is lost or
//! duplicated meanwhile, and no write waits for an RCU grace period.
//!
//! # Order of the writes
//!
//! The program reads the group entry first; only when it carries
//! `group_flags::SOURCES` does it look the frame's source up in SOURCES,
//! and it uses the group's set when the source has no entry. One flush
//! writes, in this order:
//!
//! 1. new and changed source entries: a new one is not read before its
//!    group is flagged in step 2, so no source sees its entry before the
//!    group entry it goes with;
//! 2. new and changed group entries (flag set or cleared);
//! 3. removed source entries: after step 2 cleared the flag of a group that
//!    has none left (nothing reads them any more) or, while the flag stays,
//!    the source falls back to the group's set, where it is going;
//! 4. removed groups (a group goes only once it has no source entry, whose
//!    deletion step 3 did).
//!
//! Each step is one batch update or delete (the kernel writes each entry
//! atomically), so a frame from any other source of the group sees its old
//! set or its new one, never none and never both. One window is left: a
//! frame whose two reads (nanoseconds apart) straddle two of these
//! syscalls, when the same flush changes both a group's own set and one of
//! its source entries, can pair the group's old entry with the source's new
//! state; closing it would take an RCU grace period (~15 ms here) between
//! the steps.
//!
//! State adopted from an earlier run (pinned maps) is *held*: each adopted
//! group and source entry keeps at least the ports it had, on top of what
//! the control plane sets, until [`Forwarding::release_held`], so that hosts
//! which are still there lose nothing while they report again.
mod adopt;
mod desired;
mod table;

use std::collections::HashSet;

use aya::maps::{Array, DevMapHash, Map, MapData};
use igmpsnoop_common::{
    GroupEntry, GroupKey, MAX_GROUPS, MAX_SOURCE_ENTRIES, SourceEntry, SourceKey, SwitchConf,
};

use crate::{
    error::{Error, Result},
    port_sets::PortSets,
};
use desired::Desired;
use table::Table;

pub type PortMask = u64;

/// What a restarted switch found in the pinned maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Groups that were forwarding, now held.
    pub groups: usize,
    /// Source entries that were in place, now held.
    pub sources: usize,
    /// Router ports that were in place, now held.
    pub router_ports: PortMask,
    /// Port sets found published.
    pub port_sets: usize,
}

pub struct Forwarding {
    /// GROUPS: GroupKey -> GroupEntry.
    groups: Table<GroupKey, GroupEntry>,
    /// SOURCES: SourceKey -> SourceEntry.
    sources: Table<SourceKey, SourceEntry>,
    /// PORT_SETS, the array of maps that `sets` manages.
    _port_sets: Map,
    sets: PortSets,
    flood: DevMapHash<MapData>,
    routers: DevMapHash<MapData>,
    config: Array<MapData, SwitchConf>,
    /// ifindex of each port index.
    ifindexes: Vec<u32>,
    /// What the control plane set, and what is held.
    desired: Desired,
    /// Groups whose kernel entry the next `flush` recomputes.
    pending: HashSet<GroupKey>,
    /// Source entries the next `flush` recomputes.
    pending_sources: HashSet<SourceKey>,
    /// Ports in the ROUTERS devmap now.
    routers_installed: PortMask,
    conf: SwitchConf,
    adopted: Adopted,
}

fn xdp_err(name: &'static str) -> impl Fn(aya::maps::xdp::XdpMapError) -> Error {
    move |source| Error::XdpMap { name, source }
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> Error {
    move |source| Error::Map { name, source }
}

/// The mask of the ports (by index into `ifindexes`) among `of`, and whether
/// `of` held any ifindex that is not a port.
pub(crate) fn port_mask(ifindexes: &[u32], of: impl IntoIterator<Item = u32>) -> (PortMask, bool) {
    let mut mask = 0;
    let mut foreign = false;
    for ifindex in of {
        match ifindexes.iter().position(|i| *i == ifindex) {
            Some(index) => mask |= 1u64 << index,
            None => foreign = true,
        }
    }
    (mask, foreign)
}

/// The maps `Forwarding` takes over.
pub(crate) struct Maps {
    pub groups: Map,
    pub sources: Map,
    pub port_sets: Map,
    pub flood: DevMapHash<MapData>,
    pub routers: DevMapHash<MapData>,
    pub config: Array<MapData, SwitchConf>,
}

impl Forwarding {
    /// Takes over the maps, adopting whatever they already hold (pinned maps
    /// from an earlier run; fresh maps hold nothing). The flood set becomes
    /// exactly our ports. `capacity`: groups expected (records are sized
    /// for them up front).
    pub(crate) fn open(capacity: usize, maps: Maps, ifindexes: Vec<u32>) -> Result<Self> {
        let Map::ArrayOfMaps(sets_data) = &maps.port_sets else {
            return Err(Error::MissingMap {
                name: "PORT_SETS (as an array of maps)",
            });
        };
        let sets = PortSets::open(sets_data, ifindexes.clone())?;
        let mut this = Self {
            groups: Table::new("GROUPS", maps.groups, MAX_GROUPS as usize, capacity)?,
            sources: Table::new("SOURCES", maps.sources, MAX_SOURCE_ENTRIES as usize, 0)?,
            _port_sets: maps.port_sets,
            sets,
            flood: maps.flood,
            routers: maps.routers,
            config: maps.config,
            ifindexes,
            desired: Desired::with_capacity(capacity),
            pending: HashSet::new(),
            pending_sources: HashSet::new(),
            routers_installed: 0,
            conf: SwitchConf {
                flood_unregistered: 1,
                control_rate_pps: 0,
                router_ports: 0,
                count_streams: 1,
            },
            adopted: Adopted::default(),
        };
        this.adopt()?;
        this.write_conf()?;
        // Slots ready before the first join, which then waits for nothing.
        this.sets.maintain()?;
        Ok(this)
    }

    /// What the maps held when this switch started.
    pub fn adopted(&self) -> Adopted {
        self.adopted
    }

    /// Adopted groups still held.
    pub fn held_groups(&self) -> usize {
        self.desired.held_groups()
    }

    /// Adopted groups still held, with the ports they had (router ports of
    /// the earlier run included: the kernel did not tell them apart).
    pub fn held(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.desired.held()
    }

    /// Adopted source entries still held, with the ports they had (0: the
    /// source was wanted by nobody), router ports of the earlier run included.
    pub fn held_sources(&self) -> impl Iterator<Item = (SourceKey, PortMask)> + '_ {
        self.desired.held_sources()
    }

    /// Ends the hold on adopted state: adopted groups and source entries
    /// that the control plane has not set since are removed, the others keep
    /// exactly what it set; adopted router ports that it has not confirmed
    /// go. Returns how many adopted groups were removed.
    pub fn release_held(&mut self) -> Result<usize> {
        let (groups, sources) = self.desired.release_held();
        let removed = groups
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .filter(|k| self.desired.group(k).is_none() && self.groups.get(k).is_some())
            .count();
        self.pending.extend(groups);
        self.pending_sources.extend(sources);
        self.write_routers()?;
        self.flush()?;
        Ok(removed)
    }

    fn all_ports(&self) -> PortMask {
        if self.ifindexes.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.ifindexes.len()) - 1
        }
    }

    /// Sets the member ports of (vlan, group) now. With no member ports and
    /// no source entry the group is removed, which makes it unregistered
    /// again (flood policy applies).
    pub fn set_group(&mut self, vlan: u16, group: [u8; 4], members: PortMask) -> Result<()> {
        self.stage_group(vlan, group, members);
        self.flush()
    }

    pub fn delete_group(&mut self, vlan: u16, group: [u8; 4]) -> Result<()> {
        self.set_group(vlan, group, 0)
    }

    /// Like `set_group`, but written to the kernel by the next `flush`,
    /// together with every other staged change (one syscall for all).
    pub fn stage_group(&mut self, vlan: u16, group: [u8; 4], members: PortMask) {
        let key = GroupKey::new(vlan, group);
        self.desired.set_group(key, members & self.all_ports());
        self.pending.insert(key);
    }

    /// Stages the ports that receive traffic from `source` to (vlan, group),
    /// written by the next `flush`: Some(mask) gives the source an entry of
    /// its own (an empty mask: nobody wants it; router ports still get it),
    /// None removes that entry (the source follows the group's ports). A
    /// group with any source entry stays registered, even with no member.
    pub fn stage_source(
        &mut self,
        vlan: u16,
        group: [u8; 4],
        source: [u8; 4],
        members: Option<PortMask>,
    ) {
        let key = SourceKey::new(vlan, group, source);
        let all = self.all_ports();
        self.desired.set_source(key, members.map(|m| m & all));
        self.pending_sources.insert(key);
        // Its flag (and its being registered at all) may change.
        self.pending.insert(key.group_key());
    }

    /// `stage_source` and `flush`.
    pub fn set_source(
        &mut self,
        vlan: u16,
        group: [u8; 4],
        source: [u8; 4],
        members: Option<PortMask>,
    ) -> Result<()> {
        self.stage_source(vlan, group, source, members);
        self.flush()
    }

    /// Writes every staged change, in the order the module documentation
    /// gives: at most one batch update and one batch delete per map. Each
    /// entry is replaced whole, so no other group's or source's traffic is
    /// touched. An entry whose port set cannot be had (the pool is full), or
    /// a new one its map has no room for, keeps what it had (none, when new);
    /// the rest is written and the first error returned (refusals by a full
    /// map are counted: [`Forwarding::refused_sources`]).
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() && self.pending_sources.is_empty() {
            return Ok(());
        }
        let mut first_error = None;
        let source_keys: Vec<SourceKey> = self.pending_sources.drain().collect();
        let group_keys: Vec<GroupKey> = self.pending.drain().collect();
        let desired = &self.desired;
        let mut sources = self.sources.plan(
            &mut self.sets,
            source_keys,
            |k| desired.source(k),
            &mut first_error,
        );
        let mut groups = self.groups.plan(
            &mut self.sets,
            group_keys,
            |k| desired.group(k),
            &mut first_error,
        );
        let (sets, e) = (&mut self.sets, &mut first_error);
        self.sources.write_updates(sets, &mut sources, e);
        self.groups.write_updates(sets, &mut groups, e);
        self.sources.write_deletes(sets, &mut sources, e);
        self.groups.write_deletes(sets, &mut groups, e);
        for full in [self.sources.take_full(), self.groups.take_full()]
            .into_iter()
            .flatten()
        {
            first_error.get_or_insert(full);
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Housekeeping for idle moments: publishes port-set slots ahead of need
    /// (that waits for an RCU grace period, so not in the middle of a burst).
    pub fn maintain(&mut self) -> Result<()> {
        self.sets.maintain()
    }

    /// Router ports receive every registered and unregistered group, and
    /// every source of a group with source entries (RFC 4541 §2.1.2).
    pub fn set_router_ports(&mut self, mask: PortMask) -> Result<()> {
        let mask = mask & self.all_ports();
        if mask == self.desired.routers() {
            return Ok(());
        }
        self.desired.set_routers(mask);
        self.write_routers()?;
        let (groups, sources) = self.desired.all_keys();
        self.pending.extend(groups);
        self.pending_sources.extend(sources);
        self.flush()
    }

    /// Makes the ROUTERS devmap hold the effective router ports: new ones
    /// first, then the count the program checks, then the removals, so the
    /// count is never 0 while the new set is not empty.
    fn write_routers(&mut self) -> Result<()> {
        let want = self.desired.effective_routers();
        for (index, &ifindex) in self.ifindexes.iter().enumerate() {
            let bit = 1u64 << index;
            if want & bit != 0 && self.routers_installed & bit == 0 {
                self.routers
                    .insert(ifindex, ifindex, None, 0)
                    .map_err(xdp_err("ROUTERS"))?;
            }
        }
        self.conf.router_ports = want.count_ones();
        self.write_conf()?;
        for (index, &ifindex) in self.ifindexes.iter().enumerate() {
            let bit = 1u64 << index;
            if want & bit == 0 && self.routers_installed & bit != 0 {
                self.routers.remove(ifindex).map_err(map_err("ROUTERS"))?;
            }
        }
        self.routers_installed = want;
        Ok(())
    }

    pub fn set_flood_unregistered(&mut self, flood: bool) -> Result<()> {
        self.conf.flood_unregistered = u32::from(flood);
        self.write_conf()
    }

    /// Caps the control frames each port may send to userspace per second (0 = none).
    pub fn set_control_rate(&mut self, pps: u32) -> Result<()> {
        self.conf.control_rate_pps = pps;
        self.write_conf()
    }

    /// Whether the fast path counts each replicated stream (STREAMS).
    pub fn set_count_streams(&mut self, on: bool) -> Result<()> {
        self.conf.count_streams = u32::from(on);
        self.write_conf()
    }

    fn write_conf(&mut self) -> Result<()> {
        self.config.set(0, self.conf, 0).map_err(map_err("CONFIG"))
    }

    /// Router ports the control plane set (adopted ones not included).
    pub fn router_ports(&self) -> PortMask {
        self.desired.routers()
    }

    /// The member ports of every group the control plane has set.
    pub fn groups(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.desired.members()
    }

    /// Every source entry the control plane has set, with its member ports
    /// (0: nobody wants the source).
    pub fn sources(&self) -> impl Iterator<Item = (SourceKey, PortMask)> + '_ {
        self.desired.sources()
    }

    /// The port set in the kernel for (vlan, group), router ports and held
    /// ports included; 0 when the group is not registered or registered with
    /// no port (see [`Forwarding::registered`]).
    /// The member ports last set or staged for (vlan, group).
    pub fn members(&self, vlan: u16, group: [u8; 4]) -> PortMask {
        self.desired.members_of(&GroupKey::new(vlan, group))
    }

    pub fn installed(&self, vlan: u16, group: [u8; 4]) -> PortMask {
        self.groups
            .get(&GroupKey::new(vlan, group))
            .map_or(0, |i| i.mask)
    }

    /// Whether (vlan, group) has an entry in the kernel (registered: not
    /// flooded, even with an empty port set).
    pub fn registered(&self, vlan: u16, group: [u8; 4]) -> bool {
        self.groups.get(&GroupKey::new(vlan, group)).is_some()
    }

    /// The port set in the kernel for traffic from `source` to (vlan, group),
    /// router and held ports included, when the source has an entry of its
    /// own (Some(0): nobody receives it).
    pub fn installed_source(&self, vlan: u16, group: [u8; 4], source: [u8; 4]) -> Option<PortMask> {
        self.sources
            .get(&SourceKey::new(vlan, group, source))
            .map(|i| i.mask)
    }

    /// Source entries in the kernel.
    pub fn source_entries(&self) -> usize {
        self.sources.len()
    }

    /// New source entries refused because SOURCES was full, since start.
    pub fn refused_sources(&self) -> u64 {
        self.sources.refused_total()
    }

    /// Distinct port sets some entry points at, i.e. inner maps in use.
    pub fn inner_maps(&self) -> usize {
        self.sets.in_use()
    }

    /// Port-set slots published in the kernel (in use, cached or free).
    pub fn published_port_sets(&self) -> usize {
        self.sets.published()
    }
}
