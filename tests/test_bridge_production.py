"""Issue 19, finding 11: the bridge in production.

Before: ``--behind-proxy`` did nothing under waitress (it drops ``X-Forwarded-*`` unless told
whose to trust: approval links pointed at the internal address, the cookie was never
``Secure``); ``panel-ssl poll`` in the bridge's environment called no bridge (orders stayed
*submitted*); an order read the profile about six times; there was no health endpoint.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import requests
from click.testing import CliRunner

from panel_ssl_plugin import __version__, schema
from panel_ssl_plugin.cli import main
from panel_ssl_plugin.runtime import runtime_for
from tests.bridge_panel import FERNET_KEY, SECRET, FakePanel, launch_token, service, service_pm
from tests.ordering import draft
from tests.test_bridge_serve import PANEL_SSL, free_port, wait_until_up
from tests.test_order_flow import APPROVER, DOMAIN, post, step1_url, step2_url

PUBLIC = "https://ssl.panel.example"


def bridge_environment(database_url: str, panel: FakePanel, **more: str) -> dict[str, str]:
    return {
        "PANEL_SSL_DATABASE_URL": database_url,
        "PANEL_SSL_SECRET_KEYS": FERNET_KEY,
        "PANEL_SSL_BRIDGE_SECRET": SECRET,
        "PANEL_SSL_BRIDGE_URL": f"{panel.url}/bridge",
        "PANEL_SSL_PUBLIC_URL": PUBLIC,
        **more,
    }


def serving(database_url: str, panel: FakePanel, *options: str, **more: str):
    """``panel-ssl serve`` in a process of its own; (its URL, the process)."""
    port = free_port()
    environment = {**os.environ, **bridge_environment(database_url, panel, **more)}
    environment["PANEL_SSL_TRUSTED_HOSTS"] = "127.0.0.1"
    process = subprocess.Popen(
        [PANEL_SSL, "serve", "--bind", f"127.0.0.1:{port}", *options],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(f"{url}/ssl/health", process)
    return url, process


def test_behind_a_proxy_the_forwarded_scheme_and_host_count_and_only_then(sqlite_url):
    schema.upgrade(sqlite_url)
    panel = FakePanel()
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "ssl.panel.example",
                 "X-Forwarded-For": "203.0.113.7"}  # fmt: skip
    for options, secure in ((("--behind-proxy",), True), ((), False)):
        # a public address without TLS: only the proxy's word makes the cookie Secure
        url, process = serving(
            sqlite_url, panel, *options, PANEL_SSL_PUBLIC_URL="http://ssl.panel.example"
        )
        try:
            opened = requests.get(
                f"{url}/ssl/launch",
                params={"token": launch_token()},
                headers=forwarded,
                allow_redirects=False,
                timeout=10,
            )
            assert opened.status_code == 302, opened.text
            cookie = opened.headers["Set-Cookie"]
            assert ("Secure" in cookie) is secure, cookie
            # the proxy's host name is the public one, which the service answers to
            assert opened.headers["Location"].startswith("/ssl/accounts/7/order")
        finally:
            process.terminate()
            process.wait(timeout=10)
    panel.stop()


def test_a_host_name_the_service_does_not_answer_to_is_refused(sqlite_url):
    schema.upgrade(sqlite_url)
    panel = FakePanel()
    url, process = serving(sqlite_url, panel, "--behind-proxy")
    try:
        forged = requests.get(f"{url}/ssl/health", headers={"X-Forwarded-Host": "evil.example"},
                              timeout=10)  # fmt: skip
        assert forged.status_code == 400
    finally:
        process.terminate()
        process.wait(timeout=10)
        panel.stop()


def test_health_says_the_database_answers_and_the_version(sqlite_url, tmp_path):
    panel = FakePanel()
    app = service(sqlite_url, panel)
    response = app.test_client().get("/ssl/health")
    assert response.status_code == 200
    assert response.json == {"ok": True, "version": __version__, "database": "reachable"}
    runtime_for(app.extensions["panel_ssl"]).engine.dispose()
    os.remove(sqlite_url.removeprefix("sqlite:///"))
    os.mkdir(sqlite_url.removeprefix("sqlite:///"))  # a database that cannot be opened
    down = app.test_client().get("/ssl/health")
    assert down.status_code == 503 and down.json["database"] == "unreachable"
    panel.stop()


def test_cron_in_the_bridges_environment_uses_the_bridge(sqlite_url, monkeypatch):
    """An order the sandbox could not take at once is sent by ``panel-ssl poll`` from cron:
    its approval mail reaches the panel through the bridge, filed under its account."""
    schema.upgrade(sqlite_url)
    panel = FakePanel()
    runtime = runtime_for(service_pm(sqlite_url))
    settings = {"rehearse": "unavailable", "rehearse_count": 1}
    account = runtime.accounts.create("sandbox", "Sandbox", settings, is_default=True)
    order = runtime.orders.place(draft(account, account_id="7"), "Alice (#2)").order
    assert order.status == "submitted" and panel.mails == []
    runtime.orders.store.update_order(order, "test", "due", next_check_at=datetime.now(UTC))
    for name, value in bridge_environment(sqlite_url, panel).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["poll"])
    assert result.exit_code == 0, result.output
    assert runtime.orders.get(order.id).status == "pending"
    (mail,) = panel.mails
    assert mail["account_id"] == "7" and f"{PUBLIC}/ssl/providers/" in mail["body"]
    panel.stop()


def test_an_order_reads_the_profile_once_per_page(sqlite_url):
    """The popup's whole walk as a browser with JavaScript makes it: step 1, the approver
    lookup, the pre-flight, step 2, submit. Only the pages read the client's record, once each
    (the JSON lookups need only the permission)."""
    panel = FakePanel()
    client = service(sqlite_url, panel).test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    panel.calls.clear()
    page = client.get(step1_url("7")).text
    assert client.get("/ssl/accounts/7/dcv-emails", query_string={"domain": DOMAIN}).is_json
    assert post(client, "/ssl/accounts/7/preflight", page, "", domain=DOMAIN).is_json
    contact = post(client, step2_url("7"), page, "contact", domain=DOMAIN,
                   approver_email=APPROVER)  # fmt: skip
    assert post(client, step2_url("7"), contact.text, "submit").status_code == 200
    methods = [method for method, _ in panel.calls]
    assert methods.count("account_profile") == 3  # step 1, step 2, submit
    assert methods.count("account_contacts") == 1
    panel.stop()
