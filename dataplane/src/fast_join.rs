//! The program's reports of the group entries it wrote itself (fast join,
//! ebpf/xdp/src/fast_join.rs): the FAST_JOINS ring buffer, drained by the
//! control plane, which then rewrites each reported entry with what it
//! wants ([`crate::Forwarding::touch`]).
use std::os::fd::{AsRawFd as _, RawFd};

use aya::maps::{MapData, RingBuf};
use igmpsnoop_common::{FAMILY_IPV4, FAMILY_IPV6, FastJoinEvent};
use tracing::{debug, warn};

use crate::{
    error::{Error, Result},
    forwarding::Forwarding,
};

pub(crate) struct FastJoins {
    ring: RingBuf<MapData>,
}

impl FastJoins {
    pub fn new(map: aya::maps::Map) -> Result<Self> {
        let ring = RingBuf::try_from(map).map_err(|source| Error::Map {
            name: "FAST_JOINS",
            source,
        })?;
        Ok(Self { ring })
    }

    /// Readable when the program reported a write.
    pub fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// Takes every waiting report and touches its group; returns how many
    /// there were. Never blocks.
    pub fn drain(&mut self, forwarding: &mut Forwarding) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            n += 1;
            let Some(event) = parse(&item) else {
                warn!(len = item.len(), "fast join: short event ignored");
                continue;
            };
            debug!(vlan = event.vlan, family = event.family, group = ?event.group, "fast join applied in XDP");
            match event.family {
                FAMILY_IPV4 => {
                    let mut g = [0u8; 4];
                    g.copy_from_slice(&event.group[..4]);
                    forwarding.touch(event.vlan, g);
                }
                FAMILY_IPV6 => forwarding.touch(event.vlan, event.group),
                other => warn!(family = other, "fast join: event of no family ignored"),
            }
        }
        n
    }
}

fn parse(bytes: &[u8]) -> Option<FastJoinEvent> {
    if bytes.len() < size_of::<FastJoinEvent>() {
        return None;
    }
    // SAFETY: FastJoinEvent is #[repr(C)] plain data (every bit pattern
    // valid) and `bytes` holds at least its size; read unaligned.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<FastJoinEvent>()) })
}
