//! IGMPv3 source filtering on the injected clock: every row of RFC 3376
//! §6.4.1 and §6.4.2 from both router states with the timers each sets,
//! §6.3/§6.5 expiry, §7.3.2 compatibility, explicit host tracking,
//! group-and-source queries (§6.6.3.2) and received ones (§6.6.1), the
//! SourcePorts/GroupPorts contract, limits, bad input and static (S,G).

mod common;

use common::*;
use core::net::Ipv4Addr;
use igmpsnoop_control::engine::{Action, Config, FilterMode, TableError};
use igmpsnoop_control::port::PortMask;
use igmpsnoop_control::time::Timestamp;
use igmpsnoop_control::wire::frame;
use igmpsnoop_control::wire::igmp::{self, QueryV3, RecordType};

const GMI: u64 = 260_000;
const LMQT: u64 = 2_000;

use RecordType::{
    AllowNewSources as ALLOW, BlockOldSources as BLOCK, ChangeToExclude as TO_EX,
    ChangeToInclude as TO_IN, ModeIsExclude as IS_EX, ModeIsInclude as IS_IN,
};

fn s(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 1, 0, n)
}

/// (mode, group timer or None, [(source, timer or None, excluded)]) of
/// (G1, port 1).
type State = (FilterMode, Option<u64>, Vec<(Ipv4Addr, Option<u64>, bool)>);

fn state(h: &Harness, port: u8) -> State {
    let g =
        h.e.groups()
            .into_iter()
            .find(|g| g.group == G1 && g.port == port)
            .expect("membership");
    let srcs = g
        .sources
        .iter()
        .map(|v| {
            (
                v4(v.address),
                v.expires.map(Timestamp::as_millis),
                v.excluded,
            )
        })
        .collect();
    let gt = (g.filter_mode == FilterMode::Exclude)
        .then(|| g.expires.map(Timestamp::as_millis))
        .flatten();
    (g.filter_mode, gt, srcs)
}

fn fwd(n: u8, t: u64) -> (Ipv4Addr, Option<u64>, bool) {
    (s(n), Some(t), false)
}

fn excl(n: u8) -> (Ipv4Addr, Option<u64>, bool) {
    (s(n), None, true)
}

/// The group-and-source queries in `a`: (S flag, sources), checked frame
/// by frame (checksums, TTL 1, Router Alert, MAC, to the group, from us).
fn gssqs(a: &[Action]) -> Vec<(bool, Vec<Ipv4Addr>)> {
    transmits(a)
        .into_iter()
        .filter_map(|(ports, f)| {
            let (vlan, src, dst, repr) = decode(&f);
            match repr {
                igmp::Repr::Query {
                    max_resp_code,
                    group,
                    v3: Some(q),
                } if !q.sources.is_empty() => {
                    assert_eq!((vlan, src, dst, group), (0, OUR_IP, G1, G1));
                    assert_eq!(ports, mask(&[1]));
                    assert_eq!(
                        (max_resp_code, q.qrv, q.qqic),
                        (10, 2, 125),
                        "LMQI, QRV, QQIC"
                    );
                    Some((q.s_flag, q.sources))
                }
                _ => None,
            }
        })
        .collect()
}

/// Group-specific queries (no sources) in `a`.
fn gsqs(a: &[Action]) -> usize {
    transmits(a)
        .iter()
        .filter(|(_, f)| {
            matches!(decode(f).3, igmp::Repr::Query { group, v3, .. }
                if group == G1 && v3.as_ref().is_none_or(|q| q.sources.is_empty()))
        })
        .count()
}

fn src_action(a: &[Action], source: Ipv4Addr) -> Option<Option<PortMask>> {
    a.iter().find_map(|x| match x {
        Action::SourcePorts {
            source: so, ports, ..
        } if *so == source => Some(*ports),
        _ => None,
    })
}

fn group_action(a: &[Action]) -> Option<PortMask> {
    a.iter().find_map(|x| match x {
        Action::GroupPorts { ports, .. } => Some(*ports),
        _ => None,
    })
}

fn q() -> Harness {
    let mut h = Harness::querier(3);
    h.tick(0);
    h
}

/// INCLUDE ({1,2}) on port 1, timers at GMI.
fn include_12() -> Harness {
    let mut h = q();
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1), s(2)]));
    assert_eq!(
        state(&h, 1),
        (FilterMode::Include, None, vec![fwd(1, GMI), fwd(2, GMI)])
    );
    h
}

/// EXCLUDE (X={1}, Y={2}) on port 1: s1 at GMI, group timer 1000+GMI.
fn exclude_1_2() -> Harness {
    let mut h = q();
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1)]));
    // INCLUDE (A) IS_EX (B): EXCLUDE (A*B, B-A), (B-A)=0, Group Timer=GMI.
    h.rx(1000, 1, &v3_one(1, IS_EX, G1, &[s(1), s(2)]));
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(1000 + GMI),
            vec![fwd(1, GMI), excl(2)]
        )
    );
    h
}

// ---- §6.4.1 / §6.4.2 from INCLUDE -------------------------------------

#[test]
fn include_is_in_and_allow() {
    for t in [IS_IN, ALLOW] {
        let mut h = include_12();
        // INCLUDE (A) IS_IN/ALLOW (B) -> INCLUDE (A+B); (B)=GMI.
        let a = h.rx(1000, 1, &v3_one(1, t, G1, &[s(2), s(3)]));
        assert!(transmits(&a).is_empty());
        assert_eq!(
            state(&h, 1),
            (
                FilterMode::Include,
                None,
                vec![fwd(1, GMI), fwd(2, 1000 + GMI), fwd(3, 1000 + GMI)]
            )
        );
        assert_eq!(src_action(&a, s(3)), Some(Some(mask(&[1]))));
    }
}

#[test]
fn include_is_ex() {
    let mut h = include_12();
    // INCLUDE (A) IS_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B);
    // Group Timer=GMI.
    let a = h.rx(1000, 1, &v3_one(1, IS_EX, G1, &[s(2), s(3)]));
    assert!(transmits(&a).is_empty());
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(1000 + GMI),
            vec![fwd(2, GMI), excl(3)]
        )
    );
    assert_eq!(group_action(&a), Some(mask(&[1])));
    assert_eq!(src_action(&a, s(1)), Some(None), "s1 follows the group");
    assert_eq!(src_action(&a, s(3)), Some(Some(PortMask::EMPTY)));
}

#[test]
fn include_block() {
    let mut h = include_12();
    // INCLUDE (A) BLOCK (B) -> INCLUDE (A); Send Q(G,A*B).
    let a = h.rx(1000, 1, &v3_one(1, BLOCK, G1, &[s(2), s(3)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(2)])]);
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Include,
            None,
            vec![fwd(1, GMI), fwd(2, 1000 + LMQT)]
        )
    );
}

#[test]
fn include_to_ex() {
    let mut h = include_12();
    // INCLUDE (A) TO_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B);
    // Send Q(G,A*B); Group Timer=GMI.
    let a = h.rx(1000, 1, &v3_one(1, TO_EX, G1, &[s(2), s(3)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(2)])]);
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(1000 + GMI),
            vec![fwd(2, 1000 + LMQT), excl(3)]
        )
    );
}

#[test]
fn include_to_in() {
    let mut h = include_12();
    // INCLUDE (A) TO_IN (B) -> INCLUDE (A+B); (B)=GMI; Send Q(G,A-B).
    let a = h.rx(1000, 1, &v3_one(1, TO_IN, G1, &[s(2), s(3)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(1)])]);
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Include,
            None,
            vec![fwd(1, 1000 + LMQT), fwd(2, 1000 + GMI), fwd(3, 1000 + GMI)]
        )
    );
    // After LMQT, s1 is gone (§6.3 INCLUDE: the record is deleted).
    let a = h.tick(1000 + LMQT);
    assert_eq!(src_action(&a, s(1)), Some(None));
    assert_eq!(state(&h, 1).2.len(), 2);
}

// ---- §6.4.1 / §6.4.2 from EXCLUDE -------------------------------------

#[test]
fn exclude_is_in_and_allow() {
    for t in [IS_IN, ALLOW] {
        let mut h = exclude_1_2();
        // EXCLUDE (X,Y) IS_IN/ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=GMI.
        let a = h.rx(2000, 1, &v3_one(1, t, G1, &[s(2), s(3)]));
        assert!(transmits(&a).is_empty());
        assert_eq!(
            state(&h, 1),
            (
                FilterMode::Exclude,
                Some(1000 + GMI),
                vec![fwd(1, GMI), fwd(2, 2000 + GMI), fwd(3, 2000 + GMI)]
            )
        );
        assert_eq!(src_action(&a, s(2)), Some(Some(mask(&[1]))));
    }
}

#[test]
fn exclude_is_ex() {
    let mut h = exclude_1_2();
    // EXCLUDE (X,Y) IS_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=GMI;
    // Delete (X-A); Delete (Y-A); Group Timer=GMI.
    let a = h.rx(2000, 1, &v3_one(1, IS_EX, G1, &[s(2), s(3)]));
    assert!(transmits(&a).is_empty());
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(2000 + GMI),
            vec![excl(2), fwd(3, 2000 + GMI)]
        )
    );
}

#[test]
fn exclude_block() {
    let mut h = exclude_1_2();
    // EXCLUDE (X,Y) BLOCK (A) -> EXCLUDE (X+(A-Y), Y); (A-X-Y)=Group
    // Timer; Send Q(G,A-Y): s1 and s3 lowered to LMQT.
    let a = h.rx(2000, 1, &v3_one(1, BLOCK, G1, &[s(1), s(2), s(3)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(1), s(3)])]);
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(1000 + GMI),
            vec![fwd(1, 2000 + LMQT), excl(2), fwd(3, 2000 + LMQT)]
        )
    );
    // §6.3 EXCLUDE: expired source timers move the sources to Y.
    let a = h.tick(2000 + LMQT);
    assert_eq!(src_action(&a, s(1)), Some(Some(PortMask::EMPTY)));
    assert_eq!(src_action(&a, s(3)), Some(Some(PortMask::EMPTY)));
    assert_eq!(
        state(&h, 1).2,
        vec![excl(1), excl(2), excl(3)],
        "records stay, excluded"
    );
}

#[test]
fn exclude_block_group_timer_value() {
    // Without a querier-side lowering (a fast-leave port would expire at
    // once), check (A-X-Y)=Group Timer on a source another host wants.
    let mut h = exclude_1_2();
    // Host 2: EXCLUDE {2}, wants s3 (group timer now 1500+GMI).
    h.rx(1500, 1, &v3_one(2, IS_EX, G1, &[s(1), s(2)]));
    let a = h.rx(2000, 1, &v3_one(1, BLOCK, G1, &[s(3)]));
    assert!(gssqs(&a).is_empty(), "host 2 still wants s3: no query");
    assert!(state(&h, 1).2.contains(&fwd(3, 1500 + GMI)));
}

#[test]
fn exclude_to_ex() {
    let mut h = exclude_1_2();
    // EXCLUDE (X,Y) TO_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=Group Timer;
    // Delete (X-A); Delete (Y-A); Send Q(G,A-Y); Group Timer=GMI.
    let a = h.rx(2000, 1, &v3_one(1, TO_EX, G1, &[s(2), s(3)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(3)])]);
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(2000 + GMI),
            vec![excl(2), fwd(3, 2000 + LMQT)]
        )
    );
}

#[test]
fn exclude_to_in_then_group_timer_switches_to_include() {
    let mut h = exclude_1_2();
    // EXCLUDE (X,Y) TO_IN (A) -> EXCLUDE (X+A, Y-A); (A)=GMI;
    // Send Q(G,X-A); Send Q(G).
    let a = h.rx(2000, 1, &v3_one(1, TO_IN, G1, &[s(2), s(3)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(1)])]);
    assert_eq!(gsqs(&a), 1, "Q(G)");
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Exclude,
            Some(2000 + LMQT),
            vec![fwd(1, 2000 + LMQT), fwd(2, 2000 + GMI), fwd(3, 2000 + GMI)]
        )
    );
    let a = h.tick(3000);
    assert_eq!((gssqs(&a).len(), gsqs(&a)), (1, 1), "retransmissions");
    // §6.5: the group timer expires: INCLUDE with the running sources.
    let a = h.tick(2000 + LMQT);
    assert_eq!(group_action(&a), Some(PortMask::EMPTY));
    assert_eq!(src_action(&a, s(1)), Some(None));
    assert_eq!(
        state(&h, 1),
        (
            FilterMode::Include,
            None,
            vec![fwd(2, 2000 + GMI), fwd(3, 2000 + GMI)]
        )
    );
    assert_eq!(h.e.lookup_source(0, G1, s(2)), Some(mask(&[1])));
    assert_eq!(h.e.lookup_source(0, G1, s(9)), None);
}

#[test]
fn group_timer_expiry_keeps_running_sources_deletes_excluded() {
    let mut h = exclude_1_2();
    h.rx(5000, 1, &v3_one(1, ALLOW, G1, &[s(1)]));
    // §6.5 at 1000+GMI: s1 (running until 5000+GMI) stays, s2 (Y) goes.
    let a = h.tick(1000 + GMI);
    assert_eq!(group_action(&a), Some(PortMask::EMPTY));
    assert_eq!(src_action(&a, s(2)), Some(None));
    assert_eq!(src_action(&a, s(1)), None, "s1's ports did not change");
    assert_eq!(
        state(&h, 1),
        (FilterMode::Include, None, vec![fwd(1, 5000 + GMI)])
    );
    // §6.3 INCLUDE: the last source runs out, the group goes.
    let a = h.tick(5000 + GMI);
    assert_eq!(
        a,
        vec![
            Action::SourcePorts {
                vlan: 0,
                group: G1.into(),
                source: s(1).into(),
                ports: None
            },
            Action::GroupPorts {
                vlan: 0,
                group: G1.into(),
                ports: PortMask::EMPTY
            }
        ]
    );
    assert_eq!(h.e.group_count(), 0);
}

// ---- §6.6.3.2 queries --------------------------------------------------

#[test]
fn source_queries_retransmit_lmqc_times_lmqi_apart() {
    let mut h = include_12();
    let a = h.rx(1000, 1, &v3_one(1, BLOCK, G1, &[s(1)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(1)])]);
    assert!(h.tick(1999).is_empty());
    let a = h.tick(2000);
    assert_eq!(gssqs(&a), vec![(false, vec![s(1)])], "LMQC = 2: one more");
    let a = h.tick(3000);
    assert!(gssqs(&a).is_empty(), "no third query");
    assert_eq!(src_action(&a, s(1)), Some(None), "s1 gone at LMQT");
    assert_eq!(h.counter("tx_group_source_query"), 2);
    assert_eq!(h.counter("source_queries_started"), 1);
}

#[test]
fn source_queries_split_by_s_flag() {
    let mut h = include_12();
    h.rx(1000, 1, &v3_one(1, BLOCK, G1, &[s(1)]));
    // s1 answered: its timer is GMI again, but it keeps its retransmission.
    h.rx(1200, 1, &v3_one(1, ALLOW, G1, &[s(1)]));
    let a = h.rx(1500, 1, &v3_one(1, BLOCK, G1, &[s(2)]));
    // s1 (timer above LMQT) with the S flag set, s2 (lowered) without.
    assert_eq!(gssqs(&a), vec![(true, vec![s(1)]), (false, vec![s(2)])]);
    let a = h.tick(2500);
    assert_eq!(gssqs(&a), vec![(false, vec![s(2)])]);
    assert!(gssqs(&h.tick(3500)).is_empty());
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[1])));
    assert_eq!(h.e.lookup_source(0, G1, s(2)), None);
}

#[test]
fn big_source_query_is_split_into_frames_that_parse() {
    let c = Config {
        querier: true,
        querier_address: Some(OUR_IP),
        max_sources_per_group: 1000,
        ..Config::default()
    };
    let mut h = Harness::new(c, ports(4));
    h.tick(0);
    let many: Vec<Ipv4Addr> = (0..400u32)
        .map(|i| Ipv4Addr::from(0x0a02_0000 + i))
        .collect();
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &many));
    let a = h.rx(1000, 1, &v3_one(1, BLOCK, G1, &many));
    let q = gssqs(&a);
    assert_eq!(q.len(), 2);
    assert_eq!((q[0].1.len(), q[1].1.len()), (366, 34));
    let tx = transmits(&a);
    assert_eq!(tx[0].1.len(), 14 + 24 + 12 + 4 * 366, "1500-byte IP packet");
    // emit -> parse round trip of what went out.
    let p = frame::parse(&tx[0].1).unwrap();
    let mut again = Vec::new();
    igmp::Repr::parse(&igmp::Packet::new_checked(p.payload).unwrap())
        .unwrap()
        .emit(&mut again);
    assert_eq!(again, p.payload);
}

// ---- §6.6.1 received queries -----------------------------------------

fn gssq(from: Ipv4Addr, sources: &[Ipv4Addr], s_flag: bool) -> Vec<u8> {
    let repr = igmp::Repr::Query {
        max_resp_code: 10,
        group: G1,
        v3: Some(QueryV3 {
            s_flag,
            qrv: 2,
            qqic: 125,
            sources: sources.to_vec(),
        }),
    };
    frame::build_igmp([0x02, 0, 0, 0, 0x20, 1], 0, from, G1, 0, &repr)
}

#[test]
fn received_source_query_lowers_source_timers_as_non_querier() {
    let mut h = Harness::plain();
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1), s(2)]));
    let other = Ipv4Addr::new(10, 0, 0, 1);
    // S flag set: no timer changes.
    h.rx(4000, 3, &gssq(other, &[s(1)], true));
    assert_eq!(state(&h, 1).2, vec![fwd(1, GMI), fwd(2, GMI)]);
    // S flag clear: s1 lowered to LMQT (LMQC × the query's 1 s).
    let a = h.rx(5000, 3, &gssq(other, &[s(1)], false));
    assert!(a.contains(&Action::Forward {
        ports: mask(&[0, 1, 2])
    }));
    assert_eq!(state(&h, 1).2, vec![fwd(1, 5000 + LMQT), fwd(2, GMI)]);
    assert_eq!(h.counter("rx_group_source_query"), 2);
    assert_eq!(h.counter("source_timers_lowered"), 1);
    assert!(h.tick(5000 + LMQT - 1).is_empty());
    assert_eq!(src_action(&h.tick(5000 + LMQT), s(1)), Some(None));
    assert_eq!(h.e.lookup_source(0, G1, s(2)), Some(mask(&[1])));
}

// ---- explicit host tracking -------------------------------------------

#[test]
fn a_host_leaving_a_source_never_cuts_another_hosts_source() {
    let mut h = q();
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1), s(2)]));
    h.rx(0, 1, &v3_one(2, ALLOW, G1, &[s(1)]));
    // Host 1 blocks both: only s2 is queried, s1 (host 2's) is untouched.
    let a = h.rx(1000, 1, &v3_one(1, BLOCK, G1, &[s(1), s(2)]));
    assert_eq!(gssqs(&a), vec![(false, vec![s(2)])]);
    assert_eq!(state(&h, 1).2, vec![fwd(1, GMI), fwd(2, 1000 + LMQT)]);
    h.tick(1000 + LMQT);
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[1])));
    assert_eq!(h.e.lookup_source(0, G1, s(2)), None);
    // TO_IN {} from host 1 (it has nothing left): nothing to ask.
    assert!(gssqs(&h.rx(4000, 1, &v3_one(1, TO_IN, G1, &[]))).is_empty());
}

#[test]
fn exclude_host_leaving_keeps_include_hosts_sources_after_group_timer() {
    let mut h = q();
    h.rx(0, 1, &v3_one(1, IS_EX, G1, &[]));
    h.rx(0, 1, &v3_one(2, ALLOW, G1, &[s(1)]));
    // Host 1 again: EXCLUDE (X,Y) IS_EX ({}) deletes s1's record (X-A);
    // s1 is still forwarded (EXCLUDE mode).
    h.rx(1000, 1, &v3_one(1, IS_EX, G1, &[]));
    assert!(state(&h, 1).2.is_empty());
    // Host 1 leaves: Q(G) (host 2 is INCLUDE), group timer to LMQT.
    let a = h.rx(2000, 1, &v3_one(1, TO_IN, G1, &[]));
    assert_eq!(gsqs(&a), 1);
    // At the §6.5 switch host 2's s1 stays: it is still wanted.
    let a = h.tick(2000 + LMQT);
    assert_eq!(group_action(&a), Some(PortMask::EMPTY));
    assert_eq!(src_action(&a, s(1)), Some(Some(mask(&[1]))));
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[1])));
    assert_eq!(state(&h, 1), (FilterMode::Include, None, vec![fwd(1, GMI)]));
}

#[test]
fn group_query_not_sent_while_another_host_excludes() {
    let mut h = q();
    h.rx(0, 1, &v3_one(1, IS_EX, G1, &[]));
    h.rx(0, 1, &v3_one(2, IS_EX, G1, &[s(5)]));
    // EXCLUDE TO_IN ({}): Send Q(G,X-A) and Q(G). Host 2 wants the group
    // (EXCLUDE): no Q(G), the group timer stays; s5 (on X since host 2's
    // IS_EX, A-X-Y=GMI) is wanted by nobody left: queried.
    let a = h.rx(1000, 1, &v3_one(1, TO_IN, G1, &[]));
    assert_eq!(gsqs(&a), 0);
    assert_eq!(gssqs(&a), vec![(false, vec![s(5)])]);
    assert_eq!(
        state(&h, 1),
        (FilterMode::Exclude, Some(GMI), vec![fwd(5, 1000 + LMQT)])
    );
}

#[test]
fn fast_leave_port_expires_sources_at_once_but_spares_other_hosts() {
    let mut p = ports(4);
    p[1].fast_leave = true;
    let mut h = Harness::new(Config::default(), p);
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1), s(2)]));
    h.rx(0, 1, &v3_one(2, ALLOW, G1, &[s(1)]));
    let a = h.rx(10, 1, &v3_one(1, BLOCK, G1, &[s(1), s(2)]));
    assert!(transmits(&a).is_empty());
    assert_eq!(src_action(&a, s(2)), Some(None));
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[1])));
    let a = h.rx(20, 1, &v3_one(2, BLOCK, G1, &[s(1)]));
    assert_eq!(group_action(&a), Some(PortMask::EMPTY));
    assert_eq!(h.e.group_count(), 0);
    assert_eq!(h.counter("fast_leaves"), 2);
}

// ---- §7.3.2 compatibility ---------------------------------------------

#[test]
fn older_host_present_drops_to_ex_sources_and_ignores_block() {
    let mut h = q();
    h.rx(0, 1, &v2_report(1, G1));
    // "any TO_EX() message is treated as TO_EX( {} )".
    h.rx(10, 1, &v3_one(2, TO_EX, G1, &[s(1)]));
    assert!(state(&h, 1).2.is_empty());
    assert_eq!(h.e.lookup_source(0, G1, s(1)), None);
    // "IGMPv3 BLOCK messages are ignored".
    let a = h.rx(20, 1, &v3_one(2, BLOCK, G1, &[s(1)]));
    assert!(a.is_empty());
    assert_eq!(h.counter("ignored_record_compat"), 1);
    // v1 host present: v2 leaves ignored, IS_IN still processed.
    h.rx(30, 2, &v1_report(3, G1));
    h.rx(31, 2, &v2_leave(3, G1));
    assert_eq!(h.counter("ignored_leave_v1_compat"), 1);
    h.rx(32, 2, &v3_one(4, IS_IN, G1, &[s(7)]));
    assert_eq!(state(&h, 2).2, vec![fwd(7, 32 + GMI)]);
    // After the v2 host present timer (GMI), v3 again: TO_EX keeps sources.
    // EXCLUDE ({},{}) TO_EX ({s1}): (A-X-Y)=Group Timer (10+GMI), then
    // Q(G,{s1}) only for timers above LMQT (§6.6.3.2): this one is not.
    let a = h.rx(GMI + 5, 1, &v3_one(2, TO_EX, G1, &[s(1)]));
    assert!(gssqs(&a).is_empty());
    assert_eq!(state(&h, 1).2, vec![fwd(1, 10 + GMI)]);
}

// ---- forwarding contract ----------------------------------------------

#[test]
fn source_and_group_ports_across_ports() {
    let mut h = Harness::plain();
    // (*,G) only: no SourcePorts at all.
    let a = h.rx(0, 3, &v2_report(9, G2));
    assert!(a.iter().all(|x| !matches!(x, Action::SourcePorts { .. })));
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1)]));
    let a = h.rx(0, 2, &v3_one(2, IS_EX, G1, &[s(1)]));
    assert_eq!(group_action(&a), Some(mask(&[2])));
    // Port 2 excludes s1 (Y): s1 goes to port 1 only; others follow [2].
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[1])));
    assert_eq!(h.e.lookup(0, G1), mask(&[2]));
    assert_eq!(h.e.lookup_source(0, G1, s(9)), None);
    // Refresh: no change, no action.
    assert!(h.rx(10, 1, &v3_one(1, ALLOW, G1, &[s(1)])).is_empty());
    let a = h.rx(20, 2, &v3_one(2, ALLOW, G1, &[s(1)]));
    assert_eq!(src_action(&a, s(1)), Some(Some(mask(&[1, 2]))));
    let e = h.e.source_entries();
    assert_eq!(
        (e.len(), e[0].source, e[0].ports),
        (1, s(1).into(), mask(&[1, 2]))
    );
    serde_json::to_string(&e).unwrap();
    let v = serde_json::to_value(h.e.groups()).unwrap();
    assert_eq!(v[0]["filter_mode"], "include");
    assert_eq!(v[1]["filter_mode"], "exclude");
    assert_eq!(v[0]["sources"][0]["address"], "10.1.0.1");
    // The group goes: SourcePorts None first, then GroupPorts EMPTY.
    let mut out = Vec::new();
    h.e.port_down(1, &mut out);
    h.e.port_down(2, &mut out);
    let n = out.len();
    assert_eq!(
        out[n - 2..],
        [
            Action::SourcePorts {
                vlan: 0,
                group: G1.into(),
                source: s(1).into(),
                ports: None
            },
            Action::GroupPorts {
                vlan: 0,
                group: G1.into(),
                ports: PortMask::EMPTY
            }
        ]
    );
}

// ---- limits and bad input ---------------------------------------------

#[test]
fn source_limit_refuses_the_record_and_keeps_the_group() {
    let c = Config {
        max_sources_per_group: 3,
        ..Config::default()
    };
    let mut h = Harness::new(c, ports(4));
    h.rx(0, 1, &v3_one(1, ALLOW, G1, &[s(1), s(2)]));
    let a = h.rx(1, 2, &v3_one(2, ALLOW, G1, &[s(3), s(4)]));
    assert!(a.is_empty());
    assert_eq!(h.counter("reject_limit_sources"), 1);
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[1])));
    assert!(h.e.groups().iter().all(|g| g.port == 1), "no port 2 entry");
    // A known source or one more fits; (*,G) reports always do.
    h.rx(2, 2, &v3_one(2, ALLOW, G1, &[s(1), s(3)]));
    assert_eq!(h.e.lookup_source(0, G1, s(3)), Some(mask(&[2])));
    h.rx(3, 3, &v2_report(3, G1));
    assert_eq!(h.ports_of(G1), mask(&[3]));
    // A new group with too many sources is not created.
    h.rx(4, 1, &v3_one(1, IS_IN, G2, &[s(1), s(2), s(3), s(4)]));
    assert_eq!(h.counter("reject_limit_sources"), 2);
    assert_eq!(h.e.group_count(), 1);
}

#[test]
fn bad_sources_are_counted_and_change_nothing() {
    let mut h = Harness::plain();
    let cases = [
        ("reject_source_duplicate", vec![s(1), s(2), s(1)]),
        (
            "reject_source_multicast",
            vec![s(1), Ipv4Addr::new(239, 0, 0, 1)],
        ),
        ("reject_source_zero", vec![Ipv4Addr::UNSPECIFIED]),
        ("reject_source_broadcast", vec![Ipv4Addr::BROADCAST]),
    ];
    for (name, srcs) in cases {
        // The bad record is ignored; the report's other record counts.
        let f = v3_report(1, vec![(ALLOW, G1, srcs), (IS_EX, G2, vec![])]);
        let a = h.rx(0, 1, &f);
        assert_eq!(h.counter(name), 1, "{name}");
        assert!(src_action(&a, s(1)).is_none(), "{name}");
        assert_eq!(h.e.lookup_source(0, G1, s(1)), None, "{name}");
    }
    assert_eq!(h.ports_of(G2), mask(&[1]));
    assert_eq!(h.e.counters().ports[1].rejected, 4);
    assert_eq!(h.e.group_count(), 1);
}

// ---- static (S,G) -----------------------------------------------------

#[test]
fn static_sources() {
    let mut h = Harness::plain();
    let mut out = Vec::new();
    h.e.add_static_source(0, G1, 2, s(1), &mut out).unwrap();
    assert_eq!(
        out,
        vec![Action::SourcePorts {
            vlan: 0,
            group: G1.into(),
            source: s(1).into(),
            ports: Some(mask(&[2]))
        }]
    );
    assert_eq!(
        state(&h, 2),
        (FilterMode::Include, None, vec![(s(1), None, false)])
    );
    assert_eq!(
        h.e.add_static_source(0, G1, 2, Ipv4Addr::new(239, 0, 0, 1), &mut out),
        Err(TableError::BadSource(Ipv4Addr::new(239, 0, 0, 1).into()))
    );
    assert!(h.e.add_static_source(0, G1, 9, s(1), &mut out).is_err());
    // A host's BLOCK does not lower it; IS_EX puts nothing on Y for it.
    let a = h.rx(0, 2, &v3_one(1, BLOCK, G1, &[s(1)]));
    assert!(transmits(&a).is_empty());
    h.rx(1, 2, &v3_one(1, IS_EX, G1, &[s(1)]));
    assert_eq!(h.e.lookup_source(0, G1, s(1)), Some(mask(&[2])));
    h.tick(10 * GMI);
    assert_eq!(
        h.e.lookup_source(0, G1, s(1)),
        Some(mask(&[2])),
        "never ages"
    );
    assert_eq!(h.ports_of(G1), PortMask::EMPTY);
    out.clear();
    h.e.del_static_source(0, G1, 2, s(1), &mut out).unwrap();
    assert_eq!(
        out,
        vec![
            Action::SourcePorts {
                vlan: 0,
                group: G1.into(),
                source: s(1).into(),
                ports: None
            },
            Action::GroupPorts {
                vlan: 0,
                group: G1.into(),
                ports: PortMask::EMPTY
            }
        ]
    );
    assert_eq!(
        h.e.del_static_source(0, G1, 2, s(1), &mut out),
        Err(TableError::NotFound)
    );
    for bad in [
        Ipv4Addr::new(239, 0, 0, 1),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::BROADCAST,
    ] {
        assert_eq!(
            h.e.del_static_source(0, G1, 2, bad, &mut out),
            Err(TableError::BadSource(bad.into())),
            "del names a bad source as such"
        );
    }
    assert_eq!(h.e.group_count(), 0);
}
