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
    signed_headers,
    verify,
)
from panel_ssl_plugin.cli import main
from tests.bridge_panel import FERNET_KEY, SECRET, FakePanel, service

BODY = b'{"method": "send_mail", "params": {}}'


@pytest.fixture
def panel():
    panel = FakePanel()
    yield panel
    panel.stop()


def test_a_signature_is_the_hex_hmac_of_timestamp_and_body():
    headers = signed_headers("k" * 40, 1_800_000_000, b"{}")
    # as `printf "1800000000.{}" | openssl dgst -sha256 -hmac <secret>` and PHP's hash_hmac say
    assert headers == {
        TIMESTAMP_HEADER: "1800000000",
        SIGNATURE_HEADER: "v1=bfc66f477999f67496847d7e6ef53962bdc389d6125217e3475e65fd20a48e88",
    }


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
    headers, body = change(signed_headers(SECRET, int(time.time()), BODY), BODY)
    with pytest.raises(BadSignature, match=words):
        verify(SECRET, headers, body, int(time.time()))


def test_a_request_signed_long_ago_is_refused():
    now = int(time.time())
    with pytest.raises(BadSignature, match="more than 300 seconds off"):
        verify(SECRET, signed_headers(SECRET, now - 301, BODY), BODY, now)
    verify(SECRET, signed_headers(SECRET, now - 300, BODY), BODY, now)


def post_event(app, name: str, payload: object, secret: str = SECRET):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    headers.update(signed_headers(secret, int(time.time()), body))
    return app.test_client().post(f"/ssl/bridge/events/{name}", data=body, headers=headers)


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
    code, printed = cli_event(sqlite_url, name, payload, monkeypatch)
    assert response.json == printed
    assert {200: 0, 409: 1, 400: 2}[status] == code


def test_an_unsigned_or_unknown_event_does_nothing(sqlite_url, panel):
    app = service(sqlite_url, panel)
    refused = post_event(app, "tick", {}, secret="x" * 40)
    assert refused.status_code == 401
    assert refused.json == {
        "ok": False,
        "error": "The request's signature does not match the bridge secret.",
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
