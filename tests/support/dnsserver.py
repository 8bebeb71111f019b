"""A small DNS server for tests and benchmarks (UDP and TCP, loopback only).

:class:`DNSServer` runs its own asyncio event loop in a background thread (as
``rawserver.RawServer`` does), so it works from synchronous tests, next to the
crawler's reactor, and in a benchmark's subprocess (``python -m
tests.support.dnsserver``). The wire format is dnslib's; the server is a few
lines of asyncio because what the tests need is what no real server offers:
answers delayed per name, names that are never answered, and a count of the
queries received per (name, type)::

    zone = {"slow.test": Answer(a=("127.0.0.1",), delay=0.8),
            "dead.test": Answer(drop=True)}
    with DNSServer(zone) as dns:
        crawl(..., {"DNS_NAMESERVERS": [dns.address]})
        assert dns.queries[("slow.test", "A")] == 1

A name is looked up in the zone (a mapping, or a function returning an
:class:`Answer` or ``None``); ``None`` is NXDOMAIN with an SOA record whose
minimum is :data:`NEGATIVE_TTL`. Query types other than A and AAAA get an
empty NOERROR answer (or the name's rcode). A UDP answer larger than 512
bytes (1232 when the query carries EDNS) is sent truncated (TC), so the
client must ask again over TCP on the same port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dnslib import AAAA, QTYPE, RCODE, RR, SOA, A, DNSHeader, DNSRecord

from tests.support.loopthread import LoopThreadServer

NEGATIVE_TTL = 60
_UDP_LIMIT = 512
_EDNS_LIMIT = 1232
_RCVBUF = 4 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    """How the server answers one name.

    ``a`` / ``aaaa``: the addresses (no records of a type: NODATA for it).
    ``rcode``: ``NOERROR``, ``NXDOMAIN``, ``SERVFAIL``, ``REFUSED``...
    ``delay``: seconds before the answer is sent (the server is not blocked);
    ``aaaa_delay``: that of AAAA queries, if different.
    ``drop``: never answer. ``ttl``: of the address records. ``soa_minimum``:
    the negative TTL announced with NXDOMAIN/NODATA (``None``: no SOA).
    """

    a: tuple[str, ...] = ()
    aaaa: tuple[str, ...] = ()
    rcode: str = "NOERROR"
    delay: float = 0.0
    aaaa_delay: float | None = None
    drop: bool = False
    ttl: int = 300
    soa_minimum: int | None = NEGATIVE_TTL


Zone = Mapping[str, Answer] | Callable[[str], Answer | None]


class DNSServer(LoopThreadServer):
    """UDP and TCP on one loopback port; see the module docstring."""

    thread_name = "dns-server"

    def __init__(self, zone: Zone, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self._zone = zone
        self._host = host
        self._port = port
        self.queries: Counter[tuple[str, str]] = Counter()
        #: When (time.monotonic()) each (name, type) was first asked.
        self.first_asked: dict[tuple[str, str], float] = {}
        #: Queries that came over TCP (also in ``queries``).
        self.tcp_queries: Counter[tuple[str, str]] = Counter()
        #: The most delayed answers ever waiting to be sent at once.
        self.max_pending = 0
        self._lock = threading.Lock()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._pending: set[asyncio.TimerHandle] = set()
        # Replies in parts by (name, type); see _answer().
        self._replies: dict[tuple[str, str], tuple[bytes | None, bytes, float]] = {}
        self.port = 0

    @property
    def address(self) -> str:
        """``host:port``, as ``DNS_NAMESERVERS`` takes it."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self.port}"

    def count(self, name: str, qtype: str) -> int:
        with self._lock:
            return self.queries[(name, qtype)]

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.queries)

    def reset(self) -> None:
        with self._lock:
            self.queries.clear()
            self.first_asked.clear()
            self.tcp_queries.clear()
            self.max_pending = 0

    # -- life cycle ---------------------------------------------------------------

    async def _unbind(self) -> None:
        for handle in self._pending:
            handle.cancel()
        assert self._udp is not None
        assert self._tcp is not None
        self._udp.close()
        self._tcp.close()
        await self._tcp.wait_closed()

    async def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        # UDP on a free port, then TCP on the same one (a few tries if taken).
        for _ in range(20):
            udp, _protocol = await loop.create_datagram_endpoint(
                lambda: _UDPProtocol(self), local_addr=(self._host, self._port)
            )
            port = udp.get_extra_info("sockname")[1]
            # A burst of a few hundred queries overflows the default 208 KiB
            # (about 270 datagrams): the kernel would drop queries silently.
            sock = udp.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            try:
                self._tcp = await asyncio.start_server(self._serve_tcp, self._host, port)
            except OSError:
                udp.close()
                if self._port:
                    raise
                continue
            self._udp = udp
            self.port = port
            return
        raise OSError("no port free for both UDP and TCP")

    # -- answering ------------------------------------------------------------------

    def _lookup(self, name: str) -> Answer | None:
        zone = self._zone
        if callable(zone):
            return zone(name)
        return zone.get(name)

    def _answer(self, data: bytes, tcp: bool = False) -> tuple[bytes | None, float, int]:
        """The reply to a query (None: drop it), its delay, the size limit.

        With a zone mapping (fixed answers) the reply to a (name, type) is
        made once (all of them by :meth:`warm`), then put together with the
        query's ID and question: the benchmark's thousands of queries a
        second cost the server little of the CPU it shares with the crawler
        it serves."""
        question = _question(data)
        if question is None:
            return self._make(data, count=True, tcp=tcp)
        end, name, qtype = question
        with self._lock:
            self.queries[(name, qtype)] += 1
            self.first_asked.setdefault((name, qtype), time.monotonic())
            if tcp:
                self.tcp_queries[(name, qtype)] += 1
            made = self._replies.get((name, qtype))
        if callable(self._zone):
            return self._make(data, tcp=tcp)
        if made is None:
            made = self._prepare(name, qtype)
        head, sections, delay = made
        if head is None:
            return None, 0.0, 0
        limit = _EDNS_LIMIT if data[10:12] != b"\x00\x00" else _UDP_LIMIT
        return data[:2] + head + data[12:end] + sections, delay, limit

    def _prepare(self, name: str, qtype: str) -> tuple[bytes | None, bytes, float]:
        """The reply to (name, type) in parts: header after the ID (None:
        never answer), the sections after the question, the delay."""
        query = DNSRecord.question(name, qtype).pack()
        reply, delay, _limit = self._make(query)
        if reply is None:
            made: tuple[bytes | None, bytes, float] = (None, b"", delay)
        else:
            end = _question(query)
            assert end is not None
            made = (reply[2:12], reply[end[0] :], delay)
        with self._lock:
            self._replies[(name, qtype)] = made
        return made

    def warm(self) -> None:
        """Make every A and AAAA reply of a zone mapping now (a benchmark's
        server then spends nothing on them while it is measured)."""
        if not callable(self._zone):
            for name in self._zone:
                for qtype in ("A", "AAAA"):
                    self._prepare(name, qtype)

    def _make(
        self, data: bytes, *, count: bool = False, tcp: bool = False
    ) -> tuple[bytes | None, float, int]:
        try:
            query = DNSRecord.parse(data)
        except Exception:
            return None, 0.0, 0
        question = query.q
        name = str(question.qname).rstrip(".").lower()
        if count:
            qtype = str(QTYPE.get(question.qtype, str(question.qtype)))
            with self._lock:
                self.queries[(name, qtype)] += 1
                if tcp:
                    self.tcp_queries[(name, qtype)] += 1
        answer = self._lookup(name)
        reply = query.reply()
        limit = _EDNS_LIMIT if query.ar else _UDP_LIMIT
        if answer is None:
            reply.header.rcode = RCODE.NXDOMAIN
            _add_soa(reply, name, NEGATIVE_TTL)
            return reply.pack(), 0.0, limit
        if answer.drop:
            return None, 0.0, 0
        reply.header.rcode = getattr(RCODE, answer.rcode)
        if answer.rcode == "NOERROR":
            records: tuple[str, ...] = ()
            if question.qtype == QTYPE.A:
                records = answer.a
                for ip in records:
                    reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(ip), ttl=answer.ttl))
            elif question.qtype == QTYPE.AAAA:
                records = answer.aaaa
                for ip in records:
                    reply.add_answer(RR(question.qname, QTYPE.AAAA, rdata=AAAA(ip), ttl=answer.ttl))
            if not records and answer.soa_minimum is not None:
                _add_soa(reply, name, answer.soa_minimum)
        elif answer.rcode == "NXDOMAIN" and answer.soa_minimum is not None:
            _add_soa(reply, name, answer.soa_minimum)
        delay = answer.delay
        if question.qtype == QTYPE.AAAA and answer.aaaa_delay is not None:
            delay = answer.aaaa_delay
        return reply.pack(), delay, limit

    def _later(self, delay: float, send: Callable[[], None]) -> None:
        if delay <= 0:
            send()
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            assert handle is not None
            self._pending.discard(handle)
            send()

        handle = loop.call_later(delay, fire)
        self._pending.add(handle)
        with self._lock:
            self.max_pending = max(self.max_pending, len(self._pending))

    def datagram(self, data: bytes, addr: Any) -> None:
        reply, delay, limit = self._answer(data)
        if reply is None:
            return
        if len(reply) > limit:
            # The question stays (dnslib's truncate() drops it too, which
            # resolvers reject as a mismatched answer).
            record = DNSRecord.parse(reply)
            truncated = DNSRecord(
                DNSHeader(id=record.header.id, qr=1, aa=1, ra=1, tc=1), q=record.q
            )
            reply = truncated.pack()
        udp = self._udp

        def send() -> None:
            if udp is not None and not udp.is_closing():
                udp.sendto(reply, addr)

        self._later(delay, send)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                data = await reader.readexactly(size)
                reply, delay, _limit = self._answer(data, tcp=True)
                if reply is None:
                    continue
                if delay > 0:
                    await asyncio.sleep(delay)
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UDPProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.server.datagram(data, addr)


_QTYPES = {1: "A", 28: "AAAA", 6: "SOA", 5: "CNAME"}


def _question(data: bytes) -> tuple[int, str, str] | None:
    """(end of the question, lower-case name, type) of a one-question
    query, read straight from the bytes; None if it is anything else."""
    if len(data) < 17 or data[4:6] != b"\x00\x01":
        return None
    labels = []
    i = 12
    while True:
        size = data[i]
        if size == 0:
            i += 1
            break
        if size & 0xC0 or i + 1 + size >= len(data):
            return None
        labels.append(data[i + 1 : i + 1 + size])
        i += 1 + size
    if i + 4 > len(data):
        return None
    qtype = int.from_bytes(data[i : i + 2], "big")
    name = b".".join(labels).decode("ascii", "replace").lower()
    return i + 4, name, _QTYPES.get(qtype, str(qtype))


def _add_soa(reply: DNSRecord, name: str, minimum: int) -> None:
    zone = name.split(".", 1)[-1] if "." in name else name
    reply.add_auth(
        RR(
            zone,
            QTYPE.SOA,
            rdata=SOA("ns.test", "hostmaster.test", (1, 3600, 600, 86400, minimum)),
            ttl=minimum,
        )
    )


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.support.dnsserver --zone zone.json``: serve a zone
    (``{"name": {Answer fields}}``; other names NXDOMAIN) until stdin closes.
    Prints ``host:port``; each ``counts`` line on stdin prints the query
    counts since the previous one as JSON (``[[name, type, n], ...]``)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--zone", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with open(args.zone, encoding="utf-8") as file:
        raw: dict[str, dict[str, Any]] = json.load(file)
    zone = {
        name: Answer(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        for name, fields in raw.items()
    }
    with DNSServer(zone, args.host, args.port) as server:
        server.warm()
        print(server.address, flush=True)
        for line in sys.stdin:
            if line.strip() == "counts":
                counts = server.snapshot()
                server.reset()
                rows = [[name, qtype, n] for (name, qtype), n in counts.items()]
                print(json.dumps(rows), flush=True)


if __name__ == "__main__":
    main()
