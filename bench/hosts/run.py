"""Memory growth per distinct host: the ``pages`` crawl over N URLs on N host names.

    python bench/hosts/run.py [--hosts 2000,10000,30000] [--repeat 1] [--timeout 600]
                              [--set NAME=VALUE ...] [--server auto|nginx|python]
                              [--json out.json] [--keep]

The "check the homepages of a million domains" case: every URL of the list
(``http://h{i}.test:{port}/``) has its own host name, all resolved to
127.0.0.1 by ``RESOLVE_HOSTS`` (``RESOLVE_HOSTS_ONLY``: no name ever reaches a
real resolver). One local server answers for any Host header: ``/robots.txt``
is a 200 robots.txt of 15 lines, ``/`` a small HTML page with a title and two
``Set-Cookie`` headers (a random ``session`` and a persistent ``pref``). It is
nginx when installed (own prefix and config in a temporary directory, as
``bench/speed/run.py`` does), else this file in ``--serve`` mode (asyncio,
keep-alive).

For each N (at most 200,000) the crawl runs in a fresh process (this file in
``--child`` mode, from the repo root): the project settings plus
``RESOLVE_HOSTS``, ``RESOLVE_HOSTS_ONLY=True``, ``DNSCACHE_ENABLED=False``,
``LOG_LEVEL=WARNING``, ``ROBOTSTXT_OBEY=True``, a CSV feed, and every
``--set NAME=VALUE``. At ``spider_closed`` the child prints one JSON line:
wall and CPU time, peak RSS (``ru_maxrss``), VmRSS before the crawl started
and at close, and the sizes of the per-host structures it can find (robots.txt
parsers, cookies and cookie domains, downloader slots, the http handler's idle
pool, plus the handler's netloc cache, retry budgets and rate-limit buckets);
a structure that is not there is reported as null. The parent checks the CSV
(N rows, all status 200 with a title), prints a table and the growth of peak
RSS in KB per host between the smallest and the largest N.

``start RSS`` includes the ``RESOLVE_HOSTS`` table itself (a benchmark
artifact that grows with N too): the "crawl only" slope subtracts it.

Every process started here is stopped by its PID, with a time limit;
temporary files are removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import http.client
import importlib.util
import itertools
import json
import os
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Shared with the speed benchmark (loaded by path: both files are "run.py").
_spec = importlib.util.spec_from_file_location("bench_speed_run", HERE.parent / "speed" / "run.py")
assert _spec is not None
assert _spec.loader is not None
_speed = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_speed)
find_nginx = _speed.find_nginx
free_port = _speed.free_port
print_table = _speed.print_table
stop_process = _speed.stop_process
REPO = HERE.parents[1]
PY = sys.executable
MARK = "HOSTBENCH-REPORT "
MAX_HOSTS = 200_000
SERVER_START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

ROBOTS_TXT = """\
# robots.txt for a typical small site
User-agent: Googlebot
Disallow: /nogooglebot/
Allow: /nogooglebot/public/

User-agent: *
Disallow: /admin/
Disallow: /cart
Disallow: /checkout/
Disallow: /search?
Allow: /search/help
Disallow: /*.pdf$
Allow: /public/

Sitemap: https://www.example.com/sitemap.xml
"""

HOME_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Welcome to a small site</title></head>
<body><h1>Welcome</h1><p>Nothing much here yet. <a href="/about">About</a></p></body>
</html>
"""


# -- servers --------------------------------------------------------------------


def http_get(
    port: int, path: str, host: str = "h0.test"
) -> tuple[int, list[tuple[str, str]], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}"})
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def _expect(ok: bool, what: str, *detail: Any) -> None:
    if not ok:
        raise RuntimeError(f"server check failed: {what}: {detail!r:.300}")


def check_server(port: int, proc: subprocess.Popen[Any]) -> None:
    """Wait until the server answers, then check both paths, any host, and keep-alive."""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        try:
            http_get(port, "/robots.txt")
            break
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server on port {port} did not answer") from None
            time.sleep(0.05)
    status, _, body = http_get(port, "/robots.txt", "h123.test")
    _expect(status == 200 and body.decode() == ROBOTS_TXT, "robots.txt", status, body)
    status, headers, body = http_get(port, "/", "another.test")
    cookies = [v for k, v in headers if k.lower() == "set-cookie"]
    _expect(status == 200 and b"<title>" in body, "/", status, body)
    _expect(len(cookies) == 2 and cookies[0].startswith("session="), "cookies", cookies)
    # Two requests on one connection: keep-alive works.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        for path in ("/robots.txt", "/"):
            conn.request("GET", path, headers={"Host": f"h1.test:{port}"})
            response = conn.getresponse()
            response.read()
            _expect(response.status == 200 and not response.will_close, "keep-alive", path)
    finally:
        conn.close()


NGINX_CONF = """\
{user}worker_processes 1;
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    types {{ text/html html; text/plain txt; }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types text/plain;  # text/html is always included
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    access_log off;
    server {{
        listen 127.0.0.1:{port} default_server backlog=1024;
        server_name _;
        root {root};
        location = /robots.txt {{ try_files /robots.txt =404; }}
        location = / {{
            add_header Set-Cookie "session=$request_id; Path=/; HttpOnly";
            add_header Set-Cookie "pref=abc; Path=/; Max-Age=31536000";
            try_files /index.html =404;
        }}
        location / {{ return 404; }}
    }}
}}
"""


def start_nginx(nginx: str, tmp: Path) -> tuple[subprocess.Popen[Any], int]:
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    (root / "robots.txt").write_text(ROBOTS_TXT)
    (root / "index.html").write_text(HOME_HTML)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user="user root;\n" if os.geteuid() == 0 else "", tmp=tmp, port=port, root=root
        )
    )
    cmd = [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    try:
        check_server(port, proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, port


def start_python_server() -> tuple[subprocess.Popen[Any], int]:
    cmd = [PY, str(Path(__file__).resolve()), "--serve"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], SERVER_START_TIMEOUT)
        line = proc.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"--serve did not start: {line!r}")
        port = int(line.split()[1])
        check_server(port, proc)
    except BaseException:
        stop_process(proc)
        raise
    return proc, port


# -- the fallback server (--serve) --------------------------------------------------


def _response(status: bytes, ctype: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\nServer: hostbench\r\nContent-Type: " + ctype
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body
    )  # fmt: skip


class _ServeProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive; GET/HEAD without bodies; any Host."""

    robots = _response(b"200 OK", b"text/plain; charset=utf-8", ROBOTS_TXT.encode())
    not_found = _response(b"404 Not Found", b"text/plain", b"not found\n")

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > 65536:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            lines = head.split(b"\r\n")
            parts = lines[0].split()
            path = parts[1] if len(parts) == 3 else b""
            close = any(
                line.lower().startswith(b"connection:") and b"close" in line.lower()
                for line in lines[1:]
            )
            if path == b"/robots.txt":
                payload = self.robots
            elif path == b"/":
                cookies = (
                    b"Set-Cookie: session=" + os.urandom(16).hex().encode()
                    + b"; Path=/; HttpOnly\r\n"
                    b"Set-Cookie: pref=abc; Path=/; Max-Age=31536000\r\n"
                )  # fmt: skip
                payload = _response(
                    b"200 OK", b"text/html; charset=utf-8", HOME_HTML.encode(), cookies
                )
            else:
                payload = self.not_found
            if parts and parts[0] == b"HEAD":
                payload = payload[: payload.index(b"\r\n\r\n") + 4]
            self.transport.write(payload)
            if close:
                self.transport.close()


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_ServeProtocol, "127.0.0.1", 0, backlog=1024)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


# -- the crawl (--child) ------------------------------------------------------------


def vmrss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _middleware(crawler: Any, word: str) -> Any:
    for mw in crawler.engine.downloader.middleware.middlewares:
        if word in type(mw).__name__:
            return mw
    raise LookupError(word)


def snapshot(crawler: Any) -> dict[str, Any]:
    """Sizes of the per-host structures; None for what cannot be found."""
    probes: dict[str, Any] = {
        "robots_parsers": lambda: len(_middleware(crawler, "Robots")._parsers),
        "cookies": lambda: sum(
            len(list(jar.jar)) for jar in _middleware(crawler, "Cookies").jars.values()
        ),
        "cookie_domains": lambda: len(
            {c.domain for jar in _middleware(crawler, "Cookies").jars.values() for c in jar.jar}
        ),
        "cookie_jars": lambda: len(_middleware(crawler, "Cookies").jars),
        "slots": lambda: len(crawler.engine.downloader.slots),
        "idle_keys": lambda: len(_http_handler(crawler)._idle),
        "idle_count": lambda: _http_handler(crawler)._idle_count,
        "idle_conns": lambda: sum(len(v) for v in _http_handler(crawler)._idle.values()),
        "handler_targets": lambda: len(_http_handler(crawler)._targets),
        "retry_budgets": lambda: len(_middleware(crawler, "Retry").budgets),
        "ratelimit_buckets": lambda: len(_middleware(crawler, "RateLimit").registry),
    }
    out: dict[str, Any] = {}
    for name, probe in probes.items():
        try:
            out[name] = probe()
        except Exception:  # absent or renamed: report None
            out[name] = None
    with contextlib.suppress(Exception):
        out["http_handler"] = type(_http_handler(crawler)).__qualname__
    return out


def _http_handler(crawler: Any) -> Any:
    handler = crawler.engine.downloader.handlers._handlers.get("http")
    if handler is None:
        raise LookupError("http")
    return handler


def child(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    os.chdir(REPO)
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "scraper_project.settings")
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.utils.project import get_project_settings

    n = args.n
    settings = get_project_settings()
    settings.setdict(
        {
            "RESOLVE_HOSTS": {f"h{i}.test": "127.0.0.1" for i in range(n)},
            "RESOLVE_HOSTS_ONLY": True,
            "DNSCACHE_ENABLED": False,
            "LOG_LEVEL": "WARNING",
            "ROBOTSTXT_OBEY": True,
            "FEEDS": {str(args.out): {"format": "csv", "overwrite": True}},
        },
        priority="cmdline",
    )
    for name, value in args.set:
        settings.set(name, value, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler("pages")
    report: dict[str, Any] = {"n": n}
    crawl_start: list[float] = []

    def on_closed(spider: Any, reason: str) -> None:
        wall = time.perf_counter() - crawl_start[0]
        usage = resource.getrusage(resource.RUSAGE_SELF)
        report.update(
            reason=reason,
            crawl_wall_s=wall,
            cpu_s=usage.ru_utime + usage.ru_stime,
            user_s=usage.ru_utime,
            sys_s=usage.ru_stime,
            peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            vmrss_close_mb=vmrss_mb(),
        )
        report.update(snapshot(crawler))
        with contextlib.suppress(Exception):
            stats = crawler.stats.get_stats()
            report["item_scraped_count"] = stats.get("item_scraped_count")
            report["response_count"] = stats.get("response_received_count")
        print(MARK + json.dumps(report), flush=True)

    crawler.signals.connect(on_closed, signal=signals.spider_closed, weak=False)
    report["setup_s"] = time.perf_counter() - started
    report["vmrss_start_mb"] = vmrss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report["cpu_start_s"] = usage.ru_utime + usage.ru_stime
    crawl_start.append(time.perf_counter())
    process.crawl(crawler, urls=str(args.urls))
    process.start()
    return 0 if "peak_rss_mb" in report else 1  # the crawl failed before spider_closed


# -- the parent --------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """bench/speed's child environment, with the project's settings module."""
    env = _speed.child_env()
    env["SCRAPY_SETTINGS_MODULE"] = "scraper_project.settings"
    return env


def check_csv(path: Path, n: int, port: int) -> tuple[int, list[str]]:
    """Rows in the report, and what is wrong with it (empty list: N rows, all 200 + title)."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    problems = []
    if len(rows) != n:
        problems.append(f"{len(rows)} rows for {n} URLs")
    bad = [r for r in rows if r.get("status") != "200" or not r.get("title")]
    if bad:
        problems.append(f"{len(bad)} rows without status 200 and a title, e.g. {bad[0]}")
    expected = {f"http://h{i}.test:{port}/" for i in range(n)}
    missing = expected - {r.get("url") for r in rows}
    if missing:
        problems.append(f"{len(missing)} URLs missing, e.g. {sorted(missing)[:3]}")
    return len(rows), problems


def run_one(
    n: int, rep: int, port: int, work: Path, *, sets: list[tuple[str, str]], timeout: float
) -> dict[str, Any]:
    urls = work / f"urls-{n}.txt"
    if not urls.exists():
        urls.write_text("".join(f"http://h{i}.test:{port}/\n" for i in range(n)))
    out = work / f"out-{n}-{rep}.csv"
    log = work / f"child-{n}-{rep}.log"
    cmd = [PY, str(Path(__file__).resolve()), "--child", "--n", str(n)]
    cmd += ["--urls", str(urls), "--out", str(out)]
    for name, value in sets:
        cmd += ["--set", f"{name}={value}"]
    result: dict[str, Any] = {"n": n, "repeat": rep, "load_1m_before": os.getloadavg()[0]}
    start = time.perf_counter()
    with log.open("wb") as f:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=child_env(), stdout=f, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        result["error"] = f"timed out after {timeout:.0f}s (log {log})"
        stop_process(proc, signal.SIGKILL)
        return result
    except BaseException:
        stop_process(proc, signal.SIGKILL)
        raise
    result["process_wall_s"] = time.perf_counter() - start
    result["exit_code"] = proc.returncode
    text = log.read_text(errors="replace")
    reports = [line[len(MARK) :] for line in text.splitlines() if line.startswith(MARK)]
    if reports:
        result.update(json.loads(reports[-1]))
    other = [line for line in text.splitlines() if not line.startswith(MARK)]
    result["log_lines"] = len(other)
    result["log_tail"] = other[-15:]
    errors = []
    if proc.returncode != 0:
        errors.append(f"exit code {proc.returncode}")
    if not reports:
        errors.append("no report line")
    if out.exists():
        result["rows"], problems = check_csv(out, n, port)
        errors += problems
        out.unlink()
    else:
        errors.append("no CSV")
    if errors:
        result["error"] = "; ".join(errors) + f" (log {log})"
    return result


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summarize(results: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in results if "error" not in r and r.get("peak_rss_mb")]
    rows = []
    for r in results:
        cpu = r.get("cpu_s")
        if cpu is not None:
            cpu -= r.get("cpu_start_s") or 0.0
        rows.append(
            [
                str(r["n"]),
                str(r["repeat"]),
                _fmt(r.get("crawl_wall_s"), 1),
                _fmt(cpu / r["n"] * 1000, 3) if cpu is not None else "-",
                _fmt(r.get("peak_rss_mb"), 1),
                _fmt(r.get("vmrss_start_mb"), 1),
                _fmt(r.get("vmrss_close_mb"), 1),
                _fmt(r.get("robots_parsers")),
                _fmt(r.get("cookies")),
                _fmt(r.get("cookie_domains")),
                _fmt(r.get("slots")),
                _fmt(r.get("idle_keys")),
            ]
        )
    print_table(
        [
            "N hosts", "rep", "wall s", "CPU ms/page (crawl)", "peak RSS MB", "start RSS MB",
            "VmRSS MB at close", "robots parsers", "cookies", "cookie domains", "slots",
            "idle-pool keys",
        ],
        rows,
    )  # fmt: skip
    print_table(
        [
            "N hosts", "rep", "idle conns", "handler netlocs", "retry budgets",
            "rate-limit buckets", "cookie jars", "rows", "process wall s",
        ],
        [
            [
                str(r["n"]), str(r["repeat"]), _fmt(r.get("idle_conns")),
                _fmt(r.get("handler_targets")), _fmt(r.get("retry_budgets")),
                _fmt(r.get("ratelimit_buckets")), _fmt(r.get("cookie_jars")),
                _fmt(r.get("rows")), _fmt(r.get("process_wall_s"), 1),
            ]
            for r in results
        ],
    )  # fmt: skip
    for r in results:
        if "error" in r:
            print(f"FAILED N={r['n']} rep={r['repeat']}: {r['error']}")
            for line in r.get("log_tail", [])[-8:]:
                print(f"    {line}")
        elif r.get("log_lines"):
            print(f"note: N={r['n']} rep={r['repeat']}: {r['log_lines']} log lines (WARNING+)")
    summary: dict[str, Any] = {}
    by_n: dict[int, list[dict[str, Any]]] = {}
    for r in ok:
        by_n.setdefault(r["n"], []).append(r)
    if len(by_n) >= 2:
        lo, hi = min(by_n), max(by_n)

        def median(n: int, key: str) -> float:
            return statistics.median(r[key] for r in by_n[n])

        def crawl_only(n: int) -> float:
            return statistics.median(
                r["peak_rss_mb"] - (r.get("vmrss_start_mb") or 0.0) for r in by_n[n]
            )

        per_host = (median(hi, "peak_rss_mb") - median(lo, "peak_rss_mb")) / (hi - lo) * 1024
        per_host_crawl = (crawl_only(hi) - crawl_only(lo)) / (hi - lo) * 1024
        summary = {
            "from_n": lo,
            "to_n": hi,
            "peak_rss_kb_per_host": per_host,
            "peak_minus_start_kb_per_host": per_host_crawl,
        }
        print(
            f"peak RSS slope N={lo} -> N={hi}: {per_host:.2f} KB per host "
            f"(crawl only, peak - start RSS: {per_host_crawl:.2f} KB per host)"
        )
        ns = sorted(by_n)
        if len(ns) > 2:  # growth is not linear once a cap is reached: each step too
            steps = []
            for a, b in itertools.pairwise(ns):
                kb = (median(b, "peak_rss_mb") - median(a, "peak_rss_mb")) / (b - a) * 1024
                steps.append({"from_n": a, "to_n": b, "peak_rss_kb_per_host": kb})
            summary["steps"] = steps
            print(
                "per step: "
                + ", ".join(
                    f"{st['from_n']}->{st['to_n']}: {st['peak_rss_kb_per_host']:.2f} KB/host"
                    for st in steps
                )
            )
    return summary


def parse_set(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def parse_hosts(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or any(not 1 <= v <= MAX_HOSTS for v in values):
        raise argparse.ArgumentTypeError(f"host counts must be 1..{MAX_HOSTS}: {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=parse_hosts, default=[2000, 10000, 30000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0, help="per crawl, seconds")
    parser.add_argument("--set", type=parse_set, action="append", default=[], metavar="N=V")
    parser.add_argument("--server", choices=("auto", "nginx", "python"), default="auto")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--urls", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve())
        return 0
    if args.child:
        return child(args)
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat must be 1..20")
    if not 0 < args.timeout <= 3600:
        parser.error("--timeout must be in (0, 3600]")

    work = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    proc: subprocess.Popen[Any] | None = None
    results: list[dict[str, Any]] = []
    try:
        nginx = find_nginx() if args.server != "python" else None
        if args.server == "nginx" and nginx is None:
            parser.error("nginx not found")
        if nginx:
            proc, port = start_nginx(nginx, work / "nginx")
            kind = "nginx"
        else:
            proc, port = start_python_server()
            kind = "python (--serve)"
        print(f"server: {kind} on 127.0.0.1:{port}, pid {proc.pid}; work dir {work}")
        if args.set:
            print("extra settings: " + ", ".join(f"{k}={v}" for k, v in args.set))
        for rep in range(args.repeat):
            for n in args.hosts:
                result = run_one(n, rep, port, work, sets=args.set, timeout=args.timeout)
                result["server"] = kind
                results.append(result)
                status = result.get("error", "ok")
                print(f"N={n} rep={rep}: {status}", flush=True)
        print()
        summary = summarize(results)
        if args.json:
            payload = {"settings": dict(args.set), "results": results, "summary": summary}
            args.json.write_text(json.dumps(payload, indent=2))
    finally:
        if proc is not None:
            stop_process(proc)
        if args.keep or any("error" in r for r in results):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
