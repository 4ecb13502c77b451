"""Connections to addresses that user input chose: public addresses only, one deadline, little read.

A reseller chooses a domain name, and so, through its DNS records, an address the plugin would
connect to: the HTTP pre-flight probe fetches ``/.well-known/…`` from it, and the served-
certificate check opens TLS to it. Without care that is a way into the panel's own network
(SSRF): ``127.0.0.1``, ``10.x``, the cloud's metadata service at ``169.254.169.254``. So every
such connection goes through this module, which

- takes the addresses already resolved (the caller resolved the name once) and connects to the
  one it checked, by its number: no second resolution, so no DNS rebinding between check and use;
- refuses every address that is not public (loopback, private, link-local, shared/CGNAT,
  multicast, unspecified, reserved, documentation and benchmark ranges; IPv6 unique-local and
  site-local; and the IPv4-mapped, 6to4 and NAT64 forms of those), unless the admin's allow-list
  (``PANEL_SSL_OUTBOUND_ALLOW``: addresses or networks, comma-separated) names it;
- follows no redirect (a 3xx is an answer like any other), reads at most ``READ_LIMIT`` bytes,
  and gives up at one deadline for the whole exchange, however slowly the other end drips.

The classes come from :mod:`ipaddress`'s properties; only what Python 3.11 does not classify
(CGNAT as its own word, the rest of 192.0.0.0/24, IPv6 site-local, the embedded IPv4 address of
6to4 and NAT64, the local-use NAT64 prefix) is spelled out here. HTTP is parsed by h11, which
reads no socket itself, so every byte this module takes off the wire is counted and timed here.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass

import h11

ALLOW_ENV = "PANEL_SSL_OUTBOUND_ALLOW"
READ_LIMIT = 8192  # bytes of an answer read at most: a status line, headers and a short file
USER_AGENT = "panel-ssl-plugin pre-flight"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SHARED = ipaddress.ip_network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
IETF = ipaddress.ip_network("192.0.0.0/24")  # RFC 6890; Python 3.11 calls only a /29 of it private
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215, a network's own translator


class Refused(Exception):
    """The plugin does not connect there; the message says why, in words for the reseller."""


class Unreachable(Exception):
    """The connection failed or ran out of time; the message says how."""


def non_public(address: IPAddress) -> str | None:
    """The kind of non-public address ``address`` is ("loopback", "private" …), None if public.

    An IPv6 address that carries an IPv4 one (IPv4-mapped ``::ffff:a.b.c.d``, 6to4
    ``2002:…``, NAT64 ``64:ff9b::a.b.c.d``) is judged by the IPv4 address it leads to.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            kind = non_public(embedded)
            return f"{kind} (as IPv6)" if kind else None
        if address in LOCAL_NAT64:
            return "local NAT64"
        if address.is_site_local:
            return "site-local"
    for kind, test in _KINDS:
        if test(address):
            return kind
    return None if address.is_global else "not public"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


_KINDS = (
    ("unspecified", lambda a: a.is_unspecified),
    ("loopback", lambda a: a.is_loopback),
    ("link-local", lambda a: a.is_link_local),
    ("multicast", lambda a: a.is_multicast),
    ("shared (CGNAT)", lambda a: a in SHARED),
    ("reserved", lambda a: a.is_reserved),
    ("private", lambda a: a.is_private or a in IETF),
)


@dataclass(frozen=True)
class Target:
    """Where to connect: an address already checked, and the name it was found under."""

    name: str
    address: IPAddress
    port: int


class Outbound:
    """The outbound rule of one host: which non-public networks its admin allows."""

    def __init__(self, allow: Iterable[IPNetwork] = ()):
        self.allow = tuple(allow)

    @classmethod
    def from_environment(cls) -> Outbound:
        """``PANEL_SSL_OUTBOUND_ALLOW``: e.g. ``10.0.5.0/24, 192.168.1.7`` for sites the panel
        hosts on its own network. Empty (the default): public addresses only."""
        return cls(parse_allow(os.environ.get(ALLOW_ENV, "")))

    def target(self, name: str, addresses: Iterable[str], port: int) -> Target:
        """The first of ``addresses`` (what DNS gave for ``name``) that may be connected to;
        Refused, naming the kind of the first, when none may."""
        parsed = [ipaddress.ip_address(text) for text in addresses]
        if not parsed:
            raise Refused(f"{name} has no address.")
        for address in parsed:
            if self.allowed(address):
                mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
                return Target(name, mapped or address, port)
        raise Refused(
            f"{name} resolves to {parsed[0]}, a {non_public(parsed[0])} address: the panel "
            "connects to public addresses only, and a CA could not reach it either."
        )

    def allowed(self, address: IPAddress) -> bool:
        """Public, or in a network the admin allows."""
        return non_public(address) is None or any(address in net for net in self.allow)

    # --- connections ---------------------------------------------------------------------------

    def connect(self, target: Target, deadline: float) -> socket.socket:
        """A TCP connection to the target's address (by number: nothing is resolved again)."""
        if not self.allowed(target.address):  # a Target made by hand is checked too
            raise Refused(f"{target.address} is not a public address.")
        try:
            return socket.create_connection(
                (str(target.address), target.port), timeout=_remaining(deadline)
            )
        except TimeoutError:
            raise Unreachable("did not answer in time") from None
        except OSError as error:
            raise Unreachable(error.strerror or type(error).__name__) from None

    def http_get(self, target: Target, path: str, deadline: float) -> tuple[int, bytes]:
        """(status, the first bytes of the body) of ``GET /<path>`` with ``Host: <name>``. No
        redirect is followed; at most READ_LIMIT bytes are read, all before ``deadline``."""
        with self.connect(target, deadline) as sock:
            connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=READ_LIMIT)
            request = h11.Request(
                method="GET",
                target="/" + path.lstrip("/"),
                headers=[
                    ("Host", target.name),
                    ("User-Agent", USER_AGENT),
                    ("Connection", "close"),
                ],
            )
            _send(sock, connection.send(request) + connection.send(h11.EndOfMessage()), deadline)
            return _read_response(sock, connection, deadline)

    def tls_connect(
        self,
        target: Target,
        deadline: float,
        server_name: str | None = None,
        context: ssl.SSLContext | None = None,
    ) -> ssl.SSLSocket:
        """A TLS connection to the target, with SNI ``server_name`` (the target's name by
        default), handshake done before ``deadline``. ``context`` defaults to one that checks
        the certificate against the system's CAs and the name; a caller that only wants to
        read what is served passes one that does not."""
        sock = self.connect(target, deadline)
        context = context or ssl.create_default_context()
        try:
            sock.settimeout(_remaining(deadline))
            return context.wrap_socket(sock, server_hostname=server_name or target.name)
        except TimeoutError:
            sock.close()
            raise Unreachable("did not finish the TLS handshake in time") from None
        except (ssl.SSLError, OSError) as error:
            sock.close()
            raise Unreachable(f"TLS failed: {getattr(error, 'reason', None) or error}") from None


def parse_allow(text: str) -> tuple[IPNetwork, ...]:
    """Networks from ``10.0.5.0/24, 192.168.1.7``; ValueError naming an entry that is not one."""
    networks = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{ALLOW_ENV}: {entry!r} is not an address or network") from None
    return tuple(networks)


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Unreachable("did not answer in time")
    return left


def _send(sock: socket.socket, data: bytes, deadline: float) -> None:
    try:
        sock.settimeout(_remaining(deadline))
        sock.sendall(data)
    except TimeoutError:
        raise Unreachable("did not take the request in time") from None
    except OSError as error:
        raise Unreachable(error.strerror or type(error).__name__) from None


def _read_response(
    sock: socket.socket, connection: h11.Connection, deadline: float
) -> tuple[int, bytes]:
    """The status and up to READ_LIMIT bytes of body, each read timed by the one deadline."""
    status, body, taken = None, b"", 0
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError:
            raise Unreachable("did not answer with HTTP") from None
        if event is h11.NEED_DATA:
            if taken >= READ_LIMIT:
                break
            chunk = _receive(sock, READ_LIMIT - taken, deadline)
            taken += len(chunk)
            connection.receive_data(chunk)  # b"" is the end of the connection
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            break
    if status is None:
        raise Unreachable("did not answer with HTTP")
    return status, body[:READ_LIMIT]


def _receive(sock: socket.socket, size: int, deadline: float) -> bytes:
    try:
        sock.settimeout(_remaining(deadline))
        return sock.recv(size)
    except TimeoutError:
        raise Unreachable("did not answer in time") from None
    except OSError as error:
        raise Unreachable(error.strerror or type(error).__name__) from None
