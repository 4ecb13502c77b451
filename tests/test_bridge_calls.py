"""The bridge's signed calls and the panel's signed events (contract sections 2 and 3)."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from panel_ssl_plugin.bridge.settings import BridgeSettings
from panel_ssl_plugin.bridge.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadSignature,
    BridgeKeys,
    signed_headers,
    verify,
)
from panel_ssl_plugin.cli import main
from tests.bridge_panel import FERNET_KEY, KEYS, SECRET, FakePanel, post_event, service

BODY = b'{"method": "send_mail", "params": {}}'


@pytest.fixture
def panel():
    panel = FakePanel()
    yield panel
    panel.stop()


def test_a_signature_is_the_hex_hmac_of_timestamp_and_body_with_a_derived_key():
    # as PHP says: hash_hmac('sha256', '1800000000.{}', hash_hkdf('sha256', $secret, 32,
    # 'panel-ssl/v1/event'))
    key = BridgeKeys.from_secret("k" * 40).events
    assert key.hex() == "e6cc728e8ec5a72f55e7f64d044b613ea39d9db2500fba85e43cb3416e7a734b"
    headers = signed_headers(key, 1_800_000_000, b"{}")
    assert headers == {
        TIMESTAMP_HEADER: "1800000000",
        SIGNATURE_HEADER: "v1=a29ca0841bb2944992830309968bdd92fe80299716170d245c4d391cf14034b4",
    }


def test_each_purpose_has_its_own_key():
    keys = BridgeKeys.from_secret(SECRET)
    derived = [keys.launch, keys.events, keys.calls, keys.webhooks, keys.forms]
    assert len(set(derived)) == 5 and all(len(key) == 32 for key in derived)
    assert SECRET.encode() not in derived and repr(keys) == "BridgeKeys(…)"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda h, b: (h, b + b" "), "does not match"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "v1=00"}, b), "does not match"),
        (lambda h, b: ({TIMESTAMP_HEADER: h[TIMESTAMP_HEADER]}, b), "not signed"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "soon"}, b), "unix seconds"),
    ],
)
def test_a_changed_request_is_refused(change, words):
    headers, body = change(signed_headers(KEYS.events, int(time.time()), BODY), BODY)
    with pytest.raises(BadSignature, match=words):
        verify(KEYS.events, headers, body, int(time.time()))


def test_a_request_signed_long_ago_is_refused():
    now = int(time.time())
    with pytest.raises(BadSignature, match="more than 300 seconds off"):
        verify(KEYS.events, signed_headers(KEYS.events, now - 301, BODY), BODY, now)
    verify(KEYS.events, signed_headers(KEYS.events, now - 300, BODY), BODY, now)


def cli_event(database_url: str, name: str, payload: object, monkeypatch) -> tuple[int, dict]:
    monkeypatch.setenv("PANEL_SSL_SECRET_KEYS", FERNET_KEY)
    result = CliRunner().invoke(
        main, ["event", name, "--database-url", database_url], input=json.dumps(payload)
    )
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize(
    ("name", "payload", "status"),
    [
        ("tick", {}, 200),
        ("account-updated", {"account_id": "7"}, 200),
        ("account-updated", {}, 400),
        ("renewal-due", {"account_id": "7", "certificate_id": 1}, 400),
        ("renewal-due", {"account_id": "7", "certificate_id": 99, "period_months": 12}, 409),
        ("tick", [], 400),
    ],
)
def test_an_event_answers_what_panel_ssl_event_prints(
    sqlite_url, panel, monkeypatch, name, payload, status
):
    app = service(sqlite_url, panel)
    response = post_event(app, name, payload)
    assert response.status_code == status
    code, printed = cli_event(sqlite_url, name, payload, monkeypatch)  # no id: nothing is sent
    assert response.json == printed
    assert {200: 0, 409: 1, 400: 2}[status] == code


def test_an_unsigned_or_unknown_event_does_nothing(sqlite_url, panel):
    app = service(sqlite_url, panel)
    refused = post_event(app, "tick", {}, key=BridgeKeys.from_secret("x" * 40).events)
    assert refused.status_code == 401
    assert refused.json == {
        "ok": False,
        "error": "The request's signature does not match the bridge's key for it.",
    }
    unsigned = app.test_client().post("/ssl/bridge/events/tick", json={})
    assert unsigned.status_code == 401
    assert post_event(app, "reboot", {}).status_code == 404


@pytest.mark.parametrize(
    ("environment", "words"),
    [
        ({}, "no bridge secret"),
        ({"PANEL_SSL_BRIDGE_URL": "http://panel/bridge"}, "no secret"),
        ({"PANEL_SSL_BRIDGE_SECRET": "short"}, "at least 32 characters"),
        ({"PANEL_SSL_BRIDGE_SECRET_FILE": "/nonexistent/secret"}, "cannot be read"),
    ],
)
def test_serve_says_what_to_set(sqlite_url, monkeypatch, environment, words):
    for name in ("PANEL_SSL_BRIDGE_URL", "PANEL_SSL_BRIDGE_SECRET", "PANEL_SSL_BRIDGE_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(main, ["serve", "--database-url", sqlite_url], env={**environment})
    assert result.exit_code == 2
    assert words in result.output


def test_the_secret_may_come_from_a_file_and_never_shows(tmp_path):
    (tmp_path / "secret").write_text(SECRET + "\n")
    settings = BridgeSettings.from_env({"PANEL_SSL_BRIDGE_SECRET_FILE": str(tmp_path / "secret")})
    assert settings.secret == SECRET
    assert SECRET not in repr(settings)
