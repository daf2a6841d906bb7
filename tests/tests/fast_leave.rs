//! Fast leave end to end: the real daemon in a netns lab, kernel hosts
//! leaving, and the XDP program taking a fast-leave port out of a group
//! itself before the daemon sees the leave (ebpf/xdp/src/fast_leave.rs),
//! for the one host the daemon published for that (group, port) in
//! LEAVE_HOSTS (RFC 4541 §2.1.1: a port known to have one host may be
//! removed on its leave at once).
//!
//! A leave that only the program could have applied is made with the
//! daemon stopped (SIGSTOP): whatever stops reaching the host then stopped
//! because the program rewrote or deleted the group's entry. After every
//! test the fast path's pinned maps must hold exactly what `igmpsnoop
//! groups`, `sources` and `routers` say.
//!
//! `--flood-unregistered false` throughout: a group whose last member left
//! is deleted (unregistered, as the daemon's flush does), and its traffic
//! then goes to router ports only (there are none), not flooded back to the
//! host that left.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use igmpsnoop_tests::xdp_membership::{
    N, NOISE, Stopped, UDP, WAIT, assert_engine_and_fast_path_agree, burst, daemon_counter,
    port_counter, require, start,
};
use igmpsnoop_tests::{IgmpSend, Lab, Receiver, Switch, igmp_checksum, poll_until};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 2);
const G6: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 1);
const G6_2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 1, 2);
/// IGMPv2 leaves go to all-routers (RFC 2236 §3).
const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);

fn start_fast_leave_p3(lab: &Lab) -> Switch {
    start(
        lab,
        &["--fast-leave", "p3", "--flood-unregistered", "false"],
    )
}

fn ports(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Waits until the daemon lists `group` on exactly `want` (none: gone).
fn wait_group_ports(sw: &Switch, group: impl Into<IpAddr>, want: &[&str]) {
    let group = group.into();
    poll_until(WAIT, || {
        (sw.group_ports(group).unwrap() == ports(want)).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "{group}: {:?}, want {want:?}",
            sw.group_ports(group).unwrap()
        )
    });
}

// ---------------------------------------------------------------------------
// (a) With the daemon stopped, h3's leave on the fast-leave port p3 takes p3
// out of G (h2 on p2 keeps receiving) and deletes G2, whose only member it
// was; after SIGCONT the engine agrees.

fn leave_applied_while_stopped<A: Into<IpAddr> + Copy + std::fmt::Display>(
    lab: &Lab,
    [g, g2]: [A; 2],
) {
    let sw = start_fast_leave_p3(lab);
    let _r2 = Receiver::start(lab, 2, &[g], UDP).unwrap();
    let mut r3 = Receiver::start(lab, 3, &[g, g2], UDP).unwrap();
    sw.wait_ports(g, &["p2", "p3"], WAIT);
    sw.wait_ports(g2, &["p3"], WAIT);
    let got = burst(lab, g, &[2, 3], &[2, 3]);
    assert!(
        got[&2] >= N && got[&3] >= N,
        "{g} before the leave: {got:?}"
    );
    let fast_before = port_counter(&sw, "p3", "fast_leave");
    let leaves_before = daemon_counter(&sw, "fast_leaves");

    let stopped = Stopped::new(&sw);
    r3.leave().unwrap();
    let got = burst(lab, g, &[2, 3], &[2]);
    assert!(got[&2] >= N, "{g}: the member on p2 lost traffic: {got:?}");
    assert!(
        got[&3] < NOISE,
        "{g}: h3 left on a fast-leave port with the daemon stopped, yet still receives: {got:?}"
    );
    let got = burst(lab, g2, &[2, 3, 4], &[]);
    assert!(
        got.values().all(|&n| n < NOISE),
        "{g2}: its only member left, yet its traffic goes on: {got:?}"
    );
    drop(stopped);
    assert!(
        port_counter(&sw, "p3", "fast_leave") >= fast_before + 2,
        "the program counted fewer leaves than it applied"
    );

    wait_group_ports(&sw, g, &["p2"]);
    wait_group_ports(&sw, g2, &[]);
    assert!(daemon_counter(&sw, "fast_leaves") >= leaves_before + 2);
    assert_engine_and_fast_path_agree(lab, &sw);
    let got = burst(lab, g, &[2, 3], &[2]);
    assert!(got[&2] >= N && got[&3] < NOISE, "after SIGCONT: {got:?}");
}

#[test]
fn a_sole_members_leave_is_applied_in_xdp_while_the_daemon_is_stopped_igmpv2() {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, 2).unwrap();
    }
    leave_applied_while_stopped(&lab, [G, G2]);
}

#[test]
fn a_sole_members_leave_is_applied_in_xdp_while_the_daemon_is_stopped_igmpv3() {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, 3).unwrap();
    }
    leave_applied_while_stopped(&lab, [G, G2]);
}

/// The same with kernel hosts at MLDv2 (IPv6): one code path in XDP.
#[test]
fn a_sole_members_leave_is_applied_in_xdp_while_the_daemon_is_stopped_mldv2() {
    require();
    let lab = Lab::ipv6(4).unwrap();
    leave_applied_while_stopped(&lab, [G6, G6_2]);
}

/// And MLDv1 hosts (`force_mld_version=1`): their leave is a Done message.
#[test]
fn a_sole_members_leave_is_applied_in_xdp_while_the_daemon_is_stopped_mldv1() {
    require();
    let lab = Lab::ipv6(4).unwrap();
    for h in lab.hosts() {
        lab.set_mld_version(h, 1).unwrap();
    }
    leave_applied_while_stopped(&lab, [G6, G6_2]);
}

// ---------------------------------------------------------------------------
// (b) A leave on a port without fast leave waits for the daemon (its
// group-specific queries, RFC 2236 §3).

#[test]
fn a_leave_on_a_port_without_fast_leave_is_not_applied_in_xdp() {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, 2).unwrap();
    }
    let sw = start_fast_leave_p3(&lab);
    let mut r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let _r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], WAIT);

    let stopped = Stopped::new(&sw);
    r2.leave().unwrap();
    let got = burst(&lab, G, &[2, 3], &[2, 3]);
    assert!(
        got[&2] >= N && got[&3] >= N,
        "a leave on p2 (no fast leave) was applied without the daemon: {got:?}"
    );
    drop(stopped);

    assert_eq!(port_counter(&sw, "p2", "fast_leave"), 0);
    // The daemon's last-member queries go unanswered: p2 goes after them.
    wait_group_ports(&sw, G, &["p3"]);
    assert_engine_and_fast_path_agree(&lab, &sw);
}

// ---------------------------------------------------------------------------
// (c) A leave from a MAC that is not the member's is not applied, nor is a
// malformed one from the member; the member's own well-formed one is.

fn igmpv2_leave(group: Ipv4Addr) -> Vec<u8> {
    igmpv2_leave_xor(group, 0)
}

/// An IGMPv2 leave whose checksum is XORed with `checksum_xor`.
fn igmpv2_leave_xor(group: Ipv4Addr, checksum_xor: u16) -> Vec<u8> {
    let mut m = vec![0x17, 0, 0, 0];
    m.extend_from_slice(&group.octets());
    let sum = igmp_checksum(&m) ^ checksum_xor;
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

#[test]
fn a_leave_from_another_mac_or_malformed_is_not_applied_in_xdp() {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, 2).unwrap();
    }
    // h3 stays joined after the leave it is made to send below: its join's
    // repeated report (up to 10 s later by default) would join it again
    // in XDP in the middle of the last burst. Within 0.1 s, it comes first.
    lab.set_unsolicited_report_interval(3, 100).unwrap();
    let sw = start_fast_leave_p3(&lab);
    let _r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let _r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], WAIT);
    let leave = IgmpSend {
        dst: ALL_ROUTERS,
        ..IgmpSend::default()
    };

    // Both members still receive G.
    let not_applied = |what: &str| {
        let got = burst(&lab, G, &[2, 3], &[2, 3]);
        assert!(got[&2] >= N && got[&3] >= N, "{what} was applied: {got:?}");
    };

    let stopped = Stopped::new(&sw);
    // Another host behind p3 (another MAC) leaves G: not the member.
    IgmpSend {
        mac: Some("02:00:00:aa:bb:03".into()),
        ..leave.clone()
    }
    .send(&lab, 3, &igmpv2_leave(G))
    .unwrap();
    not_applied("a leave from a MAC that is not the member's");
    // Nor is the member's own leave with a bad checksum or TTL 2, which
    // the engine rejects (ebpf/xdp/src/report_check.rs).
    leave.send(&lab, 3, &igmpv2_leave_xor(G, 0x5555)).unwrap();
    IgmpSend {
        ttl: 2,
        ..leave.clone()
    }
    .send(&lab, 3, &igmpv2_leave(G))
    .unwrap();
    not_applied("a leave the engine rejects");
    // The member's own leave (its MAC; the socket stays joined, so the
    // daemon sees it re-report later) is.
    leave.send(&lab, 3, &igmpv2_leave(G)).unwrap();
    let got = burst(&lab, G, &[2, 3], &[2]);
    assert!(
        got[&2] >= N && got[&3] < NOISE,
        "the member's leave: {got:?}"
    );
    drop(stopped);
    // The daemon answers again: one leave applied, the member's.
    assert_eq!(port_counter(&sw, "p3", "fast_leave"), 1);

    wait_group_ports(&sw, G, &["p2"]);
    assert_engine_and_fast_path_agree(&lab, &sw);
}

// ---------------------------------------------------------------------------
// (d) A second host behind p3 (another MAC) reports G and is heard no more;
// h3 joins 4 s later. While the other's report lasts, p3 has two hosts and
// neither is published for the program. It ages out at the membership
// interval (2 × 4 s + 2 s here; no querier, so h3 does not report again and
// nothing else changes): h3 is p3's sole host from then on, published as
// such on that timer alone, and its leave is applied in XDP.

fn igmpv2_report(group: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![0x16, 0, 0, 0];
    m.extend_from_slice(&group.octets());
    let sum = igmp_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// How many hosts `groups` lists for (G, port).
fn hosts_on(sw: &Switch, port: &str) -> usize {
    sw.row(G, port)
        .and_then(|r| r["hosts"].as_array().map(Vec::len))
        .unwrap_or(0)
}

#[test]
fn once_a_second_host_ages_out_the_remaining_hosts_leave_is_applied_in_xdp() {
    require();
    let lab = Lab::new(4).unwrap();
    // h3's join: its report and the repeat within 0.1 s.
    lab.set_igmp_version(3, 2).unwrap();
    lab.set_unsolicited_report_interval(3, 100).unwrap();
    let sw = start(
        &lab,
        &[
            "--fast-leave",
            "p3",
            "--flood-unregistered",
            "false",
            "--query-interval",
            "4s",
            "--query-response-interval",
            "2s",
        ],
    );
    IgmpSend {
        dst: G,
        mac: Some("02:00:00:aa:bb:03".into()),
        ..IgmpSend::default()
    }
    .send(&lab, 3, &igmpv2_report(G))
    .unwrap();
    let other_reported = Instant::now();
    sw.wait_ports(G, &["p3"], WAIT);
    std::thread::sleep(Duration::from_secs(4).saturating_sub(other_reported.elapsed()));
    let mut r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    poll_until(WAIT, || (hosts_on(&sw, "p3") == 2).then_some(()))
        .unwrap_or_else(|| panic!("h3 not listed on p3: {:?}", sw.row(G, "p3")));
    let got = burst(&lab, G, &[3], &[3]);
    assert!(got[&3] >= N, "h3 before the leave: {got:?}");
    assert_eq!(
        daemon_counter(&sw, "leave_hosts"),
        0,
        "two hosts on p3: neither leave may be applied in XDP"
    );

    // The other host's report ends 10 s after it was sent; h3's 4 s later.
    poll_until(Duration::from_secs(12), || {
        (daemon_counter(&sw, "leave_hosts") == 1).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "h3, p3's sole host since the other one aged out, was not published \
             for fast leave: {:?}",
            sw.row(G, "p3")
        )
    });
    assert!(
        other_reported.elapsed() < Duration::from_secs(14),
        "published only as h3 expired"
    );
    assert_eq!(hosts_on(&sw, "p3"), 1);

    let stopped = Stopped::new(&sw);
    r3.leave().unwrap();
    let got = burst(&lab, G, &[3], &[]);
    assert!(
        got[&3] < NOISE,
        "h3's leave with the daemon stopped: {got:?}"
    );
    drop(stopped);
    assert_eq!(port_counter(&sw, "p3", "fast_leave"), 1);
    wait_group_ports(&sw, G, &[]);
    assert_engine_and_fast_path_agree(&lab, &sw);
}

// ---------------------------------------------------------------------------
// (e) A router port keeps every group (RFC 4541 §2.1.2): h3's leave on the
// fast-leave port p3, also a static router port, is not applied by the
// program (the daemon's table keeps p3 in G's set as a router port), while
// h2 on p2 stays a member.

#[test]
fn a_leave_on_a_router_port_is_not_applied_in_xdp() {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, 2).unwrap();
    }
    // h3 stays joined after its leave (sent for it below: a host on a
    // router port hears the others' reports, and an IGMPv2 host that heard
    // another report for its group sends no leave, RFC 2236 §6).
    lab.set_unsolicited_report_interval(3, 100).unwrap();
    let sw = start(
        &lab,
        &[
            "--fast-leave",
            "p3",
            "--router-port",
            "p3",
            "--flood-unregistered",
            "false",
        ],
    );
    // h3 first: a host on a router port that hears another's report for
    // its group before its own goes out suppresses its own (RFC 2236 §3).
    let _r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p3"], WAIT);
    let _r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], WAIT);
    poll_until(WAIT, || {
        (daemon_counter(&sw, "leave_hosts") == 1).then_some(())
    })
    .expect("h3 published as p3's sole host of G");

    let stopped = Stopped::new(&sw);
    IgmpSend {
        dst: ALL_ROUTERS,
        ..IgmpSend::default()
    }
    .send(&lab, 3, &igmpv2_leave(G))
    .unwrap();
    let got = burst(&lab, G, &[2, 3], &[2, 3]);
    assert!(
        got[&2] >= N && got[&3] >= N,
        "G after a leave on the router port p3, daemon stopped: {got:?}"
    );
    drop(stopped);
    assert_eq!(port_counter(&sw, "p3", "fast_leave"), 0);
    wait_group_ports(&sw, G, &["p2"]);
    assert_engine_and_fast_path_agree(&lab, &sw);
    let got = burst(&lab, G, &[2, 3], &[2, 3]);
    assert!(got[&2] >= N && got[&3] >= N, "after SIGCONT: {got:?}");
}
