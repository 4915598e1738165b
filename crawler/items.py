"""The item the spider yields: one fetched (or failed) page of the site.

The spider parses each page once, because it must know the page's links to
follow them; the item carries that parse downstream so that no pipeline
parses again.  Pipelines fill in the later fields in order:
normalise (``event``/``day``) → dedupe (``event_id``) → store.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.normalise import Day, Event
from pipeline.parse import ParsedPage


@dataclass
class PageItem:
    url: str  # canonical URL the content was served under (after redirects)
    fetched_at: str
    kind: str  # event, day, index, other, redirect, error
    http_status: int | None = None
    content_hash: str | None = None
    size: int | None = None
    error: str | None = None  # why the page is unusable, when it is
    redirect_to: str | None = None  # where a redirect (kind "redirect") points
    parsed: ParsedPage | None = None
    # Filled by the pipelines
    event: Event | None = None
    day: Day | None = None
    event_id: str | None = None
