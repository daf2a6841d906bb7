//! SIGINT/SIGTERM ask the loop to stop, SIGHUP to reload; signal-hook sets a
//! flag and writes to the loop's wake socket, so the loop sees a signal at
//! once instead of at its next timeout.
use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::wake::Wake;

pub struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    /// Registers the handlers. SIGHUP's default action ends the process: the
    /// handler replaces it before the switch is up, so a reload is never a
    /// stop.
    pub fn install(wake: &Wake) -> std::io::Result<Signals> {
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            signal_hook::flag::register(sig, stop.clone())?;
            signal_hook::low_level::pipe::register(sig, wake.signal_end()?)?;
        }
        signal_hook::flag::register(SIGHUP, reload.clone())?;
        signal_hook::low_level::pipe::register(SIGHUP, wake.signal_end()?)?;
        Ok(Signals { stop, reload })
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// True once per SIGHUP (several before the loop looks count as one).
    pub fn take_reload(&self) -> bool {
        self.reload.swap(false, Ordering::SeqCst)
    }
}
