//! Map keys, values and constants shared by the XDP program and userspace.
//!
//! Every type is `#[repr(C)]` with explicit padding so both sides agree on the
//! byte layout; the `user` feature implements `aya::Pod` for them.
#![no_std]

mod port_mask;
pub use port_mask::PortMask;

/// Most ports one switch drives: the control plane keeps port sets as a u64 bitmap.
pub const MAX_PORTS: u32 = 64;
/// AF_XDP sockets per port (one per RX queue); XSKMAP index = port * this + queue.
pub const MAX_QUEUES: u32 = 16;
pub const XSKMAP_SIZE: u32 = MAX_PORTS * MAX_QUEUES;
/// Most (VLAN, group) entries the fast path can be asked to hold
/// (`--max-groups`): GROUPS and GROUPS6 are sized by the switch's
/// `--max-groups` at load (this is only the object's placeholder size).
/// Each map's bucket array is allocated whole at creation (16 bytes a
/// bucket, the entry count rounded up to a power of two), so this cap keeps
/// one map under 16 MiB of buckets.
pub const MAX_GROUPS: u32 = 1_048_576;
/// `--max-groups` when none is given: the size of the group maps and of the
/// control plane's tables.
pub const DEFAULT_MAX_GROUPS: u32 = 65_536;
/// The group maps, sized by `--max-groups` at load (see [`MAX_GROUPS`]).
pub const GROUP_MAPS: [&str; 2] = ["GROUPS", "GROUPS6"];
/// Slots of the port-set array: distinct egress port sets the fast path can
/// hold at once (groups with equal port sets share one).
pub const MAX_PORT_SETS: u32 = 65_536;
/// Distinct (VLAN, group, source) entries the fast path can hold: room for
/// well over 100k source-specific entries next to the groups.
pub const MAX_SOURCE_ENTRIES: u32 = 262_144;
/// Streams counted at once (an LRU: a stream that stopped makes room).
pub const MAX_STREAMS: u32 = 65_536;
/// A group or source entry that names no port set: its set is empty (no
/// member, no router port), so its traffic is dropped and counted. Entries
/// with `copies == 0` always carry it.
pub const NO_SET: u32 = u32::MAX;
/// Bytes of an IGMP or MLD message the XDP program checksums before fast
/// join or fast leave applies it (an IGMPv3 report of 127 source-less
/// records, an MLDv2 report of 51); a longer one is left to the daemon.
pub const REPORT_SUM_BYTES: usize = 1024;
/// Learned (MAC, VLAN) entries; an LRU map, so the oldest go first when full.
pub const MAX_MACS: u32 = 65_536;

/// Every map of the eBPF programs, by symbol name: exported by the linker,
/// taken by the data plane, pinned by name.
pub const MAP_NAMES: [&str; 23] = [
    "GROUPS",
    "SOURCES",
    "STREAMS",
    "GROUPS6",
    "SOURCES6",
    "STREAMS6",
    "PORT_SETS",
    "MASKS",
    "FLOOD",
    "FLOOD_SETS",
    "ROUTER_SETS",
    "PORTS",
    "PORT_VLANS",
    "XSKS",
    "MACS",
    "CONFIG",
    "COUNTERS",
    "RATE",
    "SLOTS",
    "FAST_JOINS",
    "LEAVE_HOSTS",
    "REPORT_SUM",
    "VLAN_PORTS",
];

/// `ROUTER_SETS` key's VLAN meaning "every VLAN without a router set of its
/// own".
pub const ANY_VLAN: u16 = u16::MAX;
/// Address families of `RouterKey`.
pub const FAMILY_IPV4: u16 = 4;
pub const FAMILY_IPV6: u16 = 6;
/// VLAN IDs a port can carry: 4096 bits (IEEE 802.1Q VIDs 0..=4095).
pub const VLAN_WORDS: usize = 64;
/// First word of the XDP metadata of a frame handed to the TC program
/// (`TcMeta`): frames without it are not ours to replicate.
pub const TC_MAGIC: u32 = 0x6973_7663; // "isvc"
/// Bytes of the FAST_JOINS ring buffer (a power of two, a multiple of the
/// page size): 2048 events of 32 bytes (header included). A full ring
/// makes the program leave joins to the daemon.
pub const FAST_JOIN_RING_BYTES: u32 = 64 * 1024;
/// Group records of one IGMPv3 / MLDv2 report the program looks at for
/// (*,G) joins; the daemon handles the rest (it sees every report anyway).
pub const FAST_JOIN_MAX_RECORDS: u32 = 4;

/// Entries of LEAVE_HOSTS: one per (VLAN, group, port) at most, as many
/// as the group maps can hold.
pub const MAX_LEAVE_HOSTS: u32 = MAX_GROUPS;

/// IPv4 protocol numbers the XDP program hands to the control plane.
pub const IPPROTO_IGMP: u8 = 2;
pub const IPPROTO_PIM: u8 = 103;
/// ALL-PIM-ROUTERS (224.0.0.13), where PIM hellos go.
pub const ALL_PIM_ROUTERS: [u8; 4] = [224, 0, 0, 13];
/// ALL-PIM-ROUTERS of IPv6 (ff02::d), where PIMv6 hellos go.
pub const ALL_PIM_ROUTERS6: [u8; 16] = [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0d];
/// IPv6 next header of ICMPv6, which carries MLD.
pub const IPPROTO_ICMPV6: u8 = 58;
/// ICMPv6 types of MLD (RFC 2710 §3: query, v1 report, done; RFC 3810 §5:
/// v2 report), handed to the control plane.
pub const MLD_TYPES: [u8; 4] = [130, 131, 132, 143];
/// IPv6 extension headers the program walks past, at most this many: a
/// longer chain is not parsed (see `counter::IPV6_LONG_CHAIN`).
pub const MAX_IPV6_EXT_HEADERS: u32 = 6;

/// Key of the group map: (VLAN, IPv4 group). VLAN 0 = untagged.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct GroupKey {
    pub vlan: u16,
    pub _pad: u16,
    /// Group address in network byte order, as on the wire.
    pub group: [u8; 4],
}

impl GroupKey {
    pub const fn new(vlan: u16, group: [u8; 4]) -> Self {
        Self {
            vlan,
            _pad: 0,
            group,
        }
    }
}

/// A reference to a port set, the value of every map that points at one
/// (GROUPS, SOURCES, GROUPS6, SOURCES6, FLOOD_SETS, ROUTER_SETS): the slot
/// of the port-set array, how many ports that set holds (for the copies
/// counter, without walking the devmap), and how the copies leave. `copies
/// == 0` (with `set == NO_SET`): nobody receives it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SetRef {
    pub set: u32,
    /// At most MAX_PORTS.
    pub copies: u8,
    /// `set_flags::*`: SOURCES and the format (`set_flags::FORMAT`).
    pub flags: u8,
    /// 1 + the index of the set's only port that wants the VLAN untagged,
    /// 0 when none or several: a frame from that port sees a uniformly
    /// tagged set (the port is left out of its own copies).
    pub solo_untagged: u8,
    /// Likewise for the set's only port that wants it tagged.
    pub solo_tagged: u8,
}

impl SetRef {
    /// The set's format (`set_flags::AS_IS` ... `MIXED`) for a frame from
    /// port `port`, which never gets a copy: a MIXED set whose only port of
    /// one kind is the ingress port is uniform for that frame.
    #[inline(always)]
    pub fn format_from(&self, port: u32) -> u8 {
        let format = self.flags & set_flags::FORMAT;
        if format != set_flags::MIXED {
            return format;
        }
        if u32::from(self.solo_untagged) == port + 1 {
            set_flags::TAGGED
        } else if u32::from(self.solo_tagged) == port + 1 {
            set_flags::UNTAGGED
        } else {
            set_flags::MIXED
        }
    }
}

/// Traffic a stream brought in: frames and bytes, per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCount {
    pub frames: u64,
    pub bytes: u64,
}

pub mod set_flags {
    /// Some source of this group has an entry of its own in SOURCES: the
    /// program looks the frame's source up there, and uses the group's set
    /// only when it is not found. Groups without it cost one lookup only.
    pub const SOURCES: u8 = 1;
    /// The two bits of the format: how the set's ports want the frame's
    /// VLAN. AS_IS: leave the frame as it came (no port has VLAN config,
    /// or the set serves VLANs only VLAN-unaware ports carry).
    pub const FORMAT: u8 = 0b110;
    pub const AS_IS: u8 = 0;
    /// Every port wants it untagged: the program pops a tag.
    pub const UNTAGGED: u8 = 0b010;
    /// Every port wants it tagged: the program pushes (or fixes) the tag.
    pub const TAGGED: u8 = 0b100;
    /// Some want it tagged, some untagged: the frame goes to the TC program,
    /// which gives each copy its own format.
    pub const MIXED: u8 = 0b110;
}

/// Key of the source map: (VLAN, IPv4 group, IPv4 source), 12 bytes; value
/// `SetRef`.
///
/// IPv4 only, on purpose: the key stays small (it is hashed per frame of a
/// group with source entries). IPv6 (MLD) gets a map of its own with 16-byte
/// addresses, the same value type and the same port-set pool; the group
/// entry's `set_flags::SOURCES` means the same there.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SourceKey {
    pub vlan: u16,
    pub _pad: u16,
    /// Group address in network byte order.
    pub group: [u8; 4],
    /// Source address in network byte order.
    pub source: [u8; 4],
}

impl SourceKey {
    pub const fn new(vlan: u16, group: [u8; 4], source: [u8; 4]) -> Self {
        Self {
            vlan,
            _pad: 0,
            group,
            source,
        }
    }

    /// The (VLAN, group) this source entry belongs to.
    pub const fn group_key(&self) -> GroupKey {
        GroupKey::new(self.vlan, self.group)
    }
}

/// Key of the IPv6 group map: (VLAN, IPv6 group), 20 bytes. A map of its
/// own, so that the IPv4 keys stay 8 bytes; the value is the same.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Group6Key {
    pub vlan: u16,
    pub _pad: u16,
    /// Group address in network byte order, as on the wire.
    pub group: [u8; 16],
}

impl Group6Key {
    pub const fn new(vlan: u16, group: [u8; 16]) -> Self {
        Self {
            vlan,
            _pad: 0,
            group,
        }
    }
}

/// Key of the IPv6 source map (MLDv2 source filters, RFC 3810): (VLAN,
/// group, source), 36 bytes; value `SetRef`, port sets from the same
/// pool. `set_flags::SOURCES` on the group's `Group6Key` entry means the
/// same as for IPv4.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Source6Key {
    pub vlan: u16,
    pub _pad: u16,
    /// Group address in network byte order.
    pub group: [u8; 16],
    /// Source address in network byte order.
    pub source: [u8; 16],
}

impl Source6Key {
    pub const fn new(vlan: u16, group: [u8; 16], source: [u8; 16]) -> Self {
        Self {
            vlan,
            _pad: 0,
            group,
            source,
        }
    }

    /// The (VLAN, group) this source entry belongs to.
    pub const fn group_key(&self) -> Group6Key {
        Group6Key::new(self.vlan, self.group)
    }
}

/// Key of the MAC table: (MAC, VLAN).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct MacKey {
    pub mac: [u8; 6],
    pub vlan: u16,
}

/// Value of the MAC table: where the MAC was last seen, and when.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MacEntry {
    pub ifindex: u32,
    pub _pad: u32,
    /// bpf_ktime_get_ns() of the last refresh (refreshed at most once a second).
    pub seen_ns: u64,
}

/// Value of the port map (keyed by ifindex).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PortConf {
    /// Port index 0..MAX_PORTS: the bit in the control plane's port bitmaps.
    pub index: u32,
    /// `port_flags::*`.
    pub flags: u32,
    /// With `port_flags::VLANS`: the VLAN of untagged frames in, which
    /// leaves the port untagged; 0: none (untagged frames are dropped).
    pub pvid: u16,
    pub _pad: u16,
}

pub mod port_flags {
    /// The program runs on this port in generic (skb) mode, not native; the
    /// program does not read it, the control plane keeps it with the pinned
    /// state so that a restarted daemon knows.
    pub const GENERIC: u32 = 1;
    /// The port has VLAN config: it carries exactly the VLANs of its
    /// `PORT_VLANS` entry. Without it the port is VLAN-unaware.
    pub const VLANS: u32 = 2;
}

/// Value of `PORT_VLANS` (an array by port index): which VLANs the port
/// carries, and what the TC program needs to send it a copy.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortVlanConf {
    pub ifindex: u32,
    /// As `PortConf::pvid`.
    pub pvid: u16,
    /// 1: the port has VLAN config (`carried` applies); 0: VLAN-unaware.
    pub configured: u16,
    /// Bit v (word v / 64, bit v % 64): the port carries VLAN v.
    pub carried: [u64; VLAN_WORDS],
}

impl Default for PortVlanConf {
    fn default() -> Self {
        Self {
            ifindex: 0,
            pvid: 0,
            configured: 0,
            carried: [0; VLAN_WORDS],
        }
    }
}

impl PortVlanConf {
    #[inline(always)]
    pub fn carries(&self, vlan: u16) -> bool {
        let word = usize::from(vlan >> 6) & (VLAN_WORDS - 1);
        self.carried[word] >> (vlan & 63) & 1 != 0
    }

    /// Whether frames of `vlan` leave this port untagged: its PVID's with
    /// VLAN config, VLAN 0's without.
    #[inline(always)]
    pub fn untagged(&self, vlan: u16) -> bool {
        if self.configured != 0 {
            self.pvid == vlan
        } else {
            vlan == 0
        }
    }
}

/// Value of `VLAN_PORTS` (by VLAN; `ANY_VLAN` for every VLAN no port has
/// config for, VLAN 0 included only when some port has): the ports that
/// carry the VLAN and those of them that want it untagged. Written by the
/// control plane when a port's VLANs change; fast join and fast leave
/// shape the sets they write with it, as the control plane shapes its own
/// ([`VlanPorts::shape`] is that one code).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct VlanPorts {
    pub carry: u64,
    pub untagged: u64,
}

/// A set of ports shaped for a VLAN: its ports, its format
/// (`set_flags::FORMAT` bits) and its solo ports (as in [`SetRef`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Shaped {
    pub mask: u64,
    pub format: u8,
    pub solo_untagged: u8,
    pub solo_tagged: u8,
}

impl VlanPorts {
    /// `want` (ports wanted for this VLAN) restricted to the ports that
    /// carry it, with the format they want it in: all untagged, all
    /// tagged, MIXED, or AS_IS when empty.
    #[inline(always)]
    pub fn shape(&self, want: u64) -> Shaped {
        let mask = want & self.carry;
        let (plain, tagged) = (mask & self.untagged, mask & !self.untagged);
        let format = match (plain != 0, tagged != 0) {
            (true, true) => set_flags::MIXED,
            (true, false) => set_flags::UNTAGGED,
            (false, true) => set_flags::TAGGED,
            (false, false) => set_flags::AS_IS,
        };
        Shaped {
            mask,
            format,
            solo_untagged: solo(plain),
            solo_tagged: solo(tagged),
        }
    }
}

/// 1 + the index of the only port of `mask`, 0 when none or several.
#[inline(always)]
fn solo(mask: u64) -> u8 {
    if mask != 0 && mask & (mask - 1) == 0 {
        // At most 64.
        mask.trailing_zeros() as u8 + 1
    } else {
        0
    }
}

/// Key of `ROUTER_SETS`: (VLAN or ANY_VLAN, FAMILY_IPV4 or FAMILY_IPV6).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RouterKey {
    pub vlan: u16,
    pub family: u16,
}

/// What the XDP program leaves in a frame's metadata for the TC program
/// (a frame of a MIXED set, untagged, handed on with XDP_PASS).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TcMeta {
    /// TC_MAGIC.
    pub magic: u32,
    /// The port-set slot (its ports in MASKS).
    pub set: u32,
    pub vlan: u16,
    pub _pad: u16,
}

/// Global switch configuration, the single entry of the config array.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SwitchConf {
    /// 1: unregistered IPv4 and IPv6 multicast is flooded; 0: only to router ports.
    pub flood_unregistered: u32,
    /// Max control frames per second per port sent to userspace (0 = no limit).
    pub control_rate_pps: u32,
    /// 1: some port has VLAN config: the program enforces it at ingress
    /// and gives each copy its port's format; 0: every VLAN lookup is
    /// skipped and frames leave as they came (as before VLAN support).
    pub vlans: u32,
    /// 1: count each replicated stream's frames and bytes in STREAMS.
    pub count_streams: u32,
    /// 1: snoop IPv6 (MLD to the control plane, groups by GROUPS6 and
    /// SOURCES6); 0: every IPv6 multicast frame is flooded, MLD included,
    /// as before IPv6 snooping (for a control plane that does not speak
    /// MLD: swallowing MLD would cut hosts off their multicast routers).
    pub snoop_ipv6: u32,
    /// 1: the program applies (*,G) joins itself ("fast join", see
    /// ebpf/xdp/src/fast_join.rs) from ports in `fast_join_ports`, and
    /// tells the daemon of each write through FAST_JOINS.
    pub fast_join: u32,
    /// Ports whose joins the program may apply (the daemon keeps it:
    /// not at a group limit, table not full).
    pub fast_join_ports: u64,
}

/// What the program tells the daemon for every group entry it wrote
/// (FAST_JOINS ring buffer): the daemon then rewrites that entry with
/// what its engine wants, whatever the program wrote.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FastJoinEvent {
    /// `FAMILY_IPV4` or `FAMILY_IPV6`.
    pub family: u16,
    pub vlan: u16,
    /// The group, network byte order; an IPv4 group in the first 4 bytes.
    pub group: [u8; 16],
    /// `FAST_JOIN` or `FAST_LEAVE`: what the program applied (the daemon
    /// rewrites the entry either way; the kind is for its counters).
    pub kind: u16,
    pub _pad: u16,
}

/// `FastJoinEvent::kind` of a join the program applied.
pub const FAST_JOIN: u16 = 0;
/// `FastJoinEvent::kind` of a leave the program applied.
pub const FAST_LEAVE: u16 = 1;

/// Key of LEAVE_HOSTS (fast leave in the program): (VLAN, family, port,
/// group), 24 bytes. An IPv4 group in the first 4 bytes of `group`, the
/// rest zero.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LeaveKey {
    pub vlan: u16,
    /// `FAMILY_IPV4` or `FAMILY_IPV6`.
    pub family: u16,
    /// The port index (its bit in a port mask).
    pub port: u32,
    pub group: [u8; 16],
}

impl LeaveKey {
    pub const fn new(vlan: u16, family: u16, port: u32, group: [u8; 16]) -> Self {
        Self {
            vlan,
            family,
            port,
            group,
        }
    }
}

/// Value of LEAVE_HOSTS: the one host the control plane has for the
/// key's group on the key's port, a plain (*,G) member (EXCLUDE {}), on
/// a fast-leave port. The program applies a leave of that group from
/// that port only when it comes from this MAC.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LeaveHost {
    pub mac: [u8; 6],
    /// 1: the port is the group's only member port (the control plane's
    /// own ports, router ports not counted): after the leave the group has
    /// no member, and the program deletes its entry as the control plane
    /// would.
    pub last: u8,
    pub _pad: u8,
}

/// Per-port state the program keeps for the control-frame rate limiter.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RateState {
    pub window_start_ns: u64,
    pub count: u64,
}

/// Per-port counters: the counter array index is `port * COUNTER_COUNT + counter`.
pub mod counter {
    pub const RX: u32 = 0;
    /// Known unicast sent to its one port.
    pub const FORWARDED: u32 = 1;
    /// Registered-group frames replicated (frames, not copies).
    pub const REPLICATED: u32 = 2;
    /// Copies made for registered groups (the ingress port, when a member
    /// of the set, gets none and is not counted).
    pub const REPLICATED_COPIES: u32 = 3;
    /// Frames flooded (broadcast, unknown unicast, link-local and unregistered multicast).
    pub const FLOODED: u32 = 4;
    /// Unregistered multicast sent to router ports only (flooding off).
    pub const TO_ROUTERS: u32 = 5;
    /// IGMP, MLD, PIM hellos (and IPv6 chains too long to parse) handed to
    /// the control plane.
    pub const TO_CONTROL: u32 = 6;
    pub const DROP_SHORT_ETH: u32 = 7;
    pub const DROP_SHORT_VLAN: u32 = 8;
    /// IPv4 header truncated or IHL < 5: switched by L2 header only, never snooped.
    pub const BAD_IPV4: u32 = 9;
    /// Unicast whose destination was learned on the ingress port (filtered, as a bridge does).
    pub const DROP_SAME_PORT: u32 = 10;
    /// Control frame but no AF_XDP socket is bound for this port/queue.
    pub const DROP_NO_SOCKET: u32 = 11;
    /// Control frames over the per-port rate limit.
    pub const DROP_RATE_LIMIT: u32 = 12;
    /// Unregistered multicast with flooding off and no router port.
    pub const DROP_NO_ROUTER: u32 = 13;
    /// A redirect helper refused the frame.
    pub const DROP_REDIRECT: u32 = 14;
    /// Frames whose source had an entry of its own (S,G) in a group with
    /// source entries: then replicated to its set, or dropped when empty.
    pub const SOURCE_MATCHED: u32 = 15;
    /// A registered group or source whose port set is empty: no member wants
    /// it and there is no router port.
    pub const DROP_NO_MEMBER: u32 = 16;
    /// IPv6 header or one of its extension headers truncated, or an
    /// ICMPv6 header cut short: switched by the L2 header only (flooded),
    /// never snooped, like a bad IPv4 header. Such a frame cannot be a
    /// valid MLD message.
    pub const BAD_IPV6: u32 = 17;
    /// IPv6 multicast whose extension-header chain is longer than the
    /// program walks (`MAX_IPV6_EXT_HEADERS`): it might hide MLD, which must
    /// never be forwarded as data, so it goes to the control plane (within
    /// the rate limit, also counted as `to_control` or its drop), which can
    /// walk the whole chain; it is not forwarded.
    pub const IPV6_LONG_CHAIN: u32 = 18;
    /// A frame for a VLAN its port does not carry, or untagged on a port
    /// with VLAN config and no PVID: dropped.
    pub const DROP_VLAN: u32 = 19;
    /// Frames of a set whose ports want its VLAN some tagged, some
    /// untagged, handed to the TC program.
    pub const TO_TC: u32 = 20;
    /// Copies the TC program sent (bpf_clone_redirect), by ingress port.
    pub const TC_COPIES: u32 = 21;
    /// Copies the TC program could not send (the kernel refused the clone
    /// or the tag).
    pub const TC_DROP: u32 = 22;
    /// Joins the program applied itself (fast join): a group entry written
    /// from a report, before the daemon saw it.
    pub const FAST_JOIN: u32 = 23;
    /// Frames the TC program switched itself because the XDP program never
    /// saw them: generic-mode XDP skips an skb another device redirected
    /// here (a neighbour igmpsnoop's TC copies over a veth, `tc mirred`),
    /// so TC makes the same decision for it (also counted in `rx` and
    /// the decision's counters; its copies in `tc_copies`).
    pub const TC_RX: u32 = 24;
    /// Control frames (IGMP, MLD, PIM hellos) among those: the AF_XDP
    /// socket cannot be reached from TC, so they are dropped.
    pub const DROP_TC_CONTROL: u32 = 25;
    /// Leaves the program applied itself (fast leave): a member port taken
    /// out of a group entry (or the entry deleted) from a leave, before
    /// the daemon saw it.
    pub const FAST_LEAVE: u32 = 26;
    pub const COUNT: u32 = 27;

    /// Stable names, for the CLI and JSON.
    pub const NAMES: [&str; COUNT as usize] = [
        "rx",
        "forwarded",
        "replicated",
        "replicated_copies",
        "flooded",
        "to_routers",
        "to_control",
        "drop_short_eth",
        "drop_short_vlan",
        "bad_ipv4",
        "drop_same_port",
        "drop_no_socket",
        "drop_rate_limit",
        "drop_no_router",
        "drop_redirect",
        "source_matched",
        "drop_no_member",
        "bad_ipv6",
        "ipv6_long_chain",
        "drop_vlan",
        "to_tc",
        "tc_copies",
        "tc_drop",
        "fast_join",
        "tc_rx",
        "drop_tc_control",
        "fast_leave",
    ];
}

pub const COUNTERS_SIZE: u32 = MAX_PORTS * counter::COUNT;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are #[repr(C)] plain data with explicit padding
    // fields, so every bit pattern is valid and there are no implicit holes.
    unsafe impl aya::Pod for super::GroupKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SetRef {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SourceKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PortVlanConf {}
    // SAFETY: repr(C), two u64: no padding.
    unsafe impl aya::Pod for super::VlanPorts {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RouterKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Group6Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Source6Key {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::MacKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::MacEntry {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PortConf {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::SwitchConf {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::RateState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::FastJoinEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LeaveKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::LeaveHost {}
    // SAFETY: #[repr(C)], two u64: no padding, every bit pattern valid.
    unsafe impl aya::Pod for super::StreamCount {}
}
