//! The daemon's scheduler slice (`--sched-slice-ms`).
//!
//! Under EEVDF (Linux 6.12 and later) a waking task whose slice is shorter
//! than the running task's preempts it at once (PREEMPT_SHORT); with equal
//! slices the running task keeps the CPU to the end of its own. The daemon's
//! work on a report the fast path already applied can wait, a sender's
//! next frame cannot: with the default slice, a sender woken on the
//! daemon's core waited out a whole round (100-170 µs, perf sched_switch,
//! in the join benchmark). A longer slice for the daemon changes only who
//! goes first on a wake-up; its weight, so its share of the CPU, is the
//! same. Hosts flooding the daemon with reports from its own cores go
//! first too, and it learned less of such a flood: so the default is the
//! kernel's slice, and this is the operator's choice. Older kernels ignore
//! the field.
//!
//! By hand: libc has the syscall number but not `struct sched_attr`, and
//! no maintained crate wraps this call.
use std::time::Duration;

/// `struct sched_attr` (include/uapi/linux/sched/types.h), its first
/// version's 56 bytes with the utilisation clamps.
#[repr(C)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Asks for `slice` for the calling thread and every thread it starts
/// after (a thread inherits its creator's attributes), keeping its policy
/// and nice value. Returns false, changing nothing, under a policy other
/// than SCHED_OTHER or SCHED_BATCH (an operator's real-time choice stands).
pub fn set_slice(slice: Duration) -> std::io::Result<bool> {
    // SAFETY: no memory arguments; 0 is the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    if policy < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let policy = policy & !libc::SCHED_RESET_ON_FORK;
    if policy != libc::SCHED_OTHER && policy != libc::SCHED_BATCH {
        return Ok(false);
    }
    // SAFETY: no memory arguments. -1 is also a valid nice value; an error
    // (none is possible for the calling process) would read as -1.
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: policy as u32,
        flags: 0,
        nice,
        priority: 0,
        runtime: slice.as_nanos() as u64,
        deadline: 0,
        period: 0,
        util_min: 0,
        util_max: 0,
    };
    // SAFETY: `attr` is a valid sched_attr of the size it declares, alive
    // for the call; pid 0 is the calling thread; flags 0.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    if r == 0 {
        Ok(true)
    } else {
        Err(std::io::Error::last_os_error())
    }
}
