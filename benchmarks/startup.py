"""How long the CLI takes to answer: ``--help``, ``status`` and ``dead-links`` against ``python -c pass``.

    python benchmarks/startup.py [--runs 7] [--empty]

Each command runs as a fresh child process, as a user runs it; the commands
take turns within each round so that a busy machine slows them alike, and
each gets one untimed run first (bytecode, file cache).  The figure is the
median wall time, also given as a ratio to an interpreter that does nothing
(``python -c pass``) and as the time spent beyond it, measured in the same
run.  ``status`` and ``dead-links`` read the bundled demo's mirror, built
first (a few seconds); ``--empty`` reads an empty mirror instead.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.5  # seconds, for each command (issue 12)


def commands(db: Path) -> dict[str, list[str]]:
    crawler = [sys.executable, "-m", "crawler"]
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -m crawler --help": [*crawler, "--help"],
        "python -m crawler status": [*crawler, "status", "--db", str(db)],
        "python -m crawler dead-links": [*crawler, "dead-links", "--db", str(db)],
    }


def build_mirror(db: Path, empty: bool) -> None:
    if empty:
        sys.path.insert(0, str(ROOT))
        from pipeline.schema import open_database

        open_database(str(db)).close()
        return
    cmd = [sys.executable, "-m", "crawler", "run", "--demo", "--db", str(db)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)


def seconds(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def measure(runs: int, db: Path) -> dict[str, list[float]]:
    cmds = commands(db)
    for cmd in cmds.values():
        seconds(cmd)  # untimed: compile the bytecode, warm the file cache
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(seconds(cmd))
    return times


def table(times: dict[str, list[float]]) -> str:
    baseline = statistics.median(times["python -c pass"])
    lines = [
        "| command | median (s) | fastest (s) | × `python -c pass` | beyond it (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, runs in times.items():
        median = statistics.median(runs)
        ratio, beyond = median / baseline, median - baseline
        lines.append(f"| `{name}` | {median:.3f} | {min(runs):.3f} | {ratio:.1f} | {beyond:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command (median)")
    parser.add_argument("--empty", action="store_true", help="read an empty mirror, not the demo's")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        db = Path(work) / "mirror.db"
        build_mirror(db, args.empty)
        times = measure(max(args.runs, 1), db)
    print(f"Start-up, median of {args.runs} runs ({'empty mirror' if args.empty else 'the demo mirror'}):\n")
    print(table(times))
    slow = [name for name, runs in times.items() if statistics.median(runs) >= TARGET]
    print(f"\nTarget: each command under {TARGET} s." + (f" Over it: {', '.join(slow)}." if slow else ""))


if __name__ == "__main__":
    main()
