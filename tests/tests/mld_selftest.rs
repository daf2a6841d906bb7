//! The Linux kernel's bridge MLDv2 selftest
//! (tools/testing/selftests/net/forwarding/bridge_mld.sh), ported to the
//! real `igmpsnoop` daemon: one lab per case (IPv6 on), h1 the listener, h2
//! the sender, as there. h1 sends the selftest's report vectors raw (its
//! MLDv2 messages as the script has them, see `vector`); each case then
//! checks what the selftest reads from `bridge -j -d mdb show` in
//! `igmpsnoop groups --json` (filter mode, source list, which sources are
//! excluded) and `igmpsnoop sources --json` (the (S,G) entries and their
//! ports, installed in the fast path), and which sources reach h1: h2 sends
//! datagrams to the group from each source address, counted per source at
//! h1's eth0 below its IP stack.
//!
//! Where the selftest and the RFCs differ, these tests follow the RFCs:
//! - The selftest's group is ff02::cc, link-local scope. This switch never
//!   snoops ff02::/16: it floods it (neighbour discovery must never wait
//!   for a report; RFC 4541 §3 asks the same of 224.0.0.0/24, and the
//!   README says why). So the cases use ff0e::cc, the same group ID in
//!   global scope (same MAC, 33:33:00:00:00:cc), and `link_scope_group_is_
//!   flooded` checks what happens to the selftest's own ff02::cc.
//! - mausezahn sends the reports from fe80::fc54:ff:fe04:5eba, an address
//!   that is not h1's, to ff02::1 (all nodes), to MAC 33:33:00:00:00:01.
//!   RFC 3810 §5.2.14: MLDv2 reports go to ff02::16 (all MLDv2-capable
//!   routers); §5.2.13: from the host's link-local address. They are sent
//!   so here (hop limit 1 and the Router Alert option, §5, as the selftest
//!   has them), their checksum recomputed for those addresses.
//! - Timers: the script changes them on the running bridge; the daemon
//!   takes them at start, so each case starts with the timers it needs.
//! - `mldv2inc_is_exclude_test` checks `"${X[@]}"` and `"${Y[@]}"`, locals
//!   of `mldv2exclude_prepare`, empty there: it only checks
//!   2001:db8:1::100. Here X = {::1, ::2} and Y = {::20, ::21} are checked
//!   as meant.
//! - `mldv2star_ex_auto_add_test` looks for the bridge's own mechanism (an
//!   (S,G) port entry flagged `added_by_star_ex`); what it means for a user
//!   is that ::3, which h2 now asks for by INCLUDE, still reaches h1, whose
//!   EXCLUDE filter admits it: that is what is checked, in the (S,G) entry
//!   and on the wire.
//! - `mldv2per_vlan_snooping_{port,vlan}_stp_test` are about the bridge's
//!   per-VLAN STP states, which this switch does not have: not ported.
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use igmpsnoop_tests::selftest::{
    WAIT, entries, expect_table, p1_entries, require_selftest, source_list, start_querier,
};
use igmpsnoop_tests::{
    Lab, MldSend, SourceCounter6, Stream6, Switch, igmpsnoop_bin, ipv6_checksum, poll_until,
};
use serde_json::Value;

/// The selftest's ff02::cc in global scope (see the module comment).
const G: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0xcc);
/// The selftest's own group.
const G_LINK: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xcc);
const UDP: u16 = 4096;
/// Datagrams per source and check.
const N: u64 = 20;
const LISTENER: usize = 1;
const SENDER: usize = 2;

// The selftest's report vectors, whole frames as mausezahn sends them.
/// IS_IN {2001:db8:1::1, ::2, ::3}
const IS_INC: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:54:00:01:fe:80:00:\
00:00:00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:\
00:05:02:00:00:00:00:8f:00:8e:d9:00:00:00:01:01:00:00:03:ff:02:00:00:00:00:00:00:00:00:00:\
00:00:00:00:cc:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:01:20:01:0d:b8:00:01:00:00:00:\
00:00:00:00:00:00:02:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:03";
/// IS_IN {::10, ::11, ::12}
const IS_INC2: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:54:00:01:fe:80:00:\
00:00:00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:\
05:02:00:00:00:00:8f:00:8e:ac:00:00:00:01:01:00:00:03:ff:02:00:00:00:00:00:00:00:00:00:00:00:\
00:00:cc:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:10:20:01:0d:b8:00:01:00:00:00:00:00:00:\
00:00:00:11:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:12";
/// IS_IN {::20, ::30}
const IS_INC3: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:44:00:01:fe:80:00:00:00:\
00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:02:00:\
00:00:00:8f:00:bc:5a:00:00:00:01:01:00:00:02:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:cc:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:20:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:30";
/// ALLOW {::10, ::11, ::12}
const ALLOW: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:54:00:01:fe:80:00:00:\
00:00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:\
02:00:00:00:00:8f:00:8a:ac:00:00:00:01:05:00:00:03:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:\
00:cc:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:10:20:01:0d:b8:00:01:00:00:00:00:00:00:00:\
00:00:11:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:12";
/// ALLOW {::20, ::30}
const ALLOW2: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:44:00:01:fe:80:00:00:00:\
00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:02:00:\
00:00:00:8f:00:b8:5a:00:00:00:01:05:00:00:02:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:cc:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:20:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:30";
/// IS_EX {::1, ::2, ::20, ::21}
const IS_EXC: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:64:00:01:fe:80:00:00:00:\
00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:02:00:\
00:00:00:8f:00:5f:d0:00:00:00:01:02:00:00:04:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:cc:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:01:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:02:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:20:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:21";
/// IS_EX {::20, ::30}
const IS_EXC2: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:44:00:01:fe:80:00:00:00:\
00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:02:00:\
00:00:00:8f:00:bb:5a:00:00:00:01:02:00:00:02:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:cc:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:20:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:30";
/// TO_EX {::1, ::20, ::30}
const TO_EXC: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:54:00:01:fe:80:00:00:00:\
00:00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:02:00:\
00:00:00:8f:00:8b:8e:00:00:00:01:04:00:00:03:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:cc:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:01:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:20:20:\
01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:30";
/// BLOCK {::1, ::20, ::30}
const BLOCK: &str = "33:33:00:00:00:01:fe:54:00:04:5e:ba:86:dd:60:0a:2d:ae:00:54:00:01:fe:80:00:00:00:00:\
00:00:fc:54:00:ff:fe:04:5e:ba:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:01:3a:00:05:02:00:00:\
00:00:8f:00:89:8e:00:00:00:01:06:00:00:03:ff:02:00:00:00:00:00:00:00:00:00:00:00:00:00:cc:20:01:\
0d:b8:00:01:00:00:00:00:00:00:00:00:00:01:20:01:0d:b8:00:01:00:00:00:00:00:00:00:00:00:20:20:01:\
0d:b8:00:01:00:00:00:00:00:00:00:00:00:30";

/// 2001:db8:1::n, the selftest's source addresses (n as it writes it, so
/// 0x10 for "::10").
fn s(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, n)
}

fn srcs(ns: &[u16]) -> Vec<Ipv6Addr> {
    ns.iter().map(|n| s(*n)).collect()
}

/// Offsets in the selftest's frames: Ethernet 14, IPv6 40, Hop-by-Hop 8.
const MLD_AT: usize = 62;
/// The record's multicast address, in the MLD message (RFC 3810 §5.2:
/// 8-byte header, then type, aux len, number of sources).
const RECORD_GROUP: std::ops::Range<usize> = 12..28;

/// The MLDv2 message of a selftest vector, for `group`. Checks first that
/// the vector is read as the kernel meant it: one record, its checksum
/// right for the vector's own addresses.
fn vector(hex: &str, group: Ipv6Addr) -> Vec<u8> {
    let frame: Vec<u8> = hex
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("hex"))
        .collect();
    let addr = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&frame[at..at + 16]).unwrap());
    let (src, dst) = (addr(22), addr(38));
    let mut msg = frame[MLD_AT..].to_vec();
    let ck = u16::from_be_bytes([msg[2], msg[3]]);
    msg[2..4].fill(0);
    assert_eq!(ipv6_checksum(src, dst, 58, &msg), ck, "vector checksum");
    assert_eq!((msg[0], msg[7]), (143, 1), "an MLDv2 report of one record");
    assert_eq!(addr(MLD_AT + RECORD_GROUP.start), G_LINK);
    msg[RECORD_GROUP].copy_from_slice(&group.octets());
    msg
}

/// One case: a lab of two hosts with IPv6, the daemon as MLDv2 querier
/// (the selftest's bridge has mcast_querier 1 and mcast_mld_version 2;
/// without a querier no source timer is ever lowered, RFC 3810 §7.6.3),
/// and a per-source counter on the listener.
struct Case {
    lab: Lab,
    sw: Switch,
    rx: SourceCounter6,
}

impl Case {
    fn start(timers: &[&str]) -> Case {
        require_selftest(&[igmpsnoop_bin()]);
        let lab = Lab::ipv6(2).expect("lab with IPv6");
        let sw = start_querier(&lab, timers);
        let rx = SourceCounter6::start(&lab, LISTENER, G, UDP).expect("counter on h1");
        Case { lab, sw, rx }
    }

    /// Host `host` sends one of the selftest's vectors (for G), as a host
    /// sends MLD (see the module comment).
    fn report_from(&self, host: usize, hex: &str) {
        MldSend::default()
            .send(&self.lab, host, &vector(hex, G))
            .expect("sending a report");
    }

    /// h1 sends one of the selftest's vectors.
    fn report(&self, hex: &str) {
        self.report_from(LISTENER, hex);
    }

    /// Waits until h1's port shows `mode` with exactly `fwd` as running
    /// sources (a timer, not excluded) and `blocked` as excluded ones, and
    /// `igmpsnoop sources` the (S,G) entries that go with it: p1 for `fwd`,
    /// no port for `blocked`, in the fast path too (the daemon's count of
    /// installed IPv6 source entries).
    fn expect_state(&self, what: &str, mode: &str, fwd: &[u16], blocked: &[u16]) {
        let want_entries = p1_entries(&srcs(fwd), &srcs(blocked));
        self.expect_entries(what, mode, fwd, blocked, &want_entries);
    }

    /// `expect_state` with the (S,G) entries given (source -> ports).
    fn expect_entries(
        &self,
        what: &str,
        mode: &str,
        fwd: &[u16],
        blocked: &[u16],
        want_entries: &BTreeMap<String, Vec<String>>,
    ) {
        let (fwd, blocked) = (srcs(fwd), srcs(blocked));
        expect_table(&self.sw, what, G, mode, &fwd, &blocked, want_entries);
    }

    /// h2 sends N datagrams from each source; h1 must get exactly those
    /// of `fwd`, none of `not`.
    fn expect_delivery(&self, what: &str, fwd: &[u16], not: &[u16]) {
        let all: Vec<Ipv6Addr> = srcs(fwd).into_iter().chain(srcs(not)).collect();
        let want = srcs(fwd);
        self.stream(G).check(what, &all, &[("h1", &self.rx, &want)]);
    }

    fn stream(&self, group: Ipv6Addr) -> Stream6<'_> {
        Stream6 {
            lab: &self.lab,
            from: SENDER,
            group,
            port: UDP,
            n: N,
        }
    }

    /// The selftest's mldv2include_prepare: IS_IN {::1, ::2, ::3}.
    fn include_prepare(&self) {
        self.report(IS_INC);
        self.expect_state("include prepare (IS_IN)", "include", &[1, 2, 3], &[]);
    }

    /// mldv2exclude_prepare: include_prepare, then IS_EX {::1, ::2, ::20,
    /// ::21}: EXCLUDE (X {::1, ::2}, Y {::20, ::21}), ::3 deleted (RFC 3810
    /// §7.4.1: INCLUDE (A) IS_EX (B) -> EXCLUDE (A*B, B-A); Delete (A-B)).
    fn exclude_prepare(&self) {
        self.include_prepare();
        self.report(IS_EXC);
        self.expect_state("exclude prepare (IS_EX)", "exclude", &[1, 2], &[0x20, 0x21]);
    }
}

#[test]
fn mldv2include() {
    let c = Case::start(&[]);
    c.include_prepare();
    c.expect_delivery("is_include", &[1, 2, 3], &[0x100]);
}

#[test]
fn mldv2inc_allow() {
    let c = Case::start(&[]);
    c.include_prepare();
    c.report(ALLOW);
    // RFC 3810 §7.4.2: INCLUDE (A) ALLOW (B) -> INCLUDE (A+B); (B)=MALI
    c.expect_state(
        "include -> allow",
        "include",
        &[1, 2, 3, 0x10, 0x11, 0x12],
        &[],
    );
    c.expect_delivery("include -> allow", &[0x10, 0x11, 0x12], &[0x100]);
}

#[test]
fn mldv2inc_is_include() {
    let c = Case::start(&[]);
    c.include_prepare();
    c.report(IS_INC2);
    // §7.4.1: INCLUDE (A) IS_IN (B) -> INCLUDE (A+B); (B)=MALI
    c.expect_state(
        "include -> is_include",
        "include",
        &[1, 2, 3, 0x10, 0x11, 0x12],
        &[],
    );
    c.expect_delivery("include -> is_include", &[0x10, 0x11, 0x12], &[0x100]);
}

#[test]
fn mldv2inc_is_exclude() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.expect_delivery("include -> is_exclude", &[1, 2, 0x100], &[0x20, 0x21]);
}

#[test]
fn mldv2inc_to_exclude() {
    // LLQI 5 s as in the selftest: Q(MA,{::1}) lowers ::1 to LLQT = 10 s,
    // which is still running when it is checked.
    let c = Case::start(&["--last-member-interval", "5s"]);
    c.include_prepare();
    c.report(TO_EXC);
    // §7.4.2: INCLUDE (A) TO_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0;
    // Delete (A-B); Send Q(MA,A*B): X {::1}, Y {::20, ::30}; ::2, ::3 gone.
    c.expect_state("include -> to_exclude", "exclude", &[1], &[0x20, 0x30]);
    c.expect_delivery("include -> to_exclude", &[1, 0x100], &[0x20, 0x30]);
}

#[test]
fn mldv2exc_allow() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.report(ALLOW2);
    // §7.4.2: EXCLUDE (X,Y) ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=MALI
    c.expect_state("exclude -> allow", "exclude", &[1, 2, 0x20, 0x30], &[0x21]);
    c.expect_delivery("exclude -> allow", &[1, 2, 0x20, 0x30, 0x100], &[0x21]);
}

#[test]
fn mldv2exc_is_include() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.report(IS_INC3);
    // §7.4.1: EXCLUDE (X,Y) IS_IN (A) -> EXCLUDE (X+A, Y-A); (A)=MALI
    c.expect_state(
        "exclude -> is_include",
        "exclude",
        &[1, 2, 0x20, 0x30],
        &[0x21],
    );
    c.expect_delivery("exclude -> is_include", &[1, 2, 0x20, 0x30, 0x100], &[0x21]);
}

#[test]
fn mldv2exc_is_exclude() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    c.report(IS_EXC2);
    // §7.4.1: EXCLUDE (X,Y) IS_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=MALI;
    // Delete (X-A); Delete (Y-A): X {::30}, Y {::20}. The deleted ::1 and
    // ::2 follow the EXCLUDE mode again: forwarded (the selftest does not
    // look).
    c.expect_state("exclude -> is_exclude", "exclude", &[0x30], &[0x20]);
    c.expect_delivery("exclude -> is_exclude", &[0x30, 0x100, 1, 2], &[0x20]);
}

#[test]
fn mldv2exc_to_exclude() {
    let c = Case::start(&["--last-member-interval", "5s"]);
    c.exclude_prepare();
    c.report(TO_EXC);
    // §7.4.2: EXCLUDE (X,Y) TO_EX (A) -> EXCLUDE (A-Y, Y*A);
    // (A-X-Y)=Filter Timer; Delete (X-A); Delete (Y-A); Send Q(MA,A-Y):
    // X {::1, ::30} (lowered to LLQT = 10 s), Y {::20}.
    c.expect_state("exclude -> to_exclude", "exclude", &[1, 0x30], &[0x20]);
    c.expect_delivery("exclude -> to_exclude", &[1, 0x30, 0x100], &[0x20]);
}

#[test]
fn mldv2inc_block() {
    // LLQT 2 × 500 ms: ::1's lowered timer runs out soon after the BLOCK.
    let c = Case::start(&["--last-member-interval", "500ms"]);
    c.include_prepare();
    let t0 = Instant::now();
    c.report(BLOCK);
    // §7.4.2: INCLUDE (A) BLOCK (B) -> INCLUDE (A); Send Q(MA,A*B): ::1 is
    // lowered to LLQT and, nobody answering, deleted (§7.3).
    c.expect_state("include -> block", "include", &[2, 3], &[]);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "::1 deleted {:?} after the BLOCK, before LLQT (1 s)",
        t0.elapsed()
    );
    c.expect_delivery("include -> block", &[2, 3], &[1, 0x100]);
}

#[test]
fn mldv2exc_block() {
    let c = Case::start(&["--last-member-interval", "5s"]);
    c.exclude_prepare();
    c.report(BLOCK);
    // §7.4.2: EXCLUDE (X,Y) BLOCK (A) -> EXCLUDE (X+(A-Y), Y);
    // (A-X-Y)=Filter Timer; Send Q(MA,A-Y): X {::1, ::2, ::30}, Y {::20, ::21}.
    c.expect_state("exclude -> block", "exclude", &[1, 2, 0x30], &[0x20, 0x21]);
    c.expect_delivery("exclude -> block", &[1, 2, 0x30, 0x100], &[0x20, 0x21]);
}

#[test]
fn mldv2exc_timeout() {
    // The selftest prepares with MALI 5 s, then raises the query timers so
    // that the ALLOW's sources get MALI 15 s. The daemon's timers are fixed
    // at start, so one MALI (2 × 3 s + 2 s = 8 s) serves both, and the
    // ALLOW goes 4 s into the filter timer: its sources run until 4 s after
    // the filter timer has run out.
    let c = Case::start(&["--query-interval", "3s", "--query-response-interval", "2s"]);
    c.include_prepare();
    // Before the IS_EX: its filter timer (MALI) starts after this.
    let t0 = Instant::now();
    c.report(IS_EXC);
    c.expect_state("exclude prepare (IS_EX)", "exclude", &[1, 2], &[0x20, 0x21]);
    std::thread::sleep(Duration::from_secs(4).saturating_sub(t0.elapsed()));
    c.report(ALLOW2);
    // §7.4.2: EXCLUDE (X,Y) ALLOW (A) -> EXCLUDE (X+A, Y-A); then the filter
    // timer runs out (§7.5): INCLUDE with the sources whose timers run,
    // {::20, ::30}; ::1 and ::2 (their timers ran out with it) and ::21 are
    // gone.
    let ok = poll_until(Duration::from_secs(12), || {
        (c.sw.row(G, "p1")?["filter_mode"] == "include").then_some(())
    });
    assert!(
        ok.is_some(),
        "still EXCLUDE 12 s after the ALLOW: {:?}",
        c.sw.row(G, "p1")
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(7500),
        "INCLUDE {:?} after the IS_EX, before MALI (8 s)",
        t0.elapsed()
    );
    c.expect_state("exclude timeout", "include", &[0x20, 0x30], &[]);
    c.expect_delivery("exclude timeout", &[0x20, 0x30], &[1, 2, 0x21, 0x100]);
}

#[test]
fn mldv2star_ex_auto_add() {
    let c = Case::start(&[]);
    c.exclude_prepare();
    // h2 asks for {::1, ::2, ::3} by INCLUDE. ::3 is in no list of h1's,
    // whose EXCLUDE filter admits it: its (S,G) entry goes to both ports
    // (the bridge adds it to p1 as "added_by_star_ex").
    c.report_from(SENDER, IS_INC);
    let both = || vec!["p1".to_string(), "p2".to_string()];
    let want: BTreeMap<String, Vec<String>> = [
        (s(1).to_string(), both()),
        (s(2).to_string(), both()),
        (s(3).to_string(), both()),
        (s(0x20).to_string(), vec![]),
        (s(0x21).to_string(), vec![]),
    ]
    .into_iter()
    .collect();
    c.expect_entries(
        "exclude + another port's include",
        "exclude",
        &[1, 2],
        &[0x20, 0x21],
        &want,
    );
    let p2 = c.sw.row(G, "p2").expect("a row for p2");
    assert_eq!(p2["filter_mode"], "include", "{p2}");
    assert_eq!(
        source_list(&p2).keys().cloned().collect::<Vec<_>>(),
        vec![s(1).to_string(), s(2).to_string(), s(3).to_string()],
        "{p2}"
    );
    c.expect_delivery(
        "exclude + another port's include",
        &[1, 2, 3, 0x100],
        &[0x20, 0x21],
    );
}

#[test]
fn link_scope_group_is_flooded() {
    // The selftest's own vector, its own group ff02::cc: counted as a
    // link-scope report, learned nowhere; traffic to ff02::cc from any
    // source, excluded or not, is flooded to h1 (see the module comment).
    // Responses to our start-up query come within 1 s.
    let c = Case::start(&["--query-response-interval", "1s"]);
    let rx = SourceCounter6::start(&c.lab, LISTENER, G_LINK, UDP).expect("counter on h1");
    // The hosts' own reports (the counters' joins, retransmitted at up to
    // 1 s, and the answers to the query) end before the count starts, so
    // that the one vector below is the one report counted.
    let v2 = |sw: &Switch| {
        sw.json(&["stats"])
            .ok()
            .map(|j| j["engine"]["mld_rx_v2_report"].clone())
    };
    let mut last = v2(&c.sw);
    let quiet = poll_until(WAIT * 3, || {
        std::thread::sleep(Duration::from_millis(1500));
        let now = v2(&c.sw);
        let same = now == last;
        last = now;
        same.then_some(())
    });
    assert!(quiet.is_some(), "the hosts' MLD reports never stopped");
    let before = c.sw.json(&["stats"]).expect("stats")["engine"].clone();
    MldSend::default()
        .send(&c.lab, LISTENER, &vector(IS_EXC, G_LINK))
        .expect("sending a report");
    let counted = poll_until(WAIT, || {
        let e = c.sw.json(&["stats"]).ok()?["engine"].clone();
        let n = |k: &str| e[k].as_u64().unwrap_or(0) - before[k].as_u64().unwrap_or(0);
        (n("mld_rx_v2_report") == 1).then(|| n("mld_rx_link_local_report"))
    });
    assert_eq!(counted, Some(1), "the report counted as link-scope");
    let rows: Vec<Value> = c.sw.groups_json().unwrap();
    assert!(
        rows.iter().all(|r| r["family"] != "ipv6"),
        "nothing learned from a report for {G_LINK}: {rows:?}"
    );
    assert_eq!(entries(&c.sw, G_LINK), BTreeMap::new());
    let all = srcs(&[1, 0x20, 0x100]);
    c.stream(G_LINK)
        .check("ff02::cc is flooded", &all, &[("h1", &rx, &all)]);
}
