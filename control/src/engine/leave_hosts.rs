//! What the fast path needs for fast leave in XDP: which groups' host
//! lists changed, and for a group, the hosts on fast-leave ports whose
//! leave ends their port's membership at once (see
//! [`crate::table::SoleHost`]). The daemon publishes these in the fast
//! path (LEAVE_HOSTS); the engine stays the authority on every leave.

use super::{Engine, Proto};
use crate::table::{MembershipKey, SoleHost};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::collections::HashSet;

impl Engine {
    /// Keep (true) or stop keeping (false) the groups whose memberships
    /// may have changed, for [`Engine::take_leave_changes`]; off by
    /// default. Turned on, every group counts as changed once.
    pub fn track_leave_changes(&mut self, on: bool) {
        self.leave_changes = on.then(HashSet::new);
        if on {
            self.note_all_groups();
        }
    }

    /// The (VLAN, group) of every group whose hosts, ports, mode or source
    /// state may have changed since the last call (a superset: any record
    /// learned, any change of its forwarding, any static change, any
    /// fast-leave setting changed).
    pub fn take_leave_changes(&mut self) -> Vec<(u16, IpAddr)> {
        self.leave_changes
            .as_mut()
            .map(|s| s.drain().collect())
            .unwrap_or_default()
    }

    /// The hosts of (vlan, group) on fast-leave ports whose leave the fast
    /// path may apply itself: each the only host of its port, a plain
    /// (*,G) member.
    pub fn leave_hosts(&self, vlan: u16, group: IpAddr) -> Vec<SoleHost> {
        match group {
            IpAddr::V4(g) => self.leave_hosts_of::<Ipv4Addr>(vlan, g),
            IpAddr::V6(g) => self.leave_hosts_of::<Ipv6Addr>(vlan, g),
        }
    }

    fn leave_hosts_of<A: Proto>(&self, vlan: u16, group: A) -> Vec<SoleHost> {
        A::snooper(&self.fam).table.sole_hosts(
            MembershipKey { vlan, group },
            self.now,
            self.fast_leave & self.up,
        )
    }

    /// `key`'s group may have changed (kept only while tracking).
    pub(super) fn note_change<A: Proto>(&mut self, key: MembershipKey<A>) {
        // No fast-leave port: no group has hosts to publish (a port that
        // becomes fast-leave notes every group).
        if self.fast_leave.is_empty() {
            return;
        }
        if let Some(s) = self.leave_changes.as_mut() {
            s.insert((key.vlan, key.group.into()));
        }
    }

    /// Every group may have changed (the fast-leave ports did).
    pub(super) fn note_all_groups(&mut self) {
        let Some(s) = self.leave_changes.as_mut() else {
            return;
        };
        for k in self.fam.igmp.table.keys() {
            s.insert((k.vlan, k.group.into()));
        }
        for k in self.fam.mld.table.keys() {
            s.insert((k.vlan, k.group.into()));
        }
    }
}
