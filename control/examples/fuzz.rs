//! Bounded-time fuzzing of the wire parsers and the engine's frame entry point,
//! on stable Rust. `scripts/fuzz.sh` runs it.
//!
//!   cargo run --release -p igmpsnoop-control --example fuzz -- [SECONDS] [SEED]
//!
//! Crashing inputs are written to target/fuzz-crashes/ as hex; copy one into
//! control/fuzz/regressions/ to keep it as a test.
#[path = "../fuzz/harness.rs"]
mod harness;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use harness::{Rng, Target, load_corpus, mutate, to_hex};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(30);
    let seed: u64 = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1a2b_3c4d);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut corpus = load_corpus(&root.join("fuzz/corpus"));
    let kernel_seeds = corpus.len();
    corpus.extend(harness::engine_seeds());
    println!(
        "fuzz: {} seeds ({kernel_seeds} kernel captures, {} frames our engine emits), {seconds} s, rng seed {seed}",
        corpus.len(),
        corpus.len() - kernel_seeds
    );

    // Silence the default panic message per crash; we report them ourselves.
    std::panic::set_hook(Box::new(|_| {}));
    let crash_dir = root.join("../target/fuzz-crashes");
    let mut rng = Rng::new(seed);
    let mut target = Target::default();
    let (mut execs, mut crashes, mut max_groups) = (0u64, 0u64, 0usize);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let (a, b) = (rng.below(corpus.len()), rng.below(corpus.len()));
            let input = mutate(&mut rng, &corpus[a], &corpus[b]);
            let port = rng.below(4) as u8;
            if let Err(msg) = target.run(&input, port) {
                crashes += 1;
                let _ = std::fs::create_dir_all(&crash_dir);
                let path = crash_dir.join(format!("crash-{crashes}.hex"));
                let _ = std::fs::write(&path, to_hex(&input) + "\n");
                eprintln!("fuzz: CRASH ({msg}) input saved to {}", path.display());
                target = Target::default();
            }
            execs += 1;
            // Start over now and then so the table does not stay full.
            if execs.is_multiple_of(200_000) {
                target = Target::default();
            }
        }
        max_groups = max_groups.max(target.groups());
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "fuzz: {execs} executions in {secs:.1} s ({:.0}/s), {crashes} crashes, up to {max_groups} groups learned from mutants",
        execs as f64 / secs
    );
    std::process::exit(if crashes == 0 { 0 } else { 1 });
}
