#!/usr/bin/env bash
# The igmpsnoop demo: a lab of 4 hosts on one switch, two of them join a group,
# one sends to it, and you see the group table and who received what.
#
#   scripts/demo.sh            (does all set-up on a fresh machine)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/lib.sh
LOG_TAG=demo

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[[ $EUID -eq 0 ]] || die "the demo creates network namespaces and attaches XDP programs: run it as root"
ensure_setup
export IGMPSNOOP_SETUP_DONE=1

say "Building igmpsnoop (release)"
build_release_bins

LAB="demo$$"
SOCK="/tmp/igmpsnoop-$LAB.sock"
PIN="/tmp/igmpsnoop-$LAB.bpf"
DAEMON_PID=""
RECEIVERS=()
cleanup() {
    for pid in "${RECEIVERS[@]}"; do kill "$pid" 2>/dev/null || true; done
    [[ -n "$DAEMON_PID" ]] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    # Whatever a killed daemon left pinned goes with the lab.
    "$BIN" detach --pin-dir "$PIN" --socket "$SOCK" >/dev/null 2>&1 || true
    scripts/lab.sh down "$LAB" >/dev/null 2>&1 || true
    rm -f "$SOCK" /tmp/"$LAB"-*.out /tmp/"$LAB"-*.ready
}
trap cleanup EXIT

say "A lab: switch namespace $LAB-sw with ports p1..p4, hosts $LAB-h1..h4 (10.77.0.1-4)"
scripts/lab.sh up 4 --name "$LAB" >/dev/null
ip -n "$LAB-sw" -br link show

say "Starting the switch: igmpsnoop run --port p1 ... --port p4 --querier"
# nsenter --net (not ip netns exec, which gives each command a mount namespace
# of its own): the bpffs holding the pinned state then outlives the daemon.
start_switch() {
    rm -f "$SOCK"
    nsenter --net="/run/netns/$LAB-sw" env RUST_LOG=info "$BIN" run --port p1 --port p2 --port p3 \
        --port p4 --querier --querier-address 10.77.0.254 --socket "$SOCK" --pin-dir "$PIN" \
        2>/tmp/"$LAB"-daemon.out &
    DAEMON_PID=$!
    for _ in $(seq 50); do [[ -S "$SOCK" ]] && break; sleep 0.1; done
    [[ -S "$SOCK" ]] || { cat /tmp/"$LAB"-daemon.out; die "the switch did not start"; }
    sed 's/^/  daemon: /' /tmp/"$LAB"-daemon.out
}
start_switch

say "h2 and h3 join 239.1.1.1 (kernel IGMP host stack, IGMPv3); h4 joins 239.2.2.2"
join() { # host group
    ip netns exec "$LAB-h$1" "$MCAST" recv --group "$2" --port 5000 --ready-file /tmp/"$LAB"-h$1.ready \
        >/tmp/"$LAB"-h$1.out 2>&1 &
    RECEIVERS+=($!)
}
join 2 239.1.1.1
join 3 239.1.1.1
join 4 239.2.2.2
for h in 2 3 4; do for _ in $(seq 50); do [[ -f /tmp/"$LAB"-h$h.ready ]] && break; sleep 0.1; done; done
sleep 0.5

say "The group table: igmpsnoop groups"
"$BIN" groups --socket "$SOCK"

say "h1 sends 100 datagrams to 239.1.1.1 and 100 to 239.2.2.2"
before=()
for h in 1 2 3 4; do before[$h]=$(ip netns exec "$LAB-h$h" cat /sys/class/net/eth0/statistics/rx_packets); done
ip netns exec "$LAB-h1" "$MCAST" send --group 239.1.1.1 --port 5000 --count 100 --interval-ms 1
ip netns exec "$LAB-h1" "$MCAST" send --group 239.2.2.2 --port 5000 --count 100 --interval-ms 1
sleep 0.5

say "What each host received"
for pid in "${RECEIVERS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
wait "${RECEIVERS[@]}" 2>/dev/null || true
RECEIVERS=()
printf '  %-4s %-22s %s\n' HOST "SOCKET COUNTS" "FRAMES ON ETH0 (all kinds)"
for h in 1 2 3 4; do
    after=$(ip netns exec "$LAB-h$h" cat /sys/class/net/eth0/statistics/rx_packets)
    counts="-"
    [[ -f /tmp/"$LAB"-h$h.out ]] && counts=$(jq -c '.received' /tmp/"$LAB"-h$h.out 2>/dev/null || echo "?")
    printf '  h%-3s %-22s %s\n' "$h" "$counts" "$((after - before[h]))"
done
echo "  (h2 and h3 got 239.1.1.1 only, h4 239.2.2.2 only, h1 none of its own: the switch replicated"
echo "   each group to its members alone; a few extra eth0 frames are IGMP queries and leaves)"

say "Router ports, querier state, per-port counters"
"$BIN" routers --socket "$SOCK"
echo
"$BIN" querier --socket "$SOCK"
echo
"$BIN" ports --socket "$SOCK"

say "kill -9 the switch: its program, links and maps stay pinned in $PIN, forwarding goes on"
rm -f /tmp/"$LAB"-h2.ready
join 2 239.1.1.1
for _ in $(seq 50); do [[ -f /tmp/"$LAB"-h2.ready ]] && break; sleep 0.1; done
sleep 0.5
kill -KILL "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""
ip -n "$LAB-sw" -d link show p2 | grep -o 'prog/xdp id [0-9]* name [a-z]*' | sed 's/^/  p2: /'
ip netns exec "$LAB-h1" "$MCAST" send --group 239.1.1.1 --port 5000 --count 100 --interval-ms 1
sleep 0.3
kill -TERM "${RECEIVERS[@]}" 2>/dev/null || true
wait "${RECEIVERS[@]}" 2>/dev/null || true
RECEIVERS=()
echo "  h2 received $(jq '.received["239.1.1.1"]' /tmp/"$LAB"-h2.out) of 100 datagrams sent while no daemon ran"

say "A new igmpsnoop on the same --pin-dir adopts the state: no gap, and it queries again"
start_switch
"$BIN" stats --socket "$SOCK" | tail -n 3 | head -n 2
"$BIN" groups --socket "$SOCK"

say "Stopping the switch (SIGTERM detaches every XDP program, unpins, unmounts) and removing the lab"
kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=""
tail -n 1 /tmp/"$LAB"-daemon.out | sed 's/^/  daemon: /'
echo "done"
