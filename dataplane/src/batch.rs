//! Batched map writes (BPF_MAP_UPDATE_BATCH / BPF_MAP_DELETE_BATCH), which
//! aya 0.14 does not wrap: one syscall for a whole event-loop round of group
//! changes, and one RCU wait for a whole chunk of new port-set slots (every
//! userspace write to a map of maps waits for a grace period, ~15 ms here).
use std::{io, os::fd::RawFd};

const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// A batch that stopped early: the first `done` elements were written.
#[derive(Debug)]
pub struct Partial {
    pub done: usize,
    pub error: io::Error,
}

fn bpf_batch(cmd: libc::c_long, attr: &mut BatchAttr, len: usize) -> Result<(), Partial> {
    // SAFETY: attr is a valid, initialised bpf_attr prefix of the given size;
    // the key and value pointers inside point at `count` elements that outlive
    // the call (the callers' slices).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            size_of::<BatchAttr>() as libc::c_uint,
        )
    };
    // The kernel writes back how many elements it processed, also on error.
    let done = (attr.count as usize).min(len);
    if ret < 0 {
        return Err(Partial {
            done,
            error: io::Error::last_os_error(),
        });
    }
    if done != len {
        return Err(Partial {
            done,
            error: io::Error::other(format!("batch stopped after {done} of {len}")),
        });
    }
    Ok(())
}

/// Sets `keys[i]` to `values[i]` for every i, in one syscall. For a map of
/// maps the values are the inner maps' fds (u32).
pub fn update<K, V>(map_fd: RawFd, keys: &[K], values: &[V]) -> Result<(), Partial> {
    assert_eq!(keys.len(), values.len());
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: values.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map_fd as u32,
        ..Default::default()
    };
    bpf_batch(BPF_MAP_UPDATE_BATCH, &mut attr, keys.len())
}

/// Deletes every key in one syscall; a key that is absent stops the batch
/// (ENOENT).
pub fn delete<K>(map_fd: RawFd, keys: &[K]) -> Result<(), Partial> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map_fd as u32,
        ..Default::default()
    };
    bpf_batch(BPF_MAP_DELETE_BATCH, &mut attr, keys.len())
}
