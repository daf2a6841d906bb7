//! SIGHUP: re-read the config file and apply what can change while the
//! switch runs. The engine takes the protocol side (`Engine::reconfigure`);
//! the fast path's settings and the daemon's own are applied here. A file
//! that does not parse or validate is refused as a whole: nothing changes.
use igmpsnoop_control::{Action, Engine, Timestamp};
use igmpsnoop_dataplane::Dataplane;
use sd_notify::NotifyState;
use tracing::{error, info, warn};

use crate::cli::{args::RunArgs, settings::Settings};

/// Re-reads the configuration and applies it. `args` are the daemon's
/// command line: its flags still override the file. `running` holds the
/// daemon's own settings (the engine keeps the protocol ones, so its copy in
/// `running.engine` is the start-up one). Engine actions (router ports) are
/// left in `actions` for the caller to carry out. Returns the settings
/// applied and those that need a restart, when the file was accepted.
pub fn reload(
    args: &RunArgs,
    running: &mut Settings,
    engine: &mut Engine,
    dp: &mut Dataplane,
    now: Timestamp,
    actions: &mut Vec<Action>,
) -> Option<(Vec<String>, Vec<String>)> {
    let Some(path) = &args.config else {
        info!("SIGHUP: no --config file to re-read; nothing changed");
        return None;
    };
    let _ = sd_notify::notify(&[NotifyState::Reloading]);
    info!(file = %path.display(), "SIGHUP: re-reading the config file");
    let done = match apply(args, running, engine, dp, now, actions) {
        Ok(done) => Some(done),
        Err(e) => {
            error!("config reload refused, nothing changed: {e:#}");
            None
        }
    };
    let _ = sd_notify::notify(&[NotifyState::Ready]);
    done
}

fn apply(
    args: &RunArgs,
    running: &mut Settings,
    engine: &mut Engine,
    dp: &mut Dataplane,
    now: Timestamp,
    actions: &mut Vec<Action>,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let new = crate::cli::settings::resolve(args.clone())?;
    let mut done = engine
        .reconfigure(new.engine, new.port_configs, now, actions)
        .map_err(|e| anyhow::anyhow!("bad configuration: {e}"))?;
    // From here on the new configuration is accepted.
    for (name, differs) in [
        ("xdp-mode", new.xdp_mode != running.xdp_mode),
        ("pin-dir", new.pin_dir != running.pin_dir),
        ("socket", new.socket != running.socket),
        ("sched-slice-ms", new.sched_slice != running.sched_slice),
    ] {
        if differs {
            done.need_restart.push(name);
        }
    }
    if done.applied.contains(&"flood-unregistered") {
        let flood = engine.config().flood_unregistered;
        if let Err(e) = dp.forwarding.set_flood_unregistered(flood) {
            error!(error = %e, "cannot set flood-unregistered in the fast path");
        }
    }
    if new.control_rate_limit != running.control_rate_limit {
        match dp.forwarding.set_control_rate(new.control_rate_limit) {
            Ok(()) => {
                running.control_rate_limit = new.control_rate_limit;
                done.applied.push("control-rate-limit");
            }
            Err(e) => error!(error = %e, "cannot set the control rate limit in the fast path"),
        }
    }
    if new.fast_join != running.fast_join {
        match dp.forwarding.set_fast_join(new.fast_join) {
            Ok(()) => {
                running.fast_join = new.fast_join;
                done.applied.push("fast-join");
            }
            Err(e) => error!(error = %e, "cannot set fast join in the fast path"),
        }
    }
    if new.mac_age != running.mac_age {
        running.mac_age = new.mac_age;
        done.applied.push("mac-age");
    }
    if new.keep_on_exit != running.keep_on_exit {
        running.keep_on_exit = new.keep_on_exit;
        dp.keep_pinned(new.keep_on_exit);
        done.applied.push("keep-on-exit");
    }
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let lists = (names(&done.applied), names(&done.need_restart));
    if done.is_empty() {
        info!("config reloaded: nothing changed");
        return Ok(lists);
    }
    if !done.applied.is_empty() {
        info!(applied = %done.applied.join(", "), "config reloaded");
    }
    if !done.need_restart.is_empty() {
        warn!(
            ignored = %done.need_restart.join(", "),
            "config reload: these settings changed but only take effect at a restart; \
             the running values are kept"
        );
    }
    Ok(lists)
}
