//! Answers the control socket's requests, inside the loop.
use std::{net::IpAddr, time::Duration};

use igmpsnoop_control::{
    api::Request,
    engine::{Proto, TableError},
};
use serde_json::{Value, json};
use tracing::info;

use super::{core::Core, views};

impl Core {
    /// The answer to `request` (any but `Monitor`, which the loop handles).
    pub fn handle(
        &mut self,
        request: Request,
        hold_left: Option<Duration>,
    ) -> Result<Value, String> {
        self.counters.ipc_requests += 1;
        let now = self.clock.now();
        let (engine, dp) = (&self.engine, &self.dp);
        Ok(match request {
            Request::Groups => views::groups(engine, dp, now, hold_left),
            Request::Sources => views::sources(engine, dp),
            Request::Streams => views::streams(engine, dp),
            Request::Routers => views::routers(engine, dp, now),
            Request::Querier => views::querier(engine, now),
            Request::Ports => views::ports(engine, dp),
            Request::Macs => views::macs(dp),
            Request::Vlans => views::vlans(engine, dp),
            Request::Stats => {
                let c = &self.counters;
                let daemon = json!({
                    "tx_frames": c.tx_frames,
                    "tx_errors": c.tx_errors,
                    "map_errors": c.map_errors,
                    "ipc_requests": c.ipc_requests,
                    "fast_joins": c.fast_joins,
                    "fast_leaves": c.fast_leaves,
                    "leave_hosts": dp.leave_hosts.len(),
                });
                views::stats(engine, dp, daemon.as_object().expect("an object"))
            }
            Request::GroupAdd {
                group,
                port,
                vlan,
                source,
            } => {
                let index = self.port_index(&port)?;
                let done = self.change_static(true, vlan, group, index, source)?;
                self.static_group_done(done, "added", (group, port, vlan, source))?
            }
            Request::GroupDel {
                group,
                port,
                vlan,
                source,
            } => {
                let index = self.port_index(&port)?;
                let done = self.change_static(false, vlan, group, index, source)?;
                self.static_group_done(done, "removed", (group, port, vlan, source))?
            }
            Request::Monitor => return Err("monitor is a stream, not a request".into()),
        })
    }

    /// Adds (or removes) a static (*,G) or (S,G) membership of either
    /// family; an error when group and source are of different families.
    fn change_static(
        &mut self,
        add: bool,
        vlan: u16,
        group: IpAddr,
        port: u8,
        source: Option<IpAddr>,
    ) -> Result<Result<(), TableError>, String> {
        match (group, source) {
            (IpAddr::V4(g), None) => Ok(self.static_of(add, vlan, g, port, None)),
            (IpAddr::V4(g), Some(IpAddr::V4(s))) => Ok(self.static_of(add, vlan, g, port, Some(s))),
            (IpAddr::V6(g), None) => Ok(self.static_of(add, vlan, g, port, None)),
            (IpAddr::V6(g), Some(IpAddr::V6(s))) => Ok(self.static_of(add, vlan, g, port, Some(s))),
            (g, Some(s)) => Err(format!(
                "source {s} and group {g} are of different address families"
            )),
        }
    }

    fn static_of<A: Proto>(
        &mut self,
        add: bool,
        vlan: u16,
        group: A,
        port: u8,
        source: Option<A>,
    ) -> Result<(), TableError> {
        let (e, out) = (&mut self.engine, &mut self.actions);
        match (add, source) {
            (true, None) => e.add_static_group(vlan, group, port, out),
            (true, Some(s)) => e.add_static_source(vlan, group, port, s, out),
            (false, None) => e.del_static_group(vlan, group, port, out),
            (false, Some(s)) => e.del_static_source(vlan, group, port, s, out),
        }
    }

    fn port_index(&self, name: &str) -> Result<u8, String> {
        self.dp
            .port_by_name(name)
            .map(|p| p.index as u8)
            .ok_or_else(|| {
                let names: Vec<&str> = self.dp.ports().iter().map(|p| p.name.as_str()).collect();
                format!(
                    "{name:?} is not a port of this switch (ports: {})",
                    names.join(", ")
                )
            })
    }

    /// Carries out a static-group change and says what was done.
    fn static_group_done(
        &mut self,
        done: Result<(), TableError>,
        what: &str,
        (group, port, vlan, source): (IpAddr, String, u16, Option<IpAddr>),
    ) -> Result<Value, String> {
        done.map_err(|e| match e {
            // Name what was asked for: the bare error says nothing of it.
            TableError::NotFound => {
                let source = source.map(|s| format!(" from {s}")).unwrap_or_default();
                let vlan = if vlan == 0 {
                    String::new()
                } else {
                    format!(" vlan {vlan}")
                };
                format!("no such static membership: {group}{source} on {port}{vlan}")
            }
            TableError::VlanNotCarried { vlan, .. } => {
                format!("{port} does not carry VLAN {vlan} (see `igmpsnoop vlans`)")
            }
            e => e.to_string(),
        })?;
        self.apply(None);
        self.flush();
        info!(%group, vlan, %port, ?source, "static group {what}");
        let mut entry = json!({"group": group.to_string(), "port": port, "vlan": vlan});
        if let Some(s) = source {
            entry["source"] = json!(s.to_string());
        }
        Ok(json!({ what: entry }))
    }
}
