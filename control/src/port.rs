//! Port identifiers and port sets.

/// A port index, `0..64`.
pub type PortId = u8;

/// An Ethernet MAC address.
pub type Mac = [u8; 6];

/// The most ports the engine handles: one bit each in a [`PortMask`].
pub const MAX_PORTS: usize = 64;

pub use igmpsnoop_common::PortMask;
