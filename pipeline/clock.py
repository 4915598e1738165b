"""The run's idea of "now": the real clock, or a fixed moment (``--now``).

The dead-link policy spans days (three strikes, three days apart), so tests
and replays of old backfills need to say "act as if it were this moment".
Every timestamp the mirror writes comes from one :class:`Clock`, set from the
``NOW`` setting.
"""

from __future__ import annotations

import datetime as dt


def parse_instant(text: str) -> dt.datetime:
    """An ISO-8601 moment; a date or a time without zone is taken as UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(moment: dt.datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(microsecond=0).isoformat()


class Clock:
    def __init__(self, fixed: dt.datetime | None = None):
        self.fixed = fixed

    @classmethod
    def from_settings(cls, settings) -> Clock:
        value = settings.get("NOW")
        return cls(parse_instant(value) if value else None)

    def now(self) -> dt.datetime:
        return self.fixed or dt.datetime.now(dt.UTC)

    def iso(self) -> str:
        return iso(self.now())
