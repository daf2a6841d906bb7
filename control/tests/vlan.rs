//! Per-VLAN snooping: each VLAN its own link, with its own querier (its
//! own source address, election and timers), its own router ports, and
//! queries and forwarded reports only on the ports that carry it.

mod common;

use std::collections::BTreeMap;

use common::*;
use core::net::{Ipv4Addr, Ipv6Addr};
use igmpsnoop_control::engine::{Action, AddrFamily, Config, ConfigError, Engine, PortConfig};
use igmpsnoop_control::port::PortMask;
use igmpsnoop_control::table::TableError;
use igmpsnoop_control::wire::{frame, igmp, mld};
use igmpsnoop_dataplane::vlan::PortVlans;

/// Our global query source; VLAN 20 has its own, lower one.
const VLAN20_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

/// p0: access 10; p1: trunk carrying 10 and 20 tagged (no PVID); p2 and
/// p3: access 20.
fn vlan_ports() -> Vec<PortConfig> {
    let mut p = ports(4);
    p[0].vlans = Some(PortVlans::access(10));
    p[1].vlans = Some(PortVlans::trunk(None, [10, 20]));
    p[2].vlans = Some(PortVlans::access(20));
    p[3].vlans = Some(PortVlans::access(20));
    p
}

fn querier_config() -> Config {
    Config {
        querier: true,
        querier_address: Some(OUR_IP),
        vlan_querier_address: BTreeMap::from([(20, VLAN20_IP)]),
        ..Config::default()
    }
}

/// (ports, VLAN tag, source, IGMP message) of every IGMP frame sent.
fn igmp_sent(actions: &[Action]) -> Vec<(PortMask, u16, Ipv4Addr, igmp::Repr)> {
    transmits(actions)
        .into_iter()
        .filter(|(_, f)| frame::parse(f).is_ok())
        .map(|(p, f)| {
            let (vlan, src, _, repr) = decode(&f);
            (p, vlan, src, repr)
        })
        .collect()
}

fn tagged(vlan: u16, mut f: Vec<u8>) -> Vec<u8> {
    let mut tag = vec![0x81, 0x00];
    tag.extend_from_slice(&vlan.to_be_bytes());
    f.splice(12..12, tag);
    f
}

fn router_actions(actions: &[Action]) -> Vec<(AddrFamily, u16, PortMask)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::RouterPorts {
                family,
                vlan,
                ports,
            } => Some((*family, *vlan, *ports)),
            _ => None,
        })
        .collect()
}

#[test]
fn general_queries_per_vlan_with_its_source_on_its_ports_only() {
    let mut h = Harness::new(querier_config(), vlan_ports());
    let sent = igmp_sent(&h.tick(0));
    let seen: Vec<(PortMask, u16, Ipv4Addr)> =
        sent.iter().map(|(p, v, s, _)| (*p, *v, *s)).collect();
    // No VLAN 0: every port has VLAN config. Tagged with the VLAN; the
    // fast path puts each copy in its port's format.
    assert_eq!(
        seen,
        vec![
            (mask(&[0, 1]), 10, OUR_IP),
            (mask(&[1, 2, 3]), 20, VLAN20_IP),
        ]
    );
    assert!(sent.iter().all(|(_, _, _, r)| matches!(
        r,
        igmp::Repr::Query { group, .. } if group.is_unspecified()
    )));
    let views = h.e.querier();
    let vlans: Vec<(u16, Option<std::net::IpAddr>)> =
        views.iter().map(|q| (q.vlan, q.our_address)).collect();
    assert_eq!(
        vlans,
        vec![(10, Some(OUR_IP.into())), (20, Some(VLAN20_IP.into()))]
    );
}

#[test]
fn a_switch_without_vlan_config_queries_vlan_0_on_every_port() {
    let mut h = Harness::querier(3);
    let seen: Vec<(PortMask, u16)> = igmp_sent(&h.tick(0))
        .iter()
        .map(|(p, v, _, _)| (*p, *v))
        .collect();
    assert_eq!(seen, vec![(mask(&[0, 1, 2, 3]), 0)]);
}

#[test]
fn election_is_per_vlan_against_that_vlans_own_address() {
    let mut h = Harness::new(querier_config(), vlan_ports());
    h.tick(0);
    // 10.0.0.50 is below our global address (VLAN 10's) but above VLAN
    // 20's own: it wins VLAN 10 (RFC 3376 §6.6.2) and loses VLAN 20.
    let other = Ipv4Addr::new(10, 0, 0, 50);
    let q = query(other, Ipv4Addr::UNSPECIFIED, 100, true);
    h.rx(1, 1, &tagged(10, q.clone()));
    h.rx(2, 1, &tagged(20, q));
    let views = h.e.querier();
    let state: Vec<(u16, bool, Option<std::net::IpAddr>)> = views
        .iter()
        .map(|q| (q.vlan, q.we_are_querier, q.querier_address))
        .collect();
    assert_eq!(
        state,
        vec![
            (10, false, Some(other.into())),
            (20, true, Some(VLAN20_IP.into()))
        ]
    );
    // VLAN 20 keeps querying at its interval; VLAN 10 is silent.
    let sent = igmp_sent(&h.tick(31_250));
    let vlans: Vec<u16> = sent.iter().map(|(_, v, _, _)| *v).collect();
    assert_eq!(vlans, vec![20]);
}

#[test]
fn a_query_makes_a_router_port_of_its_vlan_only() {
    let mut h = Harness::new(Config::default(), vlan_ports());
    assert!(router_actions(&h.tick(0)).is_empty());
    let q = query(Ipv4Addr::new(10, 0, 0, 9), Ipv4Addr::UNSPECIFIED, 100, true);
    let a = h.rx(1, 1, &tagged(20, q));
    assert_eq!(router_actions(&a), vec![(AddrFamily::Ipv4, 20, mask(&[1]))]);
    // The query itself is flooded within VLAN 20 only.
    assert!(a.contains(&Action::Forward {
        ports: mask(&[2, 3])
    }));
    // A VLAN-20 report goes to VLAN 20's router port; a VLAN-10 one
    // nowhere (p1 is no router port of VLAN 10).
    let a = h.rx(2, 2, &v2_report(2, G1));
    assert!(a.contains(&Action::Forward { ports: mask(&[1]) }));
    let a = h.rx(3, 0, &v2_report(3, G1));
    assert!(!a.iter().any(|a| matches!(a, Action::Forward { .. })));
    let routers: Vec<(u16, u8)> = h.e.routers().iter().map(|r| (r.vlan, r.port)).collect();
    assert_eq!(routers, vec![(20, 1)]);
}

#[test]
fn static_router_ports_are_routers_of_every_vlan_they_carry() {
    let mut p = vlan_ports();
    p[1].static_router = true;
    p[3].static_router = true;
    let mut h = Harness::new(Config::default(), p);
    assert_eq!(
        router_actions(&h.tick(0)),
        vec![
            (AddrFamily::Ipv4, 10, mask(&[1])),
            (AddrFamily::Ipv4, 20, mask(&[1, 3])),
        ]
    );
    assert_eq!(h.e.static_router_ports(), mask(&[1, 3]));
}

#[test]
fn untagged_frames_belong_to_the_pvid() {
    let mut h = Harness::new(Config::default(), vlan_ports());
    // Untagged on access port p2: VLAN 20.
    let a = h.rx(0, 2, &v2_report(2, G1));
    assert!(a.contains(&Action::GroupPorts {
        vlan: 20,
        group: G1.into(),
        ports: mask(&[2])
    }));
    assert_eq!(h.e.lookup(20, G1), mask(&[2]));
    assert_eq!(h.e.lookup(0, G1), PortMask::EMPTY);
    // Tagged 10 on the trunk: VLAN 10, apart from VLAN 20's group.
    h.rx(1, 1, &v2_report_vlan(3, 10, G1));
    assert_eq!(h.e.lookup(10, G1), mask(&[1]));
    assert_eq!(h.e.lookup(20, G1), mask(&[2]));
    // Untagged on the PVID-less trunk, or a VLAN the port does not carry:
    // counted, nothing learned.
    assert!(h.rx(2, 1, &v2_report(4, G2)).is_empty());
    assert!(h.rx(3, 0, &v2_report_vlan(5, 20, G2)).is_empty());
    assert_eq!(h.counter("reject_vlan_not_carried"), 2);
    assert_eq!(h.e.group_count(), 2);
}

#[test]
fn leave_queries_go_to_the_port_tagged_with_the_vlans_source() {
    let mut h = Harness::new(querier_config(), vlan_ports());
    h.tick(0);
    h.rx(1, 3, &v2_report(3, G1));
    let a = h.rx(2, 3, &v2_leave(3, G1));
    let sent = igmp_sent(&a);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (ports, vlan, src, repr) = &sent[0];
    assert_eq!((*ports, *vlan, *src), (mask(&[3]), 20, VLAN20_IP));
    assert!(matches!(repr, igmp::Repr::Query { group, .. } if *group == G1));
}

#[test]
fn a_port_comes_up_queried_on_its_vlans_only() {
    let mut h = Harness::new(querier_config(), vlan_ports());
    h.tick(0);
    let mut out = Vec::new();
    h.e.port_down(2, &mut out);
    out.clear();
    h.e.port_up(ms(5), 2, &mut out);
    let seen: Vec<(PortMask, u16)> = igmp_sent(&out)
        .iter()
        .map(|(p, v, _, _)| (*p, *v))
        .collect();
    assert_eq!(seen, vec![(mask(&[2]), 20)]);
}

#[test]
fn static_membership_needs_a_port_of_the_vlan() {
    let mut h = Harness::new(Config::default(), vlan_ports());
    let mut out = Vec::new();
    assert_eq!(
        h.e.add_static_group(10, G1, 2, &mut out),
        Err(TableError::VlanNotCarried { port: 2, vlan: 10 })
    );
    assert!(out.is_empty());
    h.e.add_static_group(20, G1, 2, &mut out).unwrap();
    assert_eq!(h.e.lookup(20, G1), mask(&[2]));
}

#[test]
fn mld_runs_the_same_per_vlan_with_its_own_source() {
    let ll: Ipv6Addr = "fe80::20".parse().unwrap();
    let c = Config {
        vlan_mld_querier_address: BTreeMap::from([(20, ll)]),
        ..querier_config()
    };
    let mut h = Harness::both(c.clone(), vlan_ports());
    let a = h.tick(0);
    let mld: Vec<(PortMask, u16, Ipv6Addr)> = transmits(&a)
        .into_iter()
        .filter_map(|(p, f)| {
            let f6 = frame::parse_ipv6(&f).ok()?;
            let pkt = mld::Packet::new_checked(f6.payload).ok()?;
            assert_eq!(pkt.msg_type(), mld::TYPE_QUERY);
            Some((p, f6.eth.vlan, f6.ip.src))
        })
        .collect();
    assert_eq!(
        mld,
        vec![
            (mask(&[0, 1]), 10, c.mld_source()),
            (mask(&[1, 2, 3]), 20, ll),
        ]
    );
    // An MLD router port of VLAN 10 is none of IGMP's, nor of VLAN 20.
    let q = mld_query_from("fe80::1".parse().unwrap());
    let a = h.rx(1, 1, &tagged(10, q));
    assert_eq!(router_actions(&a), vec![(AddrFamily::Ipv6, 10, mask(&[1]))]);
}

fn mld_query_from(src: Ipv6Addr) -> Vec<u8> {
    let repr = mld::Repr::Query {
        max_resp_code: 10_000,
        address: Ipv6Addr::UNSPECIFIED,
        v2: Some(mld::QueryV2 {
            s_flag: false,
            qrv: 2,
            qqic: 125,
            sources: vec![],
        }),
    };
    frame::build_mld(
        [0x02, 0, 0, 0, 0x20, 1],
        0,
        src,
        "ff02::1".parse().unwrap(),
        &repr,
    )
}

#[test]
fn bad_port_vlans_are_refused_naming_the_port() {
    let mut p = ports(2);
    p[1].vlans = Some(PortVlans::trunk(Some(10), [4095]));
    let e = Engine::new(Config::default(), p, ms(0)).unwrap_err();
    assert_eq!(
        e,
        ConfigError::PortVlan {
            port: "p1".into(),
            vlan: 4095
        }
    );
    assert!(e.to_string().contains("p1") && e.to_string().contains("4095"));
}
