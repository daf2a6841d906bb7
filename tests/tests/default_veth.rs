//! igmpsnoop on veths left at the kernel's defaults (GRO off, checksum
//! offload on), as container runtimes and a first try by hand make them, with
//! default flags. Native-mode XDP cannot redirect into such a veth (its peer
//! runs no NAPI) and a frame it redirects loses the checksum offload of a
//! locally sent datagram; the switch must choose what works, refuse what
//! cannot work, and say so when the kernel starts dropping.
//!
//! Delivery is counted at the receivers' sockets: a datagram whose UDP
//! checksum was left unfinished is dropped by the receiving stack, so a full
//! count proves the checksum arrived intact.
use std::net::Ipv4Addr;
use std::time::Duration;

use igmpsnoop_tests::{
    Lab, Receiver, SendOpts, Switch, igmpsnoop_bin, mcast_tool_bin, poll_until,
    require_root_and_tools, send_with,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(239, 9, 9, 9);
const UDP: u16 = 5000;
const NOISE: u64 = 10;

fn require() {
    require_root_and_tools(&[]);
    for bin in [igmpsnoop_bin(), mcast_tool_bin()] {
        assert!(bin.is_file(), "{bin:?} not built (cargo build --bins)");
    }
}

fn has_xdp(lab: &Lab, port: &str) -> bool {
    lab.exec(&lab.switch_ns(), &["ip", "-d", "link", "show", "dev", port])
        .unwrap()
        .contains("prog/xdp")
}

fn xdp_modes(sw: &Switch) -> Vec<String> {
    sw.json(&["ports"])
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["xdp_mode"].as_str().unwrap().to_string())
        .collect()
}

/// Host `host`'s veth end as the kernel left it: GRO off, TX checksum on.
fn assert_kernel_defaults(lab: &Lab, host: usize) {
    let k = lab
        .exec(&lab.host_ns(host), &["ethtool", "-k", "eth0"])
        .unwrap();
    assert!(k.contains("generic-receive-offload: off"), "{k}");
    assert!(k.contains("tx-checksumming: on"), "{k}");
}

#[test]
fn default_flags_on_default_veths_deliver_every_datagram_and_ping_works() {
    require();
    let lab = Lab::at_kernel_defaults(4).unwrap();
    assert_kernel_defaults(&lab, 1);
    let args = lab.port_args();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sw = Switch::start(&lab, &args).unwrap();
    assert_eq!(
        xdp_modes(&sw),
        vec!["generic"; 4],
        "auto must not pick native here"
    );

    let r2 = Receiver::start(&lab, 2, &[G], UDP).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G], UDP).unwrap();
    let r4 = Receiver::start(&lab, 4, &[OTHER], UDP).unwrap();
    sw.wait_ports(G, &["p2", "p3"], Duration::from_secs(3));

    // Datagrams of several sizes, so the checksum covers real payload.
    const N: u64 = 300;
    let h4_before = lab.host_stats(4).unwrap().rx_packets;
    let mut o = SendOpts::new(G, UDP, N);
    o.size = 700;
    send_with(&lab, 1, &o).unwrap();
    let got2 = r2.finish().unwrap()[&G];
    let got3 = r3.finish().unwrap()[&G];
    let h4 = lab.host_stats(4).unwrap().rx_packets - h4_before;
    eprintln!("default veths: h2 {got2}/{N}, h3 {got3}/{N}, h4 (not a member) {h4} frames");
    assert_eq!((got2, got3), (N, N), "members lost datagrams");
    assert!(h4 < NOISE, "a non-member received {h4} frames");
    assert_eq!(r4.finish().unwrap()[&OTHER], 0);

    // Unicast, ARP broadcast, both directions.
    lab.ping(1, lab.host_ip(2), 3).unwrap();
    lab.ping(4, lab.host_ip(3), 3).unwrap();
}

#[test]
fn native_on_default_veths_is_refused_with_the_cause_and_the_fix() {
    require();
    let lab = Lab::at_kernel_defaults(2).unwrap();
    let err = match Switch::start(
        &lab,
        &["--port", "p1", "--port", "p2", "--xdp-mode", "native"],
    ) {
        Ok(_) => panic!("native mode started on veths whose peers run no NAPI"),
        Err(e) => format!("{e:#}"),
    };
    for word in ["veth", "NAPI", "gro on", "--xdp-mode generic"] {
        assert!(err.contains(word), "refusal lacks {word:?}: {err}");
    }
    assert!(
        !has_xdp(&lab, "p1") && !has_xdp(&lab, "p2"),
        "left a program attached"
    );
}

/// Native mode where it can work (the peers run NAPI), then a peer stops
/// running it: the daemon says so at once, naming the port, cause and fix.
#[test]
fn native_mode_says_when_a_port_stops_taking_redirected_frames() {
    require();
    let lab = Lab::new(3).unwrap();
    let mut args = lab.port_args();
    args.extend(["--xdp-mode", "native"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let sw = Switch::start(&lab, &args).unwrap();
    assert_eq!(xdp_modes(&sw), vec!["native"; 3]);
    assert!(
        sw.log().contains("checksum offload"),
        "no warning about checksum offload on veths: {}",
        sw.log()
    );
    let port2 = |sw: &Switch| sw.json(&["ports"]).unwrap()[1]["egress"].clone();
    assert_eq!(port2(&sw)["takes_native_redirects"], true);

    lab.exec(&lab.host_ns(2), &["ethtool", "-K", "eth0", "gro", "off"])
        .unwrap();
    let told = poll_until(Duration::from_secs(5), || {
        let log = sw.log();
        log.lines()
            .find(|l| l.contains("now dropped by the kernel") && l.contains("p2"))
            .map(str::to_string)
    })
    .unwrap_or_else(|| panic!("no word of p2 dropping redirected frames: {}", sw.log()));
    assert!(told.contains("gro on"), "no fix given: {told}");
    assert_eq!(port2(&sw)["takes_native_redirects"], false);
}
