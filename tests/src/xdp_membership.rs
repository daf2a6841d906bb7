//! What the tests of memberships applied in XDP (fast join, fast leave:
//! tests/tests/fast_join.rs, tests/tests/fast_leave.rs) share: a daemon
//! stopped for as long as a guard lives, paced bursts counted at the
//! hosts, port and engine counters, and the check that the fast path's
//! pinned maps hold exactly what the engine's table implies.
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use serde_json::Value;

use crate::daemon::{Switch, poll_until};
use crate::kernel_maps::{KernelState, kernel_state};
use crate::lab::Lab;
use crate::mcast::{SendOpts, send_with};
use crate::tools::{igmpsnoop_bin, mcast_tool_bin, require_root_and_tools};

pub const UDP: u16 = 5000;
/// Datagrams per burst.
pub const N: u64 = 100;
/// Frames a host may see on eth0 that are not the test's traffic (IGMP,
/// IPv6 noise) while a burst is sent: far below N.
pub const NOISE: u64 = 10;
pub const WAIT: Duration = Duration::from_secs(5);

fn rx(lab: &Lab, host: usize) -> u64 {
    lab.host_stats(host).unwrap().rx_packets
}

/// Sends N datagrams from h1 to `group` (paced, so no veth ring drops
/// them) and returns how many frames each of `hosts` received meanwhile:
/// once every host of `expect_full` has N, or after WAIT.
pub fn burst(
    lab: &Lab,
    group: impl Into<IpAddr>,
    hosts: &[usize],
    expect_full: &[usize],
) -> BTreeMap<usize, u64> {
    let group = group.into();
    let base: BTreeMap<usize, u64> = hosts.iter().map(|&h| (h, rx(lab, h))).collect();
    let mut o = SendOpts::new(group, UDP, N);
    o.interval_ms = 1;
    send_with(lab, 1, &o).unwrap();
    let got = |h: usize| rx(lab, h) - base[&h];
    poll_until(WAIT, || {
        expect_full.iter().all(|&h| got(h) >= N).then_some(())
    });
    // What must not arrive has had the time it would take.
    std::thread::sleep(Duration::from_millis(200));
    hosts.iter().map(|&h| (h, got(h))).collect()
}

/// The daemon, stopped (SIGSTOP) until this is dropped (SIGCONT), even when
/// the test fails: a stopped daemon would not stop on SIGTERM.
pub struct Stopped<'a>(&'a Switch);

impl<'a> Stopped<'a> {
    pub fn new(sw: &'a Switch) -> Stopped<'a> {
        sw.signal(libc::SIGSTOP).unwrap();
        let stat = format!("/proc/{}/stat", sw.pid());
        poll_until(WAIT, || {
            let s = std::fs::read_to_string(&stat).ok()?;
            // The state follows the parenthesised command name.
            let state = s.rsplit_once(") ")?.1.chars().next()?;
            (state == 'T').then_some(())
        })
        .expect("the daemon did not stop");
        Stopped(sw)
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        let _ = self.0.signal(libc::SIGCONT);
    }
}

/// A port's fast-path counter `name` (`igmpsnoop stats --port`).
pub fn port_counter(sw: &Switch, port: &str, name: &str) -> u64 {
    let p = sw.json(&["stats", "--port", port]).unwrap();
    p["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter {name}: {p}"))
}

pub fn engine_counter(sw: &Switch, name: &str) -> u64 {
    let s = sw.json(&["stats"]).unwrap();
    s["engine"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no engine counter {name}: {s}"))
}

/// One of the daemon's own counters (`igmpsnoop stats`, `daemon`).
pub fn daemon_counter(sw: &Switch, name: &str) -> u64 {
    let s = sw.json(&["stats"]).unwrap();
    s["daemon"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no daemon counter {name}: {s}"))
}

pub fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// What the engine's table implies for the fast path: every group listed
/// is registered, with its EXCLUDE-mode ports; every (S,G) entry with its
/// ports; router ports in every set (RFC 4541 §2.1.2).
pub fn table_implies(sw: &Switch) -> KernelState {
    let routers: BTreeSet<String> = sw
        .json(&["routers"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["port"].as_str().map(str::to_string))
        .collect();
    let mut state = KernelState::default();
    for r in sw.groups_json().unwrap() {
        let group: IpAddr = r["group"].as_str().unwrap().parse().unwrap();
        let vlan = r["vlan"].as_u64().unwrap() as u16;
        let set = state
            .groups
            .entry((vlan, group))
            .or_insert_with(|| routers.clone());
        if r["filter_mode"] == "exclude" {
            set.insert(r["port"].as_str().unwrap().to_string());
        }
    }
    for r in sw.json(&["sources"]).unwrap().as_array().unwrap() {
        let group: IpAddr = r["group"].as_str().unwrap().parse().unwrap();
        let source: IpAddr = r["source"].as_str().unwrap().parse().unwrap();
        let vlan = r["vlan"].as_u64().unwrap() as u16;
        state
            .groups
            .entry((vlan, group))
            .or_insert_with(|| routers.clone());
        let ports = strings(&r["ports"]).union(&routers).cloned().collect();
        state.sources.insert((vlan, group, source), ports);
    }
    state
}

/// The fast path holds exactly what the engine's table implies (polled a
/// little: a host's repeated report may be on its way).
pub fn assert_engine_and_fast_path_agree(lab: &Lab, sw: &Switch) {
    let pin = sw.pin_dir().expect("the test switch pins its state");
    let agree = poll_until(WAIT, || {
        let (table, kernel) = (table_implies(sw), kernel_state(lab, pin).unwrap());
        (table == kernel).then_some(())
    });
    if agree.is_none() {
        panic!(
            "the fast path and the engine disagree:\n table implies {:#?}\n kernel holds {:#?}",
            table_implies(sw),
            kernel_state(lab, pin).unwrap()
        );
    }
}

/// Fails (never skips) without root, sysctl, the daemon or mcast-tool.
pub fn require() {
    require_root_and_tools(&["sysctl"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

/// The daemon on every port of `lab`, with `extra` flags.
pub fn start(lab: &Lab, extra: &[&str]) -> Switch {
    let mut args = lab.port_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Switch::start(lab, &args).expect("igmpsnoop run")
}
