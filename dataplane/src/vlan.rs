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

/// In `Forwarding::set_vlan_router_ports`: every VLAN without router ports
/// of its own.
pub const ANY_VLAN: u16 = igmpsnoop_common::ANY_VLAN;

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

/// `config` with its PVID among its VLANs, or an error naming the bad VID.
pub(crate) fn checked(port: &str, mut config: PortVlans) -> crate::Result<PortVlans> {
    let bad = config
        .pvid
        .iter()
        .chain(&config.vlans)
        .find(|&&v| !(1..=MAX_VID).contains(&v));
    if let Some(v) = bad {
        return Err(crate::Error::BadVlans {
            port: port.to_string(),
            reason: format!("VLAN {v} is outside 1..={MAX_VID}"),
        });
    }
    config.vlans.extend(config.pvid);
    Ok(config)
}

const TPID_8021Q: u16 = 0x8100;
const TPID_8021AD: u16 = 0x88a8;

/// A frame's VLAN (its outer tag's VID, 0 untagged) and whether it is tagged.
pub fn frame_vlan(frame: &[u8]) -> (u16, bool) {
    if frame.len() < 18 {
        return (0, false);
    }
    let tpid = u16::from_be_bytes([frame[12], frame[13]]);
    if tpid != TPID_8021Q && tpid != TPID_8021AD {
        return (0, false);
    }
    (u16::from_be_bytes([frame[14], frame[15]]) & 0x0fff, true)
}

/// The frame without its outer tag (`frame_vlan` said it has one).
pub fn untag(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() - 4);
    out.extend_from_slice(&frame[..12]);
    out.extend_from_slice(&frame[16..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pvid_is_carried_and_bad_vids_are_refused() {
        let c = checked(
            "p1",
            PortVlans {
                pvid: Some(10),
                vlans: BTreeSet::from([20]),
            },
        )
        .unwrap();
        assert_eq!(c.vlans, BTreeSet::from([10, 20]));
        let e = checked("p1", PortVlans::trunk(None, [0])).unwrap_err();
        assert!(
            e.to_string().contains("p1") && e.to_string().contains("VLAN 0"),
            "{e}"
        );
        assert!(checked("p2", PortVlans::access(4095)).is_err());
    }

    #[test]
    fn frames_are_read_and_untagged() {
        let mut f = vec![1u8; 12];
        f.extend_from_slice(&[0x81, 0, 0x20, 10, 0x08, 0, 0xaa]);
        assert_eq!(frame_vlan(&f), (10, true));
        let u = untag(&f);
        assert_eq!(&u[12..], &[0x08, 0, 0xaa]);
        assert_eq!(frame_vlan(&u), (0, false));
    }
}
