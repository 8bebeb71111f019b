"""``scrapy pages-diff`` on two large reports: time and peak RSS, beside the
in-memory diff people write by hand (bench/diff/naive.py), in one run.

    python bench/diff/run.py --rows 1000000 [--dir DIR] [--keep] [--chunk-rows N] [--json out.json]

Generates old.csv and new.csv (bench/diff/gen.py: 1,000,000 rows each by
default, about 150 MB each, the new one in another order, with a known number
of planted changes), then runs, each in a fresh process and in turn:

- ``scrapy pages-diff old.csv new.csv -o changes.csv`` (external sort);
- ``python bench/diff/naive.py old.csv new.csv`` (both reports in dicts).

Each is timed (wall clock, and CPU from ``wait4``'s rusage); its peak RSS
is the ``VmHWM`` of ``/proc/PID/status``, read every 20 ms until it exits
(``ru_maxrss`` would not do: Linux carries the parent's high-water mark
over ``fork`` and ``exec``, and the data are generated in a child process
for the same reason). The counts per kind of
both must equal the planted ones. Temporary files are removed unless
``--keep``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from gen import generate_in_child  # noqa: E402
from measure import measure  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--chunk-rows", type=int, default=None, help="pages-diff --chunk-rows")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", type=Path, help="write the figures there")
    args = parser.parse_args()

    work = args.dir or Path(tempfile.mkdtemp(prefix="diffbench-"))
    try:
        if not (work / "planted.json").exists():
            start = time.perf_counter()
            generate_in_child(args.rows, work)
            print(
                f"generated {args.rows:,} rows in {time.perf_counter() - start:.0f} s",
                file=sys.stderr,
            )
        planted = json.loads((work / "planted.json").read_text())
        old, new = work / "old.csv", work / "new.csv"
        sizes = {p.name: round(p.stat().st_size / 1e6) for p in (old, new)}
        changes = work / "changes.csv"
        command = [
            sys.executable,
            "-m",
            "scrapy",
            "pages-diff",
            str(old),
            str(new),
            "-o",
            str(changes),
        ]
        if args.chunk_rows:
            command += ["--chunk-rows", str(args.chunk_rows)]
        streaming = measure(command, args.timeout)
        if streaming["code"] != 4:  # some URLs are planted as newly failing
            raise SystemExit(f"pages-diff exited {streaming['code']}: {streaming['stderr']}")
        with changes.open(newline="", encoding="utf-8") as f:
            got = Counter(row["kind"] for row in csv.DictReader(f))
        naive = measure([sys.executable, str(HERE / "naive.py"), str(old), str(new)], args.timeout)
        if naive["code"] != 0:
            raise SystemExit(f"naive diff failed: {naive['stderr']}")
        naive_counts = json.loads(naive["stdout"])
        for kind, count in planted.items():
            if got[kind] != count or naive_counts.get(kind, 0) != count:
                raise SystemExit(
                    f"{kind}: planted {count}, pages-diff {got[kind]}, naive {naive_counts.get(kind)}"
                )
        result = {
            "rows": args.rows,
            "file_mb": sizes,
            "planted": planted,
            "pages_diff": {k: streaming[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb")},
            "naive_in_memory": {k: naive[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb")},
        }
        print(json.dumps(result, indent=2))
        print(
            f"\n{'':<28}{'wall s':>8}{'CPU s':>8}{'peak RSS MB':>13}\n"
            + "\n".join(
                f"{name:<28}{r['seconds']:>8}{r['cpu_seconds']:>8}{r['peak_rss_mb']:>13}"
                for name, r in (
                    ("pages-diff (external sort)", streaming),
                    ("naive (two dicts)", naive),
                )
            ),
            file=sys.stderr,
        )
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        if not args.keep and args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
