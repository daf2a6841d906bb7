//! Port sets: one type for the engine, the daemon and the data plane.

/// A set of ports as a bitmap (bit `i` = port `i`).
///
/// `repr(transparent)`: the same bytes as the u64 the eBPF maps hold
/// (SLOTS keys, MASKS values), so userspace can key and fill them with it.
#[repr(transparent)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "user", derive(serde::Serialize))]
pub struct PortMask(pub u64);

impl PortMask {
    pub const EMPTY: PortMask = PortMask(0);

    /// Ports `0..n`.
    pub const fn first(n: usize) -> PortMask {
        if n >= 64 {
            PortMask(u64::MAX)
        } else {
            PortMask((1u64 << n) - 1)
        }
    }

    pub const fn single(port: u8) -> PortMask {
        if port < 64 {
            PortMask(1u64 << port)
        } else {
            PortMask(0)
        }
    }

    pub const fn contains(self, port: u8) -> bool {
        port < 64 && self.0 & (1u64 << port) != 0
    }

    pub fn insert(&mut self, port: u8) {
        if port < 64 {
            self.0 |= 1u64 << port;
        }
    }

    pub fn remove(&mut self, port: u8) {
        if port < 64 {
            self.0 &= !(1u64 << port);
        }
    }

    /// This set without `port`.
    #[must_use]
    pub const fn without(self, port: u8) -> PortMask {
        if port < 64 {
            PortMask(self.0 & !(1u64 << port))
        } else {
            self
        }
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// Ports in ascending order.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            // trailing_zeros of a non-zero u64 is < 64, so it fits a u8.
            let p = bits.trailing_zeros() as u8;
            bits &= bits - 1;
            Some(p)
        })
    }
}

impl core::ops::BitOr for PortMask {
    type Output = PortMask;
    fn bitor(self, rhs: PortMask) -> PortMask {
        PortMask(self.0 | rhs.0)
    }
}

impl core::ops::BitAnd for PortMask {
    type Output = PortMask;
    fn bitand(self, rhs: PortMask) -> PortMask {
        PortMask(self.0 & rhs.0)
    }
}

impl core::ops::BitOrAssign for PortMask {
    fn bitor_assign(&mut self, rhs: PortMask) {
        self.0 |= rhs.0;
    }
}

impl core::ops::BitAndAssign for PortMask {
    fn bitand_assign(&mut self, rhs: PortMask) {
        self.0 &= rhs.0;
    }
}

impl core::ops::Not for PortMask {
    type Output = PortMask;
    fn not(self) -> PortMask {
        PortMask(!self.0)
    }
}

/// The set of the ports given (those past 63 ignored, as `insert` does).
impl FromIterator<u8> for PortMask {
    fn from_iter<I: IntoIterator<Item = u8>>(ports: I) -> PortMask {
        let mut mask = PortMask::EMPTY;
        for port in ports {
            mask.insert(port);
        }
        mask
    }
}

// SAFETY: repr(transparent) over a u64: no padding, every bit pattern is a
// valid set.
#[cfg(feature = "user")]
unsafe impl aya::Pod for PortMask {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{vec, vec::Vec};

    #[test]
    fn mask_ops() {
        let mut m = PortMask::default();
        assert!(m.is_empty());
        m.insert(0);
        m.insert(63);
        m.insert(64); // ignored
        assert!(m.contains(0) && m.contains(63) && !m.contains(64));
        assert_eq!(m.count(), 2);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![0, 63]);
        m.remove(0);
        assert_eq!(m, PortMask::single(63));
        assert_eq!(PortMask::first(3), PortMask(0b111));
        assert_eq!(PortMask::first(64), PortMask(u64::MAX));
        assert_eq!(PortMask::first(3).without(1), PortMask(0b101));
        assert_eq!(
            [2u8, 0, 64].into_iter().collect::<PortMask>(),
            PortMask(0b101)
        );
    }
}
