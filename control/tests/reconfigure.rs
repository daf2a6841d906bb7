//! Engine::reconfigure (the daemon's SIGHUP) with an injected clock: live
//! settings take effect at once, restart-only ones are named and kept, and a
//! bad configuration changes nothing.

mod common;

use common::*;
use core::net::Ipv4Addr;
use core::time::Duration;
use igmpsnoop_control::engine::{Action, AddrFamily, Config, ConfigError, PortConfig, Version};
use igmpsnoop_control::port::PortMask;
use igmpsnoop_control::wire::igmp;

fn reconfigure(
    h: &mut Harness,
    t: u64,
    config: Config,
    ports: Vec<PortConfig>,
) -> (
    Result<igmpsnoop_control::Reconfigured, ConfigError>,
    Vec<Action>,
) {
    let mut out = Vec::new();
    // IGMP tests: MLD off, as the harness runs it.
    let config = Config {
        mld: false,
        ..config
    };
    let r = h.e.reconfigure(config, ports, ms(t), &mut out);
    (r, out)
}

fn querier_config(address: Ipv4Addr) -> Config {
    Config {
        querier: true,
        querier_address: Some(address),
        ..Config::default()
    }
}

fn general_queries(actions: &[Action]) -> Vec<(PortMask, Ipv4Addr, u8)> {
    transmits(actions)
        .into_iter()
        .map(|(ports, f)| {
            let (_, src, dst, repr) = decode(&f);
            assert_eq!(dst, ALL_HOSTS);
            let version = match repr {
                igmp::Repr::Query { v3: Some(_), .. } => 3,
                igmp::Repr::Query { v3: None, .. } => 2,
                other => panic!("not a query: {other:?}"),
            };
            (ports, src, version)
        })
        .collect()
}

#[test]
fn querier_switched_on_sends_startup_queries_then_off_stops() {
    let mut h = Harness::plain();
    assert!(h.tick(0).is_empty());
    let (r, _) = reconfigure(&mut h, 5_000, querier_config(OUR_IP), ports(4));
    let r = r.expect("valid");
    assert_eq!(r.applied, vec!["querier", "querier-address"]);
    assert!(r.need_restart.is_empty());
    // RFC 3376 §8.6/§8.7: startup queries at QI/4 (31.25 s), RV (2) of them.
    let q = general_queries(&h.tick(5_000));
    assert_eq!(q, vec![(mask(&[0, 1, 2, 3]), OUR_IP, 3)]);
    assert_eq!(h.e.querier()[0].startup_queries_left, 1);
    assert!(h.tick(5_000 + 31_249).is_empty());
    assert_eq!(general_queries(&h.tick(5_000 + 31_250)).len(), 1);

    let (r, _) = reconfigure(&mut h, 40_000, Config::default(), ports(4));
    assert_eq!(r.unwrap().applied, vec!["querier", "querier-address"]);
    assert!(!h.e.querier()[0].we_are_querier);
    assert_eq!(h.e.next_deadline(), None, "no query pending");
    assert!(h.tick(40_000 + secs(600)).is_empty());
}

#[test]
fn querier_address_and_version_apply_to_the_next_query() {
    let mut h = Harness::querier(3);
    assert_eq!(general_queries(&h.tick(0))[0].2, 3);
    let new = Ipv4Addr::new(10, 0, 0, 50);
    let config = Config {
        igmp_version: Version::V2,
        ..querier_config(new)
    };
    let (r, _) = reconfigure(&mut h, 1_000, config, ports(4));
    assert_eq!(r.unwrap().applied, vec!["querier-address", "igmp-version"]);
    // Still in startup: the second query is due at QI/4, not re-started.
    assert!(h.tick(31_249).is_empty());
    assert_eq!(
        general_queries(&h.tick(31_250)),
        vec![(mask(&[0, 1, 2, 3]), new, 2)]
    );
}

#[test]
fn static_router_ports_change_at_once() {
    let mut h = Harness::plain();
    let mut p = ports(4);
    p[2].static_router = true;
    let (r, out) = reconfigure(&mut h, 10, Config::default(), p.clone());
    assert_eq!(r.unwrap().applied, vec!["router-port"]);
    assert_eq!(out, router_ports(mask(&[2])));
    assert!(h.e.routers()[0].is_static);
    // A report is now forwarded to the router port.
    let a = h.rx(20, 1, &v2_report(1, G1));
    assert!(a.contains(&Action::Forward { ports: mask(&[2]) }));

    // The same configuration again changes nothing and says so.
    let (r, out) = reconfigure(&mut h, 30, Config::default(), p);
    assert!(r.unwrap().is_empty());
    assert!(out.is_empty());

    let (r, out) = reconfigure(&mut h, 40, Config::default(), ports(4));
    assert_eq!(r.unwrap().applied, vec!["router-port"]);
    assert_eq!(out, router_ports(PortMask::EMPTY));
}

#[test]
fn fast_leave_switched_on_removes_at_once_on_leave() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    let mut p = ports(4);
    p[1].fast_leave = true;
    let (r, _) = reconfigure(&mut h, 10, Config::default(), p);
    assert_eq!(r.unwrap().applied, vec!["fast-leave"]);
    let a = h.rx(20, 1, &v2_leave(1, G1));
    assert!(a.contains(&Action::GroupPorts {
        vlan: 0,
        group: G1.into(),
        ports: PortMask::EMPTY
    }));
    assert!(transmits(&a).is_empty(), "no group-specific query");
}

#[test]
fn guard_port_switched_on_ignores_queries_there() {
    let mut h = Harness::plain();
    let mut p = ports(4);
    p[3].guard = true;
    let (r, _) = reconfigure(&mut h, 0, Config::default(), p);
    assert_eq!(r.unwrap().applied, vec!["guard-port"]);
    h.rx(
        10,
        3,
        &query(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::UNSPECIFIED, 100, true),
    );
    assert!(
        h.e.routers().is_empty(),
        "a query on a guard port makes no router port"
    );
}

#[test]
fn port_group_limit_applies_to_new_groups() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    let mut p = ports(4);
    p[1].max_groups = Some(1);
    let (r, _) = reconfigure(&mut h, 10, Config::default(), p);
    assert_eq!(r.unwrap().applied, vec!["max-groups-per-port"]);
    h.rx(20, 1, &v2_report(1, G2));
    assert_eq!(h.ports_of(G1), mask(&[1]), "the member it had stays");
    assert_eq!(h.ports_of(G2), PortMask::EMPTY, "a second group is refused");
    h.rx(30, 2, &v2_report(2, G2));
    assert_eq!(h.ports_of(G2), mask(&[2]), "other ports are not limited");
}

#[test]
fn timers_table_size_and_ports_need_a_restart_and_are_kept() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v2_report(1, G1));
    let config = Config {
        robustness: 3,
        query_interval: Duration::from_secs(60),
        max_groups: 10,
        flood_unregistered: false,
        ..Config::default()
    };
    let mut p = ports(5);
    p[4].fast_leave = true;
    let (r, _) = reconfigure(&mut h, 10, config, p);
    let r = r.unwrap();
    assert_eq!(r.applied, vec!["flood-unregistered"]);
    assert_eq!(
        r.need_restart,
        vec!["robustness", "query-interval", "max-groups", "port"]
    );
    let c = h.e.config();
    assert_eq!(
        (c.robustness, c.query_interval),
        (2, Duration::from_secs(125))
    );
    assert_eq!(c.max_groups, 65536);
    assert!(!c.flood_unregistered);
    assert_eq!(h.e.port_configs().len(), 4);
    // The membership still expires at the running GMI (260 s).
    assert!(h.tick(259_999).is_empty());
    assert_eq!(h.tick(260_000).len(), 1);
}

#[test]
fn a_bad_configuration_changes_nothing() {
    let mut h = Harness::plain();
    let mut p = ports(4);
    p[1].static_router = true;
    let no_address = Config {
        querier: true,
        ..Config::default()
    };
    let (r, out) = reconfigure(&mut h, 0, no_address, p.clone());
    assert_eq!(r, Err(ConfigError::NoQuerierAddress));
    assert!(out.is_empty());
    assert!(h.e.routers().is_empty());
    assert!(!h.e.config().querier);

    // Valid on its own, but IGMPv2 cannot carry the running 30 s response
    // interval: refused as a whole.
    let mut h = Harness::new(
        Config {
            query_response_interval: Duration::from_secs(30),
            ..Config::default()
        },
        ports(4),
    );
    let v2 = Config {
        igmp_version: Version::V2,
        ..Config::default()
    };
    let (r, _) = reconfigure(&mut h, 0, v2, p);
    assert!(matches!(r, Err(ConfigError::ResponseTooLong(_))), "{r:?}");
    assert_eq!(h.e.config().igmp_version, Version::V3);
    assert!(h.e.routers().is_empty());
}

fn router_ports(ports: PortMask) -> Vec<Action> {
    vec![Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv4,
        ports,
    }]
}
