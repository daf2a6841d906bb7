//! Out of the engine: table events become actions, and the queries of
//! either family are built and transmitted.

use super::proto::{Proto, QuerySpec};
use super::{Action, Engine};
use crate::family::Generation;
use crate::port::{PortId, PortMask};
use crate::table::{MembershipKey, TableEvent};

impl Engine {
    /// Turn table events into actions and frames. `learned`: the events of
    /// a received record (a query in them starts a sequence).
    pub(super) fn apply_events<A: Proto>(
        &mut self,
        events: Vec<TableEvent<A>>,
        learned: bool,
        out: &mut Vec<Action>,
    ) {
        for ev in events {
            if let TableEvent::Ports { key, .. }
            | TableEvent::Source { key, .. }
            | TableEvent::Gone { key }
            | TableEvent::Hosts { key } = &ev
            {
                self.note_change(*key);
            }
            match ev {
                TableEvent::Ports { key, ports } => out.push(Action::GroupPorts {
                    vlan: key.vlan,
                    group: key.group.into(),
                    ports,
                }),
                TableEvent::Source { key, source, ports } => out.push(Action::SourcePorts {
                    vlan: key.vlan,
                    group: key.group.into(),
                    source: source.into(),
                    ports,
                }),
                TableEvent::Gone { key } => {
                    self.pc::<A>().groups_removed += 1;
                    out.push(Action::GroupPorts {
                        vlan: key.vlan,
                        group: key.group.into(),
                        ports: PortMask::EMPTY,
                    });
                }
                TableEvent::Hosts { .. } => {}
                TableEvent::GroupQuery {
                    key,
                    port,
                    generation,
                } => {
                    if learned {
                        self.pc::<A>().leave_queries_started += 1;
                    }
                    self.send_group_query(key, port, generation, out)
                }
                TableEvent::SourceQuery {
                    key,
                    port,
                    s_flag,
                    sources,
                } => {
                    if learned && !s_flag {
                        self.pc::<A>().source_queries_started += 1;
                    }
                    self.send_source_query(key, port, s_flag, &sources, out)
                }
            }
        }
    }

    pub(super) fn sync_routers<A: Proto>(&mut self, out: &mut Vec<Action>) {
        if !A::enabled(&self.config) {
            return;
        }
        for (vlan, ports) in self.sn::<A>().routers.take_changes() {
            out.push(Action::RouterPorts {
                family: A::FAMILY,
                vlan,
                ports,
            });
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ip_ident = self.ip_ident.wrapping_add(1);
        self.ip_ident
    }

    fn transmit(&mut self, ports: PortMask, frame: Vec<u8>, out: &mut Vec<Action>) {
        if !ports.is_empty() {
            self.counters.add_tx(ports);
            out.push(Action::Transmit { ports, frame });
        }
    }

    pub(super) fn forward(&mut self, ports: PortMask, out: &mut Vec<Action>) -> bool {
        if ports.is_empty() {
            return false;
        }
        self.counters.add_tx(ports);
        out.push(Action::Forward { ports });
        true
    }

    /// Build a query of family `A` to `dst` and send it out of those of
    /// `ports` that carry `vlan` (a VLAN is a link of its own).
    fn send_query<A: Proto>(
        &mut self,
        vlan: u16,
        dst: A,
        q: &QuerySpec<'_, A>,
        ports: PortMask,
        out: &mut Vec<Action>,
    ) {
        let ports = ports & self.vlans.carriers(vlan);
        let ident = self.next_ident();
        let f = A::query_frame(&self.config, ident, vlan, dst, q);
        self.transmit(ports, f, out);
    }

    /// A general query to all nodes (224.0.0.1, ff02::1) out of `ports`, in
    /// the configured version.
    pub(super) fn send_general_query<A: Proto>(
        &mut self,
        vlan: u16,
        ports: PortMask,
        out: &mut Vec<Action>,
    ) {
        let ports = ports & self.vlans.carriers(vlan);
        let Some(src) = A::querier_address(&self.config, vlan).or_else(A::proxy_source) else {
            return;
        };
        let Some(generation) = A::generation(A::query_version(&self.config)) else {
            return;
        };
        let q = QuerySpec {
            src,
            group: A::UNSPECIFIED,
            generation,
            max_resp: self.config.query_response_interval,
            s_flag: false,
            sources: &[],
        };
        if !ports.is_empty() {
            self.pc::<A>().tx_general_query += 1;
        }
        self.send_query(vlan, A::ALL_NODES, &q, ports, out);
    }

    /// A group-specific query out of one port (see
    /// `Querier::query_source` for its source), in the format of the
    /// group's compatibility mode (IGMPv2 format for v1 and v2; MLDv1 for
    /// MLDv1, RFC 3810 §8.3.1).
    fn send_group_query<A: Proto>(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        generation: Generation,
        out: &mut Vec<Action>,
    ) {
        if !self.up.contains(port) {
            return;
        }
        let Some(src) = A::snooper(&self.fam)
            .querier
            .query_source(&self.config, key.vlan)
        else {
            return;
        };
        let q = QuerySpec {
            src,
            group: key.group,
            generation: generation.max(Generation::AnySource),
            max_resp: self.config.last_member_interval,
            s_flag: false,
            sources: &[],
        };
        self.pc::<A>().tx_group_query += 1;
        self.send_query(key.vlan, key.group, &q, PortMask::single(port), out);
    }

    /// A group-and-source-specific query (RFC 3376 §4.1.12, RFC 3810
    /// §5.1.15: to the group address) out of one port, split in as many as
    /// the frame needs.
    fn send_source_query<A: Proto>(
        &mut self,
        key: MembershipKey<A>,
        port: PortId,
        s_flag: bool,
        sources: &[A],
        out: &mut Vec<Action>,
    ) {
        if !self.up.contains(port) {
            return;
        }
        let sn = A::snooper(&self.fam);
        let src = if sn.querier.is_active(&self.config, key.vlan) {
            A::querier_address(&self.config, key.vlan)
        } else {
            A::fallback_source(&self.config, key.vlan)
        };
        let Some(src) = src else {
            return;
        };
        for chunk in sources.chunks(A::MAX_QUERY_SOURCES) {
            let q = QuerySpec {
                src,
                group: key.group,
                generation: Generation::SourceFilter,
                max_resp: self.config.last_member_interval,
                s_flag,
                sources: chunk,
            };
            self.pc::<A>().tx_group_source_query += 1;
            self.send_query(key.vlan, key.group, &q, PortMask::single(port), out);
        }
    }
}
