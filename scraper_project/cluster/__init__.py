"""The cluster mode: many ``pages`` workers on one Redis (scrapy-redis).

Switched on by ``PAGES_REDIS_URL``. The :class:`~.addon.ClusterAddon` then
swaps in :class:`~.scheduler.ClusterScheduler` (scrapy-redis's scheduler with
a leased queue and the delay queue), the rate limiter shares its buckets
through Redis (:class:`~scraper_project.ratelimit.RedisBucketRegistry`), and
:class:`~.extension.ClusterExtension` keeps the worker's lease and closes it
when the cluster has no work left. A worker given ``-a urls=LIST`` loads the
list into Redis (validated, deduplicated across the cluster, resumable) and
crawls; workers without ``urls`` only crawl. See :mod:`.frontier` for the
keys and the no-loss guarantee.
"""
