"""Browse the mirror with Datasette: the metadata that makes it readable out of the box.

``metadata.yml`` (shipped with the package) titles the mirror, gives its
source and license, describes every table, view and column, sets label
columns, default sorts and facets, and holds the canned queries.  Datasette
names a database after its file, so the shipped file's ``mirror`` key is
renamed to the served file's stem; the text is otherwise copied as it is, so
no YAML library is needed to write it.

:func:`browse_options` adds what makes the pages read well: the templates
(an event's page, the dead-link list), the plugin (the ``registered_domain``
SQL function, short URL cells, internal columns left out of table pages) and
its stylesheet.  See ``plugins/mirror_browse.py``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DATABASE_KEY = "\n  mirror:\n"
HERE = Path(__file__).resolve().parent


def browse_options() -> list[str]:
    """Datasette's options for the mirror's templates, plugin and static files (all in this package)."""
    return [
        "--template-dir",
        str(HERE / "templates"),
        "--plugins-dir",
        str(HERE / "plugins"),
        "--static",
        f"mirror-browse:{HERE / 'static'}",
        # Datasette stops a query after 1 s by default; the dead-link list groups every dead
        # source by outlet and, on a whole-record mirror or a busy machine, needs longer.
        "--setting",
        "sql_time_limit_ms",
        "10000",
    ]


def metadata_text(db_path: str) -> str:
    """The shipped metadata, for the database Datasette will call ``Path(db_path).stem``."""
    text = files(__package__).joinpath("metadata.yml").read_text(encoding="utf-8")
    return text.replace(DATABASE_KEY, f"\n  {Path(db_path).stem}:\n", 1)
