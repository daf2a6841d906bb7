//! Multicast router ports: static from configuration, learned from queries
//! and PIM hellos and aged out (RFC 4541 §2.1.1).

//! One set per family: an IGMP querier or PIM router is not an MLD one.

use crate::family::{AddrFamily, Family};
use crate::port::{MAX_PORTS, PortId, PortMask};
use crate::time::Timestamp;
use core::net::IpAddr;
use serde::Serialize;

#[derive(Clone, Copy, Debug)]
struct Learned<A> {
    from: A,
    expires: Timestamp,
}

#[derive(Clone, Debug)]
pub(crate) struct Routers<A> {
    learned: [Option<Learned<A>>; MAX_PORTS],
    static_ports: PortMask,
    /// Ports with a `learned` entry, kept in step so `mask` is O(1).
    learned_mask: PortMask,
    /// The set last reported in a RouterPorts action.
    reported: PortMask,
}

/// One router port, for the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouterPortView {
    pub family: AddrFamily,
    pub port: PortId,
    pub learned_from: Option<IpAddr>,
    pub is_static: bool,
    pub expires: Option<Timestamp>,
}

impl<A: Family> Routers<A> {
    pub fn new(static_ports: PortMask) -> Routers<A> {
        Routers {
            learned: [None; MAX_PORTS],
            static_ports,
            learned_mask: PortMask::EMPTY,
            reported: PortMask::EMPTY,
        }
    }

    pub fn static_ports(&self) -> PortMask {
        self.static_ports
    }

    /// New static router ports (reconfiguration); learned ones stay.
    pub fn set_static(&mut self, ports: PortMask) {
        self.static_ports = ports;
    }

    pub fn mask(&self) -> PortMask {
        self.static_ports | self.learned_mask
    }

    /// Learn (or refresh) `port` as a router port. True if newly learned.
    pub fn learn(&mut self, port: PortId, from: A, expires: Timestamp) -> bool {
        match self.learned.get_mut(usize::from(port)) {
            Some(slot) => {
                let new = slot.is_none();
                *slot = Some(Learned { from, expires });
                self.learned_mask.insert(port);
                new
            }
            None => false,
        }
    }

    /// Expire learned ports due at or before `now`; returns how many.
    /// Walks the learned ports only (usually none or one), not all 64.
    pub fn age(&mut self, now: Timestamp) -> u64 {
        let mut n = 0;
        for p in self.learned_mask.iter() {
            let slot = &mut self.learned[usize::from(p)];
            if slot.is_some_and(|l| l.expires <= now) {
                *slot = None;
                self.learned_mask.remove(p);
                n += 1;
            }
        }
        n
    }

    pub fn forget(&mut self, port: PortId) {
        if let Some(slot) = self.learned.get_mut(usize::from(port)) {
            *slot = None;
            self.learned_mask.remove(port);
        }
    }

    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.learned_mask
            .iter()
            .filter_map(|p| self.learned[usize::from(p)].map(|l| l.expires))
            .min()
    }

    /// The current set if it differs from the last one reported.
    pub fn take_change(&mut self) -> Option<PortMask> {
        let m = self.mask();
        (m != self.reported).then(|| {
            self.reported = m;
            m
        })
    }

    pub fn views(&self) -> Vec<RouterPortView> {
        self.mask()
            .iter()
            .map(|p| {
                let l = self.learned.get(usize::from(p)).copied().flatten();
                RouterPortView {
                    family: A::FAMILY,
                    port: p,
                    learned_from: l.map(|l| l.from.into()),
                    is_static: self.static_ports.contains(p),
                    expires: l.map(|l| l.expires),
                }
            })
            .collect()
    }
}
