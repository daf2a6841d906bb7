#!/usr/bin/env python3
"""Tests of plot.py and compare.py on a real results.json (testdata/results-quick.json,
from `scripts/bench.sh --quick --no-cargo-bench`). Runs the scripts as a user would, in
subprocesses, with this python (the repo venv's, which has matplotlib).

  .venv/bin/python scripts/bench/test_tools.py [-v]

tests/tests/bench_tools.rs runs it as part of `cargo test` (so scripts/test.sh runs it).
"""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "testdata", "results-quick.json")
SVG_NS = "{http://www.w3.org/2000/svg}"
# As the engine's cargo bench prints them (README, 2026-12-01).
ENGINE_LINES = [
    "v2 reports, learning 100k new groups (--max-groups 262144): 2.32 M reports/s",
    "handle_timeout: nothing due 1.392µs; expiring 100k groups 28.247643ms (100000 actions)",
    "memory: 100000 groups × 1 port(s) × 1 host(s), --max-groups 100000: 14.1 MiB, 148.2 bytes per (group, port, host) entry",
]


def run(script, *args):
    return subprocess.run([sys.executable, os.path.join(HERE, script), *args], capture_output=True, text=True)


def fixture():
    with open(FIXTURE) as f:
        return json.load(f)


def svg_ids(path):
    """ids of every element of an SVG file; fails the test if it is not XML or not SVG."""
    root = ET.parse(path).getroot()
    assert root.tag == SVG_NS + "svg", "{} is not an SVG: root <{}>".format(path, root.tag)
    return {e.get("id") for e in root.iter() if e.get("id")}


def svg_text(path):
    """Every text string of an SVG (plot.py writes text as text)."""
    return ["".join(e.itertext()) for e in ET.parse(path).getroot().iter(SVG_NS + "text")]


class Tmp(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="igmpsnoop-bench-test.")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, d):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(d, f)
        return path


class PlotTest(Tmp):
    def test_every_series_of_the_run_is_drawn(self):
        d = fixture()
        out = os.path.join(self.tmp, "plots")
        p = run("plot.py", FIXTURE, out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(os.listdir(out)), ["latency.svg", "reports.svg", "scale.svg", "throughput.svg"])
        R = d["results"]

        # Expected series, from the raw records (not through results.py).
        ids = svg_ids(os.path.join(out, "throughput.svg"))
        tp = {(r["label"], r["members"]) for r in R if r["fig"] == "throughput" and not r["label"].startswith("scale")}
        self.assertIn(("ceiling", 1), tp)
        self.assertIn("ceiling", ids)
        for label, m in tp - {("ceiling", 1)}:
            self.assertIn("bar-{}-m{}".format(label, m), ids)
            self.assertIn("whisker-{}-m{}".format(label, m), ids)
        self.assertEqual(len([i for i in ids if i.startswith("bar-")]), len(tp) - 1)
        text = svg_text(os.path.join(out, "throughput.svg"))
        for name in ("igmpsnoop native XDP", "igmpsnoop generic XDP", "Linux bridge", "sender ceiling"):
            self.assertTrue(any(name in t for t in text), "legend lacks {!r}: {}".format(name, text))

        ids = svg_ids(os.path.join(out, "latency.svg"))
        lat = {"cdf-{}-{}-{}".format(r["fig"], r["variant"], r["kind"]) for r in R
               if r["fig"] in ("join", "leave") and r["samples_ms"]}
        self.assertEqual(len(lat), 6, "the fixture has join, fast and default leave for both switches")
        self.assertEqual({i for i in ids if i.startswith("cdf-")}, lat)

        ids = svg_ids(os.path.join(out, "scale.svg"))
        self.assertLessEqual({"scale-pps-igmpsnoop", "scale-pps-bridge", "scale-rss-igmpsnoop"}, ids)

        ids = svg_ids(os.path.join(out, "reports.svg"))
        self.assertLessEqual({"report-offered", "report-sent-igmpsnoop", "report-sent-bridge",
                              "report-learned-igmpsnoop", "report-learned-bridge", "report-processed-igmpsnoop"}, ids)

    def test_same_results_give_the_same_svg(self):
        a, b = os.path.join(self.tmp, "a"), os.path.join(self.tmp, "b")
        for out in (a, b):
            self.assertEqual(run("plot.py", FIXTURE, out).returncode, 0)
        for name in os.listdir(a):
            with open(os.path.join(a, name)) as fa, open(os.path.join(b, name)) as fb:
                self.assertEqual(fa.read(), fb.read(), name)

    def test_a_partial_run_plots_what_it_has_and_names_the_rest(self):
        d = fixture()
        d["results"] = [r for r in d["results"] if r["fig"] == "throughput" and not r["label"].startswith("scale")]
        out = os.path.join(self.tmp, "plots")
        p = run("plot.py", self.write("tp-only.json", d), out)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(os.listdir(out), ["throughput.svg"])
        for skipped in ("latency", "scale", "report processing"):
            self.assertIn("no {} figures".format(skipped), p.stdout)

    def test_bad_input_is_an_error_that_writes_nothing(self):
        out = os.path.join(self.tmp, "plots")
        empty = dict(fixture(), results=[])
        p = run("plot.py", self.write("empty.json", empty), out)
        self.assertEqual(p.returncode, 1)
        self.assertIn("nothing to plot", p.stderr)
        self.assertEqual(os.listdir(out), [])
        p = run("plot.py", self.write("list.json", [1, 2]), os.path.join(self.tmp, "x"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("not a bench results file", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "x")))


def scaled(d, pred, field, factor):
    """A copy of D with FIELD of the records matching PRED multiplied by FACTOR."""
    d = copy.deepcopy(d)
    for r in d["results"]:
        if pred(r):
            v = r[field]
            r[field] = [x * factor for x in v] if isinstance(v, list) else v * factor
    return d


def line_of(out, figure):
    rows = [ln for ln in out.splitlines() if ln.startswith(figure + " ")]
    assert len(rows) == 1, "want one row for {!r}, got {}:\n{}".format(figure, rows, out)
    return rows[0]


class CompareTest(Tmp):
    def compare(self, old, new, *args):
        return run("compare.py", self.write("old.json", old), self.write("new.json", new), *args)

    def test_a_run_against_itself_flags_nothing(self):
        p = run("compare.py", FIXTURE, FIXTURE, "--fail-on-regression")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("WORSE", p.stdout)
        self.assertIn("0 igmpsnoop figure(s) worse", p.stdout)
        self.assertIn("+0.0%", line_of(p.stdout, "throughput native, 1 member, pps/member"))

    def test_injected_regressions_are_flagged(self):
        old = fixture()
        new = scaled(old, lambda r: r.get("label") == "native", "pps_per_member", 0.8)
        new = scaled(new, lambda r: r["fig"] == "join" and r["kind"] == "igmpsnoop", "samples_ms", 1.5)
        new = scaled(new, lambda r: r["fig"] == "scale" and r["kind"] == "igmpsnoop", "rss_kib", 1.25)
        new = scaled(new, lambda r: r.get("label") == "bridge", "pps_per_member", 0.5)
        p = self.compare(old, new)
        self.assertEqual(p.returncode, 0, "without --fail-on-regression the status is 0")
        row = line_of(p.stdout, "throughput native, 2 members, pps/member")
        self.assertIn("-20.0%", row)
        self.assertTrue(row.endswith("  WORSE"), row)
        # The fixture's 1-member native runs spread over more than 20%: flagged, and noted.
        row = line_of(p.stdout, "throughput native, 1 member, pps/member")
        self.assertTrue(row.endswith("  WORSE, ranges overlap"), row)
        row = line_of(p.stdout, "join (fast-leave) igmpsnoop p50, ms")
        self.assertIn("+50.0%", row)
        self.assertIn("WORSE", row)
        self.assertIn("WORSE", line_of(p.stdout, "scale 1,000 groups igmpsnoop VmRSS, MiB"))
        self.assertIn("WORSE*", line_of(p.stdout, "throughput bridge, 1 member, pps/member"))
        # Untouched figures are not flagged.
        self.assertNotIn("WORSE", line_of(p.stdout, "throughput generic, 1 member, pps/member"))
        self.assertNotIn("WORSE", line_of(p.stdout, "join (fast-leave) bridge p50, ms"))
        self.assertRegex(p.stdout, r"\b([7-9]|\d\d) igmpsnoop figure\(s\) worse")
        self.assertIn("reference figure(s) worse", p.stdout)
        p = self.compare(old, new, "--fail-on-regression")
        self.assertEqual(p.returncode, 1)

    def test_improvements_and_small_changes_are_not_regressions(self):
        old = fixture()
        new = scaled(old, lambda r: r.get("label") == "native", "pps_per_member", 1.3)
        new = scaled(new, lambda r: r.get("label") == "generic", "pps_per_member", 0.95)
        p = self.compare(old, new, "--fail-on-regression")
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("better", line_of(p.stdout, "throughput native, 1 member, pps/member"))
        self.assertNotIn("WORSE", p.stdout)
        p = self.compare(old, new, "--threshold", "3")
        self.assertIn("WORSE", line_of(p.stdout, "throughput generic, 1 member, pps/member"))

    def test_a_change_of_how_latency_hosts_receive_is_noted(self):
        old = fixture()
        new = copy.deepcopy(old)
        for r in new["results"]:
            if "samples_ms" in r:
                r["host_napi"] = "softirq"
        self.assertNotIn("received differently", self.compare(old, old).stdout)
        p = self.compare(old, new)
        self.assertIn("note: the latency runs' hosts received differently (threaded -> softirq NAPI)", p.stdout)

    def test_a_change_of_where_the_latency_sampler_ran_is_noted(self):
        old = fixture()
        new = copy.deepcopy(old)
        for r in new["results"]:
            if "samples_ms" in r:
                r["sampler_cpu"] = 1
        self.assertNotIn("latency sampler ran", self.compare(old, old).stdout)
        p = self.compare(old, new)
        self.assertIn("note: the latency sampler ran on any CPU -> CPU 1", p.stdout)

    def test_engine_figures_and_counts_from_zero(self):
        old = dict(fixture(), cargo_bench=ENGINE_LINES)
        new = copy.deepcopy(old)
        new["cargo_bench"] = [ENGINE_LINES[0].replace("2.32", "1.80"),
                              ENGINE_LINES[1].replace("28.247643ms", "40.1ms"), ENGINE_LINES[2]]
        from_zero = []
        for r in new["results"]:
            if r["fig"] == "report_rate" and r["kind"] == "igmpsnoop" and r["socket_drops"] == 0:
                r["socket_drops"] = 100
                from_zero.append("reports {:,}/s offered igmpsnoop socket drops".format(r["offered_pps"]))
        p = self.compare(old, new)
        self.assertIn("WORSE", line_of(p.stdout, "engine v2 reports, learning 100k new groups (--max-groups 262144), M reports/s"))
        self.assertIn("WORSE", line_of(p.stdout, "engine handle_timeout: expiring 100k groups, ms"))
        row = line_of(p.stdout, "engine handle_timeout: nothing due, ms")
        self.assertIn("0.00139", row)
        self.assertNotIn("WORSE", row)
        self.assertNotIn("WORSE", line_of(
            p.stdout, "engine memory: 100000 groups × 1 port(s) × 1 host(s), --max-groups 100000, MiB"))
        self.assertTrue(from_zero, "the fixture has a report rate without socket drops")
        for name in from_zero:
            row = line_of(p.stdout, name)
            self.assertIn("n/a", row)
            self.assertIn("WORSE", row, "0 -> 100 drops is worse whatever the threshold")

    def test_unreadable_file_is_an_error(self):
        p = run("compare.py", FIXTURE, os.path.join(self.tmp, "missing.json"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("missing.json", p.stderr)
        self.assertEqual(p.stdout, "")


if __name__ == "__main__":
    unittest.main()
