"""``run --site wikipedia --dry-run``: what a portal run would ask, counted from the mirror alone.

A backfill of 2004 to today is thousands of requests at one at a time; the
user should see that before starting it, and see that a second run costs
only what is left.  Nothing is sent and nothing is written: the mirror is
read through a read-only connection (or taken as empty when it does not
exist yet).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click


def portal_plan_summary(settings, since: dt.date | None, until: dt.date | None) -> dict:
    """The plan of a portal run with these settings and window, as a summary dict."""
    from crawler import portal_plan
    from pipeline.clock import Clock
    from pipeline.frontier import Frontier

    clock = Clock.from_settings(settings)
    path = Path(settings.get("MIRROR_DB"))
    frontier = Frontier.open(str(path), clock) if path.exists() else None
    try:
        plan, held = portal_plan.plan_for(frontier, since, until, clock.now(), settings)
    finally:
        if frontier:
            frontier.close()
    cost = portal_plan.cost(
        plan.days, held, settings.getint("WIKIPEDIA_MONTHLY_AFTER"), plan.recent_since is not None
    )
    return {
        "dry_run": True,
        "site": "wikipedia",
        "db": str(path),
        "covers": plan.reason,
        "first_day": min(plan.days).isoformat() if plan.days else None,
        "last_day": max(plan.days).isoformat() if plan.days else None,
        "days": len(plan.days),
        "days_held": len(held & set(plan.days)),
        "recent_changes_since": plan.recent_since.isoformat() if plan.recent_since else None,
        "revision_queries": cost.revision_queries,
        "parses_if_unchanged": cost.parses_if_unchanged,
        "parses_at_most": cost.parses_at_most,
        "requests_at_least": cost.at_least,
    }


def print_plan(plan: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(plan, sort_keys=True))
        return
    lines = [
        f"Plan of a portal run on {plan['db']} (dry run: nothing sent, nothing written)",
        f"  days asked about: {plan['days']:,} ({plan['first_day']} to {plan['last_day']}),"
        f" {plan['days_held']:,} of them held by the mirror",
    ]
    if plan["recent_changes_since"]:
        lines.append(
            f"  plus older days edited since {plan['recent_changes_since']}: 1 recent-changes request"
            " per 500 edits finds them"
        )
    elif plan["covers"] == "sweep":
        lines.append("  every held day is asked about: no finished sync within the wiki's recent changes")
    lines += [
        f"  revisions queries: {plan['revision_queries']:,} (50 days each)",
        f"  parse requests: {plan['parses_if_unchanged']:,} if the held days did not change,"
        f" {plan['parses_at_most']:,} if every day did (a month's page when more than"
        " WIKIPEDIA_MONTHLY_AFTER of its days changed)",
        f"  at least {plan['requests_at_least']:,} requests, one at a time",
    ]
    click.echo("\n".join(lines))
