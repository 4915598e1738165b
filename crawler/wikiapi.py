"""The MediaWiki Action API's answers as the portal spider reads them: errors, waits, cache time.

Kept apart from the spider because these are the API's rules, not the
portal's: which answers mean "not now" (wait and ask again) and which mean
"no" (record and move on), how long to wait, and when the parser cache
rendered a page.

The API answers most failures with HTTP 200 and an error object
(https://www.mediawiki.org/wiki/API:Errors_and_warnings): ``maxlag`` (the
database replicas lag; ``Retry-After: 5``), ``readonly`` (maintenance),
``ratelimited``, and ``internal_api_error_<Exception>`` (a server-side bug,
often transient).  Those pass; anything else (``missingtitle``,
``toomanyvalues``, a code nobody has seen) is an answer, recorded with its
code and info.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from crawler.middlewares import retry_after_seconds

#: HTTP answers that mean "not now": waited out with a growing delay (or Retry-After), never hammered.
BACK_OFF_STATUSES = [429, 500, 502, 503, 504]
PASSING_CODES = {"maxlag", "readonly", "ratelimited", "http"}
CACHED_TIME = re.compile(r"Cached time: (\d{14})")


class ApiError(Exception):
    """The API answered with an error object (``{"error": {"code": …}}``), or not with JSON."""

    def __init__(self, code: str, info: str):
        super().__init__(f"{code}: {info}")
        self.code = code

    @property
    def passing(self) -> bool:
        """Asking again later may succeed: a lagged cluster, maintenance, a rate limit, a 5xx."""
        return self.code in PASSING_CODES or self.code.startswith("internal_api_error_")


def read_answer(status: int, body: bytes) -> dict:
    """The API's JSON; :class:`ApiError` when it is an error object, not JSON, or a 429/5xx."""
    if status in BACK_OFF_STATUSES:
        raise ApiError("http", f"HTTP {status}")
    try:
        data = json.loads(body)
    except ValueError:
        raise ApiError("badjson", f"not JSON ({len(body)} bytes)") from None
    if not isinstance(data, dict):
        raise ApiError("badjson", f"a JSON {type(data).__name__}, not an object")
    error = data.get("error")
    if error:
        raise ApiError(str(error.get("code", "unknown")), str(error.get("info", "")))
    return data


def warnings_of(data: dict) -> list[str]:
    """The answer's warnings (an unknown parameter, a value cut): the request is not what we meant."""
    found = []
    for module, warning in (data.get("warnings") or {}).items():
        text = warning.get("warnings") or warning.get("*") if isinstance(warning, dict) else warning
        found.append(f"{module}: {text}")
    return found


def wait_for(retry_after: bytes | str | None, tries: int, ceiling: float) -> float:
    """Seconds to wait before try ``tries + 1``: ``Retry-After`` (seconds, or an HTTP date still
    ahead), else 1, 2, 4, … (also for a wait of 0: never ask again at once)."""
    wait = retry_after_seconds(retry_after) or 2.0 ** (tries - 1)
    return min(wait, ceiling)


def cached_time(html: str) -> dt.datetime | None:
    """When the parser rendered this HTML (its limit report's ``Cached time``), if it says."""
    match = CACHED_TIME.search(html)
    if not match:
        return None
    return dt.datetime.strptime(match[1], "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)


def api_time(stamp: str) -> dt.datetime:
    """An API timestamp (``2023-02-01T00:00:00Z``)."""
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def latest_revisions(data: dict) -> dict[str, tuple[int, str]]:
    """Each asked title's latest revision (id, timestamp), by the title as asked (spaces for _).

    The API answers under the final title: after ``normalized`` spelling and,
    with ``redirects=1``, after a redirect to another page, whose revision
    is then the one that holds the day.
    """
    query = data.get("query", {})
    back: dict[str, str] = {}
    for step in query.get("normalized", []) + query.get("redirects", []):
        back[step["to"]] = back.get(step["from"], step["from"])
    latest = {}
    for page in query.get("pages", []):
        revisions = page.get("revisions") or []
        if page.get("missing") or not revisions or "revid" not in revisions[0]:
            continue
        asked = back.get(page["title"], page["title"])
        latest[asked.replace("_", " ")] = (revisions[0]["revid"], revisions[0].get("timestamp", ""))
    return latest
