//! The snooping engine: frames and time in, forwarding changes and frames
//! out. No sockets, threads or clock. IGMP (IPv4) and MLD (IPv6) run side
//! by side, each with its own table, querier and router ports, through the
//! same code generic over [`Proto`].

pub mod config;
pub mod counters;
mod handle;
mod leave_hosts;
mod mld_rx;
mod proto;
pub mod querier;
mod receive;
mod reconfigure;
pub mod router;
mod send;
pub mod vlans;

pub use crate::family::{AddrFamily, Version};
pub use crate::port::{Mac, PortId, PortMask};
pub use crate::table::{FilterMode, SoleHost, TableError};
pub use config::{Config, ConfigError, PortConfig};
pub use counters::{Counters, PortCounters, ProtoCounters};
pub use proto::{Proto, QuerySpec, Snooper, Snoopers};
pub use querier::QuerierView;
pub use reconfigure::Reconfigured;
pub use router::RouterPortView;
pub use vlans::VlanPorts;

use crate::table::{MembershipKey, MembershipTable, SourceInfo, TableEvent, Timers};
use crate::time::Timestamp;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::time::Duration;
use serde::Serialize;

/// A source of a (group, port), for views.
pub type SourceView = SourceInfo<IpAddr>;

/// What the caller must do. Groups and sources are IPv4 (IGMP) or IPv6
/// (MLD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The ports of (vlan, group) that receive traffic from sources
    /// without an entry of their own (RFC 3376 router filter mode
    /// EXCLUDE; for a (*,G) group, every member port) are now `ports`.
    /// Empty after the SourcePorts None of each source entry = group gone.
    /// Router ports are not included; the dataplane adds them.
    GroupPorts {
        vlan: u16,
        group: IpAddr,
        ports: PortMask,
    },
    /// Traffic from `source` to (vlan, group): Some(mask) = to exactly
    /// `mask` (may be empty: nobody wants it); None = `source` has no
    /// entry of its own any more and follows GroupPorts. Emitted only on a
    /// change, for every source some port's state of the group mentions.
    /// Router ports are not included.
    SourcePorts {
        vlan: u16,
        group: IpAddr,
        source: IpAddr,
        ports: Option<PortMask>,
    },
    /// The set of router ports (learned ∪ static) of `family` on `vlan`
    /// is now `ports` (the static ones only where they carry the VLAN).
    RouterPorts {
        family: AddrFamily,
        vlan: u16,
        ports: PortMask,
    },
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
    pub family: AddrFamily,
    pub vlan: u16,
    pub group: IpAddr,
    pub port: PortId,
    pub hosts: Vec<Mac>,
    /// Compatibility mode: IGMP 1, 2 or 3; MLD 1 or 2.
    pub version: Version,
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
    pub family: AddrFamily,
    pub vlan: u16,
    pub group: IpAddr,
    pub source: IpAddr,
    /// Ports traffic from `source` goes to (router ports not included).
    pub ports: PortMask,
}

/// Minimum time between two "table full" log lines.
const LIMIT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The IGMP and MLD snooping engine.
#[derive(Debug)]
pub struct Engine {
    config: Config,
    ports: Vec<PortConfig>,
    /// Which ports carry which VLAN (fixed at start).
    vlans: VlanPorts,
    /// Ports that are up; frames are only sent out of these.
    up: PortMask,
    fast_leave: PortMask,
    guard: PortMask,
    fam: Snoopers,
    counters: Counters,
    /// The latest time handed in, for views and calls without a `now`.
    now: Timestamp,
    ip_ident: u16,
    last_limit_log: Option<Timestamp>,
    limit_log_suppressed: u64,
    /// Host joins and leaves, kept only while someone asks for them.
    member_events: Option<Vec<MemberEvent>>,
    /// Groups that may have changed since the fast path's LEAVE_HOSTS was
    /// last brought in step, kept only while tracked (`leave_hosts`).
    leave_changes: Option<std::collections::HashSet<(u16, IpAddr)>>,
}

/// A host joined or left a group on a port (explicit host tracking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEvent {
    pub vlan: u16,
    pub group: IpAddr,
    pub port: PortId,
    pub host: Mac,
    /// True: joined (with the sources its record named); false: left.
    pub joined: bool,
    pub sources: Vec<IpAddr>,
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
        for p in &ports {
            p.validate()?;
        }
        let vlans = VlanPorts::new(&ports);
        let timers = Timers {
            gmi: config.group_membership_interval(),
            lmqi: config.last_member_interval,
            lmqc: config.last_member_count,
        };
        // The limits bound each family's table on its own.
        let mut igmp_table =
            MembershipTable::new(timers, config.max_groups, config.max_sources_per_group);
        // MLD reserves no room up front: IPv6 groups are fewer where
        // IGMP's are many, and its reservation would double the memory an
        // IPv4-only switch holds (the table grows as groups arrive).
        let mut mld_table =
            MembershipTable::new(timers, config.max_groups, config.max_sources_per_group)
                .unreserved();
        let mut fast_leave = PortMask::EMPTY;
        let mut guard = PortMask::EMPTY;
        let mut static_routers = PortMask::EMPTY;
        for (i, p) in ports.iter().enumerate() {
            // validate() bounds ports.len() to 64.
            let id = i as PortId;
            igmp_table.set_port_limit(id, p.max_groups);
            mld_table.set_port_limit(id, p.max_groups);
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
        let fam = Snoopers {
            igmp: Snooper::new(&config, igmp_table, static_routers, &vlans, now),
            mld: Snooper::new(&config, mld_table, static_routers, &vlans, now),
        };
        Ok(Engine {
            up: PortMask::first(ports.len()),
            vlans,
            fam,
            config,
            ports,
            fast_leave,
            guard,
            counters: Counters::default(),
            now,
            ip_ident: 0,
            last_limit_log: None,
            limit_log_suppressed: 0,
            member_events: None,
            leave_changes: None,
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
        self.sync_routers::<Ipv4Addr>(out);
        self.sync_routers::<Ipv6Addr>(out);
    }

    /// Fire every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        self.now = now;
        self.timeout_family::<Ipv4Addr>(now, out);
        self.timeout_family::<Ipv6Addr>(now, out);
    }

    fn timeout_family<A: Proto>(&mut self, now: Timestamp, out: &mut Vec<Action>) {
        let mut events = Vec::new();
        self.sn::<A>().table.age(now, &mut events);
        self.apply_events(events, false, out);

        let mut due = Vec::new();
        let resumed = A::snooper_mut(&mut self.fam)
            .querier
            .poll(&self.config, now, |vlan| due.push(vlan));
        self.pc::<A>().querier_resumed += resumed;
        for vlan in due {
            // Only the ports of the VLAN: send_query masks by its carriers.
            let ports = self.up;
            self.send_general_query::<A>(vlan, ports, out);
        }

        let expired = self.sn::<A>().routers.age(now);
        self.pc::<A>().router_ports_expired += expired;
        self.sync_routers::<A>(out);
    }

    /// The state of family `A`.
    fn sn<A: Proto>(&mut self) -> &mut Snooper<A> {
        A::snooper_mut(&mut self.fam)
    }

    /// The counters of family `A`.
    fn pc<A: Proto>(&mut self) -> &mut ProtoCounters {
        A::counters(&mut self.counters)
    }

    /// The earliest time `handle_timeout` has work to do. It may be early
    /// (a refreshed group); calling then is harmless.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let (v4, v6) = (&self.fam.igmp, &self.fam.mld);
        [
            v4.table.next_deadline(),
            v4.querier.next_deadline(),
            v4.routers.next_deadline(),
            v6.table.next_deadline(),
            v6.querier.next_deadline(),
            v6.routers.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn static_key<A: Proto>(
        &self,
        vlan: u16,
        group: A,
        port: PortId,
    ) -> Result<MembershipKey<A>, TableError> {
        if usize::from(port) >= self.ports.len() {
            return Err(TableError::BadPort(port));
        }
        if !group.is_multicast() || group.never_snooped() {
            return Err(TableError::BadGroup(group.into()));
        }
        Ok(MembershipKey { vlan, group })
    }

    /// Add a static membership (never ages; bypasses the group limits).
    pub fn add_static_group<A: Proto>(
        &mut self,
        vlan: u16,
        group: A,
        port: PortId,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_key(vlan, group, port)?;
        if !self.vlans.port_carries(port, vlan) {
            return Err(TableError::VlanNotCarried { port, vlan });
        }
        self.note_change(key);
        self.change_static(out, |t, ev| t.add_static(key, port, ev))
    }

    /// Remove a static membership; a learned one on the port stays.
    pub fn del_static_group<A: Proto>(
        &mut self,
        vlan: u16,
        group: A,
        port: PortId,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_key(vlan, group, port)?;
        self.note_change(key);
        self.change_static(out, |t, ev| t.del_static(key, port, ev))
    }

    /// Add a static (S,G) membership: traffic from `source` to (vlan,
    /// group) goes out of `port` whatever its hosts report (never ages;
    /// bypasses the limits).
    pub fn add_static_source<A: Proto>(
        &mut self,
        vlan: u16,
        group: A,
        port: PortId,
        source: A,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_source_key(vlan, group, port, source)?;
        if !self.vlans.port_carries(port, vlan) {
            return Err(TableError::VlanNotCarried { port, vlan });
        }
        self.note_change(key);
        self.change_static(out, |t, ev| t.add_static_source(key, port, source, ev))
    }

    /// Remove a static (S,G) membership; what hosts reported stays.
    pub fn del_static_source<A: Proto>(
        &mut self,
        vlan: u16,
        group: A,
        port: PortId,
        source: A,
        out: &mut Vec<Action>,
    ) -> Result<(), TableError> {
        let key = self.static_source_key(vlan, group, port, source)?;
        self.note_change(key);
        self.change_static(out, |t, ev| t.del_static_source(key, port, source, ev))
    }

    /// [`Engine::static_key`], and a source that can never have an entry
    /// refused as such (adding it, or removing it: not reported missing).
    fn static_source_key<A: Proto>(
        &self,
        vlan: u16,
        group: A,
        port: PortId,
        source: A,
    ) -> Result<MembershipKey<A>, TableError> {
        let key = self.static_key(vlan, group, port)?;
        if source.bad_source().is_some() {
            return Err(TableError::BadSource(source.into()));
        }
        Ok(key)
    }

    /// Runs a static change on `A`'s table, counts the groups it created
    /// and carries out what it changed.
    fn change_static<A: Proto>(
        &mut self,
        out: &mut Vec<Action>,
        change: impl FnOnce(&mut MembershipTable<A>, &mut Vec<TableEvent<A>>) -> Result<(), TableError>,
    ) -> Result<(), TableError> {
        let mut events = Vec::new();
        let table = &mut self.sn::<A>().table;
        let before = table.len();
        change(table, &mut events)?;
        let added = table.len().saturating_sub(before) as u64;
        self.pc::<A>().groups_added += added;
        self.apply_events(events, false, out);
        Ok(())
    }

    /// Keep (true) or stop keeping (false) host joins and leaves for
    /// [`Engine::take_member_events`]; off by default: nobody pays for them.
    pub fn record_member_events(&mut self, on: bool) {
        self.member_events = on.then(Vec::new);
    }

    /// The host joins and leaves since the last call.
    pub fn take_member_events(&mut self) -> Vec<MemberEvent> {
        self.member_events
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// The ports whose (*,G) join of any group, of either family, this
    /// engine would accept now: up, and not refused by a limit (a port's
    /// own, the table's). The fast path may apply joins from these itself
    /// (fast join) before the engine sees them.
    pub fn join_ports(&self) -> PortMask {
        let room = self.fam.igmp.table.ports_with_room().0 & self.fam.mld.table.ports_with_room().0;
        PortMask(room & self.up.0)
    }

    /// Ports that are up (frames go out of these only).
    pub fn ports_up(&self) -> PortMask {
        self.up
    }

    /// The port went down: flush its memberships and learned router state.
    pub fn port_down(&mut self, port: PortId, out: &mut Vec<Action>) {
        self.up.remove(port);
        self.note_all_groups();
        self.port_down_family::<Ipv4Addr>(port, out);
        self.port_down_family::<Ipv6Addr>(port, out);
    }

    fn port_down_family<A: Proto>(&mut self, port: PortId, out: &mut Vec<Action>) {
        let mut events = Vec::new();
        self.sn::<A>().table.flush_port(port, &mut events);
        self.apply_events(events, false, out);
        self.sn::<A>().routers.forget(port);
        self.sync_routers::<A>(out);
    }

    /// The port came up: when querier, send it a general query at once so
    /// its hosts report without waiting a query interval.
    pub fn port_up(&mut self, now: Timestamp, port: PortId, out: &mut Vec<Action>) {
        self.now = now;
        if usize::from(port) >= self.ports.len() {
            return;
        }
        self.up.insert(port);
        self.note_all_groups();
        self.port_up_family::<Ipv4Addr>(port, out);
        self.port_up_family::<Ipv6Addr>(port, out);
    }

    fn port_up_family<A: Proto>(&mut self, port: PortId, out: &mut Vec<Action>) {
        let vlans: Vec<u16> = A::snooper(&self.fam)
            .querier
            .active_vlans(&self.config)
            .filter(|&v| self.vlans.port_carries(port, v))
            .collect();
        for vlan in vlans {
            self.send_general_query::<A>(vlan, PortMask::single(port), out);
        }
        self.sync_routers::<A>(out);
    }

    /// A restarted switch asks its hosts to report again. As querier its
    /// startup queries (the first due at once) do that already; otherwise
    /// it sends one general query on every up port of each querier VLAN,
    /// from the querier address or 0.0.0.0: RFC 4541 §2.1.1 lets a snooping
    /// switch query with source 0.0.0.0, which no querier election counts.
    /// MLD has no such query (hosts ignore queries from anything but a
    /// link-local source, RFC 3810 §5.1.14), so only IGMP is solicited.
    /// Returns the number of queries sent.
    pub fn solicit_reports(&mut self, now: Timestamp, out: &mut Vec<Action>) -> usize {
        self.now = now;
        if self.config.querier {
            return 0;
        }
        let vlans = self.vlans.snooped();
        let ports = self.up;
        for &vlan in &vlans {
            self.send_general_query::<Ipv4Addr>(vlan, ports, out);
        }
        if ports.is_empty() { 0 } else { vlans.len() }
    }

    /// Every (vlan, group, port) membership, IPv4 then IPv6, each sorted.
    pub fn groups(&self) -> Vec<GroupPortView> {
        let mut v = self.group_views::<Ipv4Addr>();
        v.extend(self.group_views::<Ipv6Addr>());
        v
    }

    fn group_views<A: Proto>(&self) -> Vec<GroupPortView> {
        A::snooper(&self.fam)
            .table
            .members(self.now)
            .into_iter()
            .map(|m| GroupPortView {
                family: A::FAMILY,
                vlan: m.key.vlan,
                group: m.key.group.into(),
                port: m.port,
                hosts: m.hosts,
                version: A::version(m.generation),
                filter_mode: m.filter_mode,
                sources: m
                    .sources
                    .into_iter()
                    .map(|s| SourceInfo {
                        address: s.address.into(),
                        expires: s.expires,
                        excluded: s.excluded,
                    })
                    .collect(),
                expires: m.expires,
                is_static: m.is_static,
            })
            .collect()
    }

    /// Every (S,G) forwarding entry, IPv4 then IPv6, each sorted by (vlan,
    /// group, source).
    pub fn source_entries(&self) -> Vec<SourceEntryView> {
        let mut v = self.source_views::<Ipv4Addr>();
        v.extend(self.source_views::<Ipv6Addr>());
        v
    }

    fn source_views<A: Proto>(&self) -> Vec<SourceEntryView> {
        A::snooper(&self.fam)
            .table
            .source_entries()
            .into_iter()
            .map(|(k, source, ports)| SourceEntryView {
                family: A::FAMILY,
                vlan: k.vlan,
                group: k.group.into(),
                source: source.into(),
                ports,
            })
            .collect()
    }

    /// Where traffic from `source` to (vlan, group) goes, when `source`
    /// has an entry of its own; None: it follows `lookup`.
    pub fn lookup_source<A: Proto>(&self, vlan: u16, group: A, source: A) -> Option<PortMask> {
        A::snooper(&self.fam)
            .table
            .lookup_source(MembershipKey { vlan, group }, source)
    }

    /// Router ports (learned and static) of each VLAN, IPv4's then IPv6's.
    pub fn routers(&self) -> Vec<RouterPortView> {
        let mut v = self.fam.igmp.routers.views();
        if self.config.mld {
            v.extend(self.fam.mld.routers.views());
        }
        v
    }

    /// The router ports of family `A` on `vlan`.
    pub fn router_ports_of<A: Proto>(&self, vlan: u16) -> PortMask {
        A::snooper(&self.fam).routers.mask(vlan)
    }

    /// The ports that are router ports of either family on any VLAN.
    pub fn router_ports(&self) -> PortMask {
        self.fam.igmp.routers.any_vlan() | self.fam.mld.routers.any_vlan()
    }

    /// The static router ports (each one on every VLAN it carries).
    pub fn static_router_ports(&self) -> PortMask {
        self.fam.igmp.routers.static_ports()
    }

    /// Which ports carry which VLAN.
    pub fn vlans(&self) -> &VlanPorts {
        &self.vlans
    }

    /// Ports of a group in EXCLUDE mode: they take traffic from sources
    /// without an entry of their own (router ports not included).
    pub fn lookup<A: Proto>(&self, vlan: u16, group: A) -> PortMask {
        A::snooper(&self.fam)
            .table
            .lookup(MembershipKey { vlan, group })
    }

    /// Querier state per querier VLAN: IGMP's, then MLD's (while on).
    pub fn querier(&self) -> Vec<QuerierView> {
        let mut v = self.fam.igmp.querier.views(&self.config);
        if self.config.mld {
            v.extend(self.fam.mld.querier.views(&self.config));
        }
        v
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

    /// Number of distinct (VLAN, group) entries, both families.
    pub fn group_count(&self) -> usize {
        self.fam.igmp.table.len() + self.fam.mld.table.len()
    }

    /// Number of distinct groups of either family on each VLAN that has any.
    pub fn group_count_by_vlan(&self) -> std::collections::BTreeMap<u16, usize> {
        let mut counts = std::collections::BTreeMap::new();
        self.fam.igmp.table.count_by_vlan(&mut counts);
        self.fam.mld.table.count_by_vlan(&mut counts);
        counts
    }

    /// Number of distinct (VLAN, group) entries of family `A`.
    pub fn group_count_of<A: Proto>(&self) -> usize {
        A::snooper(&self.fam).table.len()
    }

    /// Rate-limited: a full table must not flood the log.
    fn log_limit<A: Proto>(
        &mut self,
        now: Timestamp,
        what: &str,
        key: MembershipKey<A>,
        port: PortId,
    ) {
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
