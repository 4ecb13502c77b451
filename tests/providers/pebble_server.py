"""A real ACME CA for the tests: Debian's ``pebble`` plus ``pebble-challtestsrv``, on loopback.

Load with ``-p tests.providers.pebble_server`` or ``pytest_plugins``; the fixture is session
scoped because each start generates a new CA. How it is run follows shared/PEBBLE.md:

- every port is chosen free at runtime, so parallel runs and a developer's own Pebble coexist;
- Pebble's HTTPS listener gets a ``localhost`` certificate from a throwaway CA made here, and
  ``PebbleServer.ca_bundle`` is that CA's file for ``requests``;
- ``pebble-challtestsrv`` is only a DNS server: every name resolves to 127.0.0.1, and dns-01 TXT
  records are set through its management API;
- Pebble fetches http-01 tokens from 127.0.0.1 at ``httpPort``, where :class:`ChallengeResponder`
  serves whatever a test hands it;
- ``PEBBLE_AUTHZREUSE=0``: Pebble otherwise reuses valid authorizations at random, and a renewal
  test would then skip validation one run in two.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from panel_ssl_plugin.keys import cert_to_pem, create_ca, generate_key, key_to_pem

STARTUP_SECONDS = 15.0


class ChallengeResponder(ThreadingHTTPServer):
    """Serves ``/.well-known/acme-challenge/<token>`` from :attr:`tokens`, like a web host."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ChallengeHandler)
        self.tokens: dict[str, str] = {}

    @property
    def port(self) -> int:
        return self.server_address[1]

    def serve(self, token: str, content: str) -> None:
        self.tokens[token] = content


class _ChallengeHandler(BaseHTTPRequestHandler):
    server: ChallengeResponder

    def do_GET(self) -> None:
        token = self.path.removeprefix("/.well-known/acme-challenge/")
        content = self.server.tokens.get(token)
        self.send_response(200 if content is not None else 404)
        self.end_headers()
        self.wfile.write((content or "").encode())

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: pytest shows the test's own output on failure, not Pebble's fetches."""


@dataclass(frozen=True)
class PebbleServer:
    """Where the running Pebble is and how a test plays the web host or the DNS zone."""

    directory_url: str
    ca_bundle: str
    management_url: str
    challtestsrv_url: str
    http01: ChallengeResponder

    def set_txt(self, name: str, value: str) -> None:
        """Publish a TXT record the way a DNS host would."""
        body = {"host": name.rstrip(".") + ".", "value": value}
        requests.post(f"{self.challtestsrv_url}/set-txt", json=body, timeout=5).raise_for_status()

    def issuer(self, kind: str) -> x509.Certificate:
        """Pebble's current root (``roots``) or intermediate (``intermediates``): new each start."""
        reply = requests.get(f"{self.management_url}/{kind}/0", verify=self.ca_bundle, timeout=5)
        reply.raise_for_status()
        return x509.load_pem_x509_certificate(reply.content)


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports free for TCP and UDP (challtestsrv's DNS listens on both).

    All sockets stay bound until every port is found, so no port is handed out twice.
    """
    ports: list[int] = []
    with ExitStack() as stack:
        while len(ports) < count:
            tcp = stack.enter_context(socket.socket())
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            udp = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            with suppress(OSError):
                udp.bind(("127.0.0.1", port))
                ports.append(port)
    return ports


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _start(args: list[str], ports: list[int], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start one server and wait until it listens on ``ports``.

    A second Pebble on a busy port prints "listening" and then exits, so the ports must be free
    before the start and the process still alive once they answer.
    """
    busy = [port for port in ports if _listening(port)]
    if busy:
        pytest.fail(f"{args[0]}: ports {busy} were taken before it started")
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not all(_listening(port) for port in ports):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"{args[0]} did not start:\n{log.read_text()}")
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.fail(f"{args[0]} exited after listening:\n{log.read_text()}")
    return process


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _listener_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """Pebble's HTTPS identity for localhost and 127.0.0.1, under a throwaway CA."""
    ca_key, ca_cert = create_ca("panel-ssl-plugin test CA for Pebble")
    key = generate_key()
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pems = {
        "ca.pem": cert_to_pem(ca_cert),
        "cert.pem": cert_to_pem(cert),
        "key.pem": key_to_pem(key),
    }
    for name, pem in pems.items():
        (directory / name).write_text(pem)
    return directory / "ca.pem", directory / "cert.pem", directory / "key.pem"


def _binaries() -> tuple[str, str]:
    found = shutil.which("pebble"), shutil.which("pebble-challtestsrv")
    if not all(found):
        pytest.skip("pebble is not installed (Debian: apt-get install pebble); CI has it")
    return found


@pytest.fixture(scope="session")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleServer]:
    """A running Pebble with its DNS and http-01 responder; stopped after the session."""
    pebble_bin, challtestsrv_bin = _binaries()
    workdir = tmp_path_factory.mktemp("pebble")
    ca_path, cert_path, key_path = _listener_certificate(workdir)
    acme_port, management_port, tls_port, dns_port, dns_api_port = free_ports(5)
    responder = ChallengeResponder()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{acme_port}",
            "managementListenAddress": f"127.0.0.1:{management_port}",
            "certificate": str(cert_path),
            "privateKey": str(key_path),
            "httpPort": responder.port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (workdir / "pebble.json").write_text(json.dumps(config))
    dns = [
        challtestsrv_bin,
        *("-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""),
        *("-http01", "", "-https01", "", "-tlsalpn01", ""),
        *("-dns01", f"127.0.0.1:{dns_port}", "-management", f"127.0.0.1:{dns_api_port}"),
    ]
    acme = [pebble_bin, "-config", str(workdir / "pebble.json")]
    acme += ["-dnsserver", f"127.0.0.1:{dns_port}"]
    env = os.environ | {
        "PEBBLE_VA_NOSLEEP": "1",
        "PEBBLE_WFE_NONCEREJECT": "0",
        "PEBBLE_AUTHZREUSE": "0",
    }
    processes: list[subprocess.Popen] = []
    threading.Thread(target=responder.serve_forever, daemon=True).start()
    try:
        processes.append(_start(dns, [dns_port, dns_api_port], workdir / "challtestsrv.log", env))
        processes.append(_start(acme, [acme_port, management_port], workdir / "pebble.log", env))
        yield PebbleServer(
            directory_url=f"https://127.0.0.1:{acme_port}/dir",
            ca_bundle=str(ca_path),
            management_url=f"https://127.0.0.1:{management_port}",
            challtestsrv_url=f"http://127.0.0.1:{dns_api_port}",
            http01=responder,
        )
    finally:
        for process in reversed(processes):
            _stop(process)
        responder.shutdown()
        responder.server_close()
