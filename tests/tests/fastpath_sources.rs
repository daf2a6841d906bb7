//! Source-specific forwarding (IGMPv3 source filters) in the XDP fast path,
//! end to end in a netns lab: the data plane is opened in-process on the
//! switch ports and given groups and (group, source) entries directly (no
//! control plane); h1 sends datagrams from crafted source addresses (scapy),
//! and sniffers on the other hosts' eth0 tell which host received which
//! source's datagrams, each carrying its sequence number. Every test runs in
//! native and in generic XDP mode; one also on veths at kernel defaults.
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use igmpsnoop_common::{MAX_SOURCE_ENTRIES, counter};
use igmpsnoop_dataplane::{Adopted, Error, Options, PortMask, XdpMode};
use igmpsnoop_tests::fastpath::{
    bits, check_mode, delta, open_switch, require_mcast_tool, require_scapy,
};
use igmpsnoop_tests::in_both_modes;
use igmpsnoop_tests::{
    Capture, DataplaneThread, GRACE, Lab, require_root_and_tools, scapy, scapy_python,
};

const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);
const S1: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 101);
const S2: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 102);
const S3: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 103);
const S4: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 104);
/// Datagrams per source and burst.
const N: u64 = 40;
const WAIT: Duration = Duration::from_secs(10);

fn require() {
    require_root_and_tools(&["tcpdump", "tshark", "ethtool", "bash"]);
    require_mcast_tool();
    require_scapy();
}

/// Group ports and source entries, written in one flush.
fn install(dp: &DataplaneThread, group: &[usize], sources: &[(Ipv4Addr, Option<&[usize]>)]) {
    let group = bits(group);
    let sources: Vec<(Ipv4Addr, Option<PortMask>)> =
        sources.iter().map(|(s, h)| (*s, h.map(bits))).collect();
    dp.with(move |dp| {
        dp.forwarding.stage_group(0, G.octets(), group);
        for (s, mask) in sources {
            dp.forwarding.stage_source(0, G.octets(), s.octets(), mask);
        }
        dp.forwarding.flush()
    })
    .expect("flush");
}

fn set_source(dp: &DataplaneThread, source: Ipv4Addr, hosts: Option<&[usize]>) {
    let mask = hosts.map(bits);
    dp.with(move |dp| {
        dp.forwarding
            .set_source(0, G.octets(), source.octets(), mask)
    })
    .expect("set_source");
}

/// The scapy code that sends `n` datagrams to G:`port` from each of
/// `sources` in turn (s1 #0, s2 #0, s1 #1, ...), `gap` seconds apart, each
/// with its sequence number as payload.
fn send_code(sources: &[Ipv4Addr], port: u16, n: u64, gap: f64) -> String {
    let srcs: Vec<String> = sources.iter().map(|s| format!("'{s}'")).collect();
    format!(
        "pkts = [Ether(src=get_if_hwaddr(IFACE), dst='01:00:5e:01:01:01')/IP(src=s, dst='{G}', ttl=4)/UDP(sport=4000, dport={port})/Raw(b'%d' % i) for i in range({n}) for s in [{}]]\n\
         sendp(pkts, iface=IFACE, inter={gap}, verbose=False)",
        srcs.join(", ")
    )
}

/// Sends `n` datagrams from each of `sources` (from h1), and waits for it.
fn send_from(lab: &Lab, sources: &[Ipv4Addr], port: u16, n: u64) {
    scapy(lab, 1, &send_code(sources, port, n, 0.001)).expect("scapy send");
}

/// (source, sequence number) of every datagram to G:`port` in a pcap.
fn datagrams(file: &Path, port: u16) -> anyhow::Result<Vec<(Ipv4Addr, u64)>> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(file)
        .args(["-Y", &format!("ip.dst == {G} && udp.dstport == {port}")])
        .args(["-T", "fields", "-e", "ip.src", "-e", "udp.payload"])
        .stdin(Stdio::null())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "tshark -r {file:?}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|line| {
            let (src, hex) = line
                .split_once('\t')
                .ok_or_else(|| anyhow::anyhow!("tshark line {line:?}"))?;
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
                .collect::<Result<_, _>>()?;
            Ok((src.parse()?, String::from_utf8(bytes)?.parse()?))
        })
        .collect()
}

/// Frames in a pcap matching a BPF filter (tcpdump is cheap to start, for polling).
fn count_pcap(file: &Path, filter: &str) -> u64 {
    Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(file)
        .arg(filter)
        .stdin(Stdio::null())
        .output()
        .map(|o| o.stdout.iter().filter(|b| **b == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Sniffers on the receiving hosts (h2..hN: h1 sends, and a sniffer sees
/// its own host's transmissions too).
struct Sniffers {
    caps: Vec<(usize, Capture)>,
    port: u16,
}

impl Sniffers {
    fn start(lab: &Lab, port: u16) -> Sniffers {
        let caps = lab
            .hosts()
            .skip(1)
            .map(|h| {
                let cap = Capture::start(lab, &lab.host_ns(h), "eth0", &format!("udp port {port}"))
                    .unwrap();
                (h, cap)
            })
            .collect();
        Sniffers { caps, port }
    }

    fn captured(&self, host: usize) -> u64 {
        let (_, cap) = self.caps.iter().find(|(h, _)| *h == host).unwrap();
        count_pcap(cap.file(), &format!("udp dst port {}", self.port))
    }

    /// Waits until each host has seen `want[host]` datagrams, then GRACE
    /// more, stops, and returns (host -> its datagrams).
    fn finish(mut self, want: &BTreeMap<usize, u64>) -> BTreeMap<usize, Vec<(Ipv4Addr, u64)>> {
        for (&host, &n) in want {
            let deadline = Instant::now() + WAIT;
            while self.captured(host) < n {
                assert!(
                    Instant::now() < deadline,
                    "h{host}: {} of {n} datagrams after {WAIT:?}",
                    self.captured(host)
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        std::thread::sleep(GRACE);
        let port = self.port;
        self.caps
            .iter_mut()
            .map(|(h, cap)| {
                cap.stop().unwrap();
                (*h, datagrams(cap.file(), port).unwrap())
            })
            .collect()
    }
}

/// Datagrams per (host, source), with every host of the lab but h1 present.
type Tally = BTreeMap<usize, BTreeMap<Ipv4Addr, u64>>;

fn tally(got: &BTreeMap<usize, Vec<(Ipv4Addr, u64)>>) -> Tally {
    got.iter()
        .map(|(h, list)| {
            let mut per: BTreeMap<Ipv4Addr, u64> = BTreeMap::new();
            for (s, _) in list {
                *per.entry(*s).or_default() += 1;
            }
            (*h, per)
        })
        .collect()
}

/// What must arrive: each (host, sources it gets N of); other hosts nothing.
fn expect(lab: &Lab, want: &[(usize, &[Ipv4Addr])]) -> Tally {
    lab.hosts()
        .skip(1)
        .map(|h| {
            let per = want
                .iter()
                .filter(|(wh, _)| *wh == h)
                .flat_map(|(_, ss)| ss.iter().map(|s| (*s, N)))
                .collect();
            (h, per)
        })
        .collect()
}

fn totals(want: &Tally) -> BTreeMap<usize, u64> {
    want.iter()
        .map(|(h, per)| (*h, per.values().sum()))
        .collect()
}

/// Sends N datagrams from each source and checks who got which.
fn deliver(lab: &Lab, sources: &[Ipv4Addr], port: u16, want: &Tally) {
    let sn = Sniffers::start(lab, port);
    send_from(lab, sources, port, N);
    let got = sn.finish(&totals(want));
    assert_eq!(&tally(&got), want, "datagrams per host and source");
}

// 1. Each source reaches exactly its set; a source without an entry its
// group's; an empty set nobody (dropped, counted); the sender nothing back.
fn sources_reach_exactly_their_sets(lab: &Lab, mode: XdpMode) {
    let dp = open_switch(lab, mode);
    install(
        &dp,
        &[2],
        &[(S1, Some(&[3])), (S2, Some(&[2, 4])), (S4, Some(&[]))],
    );
    let listed: BTreeMap<Ipv4Addr, PortMask> = dp.with(|dp| {
        dp.forwarding
            .sources()
            .map(|(k, m)| (Ipv4Addr::from(k.source), m))
            .collect()
    });
    assert_eq!(
        listed,
        BTreeMap::from([(S1, bits(&[3])), (S2, bits(&[2, 4])), (S4, bits(&[]))])
    );
    let installed = dp.with(|dp| {
        let f = &dp.forwarding;
        [S1, S2, S3, S4].map(|s| f.installed_source(0, G.octets(), s.octets()))
    });
    assert_eq!(
        installed,
        [Some(bits(&[3])), Some(bits(&[2, 4])), None, Some(bits(&[]))]
    );
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), 3);

    let c0 = dp.counters(0);
    let h1 = lab.host_stats(1).unwrap().rx_packets;
    let want = expect(lab, &[(2, &[S2, S3]), (3, &[S1]), (4, &[S2])]);
    deliver(lab, &[S1, S2, S3, S4], 5101, &want);
    assert_eq!(
        lab.host_stats(1).unwrap().rx_packets,
        h1,
        "h1 got copies back"
    );
    let c1 = dp.counters(0);
    let d = |w| delta(&c1, &c0, w);
    assert_eq!(
        d(counter::SOURCE_MATCHED),
        3 * N,
        "S1, S2, S4 by their entries"
    );
    assert_eq!(d(counter::REPLICATED), 3 * N, "S1, S2, S3");
    assert_eq!(d(counter::REPLICATED_COPIES), 4 * N);
    assert_eq!(d(counter::DROP_NO_MEMBER), N, "S4: nobody");
    assert_eq!(d(counter::FLOODED), 0);
}

// 2. An empty set still reaches router ports; a group with source entries
// only is registered (never flooded), and unregistered again without them.
fn empty_sets_reach_router_ports_only(lab: &Lab, mode: XdpMode) {
    let dp = open_switch(lab, mode);
    dp.with(|dp| dp.forwarding.set_router_ports(bits(&[4])))
        .unwrap();
    // No group port; S1 wanted by nobody; flooding of unregistered groups on.
    install(&dp, &[], &[(S1, Some(&[]))]);
    assert!(dp.with(|dp| dp.forwarding.registered(0, G.octets())));
    assert_eq!(
        dp.with(|dp| dp.forwarding.installed_source(0, G.octets(), S1.octets())),
        Some(bits(&[4])),
        "router port in the empty source's set"
    );
    let c0 = dp.counters(0);
    deliver(lab, &[S1, S2], 5201, &expect(lab, &[(4, &[S1, S2])]));
    let c1 = dp.counters(0);
    assert_eq!(delta(&c1, &c0, counter::REPLICATED), 2 * N);
    assert_eq!(delta(&c1, &c0, counter::FLOODED), 0);

    // No router port: nobody at all, counted.
    dp.with(|dp| dp.forwarding.set_router_ports(PortMask::EMPTY))
        .unwrap();
    deliver(lab, &[S1, S2], 5202, &expect(lab, &[]));
    let c2 = dp.counters(0);
    assert_eq!(delta(&c2, &c1, counter::DROP_NO_MEMBER), 2 * N);
    assert_eq!(delta(&c2, &c1, counter::FLOODED), 0);
    assert_eq!(delta(&c2, &c1, counter::DROP_NO_ROUTER), 0);

    // A source set with members, still no group port: S2 goes nowhere.
    set_source(&dp, S1, Some(&[3]));
    deliver(lab, &[S1, S2], 5203, &expect(lab, &[(3, &[S1])]));

    // The last source entry gone: unregistered, flooded again.
    set_source(&dp, S1, None);
    assert!(!dp.with(|dp| dp.forwarding.registered(0, G.octets())));
    let c3 = dp.counters(0);
    deliver(
        lab,
        &[S1, S2],
        5204,
        &expect(lab, &[(2, &[S1, S2]), (3, &[S1, S2]), (4, &[S1, S2])]),
    );
    assert_eq!(delta(&dp.counters(0), &c3, counter::FLOODED), 2 * N);
}

/// Per sequence number of `source`, the set of hosts that received it; and
/// asserts no host got one twice.
fn receivers_per_seq(
    got: &BTreeMap<usize, Vec<(Ipv4Addr, u64)>>,
    source: Ipv4Addr,
) -> BTreeMap<u64, BTreeSet<usize>> {
    let mut per: BTreeMap<u64, BTreeSet<usize>> = BTreeMap::new();
    for (&h, list) in got {
        for &(s, seq) in list.iter().filter(|(s, _)| *s == source) {
            assert!(
                per.entry(seq).or_default().insert(h),
                "h{h} got {s} #{seq} twice"
            );
        }
    }
    per
}

/// Every sequence number 0..m reached exactly one of `runs` in turn: the
/// first ones `runs[0]`, then `runs[1]`, ..., each for at least one
/// datagram; none lost (and none twice: `receivers_per_seq`).
fn assert_runs(per: &BTreeMap<u64, BTreeSet<usize>>, m: u64, what: &str, runs: &[&[usize]]) {
    let missing: Vec<u64> = (0..m).filter(|s| !per.contains_key(s)).collect();
    assert!(missing.is_empty(), "{what}: lost {missing:?}");
    let mut seen: Vec<(BTreeSet<usize>, u64, u64)> = Vec::new();
    for seq in 0..m {
        match seen.last_mut() {
            Some((hosts, _, last)) if *hosts == per[&seq] => *last = seq,
            _ => seen.push((per[&seq].clone(), seq, seq)),
        }
    }
    let want: Vec<BTreeSet<usize>> = runs.iter().map(|r| r.iter().copied().collect()).collect();
    let got: Vec<BTreeSet<usize>> = seen.iter().map(|(h, _, _)| h.clone()).collect();
    assert_eq!(got, want, "{what}: receivers in turn (runs {seen:?})");
}

// 3. Streams from two sources while entries come and go: S1 gets an entry
// (the group's first: the flag is set), then S2, then S1's goes, then S2's
// (the last: the flag is cleared). No stream loses or duplicates a
// datagram: each goes to the old set or the new one, and the other
// source's stream does not notice.
fn source_entries_change_under_streams_without_loss(lab: &Lab, mode: XdpMode) {
    let dp = open_switch(lab, mode);
    install(&dp, &[2], &[]);
    const M: u64 = 1500;
    const P: u16 = 5301;
    let sn = Sniffers::start(lab, P);
    let py = scapy_python();
    let script = format!(
        "import logging\nlogging.getLogger('scapy').setLevel(logging.ERROR)\n\
         from scapy.all import *\nIFACE = 'eth0'\n{}\n",
        send_code(&[S1, S2], P, M, 0.001)
    );
    let mut sender = lab
        .spawn(&lab.host_ns(1), &[&py.to_string_lossy(), "-c", &script])
        .unwrap();
    // h2 receives S2 throughout: its count moves on whatever else happens.
    let steps: [(u64, Ipv4Addr, Option<&[usize]>); 4] = [
        (250, S1, Some(&[3])),
        (600, S2, Some(&[2, 4])),
        (950, S1, None),
        (1300, S2, None),
    ];
    for (at, source, hosts) in steps {
        let deadline = Instant::now() + WAIT;
        while sn.captured(2) < at {
            assert!(Instant::now() < deadline, "stream stalled at h2");
            std::thread::sleep(Duration::from_millis(5));
        }
        set_source(&dp, source, hosts);
    }
    let status = sender.wait_timeout(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "scapy: {}", sender.stderr());
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), 0);

    let got = sn.finish(&BTreeMap::from([(2, M)]));
    let s1 = receivers_per_seq(&got, S1);
    assert_runs(&s1, M, "S1", &[&[2], &[3], &[2]]);
    let s2 = receivers_per_seq(&got, S2);
    assert_runs(&s2, M, "S2", &[&[2], &[2, 4], &[2]]);
}

/// `count` distinct sources, 10.(100 + i / 65536).x.y.
fn source(i: u32) -> [u8; 4] {
    (Ipv4Addr::new(10, 100, 0, 0).to_bits() + i).to_be_bytes()
}

/// Group k of the bulk groups, 239.10.x.y.
fn bulk_group(k: u32) -> [u8; 4] {
    (Ipv4Addr::new(239, 10, 0, 0).to_bits() + k).to_be_bytes()
}

/// Stages `per_group` sources in each of `groups` bulk groups (group ports
/// {h2}; sources alternately {h3} and {h4}) and flushes; returns the time
/// the flush took and its result.
fn install_bulk(
    dp: &DataplaneThread,
    groups: u32,
    per_group: u32,
    first_source: u32,
) -> (Duration, Result<(), Error>) {
    dp.with(move |dp| {
        for k in 0..groups {
            dp.forwarding.stage_group(0, bulk_group(k), bits(&[2]));
            for j in 0..per_group {
                let i = first_source + k * per_group + j;
                let mask = if i.is_multiple_of(2) {
                    bits(&[3])
                } else {
                    bits(&[4])
                };
                dp.forwarding
                    .stage_source(0, bulk_group(k), source(i), Some(mask));
            }
        }
        let t0 = Instant::now();
        let r = dp.forwarding.flush();
        (t0.elapsed(), r)
    })
}

/// Sends N datagrams to `group` from `src` (h1) and checks the hosts' eth0
/// rx deltas: N at `hosts`, 0 elsewhere.
fn reaches(lab: &Lab, group: [u8; 4], src: [u8; 4], hosts: &[usize]) {
    let (g, s) = (Ipv4Addr::from(group), Ipv4Addr::from(src));
    let mac = format!(
        "01:00:5e:{:02x}:{:02x}:{:02x}",
        group[1] & 0x7f,
        group[2],
        group[3]
    );
    let before: Vec<u64> = lab
        .hosts()
        .map(|h| lab.host_stats(h).unwrap().rx_packets)
        .collect();
    scapy(
        lab,
        1,
        &format!(
            "sendp([Ether(src=get_if_hwaddr(IFACE), dst='{mac}')/IP(src='{s}', dst='{g}', ttl=4)/UDP(dport=5400)/Raw(b'%d' % i) for i in range({N})], iface=IFACE, inter=0.001, verbose=False)"
        ),
    )
    .unwrap();
    std::thread::sleep(GRACE);
    let got: Vec<u64> = lab
        .hosts()
        .zip(before)
        .map(|(h, b)| lab.host_stats(h).unwrap().rx_packets - b)
        .collect();
    let want: Vec<u64> = lab
        .hosts()
        .map(|h| if hosts.contains(&h) { N } else { 0 })
        .collect();
    assert_eq!(got, want, "{s} -> {g}: rx per host");
}

// 4. 100k source entries installed (1000 groups x 100 sources): each
// reaches its set; a (*,G) group next to them is untouched; all removed in
// one flush.
fn hundred_thousand_source_entries(lab: &Lab, mode: XdpMode) {
    let dp = open_switch(lab, mode);
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    let plain = Ipv4Addr::new(239, 2, 0, 1).octets();
    dp.with(move |dp| dp.forwarding.set_group(0, plain, bits(&[3, 4])))
        .unwrap();
    let (took, result) = install_bulk(&dp, 1000, 100, 0);
    result.expect("100k source entries");
    eprintln!("100k source entries written in {took:?}");
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), 100_000);
    // Sets {h2} (groups), {h3}, {h4} (sources), {h3, h4} (the plain group).
    assert_eq!(dp.with(|dp| dp.forwarding.inner_maps()), 4);
    reaches(lab, bulk_group(0), source(0), &[3]);
    reaches(lab, bulk_group(999), source(99_999), &[4]);
    reaches(lab, bulk_group(500), [10, 99, 0, 1], &[2]);
    reaches(lab, plain, source(7), &[3, 4]);

    dp.with(|dp| {
        for i in 0..100_000u32 {
            dp.forwarding
                .stage_source(0, bulk_group(i / 100), source(i), None);
        }
        dp.forwarding.flush()
    })
    .expect("removing 100k source entries");
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), 0);
    reaches(lab, bulk_group(999), source(99_999), &[2]);
}

// 5. A full source map refuses new entries (reported, counted) and the
// switch goes on forwarding everything it has.
fn a_full_source_map_refuses_new_entries_only(lab: &Lab, mode: XdpMode) {
    let dp = open_switch(lab, mode);
    dp.with(|dp| dp.forwarding.set_flood_unregistered(false))
        .unwrap();
    let max = MAX_SOURCE_ENTRIES;
    let (_, result) = install_bulk(&dp, max / 1024, 1024, 0);
    result.expect("filling the source map");
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), max as usize);
    // 10 more: refused, the rest of the same flush written.
    let late = Ipv4Addr::new(239, 3, 0, 1).octets();
    let result = dp.with(move |dp| {
        dp.forwarding.stage_group(0, late, bits(&[4]));
        for i in 0..10 {
            dp.forwarding
                .stage_source(0, bulk_group(0), source(max + i), Some(bits(&[2])));
        }
        dp.forwarding.flush()
    });
    match result {
        Err(Error::TableFull { name, refused, .. }) => {
            assert_eq!((name, refused), ("SOURCES", 10));
        }
        other => panic!("expected SOURCES full, got {other:?}"),
    }
    assert_eq!(dp.with(|dp| dp.forwarding.refused_sources()), 10);
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), max as usize);
    reaches(lab, late, source(0), &[4]);
    reaches(lab, bulk_group(0), source(0), &[3]);
    // A refused source follows its group's ports.
    reaches(lab, bulk_group(0), source(max), &[2]);
}

// 6. Source entries survive the data plane (pinned), are adopted and held by
// the next one, and go when the hold ends unless set again.
fn source_entries_are_adopted_and_held(lab: &Lab, mode: XdpMode) {
    let pins = Options {
        pin_dir: Some(lab.scratch_dir().join("bpf")),
        max_groups: 1024,
        ..Options::default()
    };
    let open_pinned = || {
        let dp =
            DataplaneThread::open_with(&lab.switch_ns(), &lab.ports(), mode, pins.clone()).unwrap();
        check_mode(&dp, mode);
        dp
    };
    let dp = open_pinned();
    install(&dp, &[2], &[(S1, Some(&[3])), (S2, Some(&[]))]);
    dp.with(|dp| dp.keep_pinned(true));
    drop(dp);
    // Nothing in charge: the ports forward the last state.
    let was = expect(lab, &[(2, &[S3]), (3, &[S1])]);
    deliver(lab, &[S1, S2, S3], 5501, &was);

    let dp = open_pinned();
    let adopted = dp.with(|dp| dp.adopted());
    assert_eq!(
        adopted,
        Some(Adopted {
            groups: 1,
            sources: 2,
            router_ports: PortMask::EMPTY,
            port_sets: adopted.map_or(0, |a| a.port_sets),
        })
    );
    let held: BTreeMap<Ipv4Addr, PortMask> = dp.with(|dp| {
        dp.forwarding
            .held_sources()
            .map(|(k, m)| (Ipv4Addr::from(k.source), m))
            .collect()
    });
    assert_eq!(
        held,
        BTreeMap::from([(S1, bits(&[3])), (S2, PortMask::EMPTY)])
    );
    deliver(lab, &[S1, S2, S3], 5502, &was);

    // The control plane sets S1 again (to h4): held ports stay until the end
    // of the hold, then only what was set remains. S2 and the group's own
    // ports were not set again: S2 follows the group, which has no port.
    set_source(&dp, S1, Some(&[4]));
    deliver(lab, &[S1], 5503, &expect(lab, &[(3, &[S1]), (4, &[S1])]));
    dp.with(|dp| dp.forwarding.release_held()).unwrap();
    assert_eq!(dp.with(|dp| dp.forwarding.source_entries()), 1);
    assert!(dp.with(|dp| dp.forwarding.registered(0, G.octets())));
    deliver(lab, &[S1, S2, S3], 5504, &expect(lab, &[(4, &[S1])]));
}

/// Puts every veth of the lab back to the kernel's defaults (GRO off, TX
/// checksum offload on), undoing what scripts/lab.sh sets.
fn kernel_defaults(lab: &Lab) {
    for h in lab.hosts() {
        lab.exec(
            &lab.host_ns(h),
            &["ethtool", "-K", "eth0", "gro", "off", "tx", "on"],
        )
        .unwrap();
        lab.exec(
            &lab.switch_ns(),
            &["ethtool", "-K", &lab.port(h), "gro", "off", "tx", "on"],
        )
        .unwrap();
    }
}

fn run(mode: XdpMode, test: fn(&Lab, XdpMode)) {
    require();
    let lab = Lab::new(4).unwrap();
    test(&lab, mode);
}

in_both_modes!(
    run = run;
    sources_reach_exactly_their_sets,
    empty_sets_reach_router_ports_only,
    source_entries_change_under_streams_without_loss,
    hundred_thousand_source_entries,
    source_entries_are_adopted_and_held,
);

/// Filling the map once is enough (it takes a while): native mode.
#[test]
fn full_source_map_refuses_new_entries_only() {
    run(XdpMode::Native, a_full_source_map_refuses_new_entries_only);
}

/// On veths at kernel defaults (GRO off, TX checksum offload on). Generic
/// mode: native XDP redirect into a veth whose peer runs no NAPI (GRO off,
/// no XDP program) does not deliver, which `--xdp-mode auto` does not yet
/// account for.
#[test]
fn sources_reach_exactly_their_sets_at_kernel_defaults() {
    require();
    let lab = Lab::new(4).unwrap();
    kernel_defaults(&lab);
    sources_reach_exactly_their_sets(&lab, XdpMode::Generic);
}
