//! How the program is attached to each port, and the policy that keeps the
//! default from blackholing: native-mode XDP redirects a frame into another
//! port through that port's ndo_xdp_xmit, which a veth offers only while its
//! peer runs NAPI (the kernel's default veth does not), and a frame a
//! native-mode program redirects loses the checksum-offload state a local
//! sender gave it. Generic mode has neither problem.
use std::{fmt, str::FromStr};

use tracing::warn;

use crate::{
    error::{Error, Result},
    iface,
    xdp_features::{self, act},
};

/// How to attach the XDP program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native where the driver supports it, generic otherwise.
    #[default]
    Auto,
    Native,
    Generic,
}

impl XdpMode {
    /// Whether a port running in `attached` mode satisfies this request.
    pub(crate) fn allows(self, attached: AttachedMode) -> bool {
        matches!(
            (self, attached),
            (Self::Auto, _)
                | (Self::Native, AttachedMode::Native)
                | (Self::Generic, AttachedMode::Generic)
        )
    }
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

/// What the kernel says of a port, for choosing its mode.
#[derive(Clone, Debug)]
pub(crate) struct PortFacts {
    pub name: String,
    pub is_veth: bool,
    /// xdp_features; None on kernels that do not report them.
    pub features: Option<u64>,
}

impl PortFacts {
    pub fn of(name: &str, ifindex: u32) -> PortFacts {
        PortFacts {
            name: name.to_string(),
            is_veth: iface::driver(name).as_deref() == Some("veth"),
            features: xdp_features::xdp_features(ifindex).ok(),
        }
    }

    /// Whether frames a native-mode program redirects into this port are
    /// sent (unknown counts as yes: kernels before 6.3 do not say).
    pub fn takes_native_redirects(&self) -> bool {
        self.features.is_none_or(|f| f & act::NDO_XMIT != 0)
    }

    /// Why native mode would drop what is redirected into this port, and
    /// the fix.
    pub(crate) fn blackhole_reason(&self) -> String {
        if self.is_veth {
            format!(
                "{} is a veth whose peer runs no NAPI (the kernel's default), so the kernel drops every \
                 frame redirected into it; turn GRO on at the peer (`ethtool -K PEER gro on` in the \
                 peer's namespace) or use --xdp-mode generic (or auto)",
                self.name
            )
        } else {
            format!(
                "the driver of {} does not take frames redirected by XDP (no ndo_xdp_xmit now), so the \
                 kernel drops every frame redirected into it; use --xdp-mode generic (or auto)",
                self.name
            )
        }
    }
}

/// How the ports are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Native where the driver can, generic elsewhere.
    NativeOrGeneric,
    Native,
    Generic,
}

/// The plan for `requested` on these ports. Auto never picks native where
/// it would drop frames; an explicit native that would is refused, naming
/// the port, the cause and the fix.
pub(crate) fn plan(requested: XdpMode, ports: &[PortFacts]) -> Result<Plan> {
    match requested {
        XdpMode::Generic => Ok(Plan::Generic),
        XdpMode::Auto => Ok(auto_plan(ports)),
        XdpMode::Native => {
            if let Some(p) = ports.iter().find(|p| !p.takes_native_redirects()) {
                return Err(Error::NativeBlackhole {
                    reason: p.blackhole_reason(),
                });
            }
            for p in ports.iter().filter(|p| p.is_veth) {
                warn!(
                    port = %p.name,
                    "native XDP on a veth: frames its host sends with checksum offload (the veth default) \
                     reach other hosts with unfinished UDP/TCP checksums and are dropped there; turn TX \
                     checksum offload off in the host (`ethtool -K PEER tx off`) or use --xdp-mode generic"
                );
            }
            Ok(Plan::Native)
        }
    }
}

fn auto_plan(ports: &[PortFacts]) -> Plan {
    match auto_reason(ports) {
        Some(_) => Plan::Generic,
        None => Plan::NativeOrGeneric,
    }
}

/// Why auto mode chose generic XDP for every port, if it did (logged once
/// the switch is up).
pub(crate) fn auto_reason(ports: &[PortFacts]) -> Option<String> {
    if let Some(p) = ports.iter().find(|p| p.is_veth) {
        return Some(format!(
            "{} is a veth: generic XDP on every port (native-mode redirects into a veth are dropped \
             unless its peer runs NAPI, and lose the checksum offload of locally sent frames)",
            p.name
        ));
    }
    ports
        .iter()
        .find(|p| !p.takes_native_redirects())
        .map(|p| format!("generic XDP on every port: {}", p.blackhole_reason()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, is_veth: bool, features: Option<u64>) -> PortFacts {
        PortFacts {
            name: name.into(),
            is_veth,
            features,
        }
    }

    const FULL: u64 = act::BASIC | act::REDIRECT | act::NDO_XMIT;

    #[test]
    fn auto_is_generic_with_any_veth_or_port_without_ndo_xmit() {
        let nic = port("eth1", false, Some(FULL));
        let veth = port("p1", true, Some(FULL));
        let no_xmit = port("eth2", false, Some(act::BASIC | act::REDIRECT));
        assert_eq!(
            plan(XdpMode::Auto, std::slice::from_ref(&nic)).unwrap(),
            Plan::NativeOrGeneric
        );
        assert_eq!(
            plan(XdpMode::Auto, &[nic.clone(), veth]).unwrap(),
            Plan::Generic
        );
        assert_eq!(plan(XdpMode::Auto, &[nic, no_xmit]).unwrap(), Plan::Generic);
        // A kernel that does not report features: as before.
        assert_eq!(
            plan(XdpMode::Auto, &[port("eth1", false, None)]).unwrap(),
            Plan::NativeOrGeneric
        );
    }

    #[test]
    fn native_is_refused_where_it_would_blackhole() {
        let veth_no_napi = port("p2", true, Some(act::BASIC | act::REDIRECT));
        let err = plan(
            XdpMode::Native,
            &[port("p1", true, Some(FULL)), veth_no_napi],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("p2") && err.contains("gro on") && err.contains("generic"),
            "{err}"
        );
        // With NAPI on the peer it is allowed (with a warning about checksums).
        assert_eq!(
            plan(XdpMode::Native, &[port("p1", true, Some(FULL))]).unwrap(),
            Plan::Native
        );
        assert_eq!(
            plan(XdpMode::Generic, &[port("p2", true, Some(0))]).unwrap(),
            Plan::Generic
        );
    }
}
