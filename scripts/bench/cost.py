#!/usr/bin/env python3
"""Where a switched frame's CPU time goes: reads `perf script -F comm,ip,sym` of a
system-wide `perf record -a -g` taken while one sender streams through the switch,
and splits the busy samples into stages (scripts/bench.sh section `cost`).

Stages, decided per sample from its call chain (leaf first):
  host-rx   the members' receive: comm napi/* (the lab's hosts run threaded NAPI,
            the switch ports do not, so this is the receiving hosts and nothing else)
  program   the XDP (or TC) program's own instructions: leaf bpf_prog_*
  redirect  redirect, per-copy cloning and the transmit into the member veths: the
            first frame (leaf up) in REDIRECT, inside the switch path
  bridge    the Linux bridge's own code (br_*), inside the switch path
  ingress   the rest of the switch path: the switch port's receive (NAPI, GRO, skb
            allocation in generic mode, the stack up to the hook)
  sender    trafgen's own work and its transmit into the switch port's veth (what
            the ceiling run measures)
  other     anything else that was busy (perf itself, the daemon, ...)
Idle samples (halt) are left out. The switch path is a chain with any of SWITCH in it
outside a napi/* thread.

Usage: cost.py PERF_SCRIPT_OUTPUT FRAMES DURATION_S  -> one JSON object on stdout:
  {"samples": busy samples, "share": {stage: fraction of busy}, "ns_per_frame":
   {stage: ns}, "top": [[symbol, % of busy], ...]}
FRAMES is the frames sent while perf sampled (DURATION_S): bench.sh measures the rate
at a member over a window around the sampling and multiplies it by DURATION_S (perf
takes a moment to start and stop, so counting frames around it would overcount).
"""
import collections
import json
import sys

IDLE = {"pv_native_safe_halt", "default_idle", "native_safe_halt", "acpi_idle_do_entry",
        "mwait_idle", "poll_idle", "cpu_idle_poll", "intel_idle", "default_idle_call"}
SWITCH = ("veth_poll", "do_xdp_generic", "__netif_receive_skb", "net_rx_action",
          "process_backlog", "veth_xdp_rcv", "netif_receive_skb", "bpf_prog_run_generic_xdp")
REDIRECT = ("xdp_do_redirect", "xdp_do_generic_redirect", "dev_map_", "bq_", "xdpf_clone",
            "skb_clone", "generic_xdp_tx", "veth_xdp_xmit", "veth_ndo_xdp_xmit", "veth_xmit",
            "__xdp_", "xdp_return", "bpf_clone_redirect", "__bpf_redirect", "dev_queue_xmit",
            "__dev_queue_xmit", "dev_hard_start_xmit", "br_forward", "br_multicast_flood",
            "maybe_deliver", "deliver_clone", "br_dev_queue_push_xmit")


def samples(lines):
    """(comm, [symbol, leaf first]) per sample."""
    comm, chain = None, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, chain
            comm, chain = None, []
        elif line[0] not in " \t":
            if comm is not None:
                yield comm, chain
            comm, chain = line.split()[0], []
        else:
            parts = line.split()
            if len(parts) >= 2:
                chain.append(parts[1].split("+")[0])
    if comm is not None:
        yield comm, chain


def stage(comm, chain):
    if not chain or chain[0] in IDLE:
        return None
    if comm.startswith("napi/"):
        return "host-rx"
    if chain[0].startswith("bpf_prog_"):
        return "program"
    if any(s.startswith(SWITCH) for s in chain):
        # Leaf up: a transmit or copy reached before the receive path's entry is
        # a copy being sent; the entry reached first means the time went to the
        # receive path below the hook (a sender's transmit further up the same
        # chain, softirq run inline in trafgen's context, does not count).
        bridge = False
        for s in chain:
            if s.startswith(REDIRECT):
                return "redirect"
            if s.startswith(SWITCH):
                return "bridge" if bridge else "ingress"
            bridge = bridge or s.startswith("br_")
        return "ingress"
    if comm == "trafgen":
        return "sender"
    return "other"


def main():
    path, frames, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    with open(path, errors="replace") as f:
        per_stage, leaves, busy = collections.Counter(), collections.Counter(), 0
        for comm, chain in samples(f):
            st = stage(comm, chain)
            if st is None:
                continue
            busy += 1
            per_stage[st] += 1
            leaves[chain[0]] += 1
    share = {k: v / busy for k, v in per_stage.items()} if busy else {}
    # Busy CPU time in the window, per frame: samples are taken at perf's -F on
    # every CPU, so busy/F seconds of CPU went by.
    freq = float(sys.argv[4]) if len(sys.argv) > 4 else 999.0
    busy_ns = busy / freq * 1e9
    ns = {k: busy_ns * v / frames for k, v in share.items()} if frames else {}
    top = [[s, round(100 * n / busy, 1)] for s, n in leaves.most_common(12)] if busy else []
    print(json.dumps({"samples": busy, "duration_s": duration, "share": share,
                      "ns_per_frame": ns, "busy_ns_per_frame": busy_ns / frames if frames else None,
                      "top": top}))


if __name__ == "__main__":
    main()
