#!/usr/bin/env python3
"""SVG plots of a scripts/bench.sh results.json (matplotlib, Agg backend).

  plot.py RESULTS.json OUTDIR

Writes into OUTDIR (created if missing) one SVG per figure the run holds:
  throughput.svg  pps per member for 1..3 members: igmpsnoop native and generic XDP, the
                  Linux bridge (bars at the median, whiskers min..max), the sender ceiling
  latency.svg     join and leave latency CDFs per switch (every sample the run kept)
  scale.svg       throughput to one group vs other groups installed, both switches; the
                  daemon's VmRSS and the BPF group maps' memory
  reports.svg     report processing: rate sent vs offered, and share of reports learned
  program_cost.svg the XDP program's own cost per frame in each source-entry state
  throughput6.svg, latency6.svg  the same as throughput.svg and latency.svg for IPv6 (MLD)
  cost.svg        busy CPU ns per frame split into stages (sender, switch-port ingress, the
                  program, the bridge's code, redirect and copies, the members' receive)
A figure absent from the run (an older or partial results.json) is skipped and named.
Each plotted series carries an SVG id (e.g. "bar-native-m1", "cdf-join-fast-leave-bridge")
so tools and tests can find it. Runs with the repo venv's python (scripts/setup.sh).
"""
import argparse
import os
import sys

try:
    import matplotlib
except ImportError:
    # Run by hand with the system python: the repo venv has matplotlib (scripts/setup.sh).
    VENV = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".venv"))
    VENV_PY = os.path.join(VENV, "bin", "python")
    if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != VENV:
        os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("plot.py: error: no matplotlib in {} (scripts/setup.sh creates the repo venv with it)".format(
        sys.executable))

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

import results as res  # noqa: E402

NAMES = {"native": "igmpsnoop native XDP", "generic": "igmpsnoop generic XDP", "bridge": "Linux bridge",
         "igmpsnoop": "igmpsnoop"}
COLORS = {"native": "#1f5fa8", "generic": "#7fb2e5", "bridge": "#e0762b", "igmpsnoop": "#1f5fa8"}
THOUSANDS = FuncFormatter(lambda v, _: "{:,.0f}".format(v))


def new_figure(ncols, width):
    fig, axes = plt.subplots(1, ncols, figsize=(width, 4.2), squeeze=False)
    return fig, list(axes[0])


def save(fig, d, outdir, name):
    # The run that produced the numbers, in the picture itself.
    fig.text(0.01, 0.01, res.describe(d), fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    path = os.path.join(outdir, name)
    # No date in the file and a fixed id salt: the same results give the same SVG.
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path


def plot_throughput(d, outdir, fig_name="throughput"):
    counts = res.member_counts(d, fig_name)
    if not counts:
        return None
    fig, (ax,) = new_figure(1, 8)
    width = 0.8 / len(res.SWITCH_LABELS)
    for i, label in enumerate(res.SWITCH_LABELS):
        for m in counts:
            s = res.spread(res.throughput(d, label, m, fig_name))
            if s is None:
                continue
            lo, mid, hi = s
            x = m - 0.4 + width * (i + 0.5)
            bar = ax.bar(x, mid, width * 0.9, color=COLORS[label], label=NAMES[label] if m == counts[0] else None)
            bar.patches[0].set_gid("bar-{}-m{}".format(label, m))
            eb = ax.errorbar(x, mid, yerr=[[mid - lo], [hi - mid]], fmt="none", ecolor="black", capsize=3, lw=1)
            eb.lines[2][0].set_gid("whisker-{}-m{}".format(label, m))
    ceil = res.spread(res.ceiling(d, fig_name))
    if ceil:
        ax.axhspan(ceil[0], ceil[2], color="#999999", alpha=0.2, lw=0).set_gid("ceiling-range")
        ax.axhline(ceil[1], color="#444444", ls="--", lw=1.2,
                   label="sender ceiling (trafgen into a bare veth)").set_gid("ceiling")
    ax.set_xticks(counts)
    ax.set_xticklabels(["{} member{}".format(m, "" if m == 1 else "s") for m in counts])
    ax.set_ylabel("packets/s per member (median; whiskers min..max)")
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_ylim(bottom=0)
    v6 = fig_name == res.THROUGHPUT6
    ax.set_title("Throughput, {} from one sender".format("IPv6 64-byte UDP" if v6 else "60-byte UDP"))
    ax.legend(fontsize=8, loc="upper right")
    return save(fig, d, outdir, fig_name + ".svg")


def cdf_axis(ax, d, fig_name, variant):
    """One latency figure's CDF per switch on AX; False when the run has neither."""
    drawn, longest, shortest, positive = False, 0.0, float("inf"), float("inf")
    for kind in res.LATENCY_KINDS:
        r = res.latency(d, fig_name, variant, kind)
        s = sorted(r.get("samples_ms") or []) if r else []
        if not s:
            continue
        longest, shortest = max(longest, s[-1]), min(shortest, s[0])
        positive = min([positive] + [x for x in s if x > 0])
        # From 0 at the first sample to 1 at the last: the share of samples <= x.
        xs, y = [s[0]] + s, [0.0] + [(i + 1) / len(s) for i in range(len(s))]
        t = r.get("timeouts", 0)
        # The stream's rate bounds a leave's resolution (no datagram after the leave: 0 ms).
        label = "{}: n={}, p50 {:.2f}, p99 {:.2f} ms{}, stream {:,} pps".format(
            NAMES[kind], len(s), res.percentile(s, 50), res.percentile(s, 99),
            ", {} timeouts".format(t) if t else "", r.get("stream_pps", 0))
        line, = ax.step(xs, y, where="post", color=COLORS[kind], lw=1.6, label=label)
        line.set_gid("cdf-{}-{}-{}".format(fig_name, variant, kind))
        drawn = True
    if not drawn:
        return False
    # Sub-millisecond joins next to stragglers of many milliseconds: a log axis shows
    # both; default leaves (all near 2 s) stay linear. A 0 ms sample (no datagram after
    # a leave) has no place on a log axis: symlog is linear below 0.01 ms.
    if longest > 20 * positive:
        ax.set_xscale("symlog", linthresh=0.01) if shortest <= 0 else ax.set_xscale("log")
    what = "report on the wire to first datagram" if fig_name.startswith("join") else "leave on the wire to last datagram"
    title = fig_name[:-1] + ", IPv6 (MLD)" if fig_name.endswith("6") else fig_name
    ax.set_title("{} ({})\n{}".format(title, variant, what), fontsize=10)
    ax.set_xlabel("ms")
    ax.set_ylabel("fraction of {}s".format(fig_name))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    # Below the axes: the curves fill the plot's corners.
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.17))
    return True


def plot_latency(d, outdir, figures=res.LATENCY_FIGURES, name="latency.svg"):
    present = [(f, v) for f, v in figures
               if any(res.latency(d, f, v, k) for k in res.LATENCY_KINDS)]
    if not present:
        return None
    fig, axes = new_figure(len(present), 5.2 * len(present))
    for ax, (f, v) in zip(axes, present):
        if not cdf_axis(ax, d, f, v):
            ax.set_axis_off()
    return save(fig, d, outdir, name)


def plot_scale(d, outdir):
    sizes = res.scale_sizes(d)
    if not sizes:
        return None
    fig, (ax, ax_rss) = new_figure(2, 11)
    for kind in res.LATENCY_KINDS:
        pts = [(n, res.spread(res.scale(d, kind, n)[1])) for n in sizes]
        pts = [(n, s) for n, s in pts if s]
        if not pts:
            continue
        xs = [n for n, _ in pts]
        mids = [s[1] for _, s in pts]
        err = [[s[1] - s[0] for _, s in pts], [s[2] - s[1] for _, s in pts]]
        eb = ax.errorbar(xs, mids, yerr=err, color=COLORS[kind], marker="o", capsize=3, label=NAMES[kind])
        eb.lines[0].set_gid("scale-pps-{}".format(kind))
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.xaxis.set_major_formatter(THOUSANDS)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(THOUSANDS)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("other groups installed")
    ax.set_ylabel("packets/s to the one group (median; min..max)")
    ax.set_title("Throughput to one group while N others are installed", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")

    rss = [(n, (res.scale(d, "igmpsnoop", n)[0] or {}).get("rss_kib", 0)) for n in sizes]
    rss = [(n, kib / 1024) for n, kib in rss if kib]
    if rss:
        line, = ax_rss.plot([n for n, _ in rss], [m for _, m in rss], color=COLORS["igmpsnoop"], marker="o",
                            label="igmpsnoop daemon VmRSS")
        line.set_gid("scale-rss-igmpsnoop")
        bpf = [(n, (res.scale(d, "igmpsnoop", n)[0] or {}).get("bpf_group_bytes", 0)) for n in sizes]
        bpf = [(n, b / 2**20) for n, b in bpf if b]
        if bpf:
            line, = ax_rss.plot([n for n, _ in bpf], [m for _, m in bpf], color=COLORS["igmpsnoop"], marker="s",
                                ls="--", label="BPF group maps (bytes_memlock)")
            line.set_gid("scale-bpf-igmpsnoop")
            ax_rss.legend(fontsize=7, loc="upper left")
        ax_rss.set_xscale("log")
        ax_rss.set_xticks(sizes)
        ax_rss.xaxis.set_major_formatter(THOUSANDS)
        ax_rss.xaxis.set_minor_formatter(NullFormatter())
        ax_rss.set_ylim(bottom=0)
        ax_rss.set_xlabel("other groups installed")
        ax_rss.set_ylabel("MiB")
        ax_rss.set_title("igmpsnoop memory: daemon VmRSS, BPF group maps", fontsize=10)
        ax_rss.grid(alpha=0.3)
    else:
        ax_rss.set_axis_off()
    return save(fig, d, outdir, "scale.svg")


def plot_reports(d, outdir):
    steps = {k: res.report_rates(d, k) for k in res.LATENCY_KINDS}
    if not any(steps.values()):
        return None
    fig, (ax_sent, ax_learn) = new_figure(2, 11)
    offered = sorted({r["offered_pps"] for rs in steps.values() for r in rs})
    ax_sent.plot(offered, offered, color="#999999", lw=5, alpha=0.35, label="offered")[0].set_gid("report-offered")
    for kind, rs in steps.items():
        if not rs:
            continue
        xs = [r["offered_pps"] for r in rs]
        line, = ax_sent.plot(xs, [r["achieved_pps"] for r in rs], color=COLORS[kind], marker="o",
                             label="{}: sender reached".format(NAMES[kind]))
        line.set_gid("report-sent-{}".format(kind))
        learned = [100 * r["groups_learned"] / r["sent"] if r.get("sent") else 0 for r in rs]
        line, = ax_learn.plot(xs, learned, color=COLORS[kind], marker="o", label="{}: groups learned".format(NAMES[kind]))
        line.set_gid("report-learned-{}".format(kind))
        if kind == "igmpsnoop":
            processed = [100 * r["rx_igmp"] / r["sent"] if r.get("sent") else 0 for r in rs]
            line, = ax_learn.plot(xs, processed, color=COLORS[kind], ls=":", marker="x",
                                  label="igmpsnoop: reports processed (rx_igmp)")
            line.set_gid("report-processed-igmpsnoop")
    for ax in (ax_sent, ax_learn):
        ax.set_xscale("log")
        ax.set_xticks(offered)
        ax.xaxis.set_major_formatter(THOUSANDS)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.set_xlabel("offered IGMPv2 reports/s (distinct groups{})".format(
            ", h1 + h2" if any(r.get("senders") == 2 for rs in steps.values() for r in rs) else ""))
        ax.grid(alpha=0.3)
    # Each where its curves are not: rates climb to the upper right, shares stay high.
    ax_sent.legend(fontsize=7, loc="lower right")
    ax_learn.legend(fontsize=7, loc="lower left")
    ax_sent.set_yscale("log")
    ax_sent.set_yticks(offered)
    ax_sent.yaxis.set_major_formatter(THOUSANDS)
    ax_sent.yaxis.set_minor_formatter(NullFormatter())
    ax_sent.set_ylabel("reports/s the sender reached")
    ax_sent.set_title("Sending rate (the bridge learns in the sender's path)", fontsize=10)
    ax_learn.set_ylim(0, 105)
    ax_learn.set_ylabel("% of reports sent")
    ax_learn.set_title("Reports learned", fontsize=10)
    return save(fig, d, outdir, "reports.svg")


SOURCE_STATES = ("plain", "plain-uncounted", "hit", "miss", "bulk-plain", "bulk-hit")


def plot_program_cost(d, outdir):
    costs = res.records(d, "prog_cost")
    if not costs:
        return None
    kinds = [k for k in ("native", "generic") if any(r["kind"] == k for r in costs)]
    states = [s for s in SOURCE_STATES if any(r["state"] == s for r in costs)]
    fig, (ax,) = new_figure(1, 9)
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        for j, state in enumerate(states):
            ns = sorted(r["ns"] for r in costs if r["kind"] == kind and r["state"] == state)
            if not ns:
                continue
            mid = ns[len(ns) // 2]
            bar = ax.bar(j + i * width, mid, width, color=COLORS[kind],
                         yerr=[[mid - ns[0]], [ns[-1] - mid]], capsize=3,
                         label=NAMES[kind] if j == 0 else None)
            bar.patches[0].set_gid("cost-{}-{}".format(kind, state))
    ax.set_xticks([j + width * (len(kinds) - 1) / 2 for j in range(len(states))])
    ax.set_xticklabels(states, fontsize=8)
    ax.set_ylabel("ns per frame (BPF_PROG_TEST_RUN)")
    ax.set_title("The XDP program's own cost per frame, by source-entry state", fontsize=10)
    ax.legend(fontsize=8)
    return save(fig, d, outdir, "program_cost.svg")


# Stages of scripts/bench/cost.py, bottom to top, and their colours.
COST_STAGES = (("sender", "#9e9e9e"), ("ingress", "#c7a76c"), ("program", "#1f5fa8"),
               ("bridge", "#e0762b"), ("redirect", "#7fb2e5"), ("host-rx", "#6aa84f"),
               ("other", "#dddddd"))


def plot_cost(d, outdir):
    costs = [r for r in res.records(d, "cost") if r.get("label") != "ceiling"]
    if not costs:
        return None
    cols = [(k, m) for k in ("native", "generic", "bridge") for m in (1, 2, 3)
            if any(r["label"] == k and r["members"] == m for r in costs)]
    fig, (ax,) = new_figure(1, 10)
    bottoms = [0.0] * len(cols)
    for stage, color in COST_STAGES:
        heights = []
        for k, m in cols:
            r = next(r for r in costs if r["label"] == k and r["members"] == m)
            heights.append(r.get("ns_per_frame", {}).get(stage, 0.0))
        bars = ax.bar(range(len(cols)), heights, 0.7, bottom=bottoms, color=color, label=stage)
        for (k, m), bar in zip(cols, bars.patches):
            bar.set_gid("cost-{}-m{}-{}".format(k, m, stage))
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(["{}\n{} member{}".format(k, m, "s" if m > 1 else "") for k, m in cols], fontsize=8)
    ax.set_ylabel("busy CPU ns per frame sent (all cores)")
    ax.set_title("Where a frame's CPU time goes (perf call chains, scripts/bench/cost.py)", fontsize=10)
    ax.legend(fontsize=8, ncol=4)
    return save(fig, d, outdir, "cost.svg")


PLOTS = (("throughput", plot_throughput), ("latency", plot_latency), ("scale", plot_scale),
         ("report processing", plot_reports), ("program cost", plot_program_cost),
         ("IPv6 throughput", lambda d, o: plot_throughput(d, o, res.THROUGHPUT6)),
         ("IPv6 latency", lambda d, o: plot_latency(d, o, res.LATENCY_FIGURES6, "latency6.svg")),
         ("cost breakdown", plot_cost))


def main(argv):
    ap = argparse.ArgumentParser(description="SVG plots of a scripts/bench.sh results.json")
    ap.add_argument("results", help="results.json written by scripts/bench.sh")
    ap.add_argument("outdir", help="directory for the SVGs (created if missing)")
    a = ap.parse_args(argv)
    try:
        d = res.load(a.results)
    except res.ResultsError as e:
        print("plot.py: error: {}".format(e), file=sys.stderr)
        return 2
    os.makedirs(a.outdir, exist_ok=True)
    matplotlib.rcParams["svg.hashsalt"] = "igmpsnoop-bench"
    # Text as text, not glyph paths: a third of the size, and searchable.
    matplotlib.rcParams["svg.fonttype"] = "none"
    written = 0
    for name, fn in PLOTS:
        path = fn(d, a.outdir)
        if path:
            print("plot.py: wrote {}".format(path))
            written += 1
        else:
            print("plot.py: no {} figures in {}, skipped".format(name, a.results))
    if not written:
        print("plot.py: error: nothing to plot in {}".format(a.results), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
