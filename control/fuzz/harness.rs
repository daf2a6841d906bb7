//! A coverage-blind fuzzer that runs on stable Rust: seeds from real captures,
//! mutations that keep checksums valid often enough to reach the parsers' and
//! the engine's deeper paths, and a panic check on every input.
//!
//! Shared by `examples/fuzz.rs` (a bounded-time run) and `tests/fuzz_corpus.rs`
//! (replays the corpus and saved regressions).
#![allow(dead_code)]

use std::{
    fs,
    net::Ipv4Addr,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
    time::Duration,
};

use igmpsnoop_control::{
    Action, Config, Engine, PortConfig, Timestamp,
    wire::{checksum, frame},
};

/// xorshift64*: small, deterministic from a seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Reads every `*.hex` file (one frame in hex per file) of a directory.
pub fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    paths.sort();
    for path in paths
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
    {
        if let Some(bytes) = fs::read_to_string(&path)
            .ok()
            .and_then(|t| from_hex(t.trim()))
        {
            out.push(bytes);
        }
    }
    out
}

pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn engine_config() -> (Config, Vec<PortConfig>) {
    let config = Config {
        querier: true,
        querier_address: Some(Ipv4Addr::new(10, 0, 0, 254)),
        max_groups: 4096,
        ..Config::default()
    };
    let ports = (0..4)
        .map(|i| PortConfig {
            name: format!("p{i}"),
            fast_leave: i == 1,
            static_router: i == 3,
            max_groups: Some(1024),
            guard: i == 2,
            vlans: None,
        })
        .collect();
    (config, ports)
}

/// Frames our own engine emits (general and group-specific queries): more seeds.
pub fn engine_seeds() -> Vec<Vec<u8>> {
    let (config, ports) = engine_config();
    let mut engine = Engine::new(config, ports, Timestamp::ZERO).expect("valid fuzz config");
    let mut out = Vec::new();
    engine.handle_timeout(Timestamp::ZERO, &mut out);
    out.into_iter()
        .filter_map(|a| match a {
            Action::Transmit { frame, .. } => Some(frame),
            _ => None,
        })
        .collect()
}

/// One target: the frame parser and the engine, which keeps its state across
/// inputs so sequences (join, leave, query) are explored too.
pub struct Target {
    engine: Engine,
    now: Timestamp,
    out: Vec<Action>,
}

impl Default for Target {
    fn default() -> Self {
        let (config, ports) = engine_config();
        Self {
            engine: Engine::new(config, ports, Timestamp::ZERO).expect("valid fuzz config"),
            now: Timestamp::ZERO,
            out: Vec::new(),
        }
    }
}

impl Target {
    /// Runs one input; Err(message) if anything panicked.
    pub fn run(&mut self, input: &[u8], port: u8) -> Result<(), String> {
        let result = catch_unwind(AssertUnwindSafe(|| {
            let _ = frame::parse(input);
            self.now = self.now + Duration::from_millis(137);
            self.engine
                .handle_frame(self.now, port % 4, input, &mut self.out);
            self.engine.handle_timeout(self.now, &mut self.out);
            self.out.clear();
            let _ = self.engine.groups();
        }));
        result.map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    }

    pub fn groups(&self) -> usize {
        self.engine.group_count()
    }
}

/// Makes one mutant of `seed` (maybe spliced with `other`).
pub fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => data.truncate(rng.below(data.len() + 1)),
            3 => {
                for _ in 0..rng.below(64) {
                    data.push(rng.next() as u8);
                }
            }
            4 if !other.is_empty() => {
                let cut = rng.below(data.len() + 1);
                let from = rng.below(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            5 if data.len() > 4 => {
                // An interesting value at a random place (lengths, counts, types).
                let i = rng.below(data.len() - 1);
                let v: u16 = [
                    0, 1, 0xff, 0x7f, 0x80, 0xffff, 0x0100, 0x22, 0x16, 0x17, 0x11, 0x12,
                    // MLD types and the Router Alert option
                    0x8200, 0x8300, 0x8400, 0x8f00, 0x0502,
                ][rng.below(17)];
                data[i..i + 2].copy_from_slice(&v.to_be_bytes());
            }
            _ => {}
        }
    }
    // Most mutants get their checksums fixed so they reach past the checks.
    if rng.below(4) != 0 {
        fix_checksums(&mut data);
    }
    data
}

/// Recomputes the IPv4 header and IGMP checksums, or the ICMPv6 (MLD)
/// checksum, where the layout allows.
pub fn fix_checksums(data: &mut [u8]) {
    let mut l3 = 14;
    if data.len() >= 18 && data[12] == 0x81 && data[13] == 0x00 {
        l3 = 18;
    }
    if data.len() >= l3 && data[l3 - 2..l3] == [0x86, 0xdd] {
        return fix_icmpv6(data, l3);
    }
    if data.len() < l3 + 20 {
        return;
    }
    let ihl = usize::from(data[l3] & 0x0f) * 4;
    if ihl < 20 || data.len() < l3 + ihl {
        return;
    }
    data[l3 + 10] = 0;
    data[l3 + 11] = 0;
    let c = checksum(&data[l3..l3 + ihl]);
    data[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([data[l3 + 2], data[l3 + 3]]));
    let end = (l3 + total).min(data.len());
    let payload = l3 + ihl;
    if end >= payload + 4 && data[l3 + 9] == 2 {
        data[payload + 2] = 0;
        data[payload + 3] = 0;
        let c = checksum(&data[payload..end]);
        data[payload + 2..payload + 4].copy_from_slice(&c.to_be_bytes());
    }
}

/// The ICMPv6 checksum of an IPv6 frame whose upper layer follows at most
/// one Hop-by-Hop header (as MLD does).
fn fix_icmpv6(data: &mut [u8], l3: usize) {
    let Ok(f) = frame::parse_ipv6(data) else {
        return;
    };
    let (src, dst) = (f.ip.src, f.ip.dst);
    let start = f.payload.as_ptr() as usize - data.as_ptr() as usize;
    let end = start + f.payload.len();
    if f.ip.next_header == 58 && end - start >= 4 && start >= l3 {
        igmpsnoop_control::wire::icmpv6::fill_checksum(src, dst, &mut data[start..end]);
    }
}
