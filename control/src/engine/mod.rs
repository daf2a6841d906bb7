//! The snooping engine: frames and time in, forwarding changes and frames
//! out. No sockets, threads or clock.

pub mod config;
pub mod counters;
pub mod querier;
mod receive;
mod reconfigure;
pub mod router;

pub use crate::port::{Mac, PortId, PortMask};
pub use crate::table::{FilterMode, SourceInfo as SourceView, TableError};
pub use config::{Config, ConfigError, PortConfig};
pub use counters::{Counters, PortCounters};
pub use querier::QuerierView;
pub use reconfigure::Reconfigured;
pub use router::RouterPortView;

use crate::table::{GroupKey, MembershipTable, Source, TableEvent, Timers};
use crate::time::Timestamp;
use crate::wire::{frame, igmp};
use core::net::Ipv4Addr;
use core::time::Duration;
use querier::Querier;
use router::Routers;
use serde::Serialize;

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The ports of (vlan, group) that receive traffic from sources
    /// without an entry of their own (RFC 3376 router filter mode
    /// EXCLUDE; for a (*,G) group, every member port) are now `ports`.
    /// Empty after the SourcePorts None of each source entry = group gone.
    /// Router ports are not included; the dataplane adds them.
    GroupPorts {
        vlan: u16,
        group: Ipv4Addr,
        ports: PortMask,
    },
    /// Traffic from `source` to (vlan, group): Some(mask) = to exactly
    /// `mask` (may be empty: nobody wants it); None = `source` has no
    /// entry of its own any more and follows GroupPorts. Emitted only on a
    /// change, for every source some port's state of the group mentions.
    /// Router ports are not included.
    SourcePorts {
        vlan: u16,
        group: Ipv4Addr,
        source: Ipv4Addr,
        ports: Option<PortMask>,
    },
    /// The set of router ports (learned ∪ static) is now `ports`.
    RouterPorts { ports: PortMask },
    /// Send the frame given to handle_frame, unchanged, out of these ports
    /// (never the ingress port).
    Forward { ports: PortMask },
    /// Send this frame (complete Ethernet frame, 802.1Q-tagged when the
    /// VLAN is not 0) out of these ports.
    Transmit { ports: PortMask, frame: Vec<u8> },
}

/// One (vlan, group, port) membership, for the CLI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GroupPortView {
    pub vlan: u16,
    pub group: Ipv4Addr,
    pub port: PortId,
    pub hosts: Vec<Mac>,
    /// Compatibility mode: 1, 2 or 3.
    pub version: u8,
    /// RFC 3376 §6.2.1 router filter mode of this port.
    pub filter_mode: FilterMode,
    /// The port's source records (EXCLUDE mode: requested and excluded).
    pub sources: Vec<SourceView>,
    /// When the membership ends unless refreshed; None for a static one.
    pub expires: Option<Timestamp>,
    pub is_static: bool,
}

/// One (S,G) forwarding entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceEntryView {
    pub vlan: u16,
    pub group: Ipv4Addr,
    pub source: Ipv4Addr,
    /// Ports traffic from `source` goes to (router ports not included).
    pub ports: PortMask,
}

/// Minimum time between two "table full" log lines.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The IGMP snooping engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    ports: Vec<PortConfig>,
    /// Ports that are up; frames are only sent out of these.
    up: PortMask,
    fast_leave: PortMask,
    guard: PortMask,
    table: MembershipTable,
    routers: Routers,
    querier: Querier,
    counters: Counters,
    /// The latest time handed in, for views and calls without a `now`.
    now: Timestamp,
    ip_ident: u16,
    /// Reused for the sources of each record.
    scratch: Vec<Source>,
    last_limit_log: Option<Timestamp>,
    limit_log_suppressed: u64,
}

impl Engine {
    /// Validate the configuration and start. With the querier on, the first
    /// startup query is due at `now`.
    pub fn new(
        config: Config,
        ports: Vec<PortConfig>,
        now: Timestamp,
    ) -> Result<Engine, ConfigError> {
        config.validate(ports.len())?;
        let timers = Timers {
            gmi: config.group_membership_interval(),
            lmqi: config.last_member_interval,
            lmqc: config.last_member_count,
        };
        let mut table =
            MembershipTable::new(timers, config.max_groups, config.max_sources_per_group);
        let mut fast_leave = PortMask::EMPTY;
        let mut guard = PortMask::EMPTY;
        let mut static_routers = PortMask::EMPTY;
        for (i, p) in ports.iter().enumerate() {
            // validate() bounds ports.len() to 64.
            let id = i as PortId;
            table.set_port_limit(id, p.max_groups);
            if p.fast_leave {
                fast_leave.insert(id);
            }
            if p.guard {
                guard.insert(id);
            }
            if p.static_router {
                static_routers.insert(id);
            }
        }
        Ok(Engine {
            querier: Querier::new(&config, now),
            up: PortMask::first(ports.len()),
            routers: Routers::new(static_routers),
            config,
            ports,
            fast_leave,
            guard,
            table,
            counters: Counters::default(),
            now,
            ip_ident: 0,
            scratch: Vec::new(),
            last_limit_log: None,
            limit_log_suppressed: 0,
        })
    }

    /// Handle one frame received on `port`.
    pub fn handle_frame(
        &mut self,
        now: Timestamp,
        port: PortId,
        frame: &[u8],
        out: &mut Vec<Action>,
    ) {
        self.now = now;
        self.counters.rx_frames += 1;
        if usize::from(port) >= self.ports.len() {
            self.counters.reject_bad_port += 1;
            return;
        }
        if let Some(c) = self.counters.port(port) {
            c.rx += 1;
        }
        self.receive(now, port, frame, out);
        self.sync_routers(out);
    }

    /// Fire every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        self.now = now;
        let mut events = Vec::new();
        self.table.age(now, &mut events);
        self.apply_events(events, false, out);

        let mut due = Vec::new();
        self.counters.querier_resumed +=
            self.querier.poll(&self.config, now, |vlan| due.push(vlan));
        for vlan in due {
            let ports = self.up;
            self.send_general_query(vlan, ports, out);
        }

        self.counters.router_ports_expired += self.routers.age(now);
        self.sync_routers(out);
    }

    /// The earliest time `handle_timeout` has work to do. It may be early
    /// (a refreshed group); calling then is harmless.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        [
            self.table.next_deadline(),
            self.querier.next_deadline(),
            self.routers.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn static_key(&self, vlan: u16, group: Ipv4Addr, port: PortId) -> Result<GroupKey, TableError> {
        if usize::from(port) >= self.ports.len() {
            return Err(TableError::BadPort(port));
        }
        if !group.is_multicast() || is_link_local(group) {
            return Err(TableError::BadGroup(group));
        }
        Ok(GroupKey { vlan, group })
    }

    /// Add a static membership (never ages; bypasses the group limits).
    pub fn add_static_group(
        &mut self,
        vlan: u16,
        group: Ipv4Addr,
        port: PortId,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_key(vlan, group, port)?;
        let mut events = Vec::new();
        let before = self.table.len();
        self.table.add_static(key, port, &mut events)?;
        self.counters.groups_added += (self.table.len() - before) as u64;
        self.apply_events(events, false, out);
        Ok(())
    }

    /// Remove a static membership; a learned one on the port stays.
    pub fn del_static_group(
        &mut self,
        vlan: u16,
        group: Ipv4Addr,
        port: PortId,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_key(vlan, group, port)?;
        let mut events = Vec::new();
        self.table.del_static(key, port, &mut events)?;
        self.apply_events(events, false, out);
        Ok(())
    }

    /// Add a static (S,G) membership: traffic from `source` to (vlan,
    /// group) goes out of `port` whatever its hosts report (never ages;
    /// bypasses the limits).
    pub fn add_static_source(
        &mut self,
        vlan: u16,
        group: Ipv4Addr,
        port: PortId,
        source: Ipv4Addr,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_key(vlan, group, port)?;
        if bad_source(source).is_some() {
            return Err(TableError::BadSource(source));
        }
        let mut events = Vec::new();
        let before = self.table.len();
        self.table
            .add_static_source(key, port, source, &mut events)?;
        self.counters.groups_added += (self.table.len() - before) as u64;
        self.apply_events(events, false, out);
        Ok(())
    }

    /// Remove a static (S,G) membership; what hosts reported stays.
    pub fn del_static_source(
        &mut self,
        vlan: u16,
        group: Ipv4Addr,
        port: PortId,
        source: Ipv4Addr,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_key(vlan, group, port)?;
        // As add_static_source: a source that can never have an entry is
        // refused as such, not reported missing.
        if bad_source(source).is_some() {
            return Err(TableError::BadSource(source));
        }
        let mut events = Vec::new();
        self.table
            .del_static_source(key, port, source, &mut events)?;
        self.apply_events(events, false, out);
        Ok(())
    }

    /// Ports that are up (frames go out of these only).
    pub fn ports_up(&self) -> PortMask {
        self.up
    }

    /// The port went down: flush its memberships and learned router state.
    pub fn port_down(&mut self, port: PortId, out: &mut Vec<Action>) {
        self.up.remove(port);
        let mut events = Vec::new();
        self.table.flush_port(port, &mut events);
        self.apply_events(events, false, out);
        self.routers.forget(port);
        self.sync_routers(out);
    }

    /// The port came up: when querier, send it a general query at once so
    /// its hosts report without waiting a query interval.
    pub fn port_up(&mut self, now: Timestamp, port: PortId, out: &mut Vec<Action>) {
        self.now = now;
        if usize::from(port) >= self.ports.len() {
            return;
        }
        self.up.insert(port);
        let vlans: Vec<u16> = self.querier.active_vlans(&self.config).collect();
        for vlan in vlans {
            self.send_general_query(vlan, PortMask::single(port), out);
        }
        self.sync_routers(out);
    }

    /// A restarted switch asks its hosts to report again. As querier its
    /// startup queries (the first due at once) do that already; otherwise
    /// it sends one general query on every up port of each querier VLAN,
    /// from the querier address or 0.0.0.0: RFC 4541 §2.1.1 lets a snooping
    /// switch query with source 0.0.0.0, which no querier election counts.
    /// Returns the number of queries sent.
    pub fn solicit_reports(&mut self, now: Timestamp, out: &mut Vec<Action>) -> usize {
        self.now = now;
        if self.config.querier {
            return 0;
        }
        let vlans = self.config.querier_vlans.clone();
        let ports = self.up;
        for &vlan in &vlans {
            self.send_general_query(vlan, ports, out);
        }
        if ports.is_empty() { 0 } else { vlans.len() }
    }

    /// Every (vlan, group, port) membership, sorted.
    pub fn groups(&self) -> Vec<GroupPortView> {
        self.table
            .members(self.now)
            .into_iter()
            .map(|m| GroupPortView {
                vlan: m.key.vlan,
                group: m.key.group,
                port: m.port,
                hosts: m.hosts,
                version: m.version,
                filter_mode: m.filter_mode,
                sources: m.sources,
                expires: m.expires,
                is_static: m.is_static,
            })
            .collect()
    }

    /// Every (S,G) forwarding entry, sorted by (vlan, group, source).
    pub fn source_entries(&self) -> Vec<SourceEntryView> {
        self.table
            .source_entries()
            .into_iter()
            .map(|(k, source, ports)| SourceEntryView {
                vlan: k.vlan,
                group: k.group,
                source,
                ports,
            })
            .collect()
    }

    /// Where traffic from `source` to (vlan, group) goes, when `source`
    /// has an entry of its own; None: it follows `lookup`.
    pub fn lookup_source(&self, vlan: u16, group: Ipv4Addr, source: Ipv4Addr) -> Option<PortMask> {
        self.table.lookup_source(GroupKey { vlan, group }, source)
    }

    /// Router ports (learned and static).
    pub fn routers(&self) -> Vec<RouterPortView> {
        self.routers.views()
    }

    /// The current router port set.
    pub fn router_ports(&self) -> PortMask {
        self.routers.mask()
    }

    /// Ports of a group in EXCLUDE mode: they take traffic from sources
    /// without an entry of their own (router ports not included).
    pub fn lookup(&self, vlan: u16, group: Ipv4Addr) -> PortMask {
        self.table.lookup(GroupKey { vlan, group })
    }

    /// Querier state per querier VLAN.
    pub fn querier(&self) -> Vec<QuerierView> {
        self.querier.views(&self.config)
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn port_configs(&self) -> &[PortConfig] {
        &self.ports
    }

    /// Number of distinct (VLAN, group) entries.
    pub fn group_count(&self) -> usize {
        self.table.len()
    }

    /// Turn table events into actions and frames. `learned`: the events of
    /// a received record (a query in them starts a sequence).
    fn apply_events(&mut self, events: Vec<TableEvent>, learned: bool, out: &mut Vec<Action>) {
        for ev in events {
            match ev {
                TableEvent::Ports { key, ports } => out.push(Action::GroupPorts {
                    vlan: key.vlan,
                    group: key.group,
                    ports,
                }),
                TableEvent::Source { key, source, ports } => out.push(Action::SourcePorts {
                    vlan: key.vlan,
                    group: key.group,
                    source,
                    ports,
                }),
                TableEvent::Gone { key } => {
                    self.counters.groups_removed += 1;
                    out.push(Action::GroupPorts {
                        vlan: key.vlan,
                        group: key.group,
                        ports: PortMask::EMPTY,
                    });
                }
                TableEvent::GroupQuery { key, port, version } => {
                    if learned {
                        self.counters.leave_queries_started += 1;
                    }
                    self.send_group_query(key, port, version, out)
                }
                TableEvent::SourceQuery {
                    key,
                    port,
                    s_flag,
                    sources,
                } => {
                    if learned && !s_flag {
                        self.counters.source_queries_started += 1;
                    }
                    self.send_source_query(key, port, s_flag, &sources, out)
                }
            }
        }
    }

    fn sync_routers(&mut self, out: &mut Vec<Action>) {
        if let Some(ports) = self.routers.take_change() {
            out.push(Action::RouterPorts { ports });
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

    fn forward(&mut self, ports: PortMask, out: &mut Vec<Action>) -> bool {
        if ports.is_empty() {
            return false;
        }
        self.counters.add_tx(ports);
        out.push(Action::Forward { ports });
        true
    }

    /// A general query to 224.0.0.1 out of `ports`.
    fn send_general_query(&mut self, vlan: u16, ports: PortMask, out: &mut Vec<Action>) {
        let src = self.config.querier_address.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let repr = querier::query(
            &self.config,
            self.config.igmp_version,
            Ipv4Addr::UNSPECIFIED,
            self.config.query_response_interval,
        );
        let ident = self.next_ident();
        let f = frame::build_igmp(
            self.config.switch_mac,
            vlan,
            src,
            Ipv4Addr::new(224, 0, 0, 1),
            ident,
            &repr,
        );
        if !ports.is_empty() {
            self.counters.tx_general_query += 1;
        }
        self.transmit(ports, f, out);
    }

    /// A group-specific query out of one port, from the querier address
    /// while we are querier, else 0.0.0.0 (RFC 4541 §2.1.1 proxy query), v2
    /// format when the group's compatibility mode is v1/v2.
    fn send_group_query(
        &mut self,
        key: GroupKey,
        port: PortId,
        version: u8,
        out: &mut Vec<Action>,
    ) {
        if !self.up.contains(port) {
            return;
        }
        let src = self.querier.query_source(&self.config, key.vlan);
        let v = if version >= 3 { 3 } else { 2 };
        let repr = querier::query(&self.config, v, key.group, self.config.last_member_interval);
        let ident = self.next_ident();
        let f = frame::build_igmp(
            self.config.switch_mac,
            key.vlan,
            src,
            key.group,
            ident,
            &repr,
        );
        self.counters.tx_group_query += 1;
        self.transmit(PortMask::single(port), f, out);
    }

    /// A group-and-source-specific query (RFC 3376 §4.1.12: to the group
    /// address) out of one port, split in as many as the frame needs.
    fn send_source_query(
        &mut self,
        key: GroupKey,
        port: PortId,
        s_flag: bool,
        sources: &[Source],
        out: &mut Vec<Action>,
    ) {
        if !self.up.contains(port) {
            return;
        }
        let src = self.config.querier_address.unwrap_or(Ipv4Addr::UNSPECIFIED);
        for chunk in sources.chunks(igmp::MAX_QUERY_SOURCES) {
            let mut repr =
                querier::query(&self.config, 3, key.group, self.config.last_member_interval);
            if let igmp::Repr::Query { v3: Some(q), .. } = &mut repr {
                q.s_flag = s_flag;
                q.sources = chunk.to_vec();
            }
            let ident = self.next_ident();
            let f = frame::build_igmp(
                self.config.switch_mac,
                key.vlan,
                src,
                key.group,
                ident,
                &repr,
            );
            self.counters.tx_group_source_query += 1;
            self.transmit(PortMask::single(port), f, out);
        }
    }

    /// Rate-limited: a full table must not flood the log.
    fn log_limit(&mut self, now: Timestamp, what: &str, key: GroupKey, port: PortId) {
        if self
            .last_limit_log
            .is_some_and(|t| now - t < LIMIT_LOG_INTERVAL)
        {
            self.limit_log_suppressed += 1;
            return;
        }
        tracing::warn!(
            vlan = key.vlan,
            group = %key.group,
            port,
            suppressed = self.limit_log_suppressed,
            "{what}"
        );
        self.last_limit_log = Some(now);
        self.limit_log_suppressed = 0;
    }
}

/// Why `s` cannot be a source (RFC 3376 §4.2.8: a source address is a
/// host's unicast address), or None when it can.
pub(crate) fn bad_source(s: Ipv4Addr) -> Option<BadSource> {
    if s.is_multicast() {
        Some(BadSource::Multicast)
    } else if s.is_unspecified() {
        Some(BadSource::Zero)
    } else if s.is_broadcast() {
        Some(BadSource::Broadcast)
    } else {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadSource {
    Multicast,
    Zero,
    Broadcast,
}

/// RFC 4541 §2.1.2: 224.0.0.0/24 is never snooped.
pub fn is_link_local(group: Ipv4Addr) -> bool {
    let o = group.octets();
    o[0] == 224 && o[1] == 0 && o[2] == 0
}
