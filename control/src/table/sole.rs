//! The memberships a leave could end at once in the fast path (fast leave
//! in XDP, ebpf/xdp/src/fast_leave.rs): a port whose only host is a plain
//! (*,G) member. RFC 4541 §2.1.1 lets a switch remove such a port on its
//! host's leave without a group-specific query, as the engine does on a
//! fast-leave port.

use super::{MembershipKey, MembershipTable};
use crate::family::{Family, Generation};
use crate::port::{Mac, PortId, PortMask};
use crate::time::Timestamp;

/// One port of a group whose only host may leave it at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoleHost {
    pub port: PortId,
    pub mac: Mac,
    /// The port is the group's only member port: its leave leaves the group
    /// with no member.
    pub last: bool,
}

impl<A: Family> MembershipTable<A> {
    /// The ports among `ports` where `key` has exactly one host, in
    /// EXCLUDE {} (a (*,G) join), and the port no other state: not static,
    /// not in IGMPv1 compatibility (RFC 3376 §7.3.2: its leaves are
    /// ignored), no source records on any port of the group (source
    /// filters are the engine's work). The leave of that host removes the
    /// port at once on a fast-leave port; anything else needs the engine.
    pub fn sole_hosts(
        &self,
        key: MembershipKey<A>,
        now: Timestamp,
        ports: PortMask,
    ) -> Vec<SoleHost> {
        let Some(g) = self.groups.get(&key) else {
            return Vec::new();
        };
        if g.sources.is_some() {
            return Vec::new();
        }
        let members = g.mask();
        g.members
            .iter()
            .filter(|m| ports.contains(m.port) && !m.is_static && m.exclude())
            .filter(|m| m.compat(now) != Generation::NoLeave)
            .filter_map(|m| match m.hosts.as_slice() {
                [h] if h.mode() == super::FilterMode::Exclude && h.sources().is_empty() => {
                    Some(SoleHost {
                        port: m.port,
                        mac: h.mac,
                        last: members == PortMask::single(m.port),
                    })
                }
                _ => None,
            })
            .collect()
    }
}
