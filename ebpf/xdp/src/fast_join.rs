//! Fast join: the program applies a host's (*,G) join itself, in the
//! softirq that received the report, instead of waiting for the daemon to
//! wake up, and tells the daemon of every group entry it wrote.
//!
//! The daemon stays the one authority: the report still goes to it (the
//! caller redirects it to the AF_XDP socket right after), and every entry
//! written here is reported through the FAST_JOINS ring buffer, so the
//! daemon rewrites that entry with what its engine wants, whatever was
//! written here (dataplane/src/forwarding, `touch`). A join is applied only
//! when all of these hold, otherwise nothing is done and the daemon handles
//! the join as it always did:
//!
//! - fast join is on and the port is in `SwitchConf::fast_join_ports`
//!   (the daemon leaves out ports at a group limit, and every port when
//!   the table is full);
//! - the group is snooped (not 224.0.0.0/24, not an IPv6 scope 0-2 group:
//!   RFC 4541 §2.1.2, as the engine) and has no source entries (its entry
//!   has no `set_flags::SOURCES`: source filters are the engine's work);
//! - a published port set holds exactly the new set (SLOTS: the program
//!   never writes a port set, it only points an entry at one);
//! - a ring buffer event can be reserved: no write the daemon would not
//!   learn of;
//! - the report passes the engine's own checks (`report_check`: checksums,
//!   TTL or hop limit 1, Router Alert, addresses), so the program never
//!   applies what the engine rejects.
//!
//! Joins are IGMPv1/v2 reports, IGMPv3 records MODE_IS_EXCLUDE and
//! CHANGE_TO_EXCLUDE_MODE with no source (RFC 3376 §4.2.12: a (*,G) join),
//! MLDv1 reports and the same MLDv2 records (RFC 3810 §5.2.12), one code
//! path for both families. At most `FAST_JOIN_MAX_RECORDS` records of a
//! report are looked at, and none past a record that carries sources or
//! auxiliary data (its length varies; the daemon handles those).
//!
//! The same walk finds leaves (IGMPv2 leaves, MLDv1 dones, TO_IN({})
//! records) for `fast_leave`, which applies them under rules of its own.
use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    btf_maps::{HashMap, RingBuf},
    macros::btf_map,
    programs::XdpContext,
};
use igmpsnoop_common::{
    ANY_VLAN, FAMILY_IPV4, FAMILY_IPV6, FAST_JOIN, FAST_JOIN_MAX_RECORDS, FAST_JOIN_RING_BYTES,
    FastJoinEvent, Group6Key, GroupKey, MAX_PORT_SETS, NO_SET, SetRef, Shaped, SwitchConf, counter,
    set_flags,
};

use crate::{
    Frame, Out, VLAN_HLEN, control_format,
    counters::count,
    fast_leave,
    group::router_set,
    maps::{CONFIG, GROUPS, GROUPS6, MASKS, VLAN_PORTS},
    report_check,
};
/// Port mask -> a published slot that holds exactly it; the daemon deletes
/// an entry before it rewrites the slot for another set.
#[btf_map]
pub(crate) static SLOTS: HashMap<u64, u32, { MAX_PORT_SETS as usize }> = HashMap::new();
/// One event per group entry written here or by `fast_leave`, for the
/// daemon.
#[btf_map]
pub(crate) static FAST_JOINS: RingBuf<FastJoinEvent, { FAST_JOIN_RING_BYTES as usize }> =
    RingBuf::new();

/// Flags of every submit and discard on FAST_JOINS: the reader is not
/// woken. The kernel wakes it through irq_work, a self-IPI, which took
/// 20-50 µs of the report's softirq on this project's VMs (perf:
/// `native_write_msr` under `bpf_ringbuf_submit`), delaying the frames
/// behind the report. The report, redirected to the daemon's socket right
/// after the event, wakes the daemon anyway; if it does not get there, the
/// daemon reads the event in its next round (at most 200 ms: every round
/// drains the ring).
pub(crate) const RING_NO_WAKEUP: u64 = BPF_RB_NO_WAKEUP as u64;

const IGMP_V1_REPORT: u8 = 0x12;
const IGMP_V2_REPORT: u8 = 0x16;
const IGMP_V3_REPORT: u8 = 0x22;
/// RFC 2236 §2.1.
const IGMP_V2_LEAVE: u8 = 0x17;
const MLD_V1_REPORT: u8 = 131;
/// RFC 2710 §3.
const MLD_V1_DONE: u8 = 132;
const MLD_V2_REPORT: u8 = 143;
/// RFC 3376 §4.2.12 / RFC 3810 §5.2.12 record types that, with no source,
/// are a (*,G) join.
const MODE_IS_EXCLUDE: u8 = 2;
const CHANGE_TO_EXCLUDE_MODE: u8 = 4;
/// RFC 3376 §4.2.12 / RFC 3810 §5.2.12: with no source, a leave (RFC 3376
/// §6.4.2: TO_IN({}) lowers the group timer as a v2 leave does).
const CHANGE_TO_INCLUDE_MODE: u8 = 3;

/// An address family's group map.
pub(crate) trait Family: Copy {
    const FAMILY: u16;
    fn entry(vlan: u16, group: Self) -> Option<SetRef>;
    fn write(vlan: u16, group: Self, entry: SetRef) -> Result<(), i32>;
    fn delete(vlan: u16, group: Self) -> Result<(), i32>;
    fn snooped(&self) -> bool;
    fn event_group(&self) -> [u8; 16];
}

impl Family for [u8; 4] {
    const FAMILY: u16 = FAMILY_IPV4;
    fn entry(vlan: u16, group: Self) -> Option<SetRef> {
        // SAFETY: copied out at once (no-prealloc: never recycled under us).
        unsafe { GROUPS.get(GroupKey::new(vlan, group)) }.copied()
    }
    fn write(vlan: u16, group: Self, entry: SetRef) -> Result<(), i32> {
        GROUPS.insert(GroupKey::new(vlan, group), entry, 0)
    }
    fn delete(vlan: u16, group: Self) -> Result<(), i32> {
        GROUPS.remove(GroupKey::new(vlan, group))
    }
    fn snooped(&self) -> bool {
        self[0] & 0xf0 == 0xe0 && !(self[0] == 224 && self[1] == 0 && self[2] == 0)
    }
    fn event_group(&self) -> [u8; 16] {
        let mut g = [0; 16];
        g[..4].copy_from_slice(self);
        g
    }
}

impl Family for [u8; 16] {
    const FAMILY: u16 = FAMILY_IPV6;
    fn entry(vlan: u16, group: Self) -> Option<SetRef> {
        // SAFETY: copied out at once (no-prealloc: never recycled under us).
        unsafe { GROUPS6.get(Group6Key::new(vlan, group)) }.copied()
    }
    fn write(vlan: u16, group: Self, entry: SetRef) -> Result<(), i32> {
        GROUPS6.insert(Group6Key::new(vlan, group), entry, 0)
    }
    fn delete(vlan: u16, group: Self) -> Result<(), i32> {
        GROUPS6.remove(Group6Key::new(vlan, group))
    }
    fn snooped(&self) -> bool {
        self[0] == 0xff && self[1] & 0x0f > 2
    }
    fn event_group(&self) -> [u8; 16] {
        *self
    }
}

/// A control frame about to go to the daemon: if `out` says it is an IGMP
/// or MLD message (`Out::report`) the engine would accept
/// (`report_check`), its joins and leaves. On a switch with VLAN config
/// the frame may carry a tag it did not have when it was parsed (the
/// daemon reads every VLAN from the tag: `control_format`), which moved
/// its headers on.
#[inline(always)]
pub(crate) fn report(ctx: &XdpContext, out: &Out, f: &Frame) {
    if out.report == 0 {
        return;
    }
    let pushed = f.vlans && !f.tagged && control_format(f) == set_flags::TAGGED;
    let shift = if pushed { VLAN_HLEN } else { 0 };
    // Bounded for the verifier; headers this far in are not a report's.
    let (l3_off, l4_off) = (out.arg as usize + shift, usize::from(out.l4) + shift);
    if l3_off > 68 || l4_off > 516 {
        return;
    }
    let (l3, l4, end) = (ctx.data() + l3_off, ctx.data() + l4_off, ctx.data_end());
    if ctx.data() + 14 > end {
        return;
    }
    // SAFETY: the Ethernet header is in bounds (checked above); the
    // source MAC is at 6.
    let from = Sender {
        vlan: f.vlan,
        port: f.port,
        mac: unsafe { *((ctx.data() + 6) as *const [u8; 6]) },
    };
    if out.report == FAMILY_IPV4 {
        let Some(msg_end) = report_check::igmp(ctx, l3, l4) else {
            return;
        };
        if l3 + 20 > end {
            return;
        }
        // SAFETY: in bounds (checked just above); the destination is at 16.
        let daddr = unsafe { *((l3 + 16) as *const [u8; 4]) };
        igmp(l4, Bounds { msg_end, end }, daddr, &from);
    } else {
        let Some(msg_end) = report_check::mld(ctx, l3, l4) else {
            return;
        };
        mld(l4, Bounds { msg_end, end }, &from);
    }
}

/// Where a message ends (`msg_end`, from the IP length: frame padding
/// excluded) and where the frame does (`end`, what the verifier bounds
/// reads by): every read is checked against both.
#[derive(Clone, Copy)]
struct Bounds {
    msg_end: usize,
    end: usize,
}

impl Bounds {
    #[inline(always)]
    fn short(&self, at: usize) -> bool {
        at > self.end || at > self.msg_end
    }
}

/// Where a report or leave came from: its VLAN, port and source MAC (the
/// host, as the daemon tracks hosts).
pub(crate) struct Sender {
    pub vlan: u16,
    pub port: u32,
    pub mac: [u8; 6],
}

/// An IGMP message at `l4` (IPv4 destination `daddr`) from `from`, about
/// to go to the daemon.
#[inline(always)]
fn igmp(l4: usize, b: Bounds, daddr: [u8; 4], from: &Sender) {
    if b.short(l4 + 8) {
        return;
    }
    // SAFETY: the 8 bytes at l4 are in bounds (checked above).
    let kind = unsafe { *(l4 as *const u8) };
    match kind {
        IGMP_V1_REPORT | IGMP_V2_REPORT => {
            // SAFETY: as above.
            let group: [u8; 4] = unsafe { *((l4 + 4) as *const [u8; 4]) };
            // RFC 2236 §2.1: a report is sent to the group it reports.
            if group == daddr {
                join(from.vlan, group, from.port);
            }
        }
        IGMP_V2_LEAVE => {
            // SAFETY: as above. RFC 2236 §3: the group left is in the
            // message (the leave goes to all-routers).
            let group: [u8; 4] = unsafe { *((l4 + 4) as *const [u8; 4]) };
            fast_leave::leave(group, from);
        }
        IGMP_V3_REPORT => records::<4>(l4, b, from),
        _ => {}
    }
}

/// An MLD message (ICMPv6) at `l4` from `from`.
#[inline(always)]
fn mld(l4: usize, b: Bounds, from: &Sender) {
    if b.short(l4 + 8) {
        return;
    }
    // SAFETY: the 8 bytes at l4 are in bounds (checked above).
    let kind = unsafe { *(l4 as *const u8) };
    match kind {
        MLD_V1_REPORT | MLD_V1_DONE => {
            if b.short(l4 + 24) {
                return;
            }
            // SAFETY: checked just above (RFC 2710 §3: the address at 8).
            let group: [u8; 16] = unsafe { *((l4 + 8) as *const [u8; 16]) };
            if kind == MLD_V1_REPORT {
                join(from.vlan, group, from.port);
            } else {
                fast_leave::leave(group, from);
            }
        }
        MLD_V2_REPORT => records::<16>(l4, b, from),
        _ => {}
    }
}

/// The group records of an IGMPv3 (N = 4) or MLDv2 (N = 16) report: the
/// two share the header (type, reserved, checksum, reserved, number of
/// records at 6) and the record layout (type, aux length, number of
/// sources, group at 4).
#[inline(always)]
fn records<const N: usize>(l4: usize, b: Bounds, from: &Sender)
where
    [u8; N]: Family,
{
    // SAFETY: the caller checked 8 bytes at l4.
    let n = u32::from(u16::from_be(unsafe { *((l4 + 6) as *const u16) }));
    let mut at = l4 + 8;
    for i in 0..FAST_JOIN_MAX_RECORDS {
        if i >= n || b.short(at + 4 + N) {
            return;
        }
        // SAFETY: the 4 + N bytes at `at` are in bounds (checked above).
        let (kind, aux, sources) = unsafe {
            (
                *(at as *const u8),
                *((at + 1) as *const u8),
                *((at + 2) as *const u16),
            )
        };
        if aux != 0 || sources != 0 {
            // Sources: not a (*,G) join, and the next record's place
            // varies: the daemon handles this one and the rest.
            return;
        }
        // SAFETY: as above.
        let group: [u8; N] = unsafe { *((at + 4) as *const [u8; N]) };
        if kind == MODE_IS_EXCLUDE || kind == CHANGE_TO_EXCLUDE_MODE {
            join(from.vlan, group, from.port);
        } else if kind == CHANGE_TO_INCLUDE_MODE {
            fast_leave::leave(group, from);
        }
        at += 4 + N;
    }
}

/// Adds `port` to (vlan, group) when everything the module documentation
/// lists allows it.
#[inline(always)]
fn join<A: Family>(vlan: u16, group: A, port: u32) {
    let Some(conf) = CONFIG.get(0) else {
        return;
    };
    let Some(bit) = 1u64.checked_shl(port) else {
        return;
    };
    if conf.fast_join == 0 || conf.fast_join_ports & bit == 0 || !group.snooped() {
        return;
    }
    let ports = match A::entry(vlan, group) {
        Some(e) if e.flags & set_flags::SOURCES != 0 => return,
        Some(e) if e.copies == 0 || e.set == NO_SET => 0,
        Some(e) => match MASKS.get(e.set) {
            Some(mask) => *mask,
            None => return,
        },
        None => router_ports(vlan, A::FAMILY),
    };
    if ports & bit != 0 {
        return;
    }
    let Some(entry) = entry_of(conf, vlan, ports | bit) else {
        return;
    };
    let Some(mut event) = FAST_JOINS.reserve(0) else {
        return;
    };
    if A::write(vlan, group, entry).is_err() {
        // The map is full: the daemon handles the join (and the limit).
        event.discard(RING_NO_WAKEUP);
        return;
    }
    event.write(FastJoinEvent {
        family: A::FAMILY,
        vlan,
        group: group.event_group(),
        kind: FAST_JOIN,
        _pad: 0,
    });
    event.submit(RING_NO_WAKEUP);
    count(port, counter::FAST_JOIN);
}

/// The group entry for the ports `want` on `vlan`, as the control plane
/// would write it (no source entries): the set shaped for the VLAN on a
/// switch with VLAN config (dataplane/src/forwarding/vlans.rs uses the
/// same `VlanPorts::shape`), as is without. None when no published set
/// holds exactly those ports, when `want` has a port that does not carry
/// the VLAN (never, for sets the control plane wrote and a port that took
/// the report), or when the shape of the VLAN is not known.
#[inline(always)]
pub(crate) fn entry_of(conf: &SwitchConf, vlan: u16, want: u64) -> Option<SetRef> {
    let shaped = if conf.vlans == 0 {
        Shaped {
            mask: want,
            ..Shaped::default()
        }
    } else {
        // SAFETY: copied out at once (the daemon replaces whole entries).
        let ports = unsafe { VLAN_PORTS.get(vlan).or_else(|| VLAN_PORTS.get(ANY_VLAN)) };
        ports.copied()?.shape(want)
    };
    if shaped.mask != want {
        return None;
    }
    // SAFETY: copied out at once (the daemon only replaces whole entries).
    let slot = unsafe { SLOTS.get(want) }.copied()?;
    Some(SetRef {
        set: slot,
        // At most 64.
        copies: want.count_ones() as u8,
        flags: shaped.format,
        solo_untagged: shaped.solo_untagged,
        solo_tagged: shaped.solo_tagged,
    })
}

/// The router ports a new group of `family` in `vlan` gets (every set has
/// them, RFC 4541 §2.1.2): its router set's ports, none without one.
#[inline(always)]
pub(crate) fn router_ports(vlan: u16, family: u16) -> u64 {
    match router_set(vlan, family) {
        Some(r) if r.copies != 0 && r.set != NO_SET => MASKS.get(r.set).copied().unwrap_or(0),
        _ => 0,
    }
}
