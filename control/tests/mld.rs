//! MLD in the engine (RFC 2710, RFC 3810): what is MLD's own. The state
//! machine shared with IGMP (source filters, timers, limits, host tracking)
//! is tested once, by the IGMP tests; here: kernel frames, the MLDv1
//! compatibility mode, the querier and its election, the link-local
//! source rules, ff02::/16, and bad input.

mod common;

use common::*;
use core::net::{Ipv4Addr, Ipv6Addr};
use igmpsnoop_control::engine::{Action, AddrFamily, Config, Version};
use igmpsnoop_control::port::PortMask;
use igmpsnoop_control::wire::mld::{self, AddressRecordRepr, QueryV2, RecordType};
use igmpsnoop_control::wire::{frame, ipv6};

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn captured(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/fuzz/corpus/kernel-{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let t = std::fs::read_to_string(&path).unwrap();
    let t = t.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap())
        .collect()
}

const ASM: &str = "ff3e::1:1";
const SSM: &str = "ff3e::2:2";
/// The EUI-64 link-local address of the default switch MAC 02:00:00:00:00:01.
const OURS: &str = "fe80::ff:fe00:1";

fn mld_frame(n: u8, src: Ipv6Addr, dst: Ipv6Addr, repr: &mld::Repr) -> Vec<u8> {
    frame::build_mld(host_mac(n), 0, src, dst, repr)
}

fn host6(n: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(n))
}

fn v2_record(n: u8, t: RecordType, group: &str, sources: &[&str]) -> Vec<u8> {
    let records = vec![AddressRecordRepr {
        record_type: t,
        address: a(group),
        sources: sources.iter().map(|s| a(s)).collect(),
    }];
    mld_frame(n, host6(n), a("ff02::16"), &mld::Repr::ReportV2 { records })
}

fn mld_query(src: Ipv6Addr, group: Ipv6Addr, max_resp_code: u16, v2: bool) -> Vec<u8> {
    let repr = mld::Repr::Query {
        max_resp_code,
        address: group,
        v2: v2.then(|| QueryV2 {
            s_flag: false,
            qrv: 2,
            qqic: 125,
            sources: vec![],
        }),
    };
    let dst = if group.is_unspecified() {
        a("ff02::1")
    } else {
        group
    };
    frame::build_mld([0x02, 0, 0, 0, 0x20, 1], 0, src, dst, &repr)
}

fn mld_harness(querier: bool) -> Harness {
    Harness::both(
        Config {
            querier,
            querier_address: Some(OUR_IP),
            ..Config::default()
        },
        ports(4),
    )
}

/// Decode a transmitted MLD frame: hop limit 1, Router Alert, checksum.
fn decode6(f: &[u8]) -> (Ipv6Addr, Ipv6Addr, mld::Repr) {
    let p = frame::parse_ipv6(f).expect("IPv6 frame");
    assert_eq!(p.ip.hop_limit, 1);
    assert_eq!(p.ip.router_alert, Some(ipv6::ROUTER_ALERT_MLD));
    assert_eq!(
        p.eth.dst,
        igmpsnoop_control::wire::ethernet::multicast_mac_v6(p.ip.dst)
    );
    let pkt = mld::Packet::new_checked(p.payload).unwrap();
    assert!(pkt.verify_checksum(p.ip.src, p.ip.dst));
    (p.ip.src, p.ip.dst, mld::Repr::parse(&pkt).unwrap())
}

fn mld_transmits(actions: &[Action]) -> Vec<(PortMask, Ipv6Addr, Ipv6Addr, mld::Repr)> {
    transmits(actions)
        .into_iter()
        .filter(|(_, f)| frame::parse_ipv6(f).is_ok())
        .map(|(p, f)| {
            let (s, d, r) = decode6(&f);
            (p, s, d, r)
        })
        .collect()
}

#[test]
fn kernel_mldv2_join_and_leave() {
    let mut h = mld_harness(false);
    let act = h.rx(0, 1, &captured("mldv2-to-ex"));
    assert_eq!(h.e.lookup(0, a(ASM)), mask(&[1]));
    assert!(act.contains(&Action::GroupPorts {
        vlan: 0,
        group: a(ASM).into(),
        ports: mask(&[1])
    }));
    // No router port: the report goes nowhere (RFC 4541 §2.1.1).
    assert!(!act.iter().any(|x| matches!(x, Action::Forward { .. })));
    let g = &h.e.groups()[0];
    assert_eq!((g.family, g.version), (AddrFamily::Ipv6, Version::V2));
    assert_eq!(g.hosts, vec![[0x02, 0, 0, 0, 0, 0x0a]]);
    assert_eq!(h.e.lookup(0, Ipv4Addr::new(239, 1, 1, 1)), PortMask::EMPTY);
    assert_eq!(h.counter("mld_rx_v2_report"), 1);
    assert_eq!(h.counter("rx_v3_report"), 0, "IGMP's counters untouched");
    // Source-specific joins, then blocks: (S,G) entries as for IGMPv3.
    h.rx(10, 1, &captured("mldv2-allow-1"));
    h.rx(11, 1, &captured("mldv2-allow-2"));
    assert_eq!(
        h.e.lookup_source(0, a(SSM), a("2001:db8::2")),
        Some(mask(&[1]))
    );
    assert_eq!(h.e.source_entries().len(), 2);
    assert_eq!(h.e.source_entries()[0].family, AddrFamily::Ipv6);
}

#[test]
fn leave_queries_come_from_our_link_local_address() {
    let mut h = mld_harness(true);
    h.tick(0);
    h.rx(1, 1, &captured("mldv2-to-ex"));
    // TO_IN {} from the only listener: a multicast-address-specific query
    // (MLDv2, to the group, Maximum Response Code = LMQI 1000 ms).
    let act = h.rx(2, 1, &captured("mldv2-to-in"));
    let q = mld_transmits(&act);
    assert_eq!(q.len(), 1, "{act:?}");
    let (ports, src, dst, repr) = &q[0];
    assert_eq!((*ports, *src, *dst), (mask(&[1]), a(OURS), a(ASM)));
    match repr {
        mld::Repr::Query {
            max_resp_code,
            address,
            v2: Some(v2),
        } => {
            assert_eq!((*max_resp_code, *address), (1000, a(ASM)));
            assert_eq!((v2.qrv, v2.qqic, v2.s_flag), (2, 125, false));
        }
        other => panic!("{other:?}"),
    }
    // Nobody answers: gone after LMQC × LMQI = 2 s.
    h.tick(1500);
    assert_eq!(h.e.lookup(0, a(ASM)), mask(&[1]));
    h.tick(2002);
    assert_eq!(h.e.lookup(0, a(ASM)), PortMask::EMPTY);
}

#[test]
fn mldv1_compatibility() {
    let mut h = mld_harness(true);
    h.tick(0);
    h.rx(1, 2, &captured("mldv1-report"));
    let g = &h.e.groups()[0];
    assert_eq!(g.version, Version::V1, "RFC 3810 §8.3.2: MLDv1 mode");
    // In MLDv1 mode a BLOCK is ignored (§8.3.2) and TO_EX sources are not
    // read: the group stays forwarded.
    h.rx(
        2,
        2,
        &v2_record(7, RecordType::BlockOldSources, ASM, &["2001:db8::1"]),
    );
    assert_eq!(h.counter("mld_ignored_record_compat"), 1);
    // The done: an MLDv1 query (24 bytes, delay in ms) for the group.
    let act = h.rx(3, 2, &captured("mldv1-done"));
    assert_eq!(h.counter("mld_rx_done"), 1);
    let q = mld_transmits(&act);
    assert_eq!(q.len(), 1);
    assert_eq!(
        q[0].3,
        mld::Repr::Query {
            max_resp_code: 1000,
            address: a(ASM),
            v2: None
        }
    );
    // The host present timer lapses after the MLDv1 host's last report
    // (MALI = 260 s): the group's mode is MLDv2 again on the next report.
    h.rx(
        secs(300),
        2,
        &v2_record(2, RecordType::ChangeToExclude, ASM, &[]),
    );
    assert_eq!(h.e.groups()[0].version, Version::V2);
}

#[test]
fn querier_election_is_per_family() {
    let mut h = mld_harness(true);
    let act = h.tick(0);
    // Startup: one IGMP and one MLD general query.
    let q = mld_transmits(&act);
    assert_eq!(q.len(), 1);
    assert_eq!((q[0].1, q[0].2), (a(OURS), a("ff02::1")));
    assert!(matches!(
        &q[0].3,
        mld::Repr::Query { max_resp_code: 10_000, address, v2: Some(_) } if address.is_unspecified()
    ));
    assert_eq!(transmits(&act).len(), 2);
    // A higher link-local address loses (RFC 3810 §7.6.2).
    let first = h.rx(
        5,
        3,
        &mld_query(a("fe80::1:ff:fe00:9"), Ipv6Addr::UNSPECIFIED, 10_000, true),
    );
    // Its port is an MLD router port, not an IGMP one.
    assert!(first.contains(&Action::RouterPorts {
        vlan: 0,
        family: AddrFamily::Ipv6,
        ports: mask(&[3])
    }));
    let mld_view = |h: &Harness| {
        h.e.querier()
            .into_iter()
            .find(|q| q.family == AddrFamily::Ipv6)
            .unwrap()
    };
    assert!(mld_view(&h).we_are_querier);
    // A lower one wins; IGMP's querier is not affected.
    let act = h.rx(
        6,
        3,
        &mld_query(a("fe80::1"), Ipv6Addr::UNSPECIFIED, 10_000, true),
    );
    assert!(!mld_view(&h).we_are_querier);
    assert_eq!(mld_view(&h).querier_address, Some(a("fe80::1").into()));
    assert!(h.e.querier()[0].we_are_querier, "IGMP still querier");
    assert_eq!(h.e.router_ports_of::<Ipv4Addr>(0), PortMask::EMPTY);
    assert_eq!(h.counter("mld_querier_other_elected"), 1);
    // Queries are flooded.
    assert!(act.contains(&Action::Forward {
        ports: mask(&[0, 1, 2])
    }));
}

#[test]
fn received_query_lowers_timers_by_its_own_code() {
    let mut h = mld_harness(false);
    h.rx(0, 1, &captured("mldv2-to-ex"));
    // Another querier's MLDv1 query for the group, delay 500 ms: the group
    // timer drops to LMQC × 500 ms = 1 s.
    h.rx(10, 3, &mld_query(a("fe80::1"), a(ASM), 500, false));
    h.tick(1009);
    assert_eq!(h.e.lookup(0, a(ASM)), mask(&[1]));
    h.tick(1010);
    assert_eq!(h.e.lookup(0, a(ASM)), PortMask::EMPTY);
    // An MLDv2 code above 32767 is the exponential form (§5.1.3):
    // 0x8000 = 32768 ms, so LMQC × 32.768 s.
    h.rx(2000, 1, &captured("mldv2-to-ex"));
    h.rx(2010, 3, &mld_query(a("fe80::1"), a(ASM), 0x8000, true));
    h.tick(2010 + 65_535);
    assert_eq!(h.e.lookup(0, a(ASM)), mask(&[1]));
    h.tick(2010 + 65_536);
    assert_eq!(h.e.lookup(0, a(ASM)), PortMask::EMPTY);
}

#[test]
fn link_scope_is_flooded_never_snooped() {
    let mut p = ports(4);
    p[3].static_router = true;
    let mut h = Harness::both(Config::default(), p);
    let act = h.rx(0, 1, &captured("mldv2-solicited-node"));
    assert!(h.e.groups().is_empty());
    assert_eq!(h.counter("mld_rx_link_local_report"), 1);
    // Still forwarded to the router port, as every report.
    assert!(act.contains(&Action::Forward { ports: mask(&[3]) }));
    // From ::, before the host has an address (RFC 3590): accepted.
    h.rx(1, 1, &captured("mldv2-unspecified-source"));
    assert_eq!(h.counter("mld_rx_link_local_report"), 2);
    let f = mld_frame(
        2,
        Ipv6Addr::UNSPECIFIED,
        a("ff02::16"),
        &mld::Repr::ReportV2 {
            records: vec![AddressRecordRepr {
                record_type: RecordType::ChangeToExclude,
                address: a("ff05::1:3"),
                sources: vec![],
            }],
        },
    );
    h.rx(2, 2, &f);
    assert_eq!(h.e.lookup(0, a("ff05::1:3")), mask(&[2]));
    let mut out = Vec::new();
    assert!(
        h.e.add_static_group(0, a("ff02::1:ff00:1"), 1, &mut out)
            .is_err()
    );
}

#[test]
fn bad_mld_is_counted_and_changes_nothing() {
    let mut h = mld_harness(false);
    let good = captured("mldv2-to-ex");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("reject_bad_icmpv6_checksum", {
            let mut f = good.clone();
            let n = f.len() - 1;
            f[n] ^= 1;
            f
        }),
        ("mld_reject_bad_hop_limit", {
            // Hop limit 2: the checksum does not cover it.
            let mut f = good.clone();
            f[14 + 7] = 2;
            f
        }),
        ("reject_no_router_alert", {
            // The Router Alert option (05 02 00 00) made PadN.
            let mut f = good.clone();
            f[14 + 42] = 1;
            f
        }),
        (
            "reject_report_not_link_local",
            v2_record_from(a("2001:db8::9"), ASM),
        ),
        (
            "mld_reject_bad_group",
            v2_record_from(host6(9), "2001:db8::1"),
        ),
        ("reject_ext_header_chain", long_chain(&good)),
        ("reject_source_overrun", {
            // One record claiming a source it does not carry.
            let mut f = good.clone();
            f[14 + 48 + 8 + 3] = 1;
            refill(&mut f);
            f
        }),
    ];
    for (counter, f) in &cases {
        h.rx(0, 1, f);
        assert_eq!(h.counter(counter), 1, "{counter}");
    }
    assert!(h.e.groups().is_empty());
    assert_eq!(h.e.counters().ports[1].rejected, cases.len() as u64);
    // Queries from a global or the unspecified address: hosts ignore them
    // (RFC 3810 §5.1.14); no router port, no election, not flooded.
    let act = h.rx(
        1,
        2,
        &mld_query(a("2001:db8::1"), Ipv6Addr::UNSPECIFIED, 1000, true),
    );
    let act2 = h.rx(
        1,
        2,
        &mld_query(Ipv6Addr::UNSPECIFIED, Ipv6Addr::UNSPECIFIED, 1000, true),
    );
    assert!(act.is_empty() && act2.is_empty());
    assert_eq!(h.counter("reject_query_not_link_local"), 2);
    assert_eq!(h.e.router_ports(), PortMask::EMPTY);
    // With MLD off, MLD is not looked at.
    let mut off = Harness::new(Config::default(), ports(2));
    off.rx(0, 1, &good);
    assert!(off.e.groups().is_empty());
    assert_eq!(off.counter("rx_mld"), 0);
}

fn v2_record_from(src: Ipv6Addr, group: &str) -> Vec<u8> {
    let records = vec![AddressRecordRepr {
        record_type: RecordType::ChangeToExclude,
        address: a(group),
        sources: vec![],
    }];
    mld_frame(9, src, a("ff02::16"), &mld::Repr::ReportV2 { records })
}

/// Recompute the ICMPv6 checksum of a captured report after an edit.
fn refill(f: &mut [u8]) {
    let src = Ipv6Addr::from(<[u8; 16]>::try_from(&f[22..38]).unwrap());
    let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&f[38..54]).unwrap());
    igmpsnoop_control::wire::icmpv6::fill_checksum(src, dst, &mut f[14 + 48..]);
}

/// The report behind nine Destination Options headers.
fn long_chain(good: &[u8]) -> Vec<u8> {
    let mut f = good[..14 + 48].to_vec();
    f[14 + 40] = ipv6::NEXT_DEST_OPTS;
    for i in 0..9 {
        let next = if i < 8 {
            ipv6::NEXT_DEST_OPTS
        } else {
            ipv6::NEXT_ICMPV6
        };
        f.extend_from_slice(&[next, 0, 1, 4, 0, 0, 0, 0]);
    }
    f.extend_from_slice(&good[14 + 48..]);
    let plen = (f.len() - 14 - 40) as u16;
    f[18..20].copy_from_slice(&plen.to_be_bytes());
    f
}
