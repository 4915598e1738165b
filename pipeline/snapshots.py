"""An event as one JSON text: how each URL variant keeps its own content.

``event_urls.snapshot`` and ``event_versions.snapshot`` hold these, so any
variant can be shown on the event row again (see ``pipeline.canonical``) and
an unchanged page's links can be followed without parsing it again (see
``pipeline.frontier``).
"""

from __future__ import annotations

import dataclasses
import json

from pipeline.normalise import ChangeRef, Event, RelatedRef, SourceRef


def _fields(cls) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


EVENT_FIELDS, SOURCE_FIELDS = _fields(Event), _fields(SourceRef)
RELATED_FIELDS, CHANGE_FIELDS = _fields(RelatedRef), _fields(ChangeRef)


def _plain(value, names: tuple[str, ...]) -> dict:
    return {name: getattr(value, name) for name in names}


def event_snapshot(event: Event) -> str:
    """``dataclasses.asdict`` spelled out: it deep-copies every value on the way, and was an eighth
    of a checkout import's store (the JSON is the same, keys sorted)."""
    data = _plain(event, EVENT_FIELDS)
    data["sources"] = [_plain(s, SOURCE_FIELDS) for s in event.sources]
    data["related"] = [_plain(r, RELATED_FIELDS) for r in event.related]
    data["changes"] = [_plain(c, CHANGE_FIELDS) for c in event.changes]
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def event_from_snapshot(snapshot: str) -> Event:
    data = json.loads(snapshot)
    data["sources"] = [SourceRef(**s) for s in data["sources"]]
    data["related"] = [RelatedRef(**r) for r in data["related"]]
    data["changes"] = [ChangeRef(**c) for c in data.get("changes", [])]  # older snapshots have none
    return Event(**data)
