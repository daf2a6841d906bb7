//! Per-VLAN snooping end to end: the real `igmpsnoop` daemon on a netns lab
//! whose ports are configured with VLANs (the kernel here has no 802.1Q
//! devices, so the trunk host speaks tagged frames through scapy and is
//! watched with tcpdump/tshark; access hosts are kernel hosts joining
//! untagged through the socket API).
//!
//! The lab: p1 access VLAN 10 (h1), p2 access VLAN 20 (h2), p3 a trunk
//! carrying 10 and 20 tagged (h3, scapy), p4 access VLAN 10 (h4, a sender).
//! Our IGMP querier source is 10.77.0.254, VLAN 20's own 10.77.0.250.
//!
//! What is checked, as a user would: each VLAN's general queries on the
//! wire with its tag (or none on an access port) and its own source, only
//! on its ports (tshark decodes them); a join in VLAN 10 replicated only
//! inside VLAN 10 (the VLAN-20 members of the same group address get
//! none of it); `igmpsnoop vlans` and `--vlan` on the listings; a query
//! from another router on VLAN 20 making p3 a router port of VLAN 20 only,
//! with VLAN 20's reports forwarded there tagged and VLAN 10's not at all;
//! bad VLAN settings refused with exit status 78, naming what is wrong.
//!
//! The delivery and tag-on-the-wire checks need the fast path's half of
//! VLAN support (per-VLAN sets, tag push/pop, the VLAN-aware `send`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use igmpsnoop_tests::{
    Capture, Lab, Receiver, ScapyHost, Switch, field_str, igmpsnoop_bin, igmpsnoop_cli,
    mcast_tool_bin, poll_until, require_root_and_tools, send,
};
use serde_json::Value;

const G: Ipv4Addr = Ipv4Addr::new(239, 7, 7, 7);
const UDP: u16 = 5070;
const N: u64 = 40;
const OURS: &str = "10.77.0.254";
const OURS_20: &str = "10.77.0.250";
const QUERY: &str = "igmp.type == 0x11";

fn require() {
    require_root_and_tools(&["tcpdump", "tshark"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

/// The switch on the lab's four ports with the VLANs above, short timers.
fn start(lab: &Lab, extra: &[&str]) -> Switch {
    let mut args: Vec<String> = lab.port_args();
    for a in [
        "--pvid",
        "p1=10",
        "--pvid",
        "p2=20",
        "--vlans",
        "p3=10,20",
        "--pvid",
        "p4=10",
        "--querier-address",
        OURS,
        "--vlan-querier-address",
        "20=10.77.0.250",
        "--query-interval",
        "2s",
        "--query-response-interval",
        "1s",
        "--last-member-interval",
        "200ms",
    ] {
        args.push(a.into());
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Switch::start(lab, &args).expect("igmpsnoop run")
}

/// A tagged IGMP message from h3 (the trunk), sent by scapy: `msg` is a
/// scapy expression for the IGMP layer.
fn tagged_igmp(h3: &mut ScapyHost, vlan: u16, dst: &str, msg: &str) {
    let mac = ip_mac(dst);
    h3.must(&format!(
        "sendp(Ether(src=get_if_hwaddr(IFACE), dst='{mac}') / Dot1Q(vlan={vlan}) / \
         IP(src='10.77.0.3', dst='{dst}', ttl=1, options=RA) / {msg}, iface=IFACE, verbose=False)"
    ));
}

/// The multicast MAC of an IPv4 group (RFC 1112 §6.4).
fn ip_mac(ip: &str) -> String {
    let o = ip.parse::<Ipv4Addr>().unwrap().octets();
    format!("01:00:5e:{:02x}:{:02x}:{:02x}", o[1] & 0x7f, o[2], o[3])
}

/// h3 joins `G` on `vlan` with an IGMPv3 CHANGE_TO_EXCLUDE({}) record.
fn trunk_join(h3: &mut ScapyHost, vlan: u16) {
    tagged_igmp(
        h3,
        vlan,
        "224.0.0.22",
        &format!("IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=4, maddr='{G}')])"),
    );
}

fn rows(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("not a listing: {other}"),
    }
}

/// The (vlan, port) memberships of `G`.
fn memberships(sw: &Switch) -> Vec<(u64, String)> {
    let mut m: Vec<(u64, String)> = sw
        .groups_json()
        .unwrap()
        .iter()
        .filter(|r| r["group"] == G.to_string().as_str())
        .map(|r| {
            (
                r["vlan"].as_u64().unwrap(),
                r["port"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    m.sort();
    m
}

fn wait_memberships(sw: &Switch, want: &[(u64, &str)]) {
    let want: Vec<(u64, String)> = want.iter().map(|(v, p)| (*v, p.to_string())).collect();
    poll_until(Duration::from_secs(8), || {
        (memberships(sw) == want).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "memberships of {G}: want {want:?}, have {:?}",
            memberships(sw)
        )
    });
}

/// Bad VLAN settings: refused before anything starts, exit status 78
/// (EX_CONFIG: a service manager does not retry), the message naming what
/// is wrong. No lab needed: nothing is attached.
#[test]
fn bad_vlan_settings_exit_78_naming_them() {
    assert!(igmpsnoop_bin().is_file(), "igmpsnoop not built");
    for (args, names) in [
        (&["--pvid", "p1=5000"][..], "--pvid p1=5000: VLAN id 5000"),
        (
            &["--vlans", "p1=10,4095"][..],
            "--vlans p1=10,4095: VLAN id 4095",
        ),
        (
            &["--pvid", "eth9=10"][..],
            "\"eth9\" is not one of the --port interfaces",
        ),
        (
            &["--vlan-querier-address", "30=10.0.0.1"][..],
            "no port is configured for VLAN 30",
        ),
    ] {
        let mut full = vec!["run", "--port", "p1", "--no-pin"];
        full.extend_from_slice(args);
        let out = igmpsnoop_cli(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(78), "{full:?}: {stderr}");
        assert!(stderr.contains(names), "{full:?}: {stderr}");
    }
}

/// Each VLAN's general queries leave with its tag on the trunk, untagged
/// on its access ports, from its own source, and never on another VLAN's
/// port.
#[test]
fn per_vlan_general_queries_on_the_wire() {
    require();
    let lab = Lab::new(4).unwrap();
    let caps: Vec<Capture> = (1..=3)
        .map(|h| Capture::start(&lab, &lab.host_ns(h), "eth0", "").unwrap())
        .collect();
    let _sw = start(&lab, &["--querier"]);
    let q10 = format!("{QUERY} && ip.src == {OURS} && ip.dst == 224.0.0.1");
    let q20 = format!("{QUERY} && ip.src == {OURS_20} && ip.dst == 224.0.0.1");
    let t = Duration::from_secs(6);
    // The trunk: both VLANs' queries, each with its own tag and source.
    caps[2]
        .wait_for(&format!("vlan.id == 10 && {q10}"), 2, t)
        .expect("VLAN 10's queries, tagged 10, on the trunk");
    caps[2]
        .wait_for(&format!("vlan.id == 20 && {q20}"), 2, t)
        .expect("VLAN 20's queries, tagged 20, on the trunk");
    // The access ports: their VLAN's queries, untagged.
    caps[0]
        .wait_for(&format!("!vlan && {q10}"), 2, t)
        .expect("VLAN 10's queries, untagged, on p1");
    caps[1]
        .wait_for(&format!("!vlan && {q20}"), 2, t)
        .expect("VLAN 20's queries, untagged, on p2");
    let mut caps = caps;
    for (i, mut c) in caps.drain(..).enumerate() {
        c.stop().unwrap();
        let all = c.decode(Some(QUERY)).unwrap();
        let (ok_src, ok_tags): (&str, &[&str]) = match i {
            0 => (OURS, &[]),
            1 => (OURS_20, &[]),
            _ => ("", &["10", "20"]),
        };
        for f in &all {
            let src = field_str(f, "ip.src").unwrap_or_default();
            let tag = field_str(f, "vlan.id");
            if i < 2 {
                assert_eq!(
                    (src.as_str(), tag.as_deref()),
                    (ok_src, None),
                    "h{}: a query of another VLAN, or tagged: {f}",
                    i + 1
                );
            } else {
                let tag = tag.unwrap_or_default();
                assert!(ok_tags.contains(&tag.as_str()), "h3: untagged query: {f}");
                let want = if tag == "10" { OURS } else { OURS_20 };
                assert_eq!(src, want, "h3: VLAN {tag}'s query from {src}");
            }
        }
    }
}

/// A join in VLAN 10 is replicated inside VLAN 10 only: the VLAN-20
/// members of the same group address (a kernel host on an access port,
/// the trunk host tagged) receive none of VLAN 10's traffic.
#[test]
fn joins_replicate_only_within_their_vlan() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &[]);
    let mut h3 = ScapyHost::start(&lab, 3).unwrap();
    let r1 = Receiver::start(&lab, 1, &[G], UDP).unwrap();
    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    trunk_join(&mut h3, 20);
    wait_memberships(&sw, &[(10, "p1"), (20, "p2"), (20, "p3")]);
    let cap = Capture::start(&lab, &lab.host_ns(3), "eth0", "").unwrap();
    // h4 (access VLAN 10) sends: only h1 is a member of (VLAN 10, G).
    send(&lab, 4, G, UDP, N).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(r1.finish().unwrap()[&G], N, "h1, VLAN 10 member");
    assert_eq!(
        r2.finish().unwrap().get(&G).copied().unwrap_or(0),
        0,
        "h2, a VLAN-20 member of the same group"
    );
    let mut cap = cap;
    let leaked = cap
        .count_frames(&format!("ip.dst == {G} && udp.dstport == {UDP}"))
        .unwrap();
    assert_eq!(
        leaked, 0,
        "h3 (VLAN 20 member on the trunk) got VLAN 10's stream"
    );
}

/// `igmpsnoop vlans` lists each VLAN with its untagged and tagged ports,
/// querier and group count; `--vlan` narrows every listing.
#[test]
fn vlans_command_and_vlan_filters() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &["--querier"]);
    let mut h3 = ScapyHost::start(&lab, 3).unwrap();
    let r1 = Receiver::start(&lab, 1, &[G], UDP).unwrap();
    trunk_join(&mut h3, 20);
    wait_memberships(&sw, &[(10, "p1"), (20, "p3")]);

    let vlans = rows(sw.json(&["vlans"]).unwrap());
    let summary: Vec<(u64, Value, Value, Value, u64)> = vlans
        .iter()
        .map(|v| {
            (
                v["vlan"].as_u64().unwrap(),
                v["untagged"].clone(),
                v["tagged"].clone(),
                v["igmp_querier"].clone(),
                v["groups"].as_u64().unwrap(),
            )
        })
        .collect();
    let q = |a: &str| serde_json::json!({"address": a, "us": true});
    assert_eq!(
        summary,
        vec![
            (
                10,
                serde_json::json!(["p1", "p4"]),
                serde_json::json!(["p3"]),
                q(OURS),
                1
            ),
            (
                20,
                serde_json::json!(["p2"]),
                serde_json::json!(["p3"]),
                q(OURS_20),
                1
            ),
        ],
        "{vlans:#?}"
    );
    // The table form says the same.
    let out = sw.cli(&["vlans"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line20 = text.lines().find(|l| l.starts_with("20 ")).expect(&text);
    let cells: Vec<&str> = line20.split_whitespace().collect();
    assert_eq!(&cells[..5], ["20", "p2", "p3", OURS_20, "(us)"], "{text}");

    let vlan_of =
        |cmd: &str, vlan: &str| -> Vec<Value> { rows(sw.json(&[cmd, "--vlan", vlan]).unwrap()) };
    let groups10 = vlan_of("groups", "10");
    assert!(
        !groups10.is_empty() && groups10.iter().all(|r| r["vlan"] == 10),
        "{groups10:#?}"
    );
    let querier20 = vlan_of("querier", "20");
    let fams: Vec<(&str, u64)> = querier20
        .iter()
        .map(|r| (r["family"].as_str().unwrap(), r["vlan"].as_u64().unwrap()))
        .collect();
    assert_eq!(fams, [("ipv4", 20), ("ipv6", 20)]);
    assert_eq!(querier20[0]["our_address"], OURS_20);
    let ports20: Vec<Value> = vlan_of("ports", "20")
        .iter()
        .map(|p| p["port"].clone())
        .collect();
    assert_eq!(ports20, [serde_json::json!("p2"), serde_json::json!("p3")]);
    assert!(vlan_of("vlans", "20").len() == 1 && vlan_of("groups", "30").is_empty());
    // A static membership on a port that does not carry the VLAN: refused.
    let out = sw.cli(&[
        "group",
        "add",
        &G.to_string(),
        "--port",
        "p2",
        "--vlan",
        "10",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("p2 does not carry VLAN 10"), "{err}");
    drop(r1);
}

/// A query from another router on VLAN 20 (on the trunk) makes p3 a router
/// port of VLAN 20 only: VLAN 20's reports go there, tagged 20; VLAN 10's
/// do not.
#[test]
fn a_query_on_vlan_20_makes_a_router_port_of_vlan_20_only() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &[]);
    let mut h3 = ScapyHost::start(&lab, 3).unwrap();
    let cap = Capture::start(&lab, &lab.host_ns(3), "eth0", "").unwrap();
    tagged_igmp(
        &mut h3,
        20,
        "224.0.0.1",
        "IGMPv3_MQ(mrcode=100, gaddr='0.0.0.0', qrv=2, qqic=125)",
    );
    let routers = poll_until(Duration::from_secs(5), || {
        let r = rows(sw.json(&["routers"]).ok()?);
        (!r.is_empty()).then_some(r)
    })
    .expect("a router port learned");
    let seen: Vec<(&str, u64, &str)> = routers
        .iter()
        .map(|r| {
            (
                r["family"].as_str().unwrap(),
                r["vlan"].as_u64().unwrap(),
                r["port"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [("ipv4", 20, "p3")], "{routers:#?}");
    assert!(rows(sw.json(&["routers", "--vlan", "10"]).unwrap()).is_empty());

    let r1 = Receiver::start(&lab, 1, &[G], UDP).unwrap();
    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    wait_memberships(&sw, &[(10, "p1"), (20, "p2")]);
    let report = format!("igmp.type == 0x22 && igmp.maddr == {G}");
    cap.wait_for(
        &format!("vlan.id == 20 && {report}"),
        1,
        Duration::from_secs(5),
    )
    .expect("h2's report forwarded to VLAN 20's router port, tagged 20");
    let mut cap = cap;
    let all = {
        cap.stop().unwrap();
        cap.decode(Some(&report)).unwrap()
    };
    for f in &all {
        assert_eq!(
            field_str(f, "vlan.id").as_deref(),
            Some("20"),
            "a report on the trunk outside VLAN 20: {f}"
        );
        assert_eq!(
            field_str(f, "ip.src").map(|s| s.parse::<IpAddr>().unwrap()),
            Some(lab.host_ip(2).into()),
            "only h2's (VLAN 20) reports reach p3: {f}"
        );
    }
    drop((r1, r2));
}
