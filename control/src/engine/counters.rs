//! Counters for every kind of message received, sent and rejected.

use crate::port::{MAX_PORTS, PortId, PortMask};
use serde::Serialize;

/// Per-port frame counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortCounters {
    /// Frames handed to the engine from this port.
    pub rx: u64,
    /// Frames the engine asked to send out of this port (forwarded or built).
    pub tx: u64,
    /// Frames from this port rejected as malformed or over a limit.
    pub rejected: u64,
}

macro_rules! counters {
    ($($(#[$doc:meta])* $name:ident,)*) => {
        /// Engine counters. Names are stable snake_case.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
        pub struct Counters {
            $($(#[$doc])* pub $name: u64,)*
            /// Per port, indexed by PortId.
            pub ports: Vec<PortCounters>,
        }

        impl Default for Counters {
            fn default() -> Self {
                Counters { $($name: 0,)* ports: vec![PortCounters::default(); MAX_PORTS] }
            }
        }

        impl Counters {
            /// Every scalar counter's name, in `iter` order.
            pub const NAMES: &'static [&'static str] = &[$(stringify!($name)),*];

            /// (name, value) for every scalar counter.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$((stringify!($name), self.$name)),*].into_iter()
            }
        }
    };
}

counters! {
    /// Frames handed to handle_frame.
    rx_frames,
    /// Frames that were not IPv4 (ignored).
    rx_not_ipv4,
    /// IPv4 frames neither IGMP nor a PIM hello (ignored).
    rx_other_ip,
    /// Valid IGMP messages, any type.
    rx_igmp,
    rx_v1_query,
    rx_v2_query,
    rx_v3_query,
    /// Queries for a specific group (any version).
    rx_group_query,
    /// Queries with a 0.0.0.0 source (not used for election or routers).
    rx_query_zero_source,
    rx_v1_report,
    rx_v2_report,
    rx_v3_report,
    /// Group records in v3 reports.
    rx_v3_records,
    rx_v2_leave,
    /// v3 records by which a host leaves the group (TO_IN{}/IS_IN{}, a
    /// BLOCK emptying its INCLUDE list).
    rx_v3_leave,
    /// Group-and-source-specific queries received (any S flag).
    rx_group_source_query,
    rx_pim_hello,
    /// Reports for 224.0.0.0/24: counted, never learned.
    rx_link_local_report,
    /// v3 records of unknown type (RFC 3376 §4.2.12: ignored).
    rx_v3_unknown_record,
    /// Leaves ignored while an IGMPv1 host is present.
    ignored_leave_v1_compat,
    /// v3 records ignored by the compatibility mode (RFC 3376 §7.3.2: BLOCK
    /// while an IGMPv1/v2 host is present).
    ignored_record_compat,
    /// Leaves for a group the port was not a member of.
    ignored_leave_not_member,
    /// Queries arriving on a guard port.
    ignored_guard_query,
    /// PIM hellos arriving on a guard port.
    ignored_guard_pim,
    reject_truncated,
    reject_bad_ip_header,
    /// An IPv4 option whose length is below 2 or runs past the header.
    reject_bad_ip_options,
    reject_bad_ihl,
    reject_bad_ip_checksum,
    reject_fragment,
    reject_bad_igmp_checksum,
    reject_bad_ttl,
    reject_not_multicast,
    reject_bad_group,
    reject_unknown_igmp_type,
    reject_source_overrun,
    reject_bad_pim,
    reject_bad_port,
    reject_limit_global,
    reject_limit_port,
    /// Records refused because the group would exceed
    /// max_sources_per_group distinct sources (the group keeps its state).
    reject_limit_sources,
    /// Records naming the same source twice (the record is ignored).
    reject_source_duplicate,
    /// Records naming a multicast source (the record is ignored).
    reject_source_multicast,
    /// Records naming source 0.0.0.0 (the record is ignored).
    reject_source_zero,
    /// Records naming source 255.255.255.255 (the record is ignored).
    reject_source_broadcast,
    tx_general_query,
    tx_group_query,
    /// Group-and-source-specific queries sent (RFC 3376 §6.6.3.2).
    tx_group_source_query,
    tx_forward_report,
    tx_forward_leave,
    tx_forward_query,
    tx_forward_pim,
    tx_forward_unknown,
    groups_added,
    groups_removed,
    /// Leaves (of a group or of sources) applied at once on fast-leave ports.
    fast_leaves,
    /// Last-member query sequences started (Q(G) on a leave or TO_IN).
    leave_queries_started,
    /// Q(G,A) sequences started (sources blocked or left).
    source_queries_started,
    /// Group-and-source-specific queries of another querier that lowered
    /// our source timers (RFC 3376 §6.6.1).
    source_timers_lowered,
    querier_other_elected,
    querier_resumed,
    router_ports_learned,
    router_ports_expired,
}

impl Counters {
    pub(crate) fn port(&mut self, port: PortId) -> Option<&mut PortCounters> {
        self.ports.get_mut(usize::from(port))
    }

    pub(crate) fn add_tx(&mut self, ports: PortMask) {
        for p in ports.iter() {
            if let Some(c) = self.port(p) {
                c.tx += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case() {
        let c = Counters::default();
        let names: Vec<_> = c.iter().map(|(n, _)| n).collect();
        assert_eq!(names, Counters::NAMES);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert!(names.iter().all(|n| {
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }));
    }
}
