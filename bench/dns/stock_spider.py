"""Stock Scrapy on the name-resolution list: one row per URL, errors included.

    scrapy runspider bench/dns/stock_spider.py -a urls=urls.txt -O out.csv

Run from a directory without ``scrapy.cfg``, so that Scrapy's defaults apply
(its resolver: ``gethostbyname`` in the reactor's thread pool, IPv4 only).
Rows: url, status, error (the failure's exception name and message).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from twisted.python.failure import Failure


class StockDNSSpider(scrapy.Spider):
    name = "stock_dns"

    def __init__(self, urls: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls_file = urls

    async def start(self) -> AsyncIterator[scrapy.Request]:
        with open(self.urls_file, encoding="utf-8") as lines:
            for line in lines:
                url = line.strip()
                if url:
                    yield scrapy.Request(url, errback=self.failed, dont_filter=True)

    def parse(self, response: scrapy.http.Response) -> Iterator[dict[str, Any]]:
        yield {"url": response.url, "status": response.status, "error": ""}

    def failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        request = failure.request  # type: ignore[attr-defined]
        error = f"{type(failure.value).__name__}: {failure.value}"
        yield {"url": request.url, "status": "", "error": error}
