//! The TC ingress program: attached to every port as a TCX link, it
//! switches the frames generic XDP skipped (VLAN config needs it).

use std::path::{Path, PathBuf};

use aya::{
    Ebpf,
    programs::{
        SchedClassifier, TcAttachType,
        links::{FdLink, LinkOrder, PinnedLink},
        tc::{SchedClassifierLink, TcAttachOptions},
    },
};
use tracing::{debug, warn};

use crate::{Error, PortInfo, Result, error, iface, pin::PinDir};

/// Loads the TC ingress program and attaches it to every port as a TCX
/// link, pinned next to the XDP link so that it outlives a crash and is
/// replaced in place (bpf_link_update) by the next daemon, like the XDP
/// program; removing the pin (a clean stop, `igmpsnoop detach`) detaches
/// it. Without TCX (kernel before 6.6) the switch runs without it, and
/// VLAN config is refused (`Error::NoTc`): nothing else needs it.
pub(crate) fn attach_tc(
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
pub(crate) fn tags_in_bytes(ports: &[PortInfo]) {
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
