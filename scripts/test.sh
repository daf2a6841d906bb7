#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind or this one:
# installs what is missing (scripts/setup.sh), checks formatting and lints,
# then runs every test: the engine's unit and property tests, and the
# end-to-end tests that build network-namespace labs (root needed; a test
# that cannot run fails and names what is missing, it never skips).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
export IGMPSNOOP_SETUP_DONE=1

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
# The XDP crate is linted on its own: built together with userspace, feature
# unification would pull std into it through the shared types crate.
cargo clippy --all-targets --locked -- -D warnings
cargo clippy -p igmpsnoop-ebpf --locked -- -D warnings
echo "== cargo build"
cargo build --all-targets --locked
echo "== scripts/package.sh"
# The release build and cargo-deb's install are heavy: done here, before the
# tests, so they do not compete for the 2 cores with timed netns tests. The
# package test (tests/tests/package.rs) then finds both ready.
scripts/package.sh >/dev/null
echo "== cargo test"
# Netns tests share two cores with the fast path they test; a few at a time.
cargo test --locked --no-fail-fast -- --test-threads "${IGMPSNOOP_TEST_THREADS:-4}"
