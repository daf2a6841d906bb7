//! `igmpsnoop run`: the event loop that joins the parts. Control frames from
//! AF_XDP go into the engine; its forwarding changes go into the BPF maps; its
//! frames go out of the ports; timers fire on time; the control socket's
//! requests are answered between rounds, never blocking the loop.
mod control_socket;
mod core;
mod metrics;
mod port_watch;
mod reload;
mod requests;
mod sched;
mod signals;
mod views;
mod waiter;
mod wake;
mod watch;

use std::time::{Duration, Instant};

use igmpsnoop_control::{
    Engine,
    api::{EventKind, Request},
};
use igmpsnoop_dataplane::{Dataplane, Initial, Options};
use sd_notify::NotifyState;
use tracing::{debug, error, info, warn};

use crate::cli::{args::RunArgs, settings::Settings};
use control_socket::{ControlSocket, Monitors};
use core::{Clock, Core, DaemonCounters};
use signals::Signals;
use waiter::Waiter;
use wake::Wake;
use watch::Watch;

/// Longest the loop sleeps: bounds how late a port event is seen.
const MAX_SLEEP: Duration = Duration::from_millis(200);
const PORT_CHECK_EVERY: Duration = Duration::from_secs(1);
const MAC_AGE_CHECK_EVERY: Duration = Duration::from_secs(10);

/// Runs the switch. `args` is the command line the settings came from: a
/// SIGHUP resolves it again (flags still override the re-read config file).
pub fn run(settings: Settings, args: RunArgs) -> anyhow::Result<()> {
    // First, so that every thread the daemon starts inherits the slice.
    let slice = settings.sched_slice.map(|d| (d, sched::set_slice(d)));
    let mut daemon = Daemon::start(settings, args)?;
    // Logged once up, so that a start that fails says only why.
    if let Some((d, outcome)) = slice {
        log_sched_slice(d, outcome);
    }
    while !daemon.signals.stop_requested() {
        daemon.round()?;
    }
    daemon.stop();
    Ok(())
}

fn log_sched_slice(slice: Duration, outcome: std::io::Result<bool>) {
    match outcome {
        Ok(true) => info!(ms = slice.as_millis() as u64, "scheduler slice set"),
        Ok(false) => {
            info!("scheduler slice left alone: the daemon runs under a real-time or idle policy")
        }
        Err(e) => {
            warn!(error = %e, "cannot set the scheduler slice (--sched-slice-ms); running with the kernel's")
        }
    }
}

struct Daemon {
    core: Core,
    settings: Settings,
    args: RunArgs,
    control: ControlSocket,
    metrics: Option<metrics::MetricsServer>,
    wake: Wake,
    signals: Signals,
    watch: Watch,
    /// Adopted state is held (forwarding as it was) until then.
    hold_until: Option<Instant>,
    last_port_check: Instant,
    last_mac_age: Instant,
    frames: Vec<(usize, Vec<u8>)>,
    /// What the loop waits on: every AF_XDP socket and the wake socket
    /// (the same descriptors for the daemon's life).
    waiter: Waiter,
}

impl Daemon {
    fn start(mut settings: Settings, args: RunArgs) -> anyhow::Result<Daemon> {
        let wake = Wake::new()?;
        let signals = Signals::install(&wake)?;
        let control = ControlSocket::bind(&settings.socket, wake.waker()?)?;
        let metrics = settings
            .metrics_listen
            .map(|addr| metrics::MetricsServer::start(addr, wake.waker()?))
            .transpose()?;
        let dp = open_dataplane(&settings)?;
        settings.engine.switch_mac = dp
            .ports()
            .iter()
            .find_map(|p| p.mac)
            .unwrap_or([0x02, 0, 0x5e, 0, 0, 1]);
        let clock = Clock::start();
        let engine = Engine::new(
            settings.engine.clone(),
            settings.port_configs.clone(),
            clock.now(),
        )
        .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
        let mut core = Core {
            engine,
            dp,
            clock,
            counters: DaemonCounters::default(),
            monitors: Monitors::default(),
            actions: Vec::new(),
            timed: false,
            router_sets: Default::default(),
        };
        // Fast leave in XDP: the groups whose hosts changed, for LEAVE_HOSTS.
        core.engine.track_leave_changes(true);
        core.set_static_routers();
        // Each snooped VLAN's router ports (the static ones so far).
        core.engine
            .handle_timeout(core.clock.now(), &mut core.actions);
        core.apply_timers();
        core.flush();
        let hold_until = adopt(&mut core);

        let names: Vec<String> = core
            .dp
            .ports()
            .iter()
            .map(|p| format!("{}({})", p.name, p.mode))
            .collect();
        info!(ports = %names.join(" "), socket = %settings.socket.display(), querier = core.engine.config().querier, "igmpsnoop forwarding");
        core.dp.keep_pinned(settings.keep_on_exit);
        let waiter = Waiter::new(&core.dp.wait_fds(), wake.fd())?;
        // Type=notify: systemd considers the service started from here on.
        let _ = sd_notify::notify(&[NotifyState::Ready]);
        Ok(Daemon {
            core,
            settings,
            args,
            control,
            metrics,
            wake,
            signals,
            watch: Watch::default(),
            hold_until,
            last_port_check: Instant::now(),
            last_mac_age: Instant::now(),
            frames: Vec::new(),
            waiter,
        })
    }

    /// One turn of the loop: signals, timers, then waiting for frames,
    /// requests or the next timer, and handling what came.
    fn round(&mut self) -> anyhow::Result<()> {
        if self.signals.take_reload() {
            self.reload();
        }
        // Entries the program wrote, once due (a grace after the program
        // reported them) and unless a flush wrote them since, are rewritten
        // by the flush below with what the engine wants.
        self.core.drain_fast_joins();
        let now = self.core.clock.now();
        self.core.engine.handle_timeout(now, &mut self.core.actions);
        self.core.apply_timers();
        self.core.flush();
        self.end_hold_if_due();

        let sleep = self.sleep(now);
        self.core.dp.kick_tx();
        let woken = self.wait(sleep)?;
        let busy = Instant::now();
        if !woken && let Err(e) = self.core.dp.forwarding.maintain() {
            self.core.counters.map_errors += 1;
            error!(error = %e, "cannot publish port sets");
        }
        self.receive();
        self.serve();
        self.periodic();
        self.watch.publish_changes(&mut self.core);
        if let Some(m) = &self.metrics {
            m.observe_round(busy.elapsed().as_secs_f64());
        }
        Ok(())
    }

    fn sleep(&self, now: igmpsnoop_control::Timestamp) -> Duration {
        let hold = self
            .hold_until
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or(MAX_SLEEP);
        self.core
            .engine
            .next_deadline()
            .map(|d| Duration::from_millis(d.as_millis().saturating_sub(now.as_millis())))
            .unwrap_or(MAX_SLEEP)
            .min(MAX_SLEEP)
            .min(hold)
            .min(self.fast_join_wait())
    }

    /// Until the next fast-joined entry is due for its rewrite (the wait
    /// rounds it up to whole milliseconds, so the loop does not spin before
    /// it).
    fn fast_join_wait(&self) -> Duration {
        match self.core.dp.fast_join_due() {
            Some(due) => due.saturating_duration_since(Instant::now()),
            None => MAX_SLEEP,
        }
    }

    /// Waits for frames, a request or a signal, at most `sleep`; returns
    /// whether anything came.
    fn wait(&mut self, sleep: Duration) -> anyhow::Result<bool> {
        let ready = self
            .waiter
            .wait(sleep)
            .map_err(|e| anyhow::anyhow!("epoll_wait: {e}"))?;
        if ready.wake {
            self.wake.drain();
        }
        Ok(ready.any)
    }

    fn receive(&mut self) {
        // Before the frames and the flush: entries the program wrote whose
        // grace has passed, and that no flush wrote since, are rewritten by
        // this round's flush (their reports, handed over after the event,
        // were handled by now or never will be).
        self.core.drain_fast_joins();
        let frames = &mut self.frames;
        frames.clear();
        self.core
            .dp
            .receive(|r| frames.push((r.port, r.frame.to_vec())));
        for (port, frame) in &self.frames {
            let now = self.core.clock.now();
            self.core
                .engine
                .handle_frame(now, *port as u8, frame, &mut self.core.actions);
            self.core.apply(Some(frame));
        }
        self.core.flush();
    }

    /// Answers every request waiting on the control socket and the metrics
    /// endpoint.
    fn serve(&mut self) {
        let hold_left = self
            .hold_until
            .map(|t| t.saturating_duration_since(Instant::now()));
        while let Some(call) = self.control.next_call() {
            if call.request == Request::Monitor {
                call.subscribe(&mut self.core.monitors);
                continue;
            }
            let request = call.request.clone();
            call.answer(self.core.handle(request, hold_left));
        }
        if let Some(m) = &self.metrics {
            m.serve(&self.core);
        }
    }

    fn periodic(&mut self) {
        if self.last_port_check.elapsed() >= PORT_CHECK_EVERY {
            self.last_port_check = Instant::now();
            self.core.check_ports();
            self.core.report_egress();
        }
        if self.last_mac_age.elapsed() >= MAC_AGE_CHECK_EVERY {
            self.last_mac_age = Instant::now();
            let age = self.settings.mac_age.as_secs().max(1);
            let aged = self.core.dp.stats.flush_macs(Some(age), None);
            if aged > 0 {
                debug!(aged, "MAC entries aged out");
            }
        }
    }

    fn end_hold_if_due(&mut self) {
        if self.hold_until.is_none_or(|t| Instant::now() < t) {
            return;
        }
        self.hold_until = None;
        match self.core.dp.forwarding.release_held() {
            Ok(removed) => {
                // Fast leave may now apply on the ports that were held.
                self.core.engine.track_leave_changes(true);
                info!(
                    removed,
                    "hold on adopted state over: groups nobody reported again are gone"
                );
                self.core.publish(EventKind::HoldEnded { removed });
            }
            Err(e) => {
                self.core.counters.map_errors += 1;
                error!(error = %e, "cannot end the hold on adopted state");
            }
        }
    }

    fn reload(&mut self) {
        let now = self.core.clock.now();
        let core = &mut self.core;
        let done = reload::reload(
            &self.args,
            &mut self.settings,
            &mut core.engine,
            &mut core.dp,
            now,
            &mut core.actions,
        );
        core.set_static_routers();
        core.apply(None);
        if let Some((applied, restart_needed)) = done {
            core.publish(EventKind::Reloaded {
                applied,
                restart_needed,
            });
        }
    }

    fn stop(self) {
        let _ = sd_notify::notify(&[NotifyState::Stopping]);
        if self.settings.keep_on_exit && self.core.dp.pin_dir().is_some() {
            info!(
                "stopping: the ports keep forwarding (--keep-on-exit); `igmpsnoop detach` removes the pinned state"
            );
        } else {
            info!("stopping: detaching from every port");
        }
        drop(self.core);
        drop(self.control);
    }
}

fn open_dataplane(settings: &Settings) -> anyhow::Result<Dataplane> {
    // In force from the first frame switched (with MLD off, every IPv6
    // multicast frame is flooded, MLD included).
    let initial = Initial {
        flood_unregistered: settings.engine.flood_unregistered,
        snoop_ipv6: settings.engine.mld,
        port_vlans: settings
            .port_configs
            .iter()
            .map(|p| p.vlans.clone())
            .collect(),
    };
    let options = Options {
        pin_dir: settings.pin_dir.clone(),
        max_groups: settings.engine.max_groups,
        initial,
    };
    let mut dp = Dataplane::open_with(&settings.ports, settings.xdp_mode, &options)?;
    // Until the switch is up, a failing start leaves adopted state forwarding
    // as it found it.
    dp.keep_pinned(dp.adopted().is_some() || settings.keep_on_exit);
    dp.forwarding
        .set_control_rate(settings.control_rate_limit)?;
    dp.forwarding.set_count_streams(settings.count_streams)?;
    dp.forwarding.set_fast_join(settings.fast_join)?;
    Ok(dp)
}

/// Adopted state is held (forwarding as it was) while the hosts report
/// again; then the relearned table is all that counts. Returns when the
/// hold ends, if there is one.
fn adopt(core: &mut Core) -> Option<Instant> {
    let adopted = core.dp.adopted()?;
    let hold = core.engine.config().adoption_hold();
    let solicited = core
        .engine
        .solicit_reports(core.clock.now(), &mut core.actions);
    core.apply(None);
    info!(
        groups = adopted.groups,
        router_ports = adopted.router_ports.count(),
        port_sets = adopted.port_sets,
        hold_s = hold.as_secs_f64(),
        solicited,
        "adopted the pinned state: forwarding as it was until the hold ends"
    );
    core.publish(EventKind::Adopted {
        groups: adopted.groups,
        hold_ms: hold.as_millis() as u64,
    });
    Some(Instant::now() + hold)
}
