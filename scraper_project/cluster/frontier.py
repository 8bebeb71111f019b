"""The shared frontier in Redis: a reliable queue of list entries with leases.

Keys, all under one prefix (``PAGES_CLUSTER_KEY``, default ``pages``):

- ``{p}:queue`` (list): entries waiting; new ones go in at the left, workers
  take from the right, handed-back ones return at the right (next in line);
- ``{p}:dupefilter`` (set): fingerprints of every URL ever queued (the
  scrapy-redis dupefilter key; 64-bit BLAKE2b of the normalised URL);
- ``{p}:workers`` (sorted set): live workers, scored by lease expiry;
- ``{p}:leased:{worker}`` (set): the entries a worker has taken and not yet
  reported;
- ``{p}:loaders`` (sorted set): processes loading a list, by expiry;
- ``{p}:loaded`` (hash): list -> last line loaded (a load resumes there);
- ``{p}:completed`` (hash): list -> lines, for lists loaded to their end (a
  second load of one is refused: its URLs are done or queued);
- ``{p}:stats`` (hash): lines, urls, invalid, duplicates, done, requeued,
  reclaimed.

An entry is a short JSON text: ``{"u": url, "l": line}`` for a URL to fetch,
``{"r": row, "s": list}`` for a ready row (an invalid line). Taking an entry
moves it into the taker's leased set in the same script (``RPOP`` + ``SADD``),
so no entry is ever only in a process's memory: a worker that dies (SIGKILL,
power cut) stops renewing its lease and the next heartbeat of any worker puts
its entries back in the queue. A worker acknowledges entries only after their
rows are flushed to its report file, so the guarantee is at-least-once: a
death between the flush and the acknowledgement (at most one flush interval)
repeats those URLs, and ``scrapy cluster merge`` keeps one row per URL.

Every multi-step change is one Lua script (atomic); time is Redis's clock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["Entry", "Frontier", "url_fingerprint"]


def url_fingerprint(url: str) -> str:
    """A stable 64-bit fingerprint (hex) of a normalised URL, the same in every
    process (Python's ``hash`` is salted per process)."""
    return hashlib.blake2b(url.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class Entry:
    """One decoded queue entry: a URL to fetch, or a ready row."""

    raw: str
    url: str | None = None
    line: int = 0
    row: dict[str, Any] | None = None

    @classmethod
    def decode(cls, raw: str | bytes) -> Entry:
        text = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw
        data = json.loads(text)
        if "r" in data:
            return cls(text, row=data["r"])
        return cls(text, url=data["u"], line=int(data["l"]))


def url_entry(url: str, line: int) -> str:
    return json.dumps({"u": url, "l": line}, ensure_ascii=False, separators=(",", ":"))


def row_entry(row: dict[str, Any], source: str) -> str:
    return json.dumps({"r": row, "s": source}, ensure_ascii=False, separators=(",", ":"))


_NOW: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# KEYS: queue, dupefilter, loaded, stats, loaders
# ARGV: list, last line, lines in batch, loader id, ttl, n, n x (fingerprint,
# entry), then row entries. Returns the indexes of duplicate URLs, or {-1} if
# this batch was loaded already (by a concurrent loader of the same list).
_LOAD: Final = (
    _NOW
    + """
local done = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
if tonumber(ARGV[2]) <= done then return {-1} end
redis.call('ZADD', KEYS[5], now + tonumber(ARGV[5]), ARGV[4])
local n = tonumber(ARGV[6])
local dups = {}
local added = 0
for i = 0, n - 1 do
  if redis.call('SADD', KEYS[2], ARGV[7 + 2 * i]) == 1 then
    redis.call('LPUSH', KEYS[1], ARGV[8 + 2 * i])
    added = added + 1
  else
    dups[#dups + 1] = i
  end
end
local rows = 0
for j = 7 + 2 * n, #ARGV do
  redis.call('LPUSH', KEYS[1], ARGV[j])
  rows = rows + 1
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[4], 'lines', tonumber(ARGV[3]))
redis.call('HINCRBY', KEYS[4], 'urls', added)
redis.call('HINCRBY', KEYS[4], 'duplicates', #dups)
redis.call('HINCRBY', KEYS[4], 'invalid', rows)
return dups
"""
)

# KEYS: queue, leased. ARGV: count. Moves up to count entries; returns them.
_TAKE: Final = """
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local e = redis.call('RPOP', KEYS[1])
  if not e then break end
  redis.call('SADD', KEYS[2], e)
  out[#out + 1] = e
end
return out
"""

# KEYS: leased, queue, stats. ARGV: entries. Their rows are written.
_ACK: Final = """
local n = 0
for i = 1, #ARGV do
  if redis.call('SREM', KEYS[1], ARGV[i]) == 0 then
    -- reclaimed while we worked (a missed heartbeat): don't repeat it
    redis.call('LREM', KEYS[2], -1, ARGV[i])
  end
  n = n + 1
end
redis.call('HINCRBY', KEYS[3], 'done', n)
return n
"""

# KEYS: leased, queue, stats. ARGV: entries to hand back (not done).
_RELEASE: Final = """
local n = 0
for i = 1, #ARGV do
  if redis.call('SREM', KEYS[1], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i])
    n = n + 1
  end
end
redis.call('HINCRBY', KEYS[3], 'requeued', n)
return n
"""

# KEYS: workers, queue, stats, loaders. ARGV: worker id (or ''), ttl, prefix.
# Renews the worker's lease, then returns the entries of every expired worker
# to the queue. Returns the number of entries reclaimed.
_HEARTBEAT: Final = (
    _NOW
    + """
if ARGV[1] ~= '' then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
local reclaimed = 0
for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
  local key = ARGV[3] .. ':leased:' .. w
  for _, e in ipairs(redis.call('SMEMBERS', key)) do
    redis.call('RPUSH', KEYS[2], e)
    reclaimed = reclaimed + 1
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], w)
end
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
if reclaimed > 0 then redis.call('HINCRBY', KEYS[3], 'reclaimed', reclaimed) end
return reclaimed
"""
)

# KEYS: loaders. ARGV: loader id, ttl.
_TOUCH: Final = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
"""
)

# KEYS: queue, workers, loaders, stats. ARGV: prefix.
# Returns {queued, leased, live workers, live loaders, stats...}.
_STATUS: Final = (
    _NOW
    + """
local leased = 0
for _, w in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  leased = leased + redis.call('SCARD', ARGV[1] .. ':leased:' .. w)
end
return {
  redis.call('LLEN', KEYS[1]),
  leased,
  redis.call('ZCOUNT', KEYS[2], now, '+inf'),
  redis.call('ZCOUNT', KEYS[3], now, '+inf'),
  redis.call('HGETALL', KEYS[4]),
}
"""
)


@dataclass(frozen=True, slots=True)
class Status:
    """What the cluster has left to do."""

    queued: int
    leased: int
    workers: int
    loaders: int
    stats: dict[str, int]

    @property
    def finished(self) -> bool:
        """Nothing queued, nothing held by a worker, no list being loaded."""
        return self.queued == 0 and self.leased == 0 and self.loaders == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "queued": self.queued,
            "leased": self.leased,
            "workers": self.workers,
            "loaders": self.loaders,
            "finished": self.finished,
            **self.stats,
        }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Frontier:
    """The Redis keys of one cluster crawl; see the module docstring.

    :param client: A ``redis.Redis`` client.
    :param prefix: The key prefix (``PAGES_CLUSTER_KEY``).
    """

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.queue_key = f"{prefix}:queue"
        self.dupefilter_key = f"{prefix}:dupefilter"
        self.workers_key = f"{prefix}:workers"
        self.loaders_key = f"{prefix}:loaders"
        self.loaded_key = f"{prefix}:loaded"
        self.completed_key = f"{prefix}:completed"
        self.stats_key = f"{prefix}:stats"
        register = client.register_script
        self._load = register(_LOAD)
        self._take = register(_TAKE)
        self._ack = register(_ACK)
        self._release = register(_RELEASE)
        self._heartbeat = register(_HEARTBEAT)
        self._status = register(_STATUS)
        self._touch = register(_TOUCH)

    def leased_key(self, worker: str) -> str:
        return f"{self.prefix}:leased:{worker}"

    # -- loading ---------------------------------------------------------

    def loaded_until(self, source: str) -> int:
        """The last line of list ``source`` loaded so far (0: none)."""
        value = self.client.hget(self.loaded_key, source)
        return int(value) if value is not None else 0

    def load(
        self,
        *,
        source: str,
        last_line: int,
        lines: int,
        urls: list[tuple[str, int]],
        rows: list[dict[str, Any]],
        loader: str,
        ttl: float,
    ) -> list[int] | None:
        """Queue one batch of list ``source`` up to ``last_line`` atomically.

        ``urls`` are ``(normalised url, line)``, ``rows`` ready rows (invalid
        lines). Returns the indexes in ``urls`` of duplicates (URLs queued
        before, by this list or another), or ``None`` if the batch was loaded
        already.
        """
        args: list[Any] = [source, last_line, lines, loader, ttl, len(urls)]
        for url, line in urls:
            args.append(url_fingerprint(url))
            args.append(url_entry(url, line))
        args.extend(row_entry(row, source) for row in rows)
        keys = [
            self.queue_key,
            self.dupefilter_key,
            self.loaded_key,
            self.stats_key,
            self.loaders_key,
        ]
        result = self._load(keys=keys, args=args)
        if result and int(result[0]) == -1:
            return None
        return [int(i) for i in result]

    def completed(self, source: str) -> int:
        """The lines of list ``source`` if a load read it to its end, else 0."""
        value = self.client.hget(self.completed_key, source)
        return int(value) if value is not None else 0

    def mark_completed(self, source: str, lines: int) -> None:
        """List ``source`` was loaded to its end (line ``lines``)."""
        self.client.hset(self.completed_key, source, lines)

    def touch_loader(self, loader: str, ttl: float) -> None:
        """Keep ``loader`` counted as live for ``ttl`` more seconds."""
        self._touch(keys=[self.loaders_key], args=[loader, ttl])

    def loader_done(self, loader: str) -> None:
        self.client.zrem(self.loaders_key, loader)

    # -- working ---------------------------------------------------------

    def take(self, worker: str, count: int = 1) -> list[str]:
        """Move up to ``count`` entries from the queue into ``worker``'s leases."""
        raw = self._take(keys=[self.queue_key, self.leased_key(worker)], args=[count])
        return [_text(e) for e in raw]

    def ack(self, worker: str, entries: list[str]) -> int:
        """``entries`` are reported: forget them."""
        if not entries:
            return 0
        keys = [self.leased_key(worker), self.queue_key, self.stats_key]
        return int(self._ack(keys=keys, args=entries))

    def release(self, worker: str, entries: list[str]) -> int:
        """Hand ``entries`` back to the queue, first in line (not done)."""
        if not entries:
            return 0
        keys = [self.leased_key(worker), self.queue_key, self.stats_key]
        return int(self._release(keys=keys, args=entries))

    def heartbeat(self, worker: str, ttl: float) -> int:
        """Renew ``worker``'s lease for ``ttl`` seconds and reclaim the entries
        of workers whose lease expired. Returns the number reclaimed."""
        keys = [self.workers_key, self.queue_key, self.stats_key, self.loaders_key]
        return int(self._heartbeat(keys=keys, args=[worker, ttl, self.prefix]))

    def reclaim(self) -> int:
        """Reclaim the entries of dead workers (without being a worker)."""
        keys = [self.workers_key, self.queue_key, self.stats_key, self.loaders_key]
        return int(self._heartbeat(keys=keys, args=["", 0, self.prefix]))

    def leave(self, worker: str) -> None:
        """``worker`` stops: release what it still holds and deregister it."""
        leased = [_text(e) for e in self.client.smembers(self.leased_key(worker))]
        self.release(worker, leased)
        self.client.zrem(self.workers_key, worker)

    def queued(self) -> int:
        return int(self.client.llen(self.queue_key))

    def status(self) -> Status:
        keys = [self.queue_key, self.workers_key, self.loaders_key, self.stats_key]
        queued, leased, workers, loaders, flat = self._status(keys=keys, args=[self.prefix])
        stats = {_text(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}
        return Status(int(queued), int(leased), int(workers), int(loaders), stats)

    def reset(self) -> int:
        """Delete every key of this crawl. Returns the number deleted."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))
        deleted = 0
        for i in range(0, len(keys), 1000):
            deleted += int(self.client.delete(*keys[i : i + 1000]))
        return deleted
