"""The diff people write by hand: both reports in dicts, then compare.

    python bench/diff/naive.py old.csv new.csv     # prints the counts per kind as JSON

The reference for bench/diff/run.py: same kinds (scraper_project.diff's
``change_kind``), everything in memory.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from typing import Any

from scraper_project.diff import change_kind

csv.field_size_limit(1 << 24)


def load(path: str) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        at = {
            name: header.index(name)
            for name in ("url", "status", "error", "final_url", "title", "line")
        }
        for cells in reader:
            url = cells[at["url"]]
            final = cells[at["final_url"]]
            status = cells[at["status"]]
            rows.setdefault(
                url,
                (
                    url,
                    int(status) if status else None,
                    cells[at["error"]],
                    "" if final == url else final,
                    cells[at["title"]],
                    int(cells[at["line"]]),
                ),
            )
    return rows


def main() -> None:
    old, new = load(sys.argv[1]), load(sys.argv[2])
    counts: Counter[str] = Counter()
    for url in old.keys() | new.keys():
        counts[change_kind(old.get(url), new.get(url)) or "unchanged"] += 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
