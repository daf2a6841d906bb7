//! Multicast router ports: static from configuration, learned from queries
//! and PIM hellos and aged out (RFC 4541 §2.1.1).
//!
//! One set per family and VLAN: an IGMP querier or PIM router is not an
//! MLD one, and a query heard on VLAN 10 says where VLAN 10's router is,
//! nothing of VLAN 20's. A static router port is one on every VLAN it
//! carries.

use super::vlans::VlanPorts;
use crate::family::{AddrFamily, Family};
use crate::port::{PortId, PortMask};
use crate::time::Timestamp;
use core::net::IpAddr;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug)]
struct Learned<A> {
    from: A,
    expires: Timestamp,
}

#[derive(Clone, Debug)]
pub(crate) struct Routers<A> {
    /// Learned router ports by (VLAN, port); few (usually one per VLAN).
    learned: BTreeMap<(u16, PortId), Learned<A>>,
    static_ports: PortMask,
    vlans: VlanPorts,
    /// The set last reported in a RouterPorts action, per VLAN.
    reported: BTreeMap<u16, PortMask>,
    /// Something changed since `take_changes` last looked: it runs after
    /// every frame, and most frames change no router port.
    dirty: bool,
}

/// One router port of one VLAN, for the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouterPortView {
    pub family: AddrFamily,
    pub vlan: u16,
    pub port: PortId,
    pub learned_from: Option<IpAddr>,
    pub is_static: bool,
    pub expires: Option<Timestamp>,
}

impl<A: Family> Routers<A> {
    pub fn new(static_ports: PortMask, vlans: VlanPorts) -> Routers<A> {
        Routers {
            learned: BTreeMap::new(),
            static_ports,
            vlans,
            reported: BTreeMap::new(),
            dirty: true,
        }
    }

    pub fn static_ports(&self) -> PortMask {
        self.static_ports
    }

    /// New static router ports (reconfiguration); learned ones stay.
    pub fn set_static(&mut self, ports: PortMask) {
        self.static_ports = ports;
        self.dirty = true;
    }

    fn learned_on(&self, vlan: u16) -> PortMask {
        let mut m = PortMask::EMPTY;
        for &(_, p) in self
            .learned
            .range((vlan, 0)..=(vlan, PortId::MAX))
            .map(|(k, _)| k)
        {
            m.insert(p);
        }
        m
    }

    /// The router ports of `vlan`: the static ones that carry it and
    /// those learned on it.
    pub fn mask(&self, vlan: u16) -> PortMask {
        (self.static_ports & self.vlans.carriers(vlan)) | self.learned_on(vlan)
    }

    /// Router ports of any VLAN.
    pub fn any_vlan(&self) -> PortMask {
        self.learned
            .keys()
            .fold(self.static_ports, |mut m, &(_, p)| {
                m.insert(p);
                m
            })
    }

    /// Learn (or refresh) `port` as a router port of `vlan`. True if newly
    /// learned.
    pub fn learn(&mut self, vlan: u16, port: PortId, from: A, expires: Timestamp) -> bool {
        let new = Learned { from, expires };
        let newly = self.learned.insert((vlan, port), new).is_none();
        self.dirty |= newly;
        newly
    }

    /// Expire learned ports due at or before `now`; returns how many.
    pub fn age(&mut self, now: Timestamp) -> u64 {
        let before = self.learned.len();
        self.learned.retain(|_, l| l.expires > now);
        let gone = before - self.learned.len();
        self.dirty |= gone > 0;
        gone as u64
    }

    /// The port went down: it is no VLAN's router port until heard again.
    pub fn forget(&mut self, port: PortId) {
        let before = self.learned.len();
        self.learned.retain(|&(_, p), _| p != port);
        self.dirty |= self.learned.len() != before;
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.learned.values().map(|l| l.expires).min()
    }

    /// The VLANs whose router ports are worth a word: the snooped ones,
    /// those with learned ports and those reported before.
    fn vlans(&self) -> Vec<u16> {
        let mut v = self.vlans.snooped();
        v.extend(self.learned.keys().map(|&(vlan, _)| vlan));
        v.extend(self.reported.keys());
        v.sort_unstable();
        v.dedup();
        v
    }

    /// (VLAN, set) for every VLAN whose set differs from the last one
    /// reported (a VLAN not reported yet counts as empty).
    pub fn take_changes(&mut self) -> Vec<(u16, PortMask)> {
        let mut changed = Vec::new();
        if !std::mem::take(&mut self.dirty) {
            return changed;
        }
        for vlan in self.vlans() {
            let m = self.mask(vlan);
            let before = self.reported.get(&vlan).copied().unwrap_or_default();
            if m != before {
                changed.push((vlan, m));
            }
            if m.is_empty() {
                self.reported.remove(&vlan);
            } else {
                self.reported.insert(vlan, m);
            }
        }
        changed
    }

    pub fn views(&self) -> Vec<RouterPortView> {
        self.vlans()
            .into_iter()
            .flat_map(|vlan| {
                self.mask(vlan).iter().map(move |p| {
                    let l = self.learned.get(&(vlan, p));
                    RouterPortView {
                        family: A::FAMILY,
                        vlan,
                        port: p,
                        learned_from: l.map(|l| l.from.into()),
                        is_static: self.static_ports.contains(p),
                        expires: l.map(|l| l.expires),
                    }
                })
            })
            .collect()
    }
}
