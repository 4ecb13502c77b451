"""The host developers' walkthrough, run as written (issue 11): a panel that is not the minipanel.

The Python blocks of docs/hosts/index.md ("Adopting the plugin") become the module ``mypanel``.
It mounts the plugin at /plugins/ssl (and behind a SCRIPT_NAME), sends anonymous people to its
own login, migrates through ``panel_migrations``, and a reseller orders on the sandbox; its cron
process, loading the same hooks with ``--host mypanel:HOOKS``, sends the order, publishes its DNS
record and hears that the certificate was issued.
"""

from __future__ import annotations

import importlib
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from panel_ssl_plugin.cli import main
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.runtime import runtime_for

from .conftest import login, minipanel
from .test_order_flow import post

PAGE = Path(__file__).resolve().parents[1] / "docs" / "hosts" / "index.md"
PREFIX = "/plugins/ssl"


def host_blocks() -> str:
    return "\n\n".join(re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S))


@pytest.fixture
def mypanel(tmp_path, sqlite_url, monkeypatch):
    """The page's host as a module of its own, with a database and a key."""
    (tmp_path / "mypanel.py").write_text(host_blocks())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PANEL_SSL_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("PANEL_SSL_SECRET_KEYS", Vault.generate_key())
    sys.modules.pop("mypanel", None)
    module = importlib.import_module("mypanel")
    yield module
    sys.modules.pop("mypanel", None)


def due(runtime, order) -> None:
    """Its next check is now: the cron below runs at once, not a minute later."""
    runtime.orders.store.update_order(order, "test", "due", next_check_at=datetime.now(UTC))


def log_in(client, user: str) -> None:
    client.post("/login", data={"user": user})


def test_the_documented_host_mounts_the_plugin_where_it_wants_and_frames_login(mypanel):
    hooks = mypanel.MyPanelHooks(mypanel.HOOKS.database_url, mypanel.HOOKS.secret_keys)
    app = mypanel.create_panel(hooks)
    mypanel.migrate(app.extensions["mypanel.pm"])
    client = app.test_client()
    asked = client.get(f"{PREFIX}/accounts/42/certs")
    assert asked.status_code == 302 and asked.location == f"/login?next={PREFIX}/accounts/42/certs"
    log_in(client, "ann")
    bar = client.get("/clients/42").text
    assert f'href="{PREFIX}/accounts/42/order"' in bar and "List SSL Certs" in bar
    framed = client.get(f"{PREFIX}/accounts/42/certs").text  # in the panel's own layout
    assert '<nav class="mypanel">My Panel</nav>' in framed and "List SSL Certs" in framed
    behind = app.test_client()  # the panel served at /panel (SCRIPT_NAME)
    panel = "http://localhost/panel"
    behind.post("/login", data={"user": "root"}, base_url=panel)
    assert f'href="/panel{PREFIX}/admin/providers"' in behind.get("/admin", base_url=panel).text
    providers = behind.get(f"{PREFIX}/admin/providers", base_url=panel)
    assert providers.status_code == 200 and f'"/panel{PREFIX}/' in providers.text


def test_the_documented_host_orders_and_its_cron_publishes_and_hears(mypanel):
    hooks = mypanel.MyPanelHooks(mypanel.HOOKS.database_url, mypanel.HOOKS.secret_keys)
    app = mypanel.create_panel(hooks)
    pm = app.extensions["mypanel.pm"]
    mypanel.migrate(pm)
    runtime = runtime_for(pm)
    settings = {"rehearse": "unavailable", "rehearse_count": 1}  # the CA is down at first
    runtime.accounts.create("sandbox", "Sandbox", settings)
    client = app.test_client()
    log_in(client, "ann")
    order_url, contact_url = f"{PREFIX}/accounts/42/order", f"{PREFIX}/accounts/42/order/contact"
    wildcard = post(
        client, order_url, client.get(order_url).text, "redraw", product_id="dv-wildcard"
    )
    contact = post(client, contact_url, wildcard.text, "contact", domain="*.bakery.example",
                   dcv_method="dns")  # fmt: skip
    assert contact.status_code == 200, contact.text
    saved = post(client, contact_url, contact.text, "submit")
    assert "We will retry automatically" in saved.text
    (order,) = [row for row, _ in runtime.orders.account_page("42").rows]
    due(runtime, order)  # a minute later, as far as the order is concerned

    cron = CliRunner()
    assert cron.invoke(main, ["poll", "--host", "mypanel:HOOKS"]).exit_code == 0
    assert mypanel.HOOKS.dns  # published from the cron process, through the host's hooks
    placed = runtime.orders.get(order.id)
    assert placed.status == "pending"
    due(runtime, placed)
    result = cron.invoke(main, ["poll", "--host", "mypanel:HOOKS"])
    assert result.exit_code == 0, result.output
    assert mypanel.HOOKS.issued == [order.id]


PROVIDER_PAGE = PAGE.with_name("providers.md")


def test_the_documented_provider_plugs_in(tmp_path, sqlite_url, monkeypatch):
    """docs/hosts/providers.md's skeleton, registered as another package would: the admin sees
    it among the providers and gets its settings form, the API key as a password."""
    (code,) = re.findall(r"```python\n(.*?)```", PROVIDER_PAGE.read_text(), flags=re.S)
    (tmp_path / "myca.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("myca", None)
    myca = importlib.import_module("myca")
    client = minipanel(sqlite_url, myca).test_client()
    login(client, "admin")
    assert "My CA" in client.get("/ssl/admin/providers").text
    form = client.get("/ssl/admin/providers/new?provider=myca")
    assert form.status_code == 200 and "New My CA account" in form.text
    assert 'name="settings-api_key" type="password"' in form.text
    sys.modules.pop("myca", None)
