"""A DNS server on loopback for the pre-flight checks: dnslib's server over a zone in memory.

The plugin's DNS questions never leave the machine in tests: the session starts one server on a
free port and points ``PANEL_SSL_DNS_SERVER`` at it, so every order placed in any test asks it
(and hears NXDOMAIN for names nobody set). A test sets the records it needs through the
``local_dns`` fixture, which empties the zone afterwards.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from panel_ssl_plugin import preflight


class LocalDns(BaseResolver):
    """The zone: ``add`` lines in zone-file syntax; names in ``servfail`` answer SERVFAIL;
    names ending in a key of ``slow`` answer that many seconds late (a far, slow name server)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[RR]] = {}
        self.servfail: set[str] = set()
        self.slow: dict[str, float] = {}
        self.asked: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        quiet = DNSLogger("-recv,-send,-request,-reply,-truncated,-data")
        self.server = DNSServer(self, address="127.0.0.1", port=0, logger=quiet)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server.server_address[1]}"

    def add(self, *lines: str) -> None:
        with self._lock:
            for line in lines:
                for rr in RR.fromZone(line):
                    key = (str(rr.rname).lower(), QTYPE[rr.rtype])
                    self.records.setdefault(key, []).append(rr)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()
            self.servfail.clear()
            self.slow.clear()
            self.asked.clear()

    def resolve(self, request, handler):
        reply = request.reply()
        name, qtype = str(request.q.qname).lower(), QTYPE[request.q.qtype]
        late = [s for suffix, s in self.slow.items() if name.rstrip(".").endswith(suffix)]
        if late:  # each question is answered on a thread of its own (dnslib's ThreadingMixIn)
            time.sleep(max(late))
        with self._lock:
            self.asked.append((name.rstrip("."), qtype))
            if name.rstrip(".") in self.servfail:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            for _ in range(8):  # follow CNAMEs inside the zone, as a recursive resolver would
                alias = self.records.get((name, "CNAME"))
                if not alias or qtype == "CNAME":
                    break
                reply.add_answer(*alias)
                name = str(alias[0].rdata.label).lower()
            found = self.records.get((name, qtype), [])
            for rr in found:
                reply.add_answer(rr)
            if not found and not any(owner == name for owner, _ in self.records):
                reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def start(self) -> None:
        self.server.start_thread()

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(scope="session", autouse=True)
def dns_server() -> Iterator[LocalDns]:
    """The session's DNS server, the only one the plugin asks during the tests."""
    server = LocalDns()
    server.start()
    before = os.environ.get(preflight.DNS_SERVER_ENV)
    os.environ[preflight.DNS_SERVER_ENV] = server.address
    yield server
    if before is None:
        os.environ.pop(preflight.DNS_SERVER_ENV, None)
    else:
        os.environ[preflight.DNS_SERVER_ENV] = before
    server.stop()


@pytest.fixture
def local_dns(dns_server: LocalDns) -> Iterator[LocalDns]:
    """The DNS server with an empty zone for this test to fill."""
    dns_server.clear()
    yield dns_server
    dns_server.clear()
