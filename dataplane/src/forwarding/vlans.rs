//! Which ports carry which VLAN, and in what format: what turns a set of
//! ports wanted for a VLAN into the kernel entry (`Want`) the fast path
//! replicates with.
//!
//! A set for VLAN v is `wanted ∩ carriers(v)`, and its format says how its
//! ports want v: all untagged, all tagged, or MIXED (see
//! `igmpsnoop_common::set_flags`). Without any VLAN config every set is
//! AS_IS: frames leave exactly as they came, as before VLAN support.
use std::collections::{BTreeSet, HashMap};

use igmpsnoop_common::{ANY_VLAN, PortVlanConf, VLAN_WORDS, VlanPorts, set_flags};

use super::PortMask;
use super::desired::Want;
use crate::vlan::{PortVlans, carries, untagged};

#[derive(Default)]
pub(crate) struct VlanTable {
    /// Per port index.
    ports: Vec<Option<PortVlans>>,
    /// Ports without VLAN config.
    unaware: PortMask,
    /// Per VLAN some port has config for: the ports that carry it (the
    /// VLAN-unaware ones included) and those of them that want it untagged.
    configured: HashMap<u16, (PortMask, PortMask)>,
}

impl VlanTable {
    pub fn new(ports: Vec<Option<PortVlans>>) -> Self {
        let mut this = VlanTable {
            ports,
            ..Default::default()
        };
        this.index();
        this
    }

    /// Sets one port's config (None: VLAN-unaware).
    pub fn set(&mut self, port: usize, config: Option<PortVlans>) {
        self.ports[port] = config;
        self.index();
    }

    pub fn get(&self, port: usize) -> Option<&PortVlans> {
        self.ports.get(port).and_then(Option::as_ref)
    }

    fn index(&mut self) {
        self.unaware = PortMask::EMPTY;
        self.configured.clear();
        let vlans: BTreeSet<u16> = self
            .ports
            .iter()
            .flatten()
            .flat_map(|c| c.vlans.iter().copied())
            .collect();
        for (port, config) in indexed(&self.ports) {
            if config.is_none() {
                self.unaware.insert(port);
            }
        }
        for vlan in vlans {
            let mut carry = PortMask::EMPTY;
            let mut plain = PortMask::EMPTY;
            for (port, config) in indexed(&self.ports) {
                if carries(config.as_ref(), vlan) {
                    carry.insert(port);
                    if untagged(config.as_ref(), vlan) {
                        plain.insert(port);
                    }
                }
            }
            self.configured.insert(vlan, (carry, plain));
        }
    }

    /// Whether any port has VLAN config.
    pub fn any(&self) -> bool {
        !self.configured.is_empty()
    }

    /// Ports without VLAN config: the flood set of VLAN 0 and of every VLAN
    /// no port has config for.
    pub fn unaware(&self) -> PortMask {
        self.unaware
    }

    /// Every VLAN some port has config for.
    pub fn configured(&self) -> impl Iterator<Item = u16> + '_ {
        self.configured.keys().copied()
    }

    /// The ports that carry `vlan`.
    pub fn carriers(&self, vlan: u16) -> PortMask {
        match self.configured.get(&vlan) {
            Some(&(carry, _)) => carry,
            None => self.unaware,
        }
    }

    /// The ports carrying `vlan` and those of them that want it untagged.
    fn ports_of(&self, vlan: u16) -> VlanPorts {
        let (carry, plain) = match self.configured.get(&vlan) {
            Some(&masks) => masks,
            None if vlan == 0 => (self.unaware, self.unaware),
            None => (self.unaware, PortMask::EMPTY),
        };
        VlanPorts {
            carry: carry.0,
            untagged: plain.0,
        }
    }

    /// What VLAN_PORTS holds with VLAN config (empty without): every
    /// configured VLAN, VLAN 0, and ANY_VLAN for every other VLAN, so that
    /// the program's [`VlanPorts::shape`] is this table's [`Self::shape`].
    pub fn vlan_ports(&self) -> HashMap<u16, VlanPorts> {
        if !self.any() {
            return HashMap::new();
        }
        let any = VlanPorts {
            carry: self.unaware.0,
            untagged: 0,
        };
        self.configured()
            .chain([0])
            .map(|v| (v, self.ports_of(v)))
            .chain([(ANY_VLAN, any)])
            .collect()
    }

    /// `want` (ports wanted for `vlan`) restricted to the ports carrying
    /// `vlan`, with its format.
    pub fn shape(&self, vlan: u16, want: Want) -> Want {
        if !self.any() {
            return want;
        }
        let shaped = self.ports_of(vlan).shape(want.mask.0);
        Want {
            mask: PortMask(shaped.mask),
            flags: (want.flags & !set_flags::FORMAT) | shaped.format,
            solo: [shaped.solo_untagged, shaped.solo_tagged],
        }
    }

    /// `want` for a set that serves VLANs no port has config for (the
    /// ANY_VLAN router set): the VLAN-unaware ports, frames as they came.
    pub fn shape_unconfigured(&self, want: Want) -> Want {
        if !self.any() {
            return want;
        }
        Want {
            mask: want.mask & self.unaware,
            flags: want.flags & !set_flags::FORMAT,
            solo: [0; 2],
        }
    }
}

/// Each port's config with its index (its bit in a [`PortMask`]): one per
/// port, at most `MAX_PORTS`, so the index fits a `u8`.
fn indexed(ports: &[Option<PortVlans>]) -> impl Iterator<Item = (u8, &Option<PortVlans>)> {
    ports.iter().zip(0u8..).map(|(config, port)| (port, config))
}

/// The PORT_VLANS entry of a port.
pub(crate) fn port_vlan_conf(ifindex: u32, config: Option<&PortVlans>) -> PortVlanConf {
    let mut conf = PortVlanConf {
        ifindex,
        ..Default::default()
    };
    if let Some(c) = config {
        conf.configured = 1;
        conf.pvid = c.pvid.unwrap_or(0);
        for &v in &c.vlans {
            conf.carried[usize::from(v >> 6) % VLAN_WORDS] |= 1 << (v & 63);
        }
    }
    conf
}

/// The config a PORT_VLANS entry holds (adoption).
pub(crate) fn from_port_vlan_conf(conf: &PortVlanConf) -> Option<PortVlans> {
    (conf.configured != 0).then(|| PortVlans {
        pvid: (conf.pvid != 0).then_some(conf.pvid),
        vlans: (0..=crate::vlan::MAX_VID)
            .filter(|&v| conf.carries(v))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> VlanTable {
        // p0 access 10, p1 trunk 10+20 tagged, p2 access 20, p3 unaware.
        VlanTable::new(vec![
            Some(PortVlans::access(10)),
            Some(PortVlans::trunk(None, [10, 20])),
            Some(PortVlans::access(20)),
            None,
        ])
    }

    #[test]
    fn without_vlan_config_every_set_is_as_is() {
        let t = VlanTable::new(vec![None, None]);
        let w = t.shape(10, Want::new(PortMask(0b11), set_flags::SOURCES));
        assert_eq!(w, Want::new(PortMask(0b11), set_flags::SOURCES));
        assert_eq!(t.carriers(7), PortMask(0b11));
    }

    #[test]
    fn sets_keep_the_carriers_of_their_vlan_and_say_their_format() {
        let t = table();
        assert_eq!(t.carriers(10), PortMask(0b1011));
        assert_eq!(t.carriers(20), PortMask(0b1110));
        assert_eq!(
            t.carriers(0),
            PortMask(0b1000),
            "VLAN 0: unaware ports only"
        );
        let w = t.shape(10, Want::new(PortMask(0b1111), 0));
        assert_eq!(w.mask, PortMask(0b1011));
        assert_eq!(w.flags, set_flags::MIXED);
        assert_eq!(w.solo, [1, 0], "p0 the only untagged one; p1 and p3 tagged");
        let w = t.shape(20, Want::new(PortMask(0b0100), 0));
        assert_eq!((w.mask, w.flags), (PortMask(0b0100), set_flags::UNTAGGED));
        let w = t.shape(10, Want::new(PortMask(0b1010), 0));
        assert_eq!(
            (w.mask, w.flags, w.solo),
            (PortMask(0b1010), set_flags::TAGGED, [0, 0])
        );
        let w = t.shape(0, Want::new(PortMask(0b1111), 0));
        assert_eq!((w.mask, w.flags), (PortMask(0b1000), set_flags::UNTAGGED));
        let w = t.shape(30, Want::new(PortMask(0b1111), 0));
        assert_eq!((w.mask, w.flags), (PortMask(0b1000), set_flags::TAGGED));
    }

    /// What the program reads (VLAN_PORTS, with its fallback to ANY_VLAN)
    /// shapes every set as the table does, for every VLAN and set here.
    #[test]
    fn vlan_ports_shape_every_set_as_the_table_does() {
        let t = table();
        let ports = t.vlan_ports();
        let keys: BTreeSet<u16> = ports.keys().copied().collect();
        assert_eq!(keys, BTreeSet::from([0, 10, 20, ANY_VLAN]));
        for vlan in [0, 10, 20, 30, 4094] {
            let p = ports.get(&vlan).unwrap_or(&ports[&ANY_VLAN]);
            for mask in 0..16u64 {
                let program = p.shape(mask);
                let table = t.shape(vlan, Want::new(PortMask(mask), 0));
                assert_eq!(
                    (
                        PortMask(program.mask),
                        program.format,
                        [program.solo_untagged, program.solo_tagged]
                    ),
                    (table.mask, table.flags, table.solo),
                    "VLAN {vlan}, ports {mask:#b}"
                );
            }
        }
        assert!(VlanTable::new(vec![None, None]).vlan_ports().is_empty());
    }

    #[test]
    fn port_vlan_conf_round_trips() {
        let c = PortVlans::trunk(Some(5), [5, 64, 4094]);
        let conf = port_vlan_conf(7, Some(&c));
        assert!(conf.carries(64) && conf.carries(4094) && !conf.carries(63));
        assert_eq!(from_port_vlan_conf(&conf), Some(c));
        assert_eq!(from_port_vlan_conf(&port_vlan_conf(7, None)), None);
    }
}
