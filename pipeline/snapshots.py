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


def event_snapshot(event: Event) -> str:
    return json.dumps(dataclasses.asdict(event), ensure_ascii=False, sort_keys=True)


def event_from_snapshot(snapshot: str) -> Event:
    data = json.loads(snapshot)
    data["sources"] = [SourceRef(**s) for s in data["sources"]]
    data["related"] = [RelatedRef(**r) for r in data["related"]]
    data["changes"] = [ChangeRef(**c) for c in data.get("changes", [])]  # older snapshots have none
    return Event(**data)
