"""The end of a sync: tie together what arrived in any order.

Pages arrive in crawl order, so a related item or a day listing can name an
event that is stored later, and an old slug's redirect can be seen before
the page it leads to.  Once every page of the run is in, one transaction:

* old slugs that redirect to an event's page become URLs of that event
  (following chains of redirects, up to ``MAX_REDIRECT_CHAIN`` hops), so
  links to them resolve; redirects recorded by an interrupted run count too;
* an event page that now redirects elsewhere is superseded by the event it
  leads to (``pipeline.removals``);
* redirects that never reach a page are marked as loops;
* related items and day listings point at the events they name;
* portal events get related events computed from shared entities
  (``pipeline.related``): the portal lists none.
"""

from __future__ import annotations

from pipeline.related import relate
from pipeline.removals import Removals
from pipeline.runs import SyncRun

MAX_REDIRECT_CHAIN = 5


def link_up(run: SyncRun, removals: Removals) -> None:
    db = run.db
    now = run.clock.iso()
    with db.atomic():
        _alias_redirects(run, now)
        _supersede(run, removals)
        _mark_redirect_loops(run)
        db.execute(
            "UPDATE related_events SET related_id ="
            " (SELECT event_id FROM event_urls WHERE url = related_events.related_url)"
            " WHERE related_id IS NULL"
        )
        db.execute(
            "UPDATE day_events SET event_id ="
            " (SELECT event_id FROM event_urls WHERE url = day_events.url)"
            " WHERE event_id IS NULL"
        )
        if run.site == "wikipedia":  # the portal lists no related events: compute them
            relate(db, run.tally.written())


def _alias_redirects(run: SyncRun, now: str) -> None:
    """Each old slug redirecting to an event's URL becomes a URL of that event, hop by hop."""
    for _ in range(MAX_REDIRECT_CHAIN):
        added = run.db.execute(
            """
            INSERT INTO event_urls (url, event_id, via, date, listed, first_seen, last_seen)
            SELECT p.url, eu.event_id, 'redirect', eu.date,
                   EXISTS (SELECT 1 FROM day_events WHERE url = p.url), ?, ?
            FROM pages p JOIN event_urls eu ON eu.url = p.redirect_to
            WHERE p.kind = 'redirect' AND (p.sync_run = ? OR NOT EXISTS (
                SELECT 1 FROM event_urls WHERE url = p.url))
            ON CONFLICT (url) DO UPDATE SET last_seen = excluded.last_seen
            WHERE event_urls.last_seen IS NOT excluded.last_seen
            """,
            [now, now, run.id],
        ).rowcount
        if not added:
            break


def _supersede(run: SyncRun, removals: Removals) -> None:
    """Event pages that now redirect: that variant is gone, superseded by the redirect's event."""
    moved = run.db.execute(
        """
        SELECT eu.url, eu.event_id, target.event_id FROM pages p
        JOIN event_urls eu ON eu.url = p.url AND eu.snapshot IS NOT NULL AND eu.removed_at IS NULL
        LEFT JOIN event_urls target ON target.url = p.redirect_to
        WHERE p.kind = 'redirect'
        """
    ).fetchall()
    for url, event_id, target in moved:
        removals.variant_gone(url, event_id, "superseded", target if target != event_id else None)


def _mark_redirect_loops(run: SyncRun) -> None:
    """Redirects of this run that never reach a page within MAX_REDIRECT_CHAIN hops."""
    run.db.execute(
        f"""
        WITH RECURSIVE chain(start, url, hops) AS (
            SELECT url, redirect_to, 1 FROM pages WHERE kind = 'redirect' AND sync_run = :run
            UNION ALL
            SELECT chain.start, p.redirect_to, hops + 1 FROM chain
            JOIN pages p ON p.url = chain.url AND p.kind = 'redirect'
            WHERE hops <= {MAX_REDIRECT_CHAIN})
        UPDATE pages SET error = 'redirect loop (or a chain over {MAX_REDIRECT_CHAIN} hops)'
        WHERE url IN (SELECT start FROM chain WHERE hops > {MAX_REDIRECT_CHAIN}) AND error IS NULL
        """,
        {"run": run.id},
    )
