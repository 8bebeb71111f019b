"""``PoliteDownloader``: Scrapy's downloader, with its per-slot concurrency
enforced under the asyncio reactor.

Scrapy 2.19's ``Downloader._process_queue`` moves requests from a slot's
queue to the download while ``slot.free_transfer_slots() > 0``, and counts a
request as transferring only inside ``_download``, a coroutine scheduled with
``loop.create_task``: it starts on the next loop turn. So the loop empties the
whole queue of the slot at once, and a host gets up to ``CONCURRENT_REQUESTS``
requests at a time whatever ``CONCURRENT_REQUESTS_PER_DOMAIN`` says (measured
with stock Scrapy, per-domain 2: 14 requests within 50 ms at a 50 ms server).
Here a request counts as transferring from the moment it leaves the queue.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from scrapy.core.downloader import Downloader

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.core.downloader import Slot
    from scrapy.http import Response
    from twisted.internet.defer import Deferred

__all__ = ["PoliteDownloader"]


class PoliteDownloader(Downloader):
    """``DOWNLOADER``; see the module docstring."""

    def _wait_for_download(
        self, slot: Slot, request: Request, queue_dfd: Deferred[Response]
    ) -> Coroutine[Any, Any, None]:
        # Called in _process_queue's loop to build the coroutine: the set
        # is updated before the loop checks free_transfer_slots() again.
        # _download adds it again (a set) and removes it when it ends.
        slot.transferring.add(request)
        return super()._wait_for_download(slot, request, queue_dfd)
