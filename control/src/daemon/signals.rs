//! SIGINT/SIGTERM set a stop flag and SIGHUP a reload flag that the event
//! loop checks; nothing else runs in the handlers.
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_reload(_: libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

fn handle(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    // No SA_RESTART, so a blocking poll() returns EINTR at once.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(sig, &action, std::ptr::null_mut());
    }
}

pub fn install() {
    handle(libc::SIGINT, on_stop);
    handle(libc::SIGTERM, on_stop);
    // SIGHUP's default action ends the process: the handler replaces it
    // before the switch is up, so a reload is never a stop.
    handle(libc::SIGHUP, on_reload);
    // SAFETY: ignoring SIGPIPE: a CLI client that goes away must not kill the daemon.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// True once per SIGHUP (several before the loop looks count as one).
pub fn take_reload() -> bool {
    RELOAD.swap(false, Ordering::SeqCst)
}
