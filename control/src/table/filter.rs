//! RFC 3376 §6: the router-side source state of one (group, port) and its
//! transition tables. Pure functions of the state, a record and the time;
//! queries are returned, not sent.
//!
//! The state is the group timer (ZERO = not running) and a list of source
//! records sorted by address. The filter mode is EXCLUDE while the group
//! timer runs (or the membership is static (*,G)), INCLUDE otherwise
//! (§6.2.1: "the group timer is only used when a group is in EXCLUDE
//! mode"). In EXCLUDE mode a record with a running timer is on the
//! requested list X, one whose timer is ZERO on the excluded list Y; in
//! INCLUDE mode every record is on the include list A.
//!
//! Generic over the source address (`A`: IPv4 or IPv6): RFC 3810 §7.4
//! has the same tables for MLDv2.

use crate::time::Timestamp;

/// The six group record types (RFC 3376 §4.2.12), as the tables name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    IsIn,
    IsEx,
    ToIn,
    ToEx,
    Allow,
    Block,
}

/// Filter mode of a (group, port) or of a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    Include,
    Exclude,
}

/// One source record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SourceRecord<A> {
    pub addr: A,
    /// Source timer; ZERO = not running (EXCLUDE mode: on the excluded list).
    pub timer: Timestamp,
    /// RFC 3376 §6.6.3.2 retransmissions of Q(G,A) left for this source.
    pub rexmit: u8,
    /// A static (S,G): never deleted, never excluded, never lowered.
    pub is_static: bool,
}

impl<A> SourceRecord<A> {
    pub fn new(addr: A, timer: Timestamp) -> SourceRecord<A> {
        SourceRecord {
            addr,
            timer,
            rexmit: 0,
            is_static: false,
        }
    }

    /// Forwarded by this record: a running timer or static (X, or A).
    pub fn running(&self) -> bool {
        self.is_static || self.timer != Timestamp::ZERO
    }
}

/// What the tables ask of the querier (§6.4.2 "Send Q(G)", "Send Q(G,X)").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queries<A> {
    /// Send Q(G, these), sorted.
    pub sources: Vec<A>,
    /// Send Q(G).
    pub group: bool,
}

impl<A> Default for Queries<A> {
    fn default() -> Self {
        Queries {
            sources: Vec::new(),
            group: false,
        }
    }
}

/// The router state of one (group, port), borrowed from the table.
pub struct RouterState<'a, A> {
    pub group_timer: &'a mut Timestamp,
    /// Static (*,G): EXCLUDE mode whatever the group timer says.
    pub pinned: bool,
    pub records: &'a mut Vec<SourceRecord<A>>,
}

impl<A: Copy + Ord> RouterState<'_, A> {
    pub fn mode(&self) -> FilterMode {
        mode_of(self.pinned, *self.group_timer)
    }

    fn find(&self, s: A) -> Result<usize, usize> {
        self.records.binary_search_by_key(&s, |r| r.addr)
    }

    /// Room for the records of `a` that do not exist yet, exactly: records
    /// are many and small, a doubling Vec would waste up to half.
    fn reserve_for(&mut self, a: &[A]) {
        let missing = a.iter().filter(|s| self.find(**s).is_err()).count();
        self.records.reserve_exact(missing);
    }

    /// `(A)=J`: set the timers of `a` to `at`, creating records as needed.
    fn set_timers(&mut self, a: &[A], at: Timestamp) {
        self.reserve_for(a);
        for &s in a {
            match self.find(s) {
                Ok(i) => self.records[i].timer = at,
                Err(i) => self.records.insert(i, SourceRecord::new(s, at)),
            }
        }
    }

    /// Create the records of `a` that do not exist, with timer `at`.
    fn add_missing(&mut self, a: &[A], at: Timestamp) {
        self.reserve_for(a);
        for &s in a {
            if let Err(i) = self.find(s) {
                self.records.insert(i, SourceRecord::new(s, at));
            }
        }
    }

    /// `Delete (X-A)`, `Delete (Y-A)`: every record not in `a`. A static
    /// record stays, its learned timer cleared.
    fn delete_not_in(&mut self, a: &[A]) {
        self.records.retain_mut(|r| {
            if a.binary_search(&r.addr).is_ok() {
                return true;
            }
            r.timer = Timestamp::ZERO;
            r.is_static
        });
    }

    /// The records of `a` that are forwarded (A*B in INCLUDE mode, the
    /// part of `a` on X in EXCLUDE mode).
    fn running_in(&self, a: &[A]) -> Vec<A> {
        a.iter()
            .copied()
            .filter(|s| self.find(*s).is_ok_and(|i| self.records[i].running()))
            .collect()
    }

    /// The forwarded records not in `a` (A-B, X-A).
    fn running_not_in(&self, a: &[A]) -> Vec<A> {
        self.records
            .iter()
            .filter(|r| r.running() && a.binary_search(&r.addr).is_err())
            .map(|r| r.addr)
            .collect()
    }

    /// Apply one record (`a` sorted, without duplicates) as §6.4.1 and
    /// §6.4.2 say, row by row. Returns the queries the row asks for.
    pub fn apply(&mut self, kind: RecordKind, a: &[A], gmi_at: Timestamp) -> Queries<A> {
        let mut q = Queries::<A>::default();
        match (self.mode(), kind) {
            // §6.4.1 INCLUDE (A) IS_IN (B) -> INCLUDE (A+B); (B)=GMI
            // §6.4.2 INCLUDE (A) ALLOW (B) -> INCLUDE (A+B); (B)=GMI
            (FilterMode::Include, RecordKind::IsIn | RecordKind::Allow) => {
                self.set_timers(a, gmi_at);
            }
            // §6.4.1 INCLUDE (A) IS_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0;
            // Delete (A-B); Group Timer=GMI
            (FilterMode::Include, RecordKind::IsEx) => {
                self.delete_not_in(a);
                self.add_missing(a, Timestamp::ZERO);
                *self.group_timer = gmi_at;
            }
            // §6.4.2 INCLUDE (A) BLOCK (B) -> INCLUDE (A); Send Q(G,A*B)
            (FilterMode::Include, RecordKind::Block) => {
                q.sources = self.running_in(a);
            }
            // §6.4.2 INCLUDE (A) TO_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0;
            // Delete (A-B); Send Q(G,A*B); Group Timer=GMI
            (FilterMode::Include, RecordKind::ToEx) => {
                q.sources = self.running_in(a);
                self.delete_not_in(a);
                self.add_missing(a, Timestamp::ZERO);
                *self.group_timer = gmi_at;
            }
            // §6.4.2 INCLUDE (A) TO_IN (B) -> INCLUDE (A+B); (B)=GMI;
            // Send Q(G,A-B)
            (FilterMode::Include, RecordKind::ToIn) => {
                q.sources = self.running_not_in(a);
                self.set_timers(a, gmi_at);
            }
            // §6.4.1 EXCLUDE (X,Y) IS_IN (A) -> EXCLUDE (X+A, Y-A); (A)=GMI
            // §6.4.2 EXCLUDE (X,Y) ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=GMI
            (FilterMode::Exclude, RecordKind::IsIn | RecordKind::Allow) => {
                self.set_timers(a, gmi_at);
            }
            // §6.4.1 EXCLUDE (X,Y) IS_EX (A) -> EXCLUDE (A-Y, Y*A);
            // (A-X-Y)=GMI; Delete (X-A); Delete (Y-A); Group Timer=GMI
            (FilterMode::Exclude, RecordKind::IsEx) => {
                self.delete_not_in(a);
                self.add_missing(a, gmi_at);
                *self.group_timer = gmi_at;
            }
            // §6.4.2 EXCLUDE (X,Y) BLOCK (A) -> EXCLUDE (X+(A-Y), Y);
            // (A-X-Y)=Group Timer; Send Q(G,A-Y)
            (FilterMode::Exclude, RecordKind::Block) => {
                let gt = *self.group_timer;
                self.add_missing(a, gt);
                q.sources = self.running_in(a);
            }
            // §6.4.2 EXCLUDE (X,Y) TO_EX (A) -> EXCLUDE (A-Y, Y*A);
            // (A-X-Y)=Group Timer; Delete (X-A); Delete (Y-A);
            // Send Q(G,A-Y); Group Timer=GMI
            (FilterMode::Exclude, RecordKind::ToEx) => {
                let gt = *self.group_timer;
                self.delete_not_in(a);
                self.add_missing(a, gt);
                q.sources = self.running_in(a);
                *self.group_timer = gmi_at;
            }
            // §6.4.2 EXCLUDE (X,Y) TO_IN (A) -> EXCLUDE (X+A, Y-A); (A)=GMI;
            // Send Q(G,X-A); Send Q(G)
            (FilterMode::Exclude, RecordKind::ToIn) => {
                q.sources = self.running_not_in(a);
                self.set_timers(a, gmi_at);
                q.group = true;
            }
        }
        q
    }

    /// Fire the group and source timers due at `now`.
    pub fn expire(&mut self, now: Timestamp) {
        let due = |t: Timestamp| t != Timestamp::ZERO && t <= now;
        if due(*self.group_timer) {
            self.expire_group();
        }
        self.expire_where(|r| due(r.timer));
    }

    /// The group timer runs out now. §6.5: in EXCLUDE mode the router
    /// switches to INCLUDE; sources with running timers stay (the new
    /// include list), the excluded ones (timer 0) are deleted.
    pub fn expire_group(&mut self) {
        *self.group_timer = Timestamp::ZERO;
        if !self.pinned {
            self.records.retain(|r| r.running());
        }
    }

    /// The timers of `sources` run out now (a fast leave).
    pub fn expire_sources(&mut self, sources: &[A]) {
        self.expire_where(|r| sources.binary_search(&r.addr).is_ok());
    }

    /// §6.3: a source timer that runs out in INCLUDE mode deletes the
    /// record; in EXCLUDE mode the record stays, on the excluded list
    /// ("DO NOT remove record"). Static records stay in both.
    fn expire_where(&mut self, due: impl Fn(&SourceRecord<A>) -> bool) {
        let include = self.mode() == FilterMode::Include;
        self.records.retain_mut(|r| {
            if !due(r) {
                return true;
            }
            r.timer = Timestamp::ZERO;
            r.rexmit = 0;
            !include || r.is_static
        });
    }

    /// Lower the timers of `sources` above `at` to `at` (§6.6.1 on a
    /// received Q(G,A); §6.6.3.2 for our own). Static records keep theirs.
    /// Returns the sources lowered.
    pub fn lower(&mut self, sources: &[A], at: Timestamp) -> Vec<A> {
        let mut lowered = Vec::new();
        for &s in sources {
            if let Ok(i) = self.find(s) {
                let r = &mut self.records[i];
                if !r.is_static && r.timer > at {
                    r.timer = at;
                    lowered.push(s);
                }
            }
        }
        lowered
    }

    /// Does this (group, port) forward traffic from `s`?
    pub fn admits(&self, s: A) -> bool {
        admits(self.pinned, *self.group_timer, self.records, s)
    }
}

/// Make sure `s` has a running record until at least `until` (explicit
/// host tracking, see `host::keep_wanted`).
pub fn keep_until<A: Ord + Copy>(records: &mut Vec<SourceRecord<A>>, s: A, until: Timestamp) {
    match records.binary_search_by_key(&s, |r| r.addr) {
        Ok(i) => {
            if records[i].timer < until {
                records[i].timer = until;
            }
        }
        Err(i) => records.insert(i, SourceRecord::new(s, until)),
    }
}

pub fn mode_of(pinned: bool, group_timer: Timestamp) -> FilterMode {
    if pinned || group_timer != Timestamp::ZERO {
        FilterMode::Exclude
    } else {
        FilterMode::Include
    }
}

/// Forwarding of `s` by a (group, port): a record decides (X or A: yes;
/// Y: no); without one, EXCLUDE mode forwards and INCLUDE does not. A
/// static (*,G) forwards every source.
pub fn admits<A: Ord + Copy>(
    pinned: bool,
    group_timer: Timestamp,
    records: &[SourceRecord<A>],
    s: A,
) -> bool {
    if pinned {
        return true;
    }
    match records.binary_search_by_key(&s, |r| r.addr) {
        Ok(i) => records[i].running(),
        Err(_) => group_timer != Timestamp::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn s(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn include_to_exclude_and_back() {
        let mut gt = Timestamp::ZERO;
        let mut recs = Vec::new();
        let mut st = RouterState {
            group_timer: &mut gt,
            pinned: false,
            records: &mut recs,
        };
        st.apply(RecordKind::Allow, &[s(1), s(2)], Timestamp::from_secs(400));
        assert_eq!(st.mode(), FilterMode::Include);
        assert!(st.admits(s(1)) && !st.admits(s(3)));
        // INCLUDE {1,2} IS_EX {2,3} -> EXCLUDE ({2}, {3}).
        st.apply(RecordKind::IsEx, &[s(2), s(3)], Timestamp::from_secs(300));
        assert_eq!(st.mode(), FilterMode::Exclude);
        // 1 was deleted: it follows the EXCLUDE mode again.
        assert!(st.admits(s(1)));
        assert!(st.admits(s(2)) && !st.admits(s(3)) && st.admits(s(9)));
        // Group timer expires before source 2's: INCLUDE {2}.
        st.expire(Timestamp::from_secs(300));
        assert_eq!(st.mode(), FilterMode::Include);
        assert_eq!(st.records.len(), 1);
        assert!(st.admits(s(2)) && !st.admits(s(9)));
    }
}
