"""A store that writes no page: the checkout import's ceiling through Scrapy.

``checkout_import.py --ceiling`` runs the import with this in place of the dedupe
and store pipelines: files walked, read and parsed in the pool, items handed
through Scrapy's engine and the normalise pipeline, nothing written. Whatever
the real store does costs the difference.
"""

from pipeline.store import StorePipeline

CEILING_PIPELINES = '{"pipeline.normalise.NormalisePipeline": 200, "no_store.NoStore": 400}'


class NoStore(StorePipeline):
    """Opens the mirror as the store does (the spider's frontier reads it), and stores no item."""

    def process_item(self, item):
        return item
