//! Self-tests of the lab itself (no igmpsnoop yet): the switch namespace's ports
//! are joined by a plain Linux bridge with snooping off, so every port floods.

use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Duration;

use igmpsnoop_tests::{
    Capture, Lab, Receiver, cleanup_stale, field_str, fields_str, lab_script, mcast_tool_bin,
    require_root_and_tools, run, send,
};

const TOOLS: &[&str] = &["tcpdump", "tshark", "sysctl", "bash"];
const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 2);

fn require() {
    require_root_and_tools(TOOLS);
    assert!(
        mcast_tool_bin().is_file(),
        "mcast-tool not built at {:?}",
        mcast_tool_bin()
    );
}

/// Bridges p1..pN in the switch namespace (multicast snooping off: flood all).
fn bridge(lab: &Lab) {
    let sw = lab.switch_ns();
    lab.exec(
        &sw,
        &[
            "ip",
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ],
    )
    .unwrap();
    for p in lab.ports() {
        lab.exec(&sw, &["ip", "link", "set", &p, "master", "br0"])
            .unwrap();
    }
    lab.exec(&sw, &["ip", "link", "set", "br0", "up"]).unwrap();
}

fn lab_namespaces(name: &str) -> Vec<String> {
    run(&["ip", "netns", "list"])
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|ns| ns.starts_with(&format!("{name}-")))
        .map(str::to_string)
        .collect()
}

#[test]
fn topology_matches_the_naming_scheme() {
    require();
    let lab = Lab::new(3).unwrap();
    let mut ns = lab_namespaces(lab.name());
    ns.sort();
    let mut want: Vec<_> = lab.hosts().map(|i| lab.host_ns(i)).collect();
    want.push(lab.switch_ns());
    want.sort();
    assert_eq!(ns, want);
    for i in lab.hosts() {
        let h = lab.host_ns(i);
        let addr = lab
            .exec(&h, &["ip", "-br", "addr", "show", "dev", "eth0"])
            .unwrap();
        assert!(addr.contains(&format!("{}/24", lab.host_ip(i))), "{addr}");
        let link = lab
            .exec(&h, &["ip", "-br", "link", "show", "dev", "eth0"])
            .unwrap();
        assert!(
            link.contains(&lab.host_mac(i)) && link.contains("UP"),
            "{link}"
        );
        let routes = lab.exec(&h, &["ip", "route"]).unwrap();
        assert!(routes.contains("224.0.0.0/4 dev eth0"), "{routes}");
        let gro = lab.exec(&h, &["ethtool", "-k", "eth0"]).unwrap();
        assert!(gro.contains("generic-receive-offload: on"), "{gro}");
        let v = lab
            .exec(
                &h,
                &["sysctl", "-n", "net.ipv4.conf.eth0.force_igmp_version"],
            )
            .unwrap();
        assert_eq!(v.trim(), "0");
        let sw = lab.switch_ns();
        let gro = lab.exec(&sw, &["ethtool", "-k", &lab.port(i)]).unwrap();
        assert!(gro.contains("generic-receive-offload: on"), "{gro}");
        let plink = lab
            .exec(&sw, &["ip", "-br", "link", "show", "dev", &lab.port(i)])
            .unwrap();
        assert!(
            plink.contains(&lab.port_mac(i)) && plink.contains("UP"),
            "{plink}"
        );
    }
    lab.set_igmp_version(2, 3).unwrap();
    let v = lab
        .exec(
            &lab.host_ns(2),
            &["sysctl", "-n", "net.ipv4.conf.eth0.force_igmp_version"],
        )
        .unwrap();
    assert_eq!(v.trim(), "3");
}

#[test]
fn bridge_carries_unicast_and_multicast() {
    require();
    let lab = Lab::new(3).unwrap();
    bridge(&lab);
    lab.ping(1, lab.host_ip(2), 3).unwrap();
    lab.ping(3, lab.host_ip(1), 3).unwrap();

    const N: u64 = 25;
    let r1 = Receiver::start(&lab, 1, &[G1], 5001).unwrap();
    let r2 = Receiver::start(&lab, 2, &[G1, G2], 5001).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G1], 5001).unwrap();
    let before = lab.port_stats(2).unwrap();
    send(&lab, 1, G1, 5001, N).unwrap();
    send(&lab, 1, G2, 5001, 4).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let after = lab.port_stats(2).unwrap();
    // The bridge floods all 29 datagrams out of p2 (plus maybe some IGMP).
    assert!(
        after.tx_packets - before.tx_packets >= N + 4,
        "{before:?} {after:?}"
    );

    let c1 = r1.finish().unwrap();
    let c2 = r2.finish().unwrap();
    let c3 = r3.finish().unwrap();
    assert_eq!(
        c1[&G1], 0,
        "the sender's own receiver must not count: {c1:?}"
    );
    assert_eq!(c2[&G1], N, "{c2:?}");
    assert_eq!(c2[&G2], 4, "{c2:?}");
    assert_eq!(c3[&G1], N, "{c3:?}");
    assert!(!c3.contains_key(&G2), "h3 did not join G2: {c3:?}");
}

#[test]
fn receiver_stops_counting_after_leave() {
    require();
    let lab = Lab::new(2).unwrap();
    bridge(&lab);
    let mut r = Receiver::start(&lab, 2, &[G1], 5002).unwrap();
    send(&lab, 1, G1, 5002, 5).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    r.leave().unwrap();
    let rx_before = lab.host_stats(2).unwrap().rx_packets;
    send(&lab, 1, G1, 5002, 7).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    // The bridge still floods the frames to h2; its IP stack drops them.
    assert!(lab.host_stats(2).unwrap().rx_packets - rx_before >= 7);
    r.rejoin().unwrap();
    send(&lab, 1, G1, 5002, 3).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let rep = r.finish_report().unwrap();
    assert!(rep.left);
    assert_eq!(rep.received["239.1.1.1"], 8, "{rep:?}");
    // after_leave counts everything after the first leave, rejoin included.
    assert_eq!(rep.after_leave["239.1.1.1"], 3, "{rep:?}");
    assert_eq!(rep.by_tag["239.1.1.1"]["mcast-tool"], 8, "{rep:?}");
}

#[test]
fn igmpv2_report_and_leave_are_captured() {
    require();
    let lab = Lab::new(2).unwrap();
    bridge(&lab);
    lab.set_igmp_version(2, 2).unwrap();
    let cap = Capture::start(&lab, &lab.switch_ns(), &lab.port(2), "igmp").unwrap();
    let mut r = Receiver::start(&lab, 2, &[G1], 5003).unwrap();
    let reports = cap
        .wait_for("igmp.type == 0x16", 1, Duration::from_secs(5))
        .unwrap();
    let f = &reports[0];
    assert_eq!(field_str(f, "igmp.version").as_deref(), Some("2"));
    assert_eq!(field_str(f, "igmp.maddr").as_deref(), Some("239.1.1.1"));
    assert_eq!(field_str(f, "igmp.checksum.status").as_deref(), Some("1"));
    assert_eq!(field_str(f, "ip.checksum.status").as_deref(), Some("1"));
    assert_eq!(field_str(f, "ip.ttl").as_deref(), Some("1"));
    assert_eq!(
        field_str(f, "ip.opt.ra").as_deref(),
        Some("0"),
        "router alert"
    );
    assert_eq!(field_str(f, "ip.dst").as_deref(), Some("239.1.1.1"));
    assert_eq!(field_str(f, "ip.src").as_deref(), Some("10.77.0.2"));
    assert_eq!(
        field_str(f, "eth.dst").as_deref(),
        Some("01:00:5e:01:01:01")
    );
    assert_eq!(field_str(f, "eth.src"), Some(lab.host_mac(2)));

    r.leave().unwrap();
    let leaves = cap
        .wait_for("igmp.type == 0x17", 1, Duration::from_secs(5))
        .unwrap();
    let f = &leaves[0];
    assert_eq!(field_str(f, "ip.dst").as_deref(), Some("224.0.0.2"));
    assert_eq!(field_str(f, "igmp.maddr").as_deref(), Some("239.1.1.1"));
    assert_eq!(
        field_str(f, "eth.dst").as_deref(),
        Some("01:00:5e:00:00:02")
    );
}

#[test]
fn igmpv3_report_and_leave_are_captured() {
    require();
    let lab = Lab::new(2).unwrap();
    bridge(&lab);
    lab.set_igmp_version(2, 3).unwrap();
    let mut cap = Capture::start(&lab, &lab.switch_ns(), &lab.port(2), "igmp").unwrap();
    let mut r = Receiver::start(&lab, 2, &[G1, G2], 5004).unwrap();
    // Joins: one report per join, each a CHANGE_TO_EXCLUDE({}) record.
    let joins = cap
        .wait_for(
            "igmp.type == 0x22 && igmp.record_type == 4",
            2,
            Duration::from_secs(5),
        )
        .unwrap();
    let mut groups: Vec<String> = joins
        .iter()
        .flat_map(|f| fields_str(f, "igmp.maddr"))
        .collect();
    groups.sort();
    groups.dedup();
    assert_eq!(groups, ["239.1.1.1", "239.1.1.2"]);
    let f = &joins[0];
    assert_eq!(field_str(f, "igmp.version").as_deref(), Some("3"));
    assert_eq!(field_str(f, "igmp.checksum.status").as_deref(), Some("1"));
    assert_eq!(field_str(f, "ip.ttl").as_deref(), Some("1"));
    assert_eq!(
        field_str(f, "ip.opt.ra").as_deref(),
        Some("0"),
        "router alert"
    );
    assert_eq!(field_str(f, "ip.dst").as_deref(), Some("224.0.0.22"));
    assert_eq!(
        field_str(f, "eth.dst").as_deref(),
        Some("01:00:5e:00:00:16")
    );

    r.leave().unwrap();
    // Leave: CHANGE_TO_INCLUDE({}) per group.
    cap.wait_for(
        "igmp.type == 0x22 && igmp.record_type == 3",
        2,
        Duration::from_secs(5),
    )
    .unwrap();
    drop(r);
    assert!(
        cap.count_frames("igmp.type == 0x16").unwrap() == 0,
        "no v2 reports in v3 mode"
    );
    assert!(cap.stop_and_decode().unwrap().len() >= 4);
}

#[test]
fn dropping_the_lab_removes_namespaces_and_processes() {
    require();
    let lab = Lab::new(2).unwrap();
    let name = lab.name().to_string();
    let child = lab.spawn(&lab.host_ns(1), &["sleep", "300"]).unwrap();
    let pid = child.pid() as i32;
    let leaked = lab.spawn(&lab.switch_ns(), &["sleep", "300"]).unwrap();
    let leaked_pid = leaked.pid();
    // A guard outliving nothing: forget it, lab teardown must still kill it.
    std::mem::forget(leaked);
    assert_eq!(lab_namespaces(&name).len(), 3);
    drop(child);
    // SAFETY: signal 0 only probes for existence.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "ChildGuard drop kills");
    drop(lab);
    assert!(lab_namespaces(&name).is_empty());
    let stat = std::fs::read_to_string(format!("/proc/{leaked_pid}/stat")).unwrap_or_default();
    // Killed by the lab teardown; only a zombie (we never reaped it) may remain.
    assert!(stat.is_empty() || stat.contains(") Z "), "{stat}");
}

#[test]
fn a_panic_in_the_test_body_still_cleans_up() {
    require();
    let name = Mutex::new(String::new());
    let res = std::panic::catch_unwind(|| {
        let lab = Lab::new(2).unwrap();
        *name.lock().unwrap() = lab.name().to_string();
        let _r = Receiver::start(&lab, 1, &[G1], 5005).unwrap();
        panic!("deliberate");
    });
    assert!(res.is_err());
    let name = name.into_inner().unwrap();
    assert!(!name.is_empty());
    assert!(lab_namespaces(&name).is_empty(), "{name} leaked");
}

#[test]
fn cleanup_stale_removes_labs_of_dead_creators() {
    require();
    // Our own live lab, which must survive. Made first: the first Lab::new
    // of a process runs cleanup_stale itself, which would remove the stale
    // lab below before this test looks at it.
    let mine = Lab::new(1).unwrap();
    // A real process that then dies gives a pid that is certainly dead.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let name = format!("isnt{dead}n0");
    let out = std::process::Command::new("bash")
        .arg(lab_script())
        .args(["up", "1", "--name", &name])
        .env("IGMPSNOOP_SETUP_DONE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lab_namespaces(&name).len(), 2);
    let removed = cleanup_stale().unwrap();
    assert!(removed.contains(&name), "{removed:?}");
    assert!(lab_namespaces(&name).is_empty());
    assert_eq!(lab_namespaces(mine.name()).len(), 2);
}

#[test]
fn lab_sh_up_list_down() {
    require();
    let up = std::process::Command::new("bash")
        .arg(lab_script())
        .args(["up", "2"])
        .env("IGMPSNOOP_SETUP_DONE", "1")
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let name = String::from_utf8(up.stdout).unwrap().trim().to_string();
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = std::process::Command::new("bash")
                .arg(lab_script())
                .args(["down", &self.0])
                .output();
        }
    }
    let _down = Down(name.clone());
    assert!(
        name.len() == 8 && name.starts_with("isn"),
        "default name isn<5 hex>: {name}"
    );
    let list = run(&["bash", &lab_script().to_string_lossy(), "list"]).unwrap();
    assert!(list.contains(&format!("{name}\t2 host(s)")), "{list}");
    for _ in 0..2 {
        run(&["bash", &lab_script().to_string_lossy(), "down", &name]).unwrap();
    }
    assert!(lab_namespaces(&name).is_empty());
}
