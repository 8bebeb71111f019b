"""Settings of the page checker.

Every setting can be changed per run with ``-s NAME=VALUE`` (or
``-d setting=NAME=VALUE`` on Scrapyd). The worker pool size can also come
from the environment, for tools that cannot pass ``-s``:

- ``SCRAPER_CONCURRENCY`` -> ``CONCURRENT_REQUESTS`` (default 16)
- ``SCRAPER_CONCURRENCY_PER_DOMAIN`` -> ``CONCURRENT_REQUESTS_PER_DOMAIN`` (default 8)

``-s`` wins over the environment. Invalid values stop the crawl with an
error naming the setting and the value.
"""

from __future__ import annotations

import os

from scrapy.settings import default_settings as _scrapy_defaults

from scraper_project.items import FIELDS

BOT_NAME = "scraper_project"
SPIDER_MODULES = ["scraper_project.spiders"]
NEWSPIDER_MODULE = "scraper_project.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"

# -- the worker pool ------------------------------------------------------
CONCURRENT_REQUESTS = os.environ.get("SCRAPER_CONCURRENCY", "16")
CONCURRENT_REQUESTS_PER_DOMAIN = os.environ.get("SCRAPER_CONCURRENCY_PER_DOMAIN", "8")
DOWNLOAD_DELAY = 0
# Each response gives exactly one row: a pool of 100 item workers per response
# (Scrapy's default) only costs CPU (about 100 asyncio tasks per page).
CONCURRENT_ITEMS = 1
DOWNLOAD_TIMEOUT = 30
# A page checker needs the page, not a 1 GiB file: bigger bodies are rows
# with a too_large error.
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 0

# -- politeness ---------------------------------------------------------------
ROBOTSTXT_OBEY = True
# Per-host memory (middlewares/bounded.py): robots.txt parsers and cookie
# domains kept, least recently used dropped (0: keep all, as stock Scrapy).
ROBOTSTXT_MAX_HOSTS = 10_000
COOKIES_MAX_DOMAINS = 10_000
# Rotate real-world User-Agents (scrapy-fake-useragent, offline data). Set
# PAGES_ROTATE_USER_AGENT=False, or USER_AGENT for a run, to send one fixed UA.
PAGES_ROTATE_USER_AGENT = True
USER_AGENT = "scraper_project/0.1 (page checker)"
FAKEUSERAGENT_FALLBACK = USER_AGENT
FAKEUSERAGENT_PROVIDERS = ["scraper_project.middlewares.useragent.WeightedUserAgentProvider"]
FAKE_USERAGENT_BROWSERS: list[str] = []  # rotate among these only, e.g. Chrome,Firefox

# -- the report ---------------------------------------------------------------
FEED_EXPORT_FIELDS = list(FIELDS)
FEED_EXPORT_ENCODING = "utf-8"
# CSV cells that a spreadsheet would run as formulas get a leading "'".
FEED_EXPORTERS = {
    "csv": "scraper_project.exporters.SafeCsvItemExporter",
    # -O report.html: one self-contained page (htmlreport.py).
    "html": "scraper_project.htmlreport.HtmlItemExporter",
}
# The HTML report keeps this many failing rows, and as many others, for its
# table (0: all); later hosts than this many share one line of its host
# table (0: all). Totals always count every row.
PAGES_HTML_MAX_ROWS = 50_000
PAGES_HTML_MAX_HOSTS = 10_000
# Every status is a row: 4xx/5xx reach the spider instead of being filtered.
HTTPERROR_ALLOW_ALL = True
# Report HTTP redirects, not <meta refresh> (which would cost a body scan).
METAREFRESH_ENABLED = False
REDIRECT_MAX_TIMES = 10
# The spider deduplicates with its own compact set; Scrapy's dupefilter would
# also drop redirects to URLs of the list, costing them their rows.
DUPEFILTER_CLASS = "scrapy.dupefilters.BaseDupeFilter"

# -- the page checker's own settings (PAGES_*) -----------------------------
PAGES_URL_MAX_LENGTH = 2083  # longer URLs are invalid_url rows (0: no limit)
PAGES_TITLE_MAX_LENGTH = 512  # characters; longer titles end with an ellipsis
PAGES_ERROR_MAX_LENGTH = 300
PAGES_LIST_TIMEOUT = 30.0  # seconds per read of a list given as an http(s) URL
PAGES_LOG_DUPLICATES = True  # log each duplicate input line (INFO)
# Requests parked (rate limit, retry backoff) before the list reader pauses.
PAGES_MAX_PARKED = 10_000
# Exit code 4 when a row matches, e.g. error,4xx,5xx (pipelines/failon.py).
PAGES_FAIL_ON: list[str] = []
# Skip rules (skip.py): list URLs matching one of these regular expressions
# (searched in the normalised URL) are rows "skipped: <pattern>", never
# fetched; redirects to them are not followed. A JSON list with -s:
# -s 'PAGES_SKIP=["/logout", "^https://staging\\."]'; the file: one per line.
PAGES_SKIP: list[str] = []
PAGES_SKIP_FILE = ""

# -- rate limiting (token buckets, middlewares/ratelimit.py) ------------------
SCHEDULER = "scraper_project.scheduler.DelayingScheduler"
RATELIMIT_ENABLED = True
RATELIMIT_RATE = 0.0  # requests/second per domain (downloader slot); 0 = unlimited
RATELIMIT_BURST = 1
RATELIMIT_DOMAINS: dict[str, object] = {}  # {"host": rate} or {"host": [rate, burst]}
RATELIMIT_GLOBAL_RATE = 0.0  # requests/second over all hosts; 0 = none
RATELIMIT_GLOBAL_BURST = 1
RATELIMIT_MAX_BUCKETS = 10_000
RATELIMIT_BACKEND = "auto"  # memory, redis (shared by the cluster), auto: redis in cluster mode
# Adaptive rates (notes/adaptive.md): each domain's rate learnt from its 429s,
# 503s and RateLimit header fields, shared by the cluster. The rate above is
# where a domain starts and its ceiling; unlimited domains stay unlimited
# until their first 429/503.
RATELIMIT_ADAPTIVE = True
RATELIMIT_ADAPTIVE_START = 4.0  # requests/second after the first throttle of an unlimited domain
RATELIMIT_ADAPTIVE_MIN = 0.5  # requests/second; learnt rates never go below
RATELIMIT_ADAPTIVE_MAX = 0.0  # requests/second; 0 = no bound but the domain's own rate
RATELIMIT_ADAPTIVE_MAX_PAUSE = 60.0  # longest pause taken from a RateLimit reset
RATELIMIT_ADAPTIVE_LOG = False  # log each change of a learnt rate (INFO)
RATELIMIT_ADAPTIVE_REPORT_HOSTS = 10  # domains whose learnt rate goes in the stats and summary

# -- name resolution (dns.py, resolver.py) -------------------------------------
# One resolver for both download paths: A and AAAA on the asyncio loop
# (c-ares), every address, Happy Eyeballs, bounded caches (notes/dns.md).
TWISTED_DNS_RESOLVER = "scraper_project.resolver.AsyncResolver"
DNS_NAMESERVERS: list[str] = []  # "ip", "ip:port", "[ipv6]:port"; empty: the system's
# The whole budget of a lookup (Scrapy's default, 60 s, holds a download slot
# for a minute per dead name; recursive resolvers answer SERVFAIL themselves
# within a few seconds, and glibc gives one server 5 s per try).
DNS_TIMEOUT = 5.0
DNS_ATTEMPTS = 1  # queries per record type and nameserver within DNS_TIMEOUT (resends)
DNS_CONCURRENCY = 100  # lookups in flight at most (each: one A and one AAAA query)
DNSCACHE_ENABLED = True
DNSCACHE_SIZE = 10_000  # names cached (LRU); ~0.7 KB each
DNS_CACHE_MIN_TTL = 10.0  # seconds; bounds of a positive answer's TTL
DNS_CACHE_MAX_TTL = 3600.0
DNS_NEGATIVE_TTL = 300.0  # seconds an NXDOMAIN / no-such-record answer is kept (RFC 2308)
DNS_FAILURE_TTL = 30.0  # seconds a SERVFAIL, refusal or timeout is kept
DNS_HOSTS_FILE = "/etc/hosts"  # read once, before the nameservers; "" = none
HAPPY_EYEBALLS_DELAY = 0.25  # seconds before the next address is tried (RFC 8305)
# A lookup not done within this many seconds parks its request (no download
# slot held while a dead nameserver is waited for); -1: look up in the
# handler only (middlewares/dns.py).
DNS_PARK_AFTER = 0.05
# Look ahead: the lookups of the list's next batch of lines (1,000) start while
# this one is crawled, so dead names time out during the crawl, not after it.
DNS_PREFETCH = True
RESOLVE_HOSTS: dict[str, str | list[str]] = {}  # {"name": "ip" or [ips]}, like curl --resolve
RESOLVE_HOSTS_ONLY = False  # True: unlisted names fail as dns_error, no query sent
# SSRF guard for shared deployments: refuse loopback, private, link-local
# (cloud metadata) and other non-global addresses, after DNS and on every
# redirect hop (blocked_address rows). Off by default so local use works.
PAGES_BLOCK_PRIVATE_ADDRESSES = False
PAGES_ALLOWED_ADDRESSES: list[str] = []  # IPs/networks exempt from the guard

# -- retries (middlewares/retry.py) ------------------------------------------
RETRY_ENABLED = True
RETRY_TIMES = 2  # retries after the first attempt
RETRY_HTTP_CODES = [408, 429, 500, 502, 503, 504, 522, 524]
# Transient failures only: DNS, TLS and too-large errors are not retried.
RETRY_EXCEPTIONS = [
    "scrapy.exceptions.DownloadConnectionRefusedError",
    "scrapy.exceptions.DownloadFailedError",
    "scrapy.exceptions.DownloadTimeoutError",
    "scrapy.exceptions.ResponseDataLossError",
    "twisted.internet.error.ConnectionDone",
    "twisted.internet.error.ConnectionLost",
    "twisted.internet.error.ConnectError",
]
RETRY_BACKOFF_BASE = 1.0  # seconds; retry n waits up to base * 2**(n-1) (full jitter)
RETRY_BACKOFF_MAX = 30.0  # seconds; cap of one backoff
RETRY_AFTER_MAX = 60.0  # longest Retry-After honoured; longer ones give up at once
RETRY_BUDGET_MIN = 10  # retries a domain may always use
RETRY_BUDGET_RATIO = 0.2  # plus this share of its attempts
# The report says why a URL failed: giving up is not an error of the crawl.
RETRY_GIVE_UP_LOG_LEVEL = "INFO"

# -- stopping (extensions/shutdown.py) -----------------------------------------
# An asyncio HTTP/1.1 client (httptools): a third of the CPU per page of
# Scrapy's Twisted one; cancellable; proxies go through the Twisted one.
DOWNLOAD_HANDLERS = {
    "http": "scraper_project.fasthttp.FastHTTPDownloadHandler",
    "https": "scraper_project.fasthttp.FastHTTPDownloadHandler",
}
PAGES_FLUSH_INTERVAL = 1.0  # seconds between flushes of the report files (0: off)
PAGES_HANDLE_SIGNALS = True  # 1st SIGINT/SIGTERM: graceful stop; 2nd: stop now

# -- components -------------------------------------------------------------------
# Scrapy's downloader with CONCURRENT_REQUESTS_PER_DOMAIN enforced (downloader.py).
DOWNLOADER = "scraper_project.downloader.PoliteDownloader"
DOWNLOADER_MIDDLEWARES = {
    # First: a request waits for DNS parked, not in a download slot.
    "scraper_project.middlewares.dns.DNSPrefetchMiddleware": 60,
    "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
    "scraper_project.middlewares.bounded.BoundedRobotsTxtMiddleware": 100,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "scraper_project.middlewares.bounded.BoundedCookiesMiddleware": 700,
    # After robots.txt (100): forbidden URLs take no token.
    "scraper_project.middlewares.ratelimit.RateLimitMiddleware": 150,
    "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware": 400,
    "scraper_project.middlewares.useragent.RotatingUserAgentMiddleware": 399,
    "scrapy.downloadermiddlewares.redirect.RedirectMiddleware": None,
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "scraper_project.middlewares.retry.BackoffRetryMiddleware": 550,
    "scraper_project.middlewares.redirect.LoopAwareRedirectMiddleware": 600,
    # Outside the redirects (its process_response first): PAGES_SKIP only.
    "scraper_project.middlewares.skip.SkipRedirectMiddleware": 610,
    "scraper_project.middlewares.timing.TimingMiddleware": 950,
    # No allowed_domains, no HTTP auth: not worth their per-request cost.
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
}
SPIDER_MIDDLEWARES = {
    # HTTPERROR_ALLOW_ALL: HttpErrorMiddleware would let everything through.
    "scrapy.spidermiddlewares.httperror.HttpErrorMiddleware": None,
    # Callbacks return rows, never requests: nothing whose meta to check.
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
    # Rows come from start(); responses never yield requests.
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    # URL length is checked when the list is read, with a row, not a silent drop.
    "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
}
ITEM_PIPELINES = {
    "scraper_project.pipelines.validate.ValidationPipeline": 100,
    "scraper_project.pipelines.dedupe.DeduplicationPipeline": 200,
    "scraper_project.pipelines.failon.FailOnPipeline": 250,  # PAGES_FAIL_ON only
}

# -- cluster mode (scraper_project/cluster/, scrapy-redis) ---------------------
# A Redis URL turns it on: workers share one queue, dupefilter and rate limit.
PAGES_REDIS_URL = os.environ.get("SCRAPER_REDIS_URL", "")
PAGES_CLUSTER_KEY = os.environ.get("SCRAPER_CLUSTER_KEY", "pages")  # prefix of the Redis keys
PAGES_CLUSTER_LEASE_TTL = 30.0  # seconds a dead worker's URLs stay leased
PAGES_CLUSTER_IDLE_CLOSE = 5.0  # seconds with no work left before a worker exits (0: never)
PAGES_CLUSTER_MAX_QUEUED = 100_000  # a loading worker waits while the queue holds more

COMMANDS_MODULE = "scraper_project.commands"
# Scrapy's base extensions without its remote-control server (off anyway,
# REMOTE_CONTROL_ENABLED below): Scrapy imports every key of the base dict,
# even one set to None, and that one imports aiohttp (0.2 s, 10 MB at start-up).
EXTENSIONS_BASE = {
    path: order
    for path, order in _scrapy_defaults.EXTENSIONS_BASE.items()
    if not path.endswith(".RemoteControl")
}
EXTENSIONS = {
    "scrapy.extensions.closespider.CloseSpider": None,
    "scraper_project.extensions.shutdown.GracefulShutdown": 0,
    "scraper_project.cluster.extension.ClusterExtension": 10,  # cluster mode only
    # dns/... stats; before the summary (100), which lists them.
    "scraper_project.resolver.DNSStatsExtension": 95,
}
TELNETCONSOLE_ENABLED = False
# Scrapy 2.19's remote-code-execution HTTP server (for its MCP server): not on
# a crawler of untrusted pages by default (and 0.1 s, 10 MB less at start-up).
REMOTE_CONTROL_ENABLED = False
# Per-page cost cuts (notes/week-8.md, "Speed"): downloader/* byte and status
# counters (the report/* stats count rows by status and error instead), the
# deprecation shim of the stats collector, DEBUG "Crawled"/"Scraped" records
# formatted only to be dropped.
DOWNLOADER_STATS = False
STATS_CLASS = "scraper_project.stats.FastStatsCollector"
LOG_FORMATTER = "scraper_project.logfilters.QuietLogFormatter"
LOG_LEVEL = os.environ.get("SCRAPER_LOG_LEVEL", "INFO")

# -- observability (scraper_project/observability/) ---------------------------
# Imported here, not at the top, to keep this block self-contained.
from scraper_project.observability import jsonlog  # noqa: E402
from scraper_project.observability.config import env_flag  # noqa: E402

# One JSON object per log line (stderr and LOG_FILE), Scrapy's own included.
# settings.py is imported before `scrapy crawl` configures logging: install()
# wraps Scrapy's root-handler factory so that it can honour this setting.
PAGES_LOG_JSON = env_flag("SCRAPER_LOG_JSON")
jsonlog.install()
PAGES_URL_LOG_LEVEL = "DEBUG"  # one event per finished URL; "OFF" for none
PAGES_LATENCY_SAMPLES = 100_000  # latencies kept for percentiles (4 bytes each)
PAGES_STATS_FILE = ""  # final stats as JSON; %(name)s, %(time)s, spider attrs
PAGES_PROMETHEUS_ENABLED = False  # /metrics during the crawl
PAGES_PROMETHEUS_HOST = "127.0.0.1"
PAGES_PROMETHEUS_PORT = 0  # 0 = a free port (its URL is logged)
PAGES_PROGRESS = "auto"  # bar on a terminal: auto | on | off
PAGES_PROGRESS_INTERVAL = 10.0  # seconds between progress log lines without a bar; 0 = none
# Memory debugging and a telnet console on 127.0.0.1 (observability/addon.py).
PAGES_DEBUG = env_flag("SCRAPER_DEBUG")
ADDONS = {
    "scraper_project.observability.addon.DebugAddon": 0,
    "scraper_project.cluster.addon.ClusterAddon": 0,
}
EXTENSIONS["scraper_project.observability.extension.SummaryExtension"] = 100
EXTENSIONS["scraper_project.observability.progress.ProgressExtension"] = 90  # bar closed first
EXTENSIONS["scraper_project.observability.lazy.LazyPrometheusExtension"] = 100
ITEM_PIPELINES["scraper_project.observability.pipeline.ObservabilityPipeline"] = 300
