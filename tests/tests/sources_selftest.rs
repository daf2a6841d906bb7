//! The Linux kernel's bridge IGMPv3 selftest
//! (tools/testing/selftests/net/forwarding/bridge_igmp.sh), ported to the
//! real `igmpsnoop` daemon: one lab per case, h1 the listener, h2 the
//! sender, as there. h1 sends the selftest's report vectors raw (the IGMP
//! bytes exactly as the script has them); each case then checks what the
//! selftest reads from `bridge -j -d mdb show` in `igmpsnoop groups --json`
//! (filter mode, source list, which sources are excluded) and `igmpsnoop
//! sources --json` (the (S,G) entries and their ports), and which sources
//! reach h1: h2 sends datagrams to 239.10.10.10 from each source address,
//! counted per source at h1's eth0 below its IP stack.
//!
//! Where the selftest and the RFC differ, these tests follow the RFC:
//! - mausezahn sends the reports to 224.0.0.1 with TTL 255 and no Router
//!   Alert; RFC 3376 §4 says TTL 1 with Router Alert, §4.2.14 destination
//!   224.0.0.22 for v3 reports: they are sent as a host sends them.
//! - The bridge, with its querier on, sends unregistered multicast to router
//!   ports only (which `v2reportleave` relies on after the leave); here that
//!   is `--flood-unregistered false`.
//! - Timers: the script changes them on the running bridge; the daemon takes
//!   them at start (a reload does not change query timers), so each case
//!   starts with the timers it needs (see `v3exc_timeout`).
//! - `v3inc_is_exclude_test` checks `"${X[@]}"` and `"${Y[@]}"`, which are
//!   locals of `v3exclude_prepare` and empty there, so it only checks
//!   192.0.2.100; here X = {.1, .2} and Y = {.20, .21} are checked as meant.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use igmpsnoop_tests::selftest::{
    WAIT, entries, expect_table, p1_entries, require_selftest, source_list, start_querier,
};
use igmpsnoop_tests::{
    IgmpSend, Lab, Receiver, SourceCounter, Stream, Switch, igmpsnoop_bin, mcast_tool_bin,
    poll_until,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 10, 10, 10);
const UDP: u16 = 4096;
/// Datagrams per source and check.
const N: u64 = 20;
const LISTENER: usize = 1;
const SENDER: usize = 2;

// The selftest's report vectors, byte for byte (checksums included).
/// IS_IN {192.0.2.1, .2, .3}
const IS_INC: &str =
    "22:00:9d:de:00:00:00:01:01:00:00:03:ef:0a:0a:0a:c0:00:02:01:c0:00:02:02:c0:00:02:03";
/// IS_IN {.10, .11, .12}
const IS_INC2: &str =
    "22:00:9d:c3:00:00:00:01:01:00:00:03:ef:0a:0a:0a:c0:00:02:0a:c0:00:02:0b:c0:00:02:0c";
/// IS_IN {.20, .30}
const IS_INC3: &str = "22:00:5f:b4:00:00:00:01:01:00:00:02:ef:0a:0a:0a:c0:00:02:14:c0:00:02:1e";
/// ALLOW {.10, .11, .12}
const ALLOW: &str =
    "22:00:99:c3:00:00:00:01:05:00:00:03:ef:0a:0a:0a:c0:00:02:0a:c0:00:02:0b:c0:00:02:0c";
/// ALLOW {.20, .30}
const ALLOW2: &str = "22:00:5b:b4:00:00:00:01:05:00:00:02:ef:0a:0a:0a:c0:00:02:14:c0:00:02:1e";
/// IS_EX {.1, .2, .20, .21}
const IS_EXC: &str = "22:00:da:b6:00:00:00:01:02:00:00:04:ef:0a:0a:0a:c0:00:02:01:c0:00:02:02:c0:00:02:14:c0:00:02:15";
/// IS_EX {.20, .30}
const IS_EXC2: &str = "22:00:5e:b4:00:00:00:01:02:00:00:02:ef:0a:0a:0a:c0:00:02:14:c0:00:02:1e";
/// TO_EX {.1, .20, .30}
const TO_EXC: &str =
    "22:00:9a:b1:00:00:00:01:04:00:00:03:ef:0a:0a:0a:c0:00:02:01:c0:00:02:14:c0:00:02:1e";
/// BLOCK {.1, .20, .30}
const BLOCK: &str =
    "22:00:98:b1:00:00:00:01:06:00:00:03:ef:0a:0a:0a:c0:00:02:01:c0:00:02:14:c0:00:02:1e";

/// 192.0.2.n, the selftest's source addresses.
fn s(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, n)
}

fn srcs(ns: &[u8]) -> Vec<Ipv4Addr> {
    ns.iter().map(|n| s(*n)).collect()
}

fn bytes(hex: &str) -> Vec<u8> {
    hex.split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect()
}

/// One case: a lab of two hosts, the daemon as IGMPv3 querier (the
/// selftest's bridge has mcast_querier 1, and without a querier no source
/// timer is ever lowered, RFC 3376 §6.6.3), and a per-source counter on
/// the listener.
struct Case {
    lab: Lab,
    sw: Switch,
    rx: SourceCounter,
}

impl Case {
    fn start(timers: &[&str]) -> Case {
        require_selftest(&[igmpsnoop_bin(), mcast_tool_bin()]);
        let lab = Lab::new(2).expect("lab");
        let sw = start_querier(&lab, timers);
        let rx = SourceCounter::start(&lab, LISTENER, G, UDP).expect("sniffer on h1");
        Case { lab, sw, rx }
    }

    /// h1 sends one of the selftest's vectors.
    fn report(&self, hex: &str) {
        IgmpSend::default()
            .send(&self.lab, LISTENER, &bytes(hex))
            .expect("sending a report");
    }

    /// Waits until h1's port shows `mode` with exactly `fwd` as running
    /// sources (a timer, not excluded) and `blocked` as excluded ones, and
    /// `igmpsnoop sources` the (S,G) entries that go with it: p1 for `fwd`,
    /// no port for `blocked`, in the fast path too (the daemon's count of
    /// installed source entries).
    fn expect_state(&self, what: &str, mode: &str, fwd: &[u8], blocked: &[u8]) {
        let (fwd, blocked) = (srcs(fwd), srcs(blocked));
        let want_entries = p1_entries(&fwd, &blocked);
        expect_table(&self.sw, what, G, mode, &fwd, &blocked, &want_entries);
    }

    /// h2 sends N datagrams from each source; h1 must get exactly those
    /// of `fwd`, none of `not`.
    fn expect_delivery(&self, what: &str, fwd: &[u8], not: &[u8]) {
        let all: Vec<Ipv4Addr> = srcs(fwd).into_iter().chain(srcs(not)).collect();
        let want = srcs(fwd);
        Stream {
            lab: &self.lab,
            from: SENDER,
            group: G,
            port: UDP,
            n: N,
        }
        .check(what, &all, &[("h1", &self.rx, &want)]);
    }

    /// The selftest's v3include_prepare: IS_IN {.1, .2, .3}.
    fn include_prepare(&self) {
        self.report(IS_INC);
        self.expect_state("include prepare (IS_IN)", "include", &[1, 2, 3], &[]);
    }

    /// v3exclude_prepare: include_prepare, then IS_EX {.1, .2, .20, .21}:
    /// EXCLUDE (X {.1, .2}, Y {.20, .21}), .3 deleted (RFC 3376 §6.4.1
    /// INCLUDE (A) IS_EX (B): EXCLUDE (A*B, B-A), Delete (A-B)).
    fn exclude_prepare(&self) {
        self.include_prepare();
        self.report(IS_EXC);
        self.expect_state("exclude prepare (IS_EX)", "exclude", &[1, 2], &[20, 21]);
    }
}

#[test]
fn v2reportleave() {
    // LMQT 2 × 200 ms for a quick leave; see the module comment for
    // --flood-unregistered false.
    let c = Case::start(&[
        "--last-member-interval",
        "200ms",
        "--flood-unregistered",
        "false",
    ]);
    c.lab.set_igmp_version(LISTENER, 2).unwrap();
    let mut host = Receiver::start(&c.lab, LISTENER, &[G], UDP).expect("kernel join");
    c.sw.wait_ports(G, &["p1"], WAIT);
    let row = c.sw.row(G, "p1").unwrap();
    assert_eq!(row["version"], 2, "{row}");
    // An IGMPv2 report is IS_EX {} (RFC 3376 §7.3.2): every source.
    assert_eq!(row["filter_mode"], "exclude", "{row}");
    assert_eq!(source_list(&row), BTreeMap::new(), "{row}");
    assert_eq!(entries(&c.sw, G), BTreeMap::new());
    c.expect_delivery("IGMPv2 report", &[1, 100], &[]);
    host.leave().unwrap();
    c.sw.wait_ports(G, &[], WAIT);
    c.expect_delivery("IGMPv2 leave", &[], &[1, 100]);
}

#[test]
fn v3include() {
    let c = Case::start(&[]);
    c.include_prepare();
    c.expect_delivery("is_include", &[1, 2, 3], &[100]);
}

#[test]
fn v3inc_allow() {
    let c = Case::start(&[]);
    c.include_prepare();
    c.report(ALLOW);
    // §6.4.2 INCLUDE (A) ALLOW (B) -> INCLUDE (A+B); (B)=GMI
    c.expect_state("include -> allow", "include", &[1, 2, 3, 10, 11, 12], &[]);
    c.expect_delivery("include -> allow", &[10, 11, 12], &[100]);
}

#[test]
fn v3inc_is_include() {
    let c = Case::start(&[]);
    c.include_prepare();
    c.report(IS_INC2);
    // §6.4.1 INCLUDE (A) IS_IN (B) -> INCLUDE (A+B); (B)=GMI
    c.expect_state(
        "include -> is_include",
        "include",
        &[1, 2, 3, 10, 11, 12],
        &[],
    );
    c.expect_delivery("include -> is_include", &[10, 11, 12], &[100]);
}

#[test]
fn v3inc_is_exclude() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.expect_delivery("include -> is_exclude", &[1, 2, 100], &[20, 21]);
}

#[test]
fn v3inc_to_exclude() {
    // LMQI 5 s as in the selftest: Q(G,{.1}) lowers .1 to LMQT = 10 s,
    // which is still running when it is checked.
    let c = Case::start(&["--last-member-interval", "5s"]);
    c.include_prepare();
    c.report(TO_EXC);
    // §6.4.2 INCLUDE (A) TO_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0;
    // Delete (A-B); Send Q(G,A*B): X {.1}, Y {.20, .30}; .2, .3 gone.
    c.expect_state("include -> to_exclude", "exclude", &[1], &[20, 30]);
    c.expect_delivery("include -> to_exclude", &[1, 100], &[20, 30]);
}

#[test]
fn v3exc_allow() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.report(ALLOW2);
    // §6.4.2 EXCLUDE (X,Y) ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=GMI
    c.expect_state("exclude -> allow", "exclude", &[1, 2, 20, 30], &[21]);
    c.expect_delivery("exclude -> allow", &[1, 2, 20, 30, 100], &[21]);
}

#[test]
fn v3exc_is_include() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.report(IS_INC3);
    // §6.4.1 EXCLUDE (X,Y) IS_IN (A) -> EXCLUDE (X+A, Y-A); (A)=GMI
    c.expect_state("exclude -> is_include", "exclude", &[1, 2, 20, 30], &[21]);
    c.expect_delivery("exclude -> is_include", &[1, 2, 20, 30, 100], &[21]);
}

#[test]
fn v3exc_is_exclude() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.report(IS_EXC2);
    // §6.4.1 EXCLUDE (X,Y) IS_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=GMI;
    // Delete (X-A); Delete (Y-A): X {.30}, Y {.20}. The deleted .1 and .2
    // follow the EXCLUDE mode again: forwarded (the selftest does not look).
    c.expect_state("exclude -> is_exclude", "exclude", &[30], &[20]);
    c.expect_delivery("exclude -> is_exclude", &[30, 100, 1, 2], &[20]);
}

#[test]
fn v3exc_to_exclude() {
    let c = Case::start(&["--last-member-interval", "5s"]);
    c.exclude_prepare();
    c.report(TO_EXC);
    // §6.4.2 EXCLUDE (X,Y) TO_EX (A) -> EXCLUDE (A-Y, Y*A);
    // (A-X-Y)=Group Timer; Delete (X-A); Delete (Y-A); Send Q(G,A-Y):
    // X {.1, .30} (lowered to LMQT = 10 s), Y {.20}.
    c.expect_state("exclude -> to_exclude", "exclude", &[1, 30], &[20]);
    c.expect_delivery("exclude -> to_exclude", &[1, 30, 100], &[20]);
}

#[test]
fn v3inc_block() {
    // LMQT 2 × 500 ms: .1's lowered timer runs out soon after the BLOCK.
    let c = Case::start(&["--last-member-interval", "500ms"]);
    c.include_prepare();
    let t0 = Instant::now();
    c.report(BLOCK);
    // §6.4.2 INCLUDE (A) BLOCK (B) -> INCLUDE (A); Send Q(G,A*B): .1 is
    // lowered to LMQT and, nobody answering, deleted (§6.3).
    c.expect_state("include -> block", "include", &[2, 3], &[]);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        ".1 deleted {:?} after the BLOCK, before LMQT (1 s)",
        t0.elapsed()
    );
    c.expect_delivery("include -> block", &[2, 3], &[1, 100]);
}

#[test]
fn v3exc_block() {
    let c = Case::start(&["--last-member-interval", "5s"]);
    c.exclude_prepare();
    c.report(BLOCK);
    // §6.4.2 EXCLUDE (X,Y) BLOCK (A) -> EXCLUDE (X+(A-Y), Y);
    // (A-X-Y)=Group Timer; Send Q(G,A-Y): X {.1, .2, .30}, Y {.20, .21}.
    c.expect_state("exclude -> block", "exclude", &[1, 2, 30], &[20, 21]);
    c.expect_delivery("exclude -> block", &[1, 2, 30, 100], &[20, 21]);
}

#[test]
fn v3exc_timeout() {
    // The selftest prepares with GMI 3 s, then raises the query timers so
    // that the ALLOW's sources get GMI 15 s. The daemon's timers are fixed
    // at start, so one GMI (2 × 3 s + 2 s = 8 s) serves both, and the
    // ALLOW goes 4 s into the group timer: its sources run until 4 s after
    // the group timer has run out.
    let c = Case::start(&["--query-interval", "3s", "--query-response-interval", "2s"]);
    c.include_prepare();
    // Before the IS_EX: its group timer (GMI) starts after this.
    let t0 = Instant::now();
    c.report(IS_EXC);
    c.expect_state("exclude prepare (IS_EX)", "exclude", &[1, 2], &[20, 21]);
    std::thread::sleep(Duration::from_secs(4).saturating_sub(t0.elapsed()));
    c.report(ALLOW2);
    // §6.4.2 EXCLUDE (X,Y) ALLOW (A) -> EXCLUDE (X+A, Y-A); then the group
    // timer runs out (§6.5): INCLUDE with the sources whose timers run,
    // {.20, .30}; .1 and .2 (their timers ran out with it) and .21 are gone.
    let ok = poll_until(Duration::from_secs(12), || {
        (c.sw.row(G, "p1")?["filter_mode"] == "include").then_some(())
    });
    assert!(
        ok.is_some(),
        "still EXCLUDE 12 s after the ALLOW: {:?}",
        c.sw.row(G, "p1")
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(7500),
        "INCLUDE {:?} after the IS_EX, before GMI (8 s)",
        t0.elapsed()
    );
    c.expect_state("exclude timeout", "include", &[20, 30], &[]);
    c.expect_delivery("exclude timeout", &[20, 30], &[1, 2, 21, 100]);
}
