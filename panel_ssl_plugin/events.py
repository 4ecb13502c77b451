"""The host's events as JSON in, JSON out: what ``panel-ssl event <name>`` reads on stdin and
prints, and what the bridge's events endpoint takes and answers, from one implementation.

Each event names its fields and checks them itself: nothing is assumed (a renewal without
``period_months`` is refused, since the period is what was billed), and nothing of the wrong
kind gets through (a list for an id, a number no column holds, text with NUL).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pluggy

from panel_ssl_plugin.followups import RenewalRefused
from panel_ssl_plugin.orders import OrderNotFound, OrderRejected
from panel_ssl_plugin.providers.base import ProviderError
from panel_ssl_plugin.runtime import HostMisconfigured
from panel_ssl_plugin.store import MAX_ID

# exit codes of ``panel-ssl event``: done, refused (the reply says why), bad input or setup
DONE, REFUSED, BAD_INPUT = 0, 1, 2
REFUSALS = (OrderNotFound, OrderRejected, RenewalRefused, ProviderError, HostMisconfigured)


TEXT_LIMIT = 64  # an account id's column


def _field(payload: dict, name: str, kind: type, what: str):
    """A payload field, or ValueError naming it and what it is for: text is printable and
    fits its column, a number is whole and within the range of the plugin's ids (a number
    written as text counts, as a shell script writes it)."""
    value = payload.get(name)
    if value in (None, ""):
        raise ValueError(f"{name} is missing: {what}")
    if kind is str and isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value)
        if text.isprintable() and len(text) <= TEXT_LIMIT:
            return text
    if kind is int and not isinstance(value, bool):
        number = value if isinstance(value, int) else _digits(value)
        if number is not None and 0 < number <= MAX_ID:
            return number
    raise ValueError(f"{name} must be {_KINDS[kind]}: {what}")


_KINDS = {str: f"printable text of at most {TEXT_LIMIT} characters", int: "a whole number from 1"}


def _digits(value: object) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 10:
        return int(value)
    return None


def renewal_due(pm: pluggy.PluginManager, payload: dict) -> dict:
    """{"account_id": "42", "certificate_id": 7, "period_months": 12} → the renewal order."""
    results = pm.hook.panel_renewal_due(
        pm=pm,
        account_id=_field(payload, "account_id", str, "the client the certificate is of"),
        certificate_id=_field(payload, "certificate_id", int, "the certificate to renew"),
        period_months=_field(payload, "period_months", int, "how many months were billed"),
    )
    return {"renewal_order_id": results[0] if results else None}


def tick(pm: pluggy.PluginManager, payload: dict) -> dict:
    """{} → poll due orders now (what panel_tick does inside a Python host)."""
    pm.hook.panel_tick(pm=pm, now=datetime.now(UTC))
    return {}


def account_updated(pm: pluggy.PluginManager, payload: dict) -> dict:
    """{"account_id": "42"} → every plugin hears that the client's record changed."""
    account_id = _field(payload, "account_id", str, "the client whose record changed")
    pm.hook.panel_account_updated(pm=pm, account_id=account_id)
    return {}


EVENTS: dict[str, Callable[[pluggy.PluginManager, dict], dict]] = {
    "renewal-due": renewal_due,
    "tick": tick,
    "account-updated": account_updated,
}


def handle(name: str, pm: pluggy.PluginManager, payload: object) -> tuple[int, dict]:
    """Run event ``name`` on ``payload``: the exit code and the JSON reply, failures in words."""
    try:
        if not isinstance(payload, dict):
            raise ValueError("the input must be a JSON object")
        reply = EVENTS[name](pm, payload)
    except REFUSALS as error:
        return failure(REFUSED, str(error) or type(error).__name__)
    except (ValueError, KeyError, TypeError) as error:
        return failure(BAD_INPUT, f"bad input: {error}")
    return DONE, {"ok": True, **reply}


def failure(code: int, error: str) -> tuple[int, dict]:
    return code, {"ok": False, "error": error}
