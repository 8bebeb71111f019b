"""Per-page cost of the title: Scrapy 2.19's encoding path (``response.encoding``,
charset-normalizer for undeclared pages) against ``title.page_title`` (WHATWG
sniffing), side by side in one run.

    python bench/title/encoding.py
"""

from __future__ import annotations

import functools
import statistics
import timeit

from scrapy.http import HtmlResponse

from scraper_project.demo.site import page_body
from scraper_project.title import extract_title, extract_title_bytes, page_title

UNDECLARED = (
    "<html><head><title>Café crème</title></head><body>" + "é" * 3000 + "</body></html>"
).encode("cp1252")
CASES = {
    "utf-8 in the header": (page_body(1), b"text/html; charset=utf-8"),
    "<meta> only": (page_body(1), b"text/html"),
    "undeclared windows-1252": (UNDECLARED, b"text/html"),
}


def scrapy_encoding(body: bytes, content_type: bytes) -> str:
    response = HtmlResponse("http://a.test/", body=body, headers={"Content-Type": content_type})
    found = extract_title_bytes(response.body, response.encoding, 512)
    return extract_title(response.text, 512) if found is None else found


def whatwg(body: bytes, content_type: bytes) -> str:
    response = HtmlResponse("http://a.test/", body=body, headers={"Content-Type": content_type})
    return page_title(response.body, response.headers.get(b"Content-Type"), 512)


def main(rounds: int = 15, number: int = 300) -> None:
    """Alternate the two in short rounds and report medians (a shared,
    loaded machine slows whole stretches of time, not one function)."""
    for name, (body, content_type) in CASES.items():
        times: dict[str, list[float]] = {"scrapy": [], "page_title": []}
        for _ in range(rounds):
            for label, func in (("scrapy", scrapy_encoding), ("page_title", whatwg)):
                call = functools.partial(func, body, content_type)
                times[label].append(timeit.timeit(call, number=number) / number * 1e6)
        ratios = [a / b for a, b in zip(times["page_title"], times["scrapy"], strict=True)]
        print(
            f"{name:24s} scrapy {statistics.median(times['scrapy']):7.1f} us  page_title "
            f"{statistics.median(times['page_title']):7.1f} us  ratio "
            f"{statistics.median(ratios):.2f}  titles {scrapy_encoding(body, content_type)!r} "
            f"/ {whatwg(body, content_type)!r}"
        )


if __name__ == "__main__":
    main()
