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
    long_about = "An IGMP snooping layer-2 switch on XDP. `igmpsnoop run` attaches to the \
        given NIC ports and switches between them: multicast goes only to the ports \
        whose hosts joined the group (learned from IGMPv1/v2/v3 reports) and to the \
        multicast-router ports; it can act as querier. Forwarding is pinned on a bpffs \
        and outlives a crash or restart of the daemon. The other commands ask the \
        running daemon over its control socket; every listing takes --json.",
    after_help = "Exit status: 0 done; 1 failed (the daemon cannot be reached or refused the \
        request, an interface or pin directory is unusable); 2 bad command line; 78 the \
        settings of `run` cannot work (e.g. no ports): a service manager should not retry.",
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
    /// The group-port table, with each port's filter mode and sources,
    /// then the (S,G) forwarding entries.
    Groups(GroupsArgs),
    /// The (S,G) forwarding entries: where each source's traffic goes.
    Sources(VlanListArgs),
    /// Router ports of each VLAN, learned or static, with age.
    Routers(VlanListArgs),
    /// Who is querier on each VLAN, our state, timers.
    Querier(VlanListArgs),
    /// Ports, XDP mode, VLANs, counters.
    Ports(VlanListArgs),
    /// Protocol counters and drops with reasons.
    Stats(StatsArgs),
    /// The learned MAC table.
    Macs(VlanListArgs),
    /// The VLANs snooped: untagged and tagged ports, IGMP and MLD querier,
    /// group count.
    Vlans(VlanListArgs),
    /// Live changes, one line each, until interrupted: joins, leaves,
    /// expiries, forwarding changes, router ports, querier, port state.
    Monitor(VlanListArgs),
    /// Static group memberships.
    Group {
        #[command(subcommand)]
        action: GroupAction,
    },
    /// Remove the pinned state a daemon left behind (after `kill -9` or
    /// `run --keep-on-exit`): the ports stop forwarding.
    Detach(DetachArgs),
}

/// `igmpsnoop generate`: write the man pages or shell completions (used to
/// build the package). Not a subcommand of [`Cli`]: main parses it on its
/// own, so what it writes does not list it.
#[derive(Debug, Parser)]
#[command(
    name = "igmpsnoop-generate",
    bin_name = "igmpsnoop generate",
    version,
    about = "Write the man pages or shell completions (used to build the package)",
    long_about = None
)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateWhat,
    /// Directory to write into (created if missing) [default: .]
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".",
        hide_default_value = true,
        global = true
    )]
    pub out: PathBuf,
}

#[derive(Clone, Copy, Debug, Subcommand)]
pub enum GenerateWhat {
    /// The man pages: igmpsnoop.1 and one per subcommand (igmpsnoop-run.1, ...).
    Man,
    /// Completions for one shell (igmpsnoop.bash, _igmpsnoop or igmpsnoop.fish).
    Completions {
        /// The shell (required)
        #[arg(value_enum)]
        shell: ShellArg,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    Bash,
    Zsh,
    Fish,
}

#[derive(Clone, Debug, Args, Default)]
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

#[derive(Clone, Debug, Args, Default)]
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
    /// Print JSON instead of a table [default: off]
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub socket: SocketArg,
}

/// A listing that can be narrowed to one VLAN.
#[derive(Debug, Args)]
pub struct VlanListArgs {
    /// Only this VLAN (0 = untagged); `ports`: the ports that carry it;
    /// `monitor`: events of other VLANs left out [default: every VLAN]
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u16).range(0..4095))]
    pub vlan: Option<u16>,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Args)]
pub struct GroupsArgs {
    /// Only this group [default: every group]
    #[arg(value_name = "GROUP")]
    pub group: Option<std::net::IpAddr>,
    /// Only memberships on this port [default: every port]
    #[arg(long, value_name = "IFACE")]
    pub port: Option<String>,
    /// Only this VLAN (0 = untagged) [default: every VLAN]
    #[arg(long, value_name = "ID", value_parser = clap::value_parser!(u16).range(0..4095))]
    pub vlan: Option<u16>,
    #[command(flatten)]
    pub rates: RatesArgs,
    #[command(flatten)]
    pub list: ListArgs,
}

#[derive(Debug, Args)]
pub struct RatesArgs {
    /// Show the traffic each group and (S,G) stream brings in, as rates
    /// measured over --interval, with the ports it goes to [default: off]
    #[arg(long)]
    pub rates: bool,
    /// How long --rates measures [default: 1s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR", default_value = "1s", hide_default_value = true)]
    pub interval: Duration,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// One port's counters: fast path, control frames, control socket,
    /// egress [default: the switch's totals]
    #[arg(long, value_name = "IFACE")]
    pub port: Option<String>,
    #[command(flatten)]
    pub list: ListArgs,
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
    /// IPv4 or IPv6 multicast group, e.g. 239.1.1.1 or ff0e::1 (required)
    pub group: std::net::IpAddr,
    /// The switch port of the membership (required)
    #[arg(long, value_name = "IFACE")]
    pub port: String,
    /// 802.1Q VLAN id; 0 = untagged
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..4095))]
    pub vlan: u16,
    /// Only this source's traffic to the group (a static (S,G) entry)
    /// [default: every source, (*,G)]
    #[arg(long, value_name = "ADDR")]
    pub source: Option<std::net::IpAddr>,
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
#[derive(Clone, Debug, Args, Default)]
pub struct RunArgs {
    /// A switch port (repeat for each; at least one, at most 64) [default: none]
    #[arg(long = "port", value_name = "IFACE")]
    pub port: Vec<String>,
    /// How to attach: native XDP where the driver has it, else generic [default: auto]
    #[arg(long, value_enum, value_name = "MODE")]
    pub xdp_mode: Option<XdpModeArg>,
    /// Act as IGMP querier (general queries, with election) [default: off]
    #[arg(long)]
    pub querier: bool,
    /// Source address of our queries [default: the host's first IPv4 address]
    #[arg(long, value_name = "A.B.C.D")]
    pub querier_address: Option<Ipv4Addr>,
    /// Version of the queries we send [default: 3]
    #[arg(long, value_name = "2|3", value_parser = clap::value_parser!(u8).range(2..=3))]
    pub igmp_version: Option<u8>,
    /// Do not snoop MLD (IPv6 multicast is then left to the flooding rules)
    /// [default: MLD snooped beside IGMP]
    #[arg(long)]
    pub no_mld: bool,
    /// Version of the MLD queries we send [default: 2]
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2))]
    pub mld_version: Option<u8>,
    /// Source of our MLD queries, a link-local address (RFC 3810 §5.1.14)
    /// [default: the EUI-64 link-local address of the switch MAC]
    #[arg(long, value_name = "fe80::...")]
    pub mld_querier_address: Option<std::net::Ipv6Addr>,
    /// Time between general queries, RFC 3376 §8.2 [default: 125s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub query_interval: Option<Duration>,
    /// Max response time of general queries, §8.3 [default: 10s, or half a shorter query interval]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub query_response_interval: Option<Duration>,
    /// Time between group-specific queries after a leave, §8.8 [default: 1s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub last_member_interval: Option<Duration>,
    /// Group-specific queries sent after a leave, §8.9 [default: the robustness, 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=16))]
    pub last_member_count: Option<u8>,
    /// Robustness variable, §8.1; membership interval = N × query interval + response interval [default: 2]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=7))]
    pub robustness: Option<u8>,
    /// Remove a host at once on leave (repeat per port) [default: none]
    #[arg(long, value_name = "IFACE")]
    pub fast_leave: Vec<String>,
    /// A static multicast-router port (repeat per port) [default: none]
    #[arg(long, value_name = "IFACE")]
    pub router_port: Vec<String>,
    /// Ignore queries and PIM hellos arriving on this port (repeat per port) [default: none]
    #[arg(long, value_name = "IFACE")]
    pub guard_port: Vec<String>,
    /// The port's PVID: untagged frames in belong to this VLAN and its
    /// frames leave untagged (repeat per port; alone: an access port)
    /// [default: none: a port with no VLAN config is VLAN-unaware]
    #[arg(long, value_name = "IFACE=VID")]
    pub pvid: Vec<String>,
    /// The VLANs the port carries, all but its PVID tagged (repeat per
    /// port; alone: a tagged-only trunk) [default: none: VLAN-unaware]
    #[arg(long, value_name = "IFACE=VID[,VID...]")]
    pub vlans: Vec<String>,
    /// Source of our queries on one VLAN: an IPv4 address for IGMP, a
    /// link-local IPv6 one for MLD (repeat per VLAN and family)
    /// [default: --querier-address / --mld-querier-address]
    #[arg(long, value_name = "VID=ADDR")]
    pub vlan_querier_address: Vec<String>,
    /// Flood multicast for groups nobody joined (else: router ports only) [default: true]
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub flood_unregistered: Option<bool>,
    /// Most (VLAN, group) entries per family; a full table rejects new
    /// groups. The fast path's group maps are created this big (hard cap
    /// 1048576); pinned state made with another value is not adopted
    /// [default: 65536]
    #[arg(long, value_name = "N")]
    pub max_groups: Option<usize>,
    /// Most groups one port may join [default: no limit]
    #[arg(long, value_name = "N")]
    pub max_groups_per_port: Option<usize>,
    /// Distinct sources one group may have source-specific (IGMPv3) entries
    /// for; a record that would pass it is refused, counted
    /// (reject_limit_sources) and logged, and the group keeps its state
    /// [default: 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=65535))]
    pub max_sources_per_group: Option<u64>,
    /// Control frames per second each port may send to the daemon (0 = no limit) [default: 2000]
    #[arg(long, value_name = "PPS")]
    pub control_rate_limit: Option<u32>,
    /// How long a learned MAC lives without traffic [default: 300s]
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub mac_age: Option<Duration>,
    /// Count each replicated stream's frames and bytes in the fast path
    /// (`groups --rates`, metrics) [default: true]
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub count_streams: Option<bool>,
    /// Fast join: the XDP program applies a (*,G) join itself, in the
    /// softirq that received the report, when a published port set fits;
    /// the daemon still handles every report and rewrites each such entry
    /// with what its engine wants [default: true]
    #[arg(long, value_name = "true|false", action = clap::ArgAction::Set)]
    pub fast_join: Option<bool>,
    /// The CPU slice (ms) the daemon asks of the kernel's scheduler (EEVDF,
    /// Linux 6.12 or later; older kernels ignore it). Longer than other
    /// tasks' (about 1-3 ms), a task woken on the daemon's core preempts
    /// it at once: a sender sharing its cores waits less (the join
    /// benchmark's p90 halved with 20), but so do hosts flooding it with
    /// reports, and it learns less of a flood. Its share of the CPU is
    /// unchanged. 0 keeps the kernel's [default: 0]
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(0..=100))]
    pub sched_slice_ms: Option<u64>,
    /// Serve Prometheus/OpenMetrics text at http://ADDR:PORT/metrics [default: off]
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub pin_dir: PinDirArg,
    /// Pin nothing: the ports stop forwarding when the daemon ends, however
    /// it ends [default: off]
    #[arg(long)]
    pub no_pin: bool,
    /// On SIGTERM/SIGINT, leave the pinned state in place: the ports keep
    /// forwarding for the next daemon to adopt (`igmpsnoop detach` removes it)
    /// [default: off]
    #[arg(long)]
    pub keep_on_exit: bool,
    /// TOML file with the same keys as these flags; flags override it, SIGHUP
    /// re-reads it [default: none]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub socket: SocketArg,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every option of every subcommand says what it does and its default
    /// (in its help text, or clap's own `[default: ..]`); required ones say so.
    fn check(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") || arg.is_hide_set() {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            let documented = if arg.is_required_set() {
                help.contains("(required)")
            } else {
                help.contains("[default: ") || !arg.get_default_values().is_empty()
            };
            if help.trim().is_empty() || !documented {
                missing.push(format!("{path} --{id}: {help:?}"));
            }
        }
        for sub in cmd.get_subcommands() {
            check(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }

    #[test]
    fn every_flag_has_help_and_a_default() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        check(&cmd, "igmpsnoop", &mut missing);
        let mut generate = GenerateArgs::command();
        generate.build();
        check(&generate, "igmpsnoop generate", &mut missing);
        assert!(missing.is_empty(), "undocumented: {missing:#?}");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
        GenerateArgs::command().debug_assert();
    }
}
