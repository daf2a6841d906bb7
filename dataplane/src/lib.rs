//! The igmpsnoop data plane: loads the XDP program onto the switch ports, owns
//! its maps and the AF_XDP sockets, and offers the control plane a small API:
//! set a group's ports (and a source's, for source filters), set router ports and flood policy, read counters and
//! the MAC table, receive control frames, send frames out of a port.
//!
//! Dropping the [`Dataplane`] detaches the program from every port and closes
//! every map and socket; with pinning ([`Options::pin_dir`]) and
//! [`Dataplane::keep_pinned`], the ports keep forwarding instead, for the
//! next daemon to adopt.
mod batch;
mod egress;
pub mod error;
mod fast_join;
pub mod forwarding;
pub mod iface;
mod mountns;
mod pin;
mod port_sets;
pub mod stats;
pub mod vlan;
pub mod xdp_features;
mod xdp_mode;
pub mod xsk;

use std::{
    collections::{HashMap as StdHashMap, HashSet},
    os::fd::RawFd,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, DevMapHash, HashMap, MapData, PerCpuArray, XskMap},
    programs::{
        SchedClassifier, TcAttachType, Xdp, XdpMode as AyaXdpMode,
        links::{FdLink, LinkOrder, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
        xdp::XdpLink,
    },
};
use igmpsnoop_common::{MAX_PORTS, MAX_QUEUES, PortConf, port_flags};
use tracing::{debug, info, warn};

pub use crate::{
    egress::{EgressEvent, EgressState, EgressWatch},
    error::{Error, Result},
    forwarding::{Addr, Adopted, Forwarding, PortMask},
    stats::{MacRow, PortCounters, Stats, StreamRow},
    vlan::PortVlans,
    xdp_mode::{AttachedMode, XdpMode},
    xsk::{XskSocket, XskStats},
};
use crate::{
    fast_join::FastJoins,
    pin::PinDir,
    xdp_mode::{Plan, PortFacts},
};

/// The XDP object built by build.rs from ebpf/xdp.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/igmpsnoop.bpf.o"));

/// One switch port.
#[derive(Clone, Debug)]
pub struct PortInfo {
    pub name: String,
    pub ifindex: u32,
    /// Bit in every PortMask.
    pub index: usize,
    pub mode: AttachedMode,
    pub queues: u32,
    pub mac: Option<[u8; 6]>,
}

/// A control frame received from a port.
pub struct Received<'a> {
    pub port: usize,
    pub frame: &'a [u8],
}

pub struct Dataplane {
    // Field order is drop order: the program and the links go first, so
    // nothing is attached once the maps and sockets close (unless pinned).
    _ebpf: Ebpf,
    /// Each port's XDP link (pinned too, when pinning).
    _links: Vec<FdLink>,
    /// Each port's TC ingress link (pinned too), or why there is none.
    _tc_links: std::result::Result<Vec<FdLink>, String>,
    pub forwarding: Forwarding,
    /// The program's reports of the entries it wrote (fast join).
    fast_joins: FastJoins,
    pub stats: Stats,
    ports: Vec<PortInfo>,
    egress: EgressWatch,
    /// Sockets per port, one per RX queue.
    sockets: Vec<Vec<XskSocket>>,
    _xsks: XskMap<MapData>,
    _port_map: HashMap<MapData, u32, PortConf>,
    pins: Option<PinDir>,
    /// Leave the pinned state in place when dropped (restart without loss).
    keep_pinned: bool,
}

/// Options of [`Dataplane::open_with`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Pin the program, its links and maps here (a bpffs, mounted if need
    /// be), adopting what an earlier run left pinned. None: nothing pinned,
    /// nothing survives the process.
    pub pin_dir: Option<PathBuf>,
    /// Groups the control plane may install: the group records are sized
    /// for them up front (growing a big table stalls the event loop).
    pub max_groups: usize,
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T> {
    let map = ebpf.take_map(name).ok_or(Error::MissingMap { name })?;
    T::try_from(map).map_err(|source| Error::Map { name, source })
}

fn take_raw(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map> {
    ebpf.take_map(name).ok_or(Error::MissingMap { name })
}

/// What removing pinned state found (`igmpsnoop detach`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removed {
    pub pins: usize,
}

impl Dataplane {
    /// Loads the program, opens an AF_XDP socket per port and queue, and
    /// attaches to every port; nothing is pinned. On any error nothing stays
    /// attached.
    pub fn open(port_names: &[String], mode: XdpMode) -> Result<Self> {
        Self::open_with(port_names, mode, &Options::default())
    }

    /// [`Dataplane::open`] with options. With a pin directory that holds an
    /// earlier run's state, that state is adopted without a gap in
    /// forwarding: the maps are reused as they are, and the new program
    /// replaces the old one on each port atomically (bpf_link_update). On an
    /// error, what this call pinned is removed again and adopted state is
    /// left as it was.
    pub fn open_with(port_names: &[String], mode: XdpMode, options: &Options) -> Result<Self> {
        if port_names.len() > MAX_PORTS as usize {
            return Err(Error::TooManyPorts {
                count: port_names.len(),
                max: MAX_PORTS,
            });
        }
        let mut seen = HashSet::new();
        let mut resolved = Vec::new();
        for name in port_names {
            if !seen.insert(name.as_str()) {
                return Err(Error::DuplicatePort { name: name.clone() });
            }
            resolved.push((name.clone(), iface::ifindex(name)?));
        }
        let pins = options.pin_dir.as_deref().map(PinDir::open).transpose()?;
        // Link pins this start created: removed again when it fails on
        // adopted state (a fresh directory is removed whole).
        let mut created_links = Vec::new();
        let capacity = options
            .max_groups
            .min(igmpsnoop_common::MAX_GROUPS as usize);
        match Self::build(&resolved, capacity, mode, pins.as_ref(), &mut created_links) {
            Ok(mut dp) => {
                dp.pins = pins;
                if let Some(p) = &dp.pins
                    && !p.existed()
                {
                    // Last: a directory with a meta holds a complete state.
                    // On an error, dropping `dp` removes what it pinned.
                    p.write_meta()?;
                }
                Ok(dp)
            }
            Err(e) => {
                if let Some(p) = &pins {
                    if p.existed() {
                        for path in &created_links {
                            let _ = std::fs::remove_file(path);
                        }
                    } else {
                        p.remove_all();
                    }
                }
                Err(e)
            }
        }
    }

    fn build(
        resolved: &[(String, u32)],
        capacity: usize,
        mode: XdpMode,
        pins: Option<&PinDir>,
        created_links: &mut Vec<PathBuf>,
    ) -> Result<Self> {
        let mut loader = EbpfLoader::new();
        if let Some(p) = pins {
            for name in igmpsnoop_common::MAP_NAMES {
                loader.map_pin_path(name, p.map_path(name));
            }
        }
        let adopting = pins.is_some_and(PinDir::existed);
        let mut ebpf = loader.load(PROGRAM)?;
        let mut port_map: HashMap<MapData, u32, PortConf> = take(&mut ebpf, "PORTS")?;
        let mut xsks: XskMap<MapData> = take(&mut ebpf, "XSKS")?;
        let ifindexes: Vec<u32> = resolved.iter().map(|(_, i)| *i).collect();

        // The previous run's ports: ifindex -> (index, flags).
        let old_ports: StdHashMap<u32, PortConf> = port_map.iter().filter_map(|e| e.ok()).collect();

        let program: &mut Xdp = ebpf
            .program_mut("igmpsnoop")
            .ok_or(Error::MissingMap {
                name: "igmpsnoop program",
            })?
            .try_into()?;
        program.load()?;
        let facts: Vec<PortFacts> = resolved
            .iter()
            .map(|(name, ifindex)| PortFacts::of(name, *ifindex))
            .collect();
        let plan = xdp_mode::plan(mode, &facts)?;
        let mut ports = Vec::new();
        let mut links = Vec::new();
        for (index, (name, ifindex)) in resolved.iter().enumerate() {
            let link_pin = pins.map(|p| p.link_path(*ifindex));
            let adopted_mode = old_ports.get(ifindex).map(|c| {
                if c.flags & port_flags::GENERIC != 0 {
                    AttachedMode::Generic
                } else {
                    AttachedMode::Native
                }
            });
            let mut released = false;
            let adopted_link = match (&link_pin, adopted_mode) {
                (Some(path), Some(old_mode)) if path.exists() => {
                    match replace_program(program, path) {
                        Ok(link) => {
                            if !mode.allows(old_mode) {
                                warn!(port = %name, mode = %old_mode, "keeping the adopted XDP mode; a clean stop is needed to change it");
                            }
                            info!(port = %name, ifindex, index, mode = %old_mode, "adopted: program replaced in place");
                            Some((old_mode, link))
                        }
                        Err(e) => {
                            warn!(port = %name, error = %e, "cannot adopt the pinned link; attaching anew");
                            let _ = std::fs::remove_file(path);
                            released = true;
                            None
                        }
                    }
                }
                _ => None,
            };
            let (attached, link) = match adopted_link {
                Some(adopted) => adopted,
                None => {
                    let released = released || pins.is_some_and(|p| p.released(*ifindex));
                    let (m, link) = attach_after(program, name, *ifindex, plan, released)?;
                    info!(port = %name, ifindex, index, mode = %m, "attached");
                    (m, link)
                }
            };
            let link = match link_pin {
                // Adopted: the pin is there already and now holds the new program.
                Some(path) if path.exists() => link,
                Some(path) => {
                    let pinned = link
                        .pin(&path)
                        .map_err(|e| error::pin_error(&path, "pin XDP link", e))?;
                    created_links.push(path);
                    FdLink::from(pinned)
                }
                None => link,
            };
            links.push(link);
            ports.push(PortInfo {
                name: name.clone(),
                ifindex: *ifindex,
                index,
                mode: attached,
                queues: iface::rx_queues(name),
                mac: iface::mac_address(name),
            });
        }
        if mode == XdpMode::Auto
            && let Some(reason) = xdp_mode::auto_reason(&facts)
        {
            info!("{reason}");
        }
        if let Some(p) = pins {
            // Ports of the earlier run that are not ports now: detach.
            for ifindex in p.pinned_links() {
                if !ifindexes.contains(&ifindex) {
                    info!(ifindex, "no longer a port: detaching");
                    let _ = std::fs::remove_file(p.link_path(ifindex));
                    let _ = std::fs::remove_file(p.tc_link_path(ifindex));
                }
            }
            let path = p.prog_path();
            let _ = std::fs::remove_file(&path);
            program
                .pin(&path)
                .map_err(|e| error::pin_error(&path, "pin program", e))?;
        }

        // The port table: exactly our ports now. Counters are per port index,
        // so they restart when indexes moved.
        let renumbered = resolved.iter().enumerate().any(|(index, (_, ifindex))| {
            old_ports
                .get(ifindex)
                .is_some_and(|c| c.index as usize != index)
        }) || old_ports.keys().any(|i| !ifindexes.contains(i));
        for ifindex in old_ports.keys() {
            if !ifindexes.contains(ifindex) {
                let _ = port_map.remove(ifindex);
            }
        }
        let maps = forwarding::Maps {
            groups: take_raw(&mut ebpf, "GROUPS")?,
            sources: take_raw(&mut ebpf, "SOURCES")?,
            groups6: take_raw(&mut ebpf, "GROUPS6")?,
            sources6: take_raw(&mut ebpf, "SOURCES6")?,
            port_sets: take_raw(&mut ebpf, "PORT_SETS")?,
            masks: take(&mut ebpf, "MASKS")?,
            flood: take::<DevMapHash<MapData>>(&mut ebpf, "FLOOD")?,
            flood_sets: take(&mut ebpf, "FLOOD_SETS")?,
            router_sets: take(&mut ebpf, "ROUTER_SETS")?,
            port_vlans: take(&mut ebpf, "PORT_VLANS")?,
            config: take::<Array<MapData, _>>(&mut ebpf, "CONFIG")?,
            slots: take::<HashMap<MapData, _, _>>(&mut ebpf, "SLOTS")?,
        };
        let fast_joins = FastJoins::new(take_raw(&mut ebpf, "FAST_JOINS")?)?;
        // Adopts the VLAN config of the ports that kept their index.
        let forwarding = Forwarding::open(capacity, maps, ifindexes.clone())?;
        for (index, port) in ports.iter().enumerate() {
            write_port_conf(&mut port_map, port, index, forwarding.port_vlans(index))?;
        }
        let tc_links = attach_tc(&mut ebpf, &ports, pins, created_links);
        if tc_links.is_ok() {
            tags_in_bytes(&ports);
        }
        let mut stats = Stats::new(
            take::<PerCpuArray<MapData, u64>>(&mut ebpf, "COUNTERS")?,
            take(&mut ebpf, "MACS")?,
            take(&mut ebpf, "STREAMS")?,
            take(&mut ebpf, "STREAMS6")?,
        );
        if adopting {
            if renumbered {
                stats.clear_counters()?;
            }
            stats.retain_macs(|ifindex| ifindexes.contains(&ifindex));
        }

        // Sockets last: a control frame arriving before its socket is
        // registered is counted (drop_no_socket).
        let mut sockets = Vec::new();
        for (index, port) in ports.iter().enumerate() {
            let mut port_sockets = Vec::new();
            for queue in 0..port.queues {
                let socket = XskSocket::open(&port.name, port.ifindex, queue)?;
                xsks.set(index as u32 * MAX_QUEUES + queue, socket.fd(), 0)
                    .map_err(|source| Error::Map {
                        name: "XSKS",
                        source,
                    })?;
                port_sockets.push(socket);
            }
            sockets.push(port_sockets);
        }

        Ok(Self {
            _ebpf: ebpf,
            _links: links,
            _tc_links: tc_links,
            forwarding,
            fast_joins,
            stats,
            egress: EgressWatch::new(&ports),
            ports,
            sockets,
            _xsks: xsks,
            _port_map: port_map,
            pins: None,
            keep_pinned: false,
        })
    }

    /// Removes the state pinned at `dir` by a daemon that is gone (`kill -9`,
    /// or `--keep-on-exit`): forwarding through it stops. None when nothing
    /// of ours is pinned there.
    pub fn remove_pinned(dir: &Path) -> Result<Option<Removed>> {
        Ok(PinDir::open_existing(dir)?.map(|p| Removed {
            pins: p.remove_all(),
        }))
    }

    /// What this switch adopted from pinned state, if it did.
    pub fn adopted(&self) -> Option<Adopted> {
        self.pins
            .as_ref()
            .is_some_and(PinDir::existed)
            .then(|| self.forwarding.adopted())
    }

    /// Where the state is pinned, if it is (named in the outermost mount
    /// namespace, where it outlives the daemon).
    pub fn pin_dir(&self) -> Option<&Path> {
        self.pins.as_ref().map(PinDir::name)
    }

    /// Keep (true) or remove (false, the default) the pinned state when this
    /// data plane is dropped. Kept, the ports go on forwarding with the last
    /// state until a new daemon adopts it or `igmpsnoop detach` removes it.
    pub fn keep_pinned(&mut self, keep: bool) {
        self.keep_pinned = keep;
    }

    pub fn ports(&self) -> &[PortInfo] {
        &self.ports
    }

    /// What the kernel now does with frames sent out of the ports; returns
    /// the changes to tell the operator (each once).
    pub fn check_egress(&mut self) -> Vec<EgressEvent> {
        self.egress.check(&self.ports)
    }

    /// One port's egress figures as of the last [`Dataplane::check_egress`].
    pub fn egress(&self, port: usize) -> EgressState {
        self.egress.state(port)
    }

    pub fn port_by_name(&self, name: &str) -> Option<&PortInfo> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// Descriptors to poll for readable control frames.
    pub fn poll_fds(&self) -> Vec<RawFd> {
        self.sockets.iter().flatten().map(|s| s.fd()).collect()
    }

    /// Readable when the program applied a join itself (fast join) and the
    /// daemon has not drained the report yet.
    pub fn fast_join_fd(&self) -> RawFd {
        self.fast_joins.fd()
    }

    /// Takes the program's reports of the group entries it wrote (fast
    /// join) and marks each for rewriting by the next flush, with what the
    /// control plane wants ([`Forwarding::touch`]); returns how many.
    /// Never blocks. Call it before handling frames and flushing.
    pub fn drain_fast_joins(&mut self) -> usize {
        self.fast_joins.drain(&mut self.forwarding)
    }

    /// Hands every waiting control frame to `f`; never blocks.
    pub fn receive(&mut self, mut f: impl FnMut(Received<'_>)) -> usize {
        let mut n = 0;
        for (port, sockets) in self.sockets.iter_mut().enumerate() {
            for socket in sockets {
                n += socket.receive(|frame| f(Received { port, frame }));
            }
        }
        n
    }

    /// The AF_XDP sockets' drop counters of one port, summed over its queues.
    pub fn socket_stats(&self, port: usize) -> XskStats {
        let mut total = XskStats::default();
        for socket in self.sockets.get(port).into_iter().flatten() {
            total.add(&socket.statistics());
        }
        total
    }

    /// Sets one port's VLAN membership (None: VLAN-unaware), at start and
    /// on reload: the fast path enforces it at once (frames of VLANs the
    /// port does not carry are dropped and counted, `drop_vlan`), every set
    /// is recomputed for it, and the MACs learned on the port are
    /// forgotten (they were learned in its old VLANs). A bad config (a VID
    /// outside 1..=4094) is refused and changes nothing.
    pub fn set_port_vlans(&mut self, port: usize, vlans: Option<PortVlans>) -> Result<()> {
        let info = self.ports.get(port).ok_or(Error::NoSuchPort(port))?.clone();
        let vlans = vlans.map(|v| vlan::checked(&info.name, v)).transpose()?;
        if vlans.is_some()
            && let Err(reason) = &self._tc_links
        {
            return Err(Error::NoTc {
                port: info.name.clone(),
                reason: reason.clone(),
            });
        }
        write_port_conf(&mut self._port_map, &info, port, vlans.as_ref())?;
        self.forwarding.set_port_vlans(port, vlans)?;
        self.stats.retain_macs(|ifindex| ifindex != info.ifindex);
        Ok(())
    }

    /// Sends one frame out of a port (through its first queue's socket), in
    /// the port's format for the frame's VLAN (its 802.1Q tag, or VLAN 0
    /// when untagged): the tag removed when that VLAN leaves the port
    /// untagged, kept otherwise. A port that does not carry the VLAN is
    /// not sent to (Ok, logged at debug level).
    pub fn send(&mut self, port: usize, frame: &[u8]) -> Result<()> {
        let config = self.forwarding.port_vlans(port).cloned();
        let socket = self
            .sockets
            .get_mut(port)
            .and_then(|s| s.first_mut())
            .ok_or(Error::NoSuchPort(port))?;
        let (vid, tagged) = vlan::frame_vlan(frame);
        if !vlan::carries(config.as_ref(), vid) {
            debug!(
                port,
                vlan = vid,
                "not sent: the port does not carry the VLAN"
            );
            return Ok(());
        }
        if tagged && vlan::untagged(config.as_ref(), vid) {
            socket.send(&vlan::untag(frame))
        } else {
            socket.send(frame)
        }
    }
}

/// Writes a port's PORTS entry: its index, mode and VLAN config.
fn write_port_conf(
    port_map: &mut HashMap<MapData, u32, PortConf>,
    port: &PortInfo,
    index: usize,
    vlans: Option<&PortVlans>,
) -> Result<()> {
    let mut flags = match port.mode {
        AttachedMode::Generic => port_flags::GENERIC,
        AttachedMode::Native => 0,
    };
    if vlans.is_some() {
        flags |= port_flags::VLANS;
    }
    let conf = PortConf {
        index: index as u32,
        flags,
        pvid: vlans.and_then(|v| v.pvid).unwrap_or(0),
        _pad: 0,
    };
    port_map
        .insert(port.ifindex, conf, 0)
        .map_err(|source| Error::Map {
            name: "PORTS",
            source,
        })
}

/// Loads the TC ingress program and attaches it to every port as a TCX
/// link, pinned next to the XDP link so that it outlives a crash and is
/// replaced in place (bpf_link_update) by the next daemon, like the XDP
/// program; removing the pin (a clean stop, `igmpsnoop detach`) detaches
/// it. Without TCX (kernel before 6.6) the switch runs without it, and
/// VLAN config is refused (`Error::NoTc`): nothing else needs it.
fn attach_tc(
    ebpf: &mut Ebpf,
    ports: &[PortInfo],
    pins: Option<&PinDir>,
    created_links: &mut Vec<PathBuf>,
) -> std::result::Result<Vec<FdLink>, String> {
    let attached = (|| -> Result<Vec<FdLink>> {
        let program: &mut SchedClassifier = ebpf
            .program_mut("igmpsnoop_tc")
            .ok_or(Error::MissingMap {
                name: "igmpsnoop_tc program",
            })?
            .try_into()?;
        program.load()?;
        let mut links = Vec::new();
        for port in ports {
            let pin = pins.map(|p| p.tc_link_path(port.ifindex));
            let link = attach_tc_port(program, port, pin.as_deref(), created_links)?;
            links.push(link);
        }
        Ok(links)
    })();
    attached.map_err(|e| {
        warn!(error = %e, "no TC ingress program: VLAN config cannot be applied");
        e.to_string()
    })
}

/// Turns TX VLAN offload off on every port: the TC program tags its copies
/// in skb metadata, and the tag must leave in the frame's bytes for an XDP
/// program on the other end of a link (a neighbour igmpsnoop on a VLAN
/// trunk) to see it. Left off on exit: it costs nothing to frames XDP
/// redirects (they carry their tags in their bytes already), only a
/// software insert per tagged TC copy.
fn tags_in_bytes(ports: &[PortInfo]) {
    for port in ports {
        match iface::tx_vlan_offload_off(&port.name) {
            Ok(true) => debug!(port = %port.name, "TX VLAN offload turned off"),
            Ok(false) => {}
            Err(e) => warn!(
                port = %port.name,
                error = %e,
                "cannot turn TX VLAN offload off: tagged copies the TC program sends from it \
                 may carry their tag in skb metadata, which an XDP program on the other end of \
                 a veth does not see"
            ),
        }
    }
}

fn attach_tc_port(
    program: &mut SchedClassifier,
    port: &PortInfo,
    pin: Option<&Path>,
    created_links: &mut Vec<PathBuf>,
) -> Result<FdLink> {
    if let Some(path) = pin
        && path.exists()
    {
        let replaced = PinnedLink::from_pin(path)
            .map_err(|e| error::pin_error(path, "open pinned TC link", e))
            .and_then(|pinned| {
                let link = SchedClassifierLink::try_from(FdLink::from(pinned))
                    .map_err(|e| error::pin_error(path, "not a TC link", e))?;
                let id = program.attach_to_link(link)?;
                let link = program.take_link(id)?;
                FdLink::try_from(link).map_err(|e| error::pin_error(path, "TC link", e))
            });
        match replaced {
            Ok(link) => return Ok(link),
            Err(e) => {
                warn!(port = %port.name, error = %e, "cannot adopt the pinned TC link; attaching anew");
                let _ = std::fs::remove_file(path);
            }
        }
    }
    let id = program.attach_with_options(
        &port.name,
        TcAttachType::Ingress,
        TcAttachOptions::TcxOrder(LinkOrder::default()),
    )?;
    let link = FdLink::try_from(program.take_link(id)?).map_err(|e| Error::Attach {
        name: port.name.clone(),
        mode: "tcx",
        reason: e.to_string(),
        errno: None,
    })?;
    match pin {
        Some(path) => {
            let pinned = link
                .pin(path)
                .map_err(|e| error::pin_error(path, "pin TC link", e))?;
            created_links.push(path.to_path_buf());
            Ok(FdLink::from(pinned))
        }
        None => Ok(link),
    }
}

impl Drop for Dataplane {
    /// Unless told to keep it, removes the pinned state: once the fields
    /// drop right after, nothing of the switch is left in the kernel.
    fn drop(&mut self) {
        if let Some(p) = &self.pins
            && !self.keep_pinned
        {
            let removed = p.remove_all();
            debug!(dir = %p.name().display(), removed, "pinned state removed");
        }
    }
}

/// Attaches the program to a port and takes its link out of the program's
/// keeping (so that it can be pinned, or dropped to detach).
fn attach(
    program: &mut Xdp,
    name: &str,
    ifindex: u32,
    plan: Plan,
) -> Result<(AttachedMode, FdLink)> {
    let try_mode = |program: &mut Xdp, m: AttachedMode| {
        let (aya_mode, label) = match m {
            AttachedMode::Native => (AyaXdpMode::Driver, "native"),
            AttachedMode::Generic => (AyaXdpMode::Skb, "generic"),
        };
        program
            .attach_to_if_index(ifindex, aya_mode)
            .map(|id| (m, id))
            .map_err(|source| error::attach_error(name, label, &source))
    };
    let (attached, id) = match plan {
        Plan::Native => try_mode(program, AttachedMode::Native)?,
        Plan::Generic => try_mode(program, AttachedMode::Generic)?,
        Plan::NativeOrGeneric => match try_mode(program, AttachedMode::Native) {
            Ok(m) => m,
            // Busy means another program owns the port: falling back would not help.
            Err(e) if is_busy(&e) => return Err(e),
            Err(e) => {
                debug!(port = %name, error = %e, "native XDP unavailable, using generic");
                try_mode(program, AttachedMode::Generic)?
            }
        },
    };
    let link = program.take_link(id)?;
    // A bpf_link (every kernel since 5.9); the netlink fallback has no fd.
    let link = FdLink::try_from(link).map_err(|e| Error::Attach {
        name: name.to_string(),
        mode: "link",
        reason: format!("the kernel attached XDP without a bpf_link ({e})"),
        errno: None,
    })?;
    Ok((attached, link))
}

/// How long a port whose old link pin this start removed may stay busy:
/// removing a link's last pin detaches its program from a kernel workqueue
/// (bpf_link_put defers it), which a busy box runs late.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// [`attach`]; when `released` (the port's old link was unpinned by this
/// start), a port still busy is tried again until RELEASE_WAIT is over.
fn attach_after(
    program: &mut Xdp,
    name: &str,
    ifindex: u32,
    plan: Plan,
    released: bool,
) -> Result<(AttachedMode, FdLink)> {
    let deadline = std::time::Instant::now() + RELEASE_WAIT;
    loop {
        match attach(program, name, ifindex, plan) {
            Err(e) if released && is_busy(&e) && std::time::Instant::now() < deadline => {
                debug!(port = %name, "old program not detached yet; trying again");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// Puts the new program into the pinned link of a port, atomically: the
/// port never runs without one.
fn replace_program(program: &mut Xdp, pin: &Path) -> Result<FdLink> {
    let pinned =
        PinnedLink::from_pin(pin).map_err(|e| error::pin_error(pin, "open pinned link", e))?;
    let link = XdpLink::try_from(FdLink::from(pinned))
        .map_err(|e| error::pin_error(pin, "not an XDP link", e))?;
    let id = program.attach_to_link(link)?;
    let link = program.take_link(id)?;
    FdLink::try_from(link).map_err(|e| error::pin_error(pin, "link", e))
}

fn is_busy(e: &Error) -> bool {
    matches!(
        e,
        Error::Attach {
            errno: Some(libc::EBUSY | libc::EEXIST),
            ..
        }
    )
}
