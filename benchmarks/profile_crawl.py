"""Profile one crawl of a generated site with pyinstrument, and say where the time went.

    python benchmarks/profile_crawl.py --events 20000 [--out profile-20000.txt]

Used to ask why a bigger mirror costs more per event (BENCHMARKS.md, Scale):
run it at two sizes and compare the shares it prints.  pyinstrument samples
the stack (1 ms), so the crawl runs near its normal speed.  It is not a
dependency of the project: ``pip install pyinstrument`` first.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from run import NOW  # benchmarks/run.py, beside this script

from crawler.loopback.site import SiteServer
from crawler.testing.sitegen import generate

# Frames whose cumulative time is reported, as (label, pattern in pyinstrument's text output).
PARTS = [
    ("parse (markdown-it)", r"parse_page\b"),
    ("normalise", r"NormalisePipeline\.process_item"),
    ("dedupe", r"DedupePipeline\.process_item"),
    ("store: one page's transaction", r"Mirror\.store\b"),
    ("store: end of run (link_up)", r"Mirror\.link_up"),
    ("spider: scheduling (is_due, known_page)", r"EventSiteSpider\._request"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    per_day = 40
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        site = generate(work / "site", days=max(1, args.events // per_day), events_per_day=per_day)
        server = SiteServer(site.root)
        try:
            cmd = [sys.executable, "-m", "pyinstrument", "--show-all", "-o", str(work / "profile.txt")]
            cmd += ["-m", "crawler", "run", "--db", str(work / "mirror.db")]
            cmd += ["--start-url", server.url("index.md"), "--now", NOW, "-s", "CHECK_SOURCES=False"]
            subprocess.run(cmd, check=True, capture_output=True)
        finally:
            server.close()
        text = (work / "profile.txt").read_text()
    if args.out:
        args.out.write_text(text)
    total = float(re.search(r"Duration:\s*([\d.]+)", text)[1])  # pyinstrument's header
    print(f"{site.events} events, {site.pages} files: {total:.1f} s sampled")
    for label, pattern in PARTS:
        seconds = sum(_seconds(line) for line in _top_frames(text, pattern))
        per_event = 1000 * seconds / site.events
        print(f"  {label:45} {seconds:7.1f} s  {seconds / total:6.1%}  {per_event:6.2f} ms/event")


def _top_frames(text: str, pattern: str) -> list[str]:
    """Lines of the frame, counted once: the outermost occurrence on each branch."""
    lines, depth_of_hit = [], None
    for line in text.splitlines():
        depth = len(line) - len(line.lstrip(" │├└─"))
        if depth_of_hit is not None and depth <= depth_of_hit:
            depth_of_hit = None
        if depth_of_hit is None and re.search(pattern, line):
            lines.append(line)
            depth_of_hit = depth
    return lines


def _seconds(line: str) -> float:
    match = re.search(r"([\d.]+)\s", line.lstrip(" │├└─"))
    return float(match[1]) if match else 0.0


if __name__ == "__main__":
    main()
