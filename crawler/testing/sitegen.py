"""Generate a synthetic event site in the real markdown format, of any size.

The corpus holds 85 pages; sync and scale need thousands.  ``generate``
writes a deterministic site (same arguments, same bytes) shaped like *the
Context*: a front page listing the newest days, day pages in the later layout
(``#####`` topic, ``### [title](url)``, ``_Context:_``, "Previous Day..."),
event pages with sources and related events, some related links dangling
(404) as on the real site.  As on the real site, some events were edited and
so exist under two slugs: the first version's file stays, the current page
names it in a ``### Changes:`` section, the day page lists only the current
one and later events may still link to the old one (the mirror must hold one
event for the two files).  Some events cite a source an earlier event cited
(a wire story several events rest on).  ``python -m crawler.testing.sitegen DIR --days N
--events-per-day M`` does the same from a shell.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

WORDS = (
    "government parliament election storm earthquake minister court protest agreement summit "
    "flood president rebels talks ceasefire company strike report police border trade vote "
    "hospital airline bridge river festival treaty market council inquiry satellite"
).split()
TOPICS = ["Politics", "Disasters", "Conflicts", "Business", "Science", "Law", "Sport"]


@dataclass
class Site:
    root: Path
    days: list[dt.date]
    events: int
    pages: int


def day_path(day: dt.date) -> str:
    return f"news/{day:%Y/%m}/{day.day}/index.md"


def event_path(day: dt.date, number: int, words: list[str]) -> str:
    return f"news/{day:%Y/%m}/{day.day}/event-{number}-{'-'.join(words)}.md"


def _event_page(
    day: dt.date,
    title: str,
    sources: list[str],
    related: list[tuple[str, str]],
    changes: list[tuple[str, str]] = (),
) -> str:
    lines = [f"### [{day:%Y-%m}-{day.day}](/{day_path(day)})", "", f"# {title} ", "", "### Sources:", ""]
    lines += [f"{n}. [Outlet {n}]({url})" for n, url in enumerate(sources, 1)]
    if changes:
        (old_title, old_path), (new_title, new_path) = changes
        lines += ["", "### Changes:", ""]
        lines.append(f"1. [{old_title} ](/{old_path}) _{day} 13:49:31 (First version)_")
        lines.append(f"1. [{new_title} ](/{new_path}) _(Current version)_")
    if related:
        lines += ["", "### Related:", ""]
        lines += [f"{n}. [{t} ](/{p}) _Context: Generated_" for n, (t, p) in enumerate(related, 1)]
    return "\n".join(lines) + "\n"


def generate(
    root: Path,
    days: int,
    events_per_day: int,
    last_day: dt.date = dt.date(2019, 6, 30),
    source_origins: tuple[str, ...] = (
        "https://news.example",
        "https://wire.example",
        "https://daily.example",
    ),
    seed: int = 1,
    edited: float = 0.1,
    shared_sources: float = 0.1,
) -> Site:
    """Write the site under ``root`` and say what it holds.

    ``edited`` is the share of events that also have a first-version file
    under another slug; ``shared_sources`` the share that cite a source an
    earlier event cited.  ``Site.pages`` counts files, ``Site.events`` events.
    """
    rng = random.Random(seed)
    root = Path(root)
    dates = [last_day - dt.timedelta(days=n) for n in range(days)]
    written: list[tuple[str, str]] = []  # (title, path) of events already written, oldest first
    cited: list[str] = []  # sources already cited
    pages = 0
    for day in reversed(dates):  # oldest first, so related links point back in time
        listing = []
        for number in range(1, events_per_day + 1):
            words = rng.sample(WORDS, 4)
            title = f"{' '.join(words).capitalize()} on {day.isoformat()}, item {number}."
            path = event_path(day, number, words)
            sources = [
                f"{rng.choice(source_origins)}/{day:%Y/%m/%d}/{'-'.join(words)}-{k}"
                for k in range(rng.randint(1, 2))
            ]
            if cited and rng.random() < shared_sources:
                sources.append(rng.choice(cited[-500:]))
            cited += sources
            related = rng.sample(written[-200:], min(3, len(written)))
            if rng.random() < 0.2:  # a related page the site never had
                related.append(("A page that is gone.", f"news/{day:%Y/%m}/{day.day}/gone-{number}.md"))
            changes = []
            if rng.random() < edited:  # the first version, its story still in the title
                topic_first = f"{rng.choice(TOPICS)}:{title}"
                old_path = event_path(day, number, ["first", *words])
                _write(root / old_path, _event_page(day, topic_first, sources, related))
                changes = [(topic_first, old_path), (title, path)]
                written.append((topic_first, old_path))  # later events may still link to it
                pages += 1
            _write(root / path, _event_page(day, title, sources, related, changes))
            listing.append((rng.choice(TOPICS), title, path))
            pages += 1
        written += [(title, path) for _, title, path in listing]
        previous = day - dt.timedelta(days=1)
        lines = [f"## [{day:%Y-%m}-{day.day}](/{day_path(day)})", ""]
        for topic, title, path in listing:
            lines += [f"##### {topic}", f"### [{title} ](/{path})", "_Context: Generated_", ""]
        lines.append(f"## [Previous Day...](/{day_path(previous)})")
        _write(root / day_path(day), "\n".join(lines) + "\n")
        pages += 1
    site = Site(root=root, days=dates, events=days * events_per_day, pages=pages + 1)
    _write_front_page(site)
    return site


def add_day(site: Site, events: int = 3) -> dt.date:
    """Publish a new newest day (as the live site does) and list it on the front page."""
    day = site.days[0] + dt.timedelta(days=1)
    listing = []
    for number in range(1, events + 1):
        title = f"News of {day.isoformat()}, item {number}."
        path = event_path(day, number, ["news"])
        _write(site.root / path, _event_page(day, title, [f"https://news.example/{day}/{number}"], []))
        listing.append((title, path))
    lines = [f"## [{day:%Y-%m}-{day.day}](/{day_path(day)})", ""]
    lines += [f"### [{title} ](/{path})\n" for title, path in listing]
    lines.append(f"## [Previous Day...](/{day_path(site.days[0])})")
    _write(site.root / day_path(day), "\n".join(lines) + "\n")
    site.days.insert(0, day)
    _write_front_page(site)
    site.events += events
    site.pages += events + 1
    return day


def _write_front_page(site: Site) -> None:
    front = ["# Generated site", "", "## Latest days", ""]
    front += [f"* [{d:%Y-%m}-{d.day}](/{day_path(d)})" for d in site.days[:10]]
    _write(site.root / "index.md", "\n".join(front) + "\n")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--events-per-day", type=int, default=20)
    args = parser.parse_args()
    site = generate(args.root, args.days, args.events_per_day)
    print(f"{site.pages} pages, {site.events} events, {len(site.days)} days under {site.root}")


if __name__ == "__main__":
    main()


def write_citing_site(folder: Path, sources: list[str]) -> Path:
    """A one-day site under ``folder/site`` whose one event cites ``sources``; its root.

    The smallest site that gets sources into a mirror: for tests of source checking.
    """
    root = folder / "site"
    day = root / "news/2013/03/27"
    day.mkdir(parents=True)
    cited = "\n".join(f"{n}. [Outlet {n}]({url})" for n, url in enumerate(sources, 1))
    (day / "event.md").write_text(
        f"### [2013-03-27](/news/2013/03/27/index.md)\n\n# Something happens.\n\n### Sources:\n\n{cited}\n"
    )
    (day / "index.md").write_text(
        "## [2013-03-27](/news/2013/03/27/index.md)\n\n### [Something happens. ](/news/2013/03/27/event.md)\n"
    )
    return root

