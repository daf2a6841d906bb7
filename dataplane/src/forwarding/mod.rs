//! The fast path's forwarding state: per-group and per-(group, source) port
//! sets, router ports, flood set and policy.
//!
//! The control plane's record of a group is a [`PortMask`] of port indexes. The
//! kernel sees, per (VLAN, group), an entry of the GROUPS hash naming a slot
//! of the port-set pool ([`crate::port_sets`]), and per (VLAN, group, source)
//! with a filter of its own (IGMPv3), an entry of the SOURCES hash naming
//! another slot of the same pool. Changing an entry's ports swaps that one
//! entry, atomically, so no frame of any other group or source is lost or
//! duplicated meanwhile, and no write waits for an RCU grace period.
//!
//! IPv6 (MLD) groups and sources live in maps of their own, GROUPS6 and
//! SOURCES6 (16-byte addresses; the IPv4 keys stay compact), with the same
//! values and port sets from the same pool. Both families run the same code
//! ([`family::FamilyState`], [`desired::Desired`], [`table::Table`]): the API
//! is generic over the address ([`Addr`]: `[u8; 4]` or `[u8; 16]`), so
//! `stage_group(vlan, ipv4.octets(), ports)` and
//! `stage_group(vlan, ipv6.octets(), ports)` are the same call.
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
//! The IPv4 family's four steps come first, then the IPv6 family's four: a
//! group and its sources are always of one family, so the guarantees hold
//! in each, and one flush is at most eight syscalls (none for a table with
//! nothing to write).
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
//! # VLANs
//!
//! Every set is its VLAN's: `(members ∪ routers(vlan, family)) ∩
//! carriers(vlan)`, with the format its ports want the VLAN in
//! ([`vlans::VlanTable`]). Router ports are kept per (VLAN, family), with
//! `ANY_VLAN` for VLANs that have none of their own; FLOOD_SETS holds the
//! flood set of each VLAN some port has config for, the FLOOD devmap the
//! VLAN-unaware ports. Without VLAN config all of it is as before: one
//! flood set of every port, every set AS_IS.
//!
//! # Entries the program wrote (fast join)
//!
//! With fast join on, the XDP program may itself point a group entry at a
//! published port set holding one more port (ebpf/xdp/src/fast_join.rs),
//! and reports each such write on a ring buffer. The daemon drains it and
//! calls [`Forwarding::touch`] for every group reported: the entry is then
//! taken as unknown, and the next flush writes what the control plane wants
//! (or deletes the entry), whatever the program wrote. So the control plane
//! stays the one authority; the program only gets a join in first.
//!
//! State adopted from an earlier run (pinned maps) is *held*: each adopted
//! group and source entry keeps at least the ports it had, on top of what
//! the control plane sets, until [`Forwarding::release_held`], so that hosts
//! which are still there lose nothing while they report again.
mod adopt;
mod desired;
mod family;
mod ref_map;
mod table;
mod vlans;

use std::collections::{BTreeMap, HashMap};

use aya::maps::{Array, DevMapHash, HashMap as AyaHashMap, Map, MapData};
use igmpsnoop_common::{
    ANY_VLAN, FAMILY_IPV4, FAMILY_IPV6, Group6Key, GroupKey, PortVlanConf, RouterKey, SetRef,
    Source6Key, SourceKey, SwitchConf, VlanPorts,
};

use crate::{
    error::{Error, Result},
    port_sets::{PortSets, Published},
    vlan::PortVlans,
};
use desired::Want;
pub use family::Addr;
use family::FamilyState;
use ref_map::RefMap;
use vlans::VlanTable;

pub use igmpsnoop_common::PortMask;

/// What a restarted switch found in the pinned maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Groups that were forwarding, now held (IPv4 and IPv6).
    pub groups: usize,
    /// Source entries that were in place, now held (IPv4 and IPv6).
    pub sources: usize,
    /// Router ports that were in place, now held.
    pub router_ports: PortMask,
    /// Port sets found published.
    pub port_sets: usize,
}

pub struct Forwarding {
    /// GROUPS and SOURCES, and what the control plane wants in them.
    v4: FamilyState<[u8; 4]>,
    /// GROUPS6 and SOURCES6, likewise.
    v6: FamilyState<[u8; 16]>,
    /// PORT_SETS, the array of maps that `sets` manages.
    _port_sets: Map,
    sets: PortSets,
    /// The VLAN-unaware ports (all, without VLAN config).
    flood: DevMapHash<MapData>,
    /// Ports in `flood` now.
    flood_installed: PortMask,
    flood_sets: RefMap<u16>,
    router_sets: RefMap<RouterKey>,
    port_vlans: Array<MapData, PortVlanConf>,
    /// Each VLAN's carriers and untagged ports, for the program's fast join
    /// and fast leave (`VlanTable::vlan_ports`).
    vlan_ports: AyaHashMap<MapData, u16, VlanPorts>,
    vlans: VlanTable,
    config: Array<MapData, SwitchConf>,
    /// ifindex of each port index.
    ifindexes: Vec<u32>,
    routers: Routers,
    conf: SwitchConf,
    adopted: Adopted,
}

/// Router ports by (VLAN or ANY_VLAN, family), as the control plane set
/// them, and those adopted from an earlier run (held, for every VLAN and
/// family, until released).
#[derive(Default)]
pub(crate) struct Routers {
    set: BTreeMap<RouterKey, PortMask>,
    held: PortMask,
}

impl Routers {
    /// The router ports of `vlan` and `family`: its own, or ANY_VLAN's.
    pub fn of(&self, vlan: u16, family: u16) -> PortMask {
        let own = self.set.get(&RouterKey { vlan, family });
        let any = || {
            self.set.get(&RouterKey {
                vlan: ANY_VLAN,
                family,
            })
        };
        own.or_else(any).copied().unwrap_or_default() | self.held
    }
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
    let mut mask = PortMask::EMPTY;
    let mut foreign = false;
    for ifindex in of {
        match ports(ifindexes).find(|&(_, i)| i == ifindex) {
            Some((port, _)) => mask.insert(port),
            None => foreign = true,
        }
    }
    (mask, foreign)
}

/// Each port's index (its bit in a [`PortMask`]) with its ifindex, in
/// order. There are at most `MAX_PORTS` (64) ports (`Dataplane::open`
/// refuses more), so every index fits the mask's `u8` port numbers.
pub(crate) fn ports(ifindexes: &[u32]) -> impl Iterator<Item = (u8, u32)> + '_ {
    ifindexes
        .iter()
        .zip(0u8..)
        .map(|(&ifindex, port)| (port, ifindex))
}

/// The maps `Forwarding` takes over.
pub(crate) struct Maps {
    pub groups: Map,
    pub sources: Map,
    pub groups6: Map,
    pub sources6: Map,
    pub port_sets: Map,
    pub masks: Array<MapData, PortMask>,
    pub flood: DevMapHash<MapData>,
    pub flood_sets: AyaHashMap<MapData, u16, SetRef>,
    pub router_sets: AyaHashMap<MapData, RouterKey, SetRef>,
    pub port_vlans: Array<MapData, PortVlanConf>,
    pub vlan_ports: AyaHashMap<MapData, u16, VlanPorts>,
    pub config: Array<MapData, SwitchConf>,
    pub slots: AyaHashMap<MapData, PortMask, u32>,
}

impl Forwarding {
    /// Takes over the maps, adopting whatever they already hold (pinned maps
    /// from an earlier run; fresh maps hold nothing), VLAN config included
    /// (of the ports that kept their index). The flood set becomes exactly
    /// our ports. `capacity`: the group maps' max_entries (`--max-groups`),
    /// the IPv4 records sized for that many up front.
    pub(crate) fn open(capacity: usize, maps: Maps, ifindexes: Vec<u32>) -> Result<Self> {
        let Map::ArrayOfMaps(sets_data) = &maps.port_sets else {
            return Err(Error::MissingMap {
                name: "PORT_SETS (as an array of maps)",
            });
        };
        let published = Published {
            masks: maps.masks,
            slots: maps.slots,
        };
        let sets = PortSets::open(sets_data, ifindexes.clone(), published)?;
        let adopted_vlans = ifindexes
            .iter()
            .enumerate()
            .map(|(i, &ifindex)| {
                maps.port_vlans
                    .get(&(i as u32), 0)
                    .ok()
                    .filter(|c| c.ifindex == ifindex)
                    .and_then(|c| vlans::from_port_vlan_conf(&c))
            })
            .collect();
        let mut this = Self {
            v4: FamilyState::new(maps.groups, maps.sources, capacity, capacity)?,
            // Expected IPv6 groups are not known apart; sized as they come.
            v6: FamilyState::new(maps.groups6, maps.sources6, capacity, 0)?,
            _port_sets: maps.port_sets,
            sets,
            flood: maps.flood,
            flood_installed: PortMask::EMPTY,
            flood_sets: RefMap::new("FLOOD_SETS", maps.flood_sets),
            router_sets: RefMap::new("ROUTER_SETS", maps.router_sets),
            port_vlans: maps.port_vlans,
            vlan_ports: maps.vlan_ports,
            vlans: VlanTable::new(adopted_vlans),
            config: maps.config,
            ifindexes,
            routers: Routers::default(),
            conf: SwitchConf {
                flood_unregistered: 1,
                control_rate_pps: 0,
                vlans: 0,
                count_streams: 1,
                // Until the control plane says it speaks MLD.
                snoop_ipv6: 0,
                // Until the control plane turns it on (it must drain the
                // ring buffer of the program's writes).
                fast_join: 0,
                fast_join_ports: 0,
            },
            adopted: Adopted::default(),
        };
        for index in 0..this.ifindexes.len() {
            this.write_port_vlans(index)?;
        }
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

    /// Adopted groups still held (IPv4 and IPv6).
    pub fn held_groups(&self) -> usize {
        self.v4.desired.held_groups() + self.v6.desired.held_groups()
    }

    /// The ports (vlan, group) holds from an earlier run until the hold
    /// ends (none when it is not held).
    pub fn held_ports<A: Addr>(&self, vlan: u16, group: A) -> PortMask {
        A::state(self)
            .desired
            .held_ports(&A::group_key(vlan, group))
    }

    /// Adopted groups of family `A` still held, with the ports they had
    /// (router ports of the earlier run included: the kernel did not tell
    /// them apart).
    pub fn held_of<A: Addr>(&self) -> impl Iterator<Item = (A::GroupKey, PortMask)> + '_ {
        A::state(self).desired.held()
    }

    /// Adopted source entries of family `A` still held, with the ports they
    /// had (empty: the source was wanted by nobody), router ports of the earlier
    /// run included.
    pub fn held_sources_of<A: Addr>(&self) -> impl Iterator<Item = (A::SourceKey, PortMask)> + '_ {
        A::state(self).desired.held_sources()
    }

    /// `held_of` IPv4.
    pub fn held(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.held_of::<[u8; 4]>()
    }

    /// `held_sources_of` IPv4.
    pub fn held_sources(&self) -> impl Iterator<Item = (SourceKey, PortMask)> + '_ {
        self.held_sources_of::<[u8; 4]>()
    }

    /// `held_of` IPv6.
    pub fn held6(&self) -> impl Iterator<Item = (Group6Key, PortMask)> + '_ {
        self.held_of::<[u8; 16]>()
    }

    /// `held_sources_of` IPv6.
    pub fn held_sources6(&self) -> impl Iterator<Item = (Source6Key, PortMask)> + '_ {
        self.held_sources_of::<[u8; 16]>()
    }

    /// Ends the hold on adopted state: adopted groups and source entries
    /// that the control plane has not set since are removed, the others keep
    /// exactly what it set; adopted router ports that it has not confirmed
    /// go. Returns how many adopted groups were removed.
    pub fn release_held(&mut self) -> Result<usize> {
        let removed = self.v4.release_held() + self.v6.release_held();
        if !self.routers.held.is_empty() {
            self.routers.held = PortMask::EMPTY;
            self.v4.touch_all();
            self.v6.touch_all();
        }
        self.write_vlan_sets()?;
        self.flush()?;
        Ok(removed)
    }

    fn all_ports(&self) -> PortMask {
        PortMask::first(self.ifindexes.len())
    }

    /// Sets the member ports of (vlan, group) now, an IPv4 (`[u8; 4]`) or
    /// IPv6 (`[u8; 16]`) group. With no member ports and no source entry
    /// the group is removed, which makes it unregistered again (flood
    /// policy applies).
    pub fn set_group<A: Addr>(&mut self, vlan: u16, group: A, members: PortMask) -> Result<()> {
        self.stage_group(vlan, group, members);
        self.flush()
    }

    pub fn delete_group<A: Addr>(&mut self, vlan: u16, group: A) -> Result<()> {
        self.set_group(vlan, group, PortMask::EMPTY)
    }

    /// Like `set_group`, but written to the kernel by the next `flush`,
    /// together with every other staged change (one syscall per map for all).
    pub fn stage_group<A: Addr>(&mut self, vlan: u16, group: A, members: PortMask) {
        let key = A::group_key(vlan, group);
        let members = members & self.all_ports();
        let family = A::state_mut(self);
        family.desired.set_group(key, members);
        family.pending.insert(key);
    }

    /// Stages the ports that receive traffic from `source` to (vlan, group),
    /// written by the next `flush`: Some(mask) gives the source an entry of
    /// its own (an empty mask: nobody wants it; router ports still get it),
    /// None removes that entry (the source follows the group's ports). A
    /// group with any source entry stays registered, even with no member.
    pub fn stage_source<A: Addr>(
        &mut self,
        vlan: u16,
        group: A,
        source: A,
        members: Option<PortMask>,
    ) {
        let key = A::source_key(vlan, group, source);
        let all = self.all_ports();
        let family = A::state_mut(self);
        family.desired.set_source(key, members.map(|m| m & all));
        family.pending_sources.insert(key);
        // Its flag (and its being registered at all) may change.
        family.pending.insert(A::group_of(&key));
    }

    /// `stage_source` and `flush`.
    pub fn set_source<A: Addr>(
        &mut self,
        vlan: u16,
        group: A,
        source: A,
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
        let mut first_error = None;
        let (routers, vlans) = (&self.routers, &self.vlans);
        self.v4
            .flush(&mut self.sets, routers, vlans, &mut first_error);
        self.v6
            .flush(&mut self.sets, routers, vlans, &mut first_error);
        first_error.map_or(Ok(()), Err)
    }

    /// Housekeeping for idle moments: publishes port-set slots ahead of need
    /// (that waits for an RCU grace period, so not in the middle of a burst).
    pub fn maintain(&mut self) -> Result<()> {
        self.sets.maintain()
    }

    /// Router ports of every VLAN without router ports of its own, both
    /// families (`set_vlan_router_ports(ANY_VLAN, mask)` for each): they
    /// receive every registered and unregistered group, and every source of
    /// a group with source entries (RFC 4541 §2.1.2).
    pub fn set_router_ports(&mut self, mask: PortMask) -> Result<()> {
        self.set_vlan_router_ports::<[u8; 4]>(ANY_VLAN, mask)?;
        self.set_vlan_router_ports::<[u8; 16]>(ANY_VLAN, mask)
    }

    /// Router ports of `A`'s family on `vlan` (ANY_VLAN: every VLAN without
    /// router ports of its own): they receive every registered and
    /// unregistered group of that family and VLAN (RFC 4541 §2.1.2), those
    /// of them that carry the VLAN. An empty mask is a VLAN with no router
    /// port (its unregistered traffic is dropped when flooding is off),
    /// not a return to ANY_VLAN's.
    pub fn set_vlan_router_ports<A: Addr>(&mut self, vlan: u16, mask: PortMask) -> Result<()> {
        let mask = mask & self.all_ports();
        let key = RouterKey {
            vlan,
            family: A::FAMILY,
        };
        if self.routers.set.get(&key) == Some(&mask) {
            return Ok(());
        }
        self.routers.set.insert(key, mask);
        self.write_vlan_sets()?;
        A::state_mut(self).touch_all();
        self.flush()
    }

    /// One port's VLAN membership (None: VLAN-unaware): PORT_VLANS, then
    /// every set recomputed for it (flood, router, group and source sets),
    /// then `SwitchConf::vlans`.
    pub(crate) fn set_port_vlans(&mut self, port: usize, config: Option<PortVlans>) -> Result<()> {
        self.vlans.set(port, config);
        self.write_port_vlans(port)?;
        self.write_vlan_sets()?;
        self.v4.touch_all();
        self.v6.touch_all();
        self.flush()
    }

    /// A port's VLAN config, as the fast path applies it.
    pub fn port_vlans(&self, port: usize) -> Option<&PortVlans> {
        self.vlans.get(port)
    }

    fn write_port_vlans(&mut self, port: usize) -> Result<()> {
        let conf = vlans::port_vlan_conf(self.ifindexes[port], self.vlans.get(port));
        self.port_vlans
            .set(port as u32, conf, 0)
            .map_err(map_err("PORT_VLANS"))
    }

    /// The sets that follow VLAN config and router ports: the FLOOD devmap
    /// (VLAN-unaware ports), FLOOD_SETS (each VLAN with config), ROUTER_SETS
    /// (each (VLAN, family) with router ports of its own or with config,
    /// and ANY_VLAN's); then `SwitchConf::vlans`. New ports join FLOOD
    /// before old ones leave it, so a flood never finds it empty meanwhile.
    fn write_vlan_sets(&mut self) -> Result<()> {
        let unaware = self.vlans.unaware();
        self.write_flood(unaware)?;
        let flood: HashMap<u16, Want> = self
            .vlans
            .configured()
            .map(|v| (v, self.vlans.shape(v, Want::new(self.vlans.carriers(v), 0))))
            .collect();
        self.flood_sets.sync(&mut self.sets, &flood)?;
        let mut keys: Vec<RouterKey> = self.routers.set.keys().copied().collect();
        for family in [FAMILY_IPV4, FAMILY_IPV6] {
            keys.push(RouterKey {
                vlan: ANY_VLAN,
                family,
            });
            keys.extend(
                self.vlans
                    .configured()
                    .map(|vlan| RouterKey { vlan, family }),
            );
        }
        let routers: HashMap<RouterKey, Want> = keys
            .into_iter()
            .map(|k| {
                let want = Want::new(self.routers.of(k.vlan, k.family), 0);
                let shaped = if k.vlan == ANY_VLAN {
                    self.vlans.shape_unconfigured(want)
                } else {
                    self.vlans.shape(k.vlan, want)
                };
                (k, shaped)
            })
            .collect();
        self.router_sets.sync(&mut self.sets, &routers)?;
        // Before `vlans` turns on: the program shapes its writes with it.
        self.write_vlan_ports()?;
        let on = u32::from(self.vlans.any());
        if self.conf.vlans != on {
            self.conf.vlans = on;
            self.write_conf()?;
        }
        Ok(())
    }

    /// Makes VLAN_PORTS hold exactly what the VLAN table says (entries of
    /// VLANs no longer configured, adopted ones included, deleted).
    fn write_vlan_ports(&mut self) -> Result<()> {
        let want = self.vlans.vlan_ports();
        let stale: Vec<u16> = self
            .vlan_ports
            .keys()
            .filter_map(|k| k.ok())
            .filter(|k| !want.contains_key(k))
            .collect();
        for vlan in stale {
            self.vlan_ports
                .remove(&vlan)
                .map_err(map_err("VLAN_PORTS"))?;
        }
        for (vlan, ports) in want {
            if self.vlan_ports.get(&vlan, 0).ok() != Some(ports) {
                self.vlan_ports
                    .insert(vlan, ports, 0)
                    .map_err(map_err("VLAN_PORTS"))?;
            }
        }
        Ok(())
    }

    /// Makes the FLOOD devmap hold exactly `want`.
    fn write_flood(&mut self, want: PortMask) -> Result<()> {
        for (port, ifindex) in ports(&self.ifindexes) {
            if want.contains(port) && !self.flood_installed.contains(port) {
                self.flood
                    .insert(ifindex, ifindex, None, 0)
                    .map_err(xdp_err("FLOOD"))?;
                self.flood_installed.insert(port);
            }
        }
        for (port, ifindex) in ports(&self.ifindexes) {
            if !want.contains(port) && self.flood_installed.contains(port) {
                self.flood.remove(ifindex).map_err(map_err("FLOOD"))?;
                self.flood_installed.remove(port);
            }
        }
        Ok(())
    }

    /// The router ports in the kernel for `vlan` and `A`'s family (held
    /// ones included), when it has a router set of its own.
    pub fn installed_routers<A: Addr>(&self, vlan: u16) -> Option<PortMask> {
        self.router_sets.installed(&RouterKey {
            vlan,
            family: A::FAMILY,
        })
    }

    /// The flood set in the kernel for `vlan`, when some port has VLAN
    /// config for it (otherwise the VLAN-unaware ports).
    pub fn installed_flood(&self, vlan: u16) -> PortMask {
        self.flood_sets
            .installed(&vlan)
            .unwrap_or(self.flood_installed)
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

    /// Fast join on or off: whether the program applies (*,G) joins from
    /// the ports of [`Forwarding::set_fast_join_ports`] itself. Whoever
    /// turns it on must drain the program's ring buffer of writes and
    /// [`Forwarding::touch`] each group (the daemon does, through
    /// `Dataplane::drain_fast_joins`). On, every single-port set is kept
    /// published, so that a group's first member's join can go fast.
    pub fn set_fast_join(&mut self, on: bool) -> Result<()> {
        if on {
            self.sets.keep_single_port_sets()?;
        }
        self.conf.fast_join = u32::from(on);
        self.write_conf()
    }

    /// The ports whose joins the program may apply (the control plane
    /// leaves out a port whose join it would refuse: at a group limit,
    /// or all of them when the table is full). Written only on change.
    pub fn set_fast_join_ports(&mut self, ports: PortMask) -> Result<()> {
        let ports = ports & self.all_ports();
        if ports == PortMask(self.conf.fast_join_ports) {
            return Ok(());
        }
        // SwitchConf keeps the raw bits: the XDP program reads it.
        self.conf.fast_join_ports = ports.0;
        self.write_conf()
    }

    /// The ports whose joins the program may apply now (none with fast join
    /// off).
    pub fn fast_join_ports(&self) -> PortMask {
        if self.conf.fast_join == 0 {
            PortMask::EMPTY
        } else {
            PortMask(self.conf.fast_join_ports)
        }
    }

    /// The program wrote (vlan, group)'s entry (fast join or leave; its
    /// ring event was just read): noted, for [`Self::touch`] after the
    /// grace. A flush that writes the entry in between covers it.
    pub fn program_wrote<A: Addr>(&mut self, vlan: u16, group: A) {
        let key = A::group_key(vlan, group);
        A::state_mut(self).groups.program_wrote(key);
    }

    /// Whether a program write of (vlan, group)'s entry awaits its rewrite:
    /// no flush wrote the entry since the write was read.
    pub fn awaits_rewrite<A: Addr>(&self, vlan: u16, group: A) -> bool {
        A::state(self)
            .groups
            .is_uncovered(&A::group_key(vlan, group))
    }

    /// The grace of a program's write of (vlan, group)'s entry ended: unless
    /// a flush wrote the entry since the write was read (the engine had the
    /// report and wrote what it wants), the next flush writes what the
    /// control plane wants there, or deletes the entry, whatever the kernel
    /// holds now. Skipping the covered ones halves the map writes of a burst
    /// of new groups joined in XDP.
    pub fn touch<A: Addr>(&mut self, vlan: u16, group: A) {
        let key = A::group_key(vlan, group);
        let family = A::state_mut(self);
        if family.groups.take_uncovered(&key) {
            family.groups.forget(key);
            family.pending.insert(key);
        }
    }

    /// Whether the fast path counts each replicated stream (STREAMS).
    pub fn set_count_streams(&mut self, on: bool) -> Result<()> {
        self.conf.count_streams = u32::from(on);
        self.write_conf()
    }

    /// Whether the fast path snoops IPv6: hands MLD and PIMv6 hellos to
    /// the control plane and forwards IPv6 groups by GROUPS6/SOURCES6. Off
    /// (the default), every IPv6 multicast frame is flooded, MLD included:
    /// a control plane that does not process MLD must leave it on the wire.
    pub fn set_snoop_ipv6(&mut self, on: bool) -> Result<()> {
        self.conf.snoop_ipv6 = u32::from(on);
        self.write_conf()
    }

    fn write_conf(&mut self) -> Result<()> {
        self.config.set(0, self.conf, 0).map_err(map_err("CONFIG"))
    }

    /// Router ports the control plane set for every VLAN without its own
    /// (ANY_VLAN), both families (adopted ones not included).
    pub fn router_ports(&self) -> PortMask {
        [FAMILY_IPV4, FAMILY_IPV6]
            .into_iter()
            .filter_map(|family| {
                self.routers.set.get(&RouterKey {
                    vlan: ANY_VLAN,
                    family,
                })
            })
            .fold(PortMask::EMPTY, |all, &m| all | m)
    }

    /// The member ports of every group of family `A` the control plane
    /// has set.
    pub fn groups_of<A: Addr>(&self) -> impl Iterator<Item = (A::GroupKey, PortMask)> + '_ {
        A::state(self).desired.members()
    }

    /// Every source entry of family `A` the control plane has set, with its
    /// member ports (empty: nobody wants the source).
    pub fn sources_of<A: Addr>(&self) -> impl Iterator<Item = (A::SourceKey, PortMask)> + '_ {
        A::state(self).desired.sources()
    }

    /// `groups_of` IPv4.
    pub fn groups(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.groups_of::<[u8; 4]>()
    }

    /// `sources_of` IPv4.
    pub fn sources(&self) -> impl Iterator<Item = (SourceKey, PortMask)> + '_ {
        self.sources_of::<[u8; 4]>()
    }

    /// `groups_of` IPv6.
    pub fn groups6(&self) -> impl Iterator<Item = (Group6Key, PortMask)> + '_ {
        self.groups_of::<[u8; 16]>()
    }

    /// `sources_of` IPv6.
    pub fn sources6(&self) -> impl Iterator<Item = (Source6Key, PortMask)> + '_ {
        self.sources_of::<[u8; 16]>()
    }

    /// The member ports last set or staged for (vlan, group).
    pub fn members<A: Addr>(&self, vlan: u16, group: A) -> PortMask {
        A::state(self)
            .desired
            .members_of(&A::group_key(vlan, group))
    }

    /// The port set in the kernel for (vlan, group), router ports and held
    /// ports included; empty when the group is not registered or registered
    /// with no port (see [`Forwarding::registered`]).
    pub fn installed<A: Addr>(&self, vlan: u16, group: A) -> PortMask {
        A::state(self)
            .groups
            .get(&A::group_key(vlan, group))
            .map_or(PortMask::EMPTY, |i| i.mask)
    }

    /// Whether (vlan, group) has an entry in the kernel (registered: not
    /// flooded, even with an empty port set).
    pub fn registered<A: Addr>(&self, vlan: u16, group: A) -> bool {
        A::state(self)
            .groups
            .get(&A::group_key(vlan, group))
            .is_some()
    }

    /// The port set in the kernel for traffic from `source` to (vlan, group),
    /// router and held ports included, when the source has an entry of its
    /// own (Some(empty): nobody receives it).
    pub fn installed_source<A: Addr>(&self, vlan: u16, group: A, source: A) -> Option<PortMask> {
        A::state(self)
            .sources
            .get(&A::source_key(vlan, group, source))
            .map(|i| i.mask)
    }

    /// Source entries in the kernel (IPv4 and IPv6).
    pub fn source_entries(&self) -> usize {
        self.v4.sources.len() + self.v6.sources.len()
    }

    /// New source entries refused because SOURCES or SOURCES6 was full,
    /// since start.
    pub fn refused_sources(&self) -> u64 {
        self.v4.sources.refused_total() + self.v6.sources.refused_total()
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
