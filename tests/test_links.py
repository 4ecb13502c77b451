"""Issue 19, finding 5: links that leave the panel come from configuration, never from the
request; and following an approval link approves nothing until the approver presses a button.

Before: an order posted with ``Host: attacker.example`` mailed an approval link to
``http://attacker.example/ssl/providers/…/callback/<token>`` (a click, or a mail scanner, hands
the token over), and the sandbox approved on a plain GET (link scanners approved orders).
"""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from panel_ssl_plugin.cli import main
from panel_ssl_plugin.links import NoPublicAddress, public_link
from panel_ssl_plugin.runtime import runtime_for
from tests.bridge_panel import FERNET_KEY, SECRET
from tests.conftest import login, minipanel
from tests.ordering import approval_token, draft
from tests.test_minipanel import client_ids
from tests.test_order_flow import submit

PUBLIC = "https://panel.example.net"


@pytest.fixture
def app(sqlite_url):
    """The minipanel at its public address, answering to 'localhost' too (the test client)."""
    return minipanel(
        sqlite_url, PUBLIC_URL=PUBLIC, TRUSTED_HOSTS=["panel.example.net", "localhost"]
    )


class AttackerHost(FlaskClient):
    """A client whose every request says ``Host: attacker.example``."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("base_url", "http://attacker.example")
        return super().open(*args, **kwargs)


def test_an_approval_link_names_the_configured_address_whatever_the_host_header(sqlite_url):
    """The reported attack, on a panel that answers to any host name (no TRUSTED_HOSTS)."""
    app = minipanel(sqlite_url, PUBLIC_URL=PUBLIC, TRUSTED_HOSTS=None)
    app.test_client_class = AttackerHost
    alice = app.test_client()
    login(alice, "alice")
    response = submit(alice, str(client_ids(app, "alice")[0]))
    assert response.status_code == 200
    body = app.extensions["minipanel"].mails()[0].body
    assert f"{PUBLIC}/ssl/providers/" in body and "attacker.example" not in body


def test_a_host_the_panel_does_not_answer_to_is_a_400(app):
    alice = app.test_client()
    login(alice, "alice")
    page = alice.get("/ssl/accounts/1/order", headers={"Host": "attacker.example"})
    assert page.status_code == 400


def test_no_public_address_makes_no_link(app):
    pm = app.extensions["hosting_panel"]
    pm.get_plugin("minipanel").public_url = None
    with app.test_request_context(headers={"Host": "localhost"}), pytest.raises(NoPublicAddress):
        public_link(pm, "cert", "/certs/1", order_id=1)


def test_opening_an_approval_link_approves_nothing_the_button_does(app):
    runtime = runtime_for(app.extensions["hosting_panel"])
    order = runtime.orders.place(draft(runtime.accounts.all()[0].id), "alice").order
    path = f"/ssl/providers/{order.provider_account_id}/callback/{approval_token(app, order)}"
    client = app.test_client()
    opened = client.get(path)  # a mail scanner, a link preview
    assert opened.status_code == 200 and "Approve the certificate for" in opened.text
    assert runtime.orders.get(order.id).status == "pending"
    assert "approved" not in [e.event for e in runtime.orders.events(order.id)]
    assert client.post(path, data={}).status_code == 400  # no CSRF token: not the page's button
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', opened.text).group(1)
    pressed = client.post(path, data={"csrf_token": token})
    assert pressed.status_code == 200 and "is approved" in pressed.text
    assert runtime.orders.get(order.id).status == "issued"


def test_serve_refuses_to_start_without_its_public_address(sqlite_url, monkeypatch):
    for name in ("PANEL_SSL_PUBLIC_URL", "PANEL_SSL_BRIDGE_URL"):
        monkeypatch.delenv(name, raising=False)
    environment = {"PANEL_SSL_BRIDGE_SECRET": SECRET, "PANEL_SSL_SECRET_KEYS": FERNET_KEY}
    result = CliRunner().invoke(main, ["serve", "--database-url", sqlite_url], env=environment)
    assert result.exit_code == 2 and "set PANEL_SSL_PUBLIC_URL" in result.output
    environment["PANEL_SSL_PUBLIC_URL"] = "ssl.panel.example"  # no scheme
    bad = CliRunner().invoke(main, ["serve", "--database-url", sqlite_url], env=environment)
    assert bad.exit_code == 2 and "PANEL_SSL_PUBLIC_URL must be the address" in bad.output
