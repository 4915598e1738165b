"""A crawler that keeps a local, queryable mirror of the news-event record."""

__version__ = "0.1.0"
