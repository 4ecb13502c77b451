"""``panel-ssl serve`` as an operator runs it: a process under waitress, configured by the
environment, answering a launch link and a signed event over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from panel_ssl_plugin import schema
from panel_ssl_plugin.runtime import runtime_for
from tests.bridge_panel import (
    FERNET_KEY,
    SECRET,
    FakePanel,
    event_request,
    launch_token,
    service_pm,
)

PANEL_SSL = Path(sys.executable).parent / "panel-ssl"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    for _ in range(200):
        assert process.poll() is None, process.stdout.read()
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_serve_answers_a_launch_link_and_a_signed_event(sqlite_url):
    schema.upgrade(sqlite_url)
    runtime_for(service_pm(sqlite_url)).accounts.create("sandbox", "Sandbox", {}, is_default=True)
    panel, port = FakePanel(), free_port()
    environment = {
        **os.environ,
        "PANEL_SSL_DATABASE_URL": sqlite_url,
        "PANEL_SSL_SECRET_KEYS": FERNET_KEY,
        "PANEL_SSL_BRIDGE_SECRET": SECRET,
        "PANEL_SSL_BRIDGE_URL": f"{panel.url}/bridge",
        "PANEL_SSL_WEBHOOK_URL": f"{panel.url}/webhooks",
        "PANEL_SSL_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [PANEL_SSL, "serve", "--bind", f"127.0.0.1:{port}"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    service = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{service}/ssl/launch", process)
        browser = requests.Session()
        opened = browser.get(f"{service}/ssl/launch", params={"token": launch_token()})
        assert opened.history[0].status_code == 302
        assert opened.url == f"{service}/ssl/accounts/7/order"
        assert opened.status_code == 200
        assert "Bäckerei Müller GmbH" in opened.text

        event = requests.post(
            f"{service}/ssl/bridge/events/account-updated",
            timeout=5,
            **event_request({"account_id": "7"}),
        )
        assert (event.status_code, event.json()) == (200, {"ok": True})
    finally:
        process.terminate()
        process.wait(timeout=10)
        panel.stop()
