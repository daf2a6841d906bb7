//! Seeing into the switch while it works: a control socket that no client
//! can stall, `igmpsnoop monitor`, the metrics endpoint, the CLI's filters.
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use igmpsnoop_control::api::{Event, EventKind};
use igmpsnoop_tests::{
    Lab, Receiver, Switch, igmpsnoop_bin, mcast_tool_bin, nsenter_command, poll_until,
    require_root_and_tools, scapy, scapy_python, send,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G2: Ipv4Addr = Ipv4Addr::new(239, 2, 2, 2);
const UDP: u16 = 5000;

fn require(tools: &[&str]) {
    require_root_and_tools(tools);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(bin.is_file(), "{bin:?} not built (cargo build --bins)");
    }
}

fn start(lab: &Lab, extra: &[&str]) -> Switch {
    let mut args = lab.port_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Switch::start(lab, &args).expect("igmpsnoop run")
}

#[test]
fn clients_that_send_nothing_or_never_read_do_not_stall_joins() {
    require(&[]);
    let lab = Lab::new(3).unwrap();
    let sw = start(&lab, &[]);
    // Silent clients, one with half a request, and monitor clients that
    // never read what they are sent.
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(UnixStream::connect(sw.socket()).unwrap());
    }
    let mut half = UnixStream::connect(sw.socket()).unwrap();
    half.write_all(br#"{"cmd":"gro"#).unwrap();
    held.push(half);
    for _ in 0..4 {
        let mut m = UnixStream::connect(sw.socket()).unwrap();
        m.write_all(b"{\"cmd\":\"monitor\"}\n").unwrap();
        held.push(m);
    }

    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2"], Duration::from_secs(3));
    send(&lab, 1, G, UDP, 100).unwrap();
    assert_eq!(
        r2.finish().unwrap()[&G],
        100,
        "the join did not reach the fast path"
    );
    // The CLI is answered while they all hang on.
    let out = sw.cli(&["groups", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(held);
}

/// `igmpsnoop monitor --json` running as a user would run it, its lines
/// collected.
struct Monitor {
    child: std::process::Child,
}

impl Monitor {
    fn start(lab: &Lab, sw: &Switch) -> Monitor {
        let bin = igmpsnoop_bin().to_string_lossy().into_owned();
        let sock = sw.socket().to_string_lossy().into_owned();
        let child = nsenter_command(
            &lab.switch_ns(),
            &[&bin, "monitor", "--json", "--socket", &sock],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        Monitor { child }
    }

    /// Stops it and returns its events.
    fn finish(mut self) -> Vec<Event> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let out = self.child.wait_with_output_ref();
        String::from_utf8_lossy(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an event: {l:?}: {e}")))
            .collect()
    }
}

trait WaitOutput {
    fn wait_with_output_ref(&mut self) -> Vec<u8>;
}

impl WaitOutput for std::process::Child {
    fn wait_with_output_ref(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(mut s) = self.stdout.take() {
            s.read_to_end(&mut out).unwrap();
        }
        let _ = self.wait();
        out
    }
}

fn position(events: &[Event], what: &str, f: impl Fn(&EventKind) -> bool) -> usize {
    events
        .iter()
        .position(|e| f(&e.kind))
        .unwrap_or_else(|| panic!("no {what} event in {events:#?}"))
}

#[test]
fn monitor_shows_a_scripted_scenario_in_order() {
    require(&["nft"]);
    let lab = Lab::new(3).unwrap();
    for h in 1..=3 {
        lab.set_igmp_version(h, 2).unwrap();
    }
    let sw = start(
        &lab,
        &[
            "--querier",
            "--querier-address",
            "10.77.0.254",
            "--query-interval",
            "2s",
            "--query-response-interval",
            "1s",
            "--igmp-version",
            "2",
        ],
    );
    let mon = Monitor::start(&lab, &sw);
    std::thread::sleep(Duration::from_millis(300));

    // h2 joins and leaves; h3 joins and goes silent until it expires.
    let mut r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2"], Duration::from_secs(3));
    r2.leave().unwrap();
    sw.wait_ports(G, &[], Duration::from_secs(5));
    let _r3 = Receiver::start(&lab, 3, &[G2], UDP).unwrap();
    sw.wait_ports(G2, &["p3"], Duration::from_secs(3));
    lab.sh(
        &lab.host_ns(3),
        "nft add table ip f && nft add chain ip f o '{ type filter hook output priority 0; }' \
         && nft add rule ip f o ip protocol igmp drop",
    )
    .unwrap();
    // Group membership interval: 2 × 2 s + 1 s.
    sw.wait_ports(G2, &[], Duration::from_secs(10));
    // A better querier on p1: our querier steps down, p1 becomes a router port.
    scapy(
        &lab,
        1,
        "q = Ether(dst='01:00:5e:00:00:01', src=get_if_hwaddr(IFACE))/IP(src='10.77.0.1', dst='224.0.0.1', ttl=1, \
         options=[IPOption_Router_Alert()])/IGMP(type=0x11, mrcode=10, gaddr='0.0.0.0')\n\
         sendp(q, iface=IFACE, verbose=False)",
    )
    .unwrap();
    let routed = poll_until(Duration::from_secs(3), || {
        let r = sw.json(&["routers"]).ok()?;
        (!r.as_array()?.is_empty()).then_some(())
    });
    assert!(routed.is_some(), "the query did not make p1 a router port");
    std::thread::sleep(Duration::from_millis(300));
    let events = mon.finish();

    let join = position(
        &events,
        "join p2",
        |k| matches!(k, EventKind::GroupPorts { group, added, .. } if *group == G && added == &["p2"]),
    );
    let leave = position(
        &events,
        "leave p2",
        |k| matches!(k, EventKind::GroupPorts { group, removed, .. } if *group == G && removed == &["p2"]),
    );
    let join3 = position(
        &events,
        "join p3",
        |k| matches!(k, EventKind::GroupPorts { group, added, .. } if *group == G2 && added == &["p3"]),
    );
    let expiry = position(
        &events,
        "expiry p3",
        |k| matches!(k, EventKind::GroupPorts { group, removed, .. } if *group == G2 && removed == &["p3"]),
    );
    let router = position(
        &events,
        "router p1",
        |k| matches!(k, EventKind::RouterPorts { added, .. } if added == &["p1"]),
    );
    let querier = position(
        &events,
        "querier 10.77.0.1",
        |k| matches!(k, EventKind::Querier { querier: Some(a), we_are_querier: false, .. } if *a == Ipv4Addr::new(10, 77, 0, 1)),
    );
    let ours = position(&events, "querier us", |k| {
        matches!(
            k,
            EventKind::Querier {
                we_are_querier: true,
                ..
            }
        )
    });
    assert!(
        ours < join
            && join < leave
            && leave < join3
            && join3 < expiry
            && expiry < router.max(querier),
        "out of order: querier(us) {ours}, join {join}, leave {leave}, join3 {join3}, expiry {expiry}, router {router}, querier {querier}"
    );
    let times: Vec<&str> = events.iter().map(|e| e.time.as_str()).collect();
    assert!(times.is_sorted(), "timestamps not in order: {times:?}");
}

#[test]
fn a_monitor_reader_that_stops_reading_is_dropped_and_the_daemon_goes_on() {
    require(&[]);
    let lab = Lab::new(3).unwrap();
    let sw = start(&lab, &["--control-rate-limit", "0"]);
    let mut slow = UnixStream::connect(sw.socket()).unwrap();
    slow.write_all(b"{\"cmd\":\"monitor\"}\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // Far more events than the reader's buffer holds: 20000 distinct groups
    // joined by IGMPv2 reports, each a forwarding change.
    let tool = mcast_tool_bin().to_string_lossy().into_owned();
    lab.exec(
        &lab.host_ns(2),
        &[
            &tool,
            "reports",
            "--group",
            "239.100.0.1",
            "--src",
            "10.77.0.2",
            "--count",
            "20000",
            "--rate",
            "20000",
        ],
    )
    .unwrap();
    let dropped = poll_until(Duration::from_secs(10), || {
        sw.log()
            .contains("a monitor client fell behind")
            .then_some(())
    });
    assert!(
        dropped.is_some(),
        "the slow reader was not dropped: {}",
        sw.log()
    );
    // The daemon goes on: every report is in the table or counted as
    // dropped by the control socket, and it answers.
    let accounted = poll_until(Duration::from_secs(10), || {
        let stats = sw.json(&["stats"]).ok()?;
        let learned = stats["engine"]["groups_added"].as_u64()?;
        let dropped = stats["control_sockets"]["rx_dropped"].as_u64()?;
        (learned + dropped == 20000).then_some((learned, dropped))
    });
    let (learned, dropped) = accounted
        .unwrap_or_else(|| panic!("reports unaccounted for: {}", sw.json(&["stats"]).unwrap()));
    eprintln!(
        "with a stuck monitor reader: {learned} reports learned, {dropped} dropped by the socket"
    );
    assert!(learned > 0, "no report learned");
    // And it goes on switching: a join on another port takes effect.
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p3"], Duration::from_secs(5));
    drop(r3);
    // What the slow reader finally reads ends with why it was dropped.
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut all = String::new();
    let _ = slow.read_to_string(&mut all);
    let last = all.lines().last().unwrap_or_default();
    assert!(
        last.contains("fell") && last.contains("behind"),
        "last line: {last:?}"
    );
}

fn scrape(lab: &Lab, addr: &str) -> String {
    let out = nsenter_command(
        &lab.switch_ns(),
        &["curl", "-sf", &format!("http://{addr}/metrics")],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The value of the sample whose line starts with `series` (name{labels}).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
}

#[test]
fn the_metrics_endpoint_is_valid_openmetrics_and_moves_with_traffic() {
    require(&["curl"]);
    let lab = Lab::new(3).unwrap();
    let addr = "127.0.0.1:9717";
    let sw = start(&lab, &["--metrics-listen", addr]);
    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2"], Duration::from_secs(3));
    let before = scrape(&lab, addr);

    // prometheus-client's strict OpenMetrics parser (Python, in the venv).
    let mut check = Command::new(scapy_python())
        .args([
            "-c",
            "import sys\nfrom prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n\
             print(len(list(p(sys.stdin.read()))))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(before.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    let families = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success() && families.trim().parse::<u32>().is_ok_and(|n| n >= 10),
        "not valid OpenMetrics: {families}{}",
        String::from_utf8_lossy(&checked.stderr)
    );

    send(&lab, 1, G, UDP, 200).unwrap();
    assert_eq!(r2.finish().unwrap()[&G], 200);
    let after = scrape(&lab, addr);
    let replicated = r#"igmpsnoop_port_frames_total{port="p1",reason="replicated"}"#;
    let moved = sample(&after, replicated) - sample(&before, replicated);
    assert!(moved >= 200.0, "replicated moved by {moved}, 200 sent");
    assert_eq!(sample(&after, r#"igmpsnoop_memberships{port="p2"}"#), 1.0);
    assert_eq!(sample(&after, "igmpsnoop_groups"), 1.0);
    assert!(
        sample(
            &after,
            r#"igmpsnoop_protocol_messages_total{protocol="igmp",direction="rx",type="report",version="3"}"#
        ) >= 1.0
    );
    assert!(
        after.contains("igmpsnoop_loop_round_seconds_bucket"),
        "no round histogram"
    );
    assert!(
        after.contains(r#"igmpsnoop_build_info{version=""#),
        "no build info"
    );
}

#[test]
fn groups_filters_and_stats_per_port() {
    require(&[]);
    let lab = Lab::new(3).unwrap();
    let sw = start(&lab, &[]);
    let _r2 = Receiver::start(&lab, 2, &[G, G2], UDP).unwrap();
    let _r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], Duration::from_secs(3));
    sw.wait_ports(G2, &["p2"], Duration::from_secs(3));
    let rows = |args: &[&str]| -> Vec<(String, String)> {
        let mut a = vec!["groups"];
        a.extend_from_slice(args);
        sw.json(&a)
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["group"].as_str().unwrap().to_string(),
                    r["port"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let g = G.to_string();
    assert_eq!(rows(&[&g]).len(), 2);
    assert_eq!(rows(&["--port", "p2"]).len(), 2);
    assert_eq!(
        rows(&[&g, "--port", "p3"]),
        vec![(g.clone(), "p3".to_string())]
    );
    let text = sw.cli(&["groups"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("2 group(s), 3 membership(s) on 2 port(s)"),
        "{text}"
    );

    send(&lab, 1, G, UDP, 50).unwrap();
    let p1 = sw.json(&["stats", "--port", "p1"]).unwrap();
    assert_eq!(p1["port"], "p1");
    assert!(p1["counters"]["replicated"].as_u64().unwrap() >= 50, "{p1}");
    let bad = sw.cli(&["stats", "--port", "nosuch0"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("nosuch0") && err.contains("p1"), "{err}");
}

#[test]
fn group_rates_show_each_stream_at_the_rate_sent_on_its_ports() {
    require(&[]);
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &[]);
    let _r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let _r3 = Receiver::start(&lab, 3, &[G2], UDP).unwrap();
    let _r4 = Receiver::start(&lab, 4, &[G, G2], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p4"], Duration::from_secs(3));
    sw.wait_ports(G2, &["p3", "p4"], Duration::from_secs(3));
    // 1000 and 250 datagrams/s (paced on the clock) for 6 s, both from h1.
    let rates = std::thread::scope(|s| {
        let fast = s.spawn(|| {
            let mut o = igmpsnoop_tests::SendOpts::new(G, UDP, 6000);
            o.interval_ms = 1;
            o.size = 200;
            igmpsnoop_tests::send_with(&lab, 1, &o)
        });
        let slow = s.spawn(|| {
            let mut o = igmpsnoop_tests::SendOpts::new(G2, UDP, 1500);
            o.interval_ms = 4;
            o.size = 200;
            igmpsnoop_tests::send_with(&lab, 1, &o)
        });
        std::thread::sleep(Duration::from_millis(1500));
        let rates = sw.json(&["groups", "--rates", "--interval", "3s"]).unwrap();
        fast.join().unwrap().unwrap();
        slow.join().unwrap().unwrap();
        rates
    });
    let row = |g: Ipv4Addr| {
        rates
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["group"] == g.to_string() && r["source"].is_null())
            .unwrap_or_else(|| panic!("no stream of {g} in {rates}"))
            .clone()
    };
    for (g, want, ports) in [(G, 1000.0, ["p2", "p4"]), (G2, 250.0, ["p3", "p4"])] {
        let r = row(g);
        let pps = r["pps"].as_f64().unwrap();
        eprintln!("{g}: {pps} pps shown, {want} sent");
        assert!(
            (pps - want).abs() <= want * 0.1,
            "{g}: {pps} pps shown, {want} sent: {r}"
        );
        assert_eq!(r["ports"], serde_json::json!(ports), "{r}");
        // 200-byte payloads: 242-byte frames.
        let bits = r["bits_per_second"].as_f64().unwrap();
        assert!(
            (bits - want * 242.0 * 8.0).abs() <= want * 242.0 * 8.0 * 0.1,
            "{r}"
        );
    }
}
