"""The fault proxy makes each failure for real, and the plugin's HTTP layer reads it right.

The no-double-order tests trust that ``FaultProxy.fail_next("reset_after")`` is a reset after
the provider did the work, and so on; these tests hold it to that, through the same
``http.call`` and session the adapters use, against a tiny upstream that counts what reached it.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from panel_ssl_plugin.providers.base import ProviderOutcomeUnknown, ProviderUnavailable
from panel_ssl_plugin.providers.http import call, json_body, make_session
from tests.providers.faults import Exchange, FaultProxy, Headers
from tests.providers.pebble_server import _listener_certificate

TIMEOUT = (0.3, 0.5)  # connect, read: short, so every held fault outlasts it
HELD = 1.0
ORDER = {"order_id": "1001", "status": "processing"}
ORDER_BODY = json.dumps(ORDER).encode()
AFTER_SEND = ["timeout_after", "reset_after", "502", "503", "504"]

MakeProxy = Callable[..., FaultProxy]


class Upstream(ThreadingHTTPServer):
    """The provider stand-in: answers every request with :data:`ORDER` and keeps the Host
    header of each, so a test sees how many requests reached it and how they were addressed."""

    daemon_threads = True

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        self.hosts: list[str] = []
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.socket = context.wrap_socket(self.socket, server_side=True)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Upstream

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ORDER_BODY)))
        self.end_headers()
        self.wfile.write(ORDER_BODY)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: access logs would drown the test output."""


@contextmanager
def serving(upstream: Upstream) -> Iterator[Upstream]:
    thread = threading.Thread(target=upstream.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        upstream.shutdown()
        upstream.server_close()
        thread.join()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with serving(Upstream()) as server:
        yield server


@pytest.fixture
def proxy(fault_proxy: MakeProxy, upstream: Upstream) -> FaultProxy:
    return fault_proxy(upstream.url)


def place(
    proxy: FaultProxy,
    *,
    creates: bool,
    method: str = "POST",
    path: str = "/api/orders",
    timeout: tuple[float, float] = TIMEOUT,
) -> requests.Response:
    """One provider call through the plugin's HTTP layer, as an adapter makes it."""
    return call(
        make_session(),
        method,
        proxy.url + path,
        provider="Sim",
        creates=creates,
        timeout=timeout,
        data={"product_id": "71"},
    )


# --- before the upstream: safe to send again ------------------------------------------------


def test_a_connect_timeout_never_reaches_the_upstream(proxy: FaultProxy, upstream: Upstream):
    proxy.fail_next("timeout_before", hold=1.5)
    with pytest.raises(ProviderUnavailable) as raised:
        place(proxy, creates=True)  # three connects (urllib3 retries two), all inside the hold
    assert isinstance(raised.value.__cause__, requests.ConnectTimeout)
    assert upstream.hosts == []
    assert proxy.fired == ["timeout_before"]
    # A patient client's SYN, sent again by the kernel after a second, gets in once it drains.
    assert place(proxy, creates=True, timeout=(5.0, 0.5)).json() == ORDER
    assert len(upstream.hosts) == 1


def test_a_429_is_turned_away_before_the_upstream(proxy: FaultProxy, upstream: Upstream):
    proxy.fail_next("429")
    with pytest.raises(ProviderUnavailable) as raised:
        place(proxy, creates=True)
    assert raised.value.retry_after == 1
    assert upstream.hosts == []
    assert proxy.forwarded == []
    assert proxy.fired == ["429"]


# --- after the upstream did the work ------------------------------------------------------


@pytest.mark.parametrize(
    ("creates", "error"), [(True, ProviderOutcomeUnknown), (False, ProviderUnavailable)]
)
@pytest.mark.parametrize("kind", AFTER_SEND)
def test_a_lost_reply_after_the_work_is_classified(
    proxy: FaultProxy, upstream: Upstream, kind: str, creates: bool, error: type[Exception]
):
    proxy.fail_next(kind, "POST", "/api/orders", hold=HELD)
    with pytest.raises(error):
        place(proxy, creates=creates)
    assert len(upstream.hosts) == 1
    # What the upstream answered is on record although the client never got it.
    assert proxy.forwarded == [Exchange("POST", "/api/orders", 200, ORDER_BODY)]
    assert proxy.fired == [kind]


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("timeout_after", requests.ReadTimeout, "Read timed out"),
        ("reset_after", requests.ConnectionError, "Connection reset by peer"),
    ],
)
def test_a_lost_reply_is_what_the_wire_would_do(
    proxy: FaultProxy, kind: str, error: type[Exception], message: str
):
    proxy.fail_next(kind, hold=HELD)
    with pytest.raises(error, match=message):
        requests.post(proxy.url + "/api/orders", timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("status", "phrase"),
    [(502, "Bad Gateway"), (503, "Service Unavailable"), (504, "Gateway Timeout")],
)
def test_a_gateway_error_is_a_small_html_page(proxy: FaultProxy, status: int, phrase: str):
    proxy.fail_next(str(status))
    response = requests.post(proxy.url + "/api/orders", timeout=TIMEOUT)
    assert response.status_code == status
    assert response.text == f"<html><body>{status} {phrase}</body></html>"


def test_garbage_after_a_create_is_an_unknown_outcome(proxy: FaultProxy, upstream: Upstream):
    proxy.fail_next("garbage")
    response = place(proxy, creates=True)
    assert response.status_code == 200
    assert parse_qsl(response.text) == []  # not a key=value reply either
    with pytest.raises(ProviderOutcomeUnknown):
        json_body(response, "Sim", creates=True)
    assert len(upstream.hosts) == 1


def test_no_id_passes_the_reply_through_the_transform(proxy: FaultProxy):
    def drop_order_id(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        reply = json.loads(body)
        del reply["order_id"]
        return 202, {**headers, "X-Rewritten": "yes"}, json.dumps(reply).encode()

    proxy.fail_next("no_id", "POST", transform=drop_order_id)
    response = place(proxy, creates=True)
    assert response.status_code == 202
    assert response.json() == {"status": "processing"}  # a recomputed Content-Length
    assert response.headers["X-Rewritten"] == "yes"
    assert response.headers["Connection"] == "close"
    assert proxy.forwarded[0].body == ORDER_BODY


# --- which request, and how often -----------------------------------------------------------


def test_a_fault_fires_once_on_the_first_matching_request(proxy: FaultProxy):
    proxy.fail_next("503", "POST", "/api/orders")
    assert place(proxy, creates=True, method="GET").json() == ORDER
    assert place(proxy, creates=True, path="/api/status").json() == ORDER
    with pytest.raises(ProviderOutcomeUnknown):
        place(proxy, creates=True, path="/api/orders?page=2")
    assert place(proxy, creates=True).json() == ORDER
    assert [exchange.path for exchange in proxy.forwarded] == [
        "/api/orders",
        "/api/status",
        "/api/orders?page=2",
        "/api/orders",
    ]
    assert proxy.fired == ["503"]


@pytest.mark.parametrize(
    ("kind", "transform"),
    [("slow", None), ("no_id", None), ("502", lambda *reply: reply)],
    ids=["unknown", "no_id-without-transform", "transform-without-no_id"],
)
def test_fail_next_refuses_what_it_cannot_do(
    proxy: FaultProxy, kind: str, transform: Callable | None
):
    with pytest.raises(ValueError):
        proxy.fail_next(kind, transform=transform)


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture
def identity(tmp_path: Path) -> tuple[str, tuple[str, str]]:
    """A CA file and a (cert, key) pair for localhost and 127.0.0.1, as Pebble's listener has."""
    ca, cert, key = _listener_certificate(tmp_path)
    return str(ca), (str(cert), str(key))


@pytest.mark.parametrize("pin_ca", [True, False], ids=["upstream-ca", "upstream-unverified"])
def test_tls_on_both_sides_keeps_the_clients_host(
    fault_proxy: MakeProxy, identity: tuple[str, tuple[str, str]], pin_ca: bool
):
    ca, pair = identity
    with serving(Upstream(tls=pair)) as upstream:
        proxy = fault_proxy(upstream.url, tls=pair, upstream_verify=ca if pin_ca else False)
        response = requests.post(proxy.url + "/api/orders", verify=ca, timeout=TIMEOUT)
    assert proxy.url.startswith("https://")
    assert response.json() == ORDER
    assert upstream.hosts == [urlsplit(proxy.url).netloc]


def test_an_upstream_the_proxy_cannot_verify_is_a_bad_gateway(
    fault_proxy: MakeProxy, identity: tuple[str, tuple[str, str]]
):
    _, pair = identity
    with serving(Upstream(tls=pair)) as upstream:
        proxy = fault_proxy(upstream.url, upstream_verify=True)  # the system's store
        response = requests.post(proxy.url + "/api/orders", timeout=TIMEOUT)
    assert response.status_code == 502
    assert upstream.hosts == []
    assert proxy.forwarded == []


# --- shutdown ---------------------------------------------------------------------------------


def test_stop_wakes_a_held_reply(upstream: Upstream):
    proxy = FaultProxy(upstream.url)
    proxy.start()
    proxy.fail_next("timeout_after", hold=30)
    stopper = threading.Timer(0.3, proxy.stop)
    stopper.start()
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        requests.post(proxy.url + "/api/orders", timeout=5)
    assert time.monotonic() - started < 2
    stopper.join()


def test_stop_ends_a_connect_hold_at_once(upstream: Upstream):
    proxy = FaultProxy(upstream.url)
    proxy.start()
    proxy.fail_next("timeout_before", hold=30)
    with pytest.raises(RuntimeError, match="held already"):
        proxy.fail_next("timeout_before")
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 1
