import asyncio
import io
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from scraper_project.inputs import InputError, LineReader, check_source, iter_lines

LINES = [
    # (raw bytes, expected [(line, text)])
    (b"http://a/\nhttp://b/\n", [(1, "http://a/"), (2, "http://b/")]),
    (b"\xef\xbb\xbfhttp://a/\r\nhttp://b/\r\n", [(1, "http://a/"), (2, "http://b/")]),
    (
        b"\n\n  http://a/  \n# comment\n   # indented comment\n\thttp://b/\t",
        [(3, "http://a/"), (6, "http://b/")],
    ),
    (b'"http://a/"\n', [(1, "http://a/")]),
    (b'"#quoted comment"\n"  "\n', []),
    (b"http://a/caf\xe9\nhttp://b/\n", [(1, "http://a/caf\udce9"), (2, "http://b/")]),
    (b"\xff\xfehttp://a/\n", [(1, "\udcff\udcfehttp://a/")]),
    (b"", []),
    (b"http://no-newline/", [(1, "http://no-newline/")]),
]


@pytest.mark.parametrize(("raw", "expected"), LINES)
def test_iter_lines(raw: bytes, expected: list[tuple[int, str]]) -> None:
    assert list(iter_lines(io.BytesIO(raw))) == expected


def test_bom_only_stripped_on_first_line() -> None:
    raw = b"http://a/\n\xef\xbb\xbfhttp://b/\n"
    assert list(iter_lines(io.BytesIO(raw)))[1] == (2, "\ufeffhttp://b/")


async def _collect(reader: LineReader) -> list[list[tuple[int, str]]]:
    async def run() -> list[list[tuple[int, str]]]:
        return [batch async for batch in reader.batches()]

    # The asyncio reactor's loop is running: drive the coroutine as an
    # asyncio task (the reader uses run_in_executor).
    return await Deferred.fromFuture(asyncio.ensure_future(run()))


@pytest_twisted.ensureDeferred
async def test_reader_batches_file(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_text("".join(f"http://h/{i}\n" for i in range(25)))
    batches = await _collect(LineReader(str(path), batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert batches[2][-1] == (25, "http://h/24")


@pytest_twisted.ensureDeferred
async def test_reader_stdin() -> None:
    stream = io.BytesIO(b"http://a/\n\nhttp://b/\n")
    batches = await _collect(LineReader("-", stdin=stream))
    assert batches == [[(1, "http://a/"), (3, "http://b/")]]


@pytest_twisted.ensureDeferred
async def test_reader_missing_file_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        await _collect(LineReader(str(tmp_path / "nope.txt")))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no URL list given"),
        ("/definitely/not/here.txt", "URL list not found"),
        (".", "directory"),
    ],
)
def test_check_source(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_source(spec)


@pytest.mark.parametrize("spec", ["-", "http://127.0.0.1:1/list.txt", "https://x/list"])
def test_check_source_accepts_stdin_and_urls(spec: str) -> None:
    check_source(spec)
