#!/usr/bin/env bash
# Fuzzes the IGMP wire parsers and the engine's frame entry point for a bounded
# time on stable Rust (scripts/fuzz.sh [SECONDS] [SEED]); exits 1 on any crash.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec cargo run --release --locked -q -p igmpsnoop-control --example fuzz -- "${1:-60}" "${2:-$RANDOM}"
