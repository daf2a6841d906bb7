//! Throughput and memory of the snooping engine. A plain `harness = false`
//! main that prints:
//!   cargo bench -p igmpsnoop-control --bench engine
//! Targets: > 2 million reports/s on one core; < 256 bytes per
//! (group, port, host) entry with 100,000 groups.

use igmpsnoop_control::engine::{Action, Config, Engine, PortConfig};
use igmpsnoop_control::time::Timestamp;
use igmpsnoop_control::wire::frame;
use igmpsnoop_control::wire::igmp::{self, GroupRecordRepr, RecordType};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live heap bytes. The only unsafe code in the crate: GlobalAlloc
/// is an unsafe trait, and this just forwards to the system allocator.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every method forwards to System with the same arguments, so the
// GlobalAlloc contract holds as it does for System.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: as for realloc's contract, forwarded unchanged.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const GROUPS: u32 = 100_000;
const PORTS: usize = 48;

fn group(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(0xef00_0000 | (i + 256))
}

fn host_mac(h: u32) -> [u8; 6] {
    let b = h.to_be_bytes();
    [0x02, 0x00, b[0], b[1], b[2], b[3]]
}

fn v2_report(i: u32, h: u32) -> Vec<u8> {
    let g = group(i);
    frame::build_igmp(
        host_mac(h),
        0,
        Ipv4Addr::from(0x0a00_0000 | h),
        g,
        0,
        &igmp::Repr::ReportV2 { group: g },
    )
}

fn v3_report(i: u32, h: u32) -> Vec<u8> {
    let records = vec![GroupRecordRepr {
        record_type: RecordType::ModeIsExclude,
        group: group(i),
        sources: vec![],
    }];
    frame::build_igmp(
        host_mac(h),
        0,
        Ipv4Addr::from(0x0a00_0000 | h),
        Ipv4Addr::new(224, 0, 0, 22),
        0,
        &igmp::Repr::ReportV3 { records },
    )
}

/// A v3 report of `records` IS_IN records for groups `first..`, each
/// with `sources` sources (the same for every group).
fn v3_sources_report(first: u32, records: u32, sources: u32, h: u32) -> Vec<u8> {
    let records = (first..first + records)
        .map(|i| GroupRecordRepr {
            record_type: if sources == 0 {
                RecordType::ModeIsExclude
            } else {
                RecordType::ModeIsInclude
            },
            group: group(i),
            sources: (1..=sources)
                .map(|s| Ipv4Addr::from(0x0a09_0000 | s))
                .collect(),
        })
        .collect();
    frame::build_igmp(
        host_mac(h),
        0,
        Ipv4Addr::from(0x0a00_0000 | h),
        Ipv4Addr::new(224, 0, 0, 22),
        0,
        &igmp::Repr::ReportV3 { records },
    )
}

/// Live heap bytes of an engine that learned `frames` (10 records each).
fn learned_bytes(frames: &[(u8, Vec<u8>)], groups: usize) -> isize {
    let before = LIVE.load(Ordering::Relaxed);
    let mut e = engine(groups);
    let mut out = Vec::new();
    for (port, f) in frames {
        out.clear();
        e.handle_frame(Timestamp::from_millis(1), *port, f, &mut out);
    }
    assert_eq!(e.group_count(), groups);
    let used = LIVE.load(Ordering::Relaxed) - before;
    black_box(e);
    used
}

/// v3 reports of 10 records × 10 sources: throughput, and memory per
/// source record (in total, and beyond the same groups learned as (*,G)).
fn sources_bench() {
    const REPORTS: u32 = 10_000;
    let frames = |sources| -> Vec<(u8, Vec<u8>)> {
        (0..REPORTS)
            .map(|r| {
                (
                    (r % PORTS as u32) as u8,
                    v3_sources_report(r * 10, 10, sources, r),
                )
            })
            .collect()
    };
    let with = frames(10);
    let groups = (REPORTS * 10) as usize;
    let mut e = engine(groups);
    run(&mut e, &with, 1, 1);
    let rate = run(&mut e, &with, 20, 2);
    println!(
        "v3 reports (10 records × 10 sources, IS_IN), refreshing: {:.3} M reports/s ({:.2} M source records/s)",
        rate / 1e6,
        rate * 100.0 / 1e6
    );
    drop(e);
    let star = learned_bytes(&frames(0), groups);
    let src = learned_bytes(&with, groups);
    let records = groups as f64 * 10.0;
    println!(
        "memory: {groups} groups × 10 sources (1 port, 1 host): {:.1} MiB, {:.1} bytes per source record ({:.1} beyond the same groups as (*,G))",
        src as f64 / (1024.0 * 1024.0),
        src as f64 / records,
        (src - star) as f64 / records
    );
}

/// An engine configured for `max_groups`: the table reserves room for that
/// many up front, as a daemon's does.
fn engine(max_groups: usize) -> Engine {
    let config = Config {
        max_groups,
        ..Config::default()
    };
    let ports = (0..PORTS)
        .map(|i| PortConfig {
            name: format!("p{i}"),
            ..PortConfig::default()
        })
        .collect();
    Engine::new(config, ports, Timestamp::from_millis(0)).expect("config")
}

/// Feed every frame `rounds` times; returns reports per second.
fn run(e: &mut Engine, frames: &[(u8, Vec<u8>)], rounds: u32, t0: u64) -> f64 {
    let mut out: Vec<Action> = Vec::with_capacity(16);
    let start = Instant::now();
    for r in 0..rounds {
        let now = Timestamp::from_millis(t0 + u64::from(r));
        for (port, f) in frames {
            out.clear();
            e.handle_frame(now, *port, black_box(f), &mut out);
            black_box(&out);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    f64::from(rounds) * frames.len() as f64 / secs
}

fn memory(hosts_per_port: u32, ports_per_group: u32) {
    let frames: Vec<(u8, Vec<u8>)> = (0..GROUPS)
        .flat_map(|i| {
            (0..ports_per_group).flat_map(move |p| {
                (0..hosts_per_port).map(move |h| {
                    let port = ((i + p) % PORTS as u32) as u8;
                    (
                        port,
                        v2_report(i, (p * hosts_per_port + h) * 1000 + port as u32),
                    )
                })
            })
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    // A daemon run with --max-groups equal to what it then holds.
    let mut e = engine(GROUPS as usize);
    let mut out = Vec::new();
    for (port, f) in &frames {
        out.clear();
        e.handle_frame(Timestamp::from_millis(1), *port, f, &mut out);
    }
    let used = LIVE.load(Ordering::Relaxed) - before;
    let entries = f64::from(GROUPS * ports_per_group * hosts_per_port);
    assert_eq!(e.group_count(), GROUPS as usize);
    println!(
        "memory: {GROUPS} groups × {ports_per_group} port(s) × {hosts_per_port} host(s), --max-groups {GROUPS}: {:.1} MiB, {:.1} bytes per (group, port, host) entry",
        used as f64 / (1024.0 * 1024.0),
        used as f64 / entries
    );
    black_box(e);
}

fn main() {
    // Throughput: v2 reports for 100k groups spread over 48 ports.
    let frames: Vec<(u8, Vec<u8>)> = (0..GROUPS)
        .map(|i| ((i % PORTS as u32) as u8, v2_report(i, i)))
        .collect();
    // A large table (--max-groups 262144, the fast path's cap when this
    // figure was first taken; kept so runs compare): a daemon's worst case
    // for learning, every new group in untouched table memory.
    let mut e = engine(262_144);
    let learn = run(&mut e, &frames, 1, 1);
    let refresh = run(&mut e, &frames, 20, 2);
    println!(
        "v2 reports, learning 100k new groups (--max-groups 262144): {:.2} M reports/s",
        learn / 1e6
    );
    println!(
        "v2 reports, refreshing 100k groups:   {:.2} M reports/s",
        refresh / 1e6
    );

    let frames3: Vec<(u8, Vec<u8>)> = (0..GROUPS)
        .map(|i| ((i % PORTS as u32) as u8, v3_report(i, i)))
        .collect();
    let refresh3 = run(&mut e, &frames3, 20, 100);
    println!(
        "v3 reports (1 record), refreshing:    {:.2} M reports/s",
        refresh3 / 1e6
    );

    // Timer work: age the full table (nothing due; then everything due).
    let mut out = Vec::new();
    let start = Instant::now();
    e.handle_timeout(Timestamp::from_millis(200), &mut out);
    let quick = start.elapsed();
    let start = Instant::now();
    e.handle_timeout(Timestamp::from_millis(10_000_000), &mut out);
    println!(
        "handle_timeout: nothing due {:?}; expiring 100k groups {:?} ({} actions)",
        quick,
        start.elapsed(),
        out.len()
    );

    memory(1, 1);
    memory(2, 2);
    sources_bench();
}
