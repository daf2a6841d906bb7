//! The rows of the listings (`groups`, `sources`, `groups --rates`,
//! `routers`, `querier`, `macs`, `vlans`), as the daemon sends them and the CLI and
//! the tests read them: one definition, serde on both sides.
use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::{engine::AddrFamily, table::FilterMode};

/// One (group, port) membership.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupRow {
    pub family: AddrFamily,
    pub group: IpAddr,
    pub vlan: u16,
    pub port: String,
    /// MACs of the hosts that reported.
    pub hosts: Vec<String>,
    /// Compatibility version (None for a port held after a restart).
    pub version: Option<u8>,
    /// Until the membership ends unless refreshed; None when static.
    pub expires_ms: Option<u64>,
    #[serde(rename = "static")]
    pub is_static: bool,
    /// Held from the state a restarted daemon adopted, not reported again yet.
    pub adopted: bool,
    /// RFC 3376 §6.2.1, RFC 3810 §7.2.1.
    pub filter_mode: FilterMode,
    pub sources: Vec<SourceRecordRow>,
}

/// One source record of a membership.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRecordRow {
    pub address: IpAddr,
    /// None for a static or an excluded source (no timer runs).
    pub expires_ms: Option<u64>,
    /// EXCLUDE mode: on the excluded list (not forwarded).
    pub excluded: bool,
}

/// One (S,G) forwarding entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceEntryRow {
    pub family: AddrFamily,
    pub vlan: u16,
    pub group: IpAddr,
    pub source: IpAddr,
    /// Where the source's traffic goes (router ports not included).
    pub ports: Vec<String>,
}

/// One stream the fast path replicated: totals since first seen, and (for
/// `groups --rates`) its rates over the measured interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamRow {
    pub family: AddrFamily,
    pub vlan: u16,
    pub group: IpAddr,
    /// None: frames that took the group's own set.
    pub source: Option<IpAddr>,
    pub frames: u64,
    pub bytes: u64,
    pub ports: Vec<String>,
    pub router_ports: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits_per_second: Option<f64>,
}

/// One multicast-router port of one family on one VLAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RouterRow {
    pub family: AddrFamily,
    pub vlan: u16,
    pub port: String,
    /// "static", "learned" or "static+learned".
    pub kind: String,
    pub learned_from: Option<IpAddr>,
    pub expires_ms: Option<u64>,
}

/// The querier state of one family on one VLAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuerierRow {
    pub family: AddrFamily,
    pub vlan: u16,
    /// "querier", "non-querier" or "off".
    pub state: String,
    pub our_address: Option<IpAddr>,
    pub querier_address: Option<IpAddr>,
    pub other_querier_expires_ms: Option<u64>,
    pub next_general_query_ms: Option<u64>,
    pub startup_queries_left: u8,
    pub version: u8,
    pub query_interval_ms: u64,
    pub query_response_interval_ms: u64,
    pub robustness: u8,
}

/// One learned MAC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MacRow {
    pub mac: String,
    pub vlan: u16,
    pub port: Option<String>,
    pub age_s: u64,
}

/// One VLAN the switch snoops: its ports and queriers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VlanRow {
    /// 0: untagged frames of VLAN-unaware ports.
    pub vlan: u16,
    /// Ports its frames leave untagged (its PVID ports; VLAN 0 on
    /// VLAN-unaware ports).
    pub untagged: Vec<String>,
    /// Ports its frames leave tagged.
    pub tagged: Vec<String>,
    /// IGMP's querier on it.
    pub igmp_querier: VlanQuerierRow,
    /// MLD's querier on it; None while MLD is not snooped.
    pub mld_querier: Option<VlanQuerierRow>,
    /// (VLAN, group) entries of either family on it.
    pub groups: usize,
}

/// Who is querier of one family on one VLAN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VlanQuerierRow {
    /// The elected querier; None: nobody (we are not querier and heard none).
    pub address: Option<IpAddr>,
    /// Whether it is us.
    pub us: bool,
}
