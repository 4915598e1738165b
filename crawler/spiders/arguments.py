"""Spider arguments: ``-a name=value`` gives strings, the CLI gives Python values; both are read here."""

from __future__ import annotations

import datetime as dt


def flag(value) -> bool:
    """``True``, or ``1``/``true``/``yes`` in any case."""
    return value is True or str(value).lower() in ("1", "true", "yes")


def day(value, name: str) -> dt.date | None:
    """A date argument (``2013-03-27``), or None when not given."""
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name} must be a date like 2013-03-27, not {value!r}") from None


def window(since, until) -> tuple[dt.date | None, dt.date | None]:
    """The ``since``/``until`` pair as dates, refused when it runs backwards."""
    first, last = day(since, "since"), day(until, "until")
    if first and last and first > last:
        raise ValueError("since is after until")
    return first, last
