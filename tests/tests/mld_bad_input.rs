//! Bad MLD over the wire, against the real daemon in a lab with IPv6: h1 is
//! a listener of ff0e::cc INCLUDE {2001:db8:1::1, ::2, ::3}, then sends
//! MLD that breaks one rule at a time, each of which would change the table
//! if it were taken (switch ff0e::cc to EXCLUDE, add a group, win the
//! querier election). Each must be counted under its own reason in
//! `igmpsnoop stats --json` (and no other reason), leave the group table,
//! the (S,G) entries, the router ports and the querier state as they were,
//! and leave the daemon running (a valid report is still learned after
//! them all).
//!
//! The extension-header bound is checked from both sides: the fast path
//! walks 6 headers and hands a longer chain to the control plane (counted
//! `ipv6_long_chain`); the engine walks 8. A report behind 7 or 8 headers
//! is valid MLD (RFC 3810 does not bound the chain) and is learned; behind
//! 9 or more it is refused, counted `reject_ext_header_chain`.
use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use igmpsnoop_tests::{
    ALL_NODES, Lab, MldSend, Switch, counters_moved, igmpsnoop_bin, mldv2_report, poll_until,
    require_root_and_tools,
};
use serde_json::Value;

const G: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0xcc);
const G2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0xdd);
const LISTENER: usize = 1;
const WAIT: Duration = Duration::from_secs(5);
const MAX_SOURCES: &str = "4";

// RFC 3810 §5.2.12 record types.
const IS_IN: u8 = 1;
const TO_EX: u8 = 4;
const ALLOW: u8 = 5;

fn s(n: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, n)
}

struct Case {
    lab: Lab,
    sw: Switch,
}

impl Case {
    /// The lab, the daemon as querier with at most MAX_SOURCES sources per
    /// group, and h1 in ff0e::cc INCLUDE {::1, ::2, ::3}.
    fn start() -> Case {
        require_root_and_tools(&[]);
        let bin = igmpsnoop_bin();
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build --all-targets)"
        );
        let lab = Lab::ipv6(2).expect("lab with IPv6");
        let mut args = lab.port_args();
        args.extend(
            [
                "--querier",
                "--querier-address",
                "10.77.0.254",
                "--max-sources-per-group",
                MAX_SOURCES,
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let sw = Switch::start(&lab, &args).expect("igmpsnoop run");
        let c = Case { lab, sw };
        c.send(
            &MldSend::default(),
            &mldv2_report(&[(IS_IN, G, &[s(1), s(2), s(3)])]),
        );
        c.wait_row(G, "a listener's IS_IN");
        c
    }

    fn send(&self, how: &MldSend, msg: &[u8]) {
        how.send(&self.lab, LISTENER, msg).expect("sending MLD");
    }

    fn wait_row(&self, group: Ipv6Addr, what: &str) {
        let g = group.to_string();
        let found = poll_until(WAIT, || {
            let rows = self.sw.groups_json().ok()?;
            rows.iter().any(|r| r["group"] == g.as_str()).then_some(())
        });
        assert!(
            found.is_some(),
            "{what}: no row for {group} within {WAIT:?}: {:?}",
            self.sw.groups_json()
        );
    }

    /// What the daemon learned, without its timers: groups, (S,G) entries,
    /// router ports, querier state.
    fn state(&self) -> Value {
        let mut v = serde_json::json!({
            "groups": self.sw.json(&["groups"]).expect("groups"),
            "sources": self.sw.json(&["sources"]).expect("sources"),
            "routers": self.sw.json(&["routers"]).expect("routers"),
            "querier": self.sw.json(&["querier"]).expect("querier"),
        });
        strip_timers(&mut v);
        v
    }

    /// Sends `msg` as `how` says, and checks that it is counted as
    /// `reason` (and as no other rejection) and changes nothing.
    fn expect_refused(&mut self, what: &str, how: &MldSend, msg: &[u8], reason: &str) {
        let (state0, c0) = (self.state(), self.sw.engine_counters());
        assert!(c0.contains_key(reason), "no counter {reason} in stats");
        self.send(how, msg);
        let mut moved = BTreeMap::new();
        let counted = poll_until(WAIT, || {
            moved = rejections_moved(&c0, &self.sw.engine_counters());
            moved.contains_key(reason).then_some(())
        });
        // Anything else the frame would have done has been done by now:
        // the engine handles a frame at once.
        let want: BTreeMap<String, u64> = [(reason.to_string(), 1)].into();
        assert!(
            counted.is_some() && moved == want,
            "{what}: expected {want:?} within {WAIT:?}, rejections that moved: {moved:?}"
        );
        assert_eq!(self.state(), state0, "{what}: the daemon's state changed");
        assert!(self.sw.is_running(), "{what}: the daemon exited");
    }
}

/// The rejection counters (`reject_*`, `mld_reject_*`) that changed.
fn rejections_moved(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut moved = counters_moved(a, b);
    moved.retain(|k, _| k.contains("reject_"));
    moved
}

/// Removes what moves with time alone: `*_ms` and the startup query count.
fn strip_timers(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("_ms") && k != "startup_queries_left");
            m.values_mut().for_each(strip_timers);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_timers),
        _ => {}
    }
}

/// A report that would change the table if taken: G to EXCLUDE {}, and a
/// new group G2.
fn takeover() -> Vec<u8> {
    mldv2_report(&[(TO_EX, G, &[]), (IS_IN, G2, &[s(5)])])
}

/// An MLDv2 general query (RFC 3810 §5.1): max response 1 s, QRV 2, QQIC
/// 125; checksum filled in when sent.
fn general_query() -> Vec<u8> {
    let mut m = vec![130, 0, 0, 0, 0x03, 0xe8, 0, 0];
    m.extend_from_slice(&Ipv6Addr::UNSPECIFIED.octets());
    m.extend_from_slice(&[2, 125, 0, 0]);
    m
}

#[test]
fn malformed_mld_is_counted_and_changes_nothing() {
    let mut c = Case::start();
    let msg = takeover();
    let bad_ck = MldSend {
        bad_checksum: true,
        ..MldSend::default()
    };
    c.expect_refused("bad checksum", &bad_ck, &msg, "reject_bad_icmpv6_checksum");
    let no_ra = MldSend {
        router_alert: false,
        ..MldSend::default()
    };
    c.expect_refused("no Router Alert", &no_ra, &msg, "reject_no_router_alert");
    for hop_limit in [2, 255] {
        let how = MldSend {
            hop_limit,
            ..MldSend::default()
        };
        let what = format!("hop limit {hop_limit}");
        c.expect_refused(&what, &how, &msg, "mld_reject_bad_hop_limit");
    }
    // A report from a global address (RFC 3810 §5.2.13: link-local or ::).
    let global = MldSend {
        src: Some(c.lab.host_ip6(LISTENER)),
        ..MldSend::default()
    };
    c.expect_refused(
        "report from fd77::1",
        &global,
        &msg,
        "reject_report_not_link_local",
    );
    // A query from fd77::1, an address lower than ours: taken, it would win
    // the election (§7.6.2) and make p1 a router port.
    let query = MldSend {
        src: Some(c.lab.host_ip6(LISTENER)),
        dst: ALL_NODES,
        ..MldSend::default()
    };
    let q = general_query();
    c.expect_refused(
        "query from fd77::1",
        &query,
        &q,
        "reject_query_not_link_local",
    );
    // The same report sent to a unicast address (h2's), at h2's MAC.
    let unicast = MldSend {
        dst: c.lab.host_link_local(2),
        mac_dst: Some(c.lab.host_mac_bytes(2)),
        ..MldSend::default()
    };
    c.expect_refused(
        "report to unicast",
        &unicast,
        &msg,
        "mld_reject_not_multicast",
    );
    // Truncated: a record claiming 3 sources that carries 2 (its report's
    // lengths otherwise consistent), and a report claiming 2 records.
    let mut overrun = mldv2_report(&[(TO_EX, G, &[s(7), s(8), s(9)])]);
    overrun.truncate(overrun.len() - 16);
    let how = MldSend::default();
    c.expect_refused("source list cut", &how, &overrun, "reject_source_overrun");
    let mut short = takeover();
    short[7] = 3;
    c.expect_refused("a record missing", &how, &short, "reject_truncated");
    let cut = &msg[..6];
    c.expect_refused("header cut", &how, cut, "reject_truncated");

    // Still alive and learning: the same report, sent right, is taken (so
    // each refusal above kept a change out).
    c.send(&how, &msg);
    c.wait_row(G2, "the takeover report sent right");
    let row = c.sw.groups_json().unwrap();
    let g = row.iter().find(|r| r["group"] == G.to_string().as_str());
    assert_eq!(
        g.map(|r| r["filter_mode"].clone()),
        Some("exclude".into()),
        "{row:?}"
    );
}

#[test]
fn bad_records_are_counted_and_change_nothing() {
    let mut c = Case::start();
    let how = MldSend::default();
    let unicast_group = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0xcc);
    let not_mc = mldv2_report(&[(IS_IN, unicast_group, &[s(5)])]);
    c.expect_refused("unicast group", &how, &not_mc, "mld_reject_bad_group");
    let dup = mldv2_report(&[(TO_EX, G, &[s(1), s(1)])]);
    c.expect_refused(
        "duplicate sources",
        &how,
        &dup,
        "mld_reject_source_duplicate",
    );
    // G has 3 sources; 2 more make 5 > 4: refused, G keeps its state.
    let over = mldv2_report(&[(ALLOW, G, &[s(0x10), s(0x11)])]);
    c.expect_refused("too many sources", &how, &over, "mld_reject_limit_sources");
    let mc_src = mldv2_report(&[(ALLOW, G, &[G2])]);
    c.expect_refused(
        "multicast source",
        &how,
        &mc_src,
        "mld_reject_source_multicast",
    );
    // One more source is within the limit: taken.
    c.send(&how, &mldv2_report(&[(ALLOW, G, &[s(0x10)])]));
    let four = poll_until(WAIT, || {
        let rows = c.sw.groups_json().ok()?;
        let row = rows.iter().find(|r| r["group"] == G.to_string().as_str())?;
        (row["sources"].as_array()?.len() == 4).then_some(())
    });
    assert!(
        four.is_some(),
        "ALLOW {{::10}} not taken: {:?}",
        c.sw.groups_json()
    );
}

#[test]
fn extension_header_chain_bound() {
    let mut c = Case::start();
    let dp0 = c.sw.json(&["stats"]).expect("stats")["dataplane"]["ipv6_long_chain"]
        .as_u64()
        .expect("dataplane.ipv6_long_chain");
    // Hop-by-Hop + 6 Destination Options = 7 headers (past the fast path's
    // 6: handed over whole), + 7 = 8 (the engine's bound): valid MLD, taken.
    for (n, group) in [(7u16, 0x77), (8, 0x88)] {
        let g = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, group);
        let how = MldSend {
            dest_opts: usize::from(n) - 1,
            ..MldSend::default()
        };
        c.send(&how, &mldv2_report(&[(IS_IN, g, &[s(n)])]));
        c.wait_row(g, &format!("a report behind {n} extension headers"));
    }
    let long = c.sw.json(&["stats"]).expect("stats")["dataplane"]["ipv6_long_chain"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(long - dp0, 2, "the fast path handed 2 long chains over");
    for n in [9, 12] {
        let how = MldSend {
            dest_opts: n - 1,
            ..MldSend::default()
        };
        let what = format!("{n} extension headers");
        c.expect_refused(&what, &how, &takeover(), "reject_ext_header_chain");
    }
}
