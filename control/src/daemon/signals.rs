//! SIGINT/SIGTERM set a flag that the event loop checks; nothing else runs in
//! the handler.
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        // No SA_RESTART, so a blocking poll() returns EINTR at once.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    // SAFETY: ignoring SIGPIPE: a CLI client that goes away must not kill the daemon.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
