//! Attaching the XDP program to a port: adopting the link an earlier run
//! pinned (the new program replaces the old one in place), or attaching
//! anew in the planned mode.

use std::{
    collections::HashMap as StdHashMap,
    path::{Path, PathBuf},
};

use aya::programs::{
    Xdp, XdpMode as AyaXdpMode,
    links::{FdLink, PinnedLink},
    xdp::XdpLink,
};
use igmpsnoop_common::{PortConf, port_flags};
use tracing::{debug, info, warn};

use crate::{
    AttachedMode, Error, PortInfo, Result, XdpMode, error, iface,
    pin::PinDir,
    xdp_mode::{self, Plan, PortFacts},
};

/// Attaches (or adopts) the program on every port, in port order: a port's
/// index is its place in `resolved`.
pub(crate) fn attach_ports(
    program: &mut Xdp,
    resolved: &[(String, u32)],
    mode: XdpMode,
    old_ports: &StdHashMap<u32, PortConf>,
    pins: Option<&PinDir>,
    created_links: &mut Vec<PathBuf>,
) -> Result<(Vec<PortInfo>, Vec<FdLink>)> {
    let facts: Vec<PortFacts> = resolved
        .iter()
        .map(|(name, ifindex)| PortFacts::of(name, *ifindex))
        .collect();
    let attaching = Attaching {
        mode,
        plan: xdp_mode::plan(mode, &facts)?,
        pins,
        old_ports,
    };
    let mut ports = Vec::new();
    let mut links = Vec::new();
    for (index, (name, ifindex)) in resolved.iter().enumerate() {
        let (attached, link) = attaching.port(program, index, name, *ifindex, created_links)?;
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
    Ok((ports, links))
}

/// What every port's attach goes by.
struct Attaching<'a> {
    mode: XdpMode,
    plan: Plan,
    pins: Option<&'a PinDir>,
    /// The previous run's ports: ifindex -> (index, flags).
    old_ports: &'a StdHashMap<u32, PortConf>,
}

/// What became of a port's link pinned by an earlier run.
enum Adoption {
    /// The new program replaced the old one in the pinned link.
    Adopted(AttachedMode, FdLink),
    /// The pinned link could not be adopted: its pin was removed, so the
    /// old program detaches (late: see RELEASE_WAIT).
    Released,
    /// Nothing to adopt.
    None,
}

impl Attaching<'_> {
    /// One port's link, adopted or attached anew, and pinned when pinning.
    fn port(
        &self,
        program: &mut Xdp,
        index: usize,
        name: &str,
        ifindex: u32,
        created_links: &mut Vec<PathBuf>,
    ) -> Result<(AttachedMode, FdLink)> {
        let link_pin = self.pins.map(|p| p.link_path(ifindex));
        let adoption = match (&link_pin, self.old_mode(ifindex)) {
            (Some(path), Some(old_mode)) if path.exists() => {
                self.adopt(program, index, name, ifindex, path, old_mode)
            }
            _ => Adoption::None,
        };
        let (attached, link) = match adoption {
            Adoption::Adopted(m, link) => (m, link),
            adoption => {
                let released = matches!(adoption, Adoption::Released)
                    || self.pins.is_some_and(|p| p.released(ifindex));
                let (m, link) = attach_after(program, name, ifindex, self.plan, released)?;
                info!(port = %name, ifindex, index, mode = %m, "attached");
                (m, link)
            }
        };
        Ok((attached, pin_link(link, link_pin, created_links)?))
    }

    /// The mode the previous run attached a port in, if it was a port.
    fn old_mode(&self, ifindex: u32) -> Option<AttachedMode> {
        self.old_ports.get(&ifindex).map(|c| {
            if c.flags & port_flags::GENERIC != 0 {
                AttachedMode::Generic
            } else {
                AttachedMode::Native
            }
        })
    }

    fn adopt(
        &self,
        program: &mut Xdp,
        index: usize,
        name: &str,
        ifindex: u32,
        path: &Path,
        old_mode: AttachedMode,
    ) -> Adoption {
        match replace_program(program, path) {
            Ok(link) => {
                if !self.mode.allows(old_mode) {
                    warn!(port = %name, mode = %old_mode, "keeping the adopted XDP mode; a clean stop is needed to change it");
                }
                info!(port = %name, ifindex, index, mode = %old_mode, "adopted: program replaced in place");
                Adoption::Adopted(old_mode, link)
            }
            Err(e) => {
                warn!(port = %name, error = %e, "cannot adopt the pinned link; attaching anew");
                let _ = std::fs::remove_file(path);
                Adoption::Released
            }
        }
    }
}

/// Pins a port's link at `pin` (when pinning), noting the pin as created
/// by this start.
fn pin_link(
    link: FdLink,
    pin: Option<PathBuf>,
    created_links: &mut Vec<PathBuf>,
) -> Result<FdLink> {
    match pin {
        // Adopted: the pin is there already and now holds the new program.
        Some(path) if path.exists() => Ok(link),
        Some(path) => {
            let pinned = link
                .pin(&path)
                .map_err(|e| error::pin_error(&path, "pin XDP link", e))?;
            created_links.push(path);
            Ok(FdLink::from(pinned))
        }
        None => Ok(link),
    }
}

/// Detaches the ports of the earlier run that are not ports now.
pub(crate) fn detach_departed(pins: &PinDir, ifindexes: &[u32]) {
    for ifindex in pins.pinned_links() {
        if !ifindexes.contains(&ifindex) {
            info!(ifindex, "no longer a port: detaching");
            let _ = std::fs::remove_file(pins.link_path(ifindex));
            let _ = std::fs::remove_file(pins.tc_link_path(ifindex));
        }
    }
}

/// Pins the program (replacing the earlier run's) for the next run to find.
pub(crate) fn pin_program(program: &mut Xdp, pins: &PinDir) -> Result<()> {
    let path = pins.prog_path();
    let _ = std::fs::remove_file(&path);
    program
        .pin(&path)
        .map_err(|e| error::pin_error(&path, "pin program", e))
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
