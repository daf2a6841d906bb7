//! Timers: group and source expiry (RFC 3376 §6.3, §6.5), host expiry and
//! the retransmission of group and group-and-source queries (§6.6.3).

use super::learn::send_source_queries;
use super::{Group, MembershipKey, MembershipTable, TableEvent, Timers, host};
use crate::family::Family;
use crate::time::Timestamp;
use std::cmp::Reverse;

impl<A: Family> MembershipTable<A> {
    /// Fire every timer due at or before `now`.
    pub fn age(&mut self, now: Timestamp, out: &mut Vec<TableEvent<A>>) {
        while let Some(&Reverse((t, key))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            let Some(group) = self.groups.get_mut(&key) else {
                continue;
            };
            if group.scheduled != t {
                continue; // superseded by an earlier entry
            }
            group.scheduled = Timestamp::ZERO;
            let before = group.snapshot(false);
            for i in 0..group.members.len() {
                age_member(group, i, key, now, &self.timers, out);
            }
            group.drop_dead(&mut self.port_groups);
            group.emit_changes(key, before, out);
            if group.members.is_empty() {
                self.groups.remove(&key);
            } else {
                Self::schedule(&mut self.heap, key, group);
            }
        }
    }
}

/// Fire the timers of member `i` due at `now`.
fn age_member<A: Copy + Ord>(
    group: &mut Group<A>,
    i: usize,
    key: MembershipKey<A>,
    now: Timestamp,
    timers: &Timers,
    out: &mut Vec<TableEvent<A>>,
) {
    let port = group.members.as_slice()[i].port;
    let mut ps = group.take_sources(port);
    let m = &mut group.members.as_mut_slice()[i];
    if m.gsq_left > 0 && m.next_gsq <= now {
        out.push(TableEvent::GroupQuery {
            key,
            port,
            generation: m.compat(now),
        });
        m.gsq_left -= 1;
        m.next_gsq = now + timers.lmqi;
    }
    if ps.next_query != Timestamp::ZERO && ps.next_query <= now {
        send_source_queries(&mut ps, key, now, timers, out);
    }
    let hosts = m.hosts.len();
    m.hosts.retain(|h| h.expires > now);
    if m.end_compat(now) || m.hosts.len() != hosts {
        out.push(TableEvent::Hosts { key });
    }
    if m.expires != Timestamp::ZERO && m.expires <= now && !m.is_static {
        host::keep_wanted(&m.hosts, &mut ps.records, now);
    }
    m.state(&mut ps).expire(now);
    if m.expires == Timestamp::ZERO {
        m.gsq_left = 0;
    }
    group.put_sources(ps);
}
