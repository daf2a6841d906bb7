//! The igmpsnoop data plane: loads the XDP program onto the switch ports, owns
//! its maps and the AF_XDP sockets, and offers the control plane a small API:
//! set a group's ports, set router ports and flood policy, read counters and
//! the MAC table, receive control frames, send frames out of a port.
//!
//! Dropping the [`Dataplane`] detaches the program from every port and closes
//! every map and socket.
mod batch;
pub mod error;
pub mod forwarding;
pub mod iface;
pub mod stats;
pub mod xsk;

use std::{
    collections::HashSet,
    fmt,
    os::fd::{AsFd as _, AsRawFd as _, RawFd},
    str::FromStr,
};

use aya::{
    Ebpf,
    maps::{Array, DevMapHash, HashMap, HashOfMaps, MapData, PerCpuArray, XskMap},
    programs::{Xdp, XdpMode as AyaXdpMode},
};
use igmpsnoop_common::{MAX_PORTS, MAX_QUEUES, PortConf};
use tracing::{debug, info};

pub use crate::{
    error::{Error, Result},
    forwarding::{Forwarding, PortMask},
    stats::{MacRow, PortCounters, Stats},
    xsk::{XskSocket, XskStats},
};

/// The XDP object built by build.rs from ebpf/xdp.
static PROGRAM: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/igmpsnoop.bpf.o"));

/// How to attach the XDP program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native where the driver supports it, generic otherwise.
    #[default]
    Auto,
    Native,
    Generic,
}

impl FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "native" | "drv" => Ok(Self::Native),
            "generic" | "skb" => Ok(Self::Generic),
            other => Err(format!(
                "unknown XDP mode {other:?} (expected auto, native or generic)"
            )),
        }
    }
}

/// The mode a port's program actually runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachedMode {
    Native,
    Generic,
}

impl fmt::Display for AttachedMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

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
    // Field order is drop order: the program (and its links) goes first, so
    // nothing is attached once the maps and sockets close.
    _ebpf: Ebpf,
    pub forwarding: Forwarding,
    pub stats: Stats,
    ports: Vec<PortInfo>,
    /// Sockets per port, one per RX queue.
    sockets: Vec<Vec<XskSocket>>,
    _xsks: XskMap<MapData>,
    _port_map: HashMap<MapData, u32, PortConf>,
}

fn take<T: TryFrom<aya::maps::Map, Error = aya::maps::MapError>>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<T> {
    let map = ebpf.take_map(name).ok_or(Error::MissingMap { name })?;
    T::try_from(map).map_err(|source| Error::Map { name, source })
}

impl Dataplane {
    /// Loads the program, opens an AF_XDP socket per port and queue, and
    /// attaches to every port. On any error nothing stays attached.
    pub fn open(port_names: &[String], mode: XdpMode) -> Result<Self> {
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

        let mut ebpf = Ebpf::load(PROGRAM)?;
        let mut port_map: HashMap<MapData, u32, PortConf> = take(&mut ebpf, "PORTS")?;
        let mut xsks: XskMap<MapData> = take(&mut ebpf, "XSKS")?;
        let ifindexes: Vec<u32> = resolved.iter().map(|(_, i)| *i).collect();
        let groups_map = ebpf
            .take_map("GROUPS")
            .ok_or(Error::MissingMap { name: "GROUPS" })?;
        let groups_fd = match &groups_map {
            aya::maps::Map::HashOfMaps(data) => data.fd().as_fd().as_raw_fd(),
            _ => {
                return Err(Error::MissingMap {
                    name: "GROUPS (as a hash of maps)",
                });
            }
        };
        let forwarding = Forwarding::new(
            HashOfMaps::<MapData, _, MapData>::try_from(groups_map).map_err(|source| {
                Error::Map {
                    name: "GROUPS",
                    source,
                }
            })?,
            take(&mut ebpf, "GROUP_INFO")?,
            take::<DevMapHash<MapData>>(&mut ebpf, "FLOOD")?,
            take::<DevMapHash<MapData>>(&mut ebpf, "ROUTERS")?,
            take::<Array<MapData, _>>(&mut ebpf, "CONFIG")?,
            groups_fd,
            ifindexes,
        )?;
        let stats = Stats::new(
            take::<PerCpuArray<MapData, u64>>(&mut ebpf, "COUNTERS")?,
            take(&mut ebpf, "MACS")?,
        );

        let program: &mut Xdp = ebpf
            .program_mut("igmpsnoop")
            .ok_or(Error::MissingMap {
                name: "igmpsnoop program",
            })?
            .try_into()?;
        program.load()?;
        let mut ports = Vec::new();
        for (index, (name, ifindex)) in resolved.iter().enumerate() {
            let attached = attach(program, name, *ifindex, mode)?;
            info!(port = %name, ifindex, index, mode = %attached, "attached");
            ports.push(PortInfo {
                name: name.clone(),
                ifindex: *ifindex,
                index,
                mode: attached,
                queues: iface::rx_queues(name),
                mac: iface::mac_address(name),
            });
        }
        // Attaching first means a port that is already taken fails with a clear
        // error before anything else is touched. A control frame arriving in the
        // moment before its socket is registered is counted (drop_no_socket).
        let mut sockets = Vec::new();
        for (index, (name, ifindex)) in resolved.iter().enumerate() {
            port_map
                .insert(
                    ifindex,
                    PortConf {
                        index: index as u32,
                        flags: 0,
                    },
                    0,
                )
                .map_err(|source| Error::Map {
                    name: "PORTS",
                    source,
                })?;
            let mut port_sockets = Vec::new();
            for queue in 0..iface::rx_queues(name) {
                let socket = XskSocket::open(name, *ifindex, queue)?;
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
            forwarding,
            stats,
            ports,
            sockets,
            _xsks: xsks,
            _port_map: port_map,
        })
    }

    pub fn ports(&self) -> &[PortInfo] {
        &self.ports
    }

    pub fn port_by_name(&self, name: &str) -> Option<&PortInfo> {
        self.ports.iter().find(|p| p.name == name)
    }

    /// Descriptors to poll for readable control frames.
    pub fn poll_fds(&self) -> Vec<RawFd> {
        self.sockets.iter().flatten().map(|s| s.fd()).collect()
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

    /// Sends one frame out of a port (through its first queue's socket).
    pub fn send(&mut self, port: usize, frame: &[u8]) -> Result<()> {
        let socket = self
            .sockets
            .get_mut(port)
            .and_then(|s| s.first_mut())
            .ok_or(Error::NoSuchPort(port))?;
        socket.send(frame)
    }
}

fn attach(program: &mut Xdp, name: &str, ifindex: u32, mode: XdpMode) -> Result<AttachedMode> {
    let try_mode = |program: &mut Xdp, m: AttachedMode| {
        let aya_mode = match m {
            AttachedMode::Native => AyaXdpMode::Driver,
            AttachedMode::Generic => AyaXdpMode::Skb,
        };
        let label = match m {
            AttachedMode::Native => "native",
            AttachedMode::Generic => "generic",
        };
        program
            .attach_to_if_index(ifindex, aya_mode)
            .map(|_| m)
            .map_err(|source| error::attach_error(name, label, &source))
    };
    match mode {
        XdpMode::Native => try_mode(program, AttachedMode::Native),
        XdpMode::Generic => try_mode(program, AttachedMode::Generic),
        XdpMode::Auto => match try_mode(program, AttachedMode::Native) {
            Ok(m) => Ok(m),
            // Busy means another program owns the port: falling back would not help.
            Err(e) if is_busy(&e) => Err(e),
            Err(e) => {
                debug!(port = %name, error = %e, "native XDP unavailable, using generic");
                try_mode(program, AttachedMode::Generic)
            }
        },
    }
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
