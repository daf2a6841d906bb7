//! The querier of one family: startup and periodic general queries per
//! VLAN, and election by lowest source address (RFC 2236 §3, RFC 3376
//! §6.6.2; RFC 3810 §7.6.2 for MLD, lowest IPv6 address). IGMP and MLD
//! each have their own, independent of the other; each VLAN is a link of
//! its own, with its own election, timers and our source address there.

use super::config::Config;
use super::proto::Proto;
use crate::family::{AddrFamily, Version};
use crate::time::Timestamp;
use core::net::IpAddr;
use serde::Serialize;

#[derive(Clone, Debug)]
struct VlanQuerier<A> {
    vlan: u16,
    /// A better querier heard, and when its presence lapses.
    other: Option<(A, Timestamp)>,
    next_general_query: Option<Timestamp>,
    startup_left: u8,
}

#[derive(Clone, Debug)]
pub(crate) struct Querier<A> {
    vlans: Vec<VlanQuerier<A>>,
}

/// Querier state of one VLAN, for the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuerierView {
    pub family: AddrFamily,
    pub vlan: u16,
    pub we_are_querier: bool,
    pub our_address: Option<IpAddr>,
    /// The elected querier: the other one if present, else ours if querier.
    pub querier_address: Option<IpAddr>,
    pub other_querier_expires: Option<Timestamp>,
    pub next_general_query: Option<Timestamp>,
    pub startup_queries_left: u8,
    pub version: Version,
}

/// What happened on hearing a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    /// Not a querier VLAN, or the query loses to us.
    Nothing,
    /// A better querier: ours is silenced (or stays silenced) until the
    /// other querier present interval lapses.
    OtherQuerier { newly: bool },
}

impl<A: Proto> Querier<A> {
    /// A querier for each of `vlans` (the VLANs snooped).
    pub fn new(config: &Config, vlans: &[u16], now: Timestamp) -> Querier<A> {
        let on = A::querying(config);
        let mut vlans: Vec<VlanQuerier<A>> = vlans
            .iter()
            .map(|&vlan| VlanQuerier {
                vlan,
                other: None,
                // The first startup query is due at once.
                next_general_query: on.then_some(now),
                startup_left: if on { config.startup_count() } else { 0 },
            })
            .collect();
        vlans.sort_by_key(|v| v.vlan);
        vlans.dedup_by_key(|v| v.vlan);
        Querier { vlans }
    }

    /// The querier was switched on or off while running (`config` is the new
    /// one). On: it starts as at start-up, startup queries first, the first
    /// due at `now`, except on VLANs where a better querier is present (it
    /// resumes when that one lapses, RFC 3376 §6.6.2). Off: no more queries.
    pub fn switch(&mut self, config: &Config, now: Timestamp) {
        for v in &mut self.vlans {
            if A::querying(config) && v.other.is_none() {
                v.next_general_query = Some(now);
                v.startup_left = config.startup_count();
            } else {
                v.next_general_query = None;
                v.startup_left = 0;
            }
        }
    }

    /// A query from `src` (non-zero) arrived on `vlan`. RFC 3376 §6.6.2 /
    /// RFC 2236 §3 / RFC 3810 §7.6.2: a query from a lower IP address wins
    /// the election; the loser stops querying for the Other Querier
    /// Present Interval.
    pub fn heard(&mut self, config: &Config, vlan: u16, src: A, now: Timestamp) -> Heard {
        let Some(v) = self.vlans.iter_mut().find(|v| v.vlan == vlan) else {
            return Heard::Nothing;
        };
        let ours = A::querier_address(config, vlan).filter(|_| A::querying(config));
        // A 0.0.0.0 proxy querier defers to any real querier (RFC 4541 §2.1.1).
        let wins = match ours {
            Some(a) if a != A::UNSPECIFIED => src < a,
            _ => true,
        };
        if !wins {
            return Heard::Nothing;
        }
        let newly = v.other.is_none();
        v.other = Some((src, now + config.other_querier_present_interval()));
        v.next_general_query = None;
        v.startup_left = 0;
        Heard::OtherQuerier { newly }
    }

    /// Fire querier timers due at or before `now`: calls `send(vlan)` for
    /// every general query due. Returns how many VLANs resumed querying.
    pub fn poll(&mut self, config: &Config, now: Timestamp, mut send: impl FnMut(u16)) -> u64 {
        let mut resumed = 0;
        for v in &mut self.vlans {
            if let Some((_, until)) = v.other
                && until <= now
            {
                v.other = None;
                if A::querying(config) {
                    // RFC 3376 §6.6.2: when the other querier present timer
                    // expires we become querier again: query at once.
                    v.next_general_query = Some(now);
                    resumed += 1;
                }
            }
            if let Some(t) = v.next_general_query
                && t <= now
            {
                send(v.vlan);
                let wait = if v.startup_left > 1 {
                    v.startup_left -= 1;
                    config.startup_interval()
                } else {
                    v.startup_left = 0;
                    config.query_interval
                };
                v.next_general_query = Some(now + wait);
            }
        }
        resumed
    }

    /// Source of a group-specific query on `vlan`: our address while we
    /// are the querier there, else the family's proxy source (IGMP:
    /// 0.0.0.0; MLD: none, no query). RFC 3376 §6.6.2: a non-querier
    /// sends no queries; a snooping switch may still ask its hosts with a
    /// 0.0.0.0 source (RFC 4541 §2.1.1), which no election and no router
    /// port learning counts. Our own address would make the switches
    /// downstream take us for the querier and for a router.
    pub fn query_source(&self, config: &Config, vlan: u16) -> Option<A> {
        if self.is_active(config, vlan) {
            A::querier_address(config, vlan)
        } else {
            A::proxy_source()
        }
    }

    pub fn is_active(&self, config: &Config, vlan: u16) -> bool {
        self.active_vlans(config).any(|v| v == vlan)
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.vlans
            .iter()
            .flat_map(|v| [v.other.map(|(_, t)| t), v.next_general_query])
            .flatten()
            .min()
    }

    /// Query a newly up port at once: the VLANs where we are querier.
    pub fn active_vlans(&self, config: &Config) -> impl Iterator<Item = u16> + '_ {
        let on = A::querying(config);
        self.vlans
            .iter()
            .filter(move |v| on && v.other.is_none())
            .map(|v| v.vlan)
    }

    pub fn views(&self, config: &Config) -> Vec<QuerierView> {
        let on = A::querying(config);
        self.vlans
            .iter()
            .map(|v| (v, A::querier_address(config, v.vlan).filter(|_| on)))
            .map(|(v, ours)| QuerierView {
                family: A::FAMILY,
                vlan: v.vlan,
                we_are_querier: on && v.other.is_none(),
                our_address: ours.map(Into::into),
                querier_address: v.other.map(|(a, _)| a).or(ours).map(Into::into),
                other_querier_expires: v.other.map(|(_, t)| t),
                next_general_query: v.next_general_query,
                startup_queries_left: v.startup_left,
                version: A::query_version(config),
            })
            .collect()
    }
}
