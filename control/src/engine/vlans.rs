//! Which ports carry which VLAN, derived once from the ports' VLAN config
//! (the semantics of `igmpsnoop_dataplane::vlan`, which the fast path
//! enforces): the engine snoops each VLAN on its own and must never ask to
//! send a VLAN's frame out of a port that does not carry it.

use super::config::PortConfig;
use crate::port::{PortId, PortMask};
use igmpsnoop_dataplane::vlan::{PortVlans, carries};
use std::collections::BTreeMap;

/// The VLAN membership of every port, as port sets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VlanPorts {
    /// Ports without VLAN config: they carry every VLAN.
    unaware: PortMask,
    /// Per configured VLAN, the ports with VLAN config that carry it.
    configured: BTreeMap<u16, PortMask>,
    /// Each port's config (None: VLAN-unaware), by port index.
    ports: Vec<Option<PortVlans>>,
}

impl VlanPorts {
    pub fn new(ports: &[PortConfig]) -> VlanPorts {
        let mut v = VlanPorts {
            ports: ports.iter().map(|p| p.vlans.clone()).collect(),
            ..VlanPorts::default()
        };
        for (i, p) in ports.iter().enumerate() {
            // Engine::new validated the port count (at most 64).
            let id = i as PortId;
            match &p.vlans {
                None => v.unaware.insert(id),
                Some(c) => {
                    for &vlan in &c.vlans {
                        v.configured.entry(vlan).or_default().insert(id);
                    }
                }
            }
        }
        v
    }

    /// The ports that carry `vlan`.
    pub fn carriers(&self, vlan: u16) -> PortMask {
        self.unaware | self.configured.get(&vlan).copied().unwrap_or_default()
    }

    /// The VLANs snooped (querier, router ports, static routers): VLAN 0
    /// while any port is VLAN-unaware (its untagged frames), and every
    /// VLAN some port is configured for. Ascending.
    pub fn snooped(&self) -> Vec<u16> {
        let zero = (!self.unaware.is_empty()).then_some(0);
        zero.into_iter()
            .chain(self.configured.keys().copied())
            .collect()
    }

    /// The VLAN a frame from `port` belongs to: `tag` is its 802.1Q VID
    /// (0 when untagged or priority-tagged). None: the port does not take
    /// such frames (the fast path drops them; this is the engine's own
    /// check, so that it never learns on a VLAN the port is not in).
    pub fn ingress(&self, port: PortId, tag: u16) -> Option<u16> {
        match self.ports.get(usize::from(port))? {
            None => Some(tag),
            Some(c) if tag == 0 => c.pvid,
            Some(c) => carries(Some(c), tag).then_some(tag),
        }
    }

    /// Whether `port` carries `vlan`.
    pub fn port_carries(&self, port: PortId, vlan: u16) -> bool {
        self.carriers(vlan).contains(port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(vlans: Option<PortVlans>) -> PortConfig {
        PortConfig {
            vlans,
            ..PortConfig::default()
        }
    }

    #[test]
    fn unaware_ports_carry_every_vlan() {
        let v = VlanPorts::new(&[port(None), port(None)]);
        assert_eq!(v.snooped(), vec![0]);
        assert_eq!(v.carriers(0), PortMask(0b11));
        assert_eq!(v.carriers(10), PortMask(0b11));
        assert_eq!(v.ingress(1, 0), Some(0));
        assert_eq!(v.ingress(1, 33), Some(33));
        assert_eq!(v.ingress(2, 0), None);
    }

    #[test]
    fn configured_ports_carry_their_vlans_only() {
        let v = VlanPorts::new(&[
            port(Some(PortVlans::access(10))),
            port(Some(PortVlans::trunk(None, [10, 20]))),
            port(Some(PortVlans::access(20))),
        ]);
        assert_eq!(v.snooped(), vec![10, 20]);
        assert_eq!(v.carriers(10), PortMask(0b011));
        assert_eq!(v.carriers(20), PortMask(0b110));
        assert_eq!(v.carriers(0), PortMask::EMPTY);
        // Untagged in: the PVID; a trunk without one takes none.
        assert_eq!(v.ingress(0, 0), Some(10));
        assert_eq!(v.ingress(1, 0), None);
        assert_eq!(v.ingress(1, 20), Some(20));
        assert_eq!(v.ingress(0, 20), None);
    }

    #[test]
    fn a_mixed_switch_snoops_vlan_0_too() {
        let v = VlanPorts::new(&[port(None), port(Some(PortVlans::access(10)))]);
        assert_eq!(v.snooped(), vec![0, 10]);
        assert_eq!(v.carriers(10), PortMask(0b11));
        assert_eq!(v.carriers(0), PortMask(0b01));
    }
}
