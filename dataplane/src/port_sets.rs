//! The pool of egress port sets: the slots of the PORT_SETS array of maps,
//! each a DEVMAP_HASH of ifindexes that the XDP program broadcasts into.
//!
//! Groups with equal port sets share one slot (interned by content and
//! reference-counted), so the number of kernel maps follows the number of
//! distinct port sets, not of groups.
//!
//! Publishing a slot is a write to a map of maps, which waits for an RCU grace
//! period (~15 ms here), so slots are published ahead of need, a chunk at a
//! time in one batch. A slot's content is written only while no group points
//! at it: fresh slots are empty and unreferenced; a slot that lost its last
//! group is kept (a later group with the same set reuses it as is) and only
//! rewritten for another set after a quarantine far longer than any XDP run,
//! so a frame that read the old slot id just before its group moved never
//! sees a set it was not meant for.
//!
//! Each slot's ports are also written to MASKS (slot → port bitmap), for
//! the TC program, which cannot walk a devmap: with the devmap, before any
//! entry points at the slot.
//!
//! The pool keeps each slot's kernel map id, not an fd: the array holds the
//! maps alive, and an fd is opened only to write a slot (rare), so 65536
//! slots cost no file descriptors.
//!
//! For the program's fast join (ebpf/xdp/src/fast_join.rs) the pool also
//! publishes what each slot holds: MASKS (slot -> port mask, written once
//! the slot's devmap holds it) and SLOTS (port mask -> a slot holding
//! exactly it: the shareable slots, `by_mask`, mirrored). A retired slot
//! keeps its SLOTS entry while it keeps its content; the entry is deleted
//! before the slot is rewritten for another set. What is left: the program
//! may have read a SLOTS entry just before that deletion and write a group
//! entry naming the slot just after the rewrite (nanoseconds apart, and only
//! for a slot unreferenced for the whole quarantine). That entry is reported
//! on the ring like every fast join, and the daemon rewrites it on its next
//! round (the ring wakes it), so the wrong set lasts at most that long.
//! Closing it would take an RCU grace period between the deletion and the
//! rewrite (~15 ms a reclaimed slot).
use std::{
    collections::{HashMap as StdHashMap, VecDeque},
    os::fd::{AsFd as _, AsRawFd as _, RawFd},
    time::{Duration, Instant},
};

use aya::maps::{Array, DevMapHash, HashMap as AyaHashMap, Map, MapData, MapError};
use aya_obj::generated::bpf_map_type;
use igmpsnoop_common::{MAX_PORT_SETS, MAX_PORTS};
use tracing::{debug, warn};

use crate::{
    batch,
    error::{Error, Result},
    forwarding::{PortMask, port_mask, ports},
};

/// Slots published at a time (one RCU wait per chunk).
const CHUNK: u32 = 64;
/// `maintain` publishes another chunk below this many free slots, so that a
/// burst of new port sets seldom waits for a grace period.
const LOW_WATER: usize = 16;
/// How long an unreferenced slot keeps its content before it may be
/// rewritten for another set.
const QUARANTINE: Duration = Duration::from_secs(2);

struct Slot {
    /// Kernel id of the slot's devmap.
    map_id: u32,
    /// Ports (by index) the devmap holds.
    content: PortMask,
    /// The devmap also holds ifindexes that are not our ports (adopted from
    /// an earlier run with other ports): never shared, rewritten before reuse.
    foreign: bool,
    refs: usize,
    /// When the last reference went, while unreferenced.
    retired_at: Option<Instant>,
    /// The pool itself holds one reference (a single-port set kept
    /// published for fast join); not counted by `in_use`.
    kept: bool,
}

/// MASKS and SLOTS: what the program's fast join reads of the pool.
pub(crate) struct Published {
    pub masks: Array<MapData, PortMask>,
    pub slots: AyaHashMap<MapData, PortMask, u32>,
}

impl Published {
    fn set_mask(&mut self, id: u32, mask: PortMask) {
        if let Err(error) = self.masks.set(id, mask, 0) {
            warn!(slot = id, %error, "cannot publish a port set's mask (MASKS)");
        }
    }

    fn index(&mut self, mask: PortMask, id: u32) {
        if let Err(error) = self.slots.insert(mask, id, 0) {
            warn!(slot = id, %error, "cannot publish a port set (SLOTS)");
        }
    }

    fn unindex(&mut self, mask: PortMask) {
        let _ = self.slots.remove(&mask);
    }

    /// Removes every SLOTS entry (an earlier run's, whose port numbers
    /// may differ).
    fn clear(&mut self) {
        let keys: Vec<PortMask> = self.slots.keys().filter_map(|k| k.ok()).collect();
        for k in keys {
            self.unindex(k);
        }
    }
}

pub(crate) struct PortSets {
    /// The PORT_SETS array (owned by the Forwarding that owns us).
    array_fd: RawFd,
    ifindexes: Vec<u32>,
    /// Index = slot id; published slots are always a prefix of the array.
    slots: Vec<Slot>,
    /// Shareable slots by content (mirrored in SLOTS).
    by_mask: StdHashMap<PortMask, u32>,
    published: Published,
    /// Published, empty, unreferenced.
    free: Vec<u32>,
    /// Unreferenced slots in the order they were retired; an entry is stale
    /// when the slot was taken again since (checked on use).
    retired: VecDeque<(u32, Instant)>,
}

fn map_err(source: MapError) -> Error {
    Error::Map {
        name: "port set",
        source,
    }
}

/// The devmap with kernel id `id`, opened for reading or writing.
fn devmap(id: u32) -> Result<DevMapHash<MapData>> {
    let data = MapData::from_id(id).map_err(map_err)?;
    DevMapHash::try_from(Map::DevMapHash(data)).map_err(map_err)
}

fn map_fd(map: &Map) -> RawFd {
    match map {
        Map::DevMapHash(data) => data.fd().as_fd().as_raw_fd(),
        _ => unreachable!("port sets are devmap hashes"),
    }
}

impl PortSets {
    /// Takes over whatever slots `array` already holds (a pinned array from
    /// an earlier run; a new one holds none). Every slot starts unreferenced:
    /// the caller counts the groups that point at each with `adopt_ref` and
    /// then calls `finish_adoption`.
    pub fn open(array: &MapData, ifindexes: Vec<u32>, mut published: Published) -> Result<Self> {
        let array_fd = array.fd().as_fd().as_raw_fd();
        published.clear();
        let mut this = Self {
            array_fd,
            ifindexes,
            slots: Vec::new(),
            by_mask: StdHashMap::new(),
            published,
            free: Vec::new(),
            retired: VecDeque::new(),
        };
        for slot in 0..MAX_PORT_SETS {
            let map_id = match inner_map_id(array_fd, slot) {
                Ok(Some(id)) => id,
                Ok(None) => break,
                Err(source) => {
                    return Err(Error::Map {
                        name: "PORT_SETS",
                        source,
                    });
                }
            };
            let ifindexes: Vec<u32> = devmap(map_id)?.keys().filter_map(|k| k.ok()).collect();
            let (content, foreign) = port_mask(&this.ifindexes, ifindexes);
            this.slots.push(Slot {
                map_id,
                content,
                foreign,
                refs: 0,
                retired_at: None,
                kept: false,
            });
            this.published.set_mask(slot, content);
        }
        Ok(this)
    }

    /// The ports an adopted slot delivers to (ours only), if it exists.
    pub fn content(&self, id: u32) -> Option<(PortMask, bool)> {
        self.slots.get(id as usize).map(|s| (s.content, s.foreign))
    }

    /// One adopted group points at `id`.
    pub fn adopt_ref(&mut self, id: u32) {
        if let Some(slot) = self.slots.get_mut(id as usize) {
            slot.refs += 1;
        }
    }

    /// After counting adopted references: index what can be shared, free
    /// what is empty, retire the rest (quarantine from now).
    pub fn finish_adoption(&mut self) {
        let now = Instant::now();
        for (id, slot) in self.slots.iter_mut().enumerate() {
            let id = id as u32;
            if !slot.foreign
                && !slot.content.is_empty()
                && !self.by_mask.contains_key(&slot.content)
            {
                self.by_mask.insert(slot.content, id);
                self.published.index(slot.content, id);
            }
            if slot.refs > 0 {
                continue;
            }
            if slot.content.is_empty() && !slot.foreign {
                self.free.push(id);
            } else {
                slot.retired_at = Some(now);
                self.retired.push_back((id, now));
            }
        }
        // Pop the lowest ids first.
        self.free.reverse();
    }

    /// Writes every published slot's ports to MASKS (after adoption: port
    /// indexes may have moved since the slots were written).
    pub fn write_all_masks(&mut self) -> Result<()> {
        for (id, slot) in self.slots.iter().enumerate() {
            self.published.set_mask(id as u32, slot.content);
        }
        Ok(())
    }

    /// A slot holding exactly `mask`, referenced once more.
    pub fn acquire(&mut self, mask: PortMask) -> Result<u32> {
        if let Some(&id) = self.by_mask.get(&mask) {
            let slot = &mut self.slots[id as usize];
            slot.refs += 1;
            slot.retired_at = None;
            return Ok(id);
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None => match self.reclaim() {
                Some(id) => id,
                None => {
                    self.grow()?;
                    self.free
                        .pop()
                        .ok_or(Error::PortSetsFull { max: MAX_PORT_SETS })?
                }
            },
        };
        if let Err(e) = self.write(id, mask) {
            // Unreferenced either way; it can be tried again later.
            self.retire(id);
            return Err(e);
        }
        let slot = &mut self.slots[id as usize];
        slot.refs = 1;
        slot.retired_at = None;
        self.by_mask.insert(mask, id);
        self.published.index(mask, id);
        Ok(id)
    }

    /// Keeps a slot holding each single port published for good, so that
    /// a group's first member can join in the fast path (fast join).
    pub fn keep_single_port_sets(&mut self) -> Result<()> {
        for port in PortMask::first(self.ifindexes.len()).iter() {
            let mask = PortMask::single(port);
            if self
                .by_mask
                .get(&mask)
                .is_some_and(|&id| self.slots[id as usize].kept)
            {
                continue;
            }
            let id = self.acquire(mask)?;
            self.slots[id as usize].kept = true;
        }
        Ok(())
    }

    /// One reference fewer.
    pub fn release(&mut self, id: u32) {
        let Some(slot) = self.slots.get_mut(id as usize) else {
            return;
        };
        slot.refs = slot.refs.saturating_sub(1);
        if slot.refs == 0 {
            self.retire(id);
        }
    }

    fn retire(&mut self, id: u32) {
        let now = Instant::now();
        self.slots[id as usize].retired_at = Some(now);
        self.retired.push_back((id, now));
        // A slot taken again leaves its old entry behind; a group flapping
        // between two sets would grow the queue without end.
        if self.retired.len() > 2 * self.slots.len() + CHUNK as usize {
            let slots = &self.slots;
            self.retired.retain(|&(id, at)| {
                slots[id as usize].refs == 0 && slots[id as usize].retired_at == Some(at)
            });
        }
    }

    /// The oldest unreferenced slot whose quarantine is over, unlinked from
    /// its old content.
    fn reclaim(&mut self) -> Option<u32> {
        while let Some(&(id, at)) = self.retired.front() {
            let slot = &self.slots[id as usize];
            if slot.refs > 0 || slot.retired_at != Some(at) {
                self.retired.pop_front(); // taken again since
                continue;
            }
            if at.elapsed() < QUARANTINE {
                return None;
            }
            self.retired.pop_front();
            if self.by_mask.get(&slot.content) == Some(&id) {
                // Before the slot is rewritten: fast join must not find it
                // under its old content any more (see the module docs).
                let content = slot.content;
                self.by_mask.remove(&content);
                self.published.unindex(content);
            }
            return Some(id);
        }
        None
    }

    /// Rewrites an unreferenced slot's devmap to hold exactly `mask`.
    fn write(&mut self, id: u32, mask: PortMask) -> Result<()> {
        let slot = &mut self.slots[id as usize];
        let mut map = devmap(slot.map_id)?;
        if slot.foreign {
            let all: Vec<u32> = map.keys().filter_map(|k| k.ok()).collect();
            for ifindex in all {
                map.remove(ifindex).map_err(map_err)?;
            }
            slot.foreign = false;
            slot.content = PortMask::EMPTY;
        }
        for (port, ifindex) in ports(&self.ifindexes) {
            let (want, have) = (mask.contains(port), slot.content.contains(port));
            if want && !have {
                map.insert(ifindex, ifindex, None, 0)
                    .map_err(|source| Error::XdpMap {
                        name: "port set",
                        source,
                    })?;
                slot.content.insert(port);
            } else if have && !want {
                map.remove(ifindex).map_err(map_err)?;
                slot.content.remove(port);
            }
        }
        self.published.set_mask(id, mask);
        Ok(())
    }

    /// Publishes the next chunk of empty slots in one batch (one RCU wait).
    fn grow(&mut self) -> Result<()> {
        let first = self.slots.len() as u32;
        let count = CHUNK.min(MAX_PORT_SETS - first);
        if count == 0 {
            return Err(Error::PortSetsFull { max: MAX_PORT_SETS });
        }
        let mut maps = Vec::with_capacity(count as usize);
        let mut map_ids = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let obj = aya_obj::Map::new_from_params(
                bpf_map_type::BPF_MAP_TYPE_DEVMAP_HASH as u32,
                4,
                8,
                MAX_PORTS,
                0,
            );
            let data = MapData::create(obj, "isn_portset", None).map_err(map_err)?;
            map_ids.push(data.info().map_err(map_err)?.id());
            maps.push(Map::DevMapHash(data));
        }
        let keys: Vec<u32> = (first..first + count).collect();
        let fds: Vec<u32> = maps.iter().map(|m| map_fd(m) as u32).collect();
        // A slot the batch did reach is published; keep those. Our fds close
        // when `maps` drops: the array keeps the maps alive.
        let result = batch::update(self.array_fd, &keys, &fds);
        let done = match &result {
            Ok(()) => count as usize,
            Err(p) => p.done,
        };
        for &map_id in map_ids.iter().take(done) {
            let id = self.slots.len() as u32;
            self.slots.push(Slot {
                map_id,
                content: PortMask::EMPTY,
                foreign: false,
                refs: 0,
                retired_at: None,
                kept: false,
            });
            // An earlier run's MASKS may hold something here.
            self.published.set_mask(id, PortMask::EMPTY);
        }
        // `free` pops the lowest id first: the new (higher) ones go under.
        let new: Vec<u32> = (first..first + done as u32).rev().collect();
        self.free.splice(0..0, new);
        debug!(
            first,
            published = done,
            free = self.free.len(),
            "port-set slots published"
        );
        result.map_err(|p| Error::Batch {
            map: "PORT_SETS",
            what: "publish",
            count: count as usize,
            source: p.error,
        })
    }

    /// Publishes a chunk ahead of need when free slots run low: for idle
    /// moments (it waits for an RCU grace period).
    pub fn maintain(&mut self) -> Result<()> {
        if self.free.len() < LOW_WATER && (self.slots.len() as u32) < MAX_PORT_SETS {
            self.grow()?;
        }
        Ok(())
    }

    /// Distinct port sets some group points at.
    pub fn in_use(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.refs > usize::from(s.kept))
            .count()
    }

    /// Slots published in the kernel (in use, cached or free).
    pub fn published(&self) -> usize {
        self.slots.len()
    }
}

/// The kernel id of the inner map in `slot` of an array of maps (what a
/// userspace lookup returns), or None for an empty slot.
fn inner_map_id(array_fd: RawFd, slot: u32) -> std::result::Result<Option<u32>, MapError> {
    let mut value: u32 = 0;
    let mut attr = LookupAttr {
        map_fd: array_fd as u32,
        _pad: 0,
        key: &slot as *const u32 as u64,
        value: &mut value as *mut u32 as u64,
        flags: 0,
    };
    // SAFETY: BPF_MAP_LOOKUP_ELEM with a valid attr whose key and value point
    // at live u32s (an array of maps has 4-byte keys and returns 4-byte ids).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_MAP_LOOKUP_ELEM,
            &mut attr as *mut LookupAttr,
            size_of::<LookupAttr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ENOENT) {
            return Ok(None);
        }
        return Err(MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_lookup_elem",
            io_error: err,
        }));
    }
    Ok(Some(value))
}

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;

/// The element-access member of `union bpf_attr`.
#[repr(C)]
struct LookupAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}
