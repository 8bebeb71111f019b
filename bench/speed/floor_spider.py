"""The floor: what Scrapy itself costs per page, with nothing of ours.

No middlewares, no extensions, no items, no robots.txt: a bare engine
fetching a list. Compare download handlers with it::

    cd "$(mktemp -d)"   # no scrapy.cfg here: Scrapy's defaults
    /usr/bin/time -f '%e s %U user %M KB' python -m scrapy runspider \\
        REPO/bench/speed/floor_spider.py -a urls=urls.txt \\
        -s CONCURRENT_REQUESTS=16 -s CONCURRENT_REQUESTS_PER_DOMAIN=16 \\
        [-s 'DOWNLOAD_HANDLERS={"http": "scraper_project.fasthttp.FastHTTPDownloadHandler"}']
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import scrapy


class Floor(scrapy.Spider):
    name = "floor"
    custom_settings = {  # noqa: RUF012 (Scrapy's convention)
        "DOWNLOADER_MIDDLEWARES_BASE": {},
        "SPIDER_MIDDLEWARES_BASE": {},
        "EXTENSIONS_BASE": {},
        "LOG_LEVEL": "INFO",
        "CONCURRENT_ITEMS": 1,
    }

    def __init__(self, urls: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = urls

    async def start(self) -> AsyncIterator[scrapy.Request]:
        with open(self.urls, encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield scrapy.Request(line.strip(), dont_filter=True)

    def parse(self, response: scrapy.http.Response) -> None:
        return None
