//! LEAVE_HOSTS: what the program's fast leave (ebpf/xdp/src/fast_leave.rs)
//! may apply. An entry (VLAN, family, port, group) -> the host's MAC exists
//! exactly when the control plane says the port is fast-leave and has that
//! one host for the group, a plain (*,G) member; at most one entry per
//! (group, port), by the key.
//!
//! The control plane stages each changed group's hosts ([`LeaveHosts::stage`])
//! and writes in two steps around the group flush: entries that are no
//! longer true go before it ([`LeaveHosts::write_removals`]), so that a leave
//! arriving meanwhile finds none and goes to the daemon as before; new and
//! changed entries after it ([`LeaveHosts::write_additions`]), when the
//! group entries they speak of are in the kernel. A leave the program reads
//! between the engine's change and these writes may still be applied on the
//! old state: it is reported on the ring like every write of the program,
//! and the daemon rewrites the entry from the engine after the grace.
use std::collections::HashMap;
use std::net::IpAddr;

use aya::maps::{HashMap as AyaHashMap, MapData};
use igmpsnoop_common::{FAMILY_IPV4, FAMILY_IPV6, LeaveHost, LeaveKey};
use tracing::warn;

/// (family, VLAN, group) of the map's keys.
type GroupId = (u16, u16, [u8; 16]);

/// One host the fast path may take out of a group on its leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaveHostEntry {
    /// Port index (its bit in a port mask).
    pub port: u8,
    pub mac: [u8; 6],
    /// The port is the group's only member port.
    pub last: bool,
}

pub struct LeaveHosts {
    map: AyaHashMap<MapData, LeaveKey, LeaveHost>,
    /// What the map holds, by group.
    installed: HashMap<GroupId, Vec<LeaveHostEntry>>,
    /// What the next writes make it hold, by group.
    staged: HashMap<GroupId, Vec<LeaveHostEntry>>,
    /// Writes the kernel refused (the map full, ...), since start.
    errors: u64,
}

fn group_id(vlan: u16, group: IpAddr) -> GroupId {
    match group {
        IpAddr::V4(g) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&g.octets());
            (FAMILY_IPV4, vlan, b)
        }
        IpAddr::V6(g) => (FAMILY_IPV6, vlan, g.octets()),
    }
}

fn key(id: &GroupId, port: u8) -> LeaveKey {
    LeaveKey::new(id.1, id.0, u32::from(port), id.2)
}

fn value(e: &LeaveHostEntry) -> LeaveHost {
    LeaveHost {
        mac: e.mac,
        last: u8::from(e.last),
        _pad: 0,
    }
}

impl LeaveHosts {
    /// Takes over the map and empties it: an earlier run's entries may
    /// name other port numbers, and a restarted engine knows no host yet.
    pub(crate) fn new(mut map: AyaHashMap<MapData, LeaveKey, LeaveHost>) -> Self {
        let keys: Vec<LeaveKey> = map.keys().filter_map(|k| k.ok()).collect();
        for k in keys {
            let _ = map.remove(&k);
        }
        Self {
            map,
            installed: HashMap::new(),
            staged: HashMap::new(),
            errors: 0,
        }
    }

    /// (vlan, group) has exactly `hosts` now (none: no entry), written by
    /// the next `write_removals` and `write_additions`.
    pub fn stage(&mut self, vlan: u16, group: IpAddr, hosts: Vec<LeaveHostEntry>) {
        self.staged.insert(group_id(vlan, group), hosts);
    }

    /// Deletes the entries no longer true (their port gone from the staged
    /// hosts, or its host changed): before the group flush.
    pub fn write_removals(&mut self) {
        for (id, want) in &self.staged {
            let Some(have) = self.installed.get_mut(id) else {
                continue;
            };
            let map = &mut self.map;
            have.retain(|h| {
                if want.contains(h) {
                    return true;
                }
                // A changed `last` alone is rewritten by the addition.
                if want.iter().any(|w| w.port == h.port && w.mac == h.mac) {
                    return true;
                }
                let _ = map.remove(&key(id, h.port));
                false
            });
        }
    }

    /// Writes the new and changed entries: after the group flush. Clears
    /// the staged groups.
    pub fn write_additions(&mut self) {
        for (id, want) in self.staged.drain() {
            let have = self.installed.entry(id).or_default();
            for w in &want {
                if have.contains(w) {
                    continue;
                }
                match self.map.insert(key(&id, w.port), value(w), 0) {
                    Ok(()) => {}
                    Err(error) => {
                        self.errors += 1;
                        warn!(port = w.port, %error, "cannot publish a fast-leave host (LEAVE_HOSTS)");
                        continue;
                    }
                }
                match have.iter_mut().find(|h| h.port == w.port) {
                    Some(h) => *h = *w,
                    None => have.push(*w),
                }
            }
            // A same-port entry whose host changed and failed to write is
            // gone from the kernel: drop it here too.
            have.retain(|h| want.iter().any(|w| w.port == h.port && w.mac == h.mac));
            if have.is_empty() {
                self.installed.remove(&id);
            }
        }
    }

    /// Entries in the map now.
    pub fn len(&self) -> usize {
        self.installed.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.installed.is_empty()
    }

    /// Writes the kernel refused, since start.
    pub fn errors(&self) -> u64 {
        self.errors
    }
}
