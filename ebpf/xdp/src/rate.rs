//! The control-frame rate limit: a frame over it never reaches the
//! AF_XDP socket, so one flooding host cannot starve the control plane.

use aya_ebpf::helpers::bpf_ktime_get_ns;

use crate::{
    NS_PER_SEC,
    maps::{CONFIG, RATE},
};

/// A fixed one-second window per port and CPU.
#[inline(always)]
pub(crate) fn within_rate(port: u32) -> bool {
    let limit = match CONFIG.get(0) {
        Some(c) if c.control_rate_pps != 0 => c.control_rate_pps as u64,
        _ => return true,
    };
    let Some(state) = RATE.get_ptr_mut(port) else {
        return true;
    };
    // SAFETY: `state` points at this CPU's slot of a per-CPU array; XDP runs
    // with preemption disabled, so nothing else touches it meanwhile.
    let state = unsafe { &mut *state };
    // SAFETY: a helper with no preconditions.
    let now = unsafe { bpf_ktime_get_ns() };
    if now.wrapping_sub(state.window_start_ns) >= NS_PER_SEC {
        state.window_start_ns = now;
        state.count = 0;
    }
    state.count += 1;
    state.count <= limit
}
