//! Batched updates of the outer group map (BPF_MAP_UPDATE_BATCH /
//! BPF_MAP_DELETE_BATCH), which aya 0.14 does not wrap.
//!
//! Every userspace write to a map-in-map waits for an RCU grace period (the
//! kernel's maybe_wait_bpf_programs(), ~15 ms here), so one write per group
//! caps the control plane at ~60 group changes a second. A batch waits once.
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

fn bpf_batch(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<u32> {
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
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(attr.count)
    }
}

/// Sets `keys[i]` to the inner map whose fd is `fds[i]`, for every i, at once.
pub fn update<K>(map_fd: RawFd, keys: &[K], fds: &[u32]) -> io::Result<()> {
    assert_eq!(keys.len(), fds.len());
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        values: fds.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map_fd as u32,
        ..Default::default()
    };
    let done = bpf_batch(BPF_MAP_UPDATE_BATCH, &mut attr)?;
    if done as usize != keys.len() {
        return Err(io::Error::other(format!(
            "batch update stopped after {done} of {}",
            keys.len()
        )));
    }
    Ok(())
}

/// Deletes every key at once; keys that are absent are an error (ENOENT).
pub fn delete<K>(map_fd: RawFd, keys: &[K]) -> io::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut attr = BatchAttr {
        keys: keys.as_ptr() as u64,
        count: keys.len() as u32,
        map_fd: map_fd as u32,
        ..Default::default()
    };
    let done = bpf_batch(BPF_MAP_DELETE_BATCH, &mut attr)?;
    if done as usize != keys.len() {
        return Err(io::Error::other(format!(
            "batch delete stopped after {done} of {}",
            keys.len()
        )));
    }
    Ok(())
}
