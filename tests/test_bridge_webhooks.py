"""Webhooks to the panel: queued in the transition's transaction, delivered at least once with
a stable id, retried with backoff while the panel is down, never sent by two deliverers at
once, and shown failing on the admin page (issue 13)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from panel_ssl_plugin.bridge.webhooks import retry_after
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import utcnow, webhook_outbox
from tests.bridge_panel import FakePanel, launch_token, service
from tests.ordering import draft

ISSUED_EVENTS = ["order.status_changed", "order.status_changed", "certificate.issued"]


def runtime(app):
    return runtime_for(app.extensions["panel_ssl"])


def issue(app, panel: FakePanel):
    """A sandbox order of account 7, approved through the link the panel was mailed."""
    orders = runtime(app).orders
    account = runtime(app).accounts.all()[0].id
    orders.place(draft(account, account_id="7"), "Alice (#2)")
    token = re.search(r"/callback/(\S+)", panel.mails[-1]["body"]).group(1)
    return orders.handle_callback(account, token)


def outbox(database_url: str) -> list[sa.Row]:
    with sa.create_engine(database_url).connect() as conn:
        return conn.execute(webhook_outbox.select().order_by(webhook_outbox.c.id)).all()


def test_an_issued_order_reaches_the_panel_as_signed_webhooks(sqlite_url):
    panel = FakePanel()
    app = service(sqlite_url, panel)
    order = issue(app, panel)
    report = app.extensions["panel_ssl_deliverer"].deliver_due()
    assert (report.delivered, report.failed) == (3, 0)
    assert [body["type"] for _, body in panel.webhooks] == ISSUED_EVENTS
    placed, issued, certificate = (body["data"] for _, body in panel.webhooks)
    assert (placed["old"], placed["new"]) == ("submitted", "pending")
    assert (issued["old"], issued["new"]) == ("pending", "issued")
    assert certificate["id"] == order.id
    assert certificate["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    assert "private_key_encrypted" not in certificate
    panel.stop()


def test_a_panel_down_for_a_while_gets_each_webhook_later_once(sqlite_url):
    panel = FakePanel()
    app = service(sqlite_url, panel)
    issue(app, panel)
    deliverer = app.extensions["panel_ssl_deliverer"]
    panel.webhooks_down = True
    now = utcnow()
    for attempt in range(1, 4):  # down for three rounds, each after the backoff
        assert deliverer.deliver_due(now).failed == 3
        now += retry_after(attempt)
    assert deliverer.deliver_due(now - timedelta(seconds=1)).failed == 0  # none due before
    ids = {row.message_id for row in outbox(sqlite_url)}
    assert {row.attempts for row in outbox(sqlite_url)} == {3}

    admin = app.test_client()
    admin.get("/ssl/launch", query_string={"token": launch_token(role="admin", target="admin")})
    page = admin.get("/ssl/admin/providers")
    assert "3 webhook(s) could not be delivered" in page.text
    listing = admin.get("/ssl/admin/webhooks").text
    assert all(webhook_id in listing for webhook_id in ids)
    assert "HTTP 503" in listing

    panel.webhooks_down = False
    assert deliverer.deliver_due(now).delivered == 3
    assert deliverer.deliver_due(now + timedelta(days=1)).delivered == 0
    assert panel.webhook_counts() == dict.fromkeys(ids, 1)
    assert "could not be delivered" not in admin.get("/ssl/admin/providers").text
    panel.stop()


def test_a_webhook_the_panel_did_not_confirm_comes_again_with_its_id(sqlite_url):
    """At least once: an answer lost after the panel kept the webhook means a second copy,
    same id, which the panel drops."""
    panel = FakePanel()
    app = service(sqlite_url, panel)
    issue(app, panel)
    deliverer = app.extensions["panel_ssl_deliverer"]
    deliverer.session.hooks["response"].append(lambda response, **_: _lost_once(response))
    deliverer.deliver_due()
    deliverer.deliver_due(utcnow() + retry_after(1))
    counts = panel.webhook_counts()
    assert sorted(counts.values()) == [1, 1, 2]
    panel.stop()


_lost: list[str] = []


def _lost_once(response):
    """The first answer the panel gives is lost on the way back (a 502 from a proxy)."""
    if not _lost:
        _lost.append(response.request.headers["webhook-id"])
        response.status_code = 502
    return response


def test_a_crash_between_commit_and_delivery_loses_nothing(sqlite_url):
    """The service that made the transitions dies before delivering; the next one delivers."""
    panel = FakePanel()
    crashed = service(sqlite_url, panel, webhook_url=None)  # never delivers
    issue(crashed, panel)
    del crashed
    restarted = service(sqlite_url, panel, migrate=False)
    assert restarted.extensions["panel_ssl_deliverer"].deliver_due().delivered == 3
    assert [body["type"] for _, body in panel.webhooks] == ISSUED_EVENTS
    panel.stop()


def test_a_transition_rolled_back_queues_nothing(sqlite_url):
    """The outbox row is in the transition's transaction: a failed commit leaves neither."""
    panel = FakePanel()
    app = service(sqlite_url, panel)
    orders = runtime(app).orders
    order = orders.place(draft(runtime(app).accounts.all()[0].id, account_id="7"), "a").order
    before = outbox(sqlite_url)
    engine = runtime(app).engine

    def refuse_commit(conn):
        raise RuntimeError("the database went away at the commit")

    sa.event.listen(engine, "commit", refuse_commit)
    with pytest.raises(RuntimeError):
        orders.store.update_order(order, "a", "test", announce_from="pending", status="issued")
    sa.event.remove(engine, "commit", refuse_commit)
    assert outbox(sqlite_url) == before
    assert orders.get(order.id).status == "pending"
    panel.stop()


def test_twenty_deliverers_at_once_send_each_webhook_once(row_locking_database_url):
    panel = FakePanel()
    app = service(row_locking_database_url, panel)
    for _ in range(3):
        issue(app, panel)
    deliverer = app.extensions["panel_ssl_deliverer"]
    start = threading.Barrier(20)

    def deliver() -> None:
        start.wait()
        deliverer.deliver_due()

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = panel.webhook_counts()
    assert len(counts) == 9
    assert set(counts.values()) == {1}
    panel.stop()


def test_the_tick_prunes_what_is_delivered_or_never_tried_for_a_month(sqlite_url):
    panel = FakePanel()
    app = service(sqlite_url, panel, webhook_url=None)  # a host that never delivers
    issue(app, panel)
    pm = app.extensions["panel_ssl"]
    pm.hook.panel_tick(pm=pm, now=utcnow() + timedelta(days=29))
    assert len(outbox(sqlite_url)) == 3
    pm.hook.panel_tick(pm=pm, now=utcnow() + timedelta(days=31))
    assert outbox(sqlite_url) == []
    panel.stop()
