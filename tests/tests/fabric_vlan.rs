//! Two igmpsnoop switches joined by an 802.1Q trunk that carries VLANs 10
//! and 20, with access hosts of both VLANs on each switch, all of them
//! kernel hosts on veths as `auto` XDP mode finds them:
//!
//! ```text
//!   h1 (10)  h2 (10)  h3 (20)          h11 (10)  h12 (20)
//!     p1       p2       p3               p11       p12
//!    [      switch 1       ] s2 ==== s1 [    switch 2    ]
//!                           trunk 10,20
//! ```
//!
//! What a network engineer checks on such a pair: each VLAN is one layer-2
//! domain across both switches and the VLANs never meet (ping within, not
//! across); each switch's querier state and router ports are per VLAN; a
//! group joined in VLAN 10 on switch 2 reaches it across the trunk only
//! from VLAN 10 senders, while the same group address joined in VLAN 20
//! gets only VLAN 20's traffic. Switch 1's VLAN 10 set for the group holds
//! an access port and the trunk (one copy untagged, one tagged): the mixed
//! case, whose copies the fast path makes in its TC program.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use igmpsnoop_tests::{
    Fabric, Receiver, Switch, igmpsnoop_bin, mcast_tool_bin, poll_until, require_root_and_tools,
    send,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 10, 1);
const UDP: u16 = 5000;
const N: u64 = 40;

fn require() {
    require_root_and_tools(&["tcpdump"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

const TIMERS: &[&str] = &[
    "--query-interval",
    "2s",
    "--query-response-interval",
    "1s",
    "--last-member-interval",
    "300ms",
    "--flood-unregistered",
    "false",
    "--no-pin",
];

fn start(
    f: &Fabric,
    s: usize,
    vlans: &[&str],
    querier: Option<&str>,
    mode: &[&'static str],
) -> Switch {
    let mut args: Vec<&str> = vlans.to_vec();
    args.extend_from_slice(TIMERS);
    args.extend_from_slice(mode);
    if let Some(q) = querier {
        args.extend(["--querier", "--querier-address", q]);
    }
    f.start_igmpsnoop(s, &args).expect("igmpsnoop starts")
}

/// The router ports switch `sw` lists, as (port, vlan) pairs.
fn routers(sw: &Switch) -> Vec<(String, u64)> {
    let v = sw.json(&["routers"]).expect("routers --json");
    let mut out: Vec<(String, u64)> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["port"].as_str().unwrap_or_default().to_string(),
                r["vlan"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether switch `sw` lists `port` as a member of G on `vlan`.
fn member(sw: &Switch, vlan: u16, port: &str) -> bool {
    sw.groups().is_ok_and(|rows| {
        rows.iter()
            .any(|r| r.vlan == vlan && r.group == std::net::IpAddr::V4(G) && r.port == port)
    })
}

/// At `--xdp-mode auto`: generic XDP on these veths. Switch 1's TC copies
/// reach switch 2 as redirected skbs, which generic XDP skips: switch 2's
/// TC program switches them.
#[test]
fn two_switches_joined_by_a_trunk_keep_each_vlan_whole_and_apart() {
    trunk_between_two_switches(&[]);
}

/// In native mode XDP sees every frame, switch 1's TC copies included: they
/// must carry their tag in their bytes.
#[test]
fn two_switches_joined_by_a_trunk_in_native_mode() {
    trunk_between_two_switches(&["--xdp-mode", "native"]);
}

fn trunk_between_two_switches(mode: &[&'static str]) {
    require();
    let f = Fabric::new(&[3, 2], &[(1, 2)]).expect("fabric");
    let s1 = start(
        &f,
        1,
        &[
            "--pvid", "p1=10", "--pvid", "p2=10", "--pvid", "p3=20", "--vlans", "s2=10,20",
        ],
        Some("10.77.0.201"),
        mode,
    );
    let s2 = start(
        &f,
        2,
        &[
            "--pvid", "p11=10", "--pvid", "p12=20", "--vlans", "s1=10,20",
        ],
        None,
        mode,
    );
    let (l1, l2) = (f.lab(1), f.lab(2));

    // One layer-2 domain per VLAN across the trunk, and none between them.
    if let Err(e) = l1.ping(1, l2.host_ip(11), 3) {
        let c1 = s1.cli(&["ports", "--json"]);
        let c2 = s2.cli(&["ports", "--json"]);
        panic!(
            "h1 (VLAN 10) does not reach h11 across the trunk: {e:#}\nswitch 1: {}\nswitch 2: {}",
            String::from_utf8_lossy(&c1.stdout),
            String::from_utf8_lossy(&c2.stdout)
        );
    }
    l1.ping(3, l2.host_ip(12), 5)
        .expect("h3 (VLAN 20) reaches h12 (VLAN 20) across the trunk");
    assert!(
        l1.ping(1, l2.host_ip(12), 2).is_err(),
        "h1 (VLAN 10) must not reach h12 (VLAN 20)"
    );
    assert!(
        l1.ping(2, l1.host_ip(3), 2).is_err(),
        "h2 (VLAN 10) must not reach h3 (VLAN 20) on the same switch"
    );

    // Switch 1 queries on both VLANs; switch 2 hears it on each and makes
    // its trunk a router port of each, and of nothing else.
    let want = vec![("s1".to_string(), 10), ("s1".to_string(), 20)];
    let got = poll_until(Duration::from_secs(10), || {
        let r = routers(&s2);
        (r == want).then_some(r)
    });
    assert_eq!(
        got,
        Some(want),
        "switch 2's router ports: {:?}",
        routers(&s2)
    );

    // The same group joined in VLAN 10 on both switches and in VLAN 20 on
    // switch 2 (h11's and h12's reports cross the trunk, tagged).
    let mut rx: BTreeMap<usize, Receiver> = BTreeMap::new();
    rx.insert(2, Receiver::start(l1, 2, &[G], UDP).unwrap());
    rx.insert(3, Receiver::start(l1, 3, &[G], UDP).unwrap());
    rx.insert(11, Receiver::start(l2, 11, &[G], UDP).unwrap());
    rx.insert(12, Receiver::start(l2, 12, &[G], UDP).unwrap());
    let learned = poll_until(Duration::from_secs(10), || {
        (member(&s1, 10, "p2")
            && member(&s1, 10, "s2")
            && member(&s1, 20, "p3")
            && member(&s1, 20, "s2")
            && member(&s2, 10, "p11")
            && member(&s2, 20, "p12"))
        .then_some(())
    });
    assert!(
        learned.is_some(),
        "memberships not learned per VLAN: switch 1 {:?}, switch 2 {:?}",
        s1.groups(),
        s2.groups()
    );

    // From VLAN 10 (h1): h2 on the same switch (untagged copy) and h11
    // across the trunk (tagged copy, then untagged at p11); VLAN 20's
    // members nothing.
    send(l1, 1, G, UDP, N).unwrap();
    // From VLAN 20 (h3, itself a member): h12 across the trunk only.
    send(l1, 3, G, UDP, N).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let got: BTreeMap<usize, u64> = rx
        .into_iter()
        .map(|(h, r)| (h, r.finish().unwrap().get(&G).copied().unwrap_or(0)))
        .collect();
    let want: BTreeMap<usize, u64> = [(2, N), (3, 0), (11, N), (12, N)].into();
    assert_eq!(
        got, want,
        "datagrams per member: h1 (VLAN 10) and h3 (VLAN 20) sent {N} each"
    );
    // Switch 2 accounts for every datagram that crossed the trunk (VLAN
    // 10's came as switch 1's TC copies, which generic XDP does not see),
    // and lost none of them.
    let c = trunk_counters(&s2, "s1");
    assert!(
        c["rx"].as_u64().unwrap_or(0) >= 2 * N && c["tc_drop"] == 0 && c["drop_vlan"] == 0,
        "switch 2's trunk port counters: {c}"
    );
    drop((s1, s2));
}

/// The data-plane counters of `port` on switch `sw` (`ports --json`).
fn trunk_counters(sw: &Switch, port: &str) -> serde_json::Value {
    let v = sw.json(&["ports"]).expect("ports --json");
    v.as_array()
        .into_iter()
        .flatten()
        .find(|r| r["port"] == port)
        .map(|r| r["counters"].clone())
        .unwrap_or_else(|| panic!("no port {port} in {v}"))
}
