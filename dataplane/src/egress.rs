//! Watches what the kernel does with the frames the switch sends out of each
//! port after a redirect: whether a port still takes frames redirected by
//! native-mode XDP (a veth stops when its peer's NAPI goes away, and the
//! kernel then drops every such frame without counting it anywhere), and
//! the frames it dropped on their way out (tx_dropped).
use crate::{AttachedMode, PortInfo, iface, xdp_mode::PortFacts};

/// A change worth telling the operator, once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EgressEvent {
    /// Frames that native-mode ports redirect into `port` are now dropped
    /// by the kernel; `reason` says why and how to fix it.
    NativeRedirectsDropped { port: String, reason: String },
    /// `port` takes native-mode redirects again.
    NativeRedirectsTaken { port: String },
    /// The kernel dropped frames on their way out of `port` (first seen).
    TxDropped { port: String, dropped: u64 },
}

#[derive(Clone, Debug)]
struct Watched {
    takes_native: bool,
    tx_dropped_base: u64,
    tx_dropped: u64,
    told_tx_dropped: bool,
}

/// Per-port egress state, checked by [`EgressWatch::check`].
#[derive(Clone, Debug, Default)]
pub struct EgressWatch {
    ports: Vec<Watched>,
}

/// One port's egress figures, for listings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EgressState {
    /// Frames redirected by native-mode XDP into this port are sent.
    pub takes_native_redirects: bool,
    /// Frames the kernel dropped on their way out since the switch started.
    pub tx_dropped: u64,
}

impl EgressWatch {
    pub fn new(ports: &[PortInfo]) -> EgressWatch {
        EgressWatch {
            ports: ports
                .iter()
                .map(|p| {
                    let base = iface::tx_dropped(&p.name).unwrap_or(0);
                    Watched {
                        takes_native: PortFacts::of(&p.name, p.ifindex).takes_native_redirects(),
                        tx_dropped_base: base,
                        tx_dropped: 0,
                        told_tx_dropped: false,
                    }
                })
                .collect(),
        }
    }

    pub fn state(&self, port: usize) -> EgressState {
        self.ports
            .get(port)
            .map(|w| EgressState {
                takes_native_redirects: w.takes_native,
                tx_dropped: w.tx_dropped,
            })
            .unwrap_or_default()
    }

    /// Reads the kernel's view of every port again; returns what changed.
    pub fn check(&mut self, ports: &[PortInfo]) -> Vec<EgressEvent> {
        let any_native = ports.iter().any(|p| p.mode == AttachedMode::Native);
        let mut events = Vec::new();
        for (w, p) in self.ports.iter_mut().zip(ports) {
            let facts = PortFacts::of(&p.name, p.ifindex);
            let takes = facts.takes_native_redirects();
            if takes != w.takes_native && any_native {
                events.push(if takes {
                    EgressEvent::NativeRedirectsTaken {
                        port: p.name.clone(),
                    }
                } else {
                    EgressEvent::NativeRedirectsDropped {
                        port: p.name.clone(),
                        reason: facts.blackhole_reason(),
                    }
                });
            }
            w.takes_native = takes;
            if let Some(now) = iface::tx_dropped(&p.name) {
                w.tx_dropped = now.saturating_sub(w.tx_dropped_base);
            }
            if w.tx_dropped > 0 && !w.told_tx_dropped {
                w.told_tx_dropped = true;
                events.push(EgressEvent::TxDropped {
                    port: p.name.clone(),
                    dropped: w.tx_dropped,
                });
            }
        }
        events
    }
}
