//! Restarts without loss: the daemon pins its program, links and maps on a
//! bpffs it mounts itself. `kill -9` leaves forwarding running; a new daemon
//! on the same pin directory adopts the state (forwarding as it was while the
//! hosts report again), then drops what nobody reported. A clean stop, or
//! `igmpsnoop detach` after `--keep-on-exit`, removes everything.
//!
//! Loss is counted by the receivers' sockets (every datagram carries a
//! sequence number, and `mcast-tool recv` counts them), pruning by the hosts'
//! eth0 rx_packets (a host that left drops the group's datagrams itself).
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use igmpsnoop_tests::xdp_membership::daemon_counter;
use igmpsnoop_tests::{
    Lab, Launcher, Receiver, SendOpts, Switch, igmpsnoop_bin, igmpsnoop_cli, mcast_tool_bin,
    poll_until, require_root_and_tools, send, send_with,
};

const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G2: Ipv4Addr = Ipv4Addr::new(239, 2, 2, 2);
const G3: Ipv4Addr = Ipv4Addr::new(239, 3, 3, 3);
const UDP: u16 = 5000;
/// Frames a host may see on eth0 that are not the test's (queries) while a
/// burst is sent: far below any burst size.
const NOISE: u64 = 20;

/// Querier with short timers: startup queries 2 s apart, answers within 2 s,
/// so the hold on adopted state is 2 s + 2 s.
const QUERIER: &[&str] = &[
    "--querier",
    "--querier-address",
    "10.77.0.254",
    "--query-interval",
    "8s",
    "--query-response-interval",
    "2s",
];
const HOLD: Duration = Duration::from_secs(4);

fn require() {
    require_root_and_tools(&[]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

fn rx(lab: &Lab, host: usize) -> u64 {
    lab.host_stats(host).unwrap().rx_packets
}

fn has_xdp(lab: &Lab, port: &str) -> bool {
    lab.exec(&lab.switch_ns(), &["ip", "-d", "link", "show", "dev", port])
        .unwrap()
        .contains("prog/xdp")
}

fn is_mounted(dir: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&*dir.to_string_lossy()))
}

/// Every port of the lab, the short-timer querier, and `extra`.
fn args(lab: &Lab, extra: &[&str]) -> Vec<String> {
    let mut args = lab.port_args();
    args.extend(QUERIER.iter().chain(extra).map(|s| s.to_string()));
    args
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn pinned(sw: &Switch) -> serde_json::Value {
    sw.json(&["stats"]).expect("stats")["pinned"].clone()
}

#[test]
fn kill_9_keeps_forwarding_and_the_restarted_daemon_adopts_without_loss() {
    kill_9_and_restart_without_loss(Launcher::Nsenter);
}

/// `ip netns exec` gives the daemon a mount namespace of its own, which dies
/// with it: the pins must be in the outer one all the same.
#[test]
fn kill_9_and_restart_under_ip_netns_exec_loses_nothing() {
    kill_9_and_restart_without_loss(Launcher::IpNetnsExec);
}

/// A private mount namespace (systemd's PrivateMounts, `unshare -m`).
#[test]
fn kill_9_and_restart_in_a_private_mount_namespace_loses_nothing() {
    kill_9_and_restart_without_loss(Launcher::UnshareMount);
}

fn kill_9_and_restart_without_loss(launcher: Launcher) {
    require();
    let lab = Lab::new(4).unwrap();
    let socket = lab.scratch_file("sw").with_extension("sock");
    let args = args(&lab, &[]);
    let mut sw = Switch::start_with(&lab, &socket, &strs(&args), launcher).unwrap();
    let pin_dir = sw.pin_dir().unwrap().to_path_buf();
    let r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G1], UDP).unwrap();
    let r4 = Receiver::start(&lab, 4, &[G2], UDP).unwrap();
    sw.wait_ports(G1, &["p2", "p3"], Duration::from_secs(3));
    sw.wait_ports(G2, &["p4"], Duration::from_secs(3));

    // h1 streams G1 at ~1 kpps for ~5 s; the daemon dies a second in, stays
    // dead for a second, and a new one takes over.
    const N: u64 = 5000;
    let h4_before = rx(&lab, 4);
    let (restart, adopted) = std::thread::scope(|s| {
        let sender = s.spawn(|| send(&lab, 1, G1, UDP, N));
        std::thread::sleep(Duration::from_secs(1));
        sw.kill9().unwrap();
        assert!(
            is_mounted(&pin_dir),
            "the bpffs went with the killed daemon"
        );
        for p in ["p1", "p2", "p3", "p4"] {
            assert!(has_xdp(&lab, p), "{p} lost its program with the daemon");
        }
        std::thread::sleep(Duration::from_secs(1));
        let t0 = Instant::now();
        let sw2 = Switch::start_with(&lab, &socket, &strs(&args), launcher).unwrap();
        let restart = t0.elapsed();
        let adopted = pinned(&sw2);
        sender.join().unwrap().unwrap();
        (restart, (sw2, adopted))
    });
    let (sw, pinned_then) = adopted;
    eprintln!("restart took {restart:?}; adopted {pinned_then}");
    assert_eq!(pinned_then["adopted"]["groups"], 2, "{pinned_then}");

    let got2 = r2.finish().unwrap()[&G1];
    let got3 = r3.finish().unwrap()[&G1];
    eprintln!("{launcher:?}: across kill -9 and restart: h2 got {got2}/{N}, h3 got {got3}/{N}");
    assert_eq!((got2, got3), (N, N), "datagrams lost across the restart");
    let h4 = rx(&lab, 4) - h4_before;
    assert!(h4 < NOISE, "h4 (not a G1 member) saw {h4} frames");
    assert_eq!(r4.finish().unwrap()[&G2], 0);

    // The hold ends; what hosts reported again stays, exactly.
    let released = poll_until(HOLD + Duration::from_secs(4), || {
        (pinned(&sw)["held_groups"] == 0).then_some(())
    });
    assert!(released.is_some(), "still holding: {}", pinned(&sw));
}

#[test]
fn a_group_left_while_the_daemon_was_dead_is_pruned_when_the_hold_ends() {
    require();
    let lab = Lab::new(3).unwrap();
    // Unregistered groups go nowhere (no router ports): pruned means gone.
    let args = args(&lab, &["--flood-unregistered", "false"]);
    let args = strs(&args);
    let socket = lab.scratch_file("sw").with_extension("sock");
    let mut sw = Switch::start_at(&lab, &socket, &args).unwrap();
    let _r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    let mut r3 = Receiver::start(&lab, 3, &[G3], UDP).unwrap();
    sw.wait_ports(G1, &["p2"], Duration::from_secs(3));
    sw.wait_ports(G3, &["p3"], Duration::from_secs(3));
    sw.kill9().unwrap();
    // h3 leaves while nobody listens: its leave reaches no control plane.
    r3.leave().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sw = Switch::start_at(&lab, &socket, &args).unwrap();

    // Held: G3 still reaches p3, and `groups` says it is adopted.
    let row = sw.row(G3, "p3").expect("G3 listed on p3 while held");
    assert_eq!(row["adopted"], true, "{row}");
    const N: u64 = 200;
    let before = rx(&lab, 3);
    send(&lab, 1, G3, UDP, N).unwrap();
    let held = rx(&lab, 3) - before;
    assert!(held >= N, "held G3 delivered {held}/{N} to p3");

    // h2 answers the startup queries; h3 does not. After the hold G3 is
    // gone from the table and from the wire; G1 stays.
    sw.wait_ports(G3, &[], HOLD + Duration::from_secs(4));
    sw.wait_ports(G1, &["p2"], Duration::from_secs(1));
    assert_eq!(sw.row(G1, "p2").unwrap()["adopted"], false);
    let before = rx(&lab, 3);
    send(&lab, 1, G3, UDP, N).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let after = rx(&lab, 3) - before;
    assert!(after < NOISE, "G3 still reached p3 after the hold: {after}");
    drop(r3);
}

#[test]
fn a_clean_stop_removes_everything_and_keep_on_exit_leaves_it_for_detach() {
    require();
    let lab = Lab::new(2).unwrap();
    let base = ["--port", "p1", "--port", "p2"];
    let socket = lab.scratch_file("sw").with_extension("sock");
    let sock_s = socket.to_string_lossy().into_owned();

    // Default: SIGTERM detaches, unpins and unmounts.
    let mut sw = Switch::start_at(&lab, &socket, &base).unwrap();
    let pin_dir = sw.pin_dir().unwrap().to_path_buf();
    let pin_s = pin_dir.to_string_lossy().into_owned();
    assert!(is_mounted(&pin_dir));
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());
    assert!(!has_xdp(&lab, "p1") && !has_xdp(&lab, "p2"));
    assert!(!is_mounted(&pin_dir), "clean stop left the bpffs mounted");
    assert!(!pin_dir.exists(), "clean stop left {pin_dir:?}");

    // --keep-on-exit: SIGTERM leaves the switch forwarding.
    let mut args = base.to_vec();
    args.push("--keep-on-exit");
    let mut sw = Switch::start_at(&lab, &socket, &args).unwrap();
    let r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    sw.wait_ports(G1, &["p2"], Duration::from_secs(3));
    // detach refuses while the daemon runs.
    let out = igmpsnoop_cli(&["detach", "--pin-dir", &pin_s, "--socket", &sock_s]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("running") && err.contains(&sock_s), "{err}");
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());
    assert!(has_xdp(&lab, "p1"), "--keep-on-exit detached p1");
    send_with(&lab, 1, &SendOpts::new(G1, UDP, 100)).unwrap();
    assert_eq!(
        r2.finish().unwrap()[&G1],
        100,
        "no forwarding after the stop"
    );

    // detach: everything goes.
    let out = igmpsnoop_cli(&["detach", "--pin-dir", &pin_s, "--socket", &sock_s]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed"));
    assert!(!has_xdp(&lab, "p1") && !has_xdp(&lab, "p2"));
    assert!(!is_mounted(&pin_dir));
    let out = igmpsnoop_cli(&["detach", "--pin-dir", &pin_s, "--socket", &sock_s]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing pinned"));
}

#[test]
fn pinned_state_of_another_namespace_is_refused_and_left_alone() {
    require();
    let a = Lab::new(2).unwrap();
    let b = Lab::new(2).unwrap();
    let base = ["--port", "p1", "--port", "p2"];
    let pin_dir = a.scratch_file("shared").with_extension("bpf");
    let pin_s = pin_dir.to_string_lossy().into_owned();
    let mut args = base.to_vec();
    args.extend(["--pin-dir", &pin_s, "--keep-on-exit"]);
    let mut sw = Switch::start(&a, &args).unwrap();
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());

    let err = Switch::start(&b, &args)
        .err()
        .expect("b must refuse a's state");
    let text = format!("{err:#}");
    assert!(text.contains("another network namespace"), "{text}");
    assert!(has_xdp(&a, "p1"), "a's switch was touched");
    assert!(!has_xdp(&b, "p1"), "b attached anyway");

    let out = igmpsnoop_cli(&["detach", "--pin-dir", &pin_s]);
    assert!(out.status.success(), "{out:?}");
    assert!(!has_xdp(&a, "p1"));
}

#[test]
fn pins_without_a_meta_are_an_incomplete_state_and_start_clean() {
    require();
    let lab = Lab::new(2).unwrap();
    let socket = lab.scratch_file("sw").with_extension("sock");
    let args = ["--port", "p1", "--port", "p2", "--keep-on-exit"];
    let mut sw = Switch::start_at(&lab, &socket, &args).unwrap();
    let pin_dir = sw.pin_dir().unwrap().to_path_buf();
    let r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    sw.wait_ports(G1, &["p2"], Duration::from_secs(3));
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());
    // What a start that died half way leaves: pins, but no meta.
    std::fs::remove_file(pin_dir.join("meta")).unwrap();

    let sw = Switch::start_at(&lab, &socket, &args[..4]).unwrap();
    let p = pinned(&sw);
    assert!(p["adopted"].is_null(), "adopted an incomplete state: {p}");
    assert_eq!(p["held_groups"], 0, "holds stale groups: {p}");
    // A fresh switch: h2's next report is learned and forwarded as usual.
    drop(r2);
    let r2 = Receiver::start(&lab, 2, &[G1], UDP).unwrap();
    sw.wait_ports(G1, &["p2"], Duration::from_secs(3));
    send(&lab, 1, G1, UDP, 50).unwrap();
    assert_eq!(r2.finish().unwrap()[&G1], 50);
}

/// A port a restarted daemon holds for a group stays until the hold ends,
/// whatever the hosts it learns again say: so the fast path must not take
/// it out on a leave meanwhile. h3, p3's only host of G1 on a fast-leave
/// port, reports again during the hold: it is not published for the
/// program's fast leave (LEAVE_HOSTS) until the hold ends, and is then.
#[test]
fn a_held_port_is_published_for_fast_leave_only_when_the_hold_ends() {
    require();
    let lab = Lab::new(3).unwrap();
    let args = args(&lab, &["--fast-leave", "p3"]);
    let args = strs(&args);
    let socket = lab.scratch_file("sw").with_extension("sock");
    let mut sw = Switch::start_at(&lab, &socket, &args).unwrap();
    let _r3 = Receiver::start(&lab, 3, &[G1], UDP).unwrap();
    sw.wait_ports(G1, &["p3"], Duration::from_secs(3));
    poll_until(Duration::from_secs(3), || {
        (daemon_counter(&sw, "leave_hosts") == 1).then_some(())
    })
    .expect("h3 published before the restart");
    sw.kill9().unwrap();
    let sw = Switch::start_at(&lab, &socket, &args).unwrap();

    // h3 answers a startup query: learned again, its port still held.
    poll_until(HOLD, || {
        (sw.row(G1, "p3").is_some_and(|r| r["adopted"] == false)).then_some(())
    })
    .unwrap_or_else(|| panic!("h3 did not report again: {:?}", sw.row(G1, "p3")));
    assert!(
        pinned(&sw)["held_groups"].as_u64() > Some(0),
        "the hold ended before the check: {}",
        pinned(&sw)
    );
    assert_eq!(
        daemon_counter(&sw, "leave_hosts"),
        0,
        "a held port published"
    );

    poll_until(HOLD + Duration::from_secs(4), || {
        (pinned(&sw)["held_groups"] == 0).then_some(())
    })
    .expect("the hold never ended");
    poll_until(Duration::from_secs(3), || {
        (daemon_counter(&sw, "leave_hosts") == 1).then_some(())
    })
    .expect("h3 not published once the hold ended");
}
