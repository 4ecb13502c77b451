"""The minipanel as a host: logins, the Account Mgmt link bar, admin area, permissions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.minipanel.app import start_ticker
from panel_ssl_plugin.minipanel.db import clients
from panel_ssl_plugin.runtime import runtime_for

from .conftest import csrf_token
from .ordering import approval_token, draft


def client_ids(app, reseller: str) -> list[int]:
    db = app.extensions["minipanel"]
    user = next(u for u in (db.user(i) for i in range(1, 4)) if u.username == reseller)
    with db.engine.connect() as conn:
        return [
            r.id for r in conn.execute(clients.select().where(clients.c.reseller_id == user.id))
        ]


def test_anonymous_is_sent_to_login(client):
    response = client.get("/clients/1/account-mgmt")
    assert response.status_code == 302 and "/login" in response.location


def test_wrong_password(client):
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": "alice", "password": "x", "csrf_token": token}
    )
    assert response.status_code == 200 and "Wrong user name or password" in response.text


def test_login_needs_csrf(client):
    response = client.post("/login", data={"username": "alice", "password": "alice"})
    assert response.status_code == 400


def test_reseller_sees_both_links_for_own_client(app, as_user):
    alice = as_user("alice")
    client_id = client_ids(app, "alice")[0]
    page = alice.get(f"/clients/{client_id}/account-mgmt").text
    assert f'href="/ssl/accounts/{client_id}/order"' in page
    assert f'href="/ssl/accounts/{client_id}/certs"' in page
    assert page.index("Order SSL Cert") < page.index("List SSL Certs")
    assert 'data-popup-width="760"' in page


def test_reseller_is_refused_other_resellers_client(app, as_user):
    bob = as_user("bob")
    for client_id in client_ids(app, "alice"):
        assert bob.get(f"/clients/{client_id}/account-mgmt").status_code == 404
    assert "Bäckerei" not in bob.get("/").text


def test_admin_sees_every_client_and_the_admin_pages(app, as_user):
    admin = as_user("admin")
    home = admin.get("/").text
    assert "Bäckerei Müller" in home and "Nordic Fjord Tours" in home
    assert 'href="/ssl/admin/providers"' in admin.get("/admin").text


def test_admin_area_refused_to_resellers(as_user):
    assert as_user("alice").get("/admin").status_code == 403


def test_permission_hook(app):
    pm = app.extensions["hosting_panel"]
    alice_client, bob_client = client_ids(app, "alice")[0], client_ids(app, "bob")[0]
    alice = Actor("2", "Alice", "reseller")
    allowed = pm.hook.host_permission_allowed
    assert allowed(actor=alice, action="ssl.order", account_id=str(alice_client)) is True
    assert allowed(actor=alice, action="ssl.order", account_id=str(bob_client)) is False
    assert allowed(actor=alice, action="ssl.admin", account_id=None) is False
    assert allowed(actor=Actor("1", "Ada", "admin"), action="ssl.admin", account_id=None) is True


def test_profile_and_contacts_hooks(app):
    pm = app.extensions["hosting_panel"]
    client_id = str(client_ids(app, "alice")[1])
    profile = pm.hook.host_account_profile(account_id=client_id)
    assert (profile.organization, profile.state, profile.country) == (
        "Acme Widgets Ltd", "California", "US",
    )  # fmt: skip
    assert profile.default_contact.email == "wile@acme-widgets.example"
    contacts = pm.hook.host_account_contacts(account_id=client_id)
    assert [c.first_name for c in contacts] == ["Wile", "Road"]
    assert pm.hook.host_account_profile(account_id="99999") is None


def test_outbox_and_http_challenges(app, as_user, client):
    pm = app.extensions["hosting_panel"]
    assert (
        pm.hook.host_send_mail(
            to="a@b.example", subject="Approve", body="http://x/y", account_id=None
        )
        is True
    )
    assert "Approve" in as_user("admin").get("/outbox").text
    assert "Approve" not in as_user("alice").get("/outbox").text  # about none of her clients
    pm.hook.host_publish_http_challenge(domain="d.example", token="tok", content="tok.thumb")
    assert client.get("/.well-known/acme-challenge/tok").text == "tok.thumb"
    assert client.get("/.well-known/acme-challenge/other").status_code == 404


def test_the_ticker_polls_due_orders(app):
    """The demo's scheduler: panel_tick runs by itself and moves due orders on."""
    pm = app.extensions["hosting_panel"]
    orders = runtime_for(pm).orders
    account = runtime_for(pm).accounts.all()[0].id
    order = orders.place(draft(account, domain="tick.example.com"), "alice").order
    token = approval_token(app, order)
    _, data = runtime_for(pm).accounts.adapter(account).handle_callback(token)
    orders.store.update_order(
        order, "test", "approved", provider_data={**order.provider_data, **data},
        next_check_at=datetime.now(UTC) - timedelta(seconds=1),
    )  # fmt: skip
    stop = start_ticker(pm, 0.05)
    try:
        for _ in range(100):
            if orders.get(order.id).status == "issued":
                break
            time.sleep(0.05)
    finally:
        stop.set()
    assert orders.get(order.id).status == "issued"


def test_the_plugins_admin_pages_are_framed_in_the_panels_navigation(as_user):
    """The minipanel overrides panel_ssl/admin_layout.html; the popups keep the bare layout."""
    admin = as_user("admin")
    providers = admin.get("/ssl/admin/providers").text
    assert "MiniPanel" in providers and 'href="/outbox"' in providers  # the panel's navigation
    assert "SSL Providers" in providers and "panel_ssl.css" in providers  # the plugin's page
    popup = admin.get("/ssl/accounts/1/certs").text
    assert 'href="/outbox"' not in popup and "panel_ssl.css" in popup
