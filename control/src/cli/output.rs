//! Plain-text tables for the listings (the `--json` form prints the data as is).
use std::net::IpAddr;

use std::collections::{BTreeSet, HashMap};

use igmpsnoop_control::api::listing::{
    GroupRow, MacRow, QuerierRow, RouterRow, SourceEntryRow, StreamRow, VlanQuerierRow, VlanRow,
};
use igmpsnoop_control::api::{Event, EventKind};
use igmpsnoop_control::engine::AddrFamily;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

/// Prints rows under headers, each column as wide as its widest cell.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

fn rows(data: &Value) -> &[Value] {
    data.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// The rows of a listing reply, typed; an error when the daemon's reply is
/// not what this CLI reads (a daemon of another version).
fn typed<T: DeserializeOwned>(data: &Value) -> Result<Vec<T>, String> {
    serde_json::from_value(data.clone())
        .map_err(|e| format!("igmpsnoop: the daemon's reply does not match this CLI: {e}\n"))
}

/// A listing's table: its typed rows, one line each, or `empty` when there
/// are none (and `empty` is not "").
fn listing<T: DeserializeOwned>(
    data: &Value,
    empty: &str,
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> String {
    match typed::<T>(data) {
        Err(e) => e,
        Ok(rows) if rows.is_empty() && !empty.is_empty() => format!("{empty}\n"),
        Ok(rows) => table(headers, rows.iter().map(row).collect()),
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn ms_opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0))
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

pub fn groups(data: &Value) -> String {
    let rows: Vec<GroupRow> = match typed(data) {
        Ok(r) => r,
        Err(e) => return e,
    };
    if rows.is_empty() {
        return "no groups\n".into();
    }
    let mut out = groups_table(&rows);
    out.push_str(&groups_summary(&rows));
    out
}

/// "N groups, M memberships on K ports".
fn groups_summary(rows: &[GroupRow]) -> String {
    let groups: BTreeSet<(u16, IpAddr)> = rows.iter().map(|g| (g.vlan, g.group)).collect();
    let ports: BTreeSet<&str> = rows.iter().map(|g| g.port.as_str()).collect();
    format!(
        "{} group(s), {} membership(s) on {} port(s)\n",
        groups.len(),
        rows.len(),
        ports.len()
    )
}

/// Rows that can be filtered by group, port and VLAN.
pub trait Filtered: Serialize + DeserializeOwned {
    fn group(&self) -> IpAddr;
    fn vlan(&self) -> u16;
    fn on_port(&self, port: &str) -> bool;
}

impl Filtered for GroupRow {
    fn group(&self) -> IpAddr {
        self.group
    }
    fn vlan(&self) -> u16 {
        self.vlan
    }
    fn on_port(&self, port: &str) -> bool {
        self.port == port
    }
}

impl Filtered for SourceEntryRow {
    fn group(&self) -> IpAddr {
        self.group
    }
    fn vlan(&self) -> u16 {
        self.vlan
    }
    fn on_port(&self, port: &str) -> bool {
        self.ports.iter().any(|p| p == port)
    }
}

impl Filtered for StreamRow {
    fn group(&self) -> IpAddr {
        self.group
    }
    fn vlan(&self) -> u16 {
        self.vlan
    }
    fn on_port(&self, port: &str) -> bool {
        self.ports.iter().any(|p| p == port)
    }
}

/// Only the rows of `group`, `port` and `vlan` (each when given).
pub fn filter<T: Filtered>(
    data: Value,
    group: Option<IpAddr>,
    port: Option<&str>,
    vlan: Option<u16>,
) -> anyhow::Result<Value> {
    let rows: Vec<T> = typed(&data).map_err(|e| anyhow::anyhow!(e.trim().to_string()))?;
    let keep = |r: &T| {
        group.is_none_or(|g| r.group() == g)
            && port.is_none_or(|p| r.on_port(p))
            && vlan.is_none_or(|v| r.vlan() == v)
    };
    let kept: Vec<T> = rows.into_iter().filter(keep).collect();
    Ok(serde_json::to_value(kept)?)
}

/// The rows of a listing whose `vlan` is `vlan`.
pub fn rows_of_vlan(data: Value, vlan: u16) -> Value {
    match data {
        Value::Array(rows) => rows
            .into_iter()
            .filter(|r| r["vlan"].as_u64() == Some(u64::from(vlan)))
            .collect(),
        other => other,
    }
}

/// The `ports` rows of the ports that carry `vlan`: those configured
/// with it, and every VLAN-unaware one (`vlans` null: they carry all).
pub fn ports_carrying(data: Value, vlan: u16) -> Value {
    match data {
        Value::Array(rows) => rows
            .into_iter()
            .filter(|p| match p["vlans"].as_array() {
                None => true,
                Some(l) => l.iter().any(|v| v.as_u64() == Some(u64::from(vlan))),
            })
            .collect(),
        other => other,
    }
}

/// Whether `monitor --vlan` shows `event`: every event when no VLAN is
/// asked for; else those of that VLAN, and those of no VLAN at all (ports
/// up and down, limits, restarts, reloads).
pub fn event_of_vlan(event: &Event, vlan: Option<u16>) -> bool {
    let Some(vlan) = vlan else {
        return true;
    };
    let v = serde_json::to_value(event).unwrap_or_default();
    v["vlan"].as_u64().is_none_or(|v| v == u64::from(vlan))
}

/// Each stream in `after` with its rates since `before`, `secs` earlier.
pub fn stream_rates(before: &Value, after: &Value, secs: f64) -> anyhow::Result<Value> {
    let err = |e: String| anyhow::anyhow!(e.trim().to_string());
    let old: Vec<StreamRow> = typed(before).map_err(err)?;
    let mut new: Vec<StreamRow> = typed(after).map_err(err)?;
    let key = |r: &StreamRow| (r.vlan, r.group, r.source);
    let old: HashMap<_, _> = old.iter().map(|r| (key(r), (r.frames, r.bytes))).collect();
    for r in &mut new {
        let (f0, b0) = old.get(&key(r)).copied().unwrap_or((0, 0));
        r.pps = Some((r.frames.saturating_sub(f0) as f64 / secs).round());
        r.bits_per_second = Some((r.bytes.saturating_sub(b0) as f64 * 8.0 / secs).round());
    }
    Ok(serde_json::to_value(new)?)
}

/// `groups --rates`.
pub fn rates(data: &Value) -> String {
    let headers = [
        "GROUP",
        "SOURCE",
        "VLAN",
        "PPS",
        "MBIT/S",
        "PORTS",
        "ROUTER PORTS",
    ];
    listing(data, "no streams", &headers, |r: &StreamRow| {
        vec![
            r.group.to_string(),
            r.source.map_or_else(|| "*".into(), |s| s.to_string()),
            r.vlan.to_string(),
            opt(r.pps),
            format!("{:.2}", r.bits_per_second.unwrap_or(0.0) / 1e6),
            list(&r.ports),
            list(&r.router_ports),
        ]
    })
}

pub fn is_empty(data: &Value) -> bool {
    data.as_array().is_none_or(Vec::is_empty)
}

/// The (S,G) forwarding entries.
pub fn sources(data: &Value) -> String {
    let headers = ["SOURCE", "GROUP", "VLAN", "PORTS"];
    listing(data, "no (S,G) entries", &headers, |e: &SourceEntryRow| {
        vec![
            e.source.to_string(),
            e.group.to_string(),
            e.vlan.to_string(),
            if e.ports.is_empty() {
                "(none: blocked)".into()
            } else {
                e.ports.join(",")
            },
        ]
    })
}

/// "S1 (3.2s), S2 (excluded)": a port's source list with timers.
fn source_list(g: &GroupRow) -> String {
    let list: Vec<String> = g
        .sources
        .iter()
        .map(|src| {
            let state = if src.excluded {
                "excluded".to_string()
            } else {
                ms_opt(src.expires_ms)
            };
            format!("{} ({state})", src.address)
        })
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

fn groups_table(rows: &[GroupRow]) -> String {
    table(
        &[
            "FAMILY", "GROUP", "VLAN", "PORT", "VER", "MODE", "EXPIRES", "SOURCES", "HOSTS",
        ],
        rows.iter()
            .map(|g| {
                vec![
                    g.family.name().into(),
                    g.group.to_string(),
                    g.vlan.to_string(),
                    g.port.clone(),
                    if g.adopted {
                        "-".into()
                    } else {
                        format!("v{}", opt(g.version))
                    },
                    serde_json::to_value(g.filter_mode)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    if g.is_static {
                        "static".into()
                    } else {
                        ms_opt(g.expires_ms)
                    },
                    source_list(g),
                    if g.adopted {
                        "(adopted at restart, not reported again yet)".into()
                    } else {
                        list(&g.hosts)
                    },
                ]
            })
            .collect(),
    )
}

pub fn routers(data: &Value) -> String {
    let headers = ["FAMILY", "VLAN", "PORT", "KIND", "LEARNED FROM", "EXPIRES"];
    listing(data, "no router ports", &headers, |r: &RouterRow| {
        vec![
            r.family.name().into(),
            r.vlan.to_string(),
            r.port.clone(),
            r.kind.clone(),
            opt(r.learned_from),
            ms_opt(r.expires_ms),
        ]
    })
}

pub fn querier(data: &Value) -> String {
    let headers = [
        "FAMILY",
        "VLAN",
        "STATE",
        "QUERIER",
        "OURS",
        "VERSION",
        "NEXT QUERY",
        "OTHER EXPIRES",
        "STARTUP LEFT",
    ];
    listing(data, "", &headers, |q: &QuerierRow| {
        vec![
            q.family.name().into(),
            q.vlan.to_string(),
            q.state.clone(),
            opt(q.querier_address),
            opt(q.our_address),
            format!("v{}", q.version),
            ms_opt(q.next_general_query_ms),
            ms_opt(q.other_querier_expires_ms),
            q.startup_queries_left.to_string(),
        ]
    })
}

/// A port's VLANs: "any" for a VLAN-unaware port, else its VLANs with
/// the PVID marked.
fn port_vlans(p: &Value) -> String {
    let Some(vlans) = p["vlans"].as_array() else {
        return "any".into();
    };
    let pvid = p["pvid"].as_u64();
    let list: Vec<String> = vlans
        .iter()
        .filter_map(Value::as_u64)
        .map(|v| {
            if Some(v) == pvid {
                format!("{v}(pvid)")
            } else {
                v.to_string()
            }
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(",")
    }
}

pub fn ports(data: &Value) -> String {
    table(
        &[
            "PORT",
            "IFINDEX",
            "XDP",
            "UP",
            "VLANS",
            "ROLE",
            "GROUPS",
            "RX",
            "REPLICATED",
            "FLOODED",
            "FORWARDED",
            "TO CONTROL",
            // Joins and leaves the program applied itself (fast join, fast leave).
            "IN XDP J/L",
            "DROPS",
            "TX DROPPED",
        ],
        rows(data)
            .iter()
            .map(|p| {
                let c = &p["counters"];
                let drops: u64 = c
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(k, _)| k.starts_with("drop"))
                            .filter_map(|(_, v)| v.as_u64())
                            .sum()
                    })
                    .unwrap_or(0);
                let mut role = Vec::new();
                if p["router"].as_bool() == Some(true) {
                    role.push("router");
                }
                if p["fast_leave"].as_bool() == Some(true) {
                    role.push("fast-leave");
                }
                if p["guard"].as_bool() == Some(true) {
                    role.push("guard");
                }
                vec![
                    s(&p["port"]),
                    s(&p["ifindex"]),
                    s(&p["xdp_mode"]),
                    s(&p["up"]),
                    port_vlans(p),
                    if role.is_empty() {
                        "-".into()
                    } else {
                        role.join(",")
                    },
                    s(&p["groups"]),
                    s(&c["rx"]),
                    s(&c["replicated"]),
                    s(&c["flooded"]),
                    s(&c["forwarded"]),
                    s(&c["to_control"]),
                    format!("{}/{}", s(&c["fast_join"]), s(&c["fast_leave"])),
                    drops.to_string(),
                    s(&p["egress"]["tx_dropped"]),
                ]
            })
            .collect(),
    )
}

/// The `ports` entry of the port named `name`, or an error naming the ports.
pub fn port_entry(ports: &Value, name: &str) -> anyhow::Result<Value> {
    rows(ports)
        .iter()
        .find(|p| p["port"].as_str() == Some(name))
        .cloned()
        .ok_or_else(|| {
            let names: Vec<String> = rows(ports).iter().map(|p| s(&p["port"])).collect();
            anyhow::anyhow!(
                "{name:?} is not a port of this switch (ports: {})",
                names.join(", ")
            )
        })
}

/// One port's counters (`stats --port`), zeros left out.
pub fn port_stats(p: &Value) -> String {
    let mut out = format!("port {} ({} XDP):\n", s(&p["port"]), s(&p["xdp_mode"]));
    for (section, title) in [
        ("counters", "fast path"),
        ("control", "control plane"),
        ("control_socket", "AF_XDP control socket"),
        ("egress", "egress"),
    ] {
        out.push_str(&format!("{title}:\n"));
        if let Some(map) = p[section].as_object() {
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
            for (k, v) in map.iter().filter(|(_, v)| v.as_u64() != Some(0)) {
                out.push_str(&format!("  {k:<width$}  {}\n", s(v)));
            }
        }
    }
    out.push_str("(counters that are zero are not shown; --json lists all)\n");
    out
}

/// One monitor event as a line of text.
pub fn event_line(e: &Event) -> String {
    let what = match &e.kind {
        EventKind::Joined {
            vlan,
            group,
            port,
            host,
            sources,
        } => joined_line(*vlan, group, port, host, sources),
        EventKind::Left {
            vlan,
            group,
            port,
            host,
        } => format!("left     {group} vlan {vlan} port {port} host {host}"),
        EventKind::Expired { vlan, group, port } => {
            format!("expired  {group} vlan {vlan} port {port}")
        }
        EventKind::GroupPorts {
            vlan,
            group,
            ports,
            added,
            removed,
        } => format!(
            "forward  {group} vlan {vlan} to {}",
            ports_change(ports, added, removed)
        ),
        EventKind::RouterPorts {
            family,
            vlan,
            ports,
            added,
            removed,
        } => format!(
            "routers  {} vlan {vlan}: {}",
            protocol(*family),
            ports_change(ports, added, removed)
        ),
        EventKind::Querier {
            family,
            vlan,
            querier,
            we_are_querier,
        } => querier_line(*family, *vlan, *querier, *we_are_querier),
        EventKind::PortUp { port } => format!("port     {port} up"),
        EventKind::PortDown { port } => format!("port     {port} down"),
        EventKind::LimitRejected { what, total } => {
            format!("limit    {what}: {total} rejected in all")
        }
        EventKind::Adopted { groups, hold_ms } => {
            format!("adopted  {groups} groups of the last daemon, held {hold_ms} ms")
        }
        EventKind::HoldEnded { removed } => {
            format!("hold end {removed} groups nobody reported again removed")
        }
        EventKind::Reloaded {
            applied,
            restart_needed,
        } => format!(
            "reloaded applied {}; need a restart: {}",
            list(applied),
            list(restart_needed)
        ),
    };
    format!("{} {what}", e.time)
}

fn joined_line(vlan: u16, group: &IpAddr, port: &str, host: &str, sources: &[IpAddr]) -> String {
    let line = format!("joined   {group} vlan {vlan} port {port} host {host}");
    if sources.is_empty() {
        return line;
    }
    let srcs: Vec<String> = sources.iter().map(|a| a.to_string()).collect();
    format!("{line} sources {}", srcs.join(","))
}

/// A port set and how it changed: `a,b (+b -c)`.
fn ports_change(ports: &[String], added: &[String], removed: &[String]) -> String {
    format!("{} (+{} -{})", list(ports), list(added), list(removed))
}

fn querier_line(
    family: AddrFamily,
    vlan: u16,
    querier: Option<IpAddr>,
    we_are_querier: bool,
) -> String {
    format!(
        "querier  {} vlan {vlan}: {}{}",
        protocol(family),
        querier.map_or("none".to_string(), |a| a.to_string()),
        if we_are_querier { " (us)" } else { "" }
    )
}

/// "igmp" or "mld".
fn protocol(family: AddrFamily) -> &'static str {
    if family == AddrFamily::Ipv6 {
        "mld"
    } else {
        "igmp"
    }
}

/// "10.0.0.1 (us)", "10.0.0.9", or "-" when there is none.
fn querier_cell(q: &VlanQuerierRow) -> String {
    match (q.address, q.us) {
        (Some(a), true) => format!("{a} (us)"),
        (Some(a), false) => a.to_string(),
        (None, _) => "-".into(),
    }
}

/// `vlans`: each VLAN with its ports, queriers and group count.
pub fn vlans(data: &Value) -> String {
    let headers = [
        "VLAN",
        "UNTAGGED",
        "TAGGED",
        "IGMP QUERIER",
        "MLD QUERIER",
        "GROUPS",
    ];
    listing(data, "no VLANs", &headers, |v: &VlanRow| {
        vec![
            v.vlan.to_string(),
            list(&v.untagged),
            list(&v.tagged),
            querier_cell(&v.igmp_querier),
            v.mld_querier
                .as_ref()
                .map_or_else(|| "off".into(), querier_cell),
            v.groups.to_string(),
        ]
    })
}

pub fn stats(data: &Value) -> String {
    let mut out = String::new();
    for (section, title) in [
        ("engine", "control plane"),
        ("dataplane", "fast path (all ports)"),
        ("control_sockets", "AF_XDP control sockets (all ports)"),
        ("daemon", "daemon"),
    ] {
        out.push_str(&format!("{title}:\n"));
        if let Some(map) = data[section].as_object() {
            let width = map.keys().map(|k| k.len()).max().unwrap_or(0);
            for (k, v) in map {
                if v.as_u64() != Some(0) {
                    out.push_str(&format!("  {k:<width$}  {}\n", s(v)));
                }
            }
        }
    }
    out.push_str(&format!(
        "groups: {}   kernel port sets: {} in use, {} published\n",
        s(&data["groups"]),
        s(&data["bpf_port_sets"]),
        s(&data["bpf_port_sets_published"])
    ));
    match data["pinned"].as_object() {
        Some(p) => {
            out.push_str(&format!("pinned at {}", s(&p["dir"])));
            if let Some(a) = p["adopted"].as_object() {
                out.push_str(&format!(
                    "; adopted {} groups at start, {} still held",
                    s(&a["groups"]),
                    s(&p["held_groups"])
                ));
            }
            out.push('\n');
        }
        None => out.push_str("not pinned: forwarding stops with the daemon\n"),
    }
    out.push_str("(counters that are zero are not shown; --json lists all)\n");
    out
}

pub fn macs(data: &Value) -> String {
    let headers = ["MAC", "VLAN", "PORT", "AGE"];
    listing(data, "no MACs learned", &headers, |m: &MacRow| {
        vec![
            m.mac.clone(),
            m.vlan.to_string(),
            opt(m.port.as_ref()),
            format!("{}s", m.age_s),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn vlans_table() {
        let data = json!([
            {"vlan": 10, "untagged": ["p1"], "tagged": ["p3"],
             "igmp_querier": {"address": "10.0.0.1", "us": true},
             "mld_querier": {"address": "fe80::1", "us": false}, "groups": 2},
            {"vlan": 20, "untagged": [], "tagged": ["p3"],
             "igmp_querier": {"address": null, "us": false},
             "mld_querier": null, "groups": 0},
        ]);
        let out = vlans(&data);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[0].starts_with("VLAN  UNTAGGED  TAGGED  IGMP QUERIER"),
            "{out}"
        );
        let cells = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cells(lines[1]),
            ["10", "p1", "p3", "10.0.0.1", "(us)", "fe80::1", "2"]
        );
        assert_eq!(cells(lines[2]), ["20", "-", "p3", "-", "off", "0"]);
        assert_eq!(vlans(&json!([])), "no VLANs\n");
    }

    #[test]
    fn ports_table_shows_joins_and_leaves_applied_in_xdp() {
        let data = json!([{"port": "p2", "ifindex": 3, "xdp_mode": "native", "up": true,
                           "fast_leave": true, "groups": 4,
                           "counters": {"rx": 10, "fast_join": 7, "fast_leave": 5, "drop_vlan": 1},
                           "egress": {"tx_dropped": 0}}]);
        let out = ports(&data);
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].contains("IN XDP J/L"), "{out}");
        let col = lines[0].find("IN XDP J/L").unwrap();
        assert_eq!(
            lines[1][col..].split_whitespace().next(),
            Some("7/5"),
            "{out}"
        );
        assert!(lines[1].contains("fast-leave"), "{out}");
    }

    #[test]
    fn routers_show_their_vlan() {
        let data = json!([{"family": "ipv4", "vlan": 20, "port": "p3", "kind": "learned",
                           "learned_from": "10.0.0.9", "expires_ms": 1500}]);
        let out = routers(&data);
        assert!(out.starts_with("FAMILY  VLAN  PORT"), "{out}");
        assert!(out.lines().nth(1).unwrap().contains(" 20  "), "{out}");
    }

    #[test]
    fn vlan_filters() {
        let data = json!([{"vlan": 0, "x": 1}, {"vlan": 10, "x": 2}, {"vlan": 10, "x": 3}]);
        assert_eq!(
            rows_of_vlan(data, 10),
            json!([{"vlan": 10, "x": 2}, {"vlan": 10, "x": 3}])
        );
        let ports = json!([
            {"port": "p1", "pvid": 10, "vlans": [10]},
            {"port": "p2", "pvid": null, "vlans": [20]},
            {"port": "p3", "pvid": null, "vlans": null},
        ]);
        let kept: Vec<Value> = rows(&ports_carrying(ports.clone(), 10))
            .iter()
            .map(|p| p["port"].clone())
            .collect();
        assert_eq!(kept, [json!("p1"), json!("p3")]);
        assert!(port_vlans(&ports[0]) == "10(pvid)" && port_vlans(&ports[2]) == "any");
    }

    #[test]
    fn monitor_vlan_filter_and_router_lines() {
        let routers = Event::now(EventKind::RouterPorts {
            family: AddrFamily::Ipv6,
            vlan: 20,
            ports: vec!["p3".into()],
            added: vec!["p3".into()],
            removed: vec![],
        });
        let down = Event::now(EventKind::PortDown { port: "p1".into() });
        assert!(event_of_vlan(&routers, Some(20)) && !event_of_vlan(&routers, Some(10)));
        assert!(event_of_vlan(&routers, None));
        // Events of no VLAN are shown whatever the filter.
        assert!(event_of_vlan(&down, Some(10)));
        assert!(
            event_line(&routers).ends_with("routers  mld vlan 20: p3 (+p3 --)"),
            "{}",
            event_line(&routers)
        );
        // A daemon of before VLANs sent router events without family and
        // VLAN: read as IGMP on VLAN 0.
        let old: Event = serde_json::from_str(
            r#"{"time":"t","event":"router_ports","ports":[],"added":[],"removed":["p1"]}"#,
        )
        .unwrap();
        assert!(event_line(&old).contains("igmp vlan 0"));
    }
}
