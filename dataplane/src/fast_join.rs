//! The program's reports of the group entries it wrote itself (fast join,
//! ebpf/xdp/src/fast_join.rs, and fast leave, ebpf/xdp/src/fast_leave.rs:
//! one event type, its `kind` telling them apart): the FAST_JOINS ring buffer, drained by the
//! control plane, which then rewrites each reported entry with what it
//! wants ([`crate::Forwarding::touch`]) once the report had time to reach
//! the engine.
use std::{
    collections::{HashMap, VecDeque},
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
    awaiting: Awaiting,
}

/// A group entry as events name it: family, VLAN, group.
type EntryKey = (u16, u16, [u8; 16]);

fn entry_key(event: &FastJoinEvent) -> EntryKey {
    (event.family, event.vlan, event.group)
}

/// Events read and not yet due, oldest first, with how many of them name
/// each entry.
#[derive(Default)]
struct Awaiting {
    queue: VecDeque<(Instant, FastJoinEvent)>,
    per_entry: HashMap<EntryKey, u32>,
}

impl Awaiting {
    fn push(&mut self, due: Instant, event: FastJoinEvent) {
        *self.per_entry.entry(entry_key(&event)).or_default() += 1;
        self.queue.push_back((due, event));
    }

    /// Drops the oldest events while `covered` says a flush wrote their
    /// entry since: their grace would end in no rewrite, and the loop
    /// need not wake for it (in the join benchmark it woke 50 ms after
    /// every join and leave: when the next join came in).
    fn retire_covered(&mut self, covered: impl Fn(&FastJoinEvent) -> bool) {
        while self.queue.front().is_some_and(|(_, event)| covered(event)) {
            self.pop_front();
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// The next event due by `now` and whether it is its entry's last
    /// awaiting one. Only the last one's grace may end in a rewrite: a
    /// later program write of the entry (a host that joined, left and
    /// joined again within the grace) has its report on its way to the
    /// engine, and rewriting the entry with what the engine wants before
    /// then took that join back (seen in the join benchmark as a datagram
    /// stream still on the old port set 0.4 ms after a join applied in
    /// XDP). The later event's own grace covers the entry.
    fn pop_due(&mut self, now: Instant) -> Option<(FastJoinEvent, bool)> {
        if self.next_due()? > now {
            return None;
        }
        self.pop_front()
    }

    /// The oldest event and whether it is its entry's last awaiting one.
    fn pop_front(&mut self) -> Option<(FastJoinEvent, bool)> {
        let (_, event) = self.queue.pop_front()?;
        let key = entry_key(&event);
        let last = match self.per_entry.get_mut(&key) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                self.per_entry.remove(&key);
                true
            }
        };
        Some((event, last))
    }
}

impl FastJoins {
    pub fn new(map: aya::maps::Map) -> Result<Self> {
        let ring = RingBuf::try_from(map).map_err(|source| Error::Map {
            name: "FAST_JOINS",
            source,
        })?;
        Ok(Self {
            ring,
            awaiting: Awaiting::default(),
        })
    }

    /// When the oldest event read is due for its rewrite.
    pub fn next_due(&self) -> Option<Instant> {
        self.awaiting.next_due()
    }

    /// Takes every waiting event (due `GRACE` after `now`) and touches the
    /// group of every event due by `now` that is its entry's last (see
    /// [`Awaiting::pop_due`]); returns how many events of each
    /// kind were read. Never blocks.
    pub fn drain(&mut self, forwarding: &mut Forwarding, now: Instant) -> Drained {
        // Before this drain's events mark their entries: an event whose
        // entry a flush wrote since needs no rewrite, nor a wake-up at its
        // due time.
        self.awaiting
            .retire_covered(|event| !awaits_rewrite(forwarding, event));
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
                    self.awaiting.push(now + GRACE, event);
                }
                None => warn!(len = item.len(), "fast join: short event ignored"),
            }
        }
        while let Some((event, last)) = self.awaiting.pop_due(now) {
            if last {
                touch(forwarding, &event);
            }
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

fn awaits_rewrite(forwarding: &Forwarding, event: &FastJoinEvent) -> bool {
    match event.family {
        FAMILY_IPV4 => forwarding.awaits_rewrite(event.vlan, ipv4(event)),
        FAMILY_IPV6 => forwarding.awaits_rewrite(event.vlan, event.group),
        // Unreadable: let its grace end (touch logs it).
        _ => true,
    }
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

#[cfg(test)]
mod tests {
    use igmpsnoop_common::FAST_JOIN;

    use super::*;

    fn event(group: u8, kind: u16) -> FastJoinEvent {
        let mut g = [0u8; 16];
        g[..4].copy_from_slice(&[239, 1, 1, group]);
        FastJoinEvent {
            family: FAMILY_IPV4,
            vlan: 0,
            group: g,
            kind,
            _pad: 0,
        }
    }

    /// Group 1 joined at `t0`, left 1 ms later and joined again at `t0 +
    /// again`; group 2 joined at 2 ms.
    fn rejoin(t0: Instant, again: Duration) -> Awaiting {
        let mut a = Awaiting::default();
        a.push(t0, event(1, FAST_JOIN));
        a.push(t0 + Duration::from_millis(1), event(1, FAST_LEAVE));
        a.push(t0 + Duration::from_millis(2), event(2, FAST_JOIN));
        a.push(t0 + again, event(1, FAST_JOIN));
        a
    }

    /// Join, leave and join again of one group within the grace: only the
    /// last event's grace may rewrite the entry; another group's event
    /// due in between still does.
    #[test]
    fn only_an_entrys_last_event_ends_in_a_rewrite() {
        let (t0, ms) = (Instant::now(), Duration::from_millis);
        let mut a = rejoin(t0, ms(40));
        assert_eq!(a.next_due(), Some(t0));
        let due: Vec<_> = std::iter::from_fn(|| a.pop_due(t0 + ms(10)))
            .map(|(e, last)| (e.group[3], e.kind, last))
            .collect();
        assert_eq!(
            due,
            [
                (1, FAST_JOIN, false),
                (1, FAST_LEAVE, false),
                (2, FAST_JOIN, true)
            ]
        );
        assert_eq!(a.next_due(), Some(t0 + ms(40)));
        assert!(a.pop_due(t0 + ms(39)).is_none());
        let (e, last) = a.pop_due(t0 + ms(40)).expect("due");
        assert_eq!((e.group[3], last), (1, true));
        assert!(a.per_entry.is_empty() && a.queue.is_empty());
    }

    /// Covered events leave from the front only (the loop then sleeps until
    /// the first uncovered one's due time), each counted off its entry.
    #[test]
    fn covered_events_are_retired_from_the_front() {
        let (t0, ms) = (Instant::now(), Duration::from_millis);
        let mut a = rejoin(t0, ms(3));
        // Group 2's write awaits its rewrite, group 1's was covered.
        a.retire_covered(|e| e.group[3] == 1);
        assert_eq!(a.next_due(), Some(t0 + ms(2)));
        assert_eq!(a.per_entry.get(&entry_key(&event(1, 0))), Some(&1));
        a.retire_covered(|_| true);
        assert!(a.queue.is_empty() && a.per_entry.is_empty());
    }
}
