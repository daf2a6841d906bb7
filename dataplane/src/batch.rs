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

/// Errors that concern one element (a full map, no memory for it, a key
/// already gone): the other elements of the batch can still be written.
fn element_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::E2BIG | libc::ENOSPC | libc::ENOMEM | libc::ENOENT)
    )
}

/// Carries out `write` (a batch over `len` elements starting at the given
/// index) so that an element the kernel refuses does not stop the rest: the
/// batch resumes after it. Returns the refused elements, by index, with the
/// kernel's error; an error that is not about one element (a bad map, no
/// permission) refuses every element left.
fn each(
    len: usize,
    mut write: impl FnMut(usize) -> Result<(), Partial>,
) -> Vec<(usize, io::Error)> {
    let mut refused = Vec::new();
    let mut start = 0;
    while start < len {
        match write(start) {
            Ok(()) => break,
            Err(p) if element_error(&p.error) => {
                refused.push((start + p.done, p.error));
                start += p.done + 1;
            }
            Err(p) => {
                let first = start + p.done;
                let kind = p.error.raw_os_error();
                refused.push((first, p.error));
                refused.extend((first + 1..len).map(|i| {
                    let e = kind.map_or_else(
                        || io::Error::other("batch stopped"),
                        io::Error::from_raw_os_error,
                    );
                    (i, e)
                }));
                break;
            }
        }
    }
    refused
}

/// `update`, going on past elements the kernel refuses (see `each`).
pub fn update_each<K, V>(map_fd: RawFd, keys: &[K], values: &[V]) -> Vec<(usize, io::Error)> {
    assert_eq!(keys.len(), values.len());
    each(keys.len(), |start| {
        update(map_fd, &keys[start..], &values[start..])
    })
}

/// `delete`, going on past elements the kernel refuses (see `each`).
pub fn delete_each<K>(map_fd: RawFd, keys: &[K]) -> Vec<(usize, io::Error)> {
    each(keys.len(), |start| delete(map_fd, &keys[start..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(done: usize, errno: i32) -> Partial {
        Partial {
            done,
            error: io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn each_skips_refused_elements_and_resumes() {
        // Elements 2 and 5 of 8 are refused (a full map).
        let mut calls = Vec::new();
        let refused = each(8, |start| {
            calls.push(start);
            match start {
                0 => Err(partial(2, libc::E2BIG)),
                3 => Err(partial(2, libc::E2BIG)),
                _ => Ok(()),
            }
        });
        assert_eq!(calls, vec![0, 3, 6]);
        let at: Vec<usize> = refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(at, vec![2, 5]);
    }

    #[test]
    fn each_stops_on_an_error_about_the_whole_map() {
        let mut calls = 0;
        let refused = each(4, |_| {
            calls += 1;
            Err(partial(1, libc::EBADF))
        });
        assert_eq!(calls, 1);
        let at: Vec<usize> = refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(at, vec![1, 2, 3]);
    }

    #[test]
    fn each_of_nothing_writes_nothing() {
        assert!(each(0, |_| panic!("no call")).is_empty());
    }
}
