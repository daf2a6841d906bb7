//! Fast leave: the program applies a leave from a fast-leave port itself,
//! in the softirq that received it, as the Linux bridge does (RFC 4541
//! §2.1.1 lets a switch with a port known to have one host remove it at
//! once), instead of waiting for the daemon to wake up.
//!
//! The daemon stays the one authority: the leave still goes to it (the
//! caller redirects it to the AF_XDP socket right after), every entry
//! written or deleted here is reported on the FAST_JOINS ring like a fast
//! join, and the daemon rewrites the entry from its engine after the grace
//! (dataplane/src/fast_join.rs). The program knows who may leave from what
//! the daemon publishes in LEAVE_HOSTS: an entry for (VLAN, family, port,
//! group) exactly when the port is fast-leave and the engine has one host
//! there, a plain (*,G) member (EXCLUDE {}, no source state), with that
//! host's MAC. A leave is applied only when all of these hold, otherwise
//! nothing is done and the daemon handles it as it always did:
//!
//! - fast join is on (`SwitchConf::fast_join`: the daemon drains the ring);
//! - LEAVE_HOSTS has the (VLAN, family, port, group) and the frame's source
//!   MAC is its host's (another host's leave, or a spoofed one from another
//!   MAC, is not the member's: RFC 3376 §6.4.2's leave of a port with other
//!   hosts needs the queries the daemon sends);
//! - the group's entry holds the port and has no source entries, and the
//!   port is not a router port of the VLAN (it keeps every group);
//! - the set without the port is published (SLOTS; shaped for its VLAN
//!   on a switch with VLAN config, `fast_join::entry_of`), or the port was the
//!   group's last member (LeaveHost::last) and the set without it holds
//!   the router ports only: the entry is deleted, as the daemon's flush
//!   deletes a group with no member and no source (it becomes
//!   unregistered again);
//! - a ring buffer event can be reserved.
use aya_ebpf::{bindings::BPF_F_NO_PREALLOC, btf_maps::HashMap, macros::btf_map};
use igmpsnoop_common::{
    FAST_LEAVE, FastJoinEvent, LeaveHost, LeaveKey, MAX_LEAVE_HOSTS, NO_SET, counter, set_flags,
};

use crate::{
    counters::count,
    fast_join::{FAST_JOINS, Family, RING_NO_WAKEUP, Sender, entry_of, router_ports},
    maps::{CONFIG, MASKS},
};

/// (VLAN, family, port, group) -> the one host the daemon's engine has
/// there, on a fast-leave port (see the module documentation). Not
/// preallocated: an entry the daemon deletes is freed after a grace period,
/// never recycled under a lookup.
#[btf_map]
static LEAVE_HOSTS: HashMap<
    LeaveKey,
    LeaveHost,
    { MAX_LEAVE_HOSTS as usize },
    { BPF_F_NO_PREALLOC as usize },
> = HashMap::new();

/// A leave of `group` from `from`: takes its port out of the group's
/// entry when everything the module documentation lists allows it.
#[inline(always)]
pub(crate) fn leave<A: Family>(group: A, from: &Sender) {
    let Some(conf) = CONFIG.get(0) else {
        return;
    };
    let Some(bit) = 1u64.checked_shl(from.port) else {
        return;
    };
    if conf.fast_join == 0 || !group.snooped() {
        return;
    }
    let key = LeaveKey::new(from.vlan, A::FAMILY, from.port, group.event_group());
    // SAFETY: copied out at once (no-prealloc: never recycled under us).
    let Some(host) = (unsafe { LEAVE_HOSTS.get(key) }).copied() else {
        return;
    };
    if host.mac != from.mac {
        return;
    }
    let Some(entry) = A::entry(from.vlan, group) else {
        return;
    };
    if entry.flags & set_flags::SOURCES != 0 || entry.copies == 0 || entry.set == NO_SET {
        return;
    }
    let Some(ports) = MASKS.get(entry.set).copied() else {
        return;
    };
    // A router port (held ones included) keeps every group (RFC 4541
    // §2.1.2): its member's leave changes nothing here.
    let routers = router_ports(from.vlan, A::FAMILY);
    if ports & bit == 0 || routers & bit != 0 {
        return;
    }
    let want = ports & !bit;
    let delete = host.last != 0 && want == routers;
    let entry = if delete {
        None
    } else if want == 0 {
        // The engine has members besides this port that the set lacks:
        // not ours to guess.
        return;
    } else {
        match entry_of(conf, from.vlan, want) {
            Some(e) => Some(e),
            None => return,
        }
    };
    let Some(mut event) = FAST_JOINS.reserve(0) else {
        return;
    };
    let written = match entry {
        None => A::delete(from.vlan, group),
        Some(e) => A::write(from.vlan, group, e),
    };
    if written.is_err() {
        event.discard(RING_NO_WAKEUP);
        return;
    }
    event.write(FastJoinEvent {
        family: A::FAMILY,
        vlan: from.vlan,
        group: group.event_group(),
        kind: FAST_LEAVE,
        _pad: 0,
    });
    event.submit(RING_NO_WAKEUP);
    count(from.port, counter::FAST_LEAVE);
}
