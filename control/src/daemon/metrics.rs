//! `--metrics-listen`: Prometheus/OpenMetrics text over HTTP. A thread
//! serves HTTP (tiny_http); for each scrape it asks the loop, through a
//! bounded channel and the wake socket, for the current figures, and the
//! loop renders them between two rounds (prometheus-client). A slow or
//! stuck scraper holds only that thread.
use std::{
    net::SocketAddr,
    sync::mpsc::{Receiver, SyncSender, sync_channel},
    time::Duration,
};

use anyhow::Context;
use igmpsnoop_common::counter;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};
use tracing::{info, warn};

use super::{core::Core, wake::Waker};

/// Scrapes waiting for the loop.
const QUEUE: usize = 8;
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub struct MetricsServer {
    scrapes: Receiver<SyncSender<String>>,
    /// Time the loop spends per round handling what woke it.
    round: Histogram,
}

impl MetricsServer {
    pub fn start(addr: SocketAddr, waker: Waker) -> anyhow::Result<MetricsServer> {
        let server = tiny_http::Server::http(addr)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("serving metrics on {addr}"))?;
        let (tx, scrapes) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || http_loop(server, tx, waker))
            .context("starting the metrics thread")?;
        info!(%addr, "serving metrics at /metrics");
        Ok(MetricsServer {
            scrapes,
            // 10 µs .. ~0.16 s.
            round: Histogram::new(exponential_buckets(1e-5, 2.0, 15)),
        })
    }

    pub fn observe_round(&self, seconds: f64) {
        self.round.observe(seconds);
    }

    /// Answers the scrapes waiting; never blocks.
    pub fn serve(&self, core: &Core) {
        while let Ok(reply) = self.scrapes.try_recv() {
            let _ = reply.send(render(core, &self.round));
        }
    }
}

fn http_loop(server: tiny_http::Server, scrapes: SyncSender<SyncSender<String>>, waker: Waker) {
    for request in server.incoming_requests() {
        let response = if request.url().split('?').next() == Some("/metrics") {
            let (reply, text) = sync_channel(1);
            match scrapes.try_send(reply) {
                Ok(()) => {
                    waker.wake();
                    match text.recv_timeout(SCRAPE_TIMEOUT) {
                        Ok(body) => tiny_http::Response::from_string(body).with_header(
                            tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE)
                                .expect("a valid header"),
                        ),
                        Err(_) => tiny_http::Response::from_string("igmpsnoop did not answer\n")
                            .with_status_code(503),
                    }
                }
                Err(_) => tiny_http::Response::from_string("busy\n").with_status_code(503),
            }
        } else {
            tiny_http::Response::from_string("see /metrics\n").with_status_code(404)
        };
        if let Err(e) = request.respond(response) {
            warn!(error = %e, "metrics client");
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortLabel {
    port: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PortReason {
    port: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Message {
    /// "igmp" or "mld".
    protocol: String,
    direction: String,
    r#type: String,
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CounterName {
    counter: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VlanLabel {
    vlan: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuerierLabel {
    family: String,
    vlan: String,
    address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FamilyVlan {
    family: String,
    vlan: String,
}

/// The figures as OpenMetrics text, built afresh per scrape: every value is
/// the daemon's current one (counters are totals since start).
fn render(core: &Core, round: &Histogram) -> String {
    let mut reg = Registry::with_prefix("igmpsnoop");
    // A gauge of 1 (the Prometheus convention) rather than an OpenMetrics
    // info metric, which Prometheus' own text parser (promtool) refuses.
    let build = Family::<Vec<(String, String)>, Gauge>::default();
    build
        .get_or_create(&vec![("version".into(), env!("CARGO_PKG_VERSION").into())])
        .set(1);
    reg.register("build_info", "igmpsnoop build", build);
    register_ports(&mut reg, core);
    register_protocol(&mut reg, core);
    register_state(&mut reg, core);
    register_streams(&mut reg, core);
    reg.register_with_unit(
        "loop_round",
        "Time the event loop spent handling what woke it, per round",
        Unit::Seconds,
        round.clone(),
    );
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}

/// A family of counters, each set to its total.
fn totals<
    L: EncodeLabelSet + Clone + std::hash::Hash + Eq + std::fmt::Debug + Send + Sync + 'static,
>(
    reg: &mut Registry,
    name: &str,
    help: &str,
    values: impl IntoIterator<Item = (L, u64)>,
) {
    let family = Family::<L, Counter>::default();
    for (labels, v) in values {
        family.get_or_create(&labels).inc_by(v);
    }
    reg.register(name, help, family);
}

fn register_ports(reg: &mut Registry, core: &Core) {
    let dp = &core.dp;
    let mut frames = Vec::new();
    let mut drops = Vec::new();
    let mut socket_drops = Vec::new();
    for p in dp.ports() {
        let c = dp.stats.port_counters(p.index).unwrap_or_default();
        for (name, v) in c.iter() {
            match name.strip_prefix("drop_") {
                Some(reason) => drops.push((port_reason(&p.name, reason), v)),
                None if name == "replicated_copies" => {}
                None => frames.push((port_reason(&p.name, name), v)),
            }
        }
        let s = dp.socket_stats(p.index);
        for (reason, v) in [
            ("ring_full", s.rx_ring_full),
            ("fill_ring_empty", s.rx_fill_ring_empty),
            ("invalid_descs", s.rx_invalid_descs),
            (
                "other",
                s.rx_dropped
                    .saturating_sub(s.rx_ring_full + s.rx_fill_ring_empty),
            ),
        ] {
            socket_drops.push((port_reason(&p.name, reason), v));
        }
    }
    let copies = dp.ports().iter().map(|p| {
        let c = dp.stats.port_counters(p.index).unwrap_or_default();
        (
            PortLabel {
                port: p.name.clone(),
            },
            c.get(counter::REPLICATED_COPIES),
        )
    });
    totals(
        reg,
        "port_frames",
        "Frames the fast path handled, by port and what it did (reason)",
        frames,
    );
    totals(
        reg,
        "port_replicated_copies",
        "Copies the fast path made of replicated multicast, by ingress port",
        copies,
    );
    totals(
        reg,
        "port_dropped_frames",
        "Frames the fast path dropped, by ingress port and reason",
        drops,
    );
    totals(
        reg,
        "control_socket_dropped_frames",
        "Control frames the AF_XDP socket dropped, by port and reason",
        socket_drops,
    );
}

fn port_reason(port: &str, reason: &str) -> PortReason {
    PortReason {
        port: port.to_string(),
        reason: reason.to_string(),
    }
}

/// Protocol counters: rx_vN_TYPE as messages by direction, type and
/// version; the rest by name.
fn register_protocol(reg: &mut Registry, core: &Core) {
    let mut messages = Vec::new();
    let mut others = Vec::new();
    for (name, v) in core.engine.counters().iter() {
        match split_message(name) {
            Some(m) => messages.push((m, v)),
            None => others.push((
                CounterName {
                    counter: name.to_string(),
                },
                v,
            )),
        }
    }
    totals(
        reg,
        "protocol_messages",
        "IGMP and MLD messages by protocol, direction, type and version",
        messages,
    );
    totals(
        reg,
        "engine_events",
        "Other protocol counters of the engine (rejections by reason, ...)",
        others,
    );
    let c = &core.counters;
    totals(
        reg,
        "daemon_events",
        "The daemon's own counters",
        [
            ("tx_frames", c.tx_frames),
            ("tx_errors", c.tx_errors),
            ("map_errors", c.map_errors),
            ("ipc_requests", c.ipc_requests),
            ("fast_joins", c.fast_joins),
            ("fast_leaves", c.fast_leaves),
        ]
        .map(|(n, v)| (CounterName { counter: n.into() }, v)),
    );
}

/// "rx_v2_report" → (igmp, rx, report, 2); "mld_rx_v1_report" → (mld, ...).
fn split_message(name: &str) -> Option<Message> {
    let (protocol, name) = match name.strip_prefix("mld_") {
        Some(rest) => ("mld", rest),
        None => ("igmp", name),
    };
    let (direction, rest) = name.split_once('_')?;
    let rest = rest.strip_prefix('v')?;
    let (version, kind) = rest.split_once('_')?;
    version.parse::<u8>().ok()?;
    Some(Message {
        protocol: protocol.into(),
        direction: direction.into(),
        r#type: kind.into(),
        version: version.into(),
    })
}

/// Gauges: groups, memberships, router ports, querier.
fn register_state(reg: &mut Registry, core: &Core) {
    let memberships = core.engine.groups();
    let per_port = Family::<PortLabel, Gauge>::default();
    let per_vlan = Family::<VlanLabel, Gauge>::default();
    let mut distinct = std::collections::HashSet::new();
    for m in &memberships {
        per_port
            .get_or_create(&PortLabel {
                port: core.port_name(usize::from(m.port)),
            })
            .inc();
        if distinct.insert((m.vlan, m.group)) {
            per_vlan
                .get_or_create(&VlanLabel {
                    vlan: m.vlan.to_string(),
                })
                .inc();
        }
    }
    let groups = Gauge::<i64>::default();
    groups.set(distinct.len() as i64);
    reg.register(
        "groups",
        "Distinct (VLAN, group) entries in the table",
        groups,
    );
    reg.register(
        "memberships",
        "(group, port) memberships, by port",
        per_port,
    );
    reg.register("vlan_groups", "Groups, by VLAN", per_vlan);
    let routers = Family::<PortLabel, Gauge>::default();
    for name in core.port_names(core.engine.router_ports()) {
        routers.get_or_create(&PortLabel { port: name }).set(1);
    }
    reg.register(
        "router_port",
        "1 for each multicast-router port (learned or static)",
        routers,
    );
    let us = Family::<FamilyVlan, Gauge>::default();
    let elected = Family::<QuerierLabel, Gauge>::default();
    for q in core.engine.querier() {
        let (family, vlan) = (q.family.name().to_string(), q.vlan.to_string());
        us.get_or_create(&FamilyVlan {
            family: family.clone(),
            vlan: vlan.clone(),
        })
        .set(i64::from(q.we_are_querier));
        if let Some(a) = q.querier_address {
            elected
                .get_or_create(&QuerierLabel {
                    family,
                    vlan,
                    address: a.to_string(),
                })
                .set(1);
        }
    }
    reg.register(
        "we_are_querier",
        "1 while this switch is the querier, by family and VLAN",
        us,
    );
    reg.register(
        "querier",
        "1 for the elected querier's address, by family and VLAN",
        elected,
    );
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabel {
    vlan: String,
    group: String,
    /// "*" for frames that took the group's own set.
    source: String,
}

/// Frames and bytes per stream the fast path replicated, both families.
fn register_streams(reg: &mut Registry, core: &Core) {
    let label =
        |vlan: u16, group: std::net::IpAddr, source: std::net::IpAddr, any: bool| StreamLabel {
            vlan: vlan.to_string(),
            group: group.to_string(),
            source: if any { "*".into() } else { source.to_string() },
        };
    let mut rows: Vec<(StreamLabel, u64, u64)> = Vec::new();
    for s in core.dp.stats.streams() {
        let (g, src) = (
            std::net::Ipv4Addr::from(s.group),
            std::net::Ipv4Addr::from(s.source),
        );
        rows.push((
            label(s.vlan, g.into(), src.into(), src.is_unspecified()),
            s.frames,
            s.bytes,
        ));
    }
    for s in core.dp.stats.streams6() {
        let (g, src) = (
            std::net::Ipv6Addr::from(s.group),
            std::net::Ipv6Addr::from(s.source),
        );
        rows.push((
            label(s.vlan, g.into(), src.into(), src.is_unspecified()),
            s.frames,
            s.bytes,
        ));
    }
    totals(
        reg,
        "stream_frames",
        "Frames replicated per stream (group, and source when it matched an (S,G) entry)",
        rows.iter().map(|(l, f, _)| (l.clone(), *f)),
    );
    totals(
        reg,
        "stream_bytes",
        "Bytes replicated per stream",
        rows.iter().map(|(l, _, b)| (l.clone(), *b)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_split() {
        let m = split_message("rx_v2_report").unwrap();
        assert_eq!(
            (m.direction.as_str(), m.r#type.as_str(), m.version.as_str()),
            ("rx", "report", "2")
        );
        assert!(split_message("rx_igmp").is_none());
        assert!(split_message("reject_bad_ttl").is_none());
    }
}
