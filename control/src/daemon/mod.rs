//! `igmpsnoop run`: the event loop that joins the parts. Control frames from
//! AF_XDP go into the engine; its forwarding changes go into the BPF maps; its
//! frames go out of the ports; timers fire on time; the control socket answers
//! the CLI.
pub mod ipc;
mod signals;
mod views;

use std::time::{Duration, Instant};

use anyhow::bail;
use igmpsnoop_control::{Action, Engine, PortMask, Timestamp};
use igmpsnoop_dataplane::{Dataplane, Options, iface};
use serde_json::{Value, json};
use tracing::{debug, error, info, warn};

use crate::cli::settings::Settings;
use ipc::{Request, Server};

/// Longest the loop sleeps: bounds how late a stop request or a port event is seen.
const MAX_SLEEP: Duration = Duration::from_millis(200);
const PORT_CHECK_EVERY: Duration = Duration::from_secs(1);
const MAC_AGE_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Monotonic milliseconds since the daemon started: the engine's clock.
struct Clock(Instant);

impl Clock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.elapsed().as_millis() as u64)
    }
}

#[derive(Default)]
struct DaemonCounters {
    tx_frames: u64,
    tx_errors: u64,
    map_errors: u64,
    ipc_requests: u64,
}

pub fn run(mut settings: Settings) -> anyhow::Result<()> {
    signals::install();
    let server = Server::bind(&settings.socket)?;
    let options = Options {
        pin_dir: settings.pin_dir.clone(),
        max_groups: settings.engine.max_groups,
    };
    let mut dp = Dataplane::open_with(&settings.ports, settings.xdp_mode, &options)?;
    // Until the switch is up, a failing start leaves adopted state forwarding
    // as it found it.
    dp.keep_pinned(dp.adopted().is_some() || settings.keep_on_exit);
    if dp.pins_are_transient() {
        warn!(
            dir = %dp.pin_dir().map(|d| d.display().to_string()).unwrap_or_default(),
            "the bpffs for pinned state is mounted in this process's own mount namespace \
             (ip netns exec makes one per command): it goes with the process, so a restart \
             cannot adopt it; run under `nsenter --net=/run/netns/NAME`, or mount a bpffs \
             at --pin-dir first"
        );
    }
    dp.forwarding
        .set_flood_unregistered(settings.engine.flood_unregistered)?;
    dp.forwarding
        .set_control_rate(settings.control_rate_limit)?;

    settings.engine.switch_mac = dp
        .ports()
        .iter()
        .find_map(|p| p.mac)
        .unwrap_or([0x02, 0, 0x5e, 0, 0, 1]);
    let clock = Clock(Instant::now());
    let mut engine = Engine::new(settings.engine, settings.port_configs, clock.now())
        .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
    let mut counters = DaemonCounters::default();
    let mut actions = Vec::new();
    apply_router_ports(&mut dp, engine.router_ports(), &mut counters);

    // Adopted state is held (forwarding as it was) while the hosts report
    // again; then the relearned table is all that counts.
    let mut hold_until = None;
    if let Some(adopted) = dp.adopted() {
        let hold = engine.config().adoption_hold();
        let solicited = engine.solicit_reports(clock.now(), &mut actions);
        apply(&mut dp, &mut actions, None, &mut counters);
        info!(
            groups = adopted.groups,
            router_ports = adopted.router_ports.count_ones(),
            port_sets = adopted.port_sets,
            hold_s = hold.as_secs_f64(),
            solicited,
            "adopted the pinned state: forwarding as it was until the hold ends"
        );
        hold_until = Some(Instant::now() + hold);
    }

    let names: Vec<String> = dp
        .ports()
        .iter()
        .map(|p| format!("{}({})", p.name, p.mode))
        .collect();
    info!(ports = %names.join(" "), socket = %settings.socket.display(), querier = engine.config().querier, "igmpsnoop forwarding");
    dp.keep_pinned(settings.keep_on_exit);

    let mut last_port_check = Instant::now();
    let mut last_mac_age = Instant::now();
    let mut frames: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut fds: Vec<libc::pollfd> = dp
        .poll_fds()
        .into_iter()
        .chain([server.fd()])
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();

    while !signals::stop_requested() {
        let now = clock.now();
        engine.handle_timeout(now, &mut actions);
        apply(&mut dp, &mut actions, None, &mut counters);
        flush(&mut dp, &mut counters);
        if hold_until.is_some_and(|t| Instant::now() >= t) {
            hold_until = None;
            match dp.forwarding.release_held() {
                Ok(removed) => info!(
                    removed,
                    "hold on adopted state over: groups nobody reported again are gone"
                ),
                Err(e) => {
                    counters.map_errors += 1;
                    error!(error = %e, "cannot end the hold on adopted state");
                }
            }
        }

        let sleep = engine
            .next_deadline()
            .map(|d| Duration::from_millis(d.as_millis().saturating_sub(now.as_millis())))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP)
            .min(
                hold_until
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .unwrap_or(MAX_SLEEP),
            );
        // SAFETY: fds is a valid array of pollfd of the given length.
        let ready = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                sleep.as_millis() as i32,
            )
        };
        if ready < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                bail!("poll: {err}");
            }
            continue;
        }
        if ready == 0
            && let Err(e) = dp.forwarding.maintain()
        {
            counters.map_errors += 1;
            error!(error = %e, "cannot publish port sets");
        }

        frames.clear();
        dp.receive(|r| frames.push((r.port, r.frame.to_vec())));
        for (port, frame) in &frames {
            engine.handle_frame(clock.now(), *port as u8, frame, &mut actions);
            apply(&mut dp, &mut actions, Some(frame), &mut counters);
        }

        flush(&mut dp, &mut counters);

        let hold_left = hold_until.map(|t| t.saturating_duration_since(Instant::now()));
        server.serve(|request| {
            counters.ipc_requests += 1;
            handle(
                request,
                &mut engine,
                &mut dp,
                &clock,
                &mut counters,
                hold_left,
            )
        });

        if last_port_check.elapsed() >= PORT_CHECK_EVERY {
            last_port_check = Instant::now();
            check_ports(&mut engine, &mut dp, &clock, &mut counters);
        }
        if last_mac_age.elapsed() >= MAC_AGE_CHECK_EVERY {
            last_mac_age = Instant::now();
            let aged = dp
                .stats
                .flush_macs(Some(settings.mac_age.as_secs().max(1)), None);
            if aged > 0 {
                debug!(aged, "MAC entries aged out");
            }
        }
    }
    if settings.keep_on_exit && dp.pin_dir().is_some() {
        info!(
            "stopping: the ports keep forwarding (--keep-on-exit); `igmpsnoop detach` removes the pinned state"
        );
    } else {
        info!("stopping: detaching from every port");
    }
    drop(dp);
    drop(server);
    Ok(())
}

/// Carries out the engine's actions. Failures are logged and counted; the
/// switch keeps running.
fn apply(
    dp: &mut Dataplane,
    actions: &mut Vec<Action>,
    input: Option<&[u8]>,
    counters: &mut DaemonCounters,
) {
    for action in actions.drain(..) {
        match action {
            Action::GroupPorts { vlan, group, ports } => {
                debug!(%group, vlan, ports = format_args!("{:#x}", ports.0), "group ports");
                // Written with the others by `flush` (one kernel batch).
                dp.forwarding.stage_group(vlan, group.octets(), ports.0);
            }
            Action::SourcePorts {
                vlan,
                group,
                source,
                ports,
            } => {
                // Source-specific forwarding is not in the fast path yet:
                // traffic from `source` follows GroupPorts meanwhile.
                debug!(%group, vlan, %source, ports = ?ports.map(|p| p.0), "source ports");
            }
            Action::RouterPorts { ports } => apply_router_ports(dp, ports, counters),
            Action::Forward { ports } => {
                if let Some(frame) = input {
                    send_all(dp, ports, frame, counters);
                }
            }
            Action::Transmit { ports, frame } => send_all(dp, ports, &frame, counters),
        }
    }
}

/// Writes the staged group changes to the kernel.
fn flush(dp: &mut Dataplane, counters: &mut DaemonCounters) {
    if let Err(e) = dp.forwarding.flush() {
        counters.map_errors += 1;
        error!(error = %e, "cannot update the group map");
    }
}

fn apply_router_ports(dp: &mut Dataplane, ports: PortMask, counters: &mut DaemonCounters) {
    debug!(ports = format_args!("{:#x}", ports.0), "router ports");
    if let Err(e) = dp.forwarding.set_router_ports(ports.0) {
        counters.map_errors += 1;
        error!(error = %e, "cannot update router ports");
    }
}

fn send_all(dp: &mut Dataplane, ports: PortMask, frame: &[u8], counters: &mut DaemonCounters) {
    for port in ports.iter() {
        match dp.send(port as usize, frame) {
            Ok(()) => counters.tx_frames += 1,
            Err(e) => {
                counters.tx_errors += 1;
                warn!(port, error = %e, "cannot send");
            }
        }
    }
}

/// A port going down flushes its memberships and MACs; coming back up, it
/// gets a general query at once (when we are querier).
fn check_ports(
    engine: &mut Engine,
    dp: &mut Dataplane,
    clock: &Clock,
    counters: &mut DaemonCounters,
) {
    let mut actions = Vec::new();
    let ports: Vec<(u8, String, u32)> = dp
        .ports()
        .iter()
        .map(|p| (p.index as u8, p.name.clone(), p.ifindex))
        .collect();
    for (index, name, ifindex) in ports {
        let is_up = iface::is_up(&name);
        // The engine's record of which ports are up is the one we compare with.
        if is_up == engine.ports_up().contains(index) {
            continue;
        }
        if is_up {
            info!(port = %name, "port up");
            engine.port_up(clock.now(), index, &mut actions);
        } else {
            info!(port = %name, "port down: flushing its memberships and MACs");
            engine.port_down(index, &mut actions);
            dp.stats.flush_macs(None, Some(ifindex));
        }
        apply(dp, &mut actions, None, counters);
        flush(dp, counters);
    }
}

/// Applies a static-group change and says what was done.
fn static_group_done(
    done: Result<(), igmpsnoop_control::engine::TableError>,
    dp: &mut Dataplane,
    actions: &mut Vec<Action>,
    counters: &mut DaemonCounters,
    what: &str,
    (group, port, vlan): (std::net::Ipv4Addr, String, u16),
) -> Result<Value, String> {
    done.map_err(|e| e.to_string())?;
    apply(dp, actions, None, counters);
    flush(dp, counters);
    info!(%group, vlan, %port, "static group {what}");
    Ok(json!({ what: {"group": group.to_string(), "port": port, "vlan": vlan} }))
}

fn handle(
    request: Request,
    engine: &mut Engine,
    dp: &mut Dataplane,
    clock: &Clock,
    counters: &mut DaemonCounters,
    hold_left: Option<Duration>,
) -> Result<Value, String> {
    let now = clock.now();
    let port_index = |dp: &Dataplane, name: &str| {
        dp.port_by_name(name).map(|p| p.index as u8).ok_or_else(|| {
            let names: Vec<&str> = dp.ports().iter().map(|p| p.name.as_str()).collect();
            format!(
                "{name:?} is not a port of this switch (ports: {})",
                names.join(", ")
            )
        })
    };
    Ok(match request {
        Request::Groups => views::groups(engine, dp, now, hold_left),
        Request::Routers => views::routers(engine, dp, now),
        Request::Querier => views::querier(engine, now),
        Request::Ports => views::ports(engine, dp),
        Request::Macs => views::macs(dp),
        Request::Stats => {
            let daemon = json!({
                "tx_frames": counters.tx_frames,
                "tx_errors": counters.tx_errors,
                "map_errors": counters.map_errors,
                "ipc_requests": counters.ipc_requests,
            });
            views::stats(engine, dp, daemon.as_object().expect("an object"))
        }
        Request::GroupAdd { group, port, vlan } => {
            let index = port_index(dp, &port)?;
            let mut actions = Vec::new();
            let done = engine.add_static_group(vlan, group, index, &mut actions);
            static_group_done(
                done,
                dp,
                &mut actions,
                counters,
                "added",
                (group, port, vlan),
            )?
        }
        Request::GroupDel { group, port, vlan } => {
            let index = port_index(dp, &port)?;
            let mut actions = Vec::new();
            let done = engine.del_static_group(vlan, group, index, &mut actions);
            static_group_done(
                done,
                dp,
                &mut actions,
                counters,
                "removed",
                (group, port, vlan),
            )?
        }
    })
}
