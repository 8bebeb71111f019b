"""The same diff on SQLite (stdlib), for comparison with the external sort.

    python bench/diff/sqlite_diff.py old.csv new.csv     # prints the counts per kind as JSON

Both reports are loaded into an on-disk database (in a temporary folder),
indexed by URL (first row of a URL wins), then joined; the kinds come from
scraper_project.diff's ``change_kind``.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scraper_project.diff import change_kind

csv.field_size_limit(1 << 24)
COLUMNS = ("url", "status", "error", "final_url", "title", "line")


def records(path: str) -> Iterator[tuple[Any, ...]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        at = [header.index(c) for c in COLUMNS]
        for cells in reader:
            url, status, error, final, title, line = (cells[i] for i in at)
            yield (
                url,
                int(status) if status else None,
                error,
                "" if final == url else final,
                title,
                int(line),
            )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "diff.db")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        for table, path in (("old", sys.argv[1]), ("new", sys.argv[2])):
            db.execute(
                f"CREATE TABLE {table} (url TEXT PRIMARY KEY, status, error, final, title, line)"
            )
            db.executemany(f"INSERT OR IGNORE INTO {table} VALUES (?,?,?,?,?,?)", records(path))
        counts: Counter[str] = Counter()
        query = (
            "SELECT o.*, n.* FROM old o LEFT JOIN new n USING (url) "
            "UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, n.* FROM new n "
            "WHERE n.url NOT IN (SELECT url FROM old)"
        )
        for row in db.execute(query):
            old = row[:6] if row[0] is not None else None
            new = row[6:] if row[6] is not None else None
            if old is not None and new is not None:
                new = (old[0], *new[1:])
            counts[change_kind(old, new) or "unchanged"] += 1
        db.close()
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
