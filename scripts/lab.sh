#!/usr/bin/env bash
# The igmpsnoop network-namespace lab: one switch namespace, N host namespaces, one
# veth pair per host.
#
#   scripts/lab.sh up [N] [--name NAME] [--ipv6] [--first F] [--defaults]
#                                                  build a lab (N defaults to 4)
#   scripts/lab.sh down NAME                       remove it (idempotent)
#   scripts/lab.sh list                            labs present
#
# --first F numbers the hosts F..F+N-1 (default 1): several labs joined into one
# layer-2 fabric (tests/src/fabric.rs) need distinct host addresses and MACs.
#
# Topology (naming in scripts/lib.sh):
#   <lab>-sw : p1..pN (pF..pF+N-1 with --first), up, no addresses, GRO on, TX
#              checksum offload off
#   <lab>-hI : eth0 = 10.77.0.I/24, MAC 02:00:00:00:00:0I, lo up, GRO on, TX
#              checksum offload off, route 224.0.0.0/4 dev eth0 (joins on the
#              default interface need it)
#
# --defaults leaves every veth at the kernel's defaults (GRO off, checksum offload
# on), as container runtimes create them, so tests also run where users are.
#
# GRO is on at both ends because native-mode XDP redirect into a veth only arrives
# when the receiving end runs NAPI (see DESIGN.md). IPv6 is disabled in every lab
# namespace unless --ipv6 is given, so MLD/ND chatter does not pollute captures and
# interface counters. force_igmp_version stays 0; tests choose it.
#
# Veths are created directly inside their namespaces (ip link add ... netns X peer
# ... netns Y), so the names p1/eth0 never exist in the root namespace and two labs
# can be built at the same time without collisions.
#
# IGMPSNOOP_SETUP_DONE=1 skips the call to scripts/setup.sh.
set -euo pipefail

LOG_TAG=lab
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

usage() {
    sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

lab_down() {
    local lab="$1" ns pid
    for ns in $(lab_namespaces "$lab"); do
        # Anything still running inside (daemons, sniffers) belongs to the lab;
        # killing it lets the namespace really go away.
        for pid in $(ip netns pids "$ns" 2>/dev/null || true); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}

lab_up() {
    local n="$1" lab="$2" ipv6="$3" first="$4" defaults="$5"
    [[ "$n" =~ ^[0-9]+$ ]] && ((n >= 1 && n <= LAB_MAX_HOSTS)) || die "host count must be 1..$LAB_MAX_HOSTS, got '$n'"
    [[ "$first" =~ ^[0-9]+$ ]] && ((first >= 1 && first + n - 1 <= LAB_MAX_HOSTS)) ||
        die "hosts $first..$((first + n - 1)) out of 1..$LAB_MAX_HOSTS"
    local last=$((first + n - 1))
    valid_lab_name "$lab" || die "lab name must match [A-Za-z0-9_]{1,40}, got '$lab'"
    [[ -z "$(lab_namespaces "$lab")" ]] || die "lab '$lab' already exists (scripts/lab.sh down $lab)"

    # A half-built lab is worse than none.
    trap 'rc=$?; log "up failed; removing $lab"; lab_down "$lab"; exit $rc' ERR

    local sw i h v6
    sw="$(lab_sw_ns "$lab")"
    v6=$([[ "$ipv6" == 1 ]] && echo 0 || echo 1)
    ip netns add "$sw"
    # Before any link exists, so new links inherit "default".
    ip netns exec "$sw" sysctl -qw net.ipv6.conf.all.disable_ipv6="$v6" net.ipv6.conf.default.disable_ipv6="$v6"
    ip -n "$sw" link set lo up
    for ((i = first; i <= last; i++)); do
        h="$(lab_host_ns "$lab" "$i")"
        ip netns add "$h"
        ip netns exec "$h" sysctl -qw net.ipv6.conf.all.disable_ipv6="$v6" net.ipv6.conf.default.disable_ipv6="$v6"
        ip link add "p$i" netns "$sw" address "$(lab_port_mac "$i")" type veth \
            peer name eth0 netns "$h" address "$(lab_host_mac "$i")"
        ip -n "$h" link set lo up
        ip -n "$h" addr add "$(lab_host_ip "$i")/$LAB_PREFIXLEN" dev eth0
        # GRO on: native-mode XDP redirect into a veth needs the peer to run NAPI.
        # TX checksum offload off: a veth otherwise hands over CHECKSUM_PARTIAL
        # frames, and a frame that XDP redirects keeps its unfinished UDP
        # checksum, so receivers drop it (a real NIC finishes it in hardware).
        [[ "$defaults" == 1 ]] || ip netns exec "$h" ethtool -K eth0 gro on tx off >/dev/null
        ip -n "$h" link set eth0 up
        ip -n "$h" route add 224.0.0.0/4 dev eth0
        [[ "$defaults" == 1 ]] || ip netns exec "$sw" ethtool -K "p$i" gro on tx off >/dev/null
        ip -n "$sw" link set "p$i" up
    done
    trap - ERR

    echo "$lab"
    {
        echo "lab $lab: switch namespace $sw, $n host(s)"
        for ((i = first; i <= last; i++)); do
            printf '  %-8s <-> %-18s eth0 %-14s %s\n' "p$i" "$(lab_host_ns "$lab" "$i")" \
                "$(lab_host_ip "$i")/$LAB_PREFIXLEN" "$(lab_host_mac "$i")"
        done
        echo "  remove with: scripts/lab.sh down $lab"
    } >&2
}

lab_list() {
    local lab hosts
    for lab in $(lab_names); do
        hosts=$(lab_namespaces "$lab" | grep -c -- '-h[0-9]*$' || true)
        printf '%s\t%s host(s)\n' "$lab" "$hosts"
    done
}

[[ $EUID -eq 0 ]] || die "needs root (network namespaces)"
cmd="${1:-}"
[[ -n "$cmd" ]] || usage
shift
case "$cmd" in
up)
    n=4 name="" ipv6=0 first=1 defaults=0
    while (($#)); do
        case "$1" in
        --name) name="${2:?--name needs a value}"; shift 2 ;;
        --name=*) name="${1#--name=}"; shift ;;
        --ipv6) ipv6=1; shift ;;
        --first) first="${2:?--first needs a value}"; shift 2 ;;
        --defaults) defaults=1; shift ;;
        -h | --help) usage ;;
        *) n="$1"; shift ;;
        esac
    done
    [[ -n "$name" ]] || name="isn$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-5)"
    ensure_setup
    lab_up "$n" "$name" "$ipv6" "$first" "$defaults"
    ;;
down)
    [[ $# -eq 1 ]] || usage
    valid_lab_name "$1" || die "bad lab name '$1'"
    lab_down "$1"
    ;;
list) lab_list ;;
*) usage ;;
esac
