//! The fast path's forwarding state: per-group port sets, router ports, flood
//! set and policy.
//!
//! The control plane's record of a group is a u64 bitmap of port indexes. The
//! kernel sees, per (VLAN, group), an entry of the GROUPS hash naming a slot
//! of the port-set pool ([`crate::port_sets`]). Changing a group's ports
//! swaps that one entry, atomically, so no frame of any other group is lost
//! or duplicated meanwhile, and no write waits for an RCU grace period.
//!
//! State adopted from an earlier run (pinned maps) is *held*: each adopted
//! group keeps at least the ports it had, on top of what the control plane
//! sets, until [`Forwarding::release_held`], so that hosts which are still
//! there lose nothing while they report again.
use std::collections::{HashMap as StdHashMap, HashSet};
use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};

use aya::maps::{Array, DevMapHash, HashMap, Map, MapData};
use igmpsnoop_common::{GroupEntry, GroupKey, SwitchConf};
use tracing::{debug, warn};

use crate::{
    batch,
    error::{Error, Result},
    port_sets::PortSets,
};

pub type PortMask = u64;

/// What a restarted switch found in the pinned maps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Adopted {
    /// Groups that were forwarding, now held.
    pub groups: usize,
    /// Router ports that were in place, now held.
    pub router_ports: PortMask,
    /// Port sets found published.
    pub port_sets: usize,
}

pub struct Forwarding {
    /// GROUPS, a hash of GroupKey -> GroupEntry, written in batches.
    groups: Map,
    /// PORT_SETS, the array of maps that `sets` manages.
    _port_sets: Map,
    sets: PortSets,
    flood: DevMapHash<MapData>,
    routers: DevMapHash<MapData>,
    config: Array<MapData, SwitchConf>,
    /// ifindex of each port index.
    ifindexes: Vec<u32>,
    /// Member ports per group, as the control plane last set them.
    members: StdHashMap<GroupKey, PortMask>,
    /// Adopted groups and their ports, kept until `release_held`.
    held: StdHashMap<GroupKey, PortMask>,
    held_routers: PortMask,
    /// What the kernel holds, per group.
    installed: StdHashMap<GroupKey, Installed>,
    /// Groups whose kernel entry the next `flush` recomputes.
    pending: HashSet<GroupKey>,
    router_mask: PortMask,
    /// Ports in the ROUTERS devmap now.
    routers_installed: PortMask,
    conf: SwitchConf,
    adopted: Adopted,
}

/// A group's entry in the kernel.
#[derive(Clone, Copy, Debug)]
struct Installed {
    /// The ports (of ours) its set delivers to.
    mask: PortMask,
    slot: u32,
    /// False for an adopted set that also delivers elsewhere (ports that are
    /// not ours any more) or names no slot: never kept as is.
    exact: bool,
}

fn xdp_err(name: &'static str) -> impl Fn(aya::maps::xdp::XdpMapError) -> Error {
    move |source| Error::XdpMap { name, source }
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> Error {
    move |source| Error::Map { name, source }
}

fn raw_fd(map: &Map) -> RawFd {
    match map {
        Map::HashMap(d) | Map::ArrayOfMaps(d) => d.fd().as_fd().as_raw_fd(),
        _ => unreachable!("GROUPS is a hash, PORT_SETS an array of maps"),
    }
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

impl Forwarding {
    /// Takes over the maps, adopting whatever they already hold (pinned maps
    /// from an earlier run; fresh maps hold nothing). The flood set becomes
    /// exactly our ports.
    pub(crate) fn open(
        capacity: usize,
        groups: Map,
        port_sets: Map,
        flood: DevMapHash<MapData>,
        routers: DevMapHash<MapData>,
        config: Array<MapData, SwitchConf>,
        ifindexes: Vec<u32>,
    ) -> Result<Self> {
        let Map::ArrayOfMaps(sets_data) = &port_sets else {
            return Err(Error::MissingMap {
                name: "PORT_SETS (as an array of maps)",
            });
        };
        if !matches!(groups, Map::HashMap(_)) {
            return Err(Error::MissingMap {
                name: "GROUPS (as a hash)",
            });
        }
        let sets = PortSets::open(sets_data, ifindexes.clone())?;
        let mut this = Self {
            groups,
            _port_sets: port_sets,
            sets,
            flood,
            routers,
            config,
            ifindexes,
            members: StdHashMap::with_capacity(capacity),
            held: StdHashMap::new(),
            held_routers: 0,
            installed: StdHashMap::with_capacity(capacity),
            pending: HashSet::new(),
            router_mask: 0,
            routers_installed: 0,
            conf: SwitchConf {
                flood_unregistered: 1,
                control_rate_pps: 0,
                router_ports: 0,
                _pad: 0,
            },
            adopted: Adopted::default(),
        };
        this.adopt()?;
        this.write_conf()?;
        // Slots ready before the first join, which then waits for nothing.
        this.sets.maintain()?;
        Ok(this)
    }

    /// Reads what the maps hold: groups (held), router ports (held), the
    /// flood set (made exactly ours).
    fn adopt(&mut self) -> Result<()> {
        let entries: Vec<(GroupKey, GroupEntry)> =
            HashMap::<_, GroupKey, GroupEntry>::try_from(&self.groups)
                .map_err(map_err("GROUPS"))?
                .iter()
                .filter_map(|e| e.ok())
                .collect();
        for (key, entry) in entries {
            match self.sets.content(entry.set) {
                Some((mask, foreign)) => {
                    self.sets.adopt_ref(entry.set);
                    self.installed.insert(
                        key,
                        Installed {
                            mask,
                            slot: entry.set,
                            exact: !foreign,
                        },
                    );
                    if mask != 0 {
                        self.held.insert(key, mask);
                    }
                    // A set with ports that are not ours any more (or none):
                    // moved to a clean one, or removed, at the first flush.
                    if foreign || mask == 0 {
                        self.pending.insert(key);
                    }
                }
                None => {
                    // Points at no published slot: cannot be forwarding.
                    warn!(group = ?key.group, vlan = key.vlan, slot = entry.set, "adopted group names no port set; removing it");
                    self.installed.insert(
                        key,
                        Installed {
                            mask: 0,
                            slot: u32::MAX,
                            exact: false,
                        },
                    );
                    self.pending.insert(key);
                }
            }
        }
        self.sets.finish_adoption();

        let routers: Vec<u32> = self.routers.keys().filter_map(|k| k.ok()).collect();
        let (held_routers, _) = port_mask(&self.ifindexes, routers.iter().copied());
        for ifindex in routers {
            if !self.ifindexes.contains(&ifindex) {
                self.routers.remove(ifindex).map_err(map_err("ROUTERS"))?;
            }
        }
        self.held_routers = held_routers;
        self.routers_installed = held_routers;
        self.conf.router_ports = held_routers.count_ones();

        let flood: Vec<u32> = self.flood.keys().filter_map(|k| k.ok()).collect();
        for &ifindex in &flood {
            if !self.ifindexes.contains(&ifindex) {
                self.flood.remove(ifindex).map_err(map_err("FLOOD"))?;
            }
        }
        for &ifindex in &self.ifindexes {
            if !flood.contains(&ifindex) {
                self.flood
                    .insert(ifindex, ifindex, None, 0)
                    .map_err(xdp_err("FLOOD"))?;
            }
        }
        self.adopted = Adopted {
            groups: self.held.len(),
            router_ports: held_routers,
            port_sets: self.sets.published(),
        };
        if !self.pending.is_empty() {
            self.flush()?;
        }
        Ok(())
    }

    /// What the maps held when this switch started.
    pub fn adopted(&self) -> Adopted {
        self.adopted
    }

    /// Adopted groups still held.
    pub fn held_groups(&self) -> usize {
        self.held.len()
    }

    /// Adopted groups still held, with the ports they had (router ports of
    /// the earlier run included: the kernel did not tell them apart).
    pub fn held(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.held.iter().map(|(k, m)| (*k, *m))
    }

    /// Ends the hold on adopted state: adopted groups that the control plane
    /// has not set since are removed, the others keep exactly what it set;
    /// adopted router ports that it has not confirmed go. Returns how many
    /// adopted groups were removed.
    pub fn release_held(&mut self) -> Result<usize> {
        let held: Vec<GroupKey> = self.held.drain().map(|(k, _)| k).collect();
        let removed = held
            .iter()
            .filter(|k| !self.members.contains_key(k))
            .count();
        self.pending.extend(held);
        self.held_routers = 0;
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

    fn effective_routers(&self) -> PortMask {
        self.router_mask | self.held_routers
    }

    /// The port set `key` must have in the kernel now (0 = none).
    fn wanted(&self, key: &GroupKey) -> PortMask {
        let own =
            self.members.get(key).copied().unwrap_or(0) | self.held.get(key).copied().unwrap_or(0);
        if own == 0 {
            0
        } else {
            own | self.effective_routers()
        }
    }

    /// Sets the member ports of (vlan, group) now; an empty set removes the
    /// group, which makes it unregistered again (flood policy applies).
    pub fn set_group(&mut self, vlan: u16, group: [u8; 4], members: PortMask) -> Result<()> {
        self.stage_group(vlan, group, members);
        self.flush()
    }

    pub fn delete_group(&mut self, vlan: u16, group: [u8; 4]) -> Result<()> {
        self.set_group(vlan, group, 0)
    }

    /// The member ports last set or staged for (vlan, group).
    pub fn members(&self, vlan: u16, group: [u8; 4]) -> PortMask {
        self.members
            .get(&GroupKey::new(vlan, group))
            .copied()
            .unwrap_or(0)
    }

    /// Like `set_group`, but written to the kernel by the next `flush`,
    /// together with every other staged change (one syscall for all).
    pub fn stage_group(&mut self, vlan: u16, group: [u8; 4], members: PortMask) {
        let key = GroupKey::new(vlan, group);
        let members = members & self.all_ports();
        if members == 0 {
            self.members.remove(&key);
        } else {
            self.members.insert(key, members);
        }
        self.pending.insert(key);
    }

    /// Writes every staged change: new and changed groups in one batch
    /// update of GROUPS, removed groups in one batch delete. Each group's
    /// entry is replaced whole, so no other group's traffic is touched. A
    /// group whose port set cannot be had (the pool is full) keeps what it
    /// had; the first such error is returned after the rest is written.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending: Vec<GroupKey> = self.pending.drain().collect();
        let mut update_keys = Vec::new();
        let mut update_values = Vec::new();
        let mut acquired = Vec::new();
        let mut delete_keys = Vec::new();
        let mut first_error = None;
        for key in pending {
            let want = self.wanted(&key);
            let have = self.installed.get(&key).copied();
            if want == 0 {
                if have.is_some() {
                    delete_keys.push(key);
                }
                continue;
            }
            if have.is_some_and(|h| h.exact && h.mask == want) {
                continue;
            }
            match self.sets.acquire(want) {
                Ok(slot) => {
                    update_keys.push(key);
                    update_values.push(GroupEntry {
                        set: slot,
                        copies: want.count_ones(),
                    });
                    acquired.push((key, want, slot));
                }
                Err(e) => {
                    warn!(group = ?key.group, vlan = key.vlan, error = %e, "no port set for the group");
                    first_error.get_or_insert(e);
                }
            }
        }
        let fd = raw_fd(&self.groups);
        let (done, update_error) = match batch::update(fd, &update_keys, &update_values) {
            Ok(()) => (acquired.len(), None),
            Err(p) => (p.done, Some(p)),
        };
        for (i, (key, mask, slot)) in acquired.into_iter().enumerate() {
            if i >= done {
                self.sets.release(slot);
                continue;
            }
            let new = Installed {
                mask,
                slot,
                exact: true,
            };
            if let Some(old) = self.installed.insert(key, new) {
                self.sets.release(old.slot);
            }
        }
        if let Some(p) = update_error {
            return Err(Error::Batch {
                what: "update",
                count: update_keys.len(),
                source: p.error,
            });
        }
        let deleted = match batch::delete(fd, &delete_keys) {
            Ok(()) => delete_keys.len(),
            Err(p) => {
                first_error.get_or_insert(Error::Batch {
                    what: "delete",
                    count: delete_keys.len(),
                    source: p.error,
                });
                p.done
            }
        };
        for key in delete_keys.into_iter().take(deleted) {
            if let Some(old) = self.installed.remove(&key) {
                self.sets.release(old.slot);
            }
        }
        debug!(updated = done, deleted, "group map written");
        first_error.map_or(Ok(()), Err)
    }

    /// Housekeeping for idle moments: publishes port-set slots ahead of need
    /// (that waits for an RCU grace period, so not in the middle of a burst).
    pub fn maintain(&mut self) -> Result<()> {
        self.sets.maintain()
    }

    /// Router ports receive every registered and unregistered group (RFC 4541 §2.1.2).
    pub fn set_router_ports(&mut self, mask: PortMask) -> Result<()> {
        let mask = mask & self.all_ports();
        if mask == self.router_mask {
            return Ok(());
        }
        self.router_mask = mask;
        self.write_routers()?;
        let groups: Vec<GroupKey> = self
            .members
            .keys()
            .chain(self.held.keys())
            .copied()
            .collect();
        self.pending.extend(groups);
        self.flush()
    }

    /// Makes the ROUTERS devmap hold the effective router ports: new ones
    /// first, then the count the program checks, then the removals, so the
    /// count is never 0 while the new set is not empty.
    fn write_routers(&mut self) -> Result<()> {
        let want = self.effective_routers();
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

    fn write_conf(&mut self) -> Result<()> {
        self.config.set(0, self.conf, 0).map_err(map_err("CONFIG"))
    }

    /// Router ports the control plane set (adopted ones not included).
    pub fn router_ports(&self) -> PortMask {
        self.router_mask
    }

    /// The member ports of every group the control plane has set.
    pub fn groups(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.members.iter().map(|(k, m)| (*k, *m))
    }

    /// The port set in the kernel for (vlan, group), router ports and held
    /// ports included; 0 when the group is not registered.
    pub fn installed(&self, vlan: u16, group: [u8; 4]) -> PortMask {
        self.installed
            .get(&GroupKey::new(vlan, group))
            .map_or(0, |i| i.mask)
    }

    /// Distinct port sets some group points at, i.e. inner maps in use.
    pub fn inner_maps(&self) -> usize {
        self.sets.in_use()
    }

    /// Port-set slots published in the kernel (in use, cached or free).
    pub fn published_port_sets(&self) -> usize {
        self.sets.published()
    }
}
