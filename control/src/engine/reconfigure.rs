//! Live reconfiguration (the daemon's SIGHUP): what can change while the
//! switch runs is applied at once; what cannot is named and left as it was.
//!
//! Live: the querier (on/off, address, version of our queries, the per-VLAN
//! addresses), flooding of unregistered groups, and per port fast leave,
//! guard, static router and the group limit. Needs a restart: the protocol
//! timers and the table size, which the membership table fixes when it is
//! built (its capacity is reserved up front and its timers are its own), the
//! port list itself and the ports' VLANs (they decide which VLANs have a
//! querier, and the fast path's sets).

use super::{Action, Config, ConfigError, Engine, PortConfig};
use crate::port::{PortId, PortMask};
use crate::time::Timestamp;
use core::net::{Ipv4Addr, Ipv6Addr};

/// What `Engine::reconfigure` did, by config-file key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// Settings that changed and are in force now.
    pub applied: Vec<&'static str>,
    /// Settings that changed but need a restart; the running value is kept.
    pub need_restart: Vec<&'static str>,
}

impl Reconfigured {
    pub fn is_empty(&self) -> bool {
        self.applied.is_empty() && self.need_restart.is_empty()
    }
}

impl Engine {
    /// Take a new configuration while running. Validated first: a bad one
    /// changes nothing. Ports are matched by name; a port not running is
    /// ignored (the port list needs a restart). Router-port changes come out
    /// as an `Action::RouterPorts`; turning the querier on starts it as at
    /// start-up (startup queries, the first due at `now`).
    pub fn reconfigure(
        &mut self,
        config: Config,
        ports: Vec<PortConfig>,
        now: Timestamp,
        out: &mut Vec<Action>,
    ) -> Result<Reconfigured, ConfigError> {
        config.validate(ports.len())?;
        let merged = self.live_part(&config);
        // The running timers with the new live settings must make sense
        // together too (e.g. IGMPv2 cannot carry a long response interval).
        merged.validate(self.ports.len())?;
        self.now = now;
        let mut done = Reconfigured::default();
        self.diff_global(&config, &mut done);
        let querier_switched = merged.querier != self.config.querier;
        self.config = merged;
        if querier_switched {
            self.fam.igmp.querier.switch(&self.config, now);
            self.fam.mld.querier.switch(&self.config, now);
        }
        self.reconfigure_ports(&ports, &mut done);
        self.sync_routers::<Ipv4Addr>(out);
        self.sync_routers::<Ipv6Addr>(out);
        Ok(done)
    }

    /// The running configuration with the new one's live settings.
    fn live_part(&self, new: &Config) -> Config {
        Config {
            querier: new.querier,
            querier_address: new.querier_address,
            igmp_version: new.igmp_version,
            mld_version: new.mld_version,
            mld_querier_address: new.mld_querier_address,
            vlan_querier_address: new.vlan_querier_address.clone(),
            vlan_mld_querier_address: new.vlan_mld_querier_address.clone(),
            flood_unregistered: new.flood_unregistered,
            ..self.config.clone()
        }
    }

    fn diff_global(&self, new: &Config, done: &mut Reconfigured) {
        let old = &self.config;
        let live = [
            ("querier", old.querier != new.querier),
            (
                "querier-address",
                old.querier_address != new.querier_address,
            ),
            ("igmp-version", old.igmp_version != new.igmp_version),
            ("mld-version", old.mld_version != new.mld_version),
            (
                "mld-querier-address",
                old.mld_querier_address != new.mld_querier_address,
            ),
            (
                "flood-unregistered",
                old.flood_unregistered != new.flood_unregistered,
            ),
            // The [vlans.N] querier addresses.
            (
                "vlans",
                old.vlan_querier_address != new.vlan_querier_address
                    || old.vlan_mld_querier_address != new.vlan_mld_querier_address,
            ),
        ];
        let restart = [
            ("robustness", old.robustness != new.robustness),
            ("query-interval", old.query_interval != new.query_interval),
            (
                "query-response-interval",
                old.query_response_interval != new.query_response_interval,
            ),
            (
                "last-member-interval",
                old.last_member_interval != new.last_member_interval,
            ),
            (
                "last-member-count",
                old.last_member_count != new.last_member_count,
            ),
            (
                "startup-query-count",
                old.startup_query_count != new.startup_query_count,
            ),
            (
                "startup-query-interval",
                old.startup_query_interval != new.startup_query_interval,
            ),
            (
                "router-port-timeout",
                old.router_port_timeout != new.router_port_timeout,
            ),
            ("max-groups", old.max_groups != new.max_groups),
            // MLD's table is sized at start.
            ("no-mld", old.mld != new.mld),
        ];
        let changed = |list: &[(&'static str, bool)]| {
            list.iter()
                .filter(|(_, differs)| *differs)
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
        };
        done.applied.extend(changed(&live));
        done.need_restart.extend(changed(&restart));
    }

    fn reconfigure_ports(&mut self, new: &[PortConfig], done: &mut Reconfigured) {
        let same_ports = self.ports.len() == new.len()
            && self.ports.iter().zip(new).all(|(a, b)| a.name == b.name);
        if !same_ports {
            done.need_restart.push("port");
        }
        let mut fast_leave = self.fast_leave;
        let mut guard = self.guard;
        let mut routers = self.fam.igmp.routers.static_ports();
        let mut limits_changed = false;
        let mut vlans_changed = false;
        for (i, port) in self.ports.iter_mut().enumerate() {
            let Some(n) = new.iter().find(|n| n.name == port.name) else {
                continue;
            };
            // validate() bounds the port count to 64.
            let id = i as PortId;
            set(&mut fast_leave, id, n.fast_leave);
            set(&mut guard, id, n.guard);
            set(&mut routers, id, n.static_router);
            if port.max_groups != n.max_groups {
                // Memberships above a lowered limit stay; new ones are refused.
                self.fam.igmp.table.set_port_limit(id, n.max_groups);
                self.fam.mld.table.set_port_limit(id, n.max_groups);
                limits_changed = true;
            }
            vlans_changed |= port.vlans != n.vlans;
            // The running VLANs stay until a restart.
            let vlans = port.vlans.take();
            *port = PortConfig { vlans, ..n.clone() };
        }
        if vlans_changed {
            // The [ports.NAME] tables (pvid, vlans).
            done.need_restart.push("ports");
        }
        for (name, differs) in [
            ("fast-leave", fast_leave != self.fast_leave),
            ("guard-port", guard != self.guard),
            (
                "router-port",
                routers != self.fam.igmp.routers.static_ports(),
            ),
            ("max-groups-per-port", limits_changed),
        ] {
            if differs {
                done.applied.push(name);
            }
        }
        if fast_leave != self.fast_leave {
            self.fast_leave = fast_leave;
            self.note_all_groups();
        }
        self.guard = guard;
        // A static router port is one for both families.
        self.fam.igmp.routers.set_static(routers);
        self.fam.mld.routers.set_static(routers);
    }
}

fn set(mask: &mut PortMask, port: PortId, on: bool) {
    if on {
        mask.insert(port);
    } else {
        mask.remove(port);
    }
}
