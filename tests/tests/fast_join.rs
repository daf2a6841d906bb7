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

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpsnoop_control::wire::{frame::build_igmp, igmp};
use igmpsnoop_tests::xdp_membership::{
    N, NOISE, Stopped, UDP, WAIT, assert_engine_and_fast_path_agree, burst, daemon_counter,
    engine_counter, port_counter, require, start, strings,
};
use igmpsnoop_tests::{
    Capture, IgmpSend, Lab, MldSend, RawPort, Receiver, SourceFilter, Switch, counters_moved,
    igmp_checksum, mldv2_report, poll_until, v3_report,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G0: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 100);
const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 101);
const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 2);
const G6: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 1);
const G6_0: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 0x100);
const G6_2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 2);
/// RFC 3376 §4.2.12 / RFC 3810 §5.2.12: CHANGE_TO_EXCLUDE_MODE.
const TO_EX: u8 = 4;

/// G0 on {p2, p3}, so that the set {p2, p3} is published; G on {p2}.
fn g0_and_g_on_p2(lab: &Lab, sw: &Switch) -> Vec<Receiver> {
    g0_and_g_on_p2_of(lab, sw, G0, G, 0)
}

fn g0_and_g_on_p2_of<A: Into<IpAddr> + Copy + std::fmt::Display>(
    lab: &Lab,
    sw: &Switch,
    g0: A,
    g: A,
    vlan: u16,
) -> Vec<Receiver> {
    let r = vec![
        Receiver::start(lab, 2, &[g0, g], UDP).unwrap(),
        Receiver::start(lab, 3, &[g0], UDP).unwrap(),
    ];
    sw.wait_vlan_ports(g0, vlan, &["p2", "p3"], WAIT);
    sw.wait_vlan_ports(g, vlan, &["p2"], WAIT);
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
    joins_applied_while_stopped(&lab, [G0, G, G2], (&[], 0));
}

/// Every port an access port of VLAN 10: the hosts' untagged reports go up
/// to the daemon tagged, pushed by the program before it reads them.
const ALL_IN_VLAN_10: &[&str] = &[
    "--pvid", "p1=10", "--pvid", "p2=10", "--pvid", "p3=10", "--pvid", "p4=10",
];

/// (a) for groups [G0, G, G2] of either family, the daemon run with
/// `extra`, the hosts on `vlan`.
fn joins_applied_while_stopped<A: Into<IpAddr> + Copy + std::fmt::Display>(
    lab: &Lab,
    groups: [A; 3],
    (extra, vlan): (&[&str], u16),
) {
    let [g0, g, g2] = groups;
    let sw = start(lab, extra);
    let _members = g0_and_g_on_p2_of(lab, &sw, g0, g, vlan);
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

    sw.wait_vlan_ports(g, vlan, &["p2", "p3"], WAIT);
    sw.wait_vlan_ports(g2, vlan, &["p4"], WAIT);
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
    joins_applied_while_stopped(&lab, [G6_0, G6, G6_2], (&[], 0));
}

/// The same on a switch with VLAN config, IGMPv3 and MLDv2 hosts.
#[test]
fn joins_are_applied_in_xdp_while_the_daemon_is_stopped_in_a_vlan() {
    require();
    let lab = Lab::new(4).unwrap();
    joins_applied_while_stopped(&lab, [G0, G, G2], (ALL_IN_VLAN_10, 10));
    drop(lab);
    let lab = Lab::ipv6(4).unwrap();
    joins_applied_while_stopped(&lab, [G6_0, G6, G6_2], (ALL_IN_VLAN_10, 10));
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

// ... nor is a report the engine rejects as malformed or misaddressed: the
// program makes the engine's checks first (ebpf/xdp/src/report_check.rs).
// With the daemon stopped none of them reaches h2; a well-formed report,
// sent last, does (so the checks pass what they should). After SIGCONT the
// engine counts each one by its reason.

/// The engine's rejection counters (`*reject_*`).
fn rejections(sw: &Switch) -> BTreeMap<String, u64> {
    let mut c = sw.engine_counters();
    c.retain(|k, _| k.contains("reject_"));
    c
}

/// Sends each of `bad` (what it is, how it is sent, the engine's counter
/// for it) from h2 with the daemon stopped, then `good`; checks that only
/// `good` was applied in XDP and that the engine counted each bad one.
fn only_what_the_engine_accepts_is_applied<A: Into<IpAddr> + Copy + std::fmt::Display>(
    lab: &Lab,
    [g0, g]: [A; 2],
    bad: &[(&str, &dyn Fn(), &str)],
    good: &dyn Fn(),
) {
    let sw = start(lab, &[]);
    // G0 {p2, p3} publishes the set {p2, p3}; G is {p3}: h2's join of G
    // would need exactly that set.
    let _r3 = Receiver::start(lab, 3, &[g0, g], UDP).unwrap();
    let _r2 = Receiver::start(lab, 2, &[g0], UDP).unwrap();
    sw.wait_ports(g0, &["p2", "p3"], WAIT);
    sw.wait_ports(g, &["p3"], WAIT);
    let (fast_before, rejected_before) = (port_counter(&sw, "p2", "fast_join"), rejections(&sw));

    let stopped = Stopped::new(&sw);
    for (_, send, _) in bad {
        send();
    }
    let got = burst(lab, g, &[2, 3], &[3]);
    assert!(got[&3] >= N, "{got:?}");
    assert!(
        got[&2] < NOISE,
        "{g}: a report the engine rejects was applied in XDP: {got:?}"
    );
    good();
    let got = burst(lab, g, &[2, 3], &[2, 3]);
    assert!(
        got[&2] >= N,
        "{g}: the well-formed report was not applied in XDP: {got:?}"
    );
    drop(stopped);

    assert_eq!(port_counter(&sw, "p2", "fast_join"), fast_before + 1);
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for (_, _, reason) in bad {
        *want.entry(reason.to_string()).or_default() += 1;
    }
    let mut moved = BTreeMap::new();
    poll_until(WAIT, || {
        moved = counters_moved(&rejected_before, &rejections(&sw));
        (moved == want).then_some(())
    })
    .unwrap_or_else(|| {
        let what: Vec<_> = bad.iter().map(|(w, _, _)| *w).collect();
        panic!("sent {what:?}: the engine counted {moved:?}, want {want:?}")
    });
    sw.wait_ports(g, &["p2", "p3"], WAIT);
    assert_engine_and_fast_path_agree(lab, &sw);
}

fn igmpv2_report(group: Ipv4Addr, checksum_xor: u16) -> Vec<u8> {
    let mut m = vec![0x16, 0, 0, 0];
    m.extend_from_slice(&group.octets());
    let sum = igmp_checksum(&m) ^ checksum_xor;
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

#[test]
fn igmp_reports_the_engine_rejects_are_never_applied_in_xdp() {
    require();
    let lab = Lab::new(4).unwrap();
    let to_g = IgmpSend {
        dst: G,
        ..IgmpSend::default()
    };
    let good = igmpv2_report(G, 0);
    let mut v3_bad = v3_report(&[(TO_EX, G, &[])]);
    v3_bad[3] ^= 0x55;
    let lab_ref = &lab;
    let send = |how: IgmpSend, msg: Vec<u8>| move || how.send(lab_ref, 2, &msg).unwrap();
    let bad_checksum = send(to_g.clone(), igmpv2_report(G, 0x5555));
    let bad_ip_checksum = send(
        IgmpSend {
            bad_ip_checksum: true,
            ..to_g.clone()
        },
        good.clone(),
    );
    let ttl_2 = send(
        IgmpSend {
            ttl: 2,
            ..to_g.clone()
        },
        good.clone(),
    );
    let v3_bad_checksum = send(IgmpSend::default(), v3_bad);
    only_what_the_engine_accepts_is_applied(
        &lab,
        [G0, G],
        &[
            (
                "IGMPv2 report, bad checksum",
                &bad_checksum,
                "reject_bad_igmp_checksum",
            ),
            (
                "IPv4 header, bad checksum",
                &bad_ip_checksum,
                "reject_bad_ip_checksum",
            ),
            ("TTL 2", &ttl_2, "reject_bad_ttl"),
            (
                "IGMPv3 report, bad checksum",
                &v3_bad_checksum,
                "reject_bad_igmp_checksum",
            ),
        ],
        &send(to_g.clone(), good.clone()),
    );
}

#[test]
fn mld_reports_the_engine_rejects_are_never_applied_in_xdp() {
    require();
    let lab = Lab::ipv6(4).unwrap();
    let report = mldv2_report(&[(TO_EX, G6, &[])]);
    let send = |how: MldSend| {
        let msg = report.clone();
        let lab = &lab;
        move || how.send(lab, 2, &msg).unwrap()
    };
    let bad_checksum = send(MldSend {
        bad_checksum: true,
        ..MldSend::default()
    });
    let no_router_alert = send(MldSend {
        router_alert: false,
        ..MldSend::default()
    });
    let hop_limit_2 = send(MldSend {
        hop_limit: 2,
        ..MldSend::default()
    });
    // RFC 3810 §5.2.13: reports come from a link-local address (or ::).
    let global_source = send(MldSend {
        src: Some(lab.host_ip6(2)),
        ..MldSend::default()
    });
    only_what_the_engine_accepts_is_applied(
        &lab,
        [G6_0, G6],
        &[
            ("bad checksum", &bad_checksum, "reject_bad_icmpv6_checksum"),
            (
                "no Router Alert",
                &no_router_alert,
                "reject_no_router_alert",
            ),
            ("hop limit 2", &hop_limit_2, "mld_reject_bad_hop_limit"),
            (
                "from a global address",
                &global_source,
                "reject_report_not_link_local",
            ),
        ],
        &send(MldSend::default()),
    );
}

// ... and one the program applied but whose report the daemon never got
// (its AF_XDP socket's ring was full: the frame is dropped after the
// program ran) is undone by the daemon's rewrite of every entry the
// program wrote.

/// The control sockets' drops (`stats`, `control_sockets`).
fn socket_drops(sw: &Switch) -> u64 {
    let s = sw.json(&["stats"]).unwrap();
    s["control_sockets"]["rx_dropped"]
        .as_u64()
        .unwrap_or_else(|| panic!("no control_sockets.rx_dropped: {s}"))
}

#[test]
fn a_join_applied_in_xdp_whose_report_the_daemon_lost_is_undone() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &["--control-rate-limit", "0"]);
    let _r3 = Receiver::start(&lab, 3, &[G0, G], UDP).unwrap();
    let _r2 = Receiver::start(&lab, 2, &[G0], UDP).unwrap();
    sw.wait_ports(G0, &["p2", "p3"], WAIT);
    sw.wait_ports(G, &["p3"], WAIT);
    let (fast_before, drops_before) = (port_counter(&sw, "p2", "fast_join"), socket_drops(&sw));

    let stopped = Stopped::new(&sw);
    // Reports of G0, which p2 is in already: the program writes nothing for
    // them, and they fill p2's socket (1024 frames) while the daemon sleeps.
    let tool = igmpsnoop_tests::mcast_tool_bin()
        .to_string_lossy()
        .into_owned();
    let (src, g0) = (lab.host_ip(2).to_string(), G0.to_string());
    lab.exec(
        &lab.host_ns(2),
        &[
            &tool,
            "reports",
            "--group",
            &g0,
            "--same-group",
            "--src",
            &src,
            "--count",
            "3000",
            "--rate",
            "20000",
        ],
    )
    .unwrap();
    IgmpSend {
        dst: G,
        ..IgmpSend::default()
    }
    .send(&lab, 2, &igmpv2_report(G, 0))
    .unwrap();
    let got = burst(&lab, G, &[2, 3], &[2, 3]);
    assert!(
        got[&2] >= N,
        "h2's join was not applied in XDP (the case this test is about): {got:?}"
    );
    drop(stopped);

    assert_eq!(port_counter(&sw, "p2", "fast_join"), fast_before + 1);
    poll_until(WAIT, || (socket_drops(&sw) > drops_before).then_some(()))
        .expect("p2's socket dropped nothing: the daemon may have seen h2's report");
    // The engine never learned G on p2; the rewrite takes the join back.
    poll_until(WAIT, || {
        (burst(&lab, G, &[2, 3], &[3])[&2] < NOISE).then_some(())
    })
    .expect("the join whose report was lost was never undone");
    assert_eq!(
        sw.group_ports(G).unwrap(),
        BTreeSet::from(["p3".to_string()])
    );
    assert_engine_and_fast_path_agree(&lab, &sw);
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

// ---------------------------------------------------------------------------
// (e) On a switch with VLAN config the program shapes each set it writes
// for its VLAN, as the daemon does. p1 and p2 are access ports of VLAN 10,
// p3 a tagged-only trunk of VLAN 10 (fast leave), p4 an access port of
// VLAN 20. h3 speaks tagged frames (crafted: this kernel has no 802.1Q
// devices). With the daemon stopped, h2's join (untagged, VLAN 10) and
// h3's (tagged) are applied by the program: h2 gets G untagged, h3 tagged
// with VID 10 (a MIXED set, through TC), h4 nothing. h3's tagged leave on
// the fast-leave trunk is applied too: h2 alone gets G, untagged.

/// An IGMPv2 message from h3, tagged with VLAN 10, sent raw on its eth0.
fn tagged_from_h3(lab: &Lab, dst: Ipv4Addr, repr: &igmp::Repr) {
    let frame = build_igmp(lab.host_mac_bytes(3), 10, lab.host_ip(3), dst, 1, repr);
    RawPort::open(lab, 3).unwrap().send(&frame).unwrap();
}

/// Counts h1's datagrams to G captured on `host`, tagged with VID 10 and
/// untagged.
fn formats_seen(cap: &mut Capture) -> (usize, usize) {
    let tagged = "udp.dstport == 5000 && vlan.id == 10";
    let untagged = "udp.dstport == 5000 && !vlan";
    cap.stop().unwrap();
    (
        cap.decode(Some(tagged)).unwrap().len(),
        cap.decode(Some(untagged)).unwrap().len(),
    )
}

fn capture_g(lab: &Lab, host: usize) -> Capture {
    Capture::start(lab, &lab.host_ns(host), "eth0", "udp port 5000").unwrap()
}

#[test]
fn on_a_switch_with_vlans_joins_and_leaves_in_xdp_keep_each_ports_format() {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, 2).unwrap();
    }
    let sw = start(
        &lab,
        &[
            "--pvid",
            "p1=10",
            "--pvid",
            "p2=10",
            "--vlans",
            "p3=10",
            "--pvid",
            "p4=20",
            "--fast-leave",
            "p3",
            "--flood-unregistered",
            "false",
        ],
    );
    let report = |g| igmp::Repr::ReportV2 { group: g };
    // G0 on {p2, p3}: that set is published.
    let _r2 = Receiver::start(&lab, 2, &[G0], UDP).unwrap();
    tagged_from_h3(&lab, G0, &report(G0));
    sw.wait_vlan_ports(G0, 10, &["p2", "p3"], WAIT);
    let fast_before = port_counter(&sw, "p3", "fast_join");

    let stopped = Stopped::new(&sw);
    let _r2g = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    tagged_from_h3(&lab, G, &report(G));
    let (mut c2, mut c3) = (capture_g(&lab, 2), capture_g(&lab, 3));
    let got = burst(&lab, G, &[2, 3, 4], &[2, 3]);
    assert!(got[&2] >= N && got[&3] >= N, "G, daemon stopped: {got:?}");
    assert!(got[&4] < NOISE, "G reached VLAN 20: {got:?}");
    let n = N as usize;
    let (tagged, untagged) = formats_seen(&mut c2);
    assert!(
        tagged == 0 && untagged >= n,
        "h2 (access): {tagged} tagged, {untagged} untagged"
    );
    let (tagged, untagged) = formats_seen(&mut c3);
    assert!(
        tagged >= n && untagged == 0,
        "h3 (trunk): {tagged} tagged, {untagged} untagged"
    );
    drop(stopped);
    assert!(port_counter(&sw, "p2", "fast_join") >= 1);
    assert!(port_counter(&sw, "p3", "fast_join") > fast_before);

    // h3's leave: published as p3's sole host of G first.
    poll_until(WAIT, || {
        (daemon_counter(&sw, "leave_hosts") == 2).then_some(())
    })
    .expect("h3 published as the sole host of G0 and G on p3");
    let stopped = Stopped::new(&sw);
    tagged_from_h3(
        &lab,
        Ipv4Addr::new(224, 0, 0, 2),
        &igmp::Repr::LeaveV2 { group: G },
    );
    let mut c2 = capture_g(&lab, 2);
    let got = burst(&lab, G, &[2, 3], &[2]);
    assert!(
        got[&2] >= N && got[&3] < NOISE,
        "G after h3's leave: {got:?}"
    );
    let (tagged, untagged) = formats_seen(&mut c2);
    assert!(
        tagged == 0 && untagged >= n,
        "h2 after the leave: {tagged} tagged, {untagged} untagged"
    );
    drop(stopped);
    assert_eq!(port_counter(&sw, "p3", "fast_leave"), 1);
    assert_engine_and_fast_path_agree(&lab, &sw);
}
