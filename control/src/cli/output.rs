//! Plain-text tables for the listings (the `--json` form prints the data as is).
use std::net::IpAddr;

use igmpsnoop_control::api::{Event, EventKind};
use igmpsnoop_control::engine::AddrFamily;
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

fn ms(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => format!("{:.1}s", ms as f64 / 1000.0),
        None => "-".into(),
    }
}

fn rows(data: &Value) -> &[Value] {
    data.as_array().map(Vec::as_slice).unwrap_or(&[])
}

pub fn groups(data: &Value) -> String {
    if rows(data).is_empty() {
        return "no groups\n".into();
    }
    let mut out = groups_table(data);
    out.push_str(&groups_summary(data));
    out
}

/// "N groups, M memberships on K ports".
fn groups_summary(data: &Value) -> String {
    let rows = rows(data);
    let groups: std::collections::BTreeSet<(String, String)> = rows
        .iter()
        .map(|g| (s(&g["vlan"]), s(&g["group"])))
        .collect();
    let ports: std::collections::BTreeSet<String> = rows.iter().map(|g| s(&g["port"])).collect();
    format!(
        "{} group(s), {} membership(s) on {} port(s)\n",
        groups.len(),
        rows.len(),
        ports.len()
    )
}

/// Only the rows of `group`, `port` and `vlan` (each when given).
pub fn filter_groups(
    data: Value,
    group: Option<IpAddr>,
    port: Option<&str>,
    vlan: Option<u16>,
) -> Value {
    let keep = |g: &Value| {
        group.is_none_or(|want| g["group"].as_str() == Some(&want.to_string()))
            && port.is_none_or(|want| {
                g["port"].as_str() == Some(want)
                    || g["ports"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p.as_str() == Some(want)))
            })
            && vlan.is_none_or(|want| g["vlan"].as_u64() == Some(u64::from(want)))
    };
    Value::Array(rows(&data).iter().filter(|g| keep(g)).cloned().collect())
}

/// Each stream in `after` with its rates since `before`, `secs` earlier.
pub fn stream_rates(before: &Value, after: &Value, secs: f64) -> Value {
    let key = |r: &Value| (s(&r["vlan"]), s(&r["group"]), s(&r["source"]));
    let old: std::collections::HashMap<_, _> = rows(before).iter().map(|r| (key(r), r)).collect();
    Value::Array(
        rows(after)
            .iter()
            .map(|r| {
                let delta = |field: &str| {
                    let now = r[field].as_u64().unwrap_or(0);
                    let then = old
                        .get(&key(r))
                        .and_then(|o| o[field].as_u64())
                        .unwrap_or(0);
                    now.saturating_sub(then) as f64 / secs
                };
                let mut row = r.clone();
                row["pps"] = serde_json::json!(delta("frames").round());
                row["bits_per_second"] = serde_json::json!((delta("bytes") * 8.0).round());
                row
            })
            .collect(),
    )
}

/// `groups --rates`.
pub fn rates(data: &Value) -> String {
    if rows(data).is_empty() {
        return "no streams\n".into();
    }
    let list = |v: &Value| {
        let names: Vec<String> = v
            .as_array()
            .map(|a| a.iter().map(s).collect())
            .unwrap_or_default();
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(",")
        }
    };
    table(
        &[
            "GROUP",
            "SOURCE",
            "VLAN",
            "PPS",
            "MBIT/S",
            "PORTS",
            "ROUTER PORTS",
        ],
        rows(data)
            .iter()
            .map(|r| {
                vec![
                    s(&r["group"]),
                    if r["source"].is_null() {
                        "*".into()
                    } else {
                        s(&r["source"])
                    },
                    s(&r["vlan"]),
                    s(&r["pps"]),
                    format!("{:.2}", r["bits_per_second"].as_f64().unwrap_or(0.0) / 1e6),
                    list(&r["ports"]),
                    list(&r["router_ports"]),
                ]
            })
            .collect(),
    )
}

pub fn is_empty(data: &Value) -> bool {
    rows(data).is_empty()
}

/// The (S,G) forwarding entries.
pub fn sources(data: &Value) -> String {
    if rows(data).is_empty() {
        return "no (S,G) entries\n".into();
    }
    table(
        &["SOURCE", "GROUP", "VLAN", "PORTS"],
        rows(data)
            .iter()
            .map(|e| {
                let ports: Vec<String> = e["ports"]
                    .as_array()
                    .map(|p| p.iter().map(s).collect())
                    .unwrap_or_default();
                vec![
                    s(&e["source"]),
                    s(&e["group"]),
                    s(&e["vlan"]),
                    if ports.is_empty() {
                        "(none: blocked)".into()
                    } else {
                        ports.join(",")
                    },
                ]
            })
            .collect(),
    )
}

/// "S1 (3.2s), S2 (excluded)": a port's source list with timers.
fn source_list(g: &Value) -> String {
    let list: Vec<String> = g["sources"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|src| {
                    let state = if src["excluded"].as_bool() == Some(true) {
                        "excluded".to_string()
                    } else {
                        ms(&src["expires_ms"])
                    };
                    format!("{} ({state})", s(&src["address"]))
                })
                .collect()
        })
        .unwrap_or_default();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

fn groups_table(data: &Value) -> String {
    table(
        &[
            "GROUP", "VLAN", "PORT", "VER", "MODE", "EXPIRES", "SOURCES", "HOSTS",
        ],
        rows(data)
            .iter()
            .map(|g| {
                let hosts: Vec<String> = g["hosts"]
                    .as_array()
                    .map(|h| h.iter().map(s).collect())
                    .unwrap_or_default();
                let adopted = g["adopted"].as_bool() == Some(true);
                let expires = if g["static"].as_bool() == Some(true) {
                    "static".into()
                } else {
                    ms(&g["expires_ms"])
                };
                vec![
                    s(&g["group"]),
                    s(&g["vlan"]),
                    s(&g["port"]),
                    if adopted {
                        "-".into()
                    } else {
                        format!("v{}", s(&g["version"]))
                    },
                    s(&g["filter_mode"]),
                    expires,
                    source_list(g),
                    if adopted {
                        "(adopted at restart, not reported again yet)".into()
                    } else if hosts.is_empty() {
                        "-".into()
                    } else {
                        hosts.join(",")
                    },
                ]
            })
            .collect(),
    )
}

pub fn routers(data: &Value) -> String {
    if rows(data).is_empty() {
        return "no router ports\n".into();
    }
    table(
        &["FAMILY", "PORT", "KIND", "LEARNED FROM", "EXPIRES"],
        rows(data)
            .iter()
            .map(|r| {
                vec![
                    s(&r["family"]),
                    s(&r["port"]),
                    s(&r["kind"]),
                    s(&r["learned_from"]),
                    ms(&r["expires_ms"]),
                ]
            })
            .collect(),
    )
}

pub fn querier(data: &Value) -> String {
    table(
        &[
            "FAMILY",
            "VLAN",
            "STATE",
            "QUERIER",
            "OURS",
            "VERSION",
            "NEXT QUERY",
            "OTHER EXPIRES",
            "STARTUP LEFT",
        ],
        rows(data)
            .iter()
            .map(|q| {
                vec![
                    s(&q["family"]),
                    s(&q["vlan"]),
                    s(&q["state"]),
                    s(&q["querier_address"]),
                    s(&q["our_address"]),
                    format!("v{}", s(&q["version"])),
                    ms(&q["next_general_query_ms"]),
                    ms(&q["other_querier_expires_ms"]),
                    s(&q["startup_queries_left"]),
                ]
            })
            .collect(),
    )
}

pub fn ports(data: &Value) -> String {
    table(
        &[
            "PORT",
            "IFINDEX",
            "XDP",
            "UP",
            "ROLE",
            "GROUPS",
            "RX",
            "REPLICATED",
            "FLOODED",
            "FORWARDED",
            "TO CONTROL",
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
    let list = |v: &[String]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    let what = match &e.kind {
        EventKind::Joined {
            vlan,
            group,
            port,
            host,
            sources,
        } if sources.is_empty() => {
            format!("joined   {group} vlan {vlan} port {port} host {host}")
        }
        EventKind::Joined {
            vlan,
            group,
            port,
            host,
            sources,
        } => {
            let srcs: Vec<String> = sources.iter().map(|a| a.to_string()).collect();
            format!(
                "joined   {group} vlan {vlan} port {port} host {host} sources {}",
                srcs.join(",")
            )
        }
        EventKind::Left {
            vlan,
            group,
            port,
            host,
        } => {
            format!("left     {group} vlan {vlan} port {port} host {host}")
        }
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
            "forward  {group} vlan {vlan} to {} (+{} -{})",
            list(ports),
            list(added),
            list(removed)
        ),
        EventKind::RouterPorts {
            ports,
            added,
            removed,
        } => {
            format!(
                "routers  {} (+{} -{})",
                list(ports),
                list(added),
                list(removed)
            )
        }
        EventKind::Querier {
            family,
            vlan,
            querier,
            we_are_querier,
        } => format!(
            "querier  {} vlan {vlan}: {}{}",
            if *family == AddrFamily::Ipv6 {
                "mld"
            } else {
                "igmp"
            },
            querier.map_or("none".to_string(), |a| a.to_string()),
            if *we_are_querier { " (us)" } else { "" }
        ),
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
    if rows(data).is_empty() {
        return "no MACs learned\n".into();
    }
    table(
        &["MAC", "VLAN", "PORT", "AGE"],
        rows(data)
            .iter()
            .map(|m| {
                vec![
                    s(&m["mac"]),
                    s(&m["vlan"]),
                    s(&m["port"]),
                    format!("{}s", s(&m["age_s"])),
                ]
            })
            .collect(),
    )
}
