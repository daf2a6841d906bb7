//! The program's reports of the group entries it wrote itself (fast join,
//! ebpf/xdp/src/fast_join.rs, and fast leave, ebpf/xdp/src/fast_leave.rs:
//! one event type, its `kind` telling them apart): the FAST_JOINS ring buffer, drained by the
//! control plane, which then rewrites each reported entry with what it
//! wants ([`crate::Forwarding::touch`]) once the report had time to reach
//! the engine.
use std::{
    collections::VecDeque,
    os::fd::{AsRawFd as _, RawFd},
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use igmpsnoop_common::{FAMILY_IPV4, FAMILY_IPV6, FAST_LEAVE, FastJoinEvent};
use tracing::{debug, warn};

use crate::{
    error::{Error, Result},
    forwarding::Forwarding,
};

/// How long an entry the program wrote is left as it is before the control
/// plane rewrites it. The program reports the write before it redirects the
/// report to the AF_XDP socket, so the event can be read before the engine
/// has the report: a rewrite then took the join back until the next round
/// handled the report (the join latency's tail, up to milliseconds). After
/// the grace the engine has handled the report (its own flush wrote the
/// same set) or refused it or never got it (the rewrite undoes the join).
pub(crate) const GRACE: Duration = Duration::from_millis(50);

/// Reports taken from the ring, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// Joins the program applied (fast join).
    pub joins: usize,
    /// Leaves the program applied (fast leave).
    pub leaves: usize,
}

pub(crate) struct FastJoins {
    ring: RingBuf<MapData>,
    /// Events read, oldest first, with when each is due for its rewrite.
    awaiting: VecDeque<(Instant, FastJoinEvent)>,
}

impl FastJoins {
    pub fn new(map: aya::maps::Map) -> Result<Self> {
        let ring = RingBuf::try_from(map).map_err(|source| Error::Map {
            name: "FAST_JOINS",
            source,
        })?;
        Ok(Self {
            ring,
            awaiting: VecDeque::new(),
        })
    }

    /// Readable when the program reported a write.
    pub fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// When the oldest event read is due for its rewrite.
    pub fn next_due(&self) -> Option<Instant> {
        self.awaiting.front().map(|(due, _)| *due)
    }

    /// Takes every waiting event (due `GRACE` after `now`) and touches the
    /// group of every event due by `now`; returns how many events of each
    /// kind were read. Never blocks.
    pub fn drain(&mut self, forwarding: &mut Forwarding, now: Instant) -> Drained {
        let mut n = Drained::default();
        while let Some(item) = self.ring.next() {
            match parse(&item) {
                Some(event) => {
                    if event.kind == FAST_LEAVE {
                        n.leaves += 1;
                    } else {
                        n.joins += 1;
                    }
                    note(forwarding, &event);
                    self.awaiting.push_back((now + GRACE, event));
                }
                None => warn!(len = item.len(), "fast join: short event ignored"),
            }
        }
        while let Some((due, event)) = self.awaiting.front() {
            if *due > now {
                break;
            }
            touch(forwarding, event);
            self.awaiting.pop_front();
        }
        n
    }
}

/// Notes the program's write, which a flush of the entry before the grace
/// ends covers ([`Forwarding::program_wrote`]).
fn note(forwarding: &mut Forwarding, event: &FastJoinEvent) {
    match event.family {
        FAMILY_IPV4 => forwarding.program_wrote(event.vlan, ipv4(event)),
        FAMILY_IPV6 => forwarding.program_wrote(event.vlan, event.group),
        _ => {}
    }
}

fn ipv4(event: &FastJoinEvent) -> [u8; 4] {
    let mut g = [0u8; 4];
    g.copy_from_slice(&event.group[..4]);
    g
}

fn touch(forwarding: &mut Forwarding, event: &FastJoinEvent) {
    debug!(vlan = event.vlan, family = event.family, group = ?event.group, kind = event.kind, "fast join or leave applied in XDP: rewriting the entry unless a flush did");
    match event.family {
        FAMILY_IPV4 => forwarding.touch(event.vlan, ipv4(event)),
        FAMILY_IPV6 => forwarding.touch(event.vlan, event.group),
        other => warn!(family = other, "fast join: event of no family ignored"),
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
