"""Reading a scripts/bench.sh results.json: the records of one figure, grouped.

Shared by plot.py and compare.py, so both read a run the same way. A results file is
{"machine": {...}, "quick": bool, "date": "...", "results": [record...], "cargo_bench": [line...]};
each record has "fig" (throughput, join, leave, scale, report_rate; throughput6, join6, leave6
for IPv6) and the fields bench.sh
wrote for it. Older files may lack figures or fields: every accessor returns what is there.
"""
import json
import statistics

# Throughput labels of the member-count figure, in the order the bench runs them.
SWITCH_LABELS = ("native", "generic", "bridge")
# Join/leave figures: (fig, variant), as the bench records them.
LATENCY_FIGURES = (("join", "fast-leave"), ("leave", "fast-leave"), ("leave", "default"))
# The same for IPv6 (MLD), and its throughput figure.
LATENCY_FIGURES6 = tuple((f + "6", v) for f, v in LATENCY_FIGURES)
THROUGHPUT6 = "throughput6"
LATENCY_KINDS = ("igmpsnoop", "bridge")


class ResultsError(Exception):
    """The file is not a results.json of scripts/bench.sh."""


def load(path):
    try:
        with open(path) as f:
            d = json.load(f)
    except (OSError, ValueError) as e:
        raise ResultsError("{}: {}".format(path, e)) from e
    if not isinstance(d, dict) or not isinstance(d.get("results"), list):
        raise ResultsError("{}: not a bench results file (no \"results\" list)".format(path))
    return d


def records(d, fig):
    return [r for r in d["results"] if isinstance(r, dict) and r.get("fig") == fig]


def spread(values):
    """(min, median, max) of a list, or None when it is empty."""
    if not values:
        return None
    return min(values), statistics.median(values), max(values)


def percentile(values, p):
    """Nearest-rank percentile, as table.py computes it (so the figures agree)."""
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def ceiling(d, fig="throughput"):
    """pps of the sender ceiling runs (trafgen into a veth with nothing attached)."""
    return [r["pps_per_member"] for r in records(d, fig) if r.get("label") == "ceiling"]


def throughput(d, label, members, fig="throughput"):
    """pps per member of every repetition of LABEL (native, generic, bridge, scaleN)."""
    return [r["pps_per_member"] for r in records(d, fig)
            if r.get("label") == label and r.get("members") == members]


def member_counts(d, fig="throughput"):
    return sorted({r["members"] for r in records(d, fig) if r.get("label") in SWITCH_LABELS})


def latency(d, fig, variant, kind):
    """The record of one latency figure (samples_ms, syscall_ms, timeouts), or None."""
    for r in records(d, fig):
        if r.get("variant") == variant and r.get("kind") == kind:
            return r
    return None


def host_napi(d):
    """How the latency runs' hosts received: "softirq" (the kernel's default for a
    veth, since 2026-12-02) or "threaded" (records without the field: NAPI threads);
    None without latency records, "mixed" when they differ."""
    kinds = {r.get("host_napi", "threaded") for f, _ in LATENCY_FIGURES + LATENCY_FIGURES6 for r in records(d, f)}
    return None if not kinds else kinds.pop() if len(kinds) == 1 else "mixed"


def sampler_cpu(d):
    """Where the latency runs' sampler ran: "CPU n" (pinned off the sender's CPU 0,
    since 2026-12-02) or "any CPU" (records without the field, or a 1-CPU machine);
    None without latency records, "mixed" when they differ."""
    where = {"CPU {}".format(r["sampler_cpu"]) if r.get("sampler_cpu") else "any CPU"
             for f, _ in LATENCY_FIGURES + LATENCY_FIGURES6 for r in records(d, f)}
    return None if not where else where.pop() if len(where) == 1 else "mixed"


def scale_sizes(d):
    return sorted({r["groups_sent"] for r in records(d, "scale")})


def scale(d, kind, n):
    """The scale record of KIND with N other groups, and the pps of its repetitions."""
    rec = next((r for r in records(d, "scale") if r.get("kind") == kind and r.get("groups_sent") == n), None)
    pps = [r["pps_per_member"] for r in records(d, "throughput")
           if r.get("label") == "scale%d" % n and r.get("kind") == kind]
    return rec, pps


def report_rates(d, kind):
    """Report-processing steps of KIND, by offered rate."""
    return sorted((r for r in records(d, "report_rate") if r.get("kind") == kind), key=lambda r: r["offered_pps"])


def describe(d):
    """One line naming the run: date, machine, quick or full."""
    m = d.get("machine", {})
    return "{} on {} x {}, kernel {}, {} run".format(
        d.get("date", "?"), m.get("nproc", "?"), m.get("cpu", "?"), m.get("kernel", "?"),
        "--quick" if d.get("quick") else "full")
