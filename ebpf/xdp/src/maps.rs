//! The maps of the XDP and TC programs. Their names are the ABI with the
//! loader (dataplane/src/lib.rs) and the pins (igmpsnoop_common::MAP_NAMES).

use aya_ebpf::{
    bindings::BPF_F_NO_PREALLOC,
    btf_maps::{
        Array, ArrayOfMaps, DevMapHash, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, XskMap,
    },
    macros::btf_map,
};
use igmpsnoop_common::{
    COUNTERS_SIZE, Group6Key, GroupKey, MAX_GROUPS, MAX_MACS, MAX_PORT_SETS, MAX_PORTS,
    MAX_SOURCE_ENTRIES, MAX_STREAMS, MacEntry, MacKey, PortConf, PortVlanConf, REPORT_SUM_BYTES,
    RateState, RouterKey, SetRef, Source6Key, SourceKey, StreamCount, SwitchConf, VlanPorts,
    XSKMAP_SIZE,
};

/// (VLAN, group) -> its port set. A plain hash, not a map of maps: a
/// userspace write to a map-in-map waits for an RCU grace period (~15 ms
/// here), a write to this does not, so a join reaches the fast path in
/// microseconds. Not preallocated: entries are freed after a grace period,
/// so a lookup racing an update never reads a recycled element. Its size
/// here is a placeholder: the loader sets `--max-groups` (GROUP_MAPS).
#[btf_map]
pub(crate) static GROUPS: HashMap<
    GroupKey,
    SetRef,
    { MAX_GROUPS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
/// (VLAN, group, source) -> the port set of that source's traffic (IGMPv3
/// source filtering), looked up only for groups whose entry carries
/// `set_flags::SOURCES`; a source without an entry follows its group.
/// Not preallocated, like GROUPS.
#[btf_map]
pub(crate) static SOURCES: HashMap<
    SourceKey,
    SetRef,
    { MAX_SOURCE_ENTRIES as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
/// (VLAN, group, source) -> frames and bytes replicated, per CPU (no
/// contended write per frame): the source is the frame's when it matched a
/// source entry, 0.0.0.0 when it took the group's own set. An LRU, so
/// streams that stopped make room and nothing needs removing.
#[btf_map]
pub(crate) static STREAMS: LruPerCpuHashMap<SourceKey, StreamCount, { MAX_STREAMS as usize }> =
    LruPerCpuHashMap::new();
/// IPv6 (VLAN, group) -> its port set: GROUPS for MLD's groups (a map of
/// its own keeps GROUPS' keys at 8 bytes). Sized by the loader, like GROUPS.
#[btf_map]
pub(crate) static GROUPS6: HashMap<
    Group6Key,
    SetRef,
    { MAX_GROUPS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
/// IPv6 (VLAN, group, source) -> port set (MLDv2 source filters): SOURCES
/// for IPv6, read under the same `set_flags::SOURCES` rule.
#[btf_map]
pub(crate) static SOURCES6: HashMap<
    Source6Key,
    SetRef,
    { MAX_SOURCE_ENTRIES as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
/// IPv6 streams (source :: when the frame took the group's own set): a
/// second LRU rather than a wider STREAMS key, so that IPv4 streams keep
/// hashing 12 bytes and each family's streams have their own room.
#[btf_map]
pub(crate) static STREAMS6: LruPerCpuHashMap<Source6Key, StreamCount, { MAX_STREAMS as usize }> =
    LruPerCpuHashMap::new();
/// Egress port sets, one devmap each, shared by every group and source entry
/// with that set.
/// The control plane publishes slots in batches ahead of need and never
/// changes a set some group points at.
#[btf_map]
pub(crate) static PORT_SETS: ArrayOfMaps<
    DevMapHash<{ MAX_PORTS as usize }>,
    { MAX_PORT_SETS as usize },
> = ArrayOfMaps::new();
/// The ports of each published port-set slot, by index (bit i = port i):
/// what the TC program walks, as the devmaps cannot be walked from BPF.
/// Written before any entry points at the slot, like the slot's devmap.
#[btf_map]
pub(crate) static MASKS: Array<u64, { MAX_PORT_SETS as usize }> = Array::new();
/// The flood set of VLAN 0 and of every VLAN that no port has VLAN config
/// for: every VLAN-unaware port (every port, without VLAN config).
#[btf_map]
pub(crate) static FLOOD: DevMapHash<{ MAX_PORTS as usize }> = DevMapHash::new();
/// VLAN -> the ports that carry it: the flood set of each VLAN some port
/// has VLAN config for.
#[btf_map]
pub(crate) static FLOOD_SETS: HashMap<u16, SetRef, 4096> = HashMap::new();
/// (VLAN, family) -> router ports: where unregistered multicast goes when
/// flooding is off; (ANY_VLAN, family) serves VLANs without an entry.
#[btf_map]
pub(crate) static ROUTER_SETS: HashMap<RouterKey, SetRef, 8192> = HashMap::new();
/// ifindex -> port.
#[btf_map]
pub(crate) static PORTS: HashMap<u32, PortConf, { MAX_PORTS as usize }> = HashMap::new();
/// VLAN (ANY_VLAN: every VLAN no port has config for) -> the ports that
/// carry it and those that want it untagged: how fast join and fast leave
/// shape a set on a switch with VLAN config. 4094 VLANs, 0 and ANY_VLAN.
#[btf_map]
pub(crate) static VLAN_PORTS: HashMap<u16, VlanPorts, 4096> = HashMap::new();
/// Port index -> the VLANs it carries (and its ifindex, for the TC program).
#[btf_map]
pub(crate) static PORT_VLANS: Array<PortVlanConf, { MAX_PORTS as usize }> = Array::new();
/// One AF_XDP socket per (port, queue).
#[btf_map]
pub(crate) static XSKS: XskMap<{ XSKMAP_SIZE as usize }> = XskMap::new();
/// Learned (MAC, VLAN) -> port.
#[btf_map]
pub(crate) static MACS: LruHashMap<MacKey, MacEntry, { MAX_MACS as usize }> = LruHashMap::new();
#[btf_map]
pub(crate) static CONFIG: Array<SwitchConf, 1> = Array::new();
#[btf_map]
pub(crate) static COUNTERS: PerCpuArray<u64, { COUNTERS_SIZE as usize }> = PerCpuArray::new();
/// Control-frame rate limiter state per port (per CPU, so the limit is per CPU).
#[btf_map]
pub(crate) static RATE: PerCpuArray<RateState, { MAX_PORTS as usize }> = PerCpuArray::new();

/// Scratch for an IGMP or MLD message being checksummed (report_check.rs).
#[btf_map]
pub(crate) static REPORT_SUM: PerCpuArray<[u8; REPORT_SUM_BYTES], 1> = PerCpuArray::new();
