//! The benchmark's python tools (scripts/bench/plot.py, compare.py) on a real
//! results.json: their own tests (scripts/bench/test_tools.py) run with the
//! repo venv's python, which scripts/setup.sh creates with matplotlib. Part of
//! `cargo test`, so scripts/test.sh runs them; where the venv or matplotlib is
//! missing the test fails and names it, it never skips.

use std::process::Command;

use igmpsnoop_tests::{repo_root, scapy_python};

#[test]
fn plot_and_compare_on_a_real_results_file() {
    let python = scapy_python();
    assert!(
        python.exists(),
        "bench tools test cannot run, missing: {} (the repo venv: run scripts/setup.sh)",
        python.display()
    );
    let probe = Command::new(&python)
        .args(["-c", "import matplotlib"])
        .output()
        .expect("run the venv python");
    assert!(
        probe.status.success(),
        "bench tools test cannot run, missing: matplotlib in {} (scripts/setup.sh installs it): {}",
        python.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let out = Command::new(&python)
        .arg(repo_root().join("scripts/bench/test_tools.py"))
        .arg("-v")
        .output()
        .expect("run scripts/bench/test_tools.py");
    // unittest reports on stderr.
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/bench/test_tools.py failed:\n{report}"
    );
    assert!(
        report.contains("Ran ") && report.contains("\nOK"),
        "no unittest summary from scripts/bench/test_tools.py:\n{report}"
    );
}
