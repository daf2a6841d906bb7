//! What the fast path holds, read from a daemon's pinned maps: every
//! (VLAN, group) entry of GROUPS and GROUPS6 and every (S,G) entry of
//! SOURCES, each with the port names its port set's devmap delivers to (the
//! devmap itself is read, not the daemon's bookkeeping). Tests compare it
//! with what `igmpsnoop groups`, `sources` and `routers` say, so that the
//! engine and the fast path are shown never to disagree.
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd as _, AsRawFd as _, RawFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use aya::maps::{DevMapHash, HashMap, Map, MapData};
use igmpsnoop_common::{Group6Key, GroupKey, NO_SET, SetRef, SourceKey};

use crate::Lab;

/// (VLAN, group) or (VLAN, group, source) -> port names.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KernelState {
    pub groups: BTreeMap<(u16, IpAddr), BTreeSet<String>>,
    pub sources: BTreeMap<(u16, IpAddr, IpAddr), BTreeSet<String>>,
}

fn open(pin_dir: &Path, name: &str) -> Result<MapData> {
    let path = pin_dir.join("maps").join(name);
    MapData::from_pin(&path).with_context(|| format!("open pinned map {path:?}"))
}

/// The port names of lab `lab`'s switch, by ifindex.
fn port_names(lab: &Lab) -> Result<BTreeMap<u32, String>> {
    let mut names = BTreeMap::new();
    for port in lab.ports() {
        let out = lab.exec(
            &lab.switch_ns(),
            &["cat", &format!("/sys/class/net/{port}/ifindex")],
        )?;
        names.insert(out.trim().parse().context("ifindex")?, port);
    }
    Ok(names)
}

/// Reads the state the daemon of `lab` pinned at `pin_dir`.
pub fn kernel_state(lab: &Lab, pin_dir: &Path) -> Result<KernelState> {
    let names = port_names(lab)?;
    let sets = open(pin_dir, "PORT_SETS")?;
    let sets_fd = sets.fd().as_fd().as_raw_fd();
    let ports = |set: u32, copies: u32| -> Result<BTreeSet<String>> {
        if copies == 0 {
            if set != NO_SET {
                bail!("an entry with no copies names slot {set}");
            }
            return Ok(BTreeSet::new());
        }
        let set = devmap_ports(sets_fd, set)?
            .into_iter()
            .map(|i| {
                names
                    .get(&i)
                    .cloned()
                    .unwrap_or_else(|| format!("ifindex {i}"))
            })
            .collect::<BTreeSet<_>>();
        if set.len() != copies as usize {
            bail!("an entry says {copies} copies, its set holds {set:?}");
        }
        Ok(set)
    };
    let mut state = KernelState::default();
    let groups: HashMap<_, GroupKey, SetRef> =
        HashMap::try_from(Map::HashMap(open(pin_dir, "GROUPS")?))?;
    for item in groups.iter() {
        let (k, v) = item?;
        let key = (k.vlan, IpAddr::V4(Ipv4Addr::from(k.group)));
        state.groups.insert(key, ports(v.set, u32::from(v.copies))?);
    }
    let groups6: HashMap<_, Group6Key, SetRef> =
        HashMap::try_from(Map::HashMap(open(pin_dir, "GROUPS6")?))?;
    for item in groups6.iter() {
        let (k, v) = item?;
        let key = (k.vlan, IpAddr::V6(Ipv6Addr::from(k.group)));
        state.groups.insert(key, ports(v.set, u32::from(v.copies))?);
    }
    let sources: HashMap<_, SourceKey, SetRef> =
        HashMap::try_from(Map::HashMap(open(pin_dir, "SOURCES")?))?;
    for item in sources.iter() {
        let (k, v) = item?;
        let key = (
            k.vlan,
            IpAddr::V4(Ipv4Addr::from(k.group)),
            IpAddr::V4(Ipv4Addr::from(k.source)),
        );
        state
            .sources
            .insert(key, ports(v.set, u32::from(v.copies))?);
    }
    Ok(state)
}

/// The ifindexes in the devmap at `slot` of the PORT_SETS array of maps.
fn devmap_ports(array_fd: RawFd, slot: u32) -> Result<Vec<u32>> {
    let mut id: u32 = 0;
    let mut attr = LookupAttr {
        map_fd: array_fd as u32,
        _pad: 0,
        key: &slot as *const u32 as u64,
        value: &mut id as *mut u32 as u64,
        flags: 0,
    };
    // SAFETY: BPF_MAP_LOOKUP_ELEM with a valid attr whose key and value
    // point at live u32s (an array of maps returns the inner map's id).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            1 as libc::c_long,
            &mut attr as *mut LookupAttr,
            size_of::<LookupAttr>() as libc::c_uint,
        )
    };
    if ret < 0 {
        bail!("PORT_SETS slot {slot}: {}", std::io::Error::last_os_error());
    }
    let map = DevMapHash::try_from(Map::DevMapHash(MapData::from_id(id)?))?;
    Ok(map.keys().filter_map(|k| k.ok()).collect())
}

/// The element-access member of `union bpf_attr`.
#[repr(C)]
struct LookupAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// The max_entries the kernel gave map `name` of the state pinned at
/// `pin_dir` (what `bpftool map show` prints as `max_entries`).
pub fn map_max_entries(pin_dir: &Path, name: &str) -> Result<u32> {
    let path = pin_dir.join("maps").join(name);
    let info = aya::maps::MapInfo::from_pin(&path).with_context(|| format!("info of {path:?}"))?;
    Ok(info.max_entries())
}
