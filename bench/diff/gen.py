"""Two large reports of "the same list a week apart", with planted changes.

    python bench/diff/gen.py --rows 1000000 --out /tmp/diffbench   # old.csv, new.csv, planted.json

Rows look like a real crawl's (``FIELDS`` order, CSV as the project writes
it): 2,000 hosts, ~88% 200s, some 3xx/4xx/5xx, ~6% errors of several
classes, titles, latencies. The new report is in another order (a crawl
writes rows as URLs finish) and differs from the old one by a known number
of changes of each kind, written to ``planted.json`` so a run can check
its counts. Deterministic (seeded).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

FIELDS = (
    "url",
    "final_url",
    "status",
    "length",
    "title",
    "content_type",
    "error",
    "attempts",
    "elapsed_ms",
    "redirects",
    "line",
)
ERRORS = (
    "timeout: took longer than 30.0 seconds",
    "dns_error: DNS lookup failed: no results for hostname lookup",
    "connection_refused: Connection was refused by other side: 111: Connection refused.",
    "robots_forbidden: Forbidden by robots.txt",
    "tls_error: certificate verify failed",
)


def base_row(i: int, rng: random.Random) -> list[Any]:
    host = f"www.site{rng.randrange(2000)}.example"
    url = f"https://{host}/section/{i % 97}/article-{i}.html"
    roll = rng.random()
    if roll < 0.06:
        return [url, "", "", "", "", "", rng.choice(ERRORS), 1, rng.randrange(10, 30000), 0, i + 1]
    status = rng.choices((200, 301, 404, 410, 500, 503), (88, 3, 5, 1, 2, 1))[0]
    return [
        url,
        url,
        status,
        rng.randrange(500, 80_000),
        f"Article {i} | Site {i % 2000} news and more",
        "text/html; charset=utf-8",
        "",
        1,
        int(rng.lognormvariate(5, 0.8)),
        0,
        i + 1,
    ]


def is_ok(row: list[Any]) -> bool:
    return not row[6] and isinstance(row[2], int) and row[2] < 400


def generate(rows: int, out: Path, seed: int = 7) -> dict[str, int]:
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    old = [base_row(i, rng) for i in range(rows)]
    planted = dict.fromkeys(
        ("newly_failing", "fixed", "redirected_elsewhere", "title_changed", "added", "removed"), 0
    )
    new: list[list[Any]] = []
    for row in old:
        roll = rng.random()
        if roll < 0.002:
            planted["removed"] += 1
            continue
        changed = list(row)
        if roll < 0.004 and is_ok(row):
            changed[2] = 404
            planted["newly_failing"] += 1
        elif roll < 0.006 and not is_ok(row) and not row[6]:
            changed[2] = 200
            planted["fixed"] += 1
        elif roll < 0.008 and is_ok(row) and row[2] == 200:
            changed[1] = row[0].replace("/article-", "/moved/article-")
            changed[9] = 1
            planted["redirected_elsewhere"] += 1
        elif roll < 0.010 and is_ok(row) and row[2] == 200:
            changed[4] = row[4] + " (updated)"
            planted["title_changed"] += 1
        new.append(changed)
    for i in range(rows, rows + rows // 500):
        row = base_row(i, rng)
        row[6], row[2] = "", 200
        row[1] = row[0]
        new.append(row)
        planted["added"] += 1
    # A crawl writes rows as URLs finish: blocks of the list, interleaved.
    blocks = [new[i : i + 64] for i in range(0, len(new), 64)]
    rng.shuffle(blocks)
    for name, data in (("old.csv", old), ("new.csv", [r for b in blocks for r in b])):
        with (out / name).open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(FIELDS)
            writer.writerows(data)
    (out / "planted.json").write_text(json.dumps(planted))
    return planted


def generate_in_child(rows: int, out: Path) -> None:
    """:func:`generate` in a child process, so that the caller's memory (and
    the high-water mark its children inherit) stays small."""
    subprocess.run(
        [sys.executable, __file__, "--rows", str(rows), "--out", str(out)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(generate(args.rows, args.out)))


if __name__ == "__main__":
    main()
