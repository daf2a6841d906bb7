//! The harness the ports of the kernel's bridge selftests share
//! (tests/tests/sources_selftest.rs for bridge_igmp.sh, IGMPv3;
//! tests/tests/mld_selftest.rs for bridge_mld.sh, MLDv2): the daemon
//! started as querier with a case's timers, and the checks of what the
//! selftests read from `bridge -j -d mdb show`, made on `igmpsnoop groups
//! --json` (filter mode, source list, which sources are excluded) and
//! `igmpsnoop sources --json` (the (S,G) entries and their ports, installed
//! in the fast path). The two differ only by address family ([`Family`]).

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Switch, poll_until};
use crate::lab::Lab;
use crate::tools::require_root_and_tools;

/// How long a case waits for the table to show a state.
pub const WAIT: Duration = Duration::from_secs(5);

/// What the table checks need to know of an address family.
pub trait Family: Copy + Display + Debug + Into<IpAddr> {
    /// Whether a `groups --json` row is of this family. The IGMP port does
    /// not look (its lab has no IPv6).
    fn row_is_family(row: &Value) -> bool;
    /// The daemon's count of installed source entries (`stats --json`) that
    /// a case compares with its (S,G) entries: the IGMP port the total (its
    /// lab has no IPv6), the MLD port the IPv6 ones.
    fn installed(stats: &Value) -> Value;
}

impl Family for Ipv4Addr {
    fn row_is_family(_row: &Value) -> bool {
        true
    }

    fn installed(stats: &Value) -> Value {
        stats["bpf_source_entries"].clone()
    }
}

impl Family for Ipv6Addr {
    fn row_is_family(row: &Value) -> bool {
        row["family"] == "ipv6"
    }

    fn installed(stats: &Value) -> Value {
        stats["bpf_source_entries_by_family"]["ipv6"].clone()
    }
}

/// Fails (never skips) without root, or without `bins` built.
pub fn require_selftest(bins: &[PathBuf]) {
    require_root_and_tools(&[]);
    for bin in bins {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build --all-targets)"
        );
    }
}

/// The daemon on `lab`'s ports as querier (the selftests' bridges have
/// mcast_querier 1; without a querier no source timer is ever lowered, RFC
/// 3376 §6.6.3, RFC 3810 §7.6.3), with a case's `timers` (the scripts
/// change them on the running bridge; the daemon takes them at start).
pub fn start_querier(lab: &Lab, timers: &[&str]) -> Switch {
    let mut args = lab.port_args();
    args.extend(
        ["--querier", "--querier-address", "10.77.0.254"]
            .iter()
            .chain(timers)
            .map(|a| a.to_string()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Switch::start(lab, &args).expect("igmpsnoop run")
}

/// The (S,G) entries that go with h1's port forwarding `fwd` and
/// excluding `blocked`: p1 for `fwd`, no port for `blocked`.
pub fn p1_entries<A: Family>(fwd: &[A], blocked: &[A]) -> BTreeMap<String, Vec<String>> {
    fwd.iter()
        .map(|s| (s.to_string(), vec!["p1".to_string()]))
        .chain(blocked.iter().map(|s| (s.to_string(), vec![])))
        .collect()
}

/// Waits until h1's port (p1) shows `mode` for `group` with exactly `fwd`
/// as running sources (a timer, not excluded) and `blocked` as excluded
/// ones, and `igmpsnoop sources` exactly `want_entries` (source -> ports),
/// in the fast path too (the daemon's count of installed source entries,
/// see [`Family::installed`]). Panics with what it saw last.
pub fn expect_table<A: Family>(
    sw: &Switch,
    what: &str,
    group: A,
    mode: &str,
    fwd: &[A],
    blocked: &[A],
    want_entries: &BTreeMap<String, Vec<String>>,
) {
    let want_list: BTreeMap<String, bool> = fwd
        .iter()
        .map(|s| (s.to_string(), false))
        .chain(blocked.iter().map(|s| (s.to_string(), true)))
        .collect();
    let mut last = (Value::Null, BTreeMap::new(), Value::Null);
    let ok = poll_until(WAIT, || {
        let row = sw.row(group, "p1").unwrap_or(Value::Null);
        let entries = entries(sw, group);
        let stats = sw.json(&["stats"]).expect("stats");
        let installed = A::installed(&stats);
        let matches = row["filter_mode"] == mode
            && A::row_is_family(&row)
            && source_list(&row) == want_list
            && timers_ok(&row)
            && entries == *want_entries
            && installed == want_entries.len();
        last = (row, entries, installed);
        matches.then_some(())
    });
    assert!(
        ok.is_some(),
        "{what}: expected {mode} with sources {want_list:?} (true = excluded) and \
         (S,G) entries {want_entries:?} within {WAIT:?}; \
         the row of p1: {}; entries: {:?}; installed in the fast path: {}",
        last.0,
        last.1,
        last.2
    );
}

/// The sources of a `groups --json` row: address -> excluded.
pub fn source_list(row: &Value) -> BTreeMap<String, bool> {
    row["sources"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let addr = s["address"].as_str().unwrap_or_default().to_string();
                    (addr, s["excluded"].as_bool().unwrap_or(false))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A running source has a timer (the selftest: not "0.00"); an excluded
/// one has none.
fn timers_ok(row: &Value) -> bool {
    row["sources"].as_array().is_some_and(|a| {
        a.iter().all(|s| {
            if s["excluded"] == true {
                s["expires_ms"].is_null()
            } else {
                s["expires_ms"].as_u64().is_some_and(|t| t > 0)
            }
        })
    })
}

/// `igmpsnoop sources --json` for `group` (untagged): source -> ports.
pub fn entries(sw: &Switch, group: impl Into<IpAddr>) -> BTreeMap<String, Vec<String>> {
    let group = group.into().to_string();
    let v = sw.json(&["sources"]).expect("sources --json");
    v.as_array()
        .expect("sources --json is an array")
        .iter()
        .filter(|e| e["group"] == group.as_str() && e["vlan"] == 0)
        .map(|e| {
            let ports = e["ports"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            (e["source"].as_str().unwrap_or_default().to_string(), ports)
        })
        .collect()
}
