//! What the engine needs of a family besides its addresses: where its
//! state and counters live, its settings, and how its queries look on the
//! wire. IGMP for IPv4, MLD for IPv6.

use super::config::Config;
use super::counters::{Counters, ProtoCounters};
use super::querier::Querier;
use super::router::Routers;
use super::vlans::VlanPorts;
use crate::family::{Family, Generation, Version};
use crate::port::PortMask;
use crate::table::MembershipTable;
use crate::time::Timestamp;
use crate::wire::{frame, igmp, mld};
use core::net::{Ipv4Addr, Ipv6Addr};
use core::time::Duration;

/// The snooping state of one family.
#[derive(Debug)]
pub struct Snooper<A> {
    pub(crate) table: MembershipTable<A>,
    pub(crate) routers: Routers<A>,
    pub(crate) querier: Querier<A>,
    /// Reused for the sources of each record.
    pub(crate) scratch: Vec<A>,
}

impl<A: Proto> Snooper<A> {
    pub(crate) fn new(
        config: &Config,
        table: MembershipTable<A>,
        static_routers: PortMask,
        vlans: &VlanPorts,
        now: Timestamp,
    ) -> Self {
        Snooper {
            table,
            routers: Routers::new(static_routers, vlans.clone()),
            querier: Querier::new(config, &vlans.snooped(), now),
            scratch: Vec::new(),
        }
    }
}

/// Both families' state.
#[derive(Debug)]
pub struct Snoopers {
    pub(crate) igmp: Snooper<Ipv4Addr>,
    pub(crate) mld: Snooper<Ipv6Addr>,
}

/// A query to build: general when `group` is unspecified.
#[derive(Clone, Copy, Debug)]
pub struct QuerySpec<'a, A> {
    pub(crate) src: A,
    pub(crate) group: A,
    pub(crate) generation: Generation,
    pub(crate) max_resp: Duration,
    pub(crate) s_flag: bool,
    pub(crate) sources: &'a [A],
}

/// A family as the engine drives it (implemented for `Ipv4Addr`, IGMP, and
/// `Ipv6Addr`, MLD); the engine's per-family API is generic over it.
pub trait Proto: Family {
    /// All nodes / all systems: where general queries go.
    const ALL_NODES: Self;
    /// Sources that fit one query frame.
    const MAX_QUERY_SOURCES: usize;

    fn snooper(s: &Snoopers) -> &Snooper<Self>;
    fn snooper_mut(s: &mut Snoopers) -> &mut Snooper<Self>;
    fn counters(c: &mut Counters) -> &mut ProtoCounters;

    /// Snooped at all (MLD can be switched off).
    fn enabled(c: &Config) -> bool;
    /// Querier for this family.
    fn querying(c: &Config) -> bool {
        c.querier && Self::enabled(c)
    }
    /// Our query source on `vlan` while querier there.
    fn querier_address(c: &Config, vlan: u16) -> Option<Self>;
    /// The version of the queries we send.
    fn query_version(c: &Config) -> Version;
    /// Source of a group-specific query when we are not the querier.
    fn proxy_source() -> Option<Self>;
    /// Source of a group-and-source-specific query on `vlan` when we are
    /// not the querier there.
    fn fallback_source(c: &Config, vlan: u16) -> Option<Self>;

    /// A complete query frame, out of `vlan`, to `dst`.
    fn query_frame(
        c: &Config,
        ident: u16,
        vlan: u16,
        dst: Self,
        q: &QuerySpec<'_, Self>,
    ) -> Vec<u8>;
}

fn tenths(d: Duration) -> u32 {
    u32::try_from(d.as_millis() / 100).unwrap_or(u32::MAX)
}

/// RFC 3376 §4.1.6 / RFC 3810 §5.1.8: QRV above 7 is sent as 0.
fn qrv(c: &Config) -> u8 {
    if c.robustness > 7 { 0 } else { c.robustness }
}

fn qqic(c: &Config) -> u8 {
    igmp::encode_float(u32::try_from(c.query_interval.as_secs()).unwrap_or(u32::MAX))
}

impl Proto for Ipv4Addr {
    const ALL_NODES: Self = Ipv4Addr::new(224, 0, 0, 1);
    const MAX_QUERY_SOURCES: usize = igmp::MAX_QUERY_SOURCES;

    fn snooper(s: &Snoopers) -> &Snooper<Self> {
        &s.igmp
    }
    fn snooper_mut(s: &mut Snoopers) -> &mut Snooper<Self> {
        &mut s.igmp
    }
    fn counters(c: &mut Counters) -> &mut ProtoCounters {
        &mut c.igmp
    }
    fn enabled(_: &Config) -> bool {
        true
    }
    fn querier_address(c: &Config, vlan: u16) -> Option<Self> {
        c.igmp_source_on(vlan)
    }
    fn query_version(c: &Config) -> Version {
        c.igmp_version
    }
    fn proxy_source() -> Option<Self> {
        Some(Ipv4Addr::UNSPECIFIED)
    }
    fn fallback_source(c: &Config, vlan: u16) -> Option<Self> {
        Some(c.igmp_source_on(vlan).unwrap_or(Ipv4Addr::UNSPECIFIED))
    }

    fn query_frame(
        c: &Config,
        ident: u16,
        vlan: u16,
        dst: Self,
        q: &QuerySpec<'_, Self>,
    ) -> Vec<u8> {
        let repr = if q.generation == Generation::SourceFilter {
            igmp::Repr::Query {
                // RFC 3376 §4.1.1 / §4.1.7 floating-point encodings.
                max_resp_code: igmp::encode_float(tenths(q.max_resp)),
                group: q.group,
                v3: Some(igmp::QueryV3 {
                    s_flag: q.s_flag,
                    qrv: qrv(c),
                    qqic: qqic(c),
                    sources: q.sources.to_vec(),
                }),
            }
        } else {
            // RFC 2236 §2.2: max response time in 1/10 s, validated to fit.
            igmp::Repr::Query {
                max_resp_code: u8::try_from(tenths(q.max_resp)).unwrap_or(u8::MAX).max(1),
                group: q.group,
                v3: None,
            }
        };
        frame::build_igmp(c.switch_mac, vlan, q.src, dst, ident, &repr)
    }
}

impl Proto for Ipv6Addr {
    const ALL_NODES: Self = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    const MAX_QUERY_SOURCES: usize = mld::MAX_QUERY_SOURCES;

    fn snooper(s: &Snoopers) -> &Snooper<Self> {
        &s.mld
    }
    fn snooper_mut(s: &mut Snoopers) -> &mut Snooper<Self> {
        &mut s.mld
    }
    fn counters(c: &mut Counters) -> &mut ProtoCounters {
        &mut c.mld
    }
    fn enabled(c: &Config) -> bool {
        c.mld
    }
    fn querier_address(c: &Config, vlan: u16) -> Option<Self> {
        Some(c.mld_source_on(vlan))
    }
    fn query_version(c: &Config) -> Version {
        c.mld_version
    }
    /// RFC 3810 §5.1.14: hosts ignore queries from anything but a
    /// link-local source, so there is no 0.0.0.0-like proxy query; and
    /// our own link-local source would make downstream switches take us
    /// for the querier. While another querier is elected, its own
    /// multicast-address-specific queries (which lower our timers, §7.6.1)
    /// ask the hosts.
    fn proxy_source() -> Option<Self> {
        None
    }
    fn fallback_source(_: &Config, _: u16) -> Option<Self> {
        None
    }

    fn query_frame(
        c: &Config,
        _ident: u16,
        vlan: u16,
        dst: Self,
        q: &QuerySpec<'_, Self>,
    ) -> Vec<u8> {
        let ms = u32::try_from(q.max_resp.as_millis()).unwrap_or(u32::MAX);
        let repr = if q.generation == Generation::SourceFilter {
            mld::Repr::Query {
                // RFC 3810 §5.1.3 Maximum Response Code.
                max_resp_code: mld::encode_max_resp(ms),
                address: q.group,
                v2: Some(mld::QueryV2 {
                    s_flag: q.s_flag,
                    qrv: qrv(c),
                    qqic: qqic(c),
                    sources: q.sources.to_vec(),
                }),
            }
        } else {
            // RFC 2710 §3.4: Maximum Response Delay in ms, validated to fit.
            mld::Repr::Query {
                max_resp_code: u16::try_from(ms).unwrap_or(u16::MAX).max(1),
                address: q.group,
                v2: None,
            }
        };
        frame::build_mld(c.switch_mac, vlan, q.src, dst, &repr)
    }
}
