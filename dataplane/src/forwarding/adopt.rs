//! Taking over the maps an earlier run left pinned: its entries are held
//! (both address families alike), its router ports too, and the flood set
//! becomes exactly our ports.
use igmpsnoop_common::{NO_SET, SetRef, set_flags};
use tracing::warn;

use super::family::{Addr, FamilyState};
use super::table::Installed;
use super::{Adopted, Forwarding, PortMask, map_err};
use crate::{error::Result, port_sets::PortSets};

/// What an adopted entry holds: its ports (ours), and whether it is exactly
/// what it says (no foreign port, a published slot).
fn adopted_entry(sets: &PortSets, entry: &SetRef) -> Option<Installed> {
    let solo = [entry.solo_untagged, entry.solo_tagged];
    if entry.copies == 0 && entry.set == NO_SET {
        return Some(Installed {
            mask: PortMask::EMPTY,
            slot: NO_SET,
            flags: entry.flags,
            solo,
            exact: true,
        });
    }
    let (mask, foreign) = sets.content(entry.set)?;
    Some(Installed {
        mask,
        slot: entry.set,
        flags: entry.flags,
        solo,
        exact: !foreign && mask.count() == u32::from(entry.copies),
    })
}

/// An entry that names no published slot cannot be forwarding: recorded as
/// inexact so that the first flush rewrites or removes it.
fn broken_entry(flags: u8) -> Installed {
    Installed {
        mask: PortMask::EMPTY,
        slot: NO_SET,
        flags,
        solo: [0; 2],
        exact: false,
    }
}

impl Forwarding {
    /// Reads what the maps hold: source entries and groups (held), router
    /// ports (held: every port some router set had, for every VLAN), the
    /// flood sets (rewritten for our ports and the adopted VLAN config);
    /// then writes what must change at once (entries with foreign ports,
    /// broken ones).
    pub(super) fn adopt(&mut self) -> Result<()> {
        self.v4.adopt(&mut self.sets)?;
        self.v6.adopt(&mut self.sets)?;
        self.flood_sets.adopt(&mut self.sets);
        let held_routers = self
            .router_sets
            .adopt(&mut self.sets)
            .into_iter()
            .fold(PortMask::EMPTY, |all, (_, mask)| all | mask);
        self.sets.finish_adoption();
        self.sets.write_all_masks()?;
        self.routers.held = held_routers;
        self.adopt_flood()?;
        self.write_vlan_sets()?;
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
            if !installed.mask.is_empty() {
                self.desired.hold_group(key, installed.mask);
            }
            // A set with ports that are not ours any more, no port at all (it
            // stays only while it has held sources), or a flag that does not
            // match the source entries found: rewritten, or removed, now.
            if !installed.exact || installed.mask.is_empty() || self.flag_mismatch(&key, &installed)
            {
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
            .group(key, PortMask::EMPTY)
            .is_none_or(|w| w.flags & set_flags::SOURCES != installed.flags & set_flags::SOURCES)
    }
}

impl Forwarding {
    /// The FLOOD devmap: what it holds of ours is recorded, the rest
    /// removed (`write_vlan_sets` then makes it the VLAN-unaware ports).
    fn adopt_flood(&mut self) -> Result<()> {
        let flood: Vec<u32> = self.flood.keys().filter_map(|k| k.ok()).collect();
        for &ifindex in &flood {
            if !self.ifindexes.contains(&ifindex) {
                self.flood.remove(ifindex).map_err(map_err("FLOOD"))?;
            }
        }
        self.flood_installed = super::port_mask(&self.ifindexes, flood).0;
        Ok(())
    }
}
