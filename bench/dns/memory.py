"""Memory of the resolver's cache per host name, up to 1,000,000 names.

    python bench/dns/memory.py [--lookups 20000] [--names 1000000]

1. ``--lookups`` real lookups of distinct names (one IPv4 address each, TTL
   300) through ``tests/support/dnsserver.py`` on a loopback port, with a
   cache as big as that: the Python heap the cache takes (tracemalloc),
   per name.
2. ``--names`` distinct names stored the way a lookup stores them (the
   resolver's own ``_store``, no network), once with ``DNSCACHE_SIZE`` at its
   default (10,000) and once at ``--names``: the heap at the end, and the
   process's peak RSS. The first is the bound a list of a million hosts
   gets by default; the second what a cache of every name would cost.

Everything runs in this process; the DNS server is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import pycares  # noqa: E402

from scraper_project.dns import Resolver  # noqa: E402
from tests.support.dnsserver import Answer, DNSServer  # noqa: E402


def heap() -> int:
    return tracemalloc.get_traced_memory()[0]


async def real_lookups(count: int) -> float:
    with DNSServer(lambda name: Answer(a=("10.1.2.3",))) as dns:
        resolver = Resolver([dns.address], cache_size=count, concurrency=100, timeout=5)
        names = [f"host-{i:07d}.example.test" for i in range(count)]
        gc.collect()
        before = heap()
        for start in range(0, count, 500):
            await asyncio.gather(*(resolver.resolve(n) for n in names[start : start + 500]))
        gc.collect()
        after = heap()
        assert len(resolver) == count, len(resolver)
        await resolver.close()
    return (after - before) / count


def stored(names: int, cache_size: int) -> tuple[int, int]:
    """Heap (bytes) of the resolver after storing ``names`` names; entries."""
    gc.collect()
    resolver = Resolver(["127.0.0.1:1"], cache_size=cache_size)
    before = heap()
    for i in range(names):
        # What a lookup stores: A with one address (its own string, as
        # c-ares gives it), AAAA NODATA.
        address = f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"
        outcome = {pycares.QUERY_TYPE_A: ((address,), 300.0), pycares.QUERY_TYPE_AAAA: ((), None)}
        resolver._store(f"host-{i:07d}.example.test", outcome, None, 0)  # type: ignore[arg-type]
    gc.collect()
    used = heap() - before
    kept = len(resolver)
    del resolver
    return used, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--names", type=int, default=1_000_000)
    args = parser.parse_args()
    tracemalloc.start()
    started = time.monotonic()
    per_lookup = asyncio.run(real_lookups(args.lookups))
    print(
        f"real lookups: {args.lookups} names cached, {per_lookup:.0f} bytes per name "
        f"({time.monotonic() - started:.1f} s)"
    )
    for size in (10_000, args.names):
        used, kept = stored(args.names, size)
        print(
            f"{args.names} names stored, DNSCACHE_SIZE={size}: {kept} kept, "
            f"heap {used / 2**20:.1f} MiB ({used / max(kept, 1):.0f} bytes per kept name)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (tracemalloc on): {peak:.0f} MiB")


if __name__ == "__main__":
    main()
