//! `igmpsnoop run` settings: the TOML config file, overridden by flags,
//! validated into what the engine and the data plane take.
use std::{
    collections::{BTreeMap, BTreeSet, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use igmpsnoop_control::{Config, ConfigError, PortConfig, engine::Version};
use igmpsnoop_dataplane::{
    XdpMode,
    vlan::{MAX_VID, PortVlans},
};
use serde::Deserialize;

use super::{
    args::{DEFAULT_PIN_DIR, DEFAULT_SOCKET, RunArgs, XdpModeArg},
    duration::parse_duration,
};

/// The config file: the same keys as the `run` flags.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    port: Vec<String>,
    xdp_mode: Option<XdpModeArg>,
    querier: Option<bool>,
    querier_address: Option<Ipv4Addr>,
    igmp_version: Option<u8>,
    no_mld: Option<bool>,
    mld_version: Option<u8>,
    mld_querier_address: Option<std::net::Ipv6Addr>,
    query_interval: Option<String>,
    query_response_interval: Option<String>,
    last_member_interval: Option<String>,
    last_member_count: Option<u8>,
    robustness: Option<u8>,
    #[serde(default)]
    fast_leave: Vec<String>,
    #[serde(default)]
    router_port: Vec<String>,
    #[serde(default)]
    guard_port: Vec<String>,
    flood_unregistered: Option<bool>,
    max_groups: Option<usize>,
    max_groups_per_port: Option<usize>,
    max_sources_per_group: Option<u64>,
    control_rate_limit: Option<u32>,
    mac_age: Option<String>,
    metrics_listen: Option<std::net::SocketAddr>,
    count_streams: Option<bool>,
    fast_join: Option<bool>,
    sched_slice_ms: Option<u64>,
    socket: Option<PathBuf>,
    pin_dir: Option<PathBuf>,
    no_pin: Option<bool>,
    keep_on_exit: Option<bool>,
    /// `[ports.NAME]`: a port's VLANs.
    #[serde(default)]
    ports: BTreeMap<String, FilePort>,
    /// `[vlans.N]`: a VLAN's own querier addresses.
    #[serde(default)]
    vlans: BTreeMap<String, FileVlan>,
}

/// `[ports.NAME] pvid = N, vlans = [..]`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FilePort {
    pvid: Option<i64>,
    vlans: Option<Vec<i64>>,
}

/// `[vlans.N] querier-address = .., mld-querier-address = ..`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileVlan {
    querier_address: Option<Ipv4Addr>,
    mld_querier_address: Option<Ipv6Addr>,
}

#[derive(Debug)]
pub struct Settings {
    pub ports: Vec<String>,
    pub xdp_mode: XdpMode,
    pub engine: Config,
    pub port_configs: Vec<PortConfig>,
    pub control_rate_limit: u32,
    pub mac_age: Duration,
    /// Where to serve metrics; None: not at all.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Count replicated streams in the fast path.
    pub count_streams: bool,
    /// Joins applied by the XDP program itself (fast join).
    pub fast_join: bool,
    /// The scheduler slice the daemon asks for; None: the kernel's.
    pub sched_slice: Option<Duration>,
    pub socket: PathBuf,
    /// None: pin nothing.
    pub pin_dir: Option<PathBuf>,
    pub keep_on_exit: bool,
}

/// Default cap on control frames per port per second: far above any real
/// membership churn, low enough that one flooding host cannot starve the rest.
const DEFAULT_CONTROL_RATE: u32 = 2000;
const DEFAULT_MAC_AGE: Duration = Duration::from_secs(300);
/// The kernel's slice: a longer one let a sender sharing the daemon's
/// cores preempt it at once (the join benchmark's p90 halved), but also
/// the hosts flooding it with reports, and it learned less of them (README
/// "Fast join"); an operator chooses.
const DEFAULT_SCHED_SLICE_MS: u64 = 0;

fn dur(key: &str, value: Option<&str>) -> anyhow::Result<Option<Duration>> {
    value
        .map(|v| parse_duration(v).map_err(|e| anyhow::anyhow!("{key}: {e}")))
        .transpose()
}

fn pick<T>(flag: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(file)
}

fn pick_list(flag: &[String], file: &[String]) -> Vec<String> {
    if flag.is_empty() { file } else { flag }.to_vec()
}

/// The flags and the config file they override; each `resolve_*` step
/// below reads its own keys from both.
struct Given<'a> {
    args: &'a RunArgs,
    file: &'a FileConfig,
}

/// The ports given a role by name (`--fast-leave IFACE`, ..).
struct Roles {
    fast_leave: Vec<String>,
    router_port: Vec<String>,
    guard_port: Vec<String>,
}

pub fn resolve(args: RunArgs) -> anyhow::Result<Settings> {
    let file = read_config(args.config.as_deref())?;
    let given = Given {
        args: &args,
        file: &file,
    };
    let ports = given.ports()?;
    let known: HashSet<&str> = ports.iter().map(String::as_str).collect();
    let roles = given.roles(&known)?;
    let port_vlans = port_vlans(&args.pvid, &args.vlans, &file.ports, &known)?;
    let engine = given.engine(&ports, &port_vlans)?;
    let max_groups = pick(args.max_groups_per_port, file.max_groups_per_port);
    let port_configs = port_configs(&ports, &roles, max_groups, &port_vlans);
    let xdp_mode = given.xdp_mode();
    let (pin_dir, keep_on_exit) = given.pinning()?;
    Ok(Settings {
        pin_dir,
        keep_on_exit,
        ports,
        xdp_mode,
        engine,
        port_configs,
        control_rate_limit: pick(args.control_rate_limit, file.control_rate_limit)
            .unwrap_or(DEFAULT_CONTROL_RATE),
        mac_age: pick(args.mac_age, dur("mac-age", file.mac_age.as_deref())?)
            .unwrap_or(DEFAULT_MAC_AGE),
        metrics_listen: pick(args.metrics_listen, file.metrics_listen),
        count_streams: pick(args.count_streams, file.count_streams).unwrap_or(true),
        fast_join: pick(args.fast_join, file.fast_join).unwrap_or(true),
        sched_slice: sched_slice(pick(args.sched_slice_ms, file.sched_slice_ms))?,
        socket: args
            .socket
            .socket
            .clone()
            .or_else(|| file.socket.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET)),
    })
}

/// `sched-slice-ms`: 0 keeps the kernel's slice; the flag's own range
/// (0-100, the kernel's bound) is checked here for the file's key.
fn sched_slice(ms: Option<u64>) -> anyhow::Result<Option<Duration>> {
    match ms.unwrap_or(DEFAULT_SCHED_SLICE_MS) {
        0 => Ok(None),
        ms @ 1..=100 => Ok(Some(Duration::from_millis(ms))),
        ms => bail!("sched-slice-ms: {ms} is past the kernel's 100 ms"),
    }
}

/// The config file at `path`; no path: every key unset.
fn read_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str::<FileConfig>(&text).map_err(|e| {
        anyhow::anyhow!(
            "config file {}: {}",
            path.display(),
            e.message().trim().replace('\n', ": ")
        )
    })
}

impl Given<'_> {
    /// The ports: at least one, each named once.
    fn ports(&self) -> anyhow::Result<Vec<String>> {
        let ports = pick_list(&self.args.port, &self.file.port);
        if ports.is_empty() {
            bail!(
                "no ports: give at least one --port IFACE (or `port = [...]` in the config file)"
            );
        }
        let mut seen = HashSet::new();
        for p in &ports {
            if !seen.insert(p.as_str()) {
                bail!("port {p:?} is given twice: name each port once");
            }
        }
        Ok(ports)
    }

    /// The role lists, each name checked to be a port.
    fn roles(&self, known: &HashSet<&str>) -> anyhow::Result<Roles> {
        let check = |flag: &str, names: Vec<String>| -> anyhow::Result<Vec<String>> {
            if let Some(n) = names.iter().find(|n| !known.contains(n.as_str())) {
                bail!("--{flag} {n}: {n:?} is not one of the --port interfaces");
            }
            Ok(names)
        };
        let (args, file) = (self.args, self.file);
        let fast_leave = pick_list(&args.fast_leave, &file.fast_leave);
        let router_port = pick_list(&args.router_port, &file.router_port);
        let guard_port = pick_list(&args.guard_port, &file.guard_port);
        Ok(Roles {
            fast_leave: check("fast-leave", fast_leave)?,
            router_port: check("router-port", router_port)?,
            guard_port: check("guard-port", guard_port)?,
        })
    }

    /// The engine's config, validated before any port is touched.
    fn engine(
        &self,
        ports: &[String],
        port_vlans: &BTreeMap<String, PortVlans>,
    ) -> anyhow::Result<Config> {
        let mut engine = Config::default();
        self.timers(&mut engine)?;
        self.versions(&mut engine)?;
        self.querier(&mut engine);
        self.limits(&mut engine)?;
        vlan_queriers(
            &self.args.vlan_querier_address,
            &self.file.vlans,
            &mut engine,
        )?;
        check_vlan_queriers(&engine, ports, port_vlans)?;
        if engine.querier && engine.querier_address.is_none() {
            engine.querier_address = Some(local_ipv4().ok_or_else(|| {
                anyhow::anyhow!(
                    "--querier needs a source address for its queries: give --querier-address A.B.C.D \
                     (this host has no IPv4 address to use instead)"
                )
            })?);
        }
        validate(&engine, ports.len())?;
        Ok(engine)
    }

    /// Robustness and the protocol timers.
    fn timers(&self, engine: &mut Config) -> anyhow::Result<()> {
        let (args, file) = (self.args, self.file);
        if let Some(v) = pick(args.robustness, file.robustness) {
            if !(1..=7).contains(&v) {
                bail!("robustness {v}: expected 1..7");
            }
            engine.robustness = v;
            engine.last_member_count = v;
        }
        if let Some(v) = pick(
            args.query_interval,
            dur("query-interval", file.query_interval.as_deref())?,
        ) {
            engine.query_interval = v;
        }
        match pick(
            args.query_response_interval,
            dur(
                "query-response-interval",
                file.query_response_interval.as_deref(),
            )?,
        ) {
            Some(v) => engine.query_response_interval = v,
            // RFC 3376 §8.3: the response interval must be less than the query
            // interval; when only a short query interval is given, fit the default.
            None if engine.query_response_interval >= engine.query_interval => {
                engine.query_response_interval = engine.query_interval / 2;
            }
            None => {}
        }
        if let Some(v) = pick(
            args.last_member_interval,
            dur("last-member-interval", file.last_member_interval.as_deref())?,
        ) {
            engine.last_member_interval = v;
        }
        if let Some(v) = pick(args.last_member_count, file.last_member_count) {
            engine.last_member_count = v;
        }
        Ok(())
    }

    /// The IGMP and MLD versions, and whether MLD is snooped at all.
    fn versions(&self, engine: &mut Config) -> anyhow::Result<()> {
        let (args, file) = (self.args, self.file);
        if let Some(v) = pick(args.igmp_version, file.igmp_version) {
            engine.igmp_version = match Version::try_from(v) {
                Ok(v @ (Version::V2 | Version::V3)) => v,
                _ => bail!("igmp-version {v}: expected 2 or 3"),
            };
        }
        engine.mld = !(args.no_mld || file.no_mld.unwrap_or(false));
        if let Some(v) = pick(args.mld_version, file.mld_version) {
            engine.mld_version = match Version::try_from(v) {
                Ok(v @ (Version::V1 | Version::V2)) => v,
                _ => bail!("mld-version {v}: expected 1 or 2"),
            };
        }
        Ok(())
    }

    /// Whether to query, and the addresses given for the queries.
    fn querier(&self, engine: &mut Config) {
        let (args, file) = (self.args, self.file);
        engine.mld_querier_address = pick(args.mld_querier_address, file.mld_querier_address);
        engine.querier = args.querier || file.querier.unwrap_or(false);
        engine.querier_address = pick(args.querier_address, file.querier_address);
    }

    /// Flooding of unregistered groups and the table limits.
    fn limits(&self, engine: &mut Config) -> anyhow::Result<()> {
        let (args, file) = (self.args, self.file);
        if let Some(v) = pick(args.flood_unregistered, file.flood_unregistered) {
            engine.flood_unregistered = v;
        }
        if let Some(v) = pick(args.max_groups, file.max_groups) {
            let cap = igmpsnoop_common::MAX_GROUPS as usize;
            if !(1..=cap).contains(&v) {
                bail!("--max-groups {v}: the fast path holds 1 to {cap} groups (the hard cap)");
            }
            engine.max_groups = v;
        }
        if let Some(v) = pick(args.max_sources_per_group, file.max_sources_per_group) {
            if !(1..=65535).contains(&v) {
                bail!("max-sources-per-group {v}: expected 1..=65535");
            }
            engine.max_sources_per_group = v as usize;
        }
        Ok(())
    }

    fn xdp_mode(&self) -> XdpMode {
        match pick(self.args.xdp_mode, self.file.xdp_mode).unwrap_or(XdpModeArg::Auto) {
            XdpModeArg::Auto => XdpMode::Auto,
            XdpModeArg::Native => XdpMode::Native,
            XdpModeArg::Generic => XdpMode::Generic,
        }
    }

    /// Where to pin (None: nothing), and whether to leave it pinned on exit.
    fn pinning(&self) -> anyhow::Result<(Option<PathBuf>, bool)> {
        let (args, file) = (self.args, self.file);
        let no_pin = args.no_pin || file.no_pin.unwrap_or(false);
        let keep_on_exit = args.keep_on_exit || file.keep_on_exit.unwrap_or(false);
        if no_pin && keep_on_exit {
            bail!("--keep-on-exit needs pinned state: drop --no-pin");
        }
        let pin_dir = (!no_pin).then(|| {
            args.pin_dir
                .pin_dir
                .clone()
                .or_else(|| file.pin_dir.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_PIN_DIR))
        });
        Ok((pin_dir, keep_on_exit))
    }
}

/// [`Config::validate`], its error naming the options behind it.
fn validate(engine: &Config, ports: usize) -> anyhow::Result<()> {
    engine.validate(ports).map_err(|e| {
        let hint = match e {
            ConfigError::ResponseInterval => format!(
                " (--query-response-interval {:?} vs --query-interval {:?})",
                engine.query_response_interval, engine.query_interval
            ),
            ConfigError::ResponseTooLong(_) => " (--query-response-interval or --last-member-interval is too long for the IGMP version)".into(),
            ConfigError::ZeroInterval => " (a DUR option is 0)".into(),
            ConfigError::ZeroCount => {
                " (--last-member-count, --robustness or --max-sources-per-group is 0)".into()
            }
            _ => String::new(),
        };
        anyhow::anyhow!("bad configuration: {e}{hint}")
    })
}

/// Each port's engine config: its roles, group limit and VLANs.
fn port_configs(
    ports: &[String],
    roles: &Roles,
    max_groups: Option<usize>,
    port_vlans: &BTreeMap<String, PortVlans>,
) -> Vec<PortConfig> {
    ports
        .iter()
        .map(|name| PortConfig {
            name: name.clone(),
            fast_leave: roles.fast_leave.contains(name),
            static_router: roles.router_port.contains(name),
            max_groups,
            guard: roles.guard_port.contains(name),
            vlans: port_vlans.get(name).cloned(),
        })
        .collect()
}

/// A VLAN ID as given for `what`, checked to be 1..=4094.
fn vid(what: &str, v: i64) -> anyhow::Result<u16> {
    match u16::try_from(v) {
        Ok(v) if (1..=MAX_VID).contains(&v) => Ok(v),
        _ => bail!("{what}: VLAN id {v} is outside 1..={MAX_VID}"),
    }
}

/// A VLAN ID of a flag's text.
fn vid_text(what: &str, text: &str) -> anyhow::Result<u16> {
    let v: i64 = text
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{what}: {text:?} is not a VLAN id (1..={MAX_VID})"))?;
    vid(what, v)
}

/// `IFACE=VALUE` of `--flag`, the interface checked to be a port.
fn port_value<'a>(
    flag: &str,
    given: &'a str,
    ports: &HashSet<&str>,
) -> anyhow::Result<(&'a str, &'a str)> {
    let Some((port, value)) = given.split_once('=') else {
        bail!("--{flag} {given}: expected IFACE=VALUE");
    };
    if !ports.contains(port) {
        bail!("--{flag} {given}: {port:?} is not one of the --port interfaces");
    }
    Ok((port, value))
}

/// Each port's VLANs: `[ports.NAME]` of the file, with `--pvid` and
/// `--vlans` overriding its keys. A port named nowhere is VLAN-unaware.
fn port_vlans(
    pvid_flags: &[String],
    vlans_flags: &[String],
    file: &BTreeMap<String, FilePort>,
    ports: &HashSet<&str>,
) -> anyhow::Result<BTreeMap<String, PortVlans>> {
    let mut given: BTreeMap<String, (Option<u16>, Option<BTreeSet<u16>>)> = BTreeMap::new();
    for (name, p) in file {
        if !ports.contains(name.as_str()) {
            bail!("[ports.{name}]: {name:?} is not one of the --port interfaces");
        }
        let what = format!("[ports.{name}]");
        let pvid = p.pvid.map(|v| vid(&what, v)).transpose()?;
        let vlans = p
            .vlans
            .as_ref()
            .map(|l| l.iter().map(|&v| vid(&what, v)).collect())
            .transpose()?;
        given.insert(name.clone(), (pvid, vlans));
    }
    for flag in pvid_flags {
        let (port, v) = port_value("pvid", flag, ports)?;
        let pvid = vid_text(&format!("--pvid {flag}"), v)?;
        given.entry(port.to_string()).or_default().0 = Some(pvid);
    }
    for flag in vlans_flags {
        let (port, list) = port_value("vlans", flag, ports)?;
        let what = format!("--vlans {flag}");
        let vlans = list
            .split(',')
            .map(|v| vid_text(&what, v))
            .collect::<anyhow::Result<_>>()?;
        given.entry(port.to_string()).or_default().1 = Some(vlans);
    }
    Ok(given
        .into_iter()
        .filter(|(_, (pvid, vlans))| pvid.is_some() || vlans.is_some())
        .map(|(name, (pvid, vlans))| (name, PortVlans::trunk(pvid, vlans.unwrap_or_default())))
        .collect())
}

/// The per-VLAN querier addresses: `[vlans.N]` of the file, then
/// `--vlan-querier-address VID=ADDR` (an IPv4 address for IGMP, an IPv6
/// one for MLD) overriding it.
fn vlan_queriers(
    flags: &[String],
    file: &BTreeMap<String, FileVlan>,
    engine: &mut Config,
) -> anyhow::Result<()> {
    for (key, v) in file {
        let vlan = vid_text(&format!("[vlans.{key}]"), key)?;
        if let Some(a) = v.querier_address {
            engine.vlan_querier_address.insert(vlan, a);
        }
        if let Some(a) = v.mld_querier_address {
            engine.vlan_mld_querier_address.insert(vlan, a);
        }
    }
    for flag in flags {
        let what = format!("--vlan-querier-address {flag}");
        let Some((vlan, addr)) = flag.split_once('=') else {
            bail!("{what}: expected VID=ADDR");
        };
        let vlan = vid_text(&what, vlan)?;
        match addr.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => {
                engine.vlan_querier_address.insert(vlan, a);
            }
            Ok(IpAddr::V6(a)) => {
                engine.vlan_mld_querier_address.insert(vlan, a);
            }
            Err(_) => bail!("{what}: {addr:?} is not an IPv4 or IPv6 address"),
        }
    }
    Ok(())
}

/// A VLAN with a querier address of its own must be one the switch snoops
/// (some port is configured for it): anywhere else the address would never
/// be used, which is surely not what was meant.
fn check_vlan_queriers(
    engine: &Config,
    ports: &[String],
    port_vlans: &BTreeMap<String, PortVlans>,
) -> anyhow::Result<()> {
    let configured: BTreeSet<u16> = ports
        .iter()
        .filter_map(|p| port_vlans.get(p))
        .flat_map(|v| v.vlans.iter().copied())
        .collect();
    let vlans = engine.vlan_querier_address.keys();
    match vlans
        .chain(engine.vlan_mld_querier_address.keys())
        .find(|v| !configured.contains(*v))
    {
        Some(v) => bail!(
            "VLAN {v} has a querier address of its own, but no port is configured for VLAN {v} (give a port `pvid` or `vlans` with it)"
        ),
        None => Ok(()),
    }
}

/// The first non-loopback IPv4 address of this host (its network namespace).
fn local_ipv4() -> Option<Ipv4Addr> {
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addrs` with a list we free below.
    if unsafe { libc::getifaddrs(&mut addrs) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cur = addrs;
    while !cur.is_null() {
        // SAFETY: cur is a node of the list getifaddrs returned; ifa_addr, when
        // not null and of family AF_INET, points at a sockaddr_in.
        unsafe {
            let addr = (*cur).ifa_addr;
            if !addr.is_null() && i32::from((*addr).sa_family) == libc::AF_INET {
                let sin = &*(addr as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() && !ip.is_unspecified() {
                    found = Some(ip);
                    break;
                }
            }
            cur = (*cur).ifa_next;
        }
    }
    // SAFETY: addrs came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(addrs) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config file the package ships (pkg/igmpsnoop.toml).
    const SHIPPED: &str = include_str!("../../../pkg/igmpsnoop.toml");

    fn resolve_text(text: &str) -> anyhow::Result<Settings> {
        let path = std::env::temp_dir().join(format!(
            "igmpsnoop-settings-test-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&path, text)?;
        let r = resolve(RunArgs {
            config: Some(path.clone()),
            ..RunArgs::default()
        });
        let _ = std::fs::remove_file(&path);
        r
    }

    #[test]
    fn the_shipped_config_attaches_nowhere() {
        let err = resolve_text(SHIPPED).unwrap_err().to_string();
        assert!(err.starts_with("no ports"), "{err}");
    }

    /// Every `#key = value` line of the shipped file, uncommented, parses,
    /// and the values it shows are the defaults (examples aside).
    #[test]
    fn the_shipped_config_shows_the_defaults() {
        let uncommented: String = SHIPPED
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| l.contains(" = ") && !l.starts_with(' '))
            .map(|l| l.split("  #").next().unwrap_or(l).to_string() + "\n")
            .collect();
        assert!(uncommented.lines().count() >= 20, "{uncommented}");
        let file = resolve_text(&uncommented).expect("the uncommented file resolves");
        let flags = resolve(RunArgs {
            port: vec!["eth1".into(), "eth2".into(), "eth3".into()],
            querier_address: Some(Ipv4Addr::new(192, 0, 2, 1)),
            mld_querier_address: Some("fe80::2".parse().unwrap()),
            max_groups_per_port: Some(1000),
            metrics_listen: Some("127.0.0.1:9717".parse().unwrap()),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(file.ports, flags.ports);
        assert_eq!(file.xdp_mode, flags.xdp_mode);
        assert_eq!(file.engine, flags.engine);
        assert_eq!(file.port_configs, flags.port_configs);
        assert_eq!(file.control_rate_limit, flags.control_rate_limit);
        assert_eq!(file.mac_age, flags.mac_age);
        assert_eq!(file.metrics_listen, flags.metrics_listen);
        assert_eq!(file.count_streams, flags.count_streams);
        assert_eq!(file.fast_join, flags.fast_join);
        assert_eq!(file.sched_slice, flags.sched_slice);
        assert_eq!(file.socket, flags.socket);
        assert_eq!(file.pin_dir, flags.pin_dir);
        assert_eq!(file.keep_on_exit, flags.keep_on_exit);
    }

    fn two_ports(f: impl FnOnce(&mut RunArgs)) -> anyhow::Result<Settings> {
        let mut args = RunArgs {
            port: vec!["p1".into(), "p2".into()],
            querier_address: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..RunArgs::default()
        };
        f(&mut args);
        resolve(args)
    }

    fn vlans_of(s: &Settings) -> Vec<Option<PortVlans>> {
        s.port_configs.iter().map(|p| p.vlans.clone()).collect()
    }

    #[test]
    fn port_vlans_from_the_file() {
        let s = resolve_text(
            "port = [\"p1\", \"p2\", \"p3\"]\n\
             [ports.p1]\npvid = 10\n\
             [ports.p2]\npvid = 10\nvlans = [10, 20]\n\
             [vlans.20]\nquerier-address = \"10.0.20.1\"\nmld-querier-address = \"fe80::20\"\n",
        )
        .unwrap();
        assert_eq!(
            vlans_of(&s),
            vec![
                Some(PortVlans::access(10)),
                Some(PortVlans::trunk(Some(10), [20])),
                None
            ]
        );
        assert_eq!(
            s.engine.vlan_querier_address,
            BTreeMap::from([(20, Ipv4Addr::new(10, 0, 20, 1))])
        );
        assert_eq!(
            s.engine.vlan_mld_querier_address,
            BTreeMap::from([(20, "fe80::20".parse().unwrap())])
        );
    }

    #[test]
    fn port_vlan_flags() {
        let s = two_ports(|a| {
            a.pvid = vec!["p1=10".into()];
            a.vlans = vec!["p2=20,30".into()];
            a.vlan_querier_address = vec!["30=10.0.30.1".into(), "20=fe80::1".into()];
        })
        .unwrap();
        // p1 alone: an access port; p2: a tagged-only trunk.
        assert_eq!(
            vlans_of(&s),
            vec![
                Some(PortVlans::access(10)),
                Some(PortVlans::trunk(None, [20, 30]))
            ]
        );
        assert_eq!(s.engine.vlan_querier_address.len(), 1);
        assert_eq!(s.engine.vlan_mld_querier_address.len(), 1);
        // No VLAN config at all: every port VLAN-unaware, as before.
        let plain = two_ports(|_| {}).unwrap();
        assert_eq!(vlans_of(&plain), vec![None, None]);
    }

    #[test]
    fn flags_override_the_files_port_vlans() {
        let path = std::env::temp_dir().join(format!(
            "igmpsnoop-settings-vlan-{}.toml",
            std::process::id()
        ));
        std::fs::write(&path, "[ports.p1]\npvid = 10\nvlans = [10, 20]\n").unwrap();
        let s = two_ports(|a| {
            a.config = Some(path.clone());
            a.pvid = vec!["p1=20".into()];
        });
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            vlans_of(&s.unwrap())[0],
            Some(PortVlans::trunk(Some(20), [10, 20]))
        );
    }

    /// Each bad setting is refused with a message naming what is wrong
    /// (main exits 78 on any of them: tests/tests/vlan.rs runs the binary).
    #[test]
    fn bad_vlan_settings_name_what_is_wrong() {
        let err = |f: fn(&mut RunArgs)| two_ports(f).unwrap_err().to_string();
        let e = err(|a| a.pvid = vec!["p1=5000".into()]);
        assert!(
            e.contains("--pvid p1=5000") && e.contains("5000 is outside 1..=4094"),
            "{e}"
        );
        let e = err(|a| a.vlans = vec!["p2=10,0".into()]);
        assert!(
            e.contains("--vlans p2=10,0") && e.contains("VLAN id 0"),
            "{e}"
        );
        let e = err(|a| a.vlans = vec!["p2=10,x".into()]);
        assert!(e.contains("\"x\" is not a VLAN id"), "{e}");
        let e = err(|a| a.pvid = vec!["eth9=10".into()]);
        assert!(
            e.contains("\"eth9\" is not one of the --port interfaces"),
            "{e}"
        );
        let e = err(|a| a.pvid = vec!["p1".into()]);
        assert!(e.contains("expected IFACE=VALUE"), "{e}");
        let e = err(|a| a.vlan_querier_address = vec!["10=10.0.0.1".into()]);
        assert!(
            e.contains("VLAN 10") && e.contains("no port is configured"),
            "{e}"
        );
        let e = err(|a| {
            a.pvid = vec!["p1=10".into()];
            a.vlan_querier_address = vec!["10=2001:db8::1".into()];
        });
        assert!(e.contains("2001:db8::1") && e.contains("link-local"), "{e}");
        let e = err(|a| a.vlan_querier_address = vec!["10=nope".into()]);
        assert!(e.contains("\"nope\" is not an IPv4 or IPv6 address"), "{e}");
        let e = resolve_text("port = [\"p1\"]\n[ports.p7]\npvid = 10\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[ports.p7]") && e.contains("\"p7\" is not one of"),
            "{e}"
        );
        let e = resolve_text("port = [\"p1\"]\n[ports.p1]\nvlans = [4095]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[ports.p1]") && e.contains("4095"), "{e}");
        let e = resolve_text("port = [\"p1\"]\n[ports.p1]\npvids = 10\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pvids"), "{e}");
        let e = resolve_text("port = [\"p1\"]\n[vlans.ten]\nquerier-address = \"10.0.0.1\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("[vlans.ten]"), "{e}");
    }

    /// The shipped file's VLAN example, uncommented, is a valid config.
    #[test]
    fn the_shipped_vlan_example_resolves() {
        let example: String = SHIPPED
            .lines()
            .skip_while(|l| *l != "# [ports.eth1]")
            .filter_map(|l| l.strip_prefix("# "))
            .map(|l| l.to_string() + "\n")
            .collect();
        let s = resolve_text(&format!("port = [\"eth1\", \"eth2\"]\n{example}")).unwrap();
        assert_eq!(
            vlans_of(&s),
            vec![
                Some(PortVlans::access(10)),
                Some(PortVlans::trunk(None, [10, 20]))
            ]
        );
        assert_eq!(s.engine.vlan_querier_address.len(), 1);
    }
}
