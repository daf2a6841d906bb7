//! The `igmpsnoop` daemon and CLI end to end: the real binary runs in a netns
//! lab's switch namespace, kernel IGMP hosts join and leave, and every check is
//! one a user would make: `igmpsnoop groups --json`, datagrams counted by the
//! receivers, and frames counted on the hosts' eth0.
//!
//! After a host leaves a group its IP stack drops that group's frames, so a
//! receiver's socket count cannot prove that the switch pruned: pruning is
//! proven with the host's eth0 rx_packets while a known number of datagrams
//! is sent.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::net::UnixListener;
use std::process::Output;
use std::time::{Duration, Instant};

use igmpsnoop_tests::{
    Capture, Lab, Receiver, SendOpts, Switch, igmpsnoop_bin, igmpsnoop_cli, mcast_tool_bin,
    poll_until, require_root_and_tools, send, send_with,
};
use serde_json::Value;

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const STATIC_G: Ipv4Addr = Ipv4Addr::new(239, 5, 5, 5);
const UDP: u16 = 5000;
/// Frames a host may see on eth0 that are not the test's traffic (IGMP
/// queries, IPv6 noise) while a burst is sent: far below any burst size.
const NOISE: u64 = 10;

fn require() {
    require_root_and_tools(&["nft", "sysctl"]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(
            bin.is_file(),
            "{bin:?} not built (cargo build -p igmpsnoop-control -p igmpsnoop-tests --bins)"
        );
    }
}

fn ports(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn start(lab: &Lab, extra: &[&str]) -> Switch {
    let mut args = lab.port_args();
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Switch::start(lab, &args).expect("igmpsnoop run")
}

fn rx(lab: &Lab, host: usize) -> u64 {
    lab.host_stats(host).unwrap().rx_packets
}

/// Waits (up to 5 s) until host `host`'s eth0 has received at least `want`
/// frames since `base`, and returns the delta then.
fn wait_rx(lab: &Lab, host: usize, base: u64, want: u64) -> u64 {
    poll_until(Duration::from_secs(5), || {
        let d = rx(lab, host) - base;
        (d >= want).then_some(d)
    })
    .unwrap_or_else(|| rx(lab, host) - base)
}

/// A failed command with exactly one line on stderr containing every word of
/// `words` (case-insensitive). Returns that line.
fn one_line_error(out: &Output, words: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "expected failure, got {}: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "stderr is not one line: {stderr:?}");
    let low = lines[0].to_lowercase();
    for w in words {
        assert!(
            low.contains(&w.to_lowercase()),
            "stderr lacks {w:?}: {stderr:?}"
        );
    }
    lines[0].to_string()
}

/// A command line clap refuses: non-zero exit, one line naming every word
/// of `words` and pointing at `--help`.
fn usage_error(out: &Output, words: &[&str]) {
    let line = one_line_error(out, words);
    assert!(line.contains("--help"), "no hint at --help: {line:?}");
}

/// Blocks (or unblocks) IGMP output of host `host` with nftables in its namespace.
fn block_igmp(lab: &Lab, host: usize, block: bool) {
    let ns = lab.host_ns(host);
    if block {
        lab.sh(
            &ns,
            "nft add table ip f && nft add chain ip f o '{ type filter hook output priority 0; }' \
             && nft add rule ip f o ip protocol igmp drop",
        )
        .unwrap();
    } else {
        lab.sh(&ns, "nft delete table ip f").unwrap();
    }
}

// ---------------------------------------------------------------------------
// 1. Joins are listed at once and traffic reaches the members only.

fn joins_are_listed_and_traffic_reaches_members_only(version: u8) {
    require();
    let lab = Lab::new(4).unwrap();
    for h in 1..=4 {
        lab.set_igmp_version(h, version).unwrap();
    }
    let sw = start(&lab, &[]);

    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], Duration::from_secs(1));
    for h in [2, 3] {
        let r = sw.row(G, &format!("p{h}")).unwrap();
        assert_eq!(r["static"], false, "{r}");
        assert_eq!(r["version"], version, "{r}");
        assert!(
            r["expires_ms"].as_u64().is_some_and(|ms| ms > 0),
            "a learned entry has a timer: {r}"
        );
        let hosts: Vec<&str> = r["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(hosts.contains(&lab.host_mac(h).as_str()), "{r}");
    }

    const N: u64 = 200;
    let base: Vec<u64> = (1..=4).map(|h| rx(&lab, h)).collect();
    send(&lab, 1, G, UDP, N).unwrap();
    let d2 = wait_rx(&lab, 2, base[1], N);
    let d3 = wait_rx(&lab, 3, base[2], N);
    assert!(d2 >= N && d3 >= N, "members' eth0 got {d2}, {d3} of {N}");
    // h2 and h3 have all of it, so everything sent has crossed the switch.
    let d4 = rx(&lab, 4) - base[3];
    let d1 = rx(&lab, 1) - base[0];
    assert!(d4 < NOISE, "h4 (no member) got {d4} frames of {N} sent");
    assert!(d1 < NOISE, "h1 (the sender) got {d1} frames of its own {N}");
    assert_eq!(r2.finish().unwrap()[&G], N);
    assert_eq!(r3.finish().unwrap()[&G], N);
}

#[test]
fn joins_are_listed_and_traffic_reaches_members_only_v2() {
    joins_are_listed_and_traffic_reaches_members_only(2);
}

#[test]
fn joins_are_listed_and_traffic_reaches_members_only_v3() {
    joins_are_listed_and_traffic_reaches_members_only(3);
}

// ---------------------------------------------------------------------------
// 2. A leave prunes the port after the last-member queries, the other member
//    keeps receiving without a gap.

fn leave_prunes_after_last_member_queries(version: u8) {
    require();
    let lab = Lab::new(3).unwrap();
    for h in 1..=3 {
        lab.set_igmp_version(h, version).unwrap();
    }
    // LMQ time: 2 × 200 ms.
    let sw = start(
        &lab,
        &[
            "--last-member-interval",
            "200ms",
            "--last-member-count",
            "2",
        ],
    );
    let mut r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], Duration::from_secs(2));

    const STREAM: u64 = 300;
    let base3 = rx(&lab, 3);
    let (leave_took, h2_after_prune) = std::thread::scope(|s| {
        let stream = s.spawn(|| {
            let mut o = SendOpts::new(G, UDP, STREAM);
            o.interval_ms = 5;
            o.tag = "stream".into();
            send_with(&lab, 1, &o)
        });
        // Leave once the stream is flowing (h3 has seen 30 of it).
        assert!(
            wait_rx(&lab, 3, base3, 30) >= 30,
            "the stream does not flow"
        );
        let t0 = Instant::now();
        r2.leave().unwrap();
        poll_until(Duration::from_secs(3), || {
            (!sw.group_ports(G).unwrap().contains("p2")).then_some(())
        })
        .unwrap_or_else(|| {
            panic!(
                "p2 still listed 3 s after the leave: {:#?}",
                sw.groups_json()
            )
        });
        let took = t0.elapsed();
        let pruned_at = rx(&lab, 2);
        let sent_after = !stream.is_finished();
        stream.join().unwrap().unwrap();
        // The stream went on for about a second after the prune.
        assert!(sent_after, "the stream ended before p2 was pruned");
        (took, rx(&lab, 2) - pruned_at)
    });
    eprintln!("v{version}: p2 pruned {leave_took:?} after the leave");
    assert!(
        leave_took >= Duration::from_millis(380),
        "p2 pruned {leave_took:?} after the leave: before the last-member queries (2 × 200 ms) ran out"
    );
    assert!(
        leave_took <= Duration::from_millis(1500),
        "p2 pruned only {leave_took:?} after the leave (LMQ time 400 ms)"
    );
    assert_eq!(sw.group_ports(G).unwrap(), ports(&["p3"]));
    assert!(
        h2_after_prune < NOISE,
        "h2's eth0 got {h2_after_prune} frames of the stream after p2 was pruned"
    );

    // A burst after the prune: h3 gets it, h2's eth0 does not.
    const N: u64 = 100;
    let (b2, b3) = (rx(&lab, 2), rx(&lab, 3));
    let mut o = SendOpts::new(G, UDP, N);
    o.tag = "after".into();
    send_with(&lab, 1, &o).unwrap();
    assert!(wait_rx(&lab, 3, b3, N) >= N);
    let d2 = rx(&lab, 2) - b2;
    assert!(
        d2 < NOISE,
        "h2's eth0 got {d2} of {N} frames after the prune"
    );

    let rep3 = r3.finish_report().unwrap();
    let tags = &rep3.by_tag[&G.to_string()];
    assert_eq!(
        tags.get("stream").copied(),
        Some(STREAM),
        "h3 lost part of the stream during h2's leave: {rep3:?}"
    );
    assert_eq!(tags.get("after").copied(), Some(N), "{rep3:?}");
    let rep2 = r2.finish_report().unwrap();
    assert!(
        rep2.by_tag[&G.to_string()]
            .get("stream")
            .copied()
            .unwrap_or(0)
            > 0,
        "h2 got nothing before leaving: {rep2:?}"
    );
}

#[test]
fn leave_prunes_after_last_member_queries_v2() {
    leave_prunes_after_last_member_queries(2);
}

#[test]
fn leave_prunes_after_last_member_queries_v3() {
    leave_prunes_after_last_member_queries(3);
}

// ---------------------------------------------------------------------------
// 3. Fast leave removes the port at once.

fn fast_leave_prunes_at_once(version: u8) {
    require();
    let lab = Lab::new(3).unwrap();
    for h in 1..=3 {
        lab.set_igmp_version(h, version).unwrap();
    }
    // Default timers: without fast leave the port would stay for 2 × 1 s.
    let sw = start(&lab, &["--fast-leave", "p2"]);
    let mut r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], Duration::from_secs(2));

    let t0 = Instant::now();
    r2.leave().unwrap();
    sw.wait_ports(G, &["p3"], Duration::from_secs(3));
    let took = t0.elapsed();
    eprintln!("v{version}: fast-leave p2 pruned {took:?} after the leave");
    assert!(
        took <= Duration::from_millis(300),
        "fast-leave port p2 pruned only after {took:?} (LMQ time is 2 s)"
    );

    const N: u64 = 100;
    let (b2, b3) = (rx(&lab, 2), rx(&lab, 3));
    send(&lab, 1, G, UDP, N).unwrap();
    assert!(wait_rx(&lab, 3, b3, N) >= N);
    let d2 = rx(&lab, 2) - b2;
    assert!(
        d2 < NOISE,
        "h2's eth0 got {d2} of {N} frames after a fast leave"
    );
    assert_eq!(r3.finish().unwrap()[&G], N);
    drop(r2);
}

#[test]
fn fast_leave_prunes_at_once_v2() {
    fast_leave_prunes_at_once(2);
}

#[test]
fn fast_leave_prunes_at_once_v3() {
    fast_leave_prunes_at_once(3);
}

// ---------------------------------------------------------------------------
// 4. As querier: memberships are learned from answers to our queries, and a
//    silent host's membership ages out after the group membership interval.

#[test]
fn querier_learns_from_queries_and_ages_out_silent_hosts() {
    require();
    let lab = Lab::new(3).unwrap();
    // The receivers join while their IGMP output is blocked: the daemon can
    // only learn them from their answers to its queries.
    // Their unsolicited reports (and v3 retransmissions, 10 ms apart here)
    // are all dropped before the output is unblocked.
    for h in [2, 3] {
        lab.set_unsolicited_report_interval(h, 10).unwrap();
        block_igmp(&lab, h, true);
    }
    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    for h in [2, 3] {
        block_igmp(&lab, h, false);
    }
    // GMI = 2 × 2 s + 1 s = 5 s.
    let sw = start(
        &lab,
        &[
            "--querier",
            "--querier-address",
            "10.77.0.254",
            "--query-interval",
            "2s",
            "--query-response-interval",
            "1s",
            "--robustness",
            "2",
        ],
    );
    sw.wait_ports(G, &["p2", "p3"], Duration::from_secs(3));
    let q = sw.json(&["querier"]).unwrap();
    assert_eq!(q[0]["state"], "querier", "{q}");
    assert_eq!(q[0]["our_address"], "10.77.0.254", "{q}");

    // Wait for h3's membership to be refreshed by an answer to a query, then
    // silence h3 before the next query (2 s later).
    let (seen, expires) = poll_until(Duration::from_secs(5), || {
        let ms = sw.row(G, "p3")?["expires_ms"].as_u64()?;
        (ms >= 4700).then(|| (Instant::now(), Duration::from_millis(ms)))
    })
    .unwrap_or_else(|| panic!("p3 never refreshed: {:#?}", sw.groups_json()));
    block_igmp(&lab, 3, true);
    let due = seen + expires;

    poll_until(Duration::from_secs(9), || {
        (!sw.group_ports(G).unwrap().contains("p3")).then_some(())
    })
    .unwrap_or_else(|| panic!("p3 never aged out: {:#?}", sw.groups_json()));
    let now = Instant::now();
    eprintln!(
        "p3 aged out at GMI {:+} ms",
        now.saturating_duration_since(due).as_millis() as i64
            - due.saturating_duration_since(now).as_millis() as i64
    );
    assert!(
        now + Duration::from_millis(250) >= due,
        "p3 aged out {:?} before the group membership interval ran out",
        due - now
    );
    assert!(
        now <= due + Duration::from_millis(1500),
        "p3 aged out {:?} after the group membership interval ran out",
        now - due
    );
    // h2 keeps answering: its membership stays.
    assert_eq!(sw.group_ports(G).unwrap(), ports(&["p2"]));
    drop((r2, r3));
}

// ---------------------------------------------------------------------------
// 5. Static memberships.

#[test]
fn static_group_forwards_without_a_join_until_deleted() {
    require();
    let lab = Lab::new(4).unwrap();
    let sw = start(&lab, &["--flood-unregistered", "false"]);
    const N: u64 = 100;
    let burst_to_h4 = || {
        let base: Vec<u64> = (2..=4).map(|h| rx(&lab, h)).collect();
        send(&lab, 1, STATIC_G, UDP, N).unwrap();
        let d4 = wait_rx(&lab, 4, base[2], N);
        let others = (rx(&lab, 2) - base[0], rx(&lab, 3) - base[1]);
        (d4, others)
    };

    let (d4, _) = burst_to_h4();
    assert!(
        d4 < NOISE,
        "unregistered group reached h4 ({d4} frames) before any add"
    );

    let out = sw.cli(&["group", "add", &STATIC_G.to_string(), "--port", "p4"]);
    assert!(out.status.success(), "{out:?}");
    let r = sw.row(STATIC_G, "p4").expect("static group listed");
    assert_eq!(r["static"], true, "{r}");
    assert_eq!(r["expires_ms"], Value::Null, "{r}");
    assert_eq!(r["vlan"], 0, "{r}");
    assert_eq!(sw.group_ports(STATIC_G).unwrap(), ports(&["p4"]));

    let (d4, (d2, d3)) = burst_to_h4();
    assert!(d4 >= N, "h4 got {d4} of {N} frames to its static group");
    assert!(d2 < NOISE && d3 < NOISE, "h2/h3 got {d2}/{d3} frames");

    // Bad static requests name what is wrong.
    let out = sw.cli(&["group", "add", &STATIC_G.to_string(), "--port", "p9"]);
    one_line_error(&out, &["p9", "not a port"]);
    let out = sw.cli(&["group", "add", "10.1.2.3", "--port", "p4"]);
    one_line_error(&out, &["10.1.2.3", "multicast"]);

    let out = sw.cli(&["group", "del", &STATIC_G.to_string(), "--port", "p4"]);
    assert!(out.status.success(), "{out:?}");
    assert!(sw.row(STATIC_G, "p4").is_none(), "{:#?}", sw.groups_json());
    let (d4, _) = burst_to_h4();
    assert!(d4 < NOISE, "h4 got {d4} frames after `group del`");
}

// ---------------------------------------------------------------------------
// 6. Bad input: non-zero exit and one line that says what to do.

#[test]
fn bad_command_lines_fail_with_one_line() {
    require();
    let dir = std::env::temp_dir().join(format!("igmpsnoop-daemon-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("bad.sock");
    let sock_s = sock.to_string_lossy().into_owned();

    let out = igmpsnoop_cli(&["run", "--port", "p1", "--no-such-flag", "--socket", &sock_s]);
    usage_error(&out, &["--no-such-flag"]);

    let out = igmpsnoop_cli(&["run", "--port", "p1", "--port", "p1", "--socket", &sock_s]);
    one_line_error(&out, &["p1", "twice"]);

    let out = igmpsnoop_cli(&[
        "run",
        "--port",
        "p1",
        "--query-interval",
        "5x",
        "--socket",
        &sock_s,
    ]);
    usage_error(&out, &["5x", "--query-interval", "duration", "500ms"]);

    let out = igmpsnoop_cli(&[
        "run",
        "--port",
        "p1",
        "--no-pin",
        "--keep-on-exit",
        "--socket",
        &sock_s,
    ]);
    one_line_error(&out, &["--keep-on-exit", "--no-pin"]);

    let out = igmpsnoop_cli(&[
        "run",
        "--port",
        "p1",
        "--max-groups",
        "1048577",
        "--socket",
        &sock_s,
    ]);
    one_line_error(&out, &["--max-groups", "1048576"]);

    let out = igmpsnoop_cli(&[
        "run",
        "--port",
        "p1",
        "--sched-slice-ms",
        "101",
        "--socket",
        &sock_s,
    ]);
    usage_error(&out, &["101", "--sched-slice-ms"]);

    let out = igmpsnoop_cli(&["groups", "--socket", &sock_s]);
    let line = one_line_error(&out, &["no daemon is running", "igmpsnoop run"]);
    assert!(line.contains(&sock_s), "{line}");

    // A leftover socket file that nobody listens on.
    drop(UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let out = igmpsnoop_cli(&["groups", "--json", "--socket", &sock_s]);
    one_line_error(&out, &["no daemon is running", "igmpsnoop run"]);

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_refuses_missing_ports_and_taken_ports_but_replaces_stale_sockets() {
    require();
    let lab = Lab::new(3).unwrap();
    let sw_ns = lab.switch_ns();
    let bin = igmpsnoop_bin().to_string_lossy().into_owned();

    // A missing interface is named, and the failed start leaves no socket.
    let sock = lab.scratch_file("missing").with_extension("sock");
    let sock_s = sock.to_string_lossy().into_owned();
    let out = lab
        .exec_output(
            &sw_ns,
            &[
                &bin, "run", "--port", "p1", "--port", "nosuch0", "--socket", &sock_s,
            ],
        )
        .unwrap();
    one_line_error(&out, &["nosuch0"]);
    assert!(!sock.exists(), "failed start left its socket {sock:?}");
    assert!(!has_xdp(&lab, "p1"), "failed start left p1 attached");

    // A stale socket file: `run` replaces it and starts.
    let stale = lab.scratch_file("stale").with_extension("sock");
    drop(UnixListener::bind(&stale).unwrap());
    let out = igmpsnoop_cli(&["groups", "--socket", &stale.to_string_lossy()]);
    one_line_error(&out, &["no daemon is running"]);
    let first = Switch::start_at(
        &lab,
        &stale,
        &["--port", "p1", "--port", "p2", "--port", "p3"],
    )
    .expect("run over a stale socket");

    // A second daemon on the same socket, then on the same port.
    let out = lab
        .exec_output(
            &sw_ns,
            &[
                &bin,
                "run",
                "--port",
                "p3",
                "--socket",
                &stale.to_string_lossy(),
            ],
        )
        .unwrap();
    one_line_error(&out, &["another igmpsnoop"]);
    let other = lab.scratch_file("second").with_extension("sock");
    let out = lab
        .exec_output(
            &sw_ns,
            &[
                &bin,
                "run",
                "--port",
                "p3",
                "--socket",
                &other.to_string_lossy(),
            ],
        )
        .unwrap();
    let line = one_line_error(&out, &["p3"]);
    assert!(line.contains("another"), "{line}");
    assert!(!other.exists(), "refused daemon left its socket {other:?}");

    // The first keeps running and forwarding, p3 included.
    assert!(stale.exists());
    assert!(has_xdp(&lab, "p3"), "the refused daemon detached p3");
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    first.wait_ports(G, &["p3"], Duration::from_secs(2));
    const N: u64 = 100;
    let b3 = rx(&lab, 3);
    send(&lab, 1, G, UDP, N).unwrap();
    assert!(wait_rx(&lab, 3, b3, N) >= N);
    assert_eq!(r3.finish().unwrap()[&G], N);
}

fn has_xdp(lab: &Lab, port: &str) -> bool {
    lab.exec(&lab.switch_ns(), &["ip", "-d", "link", "show", "dev", port])
        .unwrap()
        .contains("xdp")
}

// ---------------------------------------------------------------------------
// 7. SIGTERM: socket removed, every XDP program detached.

#[test]
fn sigterm_removes_socket_and_detaches_xdp() {
    require();
    let lab = Lab::new(3).unwrap();
    let mut sw = start(&lab, &["--querier", "--querier-address", "10.77.0.254"]);
    for p in lab.ports() {
        assert!(has_xdp(&lab, &p), "{p} has no XDP program while running");
    }
    let out = sw.cli(&["group", "add", &STATIC_G.to_string(), "--port", "p2"]);
    assert!(out.status.success(), "{out:?}");
    let socket = sw.socket().to_path_buf();
    let st = sw.stop(Duration::from_secs(5)).expect("exits on SIGTERM");
    assert!(st.success(), "exit status {st} on SIGTERM: {}", sw.log());
    assert!(!socket.exists(), "socket {socket:?} left behind");
    let links = lab.exec(&lab.switch_ns(), &["ip", "link", "show"]).unwrap();
    assert!(!links.contains("xdp"), "XDP left attached: {links}");
    let out = igmpsnoop_cli(&["groups", "--socket", &socket.to_string_lossy()]);
    one_line_error(&out, &["no daemon is running"]);
}

// ---------------------------------------------------------------------------
// 7b. The scheduler slice the daemon asks for, as the kernel shows it.

/// `se.slice` (ns) of every thread of `pid`, from /proc/PID/task/*/sched.
fn slices(pid: u32) -> Vec<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon's threads");
    tasks
        .map(|t| {
            let sched = std::fs::read_to_string(t.unwrap().path().join("sched")).unwrap();
            sched
                .lines()
                .find_map(|l| l.strip_prefix("se.slice"))
                .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse().ok())
                .expect("se.slice in /proc/PID/task/TID/sched (kernel 6.6 or later)")
        })
        .collect()
}

#[test]
fn the_daemon_asks_for_the_scheduler_slice_it_is_given() {
    require();
    let lab = Lab::new(2).unwrap();
    // This test process runs with the kernel's default slice.
    let default = slices(std::process::id())[0];
    for (extra, want) in [
        (&[][..], default),
        (&["--sched-slice-ms", "20"][..], 20_000_000),
        (&["--sched-slice-ms", "0"][..], default),
    ] {
        let mut sw = start(&lab, extra);
        let got = slices(sw.pid());
        assert!(got.len() > 1, "one thread only: {got:?}");
        assert!(
            got.iter().all(|&s| s == want),
            "{extra:?}: slices {got:?}, want {want} on every thread; log: {}",
            sw.log()
        );
        sw.stop(Duration::from_secs(5)).expect("exits on SIGTERM");
    }
}

// ---------------------------------------------------------------------------
// 8. The config file, and flags overriding it.

#[test]
fn config_file_is_read_and_flags_override_it() {
    require();
    let lab = Lab::new(3).unwrap();
    let cfg = lab.scratch_file("config").with_extension("toml");
    std::fs::write(
        &cfg,
        "port = [\"p1\", \"p2\", \"p3\"]\n\
         fast-leave = [\"p2\"]\n\
         query-interval = \"3s\"\n\
         query-response-interval = \"1s\"\n\
         querier = true\n\
         querier-address = \"10.77.0.254\"\n",
    )
    .unwrap();
    let cfg_s = cfg.to_string_lossy().into_owned();

    let check = |sw: &Switch, qi_ms: u64| {
        let q = sw.json(&["querier"]).unwrap();
        assert_eq!(q[0]["query_interval_ms"], qi_ms, "{q}");
        let p = sw.json(&["ports"]).unwrap();
        let names: Vec<&str> = p
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["port"].as_str())
            .collect();
        assert_eq!(names, ["p1", "p2", "p3"], "{p}");
        let fast: Vec<&str> = p
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["fast_leave"] == true)
            .filter_map(|r| r["port"].as_str())
            .collect();
        assert_eq!(fast, ["p2"], "{p}");
    };

    let mut sw = Switch::start(&lab, &["--config", &cfg_s]).expect("run --config");
    check(&sw, 3000);
    // Fast leave from the file works: p2 goes at once.
    lab.set_igmp_version(2, 2).unwrap();
    let mut r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2"], Duration::from_secs(2));
    let t0 = Instant::now();
    r2.leave().unwrap();
    sw.wait_ports(G, &[], Duration::from_secs(3));
    let took = t0.elapsed();
    assert!(
        took <= Duration::from_millis(300),
        "p2 pruned after {took:?}"
    );
    drop(r2);
    assert!(sw.stop(Duration::from_secs(5)).unwrap().success());

    let sw = Switch::start(&lab, &["--config", &cfg_s, "--query-interval", "4s"])
        .expect("run --config with a flag");
    check(&sw, 4000);

    // A bad key in the file is refused, naming it.
    let bad = lab.scratch_file("bad").with_extension("toml");
    std::fs::write(&bad, "port = [\"p1\"]\nquery-intervall = \"3s\"\n").unwrap();
    let out = igmpsnoop_cli(&["run", "--config", &bad.to_string_lossy()]);
    one_line_error(&out, &["query-intervall"]);
    std::fs::write(&bad, "port = [\"p1\"\n").unwrap();
    let out = igmpsnoop_cli(&["run", "--config", &bad.to_string_lossy()]);
    one_line_error(&out, &["config file", "expected"]);
}

// ---------------------------------------------------------------------------
// 9. SIGHUP (`systemctl reload`): the config file is read again; what can
//    change live is applied, what needs a restart is logged and kept, and a
//    bad file changes nothing.

/// `(fast-leave ports, static router ports)` as `ports --json` and
/// `routers --json` show them.
fn roles(sw: &Switch) -> (Vec<String>, Vec<String>) {
    let p = sw.json(&["ports"]).unwrap();
    let fast = p
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["fast_leave"] == true)
        .filter_map(|r| r["port"].as_str().map(str::to_string))
        .collect();
    let r = sw.json(&["routers"]).unwrap();
    let routers = r
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "static" && r["family"] == "ipv4")
        .filter_map(|r| r["port"].as_str().map(str::to_string))
        .collect();
    (fast, routers)
}

fn wait_log(sw: &Switch, text: &str) -> String {
    poll_until(Duration::from_secs(5), || {
        let log = sw.log();
        log.contains(text).then_some(log)
    })
    .unwrap_or_else(|| panic!("the daemon never logged {text:?}: {}", sw.log()))
}

#[test]
fn sighup_rereads_the_config_file() {
    require_root_and_tools(&["tcpdump", "tshark"]);
    let lab = Lab::new(3).unwrap();
    let cfg = lab.scratch_file("reload").with_extension("toml");
    let ports = "port = [\"p1\", \"p2\", \"p3\"]\n";
    std::fs::write(&cfg, ports).unwrap();
    let cfg_s = cfg.to_string_lossy().into_owned();
    let sw = Switch::start(&lab, &["--config", &cfg_s]).expect("run --config");
    assert_eq!(roles(&sw), (vec![], vec![]));
    assert_eq!(sw.json(&["querier"]).unwrap()[0]["state"], "off");
    let cap = Capture::start(&lab, &lab.host_ns(3), "eth0", "igmp").unwrap();

    // Live: querier on, fast leave on p2, static router p1. Restart-only:
    // the query interval.
    std::fs::write(
        &cfg,
        format!(
            "{ports}fast-leave = [\"p2\"]\nrouter-port = [\"p1\"]\nquerier = true\n\
             querier-address = \"10.77.0.254\"\nquery-interval = \"60s\"\n"
        ),
    )
    .unwrap();
    sw.signal(libc::SIGHUP).unwrap();
    wait_log(&sw, "config reloaded");
    let log = wait_log(&sw, "only take effect at a restart");
    assert!(
        log.contains("querier, querier-address, fast-leave, router-port"),
        "{log}"
    );
    assert!(log.contains("ignored=query-interval"), "{log}");
    assert_eq!(roles(&sw), (vec!["p2".into()], vec!["p1".into()]));
    let q = sw.json(&["querier"]).unwrap();
    assert_eq!(q[0]["state"], "querier", "{q}");
    assert_eq!(
        q[0]["query_interval_ms"], 125_000,
        "kept until a restart: {q}"
    );
    // The querier's first startup query goes out at once, from its address.
    cap.wait_for(
        "igmp.type == 0x11 && ip.src == 10.77.0.254",
        1,
        Duration::from_secs(5),
    )
    .expect("a general query after the reload");
    // Fast leave on p2 works: its member goes at once on leave.
    lab.set_igmp_version(2, 2).unwrap();
    let mut r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    sw.wait_ports(G, &["p2"], Duration::from_secs(3));
    let t0 = Instant::now();
    r2.leave().unwrap();
    sw.wait_ports(G, &[], Duration::from_secs(3));
    assert!(
        t0.elapsed() <= Duration::from_millis(300),
        "p2 pruned after {:?}",
        t0.elapsed()
    );
    drop(r2);

    // A bad file is refused as a whole: a good key next to a bad one is not
    // applied either.
    std::fs::write(
        &cfg,
        format!("{ports}fast-leave = [\"p3\"]\nquerier = maybe\n"),
    )
    .unwrap();
    sw.signal(libc::SIGHUP).unwrap();
    let log = wait_log(&sw, "config reload refused");
    assert!(log.contains("nothing changed"), "{log}");
    assert_eq!(roles(&sw), (vec!["p2".into()], vec!["p1".into()]));
    assert_eq!(sw.json(&["querier"]).unwrap()[0]["state"], "querier");
    // A file that parses but names a port the switch does not have: refused too.
    std::fs::write(&cfg, format!("{ports}fast-leave = [\"p9\"]\n")).unwrap();
    sw.signal(libc::SIGHUP).unwrap();
    poll_until(Duration::from_secs(5), || {
        (sw.log().matches("config reload refused").count() == 2).then_some(())
    })
    .unwrap_or_else(|| panic!("second bad file not refused: {}", sw.log()));
    assert_eq!(roles(&sw), (vec!["p2".into()], vec!["p1".into()]));

    // Back to the plain file: every role goes, the querier stops.
    std::fs::write(&cfg, ports).unwrap();
    sw.signal(libc::SIGHUP).unwrap();
    poll_until(Duration::from_secs(5), || {
        (roles(&sw) == (vec![], vec![])).then_some(())
    })
    .unwrap_or_else(|| panic!("roles not removed on reload: {}", sw.log()));
    assert_eq!(sw.json(&["querier"]).unwrap()[0]["state"], "off");
}
