//! MLD codec tests against real kernel frames.
//!
//! Captured on this machine (Linux 6.18) by `scripts/capture-mld.sh`: a
//! kernel host in a network namespace (MAC 02:00:00:00:00:0a, link-local
//! fe80::ff:fe00:a) joined and left ff3e::1:1 with IPV6_JOIN_GROUP /
//! IPV6_LEAVE_GROUP, joined ff3e::2:2 from 2001:db8::1 and 2001:db8::2 with
//! MCAST_JOIN_SOURCE_GROUP and left them again, first at MLDv2 (the
//! default), then the ASM join and leave at MLDv1
//! (net.ipv6.conf.eth0.force_mld_version=1); a Linux bridge querier
//! (fe80::ff:fe00:2, mcast_mld_version 2 then 1) sent the queries; the
//! report from :: is the bridge port's own, sent before its link-local
//! address existed (RFC 3590). The frames are the fuzz corpus's
//! `kernel-mld*.hex`.

use core::net::Ipv6Addr;
use igmpsnoop_control::wire::mld::{self, AddressRecordRepr, QueryV2, RecordType};
use igmpsnoop_control::wire::{frame, ipv6};

fn captured(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/fuzz/corpus/kernel-{name}.hex",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let t = text.trim();
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("hex"))
        .collect()
}

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

const HOST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];

/// Parse a captured frame: hop limit 1, Router Alert MLD, checksum good.
fn decode(name: &str) -> (frame::Frame6<'static>, mld::Repr) {
    let bytes: &'static [u8] = Box::leak(captured(name).into_boxed_slice());
    let f = frame::parse_ipv6(bytes).expect("IPv6 frame");
    assert_eq!(f.ip.hop_limit, 1, "{name}");
    assert_eq!(f.ip.router_alert, Some(ipv6::ROUTER_ALERT_MLD), "{name}");
    assert_eq!(f.ip.next_header, ipv6::NEXT_ICMPV6, "{name}");
    let p = mld::Packet::new_checked(f.payload).expect("MLD");
    assert!(p.verify_checksum(f.ip.src, f.ip.dst), "{name} checksum");
    (f, mld::Repr::parse(&p).expect("MLD repr"))
}

fn record(t: RecordType, address: &str, sources: &[&str]) -> mld::Repr {
    mld::Repr::ReportV2 {
        records: vec![AddressRecordRepr {
            record_type: t,
            address: a(address),
            sources: sources.iter().map(|s| a(s)).collect(),
        }],
    }
}

#[test]
fn mldv2_reports_decode() {
    let cases = [
        (
            "mldv2-to-ex",
            record(RecordType::ChangeToExclude, "ff3e::1:1", &[]),
        ),
        (
            "mldv2-to-in",
            record(RecordType::ChangeToInclude, "ff3e::1:1", &[]),
        ),
        (
            "mldv2-allow-1",
            record(RecordType::AllowNewSources, "ff3e::2:2", &["2001:db8::1"]),
        ),
        (
            "mldv2-allow-2",
            record(RecordType::AllowNewSources, "ff3e::2:2", &["2001:db8::2"]),
        ),
        (
            "mldv2-block-1",
            record(RecordType::BlockOldSources, "ff3e::2:2", &["2001:db8::1"]),
        ),
        (
            "mldv2-block-2",
            record(RecordType::BlockOldSources, "ff3e::2:2", &["2001:db8::2"]),
        ),
        (
            "mldv2-solicited-node",
            record(RecordType::ChangeToExclude, "ff02::1:ff00:a", &[]),
        ),
    ];
    for (name, want) in cases {
        let (f, repr) = decode(name);
        assert_eq!(repr, want, "{name}");
        assert_eq!(f.eth.src, HOST, "{name}");
        assert_eq!((f.ip.src, f.ip.dst), (a("fe80::ff:fe00:a"), a("ff02::16")));
    }
    let (f, repr) = decode("mldv2-unspecified-source");
    assert_eq!(f.ip.src, Ipv6Addr::UNSPECIFIED);
    assert_eq!(
        repr,
        record(RecordType::ChangeToExclude, "ff02::1:ff00:1", &[])
    );
}

#[test]
fn mldv1_messages_decode() {
    let (f, r) = decode("mldv1-report");
    assert_eq!(
        r,
        mld::Repr::ReportV1 {
            address: a("ff3e::1:1")
        }
    );
    assert_eq!(f.ip.dst, a("ff3e::1:1"));
    let (f, r) = decode("mldv1-done");
    assert_eq!(
        r,
        mld::Repr::Done {
            address: a("ff3e::1:1")
        }
    );
    assert_eq!(f.ip.dst, a("ff02::2"));
}

#[test]
fn kernel_queries_decode() {
    // The bridge's MLDv2 general query: Maximum Response Code 10000 ms,
    // QRV 2, QQIC 125 s.
    let (f, r) = decode("mldv2-query");
    assert_eq!((f.ip.src, f.ip.dst), (a("fe80::ff:fe00:2"), a("ff02::1")));
    assert_eq!(
        r,
        mld::Repr::Query {
            max_resp_code: 10_000,
            address: Ipv6Addr::UNSPECIFIED,
            v2: Some(QueryV2 {
                s_flag: false,
                qrv: 2,
                qqic: 125,
                sources: vec![],
            }),
        }
    );
    let (_, r) = decode("mldv1-query");
    assert_eq!(
        r,
        mld::Repr::Query {
            max_resp_code: 10_000,
            address: Ipv6Addr::UNSPECIFIED,
            v2: None,
        }
    );
}

/// What we emit for the host's messages is byte for byte what the kernel
/// sent (same Hop-by-Hop layout: Router Alert then PadN).
#[test]
fn emit_matches_kernel_bytes() {
    for name in [
        "mldv2-to-ex",
        "mldv2-to-in",
        "mldv2-allow-1",
        "mldv2-block-2",
        "mldv1-report",
        "mldv1-done",
    ] {
        let bytes = captured(name);
        let (f, repr) = decode(name);
        let ours = frame::build_mld(f.eth.src, 0, f.ip.src, f.ip.dst, &repr);
        assert_eq!(ours, bytes, "{name}");
    }
}

#[test]
fn corrupted_captures_are_refused() {
    let good = captured("mldv2-to-ex");
    // A flipped bit in the message: the ICMPv6 checksum fails.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let f = frame::parse_ipv6(&bad).unwrap();
    let p = mld::Packet::new_checked(f.payload).unwrap();
    assert!(!p.verify_checksum(f.ip.src, f.ip.dst));
    // Cut inside the record: the IPv6 payload length overruns the frame.
    assert!(frame::parse_ipv6(&good[..good.len() - 4]).is_err());
}
