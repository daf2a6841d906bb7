//! Pinned state on a bpffs, so that forwarding outlives the daemon: the XDP
//! links (which hold the program on every port), the program and every map
//! are pinned under one directory, a bpffs the daemon mounts itself when the
//! directory is not one already. A `kill -9` leaves all of it in place; the
//! next daemon adopts it; a clean stop (or `igmpsnoop detach`) removes it.
//!
//! ```text
//! DIR/meta          who pinned this: layout version, network namespace
//! DIR/prog          the program
//! DIR/maps/NAME     every map of the program
//! DIR/links/IFINDEX the XDP link of each port
//! DIR/links/tc-IFINDEX the TC ingress (TCX) link of each port
//! ```
//!
//! One daemon at a time: the directory is flock()ed while in use.
use std::{
    ffi::CString,
    fs::{self, File},
    io,
    os::unix::{ffi::OsStrExt as _, fs::MetadataExt as _},
    path::{Path, PathBuf},
};

use aya::maps::{Array, Map, MapData, MapInfo};
use tracing::debug;

use crate::{
    error::{Error, Result},
    mountns::Place,
};

/// statfs f_type of a bpffs.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// Bumped whenever a map's type, key or value changes: pinned state of
/// another layout cannot be adopted.
/// 5: GROUPS6, SOURCES6 and STREAMS6 (IPv6), and two more counters.
/// 6: VLANs: SetRef for every set reference, MASKS, FLOOD_SETS,
/// ROUTER_SETS (ROUTERS gone), PORT_VLANS, PortConf's PVID, SwitchConf's
/// `vlans` (its `router_ports` gone), four more counters, the TC links.
/// 7: fast join: MASKS (shared with VLANs), SLOTS, FAST_JOINS, three CONFIG
/// fields, a counter.
/// 8: two more counters (`tc_rx`, `drop_tc_control`: TC switching what XDP
/// never saw).
/// 9: fast leave: LEAVE_HOSTS, FastJoinEvent's `kind`, a counter
/// (`fast_leave`).
/// 10: GROUPS and GROUPS6 sized by `--max-groups` (they held 262,144 each);
/// pinned ones of another size are refused ([`PinDir::check_group_maps`]).
/// 11: REPORT_SUM (scratch for the program's checksum of a report before
/// fast join or fast leave applies it).
/// 12: VLAN_PORTS (fast join and fast leave on a switch with VLAN config).
pub const STATE_LAYOUT: u32 = 12;
const META_MAGIC: u32 = 0x6967_6d70; // "igmp"

/// The single value of DIR/meta.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StateMeta {
    magic: u32,
    layout: u32,
    netns_dev: u64,
    netns_ino: u64,
    /// 1 when igmpsnoop mounted the bpffs itself (and so unmounts it).
    mounted_by_us: u32,
    _pad: u32,
}

// SAFETY: #[repr(C)] plain data with explicit padding: every bit pattern is
// valid and there are no implicit holes.
unsafe impl aya::Pod for StateMeta {}

/// The network namespace of the calling thread, as (device, inode).
fn netns_id() -> (u64, u64) {
    fs::metadata("/proc/thread-self/ns/net")
        .map(|m| (m.dev(), m.ino()))
        .unwrap_or((0, 0))
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs is plain data; zeroes are a valid value to overwrite.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is NUL-terminated and st is writable; both outlive the call.
    let ok = unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0;
    ok && st.f_type as i64 == BPF_FS_MAGIC
}

fn mount_bpffs(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: every pointer is a valid NUL-terminated string for the call.
    let rc = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            c.as_ptr(),
            c"bpf".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn unmount(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: c is a valid NUL-terminated path for the call.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pin directory named by the user, made absolute: it names a place in
/// the outermost mount namespace, so a relative path is taken from our working
/// directory now.
fn absolute(path: &Path) -> io::Result<PathBuf> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(std::env::current_dir()?.join(path))
    }
}

/// An open pin directory, locked against a second daemon.
pub struct PinDir {
    /// The directory as this process reaches it (through /proc/1/root when
    /// it runs in a mount namespace of its own).
    root: PathBuf,
    /// The directory as named in the outermost mount namespace.
    name: PathBuf,
    place: Place,
    _lock: File,
    meta: StateMeta,
    /// The directory held igmpsnoop state when opened.
    existed: bool,
    /// Ports (ifindex) whose stale link pins `open` removed: their old
    /// program is detached by the kernel a moment later, not at once.
    released: Vec<u32>,
}

/// An error about the pin directory `path`.
fn pin_io(path: &Path, what: &str, source: io::Error) -> Error {
    Error::Pin {
        path: path.to_path_buf(),
        what: what.to_string(),
        source,
    }
}

/// Where pins for `requested` go: its absolute name, the place of the outermost
/// mount namespace, and the path this process reaches it by.
fn locate(requested: &Path) -> Result<(PathBuf, Place, PathBuf)> {
    let name = absolute(requested).map_err(|e| pin_io(requested, "resolve path", e))?;
    let place = Place::find().map_err(|e| Error::PinUnreachable {
        path: name.clone(),
        source: e,
    })?;
    let root = place.view(&name);
    Ok((name, place, root))
}

impl PinDir {
    /// Opens `requested` in the outermost mount namespace (mounting a bpffs there
    /// when it is not one), locks it, and checks that any state found there
    /// is ours to adopt.
    pub fn open(requested: &Path) -> Result<PinDir> {
        let (name, place, root) = locate(requested)?;
        let root = root.as_path();
        let io = |what: &str, source: io::Error| pin_io(&name, what, source);
        let mut mounted_here = false;
        if !is_bpffs(root) {
            place
                .run(|| {
                    fs::create_dir_all(&name)?;
                    mount_bpffs(&name)
                })
                .map_err(|e| io("mount bpffs", e))?;
            mounted_here = true;
            debug!(dir = %name.display(), ?place, "mounted a bpffs for pinned state");
        }
        let lock = lock(root)?;
        for sub in ["maps", "links"] {
            fs::create_dir_all(root.join(sub)).map_err(|e| io("create directory", e))?;
        }
        let (netns_dev, netns_ino) = netns_id();
        let meta_path = root.join("meta");
        let mut released = Vec::new();
        let (meta, existed) = match read_meta(&meta_path)? {
            Some(old) => {
                if old.magic != META_MAGIC || old.layout != STATE_LAYOUT {
                    return Err(Error::PinIncompatible {
                        path: root.to_path_buf(),
                        reason: format!(
                            "it was made by an igmpsnoop with state layout {} (this one has {STATE_LAYOUT})",
                            old.layout
                        ),
                    });
                }
                if (old.netns_dev, old.netns_ino) != (netns_dev, netns_ino) {
                    return Err(Error::PinIncompatible {
                        path: root.to_path_buf(),
                        reason: "it belongs to a switch in another network namespace".into(),
                    });
                }
                let meta = StateMeta {
                    mounted_by_us: old.mounted_by_us | u32::from(mounted_here),
                    ..old
                };
                (meta, true)
            }
            None => {
                // No meta, no complete state (a start that failed half way,
                // or a crash before its end): nothing to adopt; start clean.
                released = pinned_links(root);
                let stale = clear(root);
                if stale > 0 {
                    debug!(dir = %root.display(), stale, "removed pins of an incomplete state");
                }
                (
                    StateMeta {
                        magic: META_MAGIC,
                        layout: STATE_LAYOUT,
                        netns_dev,
                        netns_ino,
                        mounted_by_us: u32::from(mounted_here),
                        _pad: 0,
                    },
                    false,
                )
            }
        };
        Ok(PinDir {
            root: root.to_path_buf(),
            name,
            place,
            _lock: lock,
            meta,
            existed,
            released,
        })
    }

    /// Opens `requested` only to remove what is pinned there (`igmpsnoop
    /// detach`); None when nothing of ours is there.
    pub fn open_existing(requested: &Path) -> Result<Option<PinDir>> {
        let (name, place, root) = locate(requested)?;
        if !is_bpffs(&root) {
            return Ok(None);
        }
        let lock = lock(&root)?;
        let Some(meta) = read_meta(&root.join("meta"))? else {
            return Ok(None);
        };
        Ok(Some(PinDir {
            root,
            name,
            place,
            _lock: lock,
            meta,
            existed: true,
            released: Vec::new(),
        }))
    }

    /// The directory as named in the outermost mount namespace.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Whether the directory held a switch's state when opened.
    pub fn existed(&self) -> bool {
        self.existed
    }

    pub fn map_path(&self, name: &str) -> PathBuf {
        self.root.join("maps").join(name)
    }

    pub fn link_path(&self, ifindex: u32) -> PathBuf {
        self.root.join("links").join(ifindex.to_string())
    }

    /// The TC ingress link of a port.
    pub fn tc_link_path(&self, ifindex: u32) -> PathBuf {
        self.root.join("links").join(format!("tc-{ifindex}"))
    }

    pub fn prog_path(&self) -> PathBuf {
        self.root.join("prog")
    }

    /// Refuses adopted state whose group maps are not `groups` entries
    /// big (it was made with another `--max-groups`): a map smaller than the
    /// control plane's table would refuse groups the table took, and one
    /// bigger could hold more adopted groups than the table may. Nothing is
    /// changed: the state is left for the daemon it fits, or for `detach`.
    pub fn check_group_maps(&self, groups: u32) -> Result<()> {
        for name in igmpsnoop_common::GROUP_MAPS {
            let path = self.map_path(name);
            let info = MapInfo::from_pin(&path).map_err(|source| Error::Map { name, source })?;
            if info.max_entries() != groups {
                return Err(Error::PinIncompatible {
                    path: self.root.clone(),
                    reason: format!(
                        "its group maps hold {} groups and --max-groups asks for {groups} \
                         (restart with --max-groups {} to adopt it)",
                        info.max_entries(),
                        info.max_entries()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Ifindexes with a pinned link.
    pub fn pinned_links(&self) -> Vec<u32> {
        pinned_links(&self.root)
    }

    /// Whether `open` removed a stale link pin of this port: its old
    /// program may still be attached for a moment.
    pub fn released(&self, ifindex: u32) -> bool {
        self.released.contains(&ifindex)
    }

    /// Writes DIR/meta (after everything else is pinned: a directory with a
    /// meta holds a complete state).
    pub fn write_meta(&self) -> Result<()> {
        let path = self.root.join("meta");
        let _ = fs::remove_file(&path);
        let mut array = Array::<MapData, StateMeta>::create(1, 0).map_err(|source| Error::Map {
            name: "meta",
            source,
        })?;
        array.set(0, self.meta, 0).map_err(|source| Error::Map {
            name: "meta",
            source,
        })?;
        array
            .pin(&path)
            .map_err(|e| crate::error::pin_error(&path, "pin", e))
    }

    /// Unpins everything (links first: that detaches the program from every
    /// port once their last fd closes), then unmounts the bpffs if
    /// igmpsnoop mounted it. Returns how many pins were removed.
    pub fn remove_all(&self) -> usize {
        let removed =
            clear(&self.root) + usize::from(fs::remove_file(self.root.join("meta")).is_ok());
        for sub in ["links", "maps"] {
            let _ = fs::remove_dir(self.root.join(sub));
        }
        if self.meta.mounted_by_us != 0 {
            let _ = self.place.run(|| unmount(&self.name));
        }
        let _ = fs::remove_dir(&self.root);
        removed
    }
}

fn pinned_links(root: &Path) -> Vec<u32> {
    let Ok(dir) = fs::read_dir(root.join("links")) else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Removes the links (which detaches them), the maps and the program pinned
/// under `root`; returns how many there were. The meta stays.
fn clear(root: &Path) -> usize {
    let mut removed = 0;
    for sub in ["links", "maps"] {
        if let Ok(entries) = fs::read_dir(root.join(sub)) {
            for e in entries.flatten() {
                removed += usize::from(fs::remove_file(e.path()).is_ok());
            }
        }
    }
    removed + usize::from(fs::remove_file(root.join("prog")).is_ok())
}

fn lock(root: &Path) -> Result<File> {
    let file = File::open(root).map_err(|source| Error::Pin {
        path: root.to_path_buf(),
        what: "open".into(),
        source,
    })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::PinBusy {
            path: root.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Pin {
            path: root.to_path_buf(),
            what: "lock".into(),
            source,
        }),
    }
}

fn read_meta(path: &Path) -> Result<Option<StateMeta>> {
    if !path.exists() {
        return Ok(None);
    }
    let data = MapData::from_pin(path).map_err(|source| Error::Map {
        name: "meta",
        source,
    })?;
    let array = Array::<_, StateMeta>::try_from(Map::Array(data)).map_err(|source| Error::Map {
        name: "meta",
        source,
    })?;
    array.get(&0, 0).map(Some).map_err(|source| Error::Map {
        name: "meta",
        source,
    })
}
