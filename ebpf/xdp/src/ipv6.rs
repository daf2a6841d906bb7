//! IPv6: the multicast decision (MLD and PIMv6 hellos up, ff02::/16
//! flooded, groups replicated), MLD to a unicast MAC, and the bounded walk
//! of the extension headers to the upper-layer protocol.

use igmpsnoop_common::{
    ALL_PIM_ROUTERS6, FAMILY_IPV6, Group6Key, IPPROTO_ICMPV6, IPPROTO_PIM, MAX_IPV6_EXT_HEADERS,
    MLD_TYPES, Source6Key, counter,
};

use crate::{
    Frame, Out,
    counters::count,
    flood,
    group::{count_stream, registered, unregistered},
    maps::{CONFIG, GROUPS6, SOURCES6, STREAMS6},
    pkt::Packet,
};

pub(crate) const IPV6_HLEN: usize = 40;

/// Whether IPv6 is snooped at all (`SwitchConf::snoop_ipv6`).
#[inline(always)]
pub(crate) fn snoop_ipv6() -> bool {
    CONFIG.get(0).is_some_and(|c| c.snoop_ipv6 != 0)
}

/// IPv6 multicast: MLD and PIMv6 hellos up, link-local flooded, groups
/// replicated.
#[inline(always)]
pub(crate) fn ipv6_multicast<P: Packet>(ctx: &P, l3: usize, end: usize, f: &Frame) -> Out {
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
            return Out::report(FAMILY_IPV6, l3 - ctx.data(), l4 - ctx.data());
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
pub(crate) fn ipv6_control(l3: usize, end: usize) -> Out {
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
pub(crate) fn ipv6_control_kind(
    proto: u8,
    l4: usize,
    end: usize,
    daddr: &[u8; 16],
) -> Result<bool, ()> {
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
pub(crate) enum Chain {
    /// The fixed header or an extension header is cut short (or the version
    /// is not 6).
    Bad,
    /// More than MAX_IPV6_EXT_HEADERS extension headers.
    Long,
}

pub(crate) const NEXTHDR_HOP: u8 = 0;
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
pub(crate) fn ipv6_upper(l3: usize, end: usize) -> Result<(u8, usize), Chain> {
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
