"""Name resolution on a list of many hosts (issue #14): the project against a
plain aiohttp + aiodns script and stock Scrapy, side by side.

    python bench/dns/run.py [--rounds 3] [--tools project,aiohttp,stock]
                            [--options "timeout:2 attempts:2" --options ""]
                            [--timeout 300] [--json out.json] [--keep]
                            [--set NAME=VALUE ...]

The list: 3,000 URLs on 3,000 hosts (2,000 answering after 30 ms, 300
NXDOMAIN, 100 SERVFAIL, 100 never answering, 100 IPv6-only, 100 dual-stack,
100 whose first address refuses) plus 300 URLs on 30 shared hosts (30 ms),
shuffled (seed 14). Every name is served by ``tests/support/dnsserver.py``;
every live one leads to one nginx answering any Host on 127.0.0.1,
127.0.0.3 and ::1 port 80 (nothing listens on 127.0.0.2).

**Same conditions for all three.** The run happens in a private network
and mount namespace (``unshare -mn``, root): there the DNS server is the
*system's* nameserver (127.0.0.1:53, through a resolv.conf bind-mounted over
``/etc/resolv.conf``), so each tool resolves as it does out of the box:
the project with its own resolver (no ``DNS_NAMESERVERS`` given), aiohttp
with aiodns (c-ares, reading resolv.conf), stock Scrapy with glibc in the
reactor's thread pool. No packet leaves the namespace; the machine's own
resolver configuration is not touched. Each ``--options`` value is the
``options`` line of that resolv.conf, one block of rounds each: by default
``timeout:2 attempts:2`` and glibc's defaults (no line: 5 s, 2 attempts).
The project must not depend on it (its budget is ``DNS_TIMEOUT``, 4 s here).

Per tool and round (order rotated each round): whole-process wall time,
CPU, peak RSS, rows right (a live URL: status 200; a dead one: a DNS error
row, of the right kind for the project: ``dns_error: nxdomain`` / ``servfail``
/ ``timeout``), and the queries the DNS server received (how many
(name, type) pairs were asked more than once). Settings for every tool:
concurrency 100, 8 per host, download timeout 30 s. The project runs with
its defaults otherwise (robots.txt obeyed: one more request per host) and,
as ``project-norobots``, with ``ROBOTSTXT_OBEY=False`` (the same requests as
the other two). ``project-hostsfile`` is ``project-norobots`` with every live
name in a hosts file (``DNS_HOSTS_FILE``; the dead ones still go to the
nameserver): what the crawl costs without the live names' lookups.
``project-before`` is ``project`` run from ``--before DIR``, a checkout of
the code before this work (``git worktree add DIR e3e4c40``).

Every process started here is stopped by its PID; temporary files are
removed unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PY = sys.executable
BEFORE: list[Path] = [REPO]  # --before
INSIDE_FLAG = "--inside-namespace"

# Shared with the speed benchmark (loaded by path: both files are "run.py").
_spec = importlib.util.spec_from_file_location("bench_speed_run", HERE.parent / "speed" / "run.py")
assert _spec is not None
assert _spec.loader is not None
_speed = sys.modules[_spec.name] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_speed)
find_nginx = _speed.find_nginx
measure = _speed.measure
print_table = _speed.print_table
stop_process = _speed.stop_process

SEED = 14
FAST = 0.03
DNS_TIMEOUT = 4.0
CONCURRENCY = 100
TOOLS = ("project", "project-norobots", "project-hostsfile", "project-before", "aiohttp", "stock")
DEFAULT_OPTIONS = ("timeout:2 attempts:2", "")

# (prefix, how many, answer, expected outcome)
KINDS: tuple[tuple[str, int, dict[str, Any], str], ...] = (
    ("ok", 2200, {"a": ["127.0.0.1"], "delay": FAST}, "200"),
    ("nx", 300, {"rcode": "NXDOMAIN", "delay": FAST}, "nxdomain"),
    ("sf", 100, {"rcode": "SERVFAIL", "delay": FAST}, "servfail"),
    ("dead", 100, {"drop": True}, "timeout"),
    ("v6", 100, {"aaaa": ["::1"], "delay": FAST}, "200"),
    ("ds", 100, {"a": ["127.0.0.1"], "aaaa": ["::1"], "delay": FAST}, "200"),
    ("df", 100, {"a": ["127.0.0.2", "127.0.0.3"], "delay": FAST}, "200"),
)
SHARED_HOSTS = 30
SHARED_URLS = 10

NGINX_CONF = """\
{user}worker_processes 1;
master_process off;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    default_type text/html;
    charset utf-8;
    access_log off;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:80 backlog=4096;
        listen 127.0.0.3:80 backlog=4096;
        listen [::1]:80 backlog=4096;
        server_name _;
        root {root};
        location = /robots.txt {{ return 404; }}
        location / {{ try_files /index.html =404; }}
    }}
}}
"""
PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>A small site</title></head>"
    "<body><h1>Welcome</h1><p>Nothing much here yet.</p></body></html>\n"
)


# -- the list and the zone --------------------------------------------------------


def make_list() -> tuple[list[str], dict[str, dict[str, Any]], dict[str, str]]:
    """URLs (shuffled), the zone, the expected outcome per URL."""
    zone: dict[str, dict[str, Any]] = {}
    expected: dict[str, str] = {}
    urls: list[str] = []
    for prefix, count, answer, outcome in KINDS:
        for i in range(count):
            name = f"{prefix}{i}.test"
            zone[name] = answer
            url = f"http://{name}/"
            urls.append(url)
            expected[url] = outcome
    for i in range(SHARED_HOSTS):
        name = f"shared{i}.test"
        zone[name] = {"a": ["127.0.0.1"], "delay": FAST}
        for j in range(SHARED_URLS):
            url = f"http://{name}/page{j}"
            urls.append(url)
            expected[url] = "200"
    random.Random(SEED).shuffle(urls)
    return urls, zone, expected


def verdict(tool: str, row: dict[str, str], outcome: str) -> bool:
    """Whether a tool's row is right for the URL's expected outcome."""
    status, error = row.get("status", ""), row.get("error", "")
    if outcome == "200":
        return status == "200"
    if tool.startswith("project"):
        return error.startswith(f"dns_error: {outcome}: ")
    if tool == "aiohttp":
        return error.startswith("dns")
    # Stock Scrapy: Twisted's DNSLookupError, or Scrapy's wrapper of it.
    return error.startswith(("DNSLookupError", "CannotResolveHostError"))


# -- servers -------------------------------------------------------------------------


class DNS:
    """tests/support/dnsserver.py on 127.0.0.1:53, as a subprocess."""

    def __init__(self, zone_file: Path) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "tests.support.dnsserver", "--zone", str(zone_file), "--port", "53"],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            stop_process(self.proc)
            raise RuntimeError("the DNS server did not start")

    def counts(self) -> Counter[tuple[str, str]]:
        """Queries per (name, type) since the previous call."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("counts\n")
        self.proc.stdin.flush()
        return Counter({(n, t): c for n, t, c in json.loads(self.proc.stdout.readline())})

    def stop(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        stop_process(self.proc)


def start_nginx(nginx: str, tmp: Path) -> subprocess.Popen[Any]:
    root = tmp / "www"
    root.mkdir(parents=True, exist_ok=True)
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    conf = tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(user="user root;\n" if os.geteuid() == 0 else "", tmp=tmp, root=root)
    )
    proc = subprocess.Popen(
        [nginx, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    import http.client

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with code {proc.returncode}")
        try:
            for host in ("127.0.0.1", "127.0.0.3", "::1"):
                conn = http.client.HTTPConnection(host, 80, timeout=2)
                conn.request("GET", "/", headers={"Host": "any.test"})
                assert conn.getresponse().status == 200
                conn.close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_process(proc)
    raise RuntimeError("nginx did not answer within 15 s")


# -- the tools ------------------------------------------------------------------------


def command(tool: str, urls: Path, out: Path, extra: list[str]) -> list[str]:
    if tool.startswith("project"):
        hosts = out.parent / "hosts"
        settings = {
            "CONCURRENT_REQUESTS": CONCURRENCY,
            "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
            "DNS_TIMEOUT": DNS_TIMEOUT,
            "DOWNLOAD_TIMEOUT": 30,
            "LOG_LEVEL": "INFO",
        }
        if tool in ("project-norobots", "project-hostsfile"):
            settings["ROBOTSTXT_OBEY"] = False
        if tool == "project-hostsfile":
            settings["DNS_HOSTS_FILE"] = str(hosts)
        args = [f"{k}={v}" for k, v in settings.items()] + extra
        sets = [item for arg in args for item in ("-s", arg)]
        return [PY, "-m", "scrapy", "crawl", "pages", "-a", f"urls={urls}", "-O", str(out), *sets]
    if tool == "aiohttp":
        return [PY, str(HERE / "aiohttp_aiodns.py"), str(urls), str(out), "--concurrency", "100"]
    if tool == "stock":
        return [
            PY, "-m", "scrapy", "runspider", str(HERE / "stock_spider.py"),
            "-a", f"urls={urls}", "-O", str(out),
            "-s", f"CONCURRENT_REQUESTS={CONCURRENCY}",
            "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
            "-s", "DOWNLOAD_TIMEOUT=30",
            "-s", "LOG_LEVEL=INFO",
        ]  # fmt: skip
    raise ValueError(tool)


def run_tool(
    tool: str,
    work: Path,
    urls_file: Path,
    expected: dict[str, str],
    dns: DNS,
    *,
    timeout: float,
    extra: list[str],
) -> dict[str, Any]:
    out = work / f"{tool}.csv"
    log = work / f"{tool}.log"
    cwd = REPO if tool.startswith("project") else work / "nocfg"
    if tool == "project-before":
        cwd = BEFORE[0]
    cwd.mkdir(exist_ok=True)
    dns.counts()  # forget what came before
    load = os.getloadavg()[0]
    figures = measure(command(tool, urls_file, out, extra), cwd, log, timeout)
    counts = dns.counts()
    with out.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    by_url = {row["url"]: row for row in rows}
    wrong = Counter()
    for url, outcome in expected.items():
        row = by_url.get(url)
        if row is None or not verdict(tool, row, outcome):
            wrong[outcome] += 1
    example = next(
        (
            f"{url}: {by_url.get(url)}"
            for url, outcome in expected.items()
            if url not in by_url or not verdict(tool, by_url[url], outcome)
        ),
        "",
    )
    errors = Counter(row.get("error", "").split(":", 1)[0] for row in rows if row.get("error"))
    if not os.environ.get("BENCH_KEEP"):
        out.unlink()
    return {
        **figures,
        "rows": len(rows),
        "right": len(expected) - sum(wrong.values()),
        "wrong_by_kind": dict(wrong),
        "wrong_example": example[:300],
        "errors": dict(errors),
        "queries": sum(counts.values()),
        "pairs_asked_more_than_once": sum(1 for n in counts.values() if n > 1),
        "max_queries_per_pair": max(counts.values(), default=0),
        "loadavg_1m_before": load,
    }


# -- the namespace ----------------------------------------------------------------------


@contextlib.contextmanager
def private_resolv_conf(tmp: Path) -> Iterator[Path]:
    """Our file bind-mounted over /etc/resolv.conf (in this mount namespace)."""
    path = tmp / "resolv.conf"
    path.write_text("nameserver 127.0.0.1\n")
    subprocess.run(["mount", "--bind", str(path), "/etc/resolv.conf"], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "/etc/resolv.conf"], check=False)


def inside(args: argparse.Namespace) -> dict[str, Any]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    nginx = find_nginx()
    if nginx is None:
        raise SystemExit("nginx is needed (apt-get install nginx)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-dns-"))
    results: dict[str, Any] = {"options": {}, "tools": args.tools, "rounds": args.rounds}
    urls, zone, expected = make_list()
    urls_file = tmp / "urls.txt"
    urls_file.write_text("".join(f"{u}\n" for u in urls))
    (tmp / "hosts").write_text(
        "".join(
            f"{ip} {name}\n"
            for name, answer in zone.items()
            for ip in answer.get("aaaa", []) + answer.get("a", [])
        )
    )
    zone_file = tmp / "zone.json"
    zone_file.write_text(json.dumps(zone))
    web = dns = None
    try:
        with private_resolv_conf(tmp) as resolv:
            web = start_nginx(nginx, tmp / "nginx")
            dns = DNS(zone_file)
            for options in args.options:
                text = "nameserver 127.0.0.1\n" + (f"options {options}\n" if options else "")
                resolv.write_text(text)
                label = options or "glibc defaults (timeout:5 attempts:2)"
                runs: dict[str, list[dict[str, Any]]] = {tool: [] for tool in args.tools}
                for rnd in range(args.rounds):
                    order = (
                        args.tools[rnd % len(args.tools) :] + args.tools[: rnd % len(args.tools)]
                    )
                    for tool in order:
                        run = run_tool(
                            tool,
                            tmp,
                            urls_file,
                            expected,
                            dns,
                            timeout=args.timeout,
                            extra=args.set,
                        )
                        run["round"] = rnd
                        runs[tool].append(run)
                        print(
                            f"[{label}] round {rnd} {tool}: {run['wall_s']:.2f} s, "
                            f"{run['right']}/{len(expected)} right, {run['queries']} queries",
                            file=sys.stderr,
                            flush=True,
                        )
                results["options"][label] = runs
                report(label, runs, len(expected))
    finally:
        if dns is not None:
            dns.stop()
        if web is not None:
            stop_process(web)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}", file=sys.stderr)
    return results


def report(label: str, runs: dict[str, list[dict[str, Any]]], total: int) -> None:
    print(f"\n### resolv.conf options: {label}\n")
    rows = []
    reference = [r["wall_s"] for r in runs.get("aiohttp", [])]
    for tool, tool_runs in runs.items():
        walls = [r["wall_s"] for r in tool_runs]
        ratio = "-"
        if reference and tool != "aiohttp":
            ratios = [r["wall_s"] / a for r, a in zip(tool_runs, reference, strict=False)]
            ratio = f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"
        worst = min(tool_runs, key=lambda r: r["right"])
        rows.append(
            [
                tool,
                f"{statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f})",
                ratio,
                f"{statistics.median(r['cpu_s'] for r in tool_runs):.2f}",
                f"{statistics.median(r['maxrss_mb'] for r in tool_runs):.0f}",
                f"{worst['right']}/{total}",
                ", ".join(f"{k}: {v}" for k, v in sorted(worst["wrong_by_kind"].items())) or "-",
                f"{statistics.median(r['queries'] for r in tool_runs):.0f}",
                f"{max(r['pairs_asked_more_than_once'] for r in tool_runs)}",
            ]
        )
    print_table(
        [
            "tool",
            "wall s, median (min-max)",
            "wall / aiohttp",
            "CPU s",
            "peak RSS MB",
            "rows right (worst round)",
            "wrong, by expected outcome",
            "DNS queries",
            "(name, type) asked > once",
        ],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--options", action="append", help="resolv.conf options line")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--json", help="write every figure there")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE for the project")
    parser.add_argument("--before", help="checkout of the code before (tool project-before)")
    parser.add_argument(INSIDE_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.tools = [t for t in args.tools.split(",") if t]
    for tool in args.tools:
        if tool not in TOOLS:
            parser.error(f"unknown tool {tool!r} (expected some of {', '.join(TOOLS)})")
    if args.options is None:
        args.options = list(DEFAULT_OPTIONS)
    if "project-before" in args.tools:
        if not args.before:
            parser.error("project-before needs --before DIR")
        BEFORE[0] = Path(args.before).resolve()
    if not getattr(args, INSIDE_FLAG.lstrip("-").replace("-", "_")):
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            raise SystemExit("needs root and unshare(1): the run uses its own network namespace")
        argv = [PY, str(Path(__file__).resolve()), *sys.argv[1:], INSIDE_FLAG]
        raise SystemExit(subprocess.run(["unshare", "-mn", *argv], check=False).returncode)
    results = inside(args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
