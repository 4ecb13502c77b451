"""Issue 19, finding 1: the HTTP pre-flight probe as a way into the panel's own network (SSRF).

A reseller's name whose A record is 127.0.0.1, 10.x or 169.254.169.254 made the server fetch
``/.well-known/…`` there and report the status code. Now every connection to an address user
input chose goes through ``outbound``: public addresses only (unless the admin's allow-list names
them), the address checked is the address connected to, no redirect, little read, one deadline;
and the probe file is removed after the probe. No test here sends a packet anywhere but
loopback: the address classes are judged without connecting, and a connection attempt to any of
them would fail the test before it left (``no_connections``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from panel_ssl_plugin import outbound
from panel_ssl_plugin.outbound import Outbound, Refused, Target, Unreachable, non_public
from panel_ssl_plugin.preflight import Level, Plan, Preflight

SANDBOX = ("sandbox.panel-ssl.test",)
LOOPBACK_ONLY = Outbound(outbound.parse_allow("127.0.0.0/8"))

# Every kind of address the plugin must not connect to, with the word the refusal uses.
NON_PUBLIC = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local",  # the cloud's metadata service
    "100.64.0.1": "shared (CGNAT)",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "0.0.0.0": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",  # broadcast
    "192.0.0.8": "private",  # IETF protocol assignments
    "192.0.2.1": "private",  # documentation (TEST-NET-1)
    "198.18.0.1": "private",  # benchmarking
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "private",  # unique local
    "fd12:3456::1": "private",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "::ffff:127.0.0.1": "loopback (as IPv6)",
    "::ffff:10.0.0.1": "private (as IPv6)",
    "::ffff:169.254.169.254": "link-local (as IPv6)",
    "2002:7f00:1::": "loopback (as IPv6)",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1": "link-local (as IPv6)",  # 6to4 of 169.254.169.254
    "64:ff9b::7f00:1": "loopback (as IPv6)",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1": "private (as IPv6)",
    "64:ff9b:1::a00:1": "local NAT64",
    "::127.0.0.1": "reserved",  # IPv4-compatible, deprecated
    "2001:db8::1": "private",  # documentation
    "2001::1": "private",  # Teredo
    "100::1": "reserved",  # discard-only
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1",
          "64:ff9b::808:808"]  # fmt: skip


@pytest.mark.parametrize(("address", "kind"), NON_PUBLIC.items())
def test_every_non_public_class_is_named(address, kind):
    assert non_public(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address):
    assert non_public(ipaddress.ip_address(address)) is None


@pytest.fixture
def no_connections(monkeypatch):
    """Any connection attempt fails the test before a packet leaves."""
    attempts: list[tuple] = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"connected to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize("address", list(NON_PUBLIC))
def test_no_connection_is_tried_to_a_non_public_address(address, no_connections):
    rule = Outbound()
    with pytest.raises(Refused, match="public addresses only"):
        rule.target("shop.example", [address], 80)
    with pytest.raises(Refused):  # a Target made by hand is checked again at connect
        rule.connect(Target("shop.example", ipaddress.ip_address(address), 80), _soon())
    assert no_connections == []


def test_the_first_allowed_address_is_the_one_used():
    rule = Outbound()
    target = rule.target("shop.example", ["10.0.0.1", "8.8.8.8"], 80)
    assert target.address == ipaddress.ip_address("8.8.8.8")
    mapped = rule.target("shop.example", ["::ffff:8.8.8.8"], 443)
    assert mapped.address == ipaddress.ip_address("8.8.8.8")  # connected to as IPv4


def test_the_allow_list_names_networks():
    rule = Outbound(outbound.parse_allow(" 10.0.5.0/24, 192.168.1.7 ,fd00::/8"))
    for allowed in ("10.0.5.9", "192.168.1.7", "fd00::1"):
        assert rule.target("site", [allowed], 80).address == ipaddress.ip_address(allowed)
    for refused in ("10.0.6.1", "192.168.1.8", "127.0.0.1"):
        with pytest.raises(Refused):
            rule.target("site", [refused], 80)
    with pytest.raises(ValueError, match="PANEL_SSL_OUTBOUND_ALLOW: 'intranet'"):
        outbound.parse_allow("10.0.0.0/8, intranet")


def _soon(seconds: float = 2.0) -> float:
    return time.monotonic() + seconds


# --- the probe, against a web host on loopback ----------------------------------------------------


class WebHost(ThreadingHTTPServer):
    """A web host on loopback serving what the panel published for it; it counts requests."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Files)
        self.files: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []  # (Host, path)
        self.answer: tuple[int, dict[str, str], bytes] | None = None  # instead of the files
        self.published: list[tuple[str, str]] = []
        self.unpublished: list[tuple[str, str]] = []

    @property
    def port(self) -> int:
        return self.server_address[1]

    def publish(self, domain: str, path: str, content: str) -> bool:
        self.published.append((domain, path))
        self.files[f"{domain}/{path}"] = content
        return True

    def unpublish(self, domain: str, path: str) -> bool:
        self.unpublished.append((domain, path))
        self.files.pop(f"{domain}/{path}", None)
        return True


class _Files(BaseHTTPRequestHandler):
    server: WebHost

    def do_GET(self) -> None:
        self.server.requests.append((self.headers["Host"], self.path))
        if self.server.answer is not None:
            status, headers, body = self.server.answer
        else:
            content = self.server.files.get(f"{self.headers['Host']}{self.path}")
            status, headers, body = (200 if content else 404), {}, (content or "").encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(ConnectionError):  # the probe stopped reading: it reads little
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_host():
    host = WebHost()
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    yield host
    host.shutdown()
    host.server_close()
    thread.join()


def probe(checks: Preflight, name: str, web_host: WebHost):
    plan = Plan(
        (name,), "Sandbox", SANDBOX, "http", publish=web_host.publish,
        unpublish=web_host.unpublish,
    )  # fmt: skip
    return next(f for f in checks.check(plan) if f.check == "http")


def test_the_probe_never_reaches_a_loopback_address(local_dns, web_host):
    """The reported attack: a name pointing at the panel's own machine."""
    local_dns.add("inside.example. 60 A 127.0.0.1")
    checks = Preflight(local_dns.address, probe_port=web_host.port)
    finding = probe(checks, "inside.example", web_host)
    assert finding.level == Level.WARNING
    assert "127.0.0.1, a loopback address" in finding.message
    assert web_host.requests == []  # never fetched
    assert web_host.published == []  # nor published for


def test_the_probe_of_an_internal_address_says_nothing_of_what_is_there(local_dns, no_connections):
    """10.x, the metadata service, CGNAT: the same sentence whatever listens there, no
    connection tried."""
    for number, address in enumerate(("10.0.0.1", "169.254.169.254", "100.64.0.1")):
        local_dns.add(f"n{number}.example. 60 A {address}")
    checks = Preflight(local_dns.address, probe_port=80)
    for number in range(3):
        plan = Plan((f"n{number}.example",), "Sandbox", SANDBOX, "http")
        (finding,) = [f for f in checks.check(plan) if f.check == "http"]
        assert "the panel connects to public addresses only" in finding.message
        assert "answered" not in finding.message and "did not answer" not in finding.message
    assert no_connections == []


def test_an_ipv6_only_name_is_judged_by_its_aaaa_record(local_dns, no_connections):
    local_dns.add("six.example. 60 AAAA ::1")
    checks = Preflight(local_dns.address, probe_port=80)
    plan = Plan(("six.example",), "Sandbox", SANDBOX, "http")
    (finding,) = [f for f in checks.check(plan) if f.check == "http"]
    assert "::1, a loopback address" in finding.message
    assert no_connections == []


def test_an_allowed_network_is_probed_and_the_file_removed_after(local_dns, web_host, monkeypatch):
    """The admin's allow-list (the tests' loopback web host); the probe file is published, read
    back from the address DNS gave, and unpublished: nothing is left behind."""
    monkeypatch.setenv(outbound.ALLOW_ENV, "127.0.0.0/8")
    local_dns.add("shop.example. 60 A 127.0.0.1")
    checks = Preflight.from_environment()
    checks.probe_port = web_host.port
    checks.server = local_dns.address
    finding = probe(checks, "shop.example", web_host)
    assert finding.level == Level.OK, finding
    ((host, path),) = web_host.requests
    assert host == "shop.example" and path.startswith("/.well-known/pki-validation/panel-ssl-")
    assert web_host.unpublished == web_host.published and len(web_host.published) == 1
    assert web_host.files == {}


def test_the_probe_follows_no_redirect_and_reads_little(local_dns, web_host):
    local_dns.add("moved.example. 60 A 127.0.0.1", "big.example. 60 A 127.0.0.1")
    checks = Preflight(local_dns.address, probe_port=web_host.port, outbound=LOOPBACK_ONLY)
    web_host.answer = (302, {"Location": f"http://127.0.0.1:{web_host.port}/else"}, b"")
    moved = probe(checks, "moved.example", web_host)
    assert "answered 302" in moved.message
    assert len(web_host.requests) == 1  # the redirect was not followed
    web_host.answer = (200, {}, b"x" * 5_000_000)
    big = probe(checks, "big.example", web_host)
    assert big.level == Level.WARNING and "answered 200 instead of the file" in big.message


def test_the_connection_goes_to_the_address_checked(local_dns, web_host, monkeypatch):
    """No second resolution: what is connected to is the number DNS gave, never the name."""
    local_dns.add("shop.example. 60 A 127.0.0.1")
    connected: list[tuple] = []
    real = socket.create_connection

    def record(address, *args, **kwargs):
        connected.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", record)
    checks = Preflight(local_dns.address, probe_port=web_host.port, outbound=LOOPBACK_ONLY)
    assert probe(checks, "shop.example", web_host).level == Level.OK
    assert connected == [("127.0.0.1", web_host.port)]


def test_a_server_that_drips_is_given_up_at_the_deadline():
    """One byte at a time, slower than any per-read timeout would notice: the whole exchange
    has one deadline, so the probe ends with a sentence, not a hang."""
    stop = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def drip() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(1024)
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                    if stop.wait(0.05):
                        return
                    conn.sendall(bytes([byte]))

        thread = threading.Thread(target=drip, daemon=True)
        thread.start()
        target = LOOPBACK_ONLY.target("slow.example", ["127.0.0.1"], listener.getsockname()[1])
        with pytest.raises(Unreachable, match="in time"):
            LOOPBACK_ONLY.http_get(target, "/x", time.monotonic() + 0.5)
        stop.set()
        thread.join()
