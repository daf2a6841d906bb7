//! VLAN-aware switching in the XDP fast path (and its TC ingress program for
//! sets whose ports want a VLAN some tagged, some untagged), end to end in a
//! netns lab: the data plane is opened in-process and programmed directly;
//! hosts send crafted frames (AF_PACKET: this kernel has no 802.1Q devices)
//! and every copy a host receives is compared byte for byte with what its
//! port must send: untagged, or tagged with the right VID, payload intact.
//! Every test runs in native and generic XDP mode, and the main ones on a
//! lab left at the kernel's defaults too.
//!
//! The lab's ports:
//!
//! | port | config | VLAN 10 | VLAN 20 |
//! |---|---|---|---|
//! | p1 | access 10 | untagged | - |
//! | p2 | trunk, no PVID | tagged | tagged |
//! | p3 | access 20 | - | untagged |
//! | p4 | access 10 | untagged | - |
//! | p5 | PVID 20, also 10 | tagged | untagged |
//!
//! So VLAN 10's flood set is MIXED with no port alone of its kind (every
//! flood goes through TC), VLAN 20's is MIXED with p2 the only tagged port
//! (a flood from p2 is popped in XDP, one from p3 or p5 goes through TC),
//! and groups pick uniform or MIXED sets at will.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use igmpsnoop_common::counter;
use igmpsnoop_dataplane::{PortCounters, PortMask, PortVlans, XdpMode, vlan::ANY_VLAN};
use igmpsnoop_tests::fastpath::{bits, delta, open_switch};
use igmpsnoop_tests::in_both_modes;
use igmpsnoop_tests::{
    Capture, DataplaneThread, GRACE, Lab, RawPort, require_root_and_tools, scapy_python,
};

/// Frames per flow.
const K: u64 = 20;
const WAIT: Duration = Duration::from_secs(5);
const BCAST: [u8; 6] = [0xff; 6];
/// The IEEE local experimental ethertype: frames nobody's stack answers.
const ETH_EXPERIMENTAL: u16 = 0x88b5;
const HOSTS: usize = 5;

fn require() {
    require_root_and_tools(&["tcpdump", "ip"]);
    assert!(
        scapy_python().is_file(),
        "no Python at {:?} (scripts/setup.sh makes it; the lab needs it)",
        scapy_python()
    );
}

fn port_vlans(port: usize) -> PortVlans {
    match port {
        1 | 4 => PortVlans::access(10),
        2 => PortVlans::trunk(None, [10, 20]),
        3 => PortVlans::access(20),
        5 => PortVlans::trunk(Some(20), [10]),
        _ => unreachable!(),
    }
}

/// Opens the data plane on the lab's ports in `mode` and gives every port
/// its VLAN config.
fn open(lab: &Lab, mode: XdpMode) -> DataplaneThread {
    let dp = open_switch(lab, mode);
    for port in 1..=HOSTS {
        let config = port_vlans(port);
        dp.with(move |dp| dp.set_port_vlans(port - 1, Some(config)))
            .unwrap_or_else(|e| panic!("set_port_vlans p{port}: {e}"));
    }
    dp
}

/// An Ethernet frame: `tag` Some(vid) inserts an 802.1Q tag (PCP 0).
fn ethernet(dst: [u8; 6], src: [u8; 6], tag: Option<u16>, ethertype: u16, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(18 + body.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(vid) = tag {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(body);
    f
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    !(((folded & 0xffff) + (folded >> 16)) as u16)
}

/// A UDP datagram (checksum 0: none, allowed for IPv4) from `src` to `dst`.
fn udp4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 4, 17, 0, 0];
    ip[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&4000u16.to_be_bytes());
    ip.extend_from_slice(&5000u16.to_be_bytes());
    ip.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&[0, 0]);
    ip.extend_from_slice(payload);
    ip
}

fn multicast_mac(g: Ipv4Addr) -> [u8; 6] {
    let o = g.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// What a flow carries after the Ethernet header.
#[derive(Clone, Copy)]
enum Body {
    /// An experimental-ethertype frame.
    Raw,
    /// UDP to an IPv4 group.
    Udp(Ipv4Addr),
}

/// One stream of K frames from a host, and where its copies must arrive.
struct Flow {
    id: u16,
    from: usize,
    dst: [u8; 6],
    /// The tag the sender puts on (None: untagged).
    sent: Option<u16>,
    body: Body,
    /// (host, tag its copy must have): exactly these hosts receive K copies;
    /// every other host none (the sender only its own K).
    to: Vec<(usize, Option<u16>)>,
}

impl Flow {
    fn new(id: u16, from: usize, dst: [u8; 6], sent: Option<u16>, body: Body) -> Flow {
        Flow {
            id,
            from,
            dst,
            sent,
            body,
            to: Vec::new(),
        }
    }

    fn to(mut self, host: usize, tag: Option<u16>) -> Flow {
        self.to.push((host, tag));
        self
    }

    fn payload(&self, seq: u64) -> Vec<u8> {
        let mut p = format!("vlan-fp flow {:05} frame {seq:05} ", self.id).into_bytes();
        p.resize(64, b'.');
        p
    }

    /// Frame `seq` as it leaves a port that wants tag `tag`.
    fn frame(&self, lab: &Lab, seq: u64, tag: Option<u16>) -> Vec<u8> {
        let src = lab.host_mac_bytes(self.from);
        let payload = self.payload(seq);
        match self.body {
            Body::Raw => ethernet(self.dst, src, tag, ETH_EXPERIMENTAL, &payload),
            Body::Udp(g) => ethernet(
                self.dst,
                src,
                tag,
                0x0800,
                &udp4(lab.host_ip(self.from), g, &payload),
            ),
        }
    }

    fn marker(&self) -> Vec<u8> {
        format!("vlan-fp flow {:05} ", self.id).into_bytes()
    }
}

/// Frames of a pcap file (tcpdump's classic format, either byte order);
/// libpcap puts an accelerated VLAN tag back into the frame's bytes.
fn pcap_frames(file: &Path) -> Vec<Vec<u8>> {
    let data = std::fs::read(file).unwrap_or_default();
    if data.len() < 24 {
        return Vec::new();
    }
    let le = data[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || data[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |at: usize| {
        let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let mut frames = Vec::new();
    let mut at = 24;
    while at + 16 <= data.len() {
        let len = u32_at(at + 8) as usize;
        if at + 16 + len > data.len() {
            break; // half written
        }
        frames.push(data[at + 16..at + 16 + len].to_vec());
        at += 16 + len;
    }
    frames
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Sends every flow's K frames, then checks every host's copies of each
/// flow byte for byte: exactly K at the hosts it must reach, in their
/// format, in order; none anywhere else (the sender sees its own K).
fn deliver(lab: &Lab, flows: &[Flow]) {
    let mut caps: Vec<(usize, Capture)> = lab
        .hosts()
        .map(|h| (h, Capture::start(lab, &lab.host_ns(h), "eth0", "").unwrap()))
        .collect();
    for flow in flows {
        let port = RawPort::open(lab, flow.from).unwrap();
        for seq in 0..K {
            port.send(&flow.frame(lab, seq, flow.sent)).unwrap();
            // Paced: a burst on a loaded 2-core box overran a receiving
            // veth or its capture (8 of 20 copies missing, once in three
            // runs under a parallel build), which is not what is tested.
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    let want = |flow: &Flow, host: usize| -> u64 {
        if host == flow.from || flow.to.iter().any(|(h, _)| *h == host) {
            K
        } else {
            0
        }
    };
    let count = |file: &Path, flow: &Flow| -> u64 {
        let marker = flow.marker();
        pcap_frames(file)
            .iter()
            .filter(|f| contains(f, &marker))
            .count() as u64
    };
    let deadline = Instant::now() + WAIT;
    for (host, cap) in &caps {
        for flow in flows {
            while count(cap.file(), flow) < want(flow, *host) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    std::thread::sleep(GRACE);
    for (host, cap) in &mut caps {
        cap.stop().unwrap();
        let frames = pcap_frames(cap.file());
        for flow in flows {
            let marker = flow.marker();
            let got: Vec<&Vec<u8>> = frames.iter().filter(|f| contains(f, &marker)).collect();
            let tag = if *host == flow.from {
                Some(flow.sent)
            } else {
                flow.to.iter().find(|(h, _)| h == host).map(|(_, t)| *t)
            };
            let Some(tag) = tag else {
                assert!(
                    got.is_empty(),
                    "flow {} from h{}: h{host} must get nothing, got {} frames, first {:02x?}",
                    flow.id,
                    flow.from,
                    got.len(),
                    got[0]
                );
                continue;
            };
            assert_eq!(
                got.len() as u64,
                K,
                "flow {} from h{}: copies at h{host}",
                flow.id,
                flow.from
            );
            for (seq, frame) in got.into_iter().enumerate() {
                let expected = flow.frame(lab, seq as u64, tag);
                assert_eq!(
                    frame, &expected,
                    "flow {} from h{}: frame {seq} at h{host} (want tag {tag:?})",
                    flow.id, flow.from
                );
            }
        }
    }
}

fn set_group(dp: &DataplaneThread, vlan: u16, g: Ipv4Addr, hosts: &[usize]) {
    let mask = bits(hosts);
    dp.with(move |dp| dp.forwarding.set_group(vlan, g.octets(), mask))
        .expect("set_group");
}

fn counters(dp: &DataplaneThread) -> Vec<PortCounters> {
    (0..HOSTS).map(|i| dp.counters(i)).collect()
}

const UNKNOWN_MAC: [u8; 6] = [2, 0, 0, 0, 0x99, 0x99];
const G_UNREG: Ipv4Addr = Ipv4Addr::new(239, 9, 9, 9);

// 1. Broadcast, unknown unicast and unregistered multicast stay in their
// VLAN; each copy leaves tagged or untagged as its port wants.
fn floods_stay_in_their_vlan_in_each_ports_format(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    floods_on(&lab, mode);
}

fn floods_on(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    let c0 = counters(&dp);
    let raw = Body::Raw;
    let flows = [
        // Access -> VLAN 10's MIXED set: through TC.
        Flow::new(1, 1, BCAST, None, raw)
            .to(2, Some(10))
            .to(4, None)
            .to(5, Some(10)),
        // Trunk -> the same set.
        Flow::new(2, 2, BCAST, Some(10), raw)
            .to(1, None)
            .to(4, None)
            .to(5, Some(10)),
        // Access -> VLAN 20's MIXED set.
        Flow::new(3, 3, BCAST, None, raw)
            .to(2, Some(20))
            .to(5, None),
        // p2 is VLAN 20's only tagged port: popped in XDP.
        Flow::new(4, 2, BCAST, Some(20), raw)
            .to(3, None)
            .to(5, None),
        // p5's untagged frames are VLAN 20's, its tagged 10 VLAN 10's.
        Flow::new(5, 5, BCAST, None, raw)
            .to(2, Some(20))
            .to(3, None),
        Flow::new(6, 5, BCAST, Some(10), raw)
            .to(1, None)
            .to(2, Some(10))
            .to(4, None),
        // Unknown unicast and unregistered multicast are flooded alike.
        Flow::new(7, 1, UNKNOWN_MAC, None, raw)
            .to(2, Some(10))
            .to(4, None)
            .to(5, Some(10)),
        Flow::new(8, 3, multicast_mac(G_UNREG), None, Body::Udp(G_UNREG))
            .to(2, Some(20))
            .to(5, None),
    ];
    deliver(lab, &flows);
    let c1 = counters(&dp);
    // Flows 1, 2, 3, 5, 6, 7, 8 took the TC path; 4 did not.
    let to_tc: Vec<u64> = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::TO_TC))
        .collect();
    assert_eq!(
        to_tc,
        vec![2 * K, K, 2 * K, 0, 2 * K],
        "to_tc per ingress port"
    );
    let copies: Vec<u64> = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::TC_COPIES))
        .collect();
    assert_eq!(
        copies,
        vec![6 * K, 3 * K, 4 * K, 0, 5 * K],
        "tc_copies per ingress port"
    );
    let dropped: u64 = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::TC_DROP))
        .sum();
    assert_eq!(dropped, 0, "tc_drop");
}

const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 2);
const G3: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 3);
const G4: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 4);

// 2. Groups replicate within their VLAN, each copy in its port's format:
// access -> trunks (tag pushed in XDP), trunk -> access ports (popped),
// a MIXED group (through TC), access -> access, trunk -> trunk; the same
// group address in another VLAN is another group.
fn groups_replicate_in_their_vlan_in_each_ports_format(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    groups_on(&lab, mode);
}

fn groups_on(lab: &Lab, mode: XdpMode) {
    let dp = open(lab, mode);
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    set_group(&dp, 10, G1, &[2, 5]);
    set_group(&dp, 20, G1, &[3]);
    set_group(&dp, 10, G2, &[1, 4]);
    set_group(&dp, 10, G3, &[1, 2, 4]);
    set_group(&dp, 10, G4, &[4, 5]);
    let c0 = counters(&dp);
    let udp = |g| (multicast_mac(g), Body::Udp(g));
    let flow = |id, from, tag, g| {
        let (mac, body) = udp(g);
        Flow::new(id, from, mac, tag, body)
    };
    let flows = [
        // Access -> trunks: tag pushed (XDP).
        flow(11, 1, None, G1).to(2, Some(10)).to(5, Some(10)),
        // The same address in VLAN 20 reaches VLAN 20's member only.
        flow(12, 2, Some(20), G1).to(3, None),
        // Trunk -> access ports: tag popped (XDP).
        flow(13, 2, Some(10), G2).to(1, None).to(4, None),
        // A MIXED group: TC.
        flow(14, 5, Some(10), G3)
            .to(1, None)
            .to(2, Some(10))
            .to(4, None),
        // G4 is {p4 untagged, p5 tagged}: MIXED from h1 (TC) ...
        flow(15, 1, None, G4).to(4, None).to(5, Some(10)),
        // ... but from p5, its only tagged port, uniformly untagged (XDP pop).
        flow(16, 5, Some(10), G4).to(4, None),
        // Trunk -> trunk: G1 from p2 leaves p5 tagged, as it came.
        flow(17, 2, Some(10), G1).to(5, Some(10)),
    ];
    deliver(lab, &flows);
    let c1 = counters(&dp);
    let to_tc: Vec<u64> = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::TO_TC))
        .collect();
    assert_eq!(to_tc, vec![K, 0, 0, 0, K], "to_tc: flows 14 and 15 only");
    let replicated: u64 = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::REPLICATED))
        .sum();
    assert_eq!(replicated, 7 * K);
}

// 3. Known unicast crosses access and trunk ports in each port's format.
fn unicast_crosses_access_and_trunk_ports(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    let dp = open(&lab, mode);
    // Learning: each VLAN 10 host speaks once.
    let learn = [(1, None), (2, Some(10)), (4, None), (5, Some(10))]
        .into_iter()
        .enumerate()
        .map(|(i, (h, tag))| {
            let flow = Flow::new(30 + i as u16, h, BCAST, tag, Body::Raw);
            let port = RawPort::open(&lab, h).unwrap();
            port.send(&flow.frame(&lab, 0, tag)).unwrap();
        })
        .count();
    assert_eq!(learn, 4);
    let deadline = Instant::now() + WAIT;
    loop {
        let table = dp.with(|dp| dp.stats.mac_table());
        let learned: BTreeSet<usize> = [1, 2, 4, 5]
            .into_iter()
            .filter(|&h| {
                table
                    .iter()
                    .any(|r| r.mac == lab.host_mac_bytes(h) && r.vlan == 10)
            })
            .collect();
        if learned.len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "VLAN 10 MACs not learned: {table:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let c0 = counters(&dp);
    let mac = |h| lab.host_mac_bytes(h);
    let flows = [
        Flow::new(21, 1, mac(2), None, Body::Raw).to(2, Some(10)),
        Flow::new(22, 2, mac(1), Some(10), Body::Raw).to(1, None),
        Flow::new(23, 1, mac(4), None, Body::Raw).to(4, None),
        Flow::new(24, 2, mac(5), Some(10), Body::Raw).to(5, Some(10)),
        Flow::new(25, 5, mac(4), Some(10), Body::Raw).to(4, None),
    ];
    deliver(&lab, &flows);
    let c1 = counters(&dp);
    let forwarded: u64 = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::FORWARDED))
        .sum();
    assert_eq!(forwarded, 5 * K);
    let flooded: u64 = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::FLOODED))
        .sum();
    assert_eq!(flooded, 0);
}

// 4. A frame for a VLAN its port does not carry, or untagged on a port with
// no PVID, is dropped and counted.
fn frames_outside_a_ports_vlans_are_dropped_and_counted(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    let dp = open(&lab, mode);
    let c0 = counters(&dp);
    let flows = [
        // h1 is an access port of VLAN 10: a VLAN 20 frame.
        Flow::new(41, 1, BCAST, Some(20), Body::Raw),
        // h2 is a trunk without PVID: an untagged frame.
        Flow::new(42, 2, BCAST, None, Body::Raw),
        // h3 is an access port of VLAN 20: a VLAN 10 frame; and VLAN 30,
        // which no port carries.
        Flow::new(43, 3, BCAST, Some(10), Body::Raw),
        Flow::new(44, 2, BCAST, Some(30), Body::Raw),
    ];
    deliver(&lab, &flows);
    let c1 = counters(&dp);
    let drops: Vec<u64> = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::DROP_VLAN))
        .collect();
    assert_eq!(drops, vec![K, 2 * K, K, 0, 0], "drop_vlan per port");
    let flooded: u64 = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::FLOODED))
        .sum();
    assert_eq!(flooded, 0);
}

// 5. Router ports per (VLAN, family): unregistered multicast (flooding off)
// goes to its VLAN's router ports, those that carry it; ANY_VLAN serves
// the VLANs without their own; a registered group's set has them too.
fn router_sets_are_per_vlan(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    let dp = open(&lab, mode);
    dp.with(|dp| {
        dp.forwarding.set_flood_unregistered(false)?;
        dp.forwarding
            .set_vlan_router_ports::<[u8; 4]>(10, bits(&[5]))?;
        // p4 does not carry VLAN 20: only p2 of these gets VLAN 20's.
        dp.forwarding
            .set_vlan_router_ports::<[u8; 4]>(ANY_VLAN, bits(&[2, 4]))?;
        // IPv6 router ports are another family's: not used for IPv4.
        dp.forwarding
            .set_vlan_router_ports::<[u8; 16]>(ANY_VLAN, bits(&[3]))
    })
    .unwrap();
    set_group(&dp, 10, G2, &[1]);
    let c0 = counters(&dp);
    let udp = |id, from, tag, g| Flow::new(id, from, multicast_mac(g), tag, Body::Udp(g));
    let flows = [
        udp(51, 1, None, G_UNREG).to(5, Some(10)),
        udp(52, 3, None, G_UNREG).to(2, Some(20)),
        // G2 in VLAN 10: member p1 and router p5 (MIXED: TC).
        udp(53, 2, Some(10), G2).to(1, None).to(5, Some(10)),
    ];
    deliver(&lab, &flows);
    let c1 = counters(&dp);
    let to_routers: u64 = (0..HOSTS)
        .map(|i| delta(&c1[i], &c0[i], counter::TO_ROUTERS))
        .sum();
    assert_eq!(to_routers, 2 * K);

    // VLAN 10 with an empty router set of its own: dropped, counted, even
    // though ANY_VLAN has router ports.
    dp.with(|dp| {
        dp.forwarding
            .set_vlan_router_ports::<[u8; 4]>(10, PortMask::EMPTY)
    })
    .unwrap();
    let c1 = counters(&dp);
    deliver(&lab, &[udp(54, 1, None, G_UNREG)]);
    let c2 = counters(&dp);
    assert_eq!(delta(&c2[0], &c1[0], counter::DROP_NO_ROUTER), K);
}

// 6. Control frames reach the control plane tagged with their VLAN; frames
// the control plane sends leave each port in its format, or not at all.
fn control_frames_carry_their_vlan_both_ways(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    let dp = open(&lab, mode);
    // An IGMPv2 report (type 0x16) to 239.1.1.7, untagged from h1 (VLAN 10)
    // and tagged 20 from h2.
    let report = |from: usize, tag| {
        let g = Ipv4Addr::new(239, 1, 1, 7);
        let mut ip = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 1, 2, 0, 0];
        ip.extend_from_slice(&lab.host_ip(from).octets());
        ip.extend_from_slice(&g.octets());
        let c = ipv4_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut igmp = vec![0x16, 0, 0, 0];
        igmp.extend_from_slice(&g.octets());
        let c = ipv4_checksum(&igmp);
        igmp[2..4].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&igmp);
        ethernet(multicast_mac(g), lab.host_mac_bytes(from), tag, 0x0800, &ip)
    };
    let r1 = report(1, None);
    RawPort::open(&lab, 1).unwrap().send(&r1).unwrap();
    let r2 = report(2, Some(20));
    RawPort::open(&lab, 2).unwrap().send(&r2).unwrap();
    let tagged_r1 = report(1, Some(10));
    let got = dp
        .wait_control(WAIT, |f| f.port == 0 && f.frame == tagged_r1)
        .expect("h1's report, tagged 10");
    assert_eq!(got.frame, tagged_r1);
    dp.wait_control(WAIT, |f| f.port == 1 && f.frame == r2)
        .expect("h2's report, as it came (tagged 20)");

    // The control plane sends a VLAN 10 frame out of every port.
    let flow = Flow::new(61, 2, BCAST, Some(10), Body::Raw);
    let mut caps: Vec<(usize, Capture)> = lab
        .hosts()
        .map(|h| {
            (
                h,
                Capture::start(&lab, &lab.host_ns(h), "eth0", "").unwrap(),
            )
        })
        .collect();
    for seq in 0..K {
        let frame = flow.frame(&lab, seq, Some(10));
        dp.with(move |dp| {
            for port in 0..HOSTS {
                dp.send(port, &frame).expect("send");
            }
        });
    }
    std::thread::sleep(GRACE * 2);
    for (host, cap) in &mut caps {
        cap.stop().unwrap();
        let got: Vec<Vec<u8>> = pcap_frames(cap.file())
            .into_iter()
            .filter(|f| contains(f, &flow.marker()))
            .collect();
        let want: Vec<Vec<u8>> = match host {
            1 | 4 => (0..K).map(|s| flow.frame(&lab, s, None)).collect(),
            2 | 5 => (0..K).map(|s| flow.frame(&lab, s, Some(10))).collect(),
            _ => Vec::new(),
        };
        assert_eq!(got, want, "h{host}: what the control plane sent it");
    }
}

// 7. Without VLAN config (again), frames leave as they came: a tagged frame
// is flooded to every port tagged, an untagged one untagged.
fn no_vlan_config_switches_frames_as_they_came(mode: XdpMode) {
    require();
    let lab = Lab::new(HOSTS).unwrap();
    let dp = open(&lab, mode);
    for port in 0..HOSTS {
        dp.with(move |dp| dp.set_port_vlans(port, None)).unwrap();
    }
    let all_but = |id, from, tag| {
        let f = Flow::new(id, from, BCAST, tag, Body::Raw);
        (1..=HOSTS)
            .filter(|h| *h != from)
            .fold(f, |f, h| f.to(h, tag))
    };
    deliver(&lab, &[all_but(71, 1, Some(10)), all_but(72, 3, None)]);
    let c: u64 = (0..HOSTS).map(|i| dp.counters(i).get(counter::TO_TC)).sum();
    assert_eq!(c, 0, "nothing through TC without VLAN config");
}

in_both_modes!(
    floods_stay_in_their_vlan_in_each_ports_format,
    groups_replicate_in_their_vlan_in_each_ports_format,
    unicast_crosses_access_and_trunk_ports,
    frames_outside_a_ports_vlans_are_dropped_and_counted,
    router_sets_are_per_vlan,
    control_frames_carry_their_vlan_both_ways,
    no_vlan_config_switches_frames_as_they_came,
);

// 8. At the kernel's defaults (GRO off, checksum offload on: what `--xdp-mode
// auto` runs generic on), floods and groups in every format.
#[test]
fn floods_and_groups_at_kernel_defaults() {
    require();
    let lab = Lab::at_kernel_defaults(HOSTS).unwrap();
    floods_on(&lab, XdpMode::Generic);
    groups_on(&lab, XdpMode::Generic);
}
