"""A reverse proxy that loses one chosen reply in one chosen way, for the no-double-order tests.

A provider adapter must never place a paid order twice when a reply goes missing, and
``panel_ssl_plugin.providers.http`` decides that from how a call failed: "never reached the
provider" (safe to send again) against "may have been carried out" (look it up first). Those
failures happen in the kernel and on the wire, not in Python, so :class:`FaultProxy` makes them
for real between an adapter and a simulator (or Pebble) instead of mocking exceptions:

- ``timeout_before``: the listening socket's accept queue is filled with idle connections, so
  the kernel drops new SYNs and clients get a genuine connect timeout (urllib3's connect retries
  included) for ``hold`` seconds. It starts when :meth:`FaultProxy.fail_next` is called, ignores
  ``method`` and ``path`` (a SYN carries neither) and is recorded in ``fired`` at that moment.
  A second one while connects are held is refused;
- ``429``: turned away before the upstream sees anything, with ``Retry-After: 1``;
- ``timeout_after``: forwarded, then no reply for ``hold`` seconds and a plain close;
- ``reset_after``: forwarded, then the client's connection is reset (RST, no reply);
- ``502``, ``503``, ``504``: forwarded, then a gateway's HTML error page instead of the reply;
- ``garbage``: forwarded, then 200 with an HTML page that is neither JSON nor form encoding;
- ``no_id``: forwarded, then the reply passed through the test's ``transform``.

A test may also stand in for the upstream on some requests or change its replies: the
``intercept`` hook sees each request (method, path, body) with a function that forwards it, and
returns the reply to send (tests/providers/ari_responder.py adds to Pebble what it lacks this
way). Faults apply to what it returns.

Every answer carries ``Connection: close``, so each request opens its own connection and a
connect-level fault always meets a fresh connect. The client's ``Host`` header is forwarded as
is: Pebble builds every URL it returns from it, so an ACME client keeps going through the proxy.
Request bodies must come with a Content-Length (``requests`` always sends one). In front of
Pebble, serve the fixture's own listener identity: ``cert.pem`` and ``key.pem`` lie beside
``pebble.ca_bundle``, and ``upstream_verify=pebble.ca_bundle``.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

Headers = dict[str, str]
Transform = Callable[[int, Headers, bytes], tuple[int, Headers, bytes]]

KINDS = (
    "timeout_before",
    "429",
    "timeout_after",
    "reset_after",
    "502",
    "503",
    "504",
    "garbage",
    "no_id",
)
BACKLOG = 64
POLL_SECONDS = 0.02  # how long the accept loop may take to notice a pause or a stop
FILL_PROBE_SECONDS = 0.1  # a filler connect that takes this long means the queue is full
MAX_FILLERS = 64
IDLE_SECONDS = 10.0  # a client connection that sends nothing for this long is dropped
UPSTREAM_SECONDS = 30.0
# Headers about one connection, not the message; Content-Length is recomputed on the way out.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"}
)


@dataclass(frozen=True)
class Exchange:
    """A request the upstream answered, with its reply as the upstream sent it."""

    method: str
    path: str
    status: int
    body: bytes


@dataclass(frozen=True)
class Reply:
    """An answer as it goes to the client (the upstream's, a canned one or a transformed one)."""

    status: int
    headers: Headers
    body: bytes


def _html(status: int, text: str) -> Reply:
    page = f"<html><body>{text}</body></html>"
    return Reply(status, {"Content-Type": "text/html"}, page.encode())


def _gateway_error(status: int) -> Reply:
    return _html(status, f"{status} {HTTPStatus(status).phrase}")


CANNED: dict[str, Reply] = {
    "429": Reply(429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"Slow down.\n"),
    "502": _gateway_error(502),
    "503": _gateway_error(503),
    "504": _gateway_error(504),
    # No "=" and no "{": a form parser finds no pairs, a JSON parser fails at the first byte.
    "garbage": _html(200, "<h1>Under maintenance</h1><p>Back soon.</p>"),
}


@dataclass(frozen=True)
class _Fault:
    """One queued fault, waiting for the first request it matches."""

    kind: str
    method: str
    path: str
    hold: float
    transform: Transform | None

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("", method) and path.startswith(self.path)

    def answer(self, reply: Reply) -> Reply:
        """What the client gets instead of the upstream's ``reply``."""
        if self.transform is not None:
            return Reply(*self.transform(reply.status, dict(reply.headers), reply.body))
        return CANNED[self.kind]


Intercept = Callable[[str, str, bytes, Callable[[], Reply]], Reply]


class FaultProxy:
    """Forwards every request to ``upstream`` (an origin; a path there is ignored, the client's
    own path is sent) and applies the faults queued with :meth:`fail_next`.

    ``tls`` is a (certfile, keyfile) pair to serve HTTPS with; ``upstream_verify`` is a CA file,
    True for the system's store or False, for an https upstream. ``intercept(method, path,
    body, forward)`` answers a request in the upstream's stead (the module docstring).
    """

    def __init__(
        self,
        upstream: str,
        *,
        tls: tuple[str, str] | None = None,
        upstream_verify: str | bool = True,
        intercept: Intercept | None = None,
    ) -> None:
        self.forwarded: list[Exchange] = []
        self._intercept = intercept
        self.fired: list[str] = []
        self._upstream = urlsplit(upstream)
        self._upstream_tls = _client_context(upstream_verify)
        self._tls = _server_context(tls)
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._accepting = threading.Event()
        self._accept_lock = threading.Lock()  # held by the accept loop around each accept()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=BACKLOG)
        self._listener.settimeout(POLL_SECONDS)
        self._acceptor: threading.Thread | None = None
        self._drainer: threading.Thread | None = None

    # --- life cycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        port = self._listener.getsockname()[1]
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{port}"

    def start(self) -> None:
        self._accepting.set()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def stop(self) -> None:
        """Quick whatever is held: a connect hold drains and held replies wake up and close."""
        self._stopping.set()
        if self._drainer is not None:
            self._drainer.join()
        self._accepting.set()
        if self._acceptor is not None:
            self._acceptor.join()
        self._listener.close()

    # --- control from tests ----------------------------------------------------------------

    def fail_next(
        self,
        kind: str,
        method: str = "",
        path: str = "",
        *,
        hold: float = 2.0,
        transform: Transform | None = None,
    ) -> None:
        """The next request with ``method`` (any if "") whose path and query start with
        ``path`` gets ``kind``; ``timeout_before`` starts at once (see the module docstring)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose one of {', '.join(KINDS)}")
        if (kind == "no_id") != (transform is not None):
            raise ValueError("no_id needs a transform, and no other fault takes one")
        if kind == "timeout_before":
            self._hold_connects(hold)
            return
        with self._lock:
            self._faults.append(_Fault(kind, method.upper(), path, hold, transform))

    # --- timeout_before --------------------------------------------------------------------

    def _hold_connects(self, hold: float) -> None:
        """Stop accepting and fill the accept queue: Linux drops a SYN for a full queue (it
        does not refuse it), so the client waits until its connect timeout, as behind a
        firewall or an overloaded server. The request provably never left the client."""
        if self._drainer is not None and self._drainer.is_alive():
            raise RuntimeError("connects are held already; one timeout_before at a time")
        with self._accept_lock:
            self._accepting.clear()
        self._listener.listen(0)  # a backlog of 0 still queues one connection
        fillers = _fill(self._listener.getsockname())
        with self._lock:
            self.fired.append("timeout_before")
        self._drainer = threading.Thread(target=self._drain, args=(fillers, hold), daemon=True)
        self._drainer.start()

    def _drain(self, fillers: list[socket.socket], hold: float) -> None:
        """After ``hold`` (or at stop), let connections in again; the fillers' server ends are
        accepted as connections that say nothing."""
        self._stopping.wait(hold)
        for filler in fillers:
            filler.close()
        self._listener.listen(BACKLOG)
        self._accepting.set()

    # --- serving ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            self._accepting.wait()
            with self._accept_lock:
                if not self._accepting.is_set():
                    continue
                try:
                    connection, address = self._listener.accept()
                except TimeoutError:
                    continue
            threading.Thread(target=self._connect, args=(connection, address), daemon=True).start()

    def _connect(self, connection: socket.socket, address: Any) -> None:
        """One client connection: TLS when configured, one request, then close (which is a
        reset when the fault set SO_LINGER to 0)."""
        connection.settimeout(IDLE_SECONDS)
        with suppress(OSError):  # a client that gave up, or a filler: part of the tests
            if self._tls is not None:
                connection = self._tls.wrap_socket(connection, server_side=True)
            _Handler(connection, address, self)
        connection.close()

    def _serve(self, handler: _Handler) -> None:
        """Answer one request; the first queued fault that matches it decides what happens."""
        handler.close_connection = True
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        fault = self._take(handler.command, handler.path)
        if fault is not None and fault.kind == "429":
            _send(handler, CANNED["429"])
            return

        def forward() -> Reply:
            return self._forward(handler, body)

        if self._intercept is None:
            reply = forward()
        else:
            reply = self._intercept(handler.command, handler.path, body, forward)
        if fault is None:
            _send(handler, reply)
        elif fault.kind == "timeout_after":
            self._stopping.wait(fault.hold)
        elif fault.kind == "reset_after":
            linger = struct.pack("ii", 1, 0)  # on, 0 s: close() sends RST and drops the rest
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        else:
            _send(handler, fault.answer(reply))

    def _take(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path):
                    del self._faults[index]
                    self.fired.append(fault.kind)
                    return fault
        return None

    def _forward(self, handler: _Handler, body: bytes) -> Reply:
        """The request as the client sent it (its Host too), the upstream's reply in full; a
        gateway's 502 when the upstream cannot be reached or verified."""
        upstream = self._upstream_connection()
        try:
            upstream.putrequest(
                handler.command, handler.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in handler.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.putheader("Connection", "close")
            upstream.endheaders(body)
            response = upstream.getresponse()
            reply = Reply(response.status, _fold(response.getheaders()), response.read())
        except (OSError, http.client.HTTPException) as error:
            return _html(502, f"502 Bad Gateway: {type(error).__name__} from the upstream")
        finally:
            upstream.close()
        with self._lock:
            self.forwarded.append(Exchange(handler.command, handler.path, reply.status, reply.body))
        return reply

    def _upstream_connection(self) -> http.client.HTTPConnection:
        host, port = self._upstream.hostname or "127.0.0.1", self._upstream.port
        if self._upstream.scheme == "https":
            return http.client.HTTPSConnection(
                host, port, timeout=UPSTREAM_SECONDS, context=self._upstream_tls
            )
        return http.client.HTTPConnection(host, port, timeout=UPSTREAM_SECONDS)


class _Handler(BaseHTTPRequestHandler):
    """Parses one request and hands it to the proxy, whatever its method."""

    protocol_version = "HTTP/1.1"
    server: FaultProxy  # the proxy plays the socketserver's part

    def _proxy(self) -> None:
        self.server._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: access logs would drown the test output."""


def _send(handler: _Handler, reply: Reply) -> None:
    """Write ``reply`` with its own length and ``Connection: close`` (whatever a transform or
    the upstream put there)."""
    handler.send_response_only(reply.status)
    for name, value in reply.headers.items():
        if name.lower() not in HOP_BY_HOP | {"content-length"}:
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(reply.body)


def _fold(pairs: Iterable[tuple[str, str]]) -> Headers:
    """Repeated headers (Pebble's ``Link``) joined with ", ", as ``requests`` shows them."""
    folded: Headers = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower(), name)
        folded[key] = f"{folded[key]}, {value}" if key in folded else value
    return folded


def _fill(address: tuple[str, int]) -> list[socket.socket]:
    """Connect until a connect times out; from then on the accept queue is full."""
    fillers: list[socket.socket] = []
    while len(fillers) < MAX_FILLERS:
        filler = socket.socket()
        filler.settimeout(FILL_PROBE_SECONDS)
        try:
            filler.connect(address)
        except TimeoutError:
            filler.close()
            return fillers
        fillers.append(filler)
    for filler in fillers:
        filler.close()
    raise RuntimeError("the accept queue never filled: this kernel does not drop SYNs")


def _server_context(tls: tuple[str, str] | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls)
    return context


def _client_context(verify: str | bool) -> ssl.SSLContext:
    """``verify`` as ``requests`` reads it: a CA file, the system's store, or no checks."""
    context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


@contextmanager
def running(proxy: FaultProxy) -> Iterator[FaultProxy]:
    """``proxy`` started for the block and stopped after it, also when a test fails."""
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    """``fault_proxy(upstream, **options)`` is a running :class:`FaultProxy`, stopped after
    the test."""
    with ExitStack() as stack:
        yield lambda upstream, **options: stack.enter_context(
            running(FaultProxy(upstream, **options))
        )
