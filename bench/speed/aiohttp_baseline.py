"""The asyncio + aiohttp baseline of issue #9: URL, status and title per page.

    python bench/speed/aiohttp_baseline.py urls.txt out.csv --concurrency 16

C workers share one session (a connector of C connections, all for the one
host); each fetches the next URL of the list, reads the body and takes the
title with a regular expression. Rows go to a CSV file (url, status, title);
a failed fetch is a row with status ``error``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import html
import re
from collections.abc import Iterator

import aiohttp

TITLE_RE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)


async def fetch_all(urls: list[str], out_path: str, concurrency: int, timeout: float) -> None:
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    pending: Iterator[str] = iter(urls)
    with open(out_path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["url", "status", "title"])

        async def worker(session: aiohttp.ClientSession) -> None:
            for url in pending:
                try:
                    async with session.get(url) as response:
                        body = await response.read()
                        status: int | str = response.status
                except (aiohttp.ClientError, TimeoutError) as exc:
                    writer.writerow([url, "error", type(exc).__name__])
                    continue
                match = TITLE_RE.search(body)
                title = (
                    html.unescape(match.group(1).decode("utf-8", "replace")).strip()
                    if match
                    else ""
                )
                writer.writerow([url, status, title])

        client_timeout = aiohttp.ClientTimeout(total=timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", help="file with one URL per line")
    parser.add_argument("out", help="CSV file to write")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    args = parser.parse_args()
    with open(args.urls, encoding="utf-8") as lines:
        urls = [line.strip() for line in lines if line.strip()]
    asyncio.run(fetch_all(urls, args.out, args.concurrency, args.timeout))


if __name__ == "__main__":
    main()
