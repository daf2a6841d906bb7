//! The per-port counters (`igmpsnoop_common::counter`), per CPU.

use igmpsnoop_common::counter;

use crate::maps::COUNTERS;

#[inline(always)]
pub(crate) fn count(port: u32, which: u32) {
    add(port, which, 1);
}

#[inline(always)]
pub(crate) fn add(port: u32, which: u32, n: u64) {
    if let Some(slot) = COUNTERS.get_ptr_mut(port * counter::COUNT + which) {
        // SAFETY: this CPU's slot of a per-CPU array; XDP and TC run with
        // preemption disabled.
        unsafe { *slot += n };
    }
}
