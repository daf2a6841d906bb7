//! A multicast frame to a group, either family: replicated to its set
//! (or its source's) when registered, counted in its stream; flooded or
//! sent to the router ports when not.

use aya_ebpf::btf_maps::LruPerCpuHashMap;
use igmpsnoop_common::{ANY_VLAN, MAX_STREAMS, RouterKey, SetRef, StreamCount, counter, set_flags};

use crate::{
    Frame, Out,
    counters::{add, count},
    flood,
    maps::{CONFIG, MASKS, ROUTER_SETS},
    pkt::Packet,
};

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
pub(crate) fn registered(
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
    // The ingress port gets no copy (BPF_F_EXCLUDE_INGRESS) when it is in
    // the set itself (a member that also sends). An array lookup: inlined.
    let own = MASKS
        .get(set.set)
        .is_some_and(|m| port < 64 && (*m >> port) & 1 != 0);
    add(
        port,
        counter::REPLICATED_COPIES,
        u64::from(set.copies) - u64::from(own),
    );
    Out::set(set)
}

/// Adds a frame to its stream's count in `streams` (when counting is on).
#[inline(always)]
pub(crate) fn count_stream<K, P: Packet>(
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

/// A group with no entry: flooded, or to the VLAN's router ports of the
/// family only, by policy.
#[inline(always)]
pub(crate) fn unregistered(f: &Frame, family: u16) -> Out {
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
