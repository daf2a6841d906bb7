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

mod counters;
mod fast_join;
mod fast_leave;
mod group;
mod ipv4;
mod ipv6;
mod maps;
mod pkt;
mod rate;
mod report_check;
mod tag;
mod tc;

use aya_ebpf::{
    bindings::{BPF_F_BROADCAST, BPF_F_EXCLUDE_INGRESS, xdp_action},
    helpers::{bpf_ktime_get_ns, bpf_redirect},
    macros::xdp,
    programs::XdpContext,
};
use igmpsnoop_common::{
    MAX_QUEUES, MacEntry, MacKey, PortConf, SetRef, counter, port_flags, set_flags,
};

use crate::{
    counters::count,
    ipv4::{ipv4_control, ipv4_multicast},
    ipv6::{ipv6_control, ipv6_multicast, snoop_ipv6},
    maps::{CONFIG, FLOOD, FLOOD_SETS, MACS, PORT_SETS, PORT_VLANS, PORTS, XSKS},
    pkt::Packet,
    rate::within_rate,
};

pub(crate) const ETH_HLEN: usize = 14;
pub(crate) const VLAN_HLEN: usize = 4;
const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
pub(crate) const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
pub(crate) const NS_PER_SEC: u64 = 1_000_000_000;
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
    /// `out::CONTROL` for a report: where its IP header starts, from the
    /// frame's first byte.
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

    /// A report for the control plane that fast join may apply first:
    /// its IP header at `l3`, its IGMP or ICMPv6 header at `l4` (from the
    /// frame's first byte).
    fn report(family: u16, l3: usize, l4: usize) -> Out {
        Out {
            kind: out::CONTROL,
            set: NO_REF,
            arg: l3 as u32,
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
pub(crate) fn control_format(f: &Frame) -> u8 {
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
pub(crate) fn flood(port: u32) -> Out {
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
