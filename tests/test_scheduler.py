"""The delay queue's hand-over when the crawl stops: no request stays behind."""

from __future__ import annotations

from time import monotonic

from scrapy import Request, Spider
from scrapy.utils.test import get_crawler

from scraper_project.scheduler import NOT_BEFORE_KEY, DelayingScheduler


def _scheduler() -> DelayingScheduler:
    crawler = get_crawler(
        Spider, {"SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.ScrapyPriorityQueue"}
    )
    scheduler = DelayingScheduler.from_crawler(crawler)
    scheduler.open(Spider(name="s"))
    return scheduler  # type: ignore[no-any-return]


def test_take_all_returns_parked_and_ready_requests() -> None:
    scheduler = _scheduler()
    parked = Request("http://a.test/1", meta={NOT_BEFORE_KEY: monotonic() + 60})
    ready = Request("http://a.test/2")
    assert scheduler.enqueue_request(parked)
    assert scheduler.enqueue_request(ready)
    assert (scheduler.delayed_count(), scheduler.ready_count()) == (1, 1)
    assert scheduler.take_all() == [parked, ready]
    assert len(scheduler) == 0
    scheduler.close("finished")


def test_a_request_enqueued_after_the_stop_goes_to_late_not_the_queue() -> None:
    """A middleware's answer still on its way when the crawl stopped (a
    request it parked, a retry): queued, nobody would pull it and close()
    would drop it without a row."""
    scheduler = _scheduler()
    late: list[Request] = []
    assert scheduler.take_all(late.extend) == []
    parked = Request("http://a.test/1", meta={NOT_BEFORE_KEY: monotonic() + 60})
    ready = Request("http://a.test/2")
    assert scheduler.enqueue_request(parked)
    assert scheduler.enqueue_request(ready)
    assert late == [parked, ready]
    assert len(scheduler) == 0
    assert scheduler.next_request() is None
    scheduler.close("closespider_timeout")
    assert late == [parked, ready]


def test_without_a_stop_enqueueing_is_unchanged() -> None:
    scheduler = _scheduler()
    request = Request("http://a.test/1")
    assert scheduler.enqueue_request(request)
    assert scheduler.next_request() is request
    scheduler.close("finished")
