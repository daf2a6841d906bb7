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
//! - `bulk-hit`: `hit`, and those 100,000 entries.
//!
//! After each state is written it prints `ready STATE` on stdout. EOF on
//! stdin ends it (the program is detached).
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::net::Ipv4Addr;

use anyhow::{Context, Result, bail};
use igmpsnoop_dataplane::{Dataplane, XdpMode};

const GROUP: [u8; 4] = [239, 1, 1, 1];
const TRAFFIC_SOURCE: [u8; 4] = [10, 77, 0, 1];
/// Port index 1: the lab's p2, towards h2.
const MEMBER: u64 = 1 << 1;
const BULK_GROUPS: u32 = 1000;
const BULK_PER_GROUP: u32 = 100;

type Entry = ([u8; 4], [u8; 4]);

/// The source entries of a state: (group, source) -> ports.
fn entries(state: &str) -> Result<Vec<(Entry, u64)>> {
    let mut out = Vec::new();
    let (own, bulk) = match state {
        "plain" => ("plain", false),
        "hit" => ("hit", false),
        "miss" => ("miss", false),
        "bulk-plain" => ("plain", true),
        "bulk-hit" => ("hit", true),
        other => bail!("unknown state {other:?}"),
    };
    match own {
        "hit" => out.push(((GROUP, TRAFFIC_SOURCE), MEMBER)),
        "miss" => out.extend((1..=16u8).map(|i| ((GROUP, [10, 99, 0, i]), 1 << 2))),
        _ => {}
    }
    if bulk {
        for k in 0..BULK_GROUPS {
            let group = (Ipv4Addr::new(239, 10, 0, 0).to_bits() + k).to_be_bytes();
            for j in 0..BULK_PER_GROUP {
                let source =
                    (Ipv4Addr::new(10, 100, 0, 0).to_bits() + k * BULK_PER_GROUP + j).to_be_bytes();
                out.push(((group, source), 1 << 2));
            }
        }
    }
    Ok(out)
}

/// Writes `state`, removing the previous state's entries it does not have.
fn apply(dp: &mut Dataplane, installed: &mut HashSet<Entry>, state: &str) -> Result<()> {
    let want = entries(state)?;
    let keep: HashSet<Entry> = want.iter().map(|(e, _)| *e).collect();
    let f = &mut dp.forwarding;
    for &(group, source) in installed.difference(&keep) {
        f.stage_source(0, group, source, None);
        if group != GROUP {
            f.stage_group(0, group, 0);
        }
    }
    for &((group, source), mask) in &want {
        f.stage_group(0, group, MEMBER);
        f.stage_source(0, group, source, Some(mask));
    }
    f.stage_group(0, GROUP, MEMBER);
    f.flush().context("writing the state")?;
    // Publishing port-set slots may wait for RCU; before the measurement.
    f.maintain().context("port sets")?;
    *installed = keep;
    Ok(())
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut ports = Vec::new();
    let mut mode = XdpMode::Native;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--port" => ports.push(value),
            "--mode" => mode = value.parse().map_err(anyhow::Error::msg)?,
            _ => bail!("unknown option {flag} (see the source header)"),
        }
    }
    let mut dp = Dataplane::open(&ports, mode).context("opening the data plane")?;
    dp.forwarding.set_flood_unregistered(false)?;
    let mut installed = HashSet::new();
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let state = line?;
        let state = state.trim();
        apply(&mut dp, &mut installed, state)?;
        writeln!(stdout.lock(), "ready {state}")?;
    }
    Ok(())
}
