//! The command line (clap derive).
use std::{net::Ipv4Addr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::duration::parse_duration;

pub const DEFAULT_SOCKET: &str = "/run/igmpsnoop/igmpsnoop.sock";
pub const DEFAULT_PIN_DIR: &str = "/run/igmpsnoop/bpf";

#[derive(Debug, Parser)]
#[command(
    name = "igmpsnoop",
    version,
    about = "An IGMP snooping layer-2 switch on XDP",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the switch on the given ports.
    Run(Box<RunArgs>),
    /// The group-port table.
    Groups(ListArgs),
    /// Router ports, learned or static, with age.
    Routers(ListArgs),
    /// Who is querier, our state, timers.
    Querier(ListArgs),
    /// Ports, XDP mode, counters.
    Ports(ListArgs),
    /// Protocol counters and drops with reasons.
    Stats(ListArgs),
    /// The learned MAC table.
    Macs(ListArgs),
    /// Static group memberships.
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Remove the pinned state a daemon left behind (after `kill -9` or
    /// `run --keep-on-exit`): the ports stop forwarding.
    Detach(DetachArgs),
}

#[derive(Debug, Args, Default)]
pub struct PinDirArg {
    /// Where the program, its links and maps are pinned (a bpffs; mounted
    /// there when it is not one) [default: /run/igmpsnoop/bpf]
    #[arg(long, env = "IGMPSNOOP_PIN_DIR", value_name = "DIR")]
    pub pin_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DetachArgs {
    #[command(flatten)]
    pub pin_dir: PinDirArg,
    /// The control socket of the daemon that must not be running.
    #[command(flatten)]
    pub socket: SocketArg,
}

#[derive(Debug, Args, Default)]
pub struct SocketArg {
    /// The daemon's control socket [default: /run/igmpsnoop/igmpsnoop.sock]
    #[arg(long, env = "IGMPSNOOP_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

impl SocketArg {
    pub fn path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: SocketArg,
}

#[derive(Debug, Subcommand)]
pub enum GroupAction {
    /// Add a static membership (never expires).
    Add(StaticGroupArgs),
    /// Remove a static membership.
    Del(StaticGroupArgs),
}

#[derive(Debug, Args)]
pub struct StaticGroupArgs {
    /// IPv4 multicast group, e.g. 239.1.1.1.
    pub group: Ipv4Addr,
    #[arg(long, value_name = "IFACE")]
    pub port: String,
    /// 802.1Q VLAN id; 0 = untagged.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..4095))]
    pub vlan: u16,
    #[command(flatten)]
    pub socket: SocketArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XdpModeArg {
    Auto,
    Native,
    Generic,
}

/// `igmpsnoop run`: every option is also a key of the TOML config file
/// (same name); a flag given on the command line overrides the file.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// A switch port (repeat for each).
    #[arg(long = "port", value_name = "IFACE")]
    pub port: Vec<String>,
    #[arg(long, value_enum, value_name = "MODE")]
    pub xdp_mode: Option<XdpModeArg>,
    /// Act as IGMP querier (general queries, with election).
    #[arg(long)]
    pub querier: bool,
    /// Source address of our queries.
    #[arg(long, value_name = "A.B.C.D")]
    pub querier_address: Option<Ipv4Addr>,
    /// Version of the queries we send.
    #[arg(long, value_name = "2|3", value_parser = clap::value_parser!(u8).range(2..=3))]
    pub igmp_version: Option<u8>,
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub query_interval: Option<Duration>,
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub query_response_interval: Option<Duration>,
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub last_member_interval: Option<Duration>,
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=16))]
    pub last_member_count: Option<u8>,
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=7))]
    pub robustness: Option<u8>,
    /// Remove a host at once on leave (repeat per port).
    #[arg(long, value_name = "IFACE")]
    pub fast_leave: Vec<String>,
    /// A static multicast-router port (repeat per port).
    #[arg(long, value_name = "IFACE")]
    pub router_port: Vec<String>,
    /// Ignore queries and PIM hellos arriving on this port (repeat per port).
    #[arg(long, value_name = "IFACE")]
    pub guard_port: Vec<String>,
    /// Flood multicast for groups nobody joined (else: router ports only).
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub flood_unregistered: Option<bool>,
    #[arg(long, value_name = "N")]
    pub max_groups: Option<usize>,
    #[arg(long, value_name = "N")]
    pub max_groups_per_port: Option<usize>,
    /// Distinct sources one group may have source-specific (IGMPv3) entries
    /// for; a record that would pass it is refused, counted
    /// (reject_limit_sources) and logged, and the group keeps its state
    /// [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=65535))]
    pub max_sources_per_group: Option<u64>,
    /// Control frames per second each port may send to the daemon (0 = no limit).
    #[arg(long, value_name = "PPS")]
    pub control_rate_limit: Option<u32>,
    /// How long a learned MAC lives without traffic.
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub mac_age: Option<Duration>,
    #[command(flatten)]
    pub pin_dir: PinDirArg,
    /// Pin nothing: the ports stop forwarding when the daemon ends, however
    /// it ends.
    #[arg(long)]
    pub no_pin: bool,
    /// On SIGTERM/SIGINT, leave the pinned state in place: the ports keep
    /// forwarding for the next daemon to adopt (`igmpsnoop detach` removes it).
    #[arg(long)]
    pub keep_on_exit: bool,
    /// TOML file with the same keys as these flags.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub socket: SocketArg,
}
