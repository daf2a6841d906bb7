//! Robustness with the real binary in a netns lab: hostile and malformed
//! control frames are counted under their own reason and change nothing;
//! guard ports keep hosts from becoming querier or router; port events
//! flush and re-query.
use std::{net::Ipv4Addr, time::Duration};

use igmpsnoop_tests::{
    Lab, Receiver, Switch, counters_moved, poll_until, require_root_and_tools, scapy,
};
use serde_json::Value;

const TOOLS: &[&str] = &["tcpdump"];

/// Python that builds raw IGMP frames from h1 (checksums under our control).
const CRAFT: &str = r#"
import struct, socket
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
def igmp(typ, group, extra=b'', good=True, mrt=0):
    body = struct.pack('!BBH4s', typ, mrt, 0, socket.inet_aton(group)) + extra
    c = csum(body) if good else (csum(body) ^ 0x5a5a)
    return body[:2] + struct.pack('!H', c) + body[4:]
def ipv4(payload, dst, ttl=1, options=b'\x94\x04\x00\x00', ihl=None, proto=2):
    hl = 20 + len(options)
    ver_ihl = 0x40 | ((ihl if ihl is not None else hl // 4) & 0xf)
    hdr = struct.pack('!BBHHHBBH4s4s', ver_ihl, 0xc0, hl + len(payload), 0, 0x4000, ttl, proto, 0,
                      socket.inet_aton('10.77.0.1'), socket.inet_aton(dst)) + options
    c = csum(hdr)
    return hdr[:10] + struct.pack('!H', c) + hdr[12:] + payload
def frame(ip, dst_mac='01:00:5e:01:01:01'):
    return Ether(dst=dst_mac, src=get_if_hwaddr(IFACE), type=0x0800) / Raw(ip)
"#;

/// One malformed-frame case: a name, the Python expression of the frame, and
/// the engine counter it must land in.
const CASES: &[(&str, &str, &str)] = &[
    (
        "truncated IGMP",
        "frame(ipv4(igmp(0x16, '239.3.0.1')[:4], '239.3.0.1'))",
        "reject_truncated",
    ),
    (
        "bad IGMP checksum",
        "frame(ipv4(igmp(0x16, '239.3.0.2', good=False), '239.3.0.2'))",
        "reject_bad_igmp_checksum",
    ),
    (
        "IHL past the end of the frame",
        "frame(ipv4(igmp(0x16, '239.3.0.3'), '239.3.0.3', ihl=15))",
        "reject_truncated",
    ),
    (
        "IP options garbage",
        "frame(ipv4(igmp(0x16, '239.3.0.4'), '239.3.0.4', options=b'\\x94\\x09\\x00\\x00'))",
        "reject_bad_ip_options",
    ),
    (
        "group not multicast",
        "frame(ipv4(igmp(0x16, '10.3.0.5'), '239.3.0.5'))",
        "reject_bad_group",
    ),
    (
        "v3 source count overrun",
        "frame(ipv4(struct.pack('!BBHHH', 0x22, 0, 0, 0, 1) + struct.pack('!BBH4s', 1, 0, 50, socket.inet_aton('239.3.0.6')) + socket.inet_aton('10.0.0.1'), '224.0.0.22'), '01:00:5e:00:00:16')",
        "reject_source_overrun",
    ),
    (
        "unknown IGMP type",
        "frame(ipv4(igmp(0x55, '239.3.0.7'), '239.3.0.7'))",
        "reject_unknown_igmp_type",
    ),
    (
        "TTL not 1",
        "frame(ipv4(igmp(0x16, '239.3.0.8'), '239.3.0.8', ttl=64))",
        "reject_bad_ttl",
    ),
];

#[test]
fn malformed_control_frames_are_counted_by_reason_and_change_nothing() {
    require_root_and_tools(TOOLS);
    let lab = Lab::new(3).expect("lab");
    let sw =
        Switch::start(&lab, &["--port", "p1", "--port", "p2", "--port", "p3"]).expect("switch");
    const K: u64 = 3;
    let mut unexpected = Vec::new();
    for (name, expr, counter) in CASES {
        let before = sw.engine_counters();
        scapy(
            &lab,
            1,
            &format!("{CRAFT}\nsendp([{expr}] * {K}, iface=IFACE, inter=0.002, verbose=False)"),
        )
        .expect("scapy send");
        let got = poll_until(Duration::from_secs(3), || {
            let d = counters_moved(&before, &sw.engine_counters());
            (d.get(*counter).copied().unwrap_or(0) >= K).then_some(d)
        });
        match got {
            Some(d) => assert_eq!(d[*counter], K, "{name}: {d:?}"),
            None => unexpected.push(format!(
                "{name}: expected {counter} += {K}, got {:?}",
                counters_moved(&before, &sw.engine_counters())
            )),
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");

    // IHL below 5 never reaches the control plane: the fast path counts it
    // and switches the frame by its Ethernet header alone.
    let dataplane = |sw: &Switch| {
        sw.json(&["stats"]).expect("stats")["dataplane"]["bad_ipv4"]
            .as_u64()
            .unwrap_or(0)
    };
    let (bad_before, rx_before) = (dataplane(&sw), sw.engine_counters()["rx_frames"]);
    scapy(&lab, 1, &format!("{CRAFT}\nsendp([frame(ipv4(igmp(0x16, '239.3.0.9'), '239.3.0.9', ihl=3))] * {K}, iface=IFACE, inter=0.002, verbose=False)"))
        .expect("scapy send");
    assert!(
        poll_until(Duration::from_secs(3), || (dataplane(&sw)
            >= bad_before + K)
            .then_some(()))
        .is_some(),
        "bad_ipv4 did not count the IHL-3 frames"
    );
    assert_eq!(
        sw.engine_counters()["rx_frames"],
        rx_before,
        "an IHL-3 frame reached the control plane"
    );
    // Nothing was learned from any of it.
    assert_eq!(sw.groups_json().expect("groups"), Vec::<Value>::new());
    // And the daemon keeps serving: a real kernel join is learned.
    let g = Ipv4Addr::new(239, 1, 1, 1);
    let _rx = Receiver::start(&lab, 2, &[g], 5000).expect("receiver");
    let ports = poll_until(Duration::from_secs(2), || {
        let p = sw.group_ports(g).ok()?;
        (!p.is_empty()).then_some(p)
    });
    assert_eq!(
        ports.map(|p| p.into_iter().collect::<Vec<_>>()),
        Some(vec!["p2".to_string()])
    );
}

/// Three ports, our querier at 10.77.0.254.
const QUERIER_ON_3: [&str; 9] = [
    "--port",
    "p1",
    "--port",
    "p2",
    "--port",
    "p3",
    "--querier",
    "--querier-address",
    "10.77.0.254",
];

/// Python: `n` IGMPv3 general queries from `src`, 100 ms apart.
fn queries_from(src: &str, n: u32) -> String {
    format!(
        "from scapy.contrib.igmpv3 import IGMPv3, IGMPv3mq\n\
         q = Ether(dst='01:00:5e:00:00:01', src=get_if_hwaddr(IFACE))/IP(src='{src}', dst='224.0.0.1', ttl=1, options=[IPOption_Router_Alert()])/IGMPv3(type=0x11, mrcode=10)/IGMPv3mq()\n\
         sendp([q] * {n}, iface=IFACE, inter=0.1, verbose=False)"
    )
}

fn routers(sw: &Switch) -> Vec<String> {
    sw.json(&["routers"])
        .expect("routers --json")
        .as_array()
        .expect("array")
        .iter()
        .filter(|r| r["family"] == "ipv4")
        .filter_map(|r| r["port"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn guard_port_keeps_a_host_from_becoming_querier_or_router() {
    require_root_and_tools(TOOLS);
    let lab = Lab::new(3).expect("lab");
    let mut args = QUERIER_ON_3.to_vec();
    args.extend(["--guard-port", "p3"]);
    let sw = Switch::start(&lab, &args).expect("switch");
    // h3 (guarded) claims to be a better querier (10.77.0.3 < 10.77.0.254).
    scapy(&lab, 3, &queries_from("10.77.0.3", 5)).expect("queries from h3");
    std::thread::sleep(Duration::from_millis(300));
    let querier = sw.json(&["querier"]).expect("querier");
    assert_eq!(querier[0]["state"], "querier", "{querier}");
    assert_eq!(routers(&sw), Vec::<String>::new());
    assert_eq!(sw.engine_counters()["ignored_guard_query"], 5);
    // The same queries on an unguarded port do make a router and silence us:
    // the test above can fail.
    scapy(&lab, 2, &queries_from("10.77.0.2", 3)).expect("queries from h2");
    let learned = poll_until(Duration::from_secs(2), || {
        let r = routers(&sw);
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(learned, Some(vec!["p2".to_string()]));
    let querier = sw.json(&["querier"]).expect("querier");
    assert_eq!(querier[0]["state"], "non-querier", "{querier}");
    assert_eq!(querier[0]["querier_address"], "10.77.0.2", "{querier}");
}

#[test]
fn port_down_flushes_and_port_up_gets_a_query_at_once() {
    require_root_and_tools(TOOLS);
    let lab = Lab::new(3).expect("lab");
    let sw = Switch::start(&lab, &QUERIER_ON_3).expect("switch");
    let g = Ipv4Addr::new(239, 1, 1, 1);
    let _rx = Receiver::start(&lab, 2, &[g], 5000).expect("receiver");
    assert!(
        poll_until(Duration::from_secs(2), || sw
            .group_ports(g)
            .ok()
            .filter(|p| p.contains("p2")))
        .is_some(),
        "h2's join was not learned"
    );
    // Link down on the host side: the switch port loses carrier.
    lab.exec(&lab.host_ns(2), &["ip", "link", "set", "eth0", "down"])
        .expect("down");
    let flushed = poll_until(Duration::from_secs(3), || {
        sw.group_ports(g).ok().filter(|p| p.is_empty())
    });
    assert!(
        flushed.is_some(),
        "p2's membership survived the port going down"
    );
    let ports = sw.json(&["ports"]).expect("ports");
    assert_eq!(ports[1]["up"], false, "{ports}");

    // Back up: a general query goes out of p2 at once (startup queries are
    // over and the next periodic one is two minutes away), and h2's answer
    // re-learns the group.
    let queries_before = sw.engine_counters()["tx_general_query"];
    lab.exec(&lab.host_ns(2), &["ip", "link", "set", "eth0", "up"])
        .expect("up");
    let queried = poll_until(Duration::from_secs(3), || {
        (sw.engine_counters()["tx_general_query"] > queries_before).then_some(())
    });
    assert!(queried.is_some(), "no general query after p2 came up");
    let relearned = poll_until(Duration::from_secs(4), || {
        sw.group_ports(g).ok().filter(|p| p.contains("p2"))
    });
    assert!(relearned.is_some(), "h2 was not re-learned from its answer");
}

/// trafgen: IGMPv2 reports for random groups in 239/8 from h1, with valid IP
/// and IGMP checksums (Router Alert, TTL 1), as fast as trafgen can send.
const REPORT_FLOOD: &str = "{
  0x01, 0x00, 0x5e, drnd(3),
  0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
  0x08, 0x00,
  0x46, 0xc0, 0x00, 0x20, drnd(2), 0x40, 0x00, 0x01, 0x02, csumip(14, 37),
  10, 77, 0, 1,
  239, drnd(3),
  0x94, 0x04, 0x00, 0x00,
  0x16, 0x00, csumip(38, 45), 239, drnd(3),
  fill(0x00, 14),
}
";

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("daemon status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `igmpsnoop ports --json` row of port `index`.
fn port_row(sw: &Switch, index: usize) -> Value {
    sw.json(&["ports"]).expect("ports --json")[index].clone()
}

#[test]
fn a_report_flood_is_rate_limited_and_bounded_and_other_ports_keep_working() {
    require_root_and_tools(&["trafgen", "timeout"]);
    let lab = Lab::new(4).expect("lab");
    const LIMIT: u64 = 500;
    let mut args = lab.port_args();
    for a in ["--querier", "--querier-address", "10.77.0.254"] {
        args.push(a.into());
    }
    args.extend(["--max-groups-per-port".into(), LIMIT.to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sw = Switch::start(&lab, &args).expect("switch");
    let established = Ipv4Addr::new(232, 9, 9, 9);
    let joined_late = Ipv4Addr::new(232, 8, 8, 8);
    let r4 = Receiver::start(&lab, 4, &[established], 5000).expect("h4 joins");
    sw.wait_ports(established, &["p4"], Duration::from_secs(3));
    let rss_before = vm_rss_kib(sw.pid());
    let p1_before = port_row(&sw, 0);

    let cfg = lab.scratch_file("flood").with_extension("cfg");
    std::fs::write(&cfg, REPORT_FLOOD).expect("write trafgen config");
    const FLOOD_S: u64 = 6;
    let t_flood = std::time::Instant::now();
    let mut flood = lab
        .spawn(
            &lab.host_ns(1),
            &[
                "timeout",
                &FLOOD_S.to_string(),
                "trafgen",
                "--dev",
                "eth0",
                "--conf",
                &cfg.to_string_lossy(),
                "--cpus",
                "1",
                "-q",
                "-C",
            ],
        )
        .expect("trafgen");
    let underway = poll_until(Duration::from_secs(3), || {
        (port_row(&sw, 0)["counters"]["drop_rate_limit"].as_u64() > Some(10_000)).then_some(())
    });
    assert!(underway.is_some(), "the flood never hit the rate limit");

    // During the flood: an established group's stream, and a join elsewhere.
    const N: u64 = 2000;
    let join_took = std::thread::scope(|s| {
        let stream = s.spawn(|| igmpsnoop_tests::send(&lab, 3, established, 5000, N));
        let _r2 = Receiver::start(&lab, 2, &[joined_late], 5000).expect("h2 joins");
        let took = sw.wait_ports(joined_late, &["p2"], Duration::from_secs(2));
        stream.join().unwrap().expect("stream");
        took
    });
    let rss_flood = vm_rss_kib(sw.pid());
    let _ = flood.wait_timeout(Duration::from_secs(FLOOD_S + 5));
    let flood_s = t_flood.elapsed().as_secs_f64();
    let p1 = port_row(&sw, 0);
    let d =
        |k: &str| p1["counters"][k].as_u64().unwrap() - p1_before["counters"][k].as_u64().unwrap();
    let (offered, limited, to_control) = (d("rx"), d("drop_rate_limit"), d("to_control"));
    eprintln!(
        "flood: {offered} reports from h1 in {flood_s:.1} s ({:.0} pps); {limited} dropped by \
         the XDP rate limit, {to_control} to the daemon; h2's join listed after {join_took:?}; \
         daemon VmRSS {rss_before} -> {rss_flood} KiB",
        offered as f64 / flood_s
    );

    // The established group lost nothing; the other port's join was learned.
    assert_eq!(r4.finish().expect("h4")[&established], N, "stream loss");
    assert!(
        join_took < Duration::from_secs(1),
        "join took {join_took:?}"
    );
    // The rate limit held (2000 per second per CPU) ...
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(limited > 0);
    assert!(
        (to_control as f64) <= 2000.0 * cpus * (flood_s + 1.0),
        "{to_control} control frames in {flood_s:.1} s passed the limit"
    );
    // ... the port's group limit held, and said so ...
    assert_eq!(p1["groups"].as_u64(), Some(LIMIT), "{p1}");
    assert!(sw.engine_counters()["reject_limit_port"] > 0);
    assert!(
        sw.log().contains("port group limit reached"),
        "no log line for the full port"
    );
    // ... and the daemon's memory stayed flat.
    assert!(
        rss_flood < rss_before + 8 * 1024,
        "VmRSS grew {rss_before} -> {rss_flood} KiB"
    );
}
