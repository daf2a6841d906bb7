#!/usr/bin/env bash
# Installs what igmpsnoop needs on a fresh machine of this kind and skips what is
# already there. Idempotent: every other script calls it first.
#
#   apt packages   : network tools the lab, tests, demo and benchmark use
#   bpf-linker     : pinned, built against the Rust toolchain's own LLVM 22
#   .venv          : Python venv under the repo with the pinned scapy (test and bench
#                    packets) and matplotlib (the bench's plots, scripts/bench/plot.py)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BPF_LINKER_VERSION="0.13.0"
SCAPY_VERSION="2.8.0"
MATPLOTLIB_VERSION="3.11.2"
# man-db and systemd: the package test reads `man igmpsnoop` and runs
# `systemd-analyze verify` on the unit; curl: the metrics test scrapes with it;
# linux-perf: the cost breakdown of scripts/bench.sh.
APT_PACKAGES=(iproute2 ethtool tcpdump tshark netsniff-ng nftables bpftool jq man-db systemd curl linux-perf)

log() { printf '[setup] %s\n' "$*" >&2; }

# ---- apt packages --------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # tshark asks whether non-root users may capture; answer for it.
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    log "apt: all packages present"
fi

# ---- bpf-linker ------------------------------------------------------------------
# Linked against the LLVM 22 that ships inside the Rust toolchain, so nothing beyond
# the registries is needed (Debian 12 has no LLVM 22). The prefix lives outside the
# repo because bpf-linker's rpath points at it.
SYSROOT="$(rustc --print sysroot)"
LLVM_SO="$(ls "$SYSROOT"/lib/libLLVM.so.22.1-rust-* 2>/dev/null | head -n1 || true)"
[[ -n "$LLVM_SO" ]] || { log "error: no libLLVM.so.22.1-rust-* in $SYSROOT/lib (Rust 1.95 ships one)"; exit 1; }
LLVM_PREFIX="${HOME}/.local/share/igmpsnoop/llvm22"
mkdir -p "$LLVM_PREFIX/lib"
ln -sf "$LLVM_SO" "$LLVM_PREFIX/lib/libLLVM.so"
ln -sf "$LLVM_SO" "$LLVM_PREFIX/lib/$(basename "$LLVM_SO")"

have_linker() {
    command -v bpf-linker >/dev/null 2>&1 &&
        bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"
}
if have_linker; then
    log "bpf-linker $BPF_LINKER_VERSION present"
else
    log "bpf-linker: building $BPF_LINKER_VERSION against $LLVM_SO (about 1.5 min)"
    LLVM_PREFIX="$LLVM_PREFIX" cargo install --locked bpf-linker --version "$BPF_LINKER_VERSION" \
        --no-default-features --features llvm-22 --quiet
    have_linker || { log "error: bpf-linker did not install"; exit 1; }
fi

# ---- python venv ------------------------------------------------------------------
# scapy crafts frames for the tests; matplotlib draws the benchmark's plots;
# prometheus-client's strict OpenMetrics parser validates the metrics endpoint.
PY_PACKAGES=("scapy==$SCAPY_VERSION" "matplotlib==$MATPLOTLIB_VERSION" "prometheus-client==0.21.1")
VENV="$ROOT/.venv"
have_py_packages() {
    "$VENV/bin/python" - "${PY_PACKAGES[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (p.split("==") for p in sys.argv[1:])))
PY
}
if [[ -x "$VENV/bin/python" ]] && have_py_packages; then
    log "venv: ${PY_PACKAGES[*]} present"
else
    log "venv: installing ${PY_PACKAGES[*]} into $VENV"
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
    have_py_packages || { log "error: the venv does not hold ${PY_PACKAGES[*]}"; exit 1; }
fi
log "done"
