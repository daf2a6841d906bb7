//! The control channel between the XDP program and userspace (AF_XDP), end to
//! end in a netns lab: kernel hosts' IGMP reports reach `Dataplane::receive` with
//! the right ingress port, frames sent from userspace leave by exactly the chosen
//! port, and `Dataplane::open` refuses bad input with errors that name the
//! interface. Every test runs in native and in generic XDP mode.

use std::net::Ipv4Addr;
use std::time::Duration;

use igmpsnoop_dataplane::XdpMode;
use igmpsnoop_tests::fastpath::{open_switch, require_mcast_tool};
use igmpsnoop_tests::{
    Capture, ControlFrame, DataplaneThread, Lab, Receiver, field_str, require_root_and_tools,
};

const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const WAIT: Duration = Duration::from_secs(5);

fn require() {
    require_root_and_tools(&["tcpdump", "tshark", "sysctl", "bash"]);
    require_mcast_tool();
}

/// The IGMP message of an Ethernet/IPv4 frame: (IP protocol is IGMP) → bytes.
fn igmp_of(frame: &[u8]) -> Option<&[u8]> {
    if frame.len() < 14 + 20 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ip[0] >> 4 != 4 || ihl < 20 || ip.len() < ihl || ip[9] != 2 {
        return None;
    }
    Some(&ip[ihl..])
}

/// Groups an IGMP report names: v1/v2 (0x12/0x16) the group field, v3 (0x22)
/// every group record's multicast address.
fn report_groups(igmp: &[u8]) -> Vec<Ipv4Addr> {
    let addr = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    match igmp.first() {
        Some(0x12 | 0x16) if igmp.len() >= 8 => vec![addr(&igmp[4..8])],
        Some(0x22) if igmp.len() >= 8 => {
            let n = usize::from(u16::from_be_bytes([igmp[6], igmp[7]]));
            let mut out = Vec::new();
            let mut off = 8;
            for _ in 0..n {
                if igmp.len() < off + 8 {
                    break;
                }
                let aux = usize::from(igmp[off + 1]) * 4;
                let nsrc = usize::from(u16::from_be_bytes([igmp[off + 2], igmp[off + 3]]));
                out.push(addr(&igmp[off + 4..off + 8]));
                off += 8 + nsrc * 4 + aux;
            }
            out
        }
        _ => Vec::new(),
    }
}

/// A kernel host joins G1 at IGMP `version`; userspace must get the report from
/// that host's port, typed for the version and naming G1.
fn kernel_report_reaches_userspace(mode: XdpMode, version: u8) {
    require();
    let lab = Lab::new(3).unwrap();
    let dp = open_switch(&lab, mode);
    let host = 2; // port index 1
    lab.set_igmp_version(host, version).unwrap();
    let want_type = if version == 2 { 0x16 } else { 0x22 };
    let _rx = Receiver::start(&lab, host, &[G1], 5000).unwrap();
    let is_report = |f: &ControlFrame| {
        igmp_of(&f.frame).is_some_and(|m| m[0] == want_type && report_groups(m).contains(&G1))
    };
    let got = dp.wait_control(WAIT, is_report).unwrap_or_else(|e| {
        panic!(
            "IGMPv{version} report for {G1}: {e:#}; frames: {:?}",
            dp.control_frames()
        )
    });
    assert_eq!(got.port, host - 1, "report from h{host} on the wrong port");
    // Ethernet source is the host, destination the report's IP multicast MAC.
    assert_eq!(got.frame[6..12], lab.host_mac_bytes(host));
    let want_dst: [u8; 6] = if version == 2 {
        [0x01, 0x00, 0x5e, 0x01, 0x01, 0x01] // v2 reports go to the group
    } else {
        [0x01, 0x00, 0x5e, 0x00, 0x00, 0x16] // v3 reports to 224.0.0.22
    };
    assert_eq!(got.frame[0..6], want_dst);
    // Every control frame seen came from h2's port (nobody else joined).
    let frames = dp.control_frames();
    assert!(
        frames.iter().all(|f| f.port == host - 1),
        "{:?}",
        frames.iter().map(|f| f.port).collect::<Vec<_>>()
    );
    let c = dp.counters(host - 1);
    assert!(
        c.get(igmpsnoop_common::counter::TO_CONTROL) >= 1,
        "{:?}",
        c.iter().collect::<Vec<_>>()
    );
}

/// A frame sent from userspace out of port 3 arrives at h3 and nowhere else.
fn userspace_frame_leaves_by_one_port(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    const ETHERTYPE: u16 = 0x88b5; // IEEE local experimental
    let filter = format!("ether proto {ETHERTYPE:#06x}");
    let caps: Vec<Capture> = lab
        .hosts()
        .map(|h| Capture::start(&lab, &lab.host_ns(h), "eth0", &filter).unwrap())
        .collect();
    const N: usize = 5;
    for i in 0..N {
        // Broadcast destination: if it leaked anywhere, every host would see it.
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0x99, 0x01]);
        frame.extend_from_slice(&ETHERTYPE.to_be_bytes());
        frame.extend_from_slice(format!("igmpsnoop-userspace-tx-{i:02}").as_bytes());
        frame.resize(60, 0);
        dp.with(move |dp| dp.send(2, &frame)).expect("send");
    }
    caps[2]
        .wait_for("eth.type == 0x88b5", N, WAIT)
        .expect("h3 receives every frame sent out of port 3");
    // Give any stray copy the time to arrive before counting absences.
    std::thread::sleep(Duration::from_millis(300));
    for (i, mut cap) in caps.into_iter().enumerate() {
        let frames = cap.stop_and_decode().unwrap();
        let host = i + 1;
        if host == 3 {
            assert_eq!(frames.len(), N, "h3 got {} frames", frames.len());
            let mut payloads: Vec<String> = frames
                .iter()
                .map(|f| field_str(f, "data.data").unwrap_or_default())
                .collect();
            payloads.sort();
            for (k, p) in payloads.iter().enumerate() {
                let want: String = format!("igmpsnoop-userspace-tx-{k:02}")
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":");
                assert!(p.starts_with(&want), "frame {k}: {p} (want {want})");
            }
        } else {
            assert_eq!(frames.len(), 0, "h{host} must not see port 3's frames");
        }
    }
}

/// Whether `iface` in `ns` has an XDP program attached (any mode).
fn has_xdp(lab: &Lab, ns: &str, iface: &str) -> bool {
    let out = lab
        .exec(ns, &["ip", "-d", "link", "show", "dev", iface])
        .unwrap();
    out.contains("prog/xdp")
}

/// `Dataplane::open` refuses a missing interface and a port another instance
/// owns, naming the interface, leaving nothing attached; the first instance
/// keeps delivering control frames.
fn open_refuses_bad_ports(mode: XdpMode) {
    require();
    let lab = Lab::new(3).unwrap();
    let sw = lab.switch_ns();

    let ports = vec!["p1".to_string(), "nosuch9".to_string()];
    let err = DataplaneThread::open(&sw, &ports, mode)
        .err()
        .expect("open with a missing interface must fail");
    assert!(format!("{err:#}").contains("nosuch9"), "{err:#}");
    assert!(!has_xdp(&lab, &sw, "p1"), "failed open left p1 attached");

    let first = DataplaneThread::open(&sw, &["p1".into(), "p2".into()], mode).unwrap();
    let err = DataplaneThread::open(&sw, &["p3".into(), "p2".into()], mode)
        .err()
        .expect("a second open on an owned port must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("\"p2\""), "error does not name p2: {msg}");
    assert!(!has_xdp(&lab, &sw, "p3"), "failed open left p3 attached");
    assert!(has_xdp(&lab, &sw, "p2"), "failed open detached the first");

    // The first instance still gets h2's report, from p2 (index 1).
    lab.set_igmp_version(2, 2).unwrap();
    let _rx = Receiver::start(&lab, 2, &[G1], 5000).unwrap();
    let got = first
        .wait_control(WAIT, |f| {
            igmp_of(&f.frame).is_some_and(|m| m[0] == 0x16 && report_groups(m).contains(&G1))
        })
        .expect("first instance still receives control frames");
    assert_eq!(got.port, 1);
}

macro_rules! in_both_modes {
    ($($name:ident => $body:expr;)*) => {
        mod native {
            use super::*;
            $(#[test] fn $name() { $body(XdpMode::Native) })*
        }
        mod generic {
            use super::*;
            $(#[test] fn $name() { $body(XdpMode::Generic) })*
        }
    };
}

in_both_modes! {
    igmpv2_report_reaches_userspace => |m| kernel_report_reaches_userspace(m, 2);
    igmpv3_report_reaches_userspace => |m| kernel_report_reaches_userspace(m, 3);
    userspace_frame_leaves_by_one_port => super::userspace_frame_leaves_by_one_port;
    open_refuses_bad_ports => super::open_refuses_bad_ports;
}
