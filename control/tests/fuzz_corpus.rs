//! Replays the fuzz corpus (real kernel captures), saved regressions, and a
//! fixed number of mutants of them through the parsers and the engine: none
//! may panic. The long, random run is `scripts/fuzz.sh`.
#[path = "../fuzz/harness.rs"]
mod harness;

use std::path::Path;

use harness::{Rng, Target, load_corpus, mutate};

fn corpus() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut all = load_corpus(&root.join("fuzz/corpus"));
    assert!(
        all.len() >= 8,
        "the seed corpus is missing from control/fuzz/corpus"
    );
    all.extend(load_corpus(&root.join("fuzz/regressions")));
    all.extend(harness::engine_seeds());
    all
}

#[test]
fn corpus_replays_without_panic_and_learns_from_kernel_reports() {
    let mut target = Target::default();
    for (i, input) in corpus().iter().enumerate() {
        target
            .run(input, 0)
            .unwrap_or_else(|e| panic!("input {i} panicked: {e}"));
    }
    // The kernel reports in the corpus are valid joins: the engine learned.
    assert!(
        target.groups() > 0,
        "no group learned from the kernel captures"
    );
}

#[test]
fn fixed_mutants_never_panic() {
    let corpus = corpus();
    let mut rng = Rng::new(7);
    let mut target = Target::default();
    for n in 0..50_000 {
        let (a, b) = (rng.below(corpus.len()), rng.below(corpus.len()));
        let input = mutate(&mut rng, &corpus[a], &corpus[b]);
        if let Err(e) = target.run(&input, (n % 4) as u8) {
            panic!("mutant {n} panicked ({e}): {}", harness::to_hex(&input));
        }
    }
}
