//! The igmpsnoop XDP program: one program on every switch port.
//!
//! - IGMP (IPv4 protocol 2, matched by protocol, never by address) and PIM hellos
//!   go to the port's AF_XDP socket, for the control plane.
//! - MLD (ICMPv6 types 130, 131, 132, 143, found past the IPv6 extension
//!   headers) and PIMv6 hellos go there too.
//! - IPv4 multicast: 224.0.0.0/24 is flooded; a registered (VLAN, group) is
//!   replicated to its devmap of ports (or, when the group has source entries
//!   and the frame's source has one, to that source's); an unregistered one
//!   is flooded or sent to router ports only, by policy.
//! - IPv6 multicast: ff02::/16 is flooded; other groups as IPv4, through maps
//!   of their own (GROUPS6, SOURCES6, STREAMS6) and the same port sets.
//! - Everything else is switched: source MACs are learned into an LRU table,
//!   known unicast goes to its one port, the rest is flooded.
//! - VLANs (802.1Q), when some port has VLAN config (`SwitchConf::vlans`):
//!   a frame's VLAN is checked against its port at ingress, every set is
//!   the VLAN's, and the program gives the frame the format its set wants
//!   (pushing or popping the tag on its private copy) before the one
//!   redirect. A set whose ports want the VLAN some tagged, some untagged
//!   goes to the TC program (tc.rs), which sends each copy in its format.
//!
//! Every packet access is bounds-checked against `data_end` so the verifier can
//! prove it safe.
#![no_std]

mod fast_join;
mod pkt;
mod tag;
mod tc;

use pkt::Packet;

use aya_ebpf::{
    bindings::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, BPF_F_NO_PREALLOC, xdp_action},
    btf_maps::{
        Array, ArrayOfMaps, DevMapHash, HashMap, LruHashMap, LruPerCpuHashMap, PerCpuArray, XskMap,
    },
    helpers::{bpf_ktime_get_ns, bpf_redirect},
    macros::{btf_map, xdp},
    programs::XdpContext,
};
use igmpsnoop_common::{
    ALL_PIM_ROUTERS, ALL_PIM_ROUTERS6, ANY_VLAN, COUNTERS_SIZE, FAMILY_IPV4, FAMILY_IPV6,
    Group6Key, GroupKey, IPPROTO_ICMPV6, IPPROTO_IGMP, IPPROTO_PIM, MAX_GROUPS,
    MAX_IPV6_EXT_HEADERS, MAX_MACS, MAX_PORT_SETS, MAX_PORTS, MAX_QUEUES, MAX_SOURCE_ENTRIES,
    MAX_STREAMS, MLD_TYPES, MacEntry, MacKey, PortConf, PortVlanConf, RateState, RouterKey, SetRef,
    Source6Key, SourceKey, StreamCount, SwitchConf, XSKMAP_SIZE, counter, port_flags, set_flags,
};

/// (VLAN, group) -> its port set. A plain hash, not a map of maps: a
/// userspace write to a map-in-map waits for an RCU grace period (~15 ms
/// here), a write to this does not, so a join reaches the fast path in
/// microseconds. Not preallocated: entries are freed after a grace period,
/// so a lookup racing an update never reads a recycled element.
#[btf_map]
static GROUPS: HashMap<GroupKey, SetRef, { MAX_GROUPS as usize }, { BPF_F_NO_PREALLOC as usize }> =
    HashMap::new();
/// (VLAN, group, source) -> the port set of that source's traffic (IGMPv3
/// source filtering), looked up only for groups whose entry carries
/// `set_flags::SOURCES`; a source without an entry follows its group.
/// Not preallocated, like GROUPS.
#[btf_map]
static SOURCES: HashMap<
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
static STREAMS: LruPerCpuHashMap<SourceKey, StreamCount, { MAX_STREAMS as usize }> =
    LruPerCpuHashMap::new();
/// IPv6 (VLAN, group) -> its port set: GROUPS for MLD's groups (a map of
/// its own keeps GROUPS' keys at 8 bytes).
#[btf_map]
static GROUPS6: HashMap<
    Group6Key,
    SetRef,
    { MAX_GROUPS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
/// IPv6 (VLAN, group, source) -> port set (MLDv2 source filters): SOURCES
/// for IPv6, read under the same `set_flags::SOURCES` rule.
#[btf_map]
static SOURCES6: HashMap<
    Source6Key,
    SetRef,
    { MAX_SOURCE_ENTRIES as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();
/// IPv6 streams (source :: when the frame took the group's own set): a
/// second LRU rather than a wider STREAMS key, so that IPv4 streams keep
/// hashing 12 bytes and each family's streams have their own room.
#[btf_map]
static STREAMS6: LruPerCpuHashMap<Source6Key, StreamCount, { MAX_STREAMS as usize }> =
    LruPerCpuHashMap::new();
/// Egress port sets, one devmap each, shared by every group and source entry
/// with that set.
/// The control plane publishes slots in batches ahead of need and never
/// changes a set some group points at.
#[btf_map]
static PORT_SETS: ArrayOfMaps<DevMapHash<{ MAX_PORTS as usize }>, { MAX_PORT_SETS as usize }> =
    ArrayOfMaps::new();
/// The ports of each published port-set slot, by index (bit i = port i):
/// what the TC program walks, as the devmaps cannot be walked from BPF.
/// Written before any entry points at the slot, like the slot's devmap.
#[btf_map]
pub(crate) static MASKS: Array<u64, { MAX_PORT_SETS as usize }> = Array::new();
/// The flood set of VLAN 0 and of every VLAN that no port has VLAN config
/// for: every VLAN-unaware port (every port, without VLAN config).
#[btf_map]
static FLOOD: DevMapHash<{ MAX_PORTS as usize }> = DevMapHash::new();
/// VLAN -> the ports that carry it: the flood set of each VLAN some port
/// has VLAN config for.
#[btf_map]
static FLOOD_SETS: HashMap<u16, SetRef, 4096> = HashMap::new();
/// (VLAN, family) -> router ports: where unregistered multicast goes when
/// flooding is off; (ANY_VLAN, family) serves VLANs without an entry.
#[btf_map]
static ROUTER_SETS: HashMap<RouterKey, SetRef, 8192> = HashMap::new();
/// ifindex -> port.
#[btf_map]
static PORTS: HashMap<u32, PortConf, { MAX_PORTS as usize }> = HashMap::new();
/// Port index -> the VLANs it carries (and its ifindex, for the TC program).
#[btf_map]
static PORT_VLANS: Array<PortVlanConf, { MAX_PORTS as usize }> = Array::new();
/// One AF_XDP socket per (port, queue).
#[btf_map]
static XSKS: XskMap<{ XSKMAP_SIZE as usize }> = XskMap::new();
/// Learned (MAC, VLAN) -> port.
#[btf_map]
static MACS: LruHashMap<MacKey, MacEntry, { MAX_MACS as usize }> = LruHashMap::new();
#[btf_map]
static CONFIG: Array<SwitchConf, 1> = Array::new();
#[btf_map]
static COUNTERS: PerCpuArray<u64, { COUNTERS_SIZE as usize }> = PerCpuArray::new();
/// Control-frame rate limiter state per port (per CPU, so the limit is per CPU).
#[btf_map]
static RATE: PerCpuArray<RateState, { MAX_PORTS as usize }> = PerCpuArray::new();

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
pub(crate) const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPV4_MIN_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
const NS_PER_SEC: u64 = 1_000_000_000;
/// The MAC table's timestamp is refreshed at most this often (a write per frame
/// would bounce the cache line between CPUs).
const MAC_REFRESH_NS: u64 = NS_PER_SEC;

/// The frame being switched: where it came from, its VLAN, and its tag.
/// Plain fields, every one always set: LLVM passes a half-defined enum or
/// Option in registers whose undefined bits the verifier refuses.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    ifindex: u32,
    pub(crate) port: u32,
    /// The VLAN it belongs to (resolved at ingress: a port's PVID for an
    /// untagged frame).
    pub(crate) vlan: u16,
    /// It came with an 802.1Q tag, of VID `tag_vid`.
    tagged: bool,
    tag_vid: u16,
    /// Some port has VLAN config (`SwitchConf::vlans`): formats apply.
    pub(crate) vlans: bool,
}

/// Where a frame goes, decided by the parsers; `execute` does it. A struct
/// with every field set rather than an enum, for the verifier (see Frame).
#[derive(Clone, Copy)]
pub(crate) struct Out {
    /// `out::*`.
    kind: u32,
    /// With `out::SET`.
    set: SetRef,
    /// With `out::DONE`: the action; with `out::PORT`: the ifindex; with
    /// `out::CONTROL` for an IGMP report: its IPv4 destination.
    pub(crate) arg: u32,
    /// With `out::CONTROL`: the family of a report fast join may apply
    /// (`FAMILY_IPV4`, `FAMILY_IPV6`), 0 for other control frames.
    pub(crate) report: u16,
    /// With `report`: where its IGMP or ICMPv6 header starts, from the
    /// frame's first byte.
    pub(crate) l4: u16,
}

pub(crate) mod out {
    /// Not decided by the IP layer: switched by the L2 header.
    pub const L2: u32 = 0;
    /// Done already (a drop, counted).
    pub const DONE: u32 = 1;
    /// To the control plane's AF_XDP socket.
    pub const CONTROL: u32 = 2;
    /// The VLAN's flood set.
    pub const FLOOD: u32 = 3;
    /// A port set.
    pub const SET: u32 = 4;
    /// One port, by ifindex (known unicast).
    pub const PORT: u32 = 5;
}

const NO_REF: SetRef = SetRef {
    set: 0,
    copies: 0,
    flags: 0,
    solo_untagged: 0,
    solo_tagged: 0,
};

impl Out {
    const L2: Out = Out::kind(out::L2);
    const CONTROL: Out = Out::kind(out::CONTROL);
    const FLOOD: Out = Out::kind(out::FLOOD);

    const fn kind(kind: u32) -> Out {
        Out {
            kind,
            set: NO_REF,
            arg: 0,
            report: 0,
            l4: 0,
        }
    }

    /// A report for the control plane that fast join may apply first.
    fn report(family: u16, l4: usize, daddr: [u8; 4]) -> Out {
        Out {
            kind: out::CONTROL,
            set: NO_REF,
            arg: u32::from_ne_bytes(daddr),
            report: family,
            l4: l4 as u16,
        }
    }

    const fn done(action: u32) -> Out {
        Out {
            kind: out::DONE,
            set: NO_REF,
            arg: action,
            report: 0,
            l4: 0,
        }
    }

    const fn drop() -> Out {
        Out::done(xdp_action::XDP_DROP)
    }

    const fn set(set: SetRef) -> Out {
        Out {
            kind: out::SET,
            set,
            arg: 0,
            report: 0,
            l4: 0,
        }
    }

    const fn port(ifindex: u32) -> Out {
        Out {
            kind: out::PORT,
            set: NO_REF,
            arg: ifindex,
            report: 0,
            l4: 0,
        }
    }
}

#[xdp]
pub fn igmpsnoop(ctx: XdpContext) -> u32 {
    let ifindex = ctx.ingress_ifindex() as u32;
    // SAFETY: the value is copied out at once; the control plane writes an
    // entry only at start and when the port's VLAN config changes.
    let Some(port) = (unsafe { PORTS.get(ifindex) }).copied() else {
        // Not one of ours (the program was attached but the port not registered yet).
        return xdp_action::XDP_PASS;
    };
    count(port.index, counter::RX);
    let mut frame = Frame {
        ifindex,
        port: port.index,
        vlan: 0,
        tagged: false,
        tag_vid: 0,
        vlans: false,
    };
    let out = switch(&ctx, &port, &mut frame);
    execute(&ctx, out, &frame)
}

/// Parses the frame and decides where it goes (filling in `f`). A tag the
/// caller found outside the bytes (the TC program: the kernel keeps it in
/// the skb) comes in `f.tagged`, `f.tag_vid`; otherwise the outer tag is
/// read from the bytes.
#[inline(always)]
pub(crate) fn switch<P: Packet>(ctx: &P, conf: &PortConf, f: &mut Frame) -> Out {
    let port = conf.index;
    let data = ctx.data();
    let end = ctx.data_end();
    if data + ETH_HLEN > end {
        count(port, counter::DROP_SHORT_ETH);
        return Out::drop();
    }
    // SAFETY (all reads below): each is preceded by a check that the bytes lie
    // in [data, data_end).
    let dst: [u8; 6] = unsafe { *(data as *const [u8; 6]) };
    let src: [u8; 6] = unsafe { *((data + 6) as *const [u8; 6]) };
    let mut ethertype = u16::from_be(unsafe { *((data + 12) as *const u16) });
    let mut l3 = data + ETH_HLEN;
    if !f.tagged && (ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD) {
        if l3 + VLAN_HLEN > end {
            count(port, counter::DROP_SHORT_VLAN);
            return Out::drop();
        }
        // SAFETY: checked just above.
        let tci = u16::from_be(unsafe { *(l3 as *const u16) });
        ethertype = u16::from_be(unsafe { *((l3 + 2) as *const u16) });
        f.tagged = true;
        f.tag_vid = tci & 0x0fff;
        l3 += VLAN_HLEN;
    }
    f.vlan = f.tag_vid;
    f.vlans = CONFIG.get(0).is_some_and(|c| c.vlans != 0);
    if f.vlans && conf.flags & port_flags::VLANS != 0 {
        f.vlan = admit(conf, f);
        if f.vlan == 0 {
            count(port, counter::DROP_VLAN);
            return Out::drop();
        }
    }
    let vlan = f.vlan;

    // Multicast and all-zero sources are never learned (a bridge refuses them too).
    if src[0] & 1 == 0 && src != [0u8; 6] {
        learn(src, vlan, f.ifindex);
    }

    let multicast = dst[0] & 1 == 1;
    let out = if multicast && ethertype == ETH_P_IPV4 {
        ipv4_multicast(ctx, l3, end, f)
    } else if multicast && ethertype == ETH_P_IPV6 && snoop_ipv6() {
        ipv6_multicast(ctx, l3, end, f)
    } else if !multicast && ethertype == ETH_P_IPV4 {
        // IGMP sent to a unicast MAC (RFC 3376 §4.2.14 allows unicast queries) is
        // still control traffic.
        ipv4_control(l3, end)
    } else if !multicast && ethertype == ETH_P_IPV6 && snoop_ipv6() {
        // So is MLD to a unicast address (RFC 3810 §5.1.15: unicast queries).
        ipv6_control(l3, end)
    } else {
        Out::L2
    };
    if out.kind != out::L2 {
        return out;
    }
    if multicast {
        // Broadcast, other multicast, and IP multicast whose header did not
        // parse: flood.
        return flood(port);
    }
    unicast(dst, f)
}

/// The VLAN a frame from a port with VLAN config belongs to, or 0 when the
/// port does not take it (no VLAN with config is 0): untagged and
/// priority-tagged (VID 0) frames belong to the PVID (none: refused); a
/// tagged frame's VLAN must be one the port carries.
#[inline(always)]
fn admit(conf: &PortConf, f: &Frame) -> u16 {
    if !f.tagged || f.tag_vid == 0 {
        return conf.pvid;
    }
    match PORT_VLANS.get(conf.index) {
        Some(p) if p.carries(f.tag_vid) => f.tag_vid,
        _ => 0,
    }
}

/// Does what `switch` decided: gives the frame the format its destination
/// wants (one place, so the verifier sees the rewrite once), then the one
/// redirect.
#[inline(always)]
fn execute(ctx: &XdpContext, out: Out, f: &Frame) -> u32 {
    let port = f.port;
    if out.kind == out::DONE {
        return out.arg;
    }
    let out = if out.kind == out::FLOOD {
        flood_set(f)
    } else {
        out
    };
    if f.vlans {
        let format = match out.kind {
            out::SET => out.set.format_from(port),
            out::PORT => port_format(out.arg, f),
            out::CONTROL => control_format(f),
            _ => set_flags::AS_IS,
        };
        // A MIXED set leaves untagged for the TC program to tag per copy.
        let want = match format {
            set_flags::UNTAGGED | set_flags::MIXED => 1,
            set_flags::TAGGED => 2,
            _ => 0,
        };
        if want != 0 && tag::fit(ctx, f.tagged, f.tag_vid, want == 2, f.vlan).is_err() {
            count(port, counter::DROP_REDIRECT);
            return xdp_action::XDP_DROP;
        }
        if format == set_flags::MIXED {
            return to_tc(ctx, out.set.set, f);
        }
    }
    match out.kind {
        out::SET => send_set(out.set, port),
        out::FLOOD => redirected(FLOOD.redirect(0, BROADCAST), port, counter::DROP_REDIRECT),
        out::PORT => {
            // SAFETY: a helper; any ifindex is accepted and checked by the kernel.
            let action = unsafe { bpf_redirect(out.arg, 0) } as u32;
            if action != xdp_action::XDP_REDIRECT {
                count(port, counter::DROP_REDIRECT);
                return xdp_action::XDP_DROP;
            }
            action
        }
        _ => to_control_then(ctx, port, || fast_join::report(ctx, &out, f)),
    }
}

/// Control frames from a port with VLAN config reach the control plane
/// tagged with their VLAN, so it always reads the VLAN from the tag;
/// VLAN-unaware ports' frames go up as they came (VLAN 0 is never a
/// configured VLAN).
#[inline(always)]
fn control_format(f: &Frame) -> u8 {
    if f.vlan == 0 || (f.tagged && f.tag_vid == f.vlan) {
        set_flags::AS_IS
    } else {
        set_flags::TAGGED
    }
}

/// The format known unicast leaves port `ifindex` in.
#[inline(always)]
pub(crate) fn port_format(ifindex: u32, f: &Frame) -> u8 {
    // SAFETY: copied out at once.
    match unsafe { PORTS.get(ifindex) }.copied() {
        Some(c) if c.flags & port_flags::VLANS != 0 && c.pvid == f.vlan => set_flags::UNTAGGED,
        Some(c) if c.flags & port_flags::VLANS != 0 => set_flags::TAGGED,
        _ if f.vlan == 0 => set_flags::UNTAGGED,
        _ => set_flags::TAGGED,
    }
}

/// The flood set of the frame's VLAN when some port has VLAN config for it;
/// otherwise the FLOOD devmap (VLAN-unaware ports), the frame as it came.
#[inline(always)]
pub(crate) fn flood_set(f: &Frame) -> Out {
    if !f.vlans {
        return Out::FLOOD;
    }
    // SAFETY: copied out at once (the control plane replaces whole entries).
    match unsafe { FLOOD_SETS.get(f.vlan) } {
        Some(set) => Out::set(*set),
        None => Out::FLOOD,
    }
}

/// Hands a frame of a MIXED set (untagged by now) to the TC program on
/// this port: its set and VLAN in the metadata, then XDP_PASS. The kernel
/// carries the metadata into the skb in generic and native mode alike.
#[inline(always)]
fn to_tc(ctx: &XdpContext, set: u32, f: &Frame) -> u32 {
    if tag::write_meta(ctx, set, f.vlan).is_err() {
        count(f.port, counter::DROP_REDIRECT);
        return xdp_action::XDP_DROP;
    }
    count(f.port, counter::TO_TC);
    xdp_action::XDP_PASS
}

/// IPv4 multicast: control frames up, link-local flooded, groups replicated.
#[inline(always)]
fn ipv4_multicast<P: Packet>(ctx: &P, l3: usize, end: usize, f: &Frame) -> Out {
    let port = f.port;
    let vlan = f.vlan;
    if l3 + IPV4_MIN_HLEN > end {
        count(port, counter::BAD_IPV4);
        return Out::L2;
    }
    // SAFETY: 20 bytes of IPv4 header are in bounds (checked above).
    let ver_ihl = unsafe { *(l3 as *const u8) };
    if ver_ihl >> 4 != 4 || ver_ihl & 0x0f < 5 {
        count(port, counter::BAD_IPV4);
        return Out::L2;
    }
    let proto = unsafe { *((l3 + 9) as *const u8) };
    let daddr: [u8; 4] = unsafe { *((l3 + 16) as *const [u8; 4]) };
    if is_control(proto, daddr) {
        if proto == IPPROTO_IGMP {
            let l4 = l3 + usize::from(ver_ihl & 0x0f) * 4;
            return Out::report(FAMILY_IPV4, l4 - ctx.data(), daddr);
        }
        return Out::CONTROL;
    }
    if daddr[0] & 0xf0 != 0xe0 {
        // Multicast MAC, non-multicast IP: switch by L2.
        return Out::L2;
    }
    if daddr[0] == 224 && daddr[1] == 0 && daddr[2] == 0 {
        // 224.0.0.0/24 is never snooped (RFC 4541 §2.1.2): flood.
        return flood(port);
    }
    let key = GroupKey::new(vlan, daddr);
    // SAFETY: the entry is copied out at once (no-prealloc: never recycled
    // under us).
    let Some(entry) = unsafe { GROUPS.get(key) }.copied() else {
        return unregistered(f, FAMILY_IPV4);
    };
    // SAFETY: the source address lies in the 20 bytes checked above.
    let saddr = || unsafe { *((l3 + 12) as *const [u8; 4]) };
    registered(
        entry,
        port,
        // SAFETY: copied out at once (no-prealloc: never recycled under us).
        || unsafe { SOURCES.get(SourceKey::new(vlan, daddr, saddr())) }.copied(),
        |matched| {
            let source = if matched { saddr() } else { [0; 4] };
            count_stream(&STREAMS, SourceKey::new(vlan, daddr, source), ctx);
        },
    )
}

/// A frame to a registered group, either family: replicated to the set of
/// its source's own entry when the group carries `set_flags::SOURCES` and
/// `source_entry` finds one, to the group's set otherwise; counted in its
/// stream (`stream` is told whether the source's entry was used: the stream
/// of frames that took their group's own set has source 0).
///
/// Two reads, of two maps the control plane writes separately: it puts a
/// source's entry in place before it flags the group, and clears the flag
/// before it deletes the group's last source entries (the order is
/// documented in dataplane/src/forwarding/mod.rs), so a frame goes to its
/// source's old set or its new one, and no other source of the group sees
/// a change.
#[inline(always)]
fn registered(
    entry: SetRef,
    port: u32,
    source_entry: impl FnOnce() -> Option<SetRef>,
    stream: impl FnOnce(bool),
) -> Out {
    let mut set = entry;
    let mut matched = false;
    if entry.flags & set_flags::SOURCES != 0
        && let Some(source) = source_entry()
    {
        count(port, counter::SOURCE_MATCHED);
        (set, matched) = (source, true);
    }
    if set.copies == 0 {
        count(port, counter::DROP_NO_MEMBER);
        return Out::drop();
    }
    stream(matched);
    count(port, counter::REPLICATED);
    add(port, counter::REPLICATED_COPIES, u64::from(set.copies));
    Out::set(set)
}

/// Adds a frame to its stream's count in `streams` (when counting is on).
#[inline(always)]
fn count_stream<K, P: Packet>(
    streams: &LruPerCpuHashMap<K, StreamCount, { MAX_STREAMS as usize }>,
    key: K,
    ctx: &P,
) {
    if CONFIG.get(0).is_none_or(|c| c.count_streams == 0) {
        return;
    }
    let bytes = (ctx.data_end() - ctx.data()) as u64;
    match streams.get_ptr_mut(&key) {
        // SAFETY: this CPU's value of a per-CPU map; XDP is not preempted.
        Some(c) => unsafe {
            (*c).frames += 1;
            (*c).bytes += bytes;
        },
        None => {
            let _ = streams.insert(&key, StreamCount { frames: 1, bytes }, 0);
        }
    }
}

/// Whether IPv6 is snooped at all (`SwitchConf::snoop_ipv6`).
#[inline(always)]
fn snoop_ipv6() -> bool {
    CONFIG.get(0).is_some_and(|c| c.snoop_ipv6 != 0)
}

/// IPv6 multicast: MLD and PIMv6 hellos up, link-local flooded, groups
/// replicated.
#[inline(always)]
fn ipv6_multicast<P: Packet>(ctx: &P, l3: usize, end: usize, f: &Frame) -> Out {
    let (port, vlan) = (f.port, f.vlan);
    let (proto, l4) = match ipv6_upper(l3, end) {
        Ok(upper) => upper,
        Err(Chain::Bad) => {
            count(port, counter::BAD_IPV6);
            return Out::L2;
        }
        Err(Chain::Long) => {
            // It might be MLD, which must never reach hosts as data: the
            // control plane walks the rest (see counter::IPV6_LONG_CHAIN).
            count(port, counter::IPV6_LONG_CHAIN);
            return Out::CONTROL;
        }
    };
    // SAFETY: ipv6_upper checked the 40-byte fixed header.
    let daddr: [u8; 16] = unsafe { *((l3 + 24) as *const [u8; 16]) };
    match ipv6_control_kind(proto, l4, end, &daddr) {
        Ok(true) if proto == IPPROTO_ICMPV6 => {
            return Out::report(FAMILY_IPV6, l4 - ctx.data(), [0; 4]);
        }
        Ok(true) => return Out::CONTROL,
        Ok(false) => {}
        Err(()) => {
            count(port, counter::BAD_IPV6);
            return Out::L2;
        }
    }
    if daddr[0] != 0xff {
        // Multicast MAC, non-multicast IP: switch by L2.
        return Out::L2;
    }
    if daddr[1] == 0x02 {
        // ff02::/16, link-local scope, is never snooped: all-nodes ff02::1
        // as RFC 4541 §3 says, and with it every link-local group (ND's
        // solicited-node groups ff02::1:ffXX:XXXX, all-routers, ...), so that
        // neighbour discovery never depends on hosts having reported (they
        // report solicited-node groups late or not at all, and a lost
        // report must not cut a host off its neighbours). The control plane
        // does not snoop them either.
        return flood(port);
    }
    let key = Group6Key::new(vlan, daddr);
    // SAFETY: the entry is copied out at once (no-prealloc: never recycled
    // under us).
    let Some(entry) = unsafe { GROUPS6.get(key) }.copied() else {
        return unregistered(f, FAMILY_IPV6);
    };
    // SAFETY: the source address lies in the fixed header checked above.
    let saddr = || unsafe { *((l3 + 8) as *const [u8; 16]) };
    registered(
        entry,
        port,
        // SAFETY: copied out at once (no-prealloc: never recycled under us).
        || unsafe { SOURCES6.get(Source6Key::new(vlan, daddr, saddr())) }.copied(),
        |matched| {
            let source = if matched { saddr() } else { [0; 16] };
            count_stream(&STREAMS6, Source6Key::new(vlan, daddr, source), ctx);
        },
    )
}

/// IPv6 to a unicast MAC: only MLD is of interest here (a chain too long to
/// walk is switched by L2: unicast is never snooped as data).
#[inline(always)]
fn ipv6_control(l3: usize, end: usize) -> Out {
    let Ok((proto, l4)) = ipv6_upper(l3, end) else {
        return Out::L2;
    };
    if proto != IPPROTO_ICMPV6 || l4 + 1 > end {
        return Out::L2;
    }
    // SAFETY: checked just above.
    let kind = unsafe { *(l4 as *const u8) };
    if MLD_TYPES.contains(&kind) {
        Out::CONTROL
    } else {
        Out::L2
    }
}

/// Whether the upper-layer header at `l4` is control traffic: MLD (ICMPv6
/// of an MLD type, RFC 2710 §3 / RFC 3810 §5, matched by type, never by
/// address) or a PIMv6 hello (to ff02::d). Err: the ICMPv6 header is cut
/// short.
#[inline(always)]
fn ipv6_control_kind(proto: u8, l4: usize, end: usize, daddr: &[u8; 16]) -> Result<bool, ()> {
    match proto {
        IPPROTO_ICMPV6 => {
            if l4 + 1 > end {
                return Err(());
            }
            // SAFETY: checked just above.
            let kind = unsafe { *(l4 as *const u8) };
            Ok(MLD_TYPES.contains(&kind))
        }
        IPPROTO_PIM => Ok(*daddr == ALL_PIM_ROUTERS6),
        _ => Ok(false),
    }
}

/// Why an IPv6 header chain has no upper-layer protocol to show.
enum Chain {
    /// The fixed header or an extension header is cut short (or the version
    /// is not 6).
    Bad,
    /// More than MAX_IPV6_EXT_HEADERS extension headers.
    Long,
}

const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_AUTH: u8 = 51;
const NEXTHDR_DEST: u8 = 60;

/// Walks the IPv6 header at `l3` and its extension headers (RFC 8200 §4:
/// hop-by-hop, routing, fragment, destination options; and AH, RFC 4302),
/// at most MAX_IPV6_EXT_HEADERS of them, each bounds-checked: the
/// upper-layer protocol and where its header starts. A fragment that is not
/// the first has no upper-layer header: it comes back as protocol 44
/// (fragment), which is data to every caller. ESP (50) and "no next header"
/// (59) end the walk like any upper-layer protocol.
#[inline(always)]
fn ipv6_upper(l3: usize, end: usize) -> Result<(u8, usize), Chain> {
    if l3 + IPV6_HLEN > end {
        return Err(Chain::Bad);
    }
    // SAFETY (all reads below): each lies in bytes checked against `end`.
    if unsafe { *(l3 as *const u8) } >> 4 != 6 {
        return Err(Chain::Bad);
    }
    let mut next = unsafe { *((l3 + 6) as *const u8) };
    let mut at = l3 + IPV6_HLEN;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match next {
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH => {
                if at + 2 > end {
                    return Err(Chain::Bad);
                }
                let units = usize::from(unsafe { *((at + 1) as *const u8) });
                if next == NEXTHDR_AUTH {
                    // RFC 4302 §2.2: in 4-byte units, minus 2.
                    (units + 2) * 4
                } else {
                    // In 8-byte units, not counting the first 8 bytes.
                    (units + 1) * 8
                }
            }
            NEXTHDR_FRAGMENT => {
                if at + 8 > end {
                    return Err(Chain::Bad);
                }
                let offset = u16::from_be(unsafe { *((at + 2) as *const u16) }) & 0xfff8;
                if offset != 0 {
                    return Ok((NEXTHDR_FRAGMENT, at));
                }
                8
            }
            _ => return Ok((next, at)),
        };
        next = unsafe { *(at as *const u8) };
        at += len;
    }
    match next {
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST | NEXTHDR_AUTH | NEXTHDR_FRAGMENT => {
            Err(Chain::Long)
        }
        _ => Ok((next, at)),
    }
}

/// Broadcasts into the devmap of port set `set`.
#[inline(always)]
fn send_set(set: SetRef, port: u32) -> u32 {
    if set.copies == 0 {
        // An empty flood or router set (no other port carries the VLAN).
        return xdp_action::XDP_DROP;
    }
    let Some(ports) = PORT_SETS.get(set.set) else {
        // An entry with copies always points at a published set; never seen.
        count(port, counter::DROP_REDIRECT);
        return xdp_action::XDP_DROP;
    };
    redirected(ports.redirect(0, BROADCAST), port, counter::DROP_REDIRECT)
}

/// A group with no entry: flooded, or to the VLAN's router ports of the
/// family only, by policy.
#[inline(always)]
fn unregistered(f: &Frame, family: u16) -> Out {
    let flood_unregistered = CONFIG.get(0).is_none_or(|c| c.flood_unregistered != 0);
    if flood_unregistered {
        return flood(f.port);
    }
    let routers = router_set(f.vlan, family);
    // A broadcast redirect into an empty devmap "succeeds" and drops silently.
    match routers {
        Some(set) if set.copies != 0 => {
            count(f.port, counter::TO_ROUTERS);
            Out::set(set)
        }
        _ => {
            count(f.port, counter::DROP_NO_ROUTER);
            Out::drop()
        }
    }
}

/// The router set of `family` on `vlan`: its own, else `ANY_VLAN`'s.
#[inline(always)]
pub(crate) fn router_set(vlan: u16, family: u16) -> Option<SetRef> {
    // SAFETY: copied out at once (the control plane replaces whole entries).
    unsafe {
        ROUTER_SETS.get(RouterKey { vlan, family }).or_else(|| {
            ROUTER_SETS.get(RouterKey {
                vlan: ANY_VLAN,
                family,
            })
        })
    }
    .copied()
}

/// IPv4 to a unicast MAC: only IGMP is of interest here.
#[inline(always)]
fn ipv4_control(l3: usize, end: usize) -> Out {
    if l3 + IPV4_MIN_HLEN > end {
        return Out::L2;
    }
    // SAFETY: 20 bytes of IPv4 header are in bounds (checked above).
    let ver_ihl = unsafe { *(l3 as *const u8) };
    if ver_ihl >> 4 != 4 || ver_ihl & 0x0f < 5 {
        return Out::L2;
    }
    let proto = unsafe { *((l3 + 9) as *const u8) };
    if proto == IPPROTO_IGMP {
        Out::CONTROL
    } else {
        Out::L2
    }
}

#[inline(always)]
fn is_control(proto: u8, daddr: [u8; 4]) -> bool {
    proto == IPPROTO_IGMP || (proto == IPPROTO_PIM && daddr == ALL_PIM_ROUTERS)
}

/// Hands a control frame to the port's AF_XDP socket, within the rate
/// limit, running `report` (fast join: `fast_join::igmp`,
/// `fast_join::mld`) on a frame that passed the rate limit, right before
/// it goes to the socket: the daemon sees every report as before.
#[inline(always)]
fn to_control_then(ctx: &XdpContext, port: u32, report: impl FnOnce()) -> u32 {
    if !within_rate(port) {
        count(port, counter::DROP_RATE_LIMIT);
        return xdp_action::XDP_DROP;
    }
    let queue = ctx.rx_queue_index();
    if queue >= MAX_QUEUES {
        count(port, counter::DROP_NO_SOCKET);
        return xdp_action::XDP_DROP;
    }
    report();
    match XSKS.redirect(port * MAX_QUEUES + queue, 0) {
        Ok(action) => {
            count(port, counter::TO_CONTROL);
            action
        }
        Err(_) => {
            count(port, counter::DROP_NO_SOCKET);
            xdp_action::XDP_DROP
        }
    }
}

/// A fixed one-second window per port and CPU.
#[inline(always)]
fn within_rate(port: u32) -> bool {
    let limit = match CONFIG.get(0) {
        Some(c) if c.control_rate_pps != 0 => c.control_rate_pps as u64,
        _ => return true,
    };
    let Some(state) = RATE.get_ptr_mut(port) else {
        return true;
    };
    // SAFETY: `state` points at this CPU's slot of a per-CPU array; XDP runs
    // with preemption disabled, so nothing else touches it meanwhile.
    let state = unsafe { &mut *state };
    // SAFETY: a helper with no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(state.window_start_ns) >= NS_PER_SEC {
        state.window_start_ns = now;
        state.count = 0;
    }
    state.count += 1;
    state.count <= limit
}

#[inline(always)]
fn learn(src: [u8; 6], vlan: u16, ifindex: u32) {
    let key = MacKey { mac: src, vlan };
    // SAFETY: a helper with no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if let Some(entry) = MACS.get_ptr(key) {
        // SAFETY: the pointer came from a successful lookup; fields are copied out.
        let (known, seen) = unsafe { ((*entry).ifindex, (*entry).seen_ns) };
        if known == ifindex && now.wrapping_sub(seen) < MAC_REFRESH_NS {
            return;
        }
    }
    // A host that moved is re-learned here at once.
    let _ = MACS.insert(
        key,
        MacEntry {
            ifindex,
            _pad: 0,
            seen_ns: now,
        },
        0,
    );
}

/// Unicast: to the port its (MAC, VLAN) was learned on, flooded in the
/// VLAN when unknown.
#[inline(always)]
fn unicast(dst: [u8; 6], f: &Frame) -> Out {
    let key = MacKey {
        mac: dst,
        vlan: f.vlan,
    };
    let Some(entry) = MACS.get_ptr(key) else {
        return flood(f.port);
    };
    // SAFETY: the pointer came from a successful lookup; the field is copied out.
    let out = unsafe { (*entry).ifindex };
    if out == f.ifindex {
        count(f.port, counter::DROP_SAME_PORT);
        return Out::drop();
    }
    count(f.port, counter::FORWARDED);
    Out::port(out)
}

#[inline(always)]
fn flood(port: u32) -> Out {
    count(port, counter::FLOODED);
    Out::FLOOD
}

/// Every copy but the ingress port's.
const BROADCAST: u64 = (BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS) as u64;

/// The action of a redirect helper, or a drop counted under `reason` when it refused.
#[inline(always)]
fn redirected(result: Result<u32, u32>, port: u32, reason: u32) -> u32 {
    match result {
        Ok(action) => action,
        Err(_) => {
            count(port, reason);
            xdp_action::XDP_DROP
        }
    }
}

#[inline(always)]
pub(crate) fn count(port: u32, which: u32) {
    add(port, which, 1);
}

#[inline(always)]
pub(crate) fn add(port: u32, which: u32, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(port * counter::COUNT + which) {
        // SAFETY: this CPU's slot of a per-CPU array; XDP and TC run with
        // preemption disabled.
        unsafe { *slot += n };
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
