//! One hash map of entries that point at port sets (GROUPS or SOURCES), and
//! what the kernel holds in it.
//!
//! A flush first plans every write (taking the port sets the new entries
//! need), then writes the updates in one batch and the deletions in
//! another, so that the caller can order the two tables' writes. An entry
//! the kernel refuses (the map is full) does not stop the others: it is
//! counted and reported, and keeps what it had.
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};

use aya::maps::{HashMap as AyaHashMap, Map};
use igmpsnoop_common::{NO_SET, SetRef};
use tracing::{debug, warn};

use super::PortMask;
use super::desired::Want;
use crate::{
    batch,
    error::{Error, Result},
    port_sets::PortSets,
};

/// The value naming `slot` for `want`.
pub(crate) fn set_ref(slot: u32, want: &Want) -> SetRef {
    SetRef {
        set: slot,
        // At most MAX_PORTS (64).
        copies: want.mask.count() as u8,
        flags: want.flags,
        solo_untagged: want.solo[0],
        solo_tagged: want.solo[1],
    }
}

/// An entry in the kernel.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Installed {
    /// The ports (of ours) its set delivers to; empty with `slot == NO_SET`.
    pub mask: PortMask,
    pub slot: u32,
    pub flags: u8,
    pub solo: [u8; 2],
    /// False for an adopted set that also delivers elsewhere (ports that are
    /// not ours any more) or names no slot: never kept as is.
    pub exact: bool,
}

impl Installed {
    /// What writing `want` into `slot` installs.
    pub fn new(slot: u32, want: &Want) -> Self {
        Installed {
            mask: want.mask,
            slot,
            flags: want.flags,
            solo: want.solo,
            exact: true,
        }
    }

    /// Whether the entry is what `want` asks for.
    pub fn matches(&self, want: &Want) -> bool {
        self.mask == want.mask && self.flags == want.flags && self.solo == want.solo
    }
}

/// The writes one flush makes to a table.
pub(crate) struct Plan<K> {
    keys: Vec<K>,
    values: Vec<SetRef>,
    new: Vec<Installed>,
    deletes: Vec<K>,
}

pub(crate) struct Table<K> {
    /// The map's name, for errors and logs.
    name: &'static str,
    map: Map,
    /// The map's max_entries.
    capacity: usize,
    installed: HashMap<K, Installed>,
    /// New entries refused since the last `take_full`.
    refused: usize,
    /// New entries refused ever.
    refused_total: u64,
    /// Entries the program wrote (fast join, fast leave) that no write of
    /// ours has covered since: only these need the rewrite after the
    /// grace. Empty on a switch where the program writes nothing, so a
    /// write pays one emptiness check.
    uncovered: HashSet<K>,
}

fn raw_fd(map: &Map) -> Result<RawFd> {
    match map {
        Map::HashMap(d) => Ok(d.fd().as_fd().as_raw_fd()),
        _ => Err(Error::MissingMap {
            name: "entry table (as a hash)",
        }),
    }
}

fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::E2BIG | libc::ENOSPC))
}

impl<K: Copy + Eq + Hash + aya::Pod + std::fmt::Debug> Table<K> {
    pub fn new(name: &'static str, map: Map, capacity: usize, expected: usize) -> Result<Self> {
        raw_fd(&map)?;
        Ok(Self {
            name,
            map,
            capacity,
            installed: HashMap::with_capacity(expected.min(capacity)),
            refused: 0,
            refused_total: 0,
            uncovered: HashSet::new(),
        })
    }

    /// Every entry the map holds now (read at adoption).
    pub fn read_all(&self) -> Result<Vec<(K, SetRef)>> {
        let map = AyaHashMap::<_, K, SetRef>::try_from(&self.map).map_err(|source| Error::Map {
            name: self.name,
            source,
        })?;
        Ok(map.iter().filter_map(|e| e.ok()).collect())
    }

    /// Records an entry found in the kernel (adoption).
    pub fn adopt(&mut self, key: K, installed: Installed) {
        self.installed.insert(key, installed);
    }

    /// What the kernel holds for `key` is not known (the program wrote it):
    /// the next plan for it writes the wanted entry, or deletes it, either
    /// way. The slot recorded stays referenced until then: the write
    /// releases it as for any change.
    pub fn forget(&mut self, key: K) {
        self.installed
            .entry(key)
            .and_modify(|i| i.exact = false)
            .or_insert(Installed {
                mask: PortMask::EMPTY,
                slot: NO_SET,
                flags: 0,
                solo: [0; 2],
                exact: false,
            });
    }

    /// The program wrote `key`'s entry (it said so on its ring).
    pub fn program_wrote(&mut self, key: K) {
        self.uncovered.insert(key);
    }

    /// Whether the program wrote `key`'s entry after our last write of it
    /// (or deletion); forgets the fact either way.
    pub fn take_uncovered(&mut self, key: &K) -> bool {
        self.uncovered.remove(key)
    }

    /// Whether the program wrote `key`'s entry after our last write of it.
    pub fn is_uncovered(&self, key: &K) -> bool {
        self.uncovered.contains(key)
    }

    /// A write (or deletion) of ours covers whatever the program wrote
    /// there before.
    fn covered(&mut self, key: &K) {
        if !self.uncovered.is_empty() {
            self.uncovered.remove(key);
        }
    }

    pub fn get(&self, key: &K) -> Option<&Installed> {
        self.installed.get(key)
    }

    pub fn len(&self) -> usize {
        self.installed.len()
    }

    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.installed.keys()
    }

    pub fn refused_total(&self) -> u64 {
        self.refused_total
    }

    /// Decides what to write for `keys`, given the entry each must have:
    /// takes a port set for every new or changed entry (put back by the
    /// write if it fails). A new entry that would overfill the map is
    /// refused here already; a port set that cannot be had is an error in
    /// `first_error`, and the entry keeps what it had.
    pub fn plan(
        &mut self,
        sets: &mut PortSets,
        keys: impl IntoIterator<Item = K>,
        want: impl Fn(&K) -> Option<Want>,
        first_error: &mut Option<Error>,
    ) -> Plan<K> {
        let mut plan = Plan {
            keys: Vec::new(),
            values: Vec::new(),
            new: Vec::new(),
            deletes: Vec::new(),
        };
        let mut added = 0;
        for key in keys {
            let have = self.installed.get(&key);
            let Some(want) = want(&key) else {
                if have.is_some() {
                    plan.deletes.push(key);
                }
                continue;
            };
            if have.is_some_and(|h| h.exact && h.matches(&want)) {
                continue;
            }
            if have.is_none() {
                if self.installed.len() + added >= self.capacity {
                    self.refuse();
                    continue;
                }
                added += 1;
            }
            let slot = if want.mask.is_empty() {
                NO_SET
            } else {
                match sets.acquire(want.mask) {
                    Ok(slot) => slot,
                    Err(e) => {
                        warn!(map = self.name, entry = ?key, error = %e, "no port set for the entry");
                        first_error.get_or_insert(e);
                        continue;
                    }
                }
            };
            plan.keys.push(key);
            plan.values.push(set_ref(slot, &want));
            plan.new.push(Installed::new(slot, &want));
        }
        plan
    }

    fn refuse(&mut self) {
        self.refused += 1;
        self.refused_total += 1;
    }

    /// Writes the plan's new and changed entries, in one batch (more only
    /// when the kernel refuses some).
    pub fn write_updates(
        &mut self,
        sets: &mut PortSets,
        plan: &mut Plan<K>,
        first_error: &mut Option<Error>,
    ) {
        let Ok(fd) = raw_fd(&self.map) else {
            return;
        };
        let refused = batch::update_each(fd, &plan.keys, &plan.values);
        let mut refused = refused.into_iter().peekable();
        for (i, (key, new)) in plan.keys.drain(..).zip(plan.new.drain(..)).enumerate() {
            if refused.peek().is_some_and(|(at, _)| *at == i) {
                let (_, error) = refused.next().expect("peeked");
                sets.release(new.slot);
                self.refused_update(key, error, first_error);
                continue;
            }
            self.covered(&key);
            if let Some(old) = self.installed.insert(key, new) {
                sets.release(old.slot);
            }
        }
        debug!(
            map = self.name,
            count = plan.values.len(),
            "entries written"
        );
        plan.values.clear();
    }

    fn refused_update(&mut self, key: K, error: io::Error, first_error: &mut Option<Error>) {
        if is_full(&error) {
            self.refuse();
            return;
        }
        warn!(map = self.name, entry = ?key, %error, "entry not written");
        first_error.get_or_insert(Error::Batch {
            map: self.name,
            what: "update",
            count: 1,
            source: error,
        });
    }

    /// Deletes the plan's removed entries, in one batch.
    pub fn write_deletes(
        &mut self,
        sets: &mut PortSets,
        plan: &mut Plan<K>,
        first_error: &mut Option<Error>,
    ) {
        let Ok(fd) = raw_fd(&self.map) else {
            return;
        };
        let refused = batch::delete_each(fd, &plan.deletes);
        let mut refused = refused.into_iter().peekable();
        for (i, key) in plan.deletes.drain(..).enumerate() {
            if refused.peek().is_some_and(|(at, _)| *at == i) {
                let (_, error) = refused.next().expect("peeked");
                if error.raw_os_error() != Some(libc::ENOENT) {
                    warn!(map = self.name, entry = ?key, %error, "entry not deleted");
                    first_error.get_or_insert(Error::Batch {
                        map: self.name,
                        what: "delete",
                        count: 1,
                        source: error,
                    });
                    continue;
                }
                // Already gone: forget it like the others.
            }
            self.covered(&key);
            if let Some(old) = self.installed.remove(&key) {
                sets.release(old.slot);
            }
        }
    }

    /// The error for the new entries refused since the last call, if any.
    pub fn take_full(&mut self) -> Option<Error> {
        let refused = std::mem::take(&mut self.refused);
        (refused > 0).then(|| {
            warn!(
                map = self.name,
                refused,
                max = self.capacity,
                "map full: new entries refused"
            );
            Error::TableFull {
                name: self.name,
                max: self.capacity,
                refused,
            }
        })
    }
}
