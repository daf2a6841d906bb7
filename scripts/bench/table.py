#!/usr/bin/env python3
"""Prints the markdown tables of a scripts/bench.sh results JSON."""
import json
import statistics
import sys

d = json.load(open(sys.argv[1]))
R = d["results"]


def mmm(v, fmt="{:,.0f}"):
    if not v:
        return "n/a"
    return "{} / {} / {}".format(fmt.format(min(v)), fmt.format(statistics.median(v)), fmt.format(max(v)))


def med(v):
    return statistics.median(v) if v else None


def ratio(a, b):
    return "{:.2f}".format(a / b) if a and b else "n/a"


def pct(v, p):
    if not v:
        return None
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


m = d["machine"]
print("Machine: {} x {}, kernel {}{}\n".format(m["nproc"], m["cpu"], m["kernel"], " (--quick)" if d["quick"] else ""))

tp = [r for r in R if r["fig"] == "throughput"]
if any(r["label"] in ("ceiling", "native", "generic", "bridge") for r in tp):
    ceil = [r["pps_per_member"] for r in tp if r["label"] == "ceiling"]
    print("### 1. Throughput, 60-byte UDP, 1 sender (pps per member; min / median / max)\n")
    print("ceiling (trafgen into a veth, nothing attached): {} pps\n".format(mmm(ceil)))
    print("| members | igmpsnoop native | igmpsnoop generic | bridge | native/bridge | generic/bridge | native copies/s | native % of ceiling |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (1, 2, 3):
        g = {k: [r["pps_per_member"] for r in tp if r["label"] == k and r["members"] == n] for k in ("native", "generic", "bridge")}
        nat = med(g["native"])
        print("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            n, mmm(g["native"]), mmm(g["generic"]), mmm(g["bridge"]), ratio(nat, med(g["bridge"])),
            ratio(med(g["generic"]), med(g["bridge"])), "{:,.0f}".format(nat * n) if nat else "n/a",
            "{:.0f}%".format(100 * nat / med(ceil)) if nat and ceil else "n/a"))

lat = [r for r in R if r["fig"] in ("join", "leave")]
if lat:
    spps = sorted({r.get("stream_pps", 0) for r in lat})
    napi = " / ".join(sorted({r.get("host_napi", "threaded") for r in lat}))
    where = " / ".join(sorted({"CPU {}".format(r["sampler_cpu"]) if r.get("sampler_cpu") else "any CPU" for r in lat}))
    print("\n### 2/3. Join and leave latency (ms, from the host's report on the wire; h1 streams {} pps; "
          "hosts receive in {} NAPI; sampler on {})\n".format(
              " / ".join("{:,}".format(p) for p in spps) or "?", napi, where))
    print("| figure | igmpsnoop p50 / p99 (n) | bridge p50 / p99 (n) | ratio p50 | from the syscall: igmpsnoop / bridge p50 / p99 |")
    print("|---|---|---|---|---|")
    for fig, var in (("join", "fast-leave"), ("leave", "default"), ("leave", "fast-leave")):
        cells, p50s, sys_cells = [], [], []
        for k in ("igmpsnoop", "bridge"):
            x = [r for r in lat if r["fig"] == fig and r["kind"] == k and r["variant"] == var]
            s = x[0]["samples_ms"] if x else []
            sc = x[0].get("syscall_ms", []) if x else []
            t = x[0]["timeouts"] if x else 0
            p50s.append(pct(s, 50))
            cells.append("{:.3f} / {:.3f} ({}{})".format(pct(s, 50), pct(s, 99), len(s), ", {} timeouts".format(t) if t else "") if s else "n/a")
            sys_cells.append("{:.3f} / {:.3f}".format(pct(sc, 50), pct(sc, 99)) if sc else "n/a")
        print("| {} ({}) | {} | {} | {} | {} |".format(fig, var, cells[0], cells[1], ratio(*p50s), " vs ".join(sys_cells)))

MIB = 1024 * 1024


def per_group(after, before, n):
    """Bytes per group of what installing N groups added (n/a without the figures)."""
    return "{:,.0f}".format((after - before) / n) if after and n else "n/a"


sc = [r for r in R if r["fig"] == "scale"]
if sc:
    print("\n### 4. Scale: one group (1 member) while N other groups are installed\n")
    print("| other groups | igmpsnoop pps | bridge pps | ratio | groups listed (igmpsnoop / bridge) "
          "| install s (igmpsnoop / bridge) | daemon VmRSS MiB (B/group) | BPF group maps MiB (B/group) "
          "| BPF maps held MiB | BPF maps (delta) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in sorted({r["groups_sent"] for r in sc}):
        i = next((r for r in sc if r["kind"] == "igmpsnoop" and r["groups_sent"] == n), {})
        b = next((r for r in sc if r["kind"] == "bridge" and r["groups_sent"] == n), {})
        pi = [r["pps_per_member"] for r in tp if r["label"] == "scale%d" % n and r["kind"] == "igmpsnoop"]
        pb = [r["pps_per_member"] for r in tp if r["label"] == "scale%d" % n and r["kind"] == "bridge"]
        rss = "{:.1f} ({})".format(i.get("rss_kib", 0) / 1024,
                                   per_group(i.get("rss_kib", 0) * 1024, i.get("rss0_kib", 0) * 1024, n)
                                   if i.get("rss0_kib") else "n/a")
        gm = "{:.1f} ({})".format(i.get("bpf_group_bytes", 0) / MIB,
                                  per_group(i.get("bpf_group_bytes", 0), i.get("bpf_group_bytes0", 0), n)) \
            if i.get("bpf_group_bytes") else "n/a"
        held = "{:.1f}".format(i["bpf_all_bytes"] / MIB) if i.get("bpf_all_bytes") else "n/a"
        print("| {:,} | {} | {} | {} | {} / {} | {} / {} | {} | {} | {} | {} |".format(
            n, mmm(pi), mmm(pb), ratio(med(pi), med(pb)), i.get("groups_listed"), b.get("groups_listed", "n/a"),
            i.get("install_s"), b.get("install_s", "n/a"), rss, gm, held, i.get("bpf_maps_delta")))
    if any(r.get("bpf_group_bytes") for r in sc):
        print("\nB/group: what installing the N groups added (VmRSS, or the group maps' bytes_memlock), per "
              "group; the group maps' MiB include their bucket arrays, allocated whole at --max-groups "
              "{:,}. BPF maps held: every map the daemon holds open.".format(
                  max(r.get("group_max_entries", 0) for r in sc)))

rr = [r for r in R if r["fig"] == "report_rate"]


def accounting(r):
    """Sent = learned + every counted drop; the difference (0, or to be explained)."""
    counted = r["groups_learned"] + r.get("socket_drops", 0) + r.get("ratelimit_drops", 0) \
        + (r["rx_igmp"] - r["groups_learned"])
    return r["sent"] - counted


if rr:
    two = any(r.get("senders") == 2 for r in rr)
    print("\n### 4b. Report processing (IGMPv2 reports for distinct groups from {}, paced; igmpsnoop with "
          "--control-rate-limit 0)\n".format("h1 and h2 together, half each" if two else "one host"))
    print("| offered reports/s | igmpsnoop: sent at (h1 + h2) / processed / socket drops / rate-limit drops "
          "/ groups learned | veth refusals (sent again) / port rx_dropped | bridge: sent at / groups learned |")
    print("|---|---|---|---|")
    for rate in sorted({r["offered_pps"] for r in rr}):
        i = next((r for r in rr if r["kind"] == "igmpsnoop" and r["offered_pps"] == rate), {})
        b = next((r for r in rr if r["kind"] == "bridge" and r["offered_pps"] == rate), {})
        at = " ({})".format(" + ".join("{:,}".format(h["pps"]) for h in i["hosts"])) if i.get("hosts") else ""
        print("| {:,} | {:,}{} / {} of {} / {} / {} / {} | {} / {} | {:,} / {} of {} |".format(
            rate, i.get("achieved_pps", 0), at, i.get("rx_igmp"), i.get("sent"), i.get("socket_drops"),
            i.get("ratelimit_drops", "n/a"), i.get("groups_learned"), i.get("veth_tx_dropped", "n/a"),
            i.get("port_rx_dropped", "n/a"), b.get("achieved_pps", 0), b.get("groups_learned"), b.get("sent")))
    print("\nAccounting, igmpsnoop (sent = learned + socket drops + rate-limit drops + processed but not "
          "learned; difference):")
    for r in sorted((r for r in rr if r["kind"] == "igmpsnoop"), key=lambda r: r["offered_pps"]):
        print("- {:,}/s: {:,} = {:,} + {:,} + {:,} + {:,}; difference {:,}".format(
            r["offered_pps"], r["sent"], r["groups_learned"], r.get("socket_drops", 0), r.get("ratelimit_drops", 0),
            r["rx_igmp"] - r["groups_learned"], accounting(r)))
    ok = [r["achieved_pps"] for r in rr if r["kind"] == "igmpsnoop" and r["groups_learned"] >= r["sent"]]
    okb = [r["achieved_pps"] for r in rr if r["kind"] == "bridge" and r["groups_learned"] >= r["sent"]]
    print("\nHighest rate sent with every report learned: igmpsnoop {} reports/s, bridge {} reports/s. The bridge "
          "learns in the sender's transmit path, so it slows the sender down instead of dropping. A veth "
          "refusal (the switch port's ring full, the host's tx_dropped) is sent again by mcast-tool: it "
          "slows the sender, loses no report. Port rx_dropped: what the switch ports' receive path "
          "dropped (a failed redirect into a full socket is counted by the socket, not there).".format(
              "{:,}".format(max(ok)) if ok else "none", "{:,}".format(max(okb)) if okb else "none"))

SF_STATES = (
    ("plain", "(*,G) only: no source entry anywhere"),
    ("plain-uncounted", "(*,G) only, per-stream counting off"),
    ("hit", "the frame's source has an entry (S,G) of its own"),
    ("miss", "16 other sources have entries, the frame's source none"),
    ("bulk-plain", "(*,G), with 100,000 source entries in 1000 other groups"),
    ("bulk-hit", "(S,G) hit, with those 100,000 source entries"),
)
sf = [r for r in tp if r["label"].startswith("sf-")]
if sf:
    modes = [k for k in ("native", "generic") if any(r["kind"] == k for r in sf)]
    print("\n### 5. Source-specific forwarding: one group, 1 member, 60-byte UDP (pps; min / median / max; "
          "ratio of medians to `plain`)\n")
    pc = [r for r in R if r["fig"] == "prog_cost"]
    print("| state | " + " | ".join("{0} pps | {0} / plain | {0} program ns/frame".format(k) for k in modes) + " |")
    print("|---|" + "---|---|---|" * len(modes))
    for state, what in SF_STATES:
        cells = []
        for k in modes:
            v = [r["pps_per_member"] for r in sf if r["label"] == "sf-" + state and r["kind"] == k]
            base = [r["pps_per_member"] for r in sf if r["label"] == "sf-plain" and r["kind"] == k]
            ns = [r["ns"] for r in pc if r["state"] == state and r["kind"] == k]
            cells += [mmm(v), ratio(med(v), med(base)), mmm(ns, "{:.0f}")]
        print("| {}: {} | {} |".format(state, what, " | ".join(cells)))
    print("\nProgram ns/frame: the XDP program's mean run time over 2M runs of the benchmark's frame "
          "(BPF_PROG_TEST_RUN; parsing, lookups and counters, not the redirect itself), timed by the "
          "kernel, which stops its clock while the task is rescheduled: steady where throughput on a "
          "shared box is not.")

tp6 = [r for r in R if r["fig"] == "throughput6"]
lat6 = [r for r in R if r["fig"] in ("join6", "leave6")]
if tp6 or lat6:
    ceil6 = [r["pps_per_member"] for r in tp6 if r["label"] == "ceiling"]
    print("\n### 6. IPv6 (MLDv2 snooping; the bridge with mcast_mld_version 2)\n")
    print("Throughput, 64-byte UDP to ff0e::101, 1 sender (pps per member; min / median / max); "
          "ceiling (trafgen into a veth, nothing attached): {} pps\n".format(mmm(ceil6)))
    print("| members | igmpsnoop native | igmpsnoop generic | bridge | native/bridge | generic/bridge |")
    print("|---|---|---|---|---|---|")
    for n in sorted({r["members"] for r in tp6 if r["label"] != "ceiling"}):
        g = {k: [r["pps_per_member"] for r in tp6 if r["label"] == k and r["members"] == n]
             for k in ("native", "generic", "bridge")}
        print("| {} | {} | {} | {} | {} | {} |".format(
            n, mmm(g["native"]), mmm(g["generic"]), mmm(g["bridge"]),
            ratio(med(g["native"]), med(g["bridge"])), ratio(med(g["generic"]), med(g["bridge"]))))
    spps = sorted({r.get("stream_pps", 0) for r in lat6})
    print("\nMLD join and leave latency (ms, from the host's report on the wire; h1 streams {} pps)\n".format(
        " / ".join("{:,}".format(p) for p in spps) or "?"))
    print("| figure | igmpsnoop p50 / p99 (n) | bridge p50 / p99 (n) | ratio p50 |")
    print("|---|---|---|---|")
    for fig, var in (("join6", "fast-leave"), ("leave6", "default"), ("leave6", "fast-leave")):
        cells, p50s = [], []
        for k in ("igmpsnoop", "bridge"):
            x = [r for r in lat6 if r["fig"] == fig and r["kind"] == k and r["variant"] == var]
            v = x[0]["samples_ms"] if x else []
            t = x[0]["timeouts"] if x else 0
            p50s.append(pct(v, 50))
            cells.append("{:.3f} / {:.3f} ({}{})".format(pct(v, 50), pct(v, 99), len(v), ", {} timeouts".format(t) if t else "") if v else "n/a")
        print("| {} ({}) | {} | {} | {} |".format(fig[:-1], var, cells[0], cells[1], ratio(*p50s)))

vl = [r for r in R if r["fig"] == "vlan"]
if vl:
    print("\n### 7. VLANs: one sender (h1, access port of VLAN 10, untagged), 60-byte UDP "
          "(pps per member; min / median / max; ratio of medians)\n")
    print("| path | native | generic | native ratio | generic ratio |")
    print("|---|---|---|---|---|")
    rows = (
        ("vlan-untagged", None, "no VLAN config, 1 member"),
        ("vlan-push", "vlan-untagged", "access -> trunk, tag pushed in XDP, 1 member"),
        ("vlan-untagged2", None, "no VLAN config, 2 members"),
        ("vlan-mixed2", "vlan-untagged2", "MIXED set (trunk + access port) through the TC program, 2 members"),
    )
    for label, base, what in rows:
        cells, ratios = [], []
        for k in ("native", "generic"):
            v = [r["pps_per_member"] for r in vl if r["label"] == label and r["kind"] == k]
            b = [r["pps_per_member"] for r in vl if r["label"] == base and r["kind"] == k] if base else []
            cells.append(mmm(v))
            ratios.append(ratio(med(v), med(b)) if base else "1.00")
        print("| {} | {} | {} |".format(what, " | ".join(cells), " | ".join(ratios)))

if d.get("cargo_bench"):
    print("\n### Engine (cargo bench -p igmpsnoop-control --bench engine)\n\n```")
    print("\n".join(d["cargo_bench"]))
    print("```")


cost = [r for r in R if r["fig"] == "cost"]
if cost:
    stages = ("sender", "ingress", "program", "bridge", "redirect", "host-rx", "other")
    ceil = next((r for r in cost if r["label"] == "ceiling"), None)
    print("\n### 8. Cost breakdown (busy CPU ns per frame sent, all cores; perf call chains)\n")
    print("| switch | members | pps per member | " + " | ".join(stages) + " | total | program (bpf_stats) | lab limit | % of limit |")
    print("|---" * (len(stages) + 7) + "|")
    sender_ns = ceil["busy_ns_per_frame"] if ceil else None
    ncpu = m["nproc"]
    for r in cost:
        if r["label"] == "ceiling":
            continue
        ns = r.get("ns_per_frame", {})
        # The lab's physical limit for this member count: the sender's own cost per
        # frame (the ceiling run) and each member's receive, nothing for switching,
        # on every core; and never above the sender's ceiling.
        host = ns.get("host-rx", 0.0)
        limit = None
        if sender_ns and ceil:
            limit = min(ceil["pps"], ncpu * 1e9 / (sender_ns + host))
        print("| {} | {} | {:,} | {} | {:,.0f} | {} | {} | {} |".format(
            r["label"], r["members"], r["pps"], " | ".join("{:,.0f}".format(ns.get(s, 0.0)) for s in stages),
            r.get("busy_ns_per_frame") or 0, "{:.0f}".format(r["prog_stats_ns"]) if r.get("prog_stats_ns") else "n/a",
            "{:,.0f}".format(limit) if limit else "n/a", "{:.0f}%".format(100 * r["pps"] / limit) if limit else "n/a"))
    if ceil:
        print("\nceiling (nothing attached): {:,} pps, {:,.0f} busy ns per frame (the sender's share)".format(
            ceil["pps"], ceil["busy_ns_per_frame"] or 0))
idle = [r for r in R if r["fig"] == "idle_cpu"]
if idle:
    print("\nIdle daemon (querier on, default timers): {} of one CPU over {} s".format(
        ", ".join("{:.2f}%".format(r["cpu_pct"]) for r in idle), idle[0]["seconds"]))

