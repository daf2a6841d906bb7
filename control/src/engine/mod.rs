//! The snooping engine: frames and time in, forwarding changes and frames
//! out. No sockets, threads or clock.

pub mod config;
pub mod counters;
pub mod querier;
mod receive;
mod reconfigure;
pub mod router;

pub use crate::port::{Mac, PortId, PortMask};
pub use crate::table::TableError;
pub use config::{Config, ConfigError, PortConfig};
pub use counters::{Counters, PortCounters};
pub use querier::QuerierView;
pub use reconfigure::Reconfigured;
pub use router::RouterPortView;

use crate::table::{GroupKey, MembershipTable, TableEvent, Timers};
use crate::time::Timestamp;
use crate::wire::frame;
use core::net::Ipv4Addr;
use core::time::Duration;
use querier::Querier;
use router::Routers;
use serde::Serialize;

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The member ports of (vlan, group) are now `ports` (empty = group
    /// gone). Router ports are not included; the dataplane adds them.
    GroupPorts {
        vlan: u16,
        group: Ipv4Addr,
        ports: PortMask,
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
    /// None for a static membership.
    pub expires: Option<Timestamp>,
    pub is_static: bool,
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
        let mut table = MembershipTable::new(timers, config.max_groups);
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
        self.apply_events(&events, out);

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
        let before = self.table.len();
        if self.table.add_static(key, port)? {
            self.counters.groups_added += (self.table.len() - before) as u64;
            self.push_group(key, out);
        }
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
        if self.table.del_static(key, port)? {
            let ports = self.push_group(key, out);
            if ports.is_empty() {
                self.counters.groups_removed += 1;
            }
        }
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
        self.apply_events(&events, out);
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
                expires: m.expires,
                is_static: m.is_static,
            })
            .collect()
    }

    /// Router ports (learned and static).
    pub fn routers(&self) -> Vec<RouterPortView> {
        self.routers.views()
    }

    /// The current router port set.
    pub fn router_ports(&self) -> PortMask {
        self.routers.mask()
    }

    /// Member ports of a group (router ports not included).
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

    fn apply_events(&mut self, events: &[TableEvent], out: &mut Vec<Action>) {
        for ev in events {
            match *ev {
                TableEvent::Ports { key, ports } => {
                    if ports.is_empty() {
                        self.counters.groups_removed += 1;
                    }
                    out.push(Action::GroupPorts {
                        vlan: key.vlan,
                        group: key.group,
                        ports,
                    });
                }
                TableEvent::GroupQuery { key, port, version } => {
                    self.send_group_query(key, port, version, out)
                }
            }
        }
    }

    fn push_group(&mut self, key: GroupKey, out: &mut Vec<Action>) -> PortMask {
        let ports = self.table.lookup(key);
        out.push(Action::GroupPorts {
            vlan: key.vlan,
            group: key.group,
            ports,
        });
        ports
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
            "{what}: new group rejected"
        );
        self.last_limit_log = Some(now);
        self.limit_log_suppressed = 0;
    }
}

/// RFC 4541 §2.1.2: 224.0.0.0/24 is never snooped.
pub fn is_link_local(group: Ipv4Addr) -> bool {
    let o = group.octets();
    o[0] == 224 && o[1] == 0 && o[2] == 0
}
