//! MLD end to end: the real `igmpsnoop` daemon in netns labs with IPv6 on,
//! kernel hosts joining through the socket API at MLDv2 (the default) and
//! MLDv1 (`force_mld_version=1`), scapy for another querier, tshark on the
//! wire.
//!
//! What is checked, as a user would: `igmpsnoop groups --json` (rows of
//! family "ipv6"), which hosts received which datagrams (members at their
//! socket, non-members at eth0 rx_packets, per source at an AF_PACKET
//! sniffer below the host's own source filter), leaves within the
//! last-listener query time and fast leave, reports reaching router ports
//! only, querier election against a lower link-local address and the
//! return after the other-querier-present interval, our queries decoded by
//! tshark without expert info, and neighbour discovery never depending on
//! the switch (at start, in steady state, across kill -9 and restart, after
//! a host stopped reporting its solicited-node group), on lab veths and at
//! kernel defaults.
//!
//! Short timers unless a case is about the defaults: `--query-interval 2s
//! --query-response-interval 1s --last-member-interval 200ms` (the same
//! knobs drive MLD: MALI = 2×2+1 = 5 s, OQPI = 2×2+0.5 = 4.5 s, LLQT =
//! 2×200 ms).

use std::collections::BTreeSet;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use igmpsnoop_tests::{
    Capture, Lab, Launcher, Receiver, ScapyHost, SourceCounter, SourceFilter, Stream, Switch,
    field, field_str, igmpsnoop_bin, mcast_tool_bin, poll_until, require_root_and_tools,
    scapy_python, send,
};
use serde_json::Value;

const G1: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x1234);
const G2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x5678);
/// Sources in the lab's fd77::/64, so the receivers' stacks take them.
const S1: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x101);
const S2: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x102);
const UDP: u16 = 5000;
/// Datagrams per burst.
const N: u64 = 50;
/// Frames a host may see on eth0 that are not the test's traffic (queries,
/// neighbour discovery) while a burst is sent: far below N.
const NOISE: u64 = 10;
/// Our MLD querier's address: a link-local address higher than any lab
/// host's (fe80::ff:fe00:i), so a host's query wins the election.
const OUR_MLD: &str = "fe80::ffff:ffff:ffff:fffe";
const SHORT: &[&str] = &[
    "--query-interval",
    "2s",
    "--query-response-interval",
    "1s",
    "--last-member-interval",
    "200ms",
];
/// MLD message types (RFC 2710 §3, RFC 3810 §5).
const QUERY: &str = "icmpv6.type == 130";
const REPORTS: &str = "icmpv6.type == 131 || icmpv6.type == 132 || icmpv6.type == 143";

fn require() {
    require_root_and_tools(&["tcpdump", "tshark", "sysctl", "nft"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

/// An IPv6 lab whose hosts run MLD at `version` (2: the kernel's default),
/// their link-local addresses usable.
fn lab(hosts: usize, version: u8) -> Lab {
    let lab = Lab::ipv6(hosts).unwrap();
    set_mld_version(&lab, version);
    wait_dad(&lab);
    lab
}

/// Waits until no host's address is tentative: a link-local address is
/// usable only once duplicate address detection is done (a second or so
/// after the lab is built; the lab's fd77::i skip it).
fn wait_dad(lab: &Lab) {
    let tentative = |h: usize| {
        lab.exec(
            &lab.host_ns(h),
            &["ip", "-6", "addr", "show", "dev", "eth0", "tentative"],
        )
        .unwrap()
    };
    poll_until(Duration::from_secs(10), || {
        lab.hosts()
            .all(|h| tentative(h).trim().is_empty())
            .then_some(())
    })
    .unwrap_or_else(|| panic!("h1 addresses still tentative: {}", tentative(1)));
}

fn set_mld_version(lab: &Lab, version: u8) {
    let v = if version == 2 { 0 } else { version };
    for h in lab.hosts() {
        lab.set_mld_version(h, v).unwrap();
    }
}

/// Every port, IGMP and MLD querier (ours loses any MLD election), `timers`
/// and `extra`.
fn args(lab: &Lab, timers: &[&str], extra: &[&str]) -> Vec<String> {
    let mut args = lab.port_args();
    let ours = [
        "--querier",
        "--querier-address",
        "10.77.0.254",
        "--mld-querier-address",
        OUR_MLD,
    ];
    args.extend(
        ours.iter()
            .chain(timers)
            .chain(extra)
            .map(|s| s.to_string()),
    );
    args
}

fn start(lab: &Lab, timers: &[&str], extra: &[&str]) -> Switch {
    let args = args(lab, timers, extra);
    Switch::start(lab, &strs(&args)).expect("igmpsnoop run")
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn rx(lab: &Lab, host: usize) -> u64 {
    lab.host_stats(host).unwrap().rx_packets
}

/// The `groups --json` rows of `g`, which must all be of family "ipv6".
fn rows(sw: &Switch, g: Ipv6Addr) -> Vec<Value> {
    let rows: Vec<Value> = sw
        .groups_json()
        .unwrap()
        .into_iter()
        .filter(|r| r["group"] == g.to_string().as_str())
        .collect();
    for r in &rows {
        assert_eq!(r["family"], "ipv6", "{r}");
    }
    rows
}

fn row(sw: &Switch, g: Ipv6Addr, port: &str) -> Value {
    rows(sw, g)
        .into_iter()
        .find(|r| r["port"] == port)
        .unwrap_or_else(|| panic!("{g} not listed on {port}: {:#?}", sw.groups_json()))
}

/// An engine counter from `igmpsnoop stats --json`.
fn counter(sw: &Switch, name: &str) -> u64 {
    let s = sw.json(&["stats"]).unwrap();
    s["engine"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no engine counter {name}: {s}"))
}

/// The untagged MLD row of `igmpsnoop querier --json`.
fn mld_querier(sw: &Switch) -> Value {
    let q = sw.json(&["querier"]).unwrap();
    q.as_array()
        .and_then(|a| a.iter().find(|r| r["vlan"] == 0 && r["family"] == "ipv6"))
        .cloned()
        .unwrap_or_else(|| panic!("no ipv6 vlan 0 querier row: {q}"))
}

/// Sends N datagrams to `g` from host `from`; returns each of `hosts`' eth0
/// rx delta once every host in `expect` has at least N (or 5 s passed).
fn burst(lab: &Lab, from: usize, g: Ipv6Addr, hosts: &[usize], expect: &[usize]) -> Vec<u64> {
    let base: Vec<u64> = hosts.iter().map(|&h| rx(lab, h)).collect();
    send(lab, from, g, UDP, N).unwrap();
    poll_until(Duration::from_secs(5), || {
        hosts
            .iter()
            .zip(&base)
            .filter(|(h, _)| expect.contains(h))
            .all(|(&h, &b)| rx(lab, h) - b >= N)
            .then_some(())
    });
    // Frames in flight to hosts that should get none arrive within this.
    std::thread::sleep(Duration::from_millis(150));
    hosts
        .iter()
        .zip(&base)
        .map(|(&h, &b)| rx(lab, h) - b)
        .collect()
}

/// Hosts in `expect` got at least N frames, the others fewer than NOISE.
fn assert_delivery(what: &str, hosts: &[usize], expect: &[usize], got: &[u64]) {
    for (h, d) in hosts.iter().zip(got) {
        if expect.contains(h) {
            assert!(*d >= N, "{what}: h{h} got {d} of {N} frames, expected all");
        } else {
            assert!(
                *d < NOISE,
                "{what}: h{h} got {d} of {N} frames, expected none"
            );
        }
    }
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn epoch(frame: &Value) -> f64 {
    field_str(frame, "frame.time_epoch")
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no frame.time_epoch in {frame}"))
}

fn src(frame: &Value) -> String {
    field_str(frame, "ipv6.src").unwrap_or_default()
}

// ---------------------------------------------------------------------------
// 1. Kernel hosts join; members get every datagram, others none; a leave
//    ends delivery within the last-listener query time (RFC 3810 §7.4.2,
//    RFC 2710 §4).

/// h2 and h3 join G1, h4 joins G2; h1 sends. Then h2 leaves. Returns the
/// time from h2's leave to p2 leaving the table.
fn join_deliver_leave(lab: &Lab, sw: &Switch, version: u8) -> Duration {
    let mut r2 = Receiver::start(lab, 2, &[G1], UDP).unwrap();
    let r3 = Receiver::start(lab, 3, &[G1], UDP).unwrap();
    let r4 = Receiver::start(lab, 4, &[G2], UDP).unwrap();
    sw.wait_ports(G1, &["p2", "p3"], Duration::from_secs(5));
    sw.wait_ports(G2, &["p4"], Duration::from_secs(5));
    for (g, p, h) in [(G1, "p2", 2), (G1, "p3", 3), (G2, "p4", 4)] {
        let r = row(sw, g, p);
        assert_eq!(r["version"], version, "MLD version: {r}");
        assert_eq!(r["hosts"][0], lab.host_mac(h), "{r}");
    }
    let hosts = [2, 3, 4];
    let got = burst(lab, 1, G1, &hosts, &[2, 3]);
    assert_delivery("G1 to h2, h3", &hosts, &[2, 3], &got);
    let got = burst(lab, 1, G2, &hosts, &[4]);
    assert_delivery("G2 to h4", &hosts, &[4], &got);

    r2.leave().unwrap();
    let left = Instant::now();
    sw.wait_ports(G1, &["p3"], Duration::from_secs(6));
    let took = left.elapsed();
    let got = burst(lab, 1, G1, &hosts, &[3]);
    assert_delivery("G1 after h2 left", &hosts, &[3], &got);

    let r2 = r2.finish_report().unwrap();
    let (r3, r4) = (r3.finish_report().unwrap(), r4.finish_report().unwrap());
    assert_eq!(r2.count(G1), N, "h2's socket: {r2:?}");
    assert_eq!(r2.after_leave[&G1.to_string()], 0, "{r2:?}");
    assert_eq!(r3.count(G1), 2 * N, "h3's socket: {r3:?}");
    assert_eq!((r4.count(G2), r4.total), (N, N), "h4's socket: {r4:?}");
    took
}

/// MLDv2 hosts with every timer at its default: the last-listener query
/// time is 2 × 1 s.
#[test]
fn mldv2_hosts_join_get_exactly_their_groups_and_leave_within_llqt() {
    require();
    let lab = lab(4, 2);
    let sw = start(&lab, &[], &[]);
    let took = join_deliver_leave(&lab, &sw, 2);
    eprintln!("MLDv2 leave: p2 removed {took:?} after the done (LLQT 2 s)");
    assert!(
        took >= Duration::from_millis(1500),
        "removed after {took:?}, before the last-listener query time (2 s)"
    );
    assert!(took <= Duration::from_secs(4), "removed after {took:?}");
}

#[test]
fn mldv1_hosts_join_get_exactly_their_groups_and_leave_within_llqt() {
    require();
    let lab = lab(4, 1);
    let sw = start(&lab, SHORT, &[]);
    let took = join_deliver_leave(&lab, &sw, 1);
    eprintln!("MLDv1 leave: p2 removed {took:?} after the done (LLQT 400 ms)");
    assert!(
        took >= Duration::from_millis(250),
        "removed after {took:?}, before the last-listener query time (400 ms)"
    );
    assert!(took <= Duration::from_secs(2), "removed after {took:?}");
    assert!(counter(&sw, "mld_rx_done") >= 1, "no MLDv1 done counted");
}

/// `--fast-leave p2`: a done removes p2 at once; p3 (not fast leave) waits
/// for the last-listener queries (default timers: 2 s).
#[test]
fn fast_leave_port_is_removed_at_once() {
    require();
    let lab = lab(3, 2);
    let sw = start(&lab, &[], &["--fast-leave", "p2"]);
    let mut r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    let mut r3 = Receiver::start(&lab, 3, &[G1], UDP).unwrap();
    sw.wait_ports(G1, &["p2", "p3"], Duration::from_secs(5));
    r2.leave().unwrap();
    let t0 = Instant::now();
    sw.wait_ports(G1, &["p3"], Duration::from_secs(1));
    let fast = t0.elapsed();
    let got = burst(&lab, 1, G1, &[2, 3], &[3]);
    assert_delivery("G1 after h2's fast leave", &[2, 3], &[3], &got);
    r3.leave().unwrap();
    let t0 = Instant::now();
    sw.wait_ports(G1, &[], Duration::from_secs(5));
    let slow = t0.elapsed();
    eprintln!("fast leave {fast:?}; normal leave {slow:?}");
    assert!(
        slow >= Duration::from_millis(1500),
        "p3 is no fast-leave port, yet removed after {slow:?}"
    );
}

// ---------------------------------------------------------------------------
// 2. Source-specific joins (RFC 3810 §7.4: INCLUDE and EXCLUDE filters),
//    counted per source below each host's IP stack.

#[test]
fn source_specific_joins_get_exactly_their_sources() {
    require();
    let lab = lab(4, 2);
    let sw = start(&lab, SHORT, &[]);
    let counters: Vec<SourceCounter> = [2, 3, 4]
        .iter()
        .map(|&h| SourceCounter::start(&lab, h, G1, UDP).expect("sniffer"))
        .collect();
    let h2 =
        Receiver::start_filtered(&lab, 2, &[G1], UDP, &SourceFilter::Include(vec![S1])).unwrap();
    let h3 =
        Receiver::start_filtered(&lab, 3, &[G1], UDP, &SourceFilter::Exclude(vec![S1])).unwrap();
    sw.wait_ports(G1, &["p2", "p3"], Duration::from_secs(5));
    let (r2, r3) = (row(&sw, G1, "p2"), row(&sw, G1, "p3"));
    assert_eq!(r2["filter_mode"], "include", "{r2}");
    assert_eq!(r2["sources"][0]["address"], S1.to_string(), "{r2}");
    assert_eq!(r3["filter_mode"], "exclude", "{r3}");
    assert_eq!(r3["sources"][0]["address"], S1.to_string(), "{r3}");
    assert_eq!(r3["sources"][0]["excluded"], true, "{r3}");

    let stream = Stream {
        lab: &lab,
        from: 1,
        group: G1,
        port: UDP,
        n: N,
    };
    stream.check(
        "h2 INCLUDE {S1}, h3 EXCLUDE {S1}, h4 not joined",
        &[S1, S2],
        &[
            ("h2", &counters[0], &[S1]),
            ("h3", &counters[1], &[S2]),
            ("h4", &counters[2], &[]),
        ],
    );
    let (h2, h3) = (h2.finish_report().unwrap(), h3.finish_report().unwrap());
    assert_eq!(h2.by_tag[&G1.to_string()].get(&S1.to_string()), Some(&N));
    assert_eq!(h3.by_tag[&G1.to_string()].get(&S2.to_string()), Some(&N));
    assert_eq!((h2.total, h3.total), (N, N), "sockets: {h2:?} {h3:?}");
}

// ---------------------------------------------------------------------------
// 3. Reports and dones go to router ports only (RFC 4541 §2.1.1 (1), §3).

#[test]
fn reports_and_dones_reach_the_router_port_only() {
    require();
    let lab = lab(4, 2);
    for h in [2, 3] {
        lab.set_mld_version(h, 1).unwrap();
    }
    let mut caps: Vec<Capture> = lab
        .hosts()
        .map(|h| Capture::start(&lab, &lab.host_ns(h), "eth0", "ip6").unwrap())
        .collect();
    let sw = start(&lab, SHORT, &["--router-port", "p4"]);
    // h1 (v2) joins G2; h2 and h3 (v1) join G1 with reports sent to G1
    // itself: a member must still not get another member's report.
    let r1 = Receiver::start(&lab, 1, &[G2], UDP).unwrap();
    let mut r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G1], UDP).unwrap();
    sw.wait_ports(G1, &["p2", "p3"], Duration::from_secs(5));
    sw.wait_ports(G2, &["p1"], Duration::from_secs(5));
    r2.leave().unwrap();
    sw.wait_ports(G1, &["p3"], Duration::from_secs(4));

    let ll = |h: usize| lab.host_link_local(h);
    let router = &caps[3];
    for (what, filter) in [
        (
            "h1's MLDv2 report",
            format!("icmpv6.type == 143 && ipv6.src == {}", ll(1)),
        ),
        (
            "h2's MLDv1 report",
            format!("icmpv6.type == 131 && ipv6.src == {}", ll(2)),
        ),
        (
            "h3's MLDv1 report",
            format!("icmpv6.type == 131 && ipv6.src == {}", ll(3)),
        ),
        (
            "h2's MLDv1 done",
            format!("icmpv6.type == 132 && ipv6.src == {}", ll(2)),
        ),
    ] {
        router
            .wait_for(&filter, 1, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("router port host h4 never saw {what}: {e:#}"));
    }
    let general = format!("{QUERY} && ipv6.src == {OUR_MLD} && ipv6.dst == ff02::1");
    for (i, c) in caps.iter().enumerate() {
        c.wait_for(&general, 1, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("h{} never got our general query: {e:#}", i + 1));
    }
    let hosts: BTreeSet<String> = lab.hosts().map(|h| ll(h).to_string()).collect();
    for h in 1..=3 {
        let c = &mut caps[h - 1];
        c.stop().unwrap();
        let foreign: Vec<String> = c
            .decode(Some(REPORTS))
            .unwrap()
            .iter()
            .filter(|f| src(f) != ll(h).to_string() && hosts.contains(&src(f)))
            .map(|f| {
                let t = field_str(f, "icmpv6.type").unwrap_or_default();
                format!("type {t} from {}", src(f))
            })
            .collect();
        assert!(
            foreign.is_empty(),
            "non-router host h{h} received other hosts' MLD reports/dones: {foreign:?}"
        );
    }
    drop((r1, r2, r3));
}

// ---------------------------------------------------------------------------
// 4. Querier election: lowest address wins (RFC 3810 §7.6.2); we resume
//    after the other querier present interval (§9.5).

/// Starts, in scapy host `s`, MLDv2 general queries from the host's own
/// link-local address every 0.5 s (QRV 2, QQIC 2 s, max response 1 s:
/// our timers).
fn start_other_querier(s: &mut ScapyHost) {
    s.must(
        "from scapy.layers.inet6 import *\n\
         LL = [a for (a, sc, ifc) in in6_getifaddr() if ifc == IFACE and sc == IPV6_ADDR_LINKLOCAL][0]\n\
         QUERY = Ether(dst='33:33:00:00:00:01')/IPv6(src=LL, dst='ff02::1', hlim=1)/\
         IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLQuery2(mrd=1000, QRV=2, QQIC=2)\n\
         STOP = threading.Event()\n\
         def _q():\n    while not STOP.is_set():\n        sendp(QUERY, iface=IFACE, verbose=False)\n        STOP.wait(0.5)\n\
         T = threading.Thread(target=_q, daemon=True)\nT.start()",
    );
}

#[test]
fn mld_querier_yields_to_a_lower_address_and_resumes_after_oqpi() {
    require();
    assert!(scapy_python().is_file(), "no scapy at {:?}", scapy_python());
    let lab = lab(4, 2);
    let mut s = ScapyHost::start(&lab, 4).unwrap();
    let cap = Capture::start(&lab, &lab.host_ns(1), "eth0", "ip6").unwrap();
    let sw = start(&lab, SHORT, &[]);
    let ours = format!("{QUERY} && ipv6.src == {OUR_MLD}");
    cap.wait_for(&ours, 1, Duration::from_secs(5)).unwrap();
    assert_eq!(mld_querier(&sw)["state"], "querier");
    assert_eq!(mld_querier(&sw)["our_address"], OUR_MLD);

    let other = lab.host_link_local(4).to_string();
    start_other_querier(&mut s);
    let q = poll_until(Duration::from_secs(3), || {
        let q = mld_querier(&sw);
        (q["state"] == "non-querier").then_some(q)
    })
    .unwrap_or_else(|| panic!("still querier 3 s after a lower one: {}", mld_querier(&sw)));
    let yielded = now_epoch();
    assert_eq!(q["querier_address"], other.as_str(), "{q}");
    // IGMP is another election: still ours.
    let v4 = sw.json(&["querier"]).unwrap();
    let v4 = v4
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["family"] == "ipv4");
    assert_eq!(v4.unwrap()["state"], "querier", "{v4:?}");
    // Two of our query intervals with the other querier present.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(mld_querier(&sw)["state"], "non-querier");
    s.must("STOP.set()\nT.join()");

    poll_until(Duration::from_secs(10), || {
        (mld_querier(&sw)["state"] == "querier").then_some(())
    })
    .unwrap_or_else(|| panic!("never resumed: {}", mld_querier(&sw)));
    let general = format!("{QUERY} && ipv6.dst == ff02::1");
    let (last_other, first_ours, ours_while_other) = poll_until(Duration::from_secs(5), || {
        let frames = cap.decode(Some(&general)).ok()?;
        let times = |who: String| frames.iter().filter(move |f| src(f) == who).map(epoch);
        let last_other = times(other.clone()).fold(f64::NAN, f64::max);
        let first_ours = times(OUR_MLD.to_string())
            .filter(|t| *t > last_other)
            .fold(f64::NAN, f64::min);
        let during = times(OUR_MLD.to_string())
            .filter(|t| *t > yielded + 0.05 && *t < last_other)
            .count();
        (!first_ours.is_nan()).then_some((last_other, first_ours, during))
    })
    .expect("no general query of ours after the other querier went silent");
    assert!(
        !last_other.is_nan(),
        "the other querier's queries never reached h1"
    );
    assert_eq!(
        ours_while_other, 0,
        "we sent {ours_while_other} general queries while a lower querier was present"
    );
    let resume = first_ours - last_other;
    let oqpi = 4.5;
    eprintln!("resumed {resume:.3} s after the other querier's last query (OQPI {oqpi} s)");
    assert!(
        resume >= oqpi - 0.3,
        "resumed after {resume:.3} s, before OQPI"
    );
    assert!(
        resume <= oqpi + 1.5,
        "resumed after {resume:.3} s, long after OQPI"
    );
}

// ---------------------------------------------------------------------------
// 5. What we send decodes cleanly: MLDv2 and MLDv1 general and
//    multicast-address-specific queries, from our link-local address, hop
//    limit 1, Router Alert (RFC 3810 §5, RFC 2710 §3), to ff02::1 or the
//    address, at its 33:33 MAC (RFC 2464 §7).

fn group_mac(dst: &str) -> String {
    let o = dst.parse::<Ipv6Addr>().unwrap().octets();
    format!(
        "33:33:{:02x}:{:02x}:{:02x}:{:02x}",
        o[12], o[13], o[14], o[15]
    )
}

fn check_query(f: &Value, what: &str, version: u8) {
    let get = |name: &str| field_str(f, name).unwrap_or_else(|| panic!("{what}: no {name}: {f}"));
    assert!(
        field(f, "_ws.expert").is_none(),
        "{what}: tshark expert info: {f}"
    );
    assert!(
        field(f, "_ws.malformed").is_none(),
        "{what}: malformed: {f}"
    );
    assert_eq!(get("icmpv6.checksum.status"), "1", "{what}: checksum: {f}");
    assert_eq!(get("ipv6.src"), OUR_MLD, "{what}: {f}");
    assert_eq!(get("ipv6.hlim"), "1", "{what}: hop limit: {f}");
    assert_eq!(
        get("ipv6.nxt"),
        "0",
        "{what}: not behind a hop-by-hop header: {f}"
    );
    assert!(
        field(f, "ipv6.opt.router_alert").is_some(),
        "{what}: no Router Alert: {f}"
    );
    let dst = get("ipv6.dst");
    assert_eq!(get("eth.dst"), group_mac(&dst), "{what}: MAC of {dst}: {f}");
    let maddr = get("icmpv6.mld.multicast_address");
    let want = if maddr == "::" {
        "ff02::1".to_string()
    } else {
        maddr
    };
    assert_eq!(dst, want, "{what}: destination: {f}");
    let v2 = field(f, "icmpv6.mld.flag.qrv").is_some();
    assert_eq!(v2, version == 2, "{what}: MLDv{version}? {f}");
}

fn our_queries_decode_cleanly(version: u8) {
    require();
    let lab = lab(3, version);
    let caps: Vec<Capture> = lab
        .hosts()
        .map(|h| Capture::start(&lab, &lab.host_ns(h), "eth0", "ip6").unwrap())
        .collect();
    let v = version.to_string();
    let sw = start(&lab, SHORT, &["--mld-version", &v]);
    let mut r1 = Receiver::start(&lab, 1, &[G1], UDP).unwrap();
    let mut r2 = Receiver::start(&lab, 2, &[G2], UDP).unwrap();
    sw.wait_ports(G1, &["p1"], Duration::from_secs(5));
    sw.wait_ports(G2, &["p2"], Duration::from_secs(5));
    r1.leave().unwrap();
    r2.leave().unwrap();
    sw.wait_ports(G1, &[], Duration::from_secs(4));
    sw.wait_ports(G2, &[], Duration::from_secs(4));
    let ours = format!("{QUERY} && ipv6.src == {OUR_MLD}");
    for (i, c) in caps.iter().enumerate() {
        c.wait_for(
            &format!("{ours} && ipv6.dst == ff02::1"),
            2,
            Duration::from_secs(5),
        )
        .unwrap_or_else(|e| panic!("h{}: general queries: {e:#}", i + 1));
    }
    for (i, g) in [(0, G1), (1, G2)] {
        caps[i]
            .wait_for(
                &format!("{ours} && ipv6.dst == {g}"),
                1,
                Duration::from_secs(3),
            )
            .unwrap_or_else(|e| panic!("h{}: address-specific query: {e:#}", i + 1));
    }
    let mut checked = (0, 0);
    for (i, mut c) in caps.into_iter().enumerate() {
        c.stop().unwrap();
        for f in c.decode(Some(&ours)).unwrap() {
            let dst = field_str(&f, "ipv6.dst").unwrap_or_default();
            check_query(&f, &format!("h{} query to {dst}", i + 1), version);
            if dst == "ff02::1" {
                checked.0 += 1;
            } else {
                checked.1 += 1;
            }
        }
    }
    eprintln!(
        "MLDv{version}: {} general, {} address-specific queries decoded",
        checked.0, checked.1
    );
    assert!(
        checked.0 >= 6 && checked.1 >= 2,
        "too few queries: {checked:?}"
    );
}

#[test]
fn our_mldv2_queries_decode_cleanly() {
    our_queries_decode_cleanly(2);
}

#[test]
fn our_mldv1_queries_decode_cleanly() {
    our_queries_decode_cleanly(1);
}

// ---------------------------------------------------------------------------
// 6. Neighbour discovery never waits for the switch: ff02::/16 is flooded
//    (RFC 4541 §3), at start, in steady state, across kill -9 and restart,
//    and after a host stopped reporting its solicited-node group.

/// Forgets h1's and h2's neighbours, then pings h2 from h1 at its
/// global and link-local addresses (one try each, 1 s): each needs a
/// neighbour solicitation to h2's solicited-node group first.
fn ping_fresh(lab: &Lab, when: &str) {
    for h in [1, 2] {
        lab.exec(
            &lab.host_ns(h),
            &["ip", "-6", "neigh", "flush", "dev", "eth0"],
        )
        .unwrap();
    }
    for dst in [lab.host_ip6(2), lab.host_link_local(2)] {
        lab.ping(1, dst, 1)
            .unwrap_or_else(|e| panic!("{when}: ping6 h1 -> {dst}: {e:#}"));
    }
}

fn ping6_never_breaks(lab: &Lab) {
    let socket = lab.scratch_file("sw").with_extension("sock");
    let args = args(lab, SHORT, &["--flood-unregistered", "false"]);
    let mut sw = Switch::start_at(lab, &socket, &strs(&args)).unwrap();
    ping_fresh(lab, "within a second of the start");
    std::thread::sleep(Duration::from_secs(3));
    ping_fresh(lab, "steady state");

    sw.kill9().unwrap();
    ping_fresh(lab, "daemon dead (kill -9)");
    let sw = Switch::start_with(lab, &socket, &strs(&args), Launcher::Nsenter).unwrap();
    ping_fresh(lab, "right after the restart");

    // h2 stops sending MLD reports (nftables drops them on their way out):
    // its solicited-node membership would expire after MALI (5 s), were
    // ff02::/16 snooped.
    lab.sh(
        &lab.host_ns(2),
        "nft add table ip6 mute && \
         nft add chain ip6 mute out '{ type filter hook output priority 0; }' && \
         nft add rule ip6 mute out icmpv6 type '{ mld-listener-report, mld2-listener-report }' counter drop",
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(7));
    let muted = lab
        .exec(&lab.host_ns(2), &["nft", "list", "table", "ip6", "mute"])
        .unwrap();
    assert!(
        !muted.contains("packets 0 "),
        "h2 sent no report to drop: {muted}"
    );
    ping_fresh(lab, "after h2's solicited-node membership expired");
    let listed: Vec<Value> = sw
        .groups_json()
        .unwrap()
        .into_iter()
        .filter(|r| r["group"].as_str().is_some_and(|g| g.starts_with("ff02:")))
        .collect();
    assert!(listed.is_empty(), "ff02::/16 snooped: {listed:?}");
    assert!(
        counter(&sw, "mld_rx_link_local_report") > 0,
        "no solicited-node report counted: the hosts' MLD never reached us"
    );
}

#[test]
fn neighbour_discovery_never_breaks() {
    require();
    ping6_never_breaks(&lab(3, 2));
}

#[test]
fn neighbour_discovery_never_breaks_at_kernel_defaults() {
    require();
    let lab = Lab::ipv6_at_kernel_defaults(3).unwrap();
    wait_dad(&lab);
    ping6_never_breaks(&lab);
}

// ---------------------------------------------------------------------------
// 7. IPv6 forwarding outlives the daemon: kill -9 and a restart lose no
//    datagram; what was adopted is listed and held, then what nobody
//    reported again goes.

#[test]
fn mld_forwarding_survives_kill_9_and_the_restart_prunes_what_left() {
    require();
    let lab = lab(3, 2);
    let socket = lab.scratch_file("sw").with_extension("sock");
    let args = args(&lab, SHORT, &["--flood-unregistered", "false"]);
    let mut sw = Switch::start_at(&lab, &socket, &strs(&args)).unwrap();
    let r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    let mut r3 = Receiver::start(&lab, 3, &[G2], UDP).unwrap();
    sw.wait_ports(G1, &["p2"], Duration::from_secs(5));
    sw.wait_ports(G2, &["p3"], Duration::from_secs(5));

    // h1 streams G1 at ~1 kpps for ~3 s; the daemon dies half a second in;
    // h3 leaves G2 while nobody listens; a new daemon takes over.
    const STREAM: u64 = 3000;
    let sw = std::thread::scope(|s| {
        let sender = s.spawn(|| send(&lab, 1, G1, UDP, STREAM));
        std::thread::sleep(Duration::from_millis(500));
        sw.kill9().unwrap();
        r3.leave().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let sw = Switch::start_with(&lab, &socket, &strs(&args), Launcher::Nsenter).unwrap();
        let held = row(&sw, G2, "p3");
        assert_eq!(held["adopted"], true, "G2 on p3 while held: {held}");
        sender.join().unwrap().unwrap();
        sw
    });
    // The hold ends (startup queries, then a response interval); h2
    // reported G1 again, nobody G2.
    sw.wait_ports(G2, &[], Duration::from_secs(10));
    sw.wait_ports(G1, &["p2"], Duration::from_secs(1));
    assert_eq!(row(&sw, G1, "p2")["adopted"], false);
    let got = burst(&lab, 1, G2, &[2, 3], &[]);
    assert_delivery("G2 after the hold", &[2, 3], &[], &got);
    let got = burst(&lab, 1, G1, &[2, 3], &[2]);
    assert_delivery("G1 after the hold", &[2, 3], &[2], &got);
    let r2 = r2.finish_report().unwrap();
    eprintln!(
        "across kill -9 and restart: h2 got {} of {STREAM} + {N}",
        r2.count(G1)
    );
    assert_eq!(r2.count(G1), STREAM + N, "datagrams lost: {r2:?}");
    drop(r3);
}
