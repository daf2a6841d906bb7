//! What the fast-path tests (tests/tests/fastpath*.rs) share: the data
//! plane opened in-process on the lab's switch ports in a named XDP mode,
//! checked to be attached in that mode, port masks of hosts, counter deltas,
//! the checks that the tools they run are there, and [`crate::in_both_modes!`]
//! (every fast-path test runs in native and in generic XDP mode).

pub use igmpsnoop_dataplane::XdpMode;
use igmpsnoop_dataplane::{AttachedMode, PortCounters, PortMask};

use crate::lab::Lab;
use crate::switch::{DataplaneThread, scapy_python};
use crate::tools::mcast_tool_bin;

/// Fails (never skips) without `mcast-tool` built.
pub fn require_mcast_tool() {
    assert!(
        mcast_tool_bin().is_file(),
        "mcast-tool not built at {:?}",
        mcast_tool_bin()
    );
}

/// Fails (never skips) without the Python that has scapy.
pub fn require_scapy() {
    assert!(
        scapy_python().is_file(),
        "no Python with scapy at {:?}",
        scapy_python()
    );
}

/// The port mask of `hosts`.
pub fn bits(hosts: &[usize]) -> PortMask {
    // Host i is on port index i-1.
    hosts
        .iter()
        .map(|&h| u8::try_from(h - 1).expect("a port index"))
        .collect()
}

/// Counter `which` of `after` less that of `before`.
pub fn delta(after: &PortCounters, before: &PortCounters, which: u32) -> u64 {
    after.get(which) - before.get(which)
}

/// Opens the data plane on every switch port and checks the attach mode.
pub fn open_switch(lab: &Lab, mode: XdpMode) -> DataplaneThread {
    let dp = DataplaneThread::open_switch(lab, mode).expect("Dataplane::open");
    check_mode(&dp, mode);
    dp
}

/// Asserts that every port of `dp` is attached in `mode` (the tests name
/// it: a fallback to another mode would test the wrong thing).
pub fn check_mode(dp: &DataplaneThread, mode: XdpMode) {
    let want = match mode {
        XdpMode::Native => AttachedMode::Native,
        XdpMode::Generic => AttachedMode::Generic,
        XdpMode::Auto => unreachable!("tests name the mode"),
    };
    let modes: Vec<_> = dp.with(|dp| dp.ports().iter().map(|p| p.mode).collect());
    assert!(
        modes.iter().all(|m| *m == want),
        "asked for {mode:?}, got {modes:?}"
    );
}

/// Makes each `name` (a `fn(XdpMode)` in the calling module) a test in
/// module `native` and one in module `generic`. With `run = f;` first, the
/// tests call `f(mode, name)` instead (`f` makes the lab, `name` is a
/// `fn(&Lab, XdpMode)`).
#[macro_export]
macro_rules! in_both_modes {
    (run = $run:ident; $($name:ident),* $(,)?) => {
        mod native {
            use $crate::fastpath::XdpMode;
            $(#[test] fn $name() { super::$run(XdpMode::Native, super::$name) })*
        }
        mod generic {
            use $crate::fastpath::XdpMode;
            $(#[test] fn $name() { super::$run(XdpMode::Generic, super::$name) })*
        }
    };
    ($($name:ident),* $(,)?) => {
        mod native {
            use $crate::fastpath::XdpMode;
            $(#[test] fn $name() { super::$name(XdpMode::Native) })*
        }
        mod generic {
            use $crate::fastpath::XdpMode;
            $(#[test] fn $name() { super::$name(XdpMode::Generic) })*
        }
    };
}
