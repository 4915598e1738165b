"""``python -m crawler report``: the link-rot picture of a mirror, as one HTML page.

The page is self-contained (its charts are embedded PNGs, also written next
to it) so that it can be mailed or archived as it is.  It shows the share of
dead, failing and alive sources by the year of the events citing them and by
domain, how many dead sources have an archived copy, the sync history, and
the mirror's figures next to the published ones of ``shared/docs/DEADLINKS.md``.
The figures come from SQL over ``mirror.db`` (``figures``) and are written to
``report.json`` too, so a test or a notebook can read the same numbers.

Domains are grouped by outlet, their registered domain (``edition.cnn.com``
and ``money.cnn.com`` are ``cnn.com``; :mod:`crawler.outlets`).  The page ends
with every dead source, linked, with the events that cite it and its archived
copy.  Figures for a site (the Context, Wikipedia's portal) show only for a
site whose events the mirror holds.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render to files
import matplotlib.pyplot as plt  # noqa: E402

from crawler.outlets import registered_domain  # noqa: E402
from crawler.reports import dead_links  # noqa: E402
from pipeline.schema import rows_of  # noqa: E402

STATUSES = ("alive", "failing", "dead", "blocked", "unchecked")
COLOURS = {
    "alive": "#4c9a2a",
    "failing": "#e0a100",
    "dead": "#c0392b",
    "blocked": "#7f8c8d",
    "unchecked": "#d5d8dc",
}
# Published figures (shared/docs/DEADLINKS.md): what other studies found, for comparison.
PUBLISHED = [
    ("Pages of 2013 no longer accessible in 2023", 38.0, "Pew Research Center, 2024"),
    ("News pages with at least one broken link", 23.0, "Pew Research Center, 2024"),
    ("Wikipedia pages with a dead reference link", 54.0, "Pew Research Center, 2024"),
]

# Each source counts once, in the year of the earliest event citing it.
BY_YEAR_SQL = """
SELECT substr(first_cited, 1, 4) AS year, status, count(*) AS n FROM (
  SELECT s.status, min(e.date) AS first_cited FROM sources s
  JOIN event_sources es ON es.source_id = s.id JOIN events e ON e.id = es.event_id
  GROUP BY s.id)
GROUP BY year, status ORDER BY year
"""
DEAD_BY_YEAR_SQL = """
SELECT substr(first_cited, 1, 4) AS year, count(*), sum(archive_url IS NOT NULL) FROM (
  SELECT s.archive_url, min(e.date) AS first_cited FROM sources s
  JOIN event_sources es ON es.source_id = s.id JOIN events e ON e.id = es.event_id
  WHERE s.status = 'dead' GROUP BY s.id)
GROUP BY year ORDER BY year
"""
DOMAIN_STATUS_SQL = "SELECT domain, status, count(*) FROM sources GROUP BY domain, status"
SITES_SQL = """
SELECT coalesce(e.site, 'thecontext') AS site, count(*) AS events,
  sum(EXISTS (SELECT 1 FROM event_sources es JOIN sources s ON s.id = es.source_id
              WHERE es.event_id = e.id AND s.status = 'dead')) AS with_dead
FROM events e GROUP BY 1 ORDER BY 1
"""
SITE_NAMES = {"thecontext": "the Context (thecontext.net)", "wikipedia": "Wikipedia's Current Events Portal"}


def _breakdown(rows) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = {}
    for key, status, n in rows:
        table.setdefault(key, dict.fromkeys(STATUSES, 0))[status] = n
    return table


def _percent(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


def outlets(db) -> list[dict]:
    """Sources by outlet (registered domain), with the hosts merged into each, most sources first."""
    merged: dict[str, dict] = {}
    for domain, status, n in db.execute(DOMAIN_STATUS_SQL).fetchall():
        outlet = registered_domain(domain) or "?"
        row = merged.setdefault(
            outlet, {"outlet": outlet, "hosts": [], "sources": 0, **dict.fromkeys(STATUSES, 0)}
        )
        if domain not in row["hosts"]:
            row["hosts"].append(domain)
        row["sources"] += n
        row[status if status in STATUSES else "unchecked"] += n
    for row in merged.values():
        row["hosts"].sort()
    return sorted(merged.values(), key=lambda row: (-row["sources"], row["outlet"]))


def sites(db) -> dict[str, dict]:
    """Per site the mirror holds events of: its events, and how many cite a dead source."""
    return {
        site: {"events": events, "events_with_dead_source": with_dead, "percent": _percent(with_dead, events)}
        for site, events, with_dead in db.execute(SITES_SQL).fetchall()
    }


def dead_sources(db) -> list[dict]:
    """Every dead source with its outlet, archived copy and the events citing it, by outlet."""
    found = []
    for source in dead_links(db):
        events = [
            {key: event[key] for key in ("event_id", "date", "label", "text", "event_url")}
            for event in source["events"]
        ]
        found.append(
            {
                "url": source["url"],
                "domain": source["domain"],
                "outlet": registered_domain(source["domain"]),
                "dead_since": source["dead_since"],
                "archive_url": source["archive_url"],
                "archive_timestamp": source["archive_timestamp"],
                "events": events,
            }
        )
    return sorted(found, key=lambda s: (s["outlet"] or "", s["dead_since"] or "", s["url"]))


def figures(db, top: int = 12) -> dict:
    """Every number the report shows."""
    by_status = dict(db.execute("SELECT status, count(*) FROM sources GROUP BY status").fetchall())
    total = sum(by_status.values())
    checked = total - by_status.get("unchecked", 0)
    dead = by_status.get("dead", 0)
    archived = db.execute(
        "SELECT count(*) FROM sources WHERE status = 'dead' AND archive_url IS NOT NULL"
    ).fetchone()[0]
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    events_with_dead = db.execute(
        "SELECT count(DISTINCT es.event_id) FROM event_sources es JOIN sources s ON s.id = es.source_id"
        " WHERE s.status = 'dead'"
    ).fetchone()[0]
    by_year = _breakdown(db.execute(BY_YEAR_SQL).fetchall())
    sources_2013 = sum(by_year.get("2013", {}).values())
    domains = outlets(db)[:top]
    runs = rows_of(
        db,
        "SELECT id, kind, started_at, status, requests, events_new, sources_checked"
        " FROM sync_runs ORDER BY id",
    )
    return {
        "sources": total,
        "sources_checked": checked,
        "by_status": {status: by_status.get(status, 0) for status in STATUSES},
        "dead_percent_of_checked": _percent(dead, checked),
        "dead_archived": archived,
        "archive_coverage_percent": _percent(archived, dead),
        "events": events,
        "events_with_dead_source": events_with_dead,
        "events_with_dead_source_percent": _percent(events_with_dead, events),
        "sources_2013_dead_percent": _percent(by_year.get("2013", {}).get("dead", 0), sources_2013),
        "by_year": by_year,
        "dead_by_year": {
            year: {"dead": dead_n, "archived": archived_n}
            for year, dead_n, archived_n in db.execute(DEAD_BY_YEAR_SQL).fetchall()
        },
        "top_domains": domains,
        "sites": sites(db),
        "dead_sources": dead_sources(db),
        "sync_runs": runs,
    }


# -- charts ----------------------------------------------------------------------


def _stacked(ax, labels: list[str], rows: list[dict[str, int]], horizontal: bool) -> None:
    offsets = [0.0] * len(labels)
    for status in STATUSES:
        shares = [100.0 * row[status] / (sum(row.values()) or 1) for row in rows]
        if not any(shares):
            continue
        bar = ax.barh if horizontal else ax.bar
        kwargs = {"left": offsets} if horizontal else {"bottom": offsets}
        bar(labels, shares, label=status, color=COLOURS[status], **kwargs)
        offsets = [o + s for o, s in zip(offsets, shares, strict=True)]
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def chart_by_year(fig_data: dict, path: Path) -> Path:
    years = sorted(fig_data["by_year"])
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = [f"{y}\n({sum(fig_data['by_year'][y].values())})" for y in years]
    _stacked(ax, labels, [fig_data["by_year"][y] for y in years], horizontal=False)
    ax.set_ylabel("% of sources")
    ax.set_title("Sources by the year of the events citing them")
    return _save(fig, path)


def chart_by_domain(fig_data: dict, path: Path) -> Path:
    domains = list(reversed(fig_data["top_domains"]))
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(domains) + 1.5))
    labels = [f"{d['outlet']} ({d['sources']})" for d in domains]
    _stacked(ax, labels, [{s: d[s] for s in STATUSES} for d in domains], horizontal=True)
    ax.set_xlabel("% of the outlet's sources")
    ax.set_title("Top outlets (registered domains) by sources cited")
    return _save(fig, path)


def chart_archive(fig_data: dict, path: Path) -> Path:
    years = sorted(fig_data["dead_by_year"])
    archived = [fig_data["dead_by_year"][y]["archived"] for y in years]
    missing = [fig_data["dead_by_year"][y]["dead"] - fig_data["dead_by_year"][y]["archived"] for y in years]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar(years, archived, color="#2e86c1", label="archived copy found")
    ax.bar(years, missing, bottom=archived, color="#c0392b", label="no archived copy (yet)")
    ax.set_ylabel("dead sources")
    ax.set_title("Archive coverage of dead sources, by event year")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    return _save(fig, path)


def chart_history(fig_data: dict, path: Path) -> Path:
    runs = fig_data["sync_runs"]
    fig, ax = plt.subplots(figsize=(8, 3))
    ids = [str(r["id"]) for r in runs]
    ax.bar(ids, [r["requests"] or 0 for r in runs], color="#2e86c1", label="site requests")
    ax.bar(
        ids, [r["sources_checked"] or 0 for r in runs], color="#af7ac5", alpha=0.7, label="sources checked"
    )
    ax.set_xlabel("run")
    ax.set_yscale("symlog")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title("Sync history: what each run asked")
    return _save(fig, path)


# -- page ------------------------------------------------------------------------


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _pct(value) -> str:
    return "–" if value is None else f"{value:.1f}%"


def _a(href: str | None, text: str, title: str | None = None) -> str:
    if not href:
        return html.escape(text)
    tip = f' title="{html.escape(title)}"' if title else ""
    return f'<a href="{html.escape(href)}"{tip}>{html.escape(text)}</a>'


def _short(url: str, limit: int = 70) -> str:
    bare = url.split("://", 1)[-1]
    return bare if len(bare) <= limit else bare[: limit - 1] + "…"


def _comparison(f: dict) -> str:
    ours = [
        (f["sources_2013_dead_percent"], "sources first cited by events of 2013 that are dead"),
        (f["events_with_dead_source_percent"], "events citing at least one dead source"),
        None,  # Wikipedia's pages: only next to the portal's own events, when the mirror holds them
    ]
    portal = f["sites"].get("wikipedia")
    if portal:
        ours[2] = (portal["percent"], "Portal events citing at least one dead source")
    return "".join(
        f"<tr><td>{html.escape(label)}</td><td>{value:.0f}%</td><td>{html.escape(who)}</td>"
        f"<td>{_pct(mine[0])}</td><td>{html.escape(mine[1])}</td></tr>"
        for (label, value, who), mine in zip(PUBLISHED, ours, strict=True)
        if mine is not None
    )


def _sites(f: dict) -> str:
    if not f["sites"]:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(SITE_NAMES.get(site, site))}</td><td>{n['events']}</td>"
        f"<td>{n['events_with_dead_source']}</td><td>{_pct(n['percent'])}</td></tr>"
        for site, n in f["sites"].items()
    )
    return (
        "<h2>By site</h2><table><tr><th>events of</th><th>events</th><th>citing a dead source</th>"
        f"<th>share</th></tr>{rows}</table>"
    )


def _dead_list(f: dict) -> str:
    if not f["dead_sources"]:
        return '<h2 id="dead-sources">Dead sources</h2><p>No source is dead.</p>'
    rows = []
    for s in f["dead_sources"]:
        archived = (
            _a(s["archive_url"], _archived_label(s["archive_timestamp"]), s["archive_url"])
            if s["archive_url"]
            else "none found yet"
        )
        cited = "".join(
            f"<li>{html.escape(e['date'] or '')} {_a(e['event_url'], _clip(e['text'] or '', 120), e['text'])}"
            f"{' <span class=note>(' + html.escape(e['label']) + ')</span>' if e['label'] else ''}</li>"
            for e in s["events"]
        )
        source = _a(s["url"], _short(s["url"]), s["url"])
        since = html.escape((s["dead_since"] or "")[:10])
        rows.append(
            f"<tr><td class=nowrap>{html.escape(s['outlet'] or '')}</td><td class=url>{source}</td>"
            f"<td class=nowrap>{since}</td><td class=nowrap>{archived}</td>"
            f"<td class=cited><ul>{cited}</ul></td></tr>"
        )
    return (
        f'<h2 id="dead-sources">Dead sources ({len(rows)})</h2>'
        "<p>Each dead source, by outlet, with its archived copy and the events that cite it.</p>"
        '<table class="dead"><tr><th>outlet</th><th>source</th><th>dead since</th><th>archived copy</th>'
        f"<th>cited by</th></tr>{''.join(rows)}</table>"
    )


def _archived_label(timestamp: str | None) -> str:
    stamp = (timestamp or "")[:8]
    return f"copy of {stamp[:4]}-{stamp[4:6]}-{stamp[6:]}" if len(stamp) == 8 and stamp.isdigit() else "copy"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render_page(f: dict, charts: dict[str, Path], db_path: str, now: str) -> str:
    s = f["by_status"]
    comparison = _comparison(f)
    domains = "".join(
        f"<tr><td>{html.escape(d['outlet'])}</td>"
        f"<td>{html.escape(', '.join(h for h in d['hosts'] if h != d['outlet']))}</td><td>{d['sources']}</td>"
        + "".join(f"<td>{d[st]}</td>" for st in STATUSES)
        + "</tr>"
        for d in f["top_domains"]
    )
    runs = "".join(
        f"<tr><td>{r['id']}</td><td>{r['kind']}</td><td>{html.escape(r['started_at'] or '')}</td>"
        f"<td>{r['status']}</td><td>{r['requests'] if r['requests'] is not None else '–'}</td>"
        f"<td>{r['events_new'] if r['events_new'] is not None else '–'}</td>"
        f"<td>{r['sources_checked'] if r['sources_checked'] is not None else '–'}</td></tr>"
        for r in f["sync_runs"]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Link rot in {html.escape(db_path)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem }}
table {{ border-collapse: collapse; margin: 1rem 0 }}
td, th {{ border: 1px solid #ccc; padding: .3rem .6rem }}
.big {{ font-size: 1.4rem }} img {{ max-width: 100% }}
table.dead {{ width: 100% }} table.dead td {{ vertical-align: top }}
table.dead td.url {{ overflow-wrap: anywhere; min-width: 12rem; max-width: 16rem }}
table.dead td.cited {{ min-width: 24rem }}
table.dead td.nowrap {{ white-space: nowrap }}
table.dead ul {{ margin: 0; padding-left: 1.1em }}
.note {{ color: #666 }}
</style></head><body>
<h1>Link rot in the mirror</h1>
<p>{html.escape(db_path)}, as of {html.escape(now)}: {f["events"]} events citing {f["sources"]} sources,
{f["sources_checked"]} of them checked.</p>
<p class="big"><strong>{s["dead"]}</strong> dead
({_pct(f["dead_percent_of_checked"])} of the checked sources),
<strong>{s["failing"]}</strong> failing, <strong>{s["alive"]}</strong> alive, {s["blocked"]} blocked,
{s["unchecked"]} not checked yet.
<strong>{f["dead_archived"]}</strong> of the {s["dead"]} dead sources have an archived copy
({_pct(f["archive_coverage_percent"])}).</p>
{_img(charts["archive"], "Archive coverage of dead sources")}
<p>A source is dead after three failed checks at least three days apart; blocked sources (403, bot walls)
are never counted dead. See the README for the policy.</p>
<h2>By the year of the events</h2>{_img(charts["by_year"], "Sources by event year")}
{_sites(f)}
<h2>By outlet</h2>{_img(charts["by_domain"], "Top outlets")}
<p>An outlet is a registered domain: its subdomains (edition.cnn.com, money.cnn.com) count with it.
<a href="#dead-sources">The dead sources</a> are listed below.</p>
<table><tr><th>outlet</th><th>also as</th><th>sources</th>{"".join(f"<th>{st}</th>" for st in STATUSES)}</tr>
{domains}</table>
<h2>Next to published figures</h2>
<table><tr><th>published measure</th><th>value</th><th>by</th><th>this mirror</th><th>measured as</th></tr>
{comparison}</table>
<p>Published figures from <code>shared/docs/DEADLINKS.md</code>. They measure pages, not citations, and
count a link broken after one check; this mirror counts a source dead only after three, so its figures
are expected to be lower for the same rot.</p>
<h2>Sync history</h2>{_img(charts["history"], "Sync history")}
<table><tr><th>run</th><th>kind</th><th>started</th><th>status</th><th>site requests</th><th>new events</th>
<th>sources checked</th></tr>{runs}</table>
{_dead_list(f)}
</body></html>
"""


def write_report(db, db_path: str, out: Path, now: dt.datetime | None = None) -> Path:
    """Write ``index.html``, ``report.json`` and the PNG charts into ``out``; return the page."""
    out.mkdir(parents=True, exist_ok=True)
    data = figures(db)
    charts = {
        "by_year": chart_by_year(data, out / "by_year.png"),
        "by_domain": chart_by_domain(data, out / "by_domain.png"),
        "archive": chart_archive(data, out / "archive.png"),
        "history": chart_history(data, out / "history.png"),
    }
    stamp = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0).isoformat()
    (out / "report.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    page = out / "index.html"
    page.write_text(render_page(data, charts, db_path, stamp), encoding="utf-8")
    return page
