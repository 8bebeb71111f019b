"""The minimal stock-Scrapy spider of issue #9: URL, status and title per page.

    scrapy runspider bench/speed/stock_spider.py -a urls=urls.txt -O out.csv

Run it from a directory without ``scrapy.cfg`` (and without
``SCRAPY_SETTINGS_MODULE``) so that only Scrapy's defaults apply, plus the
``-s`` options of the command line. The title comes from ``response.css``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy


class StockSpider(scrapy.Spider):
    name = "stock"

    def __init__(self, urls: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls_file = urls

    async def start(self) -> AsyncIterator[scrapy.Request]:
        with open(self.urls_file, encoding="utf-8") as lines:
            for line in lines:
                url = line.strip()
                if url:
                    yield scrapy.Request(url)

    def parse(self, response: scrapy.http.Response) -> Iterator[dict[str, Any]]:
        yield {
            "url": response.url,
            "status": response.status,
            "title": response.css("title::text").get(),
        }
