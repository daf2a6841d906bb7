//! Changes the engine does not announce as actions, found by comparing its
//! state after each round with the last: who is querier, and reports refused
//! by a limit. Only while someone monitors: nobody pays for it otherwise.
use core::net::IpAddr;

use igmpsnoop_control::engine::AddrFamily;

use igmpsnoop_control::api::EventKind;

use super::{core::Core, views};

#[derive(Default)]
pub struct Watch {
    /// (family, vlan, querier, we are querier) per querier VLAN, as last
    /// published.
    queriers: Vec<(AddrFamily, u16, Option<IpAddr>, bool)>,
    /// The limit counters as last published.
    limits: Vec<(&'static str, u64)>,
    /// The engine keeps host joins and leaves for us.
    recording: bool,
}

impl Watch {
    pub fn publish_changes(&mut self, core: &mut Core) {
        if core.monitors.is_empty() {
            // Unknown again: a new monitor client is told the current state.
            self.queriers.clear();
            self.limits.clear();
            core.engine.record_member_events(false);
            self.recording = false;
            return;
        }
        self.members(core);
        self.queriers(core);
        self.limits(core);
    }

    /// Host joins and leaves, from the engine's explicit host tracking.
    fn members(&mut self, core: &mut Core) {
        if !self.recording {
            self.recording = true;
            core.engine.record_member_events(true);
            return;
        }
        for e in core.engine.take_member_events() {
            let (port, host) = (
                core.port_name(usize::from(e.port)),
                views::mac_string(&e.host),
            );
            core.publish(if e.joined {
                EventKind::Joined {
                    vlan: e.vlan,
                    group: e.group,
                    port,
                    host,
                    sources: e.sources,
                }
            } else {
                EventKind::Left {
                    vlan: e.vlan,
                    group: e.group,
                    port,
                    host,
                }
            });
        }
    }

    fn queriers(&mut self, core: &mut Core) {
        let now: Vec<_> = core
            .engine
            .querier()
            .into_iter()
            .map(|q| (q.family, q.vlan, q.querier_address, q.we_are_querier))
            .collect();
        for &(family, vlan, querier, we_are_querier) in &now {
            if !self
                .queriers
                .contains(&(family, vlan, querier, we_are_querier))
            {
                core.publish(EventKind::Querier {
                    family,
                    vlan,
                    querier,
                    we_are_querier,
                });
            }
        }
        self.queriers = now;
    }

    fn limits(&mut self, core: &mut Core) {
        let now: Vec<_> = core
            .engine
            .counters()
            .iter()
            .filter(|(name, _)| name.starts_with("reject_limit"))
            .collect();
        for &(what, total) in &now {
            let before = self
                .limits
                .iter()
                .find(|(w, _)| *w == what)
                .map(|(_, v)| *v);
            if before.is_some_and(|b| total > b) {
                core.publish(EventKind::LimitRejected {
                    what: what.to_string(),
                    total,
                });
            }
        }
        self.limits = now;
    }
}
