//! Reading the fast path's counters and MAC table.
use aya::maps::{HashMap, MapData, PerCpuArray, PerCpuHashMap};
use igmpsnoop_common::{
    COUNTERS_SIZE, MacEntry, MacKey, Source6Key, SourceKey, StreamCount, counter,
};

use crate::error::{Error, Result};

/// One port's counters, summed over CPUs; indexed like `counter::NAMES`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortCounters {
    pub values: [u64; counter::COUNT as usize],
}

impl PortCounters {
    pub fn get(&self, which: u32) -> u64 {
        self.values.get(which as usize).copied().unwrap_or(0)
    }

    /// (name, value) pairs with stable names.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counter::NAMES
            .iter()
            .copied()
            .zip(self.values.iter().copied())
    }
}

/// One learned MAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacRow {
    pub mac: [u8; 6],
    pub vlan: u16,
    pub ifindex: u32,
    /// Seconds since the MAC was last seen (at one-second resolution).
    pub age_secs: u64,
}

/// One stream the fast path replicated: a (VLAN, group) and the source its
/// frames matched (0.0.0.0 or ::, frames that took the group's own set),
/// with totals since it was first seen. `A`: `[u8; 4]` (IPv4, STREAMS) or
/// `[u8; 16]` (IPv6, STREAMS6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamRow<A = [u8; 4]> {
    pub vlan: u16,
    pub group: A,
    pub source: A,
    pub frames: u64,
    pub bytes: u64,
}

pub struct Stats {
    counters: PerCpuArray<MapData, u64>,
    macs: HashMap<MapData, MacKey, MacEntry>,
    streams: PerCpuHashMap<MapData, SourceKey, StreamCount>,
    streams6: PerCpuHashMap<MapData, Source6Key, StreamCount>,
}

/// Every entry of a per-CPU stream map, its counts summed over CPUs.
fn sum_streams<K: aya::Pod, A>(
    map: &PerCpuHashMap<MapData, K, StreamCount>,
    row: impl Fn(&K) -> (u16, A, A),
) -> Vec<StreamRow<A>> {
    map.iter()
        .filter_map(|e| e.ok())
        .map(|(key, per_cpu)| {
            let (frames, bytes) = per_cpu
                .iter()
                .fold((0, 0), |(f, b), c| (f + c.frames, b + c.bytes));
            let (vlan, group, source) = row(&key);
            StreamRow {
                vlan,
                group,
                source,
                frames,
                bytes,
            }
        })
        .collect()
}

impl Stats {
    pub(crate) fn new(
        counters: PerCpuArray<MapData, u64>,
        macs: HashMap<MapData, MacKey, MacEntry>,
        streams: PerCpuHashMap<MapData, SourceKey, StreamCount>,
        streams6: PerCpuHashMap<MapData, Source6Key, StreamCount>,
    ) -> Self {
        Self {
            counters,
            macs,
            streams,
            streams6,
        }
    }

    /// Every IPv4 stream counted, its per-CPU counts summed.
    pub fn streams(&self) -> Vec<StreamRow> {
        sum_streams(&self.streams, |k| (k.vlan, k.group, k.source))
    }

    /// Every IPv6 stream counted (STREAMS6), its per-CPU counts summed.
    pub fn streams6(&self) -> Vec<StreamRow<[u8; 16]>> {
        sum_streams(&self.streams6, |k| (k.vlan, k.group, k.source))
    }

    pub fn port_counters(&self, port: usize) -> Result<PortCounters> {
        let mut out = PortCounters::default();
        for which in 0..counter::COUNT {
            let index = port as u32 * counter::COUNT + which;
            let values = self.counters.get(&index, 0).map_err(|source| Error::Map {
                name: "COUNTERS",
                source,
            })?;
            out.values[which as usize] = values.iter().sum();
        }
        Ok(out)
    }

    pub fn mac_table(&self) -> Vec<MacRow> {
        let now = monotonic_ns();
        let mut rows: Vec<MacRow> = self
            .macs
            .iter()
            .filter_map(|entry| entry.ok())
            .map(|(key, value)| MacRow {
                mac: key.mac,
                vlan: key.vlan,
                ifindex: value.ifindex,
                age_secs: now.saturating_sub(value.seen_ns) / 1_000_000_000,
            })
            .collect();
        rows.sort_by_key(|r| (r.vlan, r.mac));
        rows
    }

    /// Zeroes every counter (port indexes changed across a restart).
    pub fn clear_counters(&mut self) -> Result<()> {
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| Error::Io(e))?;
        for index in 0..COUNTERS_SIZE {
            let zeros = aya::maps::PerCpuValues::try_from(vec![0u64; cpus]).map_err(Error::Io)?;
            self.counters
                .set(index, zeros, 0)
                .map_err(|source| Error::Map {
                    name: "COUNTERS",
                    source,
                })?;
        }
        Ok(())
    }

    /// Forgets MACs learned on ports for which `keep(ifindex)` is false.
    pub fn retain_macs(&mut self, keep: impl Fn(u32) -> bool) -> usize {
        self.remove_macs(|r| !keep(r.ifindex))
    }

    /// Forgets MACs not seen for `max_age_secs`, or learned on `ifindex` when given.
    pub fn flush_macs(&mut self, max_age_secs: Option<u64>, ifindex: Option<u32>) -> usize {
        self.remove_macs(|r| {
            max_age_secs.is_some_and(|max| r.age_secs >= max) || ifindex == Some(r.ifindex)
        })
    }

    /// Removes every learned MAC for which `gone` is true; returns how many.
    fn remove_macs(&mut self, gone: impl Fn(&MacRow) -> bool) -> usize {
        let keys: Vec<MacKey> = self
            .mac_table()
            .into_iter()
            .filter(|r| gone(r))
            .map(|r| MacKey {
                mac: r.mac,
                vlan: r.vlan,
            })
            .collect();
        keys.iter()
            .filter(|key| self.macs.remove(key).is_ok())
            .count()
    }
}

/// CLOCK_MONOTONIC in nanoseconds: the clock bpf_ktime_get_ns() reads.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
