"""The bridge's keys, and the HMAC signatures of its calls and events (contract sections 2, 3).

Panel and service share one secret, but nothing is signed with the secret itself: each
direction and purpose has its own key, derived from it with HKDF-SHA256 (RFC 5869, no salt,
32 bytes, ``info`` naming the purpose), so a signature made for one purpose verifies for no
other. A captured service→panel call, posted back as a panel→service event, no longer
verifies; nor does a launch token's signature as anything but a launch token.

- ``launch`` (info ``panel-ssl/v1/launch``): launch tokens, panel → service (HS256 JWT);
- ``events`` (``panel-ssl/v1/event``): events, panel → service (HMAC headers);
- ``calls`` (``panel-ssl/v1/call``): bridge calls, service → panel (HMAC headers);
- ``webhooks`` (``panel-ssl/v1/webhook``): webhooks, service → panel (Standard Webhooks);
- ``forms`` (``panel-ssl/v1/forms``): the popups' CSRF tokens, service → service.

In PHP, ``hash_hkdf('sha256', $secret, 32, 'panel-ssl/v1/event')`` gives the same bytes.

A call or event signature covers ``"<timestamp>.<raw body>"``, so neither can be changed alone,
and a timestamp more than five minutes off is refused, so a captured request cannot be replayed
later; within those minutes an event's ``id`` is used once (web.py and store/bridge.py).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TIMESTAMP_HEADER = "X-Panel-SSL-Timestamp"
SIGNATURE_HEADER = "X-Panel-SSL-Signature"
TOLERANCE = 300  # seconds a timestamp may be off
KEY_INFO = {
    "launch": b"panel-ssl/v1/launch",
    "events": b"panel-ssl/v1/event",
    "calls": b"panel-ssl/v1/call",
    "webhooks": b"panel-ssl/v1/webhook",
    "forms": b"panel-ssl/v1/forms",
}


class BadSignature(Exception):
    """A request not signed with the bridge's key for it, or signed too long ago; the message
    is one sentence for the caller."""


def derive(secret: str, info: bytes) -> bytes:
    """The 32-byte key for ``info``: HKDF-SHA256 of the secret's UTF-8 bytes, no salt."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret.encode())


@dataclass(frozen=True, repr=False)
class BridgeKeys:
    """The keys derived from one bridge secret (the table above). ``repr`` shows none."""

    launch: bytes
    events: bytes
    calls: bytes
    webhooks: bytes
    forms: bytes

    @classmethod
    def from_secret(cls, secret: str) -> BridgeKeys:
        return cls(**{name: derive(secret, info) for name, info in KEY_INFO.items()})

    def __repr__(self) -> str:
        return "BridgeKeys(…)"


def signature(key: bytes, timestamp: int, body: bytes) -> str:
    """``v1=`` and the lowercase hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_headers(key: bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that sign ``body`` at ``timestamp`` (unix seconds)."""
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: signature(key, timestamp, body)}


def signed_at(headers: Mapping[str, str], now: int) -> int:
    """The request's timestamp, when it is signed at all and within TOLERANCE of ``now``;
    else BadSignature. Asked before the body is read: an unsigned request costs nothing."""
    stamp, given = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not stamp or not given:
        raise BadSignature(f"The request is not signed: send {TIMESTAMP_HEADER} and "
                           f"{SIGNATURE_HEADER}.")  # fmt: skip
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise BadSignature(f"{TIMESTAMP_HEADER} must be unix seconds.")
    timestamp = int(stamp)
    if abs(now - timestamp) > TOLERANCE:
        raise BadSignature(
            f"The request's timestamp is more than {TOLERANCE} seconds off; check the clock."
        )
    return timestamp


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: int) -> int:
    """The timestamp, when ``body`` was signed with ``key`` within TOLERANCE of ``now``; else
    BadSignature."""
    timestamp = signed_at(headers, now)
    given = headers.get(SIGNATURE_HEADER, "")
    expected = signature(key, timestamp, body)
    if not (given.isascii() and hmac.compare_digest(given.encode(), expected.encode())):
        raise BadSignature("The request's signature does not match the bridge's key for it.")
    return timestamp
