"""An event's snapshot is the JSON it always was: a mirror made by older code is not rewritten."""

from __future__ import annotations

import dataclasses
import json

from pipeline.normalise import ChangeRef, Event, RelatedRef, SourceRef
from pipeline.snapshots import event_from_snapshot, event_snapshot


def test_the_snapshot_is_the_json_of_dataclasses_asdict():
    event = Event(
        url="https://site.example/news/2019/06/3/a.md",
        date="2019-06-03",
        title="Title «quoted»",
        story=None,
        text="Text with ünïcode and \"quotes\"",
        topic="Politics",
        description=None,
        text_key="text with unicode and quotes",
        sources=[SourceRef("https://a.example/x", "AP", "a.example", "https://a.example/x?utm=1")],
        related=[RelatedRef("https://site.example/news/2019/06/2/b.md", "B", ["Iran", "Oil"])],
        versions=["https://site.example/news/2019/06/3/a-old.md"],
        entities=["Iran"],
        changes=[ChangeRef(
            "https://site.example/news/2019/06/3/a-old.md", "Old", "2019-06-03 10:00", "Update"
        )],
    )
    # The store compares snapshots to decide whether a URL's content changed: a new spelling of
    # the same content would rewrite every snapshot of a mirror made before.
    assert event_snapshot(event) == json.dumps(dataclasses.asdict(event), ensure_ascii=False, sort_keys=True)
    assert event_from_snapshot(event_snapshot(event)) == event
