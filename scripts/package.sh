#!/usr/bin/env bash
# Builds the Debian package target/debian/igmpsnoop_<version>-1_<arch>.deb:
# the release binary, its man pages and bash/zsh/fish completions (written by
# the binary itself, `igmpsnoop generate`, no network), the systemd unit
# (pkg/igmpsnoop.service) and the default config (pkg/igmpsnoop.toml, a
# conffile). cargo-deb is installed from crates.io at a pinned version.
#
#   scripts/package.sh              build the release binary, then the .deb
#   scripts/package.sh --no-build   package the release binary built already
#
# Prints the path of the .deb on its last line.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
LOG_TAG=package
CARGO_DEB_VERSION="3.8.0"

build=1
case "${1:-}" in
    --no-build) build=0 ;;
    "") ;;
    *) die "unknown argument $1 (usage: scripts/package.sh [--no-build])" ;;
esac

ensure_setup # bpf-linker: the release build embeds the XDP program
if ! cargo deb --version 2>/dev/null | grep -qF "$CARGO_DEB_VERSION"; then
    log "installing cargo-deb $CARGO_DEB_VERSION from crates.io (about 2 min)"
    cargo install --locked cargo-deb --version "$CARGO_DEB_VERSION" --quiet
fi

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/igmpsnoop"
if ((build)); then
    log "cargo build --release"
    cargo build --release --locked -q -p igmpsnoop-control --bin igmpsnoop
fi
[[ -x "$BIN" ]] || die "no release binary at $BIN: run scripts/package.sh without --no-build"

# Generated next to the binary: the asset paths in control/Cargo.toml
# ([package.metadata.deb]) point here.
GEN="$TARGET/release/pkg"
rm -rf "$GEN"
mkdir -p "$GEN/man" "$GEN/completions"
"$BIN" generate man --out "$GEN/man" >/dev/null
gzip -9n "$GEN"/man/*.1
for shell in bash zsh fish; do
    "$BIN" generate completions "$shell" --out "$GEN/completions" >/dev/null
done

log "cargo deb"
rm -f "$TARGET"/debian/igmpsnoop_*.deb
# --strip: the release profile keeps debug info (benchmarks, profiling);
# the package does not need it (38 MB with, a few without).
cargo deb -p igmpsnoop-control --no-build --strip -q >/dev/null
deb="$(ls "$TARGET"/debian/igmpsnoop_*.deb)"
log "built $deb"
echo "$deb"
