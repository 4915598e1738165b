"""The benchmark script, small, with the issue's targets asserted: ``python -m pytest -m slow``.

Not part of the default run (it takes minutes and measures the machine). The
full-size figures in BENCHMARKS.md come from ``python benchmarks/run.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(shutil.which("wget") is None, reason="the peer comparison needs wget")
def test_the_benchmarks_meet_their_targets(tmp_path):
    figures = tmp_path / "figures.json"
    cmd = [sys.executable, "benchmarks/run.py", "--pages", "4000", "--repeat", "1", "--scale", "1000,5000"]
    cmd += ["--hosts", "10", "--out", str(tmp_path / "BENCHMARKS.md"), "--json", str(figures)]
    subprocess.run(cmd, cwd=ROOT, check=True, timeout=3500)
    f = json.loads(figures.read_text())
    tp, peers = f["throughput"], f["throughput"]["peers"]
    assert tp["ours_pages_per_s"] >= 0.8 * tp["bench_pages_per_s"]
    full_requests, full_seconds = peers["ours_full"]
    again_requests, again_seconds = peers["ours_again"]
    assert again_requests <= 0.02 * full_requests and again_seconds <= 0.05 * full_seconds
    assert peers["wget_again"][0] == peers["wget_full"][0]  # wget -N asks about every page again
    small, large = f["scale"]
    per_event = [row["crawl_seconds"] / row["events"] for row in (small, large)]
    assert per_event[1] <= 1.25 * per_event[0], "cost per event grows with size"
    assert large["rss_mb"] < 300
    src = f["sources"]
    assert src["checks_per_s"] >= 0.8 * src["bound"]
