"""Issue 19, findings 10 and 11: webhook payloads are a documented, versioned schema, with
``certificate.superseded``, and none of the plugin's internals.

Before: a webhook carried the order's ``idempotency_key`` (another tenant's order by it),
``lease_until``, ``flight``, ``version`` and the approval link's material
(``provider_data.link``), had no schema, and no event said that a certificate was replaced.
Every body the outbox holds after a certificate's whole life (placed, issued, renewed and the
renewal issued, a second order cancelled) is validated against the shipped JSON Schema.
"""

from __future__ import annotations

import json
import re

import jsonschema

from panel_ssl_plugin import notifications
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import webhook_outbox
from tests.bridge_panel import FakePanel, service
from tests.ordering import draft

INTERNALS = {
    "idempotency_key", "lease_until", "flight", "version", "provider_data", "validation",
    "private_key_encrypted", "contact", "check_failures", "next_check_at", "last_checked_at",
    "sent_at", "csr",
}  # fmt: skip


def approve(runtime, panel, order):
    token = re.search(r"/callback/(\S+)", panel.mails[-1]["body"]).group(1)
    return runtime.orders.handle_callback(order.provider_account_id, token)


def test_every_webhook_follows_the_schema_and_carries_no_internals(sqlite_url):
    panel = FakePanel()
    app = service(sqlite_url, panel)
    runtime = runtime_for(app.extensions["panel_ssl"])
    account = runtime.accounts.all()[0].id
    first = runtime.orders.place(draft(account, account_id="7"), "Alice (#2)").order
    approve(runtime, panel, first)
    renewal = runtime.follow_ups.renew(first.id, "Alice (#2)").order
    approve(runtime, panel, renewal)
    other = runtime.orders.place(draft(account, account_id="7", domain="b.example"), "a").order
    runtime.orders.cancel(other.id, "Alice (#2)", "not needed")

    with runtime.engine.connect() as conn:
        rows = conn.execute(webhook_outbox.select().order_by(webhook_outbox.c.id)).all()
    validator = jsonschema.Draft202012Validator(
        notifications.schema(), format_checker=jsonschema.FormatChecker()
    )
    bodies = [json.loads(row.payload) for row in rows]
    for row, body in zip(rows, bodies, strict=True):
        validator.validate(body)
        assert body["id"] == row.message_id and body["version"] == 1
        assert not INTERNALS & set(body["data"]), body["type"]
    types = [body["type"] for body in bodies]
    assert set(types) == {"order.status_changed", "certificate.issued", "certificate.superseded"}
    (superseded,) = [b["data"] for b in bodies if b["type"] == "certificate.superseded"]
    assert superseded["id"] == first.id and superseded["superseded_by"] == renewal.id
    assert superseded["root_id"] == first.id
    assert "link" not in json.dumps(bodies)  # the approval link's material stays home
    panel.stop()


def test_the_schema_refuses_what_a_receiver_could_not_trust():
    validator = jsonschema.Draft202012Validator(notifications.schema())
    good = {"id": "msg_1", "type": "certificate.superseded", "version": 1,
            "timestamp": "2026-12-07T10:00:00+00:00",
            "data": {**dict.fromkeys(notifications.ORDER_FIELDS), "superseded_by": 2}}  # fmt: skip
    assert not validator.is_valid(good)  # None is no id, no status, no list of names
    leaked = {**good, "data": {**good["data"], "idempotency_key": "k"}}
    assert not validator.is_valid(leaked)
    assert not validator.is_valid({**good, "version": 2})


def test_the_schema_is_shipped_in_the_package():
    assert notifications.schema()["title"] == "panel-ssl-plugin webhook, version 1"
