"""Run Scrapy's download-handler test suite against this project's handlers.

    .venv/bin/pip install -e '.[test,conformance]'
    .venv/bin/python tests/conformance/run.py              # everything
    .venv/bin/python tests/conformance/run.py -k TestFast  # extra pytest arguments

For the installed Scrapy version it downloads Scrapy's sdist once (``pip
download``, into ``~/.cache/scraper_project/conformance/`` or ``$SCRAPER_CONFORMANCE_CACHE``),
extracts its ``tests/`` (mockserver, base classes, conftest), copies
``scrapy_handlers.py`` and ``plugin.py`` beside them and runs pytest there,
on loopback only (``requires_internet`` deselected, names other than
localhost never resolved). mitmproxy, for the proxy tests, is installed in a
venv of its own in the same cache unless ``$MITMDUMP`` or ``mitmdump`` on
PATH gives one (Scrapy's tests look there). With everything cached it runs
offline; ``--offline`` forbids downloading. Exit status: pytest's, failing
also when a skip is not a declared difference or a handler ran fewer than
``--min-tests`` tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import venv
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
MITMPROXY = "mitmproxy>=11,<13"
# What the extracted tree needs from the sdist: the tests, the root conftest
# (mockserver fixtures, markers) and pyproject.toml (pytest's options).
MEMBERS = ("tests/", "conftest.py", "pyproject.toml")


def _run(command: list[str], **kwargs: object) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def sdist_tree(cache: Path, scrapy_version: str, *, offline: bool) -> Path:
    """The extracted sdist of ``scrapy_version`` (downloaded if needed)."""
    tree = cache / f"scrapy-{scrapy_version}"
    if (tree / ".extracted").exists():
        return tree
    archive = cache / f"scrapy-{scrapy_version}.tar.gz"
    if not archive.exists():
        if offline:
            sys.exit(f"conformance: {archive} is missing and --offline forbids downloading it")
        _run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", f"scrapy=={scrapy_version}", "--dest", str(cache)]
        )  # fmt: skip
        found = [path for path in cache.iterdir() if path.name.lower() == archive.name]
        if not found:
            sys.exit(f"conformance: pip download left no {archive.name} in {cache}")
        found[0].rename(archive)
    prefix = f"scrapy-{scrapy_version}/"
    shutil.rmtree(tree, ignore_errors=True)
    with tarfile.open(archive) as tar:
        members = [
            member
            for member in tar.getmembers()
            if member.name.startswith(prefix) and member.name[len(prefix) :].startswith(MEMBERS)
        ]
        # The "data" filter (no absolute paths, links out of the tree, ...)
        # where this Python has it (3.11.4+).
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(cache, members=members, **safe)  # type: ignore[arg-type]
    (tree / ".extracted").touch()
    return tree


def mitmdump(cache: Path, *, offline: bool) -> str | None:
    """A mitmdump command: $MITMDUMP, one on PATH, or one in the cache's venv."""
    found = os.environ.get("MITMDUMP") or shutil.which("mitmdump")
    if found:
        return found
    env = cache / "mitmproxy"
    binary = env / "bin" / "mitmdump"
    if not binary.exists() and not offline:
        # Not in the project's venv: its dependencies pin versions that
        # conflict with Scrapy's test dependencies (Scrapy says the same).
        venv.create(env, with_pip=True, clear=True)
        _run([str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", MITMPROXY])
    return str(binary) if binary.exists() else None


def _default_cache() -> Path:
    # Outside the repository: ruff and git must not see Scrapy's files.
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "scraper_project" / "conformance"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("SCRAPER_CONFORMANCE_CACHE", _default_cache())),
        help="where the sdist and the mitmproxy venv are kept",
    )
    parser.add_argument("--offline", action="store_true", help="download nothing")
    parser.add_argument(
        "--min-tests", type=int, default=250, help="tests each handler must run (default 250)"
    )
    options, pytest_args = parser.parse_known_args(argv)
    cache = options.cache.resolve()
    cache.mkdir(parents=True, exist_ok=True)
    scrapy_version = version("scrapy")
    tree = sdist_tree(cache, scrapy_version, offline=options.offline)
    shutil.copyfile(
        HERE / "scrapy_handlers.py", tree / "tests" / "test_scraper_project_handlers.py"
    )
    shutil.copyfile(HERE / "plugin.py", tree / "scraper_conformance.py")
    shutil.copyfile(HERE / "offline_dns.py", tree / "scraper_conformance_dns.py")
    # Every Python process of the run (PYTHONPATH=tree) imports it first: no
    # name is ever sent to a nameserver, subprocesses included.
    (tree / "sitecustomize.py").write_text("import scraper_conformance_dns  # noqa: F401\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    dump = mitmdump(cache, offline=options.offline)
    if dump is not None:
        env["MITMDUMP"] = dump
    import pytest

    command = [
        sys.executable, "-m", "pytest", "tests/test_scraper_project_handlers.py",
        "-p", "scraper_conformance", "-p", "no:cacheprovider",
        "-m", "not requires_internet", "--conformance-min", str(options.min_tests),
        "-rfEs", "--timeout", "120",
    ]  # fmt: skip
    if hasattr(pytest, "PytestRemovedIn10Warning"):
        # Scrapy 2.19's proxy_mockserver fixture is an instance method, which
        # pytest 9 deprecates; its filterwarnings = error makes that an error.
        command += ["-W", "ignore::pytest.PytestRemovedIn10Warning"]
    print(f"conformance: Scrapy {scrapy_version}'s suite in {tree}, mitmdump: {dump}", flush=True)
    return subprocess.run([*command, *pytest_args], cwd=tree, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
