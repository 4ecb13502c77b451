"""The bridge's page (docs/bridge/index.md) cannot drift: its table of methods is the hookspecs'
host hooks with their arguments, each documented answer goes through the bridge as the plugin
reads it, and its webhook receiver verifies what the service sends."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pluggy
import pytest
import requests

from panel_ssl_plugin import hookspecs, schema
from panel_ssl_plugin.bridge.client import METHODS, BridgeClient
from panel_ssl_plugin.bridge.hooks import BridgeHost
from panel_ssl_plugin.bridge.webhooks import signer
from panel_ssl_plugin.hookspecs import AccountProfile, Contact
from tests.bridge_panel import KEYS, SECRET, FakePanel
from tests.test_bridge_production import serving

PAGE = (Path(__file__).resolve().parents[1] / "docs" / "bridge" / "index.md").read_text()
TABLE = PAGE[PAGE.index("<!-- bridge-methods") : PAGE.index("<!-- /bridge-methods -->")]
ROW = re.compile(r"^\| `(\w+)` \| `(.+?)` \| `(.+?)`", re.M)
ROWS = {method: (json.loads(params), json.loads(result)) for method, params, result in
        ROW.findall(TABLE)}  # fmt: skip
READS_AS = {
    "account_profile": AccountProfile,
    "account_contacts": list,
    "publish_http_challenge": bool,
    "publish_http_file": bool,
    "unpublish_http_file": bool,
    "publish_dns_record": bool,
    "send_mail": bool,
    "reseller_email": str,
}


def test_the_table_has_every_bridged_hook_once():
    assert list(ROWS) == list(METHODS) == list(READS_AS)
    assert len(ROW.findall(TABLE)) == len(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_each_row_names_the_hookspecs_arguments(method):
    spec = inspect.signature(getattr(hookspecs, f"host_{method}"))
    params, _ = ROWS[method]
    assert list(params) == list(spec.parameters)
    implementation = inspect.signature(getattr(BridgeHost, f"host_{method}"))
    assert list(implementation.parameters)[1:] == list(spec.parameters)


@pytest.fixture
def panel():
    panel = FakePanel()
    yield panel
    panel.stop()


@pytest.mark.parametrize("method", METHODS)
def test_each_documented_answer_reads_as_the_hook_returns(method, panel):
    params, result = ROWS[method]
    panel.answers[method] = result
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    client = BridgeClient(f"{panel.url}/bridge", KEYS.calls, 5.0, requests.Session())
    pm.register(BridgeHost(client))
    answer = getattr(pm.hook, f"host_{method}")(**params)
    assert panel.calls == [(method, params)]
    assert isinstance(answer, READS_AS[method])
    if method == "account_profile":
        assert (answer.address, answer.extra) == ("Hauptstraße 12", {"email": result["email"]})
    if method == "account_contacts":
        assert answer[0] == Contact(**result[0])


def test_the_documented_receiver_verifies_what_the_service_sends():
    block = PAGE[PAGE.index("A receiver in Python:") :]
    code = re.search(r"```python\n(.*?)```", block, flags=re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)
    body, now = '{"type": "certificate.issued"}', datetime.now(UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer(KEYS.webhooks).sign("msg_1", now, body),
    }
    assert namespace["verified"](SECRET, body.encode(), headers) == json.loads(body)
    with pytest.raises(Exception, match="No matching signature"):
        namespace["verified"]("x" * 40, body.encode(), headers)


def test_the_pages_shell_event_is_signed_as_the_service_checks_it(sqlite_url):
    """The curl example of "Events", run by bash against a served instance: the signature
    (a key derived with openssl kdf) holds, so the answer is the event's own refusal (there is
    no certificate 12), not a 401."""
    block = PAGE[PAGE.index("## Events") :]
    script = re.search(r"```sh\n(.*?)```", block, flags=re.S).group(1)
    schema.upgrade(sqlite_url)
    panel = FakePanel()
    url, process = serving(sqlite_url, panel)
    try:
        script = script.replace("http://127.0.0.1:8080", url)
        done = subprocess.run(
            ["bash", "-c", script], env={**os.environ, "PANEL_SSL_BRIDGE_SECRET": SECRET},
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        reply = json.loads(done.stdout)
        assert reply["ok"] is False and "12" in reply["error"], reply
    finally:
        process.terminate()
        process.wait(timeout=10)
        panel.stop()
