//! Lab helpers for the end-to-end tests: network-namespace labs built by
//! `scripts/lab.sh`, child processes inside them, kernel-stack multicast hosts
//! (`mcast-tool`), packet captures decoded by tshark, and interface counters.
//!
//! Every netns test must fail, never skip, when it cannot run: call
//! [`require_root_and_tools`] first.
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//! use std::time::Duration;
//! use igmpsnoop_tests::{Capture, Lab, Receiver, field_str, require_root_and_tools, send};
//!
//! require_root_and_tools(&["tcpdump", "tshark"]);
//! let lab = Lab::new(3).unwrap(); // removed on drop, even on panic
//! let g = Ipv4Addr::new(239, 1, 1, 1);
//! // ... start the switch in lab.switch_ns() on lab.ports() ...
//! lab.set_igmp_version(2, 3).unwrap();
//! let cap = Capture::start(&lab, &lab.switch_ns(), &lab.port(2), "igmp").unwrap();
//! let mut rx = Receiver::start(&lab, 2, &[g], 5000).unwrap();
//! let reports = cap.wait_for("igmp.type == 0x22", 1, Duration::from_secs(5)).unwrap();
//! assert_eq!(field_str(&reports[0], "igmp.maddr").as_deref(), Some("239.1.1.1"));
//! send(&lab, 1, g, 5000, 10).unwrap();
//! rx.leave().unwrap();
//! let counts = rx.finish().unwrap();
//! assert_eq!(counts[&g], 10);
//! ```

mod capture;
mod cmd;
mod conformance;
mod daemon;
mod fabric;
pub mod fastpath;
mod kernel_maps;
mod lab;
mod mcast;
pub mod selftest;
mod sniff;
mod sources;
mod sources6;
mod switch;
mod tools;
pub mod xdp_membership;

pub use capture::{Capture, decode_pcap, field, field_str, fields_str};
pub use cmd::{ChildGuard, netns_command, nsenter_command, run};
pub use conformance::ScapyHost;
pub use daemon::{Launcher, Switch, counters_moved, igmpsnoop_cli, poll_until};
pub use fabric::{Fabric, HOST_STRIDE};
pub use kernel_maps::{KernelState, kernel_state, map_max_entries};
pub use lab::{HOST_IFACE, IfaceStats, LAB_SUBNET, Lab, TEST_PREFIX, cleanup_stale, iface_stats};
pub use mcast::{Receiver, RecvReport, SendOpts, SourceFilter, send, send_with};
pub use sniff::{GRACE, Sniffers, count_pcap};
pub use sources::{IgmpSend, SourceCounter, Stream, igmp_checksum, send_from_sources, v3_report};
pub use sources6::{
    ALL_MLDV2_ROUTERS, ALL_NODES, MldSend, RawPort, SourceCounter6, Stream6, ipv6_checksum,
    ipv6_multicast_mac, mldv2_report, send_from_sources6, udp6_frame,
};
pub use switch::{ControlFrame, DataplaneThread, scapy, scapy_python};
pub use tools::{
    igmpsnoop_bin, lab_script, mcast_tool_bin, repo_root, require_root_and_tools, which,
};
