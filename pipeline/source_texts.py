"""Keep what a live source says: its metadata on ``sources``, its text in ``source_texts``.

Cited articles die; the mirror's point is that what they said does not die with them.
A good check therefore keeps the page's title, description, date and site name on the
source's row, and its readable text in ``source_texts`` as a new row only when the text
changed, so that the first good copy outlives later edits and the source itself.

When the run later finds that a "good" check was the host's page for a missing URL (a
redirect target shared by many cited URLs: :mod:`pipeline.settle`), :func:`take_back`
removes what that very check kept.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from pipeline.extract import extract

if TYPE_CHECKING:
    from crawler.items import CheckItem


def keep(db, item: CheckItem, final_url: str | None, html: str | None, now: str) -> None:
    """Keep what a live source says: metadata always, its text when it changed."""
    row = {
        "http_status": item.http_status,
        "final_url": final_url,
        "content_type": item.content_type,
        "size": item.size,
        "last_ok_at": now,
    }
    text = digest = None
    if html is not None:
        # The check spider (or a Redis worker) extracted it already, in its parse pool, from the
        # same page and URL (crawler.spiders.sources); extracted here only when it did not.
        found = item.extracted or extract(html, final_url or "")
        if not found.failed:
            row.update(
                title=found.title,
                description=found.description,
                published=found.published,
                site_name=found.site_name,
            )
            text, digest = found.text, found.text_hash
    digest = digest or hashlib.sha256(item.body or b"").hexdigest()
    row["content_hash"] = digest
    db["sources"].update(item.source_id, row)
    db.execute(
        "UPDATE sources SET first_ok_at = ? WHERE id = ? AND first_ok_at IS NULL", [now, item.source_id]
    )
    if text:
        latest = db.execute(
            "SELECT content_hash FROM source_texts WHERE source_id = ? ORDER BY id DESC LIMIT 1",
            [item.source_id],
        ).fetchone()
        if latest is None or latest[0] != digest:
            db["source_texts"].insert(
                {"source_id": item.source_id, "fetched_at": now, "content_hash": digest, "text": text}
            )


def take_back(db, source_id: int, kept_at: str | None) -> None:
    """Forget what the check made at ``kept_at`` kept: it was not the article after all."""
    db.execute("DELETE FROM source_texts WHERE source_id = ? AND fetched_at = ?", [source_id, kept_at])
    db.execute(
        "UPDATE sources SET first_ok_at = NULL, last_ok_at = NULL, title = NULL, description = NULL,"
        " published = NULL, site_name = NULL, content_hash = NULL"
        " WHERE id = ? AND first_ok_at = ?",
        [source_id, kept_at],
    )
