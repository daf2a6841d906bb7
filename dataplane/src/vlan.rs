//! Ports' IEEE 802.1Q VLAN membership, as the data plane applies it.
//!
//! A port without VLAN config ([`PortVlans`] = None) is VLAN-unaware, as
//! before VLAN support: untagged frames in are VLAN 0, tagged ones keep
//! their VLAN, and it carries every VLAN (VLAN 0 untagged, the rest
//! tagged). A port with VLAN config carries exactly its VLANs: untagged
//! frames in belong to its PVID (dropped when it has none), frames of its
//! PVID leave untagged, frames of its other VLANs leave tagged.
use std::collections::BTreeSet;

/// The highest VLAN ID a port can carry (4095 is reserved, IEEE 802.1Q).
pub const MAX_VID: u16 = 4094;

/// One port's VLAN membership (the `[ports.NAME]` table of the config).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortVlans {
    /// Untagged frames in belong to it; its frames leave untagged. None:
    /// untagged frames are dropped (a trunk that carries tagged VLANs only).
    pub pvid: Option<u16>,
    /// Every VLAN the port carries, the PVID included, each 1..=MAX_VID.
    pub vlans: BTreeSet<u16>,
}

impl PortVlans {
    /// An access port: `pvid` untagged, nothing else.
    pub fn access(pvid: u16) -> Self {
        PortVlans {
            pvid: Some(pvid),
            vlans: BTreeSet::from([pvid]),
        }
    }

    /// A trunk: `pvid` (if any) untagged, the rest of `vlans` tagged.
    pub fn trunk(pvid: Option<u16>, vlans: impl IntoIterator<Item = u16>) -> Self {
        let mut vlans: BTreeSet<u16> = vlans.into_iter().collect();
        vlans.extend(pvid);
        PortVlans { pvid, vlans }
    }
}

/// Whether a port with `config` (None: VLAN-unaware) carries `vlan`.
pub fn carries(config: Option<&PortVlans>, vlan: u16) -> bool {
    match config {
        None => true,
        Some(c) => c.vlans.contains(&vlan),
    }
}

/// Whether frames of `vlan` leave a port with `config` untagged: the PVID's
/// (VLAN 0's on a VLAN-unaware port).
pub fn untagged(config: Option<&PortVlans>, vlan: u16) -> bool {
    match config {
        None => vlan == 0,
        Some(c) => c.pvid == Some(vlan),
    }
}
