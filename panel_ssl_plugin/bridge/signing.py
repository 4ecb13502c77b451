"""HMAC signatures of the bridge's calls and events, both ways (contract section 2 and 3).

The signature covers ``"<timestamp>.<raw body>"``, so neither can be changed alone, and a
timestamp more than five minutes off is refused, so a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

TIMESTAMP_HEADER = "X-Panel-SSL-Timestamp"
SIGNATURE_HEADER = "X-Panel-SSL-Signature"
TOLERANCE = 300  # seconds a timestamp may be off


class BadSignature(Exception):
    """A request not signed with the bridge secret, or signed too long ago; the message is one
    sentence for the caller."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` and the lowercase hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    message = str(timestamp).encode() + b"." + body
    return "v1=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers that sign ``body`` at ``timestamp`` (unix seconds)."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: int) -> None:
    """Return when ``body`` was signed with ``secret`` within TOLERANCE of ``now``; else
    BadSignature."""
    stamp, given = headers.get(TIMESTAMP_HEADER, ""), headers.get(SIGNATURE_HEADER, "")
    if not stamp or not given:
        raise BadSignature(f"The request is not signed: send {TIMESTAMP_HEADER} and "
                           f"{SIGNATURE_HEADER}.")  # fmt: skip
    try:
        timestamp = int(stamp)
    except ValueError:
        raise BadSignature(f"{TIMESTAMP_HEADER} must be unix seconds.") from None
    if abs(now - timestamp) > TOLERANCE:
        raise BadSignature(
            f"The request's timestamp is more than {TOLERANCE} seconds off; check the clock."
        )
    if not hmac.compare_digest(given, signature(secret, timestamp, body)):
        raise BadSignature("The request's signature does not match the bridge secret.")
