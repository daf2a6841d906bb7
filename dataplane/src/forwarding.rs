//! The fast path's forwarding state: per-group port sets, router ports, flood
//! set and policy.
//!
//! The control plane's record of a group is a u64 bitmap of port indexes. The
//! kernel sees, per (VLAN, group), an inner DEVMAP_HASH of egress ifindexes.
//! Inner maps are interned by port set and reference-counted, so the number of
//! kernel maps follows the number of distinct port sets, not of groups. An
//! interned map is never modified after it is published: changing a group's
//! ports swaps one outer entry atomically, so no frame of any other group is
//! lost or duplicated meanwhile.
use std::collections::HashMap as StdHashMap;

use aya::maps::{Array, DevMapHash, HashMap, HashOfMaps, Map, MapData};
use aya_obj::generated::bpf_map_type;
use igmpsnoop_common::{GroupInfo, GroupKey, MAX_PORTS, SwitchConf};

use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};

use crate::{
    batch,
    error::{Error, Result},
};

pub type PortMask = u64;

/// One interned inner map.
struct PortSet {
    map: Map,
    refs: usize,
}

pub struct Forwarding {
    /// Owns the outer map; written through `groups_fd` in batches.
    _groups: HashOfMaps<MapData, GroupKey, MapData>,
    group_info: HashMap<MapData, GroupKey, GroupInfo>,
    flood: DevMapHash<MapData>,
    routers: DevMapHash<MapData>,
    config: Array<MapData, SwitchConf>,
    /// ifindex of each port index.
    ifindexes: Vec<u32>,
    /// Member ports per group, as the control plane last set them.
    members: StdHashMap<GroupKey, PortMask>,
    /// Port set installed in the kernel per group (members ∪ routers).
    installed: StdHashMap<GroupKey, PortMask>,
    sets: StdHashMap<PortMask, PortSet>,
    /// Changes not yet written to the kernel: the port set each group must
    /// have (0 = removed). Written together by `flush`.
    pending: StdHashMap<GroupKey, PortMask>,
    /// The outer map's fd, for batch writes.
    groups_fd: RawFd,
    router_mask: PortMask,
    conf: SwitchConf,
}

fn xdp_err(name: &'static str) -> impl Fn(aya::maps::xdp::XdpMapError) -> Error {
    move |source| Error::XdpMap { name, source }
}

fn map_err(name: &'static str) -> impl Fn(aya::maps::MapError) -> Error {
    move |source| Error::Map { name, source }
}

impl Forwarding {
    pub(crate) fn new(
        groups: HashOfMaps<MapData, GroupKey, MapData>,
        group_info: HashMap<MapData, GroupKey, GroupInfo>,
        flood: DevMapHash<MapData>,
        routers: DevMapHash<MapData>,
        config: Array<MapData, SwitchConf>,
        groups_fd: RawFd,
        ifindexes: Vec<u32>,
    ) -> Result<Self> {
        let mut this = Self {
            _groups: groups,
            group_info,
            flood,
            routers,
            config,
            ifindexes,
            members: StdHashMap::new(),
            installed: StdHashMap::new(),
            sets: StdHashMap::new(),
            pending: StdHashMap::new(),
            groups_fd,
            router_mask: 0,
            conf: SwitchConf {
                flood_unregistered: 1,
                control_rate_pps: 0,
                router_ports: 0,
                _pad: 0,
            },
        };
        for &ifindex in &this.ifindexes {
            this.flood
                .insert(ifindex, ifindex, None, 0)
                .map_err(xdp_err("FLOOD"))?;
        }
        this.write_conf()?;
        Ok(this)
    }

    fn all_ports(&self) -> PortMask {
        if self.ifindexes.len() >= 64 {
            u64::MAX
        } else {
            (1u64 << self.ifindexes.len()) - 1
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

    /// Like `set_group`, but written to the kernel by the next `flush`, together
    /// with every other staged change (one RCU wait for all of them).
    pub fn stage_group(&mut self, vlan: u16, group: [u8; 4], members: PortMask) {
        let key = GroupKey::new(vlan, group);
        let members = members & self.all_ports();
        if members == 0 {
            self.members.remove(&key);
            self.pending.insert(key, 0);
        } else {
            self.members.insert(key, members);
            self.pending.insert(key, members | self.router_mask);
        }
    }

    /// Writes every staged change: new and changed groups in one batch update
    /// of the outer map, removed groups in one batch delete. Each group's
    /// entry is replaced whole, so no other group's traffic is touched.
    pub fn flush(&mut self) -> Result<()> {
        let pending: Vec<(GroupKey, PortMask)> = self.pending.drain().collect();
        let mut update_keys = Vec::new();
        let mut update_fds = Vec::new();
        let mut updated = Vec::new();
        let mut delete_keys = Vec::new();
        for (key, mask) in pending {
            if mask == 0 {
                if self.installed.contains_key(&key) {
                    delete_keys.push(key);
                }
            } else if self.installed.get(&key) != Some(&mask) {
                if let Err(e) = self.acquire(mask) {
                    // Give back what this flush took; nothing was written yet.
                    for (_, taken) in &updated {
                        self.release(*taken);
                    }
                    return Err(e);
                }
                let Map::DevMapHash(inner) = &self.sets[&mask].map else {
                    unreachable!("interned sets are devmap hashes")
                };
                update_keys.push(key);
                update_fds.push(inner.fd().as_fd().as_raw_fd() as u32);
                updated.push((key, mask));
            }
        }
        if let Err(e) = batch::update(self.groups_fd, &update_keys, &update_fds) {
            for (_, mask) in &updated {
                self.release(*mask);
            }
            return Err(Error::Batch {
                what: "update",
                count: update_keys.len(),
                source: e,
            });
        }
        for (key, mask) in updated {
            let info = GroupInfo {
                copies: mask.count_ones(),
                _pad: 0,
            };
            self.group_info
                .insert(key, info, 0)
                .map_err(map_err("GROUP_INFO"))?;
            if let Some(old) = self.installed.insert(key, mask) {
                self.release(old);
            }
        }
        batch::delete(self.groups_fd, &delete_keys).map_err(|e| Error::Batch {
            what: "delete",
            count: delete_keys.len(),
            source: e,
        })?;
        for key in delete_keys {
            let _ = self.group_info.remove(&key);
            if let Some(old) = self.installed.remove(&key) {
                self.release(old);
            }
        }
        Ok(())
    }

    /// Router ports receive every registered and unregistered group (RFC 4541 §2.1.2).
    pub fn set_router_ports(&mut self, mask: PortMask) -> Result<()> {
        let mask = mask & self.all_ports();
        if mask == self.router_mask {
            return Ok(());
        }
        // Routers devmap: add new ones first, then remove old ones. The count
        // the program checks is written in between, so it is never 0 while the
        // new set is non-empty.
        for (index, &ifindex) in self.ifindexes.iter().enumerate() {
            let bit = 1u64 << index;
            if mask & bit != 0 && self.router_mask & bit == 0 {
                self.routers
                    .insert(ifindex, ifindex, None, 0)
                    .map_err(xdp_err("ROUTERS"))?;
            }
        }
        self.conf.router_ports = mask.count_ones();
        self.write_conf()?;
        for (index, &ifindex) in self.ifindexes.iter().enumerate() {
            let bit = 1u64 << index;
            if mask & bit == 0 && self.router_mask & bit != 0 {
                self.routers.remove(ifindex).map_err(map_err("ROUTERS"))?;
            }
        }
        self.router_mask = mask;
        let groups: Vec<(GroupKey, PortMask)> =
            self.members.iter().map(|(k, m)| (*k, *m)).collect();
        for (key, members) in groups {
            self.pending.insert(key, members | mask);
        }
        self.flush()
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

    pub fn router_ports(&self) -> PortMask {
        self.router_mask
    }

    /// The member ports of every group the control plane has set.
    pub fn groups(&self) -> impl Iterator<Item = (GroupKey, PortMask)> + '_ {
        self.members.iter().map(|(k, m)| (*k, *m))
    }

    /// Distinct port sets, i.e. inner maps, in the kernel now.
    pub fn inner_maps(&self) -> usize {
        self.sets.len()
    }

    fn acquire(&mut self, mask: PortMask) -> Result<()> {
        if let Some(set) = self.sets.get_mut(&mask) {
            set.refs += 1;
            return Ok(());
        }
        let obj = aya_obj::Map::new_from_params(
            bpf_map_type::BPF_MAP_TYPE_DEVMAP_HASH as u32,
            4,
            8,
            MAX_PORTS,
            0,
        );
        let data = MapData::create(obj, "isn_portset", None).map_err(map_err("port set"))?;
        let mut map = Map::DevMapHash(data);
        {
            let mut devmap = DevMapHash::try_from(&mut map).map_err(map_err("port set"))?;
            for (index, &ifindex) in self.ifindexes.iter().enumerate() {
                if mask & (1u64 << index) != 0 {
                    devmap
                        .insert(ifindex, ifindex, None, 0)
                        .map_err(xdp_err("port set"))?;
                }
            }
        }
        self.sets.insert(mask, PortSet { map, refs: 1 });
        Ok(())
    }

    fn release(&mut self, mask: PortMask) {
        if let Some(set) = self.sets.get_mut(&mask) {
            set.refs -= 1;
            if set.refs == 0 {
                // Closing our fd; the kernel frees the map once no outer entry
                // (and no in-flight program run) holds it.
                self.sets.remove(&mask);
            }
        }
    }
}
