//! Static memberships: (*,G) and (S,G) per port. They are configuration:
//! they bypass the limits (but count towards the group limits) and never
//! age.

use super::filter::SourceRecord;
use super::{Group, Member, MembershipKey, MembershipTable, TableError, TableEvent};
use crate::family::Family;
use crate::port::PortId;
use crate::time::Timestamp;

impl<A: Family> MembershipTable<A> {
    /// Add a static (*,G) membership.
    pub fn add_static(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        out: &mut Vec<TableEvent<A>>,
    ) -> Result<(), TableError> {
        let group = self.static_member(key, port)?;
        let before = group.snapshot(false);
        if let Some(m) = group.members.find_mut(|m| m.port == port) {
            m.is_static = true;
        }
        group.emit_changes(key, before, out);
        Ok(())
    }

    /// Remove a static (*,G) membership; what was learned on the port
    /// stays until it expires.
    pub fn del_static(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        out: &mut Vec<TableEvent<A>>,
    ) -> Result<(), TableError> {
        let group = self.groups.get_mut(&key).ok_or(TableError::NotFound)?;
        let before = group.snapshot(false);
        let m = group
            .members
            .find_mut(|m| m.port == port && m.is_static)
            .ok_or(TableError::NotFound)?;
        m.is_static = false;
        if m.expires == Timestamp::ZERO {
            // INCLUDE mode now: as at a §6.5 switch, excluded records go.
            let mut ps = group.take_sources(port);
            ps.records.retain(SourceRecord::running);
            group.put_sources(ps);
        }
        self.settle(key, before, out);
        Ok(())
    }

    /// Add a static (S,G): traffic from `source` to the group goes out of
    /// `port` whatever the hosts there report.
    pub fn add_static_source(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        source: A,
        out: &mut Vec<TableEvent<A>>,
    ) -> Result<(), TableError> {
        let group = self.static_member(key, port)?;
        let before = group.snapshot(true);
        let mut ps = group.take_sources(port);
        let i = match ps.records.binary_search_by_key(&source, |r| r.addr) {
            Ok(i) => i,
            Err(i) => {
                ps.records
                    .insert(i, SourceRecord::new(source, Timestamp::ZERO));
                i
            }
        };
        ps.records[i].is_static = true;
        group.put_sources(ps);
        group.emit_changes(key, before, out);
        Ok(())
    }

    /// Remove a static (S,G); a learned record of the source stays until
    /// its timer runs out.
    pub fn del_static_source(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        source: A,
        out: &mut Vec<TableEvent<A>>,
    ) -> Result<(), TableError> {
        let group = self.groups.get_mut(&key).ok_or(TableError::NotFound)?;
        let found = group
            .port_sources(port)
            .is_some_and(|p| p.records.iter().any(|r| r.addr == source && r.is_static));
        if !found {
            return Err(TableError::NotFound);
        }
        let before = group.snapshot(false);
        let mut ps = group.take_sources(port);
        // Without a learned timer the record goes: left with timer 0 it
        // would read as excluded in EXCLUDE mode.
        ps.records.retain_mut(|r| {
            if r.addr == source {
                r.is_static = false;
            }
            r.addr != source || r.timer != Timestamp::ZERO
        });
        group.put_sources(ps);
        self.settle(key, before, out);
        Ok(())
    }

    /// The group of a static membership of `port`, the member created
    /// (not static yet) if need be.
    fn static_member(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
    ) -> Result<&mut Group<A>, TableError> {
        let p = Self::check_port(port)?;
        let group = self.groups.entry(key).or_default();
        if group.member_index(port).is_none() {
            group.members.push(Member::new(port, false));
            self.port_groups[p] += 1;
        }
        Ok(group)
    }

    /// After a static removal: drop what holds nothing, report, reschedule.
    fn settle(
        &mut self,
        key: MembershipKey<A>,
        before: super::forward::Snapshot<A>,
        out: &mut Vec<TableEvent<A>>,
    ) {
        let Some(group) = self.groups.get_mut(&key) else {
            return;
        };
        group.drop_dead(&mut self.port_groups);
        group.emit_changes(key, before, out);
        if group.members.is_empty() {
            self.groups.remove(&key);
        } else {
            Self::schedule(&mut self.heap, key, group);
        }
    }
}
