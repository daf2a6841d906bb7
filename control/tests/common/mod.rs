//! Shared helpers: frame builders and an engine harness with test time.
#![allow(dead_code)]

use core::net::Ipv4Addr;
use core::time::Duration;
use igmpsnoop_control::engine::{Action, Config, Engine, PortConfig};
use igmpsnoop_control::port::{Mac, PortMask};
use igmpsnoop_control::time::Timestamp;
use igmpsnoop_control::wire::frame;
use igmpsnoop_control::wire::igmp::{self, GroupRecordRepr, QueryV3, RecordType};

pub const G1: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);
pub const G2: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 4);
pub const G3: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 5);
pub const ALL_HOSTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
pub const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
pub const V3_REPORTS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);
pub const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

pub fn ms(v: u64) -> Timestamp {
    Timestamp::from_millis(v)
}

pub fn host_mac(n: u8) -> Mac {
    [0x02, 0, 0, 0, 0x10, n]
}

pub fn host_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, n)
}

pub fn igmp_frame(n: u8, vlan: u16, dst: Ipv4Addr, repr: &igmp::Repr) -> Vec<u8> {
    frame::build_igmp(host_mac(n), vlan, host_ip(n), dst, 0, repr)
}

pub fn v1_report(n: u8, group: Ipv4Addr) -> Vec<u8> {
    igmp_frame(n, 0, group, &igmp::Repr::ReportV1 { group })
}

pub fn v2_report(n: u8, group: Ipv4Addr) -> Vec<u8> {
    igmp_frame(n, 0, group, &igmp::Repr::ReportV2 { group })
}

pub fn v2_report_vlan(n: u8, vlan: u16, group: Ipv4Addr) -> Vec<u8> {
    igmp_frame(n, vlan, group, &igmp::Repr::ReportV2 { group })
}

pub fn v2_leave(n: u8, group: Ipv4Addr) -> Vec<u8> {
    igmp_frame(n, 0, ALL_ROUTERS, &igmp::Repr::LeaveV2 { group })
}

pub fn v3_report(n: u8, records: Vec<(RecordType, Ipv4Addr, Vec<Ipv4Addr>)>) -> Vec<u8> {
    let records = records
        .into_iter()
        .map(|(record_type, group, sources)| GroupRecordRepr {
            record_type,
            group,
            sources,
        })
        .collect();
    igmp_frame(n, 0, V3_REPORTS, &igmp::Repr::ReportV3 { records })
}

pub fn v3_one(n: u8, t: RecordType, group: Ipv4Addr, sources: &[Ipv4Addr]) -> Vec<u8> {
    v3_report(n, vec![(t, group, sources.to_vec())])
}

/// A query from `src`: v2 when `v3` is false.
pub fn query(src: Ipv4Addr, group: Ipv4Addr, max_resp_code: u8, v3: bool) -> Vec<u8> {
    let repr = igmp::Repr::Query {
        max_resp_code,
        group,
        v3: v3.then(|| QueryV3 {
            s_flag: false,
            qrv: 2,
            qqic: 125,
            sources: vec![],
        }),
    };
    let dst = if group.is_unspecified() {
        ALL_HOSTS
    } else {
        group
    };
    frame::build_igmp([0x02, 0, 0, 0, 0x20, 1], 0, src, dst, 0, &repr)
}

pub fn ports(n: usize) -> Vec<PortConfig> {
    (0..n)
        .map(|i| PortConfig {
            name: format!("p{i}"),
            ..PortConfig::default()
        })
        .collect()
}

/// An engine with a recording action buffer.
pub struct Harness {
    pub e: Engine,
    pub out: Vec<Action>,
}

impl Harness {
    /// An IGMP engine: MLD off, so that its queries and router-port
    /// actions do not mix into what IGMP tests assert (tests/mld.rs runs
    /// both families side by side).
    pub fn new(config: Config, ports: Vec<PortConfig>) -> Harness {
        Harness::both(
            Config {
                mld: false,
                ..config
            },
            ports,
        )
    }

    /// An engine as configured, MLD as the config says.
    pub fn both(config: Config, ports: Vec<PortConfig>) -> Harness {
        Harness {
            e: Engine::new(config, ports, ms(0)).expect("valid config"),
            out: Vec::new(),
        }
    }

    /// Default config (querier off), 4 plain ports.
    pub fn plain() -> Harness {
        Harness::new(Config::default(), ports(4))
    }

    pub fn querier(version: u8) -> Harness {
        let c = Config {
            querier: true,
            querier_address: Some(OUR_IP),
            igmp_version: version.try_into().expect("IGMP version"),
            ..Config::default()
        };
        Harness::new(c, ports(4))
    }

    /// Feed a frame; returns the actions it produced.
    pub fn rx(&mut self, t: u64, port: u8, f: &[u8]) -> Vec<Action> {
        self.out.clear();
        self.e.handle_frame(ms(t), port, f, &mut self.out);
        std::mem::take(&mut self.out)
    }

    pub fn tick(&mut self, t: u64) -> Vec<Action> {
        self.out.clear();
        self.e.handle_timeout(ms(t), &mut self.out);
        std::mem::take(&mut self.out)
    }

    pub fn ports_of(&self, group: Ipv4Addr) -> PortMask {
        self.e.lookup(0, group)
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.e
            .counters()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no counter {name}"))
    }
}

pub fn mask(ports: &[u8]) -> PortMask {
    let mut m = PortMask::default();
    for p in ports {
        m.insert(*p);
    }
    m
}

/// The frames transmitted in `actions`, with their port sets.
pub fn transmits(actions: &[Action]) -> Vec<(PortMask, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Transmit { ports, frame } => Some((*ports, frame.clone())),
            _ => None,
        })
        .collect()
}

/// Parse a transmitted frame down to its IGMP Repr, checking the IPv4 and
/// IGMP checksums, TTL 1, Router Alert and the multicast MAC mapping.
pub fn decode(f: &[u8]) -> (u16, Ipv4Addr, Ipv4Addr, igmp::Repr) {
    let p = frame::parse(f).expect("valid frame");
    assert_eq!(p.ip.ttl, 1, "TTL 1");
    assert!(p.ip.router_alert, "router alert");
    assert_eq!(
        p.eth.dst,
        igmpsnoop_control::wire::ethernet::multicast_mac(p.ip.dst)
    );
    let pkt = igmp::Packet::new_checked(p.payload).expect("valid igmp");
    assert!(pkt.verify_checksum(), "igmp checksum");
    (
        p.eth.vlan,
        p.ip.src,
        p.ip.dst,
        igmp::Repr::parse(&pkt).expect("igmp repr"),
    )
}

pub fn secs(s: u64) -> u64 {
    Duration::from_secs(s).as_millis() as u64
}

/// The IPv4 address of a view (these tests speak IGMP).
pub fn v4(a: std::net::IpAddr) -> Ipv4Addr {
    match a {
        std::net::IpAddr::V4(a) => a,
        std::net::IpAddr::V6(a) => panic!("{a}: not IPv4"),
    }
}
