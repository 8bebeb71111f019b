"""Print the ns/op table (median) from ``pytest --benchmark-json`` output.

Usage: ``python bench/ratelimit/report.py /tmp/ratelimit-bench.json``
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def main(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in data["benchmarks"]:
        name = bench["name"].split("[")[0].removeprefix("test_")
        if name == "threads":
            name = bench["params"]["name"] + " (4 thr)"
        calls = bench["extra_info"].get("calls", 1)
        column = bench["group"].split()[-1]
        table[name][column] = bench["stats"]["median"] / calls * 1e9
    columns = sorted({c for row in table.values() for c in row}, key=_order)
    print(f"{'ns/op (median)':28}" + "".join(f"{c:>12}" for c in columns))
    for name, row in table.items():
        cells = "".join(f"{row[c]:12.0f}" if c in row else f"{'-':>12}" for c in columns)
        print(f"{name:28}{cells}")


def _order(column: str) -> float:
    rate = column.split("/", maxsplit=1)[0]
    return float("inf") if rate == "inf" else float(rate)


if __name__ == "__main__":
    main(sys.argv[1])
