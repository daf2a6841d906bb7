//! What the CLI shows: JSON built from the engine and the data plane, with
//! port names instead of indexes and times relative to now.
use igmpsnoop_common::counter;
use igmpsnoop_control::{
    Engine, PortMask, Timestamp,
    api::listing::{
        GroupRow, MacRow, QuerierRow, RouterRow, SourceEntryRow, SourceRecordRow, StreamRow,
        VlanQuerierRow, VlanRow,
    },
    engine::{AddrFamily, FilterMode, Proto},
};
use igmpsnoop_dataplane::Dataplane;
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

pub fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn port_name(dp: &Dataplane, port: u8) -> String {
    dp.ports()
        .get(port as usize)
        .map(|p| p.name.clone())
        .unwrap_or_else(|| format!("#{port}"))
}

fn ms_until(t: Option<Timestamp>, now: Timestamp) -> Option<u64> {
    t.map(|t| t.as_millis().saturating_sub(now.as_millis()))
}

fn names(dp: &Dataplane, mask: PortMask) -> Vec<String> {
    (0..64u8)
        .filter(|p| mask.contains(*p))
        .map(|p| port_name(dp, p))
        .collect()
}

/// The group-port table. After a restart, ports the adopted state still
/// forwards to and that no host has reported on again are listed too, as
/// `adopted`, expiring when the hold ends.
pub fn groups(
    engine: &Engine,
    dp: &Dataplane,
    now: Timestamp,
    hold_left: Option<Duration>,
) -> Value {
    let mut rows: Vec<GroupRow> = engine
        .groups()
        .iter()
        .map(|g| GroupRow {
            family: g.family,
            group: g.group,
            vlan: g.vlan,
            port: port_name(dp, g.port),
            hosts: g.hosts.iter().map(mac_string).collect(),
            version: Some(g.version.into()),
            expires_ms: ms_until(g.expires, now),
            is_static: g.is_static,
            adopted: false,
            filter_mode: g.filter_mode,
            sources: g
                .sources
                .iter()
                .map(|src| SourceRecordRow {
                    address: src.address,
                    expires_ms: ms_until(src.expires, now),
                    excluded: src.excluded,
                })
                .collect(),
        })
        .collect();
    let hold_ms = hold_left.map(|d| d.as_millis() as u64);
    let held4 = dp
        .forwarding
        .held()
        .map(|(k, m)| (k.vlan, IpAddr::from(Ipv4Addr::from(k.group)), m));
    let held6 = dp
        .forwarding
        .held6()
        .map(|(k, m)| (k.vlan, IpAddr::from(Ipv6Addr::from(k.group)), m));
    held_rows(engine, dp, held4.chain(held6), hold_ms, &mut rows);
    rows.sort_by(|a, b| (a.vlan, a.group, &a.port).cmp(&(b.vlan, b.group, &b.port)));
    to_value(rows)
}

/// Rows for the ports adopted state holds that nobody reported on again.
fn held_rows(
    engine: &Engine,
    dp: &Dataplane,
    held: impl Iterator<Item = (u16, IpAddr, PortMask)>,
    hold_ms: Option<u64>,
    rows: &mut Vec<GroupRow>,
) {
    for (vlan, group, mask) in held {
        let (family, learned) = match group {
            IpAddr::V4(g) => (AddrFamily::Ipv4, engine.lookup(vlan, g)),
            IpAddr::V6(g) => (AddrFamily::Ipv6, engine.lookup(vlan, g)),
        };
        for port in mask.iter().filter(|&p| !learned.contains(p)) {
            rows.push(GroupRow {
                family,
                group,
                vlan,
                port: port_name(dp, port),
                hosts: Vec::new(),
                version: None,
                expires_ms: hold_ms,
                is_static: false,
                adopted: true,
                filter_mode: FilterMode::Exclude,
                sources: Vec::new(),
            });
        }
    }
}

fn to_value(rows: impl serde::Serialize) -> Value {
    serde_json::to_value(rows).expect("rows serialize")
}

pub fn routers(engine: &Engine, dp: &Dataplane, now: Timestamp) -> Value {
    let rows: Vec<RouterRow> = engine
        .routers()
        .iter()
        .map(|r| RouterRow {
            family: r.family,
            vlan: r.vlan,
            port: port_name(dp, r.port),
            kind: match (r.is_static, r.learned_from.is_some()) {
                (true, true) => "static+learned",
                (true, false) => "static",
                _ => "learned",
            }
            .into(),
            learned_from: r.learned_from,
            expires_ms: ms_until(r.expires, now),
        })
        .collect();
    to_value(rows)
}

pub fn querier(engine: &Engine, now: Timestamp) -> Value {
    let config = engine.config();
    let rows: Vec<QuerierRow> = engine
        .querier()
        .iter()
        .map(|q| QuerierRow {
            family: q.family,
            vlan: q.vlan,
            state: if !config.querier {
                "off"
            } else if q.we_are_querier {
                "querier"
            } else {
                "non-querier"
            }
            .into(),
            our_address: q.our_address,
            querier_address: q.querier_address,
            other_querier_expires_ms: ms_until(q.other_querier_expires, now),
            next_general_query_ms: ms_until(q.next_general_query, now),
            startup_queries_left: q.startup_queries_left,
            version: q.version.into(),
            query_interval_ms: config.query_interval.as_millis() as u64,
            query_response_interval_ms: config.query_response_interval.as_millis() as u64,
            robustness: config.robustness,
        })
        .collect();
    to_value(rows)
}

/// The (S,G) forwarding entries: where each source's traffic to a group goes.
pub fn sources(engine: &Engine, dp: &Dataplane) -> Value {
    let rows: Vec<SourceEntryRow> = engine
        .source_entries()
        .iter()
        .map(|e| SourceEntryRow {
            family: match e.group {
                IpAddr::V4(_) => AddrFamily::Ipv4,
                IpAddr::V6(_) => AddrFamily::Ipv6,
            },
            vlan: e.vlan,
            group: e.group,
            source: e.source,
            ports: names(dp, e.ports),
        })
        .collect();
    to_value(rows)
}

/// The streams the fast path replicated (totals since first seen), with the
/// member ports each goes to now; streams of groups that are gone are left
/// out (their counters age out of the fast path's LRU).
pub fn streams(engine: &Engine, dp: &Dataplane) -> Value {
    let v4 = dp.stats.streams().into_iter().filter_map(|s| {
        let (g, src) = (Ipv4Addr::from(s.group), Ipv4Addr::from(s.source));
        stream_row(engine, dp, s.vlan, g, src, (s.frames, s.bytes))
    });
    let v6 = dp.stats.streams6().into_iter().filter_map(|s| {
        let (g, src) = (Ipv6Addr::from(s.group), Ipv6Addr::from(s.source));
        stream_row(engine, dp, s.vlan, g, src, (s.frames, s.bytes))
    });
    let mut rows: Vec<StreamRow> = v4.chain(v6).collect();
    rows.sort_by_key(|r| (r.vlan, r.group, r.source));
    to_value(rows)
}

/// One stream with the member ports it goes to now, or None when its
/// group (or source entry) is gone.
fn stream_row<A: Proto>(
    engine: &Engine,
    dp: &Dataplane,
    vlan: u16,
    group: A,
    source: A,
    (frames, bytes): (u64, u64),
) -> Option<StreamRow> {
    let any = source == A::UNSPECIFIED;
    let members = if any {
        Some(engine.lookup(vlan, group)).filter(|m| !m.is_empty())
    } else {
        engine.lookup_source(vlan, group, source)
    }?;
    Some(StreamRow {
        family: A::FAMILY,
        vlan,
        group: group.into(),
        source: (!any).then(|| source.into()),
        frames,
        bytes,
        ports: names(dp, members),
        router_ports: names(dp, engine.router_ports_of::<A>(vlan)),
        pps: None,
        bits_per_second: None,
    })
}

pub fn ports(engine: &Engine, dp: &Dataplane) -> Value {
    let up = engine.ports_up();
    let configs = engine.port_configs();
    let groups = engine.groups();
    let routers = engine.router_ports();
    Value::Array(
        dp.ports()
            .iter()
            .map(|p| {
                let cfg = configs.get(p.index);
                let counters = dp.stats.port_counters(p.index).unwrap_or_default();
                let engine_counters = engine.counters().ports.get(p.index).copied().unwrap_or_default();
                json!({
                    "port": p.name,
                    "ifindex": p.ifindex,
                    "index": p.index,
                    "xdp_mode": p.mode.to_string(),
                    "up": up.contains(p.index as u8),
                    "fast_leave": cfg.is_some_and(|c| c.fast_leave),
                    "static_router": cfg.is_some_and(|c| c.static_router),
                    "guard": cfg.is_some_and(|c| c.guard),
                    "router": routers.contains(p.index as u8),
                    // null: VLAN-unaware (carries every VLAN, VLAN 0 untagged).
                    "pvid": cfg.and_then(|c| c.vlans.as_ref()).and_then(|v| v.pvid),
                    "vlans": cfg.and_then(|c| c.vlans.as_ref()).map(|v| &v.vlans),
                    "groups": groups.iter().filter(|g| g.port as usize == p.index).count(),
                    "counters": counters.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                    "control": engine_counters,
                    "control_socket": xsk_json(&dp.socket_stats(p.index)),
                    "egress": {
                        "takes_native_redirects": dp.egress(p.index).takes_native_redirects,
                        "tx_dropped": dp.egress(p.index).tx_dropped,
                    },
                })
            })
            .collect(),
    )
}

/// The VLANs snooped (and any other a group was learned on), each with
/// its untagged and tagged ports, its queriers and its group count.
pub fn vlans(engine: &Engine, dp: &Dataplane) -> Value {
    let groups = engine.group_count_by_vlan();
    let mut list = engine.vlans().snooped();
    list.extend(groups.keys());
    list.sort_unstable();
    list.dedup();
    let queriers = engine.querier();
    let querier = |family: AddrFamily, vlan: u16| {
        let q = queriers
            .iter()
            .find(|q| q.family == family && q.vlan == vlan);
        VlanQuerierRow {
            address: q.and_then(|q| q.querier_address),
            us: q.is_some_and(|q| q.we_are_querier),
        }
    };
    let configs = engine.port_configs();
    let rows: Vec<VlanRow> = list
        .into_iter()
        .map(|vlan| {
            let carriers = engine.vlans().carriers(vlan);
            let (mut untagged, mut tagged) = (PortMask::EMPTY, PortMask::EMPTY);
            for p in carriers.iter() {
                let cfg = configs.get(usize::from(p)).and_then(|c| c.vlans.as_ref());
                if igmpsnoop_dataplane::vlan::untagged(cfg, vlan) {
                    untagged.insert(p);
                } else {
                    tagged.insert(p);
                }
            }
            VlanRow {
                vlan,
                untagged: names(dp, untagged),
                tagged: names(dp, tagged),
                igmp_querier: querier(AddrFamily::Ipv4, vlan),
                mld_querier: engine.config().mld.then(|| querier(AddrFamily::Ipv6, vlan)),
                groups: groups.get(&vlan).copied().unwrap_or(0),
            }
        })
        .collect();
    to_value(rows)
}

pub fn stats(engine: &Engine, dp: &Dataplane, daemon: &serde_json::Map<String, Value>) -> Value {
    let engine_counters: serde_json::Map<String, Value> = engine
        .counters()
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut totals = [0u64; counter::COUNT as usize];
    for p in dp.ports() {
        if let Ok(c) = dp.stats.port_counters(p.index) {
            for (t, v) in totals.iter_mut().zip(c.values) {
                *t += v;
            }
        }
    }
    let dataplane: serde_json::Map<String, Value> = counter::NAMES
        .iter()
        .zip(totals)
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    let mut sockets = igmpsnoop_dataplane::XskStats::default();
    for p in dp.ports() {
        sockets.add(&dp.socket_stats(p.index));
    }
    json!({
        "engine": engine_counters,
        "dataplane": dataplane,
        "control_sockets": xsk_json(&sockets),
        "daemon": daemon,
        "groups": engine.group_count(),
        "groups_by_family": {
            "ipv4": engine.group_count_of::<std::net::Ipv4Addr>(),
            "ipv6": engine.group_count_of::<std::net::Ipv6Addr>(),
        },
        "bpf_port_sets": dp.forwarding.inner_maps(),
        // Both families' (S,G) entries, and each family's on its own.
        "bpf_source_entries": dp.forwarding.sources().count() + dp.forwarding.sources6().count(),
        "bpf_source_entries_by_family": {
            "ipv4": dp.forwarding.sources().count(),
            "ipv6": dp.forwarding.sources6().count(),
        },
        "bpf_source_entries_refused": dp.forwarding.refused_sources(),
        "bpf_port_sets_published": dp.forwarding.published_port_sets(),
        "pinned": pinned(dp),
    })
}

/// Where the state is pinned, and what this daemon adopted at start.
fn pinned(dp: &Dataplane) -> Value {
    let Some(dir) = dp.pin_dir() else {
        return Value::Null;
    };
    json!({
        "dir": dir.display().to_string(),
        "adopted": dp.adopted().map(|a| json!({
            "groups": a.groups,
            "router_ports": a.router_ports.count(),
            "port_sets": a.port_sets,
        })),
        "held_groups": dp.forwarding.held_groups(),
    })
}

/// The kernel's drop counters of AF_XDP sockets: control frames the XDP
/// program handed over that never reached the daemon.
fn xsk_json(s: &igmpsnoop_dataplane::XskStats) -> Value {
    json!({
        "rx_dropped": s.rx_dropped,
        "rx_ring_full": s.rx_ring_full,
        "rx_fill_ring_empty": s.rx_fill_ring_empty,
        "rx_invalid_descs": s.rx_invalid_descs,
        "tx_invalid_descs": s.tx_invalid_descs,
    })
}

pub fn macs(dp: &Dataplane) -> Value {
    let rows: Vec<MacRow> = dp
        .stats
        .mac_table()
        .iter()
        .map(|m| MacRow {
            mac: mac_string(&m.mac),
            vlan: m.vlan,
            port: dp
                .ports()
                .iter()
                .find(|p| p.ifindex == m.ifindex)
                .map(|p| p.name.clone()),
            age_s: m.age_secs,
        })
        .collect();
    to_value(rows)
}
