//! IGMPv3 source filtering end to end with the real daemon (issue 12):
//! kernel hosts with real source filters (the RFC 3678 socket calls),
//! the group-and-source-specific queries the daemon sends (decoded by
//! tshark), static (S,G) entries from the CLI, bad source lists on the
//! wire, and a lab at kernel-default veths. The bridge_igmp.sh port is in
//! sources_selftest.rs.
//!
//! Streams come from h1 with crafted source addresses in the lab subnet
//! (S1 = 10.77.0.101, S2 = .102); every receiving host counts what reaches
//! its eth0 per source below its IP stack (a kernel host drops sources it
//! filters itself, so its socket cannot tell what the switch forwarded).
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use igmpsnoop_tests::{
    Capture, IgmpSend, Lab, Receiver, SourceCounter, SourceFilter, Stream, Switch, field,
    field_str, fields_str, igmpsnoop_bin, mcast_tool_bin, poll_until, require_root_and_tools,
    v3_report,
};
use serde_json::{Value, json};

const G: Ipv4Addr = Ipv4Addr::new(239, 10, 10, 10);
const G2: Ipv4Addr = Ipv4Addr::new(239, 10, 10, 11);
const G3: Ipv4Addr = Ipv4Addr::new(239, 10, 10, 12);
const S1: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 101);
const S2: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 102);
const S3: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 103);
const S4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 104);
const S5: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 105);
const UDP: u16 = 5000;
const N: u64 = 20;
const WAIT: Duration = Duration::from_secs(5);
const QUERIER: &str = "10.77.0.254";

// RFC 3376 §4.2.12 record types.
const IS_IN: u8 = 1;
const IS_EX: u8 = 2;
const TO_EX: u8 = 4;
const ALLOW: u8 = 5;

fn require() {
    require_root_and_tools(&["tcpdump", "tshark"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build --all-targets)"
        );
    }
}

/// `igmpsnoop run` on every port of the lab, with `extra`.
fn start(lab: &Lab, extra: &[&str]) -> Switch {
    let mut args = lab.port_args();
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Switch::start(lab, &args).expect("igmpsnoop run")
}

fn stream(lab: &Lab) -> Stream<'_> {
    Stream {
        lab,
        from: 1,
        group: G,
        port: UDP,
        n: N,
    }
}

/// The (mode, {source: excluded}) of the `groups --json` row of (G, port).
fn filter_of(sw: &Switch, group: Ipv4Addr, port: &str) -> Option<(String, BTreeMap<String, bool>)> {
    let row = sw.row(group, port)?;
    let sources = row["sources"]
        .as_array()?
        .iter()
        .map(|s| {
            let addr = s["address"].as_str().unwrap_or_default().to_string();
            (addr, s["excluded"].as_bool().unwrap_or(false))
        })
        .collect();
    Some((row["filter_mode"].as_str()?.to_string(), sources))
}

fn filter(mode: &str, sources: &[(Ipv4Addr, bool)]) -> Option<(String, BTreeMap<String, bool>)> {
    Some((
        mode.to_string(),
        sources.iter().map(|(s, x)| (s.to_string(), *x)).collect(),
    ))
}

/// Waits until (G, port) shows `want` (None: no row); panics with the table.
fn wait_filter(
    sw: &Switch,
    group: Ipv4Addr,
    port: &str,
    want: Option<(String, BTreeMap<String, bool>)>,
) {
    poll_until(WAIT, || (filter_of(sw, group, port) == want).then_some(())).unwrap_or_else(|| {
        panic!(
            "({group}, {port}) is not {want:?} after {WAIT:?}: {:#?}",
            sw.groups_json().unwrap()
        )
    });
}

/// `igmpsnoop sources --json` for `group`: source -> ports.
fn entries(sw: &Switch, group: Ipv4Addr) -> BTreeMap<String, Vec<String>> {
    let v = sw.json(&["sources"]).expect("sources --json");
    v.as_array()
        .expect("an array")
        .iter()
        .filter(|e| e["group"] == group.to_string().as_str() && e["vlan"] == 0)
        .map(|e| {
            let ports: Vec<String> = serde_json::from_value(e["ports"].clone()).unwrap();
            (e["source"].as_str().unwrap().to_string(), ports)
        })
        .collect()
}

fn entry_map(list: &[(Ipv4Addr, &[&str])]) -> BTreeMap<String, Vec<String>> {
    list.iter()
        .map(|(s, p)| (s.to_string(), p.iter().map(|x| x.to_string()).collect()))
        .collect()
}

fn engine_counters(sw: &Switch) -> BTreeMap<String, u64> {
    let stats = sw.json(&["stats"]).expect("stats --json");
    serde_json::from_value(stats["engine"].clone()).expect("engine counters")
}

/// Counters that moved between two readings.
fn moved(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let d = v - before.get(k).copied().unwrap_or(0);
            (d > 0).then(|| (k.clone(), d))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Kernel hosts with source filters: h2 INCLUDE {S1}, h3 EXCLUDE {S1}, h4
// nothing. Shared by the lab with the test's timers and the one at kernel
// defaults.

struct Hosts {
    h2: Receiver,
    h3: Receiver,
    counters: Vec<SourceCounter>,
}

fn join_include_and_exclude(lab: &Lab, sw: &Switch) -> Hosts {
    let counters: Vec<SourceCounter> = (2..=4)
        .map(|h| SourceCounter::start(lab, h, G, UDP).expect("sniffer"))
        .collect();
    let h2 = Receiver::start_filtered(lab, 2, &[G], UDP, &SourceFilter::Include(vec![S1]))
        .expect("h2 INCLUDE {S1}");
    let h3 = Receiver::start_filtered(lab, 3, &[G], UDP, &SourceFilter::Exclude(vec![S1]))
        .expect("h3 EXCLUDE {S1}");
    // The kernel's reports: IS_IN/ALLOW {S1} from h2, TO_EX {S1} from h3.
    wait_filter(sw, G, "p2", filter("include", &[(S1, false)]));
    wait_filter(sw, G, "p3", filter("exclude", &[(S1, true)]));
    assert_eq!(filter_of(sw, G, "p4"), None, "h4 joined nothing");
    // S1 goes to p2 only; S2 has no entry: it follows the group's EXCLUDE
    // ports, p3.
    let want = entry_map(&[(S1, &["p2"])]);
    poll_until(WAIT, || (entries(sw, G) == want).then_some(()))
        .unwrap_or_else(|| panic!("sources: {:?}, expected {want:?}", entries(sw, G)));
    Hosts { h2, h3, counters }
}

impl Hosts {
    fn check(&self, lab: &Lab, what: &str) {
        let c = &self.counters;
        stream(lab).check(
            what,
            &[S1, S2],
            &[
                ("h2", &c[0], &[S1]),
                ("h3", &c[1], &[S2]),
                ("h4", &c[2], &[]),
            ],
        );
    }

    /// The kernel sockets themselves got what their filters let through.
    fn finish(self) -> (u64, u64) {
        let by_source = |r: Receiver| {
            let rep = r.finish_report().expect("receiver report");
            rep.by_tag.get(&G.to_string()).cloned().unwrap_or_default()
        };
        let (a, b) = (by_source(self.h2), by_source(self.h3));
        for (what, m, other) in [("h2", &a, S2), ("h3", &b, S1)] {
            assert_eq!(
                m.get(&other.to_string()),
                None,
                "{what}'s socket got {other}: {m:?}"
            );
        }
        (
            a.get(&S1.to_string()).copied().unwrap_or(0),
            b.get(&S2.to_string()).copied().unwrap_or(0),
        )
    }
}

#[test]
fn kernel_hosts_include_and_exclude_get_exactly_their_sources() {
    require();
    let lab = Lab::new(4).unwrap();
    // Querier: the BLOCK of h2's leave lowers S1 only when somebody asks
    // Q(G,{S1}) (RFC 3376 §6.6.3.2). LMQT = 2 × 200 ms.
    let sw = start(
        &lab,
        &[
            "--querier",
            "--querier-address",
            QUERIER,
            "--last-member-interval",
            "200ms",
        ],
    );
    let mut hosts = join_include_and_exclude(&lab, &sw);
    hosts.check(&lab, "h2 INCLUDE {S1}, h3 EXCLUDE {S1}");

    // h2 drops S1 while S1 and S2 stream on.
    let (h2, h3) = (&hosts.counters[0], &hosts.counters[1]);
    let sender = {
        let name = lab.host_ns(1);
        let tool = mcast_tool_bin();
        std::thread::spawn(move || {
            // 3,000 rounds 2 ms apart: ≥ 6 s of both sources.
            let out = std::process::Command::new("ip")
                .args(["netns", "exec", &name])
                .arg(tool)
                .args(["spoof", "--iface", "eth0", "--group", &G.to_string()])
                .args(["--port", &UDP.to_string(), "--src", &S1.to_string()])
                .args([
                    "--src",
                    &S2.to_string(),
                    "--count",
                    "3000",
                    "--interval-ms",
                    "2",
                ])
                .output()
                .expect("spoof");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        })
    };
    let base = h2.count(S1);
    poll_until(WAIT, || (h2.count(S1) > base + 10).then_some(()))
        .expect("h2 receives S1 from the stream");
    let t0 = Instant::now();
    hosts.h2.leave().unwrap();
    let took = t0.elapsed() + sw.wait_ports(G, &["p3"], Duration::from_secs(5));
    // What was in flight when the entry went (and the sniffer's 20 ms of
    // lag) lands within this; after it, nothing more of S1.
    std::thread::sleep(Duration::from_millis(100));
    let stopped = h2.count(S1);
    let h3_then = h3.count(S2);
    std::thread::sleep(Duration::from_millis(500));
    let late = h2.count(S1) - stopped;
    let h3_more = h3.count(S2) - h3_then;
    eprintln!("h2 left S1: p2 pruned after {took:?}; h3 got {h3_more} from S2 in 500 ms after");
    assert_eq!(
        late, 0,
        "h2 still got {late} datagrams from S1 after p2 was pruned"
    );
    assert!(h3_more >= 50, "h3's S2 stream stalled: {h3_more} in 500 ms");
    assert!(
        took >= Duration::from_millis(300),
        "p2 pruned {took:?} after h2's leave, before LMQT (400 ms)"
    );
    assert!(
        took <= Duration::from_millis(400) + Duration::from_secs(3),
        "p2 pruned after {took:?}, LMQT is 400 ms"
    );
    assert_eq!(
        filter_of(&sw, G, "p3"),
        filter("exclude", &[(S1, true)]),
        "h3 unaffected"
    );
    assert_eq!(entries(&sw, G), entry_map(&[(S1, &[])]));
    sender.join().unwrap();
    let (h2_sock, h3_sock) = hosts.finish();
    assert!(
        h2_sock >= N && h3_sock >= N,
        "sockets: h2 {h2_sock} from S1, h3 {h3_sock} from S2"
    );
}

#[test]
fn kernel_hosts_at_kernel_default_veths_with_default_flags() {
    require();
    let lab = Lab::at_kernel_defaults(4).unwrap();
    let sw = start(&lab, &[]);
    let hosts = join_include_and_exclude(&lab, &sw);
    hosts.check(&lab, "kernel defaults: h2 INCLUDE {S1}, h3 EXCLUDE {S1}");
    let (h2, h3) = hosts.finish();
    assert_eq!((h2, h3), (N, N), "sockets: h2 from S1, h3 from S2");
}

// ---------------------------------------------------------------------------
// Our group-and-source-specific queries, decoded by tshark.

/// Our queries for G that carry sources, as (S flag, sources), in order.
fn source_queries(frames: &[Value]) -> Vec<(bool, BTreeSet<String>)> {
    frames
        .iter()
        .map(|f| {
            let s = field_str(f, "igmp.s").unwrap_or_else(|| panic!("no igmp.s: {f}"));
            let set: BTreeSet<String> = fields_str(f, "igmp.saddr").into_iter().collect();
            (s == "1" || s == "True", set)
        })
        .collect()
}

/// What a well-formed query of ours looks like on the wire (RFC 3376
/// §4.1, §4.1.12: a group-and-source-specific query goes to the group).
fn check_query(f: &Value) {
    let get = |name: &str| field_str(f, name).unwrap_or_else(|| panic!("no {name}: {f}"));
    assert!(field(f, "_ws.expert").is_none(), "tshark expert info: {f}");
    assert!(
        field(f, "_ws.malformed").is_none(),
        "tshark: malformed: {f}"
    );
    assert_eq!(get("igmp.checksum.status"), "1", "IGMP checksum: {f}");
    assert_eq!(get("ip.checksum.status"), "1", "IP checksum: {f}");
    assert_eq!(get("igmp.version"), "3", "{f}");
    assert_eq!(get("ip.ttl"), "1", "TTL: {f}");
    assert!(field(f, "ip.opt.ra").is_some(), "no Router Alert: {f}");
    assert_eq!(get("ip.dst"), G.to_string(), "destination: {f}");
    assert_eq!(get("eth.dst"), "01:00:5e:0a:0a:0a", "{f}");
    assert_eq!(get("igmp.maddr"), G.to_string(), "{f}");
    let n: usize = get("igmp.num_src").parse().unwrap();
    assert_eq!(n, fields_str(f, "igmp.saddr").len(), "{f}");
}

#[test]
fn group_and_source_specific_queries_decode_cleanly() {
    require();
    let lab = Lab::new(2).unwrap();
    let mut cap = Capture::start(&lab, &lab.host_ns(2), "eth0", "igmp").unwrap();
    // LMQI 2 s: the retransmission of Q(G,A) comes 2 s after the first.
    let sw = start(
        &lab,
        &[
            "--querier",
            "--igmp-version",
            "3",
            "--querier-address",
            QUERIER,
            "--last-member-interval",
            "2s",
        ],
    );
    let mut h2 = Receiver::start_filtered(&lab, 2, &[G], UDP, &SourceFilter::Include(vec![S1, S2]))
        .expect("h2 INCLUDE {S1, S2}");
    wait_filter(&sw, G, "p2", filter("include", &[(S1, false), (S2, false)]));
    // h2 drops both sources (BLOCK, RFC 3376 §5.1): the querier asks
    // Q(G,{S1,S2}) with S clear (their timers are lowered to LMQT,
    // §6.6.3.2), then, as h2 takes both back at once (ALLOW raises their
    // timers to GMI), its retransmission has S set.
    h2.leave().unwrap();
    let ours = format!(
        "ip.src == {QUERIER} && igmp.type == 0x11 && igmp.maddr == {G} && igmp.num_src > 0"
    );
    let first = cap
        .wait_for(&ours, 1, Duration::from_secs(3))
        .expect("Q(G,A) after the BLOCK");
    h2.rejoin().unwrap();
    cap.wait_for(&format!("{ours} && igmp.s == 1"), 1, Duration::from_secs(6))
        .expect("a Q(G,A) with the S flag after h2 took its sources back");
    let all = cap.decode(Some(&ours)).unwrap();
    cap.stop().unwrap();
    for f in &all {
        check_query(f);
    }
    let queries = source_queries(&all);
    eprintln!("Q(G,A) seen: {queries:?}");
    let first = source_queries(&first);
    let want: BTreeSet<String> = [S1, S2].iter().map(Ipv4Addr::to_string).collect();
    assert!(!first[0].0, "the first Q(G,A) has S clear: {queries:?}");
    // Before the rejoin: S clear, and between them every source h2 dropped.
    let before_s: Vec<_> = queries.iter().take_while(|q| !q.0).collect();
    let asked: BTreeSet<String> = before_s.iter().flat_map(|q| q.1.iter().cloned()).collect();
    assert_eq!(asked, want, "sources asked after the BLOCK: {queries:?}");
    let with_s = queries.iter().find(|q| q.0).unwrap();
    assert!(
        !with_s.1.is_empty() && with_s.1.is_subset(&want),
        "the S-flag query names h2's sources: {queries:?}"
    );
    // Answered (h2 wants them again): still forwarded.
    wait_filter(&sw, G, "p2", filter("include", &[(S1, false), (S2, false)]));
}

// ---------------------------------------------------------------------------
// Static (S,G) from the CLI.

#[test]
fn static_source_entry_from_the_cli() {
    require();
    let lab = Lab::new(3).unwrap();
    // Unregistered groups to router ports only: once the static entry is
    // removed the group is unregistered, and must then reach nobody.
    let sw = start(&lab, &["--flood-unregistered", "false"]);
    let counters: Vec<SourceCounter> = (2..=3)
        .map(|h| SourceCounter::start(&lab, h, G, UDP).unwrap())
        .collect();
    let (g, s1) = (G.to_string(), S1.to_string());
    let out = sw.cli(&["group", "add", &g, "--port", "p2", "--source", &s1]);
    assert!(
        out.status.success(),
        "group add --source: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_filter(&sw, G, "p2", filter("include", &[(S1, false)]));
    let row = sw.row(G, "p2").unwrap();
    // Nothing expires: the row (`static` flags a static (*,G) only) and its
    // source have no timer.
    assert_eq!(row["expires_ms"], Value::Null, "{row}");
    assert_eq!(
        row["sources"][0]["expires_ms"],
        Value::Null,
        "a static source has no timer: {row}"
    );
    assert_eq!(entries(&sw, G), entry_map(&[(S1, &["p2"])]));
    let rx = |c: &[SourceCounter], want2: &[Ipv4Addr]| {
        let w2 = want2.to_vec();
        stream(&lab).check(
            "static",
            &[S1, S2],
            &[("h2", &c[0], &w2), ("h3", &c[1], &[])],
        );
    };
    rx(&counters, &[S1]);

    // Refused: a multicast, unspecified or broadcast source. One line naming
    // it, a non-zero exit, nothing changed.
    for bad in ["239.1.1.1", "0.0.0.0", "255.255.255.255"] {
        for verb in ["add", "del"] {
            let out = sw.cli(&["group", verb, &g, "--port", "p2", "--source", bad]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "group {verb} --source {bad} succeeded"
            );
            assert_eq!(err.trim().lines().count(), 1, "one line: {err:?}");
            assert!(err.contains(bad), "the error names {bad}: {err:?}");
        }
    }
    assert_eq!(filter_of(&sw, G, "p2"), filter("include", &[(S1, false)]));
    assert_eq!(entries(&sw, G), entry_map(&[(S1, &["p2"])]));

    let out = sw.cli(&["group", "del", &g, "--port", "p2", "--source", &s1]);
    assert!(
        out.status.success(),
        "group del --source: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_filter(&sw, G, "p2", None);
    assert_eq!(entries(&sw, G), BTreeMap::new());
    // Once more: nothing to remove, said with what was asked for.
    let out = sw.cli(&["group", "del", &g, "--port", "p2", "--source", &s1]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a second group del succeeded");
    assert!(
        err.contains(&g) && err.contains(&s1) && err.contains("p2"),
        "the error names the entry: {err:?}"
    );
    rx(&counters, &[]);
}

// ---------------------------------------------------------------------------
// Bad source lists on the wire: counted by reason, nothing changed.

/// A record claiming 50 sources and carrying one.
fn overrun_report(group: Ipv4Addr) -> Vec<u8> {
    let mut m = v3_report(&[(ALLOW, group, &[S3])]);
    m[10..12].copy_from_slice(&50u16.to_be_bytes());
    m[2..4].copy_from_slice(&[0, 0]);
    let ck = igmpsnoop_tests::igmp_checksum(&m);
    m[2..4].copy_from_slice(&ck.to_be_bytes());
    m
}

/// The table as a user compares it: every row without its timers, and the
/// (S,G) entries.
fn table(sw: &Switch) -> Value {
    let mut rows = sw.groups_json().unwrap();
    for r in &mut rows {
        r["expires_ms"] = Value::Null;
        for s in r["sources"].as_array_mut().unwrap() {
            s["expires_ms"] = Value::Null;
        }
    }
    json!({"groups": rows, "sources": sw.json(&["sources"]).unwrap(),
           "installed": sw.json(&["stats"]).unwrap()["bpf_source_entries"]})
}

#[test]
fn bad_source_lists_are_counted_by_reason_and_change_nothing() {
    require();
    let lab = Lab::new(2).unwrap();
    let sw = start(&lab, &["--max-sources-per-group", "4"]);
    let send = |m: &[u8]| IgmpSend::default().send(&lab, 2, m).unwrap();
    send(&v3_report(&[(IS_IN, G, &[S1, S2])]));
    wait_filter(&sw, G, "p2", filter("include", &[(S1, false), (S2, false)]));
    let before = table(&sw);

    let multicast = Ipv4Addr::new(224, 1, 1, 1);
    let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
        (
            "source count past the end",
            vec![overrun_report(G), overrun_report(G2)],
            "reject_source_overrun",
        ),
        (
            "a source twice",
            vec![
                v3_report(&[(TO_EX, G, &[S3, S3])]),
                v3_report(&[(IS_EX, G2, &[S3, S4, S3])]),
            ],
            "reject_source_duplicate",
        ),
        (
            "a multicast source",
            vec![
                v3_report(&[(ALLOW, G, &[multicast])]),
                v3_report(&[(IS_EX, G2, &[S3, multicast])]),
            ],
            "reject_source_multicast",
        ),
        (
            "source 0.0.0.0",
            vec![
                v3_report(&[(TO_EX, G, &[Ipv4Addr::UNSPECIFIED])]),
                v3_report(&[(IS_IN, G2, &[Ipv4Addr::UNSPECIFIED])]),
            ],
            "reject_source_zero",
        ),
        (
            "source 255.255.255.255",
            vec![
                v3_report(&[(ALLOW, G, &[Ipv4Addr::BROADCAST])]),
                v3_report(&[(IS_EX, G2, &[Ipv4Addr::BROADCAST])]),
            ],
            "reject_source_broadcast",
        ),
        (
            "more sources than --max-sources-per-group 4",
            vec![
                v3_report(&[(ALLOW, G, &[S3, S4, S5])]),
                v3_report(&[(IS_IN, G2, &[S1, S2, S3, S4, S5])]),
            ],
            "reject_limit_sources",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, reports, counter) in &cases {
        let c0 = engine_counters(&sw);
        for r in reports {
            send(r);
        }
        let want = reports.len() as u64;
        let got = poll_until(WAIT, || {
            let d = moved(&c0, &engine_counters(&sw));
            (d.get(*counter).copied().unwrap_or(0) >= want).then_some(d)
        });
        let d = got.unwrap_or_else(|| moved(&c0, &engine_counters(&sw)));
        let rejects: BTreeMap<_, _> = d.iter().filter(|(k, _)| k.starts_with("reject_")).collect();
        if rejects.len() != 1 || d.get(*counter) != Some(&want) {
            wrong.push(format!(
                "{what}: expected {counter} += {want} and no other reject_*, got {d:?}"
            ));
        }
        let now = table(&sw);
        if now != before {
            wrong.push(format!(
                "{what}: the table changed from {before:#} to {now:#}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A bad record spoils only itself: the good record beside it applies.
    let c0 = engine_counters(&sw);
    send(&v3_report(&[
        (IS_EX, G3, &[]),
        (ALLOW, G, &[Ipv4Addr::UNSPECIFIED]),
    ]));
    wait_filter(&sw, G3, "p2", filter("exclude", &[]));
    let d = moved(&c0, &engine_counters(&sw));
    assert_eq!(d.get("reject_source_zero"), Some(&1), "{d:?}");
    assert_eq!(
        filter_of(&sw, G, "p2"),
        filter("include", &[(S1, false), (S2, false)])
    );
    assert_eq!(filter_of(&sw, G2, "p2"), None);
    // And the group's forwarding is what it was: S1, S2 reach h2, S3 not.
    let rx = SourceCounter::start(&lab, 2, G, UDP).unwrap();
    stream(&lab).check(
        "after the bad records",
        &[S1, S2, S3],
        &[("h2", &rx, &[S1, S2])],
    );
}
