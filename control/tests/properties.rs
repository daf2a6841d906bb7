//! Property tests: the engine never panics on any input and learns only
//! from valid reports; emit∘parse is the identity for every Repr.

mod common;

use common::*;
use core::net::Ipv4Addr;
use igmpsnoop_control::wire::frame;
use igmpsnoop_control::wire::igmp::{self, GroupRecordRepr, QueryV3, RecordType};
use igmpsnoop_control::wire::{ethernet, ipv4, pim};
use proptest::prelude::*;

fn addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn igmp_repr() -> impl Strategy<Value = igmp::Repr> {
    let record = (any::<u8>(), addr(), prop::collection::vec(addr(), 0..8)).prop_map(
        |(t, group, sources)| GroupRecordRepr {
            record_type: RecordType::from(t),
            group,
            sources,
        },
    );
    prop_oneof![
        addr().prop_map(|group| igmp::Repr::Query {
            max_resp_code: 0,
            group,
            v3: None
        }),
        (1..=255u8, addr()).prop_map(|(max_resp_code, group)| igmp::Repr::Query {
            max_resp_code,
            group,
            v3: None
        }),
        (
            any::<u8>(),
            addr(),
            any::<bool>(),
            0..8u8,
            any::<u8>(),
            prop::collection::vec(addr(), 0..8)
        )
            .prop_map(|(max_resp_code, group, s_flag, qrv, qqic, sources)| {
                igmp::Repr::Query {
                    max_resp_code,
                    group,
                    v3: Some(QueryV3 {
                        s_flag,
                        qrv,
                        qqic,
                        sources,
                    }),
                }
            }),
        addr().prop_map(|group| igmp::Repr::ReportV1 { group }),
        addr().prop_map(|group| igmp::Repr::ReportV2 { group }),
        addr().prop_map(|group| igmp::Repr::LeaveV2 { group }),
        prop::collection::vec(record, 0..6).prop_map(|records| igmp::Repr::ReportV3 { records }),
    ]
}

/// Is `f` a frame the engine may learn from: a valid IGMP report?
fn is_valid_report(f: &[u8]) -> bool {
    let Ok(p) = frame::parse(f) else { return false };
    if p.ip.protocol != ipv4::PROTO_IGMP || p.ip.ttl != 1 || !p.ip.dst.is_multicast() {
        return false;
    }
    let Ok(pkt) = igmp::Packet::new_checked(p.payload) else {
        return false;
    };
    pkt.verify_checksum()
        && matches!(
            igmp::Repr::parse(&pkt),
            Ok(igmp::Repr::ReportV1 { .. }
                | igmp::Repr::ReportV2 { .. }
                | igmp::Repr::ReportV3 { .. })
        )
}

/// Valid frames of every kind, to mutate.
fn seed_frame() -> impl Strategy<Value = Vec<u8>> {
    (igmp_repr(), 0..3u16, any::<u8>()).prop_map(|(r, vlan, n)| {
        let dst = match &r {
            igmp::Repr::ReportV3 { .. } => V3_REPORTS,
            _ => G1,
        };
        igmp_frame(n, vlan, dst, &r)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn igmp_emit_parse_identity(r in igmp_repr()) {
        let mut b = Vec::new();
        r.emit(&mut b);
        prop_assert_eq!(b.len(), r.buffer_len());
        let p = igmp::Packet::new_checked(&b[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(igmp::Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn ipv4_emit_parse_identity(src in addr(), dst in addr(), protocol in any::<u8>(), ttl in any::<u8>(),
                                ident in any::<u16>(), router_alert in any::<bool>(), payload_len in 0..64usize) {
        let r = ipv4::Repr { src, dst, protocol, ttl, ident, router_alert, payload_len };
        let mut b = Vec::new();
        r.emit(&mut b);
        b.resize(r.buffer_len(), 0xab);
        let (p, payload) = ipv4::Repr::parse(&b).unwrap();
        prop_assert_eq!(p, r);
        prop_assert_eq!(payload.len(), payload_len);
    }

    #[test]
    fn ethernet_emit_parse_identity(dst in any::<[u8; 6]>(), src in any::<[u8; 6]>(), vlan in 0..4095u16, ethertype in any::<u16>()) {
        prop_assume!(ethertype != ethernet::ETHERTYPE_VLAN);
        let r = ethernet::Repr { dst, src, vlan, ethertype };
        let mut b = Vec::new();
        r.emit(&mut b);
        prop_assert_eq!(b.len(), r.buffer_len());
        prop_assert_eq!(ethernet::Repr::parse(&b).unwrap().0, r);
    }

    #[test]
    fn pim_emit_parse_identity(msg_type in 0..16u8) {
        let r = pim::Repr { msg_type };
        let mut b = Vec::new();
        r.emit(&mut b);
        let p = pim::Packet::new_checked(&b[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(pim::Repr::parse(&p).unwrap(), r);
    }

    #[test]
    fn float_code_roundtrip(code in any::<u8>()) {
        prop_assert_eq!(igmp::encode_float(igmp::decode_float(code)), code);
    }

    #[test]
    fn float_encode_rounds_down(v in 0..40_000u32) {
        let d = igmp::decode_float(igmp::encode_float(v));
        prop_assert!(d <= v || v > 31_744);
    }

    #[test]
    fn random_bytes_never_panic_nor_learn(bytes in prop::collection::vec(any::<u8>(), 0..200), port in 0..6u8) {
        let mut h = Harness::querier(3);
        h.rx(0, port, &bytes);
        h.tick(1_000_000);
        prop_assert_eq!(h.e.group_count(), 0);
    }

    #[test]
    fn mutated_frames_never_panic_and_learn_only_from_reports(
        seed in seed_frame(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
        port in 0..4u8,
    ) {
        let mut f = seed;
        for (i, v) in flips {
            let i = i.index(f.len());
            f[i] = v;
        }
        if truncate {
            f.truncate(cut.index(f.len() + 1));
        }
        let mut h = Harness::querier(3);
        h.tick(0);
        h.rx(1, port, &f);
        if h.e.group_count() > 0 {
            prop_assert!(is_valid_report(&f), "learned from a non-report");
        }
        // Timers keep working whatever came in.
        h.tick(10_000_000);
        prop_assert_eq!(h.e.group_count(), 0);
    }

    #[test]
    fn frame_sequences_never_panic(frames in prop::collection::vec((seed_frame(), 0..4u8, 0..5_000u64), 1..30)) {
        let mut h = Harness::querier(3);
        let mut t = 0;
        for (f, port, dt) in frames {
            t += dt;
            h.rx(t, port, &f);
            h.tick(t);
            if let Some(d) = h.e.next_deadline() {
                prop_assert!(d > ms(t), "timers due at or before now were fired");
            }
        }
    }
}

/// One step of a source-filtering scenario.
#[derive(Clone, Debug)]
enum Step {
    Record(u8, u8, u8, Vec<u8>),
    V2Report(u8, u8),
    V2Leave(u8, u8),
    Tick(u64),
}

fn step() -> impl Strategy<Value = Step> {
    let srcs = prop::collection::vec(0..4u8, 0..4);
    prop_oneof![
        4 => (0..2u8, 0..2u8, 1..7u8, srcs).prop_map(|(p, h, t, s)| Step::Record(p, h, t, s)),
        1 => (0..2u8, 0..2u8).prop_map(|(p, h)| Step::V2Report(p, h)),
        1 => (0..2u8, 0..2u8).prop_map(|(p, h)| Step::V2Leave(p, h)),
        2 => (1..200_000u64).prop_map(Step::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Replaying GroupPorts/SourcePorts into a model always gives the
    /// engine's own forwarding: actions only on a change, None only for an
    /// entry that exists, and a group's entries gone before its GroupPorts
    /// EMPTY when the group goes.
    #[test]
    fn source_actions_replay_to_the_engines_forwarding(
        steps in prop::collection::vec(step(), 1..40),
        fast in any::<bool>(),
    ) {
        use igmpsnoop_control::engine::Action;
        use igmpsnoop_control::port::PortMask;
        use std::collections::BTreeMap;
        let mut p = ports(3);
        p[1].fast_leave = fast;
        let mut h = Harness::new(igmpsnoop_control::Config::default(), p);
        let src = |n: u8| Ipv4Addr::new(10, 7, 0, n + 1);
        let mut group_ports = PortMask::EMPTY;
        let mut entries: BTreeMap<std::net::IpAddr, PortMask> = BTreeMap::new();
        let mut t = 0;
        for st in steps {
            let actions = match st {
                Step::Record(port, host, ty, s) => {
                    let mut s: Vec<Ipv4Addr> = s.into_iter().map(src).collect();
                    s.sort();
                    s.dedup();
                    h.rx(t, port, &v3_one(host, RecordType::from(ty), G1, &s))
                }
                Step::V2Report(port, host) => h.rx(t, port, &v2_report(host, G1)),
                Step::V2Leave(port, host) => h.rx(t, port, &v2_leave(host, G1)),
                Step::Tick(dt) => {
                    t += dt;
                    h.tick(t)
                }
            };
            for a in actions {
                match a {
                    Action::GroupPorts { ports, .. } => {
                        prop_assert!(ports != group_ports || ports.is_empty(), "no-op GroupPorts");
                        if ports.is_empty() && h.e.group_count() == 0 {
                            prop_assert!(entries.is_empty(), "entries left when the group went");
                        }
                        group_ports = ports;
                    }
                    Action::SourcePorts { source, ports: Some(m), .. } => {
                        prop_assert!(entries.insert(source, m) != Some(m), "no-op SourcePorts");
                    }
                    Action::SourcePorts { source, ports: None, .. } => {
                        prop_assert!(entries.remove(&source).is_some(), "None for no entry");
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(group_ports, h.e.lookup(0, G1));
            let engine: BTreeMap<std::net::IpAddr, PortMask> =
                h.e.source_entries().into_iter().map(|e| (e.source, e.ports)).collect();
            prop_assert_eq!(&entries, &engine);
            for (s, m) in &entries {
                let std::net::IpAddr::V4(s) = *s else { panic!("IPv4 source") };
                prop_assert_eq!(h.e.lookup_source(0, G1, s), Some(*m));
            }
        }
        h.tick(t + 10_000_000);
        prop_assert_eq!(h.e.group_count(), 0);
    }
}
