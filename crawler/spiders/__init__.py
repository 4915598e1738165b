"""Spiders: each one knows one site and yields PageItems for the shared pipeline."""

from __future__ import annotations

import functools

from pipeline.clock import Clock
from pipeline.frontier import Frontier


class ReadsFrontier:
    """A spider that decides what to ask from what the mirror holds, read-only.

    The frontier is opened on first use (in ``start()``, once the store
    pipeline has created and migrated the database) and closed with the spider.
    """

    @functools.cached_property
    def frontier(self) -> Frontier:
        return Frontier.open(self.settings.get("MIRROR_DB"), Clock.from_settings(self.settings))

    def closed(self, reason: str) -> None:
        if "frontier" in self.__dict__:
            self.frontier.close()

