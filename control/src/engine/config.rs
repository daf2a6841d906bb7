//! Engine configuration. Defaults are RFC 2236 / RFC 3376's; derived
//! intervals are computed from the configured base values.

use crate::family::{Version, eui64_link_local, is_link_local_unicast};
use crate::port::{MAX_PORTS, Mac};
use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use igmpsnoop_dataplane::vlan::{MAX_VID, PortVlans};
use serde::{Serialize, Serializer};
use std::collections::BTreeMap;
use thiserror::Error;

/// Default `max_sources_per_group`. A Linux host filters at most
/// `igmp_max_msf` (10 by default) sources per socket, and one report
/// record carries at most 366 in a 1500-byte frame; 256 leaves room for
/// many hosts' distinct sources while bounding each record's work
/// (O(n log n) for n sources) and the data plane's (S,G) entries per group.
pub const DEFAULT_MAX_SOURCES_PER_GROUP: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// RFC 3376 §8.1 Robustness Variable (RV).
    pub robustness: u8,
    /// §8.2 Query Interval (QI).
    pub query_interval: Duration,
    /// §8.3 Query Response Interval (QRI).
    pub query_response_interval: Duration,
    /// §8.8 Last Member Query Interval (LMQI).
    pub last_member_interval: Duration,
    /// §8.9 Last Member Query Count (LMQC).
    pub last_member_count: u8,
    /// §8.7 Startup Query Count; None = RV.
    pub startup_query_count: Option<u8>,
    /// §8.6 Startup Query Interval; None = QI/4.
    pub startup_query_interval: Option<Duration>,
    /// Send queries.
    pub querier: bool,
    /// Source address of our queries; required when `querier` (0.0.0.0
    /// only when given explicitly). Also the source of group-specific
    /// queries after leaves (0.0.0.0 when None, RFC 4541 §2.1.1).
    pub querier_address: Option<Ipv4Addr>,
    /// Version of the IGMP queries we send: 2 or 3.
    pub igmp_version: Version,
    /// Snoop MLD (IPv6) beside IGMP, with its own querier, timers and
    /// versions; off: IPv6 multicast is left to the flooding rules.
    pub mld: bool,
    /// Version of the MLD queries we send: 1 or 2.
    pub mld_version: Version,
    /// Source of our MLD queries, link-local (RFC 3810 §5.1.14: hosts
    /// ignore queries from any other); None = the EUI-64 link-local
    /// address of `switch_mac`.
    pub mld_querier_address: Option<Ipv6Addr>,
    /// Flood unregistered multicast (carried for the dataplane).
    pub flood_unregistered: bool,
    /// Global bound on distinct (VLAN, group) entries.
    pub max_groups: usize,
    /// Bound on the distinct sources one (VLAN, group) has entries for
    /// (source-specific forwarding entries, RFC 3376 §6 source records).
    pub max_sources_per_group: usize,
    /// Age of a learned router port; None = other querier present interval.
    pub router_port_timeout: Option<Duration>,
    /// Source MAC of the frames we emit.
    pub switch_mac: Mac,
    /// Per VLAN, the source of our IGMP queries there instead of
    /// `querier_address` (each VLAN elects its own querier).
    pub vlan_querier_address: BTreeMap<u16, Ipv4Addr>,
    /// Per VLAN, the source of our MLD queries there instead of
    /// `mld_querier_address`; link-local.
    pub vlan_mld_querier_address: BTreeMap<u16, Ipv6Addr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            robustness: 2,
            query_interval: Duration::from_secs(125),
            query_response_interval: Duration::from_secs(10),
            last_member_interval: Duration::from_secs(1),
            last_member_count: 2,
            startup_query_count: None,
            startup_query_interval: None,
            querier: false,
            querier_address: None,
            igmp_version: Version::V3,
            mld: true,
            mld_version: Version::V2,
            mld_querier_address: None,
            flood_unregistered: true,
            max_groups: igmpsnoop_common::DEFAULT_MAX_GROUPS as usize,
            max_sources_per_group: DEFAULT_MAX_SOURCES_PER_GROUP,
            router_port_timeout: None,
            switch_mac: [0x02, 0, 0, 0, 0, 0x01],
            vlan_querier_address: BTreeMap::new(),
            vlan_mld_querier_address: BTreeMap::new(),
        }
    }
}

impl Config {
    /// RFC 3376 §8.4 Group Membership Interval = RV × QI + QRI.
    pub fn group_membership_interval(&self) -> Duration {
        self.query_interval * u32::from(self.robustness) + self.query_response_interval
    }

    /// RFC 3376 §8.5 Other Querier Present Interval = RV × QI + QRI / 2.
    pub fn other_querier_present_interval(&self) -> Duration {
        self.query_interval * u32::from(self.robustness) + self.query_response_interval / 2
    }

    /// RFC 3376 §8.6: default QI / 4.
    pub fn startup_interval(&self) -> Duration {
        self.startup_query_interval
            .unwrap_or(self.query_interval / 4)
    }

    /// RFC 3376 §8.7: default RV.
    pub fn startup_count(&self) -> u8 {
        self.startup_query_count.unwrap_or(self.robustness)
    }

    /// RFC 3376 §8.10 Last Member Query Time = LMQC × LMQI.
    pub fn last_member_query_time(&self) -> Duration {
        self.last_member_interval * u32::from(self.last_member_count)
    }

    /// How long a restarted switch keeps the port sets it adopted from the
    /// pinned state before it trusts its own, relearned table. As querier it
    /// has sent its startup queries by then and had every answer (the last
    /// startup query plus a response interval); otherwise it has solicited
    /// reports once, and waits a group membership interval, the longest a
    /// switch that never restarted would have kept a silent member.
    pub fn adoption_hold(&self) -> Duration {
        if self.querier {
            self.startup_interval() * u32::from(self.startup_count().saturating_sub(1))
                + self.query_response_interval
        } else {
            self.group_membership_interval()
        }
    }

    /// Source of our MLD queries: the configured one or the EUI-64
    /// link-local address of the switch MAC (no address on the ports
    /// needed).
    pub fn mld_source(&self) -> Ipv6Addr {
        self.mld_querier_address
            .unwrap_or_else(|| eui64_link_local(self.switch_mac))
    }

    /// Source of our IGMP queries on `vlan`: its own, else the global one.
    pub fn igmp_source_on(&self, vlan: u16) -> Option<Ipv4Addr> {
        self.vlan_querier_address
            .get(&vlan)
            .copied()
            .or(self.querier_address)
    }

    /// Source of our MLD queries on `vlan`: its own, else `mld_source`.
    pub fn mld_source_on(&self, vlan: u16) -> Ipv6Addr {
        self.vlan_mld_querier_address
            .get(&vlan)
            .copied()
            .unwrap_or_else(|| self.mld_source())
    }

    pub fn router_timeout(&self) -> Duration {
        self.router_port_timeout
            .unwrap_or_else(|| self.other_querier_present_interval())
    }

    pub fn validate(&self, ports: usize) -> Result<(), ConfigError> {
        if ports > MAX_PORTS {
            return Err(ConfigError::TooManyPorts(ports));
        }
        // RFC 3376 §4.1.6: the Robustness Variable MUST NOT be zero.
        if self.robustness == 0 {
            return Err(ConfigError::Robustness);
        }
        if !matches!(self.igmp_version, Version::V2 | Version::V3) {
            return Err(ConfigError::Version(self.igmp_version));
        }
        if !matches!(self.mld_version, Version::V1 | Version::V2) {
            return Err(ConfigError::MldVersion(self.mld_version));
        }
        let mld_sources = self.vlan_mld_querier_address.values();
        if let Some(&a) = self
            .mld_querier_address
            .iter()
            .chain(mld_sources)
            .find(|a| !is_link_local_unicast(**a))
        {
            return Err(ConfigError::MldQuerierAddress(a));
        }
        let vlans = self.vlan_querier_address.keys();
        if let Some(&v) = vlans
            .chain(self.vlan_mld_querier_address.keys())
            .find(|v| !(1..=MAX_VID).contains(*v))
        {
            return Err(ConfigError::Vlan(v));
        }
        if self.query_interval.is_zero()
            || self.last_member_interval.is_zero()
            || self.startup_interval().is_zero()
        {
            return Err(ConfigError::ZeroInterval);
        }
        if self.last_member_count == 0
            || self.startup_count() == 0
            || self.max_sources_per_group == 0
        {
            return Err(ConfigError::ZeroCount);
        }
        // RFC 3376 §8.3: the response interval MUST be less than the query interval.
        if self.query_response_interval >= self.query_interval
            || self.query_response_interval.is_zero()
        {
            return Err(ConfigError::ResponseInterval);
        }
        // v2 max response time is 8 bits of 1/10 s (RFC 2236 §2.2); MLDv1's
        // 16 bits of ms (RFC 2710 §3.4); MLDv2's code reaches 8387584 ms
        // (RFC 3810 §5.1.3).
        let limit = if self.igmp_version == Version::V2 {
            255
        } else {
            31744
        };
        let mld_limit = match (self.mld, self.mld_version) {
            (false, _) => u128::MAX,
            (true, Version::V1) => 65_535,
            (true, _) => 8_387_584,
        };
        for d in [self.query_response_interval, self.last_member_interval] {
            if d.as_millis() / 100 > limit || d.as_millis() > mld_limit {
                return Err(ConfigError::ResponseTooLong(d));
            }
        }
        if self.router_port_timeout.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::ZeroInterval);
        }
        if self.querier && self.querier_address.is_none() {
            return Err(ConfigError::NoQuerierAddress);
        }
        Ok(())
    }
}

/// Per-port configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortConfig {
    pub name: String,
    /// Remove a host at once on leave, and the port with its last host.
    pub fast_leave: bool,
    /// Always a multicast router port.
    pub static_router: bool,
    /// Bound on groups this port may join.
    pub max_groups: Option<usize>,
    /// Ignore (and count) queries and PIM hellos arriving here.
    pub guard: bool,
    /// The port's VLANs; None: VLAN-unaware (untagged frames are VLAN 0,
    /// tagged ones keep their VLAN; it carries every VLAN).
    #[serde(serialize_with = "port_vlans")]
    pub vlans: Option<PortVlans>,
}

impl PortConfig {
    /// Its VLAN IDs are 1..=4094 and its PVID is one of its VLANs.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Some(v) = &self.vlans else {
            return Ok(());
        };
        let bad = v
            .pvid
            .iter()
            .chain(&v.vlans)
            .find(|v| !(1..=MAX_VID).contains(*v));
        if let Some(&vlan) = bad {
            return Err(ConfigError::PortVlan {
                port: self.name.clone(),
                vlan,
            });
        }
        match v.pvid {
            Some(pvid) if !v.vlans.contains(&pvid) => Err(ConfigError::PortVlan {
                port: self.name.clone(),
                vlan: pvid,
            }),
            _ => Ok(()),
        }
    }
}

/// `{"pvid": N|null, "vlans": [..]}`, or null for a VLAN-unaware port.
fn port_vlans<S: Serializer>(v: &Option<PortVlans>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        pvid: Option<u16>,
        vlans: &'a std::collections::BTreeSet<u16>,
    }
    v.as_ref()
        .map(|v| Row {
            pvid: v.pvid,
            vlans: &v.vlans,
        })
        .serialize(s)
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{0} ports configured; at most 64 are supported")]
    TooManyPorts(usize),
    #[error("robustness must not be 0 (RFC 3376 §4.1.6)")]
    Robustness,
    #[error("igmp_version must be 2 or 3, not {0}")]
    Version(Version),
    #[error("mld_version must be 1 or 2, not {0}")]
    MldVersion(Version),
    #[error("the MLD querier address {0} is not link-local (fe80::/10; RFC 3810 §5.1.14)")]
    MldQuerierAddress(Ipv6Addr),
    #[error("intervals must be non-zero")]
    ZeroInterval,
    #[error("counts must be non-zero")]
    ZeroCount,
    #[error(
        "query response interval must be non-zero and less than the query interval (RFC 3376 §8.3)"
    )]
    ResponseInterval,
    #[error("{0:?} does not fit the max response time field of the configured IGMP version")]
    ResponseTooLong(Duration),
    #[error("querier enabled without querier_address (set 0.0.0.0 explicitly to use it)")]
    NoQuerierAddress,
    #[error("bad VLAN id {0}: expected 1..=4094")]
    Vlan(u16),
    #[error("port {port}: bad VLAN id {vlan}: expected 1..=4094")]
    PortVlan { port: String, vlan: u16 },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_defaults() {
        let c = Config::default();
        assert_eq!(c.group_membership_interval(), Duration::from_secs(260));
        assert_eq!(c.other_querier_present_interval(), Duration::from_secs(255));
        assert_eq!(c.startup_interval(), Duration::from_millis(31_250));
        assert_eq!(c.startup_count(), 2);
        assert_eq!(c.last_member_query_time(), Duration::from_secs(2));
        assert_eq!(c.router_timeout(), Duration::from_secs(255));
        assert!(c.flood_unregistered && !c.querier);
        assert_eq!(c.validate(64), Ok(()));
    }

    #[test]
    fn adoption_hold() {
        let q = Config {
            querier: true,
            querier_address: Some(Ipv4Addr::new(10, 0, 0, 1)),
            ..Config::default()
        };
        // Second startup query at QI/4 = 31.25 s, answers within QRI = 10 s.
        assert_eq!(q.adoption_hold(), Duration::from_millis(41_250));
        let one = Config {
            startup_query_count: Some(1),
            ..q.clone()
        };
        assert_eq!(one.adoption_hold(), Duration::from_secs(10));
        assert_eq!(Config::default().adoption_hold(), Duration::from_secs(260));
    }

    #[test]
    fn derived_from_base() {
        let c = Config {
            robustness: 3,
            query_interval: Duration::from_secs(60),
            ..Config::default()
        };
        assert_eq!(c.group_membership_interval(), Duration::from_secs(190));
        assert_eq!(c.other_querier_present_interval(), Duration::from_secs(185));
        assert_eq!(c.startup_interval(), Duration::from_secs(15));
        assert_eq!(c.startup_count(), 3);
    }

    #[test]
    fn validation_of_counts() {
        let ok = Config::default();
        assert_eq!(ok.validate(65), Err(ConfigError::TooManyPorts(65)));
        assert_eq!(
            Config {
                robustness: 0,
                ..ok
            }
            .validate(1),
            Err(ConfigError::Robustness)
        );
    }

    #[test]
    fn validation_of_versions() {
        let ok = Config::default();
        assert_eq!(
            Config {
                igmp_version: Version::V1,
                ..ok.clone()
            }
            .validate(1),
            Err(ConfigError::Version(Version::V1))
        );
        assert_eq!(
            Config {
                mld_version: Version::V3,
                ..ok
            }
            .validate(1),
            Err(ConfigError::MldVersion(Version::V3))
        );
    }

    #[test]
    fn validation_of_querier_addresses() {
        let ok = Config::default();
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            Config {
                mld_querier_address: Some(global),
                ..ok.clone()
            }
            .validate(1),
            Err(ConfigError::MldQuerierAddress(global))
        );
        assert_eq!(
            Config {
                querier: true,
                ..ok.clone()
            }
            .validate(1),
            Err(ConfigError::NoQuerierAddress)
        );
        let q0 = Config {
            querier: true,
            querier_address: Some(Ipv4Addr::UNSPECIFIED),
            ..ok
        };
        assert_eq!(q0.validate(1), Ok(()));
    }

    #[test]
    fn validation_of_response_intervals() {
        let ok = Config::default();
        // MLDv1 carries at most 65.535 s of response time.
        assert!(matches!(
            Config {
                mld_version: Version::V1,
                query_response_interval: Duration::from_secs(70),
                query_interval: Duration::from_secs(125),
                ..ok.clone()
            }
            .validate(1),
            Err(ConfigError::ResponseTooLong(_))
        ));
        let slow = Config {
            igmp_version: Version::V2,
            query_response_interval: Duration::from_secs(30),
            ..ok.clone()
        };
        assert!(matches!(
            slow.validate(1),
            Err(ConfigError::ResponseTooLong(_))
        ));
        let bad = Config {
            query_response_interval: Duration::from_secs(125),
            ..ok
        };
        assert_eq!(bad.validate(1), Err(ConfigError::ResponseInterval));
    }

    #[test]
    fn validation_of_vlan_querier_addresses() {
        let ok = Config::default();
        let global: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            Config {
                vlan_querier_address: BTreeMap::from([(4095, Ipv4Addr::new(10, 0, 0, 1))]),
                ..ok.clone()
            }
            .validate(1),
            Err(ConfigError::Vlan(4095))
        );
        assert_eq!(
            Config {
                vlan_mld_querier_address: BTreeMap::from([(10, global)]),
                ..ok
            }
            .validate(1),
            Err(ConfigError::MldQuerierAddress(global))
        );
    }
}
