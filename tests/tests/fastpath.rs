//! The XDP fast path end to end in a netns lab: the data plane is opened
//! in-process on the switch ports and programmed directly (no control plane), and
//! every assertion is about which hosts received which frames. Delivery is
//! measured by sniffers on each host's eth0 (inbound only, so a sender's own
//! transmissions never count), by kernel receivers where the host joined, and by
//! interface counters. Every test runs in native and in generic XDP mode.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use igmpsnoop_common::counter;
use igmpsnoop_dataplane::{PortInfo, PortMask, XdpMode};
use igmpsnoop_tests::fastpath::{bits, delta, open_switch, require_mcast_tool, require_scapy};
use igmpsnoop_tests::in_both_modes;
use igmpsnoop_tests::{
    Capture, DataplaneThread, GRACE, IfaceStats, Lab, Receiver, count_pcap, require_root_and_tools,
    scapy, send,
};

const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 2);
const G3: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 3);
const G_UNREG: Ipv4Addr = Ipv4Addr::new(239, 9, 9, 9);
const MDNS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
/// Datagrams per flow.
const N: u64 = 40;
const WAIT: Duration = Duration::from_secs(5);

fn require() {
    require_root_and_tools(&["tcpdump", "tshark", "sysctl", "bash"]);
    require_mcast_tool();
    require_scapy();
}

fn set_group(dp: &DataplaneThread, vlan: u16, g: Ipv4Addr, hosts: &[usize]) {
    let mask = bits(hosts);
    dp.with(move |dp| dp.forwarding.set_group(vlan, g.octets(), mask))
        .expect("set_group");
}

/// A sniffer on every host's eth0 for frames matching a BPF filter.
///
/// Not `inbound`: with that filter libpcap (tcpdump 4.99 here) loses the first
/// frame after the capture starts. So the sender's sniffer also sees its own
/// transmissions, and expectations say so (see [`seen`]).
struct Sniffers {
    /// (host, sniffer on its eth0)
    caps: Vec<(usize, Capture)>,
}

impl Sniffers {
    fn start(lab: &Lab, bpf: &str) -> Sniffers {
        Self::start_on(lab, &lab.hosts().collect::<Vec<_>>(), bpf)
    }

    fn start_on(lab: &Lab, hosts: &[usize], bpf: &str) -> Sniffers {
        let caps = hosts
            .iter()
            .map(|&h| {
                (
                    h,
                    Capture::start(lab, &lab.host_ns(h), "eth0", bpf).unwrap(),
                )
            })
            .collect();
        Sniffers { caps }
    }

    fn cap(&mut self, host: usize) -> &mut Capture {
        &mut self
            .caps
            .iter_mut()
            .find(|(h, _)| *h == host)
            .unwrap_or_else(|| panic!("no sniffer on h{host}"))
            .1
    }

    /// Waits until each (host, count) in `expect` has seen `count` frames matching
    /// the tshark display filter, then GRACE more, then stops every sniffer.
    fn settle(&mut self, filter: &str, expect: &[(usize, u64)]) {
        for &(host, n) in expect {
            if n > 0 {
                let cap = self.cap(host);
                let deadline = Instant::now() + WAIT;
                // A frame half-written at the moment of reading is a transient error.
                while count_pcap(cap.file(), filter).unwrap_or(0) < n {
                    if Instant::now() >= deadline {
                        cap.stop().unwrap();
                        let total = count_pcap(cap.file(), filter);
                        panic!("h{host}, `{filter}`: {total:?} frames of {n} after {WAIT:?}");
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        std::thread::sleep(GRACE);
        for (_, c) in &mut self.caps {
            c.stop().unwrap();
        }
    }

    /// Frames matching BPF `filter` per sniffed host, in `start` order (all
    /// hosts: index 0 = h1); stops the sniffers.
    fn counts(&mut self, filter: &str) -> Vec<u64> {
        self.caps
            .iter_mut()
            .map(|(_, c)| {
                c.stop().unwrap();
                count_pcap(c.file(), filter).unwrap()
            })
            .collect()
    }
}

/// What the sniffers must count when h1 sent N frames: exactly `n` at each of
/// `hosts`, none at the other receivers, and N at h1, its own transmissions
/// (a copy reflected back to the sender would make that 2N).
fn seen(lab: &Lab, hosts: &[usize], n: u64) -> Vec<u64> {
    lab.hosts()
        .map(|h| match h {
            1 => N,
            h if hosts.contains(&h) => n,
            _ => 0,
        })
        .collect()
}

fn expect_pairs(want: &[u64]) -> Vec<(usize, u64)> {
    want.iter().enumerate().map(|(i, n)| (i + 1, *n)).collect()
}

fn host_rx(lab: &Lab) -> Vec<IfaceStats> {
    lab.hosts().map(|h| lab.host_stats(h).unwrap()).collect()
}

fn group_filter(g: Ipv4Addr, port: u16) -> String {
    format!("dst host {g} and udp dst port {port}")
}

/// Sends N datagrams from h1 to `g:port` and returns what each host's sniffer saw,
/// after waiting for `want` (per host) to arrive.
fn deliver(lab: &Lab, g: Ipv4Addr, port: u16, want: &[u64]) -> Vec<u64> {
    let mut sn = Sniffers::start(lab, &format!("udp port {port}"));
    send(lab, 1, g, port, N).unwrap();
    let f = group_filter(g, port);
    sn.settle(&f, &expect_pairs(want));
    sn.counts(&f)
}

// 1. Registered groups reach exactly their members, once each.
fn registered_groups_reach_exactly_their_members(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    set_group(&dp, 0, G1, &[2, 3]);
    // h1, the sender, is a member of G2 too: it gets no copy of its own.
    set_group(&dp, 0, G2, &[1, 4]);
    const P: u16 = 5001;
    let r2 = Receiver::start(&lab, 2, &[G1], P).unwrap();
    let r3 = Receiver::start(&lab, 3, &[G1], P).unwrap();
    let r4 = Receiver::start(&lab, 4, &[G2], P).unwrap();
    let c0 = dp.counters(0);
    let rx0 = host_rx(&lab);

    let mut sn = Sniffers::start(&lab, &format!("udp port {P}"));
    send(&lab, 1, G1, P, N).unwrap();
    send(&lab, 1, G2, P, N).unwrap();
    let (f1, f2) = (group_filter(G1, P), group_filter(G2, P));
    sn.settle(&f1, &[(1, N), (2, N), (3, N)]);
    sn.settle(&f2, &[(1, N), (4, N)]);
    assert_eq!(sn.counts(&f1), seen(&lab, &[2, 3], N), "{G1} per host");
    assert_eq!(sn.counts(&f2), seen(&lab, &[4], N), "{G2} per host");

    // Interface counters: the hosts received those datagrams and nothing else
    // (in particular h1 got none of its own back).
    let rx1 = host_rx(&lab);
    let got: Vec<u64> = rx0
        .iter()
        .zip(&rx1)
        .map(|(a, b)| b.rx_packets - a.rx_packets)
        .collect();
    assert_eq!(got, vec![0, N, N, N], "host eth0 rx_packets deltas");

    let c1 = dp.counters(0);
    assert_eq!(delta(&c1, &c0, counter::REPLICATED), 2 * N);
    assert_eq!(
        delta(&c1, &c0, counter::REPLICATED_COPIES),
        3 * N,
        "2 copies of G1's datagrams, 1 of G2's (h1's own port excluded)"
    );
    assert_eq!(delta(&c1, &c0, counter::FLOODED), 0);

    let (c2, c3, c4) = (
        r2.finish().unwrap(),
        r3.finish().unwrap(),
        r4.finish().unwrap(),
    );
    assert_eq!(c2.get(&G1), Some(&N), "h2 sockets: {c2:?}");
    assert_eq!(c3.get(&G1), Some(&N), "h3 sockets: {c3:?}");
    assert_eq!(c4.get(&G2), Some(&N), "h4 sockets: {c4:?}");
    assert_eq!(c4.get(&G1).copied().unwrap_or(0), 0, "h4 sockets: {c4:?}");
}

// 2. Link-local multicast is flooded, whatever the policy for unregistered groups.
fn link_local_reaches_every_other_host(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    // Even with unregistered flooding off and no router port.
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    const P: u16 = 5353;
    let rs: Vec<Receiver> = (2..=4)
        .map(|h| Receiver::start(&lab, h, &[MDNS], P).unwrap())
        .collect();
    let c0 = dp.counters(0);
    let want = seen(&lab, &[2, 3, 4], N);
    assert_eq!(deliver(&lab, MDNS, P, &want), want);
    assert_eq!(delta(&dp.counters(0), &c0, counter::FLOODED), N);
    for (h, r) in (2..=4).zip(rs) {
        let c = r.finish().unwrap();
        assert_eq!(c.get(&MDNS), Some(&N), "h{h} sockets: {c:?}");
    }
}

// 3. Unregistered groups: flood policy, router ports.
fn unregistered_groups_follow_policy_and_router_ports(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);

    // Flood policy on (the default): every other host.
    let want = seen(&lab, &[2, 3, 4], N);
    assert_eq!(deliver(&lab, G_UNREG, 5002, &want), want, "flood on");

    // Off, no router port: nobody.
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    let c0 = dp.counters(0);
    let none = seen(&lab, &[], 0);
    assert_eq!(deliver(&lab, G_UNREG, 5003, &none), none, "flood off");
    let c1 = dp.counters(0);
    assert_eq!(delta(&c1, &c0, counter::DROP_NO_ROUTER), N);
    assert_eq!(delta(&c1, &c0, counter::TO_ROUTERS), 0);
    assert_eq!(delta(&c1, &c0, counter::FLOODED), 0);

    // Router port 4: only h4.
    dp.with(|dp| dp.forwarding.set_router_ports(bits(&[4])))
        .unwrap();
    let want = seen(&lab, &[4], N);
    assert_eq!(deliver(&lab, G_UNREG, 5004, &want), want, "router p4");
    let c2 = dp.counters(0);
    assert_eq!(delta(&c2, &c1, counter::TO_ROUTERS), N);
    assert_eq!(delta(&c2, &c1, counter::DROP_NO_ROUTER), 0);

    // A router port also gets registered groups, on top of the members.
    set_group(&dp, 0, G1, &[2]);
    let want = seen(&lab, &[2, 4], N);
    assert_eq!(deliver(&lab, G1, 5005, &want), want, "registered + router");

    // Flooding back on with a router port: every host once, the router too.
    dp.with(|dp| dp.forwarding.set_flood_unregistered(true))
        .unwrap();
    let want = seen(&lab, &[2, 3, 4], N);
    assert_eq!(deliver(&lab, G_UNREG, 5006, &want), want, "flood + router");

    // No router port any more: the registered group is back to its member.
    dp.with(|dp| dp.forwarding.set_router_ports(PortMask::EMPTY))
        .unwrap();
    let want = seen(&lab, &[2], N);
    assert_eq!(deliver(&lab, G1, 5007, &want), want, "router removed");
}

fn ports(dp: &DataplaneThread) -> Vec<PortInfo> {
    dp.with(|dp| dp.ports().to_vec())
}

/// Polls the MAC table until `mac` (vlan 0) is on `ifindex`.
fn wait_mac(dp: &DataplaneThread, mac: [u8; 6], ifindex: u32) {
    let deadline = Instant::now() + WAIT;
    loop {
        let table = dp.with(|dp| dp.stats.mac_table());
        if table
            .iter()
            .any(|r| r.mac == mac && r.vlan == 0 && r.ifindex == ifindex)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{mac:02x?} not learned on ifindex {ifindex}: {table:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends N UDP datagrams from host `from` to a unicast Ethernet/IP destination
/// (crafted, so no ARP is involved and the destination MAC is exact).
fn send_unicast(lab: &Lab, from: usize, dst_mac: &str, dst_ip: Ipv4Addr, port: u16) {
    let code = format!(
        "sendp([Ether(dst='{dst_mac}')/IP(src='{}', dst='{dst_ip}')/UDP(sport=4000, dport={port})/Raw(b'unicast-%d' % i) for i in range({N})], iface=IFACE, inter=0.001, verbose=False)",
        lab.host_ip(from)
    );
    scapy(lab, from, &code).unwrap();
}

// 4. ARP and ping between every pair; MAC table; known unicast to one port.
fn unicast_is_learned_and_switched_to_one_port(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    for a in lab.hosts() {
        for b in lab.hosts().filter(|b| *b != a) {
            lab.ping(a, lab.host_ip(b), 3)
                .unwrap_or_else(|e| panic!("ping h{a} -> h{b}: {e:#}"));
        }
    }
    let info = ports(&dp);
    let table = dp.with(|dp| dp.stats.mac_table());
    for h in lab.hosts() {
        let rows: Vec<_> = table
            .iter()
            .filter(|r| r.mac == lab.host_mac_bytes(h))
            .collect();
        assert_eq!(rows.len(), 1, "h{h}'s MAC once in {table:?}");
        assert_eq!(rows[0].vlan, 0);
        assert_eq!(rows[0].ifindex, info[h - 1].ifindex, "h{h} on p{h}");
    }

    // Known unicast h1 -> h2: only h2 sees it; h3's interface does not grow by N.
    let c0 = dp.counters(0);
    let rx0 = host_rx(&lab);
    const P: u16 = 5010;
    let mut sn = Sniffers::start(&lab, &format!("udp port {P}"));
    send_unicast(&lab, 1, &lab.host_mac(2), lab.host_ip(2), P);
    let f = format!("udp dst port {P}");
    sn.settle(&f, &[(1, N), (2, N)]);
    assert_eq!(sn.counts(&f), seen(&lab, &[2], N));
    let rx1 = host_rx(&lab);
    for h in [3, 4] {
        let grew = rx1[h - 1].rx_packets - rx0[h - 1].rx_packets;
        assert!(grew < N, "h{h} rx grew by {grew} during h1->h2 unicast");
    }
    let c1 = dp.counters(0);
    // At least: h1 may also send a unicast ARP probe or two meanwhile.
    assert!(delta(&c1, &c0, counter::FORWARDED) >= N);
    assert_eq!(delta(&c1, &c0, counter::FLOODED), 0);
}

// 5. A MAC that moves to another port is followed there.
fn unicast_follows_a_moved_host(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    lab.ping(1, lab.host_ip(2), 3).unwrap();
    let info = ports(&dp);
    let mac2 = lab.host_mac_bytes(2);
    wait_mac(&dp, mac2, info[1].ifindex);

    // h2 goes away; h3 takes over its MAC and speaks once.
    lab.exec(&lab.host_ns(2), &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    let h3 = lab.host_ns(3);
    lab.exec(&h3, &["ip", "link", "set", "eth0", "down"])
        .unwrap();
    lab.exec(
        &h3,
        &["ip", "link", "set", "eth0", "address", &lab.host_mac(2)],
    )
    .unwrap();
    lab.exec(&h3, &["ip", "link", "set", "eth0", "up"]).unwrap();
    scapy(
        &lab,
        3,
        "sendp(Ether(src=get_if_hwaddr(IFACE), dst='ff:ff:ff:ff:ff:ff', type=0x88b5)/Raw(b'i-moved'), iface=IFACE, verbose=False)",
    )
    .unwrap();
    wait_mac(&dp, mac2, info[2].ifindex);

    const P: u16 = 5011;
    let c0 = dp.counters(0);
    let p2 = lab.port_stats(2).unwrap();
    // h2's eth0 is down (tcpdump cannot open it); p2's counters stand in for it.
    let mut sn = Sniffers::start_on(&lab, &[1, 3, 4], &format!("udp port {P}"));
    send_unicast(&lab, 1, &lab.host_mac(2), lab.host_ip(2), P);
    let f = format!("udp dst port {P}");
    sn.settle(&f, &[(1, N), (3, N)]);
    assert_eq!(sn.counts(&f), vec![N, N, 0], "h1 (own), h3, h4");
    let p2_after = lab.port_stats(2).unwrap();
    assert_eq!(
        p2_after.tx_packets + p2_after.tx_dropped,
        p2.tx_packets + p2.tx_dropped,
        "nothing sent towards p2"
    );
    assert!(delta(&dp.counters(0), &c0, counter::FORWARDED) >= N);
}

// 6. Groups with the same port set share one inner map.
fn groups_with_equal_port_sets_share_an_inner_map(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    let inner = || dp.with(|dp| dp.forwarding.inner_maps());
    for g in [G1, G2, G3] {
        set_group(&dp, 0, g, &[2, 3]);
    }
    assert_eq!(inner(), 1);
    let want = seen(&lab, &[2, 3], N);
    assert_eq!(deliver(&lab, G3, 5020, &want), want, "{G3} shared set");

    set_group(&dp, 0, G2, &[2, 3, 4]);
    assert_eq!(inner(), 2);
    // The shared set was not modified in place: G1 still goes to h2, h3 only.
    let want = seen(&lab, &[2, 3], N);
    assert_eq!(
        deliver(&lab, G1, 5021, &want),
        want,
        "{G1} after G2 changed"
    );
    let want = seen(&lab, &[2, 3, 4], N);
    assert_eq!(deliver(&lab, G2, 5022, &want), want, "{G2} own set");

    dp.with(|dp| dp.forwarding.delete_group(0, G2.octets()))
        .unwrap();
    assert_eq!(inner(), 1);
    // G2 is unregistered now (flooding off, no routers): nobody.
    let none = seen(&lab, &[], 0);
    assert_eq!(deliver(&lab, G2, 5023, &none), none, "{G2} deleted");
    let want = seen(&lab, &[2, 3], N);
    assert_eq!(deliver(&lab, G1, 5024, &want), want, "{G1} after delete");
}

// 7. Malformed frames are counted and do not stop the switch.
fn malformed_frames_are_counted_and_survived(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    set_group(&dp, 0, G1, &[2, 3]);
    let c0 = dp.counters(0);
    const K: u64 = 3;

    // A 10-byte frame cannot reach the switch over a veth: AF_PACKET refuses
    // anything shorter than an Ethernet header (EINVAL), and one sent through
    // AF_XDP on h1's eth0 is dropped by veth's transmit path (tx_dropped). So
    // drop_short_eth is unreachable here; check that the kernel stops runts.
    let out = scapy(
        &lab,
        1,
        "import socket\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind((IFACE, 0))\n\
         try:\n    s.send(b'\\xff' * 10)\n    print('sent')\nexcept OSError as e:\n    print('errno', e.errno)",
    )
    .unwrap();
    assert_eq!(out.trim(), "errno 22", "AF_PACKET and a 10-byte frame");
    {
        let h1 = DataplaneThread::open(&lab.host_ns(1), &["eth0".into()], mode)
            .expect("data plane on h1's eth0, to transmit a runt");
        let (h1_0, p1_0) = (lab.host_stats(1).unwrap(), lab.port_stats(1).unwrap());
        for _ in 0..K {
            h1.with(|dp| dp.send(0, &[0xff; 10])).expect("AF_XDP send");
        }
        let deadline = Instant::now() + WAIT;
        while lab.host_stats(1).unwrap().tx_dropped < h1_0.tx_dropped + K {
            assert!(Instant::now() < deadline, "runts not dropped by h1's veth");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(lab.port_stats(1).unwrap().rx_packets, p1_0.rx_packets);
    } // detached from h1 again here

    scapy(
        &lab,
        1,
        &format!(
            "m = '01:00:5e:01:01:01'\n\
             ihl3 = Ether(dst=m)/IP(dst='239.1.1.1', ihl=3)/UDP(dport=5030)/Raw(b'x' * 20)\n\
             trunc = Ether(dst=m, type=0x0800)/Raw(bytes.fromhex('4500001400000000011100'))\n\
             vlan = Ether(dst=m, type=0x8100)\n\
             sendp([ihl3, trunc, vlan] * {K}, iface=IFACE, inter=0.001, verbose=False)"
        ),
    )
    .unwrap();

    // The switch still forwards.
    let want = seen(&lab, &[2, 3], N);
    assert_eq!(
        deliver(&lab, G1, 5031, &want),
        want,
        "forwarding afterwards"
    );

    let c1 = dp.counters(0);
    let d = |w| delta(&c1, &c0, w);
    assert_eq!(d(counter::DROP_SHORT_ETH), 0, "no runt reached the switch");
    assert_eq!(
        d(counter::RX),
        3 * K + N,
        "every crafted frame and datagram"
    );
    assert_eq!(d(counter::BAD_IPV4), 2 * K, "IHL 3 and truncated IPv4");
    assert_eq!(
        d(counter::DROP_SHORT_VLAN),
        K,
        "802.1Q tag with nothing after"
    );
    assert_eq!(d(counter::REPLICATED), N, "good frames after");
}

// 8. VLAN-tagged multicast uses the group of its VLAN only.
fn tagged_multicast_uses_its_vlans_group(mode: XdpMode) {
    require();
    let lab = Lab::new(4).unwrap();
    let dp = open_switch(&lab, mode);
    set_group(&dp, 10, G1, &[3]);
    set_group(&dp, 0, G1, &[2]);
    const P: u16 = 5040;

    let mut sn = Sniffers::start(&lab, "vlan");
    scapy(
        &lab,
        1,
        &format!(
            "sendp([Ether(dst='01:00:5e:01:01:01')/Dot1Q(vlan=10)/IP(src='{}', dst='239.1.1.1', ttl=4)/UDP(dport={P})/Raw(b'tagged-%d' % i) for i in range({N})], iface=IFACE, inter=0.001, verbose=False)",
            lab.host_ip(1)
        ),
    )
    .unwrap();
    let tagged = format!("vlan 10 and dst host {G1} and udp dst port {P}");
    sn.settle(&tagged, &[(1, N), (3, N)]);
    assert_eq!(sn.counts(&tagged), seen(&lab, &[3], N), "tagged, VLAN 10");

    // Untagged traffic to the same group uses the VLAN 0 entry.
    let want = seen(&lab, &[2], N);
    assert_eq!(deliver(&lab, G1, P + 1, &want), want, "untagged");
}

in_both_modes!(
    registered_groups_reach_exactly_their_members,
    link_local_reaches_every_other_host,
    unregistered_groups_follow_policy_and_router_ports,
    unicast_is_learned_and_switched_to_one_port,
    unicast_follows_a_moved_host,
    groups_with_equal_port_sets_share_an_inner_map,
    malformed_frames_are_counted_and_survived,
    tagged_multicast_uses_its_vlans_group,
);

/// Descriptors this test process holds open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Sends N datagrams from h1 to `g` and checks the hosts' eth0 rx deltas:
/// N at the ports of `mask` (port i = host i+1), 0 elsewhere.
fn delivers_to_mask(lab: &Lab, g: Ipv4Addr, mask: PortMask) {
    let before = host_rx(lab);
    send(lab, 1, g, 5040, N).unwrap();
    std::thread::sleep(GRACE);
    let got: Vec<u64> = before
        .iter()
        .zip(host_rx(lab))
        .map(|(a, b)| b.rx_packets - a.rx_packets)
        .collect();
    let want: Vec<u64> = (0u8..)
        .take(lab.n_hosts())
        .map(|port| if mask.contains(port) { N } else { 0 })
        .collect();
    assert_eq!(got, want, "{g} with port set {:#x}", mask.0);
}

// 9. Port sets are pooled: thousands of distinct sets publish slots in
// chunks, hold no file descriptor each, and freed slots are reused.
#[test]
fn thousands_of_distinct_port_sets_are_pooled_without_holding_fds() {
    require();
    let lab = Lab::new(12).unwrap();
    let dp = open_switch(&lab, XdpMode::Native);
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    const SETS: u64 = 1500;
    let group = |i: u64| Ipv4Addr::from(0xef02_0000u32 + i as u32);
    // Group i goes to the ports of bit pattern (i+1) << 1: all distinct, and
    // never port 0 (h1, the sender).
    let mask = |i: u64| PortMask((i + 1) << 1);
    let fds_before = open_fds();
    dp.with(move |dp| {
        for i in 0..SETS {
            dp.forwarding.stage_group(0, group(i).octets(), mask(i));
        }
        dp.forwarding.flush()
    })
    .expect("flush");
    assert_eq!(dp.with(|dp| dp.forwarding.inner_maps()), SETS as usize);
    let published = dp.with(|dp| dp.forwarding.published_port_sets());
    assert!(published >= SETS as usize, "{published} slots published");
    let fds = open_fds();
    assert!(
        fds < fds_before + 50,
        "{SETS} port sets took {} descriptors",
        fds - fds_before
    );
    for i in [0, 1234] {
        delivers_to_mask(&lab, group(i), mask(i));
    }

    // All gone; after the quarantine, as many new distinct sets fit in the
    // slots already published.
    dp.with(move |dp| {
        for i in 0..SETS {
            dp.forwarding
                .stage_group(0, group(i).octets(), PortMask::EMPTY);
        }
        dp.forwarding.flush()
    })
    .expect("flush");
    assert_eq!(dp.with(|dp| dp.forwarding.inner_maps()), 0);
    std::thread::sleep(Duration::from_millis(2500));
    let other = move |i: u64| PortMask(mask(i).0 ^ 0xffe);
    dp.with(move |dp| {
        for i in 0..SETS {
            dp.forwarding
                .stage_group(0, group(SETS + i).octets(), other(i));
        }
        dp.forwarding.flush()
    })
    .expect("flush");
    assert_eq!(dp.with(|dp| dp.forwarding.inner_maps()), SETS as usize);
    assert_eq!(
        dp.with(|dp| dp.forwarding.published_port_sets()),
        published,
        "freed slots were not reused"
    );
    delivers_to_mask(&lab, group(SETS + 7), other(7));
    delivers_to_mask(&lab, group(0), PortMask::EMPTY);
}
