"""What ``run`` and ``check-links`` print: a summary for people, or one JSON object."""

from __future__ import annotations

import json
import sys

import click

from crawler.commands.options import EXIT_INTERRUPTED


def print_summary(summary: dict, as_json: bool, human) -> None:
    """Print the job's summary (``human`` renders it for people); exit 130 if it was interrupted."""
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(human(summary))
    if summary["status"] == "interrupted":
        sys.exit(EXIT_INTERRUPTED)


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "none"


def checks_unsettled(s: dict) -> bool:
    """Did the run check sources and then stop before settling them (their statuses did not move)?"""
    return s.get("sources_checked") is not None and s["status"] == "interrupted"


UNSETTLED = "not settled: an interrupted run moves no status for them, and they stay due"


def run_summary(s: dict) -> str:
    if s.get("demo"):
        where = (
            "the bundled demo (Wikipedia's portal)"
            if s.get("site") == "wikipedia"
            else "the bundled demo site"
        )
    else:
        where = ", ".join(s["start_urls"])
    lines = [
        f"Mirrored {s['pages_fetched']} pages from {where} into {s['db']} in {s['seconds']:.1f}s"
        f" ({s['status']}: {s['finish_reason']}).",
        f"  events: {s['events_new']} new, {s['events_changed']} changed, {s['events_unchanged']} unchanged",
    ]
    if s["errors"]:
        reasons = ", ".join(f"{count} × {reason}" for reason, count in s["errors_by_reason"].items())
        lines.append(f"  pages not usable: {reasons}")
        query = "select url, error from pages where error is not null"
        lines.append(f'  (listed in the pages table: sqlite3 {s["db"]} "{query}")')
    if s.get("pages_misdated"):
        lines.append(
            f"  pages filed under another day than their heading says: {s['pages_misdated']}"
            " (events keep the heading's date; pages.heading_date)"
        )
    if checks_unsettled(s):
        lines.append(f"  sources: {s['sources_checked']} checked before the stop, {UNSETTLED}")
        lines.append(f"  sources by status, as before the checks: {_statuses(s['sources_by_status'])}")
    elif s.get("sources_checked") is not None:
        lines.append(
            f"  sources: {s['sources_checked']} checked; by status: {_statuses(s['sources_by_status'])}"
        )
    return "\n".join(lines)


def check_summary(s: dict) -> str:
    first = (
        f"Checked {s['sources_checked']} sources in {s['db']} in {s['seconds']:.1f}s"
        f" ({s['status']}: {s['finish_reason']})."
    )
    if checks_unsettled(s):
        return (
            f"{first}\n  the {s['sources_checked']} checks are kept, {UNSETTLED}\n"
            f"  sources by status, as before the checks: {_statuses(s['sources_by_status'])}"
        )
    return f"{first}\n  sources by status: {_statuses(s['sources_by_status'])}"
