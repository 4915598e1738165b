"""Settings of the mirror: Scrapy's and the project's own, in one place.

Every one of them can be overridden per run with ``-s NAME=VALUE``, as with
``scrapy crawl``.  The project's own settings are listed in the README.
"""

BOT_NAME = "news-event-mirror"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# -- the project's own settings ---------------------------------------------

#: Where the mirror is written (``--db``).
MIRROR_DB = "mirror.db"
#: Fetch loopback/private/link-local hosts other than the start URLs' (``--allow-private``).
ALLOW_PRIVATE = False
#: Two events of one date that share a source are one event when their texts are
#: at least this similar (difflib ratio of the text keys); above 1 disables the rule.
DEDUPE_SIMILARITY = 0.85
#: Seconds between progress log lines when stderr is not a terminal.
PROGRESS_INTERVAL = 10.0

# -- Scrapy ------------------------------------------------------------------

USER_AGENT = "news-event-mirror/0.1 (archival mirror of thecontext.net; Scrapy)"
ROBOTSTXT_OBEY = True
# Site pages are a few kB; anything near this is not a page of the site.
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 1024 * 1024
DOWNLOAD_TIMEOUT = 30
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
RETRY_TIMES = 2
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "WARNING"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.PrivateAddressMiddleware": 60,
}
ITEM_PIPELINES = {
    "pipeline.normalise.NormalisePipeline": 200,
    "pipeline.dedupe.DedupePipeline": 300,
    "pipeline.store.StorePipeline": 400,
}
EXTENSIONS = {
    "crawler.progress.Progress": 500,
}
