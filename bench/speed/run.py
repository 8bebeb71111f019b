"""Speed benchmarks of issue #9: the ``pages`` crawl against stock Scrapy and aiohttp.

    python bench/speed/run.py [--pages 5000] [--rounds 5] [--concurrency 16]
                              [--scenario throughput|latency|rate|profile|all] [--json out.json]

Scenarios (``all`` = throughput, latency, rate; ``profile`` only on request):

- throughput: N static pages of 2-10 KB on loopback (nginx if installed,
  else ``server.py``). Each round runs, in a rotating order, (a) the project
  crawl (``scrapy crawl pages``, report, dedupe, stats, retries on, rate
  limiter on but not binding), (b) the minimal stock-Scrapy spider
  (``stock_spider.py`` through ``scrapy runspider`` from a directory without
  ``scrapy.cfg``: Scrapy's defaults) and (c) the aiohttp baseline. Per run:
  wall time of the whole process, user+sys CPU and peak RSS (``os.wait4``),
  rows of the CSV (must be N, all status 200). Server side: the time from the
  first request's arrival to the last response (nginx access log with
  ``$msec``/``$request_time``, kept for that purpose only; or server.py's own
  record), i.e. the crawl without process start-up and shut-down.
- latency: every response 200 ms late (server.py), 2,000 URLs at
  concurrency 100; wall time against the ideal N / C * delay.
- rate: the project crawl with ``RATELIMIT_RATE=50``, ``RATELIMIT_BURST=1``
  over 500 URLs; request arrival times at the server give the achieved mean
  rate, the most requests in any 1 s window and the smallest gap.
- profile: one project crawl under ``py-spy record --format raw``; prints
  where its CPU goes (``profile_report.py``).

Every process started here is stopped by PID; temporary files are removed.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import csv
import http.client
import itertools
import json
import os
import platform
import random
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PY = sys.executable
TOOLS = ("project", "stock", "aiohttp")
ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
# Per-run limits: no loop here waits forever.
SERVER_START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


# -- pages ----------------------------------------------------------------------

SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "da")
SYLLABLES += ("ri", "su", "mo", "le", "na", "ti", "ga", "bu", "ze", "fo")


def _word(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))


def make_page(i: int, rng: random.Random) -> bytes:
    """One HTML page of 2-10 KB with its own title (deterministic for a seeded rng)."""
    size = rng.randint(2048, 10240)
    words = " ".join(_word(rng) for _ in range(rng.randint(2, 8)))
    title = f"{words.capitalize()} &amp; page {i}" if i % 7 == 0 else f"{words.title()} {i}"
    if i % 11 == 0:
        title += " caf\u00e9 \u2014 na\u00efve"
    head = (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n"
        f'<meta name="description" content="{_word(rng)} {_word(rng)}">\n'
        f'<link rel="stylesheet" href="/style.css">\n</head>\n<body>\n<h1>{words}</h1>\n'
    )
    tail = "</body>\n</html>\n"
    parts = [head]
    length = len(head.encode()) + len(tail)
    while True:
        sentence = " ".join(_word(rng) for _ in range(rng.randint(8, 30)))
        link = f'<a href="/page/{rng.randrange(100000)}.html">{_word(rng)}</a>'
        para = f"<p>{sentence.capitalize()} {link}.</p>\n"
        if length + len(para.encode()) > size:
            break
        parts.append(para)
        length += len(para.encode())
    parts.append(tail)
    page = "".join(parts).encode()
    if len(page) < 2048:  # a tiny size target met no paragraph: pad with a comment
        page = page.replace(b"</body>", b"<!--" + b"x" * (2048 - len(page)) + b"--></body>")
    return page


def generate_site(root: Path, pages: int, seed: int) -> None:
    rng = random.Random(seed)
    (root / "page").mkdir(parents=True, exist_ok=True)
    for i in range(pages):
        (root / "page" / f"{i}.html").write_bytes(make_page(i, rng))


def write_urls(path: Path, base: str, pages: int) -> list[str]:
    urls = [f"{base}/page/{i}.html" for i in range(pages)]
    path.write_text("".join(u + "\n" for u in urls), encoding="utf-8")
    return urls


# -- servers --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    """Stop one process we started, by its PID: signal, wait, then SIGKILL."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, sig)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(STOP_TIMEOUT)


def wait_http(port: int, proc: subprocess.Popen[Any], path: str = "/page/0.html") -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not answer within {SERVER_START_TIMEOUT}s")


def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


class Server:
    """A running server: its URL, its process and the requests it saw."""

    kind = "?"

    def __init__(self, proc: subprocess.Popen[Any], port: int) -> None:
        self.proc = proc
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def reset(self) -> None:
        raise NotImplementedError

    def requests(self) -> list[tuple[float, float, str, int]]:
        """(arrival, response sent, path, status) per request since the last reset."""
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.proc)

    def check(self) -> None:
        status, headers, body = http_get(self.port, "/page/0.html")
        ctype = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        assert status == 200, status
        assert body.startswith(b"<!DOCTYPE html>"), body[:40]
        assert ctype.replace(" ", "").lower() == "text/html;charset=utf-8", ctype
        assert http_get(self.port, "/robots.txt")[0] == 404
        assert http_get(self.port, "/no/such/page")[0] == 404
        self.reset()


class PythonServer(Server):
    kind = "python (server.py)"

    @classmethod
    def start(cls, root: Path, delay: float = 0.0) -> PythonServer:
        cmd = [PY, str(HERE / "server.py"), "--root", str(root), "--delay", str(delay)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        try:
            assert proc.stdout is not None
            ready, _, _ = select.select([proc.stdout], [], [], SERVER_START_TIMEOUT)
            line = proc.stdout.readline().decode() if ready else ""
            if not line.startswith("PORT "):
                raise RuntimeError(f"server.py did not start: {line!r}")
            server = cls(proc, int(line.split()[1]))
            wait_http(server.port, proc)
            server.check()
            return server
        except BaseException:
            stop_process(proc)
            raise

    def reset(self) -> None:
        http_get(self.port, "/__bench__/reset")

    def requests(self) -> list[tuple[float, float, str, int]]:
        data = json.loads(http_get(self.port, "/__bench__/stats")[2])
        return [(a, s if s is not None else a, p, st) for a, s, p, st in data["requests"]]


NGINX_CONF = """\
{user}worker_processes 1;
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ text/html html; }}
    default_type application/octet-stream;
    charset utf-8;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    log_format timing '$msec $request_time $status $request_uri';
    {access_log}
    server {{
        listen 127.0.0.1:{port} backlog=1024;
        root {root};
        location / {{ try_files $uri =404; }}
    }}
}}
"""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


class NginxServer(Server):
    kind = "nginx"

    def __init__(self, proc: subprocess.Popen[Any], port: int, log: Path | None) -> None:
        super().__init__(proc, port)
        self.log = log

    @classmethod
    def start(cls, nginx: str, root: Path, tmp: Path, access_log: bool = True) -> NginxServer:
        tmp.mkdir(parents=True, exist_ok=True)
        log = tmp / "access.log" if access_log else None
        port = free_port()
        conf = tmp / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                user="user root;\n" if os.geteuid() == 0 else "",
                tmp=tmp,
                port=port,
                root=root,
                access_log=f"access_log {log} timing;" if log else "access_log off;",
            )
        )
        cmd = [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        try:
            server = cls(proc, port, log)
            wait_http(port, proc)
            server.check()
            return server
        except BaseException:
            stop_process(proc)
            raise

    def reset(self) -> None:
        if self.log is not None:
            os.truncate(self.log, 0)  # nginx appends (O_APPEND): the next line lands at 0

    def requests(self) -> list[tuple[float, float, str, int]]:
        if self.log is None:
            return []
        out = []
        for line in self.log.read_text().splitlines():
            msec, request_time, status, uri = line.split(" ", 3)
            end = float(msec)
            out.append((end - float(request_time), end, uri, int(status)))
        return out


# -- measured runs --------------------------------------------------------------


@dataclass
class Run:
    tool: str
    round: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    rows: int
    server_window_s: float | None = None  # first request arrival -> last response sent
    server_requests: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def child_env() -> dict[str, str]:
    """The environment without anything that selects Scrapy settings or our own options."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SCRAPY_", "SCRAPER_")) and k != "PYTHONPATH"
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def measure(cmd: list[str], cwd: Path, log: Path, timeout: float) -> dict[str, float]:
    """Run ``cmd`` to completion: wall time, CPU (user, sys) and peak RSS of that process."""
    lock = threading.Lock()
    exited = False
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    timed_out = threading.Event()

    def watchdog() -> None:
        with lock:
            if not exited:  # still not reaped (at worst a zombie): the PID is ours
                timed_out.set()
                os.kill(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout, watchdog)
    timer.start()
    try:
        # Wait without reaping, so that the watchdog can never signal a reused PID.
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        wall = time.perf_counter() - start
        with lock:
            exited = True
        timer.cancel()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    except BaseException:
        timer.cancel()
        stop_process(proc, signal.SIGKILL)
        raise
    if timed_out.is_set():
        raise RuntimeError(f"timed out after {timeout}s: {' '.join(cmd)} (log: {log})")
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"exit code {proc.returncode}: {' '.join(cmd)}\n{tail}")
    return {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "maxrss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def check_csv(path: Path, urls: list[str], tool: str) -> int:
    """Fail loudly unless the CSV has one row per URL, each with status 200 and a title."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    problems = []
    if len(rows) != len(urls):
        problems.append(f"{len(rows)} rows for {len(urls)} URLs")
    bad = [r for r in rows if r.get("status") != "200" or not r.get("title")]
    if bad:
        problems.append(f"{len(bad)} rows without status 200 and a title, e.g. {bad[0]}")
    missing = set(urls) - {r.get("url") for r in rows}
    if missing:
        problems.append(f"{len(missing)} URLs missing, e.g. {sorted(missing)[:3]}")
    if problems:
        raise RuntimeError(f"{tool}: bad output {path}: " + "; ".join(problems))
    return len(rows)


def command(
    tool: str, urls: Path, out: Path, concurrency: int, extra: tuple[str, ...]
) -> list[str]:
    common = [
        "-O",
        str(out),
        "-s",
        f"CONCURRENT_REQUESTS={concurrency}",
        "-s",
        f"CONCURRENT_REQUESTS_PER_DOMAIN={concurrency}",
        "-s",
        "LOG_LEVEL=INFO",
    ]
    if tool == "project":
        return [
            PY, "-m", "scrapy", "crawl", "pages", "-a", f"urls={urls}",
            *common, *extra, *PROJECT_SETTINGS,
        ]  # fmt: skip
    if tool == "stock":
        return [
            PY,
            "-m",
            "scrapy",
            "runspider",
            str(HERE / "stock_spider.py"),
            "-a",
            f"urls={urls}",
            *common,
            "-s",
            f"TWISTED_REACTOR={ASYNCIO_REACTOR}",
        ]
    if tool == "aiohttp":
        return [
            PY,
            str(HERE / "aiohttp_baseline.py"),
            str(urls),
            str(out),
            "--concurrency",
            str(concurrency),
        ]
    raise ValueError(tool)


NOT_BINDING = ("-s", "RATELIMIT_RATE=100000", "-s", "RATELIMIT_BURST=100")
# Extra -s NAME=VALUE for the project crawl (--project-setting), for experiments.
PROJECT_SETTINGS: list[str] = []


def run_tool(
    tool: str,
    rnd: int,
    server: Server,
    *,
    urls_file: Path,
    urls: list[str],
    concurrency: int,
    work: Path,
    timeout: float,
    extra: tuple[str, ...] = NOT_BINDING,
) -> tuple[Run, list[tuple[float, float, str, int]]]:
    out = work / f"{tool}-{rnd}.csv"
    log = work / f"{tool}-{rnd}.log"
    # The stock spider and the baseline run where no scrapy.cfg can be found.
    cwd = REPO if tool == "project" else work / "nocfg"
    cwd.mkdir(exist_ok=True)
    server.reset()
    load = os.getloadavg()[0]  # other work on the machine skews a run: keep a trace of it
    figures = measure(command(tool, urls_file, out, concurrency, extra), cwd, log, timeout)
    seen = server.requests()
    rows = check_csv(out, urls, tool)
    if tool == "stock":
        text = log.read_text(errors="replace")
        assert "'BOT_NAME': 'scraper_project'" not in text, "stock spider saw the project settings"
    window = None
    if seen:
        window = max(s for _, s, _, _ in seen) - min(a for a, _, _, _ in seen)
    out.unlink()
    run = Run(tool, rnd, rows=rows, server_window_s=window, server_requests=len(seen), **figures)
    run.extra["loadavg_1m_before"] = load
    return run, seen


# -- statistics and tables ------------------------------------------------------


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def fmt(s: dict[str, float], digits: int = 0) -> str:
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def summarize_throughput(runs: list[Run], pages: int) -> dict[str, Any]:
    by_tool: dict[str, list[Run]] = {}
    for run in runs:
        by_tool.setdefault(run.tool, []).append(run)
    summary: dict[str, Any] = {"tools": {}, "ratios": {}}
    table = []
    for tool, tool_runs in by_tool.items():
        s = {
            "pages_per_s": spread([pages / r.wall_s for r in tool_runs]),
            "pages_per_s_server": spread(
                [pages / r.server_window_s for r in tool_runs if r.server_window_s]
                or [float("nan")]
            ),
            "cpu_ms_per_page": spread([r.cpu_s / pages * 1000 for r in tool_runs]),
            "wall_s": spread([r.wall_s for r in tool_runs]),
            "startup_shutdown_s": spread(
                [r.wall_s - r.server_window_s for r in tool_runs if r.server_window_s]
                or [float("nan")]
            ),
            "maxrss_mb": spread([r.maxrss_mb for r in tool_runs]),
        }
        summary["tools"][tool] = s
        table.append(
            [
                tool,
                fmt(s["pages_per_s"]),
                fmt(s["pages_per_s_server"]),
                fmt(s["cpu_ms_per_page"], 3),
                fmt(s["wall_s"], 2),
                fmt(s["startup_shutdown_s"], 2),
                fmt(s["maxrss_mb"], 1),
            ]
        )
    print(
        f"### Throughput: {pages} pages, median (min-max) of {len(runs) // len(by_tool)} rounds\n"
    )
    print_table(
        [
            "tool",
            "pages/s (whole process)",
            "pages/s (server window)",
            "CPU ms/page",
            "wall s",
            "wall - window s",
            "peak RSS MB",
        ],
        table,
    )
    rounds: dict[int, dict[str, Run]] = {}
    for run in runs:
        rounds.setdefault(run.round, {})[run.tool] = run
    ratio_rows = []
    for other in ("stock", "aiohttp"):
        if other not in by_tool or "project" not in by_tool:
            continue
        pairs = [(r["project"], r[other]) for r in rounds.values() if "project" in r and other in r]
        ratios = {
            "pages_per_s": spread([o.wall_s / p.wall_s for p, o in pairs]),
            "pages_per_s_server": spread(
                [
                    o.server_window_s / p.server_window_s
                    for p, o in pairs
                    if p.server_window_s and o.server_window_s
                ]
                or [float("nan")]
            ),
            "cpu_per_page": spread([p.cpu_s / o.cpu_s for p, o in pairs]),
            "maxrss": spread([p.maxrss_mb / o.maxrss_mb for p, o in pairs]),
        }
        summary["ratios"][f"project/{other}"] = ratios
        ratio_rows.append(
            [
                f"project / {other}",
                fmt(ratios["pages_per_s"], 2),
                fmt(ratios["pages_per_s_server"], 2),
                fmt(ratios["cpu_per_page"], 2),
                fmt(ratios["maxrss"], 2),
            ]
        )
    if ratio_rows:
        print("Per-round ratios, median (min-max):\n")
        print_table(
            [
                "ratio",
                "pages/s (whole process)",
                "pages/s (server window)",
                "CPU per page",
                "peak RSS",
            ],
            ratio_rows,
        )
    return summary


# -- scenarios ------------------------------------------------------------------


def rotation(rnd: int, tools: tuple[str, ...]) -> list[str]:
    k = rnd % len(tools)
    return list(tools[k:] + tools[:k])


def scenario_throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    site = tmp / "site"
    generate_site(site, args.pages, args.seed)
    nginx = None if args.server == "python" else find_nginx()
    if args.server == "nginx" and nginx is None:
        raise SystemExit("--server nginx: nginx not found")
    server: Server = (
        NginxServer.start(nginx, site, tmp / "nginx", access_log=not args.no_access_log)
        if nginx
        else PythonServer.start(site)
    )
    runs: list[Run] = []
    try:
        urls_file = tmp / "urls.txt"
        urls = write_urls(urls_file, server.base, args.pages)
        print(
            f"server: {server.kind} on {server.base}; {args.pages} pages; "
            f"concurrency {args.concurrency}; tools {', '.join(args.tools)}",
            flush=True,
        )
        for rnd in range(-args.warmup, args.rounds):
            for tool in rotation(rnd, args.tools):
                run, _ = run_tool(
                    tool,
                    rnd,
                    server,
                    urls_file=urls_file,
                    urls=urls,
                    concurrency=args.concurrency,
                    work=tmp,
                    timeout=args.timeout,
                )
                label = "warm-up" if rnd < 0 else f"round {rnd + 1}"
                print(
                    f"  {label} {tool:8} wall {run.wall_s:6.2f}s  cpu {run.cpu_s:6.2f}s  "
                    f"rss {run.maxrss_mb:6.1f}MB  {args.pages / run.wall_s:7.0f} pages/s  "
                    f"server window {run.server_window_s or 0:6.2f}s",
                    flush=True,
                )
                if rnd >= 0:
                    runs.append(run)
    finally:
        server.stop()
    print()
    summary = summarize_throughput(runs, args.pages)
    summary["server"] = server.kind
    summary["runs"] = [asdict(r) for r in runs]
    return summary


def scenario_latency(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    n, c, delay = args.latency_pages, args.latency_concurrency, args.latency
    site = tmp / "site"
    generate_site(site, n, args.seed)
    server = PythonServer.start(site, delay=delay)
    ideal = n / c * delay
    runs: list[Run] = []
    try:
        urls_file = tmp / "urls.txt"
        urls = write_urls(urls_file, server.base, n)
        print(
            f"latency: {n} URLs, concurrency {c}, {delay * 1000:.0f} ms per response "
            f"(robots.txt included); ideal {ideal:.2f}s",
            flush=True,
        )
        for rnd in range(args.rounds):
            for tool in rotation(rnd, args.tools):
                run, _ = run_tool(
                    tool,
                    rnd,
                    server,
                    urls_file=urls_file,
                    urls=urls,
                    concurrency=c,
                    work=tmp,
                    timeout=args.timeout,
                )
                print(
                    f"  round {rnd + 1} {tool:8} wall {run.wall_s:6.2f}s  server window "
                    f"{run.server_window_s or 0:6.2f}s  requests {run.server_requests}  "
                    f"cpu {run.cpu_s:5.2f}s  rss {run.maxrss_mb:6.1f}MB",
                    flush=True,
                )
                runs.append(run)
    finally:
        server.stop()
    print(
        f"\n### Latency: {n} URLs, {delay * 1000:.0f} ms each, concurrency {c}, ideal "
        f"{ideal:.2f} s; median (min-max) of {args.rounds} rounds\n"
    )
    summary: dict[str, Any] = {"ideal_s": ideal, "tools": {}}
    table = []
    for tool in args.tools:
        tool_runs = [r for r in runs if r.tool == tool]
        s = {
            "wall_s": spread([r.wall_s for r in tool_runs]),
            "server_window_s": spread([r.server_window_s or float("nan") for r in tool_runs]),
            "wall_over_ideal": spread([r.wall_s / ideal for r in tool_runs]),
            "window_over_ideal": spread(
                [(r.server_window_s or float("nan")) / ideal for r in tool_runs]
            ),
            "cpu_s": spread([r.cpu_s for r in tool_runs]),
            "maxrss_mb": spread([r.maxrss_mb for r in tool_runs]),
        }
        summary["tools"][tool] = s
        table.append(
            [
                tool,
                fmt(s["wall_s"], 2),
                fmt(s["wall_over_ideal"], 2),
                fmt(s["server_window_s"], 2),
                fmt(s["window_over_ideal"], 2),
                fmt(s["cpu_s"], 2),
                fmt(s["maxrss_mb"], 1),
            ]
        )
    print_table(
        [
            "tool",
            "wall s",
            "wall / ideal",
            "server window s",
            "window / ideal",
            "CPU s",
            "peak RSS MB",
        ],
        table,
    )
    summary["runs"] = [asdict(r) for r in runs]
    return summary


def rate_figures(arrivals: list[float], window: float = 1.0) -> dict[str, float]:
    arrivals = sorted(arrivals)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    span = arrivals[-1] - arrivals[0]
    # The most arrivals in any half-open window [t, t + 1 s) starting at an arrival.
    most = max(bisect.bisect_left(arrivals, t + window) - i for i, t in enumerate(arrivals))
    return {
        "requests": len(arrivals),
        "span_s": span,
        "mean_rate": (len(arrivals) - 1) / span if span > 0 else float("inf"),
        "max_in_1s": most,
        "min_gap_ms": min(gaps) * 1000,
        "median_gap_ms": statistics.median(gaps) * 1000,
        "p99_gap_ms": sorted(gaps)[int(0.99 * (len(gaps) - 1))] * 1000,
        "max_gap_ms": max(gaps) * 1000,
    }


def scenario_rate(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    n, rate, burst = args.rate_pages, args.rate, args.rate_burst
    site = tmp / "site"
    generate_site(site, n, args.seed)
    server = PythonServer.start(site)
    results = []
    extra = ("-s", f"RATELIMIT_RATE={rate}", "-s", f"RATELIMIT_BURST={burst}")
    try:
        urls_file = tmp / "urls.txt"
        urls = write_urls(urls_file, server.base, n)
        print(
            f"rate: {n} URLs, RATELIMIT_RATE={rate} RATELIMIT_BURST={burst}, "
            f"concurrency {args.concurrency}",
            flush=True,
        )
        for rnd in range(args.rate_rounds):
            run, seen = run_tool(
                "project",
                rnd,
                server,
                urls_file=urls_file,
                urls=urls,
                concurrency=args.concurrency,
                work=tmp,
                timeout=args.timeout,
                extra=extra,
            )
            arrivals = [a for a, _, path, _ in seen if path.startswith("/page/")]
            figures = rate_figures(arrivals)
            figures["wall_s"] = run.wall_s
            results.append(figures)
            print(
                f"  round {rnd + 1}: mean {figures['mean_rate']:.2f}/s  max in 1 s "
                f"{figures['max_in_1s']}  min gap {figures['min_gap_ms']:.1f} ms  wall "
                f"{run.wall_s:.2f}s",
                flush=True,
            )
    finally:
        server.stop()
    print(f"\n### Rate: {n} URLs, configured {rate}/s, burst {burst}; one row per run\n")
    print_table(
        [
            "run",
            "mean rate /s",
            "mean / configured",
            "max in any 1 s",
            "min gap ms",
            "median gap ms",
            "p99 gap ms",
            "max gap ms",
            "wall s",
        ],
        [
            [
                str(i + 1),
                f"{f['mean_rate']:.2f}",
                f"{f['mean_rate'] / rate:.3f}",
                str(f["max_in_1s"]),
                f"{f['min_gap_ms']:.1f}",
                f"{f['median_gap_ms']:.1f}",
                f"{f['p99_gap_ms']:.1f}",
                f"{f['max_gap_ms']:.1f}",
                f"{f['wall_s']:.2f}",
            ]
            for i, f in enumerate(results)
        ],
    )
    print(
        f"(ideal: mean {rate}/s, at most {rate:g} + {burst} - 1 = {rate + burst - 1:g} "
        f"in any 1 s window, gaps {1000 / rate:.1f} ms)\n"
    )
    return {"configured_rate": rate, "burst": burst, "runs": results}


def scenario_profile(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import profile_report

    pyspy = shutil.which("py-spy") or str(Path(PY).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        raise SystemExit("py-spy not found: pip install -e '.[bench]'")
    site = tmp / "site"
    generate_site(site, args.pages, args.seed)
    nginx = None if args.server == "python" else find_nginx()
    server: Server = (
        NginxServer.start(nginx, site, tmp / "nginx", access_log=False)
        if nginx
        else PythonServer.start(site)
    )
    raw = Path(args.profile_out) if args.profile_out else tmp / "profile.txt"
    try:
        urls_file = tmp / "urls.txt"
        urls = write_urls(urls_file, server.base, args.pages)
        out = tmp / "profile.csv"
        crawl = command("project", urls_file, out, args.concurrency, NOT_BINDING)
        cmd = [
            pyspy,
            "record",
            "--format",
            "raw",
            "--threads",
            "--full-filenames",
            "--rate",
            str(args.profile_rate),
            "-o",
            str(raw),
            *(["--nonblocking"] if args.profile_nonblocking else []),
            "--",
            *crawl,
        ]
        print(f"profile: {' '.join(cmd)}", flush=True)
        figures = measure(cmd, REPO, tmp / "profile.log", args.timeout)
        check_csv(out, urls, "project")
    finally:
        server.stop()
    print(
        f"profiled run: {args.pages} pages, wall {figures['wall_s']:.2f}s "
        f"(py-spy and crawl), {args.pages / figures['wall_s']:.0f} pages/s\n"
    )
    return profile_report.report(raw, top=args.profile_top)


def describe_env() -> dict[str, Any]:
    def out(cmd: list[str]) -> str:
        try:
            result = subprocess.run(
                cmd, check=False, capture_output=True, text=True, timeout=10, cwd=REPO
            )
            return (result.stdout + result.stderr).strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    nginx = find_nginx()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "scrapy": out([PY, "-c", "import scrapy; print(scrapy.__version__)"]),
        "nginx": out([nginx, "-v"]) if nginx else None,
        "git": out(["git", "rev-parse", "--short", "HEAD"]),
        "git_dirty_files": out(["git", "status", "--porcelain", "--", "scraper_project"]),
    }


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    try:
        yield tmp
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--scenario",
        default="throughput",
        choices=["throughput", "latency", "rate", "profile", "all"],
    )
    parser.add_argument("--pages", type=int, default=5000, help="throughput/profile pages")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured rounds first")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--tools", default=",".join(TOOLS), help="subset of project,stock,aiohttp")
    parser.add_argument(
        "--project-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra -s for the project crawl (repeatable; experiments)",
    )
    parser.add_argument("--server", choices=["auto", "nginx", "python"], default="auto")
    parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="nginx without its timing log (no server-window figures)",
    )
    parser.add_argument("--latency-pages", type=int, default=2000)
    parser.add_argument("--latency-concurrency", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per response")
    parser.add_argument("--rate-pages", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="RATELIMIT_RATE")
    parser.add_argument("--rate-burst", type=int, default=1, help="RATELIMIT_BURST")
    parser.add_argument("--rate-rounds", type=int, default=3)
    parser.add_argument("--profile-rate", type=int, default=200, help="py-spy samples/s")
    parser.add_argument(
        "--profile-nonblocking",
        action="store_true",
        help="py-spy --nonblocking: less overhead, less exact stacks",
    )
    parser.add_argument("--profile-out", help="keep py-spy's raw (collapsed) stacks here")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per process")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    for setting in args.project_setting:
        PROJECT_SETTINGS.extend(["-s", setting])
    args.tools = tuple(t for t in args.tools.split(",") if t)
    if not set(args.tools) <= set(TOOLS):
        parser.error(f"--tools: choose from {', '.join(TOOLS)}")

    results: dict[str, Any] = {"env": describe_env(), "args": vars(args)}
    scenarios = ["throughput", "latency", "rate"] if args.scenario == "all" else [args.scenario]
    functions = {
        "throughput": scenario_throughput,
        "latency": scenario_latency,
        "rate": scenario_rate,
        "profile": scenario_profile,
    }
    for name in scenarios:
        with workdir(args.keep) as tmp:
            results[name] = functions[name](args, tmp)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
