"""Pebble with what Debian's 2.4 lacks: renewal information (RFC 9773) and profiles.

Pebble gained ARI in 2.6 and profiles later; the ACME tests need both against a real CA, so
:class:`AriResponder` stands in front of the session's Pebble (a
:class:`~tests.providers.faults.FaultProxy` with an ``intercept`` hook, serving the fixture's
``localhost`` identity, so Pebble builds every URL on the responder's address):

- the directory gains ``renewalInfo`` (unless ``offer_renewal_info`` is off) and
  ``meta.profiles`` (:attr:`AriResponder.profiles`);
- ``GET /renewal-info/<certID>`` is answered here: the window a test set with
  :meth:`AriResponder.suggest` (with its Retry-After and explanation), 404 for a certificate it
  knows nothing of; every such request is counted in :attr:`AriResponder.asked`, by certID;
- every newOrder's JWS payload is decoded into :attr:`AriResponder.new_orders`, so a test sees
  the ``replaces`` and ``profile`` the adapter sent. Pebble 2.4 ignores both fields (Go's JSON
  decoding drops unknown ones) and places the order as usual.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.providers.faults import FaultProxy, Reply, running
from tests.providers.pebble_server import PebbleServer

RENEWAL_INFO = "/renewal-info"
NEW_ORDER = "/order-plz"  # Pebble's newOrder path
PROFILES = {
    "classic": "The usual 90-day certificate.",
    "shortlived": "A certificate of about six days.",
}


@dataclass(frozen=True)
class Suggestion:
    """What the responder says about one certificate."""

    start: datetime
    end: datetime
    retry_after: int | None = None  # seconds
    explanation_url: str = ""
    status: int = 200


class AriResponder:
    """Pebble behind a proxy that adds renewal information and profiles (module docstring)."""

    def __init__(self, pebble: PebbleServer) -> None:
        self.profiles: dict[str, str] = dict(PROFILES)
        self.offer_renewal_info = True
        self.suggestions: dict[str, Suggestion] = {}
        self.asked: Counter[str] = Counter()
        self.new_orders: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        bundle = Path(pebble.ca_bundle)
        upstream = pebble.directory_url.removesuffix("/dir")
        self.proxy = FaultProxy(
            upstream,
            tls=(str(bundle.with_name("cert.pem")), str(bundle.with_name("key.pem"))),
            upstream_verify=pebble.ca_bundle,
            intercept=self._intercept,
        )

    @property
    def directory_url(self) -> str:
        return f"{self.proxy.url}/dir"

    def suggest(self, cert_id: str, start: datetime, end: datetime, **more: Any) -> None:
        """Answer ``GET /renewal-info/<cert_id>`` with this window from now on."""
        with self._lock:
            self.suggestions[cert_id] = Suggestion(start, end, **more)

    # --- the proxy's hook ----------------------------------------------------------------------

    def _intercept(
        self, method: str, path: str, body: bytes, forward: Callable[[], Reply]
    ) -> Reply:
        if method == "GET" and path.startswith(RENEWAL_INFO + "/"):
            return self._renewal_info(path.removeprefix(RENEWAL_INFO + "/"))
        if method == "POST" and path.startswith(NEW_ORDER):
            self._record_new_order(body)
        reply = forward()
        if method == "GET" and path == "/dir" and reply.status == 200:
            return self._extended_directory(reply)
        return reply

    def _renewal_info(self, cert_id: str) -> Reply:
        with self._lock:
            self.asked[cert_id] += 1
            suggestion = self.suggestions.get(cert_id)
        if suggestion is None:
            return _json(404, {"type": "urn:ietf:params:acme:error:malformed"}, {})
        window = {"start": _rfc3339(suggestion.start), "end": _rfc3339(suggestion.end)}
        document: dict[str, Any] = {"suggestedWindow": window}
        if suggestion.explanation_url:
            document["explanationURL"] = suggestion.explanation_url
        headers = {}
        if suggestion.retry_after is not None:
            headers["Retry-After"] = str(suggestion.retry_after)
        return _json(suggestion.status, document, headers)

    def _record_new_order(self, body: bytes) -> None:
        jws = json.loads(body)
        payload = jws["payload"]
        decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        with self._lock:
            self.new_orders.append(decoded)

    def _extended_directory(self, reply: Reply) -> Reply:
        directory = json.loads(reply.body)
        if self.offer_renewal_info:
            origin = directory["newOrder"].rsplit("/", 1)[0]
            directory["renewalInfo"] = origin + RENEWAL_INFO
        if self.profiles:
            directory.setdefault("meta", {})["profiles"] = self.profiles
        return Reply(reply.status, reply.headers, json.dumps(directory).encode())


def _json(status: int, document: dict[str, Any], headers: dict[str, str]) -> Reply:
    return Reply(
        status, {"Content-Type": "application/json", **headers}, json.dumps(document).encode()
    )


def _rfc3339(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


@pytest.fixture
def ari_responder(pebble: PebbleServer) -> Iterator[AriResponder]:
    """A fresh responder in front of the session's Pebble, stopped after the test."""
    responder = AriResponder(pebble)
    with running(responder.proxy):
        yield responder
