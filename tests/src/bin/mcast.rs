//! `mcast-tool`: a multicast host built on the kernel's IPv4 and IPv6 stacks, run
//! inside a lab host namespace. Joins go through IP_ADD_MEMBERSHIP /
//! IPV6_ADD_MEMBERSHIP, so the kernel's own IGMP and MLD host code (at the version
//! set by `force_igmp_version` / `force_mld_version`) sends reports and leaves.
//! Every address may be IPv4 or IPv6 (one family per command) except where the
//! usage below says IPv4.
//!
//! ```text
//! mcast-tool recv --group G [--group G2 ...] --port P [--iface eth0]
//!                 [--duration SECS] [--ready-file F]
//! mcast-tool send --group G --port P [--iface eth0] [--count N] [--interval-ms M]
//!                 [--ttl T] [--tag TAG] [--size BYTES] [--loop]
//! mcast-tool ping --dst IP[%IFACE] [--count N] [--timeout-ms M] [--iface eth0]
//! mcast-tool reports --group FIRST --src IP --count N --rate PPS [--iface eth0]   (IPv4)
//! mcast-tool spoof --group G --port P --src S [--src S2 ...] [--count N]
//!                  [--interval-ms M] [--iface eth0]
//! mcast-tool igmp --dst D --src IP --hex BYTES [--ttl 1] [--no-router-alert]
//!                 [--mac MAC] [--iface eth0]                             (IPv4)
//! mcast-tool sniff --group G --port P --out FILE [--iface eth0]
//! ```
//!
//! `recv --include S` (repeatable) joins each group for those sources only
//! (MCAST_JOIN_SOURCE_GROUP: the kernel host is in INCLUDE mode);
//! `recv --exclude S` (repeatable) joins each group for any source, then
//! blocks those (MCAST_BLOCK_SOURCE: EXCLUDE mode). SIGUSR1 drops what was
//! joined (every source of an INCLUDE filter, or the group), SIGUSR2 joins
//! it again.
//!
//! `spoof` sends UDP datagrams from any source address (AF_PACKET, so the
//! host's own address does not matter), payload `MCT1 tag=SOURCE seq=N`
//! (IPv6 ones carry their mandatory UDP checksum).
//! `igmp` sends one IGMP message whose bytes are given as hex (checksum and
//! all), in an IPv4 packet to `--dst` (and its MAC), TTL 1 and Router Alert
//! unless told otherwise. `sniff` counts datagrams to G:P arriving on the
//! interface per source (an AF_PACKET socket: before the kernel's own
//! source filters) and keeps `--out` holding `{"SOURCE": N, ...}` until
//! SIGTERM.
//!
//! `reports` sends N raw IGMPv2 membership reports (Router Alert, TTL 1) for the
//! distinct groups FIRST, FIRST+1, ... at a steady PPS (paced on the clock, not
//! in bursts: trafgen's rate option does not pace on this kernel), prints
//! `{"sent":N,"seconds":S,"pps":R}`.
//!
//! `ping` exists because this machine has no ping binary: raw-socket ICMP or
//! ICMPv6 echo (`--dst fd77::2`, or `fe80::...%eth0`: a link-local address
//! without a zone is taken on `--iface`), prints `{"sent":N,"received":M}` and
//! exits 0 iff at least one reply came back.
//!
//! `recv` protocol:
//! - After every join has returned it writes `joined\n` to the ready file
//!   (atomically: temp file + rename).
//! - SIGUSR1: drop membership of every group (the kernel sends leaves), keep the
//!   socket open and keep counting; then writes `left\n` to the ready file.
//!   Datagrams that still arrive are also counted in `after_leave`.
//! - SIGUSR2: join every group again, then writes `joined\n`.
//! - SIGTERM / SIGINT / end of `--duration`: drop memberships, print one JSON line
//!   on stdout and exit 0:
//!   `{"received":{"239.1.1.1":N,...},"by_tag":{"239.1.1.1":{"TAG":N}},
//!     "after_leave":{"239.1.1.1":N},"left":bool,"total":N}`
//!   Keys are the destination address of each datagram (IP_PKTINFO or
//!   IPV6_PKTINFO), every requested group is present even with 0.
//!
//! The socket sets IP_MULTICAST_ALL=0 (IPV6_MULTICAST_ALL=0) so it only sees
//! groups it joined itself, even if another socket in the namespace joined more.
//!
//! `send` payload is ASCII `MCT1 tag=TAG seq=N` padded with '.' to `--size`.
//! TTL (hop limit) 4 unless `--ttl`. Multicast loopback is off unless `--loop`, so a receiver on the sending host
//! only counts what comes back through the network.

use std::net::{IpAddr, Ipv4Addr};

use clap::{Parser, Subcommand};

#[path = "mcast/net.rs"]
mod net;
#[path = "mcast/raw.rs"]
mod raw;
#[path = "mcast/recv.rs"]
mod recv;
#[path = "mcast/send.rs"]
mod send;

#[derive(Parser)]
#[command(
    name = "mcast-tool",
    about = "A multicast host for igmpsnoop's netns labs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Join groups through the kernel stack and count datagrams per group.
    Recv(RecvArgs),
    /// Send UDP datagrams to groups through the kernel stack.
    Send(SendArgs),
    /// ICMP or ICMPv6 echo.
    Ping(PingArgs),
    /// IGMPv2 reports for distinct groups at a steady rate (IPv4).
    Reports(ReportsArgs),
    /// UDP datagrams from any source address (AF_PACKET).
    Spoof(SpoofArgs),
    /// One IGMP message given as hex (IPv4).
    Igmp(IgmpArgs),
    /// Count datagrams per source arriving on an interface (AF_PACKET).
    Sniff(SniffArgs),
}

#[derive(clap::Args)]
pub struct RecvArgs {
    /// A group to join (repeat; one family) (required)
    #[arg(long, required = true)]
    group: Vec<IpAddr>,
    /// UDP port to bind (required)
    #[arg(long)]
    port: u16,
    /// Interface to join on
    #[arg(long, default_value = "eth0")]
    iface: String,
    /// Stop after this many seconds [default: until SIGTERM]
    #[arg(long, value_name = "SECS")]
    duration: Option<f64>,
    /// File to write `joined` / `left` to [default: none]
    #[arg(long)]
    ready_file: Option<String>,
    /// Only this source (repeat): INCLUDE mode [default: any source]
    #[arg(long, conflicts_with = "exclude")]
    include: Vec<IpAddr>,
    /// Any source but this one (repeat): EXCLUDE mode [default: none blocked]
    #[arg(long)]
    exclude: Vec<IpAddr>,
}

#[derive(clap::Args)]
pub struct SendArgs {
    /// Destination group (repeat; one family) (required)
    #[arg(long, required = true)]
    group: Vec<IpAddr>,
    /// Destination UDP port (required)
    #[arg(long)]
    port: u16,
    /// Interface to send out of
    #[arg(long, default_value = "eth0")]
    iface: String,
    /// Datagrams per group
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Gap between datagrams (0: back to back)
    #[arg(long, default_value_t = 1)]
    interval_ms: u64,
    /// TTL / hop limit [default: 4]
    #[arg(long)]
    ttl: Option<u32>,
    /// Payload tag
    #[arg(long, default_value = "mcast-tool")]
    tag: String,
    /// Pad the payload to this many bytes
    #[arg(long, default_value_t = 0)]
    size: usize,
    /// Multicast loopback on [default: off]
    #[arg(long = "loop")]
    mcast_loop: bool,
}

#[derive(clap::Args)]
pub struct PingArgs {
    /// Address to ping, IPv4 or IPv6, with an optional %zone (required)
    #[arg(long)]
    dst: String,
    /// Echo requests to send
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// How long to wait for each reply
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Zone of a link-local destination given without one
    #[arg(long, default_value = "eth0")]
    iface: String,
}

#[derive(clap::Args)]
pub struct ReportsArgs {
    /// The first group; report i is for FIRST + i (required)
    #[arg(long)]
    group: Ipv4Addr,
    /// IP source of the reports (required)
    #[arg(long)]
    src: Ipv4Addr,
    /// Reports to send
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Reports per second
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Every report for --group itself, not FIRST + i [default: off]
    #[arg(long)]
    same_group: bool,
    /// Interface to send out of
    #[arg(long, default_value = "eth0")]
    iface: String,
}

#[derive(clap::Args)]
pub struct SpoofArgs {
    /// Destination group (repeat; one family) (required)
    #[arg(long, required = true)]
    group: Vec<IpAddr>,
    /// Destination UDP port (required)
    #[arg(long)]
    port: u16,
    /// Source address (repeat; the family of the groups) (required)
    #[arg(long, required = true)]
    src: Vec<IpAddr>,
    /// Datagrams per group and source
    #[arg(long, default_value_t = 1)]
    count: u64,
    /// Gap between rounds of datagrams
    #[arg(long, default_value_t = 1)]
    interval_ms: u64,
    /// Interface to send out of
    #[arg(long, default_value = "eth0")]
    iface: String,
}

#[derive(clap::Args)]
pub struct IgmpArgs {
    /// IP destination (and its MAC) (required)
    #[arg(long)]
    dst: Ipv4Addr,
    /// IP source (required)
    #[arg(long)]
    src: Ipv4Addr,
    /// The IGMP message, checksum included, as hex (required)
    #[arg(long)]
    hex: String,
    /// IP TTL
    #[arg(long, default_value_t = 1)]
    ttl: u8,
    /// Leave the Router Alert option out [default: included]
    #[arg(long)]
    no_router_alert: bool,
    /// Send the IPv4 header checksum wrong (inverted) [default: right]
    #[arg(long)]
    bad_ip_checksum: bool,
    /// Ethernet source [default: the interface's]
    #[arg(long)]
    mac: Option<String>,
    /// Interface to send out of
    #[arg(long, default_value = "eth0")]
    iface: String,
}

#[derive(clap::Args)]
pub struct SniffArgs {
    /// Group to count (repeat; one family) (required)
    #[arg(long, required = true)]
    group: Vec<IpAddr>,
    /// Destination UDP port to count (required)
    #[arg(long)]
    port: u16,
    /// File kept holding the counts (required)
    #[arg(long)]
    out: String,
    /// Interface to listen on
    #[arg(long, default_value = "eth0")]
    iface: String,
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.cmd {
        Cmd::Recv(a) => recv::recv(a),
        Cmd::Send(a) => send::send(a),
        Cmd::Ping(a) => send::ping(a),
        Cmd::Reports(a) => raw::reports(&a),
        Cmd::Spoof(a) => raw::spoof(&a),
        Cmd::Igmp(a) => raw::igmp(&a),
        Cmd::Sniff(a) => recv::install_signal_handlers().and_then(|()| raw::sniff(&a, &recv::STOP)),
    };
    if let Err(e) = res {
        let sub = std::env::args().nth(1).unwrap_or_default();
        eprintln!("mcast-tool {sub}: {e:#}");
        std::process::exit(1);
    }
}
