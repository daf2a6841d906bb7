# Shared shell helpers for igmpsnoop scripts. Source it; it defines functions only.
#
# Lab naming scheme (the single source of truth; tests/src/lab.rs mirrors it):
#   switch namespace  <lab>-sw      ports p1..pN, no addresses
#   host namespaces   <lab>-h<i>    one veth end each, named eth0
#   host i            10.77.0.<i>/24, MAC 02:00:00:00:<i/256>:<i%256> (hex)
#   switch port i     MAC 02:00:00:01:<i/256>:<i%256> (hex)
# 10.77.0.0/24 exists only inside the lab namespaces.

LAB_SUBNET_PREFIX="10.77.0"
LAB_PREFIXLEN=24
LAB_MAX_HOSTS=250

log() { printf '[%s] %s\n' "${LOG_TAG:-lab}" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Lab names end up inside namespace names and are parsed back by suffix, so keep
# them to a charset that cannot contain the "-sw"/"-hN" separator.
valid_lab_name() { [[ "$1" =~ ^[A-Za-z0-9_]{1,40}$ ]]; }

lab_sw_ns() { printf '%s-sw' "$1"; }
lab_host_ns() { printf '%s-h%d' "$1" "$2"; }
lab_host_ip() { printf '%s.%d' "$LAB_SUBNET_PREFIX" "$1"; }
lab_host_mac() { printf '02:00:00:00:%02x:%02x' $(($1 / 256)) $(($1 % 256)); }
lab_port_mac() { printf '02:00:00:01:%02x:%02x' $(($1 / 256)) $(($1 % 256)); }

# Every namespace that belongs to lab $1, one per line.
lab_namespaces() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$1-(sw|h[0-9]+)\$" || true
}

# Every lab present (by namespace name), one per line.
lab_names() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E -- '-(sw|h[0-9]+)$' |
        sed -E 's/-(sw|h[0-9]+)$//' | sort -u || true
}

# Runs scripts/setup.sh unless the caller says it already has.
ensure_setup() {
    [[ "${IGMPSNOOP_SETUP_DONE:-0}" == 1 ]] && return 0
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    "$root/scripts/setup.sh"
}

# Builds the release binaries the demo and the benchmark run, and sets BIN and
# MCAST to their paths.
build_release_bins() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    (cd "$root" && cargo build --release --locked -q -p igmpsnoop-control -p igmpsnoop-tests --bins)
    BIN="$root/target/release/igmpsnoop"
    MCAST="$root/target/release/mcast-tool"
}
