"""The sandbox's approval links and who has approved: every value the CA derives from its link
secret (order ids, round ids, DNS values, signed links) and the approval state kept in an
order's data.

An approval round is one order and CSR; each approver of the round follows its own link, and
records it under ``APPROVED_BY + approver``. ``approved_link`` approves the whole round (auto
approval, DNS validation, and links signed before approvers were named in them). The readings
behind this are in ``panel_ssl_plugin/providers/sandbox.py``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

from panel_ssl_plugin.providers.base import ProviderRejected

APPROVED_BY = "approved_by:"  # + approver: the round link that approver followed
ROUND_FIELDS = ("link", "approved_link", "approved_at", "certificate", "chain")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(secret: str, message: str) -> bytes:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()


def derive(secret: str, purpose: str, *parts: str) -> bytes:
    """A value the CA computes again from the same inputs, and nobody without its secret.

    The NUL separators keep these messages apart from one another and from the link payloads.
    """
    return mac(secret, "\0".join((purpose, *parts)))


def sign(secret: str, payload: str) -> str:
    return f"{b64(payload.encode())}.{b64(mac(secret, payload))}"


def verified_payload(secret: str, token: str) -> str:
    """The signed payload of ``token``; one message for every failure, to tell a forger nothing."""
    invalid = ProviderRejected("This approval link is not valid.", code="bad_token")
    try:
        payload = unb64(token.partition(".")[0]).decode()
    except (binascii.Error, ValueError) as error:
        raise invalid from error
    if not hmac.compare_digest(sign(secret, payload).encode(), token.encode()):
        raise invalid
    return payload


def approvers_of(data: dict[str, Any]) -> dict[str, list[str]]:
    """Each approver of the round and the names it approves; an order placed before approvers
    were kept per name has the one of the primary domain for all."""
    return data.get("approvers") or {data["approver_email"]: data["names"]}


def waiting_for(data: dict[str, Any]) -> list[str]:
    """The approvers who have not followed the current round's link yet."""
    if data.get("approved_at") and data.get("approved_link") == data.get("link"):
        return []  # approved as a whole: auto-approve, DNS, or a link of before approvers
    return [a for a in approvers_of(data) if data.get(APPROVED_BY + a) != data.get("link")]


def without_round(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without what belongs to the approval round and its certificate."""
    return {
        k: v for k, v in data.items() if k not in ROUND_FIELDS and not k.startswith(APPROVED_BY)
    }


def approve_all(data: dict[str, Any], at: datetime) -> dict[str, Any]:
    return {
        **data,
        "approved_at": at.replace(microsecond=0).isoformat(),
        "approved_link": data["link"],
    }
