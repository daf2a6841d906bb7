#!/usr/bin/env python3
"""The change between two scripts/bench.sh results.json files, figure by figure.

  compare.py OLD.json NEW.json [--threshold PCT] [--fail-on-regression]

For every figure present in both runs: old -> new and the change in %. A change worse
than PCT (default 10) in the bad direction (throughput or rate down, latency, memory,
install time, drops up) is flagged WORSE; one as large in the good direction "better".
Figures of the Linux bridge and the sender ceiling are references (not igmpsnoop's
code): flagged "WORSE*", they say the machine or kernel changed between the runs.
Medians of repeated runs note when the old and new min..max ranges overlap (likely noise
on a shared box). Exit status: 0; 1 with --fail-on-regression when an igmpsnoop figure
is flagged WORSE; 2 when a file cannot be read.
"""
import argparse
import os
import re
import sys
from collections import namedtuple

import results as res

# direction: +1 higher is better, -1 lower is better. lo/hi: min..max of the
# repetitions behind a median, or None. ref: a reference figure, not igmpsnoop's.
Figure = namedtuple("Figure", "name value direction lo hi ref")
HIGHER, LOWER = 1, -1


def fig(name, value, direction, ref=False, rng=None):
    lo, hi = rng if rng else (None, None)
    return Figure(name, float(value), direction, lo, hi, ref)


def median_fig(name, values, ref):
    s = res.spread(values)
    return [fig(name, s[1], HIGHER, ref, (s[0], s[2]))] if s else []


def throughput_figures(d, fig_name="throughput"):
    out = median_fig(fig_name + " ceiling, pps", res.ceiling(d, fig_name), True)
    for label in res.SWITCH_LABELS:
        for m in res.member_counts(d, fig_name):
            name = "{} {}, {} member{}, pps/member".format(fig_name, label, m, "" if m == 1 else "s")
            out += median_fig(name, res.throughput(d, label, m, fig_name), label == "bridge")
    return out


def latency_figures(d, figures=res.LATENCY_FIGURES):
    out = []
    for f, variant in figures:
        for kind in res.LATENCY_KINDS:
            r = res.latency(d, f, variant, kind)
            if not r:
                continue
            base, ref = "{} ({}) {}".format(f, variant, kind), kind == "bridge"
            s = r.get("samples_ms") or []
            for p in (50, 99):
                if s:
                    out.append(fig("{} p{}, ms".format(base, p), res.percentile(s, p), LOWER, ref))
            if r.get("timeouts", 0) >= 0:
                out.append(fig(base + " timeouts", r.get("timeouts", 0), LOWER, ref))
    return out


def scale_figures(d):
    out = []
    for n in res.scale_sizes(d):
        for kind in res.LATENCY_KINDS:
            rec, pps = res.scale(d, kind, n)
            base, ref = "scale {:,} groups {}".format(n, kind), kind == "bridge"
            out += median_fig(base + " pps", pps, ref)
            if not rec:
                continue
            out.append(fig(base + " groups listed", rec["groups_listed"], HIGHER, ref))
            out.append(fig(base + " install, s", rec["install_s"], LOWER, ref))
            if rec.get("rss_kib"):
                out.append(fig(base + " VmRSS, MiB", rec["rss_kib"] / 1024, LOWER, ref))
            if rec.get("bpf_group_bytes"):
                out.append(fig(base + " BPF group maps, MiB", rec["bpf_group_bytes"] / 2**20, LOWER, ref))
                added = rec["bpf_group_bytes"] - rec.get("bpf_group_bytes0", 0)
                out.append(fig(base + " BPF group maps, B/group", added / n, LOWER, ref))
            if rec.get("bpf_all_bytes"):
                out.append(fig(base + " BPF maps held, MiB", rec["bpf_all_bytes"] / 2**20, LOWER, ref))
    return out


def report_figures(d):
    out = []
    for kind in res.LATENCY_KINDS:
        steps, ref = res.report_rates(d, kind), kind == "bridge"
        for r in steps:
            base = "reports {:,}/s offered {}".format(r["offered_pps"], kind)
            out.append(fig(base + " sent at, /s", r["achieved_pps"], HIGHER, ref))
            if r.get("sent"):
                out.append(fig(base + " learned, %", 100 * r["groups_learned"] / r["sent"], HIGHER, ref))
            if kind == "igmpsnoop":
                out.append(fig(base + " socket drops", r.get("socket_drops", 0), LOWER, ref))
                if "ratelimit_drops" in r:
                    out.append(fig(base + " rate-limit drops", r["ratelimit_drops"], LOWER, ref))
        ok = [r["achieved_pps"] for r in steps if r.get("sent") and r["groups_learned"] >= r["sent"]]
        if steps:
            out.append(fig("reports {} highest rate with all learned, /s".format(kind), max(ok) if ok else 0, HIGHER, ref))
    return out


# The engine's cargo bench lines, e.g. "v2 reports, refreshing 100k groups:   4.79 M reports/s",
# "handle_timeout: nothing due 1.392µs; expiring 100k groups 28.247643ms (100000 actions)",
# "memory: 100000 groups × 1 port(s) ..., --max-groups 100000: 14.1 MiB, 148.2 bytes per ... entry".
NUMBER_UNIT = re.compile(r"([0-9][0-9.]*)\s*(M reports/s|MiB|bytes|ns|µs|us|ms|s)\b")
TO_MS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}


def engine_figures(d):
    out = []
    for line in d.get("cargo_bench") or []:
        head, sep, rest = line.rpartition(":")
        if not sep:
            continue
        for part in re.split(r"[;,]\s+(?=\D*[0-9])", rest):
            m = NUMBER_UNIT.search(part)
            if not m:
                continue
            value, unit = float(m.group(1)), m.group(2)
            what = part[:m.start()].strip()
            name = "engine {}{}".format(head.strip(), ": " + what if what else "")
            if unit == "M reports/s":
                out.append(fig(name + ", M reports/s", value, HIGHER))
            elif unit in TO_MS:
                out.append(fig(name + ", ms", value * TO_MS[unit], LOWER))
            else:
                out.append(fig(name + ", " + (unit if unit == "MiB" else "bytes/entry"), value, LOWER))
    return out


def figures(d):
    """Every comparable figure of a run, in report order, keyed by name."""
    out = {}
    ipv6 = throughput_figures(d, res.THROUGHPUT6) + latency_figures(d, res.LATENCY_FIGURES6)
    for f in (throughput_figures(d) + latency_figures(d) + scale_figures(d) + report_figures(d)
              + engine_figures(d) + ipv6):
        out.setdefault(f.name, f)
    return out


def change(old, new):
    """Change in % of OLD, or None when OLD is 0 and NEW is not."""
    if old.value == 0:
        return 0.0 if new.value == 0 else None
    return 100 * (new.value - old.value) / abs(old.value)


def verdict(old, new, threshold):
    """'WORSE', 'better' or '' for one figure."""
    pct = change(old, new)
    if pct is None:  # from zero: any move is past any threshold
        signed = (new.value - old.value) * old.direction
        worse, better = signed < 0, signed > 0
    else:
        worse = pct * old.direction < -threshold
        better = pct * old.direction > threshold
    if worse:
        return "WORSE*" if old.ref else "WORSE"
    return "better" if better else ""


def overlap(old, new):
    return None not in (old.lo, old.hi, new.lo, new.hi) and new.lo <= old.hi and old.lo <= new.hi


def fmt(v):
    if abs(v) >= 1000 or (v == int(v) and abs(v) >= 10):
        return "{:,.0f}".format(v)
    return "{:,.3g}".format(v) if abs(v) < 100 else "{:,.1f}".format(v)


def report(old_d, new_d, threshold, out):
    """Prints the comparison; returns the names of igmpsnoop figures flagged WORSE."""
    print("old: " + res.describe(old_d), file=out)
    print("new: " + res.describe(new_d), file=out)
    if bool(old_d.get("quick")) != bool(new_d.get("quick")):
        print("note: one run is --quick, the other full: repetitions and sample counts differ", file=out)
    if old_d.get("machine") != new_d.get("machine"):
        print("note: the machines differ (cpu, kernel or core count)", file=out)
    napi = res.host_napi(old_d), res.host_napi(new_d)
    if None not in napi and napi[0] != napi[1]:
        print("note: the latency runs' hosts received differently ({} -> {} NAPI): latency "
              "tails move with that, not only with igmpsnoop".format(*napi), file=out)
    sampler = res.sampler_cpu(old_d), res.sampler_cpu(new_d)
    if None not in sampler and sampler[0] != sampler[1]:
        print("note: the latency sampler ran on {} -> {}: on the sender's CPU it held the "
              "stream up, for both switches".format(*sampler), file=out)
    a, b = figures(old_d), figures(new_d)
    both = [n for n in a if n in b]
    width = max([len(n) for n in both] + [6])
    print("\n{:<{w}}  {:>12}    {:>12}  {:>8}".format("figure", "old", "new", "change", w=width), file=out)
    worse, ref_worse = [], []
    for n in both:
        o, nw = a[n], b[n]
        pct = change(o, nw)
        v = verdict(o, nw, threshold)
        if v.startswith("WORSE") and overlap(o, nw):
            v += ", ranges overlap"
        (ref_worse if o.ref else worse).extend([n] if v.startswith("WORSE") else [])
        print("{:<{w}}  {:>12} -> {:>12}  {:>8}  {}".format(
            n, fmt(o.value), fmt(nw.value), "n/a" if pct is None else "{:+.1f}%".format(pct), v, w=width).rstrip(),
            file=out)
    only_old, only_new = [n for n in a if n not in b], [n for n in b if n not in a]
    if only_old or only_new:
        print("\nin one run only (not compared): {} old, {} new".format(len(only_old), len(only_new)), file=out)
    print("\n{} figures compared, threshold {:g}%: {} igmpsnoop figure(s) worse{}".format(
        len(both), threshold, len(worse), ":" if worse else ""), file=out)
    for n in worse:
        print("  " + n, file=out)
    if ref_worse:
        print("{} reference figure(s) worse (WORSE*: the bridge or the sender ceiling, not igmpsnoop's code: "
              "the machine or kernel changed, or it was busier)".format(len(ref_worse)), file=out)
    return worse


def main(argv):
    ap = argparse.ArgumentParser(description="Change between two scripts/bench.sh results.json files")
    ap.add_argument("old", help="the earlier results.json")
    ap.add_argument("new", help="the later results.json")
    ap.add_argument("--threshold", type=float, default=10.0, metavar="PCT",
                    help="flag changes larger than PCT %% (default: 10)")
    ap.add_argument("--fail-on-regression", action="store_true",
                    help="exit 1 when an igmpsnoop figure is flagged WORSE (default: exit 0)")
    a = ap.parse_args(argv)
    if a.threshold < 0:
        ap.error("--threshold must be >= 0")
    try:
        old_d, new_d = res.load(a.old), res.load(a.new)
    except res.ResultsError as e:
        print("compare.py: error: {}".format(e), file=sys.stderr)
        return 2
    try:
        worse = report(old_d, new_d, a.threshold, sys.stdout)
    except BrokenPipeError:  # piped into head: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")
        return 0
    return 1 if worse and a.fail_on_regression else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
