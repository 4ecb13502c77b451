"""Issue 19, findings 3, 4, 8 and 9: the service as an attacker meets it.

3. An unsigned request's body is never read, and no body is larger than its route allows.
4. No input is a 500: odd signatures, JSON numbers beyond float, deep nesting, launch claims of
   the wrong kind, NUL and lone surrogates (on PostgreSQL, which refuses both).
8. A signed event is used once (its id), and a signature made for one purpose (a call to the
   panel) verifies for no other (an event from the panel).
9. Sessions end: the panel's logout, the idle timeout; a reseller's admin link is refused at
   launch; errors are pages in the plugin's layout; the cookies are the plugin's own; the 502
   page names no internal address.
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import timedelta

import pytest

from panel_ssl_plugin.bridge.signing import signed_headers
from panel_ssl_plugin.bridge.web import COOKIE, EVENT_LIMIT
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import utcnow
from panel_ssl_plugin.store.bridge import IDLE, BridgeRecords
from tests.bridge_panel import KEYS, FakePanel, event_request, launch_token, post_event, service
from tests.conftest import fresh_database
from tests.ordering import draft


@pytest.fixture
def panel():
    panel = FakePanel()
    yield panel
    panel.stop()


@pytest.fixture
def bridged(sqlite_url, panel):
    return service(sqlite_url, panel)


@pytest.fixture
def on_postgres(server_engines, tmp_path, panel):
    """The service on PostgreSQL, which refuses NUL in text (SQLite stores it)."""
    databases = fresh_database("postgresql", server_engines, tmp_path)
    yield service(next(databases), panel)
    next(databases, None)


class CountingStream(io.BytesIO):
    """A request body that counts the bytes the service takes from it."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.taken = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.taken += len(data)
        return data

    def readinto(self, buffer) -> int:
        count = super().readinto(buffer)
        self.taken += count
        return count


# --- 3: the body of an event ---------------------------------------------------------------------


def test_an_unsigned_event_is_refused_before_its_body_is_read(bridged):
    body = CountingStream(b"x" * 5_000_000)
    response = bridged.test_client().post(
        "/ssl/bridge/events/tick", input_stream=body, content_length=5_000_000
    )
    assert response.status_code == 401 and "not signed" in response.json["error"]
    assert body.taken == 0


def test_an_event_larger_than_64_kib_is_refused_in_words(bridged):
    padding = "x" * EVENT_LIMIT
    response = post_event(bridged, "tick", {"padding": padding})
    assert response.status_code == 413
    assert response.json == {"ok": False, "error": "The request is larger than 65,536 bytes."}


def test_no_page_takes_more_than_a_mebibyte(bridged):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    response = client.post("/ssl/accounts/7/order", data={"domain": "x" * 2_000_000})
    assert response.status_code == 413 and "larger than 1,048,576 bytes" in response.text


# --- 4: nothing is a 500 --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"account_id": "7", "certificate_id": 1e999, "period_months": 12}', "too large"),
        (b'{"account_id": "7", "certificate_id": Infinity, "period_months": 12}', "Infinity"),
        (b'{"account_id": "7", "certificate_id": NaN, "period_months": 12}', "NaN"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"a": "\xff"}', "not UTF-8"),
        (b'{"account_id": "7", "certificate_id": ' + b"9" * 5000 + b"}", "not JSON"),
    ],
)
def test_signed_bodies_that_do_not_decode_are_a_400_sentence(bridged, body, words):
    headers = signed_headers(KEYS.events, int(time.time()), body)
    response = bridged.test_client().post(
        "/ssl/bridge/events/renewal-due", data=body, headers=headers
    )
    assert response.status_code == 400
    assert words in response.json["error"]


@pytest.mark.parametrize(
    "payload",
    [
        {"account_id": "7", "certificate_id": 10**30, "period_months": 12},
        {"account_id": "7", "certificate_id": 1, "period_months": -5},
        {"account_id": "7", "certificate_id": True, "period_months": 12},
        {"account_id": "7", "certificate_id": 1.5, "period_months": 12},
        {"account_id": ["7"], "certificate_id": 1, "period_months": 12},
        {"account_id": "7\x00", "certificate_id": 1, "period_months": 12},
    ],
)
def test_event_fields_of_the_wrong_kind_are_a_400(on_postgres, payload):
    response = post_event(on_postgres, "renewal-due", payload)
    assert response.status_code == 400, response.json
    assert response.json["error"].startswith("bad input")


@pytest.mark.parametrize(
    "signature", ["v1=é" + "0" * 62, "v1=\u00ff", "v1,abc", "", "v1=" + "0" * 64 + "\u00e9"]
)
def test_an_odd_signature_header_is_a_401(bridged, signature):
    request = event_request({})
    request["headers"]["X-Panel-SSL-Signature"] = signature
    response = bridged.test_client().post("/ssl/bridge/events/tick", **request)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"iat": "1700000000"}, "iat claim must be a time"),
        ({"exp": "9999999999"}, "exp claim must be a time"),
        ({"exp": True}, "expired"),  # PyJWT reads True as 1
        ({"account": "7\x00"}, "account claim must be printable"),
        ({"jti": "a\x00b"}, "jti claim must be printable"),
        ({"name": "Alice\x00"}, "name claim must be printable"),
        ({"sub": "\ud800"}, "sub claim must be printable"),
        ({"name": "Al\u202eice"}, "name claim must be printable"),
        ({"sub": 2}, "sub claim must be printable"),
    ],
)
def test_launch_claims_of_the_wrong_kind_are_a_401(on_postgres, claims, words):
    response = on_postgres.test_client().get(
        "/ssl/launch", query_string={"token": launch_token(**claims)}
    )
    assert response.status_code == 401
    assert words in response.text


# --- 8: replays, and keys per purpose ---------------------------------------------------------


def test_a_signed_event_is_used_once(bridged):
    request = event_request({})
    client = bridged.test_client()
    assert client.post("/ssl/bridge/events/tick", **request).status_code == 200
    replay = client.post("/ssl/bridge/events/tick", **request)
    assert replay.status_code == 409 and "received already" in replay.json["error"]


def test_an_event_without_an_id_is_refused(bridged):
    body = b"{}"
    headers = signed_headers(KEYS.events, int(time.time()), body)
    response = bridged.test_client().post("/ssl/bridge/events/tick", data=body, headers=headers)
    assert response.status_code == 400 and "id is missing" in response.json["error"]


def test_the_renewal_replayed_after_a_cancel_buys_nothing(bridged, panel):
    """The reported attack: the same signed renewal-due again, once the renewal is gone."""
    orders = runtime_for(bridged.extensions["panel_ssl"]).orders
    order = _issued(bridged, panel)
    request = event_request({"account_id": "7", "certificate_id": order.id, "period_months": 12})
    client = bridged.test_client()
    first = client.post("/ssl/bridge/events/renewal-due", **request)
    assert first.status_code == 200
    orders.cancel(first.json["renewal_order_id"], "alice", "changed my mind")
    replay = client.post("/ssl/bridge/events/renewal-due", **request)
    assert replay.status_code == 409
    assert len(orders.store.chain(order.id)) == 2  # the order and the cancelled renewal


def test_a_captured_call_does_not_verify_as_an_event(bridged, panel):
    """A call the service signed for the panel, posted back to the service as an event."""
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    client.get("/ssl/accounts/7/order")
    headers, body = panel.raw[0]
    captured = {name: headers[name] for name in ("X-Panel-Ssl-Timestamp", "X-Panel-Ssl-Signature")}
    response = client.post("/ssl/bridge/events/account-updated", data=body, headers=captured)
    assert response.status_code == 401


# --- 9: sessions ------------------------------------------------------------------------------


def test_the_panels_logout_ends_its_users_sessions(bridged):
    alice, elsewhere, bob = (bridged.test_client() for _ in range(3))
    for client in (alice, elsewhere):
        client.get("/ssl/launch", query_string={"token": launch_token()})
    bob.get("/ssl/launch", query_string={"token": launch_token(sub="3", name="Bob")})
    ended = post_event(bridged, "logout", {"user": "2"})
    assert ended.json == {"ok": True, "sessions_ended": 2}
    assert alice.get("/ssl/accounts/7/order").status_code == 401
    assert elsewhere.get("/ssl/accounts/7/order").status_code == 401
    assert bob.get("/ssl/accounts/7/order").status_code == 200
    assert post_event(bridged, "logout", {}).status_code == 400


def test_a_session_used_stays_open_and_one_left_alone_closes(bridged):
    records = BridgeRecords(runtime_for(bridged.extensions["panel_ssl"]).engine)
    client = bridged.test_client()
    opened = client.get("/ssl/launch", query_string={"token": launch_token()})
    cookie = re.search(rf"{COOKIE}=([^;]+)", opened.headers["Set-Cookie"]).group(1)
    now = utcnow()
    for minutes in (20, 40, 60):  # used every 20 minutes: open an hour on
        assert records.session(cookie, now + timedelta(minutes=minutes)) is not None
    assert records.session(cookie, now + timedelta(minutes=60) + IDLE) is None


def test_a_resellers_admin_link_is_refused_at_launch(bridged):
    response = bridged.test_client().get(
        "/ssl/launch", query_string={"token": launch_token(target="admin", account="-")}
    )
    assert response.status_code == 401
    assert "Only an admin&#39;s link opens the admin pages" in response.text
    assert COOKIE not in str(response.headers.getlist("Set-Cookie"))


def test_errors_are_pages_in_the_plugins_layout(bridged):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    for path, status in (("/ssl/accounts/8/order", 403), ("/ssl/no-such-page", 404)):
        response = client.get(path)
        assert response.status_code == status
        assert "panel_ssl.css" in response.text and 'role="alert"' in response.text


def test_the_service_cookies_are_its_own(bridged):
    client = bridged.test_client()
    opened = client.get("/ssl/launch", query_string={"token": launch_token()})
    page = client.get("/ssl/accounts/7/order")
    names = [c.split("=")[0] for r in (opened, page) for c in r.headers.getlist("Set-Cookie")]
    assert names and all(name.startswith("panel_ssl_") for name in names), names


def test_the_502_page_names_no_internal_address(bridged, panel, caplog):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    panel.stop()
    response = client.get("/ssl/accounts/7/order")
    assert response.status_code == 502 and "could not be reached" in response.text
    assert panel.url not in response.text and "127.0.0.1" not in response.text
    assert panel.url in caplog.text  # the log has it


def _issued(app, panel):
    """An issued sandbox order of account 7, approved through the link the panel was mailed."""
    runtime = runtime_for(app.extensions["panel_ssl"])
    account = runtime.accounts.all()[0].id
    order = runtime.orders.place(draft(account, account_id="7"), "Alice (#2)").order
    token = re.search(r"/callback/(\S+)", panel.mails[-1]["body"]).group(1)
    runtime.orders.handle_callback(account, token)
    return runtime.orders.get(order.id)


def test_json_of_the_event_reply(bridged):
    """The reply of every event is JSON, errors too (a program reads it)."""
    response = bridged.test_client().post("/ssl/bridge/events/nope", data=b"{}")
    assert response.status_code == 404 and json.loads(response.data)["ok"] is False
