"""Datasette plugin for the mirror (``python -m crawler serve`` loads it with ``--plugins-dir``).

- ``registered_domain(host)``: a SQL function (tldextract's bundled public
  suffix list, offline) that makes ``edition.cnn.com`` and ``money.cnn.com``
  one outlet, ``cnn.com``; the dead-link query groups and filters by it.
- The event page: ``templates/event.html`` gets the event's sources, related
  events, versions and entities (``crawler.browse.pages.event_page``).
- The dead-link query's outlet facet (``templates/dead_links.html``).
- Cells: an event's text links to its page; long URLs are cut in the middle
  for display, the link (and its tooltip) keeps the whole address.
- Table pages leave out the internal columns that ``metadata.yml`` lists under
  ``plugins: crawler-browse: hidden_columns`` (``_nocol``); JSON, CSV and SQL
  still have them, and ``?_internal=1`` shows them.
- An ``outlet`` facet for table pages (``facets: [{outlet: domain}]`` in
  ``metadata.yml``): a domain column counted by registered domain, each value
  a link to ``?_outlet=cnn.com``, which keeps the rows of that outlet.
- ``browse.css`` and ``browse.js`` on every page (``--static mirror-browse:...``).
"""

from __future__ import annotations

import re

from datasette import hookimpl
from datasette.database import QueryInterrupted
from datasette.facets import Facet
from datasette.filters import FilterArguments
from datasette.utils import (
    escape_sqlite,
    path_with_added_args,
    path_with_removed_args,
    tilde_encode,
    urlsafe_components,
)
from markupsafe import Markup, escape

from crawler.browse.pages import event_page, hidden_query, outlet_facet, short_url
from crawler.outlets import registered_domain

PLUGIN = "crawler-browse"
STATIC = "/mirror-browse/"
DEAD_LINKS = "dead_sources"
OUTLET_ARG = "_outlet"
STATUSES = {"alive", "failing", "dead", "blocked", "unchecked"}
INSTANT = re.compile(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(?:Z|\+00:00)$")


@hookimpl
def prepare_connection(conn):
    conn.create_function("registered_domain", 1, registered_domain, deterministic=True)


@hookimpl
def extra_css_urls():
    return [STATIC + "browse.css"]


@hookimpl
def extra_js_urls():
    return [{"url": STATIC + "browse.js", "module": False}]


def _row_url(datasette, database: str):
    def row_url(table: str, pk) -> str:
        return datasette.urls.row(database, table, tilde_encode(str(pk)))

    return row_url


@hookimpl
def extra_template_vars(view_name, database, table, request, datasette):
    if request is None or database is None:
        return {}
    if view_name == "row" and table == "events":

        async def event_vars():
            pks = urlsafe_components(request.url_vars["pks"])
            page = await event_page(datasette.get_database(database), pks[0], _row_url(datasette, database))
            return {"event_page": page}

        return event_vars
    if request.path.rstrip("/").endswith("/" + DEAD_LINKS):

        async def dead_link_vars():
            outlets = await outlet_facet(datasette.get_database(database))
            return {
                "outlets": outlets,
                "outlet": request.args.get("outlet", ""),
                "sort": request.args.get("sort", ""),
            }

        return dead_link_vars
    return {}


def _link(href: str, text: str, title: str | None = None) -> Markup:
    tip = f' title="{escape(title)}"' if title else ""
    where, dot, day = text.partition(" · ")  # an archived copy: its day is not broken at a hyphen
    shown = f'{escape(where)} <span class="instant">· {escape(day)}</span>' if dot else escape(text)
    return Markup(f'<a href="{escape(href)}"{tip}>{shown}</a>')


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    if value is None and table is None and column == "archive_url":  # the dead-link list
        return Markup('<span class="note">none found yet</span>')
    if not isinstance(value, str) or not value:
        return None
    row_url = _row_url(datasette, database)
    try:
        if table in ("events", "events_overview") and column == "text":
            return _link(row_url("events", row["id"]), value)
        if table is None and column == "event" and row["event_id"]:
            return _link(row_url("events", row["event_id"]), value)
        if table is None and column == "event_id":
            return _link(row_url("events", value), value)
    except (IndexError, KeyError):  # the row has no id column: an ordinary cell
        pass
    if column == "status" and table in (None, "sources") and value in STATUSES:
        return Markup(f'<span class="status status-{value}">{value}</span>')
    moment = INSTANT.match(value)
    if moment:  # an instant (UTC, as the mirror writes them): the day and minute, whole on hover
        return Markup(f'<span class="instant" title="{escape(value)} (UTC)">{moment[1]} {moment[2]}</span>')
    if value.startswith(("http://", "https://")) and " " not in value.strip():
        url = value.strip()
        shown = short_url(url)
        return _link(url, shown, url if shown != url.split("://", 1)[-1] else None)
    return None


@hookimpl
def asgi_wrapper(datasette):
    """Table pages (HTML) without the internal columns, unless asked for."""

    def wrap(app):
        async def without_internal_columns(scope, receive, send):
            if scope.get("type") == "http":
                scope = await _hide_internal(datasette, scope)
            await app(scope, receive, send)

        return without_internal_columns

    return wrap


async def _hide_internal(datasette, scope):
    parts = scope.get("path", "").split("/")
    if len(parts) != 3 or "." in parts[2] or parts[1] not in datasette.databases:
        return scope
    database, table = parts[1], parts[2]
    config = datasette.plugin_config(PLUGIN, database=database, table=table) or {}
    hidden = config.get("hidden_columns") or []
    if not hidden:
        return scope
    db = datasette.get_database(database)
    try:
        columns = await db.table_columns(table)
    except Exception:  # noqa: BLE001 (no such table: Datasette answers the request as it would)
        return scope
    query = hidden_query(scope.get("query_string", b"").decode("latin-1"), hidden, columns)
    if query is None:
        return scope
    return {**scope, "query_string": query.encode("latin-1")}


class OutletFacet(Facet):
    """A host column counted by outlet (registered domain); a value keeps its rows with ``?_outlet=``."""

    type = "outlet"

    async def suggest(self):
        return []

    async def facet_results(self):
        results, timed_out = [], []
        pairs = self.get_querystring_pairs()
        size = self.get_facet_size()
        for config in self.get_configs():
            column = config["config"].get("column") or config["config"]["simple"]
            col = escape_sqlite(column)
            sql = (
                f"select registered_domain({col}) as value, count(*) as count from ({self.sql})"
                f" where {col} is not null group by value order by count desc, value limit {size + 1}"
            )
            try:
                rows = await self.ds.execute(
                    self.database,
                    sql,
                    self.params,
                    truncate=False,
                    custom_time_limit=self.ds.setting("facet_time_limit_ms"),
                )
            except QueryInterrupted:
                timed_out.append(column)
                continue
            values = []
            for row in rows.rows[:size]:
                selected = (OUTLET_ARG, str(row["value"])) in pairs
                change = path_with_removed_args if selected else path_with_added_args
                path = change(self.request, {OUTLET_ARG: row["value"]})
                values.append(
                    {
                        "value": row["value"],
                        "label": row["value"],
                        "count": row["count"],
                        "toggle_url": self.ds.absolute_url(self.request, self.ds.urls.path(path)),
                        "selected": selected,
                    }
                )
            hide = path_with_removed_args(self.request, {"_facet_outlet": column})
            results.append(
                {
                    "name": column,
                    "type": self.type,
                    "hideable": config["source"] != "metadata",
                    "toggle_url": self.ds.urls.path(hide),
                    "results": values,
                    "truncated": len(rows) > size,
                }
            )
        return results, timed_out


@hookimpl
def register_facet_classes():
    return [OutletFacet]


@hookimpl
def filters_from_request(request, database, table, datasette):
    """``?_outlet=cnn.com``: the rows whose domain is of that outlet (cnn.com, edition.cnn.com...)."""
    outlet = request.args.get(OUTLET_ARG)
    if not outlet or not table:
        return None

    async def outlet_filter():
        if "domain" not in await datasette.get_database(database).table_columns(table):
            return None
        return FilterArguments(
            ["registered_domain(domain) = :p_outlet"],
            {"p_outlet": outlet},
            [f'outlet (registered domain) is "{outlet}"'],
        )

    return outlet_filter
