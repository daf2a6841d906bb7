//! `fastpath-tool`: opens the data plane (the XDP program and its maps) on
//! switch ports of the current network namespace, with no control plane,
//! and puts it in states named on stdin, one line each, so that a benchmark
//! can measure them in turn on one attached program.
//!
//! ```text
//! nsenter --net=/run/netns/LAB-sw fastpath-tool --mode native --port p1 --port p2 ...
//! ```
//!
//! Every state has group 239.1.1.1 on port 2 (host h2) and differs in its
//! source entries; the traffic's source is 10.77.0.1 (h1):
//!
//! - `plain`: no source entry anywhere ((*,G) only: one lookup per frame);
//! - `hit`: 10.77.0.1 has an entry of its own, also to port 2 (two lookups);
//! - `miss`: 16 other sources of the group have entries, 10.77.0.1 none
//!   (two lookups, the second misses);
//! - `bulk-plain`: `plain`, and 100,000 source entries in 1000 other groups;
//! - `bulk-hit`: `hit`, and those 100,000 entries;
//! - `plain-uncounted`: `plain` with stream counting off (`--count-streams
//!   false`): what counting each stream's frames and bytes costs.
//!
//! VLAN states (`scripts/bench.sh --only vlan`), the same traffic from h1
//! (untagged) to 239.1.1.1:
//!
//! - `vlan-untagged`: no VLAN config, the group on port 2 (as `plain`);
//! - `vlan-push`: p1 an access port of VLAN 10, p2 and p4 trunks of VLAN
//!   10, p3 an access port of VLAN 10; the group (VLAN 10) on port 2: the
//!   program pushes the tag;
//! - `vlan-untagged2`: no VLAN config, the group on ports 2 and 3;
//! - `vlan-mixed2`: the VLAN config of `vlan-push`, the group on ports 2
//!   (tagged) and 3 (untagged): a MIXED set, through the TC program.
//!
//! After each state is written it prints `ready STATE` on stdout. EOF on
//! stdin ends it (the program is detached).
//!
//! `cost N` (with `--pin-dir DIR`, where the program is pinned) runs the
//! program N times on one frame like the benchmark's traffic (h1's 60-byte
//! UDP datagram from 10.77.0.1 to 239.1.1.1:5001, arriving on the first
//! port) with BPF_PROG_TEST_RUN, and prints `cost NS`: the kernel's mean run
//! time. It is the program's own cost (parsing, lookups, counters; the
//! redirect is not carried out), timed by the kernel, which stops its clock
//! while the task is rescheduled: far steadier than throughput on a busy box.
//! `cost6 N` does the same with the IPv6 twin of that frame (80 bytes, UDP
//! from fe80::ff:fe00:1 to ff0e::1:1): every state also has that group, on
//! port 2 too.
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use igmpsnoop_dataplane::{Dataplane, Options, PortMask, PortVlans, XdpMode};

const GROUP: [u8; 4] = [239, 1, 1, 1];
const GROUP6: [u8; 16] = [0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1];
const TRAFFIC_SOURCE6: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 0, 0, 1];
const TRAFFIC_SOURCE: [u8; 4] = [10, 77, 0, 1];
/// Port index 1: the lab's p2, towards h2.
const MEMBER: PortMask = PortMask::single(1);
/// Port index 2: the lab's p3, towards h3.
const OTHER: PortMask = PortMask::single(2);
const BULK_GROUPS: u32 = 1000;
const BULK_PER_GROUP: u32 = 100;

type Entry = ([u8; 4], [u8; 4]);

/// The source entries of a state: (group, source) -> ports.
fn entries(state: &str) -> Result<Vec<(Entry, PortMask)>> {
    let mut out = Vec::new();
    let (own, bulk) = match state {
        "plain" | "plain-uncounted" => ("plain", false),
        "hit" => ("hit", false),
        "miss" => ("miss", false),
        "bulk-plain" => ("plain", true),
        "bulk-hit" => ("hit", true),
        other => bail!("unknown state {other:?}"),
    };
    match own {
        "hit" => out.push(((GROUP, TRAFFIC_SOURCE), MEMBER)),
        "miss" => out.extend((1..=16u8).map(|i| ((GROUP, [10, 99, 0, i]), OTHER))),
        _ => {}
    }
    if bulk {
        for k in 0..BULK_GROUPS {
            let group = (Ipv4Addr::new(239, 10, 0, 0).to_bits() + k).to_be_bytes();
            for j in 0..BULK_PER_GROUP {
                let source =
                    (Ipv4Addr::new(10, 100, 0, 0).to_bits() + k * BULK_PER_GROUP + j).to_be_bytes();
                out.push(((group, source), OTHER));
            }
        }
    }
    Ok(out)
}

/// Writes a `vlan-*` state.
fn apply_vlan(dp: &mut Dataplane, state: &str) -> Result<()> {
    let (configured, members) = match state {
        "vlan-untagged" => (false, MEMBER),
        "vlan-push" => (true, MEMBER),
        "vlan-untagged2" => (false, MEMBER | OTHER),
        "vlan-mixed2" => (true, MEMBER | OTHER),
        other => bail!("unknown state {other:?}"),
    };
    for port in 0..dp.ports().len() {
        let config = configured.then(|| match port {
            1 | 3 => PortVlans::trunk(None, [10]),
            _ => PortVlans::access(10),
        });
        dp.set_port_vlans(port, config)?;
    }
    let vlan = if configured { 10 } else { 0 };
    let f = &mut dp.forwarding;
    f.stage_group(0, GROUP, PortMask::EMPTY);
    f.stage_group(10, GROUP, PortMask::EMPTY);
    f.stage_group(vlan, GROUP, members);
    f.flush().context("writing the state")?;
    f.maintain().context("port sets")?;
    Ok(())
}

/// Writes `state`, removing the previous state's entries it does not have.
fn apply(dp: &mut Dataplane, installed: &mut HashSet<Entry>, state: &str) -> Result<()> {
    if state.starts_with("vlan-") {
        return apply_vlan(dp, state);
    }
    let want = entries(state)?;
    let keep: HashSet<Entry> = want.iter().map(|(e, _)| *e).collect();
    let f = &mut dp.forwarding;
    for &(group, source) in installed.difference(&keep) {
        f.stage_source(0, group, source, None);
        if group != GROUP {
            f.stage_group(0, group, PortMask::EMPTY);
        }
    }
    for &((group, source), mask) in &want {
        f.stage_group(0, group, MEMBER);
        f.stage_source(0, group, source, Some(mask));
    }
    f.stage_group(0, GROUP, MEMBER);
    f.stage_group(0, GROUP6, MEMBER);
    f.set_count_streams(state != "plain-uncounted")?;
    f.flush().context("writing the state")?;
    // Publishing port-set slots may wait for RCU; before the measurement.
    f.maintain().context("port sets")?;
    *installed = keep;
    Ok(())
}

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_TEST_RUN: libc::c_long = 10;

/// The `obj_get` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct ObjGetAttr {
    pathname: u64,
    bpf_fd: u32,
    file_flags: u32,
}

/// The `test` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    /// Explicit, so that it is zero: the kernel refuses nonzero bytes past
    /// the fields it knows.
    _pad: u32,
}

/// `struct xdp_md` as test-run input.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<i64> {
    // SAFETY: attr is a live, initialised bpf_attr member; the pointers in
    // it point at buffers that outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            size_of::<T>() as libc::c_uint,
        )
    };
    if ret < 0 {
        bail!("bpf({cmd}): {}", std::io::Error::last_os_error());
    }
    Ok(ret)
}

/// The benchmark's frame: trafgen's (scripts/bench/bench.py data-cfg).
fn bench_frame() -> Vec<u8> {
    let mut f = vec![
        0x01, 0x00, 0x5e, 0x01, 0x01, 0x01, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
    ];
    f.extend_from_slice(&[0x45, 0, 0, 46, 0, 0, 0x40, 0, 16, 17, 0, 0]);
    f.extend_from_slice(&TRAFFIC_SOURCE);
    f.extend_from_slice(&GROUP);
    f.extend_from_slice(&[0x13, 0x89, 0x13, 0x89, 0, 26, 0, 0]);
    f.resize(60, 0);
    f
}

/// Mean run time (ns) of the pinned program over `repeat` runs.
fn cost(pin_dir: &Path, ifindex: u32, repeat: u32, frame: &[u8]) -> Result<u32> {
    let path = CString::new(pin_dir.join("prog").as_os_str().as_bytes())?;
    let mut get = ObjGetAttr {
        pathname: path.as_ptr() as u64,
        ..Default::default()
    };
    let fd = bpf(BPF_OBJ_GET, &mut get).context("opening the pinned program")? as i32;
    let mut ctx = XdpMd {
        data_end: frame.len() as u32,
        ingress_ifindex: ifindex,
        ..Default::default()
    };
    let mut run = TestRunAttr {
        prog_fd: fd as u32,
        data_size_in: frame.len() as u32,
        data_in: frame.as_ptr() as u64,
        repeat,
        ctx_size_in: size_of::<XdpMd>() as u32,
        ctx_in: (&mut ctx as *mut XdpMd) as u64,
        ..Default::default()
    };
    let result = bpf(BPF_PROG_TEST_RUN, &mut run);
    // SAFETY: fd came from BPF_OBJ_GET and is closed once, here.
    unsafe { libc::close(fd) };
    result.context("BPF_PROG_TEST_RUN")?;
    Ok(run.duration)
}

/// The IPv6 twin of `bench_frame`: UDP from h1's link-local address to
/// ff0e::1:1, 18 bytes of payload.
fn bench_frame6() -> Vec<u8> {
    let mut f = vec![0x33, 0x33, 0, 1, 0, 1, 2, 0, 0, 0, 0, 1, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0, 0, 26, 17, 16]);
    f.extend_from_slice(&TRAFFIC_SOURCE6);
    f.extend_from_slice(&GROUP6);
    f.extend_from_slice(&[0x13, 0x89, 0x13, 0x89, 0, 26, 0, 0]);
    f.resize(80, 0);
    f
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut ports = Vec::new();
    let mut mode = XdpMode::Native;
    let mut pin_dir: Option<PathBuf> = None;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => ports.push(value),
            "--mode" => mode = value.parse().map_err(anyhow::Error::msg)?,
            "--pin-dir" => pin_dir = Some(value.into()),
            _ => bail!("unknown option {flag} (see the source header)"),
        }
    }
    let options = Options {
        pin_dir: pin_dir.clone(),
        max_groups: 4096,
        ..Options::default()
    };
    let mut dp = Dataplane::open_with(&ports, mode, &options).context("opening the data plane")?;
    dp.forwarding.set_flood_unregistered(false)?;
    dp.forwarding.set_snoop_ipv6(true)?;
    let ifindex = dp.ports().first().context("no port")?.ifindex;
    let mut installed = HashSet::new();
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let line = line.trim();
        let measure = line
            .strip_prefix("cost ")
            .map(|n| (n, bench_frame()))
            .or_else(|| line.strip_prefix("cost6 ").map(|n| (n, bench_frame6())));
        if let Some((n, frame)) = measure {
            let dir = pin_dir.as_deref().context("cost needs --pin-dir")?;
            let ns = cost(dir, ifindex, n.parse().context("cost N")?, &frame)?;
            writeln!(stdout.lock(), "cost {ns}")?;
            continue;
        }
        apply(&mut dp, &mut installed, line)?;
        writeln!(stdout.lock(), "ready {line}")?;
    }
    Ok(())
}
