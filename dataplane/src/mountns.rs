//! Which mount namespace pinned state lives in.
//!
//! Pins live on a bpffs, and a mount dies with the last process of its mount
//! namespace. `ip netns exec` runs every command in a mount namespace of its
//! own, and so do `unshare -m` and systemd units with PrivateMounts,
//! PrivateTmp or ProtectSystem: a bpffs mounted there would take the pinned
//! state with it when the daemon dies, and no restart could adopt it. So pins
//! always go into the outermost mount namespace this process can reach: that
//! of its most distant ancestor it may inspect (PID 1 on a host or in a
//! container, where /proc/1 is readable; else the login shell's), which
//! outlives every daemon. It is reached by path through `/proc/PID/root`,
//! and mounts are made from a thread that enters it.
use std::{
    fs, io,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
};

/// Where the pin directory's mount namespace is, seen from this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// This process is in the outermost mount namespace it can reach:
    /// paths are as given.
    Here,
    /// This process has a mount namespace of its own; the outermost one is
    /// that of process PID, reached through /proc/PID/root.
    Ancestor(u32),
}

impl Place {
    /// The place of pins for this process. An error when not even our own
    /// mount namespace can be read.
    pub fn find() -> io::Result<Place> {
        let ours = ns_id(Path::new("/proc/thread-self/ns/mnt"))?;
        Ok(match outermost_ancestor() {
            Some((pid, ns)) if ns != ours => Place::Ancestor(pid),
            _ => Place::Here,
        })
    }

    /// `path` (absolute, as named in the outermost mount namespace) as this
    /// process reaches it.
    pub fn view(self, path: &Path) -> PathBuf {
        match self {
            Place::Here => path.to_path_buf(),
            Place::Ancestor(pid) => {
                proc_path(pid, "root").join(path.strip_prefix("/").unwrap_or(path))
            }
        }
    }

    /// Runs `f` in the outermost mount namespace (mounts and unmounts must
    /// be made there; a path through /proc/PID/root does not do for them).
    pub fn run<T: Send>(self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        match self {
            Place::Here => f(),
            Place::Ancestor(pid) => in_mount_ns_of(pid, f),
        }
    }
}

fn proc_path(pid: u32, what: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/{what}"))
}

fn ns_id(path: &Path) -> io::Result<(u64, u64)> {
    fs::metadata(path).map(|m| (m.dev(), m.ino()))
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(proc_path(pid, "stat")).ok()?;
    // The command name is in parentheses and may contain anything; the
    // fields after its closing one are plain: state, then the parent pid.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The most distant ancestor whose mount namespace we may read, with that
/// namespace's id.
fn outermost_ancestor() -> Option<(u32, (u64, u64))> {
    let mut found = None;
    let mut pid = std::process::id();
    while let Some(parent) = parent_of(pid).filter(|p| *p != 0) {
        if let Ok(ns) = ns_id(&proc_path(parent, "ns/mnt")) {
            found = Some((parent, ns));
        }
        pid = parent;
    }
    found
}

/// Runs `f` on a thread of its own that has entered the mount namespace of
/// process `pid`. The thread first unshares its filesystem attributes
/// (setns into a mount namespace refuses a thread that shares them), so the
/// rest of the process stays where it is.
fn in_mount_ns_of<T: Send>(pid: u32, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    let ns = fs::File::open(proc_path(pid, "ns/mnt"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare(2) with CLONE_FS affects only the calling
            // thread, which is this short-lived one.
            if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: setns(2) on an fd we own; it moves only this thread,
            // whose filesystem attributes are its own since the unshare.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) } != 0 {
                return Err(io::Error::last_os_error());
            }
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("mount namespace thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views() {
        let p = Path::new("/run/igmpsnoop/bpf");
        assert_eq!(Place::Here.view(p), p);
        assert_eq!(
            Place::Ancestor(7).view(p),
            Path::new("/proc/7/root/run/igmpsnoop/bpf")
        );
    }

    #[test]
    fn parent_pid_from_stat() {
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() } as u32;
        assert_eq!(parent_of(std::process::id()), Some(ppid));
    }

    #[test]
    fn runs_in_the_parents_namespace() {
        // SAFETY: getppid has no preconditions.
        let ppid = unsafe { libc::getppid() } as u32;
        let id = in_mount_ns_of(ppid, || ns_id(Path::new("/proc/thread-self/ns/mnt"))).unwrap();
        assert_eq!(id, ns_id(&proc_path(ppid, "ns/mnt")).unwrap());
    }
}
