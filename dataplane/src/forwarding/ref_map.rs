//! A small map of set references kept whole from userspace: FLOOD_SETS
//! (VLAN → its flood set) and ROUTER_SETS ((VLAN, family) → router ports).
//! A handful of entries, rewritten when VLAN config or router ports change:
//! one syscall per changed entry, the new entry (and its port set) in
//! place before the old set is released.
use std::collections::HashMap;
use std::hash::Hash;

use aya::maps::{HashMap as AyaHashMap, MapData};
use igmpsnoop_common::{NO_SET, SetRef};

use super::PortMask;
use super::desired::Want;
use super::table::{Installed, set_ref};
use crate::{
    error::{Error, Result},
    port_sets::PortSets,
};

pub(crate) struct RefMap<K> {
    name: &'static str,
    map: AyaHashMap<MapData, K, SetRef>,
    installed: HashMap<K, Installed>,
}

impl<K: Copy + Eq + Hash + aya::Pod + std::fmt::Debug> RefMap<K> {
    pub fn new(name: &'static str, map: AyaHashMap<MapData, K, SetRef>) -> Self {
        Self {
            name,
            map,
            installed: HashMap::new(),
        }
    }

    /// Takes the entries the map holds (pinned by an earlier run): their
    /// slots are referenced until replaced. Returns their port masks.
    pub fn adopt(&mut self, sets: &mut PortSets) -> Vec<(K, PortMask)> {
        let found: Vec<(K, SetRef)> = self.map.iter().filter_map(|e| e.ok()).collect();
        let mut masks = Vec::new();
        for (key, r) in found {
            let mask = if r.set == NO_SET {
                PortMask::EMPTY
            } else {
                sets.content(r.set).map_or(PortMask::EMPTY, |(m, _)| m)
            };
            if r.set != NO_SET {
                sets.adopt_ref(r.set);
            }
            masks.push((key, mask));
            self.installed.insert(
                key,
                Installed {
                    mask,
                    slot: r.set,
                    flags: r.flags,
                    solo: [r.solo_untagged, r.solo_tagged],
                    // Rewritten by the first sync.
                    exact: false,
                },
            );
        }
        masks
    }

    /// Makes the map hold exactly `want`.
    pub fn sync(&mut self, sets: &mut PortSets, want: &HashMap<K, Want>) -> Result<()> {
        for (key, w) in want {
            if self
                .installed
                .get(key)
                .is_some_and(|i| i.exact && i.matches(w))
            {
                continue;
            }
            let slot = if w.mask.is_empty() {
                NO_SET
            } else {
                sets.acquire(w.mask)?
            };
            if let Err(source) = self.map.insert(key, set_ref(slot, w), 0) {
                if slot != NO_SET {
                    sets.release(slot);
                }
                return Err(Error::Map {
                    name: self.name,
                    source,
                });
            }
            if let Some(old) = self.installed.insert(*key, Installed::new(slot, w))
                && old.slot != NO_SET
            {
                sets.release(old.slot);
            }
        }
        let gone: Vec<K> = self
            .installed
            .keys()
            .filter(|k| !want.contains_key(k))
            .copied()
            .collect();
        for key in gone {
            match self.map.remove(&key) {
                Ok(()) => {}
                Err(aya::maps::MapError::SyscallError(e))
                    if e.io_error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(source) => {
                    return Err(Error::Map {
                        name: self.name,
                        source,
                    });
                }
            }
            if let Some(old) = self.installed.remove(&key)
                && old.slot != NO_SET
            {
                sets.release(old.slot);
            }
        }
        Ok(())
    }

    /// The ports of an entry in the kernel.
    pub fn installed(&self, key: &K) -> Option<PortMask> {
        self.installed.get(key).map(|i| i.mask)
    }
}
