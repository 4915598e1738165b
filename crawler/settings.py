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
#: Act as if it were this moment (ISO 8601, ``--now``); unset: the clock.
NOW = None

# -- incremental sync (pipeline.revalidate) -----------------------------------

#: Pages dated within this many days of now are asked about every run.
REVALIDATE_EVERY_RUN_DAYS = 2
#: Days between two checks of a page less than a week old, less than a month old, older.
REVALIDATE_WEEK_DAYS = 1
REVALIDATE_MONTH_DAYS = 7
REVALIDATE_OLD_DAYS = 30
#: Each time a page is found unchanged its interval is multiplied by this, up to REVALIDATE_MAX_DAYS.
REVALIDATE_STRETCH = 2.0
REVALIDATE_MAX_DAYS = 365
#: Intervals are spread by up to this share either way (fixed per URL), so that pages
#: mirrored together do not all come due in the same sync.
REVALIDATE_JITTER = 0.2
#: A page with more site links than this is recorded as an error, not stored (real pages hold dozens).
MAX_LINKS_PER_PAGE = 1000
#: Worker processes that parse pages, and extract cited sources' texts, off the event loop
#: (crawler.parse_pool); empty: one per core this process may use; 0: on the event loop.
PARSE_PROCESSES = None
#: Requests held in Scrapy's scheduler (in memory) at most.  The start (the window's days, the
#: due pages) is read as it makes room, and followed links wait on disk (crawler.asked):
#: a --full resync of the whole record queued 300,000 requests at once.  0: no limit.
REQUESTS_AHEAD = 1000
#: Pages the store writes per transaction.  1 for crawls; the checkout import (run --checkout)
#: sets 500: a killed import loses at most that many pages, read again by the next run.
STORE_BATCH_PAGES = 1
#: An event citing more sources keeps the first ones; the rest are recorded in pages.bad_links
#: (real events cite a handful: this stops one page from booking hours of source checks).
MAX_SOURCES_PER_EVENT = 100
#: Seconds a run or check waits for another writer of the same database before giving up.
LOCK_TIMEOUT = 10
#: The scheduler stops a job still running after this many seconds (a hung sync), records it
#: as timed-out and goes on (``schedule --job-timeout``).
JOB_TIMEOUT = 6 * 3600

# -- Wikipedia's Current Events Portal (crawler.spiders.portal) --------------

#: The MediaWiki Action API the portal is read through.
WIKIPEDIA_API_URL = "https://en.wikipedia.org/w/api.php"
#: Wikimedia asks API clients for a User-Agent that names the tool and a way to reach its operator:
#: put your e-mail or page here (``-s WIKIPEDIA_USER_AGENT=...``) before mirroring the real portal.
WIKIPEDIA_USER_AGENT = (
    "news-event-mirror/0.1 (https://github.com/news-event-mirror; operator: set WIKIPEDIA_USER_AGENT) Scrapy"
)
#: A sync without --since covers the last this many days, today included.
WIKIPEDIA_DAYS = 7
#: Ask the API to refuse (and the spider to wait) while the database cluster lags by more seconds.
WIKIPEDIA_MAXLAG = 5
#: How many lagged answers a request waits out before its days are recorded as failed.
WIKIPEDIA_RETRIES = 5
#: When more days of one month changed than this, read the monthly page (one request) instead.
WIKIPEDIA_MONTHLY_AFTER = 3
#: How far back the wiki keeps its recent changes (Wikipedia: 30 days).  A sync after a shorter
#: gap finds older days edited since through them; after a longer one it asks about every held day.
WIKIPEDIA_RECENT_DAYS = 30

# -- source checking (crawler.spiders.sources, pipeline.liveness) ------------

#: ``run`` checks the sources it discovered (those never checked) after the site crawl.
CHECK_SOURCES = True
#: Politeness per source host: requests in flight, and seconds between them.
SOURCE_CONCURRENCY_PER_HOST = 1
SOURCE_DELAY = 1.0
#: The longest delay between two requests to a host that 5xx/429 answers back off to (seconds).
BACKOFF_MAX_DELAY = 60
#: Longest Retry-After (seconds) waited for within a run; longer ones defer to a later run.
RETRY_AFTER_MAX = 60
#: A source response larger than this is not downloaded (a check records "size").
SOURCE_MAXSIZE = 20 * 1024 * 1024
#: Strikes before dead, and the least time between two strikes that count.
DEAD_STRIKES = 3
STRIKE_INTERVAL_DAYS = 3
#: When to check again: alive, blocked, dead sources; undecided checks.
ALIVE_RECHECK_DAYS = 7
BLOCKED_RECHECK_DAYS = 7
DEAD_RECHECK_DAYS = 30
RETRY_LATER_DAYS = 1
#: A host whose checks in one run all fail (at least this many) is down, not its pages.
OUTAGE_MIN_CHECKS = 2
#: An offline run: at least OFFLINE_SHARE of the run's hosts (and at least OFFLINE_MIN_HOSTS hosts
#: checked) failed at the network level (DNS, refused, timeout): no strikes for anyone, a warning.
OFFLINE_MIN_HOSTS = 5
OFFLINE_SHARE = 0.5
#: Sources whose settlement is written per transaction; SIGTERM stops a settlement between two.
SETTLE_BATCH = 5000
#: This many cited URLs of one host redirected to one target: a soft 404.
SOFT404_SHARED_REDIRECTS = 3
#: A page this similar (token Jaccard) to the host's random-sibling page is a soft 404.
SOFT404_SIMILARITY = 0.95
#: How long a host's random-sibling probe result is reused.
PROBE_TTL_DAYS = 30
#: The Internet Archive's availability API; asked when a source fails.
WAYBACK_API_URL = "https://archive.org/wayback/available"
#: How long an empty or failed archive answer waits before it is asked again.
ARCHIVE_RECHECK_DAYS = 7
#: The archive's own budget: seconds between two lookups and lookups in flight, on its host
#: alone (unset: SOURCE_DELAY and SOURCE_CONCURRENCY_PER_HOST).
ARCHIVE_DELAY = None
ARCHIVE_CONCURRENCY = None

# -- source checking on Redis (check-links --redis, worker --redis; crawler.redisqueue) -

#: Check streams; a host's hash picks its stream, and one worker at a time reads each.
#: Writer and workers must agree on it (and on REDIS_PREFIX) for a round.
REDIS_SHARDS = 64
#: The prefix of every key the queue uses (two mirrors can share one Redis with two prefixes).
REDIS_PREFIX = "mirror"
#: A worker's lease on a shard (and its heartbeat) lasts this long unless renewed: a dead
#: worker's shards go to another after it.  Keep it above SOURCE_DELAY.
REDIS_LEASE_SECONDS = 30.0
#: A task pending this long with a worker that no longer holds its shard is taken over.
REDIS_CLAIM_IDLE_SECONDS = 60.0
#: Tasks a worker reads at a time, and the most it holds in flight.
REDIS_BATCH = 100
REDIS_MAX_INFLIGHT = 1000
#: A task handed out this many times without a result (each worker that took it died or
#: stalled) goes to the dead-letter stream and is stored as a check that could not be made.
REDIS_MAX_DELIVERIES = 3

# -- Scrapy ------------------------------------------------------------------

USER_AGENT = "news-event-mirror/0.1 (archival mirror of thecontext.net; Scrapy)"
ROBOTSTXT_OBEY = True
# Site pages are a few kB; anything near this is not a page of the site.
DOWNLOAD_MAXSIZE = 5 * 1024 * 1024
DOWNLOAD_WARNSIZE = 1024 * 1024
DOWNLOAD_TIMEOUT = 30
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 8
# Scrapy starts this many asyncio tasks for every response's output, to run async item pipelines
# side by side.  Ours are synchronous (a response yields one item and a few requests), so 100
# (the default) only cost 400,000 tasks in a crawl of 4,000 pages: 17% of its time.
CONCURRENT_ITEMS = 1
RETRY_TIMES = 2
# A page or source that still fails after its retries is recorded, not an error of the run.
RETRY_GIVE_UP_LOG_LEVEL = "INFO"
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "WARNING"
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"

DOWNLOADER_MIDDLEWARES = {
    "crawler.middlewares.PrivateAddressMiddleware": 60,
    # robots.txt obeyed as by Scrapy's, but an unreachable one is one log line, not a traceback.
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "crawler.middlewares.QuietRobotsTxtMiddleware": 100,
}
# The private-address guard: resolves each name once, checks every address, connects to a checked one.
TWISTED_DNS_RESOLVER = "crawler.guard.GuardedResolver"
ITEM_PIPELINES = {
    "pipeline.normalise.NormalisePipeline": 200,
    "pipeline.dedupe.DedupePipeline": 300,
    "pipeline.store.StorePipeline": 400,
}
EXTENSIONS = {
    # Debug calls below LOG_LEVEL build no record (markdown-it's cost the parse twice over).
    "crawler.log_level.RootLogLevel": 0,
    "crawler.progress.Progress": 500,
}
