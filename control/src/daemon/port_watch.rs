//! Watching the ports themselves: link state, and what the kernel does with
//! the frames the switch sends out of them.
use igmpsnoop_control::api::EventKind;
use igmpsnoop_dataplane::{EgressEvent, iface};
use tracing::{error, info, warn};

use super::core::Core;

impl Core {
    /// A port going down flushes its memberships and MACs; coming back up,
    /// it gets a general query at once (when we are querier).
    pub fn check_ports(&mut self) {
        let ports: Vec<(u8, String, u32)> = self
            .dp
            .ports()
            .iter()
            .map(|p| (p.index as u8, p.name.clone(), p.ifindex))
            .collect();
        for (index, name, ifindex) in ports {
            let is_up = iface::is_up(&name);
            // The engine's record of which ports are up is the one we compare with.
            if is_up == self.engine.ports_up().contains(index) {
                continue;
            }
            if is_up {
                info!(port = %name, "port up");
                let now = self.clock.now();
                self.engine.port_up(now, index, &mut self.actions);
                self.publish(EventKind::PortUp { port: name });
            } else {
                info!(port = %name, "port down: flushing its memberships and MACs");
                self.engine.port_down(index, &mut self.actions);
                self.dp.stats.flush_macs(None, Some(ifindex));
                self.publish(EventKind::PortDown { port: name });
            }
            self.apply(None);
            self.flush();
        }
    }

    /// Logs what the kernel now does with frames sent out of the ports: each
    /// change once, with its cause and fix.
    pub fn report_egress(&mut self) {
        for event in self.dp.check_egress() {
            match event {
                EgressEvent::NativeRedirectsDropped { port, reason } => {
                    error!(port = %port, "frames redirected into this port are now dropped by the kernel: {reason}")
                }
                EgressEvent::NativeRedirectsTaken { port } => {
                    info!(port = %port, "the port takes redirected frames again")
                }
                EgressEvent::TxDropped { port, dropped } => warn!(
                    port = %port,
                    dropped,
                    "the kernel dropped frames on their way out of this port (tx_dropped; \
                     is the host end down, or its queue full?); `igmpsnoop ports` counts them"
                ),
            }
        }
    }
}
