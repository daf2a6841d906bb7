//! Engine behaviour with an injected clock (milliseconds of test time).

mod common;

use common::*;
use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;
use igmpsnoop_control::engine::{
    Action, AddrFamily, Config, ConfigError, Engine, PortConfig, Version,
};
use igmpsnoop_control::port::PortMask;
use igmpsnoop_control::table::SoleHost;
use igmpsnoop_control::wire::igmp::{self, RecordType};

const GMI: u64 = 260_000;
const OQPI: u64 = 255_000;

fn group_action(actions: &[Action], group: Ipv4Addr) -> Option<PortMask> {
    actions.iter().find_map(|a| match a {
        Action::GroupPorts {
            group: g, ports, ..
        } if *g == group => Some(*ports),
        _ => None,
    })
}

fn forwarded(actions: &[Action]) -> Option<PortMask> {
    actions.iter().find_map(|a| match a {
        Action::Forward { ports } => Some(*ports),
        _ => None,
    })
}

fn fast_ports(n: usize, fast: &[usize]) -> Vec<PortConfig> {
    let mut p = ports(n);
    for i in fast {
        p[*i].fast_leave = true;
    }
    p
}

#[test]
fn group_expires_at_exactly_gmi() {
    let mut h = Harness::plain();
    let a = h.rx(0, 1, &v2_report(1, G1));
    assert_eq!(group_action(&a, G1), Some(mask(&[1])));
    assert_eq!(h.e.next_deadline(), Some(ms(GMI)));
    assert!(h.tick(GMI - 1).is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
    let a = h.tick(GMI);
    assert_eq!(group_action(&a, G1), Some(PortMask::EMPTY));
    assert_eq!(h.ports_of(G1), PortMask::EMPTY);
    assert_eq!(h.e.group_count(), 0);
    assert_eq!(h.counter("groups_removed"), 1);
}

#[test]
fn refresh_extends_membership_without_new_actions() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    let a = h.rx(100_000, 1, &v2_report(1, G1));
    assert!(group_action(&a, G1).is_none(), "no change, no GroupPorts");
    // The stale heap entry at GMI fires harmlessly.
    assert!(h.tick(GMI).is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
    assert!(h.tick(100_000 + GMI - 1).is_empty());
    assert_eq!(
        group_action(&h.tick(100_000 + GMI), G1),
        Some(PortMask::EMPTY)
    );
}

#[test]
fn second_port_changes_port_set() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    let a = h.rx(5, 2, &v2_report(2, G1));
    assert_eq!(group_action(&a, G1), Some(mask(&[1, 2])));
}

#[test]
fn reports_and_leaves_forward_to_router_ports_only() {
    let mut p = ports(4);
    p[3].static_router = true;
    let mut h = Harness::new(Config::default(), p);
    // The first call reports the static router set.
    let a = h.tick(0);
    assert_eq!(
        a,
        vec![Action::RouterPorts {
            vlan: 0,
            family: AddrFamily::Ipv4,
            ports: mask(&[3])
        }]
    );
    let a = h.rx(0, 1, &v2_report(1, G1));
    assert_eq!(forwarded(&a), Some(mask(&[3])));
    let a = h.rx(1, 1, &v2_leave(1, G1));
    assert_eq!(forwarded(&a), Some(mask(&[3])));
    // From the router port itself: router ports minus ingress is empty.
    let a = h.rx(2, 3, &v2_report(9, G2));
    assert_eq!(forwarded(&a), None);
    assert_eq!(h.counter("tx_forward_report"), 1);
    assert_eq!(h.counter("tx_forward_leave"), 1);
}

#[test]
fn no_router_ports_no_forward() {
    let mut h = Harness::plain();
    let a = h.rx(0, 1, &v2_report(1, G1));
    assert_eq!(forwarded(&a), None);
    assert_eq!(a.len(), 1);
}

#[test]
fn leave_sends_group_queries_and_removes_port_after_lmqt() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 2, &v2_report(2, G1));
    let t0 = 10_000;
    let a = h.rx(t0, 1, &v2_leave(1, G1));
    let tx = transmits(&a);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].0, mask(&[1]), "GSQ only out of the leaving port");
    let (vlan, src, dst, repr) = decode(&tx[0].1);
    assert_eq!((vlan, src, dst), (0, Ipv4Addr::UNSPECIFIED, G1));
    // v2 compat: v2 format, max resp = LMQI in 1/10 s.
    assert_eq!(
        repr,
        igmp::Repr::Query {
            max_resp_code: 10,
            group: G1,
            v3: None
        }
    );
    assert!(group_action(&a, G1).is_none());

    assert!(transmits(&h.tick(t0 + 999)).is_empty());
    let a = h.tick(t0 + 1000);
    let tx = transmits(&a);
    assert_eq!(tx.len(), 1, "second of last_member_count queries");
    assert_eq!(tx[0].0, mask(&[1]));
    assert!(h.tick(t0 + 1999).is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1, 2]), "not before LMQC × LMQI");
    let a = h.tick(t0 + 2000);
    assert_eq!(group_action(&a, G1), Some(mask(&[2])));
    assert!(transmits(&a).is_empty(), "no third query");
    assert_eq!(h.counter("tx_group_query"), 2);
    assert_eq!(h.counter("leave_queries_started"), 1);
}

#[test]
fn report_during_leave_window_keeps_port() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(1000, 1, &v2_leave(1, G1));
    let a = h.rx(1500, 1, &v2_report(3, G1));
    assert!(group_action(&a, G1).is_none());
    // Pending queries were cancelled and the timer is GMI again.
    assert!(transmits(&h.tick(2000)).is_empty());
    assert!(h.tick(3000).is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
    assert!(h.tick(1500 + GMI - 1).is_empty());
    assert_eq!(group_action(&h.tick(1500 + GMI), G1), Some(PortMask::EMPTY));
}

#[test]
fn querier_address_is_source_of_group_queries() {
    let mut h = Harness::querier(2);
    h.tick(0);
    h.rx(0, 1, &v2_report(1, G1));
    let a = h.rx(1, 1, &v2_leave(1, G1));
    let (_, src, _, _) = decode(&transmits(&a)[0].1);
    assert_eq!(src, OUR_IP);
}

/// A switch that lost the querier election still asks the leaving port,
/// but from 0.0.0.0: its own address would make the next switch down the
/// chain count it in its election and learn a router port towards it.
#[test]
fn group_queries_of_a_silenced_querier_come_from_zero() {
    let mut h = Harness::querier(3);
    h.tick(0);
    let better = Ipv4Addr::new(10, 0, 0, 1);
    h.rx(1000, 0, &query(better, Ipv4Addr::UNSPECIFIED, 100, true));
    h.rx(1000, 1, &v2_report(1, G1));
    let a = h.rx(2000, 1, &v2_leave(1, G1));
    let tx = transmits(&a);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].0, mask(&[1]));
    let (_, src, dst, _) = decode(&tx[0].1);
    assert_eq!((src, dst), (Ipv4Addr::UNSPECIFIED, G1));
    // Once the other querier is gone we query, and from our address again.
    h.tick(1000 + OQPI);
    assert!(h.e.querier()[0].we_are_querier);
    h.rx(1000 + OQPI, 2, &v2_report(2, G1));
    let a = h.rx(1001 + OQPI, 2, &v2_leave(2, G1));
    let (_, src, _, _) = decode(&transmits(&a)[0].1);
    assert_eq!(src, OUR_IP);
}

#[test]
fn fast_leave_two_hosts_on_one_port() {
    let mut h = Harness::new(Config::default(), fast_ports(4, &[1]));
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 1, &v2_report(2, G1));
    let a = h.rx(10, 1, &v2_leave(1, G1));
    assert!(group_action(&a, G1).is_none() && transmits(&a).is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
    assert_eq!(h.e.groups()[0].hosts, vec![host_mac(2)]);
    let a = h.rx(20, 1, &v2_leave(2, G1));
    assert_eq!(group_action(&a, G1), Some(PortMask::EMPTY));
    assert!(transmits(&a).is_empty(), "fast leave sends no query");
    assert_eq!(h.counter("fast_leaves"), 1);
    assert_eq!(h.e.group_count(), 0);
}

/// The groups whose fast-leave hosts the daemon must publish again
/// (LEAVE_HOSTS), and what it would publish for G1.
fn leave_changes(h: &mut Harness) -> (Vec<(u16, IpAddr)>, Vec<SoleHost>) {
    (h.e.take_leave_changes(), h.e.leave_hosts(0, G1.into()))
}

/// [`leave_changes`] when G1 changed and host `n` is p1's only host.
fn g1_with_sole_host_on_p1(n: u8) -> (Vec<(u16, IpAddr)>, Vec<SoleHost>) {
    let sole = SoleHost {
        port: 1,
        mac: host_mac(n),
        last: true,
    };
    (vec![(0, G1.into())], vec![sole])
}

/// Port 1 fast-leave, the engine keeping the groups whose hosts changed.
fn tracking_fast_leave_on_p1() -> Harness {
    let mut h = Harness::new(Config::default(), fast_ports(4, &[1]));
    h.e.track_leave_changes(true);
    h
}

#[test]
fn a_host_aging_out_makes_the_other_a_sole_host_for_fast_leave() {
    let mut h = tracking_fast_leave_on_p1();
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(100_000, 1, &v2_report(2, G1));
    let (changed, hosts) = leave_changes(&mut h);
    assert_eq!(changed, vec![(0, G1.into())]);
    assert!(hosts.is_empty(), "two hosts: a leave goes to the daemon");
    assert!(h.tick(GMI - 1).is_empty());
    assert!(leave_changes(&mut h).0.is_empty());
    // Host 1 stops reporting: its record ages out at GMI, the port stays
    // (host 2), and host 2 alone may now leave it at once.
    assert!(group_action(&h.tick(GMI), G1).is_none());
    assert_eq!(leave_changes(&mut h), g1_with_sole_host_on_p1(2));
}

#[test]
fn the_end_of_igmpv1_compatibility_lets_the_host_leave_fast() {
    let mut h = tracking_fast_leave_on_p1();
    // RFC 3376 §7.3.2: after a v1 report, leaves are ignored until the v1
    // host present timer (GMI) ends, though the host reports at v2 since.
    h.rx(0, 1, &v1_report(1, G1));
    h.rx(100_000, 1, &v2_report(1, G1));
    assert!(leave_changes(&mut h).1.is_empty(), "v1 mode: no fast leave");
    assert_eq!(h.e.next_deadline(), Some(ms(GMI)));
    h.tick(GMI);
    assert_eq!(leave_changes(&mut h), g1_with_sole_host_on_p1(1));
    assert_eq!(h.e.next_deadline(), Some(ms(100_000 + GMI)));
}

#[test]
fn explicit_tracking_other_host_remains_no_query() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 1, &v2_report(2, G1));
    let a = h.rx(10, 1, &v2_leave(1, G1));
    assert!(a.is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
}

#[test]
fn leave_for_unknown_group_is_counted() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_leave(1, G1));
    assert_eq!(h.counter("ignored_leave_not_member"), 1);
    assert_eq!(h.counter("rx_v2_leave"), 1);
}

#[test]
fn v1_host_present_ignores_leaves_until_gmi() {
    let mut h = Harness::new(Config::default(), fast_ports(4, &[1]));
    h.rx(0, 1, &v1_report(1, G1));
    h.rx(0, 1, &v2_report(2, G1));
    assert_eq!(u8::from(h.e.groups()[0].version), 1);
    let a = h.rx(10, 1, &v2_leave(2, G1));
    assert!(a.is_empty());
    let a = h.rx(11, 1, &v2_leave(1, G1));
    assert!(a.is_empty());
    assert_eq!(h.counter("ignored_leave_v1_compat"), 2);
    // RFC 3376 §7.3.2 ignores v2 leaves in v1 mode, not v3 TO_IN: TO_IN{}
    // is processed (EXCLUDE TO_IN: Send Q(G)), but the tracked hosts 1 and 2
    // still want the group, so nothing is lowered or sent.
    let a = h.rx(12, 1, &v3_one(3, RecordType::ChangeToInclude, G1, &[]));
    assert!(a.is_empty());
    assert_eq!(h.counter("ignored_leave_v1_compat"), 2);
    assert_eq!(h.ports_of(G1), mask(&[1]));
}

#[test]
fn v2_host_present_ignores_block() {
    let mut h = Harness::plain();
    let s = Ipv4Addr::new(10, 9, 9, 9);
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 1, &v3_one(2, RecordType::AllowNewSources, G1, &[s]));
    assert_eq!(u8::from(h.e.groups()[0].version), 2);
    let a = h.rx(10, 1, &v3_one(2, RecordType::BlockOldSources, G1, &[s]));
    assert!(a.is_empty());
    assert_eq!(h.counter("ignored_record_compat"), 1);
    // After the v2 host present timer (GMI) the group is v3 again.
    h.rx(GMI - 100, 1, &v3_one(2, RecordType::ModeIsExclude, G1, &[]));
    h.tick(GMI);
    assert_eq!(u8::from(h.e.groups()[0].version), 3);
}

#[test]
fn v3_to_ex_joins_and_to_in_empty_leaves_with_v3_query() {
    let mut h = Harness::querier(3);
    h.tick(0);
    let a = h.rx(0, 2, &v3_one(1, RecordType::ChangeToExclude, G1, &[]));
    assert_eq!(group_action(&a, G1), Some(mask(&[2])));
    assert_eq!(u8::from(h.e.groups()[0].version), 3);
    let a = h.rx(100, 2, &v3_one(1, RecordType::ChangeToInclude, G1, &[]));
    let tx = transmits(&a);
    assert_eq!(tx.len(), 1);
    let (_, src, dst, repr) = decode(&tx[0].1);
    assert_eq!((src, dst), (OUR_IP, G1));
    match repr {
        igmp::Repr::Query {
            max_resp_code,
            group,
            v3: Some(q),
        } => {
            assert_eq!((max_resp_code, group), (10, G1));
            assert_eq!((q.qrv, q.qqic, q.s_flag), (2, 125, false));
            assert!(q.sources.is_empty());
        }
        other => panic!("expected v3 GSQ, got {other:?}"),
    }
    assert_eq!(group_action(&h.tick(2100), G1), Some(PortMask::EMPTY));
    assert_eq!(h.counter("rx_v3_leave"), 1);
}

#[test]
fn v3_is_in_empty_changes_no_router_state_and_is_ex_joins() {
    let mut h = Harness::new(Config::default(), fast_ports(4, &[1]));
    h.rx(
        0,
        1,
        &v3_one(
            1,
            RecordType::ModeIsExclude,
            G1,
            &[Ipv4Addr::new(1, 2, 3, 4)],
        ),
    );
    assert_eq!(h.ports_of(G1), mask(&[1]));
    // RFC 3376 §6.4.1 EXCLUDE (X,Y) IS_IN ({}): no change, no query (only
    // the host's own tracked state goes).
    let a = h.rx(1, 1, &v3_one(1, RecordType::ModeIsInclude, G1, &[]));
    assert!(a.is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
    assert!(h.e.groups()[0].hosts.is_empty());
    assert_eq!(h.counter("rx_v3_leave"), 1);
}

#[test]
fn v3_allow_joins_and_block_emptying_include_set_leaves() {
    let mut h = Harness::plain();
    let s1 = Ipv4Addr::new(10, 0, 0, 1);
    let s2 = Ipv4Addr::new(10, 0, 0, 2);
    let a = h.rx(0, 1, &v3_one(1, RecordType::AllowNewSources, G1, &[s1]));
    // INCLUDE {s1}: a source entry, no EXCLUDE port.
    assert_eq!(
        a,
        vec![Action::SourcePorts {
            vlan: 0,
            group: G1.into(),
            source: s1.into(),
            ports: Some(mask(&[1]))
        }]
    );
    h.rx(1, 1, &v3_one(1, RecordType::AllowNewSources, G1, &[s2]));
    let a = h.rx(2, 1, &v3_one(1, RecordType::BlockOldSources, G1, &[s1]));
    // Q(G,{s1}), s1 lowered to LMQT; s2 untouched.
    assert_eq!(transmits(&a).len(), 1);
    assert_eq!(h.e.lookup_source(0, G1, s1), Some(mask(&[1])));
    let a = h.rx(3, 1, &v3_one(1, RecordType::BlockOldSources, G1, &[s2]));
    assert_eq!(transmits(&a).len(), 1, "Q(G,{{s2}})");
    assert_eq!(
        h.counter("rx_v3_leave"),
        1,
        "the host's INCLUDE list is empty"
    );
    // After LMQT both are gone, then the group.
    let a = h.tick(2 + 2000);
    assert!(a.contains(&Action::SourcePorts {
        vlan: 0,
        group: G1.into(),
        source: s1.into(),
        ports: None
    }));
    let a = h.tick(3 + 2000);
    assert!(a.contains(&Action::SourcePorts {
        vlan: 0,
        group: G1.into(),
        source: s2.into(),
        ports: None
    }));
    assert_eq!(group_action(&a, G1), Some(PortMask::EMPTY));
    assert_eq!(h.e.group_count(), 0);
    // BLOCK for an unknown host or an EXCLUDE {} host changes no
    // forwarding (EXCLUDE BLOCK(A): A-X-Y get the group timer).
    h.rx(4, 1, &v3_one(2, RecordType::ChangeToExclude, G2, &[]));
    let a = h.rx(5, 1, &v3_one(2, RecordType::BlockOldSources, G2, &[s1]));
    assert_eq!(h.e.lookup_source(0, G2, s1), Some(mask(&[1])));
    assert!(group_action(&a, G2).is_none());
    assert!(
        h.rx(6, 1, &v3_one(9, RecordType::BlockOldSources, G3, &[s1]))
            .is_empty()
    );
    assert_eq!(h.ports_of(G2), mask(&[1]));
    assert_eq!(h.ports_of(G3), PortMask::EMPTY);
}

#[test]
fn v3_multi_record_report_and_unknown_record_type() {
    let mut h = Harness::plain();
    let a = h.rx(
        0,
        1,
        &v3_report(
            1,
            vec![
                (RecordType::ModeIsExclude, G1, vec![]),
                (RecordType::Unknown(9), G2, vec![]),
                (
                    RecordType::ModeIsInclude,
                    G3,
                    vec![Ipv4Addr::new(1, 1, 1, 1)],
                ),
                (
                    RecordType::ModeIsExclude,
                    Ipv4Addr::new(224, 0, 0, 251),
                    vec![],
                ),
            ],
        ),
    );
    assert_eq!(group_action(&a, G1), Some(mask(&[1])));
    // INCLUDE {1.1.1.1}: a source entry, no EXCLUDE port.
    assert_eq!(group_action(&a, G3), None);
    assert_eq!(
        h.e.lookup_source(0, G3, Ipv4Addr::new(1, 1, 1, 1)),
        Some(mask(&[1]))
    );
    assert_eq!(h.ports_of(G2), PortMask::EMPTY);
    assert_eq!(h.counter("rx_v3_unknown_record"), 1);
    assert_eq!(h.counter("rx_link_local_report"), 1);
    assert_eq!(h.counter("rx_v3_records"), 4);
}

#[test]
fn querier_startup_then_periodic() {
    let mut h = Harness::querier(3);
    assert_eq!(h.e.next_deadline(), Some(ms(0)), "first query due at once");
    let a = h.tick(0);
    let tx = transmits(&a);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].0, mask(&[0, 1, 2, 3]));
    let (vlan, src, dst, repr) = decode(&tx[0].1);
    assert_eq!((vlan, src, dst), (0, OUR_IP, ALL_HOSTS));
    match repr {
        igmp::Repr::Query {
            max_resp_code,
            group,
            v3: Some(q),
        } => {
            assert_eq!(max_resp_code, 100);
            assert_eq!(group, Ipv4Addr::UNSPECIFIED);
            assert_eq!((q.s_flag, q.qrv, q.qqic), (false, 2, 125));
        }
        other => panic!("expected v3 query, got {other:?}"),
    }
    // Startup count 2 at QI/4 = 31.25 s, then every 125 s.
    assert_eq!(h.e.next_deadline(), Some(ms(31_250)));
    assert!(transmits(&h.tick(31_249)).is_empty());
    assert_eq!(transmits(&h.tick(31_250)).len(), 1);
    assert_eq!(h.e.querier()[0].startup_queries_left, 0);
    assert!(transmits(&h.tick(31_250 + 124_999)).is_empty());
    assert_eq!(transmits(&h.tick(31_250 + 125_000)).len(), 1);
    assert_eq!(h.counter("tx_general_query"), 3);
}

#[test]
fn a_restarted_switch_solicits_reports_once_unless_it_is_querier() {
    // Not querier: one general query from 0.0.0.0 on every up port, now.
    let mut h = Harness::plain();
    let mut out = Vec::new();
    assert_eq!(h.e.solicit_reports(ms(5), &mut out), 1);
    let tx = transmits(&out);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].0, mask(&[0, 1, 2, 3]));
    let (vlan, src, dst, repr) = decode(&tx[0].1);
    assert_eq!((vlan, src, dst), (0, Ipv4Addr::UNSPECIFIED, ALL_HOSTS));
    assert!(matches!(
        repr,
        igmp::Repr::Query { group, .. } if group == Ipv4Addr::UNSPECIFIED
    ));
    assert_eq!(h.counter("tx_general_query"), 1);
    // And no querier state came of it: still nothing scheduled.
    assert!(h.tick(200_000).is_empty());

    // Querier: the startup queries do it; nothing extra.
    let mut h = Harness::querier(3);
    let mut out = Vec::new();
    assert_eq!(h.e.solicit_reports(ms(0), &mut out), 0);
    assert!(out.is_empty());
    assert_eq!(transmits(&h.tick(0)).len(), 1, "the first startup query");
}

#[test]
fn v2_general_query_format_and_configured_startup() {
    let c = Config {
        querier: true,
        querier_address: Some(OUR_IP),
        igmp_version: Version::V2,
        startup_query_count: Some(3),
        startup_query_interval: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let mut h = Harness::new(c, ports(2));
    let tx = transmits(&h.tick(0));
    let (_, _, _, repr) = decode(&tx[0].1);
    assert_eq!(
        repr,
        igmp::Repr::Query {
            max_resp_code: 100,
            group: Ipv4Addr::UNSPECIFIED,
            v3: None
        }
    );
    assert_eq!(tx[0].1.len(), 60, "padded to the Ethernet minimum");
    assert_eq!(transmits(&h.tick(5_000)).len(), 1);
    assert_eq!(transmits(&h.tick(10_000)).len(), 1);
    assert!(transmits(&h.tick(15_000)).is_empty());
    assert_eq!(h.e.next_deadline(), Some(ms(135_000)));
}

#[test]
fn better_querier_silences_us_for_exactly_oqpi() {
    let mut h = Harness::querier(3);
    h.tick(0);
    let better = Ipv4Addr::new(10, 0, 0, 1);
    let t = 40_000;
    let a = h.rx(t, 2, &query(better, Ipv4Addr::UNSPECIFIED, 100, true));
    assert_eq!(
        forwarded(&a),
        Some(mask(&[0, 1, 3])),
        "queries flood all but ingress"
    );
    assert!(a.contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: mask(&[2])
    }));
    let q = &h.e.querier()[0];
    assert!(!q.we_are_querier);
    assert_eq!(q.querier_address, Some(better.into()));
    assert_eq!(q.other_querier_expires, Some(ms(t + OQPI)));
    // Nothing at our startup/periodic times while the other querier is present.
    for at in [31_250, 100_000, 200_000, t + OQPI - 1] {
        assert!(transmits(&h.tick(at)).is_empty(), "silent at {at}");
    }
    let a = h.tick(t + OQPI);
    assert_eq!(transmits(&a).len(), 1, "resume querying at once");
    assert!(h.e.querier()[0].we_are_querier);
    assert_eq!(h.counter("querier_resumed"), 1);
    assert_eq!(transmits(&h.tick(t + OQPI + 125_000)).len(), 1);
}

#[test]
fn worse_querier_does_not_silence_us() {
    let mut h = Harness::querier(2);
    h.tick(0);
    h.rx(
        1000,
        2,
        &query(
            Ipv4Addr::new(10, 0, 0, 200),
            Ipv4Addr::UNSPECIFIED,
            100,
            false,
        ),
    );
    assert!(h.e.querier()[0].we_are_querier);
    assert_eq!(transmits(&h.tick(31_250)).len(), 1);
    // But it is still a router port.
    assert_eq!(h.e.router_ports(), mask(&[2]));
}

#[test]
fn router_port_from_query_ages_out() {
    let mut h = Harness::plain();
    let a = h.rx(
        0,
        1,
        &query(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::UNSPECIFIED,
            100,
            false,
        ),
    );
    assert!(a.contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: mask(&[1])
    }));
    assert_eq!(
        h.e.routers()[0].learned_from,
        Some(Ipv4Addr::new(10, 0, 0, 1).into())
    );
    assert_eq!(h.e.routers()[0].expires, Some(ms(OQPI)));
    // A non-querier still tracks the other querier.
    assert_eq!(
        h.e.querier()[0].querier_address,
        Some(Ipv4Addr::new(10, 0, 0, 1).into())
    );
    assert!(
        h.tick(OQPI - 1)
            .iter()
            .all(|a| !matches!(a, Action::RouterPorts { .. }))
    );
    assert!(h.tick(OQPI).contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: PortMask::EMPTY
    }));
    assert_eq!(h.counter("router_ports_expired"), 1);
}

#[test]
fn configured_router_port_timeout() {
    let c = Config {
        router_port_timeout: Some(Duration::from_secs(30)),
        ..Config::default()
    };
    let mut h = Harness::new(c, ports(3));
    h.rx(
        0,
        1,
        &query(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::UNSPECIFIED, 100, true),
    );
    assert!(h.tick(29_999).is_empty());
    assert!(h.tick(30_000).contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: PortMask::EMPTY
    }));
}

#[test]
fn zero_source_query_is_not_a_router_nor_a_querier() {
    let mut h = Harness::querier(3);
    h.tick(0);
    let a = h.rx(
        10,
        1,
        &query(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, 100, true),
    );
    assert_eq!(forwarded(&a), Some(mask(&[0, 2, 3])));
    assert!(h.e.router_ports().is_empty());
    assert!(h.e.querier()[0].we_are_querier);
    assert_eq!(h.counter("rx_query_zero_source"), 1);
}

#[test]
fn guard_port_ignores_queries_and_pim() {
    let mut p = ports(3);
    p[1].guard = true;
    let mut h = Harness::new(Config::default(), p);
    let a = h.rx(
        0,
        1,
        &query(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::UNSPECIFIED,
            100,
            false,
        ),
    );
    assert!(a.is_empty());
    let a = h.rx(0, 1, &pim_hello(Ipv4Addr::new(10, 0, 0, 1)));
    assert!(a.is_empty());
    assert_eq!(h.counter("ignored_guard_query"), 1);
    assert_eq!(h.counter("ignored_guard_pim"), 1);
    assert!(h.e.router_ports().is_empty());
}

fn pim_hello(src: Ipv4Addr) -> Vec<u8> {
    use igmpsnoop_control::wire::{ethernet, ipv4, pim};
    let mut f = Vec::new();
    ethernet::Repr {
        dst: ethernet::multicast_mac(pim::ALL_PIM_ROUTERS),
        src: [2, 0, 0, 0, 0x30, 1],
        vlan: 0,
        ethertype: ethernet::ETHERTYPE_IPV4,
    }
    .emit(&mut f);
    // A Hello with a Holdtime option (type 1, length 2, 105 s).
    let mut body = Vec::new();
    pim::Repr {
        msg_type: pim::TYPE_HELLO,
    }
    .emit(&mut body);
    body.extend_from_slice(&[0, 1, 0, 2, 0, 105]);
    let c = igmpsnoop_control::wire::checksum(&{
        let mut z = body.clone();
        z[2] = 0;
        z[3] = 0;
        z
    });
    body[2..4].copy_from_slice(&c.to_be_bytes());
    ipv4::Repr {
        src,
        dst: pim::ALL_PIM_ROUTERS,
        protocol: ipv4::PROTO_PIM,
        ttl: 1,
        ident: 0,
        router_alert: false,
        payload_len: body.len(),
    }
    .emit(&mut f);
    f.extend_from_slice(&body);
    f
}

#[test]
fn pim_hello_learns_router_port_and_floods() {
    let mut h = Harness::plain();
    let a = h.rx(0, 2, &pim_hello(Ipv4Addr::new(10, 0, 0, 254)));
    assert!(a.contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: mask(&[2])
    }));
    assert_eq!(forwarded(&a), Some(mask(&[0, 1, 3])));
    assert_eq!(h.counter("rx_pim_hello"), 1);
    // Reports now go to it.
    assert_eq!(forwarded(&h.rx(1, 0, &v2_report(1, G1))), Some(mask(&[2])));
    assert!(h.tick(OQPI).contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: PortMask::EMPTY
    }));
    // A corrupted hello is rejected.
    let mut bad = pim_hello(Ipv4Addr::new(10, 0, 0, 254));
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(h.rx(2, 2, &bad).is_empty());
    assert_eq!(h.counter("reject_bad_pim"), 1);
}

#[test]
fn received_group_specific_query_lowers_timers() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 2, &v2_report(2, G1));
    // v2 GSQ with max resp 1 s from the real querier, at 5 s: gone at 5 + 2 × 1 s.
    let a = h.rx(5_000, 3, &query(Ipv4Addr::new(10, 0, 0, 1), G1, 10, false));
    assert_eq!(forwarded(&a), Some(mask(&[0, 1, 2])));
    assert_eq!(h.counter("rx_group_query"), 1);
    assert!(group_action(&h.tick(6_999), G1).is_none());
    assert_eq!(group_action(&h.tick(7_000), G1), Some(PortMask::EMPTY));
    // v3 GSQ with a float-coded max resp: 0x8a = (0xa|0x10) << 3 = 208 tenths.
    h.rx(10_000, 1, &v2_report(1, G2));
    h.rx(
        10_000,
        3,
        &query(Ipv4Addr::new(10, 0, 0, 1), G2, 0x8a, true),
    );
    assert!(group_action(&h.tick(10_000 + 41_599), G2).is_none());
    assert_eq!(
        group_action(&h.tick(10_000 + 41_600), G2),
        Some(PortMask::EMPTY)
    );
}

#[test]
fn answering_report_after_group_query_keeps_group() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(5_000, 3, &query(Ipv4Addr::new(10, 0, 0, 1), G1, 10, false));
    h.rx(5_500, 1, &v2_report(1, G1));
    assert!(h.tick(7_000).is_empty());
    assert_eq!(h.ports_of(G1), mask(&[1]));
}

#[test]
fn link_local_reports_counted_not_learned() {
    let mut h = Harness::plain();
    let a = h.rx(0, 1, &v2_report(1, Ipv4Addr::new(224, 0, 0, 251)));
    assert!(a.is_empty());
    assert_eq!(h.e.group_count(), 0);
    assert_eq!(h.counter("rx_link_local_report"), 1);
}

#[test]
fn global_limit_rejects_new_groups_but_existing_refresh() {
    let c = Config {
        max_groups: 2,
        ..Config::default()
    };
    let mut h = Harness::new(c, ports(4));
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 1, &v2_report(1, G2));
    let a = h.rx(1, 1, &v2_report(1, G3));
    assert!(a.is_empty());
    assert_eq!(h.counter("reject_limit_global"), 1);
    // Many more rejections: counted each time (the log line is rate-limited).
    for i in 0..100 {
        h.rx(2 + i, 2, &v2_report(2, G3));
    }
    assert_eq!(h.counter("reject_limit_global"), 101);
    // Existing groups still learn new ports and refresh.
    let a = h.rx(200, 2, &v2_report(2, G1));
    assert_eq!(group_action(&a, G1), Some(mask(&[1, 2])));
    h.rx(100_000, 1, &v2_report(1, G2));
    h.tick(GMI);
    assert_eq!(h.ports_of(G2), mask(&[1]));
    assert_eq!(h.e.counters().ports[2].rejected, 100);
}

#[test]
fn per_port_limit() {
    let mut p = ports(3);
    p[1].max_groups = Some(1);
    let mut h = Harness::new(Config::default(), p);
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 1, &v2_report(1, G2));
    assert_eq!(h.counter("reject_limit_port"), 1);
    assert_eq!(h.ports_of(G2), PortMask::EMPTY);
    // Another port can still join it, and the limited port keeps refreshing.
    assert_eq!(
        group_action(&h.rx(1, 2, &v2_report(2, G2)), G2),
        Some(mask(&[2]))
    );
    h.rx(2, 1, &v2_report(3, G1));
    assert_eq!(h.e.groups()[0].hosts.len(), 2);
    // After its group goes, the port may join another.
    h.tick(GMI + 2);
    h.rx(GMI + 3, 1, &v2_report(1, G3));
    assert_eq!(h.ports_of(G3), mask(&[1]));
}

#[test]
fn vlans_are_separate_and_queries_tagged() {
    let c = Config {
        querier: true,
        querier_address: Some(OUR_IP),
        ..Config::default()
    };
    // Port 0 is VLAN-unaware (VLAN 0 untagged, every VLAN tagged); port 1
    // carries VLAN 10 tagged: the switch snoops VLANs 0 and 10.
    let mut p = ports(2);
    p[1].vlans = Some(igmpsnoop_dataplane::vlan::PortVlans::trunk(None, [10]));
    let mut h = Harness::new(c, p);
    let tx = transmits(&h.tick(0));
    let vlans: Vec<u16> = tx.iter().map(|(_, f)| decode(f).0).collect();
    assert_eq!(vlans, vec![0, 10]);
    let a = h.rx(1, 1, &v2_report_vlan(1, 10, G1));
    assert!(a.contains(&Action::GroupPorts {
        vlan: 10,
        group: G1.into(),
        ports: mask(&[1])
    }));
    assert_eq!(h.e.lookup(0, G1), PortMask::EMPTY);
    // A better querier on VLAN 10 silences VLAN 10 only.
    let mut q = query(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::UNSPECIFIED, 100, true);
    retag(&mut q, 10);
    h.rx(2, 0, &q);
    let views = h.e.querier();
    assert!(views[0].we_are_querier && !views[1].we_are_querier);
    // GSQ after a leave on VLAN 10 is tagged.
    let mut leave = v2_leave(1, G1);
    retag(&mut leave, 10);
    let tx = transmits(&h.rx(3, 1, &leave));
    assert_eq!(decode(&tx[0].1).0, 10);
}

/// Insert an 802.1Q tag into an untagged frame.
fn retag(f: &mut Vec<u8>, vlan: u16) {
    let mut tag = vec![0x81, 0x00];
    tag.extend_from_slice(&vlan.to_be_bytes());
    f.splice(12..12, tag);
}

#[test]
fn static_groups() {
    let mut h = Harness::plain();
    let mut out = Vec::new();
    h.e.add_static_group(0, G1, 2, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Action::GroupPorts {
            vlan: 0,
            group: G1.into(),
            ports: mask(&[2])
        }]
    );
    assert!(
        h.e.add_static_group(0, Ipv4Addr::new(224, 0, 0, 5), 2, &mut out)
            .is_err()
    );
    assert!(
        h.e.add_static_group(0, Ipv4Addr::new(10, 0, 0, 5), 2, &mut out)
            .is_err()
    );
    assert!(h.e.add_static_group(0, G1, 9, &mut out).is_err());
    let v = &h.e.groups()[0];
    assert!(v.is_static && v.expires.is_none());
    // Never ages; a leave keeps it.
    h.rx(0, 2, &v2_report(1, G1));
    h.rx(10, 2, &v2_leave(1, G1));
    h.tick(10 * GMI);
    assert_eq!(h.ports_of(G1), mask(&[2]));
    out.clear();
    h.e.del_static_group(0, G1, 2, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Action::GroupPorts {
            vlan: 0,
            group: G1.into(),
            ports: PortMask::EMPTY
        }]
    );
    assert!(h.e.del_static_group(0, G1, 2, &mut out).is_err());
    // A learned membership outlives the removal of a static one on its port.
    h.e.add_static_group(0, G2, 1, &mut out).unwrap();
    h.rx(20, 1, &v2_report(1, G2));
    out.clear();
    h.e.del_static_group(0, G2, 1, &mut out).unwrap();
    assert!(out.is_empty());
    assert_eq!(group_action(&h.tick(20 + GMI), G2), Some(PortMask::EMPTY));
}

#[test]
fn port_down_flushes_and_port_up_queries() {
    let mut h = Harness::querier(3);
    h.tick(0);
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(0, 2, &v2_report(2, G1));
    h.rx(
        0,
        1,
        &query(
            Ipv4Addr::new(10, 0, 0, 200),
            Ipv4Addr::UNSPECIFIED,
            100,
            true,
        ),
    );
    assert_eq!(h.e.router_ports(), mask(&[1]));
    let mut out = Vec::new();
    h.e.port_down(1, &mut out);
    assert!(out.contains(&Action::GroupPorts {
        vlan: 0,
        group: G1.into(),
        ports: mask(&[2])
    }));
    assert!(out.contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports: PortMask::EMPTY
    }));
    // Down ports get no general queries.
    let tx = transmits(&h.tick(31_250));
    assert_eq!(tx[0].0, mask(&[0, 2, 3]));
    out.clear();
    h.e.port_up(ms(40_000), 1, &mut out);
    let tx = transmits(&out);
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0].0, mask(&[1]));
}

#[test]
fn config_errors() {
    let c = Config {
        querier: true,
        ..Config::default()
    };
    assert_eq!(
        Engine::new(c, ports(2), ms(0)).err(),
        Some(ConfigError::NoQuerierAddress)
    );
    assert_eq!(
        Engine::new(Config::default(), ports(65), ms(0)).err(),
        Some(ConfigError::TooManyPorts(65))
    );
    // Explicit 0.0.0.0 is allowed and then any real querier wins.
    let c = Config {
        querier: true,
        querier_address: Some(Ipv4Addr::UNSPECIFIED),
        ..Config::default()
    };
    let mut h = Harness::new(c, ports(2));
    let (_, src, _, _) = decode(&transmits(&h.tick(0))[0].1);
    assert_eq!(src, Ipv4Addr::UNSPECIFIED);
    h.rx(
        1,
        1,
        &query(
            Ipv4Addr::new(10, 0, 0, 250),
            Ipv4Addr::UNSPECIFIED,
            100,
            true,
        ),
    );
    assert!(!h.e.querier()[0].we_are_querier);
}

#[test]
fn views_and_counters_serialize() {
    let mut h = Harness::querier(3);
    h.tick(0);
    h.rx(0, 1, &v2_report(1, G1));
    let g = &h.e.groups()[0];
    assert_eq!(
        (g.vlan, g.group, g.port, g.version, g.is_static),
        (0, G1.into(), 1, Version::V2, false)
    );
    assert_eq!(g.hosts, vec![host_mac(1)]);
    assert_eq!(g.expires, Some(ms(GMI)));
    let q = &h.e.querier()[0];
    assert_eq!(q.our_address, Some(OUR_IP.into()));
    assert_eq!(q.next_general_query, Some(ms(31_250)));
    assert_eq!(u8::from(q.version), 3);
    let json = serde_json::to_value(h.e.counters()).unwrap();
    assert_eq!(json["rx_v2_report"], 1);
    assert_eq!(json["ports"][1]["rx"], 1);
    serde_json::to_string(&h.e.groups()).unwrap();
    serde_json::to_string(&h.e.routers()).unwrap();
    serde_json::to_string(&h.e.querier()).unwrap();
    assert!(h.e.config().flood_unregistered);
    assert!(
        h.e.counters()
            .iter()
            .any(|(n, v)| n == "tx_general_query" && v == 1)
    );
    assert_eq!(h.e.counters().ports[0].tx, 1);
}

#[test]
fn unknown_igmp_type_is_flooded_and_counted() {
    let mut h = Harness::plain();
    let mut f = v2_report(1, G1);
    // Turn it into type 0x13 (DVMRP) and fix the IGMP checksum.
    let igmp_at = 14 + 24;
    f[igmp_at] = 0x13;
    f[igmp_at + 2] = 0;
    f[igmp_at + 3] = 0;
    let c = igmpsnoop_control::wire::checksum(&f[igmp_at..igmp_at + 8]);
    f[igmp_at + 2..igmp_at + 4].copy_from_slice(&c.to_be_bytes());
    let a = h.rx(0, 1, &f);
    assert_eq!(forwarded(&a), Some(mask(&[0, 2, 3])));
    assert_eq!(h.counter("reject_unknown_igmp_type"), 1);
    assert_eq!(h.e.group_count(), 0);
}

#[test]
fn malformed_frames_are_counted_by_reason() {
    let mut h = Harness::plain();
    let good = v2_report(1, G1);
    let ip = 14;
    let igmp_at = 14 + 24;
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut f = good.clone();
    f[ip + 10] ^= 0x55;
    cases.push(("reject_bad_ip_checksum", f));
    let mut f = good.clone();
    f[igmp_at + 7] ^= 1;
    cases.push(("reject_bad_igmp_checksum", f));
    cases.push(("reject_truncated", good[..14 + 24 + 4].to_vec()));
    cases.push(("reject_truncated", good[..20].to_vec()));
    let mut f = good.clone();
    f[ip] = 0x44;
    cases.push(("reject_bad_ihl", f));
    let mut f = good.clone();
    f[ip] = 0x56;
    cases.push(("reject_bad_ip_header", f));
    cases.push(("reject_bad_ttl", reip(&good, |h| h[8] = 2)));
    cases.push(("reject_not_multicast", reip(&good, |h| h[16] = 10)));
    cases.push(("reject_fragment", reip(&good, |h| h[6] = 0x20)));
    cases.push((
        "reject_bad_group",
        igmp_frame(
            1,
            0,
            G1,
            &igmp::Repr::ReportV2 {
                group: Ipv4Addr::new(10, 1, 1, 1),
            },
        ),
    ));
    // v3 report whose record claims 5 sources but carries 1.
    let mut f = v3_one(
        1,
        RecordType::AllowNewSources,
        G1,
        &[Ipv4Addr::new(1, 1, 1, 1)],
    );
    f[igmp_at + 8 + 3] = 5;
    cases.push(("reject_source_overrun", f));

    for (name, f) in cases {
        let before = h.counter(name);
        let a = h.rx(0, 1, &f);
        assert!(a.is_empty(), "{name}: no action");
        assert_eq!(h.counter(name), before + 1, "{name}");
    }
    assert_eq!(h.e.group_count(), 0);
    h.rx(0, 1, &[0u8; 10]);
    assert_eq!(h.counter("rx_not_ipv4"), 1);
    h.rx(0, 9, &good);
    assert_eq!(h.counter("reject_bad_port"), 1);
    assert_eq!(h.e.group_count(), 0);
}

/// Edit the IPv4 header of a frame and fix its checksum.
fn reip(f: &[u8], edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut f = f.to_vec();
    let h = &mut f[14..14 + 24];
    edit(h);
    h[10] = 0;
    h[11] = 0;
    let c = igmpsnoop_control::wire::checksum(h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn next_deadline_tracks_earliest_timer() {
    let mut h = Harness::plain();
    assert_eq!(h.e.next_deadline(), None);
    h.rx(0, 1, &v2_report(1, G1));
    h.rx(1000, 1, &v2_report(1, G2));
    assert_eq!(h.e.next_deadline(), Some(ms(GMI)));
    h.rx(2000, 1, &v2_leave(1, G2));
    assert_eq!(h.e.next_deadline(), Some(ms(3000)));
}
