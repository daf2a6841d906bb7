#!/usr/bin/env bash
# igmpsnoop benchmark: igmpsnoop (XDP) against the Linux bridge (mcast_snooping 1,
# mcast_querier 1) in the same kind of netns lab (scripts/lab.sh), same run.
#
#   scripts/bench.sh [--quick] [--out FILE.json] [--plots DIR] [--no-cargo-bench]
#                    [--compare OLD.json [--threshold PCT]]
#                    [--only throughput|latency|scale|reports|sources|ipv6|vlan|cost]
#
#   --quick           fewer repetitions and joins, scale to 10k groups only (~2.5 min, not ~5+)
#   --out FILE        results JSON (default: target/bench/results.json)
#   --plots DIR       SVG plots of the run (default: plots/ next to the results file)
#   --no-cargo-bench  skip the engine's cargo bench
#   --compare OLD     after the run, print every figure against the earlier results file OLD:
#                     old -> new, change in %, WORSE past the threshold in the bad direction
#   --threshold PCT   what --compare flags (default: 10)
#   --only SECTION    run one section: throughput, latency, scale, reports, sources, ipv6, vlan or cost
# Without running a bench: scripts/bench/plot.py RESULTS.json DIR (re-plot an old run) and
# scripts/bench/compare.py OLD.json NEW.json [--threshold PCT] [--fail-on-regression].
#
# Figures (min/median/max over repeated runs, ratio igmpsnoop/bridge):
#  1. throughput 1 -> 1,2,3 members (trafgen 60-byte UDP from h1, rx_packets deltas
#     on the members' eth0), igmpsnoop native + generic XDP, bridge, and the ceiling
#     (trafgen into the veth with nothing attached: p1 rx_packets)
#  2. join latency (the host's report on the wire -> its first datagram, h1 streaming ~20 kpps)
#  3. leave latency (the host's leave on the wire -> its last datagram), default timers and fast leave
#  4. scale: throughput with 1k/10k/100k/1M other groups installed by IGMPv3 reports,
#     daemon VmRSS and BPF map memory (bytes_memlock) per group, BPF map count
#  4b. reports: report processing (--control-rate-limit 0), h1 and h2 sending together at
#     rising offered rates up to 1M reports/s; every report learned or counted as dropped
#  5. source-specific forwarding: throughput to a (*,G) group vs a group with source
#     entries (the frame's source with an entry, or not), and with 100k source
#     entries installed (the data plane driven by fastpath-tool, no daemon), and the
#     program's own cost per frame in each state (BPF_PROG_TEST_RUN); and (*,G) with
#     per-stream counting off (plain-uncounted), to show what counting costs
#  6. IPv6 (a lab with IPv6 on): throughput 1 -> 1,2,3 members (trafgen 64-byte UDP
#     fd77::1 -> ff0e::101, members joined by IPV6_JOIN_GROUP, MLDv2), and MLD join
#     and leave latency as in 2/3, against the bridge with mcast_mld_version 2
#  7. VLANs (the data plane alone, fastpath-tool): untagged vs access->trunk (tag pushed
#     in XDP), and 2 members untagged vs a MIXED set through the TC program
#  8. cost breakdown: per switched frame, the busy CPU time split into stages (sender,
#     switch-port ingress, the program, redirect and copies, the members' receive) from
#     perf call chains, the program's run time from kernel.bpf_stats_enabled, for
#     native, generic and the bridge at 1, 2, 3 members; and an idle daemon's CPU
#  and the engine's cargo bench.
# Lab hosts run threaded NAPI (their receive work is not charged to the switching core),
# but for the latency runs (2, 3 and 6's latency), whose hosts receive in softirq as a
# veth does at kernel defaults: a NAPI thread's wake-up per frame is host delay that
# landed in both switches' tails (README "Benchmarks").
# Everything is torn down on exit. IGMPSNOOP_SETUP_DONE=1 skips scripts/setup.sh.
# IGMPSNOOP_BENCH_DAEMON_ARGS adds flags to every `igmpsnoop run` (e.g. "--fast-join false",
# to compare with and without fast join on the same machine).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CALLER_PWD="$PWD"
cd "$ROOT"
source scripts/lib.sh
LOG_TAG=bench
log() { printf "[bench %4ss] %s\n" "$SECONDS" "$*" >&2; }

QUICK=0 OUT="$ROOT/target/bench/results.json" CARGO_BENCH=1 PLOTS="" COMPARE="" THRESHOLD=10 ONLY=""
while (($#)); do
    case "$1" in
    --quick) QUICK=1; shift ;;
    --only) ONLY="${2:?--only needs a section}"; shift 2 ;;
    --out) OUT="${2:?--out needs a file}"; shift 2 ;;
    --plots) PLOTS="${2:?--plots needs a directory}"; shift 2 ;;
    --no-cargo-bench) CARGO_BENCH=0; shift ;;
    --compare) COMPARE="${2:?--compare needs an earlier results.json}"; shift 2 ;;
    --threshold) THRESHOLD="${2:?--threshold needs a percentage}"; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) die "unknown option $1" ;;
    esac
done
[[ $EUID -eq 0 ]] || die "needs root (network namespaces, XDP)"
case "$ONLY" in "" | throughput | latency | scale | reports | sources | ipv6 | vlan | cost) ;; *) die "--only: throughput, latency, scale, reports, sources, ipv6, vlan or cost" ;; esac
# Whether section $1 runs (all of them unless --only names one).
want() { [[ -z "$ONLY" || "$ONLY" == "$1" ]]; }
[[ $THRESHOLD =~ ^[0-9]+([.][0-9]+)?$ ]] || die "--threshold wants a percentage, e.g. 10, not $THRESHOLD"
# Relative paths are the caller's, not the repo root's this script runs in.
abs_path() { if [[ $1 == /* ]]; then echo "$1"; else echo "$CALLER_PWD/$1"; fi; }
OUT="$(abs_path "$OUT")"
PLOTS="$(abs_path "${PLOTS:-$(dirname "$OUT")/plots}")"
[[ -z "$COMPARE" ]] || COMPARE="$(abs_path "$COMPARE")"

# Report rates: RATE:COUNT steps of IGMPv2 reports for distinct groups, paced by
# mcast-tool (trafgen's -b does not pace here, and its -t tops out near 40 kpps).
# Offered in total from h1 and h2 (half each); the groups of every step of a run add up
# (full: 625,000), under SCALE_MAX_GROUPS.
if ((QUICK)); then
    REPS=2 DUR=0.7 JOINS=50 LEAVES_DEF=3 LEAVES_FAST=30 SCALES="1000 10000"
    RATES="20000:20000 200000:50000 1000000:100000"
else
    REPS=3 DUR=1.5 JOINS=500 LEAVES_DEF=5 LEAVES_FAST=300 SCALES="1000 10000 100000 1000000"
    RATES="10000:10000 50000:25000 100000:50000 200000:100000 400000:100000 700000:140000 1000000:200000"
fi
# IGMPSNOOP_BENCH_SCALES overrides the scale points (e.g. "1000000" to try the largest alone).
SCALES="${IGMPSNOOP_BENCH_SCALES:-$SCALES}"
# --max-groups of the scale and report sections: the fast path's cap, so that 1M fits.
SCALE_MAX_GROUPS=1048576
# The bridge's largest scale point: past it, its install paced by `bridge mdb show`
# counts (seconds each at 600k entries) took over 4 minutes.
BRIDGE_SCALE_MAX=100000
# trafgen gap (us) for the stream the latency runs measure against: ~20 kpps here.
STREAM_GAP_US=20

ensure_setup
export IGMPSNOOP_SETUP_DONE=1
PY="$ROOT/.venv/bin/python"
HELP="$ROOT/scripts/bench/bench.py"
FTOOL="$ROOT/target/release/fastpath-tool"
# Before minutes of building and measuring: the plots need matplotlib, --compare a
# results file it can read.
"$PY" -c "import matplotlib" 2>/dev/null || die "no matplotlib in $ROOT/.venv (scripts/setup.sh installs it)"
if [[ -n "$COMPARE" ]]; then
    "$PY" - "$ROOT/scripts/bench" "$COMPARE" <<'EOF' || die "--compare: cannot use $COMPARE"
import sys
sys.path.insert(0, sys.argv[1])
import results
try:
    results.load(sys.argv[2])
except results.ResultsError as e:
    sys.exit(str(e))
EOF
fi
log "building (release)"
build_release_bins

LAB="bn$$"
SW="$LAB-sw"
TMP="$(mktemp -d /tmp/igmpsnoop-bench.XXXXXX)"
SOCK="$TMP/igmpsnoop.sock"
PIN="$TMP/bpf"
RES="$TMP/results.jsonl" # one JSON object per measurement
: >"$RES"
DAEMON_PID=""
BG=()

stop_bg() {
    local p
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${BG[@]}"; do wait "$p" 2>/dev/null || true; done
    BG=()
}
stop_daemon() {
    if [[ -n "$DAEMON_PID" ]]; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
        DAEMON_PID=""
    fi
}
lab_down() {
    stop_bg
    stop_daemon
    umount -l "$PIN" 2>/dev/null || true
    scripts/lab.sh down "$LAB" >/dev/null 2>&1 || true
}
cleanup() { lab_down; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# set -e alone exits without a word: name what failed.
set -E
trap 'log "error: line $LINENO: $BASH_COMMAND failed"' ERR

H() { echo "$LAB-h$1"; }
lab_up() { # [--ipv6]
    lab_down
    scripts/lab.sh up 4 --name "$LAB" "$@" >/dev/null 2>&1 || die "lab up failed"
    # The hosts' receive work runs in NAPI threads, which the scheduler can put
    # on the other core: on one box of veths it is otherwise charged to the
    # core that switches, which real hosts, on machines of their own, are not.
    local i
    for i in 1 2 3 4; do ip netns exec "$(H "$i")" sh -c 'echo 1 > /sys/class/net/eth0/threaded'; done
    # A global address at once (no duplicate address detection), as Lab::ipv6 gives.
    if [[ "${1:-}" == --ipv6 ]]; then
        for i in 1 2 3 4; do
            ip -n "$(H "$i")" -6 addr add "fd77::$i/64" dev eth0 nodad || die "fd77::$i on $(H "$i")"
        done
    fi
}
# The latency runs' hosts receive in softirq, the kernel's default for a veth, not in a
# NAPI thread: the thread's wake-up for each frame delayed the last datagram forwarded
# before a leave by 0.1-0.35 ms in ~2% of leaves with either switch (README "Benchmarks").
hosts_napi_default() {
    local i
    for i in 1 2 3 4; do ip netns exec "$(H "$i")" sh -c 'echo 0 > /sys/class/net/eth0/threaded'; done
}
now() { date +%s.%N; }
rec() { echo "$1" >>"$RES"; } # a JSON object

# --- switches ------------------------------------------------------------------
daemon_up() { # extra args...
    rm -f "$SOCK"
    # nsenter, not ip netns exec: the daemon's bpffs (pinned state) lives in our
    # mount namespace, where lab_down can unmount it.
    nsenter --net="/run/netns/$SW" "$BIN" run --port p1 --port p2 --port p3 --port p4 --querier \
        --querier-address 10.77.0.254 --socket "$SOCK" --pin-dir "$PIN" ${IGMPSNOOP_BENCH_DAEMON_ARGS:-} "$@" \
        2>>"$TMP/daemon.log" &
    DAEMON_PID=$!
    for _ in $(seq 100); do [[ -S "$SOCK" ]] && return 0; sleep 0.1; done
    tail -n 20 "$TMP/daemon.log" >&2
    die "igmpsnoop did not start"
}
bridge_up() { # extra bridge options...
    # IGMPv3 queries, as igmpsnoop sends: the hosts stay in v3 with both switches.
    ip -n "$SW" link add br0 type bridge mcast_snooping 1 mcast_querier 1 mcast_igmp_version 3 \
        mcast_hash_max 2097152 "$@"
    local i
    for i in 1 2 3 4; do ip -n "$SW" link set "p$i" master br0; done
    ip -n "$SW" link set br0 up
    sleep 1 # ports to forwarding (no STP), own querier running
}
# kind group -> number of member ports the switch lists for the group
members_listed() {
    if [[ $1 == bridge ]]; then
        ip netns exec "$SW" bridge mdb show dev br0 | grep -c " grp $2 " || true
    else
        "$BIN" groups --json --socket "$SOCK" 2>/dev/null |
            jq --arg g "$2" '[.. | objects | select((.group? // "") == $g) | (.ports? // [.port?]) | .[]?] | unique | length' 2>/dev/null || echo 0
    fi
}
wait_members() { # kind group n
    for _ in $(seq 100); do (($(members_listed "$1" "$2") >= $3)) && return 0; sleep 0.1; done
    log "warning: $1 lists $(members_listed "$1" "$2") member ports of $2, wanted $3"
}
group_count() {
    if [[ $1 == bridge ]]; then
        ip netns exec "$SW" bridge mdb show dev br0 | grep -c " grp " || true
    else
        # the listing of a big table can time out on a busy daemon; the counters do not
        "$BIN" stats --json --socket "$SOCK" 2>/dev/null | jq '.engine.groups_added - .engine.groups_removed' 2>/dev/null || echo 0
    fi
}
join_hosts() { # host...: kernel joins of 239.1.1.1 (mcast-tool binds 5000, traffic goes to 5001)
    local h
    for h in "$@"; do
        ip netns exec "$(H "$h")" "$MCAST" recv --group 239.1.1.1 --port 5000 \
            --ready-file "$TMP/ready.$h" >/dev/null 2>&1 &
        BG+=($!)
    done
}

join_hosts6() { # host...: kernel joins of ff0e::101 (IPV6_JOIN_GROUP on port 5000)
    local h
    for h in "$@"; do
        ip netns exec "$(H "$h")" "$PY" "$HELP" hold6 "$G6" 5000 "$TMP/ready6.$h" >/dev/null 2>&1 &
        BG+=($!)
    done
}

# --- traffic -------------------------------------------------------------------
# What measure and stream_start send (the IPv6 section switches to data6.cfg),
# the figure measure records, and the group the latency runs join.
"$PY" "$HELP" data-cfg "$TMP/data.cfg"
"$PY" "$HELP" data6-cfg "$TMP/data6.cfg"
DATA_CFG="$TMP/data.cfg" TP_FIG=throughput LAT_GROUP=239.1.1.1
G6=ff0e::101
rx_of() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/rx_packets"; }
# measure LABEL KIND MEMBERS CEIL: trafgen full speed from h1 for DUR; per-member pps.
# A point whose trafgen exited before its end (seen under load) is measured again.
measure() {
    local try
    for try in 1 2 3; do
        measure_once "$@" && return 0
        log "  warning: trafgen exited during $1 $2 members=$3 ($(tail -n 1 "$TMP/trafgen.log" 2>/dev/null)); again"
    done
    die "trafgen keeps exiting early: $TMP/trafgen.log"
}
measure_once() {
    local label=$1 kind=$2 m=$3 ceil=${4:-0} i t0 t1 tg
    ip netns exec "$(H 1)" timeout 30 trafgen --dev eth0 --conf "$DATA_CFG" --cpus 1 -q -C \
        >/dev/null 2>"$TMP/trafgen.log" &
    tg=$!
    sleep 0.5
    local -a b a
    t0=$(now)
    if ((ceil)); then b[0]=$(rx_of "$SW" p1); else for ((i = 2; i <= m + 1; i++)); do b[i]=$(rx_of "$(H "$i")" eth0); done; fi
    sleep "$DUR"
    if ((ceil)); then a[0]=$(rx_of "$SW" p1); else for ((i = 2; i <= m + 1; i++)); do a[i]=$(rx_of "$(H "$i")" eth0); done; fi
    t1=$(now)
    if ! kill "$tg" 2>/dev/null; then
        wait "$tg" 2>/dev/null || true
        return 1
    fi
    wait "$tg" 2>/dev/null || true
    local tot=0
    if ((ceil)); then tot=$((a[0] - b[0])); else for ((i = 2; i <= m + 1; i++)); do tot=$((tot + a[i] - b[i])); done; fi
    local pps
    pps=$(awk -v t="$tot" -v a="$t0" -v b="$t1" -v m="$((ceil ? 1 : m))" 'BEGIN{printf "%.0f", t/(b-a)/m}')
    rec "{\"fig\":\"$TP_FIG\",\"label\":\"$label\",\"kind\":\"$kind\",\"members\":$m,\"pps_per_member\":$pps,\"copies_per_s\":$((pps * (ceil ? 1 : m)))}"
    log "  $label $kind members=$m: $pps pps/member"
}
stream_start() { # h1 streams ~20 kpps to 239.1.1.1:5001; records the rate it reached
    ip netns exec "$(H 1)" timeout 900 trafgen --dev eth0 --conf "$DATA_CFG" --cpus 1 -q -C \
        -t "${STREAM_GAP_US}us" >/dev/null 2>&1 &
    BG+=($!)
    sleep 0.5
    local a b
    a=$(rx_of "$SW" p1); sleep 1; b=$(rx_of "$SW" p1)
    STREAM_PPS=$((b - a))
}
# The measuring host's sampler runs on the last CPU: trafgen --cpus 1 sends from CPU 0,
# and a sampler woken there by each report held the stream up for both switches (its
# timestamps are the kernel's, taken wherever it runs). None on a 1-CPU machine.
SAMPLER_CPU=$(($(nproc) - 1))
latency() { # fig kind variant mode n [quiet]
    local out pin=()
    ((SAMPLER_CPU > 0)) && pin=(taskset -c "$SAMPLER_CPU")
    out=$(ip netns exec "$(H 2)" "${pin[@]}" timeout 900 "$PY" "$HELP" "$4" "$5" "$LAT_GROUP" 5001 ${6:-} || echo '{"samples_ms":[],"syscall_ms":[],"timeouts":-1}')
    # How the measuring host received, read off it rather than assumed.
    local napi=softirq
    [[ "$(ip netns exec "$(H 2)" cat /sys/class/net/eth0/threaded)" == 0 ]] || napi=threaded
    rec "$(jq -c --arg f "$1" --arg k "$2" --arg v "$3" --argjson pps "$STREAM_PPS" --arg napi "$napi" \
        --argjson cpu "$SAMPLER_CPU" \
        '{fig:$f,kind:$k,variant:$v,samples_ms,syscall_ms,timeouts,stream_pps:$pps,host_napi:$napi,sampler_cpu:$cpu}' <<<"$out")"
    log "  $1 $2 $3 (stream $STREAM_PPS pps): $(jq -c '{n:(.samples_ms|length),timeouts,p50:(.samples_ms|sort|.[(length*0.5|floor)]),max:(.samples_ms|max)}' <<<"$out")"
}

# ================================================================================
if want throughput; then
# 1. Throughput
log "1. throughput (${REPS}x ${DUR}s per point)"
lab_up
for ((r = 1; r <= REPS; r++)); do measure ceiling veth 1 1; done
for kind in native generic bridge; do
    lab_up
    if [[ $kind == bridge ]]; then bridge_up; else daemon_up --xdp-mode "$kind"; fi
    sk=$([[ $kind == bridge ]] && echo bridge || echo igmpsnoop)
    for m in 1 2 3; do
        join_hosts "$((m + 1))"
        wait_members "$sk" 239.1.1.1 "$m"
        for ((r = 1; r <= REPS; r++)); do measure "$kind" "$sk" "$m"; done
    done
    stop_bg
done
fi

if want latency; then
# 2 + 3. Join and leave latency: h4 stays a member (so the group is registered and
# not flooded), h2 joins and leaves. Joins run with fast leave on p2 so each leave
# takes effect before the next join.
log "2/3. join and leave latency (stream at a ${STREAM_GAP_US} us gap)"
for kind in igmpsnoop bridge; do
    for fl in default fast; do
        lab_up
        hosts_napi_default
        if [[ $kind == bridge ]]; then
            bridge_up
            [[ $fl == fast ]] && ip netns exec "$SW" bridge link set dev p2 fastleave on
        else
            if [[ $fl == fast ]]; then daemon_up --fast-leave p2; else daemon_up; fi
        fi
        join_hosts 4
        wait_members "$kind" 239.1.1.1 1
        stream_start
        if [[ $fl == fast ]]; then
            latency join "$kind" fast-leave join "$JOINS"
            latency leave "$kind" fast-leave leave "$LEAVES_FAST" 0.1
        else
            latency leave "$kind" default leave "$LEAVES_DEF" 1.0
        fi
        stop_bg
    done
done
fi

if want scale; then
# 4. Scale. One --max-groups for every point (the cap, so the 1M point fits), so the
# maps the program looks up are the same size at every point; the daemon takes reports
# without a rate limit, so the install measures learning, not the limiter.
log "4. scale: ${SCALES// /, } other groups"
maps() { bpftool map list -j 2>/dev/null | jq length; }
bpf_mem() { "$PY" "$HELP" bpf-mem "$DAEMON_PID"; }
rss_of() { awk '/VmRSS/{print $2}' "/proc/$DAEMON_PID/status"; }
for kind in igmpsnoop bridge; do
    for n in $SCALES; do
        if [[ $kind == bridge ]] && ((n > BRIDGE_SCALE_MAX)); then
            log "  bridge $n groups: not measured (its install and mdb listing take minutes past $BRIDGE_SCALE_MAX)"
            continue
        fi
        lab_up
        base_maps=$(maps)
        if [[ $kind == bridge ]]; then bridge_up; else daemon_up --control-rate-limit 0 --max-groups "$SCALE_MAX_GROUPS"; fi
        join_hosts 2
        wait_members "$kind" 239.1.1.1 1
        rss0=0 mem0='{}'
        [[ $kind == igmpsnoop ]] && { rss0=$(rss_of); mem0=$(bpf_mem); }
        # In chunks of 100,000 groups (1,000 reports, 0.2 s), each once the switch holds
        # the one before (at most 60 s each): a burst of more than its control ring holds
        # would be dropped, so the install time is the switch's learning, not a sender's pace.
        t0=$(now)
        for ((done_ = 0; done_ < n; done_ += 100000)); do
            chunk=$((n - done_ < 100000 ? n - done_ : 100000))
            ip netns exec "$(H 3)" "$PY" "$HELP" v3-send 3 "$chunk" 100 "$done_" >/dev/null
            end=$((SECONDS + 60))
            while ((SECONDS < end)); do c=$(group_count "$kind"); ((${c:-0} >= done_ + chunk + 1)) && break; sleep 0.1; done
            ((${c:-0} >= done_ + chunk + 1)) || { log "  warning: $kind holds ${c:-0} of $((done_ + chunk + 1)) groups"; break; }
        done
        t1=$(now)
        g=$(group_count "$kind"); g=${g:-0}
        rss=0 nmaps=0 mem='{}'
        if [[ $kind == igmpsnoop ]]; then
            rss=$(rss_of)
            mem=$(bpf_mem)
            nmaps=$(($(maps) - base_maps))
        fi
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
        rec "$(jq -nc --argjson n "$n" --argjson g "$g" --argjson s "$secs" --argjson rss "$rss" --argjson rss0 "$rss0" \
            --argjson nm "$nmaps" --argjson m0 "$mem0" --argjson m "$mem" --arg kind "$kind" \
            '{fig:"scale",kind:$kind,groups_sent:$n,groups_listed:$g,install_s:$s,rss_kib:$rss,rss0_kib:$rss0,
              bpf_maps_delta:$nm,bpf_group_bytes:($m.group_bytes//0),bpf_group_bytes0:($m0.group_bytes//0),
              bpf_all_bytes:($m.all_bytes//0),bpf_all_bytes0:($m0.all_bytes//0),bpf_maps_held:($m.maps//0),
              group_max_entries:($m.group_max_entries//0)}')"
        log "  $kind $n groups: listed $g in ${secs}s, rss ${rss0} -> ${rss} KiB, group maps $(jq .group_bytes//0 <<<"$mem0") -> $(jq .group_bytes//0 <<<"$mem") B, +$nmaps BPF maps"
        for ((r = 1; r <= REPS; r++)); do measure "scale$n" "$kind" 1; done
        stop_bg
    done
done
fi

if want reports; then
# 4b. Report processing: IGMPv2 reports for distinct groups from h1 and h2 together (half
# the offered rate each, distinct group ranges), at rising rates. Every report sent is
# learned or counted as dropped somewhere: refused by the host's veth (sent again by
# mcast-tool: it slows the sender, loses nothing), dropped by the XDP rate limit, by the
# AF_XDP socket (ring full, or no fill buffer), by the switch port's receive path (its
# rx_dropped), or processed by the engine (rx_igmp) and learned.
log "4b. report processing from h1 and h2 (igmpsnoop with --control-rate-limit 0)"
igm() { "$BIN" stats --json --socket "$SOCK" | jq "$1"; }
# The counters one point reads before and after, as one JSON object.
report_counters() { # kind
    local c='{}'
    if [[ $1 == igmpsnoop ]]; then
        c=$("$BIN" stats --json --socket "$SOCK" | jq -c '{rx_igmp:.engine.rx_igmp,
            sock_dropped:.control_sockets.rx_dropped, sock_ring_full:.control_sockets.rx_ring_full,
            ratelimit:.dataplane.drop_rate_limit}')
    fi
    jq -c --argjson g "$(group_count "$1")" \
        --argjson t1 "$(ip netns exec "$(H 1)" cat /sys/class/net/eth0/statistics/tx_dropped)" \
        --argjson t2 "$(ip netns exec "$(H 2)" cat /sys/class/net/eth0/statistics/tx_dropped)" \
        --argjson p1 "$(ip netns exec "$SW" cat /sys/class/net/p1/statistics/rx_dropped)" \
        --argjson p2 "$(ip netns exec "$SW" cat /sys/class/net/p2/statistics/rx_dropped)" \
        '. + {groups:$g, veth_tx_dropped:($t1 + $t2), port_rx_dropped:($p1 + $p2)}' <<<"$c"
}
ip2str() { echo "$(($1 >> 24 & 255)).$(($1 >> 16 & 255)).$(($1 >> 8 & 255)).$(($1 & 255))"; }
for kind in igmpsnoop bridge; do
    lab_up
    if [[ $kind == bridge ]]; then bridge_up; else daemon_up --control-rate-limit 0 --max-groups "$SCALE_MAX_GROUPS"; fi
    first=$((236 << 24))
    for step in $RATES; do
        rate=${step%%:*} cnt=${step##*:}
        half=$((cnt / 2)) cnt=$((cnt / 2 * 2))
        c0=$(report_counters "$kind")
        # Both senders start together, each with its own group range.
        for h in 1 2; do
            ip netns exec "$(H "$h")" "$MCAST" reports --iface eth0 --src "10.77.0.$h" \
                --group "$(ip2str $((first + (h - 1) * half)))" --count "$half" --rate $((rate / 2)) \
                >"$TMP/reports.$h" &
            BG+=($!)
        done
        wait "${BG[@]}"
        BG=()
        first=$((first + cnt))
        # Until the count stops moving (a slow learner catches up), at most 10 s.
        prev=-1 g1=0
        for _ in $(seq 50); do g1=$(group_count "$kind"); ((g1 == prev)) && break; prev=$g1; sleep 0.2; done
        c1=$(report_counters "$kind")
        rec "$(jq -nc --arg kind "$kind" --argjson rate "$rate" --argjson cnt "$cnt" --argjson a "$c0" --argjson b "$c1" \
            --slurpfile s1 "$TMP/reports.1" --slurpfile s2 "$TMP/reports.2" '
            def d(k): (($b[k] // 0) - ($a[k] // 0));
            [$s1[0], $s2[0]] as $h |
            {fig:"report_rate", kind:$kind, offered_pps:$rate, sent:$cnt, senders:2,
             achieved_pps:(($h[0].pps + $h[1].pps) | round),
             hosts:[$h[] | {sent, pps:(.pps | round), refused:(.refused // 0)}],
             rx_igmp:d("rx_igmp"), socket_drops:(d("sock_dropped") + d("sock_ring_full")),
             ratelimit_drops:d("ratelimit"), veth_tx_dropped:d("veth_tx_dropped"),
             port_rx_dropped:d("port_rx_dropped"), groups_learned:d("groups")}')"
        log "  $kind $rate/s offered: $(tail -n 1 "$RES" | jq -r '"sent \(.hosts | map("\(.sent) at \(.pps)/s") | join(" + ")), processed \(.rx_igmp), socket drops \(.socket_drops), rate-limit drops \(.ratelimit_drops), veth refusals \(.veth_tx_dropped), port rx_dropped \(.port_rx_dropped), learned \(.groups_learned)"')"
    done
done
fi

# 5. Source-specific forwarding: the data plane alone (fastpath-tool, no daemon)
# in named states, interleaved per repetition on one attached program.
if want sources; then
    SF_STATES="plain plain-uncounted hit miss bulk-plain bulk-hit"
    SF_MODES="native generic"
    ((QUICK)) && SF_MODES="native"
    log "5. source entries: (*,G) vs (S,G), and with 100k source entries (${REPS}x ${DUR}s per point)"
    for kind in $SF_MODES; do
        lab_up
        coproc FT { nsenter --net="/run/netns/$SW" "$FTOOL" --mode "$kind" --port p1 --port p2 --port p3 --port p4 \
            --pin-dir "$PIN" 2>>"$TMP/fastpath-tool.log"; }
        BG+=("$FT_PID")
        ft_in=${FT[1]} ft_out=${FT[0]}
        for ((r = 1; r <= REPS; r++)); do
            for st in $SF_STATES; do
                echo "$st" >&"$ft_in"
                read -r -t 120 line <&"$ft_out" || { tail -n 5 "$TMP/fastpath-tool.log" >&2; die "fastpath-tool: no answer"; }
                [[ $line == "ready $st" ]] || die "fastpath-tool: $line"
                measure "sf-$st" "$kind" 1
                # The program's own cost per frame (BPF_PROG_TEST_RUN, the kernel's clock).
                echo "cost 2000000" >&"$ft_in"
                read -r -t 120 line <&"$ft_out" || die "fastpath-tool: no cost"
                [[ $line == cost\ * ]] || die "fastpath-tool: $line"
                rec "{\"fig\":\"prog_cost\",\"kind\":\"$kind\",\"state\":\"$st\",\"ns\":${line#cost }}"
                log "  program cost $kind $st: ${line#cost } ns/frame"
            done
        done
        exec {ft_in}>&- # EOF: the tool detaches and exits
        stop_bg
    done
fi

# 6. IPv6: the same figures as 1-3 for MLD-snooped IPv6 multicast.
if want ipv6; then
    log "6. IPv6: throughput (${REPS}x ${DUR}s per point), MLD join and leave latency"
    DATA_CFG="$TMP/data6.cfg" TP_FIG=throughput6 LAT_GROUP=$G6
    lab_up --ipv6
    for ((r = 1; r <= REPS; r++)); do measure ceiling veth 1 1; done
    # The bridge's MLD querier needs its link-local address at once, not after DAD.
    bridge6_up() {
        ip netns exec "$SW" sysctl -qw net.ipv6.conf.default.accept_dad=0
        bridge_up mcast_mld_version 2
    }
    for kind in native generic bridge; do
        lab_up --ipv6
        if [[ $kind == bridge ]]; then bridge6_up; else daemon_up --xdp-mode "$kind"; fi
        sk=$([[ $kind == bridge ]] && echo bridge || echo igmpsnoop)
        for m in 1 2 3; do
            join_hosts6 "$((m + 1))"
            wait_members "$sk" "$G6" "$m"
            for ((r = 1; r <= REPS; r++)); do measure "$kind" "$sk" "$m"; done
        done
        stop_bg
    done
    for kind in igmpsnoop bridge; do
        for fl in default fast; do
            lab_up --ipv6
            hosts_napi_default
            if [[ $kind == bridge ]]; then
                bridge6_up
                [[ $fl == fast ]] && ip netns exec "$SW" bridge link set dev p2 fastleave on
            else
                if [[ $fl == fast ]]; then daemon_up --fast-leave p2; else daemon_up; fi
            fi
            join_hosts6 4
            wait_members "$kind" "$G6" 1
            stream_start
            if [[ $fl == fast ]]; then
                latency join6 "$kind" fast-leave join6 "$JOINS"
                latency leave6 "$kind" fast-leave leave6 "$LEAVES_FAST" 0.1
            else
                latency leave6 "$kind" default leave6 "$LEAVES_DEF" 1.0
            fi
            stop_bg
        done
    done
    DATA_CFG="$TMP/data.cfg" TP_FIG=throughput LAT_GROUP=239.1.1.1
fi

# 7. VLANs: the data plane alone (fastpath-tool) in VLAN states, interleaved
# per repetition: untagged (no VLAN config) vs access->trunk (tag pushed in
# XDP), and 2 members untagged vs a MIXED set (one trunk, one access port:
# through the TC program). Same traffic (h1, untagged) throughout.
if want vlan; then
    VL_STATES="vlan-untagged:1 vlan-push:1 vlan-untagged2:2 vlan-mixed2:2"
    log "7. VLANs: untagged vs tag pushed vs MIXED through TC (${REPS}x ${DUR}s per point)"
    for kind in native generic; do
        lab_up
        coproc FT { nsenter --net="/run/netns/$SW" "$FTOOL" --mode "$kind" --port p1 --port p2 --port p3 --port p4 \
            --pin-dir "$PIN" 2>>"$TMP/fastpath-tool.log"; }
        BG+=("$FT_PID")
        ft_in=${FT[1]} ft_out=${FT[0]}
        for ((r = 1; r <= REPS; r++)); do
            for sm in $VL_STATES; do
                st=${sm%%:*} m=${sm##*:}
                echo "$st" >&"$ft_in"
                read -r -t 120 line <&"$ft_out" || { tail -n 5 "$TMP/fastpath-tool.log" >&2; die "fastpath-tool: no answer"; }
                [[ $line == "ready $st" ]] || die "fastpath-tool: $line"
                TP_FIG=vlan measure "$st" "$kind" "$m"
            done
        done
        exec {ft_in}>&- # EOF: the tool detaches and exits
        stop_bg
    done
fi

# 8. Cost breakdown: one sender at full speed through each switch, perf sampling every
# CPU (call chains) and the kernel's own count of the program's run time
# (kernel.bpf_stats_enabled); scripts/bench/cost.py splits the busy time into stages.
# And the daemon's CPU while idle (no traffic, querier on, default timers).
prog_stats() { # run_time_ns run_cnt of the igmpsnoop XDP program (0 0 when none)
    bpftool prog show --json 2>/dev/null |
        jq -r '[.[] | select(.name == "igmpsnoop")] | [(map(.run_time_ns // 0) | add // 0), (map(.run_cnt // 0) | add // 0)] | @tsv'
}
cost_point() { # label kind members
    local label=$1 kind=$2 m=$3 tg f0 f1 s0 s1 t0 t1
    ip netns exec "$(H 1)" timeout 60 trafgen --dev eth0 --conf "$DATA_CFG" --cpus 1 -q -C \
        >/dev/null 2>"$TMP/trafgen.log" &
    tg=$!
    sleep 0.5
    read -r s0 c0 < <(prog_stats)
    t0=$(now)
    if [[ $label == ceiling ]]; then f0=$(rx_of "$SW" p1); else f0=$(rx_of "$(H 2)" eth0); fi
    perf record -a -g -F 999 -o "$TMP/perf.data" -- sleep "$COST_DUR" >/dev/null 2>&1 ||
        die "perf record failed (linux-perf installed? scripts/setup.sh installs it)"
    if [[ $label == ceiling ]]; then f1=$(rx_of "$SW" p1); else f1=$(rx_of "$(H 2)" eth0); fi
    t1=$(now)
    read -r s1 c1 < <(prog_stats)
    kill "$tg" 2>/dev/null || true
    wait "$tg" 2>/dev/null || true
    perf script -i "$TMP/perf.data" -F comm,ip,sym >"$TMP/perf.txt" 2>/dev/null
    # The rate over the whole window (perf takes a moment to start and to
    # stop around its COST_DUR of sampling), and so the frames sent while
    # it sampled.
    local out prog_ns=null pps sampled
    pps=$(awk -v f="$((f1 - f0))" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.0f", f/(b-a)}')
    sampled=$(awk -v p="$pps" -v d="$COST_DUR" 'BEGIN{printf "%.0f", p*d}')
    out=$("$PY" "$ROOT/scripts/bench/cost.py" "$TMP/perf.txt" "$sampled" "$COST_DUR" 999)
    ((c1 > c0)) && prog_ns=$(awk -v t="$((s1 - s0))" -v n="$((c1 - c0))" 'BEGIN{printf "%.1f", t/n}')
    rec "$(jq -c --arg l "$label" --arg k "$kind" --argjson m "$m" --argjson f "$sampled" \
        --argjson p "$prog_ns" --argjson pps "$pps" \
        '{fig:"cost",label:$l,kind:$k,members:$m,frames:$f,pps:$pps,prog_stats_ns:$p} + .' <<<"$out")"
    log "  cost $label members=$m: $pps pps, $(jq -c '{busy_ns:(.busy_ns_per_frame|round),ns:(.ns_per_frame|map_values(round))}' <<<"$out"), program $prog_ns ns (bpf_stats)"
}
if want cost; then
    COST_DUR=2
    ((QUICK)) && COST_DUR=1
    command -v perf >/dev/null || die "perf not installed (scripts/setup.sh installs linux-perf)"
    log "8. cost breakdown (perf -a -g at 999 Hz, ${COST_DUR}s per point) and idle daemon CPU"
    old_stats=$(sysctl -n kernel.bpf_stats_enabled)
    sysctl -qw kernel.bpf_stats_enabled=1
    lab_up
    cost_point ceiling veth 1
    for kind in native generic bridge; do
        lab_up
        if [[ $kind == bridge ]]; then bridge_up; else daemon_up --xdp-mode "$kind"; fi
        sk=$([[ $kind == bridge ]] && echo bridge || echo igmpsnoop)
        for m in 1 2 3; do
            join_hosts "$((m + 1))"
            wait_members "$sk" 239.1.1.1 "$m"
            cost_point "$kind" "$sk" "$m"
        done
        stop_bg
    done
    sysctl -qw kernel.bpf_stats_enabled="$old_stats"
    # Idle: the daemon with the default timers and the querier on, nothing else.
    lab_up
    daemon_up
    sleep 2
    tick=$(getconf CLK_TCK)
    cpu_of() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }
    a=$(cpu_of) t0=$(now)
    sleep 10
    b=$(cpu_of) t1=$(now)
    idle_pct=$(awk -v c="$((b - a))" -v k="$tick" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", 100*c/k/(b-a)}')
    rec "{\"fig\":\"idle_cpu\",\"kind\":\"igmpsnoop\",\"cpu_pct\":$idle_pct,\"seconds\":10}"
    log "  idle daemon: ${idle_pct}% of one CPU over 10 s"
    stop_daemon
fi

lab_down

# ================================================================================
# Tables and JSON
mkdir -p "$(dirname "$OUT")"
CPU=$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)
CB=""
if ((CARGO_BENCH)); then
    log "cargo bench -p igmpsnoop-control --bench engine"
    CB=$(timeout 300 cargo bench --locked -q -p igmpsnoop-control --bench engine 2>/dev/null | grep -v '^\s*$' || echo "(cargo bench failed)")
fi
jq -s --arg cpu "$CPU" --arg kernel "$(uname -r)" --arg nproc "$(nproc)" --argjson quick "$QUICK" \
    --arg cb "$CB" --arg date "$(date -u +%FT%TZ)" \
    '{machine:{cpu:$cpu,kernel:$kernel,nproc:($nproc|tonumber)},quick:($quick==1),date:$date,
      results:., cargo_bench:($cb|split("\n")|map(select(length>0)))}' "$RES" >"$OUT"
"$PY" "$ROOT/scripts/bench/table.py" "$OUT"
log "results: $OUT"
if [[ $ONLY == vlan ]]; then
    log "no plots for the VLAN section (its table is above)"
else
    "$PY" "$ROOT/scripts/bench/plot.py" "$OUT" "$PLOTS" >/dev/null ||
        die "plotting failed (the results are in $OUT; retry: scripts/bench/plot.py $OUT $PLOTS)"
    log "plots: $PLOTS/*.svg"
fi
if [[ -n "$COMPARE" ]]; then
    echo
    "$PY" "$ROOT/scripts/bench/compare.py" "$COMPARE" "$OUT" --threshold "$THRESHOLD"
fi
