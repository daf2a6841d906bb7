//! Taking over the maps an earlier run left pinned: its entries are held
//! (both address families alike), its router ports too, and the flood set
//! becomes exactly our ports.
use igmpsnoop_common::NO_SET;
use tracing::warn;

use super::family::{Addr, FamilyState};
use super::table::{Installed, SetEntry};
use super::{Adopted, Forwarding, PortMask, map_err, port_mask, xdp_err};
use crate::{error::Result, port_sets::PortSets};

/// What an adopted entry holds: its ports (ours), and whether it is exactly
/// what it says (no foreign port, a published slot).
fn adopted_entry(sets: &PortSets, entry: &impl SetEntry) -> Option<Installed> {
    if entry.copies() == 0 && entry.set() == NO_SET {
        return Some(Installed {
            mask: 0,
            slot: NO_SET,
            flags: entry.flags(),
            exact: true,
        });
    }
    let (mask, foreign) = sets.content(entry.set())?;
    Some(Installed {
        mask,
        slot: entry.set(),
        flags: entry.flags(),
        exact: !foreign && mask.count_ones() == entry.copies(),
    })
}

/// An entry that names no published slot cannot be forwarding: recorded as
/// inexact so that the first flush rewrites or removes it.
fn broken_entry(flags: u16) -> Installed {
    Installed {
        mask: 0,
        slot: NO_SET,
        flags,
        exact: false,
    }
}

impl Forwarding {
    /// Reads what the maps hold: source entries and groups (held), router
    /// ports (held), the flood set (made exactly ours); then writes what
    /// must change at once (entries with foreign ports, broken ones).
    pub(super) fn adopt(&mut self) -> Result<()> {
        self.v4.adopt(&mut self.sets)?;
        self.v6.adopt(&mut self.sets)?;
        self.sets.finish_adoption();
        let held_routers = self.adopt_routers()?;
        self.adopt_flood()?;
        self.adopted = Adopted {
            groups: self.v4.desired.held_groups() + self.v6.desired.held_groups(),
            sources: self.v4.desired.held_sources().count()
                + self.v6.desired.held_sources().count(),
            router_ports: held_routers,
            port_sets: self.sets.published(),
        };
        if self.v4.has_pending() || self.v6.has_pending() {
            self.flush()?;
        }
        Ok(())
    }
}

impl<A: Addr> FamilyState<A> {
    /// Adopts the family's maps: source entries first (held source entries
    /// keep their groups registered), then groups.
    fn adopt(&mut self, sets: &mut PortSets) -> Result<()> {
        self.adopt_sources(sets)?;
        self.adopt_groups(sets)
    }

    fn adopt_sources(&mut self, sets: &mut PortSets) -> Result<()> {
        for (key, entry) in self.sources.read_all()? {
            let installed = match adopted_entry(sets, &entry) {
                Some(i) => i,
                None => {
                    warn!(map = A::SOURCES, entry = ?key, slot = entry.set, "adopted source entry names no port set; rewriting it");
                    broken_entry(0)
                }
            };
            sets.adopt_ref(installed.slot);
            self.sources.adopt(key, installed);
            // Held as it was, even with no port: until the control plane
            // speaks again, the source is forwarded exactly as before.
            self.desired.hold_source(key, installed.mask);
            if !installed.exact {
                self.pending_sources.insert(key);
            }
        }
        Ok(())
    }

    fn adopt_groups(&mut self, sets: &mut PortSets) -> Result<()> {
        for (key, entry) in self.groups.read_all()? {
            let installed = match adopted_entry(sets, &entry) {
                Some(i) => i,
                None => {
                    warn!(map = A::GROUPS, entry = ?key, slot = entry.set, "adopted group names no port set; rewriting or removing it");
                    broken_entry(entry.flags)
                }
            };
            sets.adopt_ref(installed.slot);
            self.groups.adopt(key, installed);
            if installed.mask != 0 {
                self.desired.hold_group(key, installed.mask);
            }
            // A set with ports that are not ours any more, no port at all (it
            // stays only while it has held sources), or a flag that does not
            // match the source entries found: rewritten, or removed, now.
            if !installed.exact || installed.mask == 0 || self.flag_mismatch(&key, &installed) {
                self.pending.insert(key);
            }
        }
        // Source entries whose group is gone: their group entry is written.
        let orphans: Vec<A::GroupKey> = self
            .sources
            .keys()
            .map(A::group_of)
            .filter(|g| self.groups.get(g).is_none())
            .collect();
        self.pending.extend(orphans);
        Ok(())
    }

    fn flag_mismatch(&self, key: &A::GroupKey, installed: &Installed) -> bool {
        self.desired
            .group(key, 0)
            .is_none_or(|w| w.flags != installed.flags)
    }
}

impl Forwarding {
    /// Router ports of the earlier run that are ours: held. Others removed.
    fn adopt_routers(&mut self) -> Result<PortMask> {
        let routers: Vec<u32> = self.routers.keys().filter_map(|k| k.ok()).collect();
        let (held_routers, _) = port_mask(&self.ifindexes, routers.iter().copied());
        for ifindex in routers {
            if !self.ifindexes.contains(&ifindex) {
                self.routers.remove(ifindex).map_err(map_err("ROUTERS"))?;
            }
        }
        self.held_router_ports = held_routers;
        self.routers_installed = held_routers;
        self.conf.router_ports = held_routers.count_ones();
        Ok(held_routers)
    }

    /// The flood set: exactly our ports.
    fn adopt_flood(&mut self) -> Result<()> {
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
        Ok(())
    }
}
