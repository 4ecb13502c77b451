"""What a webhook says: the payloads of the plugin's notifications, versioned and documented.

A panel stores and acts on these bodies, so they are a contract of their own: the JSON Schema
``schemas/webhook-v1.schema.json`` (shipped in the package) describes every event type, and a
test validates each event the plugin can send against it. Only what a panel can use leaves:
an order's public fields, never the plugin's internals (its idempotency key, leases, flight
slot, row version, the provider's raw data with the approval link's material, the contact's
personal data, the private key).

Events (``type``):

- ``order.status_changed``: an order moved from ``old`` to ``new``;
- ``certificate.issued``: an order's certificate was issued (``certificate`` and ``chain``);
- ``certificate.superseded``: a renewal or reissue of a certificate was issued, so the older
  one is replaced (``superseded_by`` names the new one): take it off the site.

A change that is only an addition (a new event type, a new field) keeps ``version`` 1; anything
else is version 2, announced in the changelog first.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from panel_ssl_plugin.resources import resource_path

VERSION = 1
STATUS_CHANGED = "order.status_changed"
CERTIFICATE_ISSUED = "certificate.issued"
CERTIFICATE_SUPERSEDED = "certificate.superseded"
SCHEMA = "webhook-v1.schema.json"  # in the package's schemas/
# The order's fields a webhook carries (the schema's "order" definition says what each is).
ORDER_FIELDS = (
    "id", "account_id", "status", "domain", "sans", "product_id", "product_name",
    "period_months", "server_type", "dcv_method", "approver_email", "provider_order_id",
    "provider_status", "status_detail", "not_before", "not_after", "renewal_of", "reissue_of",
    "root_id", "created_at", "updated_at",
)  # fmt: skip
CERTIFICATE_FIELDS = ("certificate", "chain")


def order_data(order: Any) -> dict[str, Any]:
    """The public fields of an order record (store.OrderRecord), as a webhook carries them."""
    return {name: getattr(order, name) for name in ORDER_FIELDS} | {"root_id": order.chain_root}


def transition_events(
    order: Any, old: str, replaced: Any | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of every webhook one transition makes; ``replaced`` is the certificate an
    issued renewal or reissue replaces, when there is one."""
    public = order_data(order)
    events = [(STATUS_CHANGED, {**public, "old": old, "new": str(order.status)})]
    if str(order.status) == "issued":
        certificate = {name: getattr(order, name) for name in CERTIFICATE_FIELDS}
        events.append((CERTIFICATE_ISSUED, {**public, **certificate}))
        if replaced is not None:
            events.append((CERTIFICATE_SUPERSEDED, {**order_data(replaced),
                                                    "superseded_by": order.id}))  # fmt: skip
    return events


def body(event_id: str, event_type: str, data: dict[str, Any], at: datetime) -> str:
    """The body of one webhook, fixed when it is queued: every retry sends these bytes."""
    envelope = {
        "id": event_id,
        "type": event_type,
        "version": VERSION,
        "timestamp": at.isoformat(),
        "data": data,
    }
    return json.dumps(envelope, default=_json_value, sort_keys=True)


def schema() -> dict[str, Any]:
    """The JSON Schema every webhook body follows."""
    return json.loads((resource_path("schemas") / SCHEMA).read_text())


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
