"""Rank where a profiled crawl spends its CPU, from py-spy's raw (collapsed) stacks.

    py-spy record --format raw --threads --full-filenames --rate 200 -o stacks.txt \
        -- python -m scrapy crawl pages ...
    python bench/speed/profile_report.py stacks.txt [--top 25]

Each line of the input is ``[thread (TID): NAME;]frame;...;frame COUNT``
(root first), a frame being ``function (file:line)``. py-spy samples only
threads it thinks are not idle, but it misses some blocking waits: the
asyncio executor thread waiting on its queue (0 CPU ticks in
``/proc/PID/task/TID/stat``) shows up as busy. Samples whose innermost frame
is such a wait (:data:`IDLE_LEAVES`) are dropped and counted apart; the rest
are CPU samples.

Prints, as percentages of all samples:

- by group (engine, Twisted HTTP client, asyncio glue, our middlewares by
  name, ...): *self* (the innermost frame is in the group) and *inclusive*
  (some frame of the stack is in the group);
- the hottest functions (``file:function``), by self and inclusive share.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path
from typing import Any

REPO = str(Path(__file__).resolve().parents[2]) + "/"
FRAME_RE = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")

IMPORTS = "imports (start-up)"
PROJECT = "scraper_project/"
# Innermost frames that are blocking waits in C, not CPU.
IDLE_LEAVES = {
    "concurrent/futures/thread.py:_worker",
    "threading.py:Condition.wait",
    "threading.py:Event.wait",
    "threading.py:Thread._wait_for_tstate_lock",
    "queue.py:Queue.get",
    "selectors.py:EpollSelector.select",
    "selectors.py:PollSelector.select",
    "selectors.py:SelectSelector.select",
}

# (prefix of the file path, group), first match wins. Paths are as py-spy
# prints them: relative to site-packages / the stdlib when it can.
GROUPS: list[tuple[str, str]] = [
    ("scraper_project/spiders/", "project: spider (pages.py)"),
    ("scraper_project/title.py", "project: title extraction"),
    ("scraper_project/middlewares/", "project middleware: {name}"),
    ("scraper_project/pipelines/", "project pipeline: {name}"),
    ("scraper_project/observability/", "project observability: {name}"),
    ("scraper_project/report.py", "project report/exporter"),
    ("scraper_project/exporters.py", "project report/exporter"),
    ("scraper_project/stats.py", "project stats"),
    ("scraper_project/scheduler.py", "project scheduler (DelayingScheduler)"),
    ("scraper_project/ratelimit/", "project middleware: ratelimit"),
    ("scraper_project/handlers.py", "project download handler"),
    ("scraper_project/urls.py", "project urls/dedupe"),
    ("scraper_project/dedupe.py", "project urls/dedupe"),
    ("scraper_project/commands/", "launcher (runpy, scrapy cmdline)"),
    ("scraper_project/", "project: {name}"),
    ("<frozen runpy>", "launcher (runpy, scrapy cmdline)"),
    ("scrapy/cmdline.py", "launcher (runpy, scrapy cmdline)"),
    ("scrapy/__main__.py", "launcher (runpy, scrapy cmdline)"),
    ("scrapy/crawler.py", "launcher (runpy, scrapy cmdline)"),
    ("scrapy/commands/", "launcher (runpy, scrapy cmdline)"),
    ("scrapy/core/downloader/handlers/", "scrapy HTTP/1.1 download handler"),
    ("scrapy/core/downloader/", "scrapy downloader"),
    ("scrapy/core/engine.py", "scrapy engine"),
    ("scrapy/core/scheduler.py", "scrapy scheduler/queues"),
    ("scrapy/pqueues.py", "scrapy scheduler/queues"),
    ("scrapy/squeues.py", "scrapy scheduler/queues"),
    ("queuelib/", "scrapy scheduler/queues"),
    ("scrapy/core/scraper.py", "scrapy scraper (callbacks, items)"),
    ("scrapy/core/spidermw.py", "scrapy spider middleware manager"),
    ("scrapy/middleware.py", "scrapy middleware manager"),
    ("scrapy/downloadermiddlewares/", "scrapy downloader middleware: {name}"),
    ("scrapy/spidermiddlewares/", "scrapy spider middleware: {name}"),
    ("scrapy/extensions/feedexport.py", "scrapy feeds/exporters"),
    ("scrapy/exporters.py", "scrapy feeds/exporters"),
    ("scrapy/extensions/", "scrapy extension: {name}"),
    ("scrapy/http/", "scrapy Request/Response objects"),
    ("scrapy/selector/", "selectors (parsel/lxml)"),
    ("parsel/", "selectors (parsel/lxml)"),
    ("lxml/", "selectors (parsel/lxml)"),
    ("cssselect/", "selectors (parsel/lxml)"),
    ("scrapy/statscollectors.py", "scrapy stats"),
    ("scrapy/signalmanager.py", "signals (scrapy/pydispatch)"),
    ("scrapy/utils/signal.py", "signals (scrapy/pydispatch)"),
    ("pydispatch/", "signals (scrapy/pydispatch)"),
    ("scrapy/utils/defer.py", "deferred/coroutine glue"),
    ("scrapy/utils/asyncio.py", "deferred/coroutine glue"),
    ("twisted/internet/defer.py", "deferred/coroutine glue"),
    ("twisted/internet/asyncioreactor.py", "event loop (asyncio + reactor)"),
    ("asyncio/", "event loop (asyncio + reactor)"),
    ("selectors.py", "event loop (asyncio + reactor)"),
    ("twisted/web/", "twisted HTTP client (twisted.web)"),
    ("twisted/internet/", "twisted transport (tcp, endpoints)"),
    ("twisted/protocols/", "twisted transport (tcp, endpoints)"),
    ("twisted/", "twisted other"),
    ("scrapy/utils/log.py", "logging"),
    ("scrapy/logformatter.py", "logging"),
    ("logging/", "logging"),
    ("w3lib/", "URL handling (w3lib/urllib)"),
    ("idna/", "URL handling (w3lib/urllib)"),
    ("ipaddress.py", "URL handling (w3lib/urllib)"),
    ("urllib/", "URL handling (w3lib/urllib)"),
    ("scrapy/utils/url.py", "URL handling (w3lib/urllib)"),
    ("scrapy/utils/httpobj.py", "URL handling (w3lib/urllib)"),
    ("scrapy/utils/", "scrapy utils: {name}"),
    ("scrapy/", "scrapy other: {name}"),
    ("selectolax/", "title parser (selectolax)"),
    ("attr/", "twisted other"),
    ("zope/", "twisted other"),
    ("itemadapter/", "scrapy scraper (callbacks, items)"),
    ("<frozen abc>", "python runtime (abc, weakref, inspect, typing)"),
    ("weakref.py", "python runtime (abc, weakref, inspect, typing)"),
    ("_weakrefset.py", "python runtime (abc, weakref, inspect, typing)"),
    ("inspect.py", "python runtime (abc, weakref, inspect, typing)"),
    ("typing.py", "python runtime (abc, weakref, inspect, typing)"),
    ("fake_useragent/", "user agents (fake_useragent)"),
    ("scrapy_fake_useragent/", "user agents (fake_useragent)"),
    ("importlib/", IMPORTS),
    ("<frozen importlib", IMPORTS),
]


def normalize(path: str) -> str:
    """Cut a path to the part after site-packages, the repo or the stdlib."""
    for marker in ("/site-packages/", "/dist-packages/"):
        if marker in path:
            return path.split(marker, 1)[1]
    if path.startswith(REPO):
        return path[len(REPO) :]
    match = re.search(r"/python3\.\d+/(.*)$", path)
    return match.group(1) if match else path


def group_of(path: str) -> str:
    for prefix, group in GROUPS:
        if path.startswith(prefix):
            name = Path(path[len(prefix) :]).stem if "{name}" in group else ""
            return group.format(name=name or Path(path).stem)
    return f"other: {path.split('/', maxsplit=1)[0]}"


Stack = tuple[str, list[tuple[str, str]], int]  # thread, [(file:function, group)], count


def parse(path: Path) -> list[Stack]:
    """[(thread, stack of (file:function, group), count)] from py-spy's raw output."""
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        if not line.strip():
            continue
        frames_text, _, count = line.rpartition(" ")
        parts = frames_text.split(";")
        thread = "all"
        if parts and parts[0].startswith("thread ("):
            # "thread (TID): NAME" or "thread (TID)" (before the name is known)
            thread = parts.pop(0).split(": ", 1)[0]
        frames = []
        for frame in parts:
            match = FRAME_RE.match(frame)
            if not match:
                frames.append((frame, "other"))
                continue
            file = normalize(match["file"])
            frames.append((f"{file}:{match['func']}", group_of(file)))
        stacks.append((thread, frames, int(count)))
    return stacks


def rank(all_stacks: list[Stack]) -> dict[str, Any]:
    idle = sum(c for _, frames, c in all_stacks if frames and frames[-1][0] in IDLE_LEAVES)
    stacks = [(f, c) for _, f, c in all_stacks if f and f[-1][0] not in IDLE_LEAVES]
    threads: Counter[str] = Counter()
    for thread, frames, count in all_stacks:
        if frames and frames[-1][0] not in IDLE_LEAVES:
            threads[thread] += count
    total = sum(count for _, count in stacks)
    self_fn: Counter[str] = Counter()
    incl_fn: Counter[str] = Counter()
    self_group: Counter[str] = Counter()
    incl_group: Counter[str] = Counter()
    for frames, count in stacks:
        fn, group = frames[-1]
        self_fn[fn] += count
        self_group[group] += count
        for name in {f for f, _ in frames}:
            incl_fn[name] += count
        for name in {g for _, g in frames}:
            incl_group[name] += count
    # Start-up: samples under an import (module bodies, importlib).
    startup = sum(count for frames, count in stacks if any(g == IMPORTS for _, g in frames))

    def pct(n: int) -> float:
        return 100.0 * n / total if total else 0.0

    return {
        "samples": total,
        "idle_samples_dropped": idle,
        "threads_pct": {t: pct(n) for t, n in threads.most_common()},
        "startup_imports_pct": pct(startup),
        "groups": [
            {"group": g, "self_pct": pct(n), "inclusive_pct": pct(incl_group[g])}
            for g, n in sorted(self_group.items(), key=lambda kv: -kv[1])
        ]
        + [
            {"group": g, "self_pct": 0.0, "inclusive_pct": pct(n)}
            for g, n in sorted(incl_group.items(), key=lambda kv: -kv[1])
            if g not in self_group
        ],
        "functions_self": [
            {"function": f, "self_pct": pct(n), "inclusive_pct": pct(incl_fn[f])}
            for f, n in self_fn.most_common()
        ],
        "functions_inclusive": [
            {"function": f, "self_pct": pct(self_fn[f]), "inclusive_pct": pct(n)}
            for f, n in incl_fn.most_common()
        ],
    }


def report(path: Path, top: int = 25) -> dict[str, Any]:
    result = rank(parse(path))
    print(f"### Profile: {result['samples']} CPU samples ({path})\n")
    threads = ", ".join(f"{t} {p:.1f}%" for t, p in result["threads_pct"].items())
    print(f"Dropped as idle waits: {result['idle_samples_dropped']} samples. Threads: {threads}.")
    print(f"Under imports (start-up): {result['startup_imports_pct']:.1f}% of samples\n")
    print("| group | self % | inclusive % |\n|---|---|---|")
    for row in result["groups"]:
        print(f"| {row['group']} | {row['self_pct']:.1f} | {row['inclusive_pct']:.1f} |")
    print(f"\nTop {top} functions by self time:\n")
    print("| # | function | self % | inclusive % |\n|---|---|---|---|")
    for i, row in enumerate(result["functions_self"][:top], 1):
        print(f"| {i} | {row['function']} | {row['self_pct']:.1f} | {row['inclusive_pct']:.1f} |")
    print(f"\nTop {top} project functions (scraper_project/) by inclusive time:\n")
    print("| # | function | self % | inclusive % |\n|---|---|---|---|")
    ours = [r for r in result["functions_inclusive"] if r["function"].startswith(PROJECT)]
    for i, row in enumerate(ours[:top], 1):
        print(f"| {i} | {row['function']} | {row['self_pct']:.1f} | {row['inclusive_pct']:.1f} |")
    print(f"\nTop {top} functions by inclusive time:\n")
    print("| # | function | self % | inclusive % |\n|---|---|---|---|")
    for i, row in enumerate(result["functions_inclusive"][:top], 1):
        print(f"| {i} | {row['function']} | {row['self_pct']:.1f} | {row['inclusive_pct']:.1f} |")
    print()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stacks", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    report(args.stacks, args.top)


if __name__ == "__main__":
    main()
