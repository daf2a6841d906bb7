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

macro_rules! mld_name {
    ($name:ident) => {
        concat!("mld_", stringify!($name))
    };
    ($name:ident, $mld:literal) => {
        $mld
    };
}

macro_rules! counters {
    (
        common { $($(#[$doc:meta])* $name:ident,)* }
        protocol { $($(#[$pdoc:meta])* $pname:ident $(= $mld:literal)?,)* }
    ) => {
        /// The counters of one protocol (IGMP or MLD): the engine keeps one
        /// set per family and the code that counts is written once.
        #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
        pub struct ProtoCounters {
            $($(#[$pdoc])* pub $pname: u64,)*
        }

        /// Engine counters. Names are stable snake_case: IGMP's as they
        /// always were, MLD's prefixed `mld_` (versions as MLD numbers them).
        /// Serialized flat, as `iter` names them, with `ports`.
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct Counters {
            $($(#[$doc])* pub $name: u64,)*
            pub igmp: ProtoCounters,
            pub mld: ProtoCounters,
            /// Per port, indexed by PortId.
            pub ports: Vec<PortCounters>,
        }

        impl Default for Counters {
            fn default() -> Self {
                Counters {
                    $($name: 0,)*
                    igmp: ProtoCounters::default(),
                    mld: ProtoCounters::default(),
                    ports: vec![PortCounters::default(); MAX_PORTS],
                }
            }
        }

        impl Counters {
            /// Every scalar counter's name, in `iter` order.
            pub const NAMES: &'static [&'static str] = &[
                $(stringify!($name),)*
                $(stringify!($pname),)*
                $(mld_name!($pname $(, $mld)?),)*
            ];

            /// (name, value) for every scalar counter.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [
                    $((stringify!($name), self.$name),)*
                    $((stringify!($pname), self.igmp.$pname),)*
                    $((mld_name!($pname $(, $mld)?), self.mld.$pname),)*
                ]
                .into_iter()
            }
        }
    };
}

counters! {
    common {
        /// Frames handed to handle_frame.
        rx_frames,
        /// Frames neither IPv4 nor IPv6 (ignored).
        rx_not_ipv4,
        /// IP frames neither IGMP, MLD nor a PIM hello (ignored; IPv6 too
        /// while MLD is off).
        rx_other_ip,
        /// Valid IGMP messages, any type.
        rx_igmp,
        /// Valid MLD messages, any type.
        rx_mld,
        rx_pim_hello,
        tx_forward_pim,
        /// PIM hellos arriving on a guard port.
        ignored_guard_pim,
        reject_truncated,
        reject_bad_ip_header,
        /// An IPv4 option whose length is below 2 or runs past the header.
        reject_bad_ip_options,
        reject_bad_ihl,
        reject_bad_ip_checksum,
        /// IPv4 fragments and IPv6 Fragment headers.
        reject_fragment,
        reject_bad_igmp_checksum,
        reject_unknown_igmp_type,
        reject_source_overrun,
        reject_bad_pim,
        reject_bad_port,
        /// Frames on a VLAN their port does not carry, or untagged on a
        /// port without a PVID (the fast path drops these before us).
        reject_vlan_not_carried,
        /// A bad IPv6 version or payload length.
        reject_bad_ipv6_header,
        /// A malformed IPv6 extension header or Hop-by-Hop option.
        reject_bad_ext_header,
        /// An extension-header chain longer than the engine walks (8).
        reject_ext_header_chain,
        reject_bad_icmpv6_checksum,
        reject_unknown_mld_type,
        /// MLD without the Hop-by-Hop Router Alert option (RFC 3810 §5).
        reject_no_router_alert,
        /// MLD queries from a source that is not link-local (RFC 3810
        /// §5.1.14: hosts ignore them; neither election nor router port).
        reject_query_not_link_local,
        /// MLD reports and dones from a source neither link-local nor ::
        /// (RFC 3810 §5.2.13; :: is allowed, RFC 3590).
        reject_report_not_link_local,
    }
    protocol {
        rx_v1_query,
        rx_v2_query,
        rx_v3_query,
        /// Queries for a specific group (any version).
        rx_group_query,
        /// Queries with a 0.0.0.0 source (not used for election or routers).
        rx_query_zero_source = "mld_rx_query_unspecified_source",
        rx_v1_report,
        rx_v2_report,
        rx_v3_report,
        /// Group records in v3 reports (MLDv2 address records).
        rx_v3_records = "mld_rx_v2_records",
        /// IGMPv2 leaves, MLDv1 dones.
        rx_v2_leave = "mld_rx_done",
        /// v3 records by which a host leaves the group (TO_IN{}/IS_IN{}, a
        /// BLOCK emptying its INCLUDE list).
        rx_v3_leave = "mld_rx_v2_leave",
        /// Group-and-source-specific queries received (any S flag).
        rx_group_source_query,
        /// Reports for 224.0.0.0/24 (ff02::/16 and the scopes below):
        /// counted, never learned.
        rx_link_local_report,
        /// v3 records of unknown type (RFC 3376 §4.2.12: ignored).
        rx_v3_unknown_record = "mld_rx_v2_unknown_record",
        /// Leaves ignored while an IGMPv1 host is present.
        ignored_leave_v1_compat,
        /// v3 records ignored by the compatibility mode (RFC 3376 §7.3.2,
        /// RFC 3810 §8.3.2: BLOCK while an older host is present).
        ignored_record_compat,
        /// Leaves for a group the port was not a member of.
        ignored_leave_not_member,
        /// Queries arriving on a guard port.
        ignored_guard_query,
        /// IGMP with TTL, MLD with hop limit, other than 1.
        reject_bad_ttl = "mld_reject_bad_hop_limit",
        reject_not_multicast,
        reject_bad_group,
        reject_limit_global,
        reject_limit_port,
        /// Records refused because the group would exceed
        /// max_sources_per_group distinct sources (the group keeps its state).
        reject_limit_sources,
        /// Records naming the same source twice (the record is ignored).
        reject_source_duplicate,
        /// Records naming a multicast source (the record is ignored).
        reject_source_multicast,
        /// Records naming source 0.0.0.0 or :: (the record is ignored).
        reject_source_zero,
        /// Records naming source 255.255.255.255 (the record is ignored).
        reject_source_broadcast,
        tx_general_query,
        tx_group_query,
        /// Group-and-source-specific queries sent (RFC 3376 §6.6.3.2).
        tx_group_source_query,
        tx_forward_report,
        tx_forward_leave = "mld_tx_forward_done",
        tx_forward_query,
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
}

impl Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        for (name, v) in self.iter() {
            m.serialize_entry(name, &v)?;
        }
        m.serialize_entry("ports", &self.ports)?;
        m.end()
    }
}

impl Counters {
    pub fn port(&mut self, port: PortId) -> Option<&mut PortCounters> {
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
