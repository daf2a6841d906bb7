//! The igmpsnoop data plane: loads the XDP program onto the switch ports, owns
//! its maps and the AF_XDP sockets, and offers the control plane a small API:
//! set a group's ports (and a source's, for source filters), set router ports and flood policy, read counters and
//! the MAC table, receive control frames, send frames out of a port.
//!
//! Dropping the [`Dataplane`] detaches the program from every port and closes
//! every map and socket; with pinning ([`Options::pin_dir`]) and
//! [`Dataplane::keep_pinned`], the ports keep forwarding instead, for the
//! next daemon to adopt.
mod attach;
mod batch;
mod build;
mod egress;
pub mod error;
mod fast_join;
pub mod forwarding;
pub mod iface;
pub mod leave_hosts;
mod mountns;
mod pin;
mod port_sets;
pub mod stats;
mod tc;
pub mod vlan;
pub mod xdp_features;
mod xdp_mode;
pub mod xsk;

use std::{
    collections::HashSet,
    os::fd::RawFd,
    path::{Path, PathBuf},
    time::Instant,
};

use aya::{
    Ebpf,
    maps::{HashMap, MapData, XskMap},
    programs::links::FdLink,
};
use igmpsnoop_common::{MAX_PORTS, PortConf, port_flags};
use tracing::debug;

pub use crate::fast_join::Drained;
pub use crate::{
    egress::{EgressEvent, EgressState, EgressWatch},
    error::{Error, Result},
    forwarding::{Addr, Adopted, Forwarding, PortMask},
    stats::{MacRow, PortCounters, Stats, StreamRow},
    vlan::PortVlans,
    xdp_mode::{AttachedMode, XdpMode},
    xsk::{XskSocket, XskStats},
};
use crate::{fast_join::FastJoins, leave_hosts::LeaveHosts, pin::PinDir};

/// The XDP object built by build.rs from ebpf/xdp.
pub(crate) static PROGRAM: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/igmpsnoop.bpf.o"));

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
    /// The program's reports of the entries it wrote (fast join and
    /// fast leave).
    fast_joins: FastJoins,
    /// Who may leave a group in the program (fast leave): the control
    /// plane keeps it in step with its engine around each flush.
    pub leave_hosts: LeaveHosts,
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
#[derive(Clone, Debug)]
pub struct Options {
    /// Pin the program, its links and maps here (a bpffs, mounted if need
    /// be), adopting what an earlier run left pinned. None: nothing pinned,
    /// nothing survives the process.
    pub pin_dir: Option<PathBuf>,
    /// Groups the control plane may install, per family: the kernel's
    /// group maps (GROUPS, GROUPS6) are created with this many entries and
    /// the group records are sized for them up front (growing a big table
    /// stalls the event loop). 1..=[`igmpsnoop_common::MAX_GROUPS`].
    pub max_groups: usize,
    /// The control plane's settings, in force from the first frame switched.
    pub initial: Initial,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            pin_dir: None,
            max_groups: igmpsnoop_common::DEFAULT_MAX_GROUPS as usize,
            initial: Initial::default(),
        }
    }
}

/// What the fast path applies before any port is switched (before the
/// PORTS entries that make the program take a port's frames are written),
/// so that no frame is forwarded under the defaults in the moment between
/// attaching and the control plane's first writes: MLD flooded to every
/// host, unregistered groups flooded with flooding off, or a port's VLANs
/// not yet enforced.
#[derive(Clone, Debug)]
pub struct Initial {
    /// Unregistered multicast flooded (the default) or sent to router ports.
    pub flood_unregistered: bool,
    /// IPv6 snooped (MLD to the control plane); the default floods IPv6.
    pub snoop_ipv6: bool,
    /// Each port's VLAN config by port index (missing: VLAN-unaware).
    pub port_vlans: Vec<Option<PortVlans>>,
}

impl Default for Initial {
    fn default() -> Self {
        Initial {
            flood_unregistered: true,
            snoop_ipv6: false,
            port_vlans: Vec::new(),
        }
    }
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
        let capacity = group_capacity(options.max_groups)?;
        let pins = options.pin_dir.as_deref().map(PinDir::open).transpose()?;
        if let Some(p) = pins.as_ref().filter(|p| p.existed()) {
            // Before anything is loaded: refused state is left as it was.
            p.check_group_maps(capacity)?;
        }
        // Link pins this start created: removed again when it fails on
        // adopted state (a fresh directory is removed whole).
        let mut created_links = Vec::new();
        match Self::build(
            &resolved,
            capacity,
            mode,
            pins.as_ref(),
            &mut created_links,
            &options.initial,
        ) {
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

    /// Descriptors to wait on for readable control frames.
    pub fn wait_fds(&self) -> Vec<RawFd> {
        self.sockets.iter().flatten().map(|s| s.fd()).collect()
    }

    /// Kicks every socket's transmit path that still has frames queued
    /// (without a system call for the others). Call it before waiting.
    pub fn kick_tx(&mut self) {
        self.sockets
            .iter_mut()
            .flatten()
            .for_each(|s| s.kick_pending());
    }

    /// Takes the program's reports of the group entries it wrote (fast
    /// join); each is marked for rewriting by the next flush, with what the
    /// control plane wants ([`Forwarding::touch`]), once
    /// a grace of 50 ms (the report reaches the engine first; see
    /// `fast_join::GRACE`).
    /// Returns how many reports of each kind were taken. Never blocks.
    /// Call it before handling frames and flushing, and again by
    /// [`Self::fast_join_due`].
    pub fn drain_fast_joins(&mut self) -> Drained {
        self.fast_joins.drain(&mut self.forwarding, Instant::now())
    }

    /// When the next fast-joined entry is due for its rewrite, if any.
    pub fn fast_join_due(&self) -> Option<Instant> {
        self.fast_joins.next_due()
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
        let vlans = vlans
            .map(|v| usable_vlans(&info.name, v, &self._tc_links))
            .transpose()?;
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

/// The size of the group maps for `max_groups`, if the fast path can hold it.
fn group_capacity(max_groups: usize) -> Result<u32> {
    let max = igmpsnoop_common::MAX_GROUPS;
    match u32::try_from(max_groups) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(Error::MaxGroups {
            asked: max_groups,
            max,
        }),
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

/// A port's VLAN config, checked, if this switch can apply it: its MIXED
/// sets need the TC program, so without it (`tc_links` says why) none is.
pub(crate) fn usable_vlans(
    port: &str,
    vlans: PortVlans,
    tc_links: &std::result::Result<Vec<FdLink>, String>,
) -> Result<PortVlans> {
    if let Err(reason) = tc_links {
        return Err(Error::NoTc {
            port: port.to_string(),
            reason: reason.clone(),
        });
    }
    vlan::checked(port, vlans)
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
