//! IPv6 in the XDP fast path, end to end in a netns lab with IPv6 on: the
//! data plane is opened in-process on the switch ports and programmed
//! directly (no control plane); h1 sends crafted frames (scapy) and sniffers
//! on every host's eth0 say who received what. Every test runs in native and
//! in generic XDP mode; two also run on veths at the kernel's defaults.
//!
//! What is checked: an IPv6 group reaches exactly its members, per source
//! for groups with source entries; unregistered groups follow the flood
//! policy; ff02::/16 (all-nodes, solicited-node) is flooded whatever the
//! policy; MLD (v1 and v2, behind a hop-by-hop header or not) and PIMv6
//! hellos reach the control socket and no host; an extension-header chain
//! longer than the program walks goes to the control plane, counted, and is
//! not forwarded, one at the bound is; truncated headers are counted;
//! neighbour discovery and ping6 work; IPv6 entries are adopted after a
//! restart.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::time::Duration;

use igmpsnoop_common::counter;
use igmpsnoop_dataplane::{Options, PortMask, XdpMode};
use igmpsnoop_tests::fastpath::{bits, check_mode, delta, require_scapy};
use igmpsnoop_tests::in_both_modes;
use igmpsnoop_tests::{
    ControlFrame, DataplaneThread, Lab, Sniffers, require_root_and_tools, scapy,
};

const G1: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x1234);
const G2: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x5678);
const G_UNREG: Ipv6Addr = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, 0x9999);
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// h2's solicited-node group (fd77::2 and fe80::ff:fe00:2 both map to it).
const SOLICITED_H2: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 2);
const S1: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x101);
const S2: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x102);
const S3: Ipv6Addr = Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x103);
/// Datagrams per flow.
const N: u64 = 30;
/// Crafted control frames per kind.
const K: u64 = 3;
const WAIT: Duration = Duration::from_secs(10);

fn require() {
    require_root_and_tools(&["tcpdump", "ip", "bash"]);
    require_scapy();
}

fn open(lab: &Lab, mode: XdpMode) -> DataplaneThread {
    open_with(lab, mode, Options::default())
}

/// `open` with IPv6 snooping off or on.
fn open_snooping(lab: &Lab, mode: XdpMode, on: bool) -> DataplaneThread {
    let dp = open_with(lab, mode, Options::default());
    dp.with(move |dp| dp.forwarding.set_snoop_ipv6(on)).unwrap();
    dp
}

/// Opens the data plane on every switch port, checks the attach mode and
/// turns IPv6 snooping on.
fn open_with(lab: &Lab, mode: XdpMode, options: Options) -> DataplaneThread {
    let dp = DataplaneThread::open_with(&lab.switch_ns(), &lab.ports(), mode, options)
        .expect("Dataplane::open");
    check_mode(&dp, mode);
    dp.with(|dp| dp.forwarding.set_snoop_ipv6(true)).unwrap();
    dp
}

fn set_group(dp: &DataplaneThread, g: Ipv6Addr, hosts: &[usize]) {
    let mask = bits(hosts);
    dp.with(move |dp| dp.forwarding.set_group(0, g.octets(), mask))
        .expect("set_group (IPv6)");
}

fn set_source(dp: &DataplaneThread, g: Ipv6Addr, s: Ipv6Addr, hosts: Option<&[usize]>) {
    let mask = hosts.map(bits);
    dp.with(move |dp| dp.forwarding.set_source(0, g.octets(), s.octets(), mask))
        .expect("set_source (IPv6)");
}

/// The Ethernet address of IPv6 multicast group `g` (RFC 2464 §7).
fn group_mac(g: Ipv6Addr) -> String {
    let o = g.octets();
    format!(
        "33:33:{:02x}:{:02x}:{:02x}:{:02x}",
        o[12], o[13], o[14], o[15]
    )
}

/// A scapy expression: `n` UDP datagrams from `src` to `g`, dst port `port`,
/// behind `ext` (a scapy layer expression ending in `/`, or "").
fn udp6(src: Ipv6Addr, g: Ipv6Addr, port: u16, n: u64, ext: &str) -> String {
    format!(
        "[Ether(dst='{}')/IPv6(src='{src}', dst='{g}', hlim=4)/{ext}UDP(sport={port}, dport={port})/Raw(b'seq-%d' % i) for i in range({n})]",
        group_mac(g)
    )
}

/// Sends the frames of scapy expression `frames` from host `from`.
fn send(lab: &Lab, from: usize, frames: &str) {
    scapy(
        lab,
        from,
        &format!("sendp({frames}, iface=IFACE, inter=0.001, verbose=False)"),
    )
    .expect("scapy send");
}

/// What every host sees when h1 sent `n` frames: `n` at h1 (its own
/// transmissions, see `Sniffers`) and at each of `hosts`, none elsewhere.
fn seen(lab: &Lab, hosts: &[usize], n: u64) -> Vec<u64> {
    lab.hosts()
        .map(|h| if h == 1 || hosts.contains(&h) { n } else { 0 })
        .collect()
}

/// Sends `frames` (UDP to `port`) from h1; returns what each host captured
/// of them, after waiting for `want`.
fn deliver(lab: &Lab, port: u16, frames: &str, want: &[u64]) -> Vec<u64> {
    deliver_matching(lab, &format!("ip6 and udp dst port {port}"), frames, want)
}

/// `deliver`, counting what matches BPF `filter`.
fn deliver_matching(lab: &Lab, filter: &str, frames: &str, want: &[u64]) -> Vec<u64> {
    let mut sn = Sniffers::start(lab, filter).unwrap();
    send(lab, 1, frames);
    sn.settle(filter, want, WAIT).unwrap()
}

/// UDP from h1 to `g` reaches exactly `hosts` (and h1 counts its own).
fn reaches(lab: &Lab, g: Ipv6Addr, port: u16, hosts: &[usize]) {
    let want = seen(lab, hosts, N);
    let frames = udp6(lab.host_link_local(1), g, port, N, "");
    assert_eq!(deliver(lab, port, &frames, &want), want, "{g} port {port}");
}

// 1. Registered IPv6 groups reach exactly their members, once each, and are
// counted as streams.
fn ipv6_groups_reach_exactly_their_members(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    set_group(&dp, G1, &[2, 3]);
    set_group(&dp, G2, &[4]);
    assert_eq!(
        dp.with(|dp| dp.forwarding.installed(0, G1.octets())),
        bits(&[2, 3])
    );
    assert!(dp.with(|dp| dp.forwarding.registered(0, G2.octets())));
    assert!(!dp.with(|dp| dp.forwarding.registered(0, G_UNREG.octets())));
    assert_eq!(dp.with(|dp| dp.forwarding.groups6().count()), 2);
    assert_eq!(
        dp.with(|dp| dp.forwarding.groups().count()),
        0,
        "no IPv4 group"
    );
    let c0 = dp.counters(0);

    reaches(lab, G1, 6001, &[2, 3]);
    reaches(lab, G2, 6002, &[4]);
    let c1 = dp.counters(0);
    assert_eq!(delta(&c1, &c0, counter::REPLICATED), 2 * N);
    assert_eq!(delta(&c1, &c0, counter::REPLICATED_COPIES), 3 * N);

    // The group's stream is counted in STREAMS6, source :: (its own set).
    let streams = dp.with(|dp| dp.stats.streams6());
    let g1 = streams
        .iter()
        .find(|s| s.group == G1.octets() && s.source == [0; 16])
        .unwrap_or_else(|| panic!("no stream of {G1} in {streams:?}"));
    assert_eq!(g1.frames, N);
}

// 2. (S,G) for IPv6: a source with an entry of its own goes to its set, one
// with an empty set to nobody, others follow the group.
fn ipv6_sources_are_forwarded_per_source(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    set_group(&dp, G1, &[2]);
    set_source(&dp, G1, S1, Some(&[3]));
    set_source(&dp, G1, S2, Some(&[]));
    assert_eq!(
        dp.with(|dp| dp.forwarding.installed_source(0, G1.octets(), S1.octets())),
        Some(bits(&[3]))
    );
    assert_eq!(dp.with(|dp| dp.forwarding.sources6().count()), 2);
    let c0 = dp.counters(0);
    for (s, port, hosts) in [
        (S1, 6101, &[3][..]),
        (S2, 6102, &[][..]),
        (S3, 6103, &[2][..]),
    ] {
        let want = seen(lab, hosts, N);
        let frames = udp6(s, G1, port, N, "");
        assert_eq!(deliver(lab, port, &frames, &want), want, "from {s}");
    }
    let c1 = dp.counters(0);
    assert_eq!(delta(&c1, &c0, counter::SOURCE_MATCHED), 2 * N, "S1 and S2");
    assert_eq!(delta(&c1, &c0, counter::DROP_NO_MEMBER), N, "S2: nobody");
    let streams = dp.with(|dp| dp.stats.streams6());
    assert!(
        streams
            .iter()
            .any(|s| s.group == G1.octets() && s.source == S1.octets() && s.frames == N),
        "S1's own stream: {streams:?}"
    );

    // S1's entry removed: it follows the group again.
    set_source(&dp, G1, S1, None);
    let want = seen(lab, &[2], N);
    let frames = udp6(S1, G1, 6104, N, "");
    assert_eq!(deliver(lab, 6104, &frames, &want), want, "S1 without entry");
}

// 3. Unregistered groups follow the policy; ff02::/16 is flooded whatever it is.
fn unregistered_and_link_local_ipv6(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    reaches(lab, G_UNREG, 6201, &[2, 3, 4]);

    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    let c0 = dp.counters(0);
    reaches(lab, G_UNREG, 6202, &[]);
    assert_eq!(delta(&dp.counters(0), &c0, counter::DROP_NO_ROUTER), N);

    dp.with(|dp| dp.forwarding.set_router_ports(bits(&[4])))
        .unwrap();
    let c1 = dp.counters(0);
    reaches(lab, G_UNREG, 6203, &[4]);
    assert_eq!(delta(&dp.counters(0), &c1, counter::TO_ROUTERS), N);

    // Flooding off and a router port: link-local scope still reaches all.
    reaches(lab, ALL_NODES, 6204, &[2, 3, 4]);
    reaches(lab, SOLICITED_H2, 6205, &[2, 3, 4]);
    // Even registered (the control plane never registers them; if it did,
    // the fast path would still flood).
    set_group(&dp, SOLICITED_H2, &[2]);
    reaches(lab, SOLICITED_H2, 6206, &[2, 3, 4]);
}

/// Whether `f` is an untagged IPv6 frame from `src` that arrived on port 0.
fn from_h1_as(f: &ControlFrame, src: Ipv6Addr) -> bool {
    f.port == 0
        && f.frame.len() >= 38
        && f.frame[12..14] == [0x86, 0xdd]
        && f.frame[22..38] == src.octets()
}

/// A source address naming what a crafted control frame is.
fn tag(kind: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xdead, kind)
}

/// `n` destination-options headers, for scapy.
fn dest_opts(n: usize) -> String {
    "IPv6ExtHdrDestOpt()/".repeat(n)
}

const HBH: &str = "IPv6ExtHdrHopByHop(options=[RouterAlert()])/";

// 4. MLD and PIMv6 hellos reach the control socket and no host, even for a
// registered group; a chain longer than walked goes to control, counted.
fn mld_goes_to_control_and_not_to_hosts(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    set_group(&dp, G1, &[2, 3]);
    let c0 = dp.counters(0);
    let ip = |kind: u16, dst: Ipv6Addr| {
        format!(
            "Ether(dst='{}')/IPv6(src='{}', dst='{dst}', hlim=1)",
            group_mac(dst),
            tag(kind)
        )
    };
    let msgs = [
        // MLDv1 report (RFC 2710), sent to the group itself: registered here,
        // so it would be replicated if it were taken for data.
        (
            131,
            format!("{}/{HBH}ICMPv6MLReport(mladdr='{G1}')", ip(131, G1)),
        ),
        // MLDv2 report (RFC 3810) to ff02::16.
        (
            143,
            format!(
                "{}/{HBH}ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst='{G1}', rtype=4)])",
                ip(143, "ff02::16".parse().unwrap())
            ),
        ),
        // A general query, and a done, without the hop-by-hop header (matched
        // by ICMPv6 type alone).
        (130, format!("{}/ICMPv6MLQuery()", ip(130, ALL_NODES))),
        (
            132,
            format!(
                "{}/ICMPv6MLDone(mladdr='{G1}')",
                ip(132, "ff02::2".parse().unwrap())
            ),
        ),
        // A PIMv6 hello (next header 103 to ff02::d).
        (
            103,
            format!(
                "{}/Raw(bytes([0x20, 0, 0, 0]))",
                ip(103, "ff02::d".parse().unwrap())
            )
            .replace("hlim=1)", "hlim=1, nh=103)"),
        ),
        // An MLDv2 report behind the most headers walked (6): parsed.
        (
            6,
            format!(
                "{}/{HBH}{}ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst='{G1}', rtype=4)])",
                ip(6, "ff02::16".parse().unwrap()),
                dest_opts(5)
            ),
        ),
        // One past it (7): not walked, so handed up whole.
        (
            7,
            format!(
                "{}/{HBH}{}ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst='{G1}', rtype=4)])",
                ip(7, "ff02::16".parse().unwrap()),
                dest_opts(6)
            ),
        ),
    ];
    let frames = msgs
        .iter()
        .map(|(_, m)| format!("[{m}] * {K}"))
        .collect::<Vec<_>>()
        .join(" + ");
    let mut sn = Sniffers::start(lab, "ip6 and src net fe80::dead:0/112").unwrap();
    send(lab, 1, &frames);
    for (kind, _) in &msgs {
        let src = tag(*kind);
        dp.wait_control(WAIT, |f| from_h1_as(f, src))
            .unwrap_or_else(|e| panic!("kind {kind} at the control socket: {e}"));
    }
    let all = msgs.len() as u64 * K;
    // No host but the sender saw any of them.
    let got = sn
        .settle("ip6 and src net fe80::dead:0/112", &[all, 0, 0, 0], WAIT)
        .unwrap();
    assert_eq!(got, vec![all, 0, 0, 0], "MLD/PIM frames per host");
    let c1 = dp.counters(0);
    for (kind, _) in &msgs {
        let n = dp
            .control_frames()
            .iter()
            .filter(|f| from_h1_as(f, tag(*kind)))
            .count() as u64;
        assert_eq!(n, K, "kind {kind}: frames at the control socket");
    }
    assert_eq!(delta(&c1, &c0, counter::IPV6_LONG_CHAIN), K);
    assert_eq!(delta(&c1, &c0, counter::REPLICATED), 0);
    assert!(delta(&c1, &c0, counter::TO_CONTROL) >= all);
}

// 5. Extension headers: data behind the most headers walked is replicated;
// behind more it goes to the control plane (counted), never to hosts;
// truncated headers are counted and flooded by L2.
fn extension_header_chains(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    set_group(&dp, G1, &[2, 3]);
    let c0 = dp.counters(0);
    // tcpdump's `udp` does not look past extension headers: these are told
    // apart by their source.
    let from = |kind| format!("ip6 src {}", tag(kind));
    let six = format!("{HBH}{}", dest_opts(5));
    let want = seen(lab, &[2, 3], N);
    let frames = udp6(tag(6), G1, 6301, N, &six);
    assert_eq!(
        deliver_matching(lab, &from(6), &frames, &want),
        want,
        "6 headers"
    );
    let c1 = dp.counters(0);
    assert_eq!(delta(&c1, &c0, counter::REPLICATED), N);

    let seven = format!("{HBH}{}", dest_opts(6));
    let want = seen(lab, &[], N);
    let frames = udp6(tag(7), G1, 6302, N, &seven);
    assert_eq!(
        deliver_matching(lab, &from(7), &frames, &want),
        want,
        "7 headers"
    );
    let c2 = dp.counters(0);
    assert_eq!(delta(&c2, &c1, counter::IPV6_LONG_CHAIN), N);
    assert_eq!(delta(&c2, &c1, counter::REPLICATED), 0);

    // A fixed header cut short, and an extension header cut short.
    let mac = group_mac(G1);
    scapy(
        lab,
        1,
        &format!(
            "short = Ether(dst='{mac}', type=0x86dd)/Raw(bytes(IPv6(dst='{G1}'))[:30])\n\
             ext = Ether(dst='{mac}', type=0x86dd)/Raw(bytes(IPv6(dst='{G1}', nh=60, plen=1)) + b'\\x11')\n\
             sendp([short, ext] * {K}, iface=IFACE, inter=0.001, verbose=False)"
        ),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while delta(&dp.counters(0), &c2, counter::BAD_IPV6) < 2 * K {
        assert!(std::time::Instant::now() < deadline, "bad_ipv6 not counted");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(delta(&dp.counters(0), &c2, counter::BAD_IPV6), 2 * K);
    // The switch still forwards.
    reaches(lab, G1, 6303, &[2, 3]);
}

/// ICMPv6 echo from `from` to `dst` through the kernel (which resolves the
/// neighbour first): Ok when a reply came within `tries` seconds.
fn ping6(lab: &Lab, from: usize, dst: Ipv6Addr, tries: u32) -> anyhow::Result<()> {
    let code = format!(
        "import socket, struct, time\n\
         s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)\n\
         s.settimeout(0.2)\n\
         ok = False\n\
         for i in range({tries}):\n\
         \x20   s.sendto(struct.pack('!BBHHH', 128, 0, 0, 0x4242, i) + b'igmpsnoop', ('{dst}', 0))\n\
         \x20   end = time.time() + 1\n\
         \x20   while time.time() < end and not ok:\n\
         \x20       try:\n\
         \x20           d, a = s.recvfrom(1500)\n\
         \x20       except socket.timeout:\n\
         \x20           continue\n\
         \x20       ok = d[0] == 129 and d[4:6] == b'\\x42\\x42'\n\
         \x20   if ok:\n\
         \x20       break\n\
         print('reply' if ok else 'none')"
    );
    let out = scapy(lab, from, &code)?;
    anyhow::ensure!(out.trim() == "reply", "no echo reply from {dst}: {out}");
    Ok(())
}

// 6. Neighbour discovery and ping6 between two hosts through the switch.
fn ping6_works_through_the_switch(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    // With flooding of unregistered groups off: ND must not depend on it.
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    ping6(lab, 1, lab.host_ip6(2), 5).unwrap();
    ping6(lab, 3, lab.host_ip6(4), 5).unwrap();
    let neigh = lab
        .exec(
            &lab.host_ns(1),
            &["ip", "-6", "neigh", "show", &lab.host_ip6(2).to_string()],
        )
        .unwrap();
    assert!(
        neigh.contains(&lab.host_mac(2)),
        "h1 resolved h2 by neighbour discovery: {neigh}"
    );
}

// 7. IPv6 groups and sources survive the data plane (pinned), are adopted and
// held by the next one, and go when the hold ends.
fn ipv6_entries_are_adopted_and_held(lab: &Lab, mode: XdpMode) {
    let pins = Options {
        pin_dir: Some(lab.scratch_dir().join("bpf")),
        max_groups: 1024,
        ..Options::default()
    };
    let dp = open_with(lab, mode, pins.clone());
    set_group(&dp, G1, &[2]);
    set_source(&dp, G1, S1, Some(&[3]));
    dp.with(|dp| dp.keep_pinned(true));
    drop(dp);
    // Nothing in charge: the ports forward the last state.
    let want = seen(lab, &[3], N);
    let frames = udp6(S1, G1, 6400, N, "");
    assert_eq!(deliver(lab, 6400, &frames, &want), want, "S1, unattended");

    let dp = open_with(lab, mode, pins);
    let adopted = dp.with(|dp| dp.adopted()).expect("adopted");
    assert_eq!((adopted.groups, adopted.sources), (1, 1));
    let held: BTreeMap<[u8; 16], PortMask> =
        dp.with(|dp| dp.forwarding.held6().map(|(k, m)| (k.group, m)).collect());
    assert_eq!(held, BTreeMap::from([(G1.octets(), bits(&[2]))]));
    let held: BTreeMap<[u8; 16], PortMask> = dp.with(|dp| {
        dp.forwarding
            .held_sources6()
            .map(|(k, m)| (k.source, m))
            .collect()
    });
    assert_eq!(held, BTreeMap::from([(S1.octets(), bits(&[3]))]));
    let want = seen(lab, &[3], N);
    let frames = udp6(S1, G1, 6401, N, "");
    assert_eq!(deliver(lab, 6401, &frames, &want), want, "S1, held");
    reaches(lab, G1, 6402, &[2]);

    let removed = dp.with(|dp| dp.forwarding.release_held()).unwrap();
    assert_eq!(removed, 1);
    assert!(!dp.with(|dp| dp.forwarding.registered(0, G1.octets())));
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), 0);
}

// 8. IPv6 snooping off (the default, for a control plane without MLD): every
// IPv6 multicast frame is flooded as before, MLD included, and nothing goes
// to the control socket.
fn snooping_off_floods_ipv6_as_before(lab: &Lab, mode: XdpMode) {
    let dp = open_snooping(lab, mode, false);
    set_group(&dp, G1, &[2]);
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    reaches(lab, G1, 6501, &[2, 3, 4]);
    let report = format!(
        "[Ether(dst='{}')/IPv6(src='{}', dst='ff02::16', hlim=1)/{HBH}ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst='{G1}', rtype=4)])] * {K}",
        group_mac("ff02::16".parse().unwrap()),
        tag(143)
    );
    let want = seen(lab, &[2, 3, 4], K);
    let filter = format!("ip6 src {}", tag(143));
    assert_eq!(deliver_matching(lab, &filter, &report, &want), want, "MLD");
    assert!(
        !dp.control_frames().iter().any(|f| from_h1_as(f, tag(143))),
        "MLD at the control socket with snooping off"
    );
    // On again: the same report goes up, and to no host.
    dp.with(|dp| dp.forwarding.set_snoop_ipv6(true)).unwrap();
    let want = seen(lab, &[], K);
    assert_eq!(
        deliver_matching(lab, &filter, &report, &want),
        want,
        "MLD, on"
    );
    dp.wait_control(WAIT, |f| from_h1_as(f, tag(143))).unwrap();
}

fn run(mode: XdpMode, test: fn(&Lab, XdpMode)) {
    require();
    let lab = Lab::ipv6(4).unwrap();
    test(&lab, mode);
}

in_both_modes!(
    run = run;
    ipv6_groups_reach_exactly_their_members,
    ipv6_sources_are_forwarded_per_source,
    unregistered_and_link_local_ipv6,
    mld_goes_to_control_and_not_to_hosts,
    extension_header_chains,
    ping6_works_through_the_switch,
    ipv6_entries_are_adopted_and_held,
    snooping_off_floods_ipv6_as_before,
);

/// Veths at the kernel's defaults (GRO off, checksum offload on), generic
/// mode as `--xdp-mode auto` picks there: groups, link-local, MLD, ping6.
#[test]
fn at_kernel_defaults() {
    require();
    let lab = Lab::ipv6_at_kernel_defaults(4).unwrap();
    ipv6_groups_reach_exactly_their_members(&lab, XdpMode::Generic);
    drop(lab);
    let lab = Lab::ipv6_at_kernel_defaults(4).unwrap();
    mld_goes_to_control_and_not_to_hosts(&lab, XdpMode::Generic);
    drop(lab);
    let lab = Lab::ipv6_at_kernel_defaults(4).unwrap();
    ping6_works_through_the_switch(&lab, XdpMode::Generic);
}
