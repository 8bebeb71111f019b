"""The reference of issue #14: a plain aiohttp + aiodns checker.

    python bench/dns/aiohttp_aiodns.py urls.txt out.csv --concurrency 100

C workers share one session whose connector resolves with aiohttp's
``AsyncResolver`` (aiodns, c-ares, the system's nameservers and resolver
options: nothing tuned) and caches names for aiohttp's default 10 s. Each
worker fetches the next URL and reads the body. One CSV row per URL: url,
status, error (``dns`` for aiohttp's DNS errors, else the exception's name).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
from collections.abc import Iterator

import aiohttp


async def fetch_all(urls: list[str], out_path: str, concurrency: int, timeout: float) -> None:
    connector = aiohttp.TCPConnector(
        limit=concurrency, limit_per_host=8, resolver=aiohttp.AsyncResolver()
    )
    pending: Iterator[str] = iter(urls)
    with open(out_path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["url", "status", "error"])

        async def worker(session: aiohttp.ClientSession) -> None:
            for url in pending:
                try:
                    async with session.get(url) as response:
                        await response.read()
                        writer.writerow([url, response.status, ""])
                except aiohttp.ClientConnectorDNSError as exc:
                    writer.writerow([url, "", f"dns: {exc}"])
                except (aiohttp.ClientError, TimeoutError) as exc:
                    writer.writerow([url, "", f"{type(exc).__name__}: {exc}"])

        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", help="file with one URL per line")
    parser.add_argument("out", help="CSV file to write")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args()
    with open(args.urls, encoding="utf-8") as lines:
        urls = [line.strip() for line in lines if line.strip()]
    asyncio.run(fetch_all(urls, args.out, args.concurrency, args.timeout))


if __name__ == "__main__":
    main()
