//! What the event loop drives: the engine, the fast path, the monitor
//! clients and the daemon's own counters, and carrying out the engine's
//! actions on them.
use std::collections::BTreeMap;
use std::time::Instant;

use std::net::IpAddr;

use igmpsnoop_control::{
    Action, Engine, PortMask, Timestamp,
    api::{Event, EventKind},
    engine::AddrFamily,
};
use igmpsnoop_dataplane::{Dataplane, leave_hosts::LeaveHostEntry, vlan::ANY_VLAN};
use tracing::{debug, error, warn};

use super::control_socket::Monitors;

/// Monotonic milliseconds since the daemon started: the engine's clock.
pub struct Clock(Instant);

impl Clock {
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    pub fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

#[derive(Default)]
pub struct DaemonCounters {
    pub tx_frames: u64,
    pub tx_errors: u64,
    pub map_errors: u64,
    pub ipc_requests: u64,
    /// Group entries the XDP program wrote itself (fast join) and reported,
    /// each then rewritten with what the engine wants.
    pub fast_joins: u64,
    /// Leaves the XDP program applied itself (fast leave) and reported,
    /// likewise rewritten.
    pub fast_leaves: u64,
}

pub struct Core {
    pub engine: Engine,
    pub dp: Dataplane,
    pub clock: Clock,
    pub counters: DaemonCounters,
    pub monitors: Monitors,
    /// The engine's pending actions, carried out by [`Core::apply`].
    pub actions: Vec<Action>,
    /// The actions being applied came from timers (ports they remove
    /// expired).
    pub timed: bool,
    /// The router ports last given to the fast path, per (family, VLAN);
    /// ANY_VLAN: the static ones, for VLANs without a set of their own.
    pub router_sets: BTreeMap<(AddrFamily, u16), PortMask>,
}

impl Core {
    /// Carries out what the engine's timers produced: ports that leave a
    /// group now expired (no report kept them).
    pub fn apply_timers(&mut self) {
        self.timed = true;
        self.apply(None);
        self.timed = false;
    }

    /// Carries out the engine's pending actions. `input` is the frame they
    /// answer, for `Forward`. Failures are logged and counted; the switch
    /// keeps running.
    pub fn apply(&mut self, input: Option<&[u8]>) {
        let mut actions = std::mem::take(&mut self.actions);
        for action in actions.drain(..) {
            match action {
                Action::GroupPorts { vlan, group, ports } => self.group_ports(vlan, group, ports),
                Action::SourcePorts {
                    vlan,
                    group,
                    source,
                    ports,
                } => {
                    debug!(%group, vlan, %source, ports = ?ports.map(|p| p.0), "source ports");
                    let f = &mut self.dp.forwarding;
                    match (group, source) {
                        (IpAddr::V4(g), IpAddr::V4(s)) => {
                            f.stage_source(vlan, g.octets(), s.octets(), ports)
                        }
                        (IpAddr::V6(g), IpAddr::V6(s)) => {
                            f.stage_source(vlan, g.octets(), s.octets(), ports)
                        }
                        _ => warn!(%group, %source, "a source of the other family: ignored"),
                    }
                }
                Action::RouterPorts {
                    family,
                    vlan,
                    ports,
                } => self.set_router_ports(family, vlan, ports),
                Action::Forward { ports } => {
                    if let Some(frame) = input {
                        self.send_all(ports, frame);
                    }
                }
                Action::Transmit { ports, frame } => self.send_all(ports, &frame),
            }
        }
        // Hand the (empty) buffer back: no allocation next time.
        self.actions = actions;
    }

    /// Stages a group's member ports (written by `flush`, in one kernel
    /// batch with the round's other changes), and tells the monitors.
    fn group_ports(&mut self, vlan: u16, group: IpAddr, ports: PortMask) {
        debug!(%group, vlan, ports = format_args!("{:#x}", ports.0), "group ports");
        if !self.monitors.is_empty() {
            let before = match group {
                IpAddr::V4(g) => self.dp.forwarding.members(vlan, g.octets()),
                IpAddr::V6(g) => self.dp.forwarding.members(vlan, g.octets()),
            };
            let (names, added, removed) = self.changes(before, ports);
            if self.timed {
                for port in &removed {
                    self.publish(EventKind::Expired {
                        vlan,
                        group,
                        port: port.clone(),
                    });
                }
            }
            self.publish(EventKind::GroupPorts {
                vlan,
                group,
                ports: names,
                added,
                removed,
            });
        }
        match group {
            IpAddr::V4(g) => self.dp.forwarding.stage_group(vlan, g.octets(), ports),
            IpAddr::V6(g) => self.dp.forwarding.stage_group(vlan, g.octets(), ports),
        }
    }

    /// Takes the fast path's reports of the joins and leaves it applied
    /// itself and marks each group for rewriting by a flush once its grace
    /// passed, unless a flush wrote it since: whatever the program wrote,
    /// the kernel ends up with what the engine wants.
    pub fn drain_fast_joins(&mut self) {
        let n = self.dp.drain_fast_joins();
        self.counters.fast_joins += n.joins as u64;
        self.counters.fast_leaves += n.leaves as u64;
    }

    /// Tells the fast path which ports' joins it may apply itself: those
    /// the engine would accept now (not at a limit); written on change.
    pub fn update_fast_join_ports(&mut self) {
        let ports = self.engine.join_ports();
        if let Err(e) = self.dp.forwarding.set_fast_join_ports(ports) {
            self.counters.map_errors += 1;
            error!(error = %e, "cannot set the fast-join ports");
        }
    }

    /// Writes the staged group changes to the kernel, with LEAVE_HOSTS in
    /// step: entries no longer true go before the group entries change,
    /// new ones come after (dataplane/src/leave_hosts.rs).
    pub fn flush(&mut self) {
        self.stage_leave_hosts();
        self.dp.leave_hosts.write_removals();
        if let Err(e) = self.dp.forwarding.flush() {
            self.counters.map_errors += 1;
            error!(error = %e, "cannot update the group map");
        }
        self.dp.leave_hosts.write_additions();
        self.update_fast_join_ports();
    }

    /// The hosts the program may take out of each group that changed
    /// since the last flush (fast leave in XDP). Not on a port the group
    /// holds from an earlier run: the daemon keeps it until the hold ends,
    /// whatever the hosts it learned since say (they may not be all).
    fn stage_leave_hosts(&mut self) {
        for (vlan, group) in self.engine.take_leave_changes() {
            let held = match group {
                IpAddr::V4(g) => self.dp.forwarding.held_ports(vlan, g.octets()),
                IpAddr::V6(g) => self.dp.forwarding.held_ports(vlan, g.octets()),
            };
            let hosts = self
                .engine
                .leave_hosts(vlan, group)
                .into_iter()
                .filter(|h| !held.contains(h.port))
                .map(|h| LeaveHostEntry {
                    port: h.port,
                    mac: h.mac,
                    last: h.last,
                })
                .collect();
            self.dp.leave_hosts.stage(vlan, group, hosts);
        }
    }

    /// The router ports of `family` on `vlan` (ANY_VLAN: of every VLAN
    /// without a set of its own) are now `ports`.
    pub fn set_router_ports(&mut self, family: AddrFamily, vlan: u16, ports: PortMask) {
        debug!(
            ?family,
            vlan,
            ports = format_args!("{:#x}", ports.0),
            "router ports"
        );
        let before = self
            .router_sets
            .insert((family, vlan), ports)
            .unwrap_or_default();
        if !self.monitors.is_empty() && vlan != ANY_VLAN {
            let (names, added, removed) = self.changes(before, ports);
            if !added.is_empty() || !removed.is_empty() {
                self.publish(EventKind::RouterPorts {
                    family,
                    vlan,
                    ports: names,
                    added,
                    removed,
                });
            }
        }
        let f = &mut self.dp.forwarding;
        let done = match family {
            AddrFamily::Ipv4 => f.set_vlan_router_ports::<[u8; 4]>(vlan, ports),
            AddrFamily::Ipv6 => f.set_vlan_router_ports::<[u8; 16]>(vlan, ports),
        };
        if let Err(e) = done {
            self.counters.map_errors += 1;
            error!(error = %e, "cannot update router ports");
        }
    }

    /// The static router ports are the router ports of every VLAN nobody
    /// queried on (ANY_VLAN), of both families: unregistered traffic of
    /// such a VLAN still reaches them, as before VLAN support. Only when
    /// they changed.
    pub fn set_static_routers(&mut self) {
        let ports = self.engine.static_router_ports();
        for family in [AddrFamily::Ipv4, AddrFamily::Ipv6] {
            if self.router_sets.get(&(family, ANY_VLAN)) != Some(&ports) {
                self.set_router_ports(family, ANY_VLAN, ports);
            }
        }
    }

    fn send_all(&mut self, ports: PortMask, frame: &[u8]) {
        for port in ports.iter() {
            match self.dp.send(port as usize, frame) {
                Ok(()) => self.counters.tx_frames += 1,
                Err(e) => {
                    self.counters.tx_errors += 1;
                    warn!(port, error = %e, "cannot send");
                }
            }
        }
    }

    /// Sends an event to the monitor clients.
    pub fn publish(&mut self, kind: EventKind) {
        self.monitors.publish(&Event::now(kind));
    }

    pub fn port_name(&self, index: usize) -> String {
        self.dp
            .ports()
            .get(index)
            .map_or_else(|| format!("#{index}"), |p| p.name.clone())
    }

    /// The port names of a mask.
    pub fn port_names(&self, mask: PortMask) -> Vec<String> {
        mask.iter()
            .map(|p| self.port_name(usize::from(p)))
            .collect()
    }

    /// `after`'s ports, and those added and removed since `before`.
    fn changes(
        &self,
        before: PortMask,
        after: PortMask,
    ) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            self.port_names(after),
            self.port_names(after & !before),
            self.port_names(before & !after),
        )
    }
}
