//! IPv4: the multicast decision (IGMP and PIM hellos up, 224.0.0.0/24
//! flooded, groups replicated) and IGMP to a unicast MAC.

use igmpsnoop_common::{
    ALL_PIM_ROUTERS, FAMILY_IPV4, GroupKey, IPPROTO_IGMP, IPPROTO_PIM, SourceKey, counter,
};

use crate::{
    Frame, Out,
    counters::count,
    flood,
    group::{count_stream, registered, unregistered},
    maps::{GROUPS, SOURCES, STREAMS},
    pkt::Packet,
};

pub(crate) const IPV4_MIN_HLEN: usize = 20;

/// IPv4 multicast: control frames up, link-local flooded, groups replicated.
#[inline(always)]
pub(crate) fn ipv4_multicast<P: Packet>(ctx: &P, l3: usize, end: usize, f: &Frame) -> Out {
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
            return Out::report(FAMILY_IPV4, l3 - ctx.data(), l4 - ctx.data());
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

/// IPv4 to a unicast MAC: only IGMP is of interest here.
#[inline(always)]
pub(crate) fn ipv4_control(l3: usize, end: usize) -> Out {
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
