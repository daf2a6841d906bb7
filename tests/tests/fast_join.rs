//! Fast join end to end: the real daemon in a netns lab, kernel hosts
//! joining, and the XDP program applying (*,G) joins itself before the
//! daemon sees them (ebpf/xdp/src/fast_join.rs).
//!
//! A join that only the program could have applied is made with the daemon
//! stopped (SIGSTOP): whatever reaches the host then came through a group
//! entry the program wrote. After every test the fast path's maps, read
//! from the pinned maps themselves (devmaps included), must hold exactly
//! what `igmpsnoop groups`, `sources` and `routers` say: the engine stays
//! the one authority.
//!
//! Fast join needs a published port set holding exactly the new ports:
//! single-port sets always are (kept for it), others when some group uses
//! or recently used them. So the tests that join a second member first
//! make another group G0 use that set, as any busy switch would.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpsnoop_tests::xdp_membership::{
    N, NOISE, Stopped, UDP, WAIT, assert_engine_and_fast_path_agree, burst, engine_counter,
    port_counter, require, start, strings,
};
use igmpsnoop_tests::{IgmpSend, Lab, Receiver, SourceFilter, Switch, poll_until};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G0: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 100);
const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 101);
const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 2);
const G6: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 1);
const G6_0: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 0x100);
const G6_2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 2);

/// G0 on {p2, p3}, so that the set {p2, p3} is published; G on {p2}.
fn g0_and_g_on_p2(lab: &Lab, sw: &Switch) -> Vec<Receiver> {
    g0_and_g_on_p2_of(lab, sw, G0, G)
}

fn g0_and_g_on_p2_of<A: Into<IpAddr> + Copy + std::fmt::Display>(
    lab: &Lab,
    sw: &Switch,
    g0: A,
    g: A,
) -> Vec<Receiver> {
    let r = vec![
        Receiver::start(lab, 2, &[g0, g], UDP).unwrap(),
        Receiver::start(lab, 3, &[g0], UDP).unwrap(),
    ];
    sw.wait_ports(g0, &["p2", "p3"], WAIT);
    sw.wait_ports(g, &["p2"], WAIT);
    r
}

// ---------------------------------------------------------------------------
// (a) With the daemon stopped, a second member's join (and a first member's,
// into a single-port set) is applied by the program alone; after SIGCONT
// the table and the maps agree.

fn joins_are_applied_in_xdp_while_the_daemon_is_stopped(version: u8) {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, version).unwrap();
    }
    joins_applied_while_stopped(&lab, [G0, G, G2]);
}

/// (a) for groups [G0, G, G2] of either family.
fn joins_applied_while_stopped<A: Into<IpAddr> + Copy + std::fmt::Display>(
    lab: &Lab,
    groups: [A; 3],
) {
    let [g0, g, g2] = groups;
    let sw = start(lab, &[]);
    let _members = g0_and_g_on_p2_of(lab, &sw, g0, g);
    let fast_before = port_counter(&sw, "p3", "fast_join");

    let stopped = Stopped::new(&sw);
    let _r3 = Receiver::start(lab, 3, &[g], UDP).unwrap();
    // G2 is unregistered (flooded) until h4, its first member, joins.
    let _r4 = Receiver::start(lab, 4, &[g2], UDP).unwrap();
    let got = burst(lab, g, &[2, 3, 4], &[2, 3]);
    assert!(
        got[&2] >= N && got[&3] >= N,
        "{g} with the daemon stopped: {got:?}"
    );
    assert!(got[&4] < NOISE, "{g} reached a non-member: {got:?}");
    let got = burst(lab, g2, &[2, 3, 4], &[4]);
    assert!(got[&4] >= N, "{g2} with the daemon stopped: {got:?}");
    assert!(
        got[&2] < NOISE && got[&3] < NOISE,
        "{g2} still flooded: the first member's join was not applied: {got:?}"
    );
    drop(stopped);

    sw.wait_ports(g, &["p2", "p3"], WAIT);
    sw.wait_ports(g2, &["p4"], WAIT);
    assert!(port_counter(&sw, "p3", "fast_join") > fast_before);
    assert!(port_counter(&sw, "p4", "fast_join") >= 1);
    let daemon = sw.json(&["stats"]).unwrap()["daemon"].clone();
    assert!(daemon["fast_joins"].as_u64().unwrap() >= 2, "{daemon}");
    assert_engine_and_fast_path_agree(lab, &sw);
}

#[test]
fn joins_are_applied_in_xdp_while_the_daemon_is_stopped_igmpv3() {
    joins_are_applied_in_xdp_while_the_daemon_is_stopped(3);
}

#[test]
fn joins_are_applied_in_xdp_while_the_daemon_is_stopped_igmpv2() {
    joins_are_applied_in_xdp_while_the_daemon_is_stopped(2);
}

/// The same with kernel hosts at MLDv2 (IPv6): one code path in XDP.
#[test]
fn joins_are_applied_in_xdp_while_the_daemon_is_stopped_mldv2() {
    require();
    let lab = Lab::ipv6(4).unwrap();
    joins_applied_while_stopped(&lab, [G6_0, G6, G6_2]);
}

// ---------------------------------------------------------------------------
// (b) A join the engine refuses is never applied by the program (a port at
// its group limit is left out of the fast-join ports) ...

#[test]
fn a_join_refused_by_a_limit_is_never_applied() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &["--max-groups-per-port", "2"]);
    // p2: G0 and G1, at its limit. G0 {p2, p3} publishes the set {p2, p3};
    // G is {p3}: h2's join of G would need exactly that set.
    let _r2 = Receiver::start(&lab, 2, &[G0, G1], UDP).unwrap();
    let _r3 = Receiver::start(&lab, 3, &[G0, G], UDP).unwrap();
    sw.wait_ports(G0, &["p2", "p3"], WAIT);
    sw.wait_ports(G1, &["p2"], WAIT);
    sw.wait_ports(G, &["p3"], WAIT);
    let refused = engine_counter(&sw, "reject_limit_port");
    // p2's joins of G0 and G1, before its limit, may have gone fast.
    let fast_before = port_counter(&sw, "p2", "fast_join");

    let _join = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    poll_until(WAIT, || {
        (engine_counter(&sw, "reject_limit_port") > refused).then_some(())
    })
    .expect("the engine never refused h2's join of G");
    let got = burst(&lab, G, &[2, 3], &[3]);
    assert!(got[&3] >= N, "{got:?}");
    assert!(got[&2] < NOISE, "a refused join reached the host: {got:?}");
    assert_eq!(port_counter(&sw, "p2", "fast_join"), fast_before);
    assert_eq!(
        sw.group_ports(G).unwrap(),
        BTreeSet::from(["p3".to_string()])
    );
    assert_engine_and_fast_path_agree(&lab, &sw);
}

// ... and one the program did apply but the engine refuses (a report with
// a bad checksum: the program does not check it) is undone by the daemon's
// next round.
#[test]
fn a_join_applied_in_xdp_but_refused_by_the_engine_is_undone() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &[]);
    let _r3 = Receiver::start(&lab, 3, &[G0, G], UDP).unwrap();
    let _r2 = Receiver::start(&lab, 2, &[G0], UDP).unwrap();
    sw.wait_ports(G0, &["p2", "p3"], WAIT);
    sw.wait_ports(G, &["p3"], WAIT);
    let bad = engine_counter(&sw, "reject_bad_igmp_checksum");
    let fast_before = port_counter(&sw, "p2", "fast_join");

    // An IGMPv2 report for G from h2 whose checksum is wrong.
    let mut report = vec![0x16, 0, 0, 0];
    report.extend_from_slice(&G.octets());
    let good = igmpsnoop_tests::igmp_checksum(&report);
    report[2..4].copy_from_slice(&(good ^ 0x5555).to_be_bytes());
    IgmpSend {
        dst: G,
        ..IgmpSend::default()
    }
    .send(&lab, 2, &report)
    .unwrap();
    poll_until(WAIT, || {
        (engine_counter(&sw, "reject_bad_igmp_checksum") > bad).then_some(())
    })
    .expect("the engine never saw the bad report");
    assert_eq!(
        port_counter(&sw, "p2", "fast_join"),
        fast_before + 1,
        "the program applied the join (the case this test is about)"
    );
    assert_engine_and_fast_path_agree(&lab, &sw);
    let got = burst(&lab, G, &[2, 3], &[3]);
    assert!(got[&3] >= N, "{got:?}");
    assert!(got[&2] < NOISE, "the refused join was not undone: {got:?}");
}

// ---------------------------------------------------------------------------
// (c) --fast-join false: with the daemon stopped nothing is applied; joins
// take effect when the daemon handles them, as before.

#[test]
fn with_fast_join_off_joins_wait_for_the_daemon() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &["--fast-join", "false"]);
    let _members = g0_and_g_on_p2(&lab, &sw);

    let stopped = Stopped::new(&sw);
    let _r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    let got = burst(&lab, G, &[2, 3], &[2]);
    assert!(got[&2] >= N, "{got:?}");
    assert!(got[&3] < NOISE, "applied without the daemon: {got:?}");
    drop(stopped);

    sw.wait_ports(G, &["p2", "p3"], WAIT);
    let got = burst(&lab, G, &[2, 3], &[2, 3]);
    assert!(got[&2] >= N && got[&3] >= N, "{got:?}");
    for p in ["p2", "p3", "p4"] {
        assert_eq!(port_counter(&sw, p, "fast_join"), 0, "{p}");
    }
    let daemon = sw.json(&["stats"]).unwrap()["daemon"].clone();
    assert_eq!(daemon["fast_joins"], 0, "{daemon}");
    assert_engine_and_fast_path_agree(&lab, &sw);
}

// ---------------------------------------------------------------------------
// (d) An IGMPv3 report with sources (INCLUDE) is not fast-joined: source
// filters are the engine's work.

#[test]
fn a_report_with_sources_is_not_fast_joined() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &[]);
    let _members = g0_and_g_on_p2(&lab, &sw);
    let h1 = lab.host_ip(1);
    let fast_before = port_counter(&sw, "p3", "fast_join");

    let stopped = Stopped::new(&sw);
    let _r3 =
        Receiver::start_filtered(&lab, 3, &[G], UDP, &SourceFilter::Include(vec![h1])).unwrap();
    let got = burst(&lab, G, &[2, 3], &[2]);
    assert!(got[&2] >= N, "{got:?}");
    assert!(
        got[&3] < NOISE,
        "an INCLUDE join was applied in XDP: {got:?}"
    );
    drop(stopped);

    poll_until(WAIT, || {
        let rows = sw.json(&["sources"]).unwrap();
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["group"] == G.to_string().as_str() && strings(&r["ports"]).contains("p3"))
            .then_some(())
    })
    .expect("the engine never installed h3's source");
    assert_eq!(port_counter(&sw, "p3", "fast_join"), fast_before);
    let got = burst(&lab, G, &[2, 3], &[2, 3]);
    assert!(got[&2] >= N && got[&3] >= N, "{got:?}");
    assert_engine_and_fast_path_agree(&lab, &sw);
}
