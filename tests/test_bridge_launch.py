"""Launch links: a valid token opens its popup for its account only; any other gets 401, one
sentence and no session (issue 13). Counted in the sessions table, not assumed."""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import timedelta

import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from panel_ssl_plugin.bridge.tokens import CLAIMS
from panel_ssl_plugin.bridge.web import COOKIE
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import bridge_grants, bridge_launches, bridge_sessions, utcnow
from panel_ssl_plugin.store.bridge import IDLE
from tests.bridge_panel import FakePanel, launch_token, service
from tests.test_order_flow import FormReader


@pytest.fixture
def panel():
    panel = FakePanel()
    yield panel
    panel.stop()


@pytest.fixture
def bridged(sqlite_url, panel):
    return service(sqlite_url, panel)


def sessions(database_url: str) -> int:
    with sa.create_engine(database_url).connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(bridge_sessions)).scalar()


def launch(app, token: str):
    return app.test_client().get("/ssl/launch", query_string={"token": token})


def test_a_launch_link_opens_the_order_popup_for_its_account(bridged, panel, sqlite_url):
    client = bridged.test_client()
    response = client.get("/ssl/launch", query_string={"token": launch_token()})
    assert response.status_code == 302
    assert response.location == "/ssl/accounts/7/order"
    assert "HttpOnly" in response.headers["Set-Cookie"]
    page = client.get("/ssl/accounts/7/order")
    assert page.status_code == 200
    assert "Bäckerei Müller GmbH" in page.text  # pre-filled from the panel's profile
    assert ("account_profile", {"account_id": "7"}) in panel.calls
    assert sessions(sqlite_url) == 1


@pytest.mark.parametrize(
    ("target", "location"),
    [("certs", "/ssl/accounts/7/certs"), ("admin", "/ssl/admin/providers")],
)
def test_each_target_leads_to_its_page(bridged, target, location):
    response = launch(bridged, launch_token(target=target, role="admin"))
    assert response.location == location


def _swapped_account(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["account"] = "8"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def _rs256() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return launch_token(secret=pem, algorithm="RS256")


NOW = int(time.time())
BAD_TOKENS = {
    "expired": (lambda: launch_token(iat=NOW - 400, exp=NOW - 100), "expired"),
    "wrong secret": (lambda: launch_token(secret="x" * 40), "not signed by your panel"),
    "alg none": (
        lambda: jwt.encode({"sub": "2", "account": "7"}, None, algorithm="none"),
        "not signed with HS256",
    ),
    "RS256": (_rs256, "not signed with HS256"),
    "account swapped": (lambda: _swapped_account(launch_token()), "not signed by your panel"),
    "too long-lived": (lambda: launch_token(exp=NOW + 3600), "more than 300 seconds"),
    "bad role": (lambda: launch_token(role="root"), "role must be one of"),
    "bad target": (lambda: launch_token(target="shell"), "target must be one of"),
    "garbage": (lambda: "not-a-token", "not a valid launch token"),
    **{
        f"no {claim}": (lambda claim=claim: launch_token(**{claim: None}), f"lacks its {claim}")
        for claim in CLAIMS
    },
}


@pytest.mark.parametrize("case", list(BAD_TOKENS))
def test_a_bad_token_gets_401_one_sentence_and_no_session(bridged, sqlite_url, case):
    make, words = BAD_TOKENS[case]
    response = launch(bridged, make())
    assert response.status_code == 401
    assert words in response.text
    assert "Set-Cookie" not in response.headers
    assert sessions(sqlite_url) == 0


def test_a_token_works_once(bridged, sqlite_url):
    token = launch_token()
    assert launch(bridged, token).status_code == 302
    replay = launch(bridged, token)
    assert replay.status_code == 401
    assert "used already" in replay.text
    assert "Set-Cookie" not in replay.headers
    assert sessions(sqlite_url) == 1


def test_twenty_at_once_start_one_session(database_url, panel):
    app = service(database_url, panel)
    token, statuses = launch_token(), []
    start = threading.Barrier(20)

    def click() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(client.get("/ssl/launch", query_string={"token": token}).status_code)

    threads = [threading.Thread(target=click) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [302] + [401] * 19
    assert sessions(database_url) == 1


def test_a_session_reaches_only_the_accounts_its_tokens_named(bridged, sqlite_url):
    """Another reseller's token for account 7 opens account 7, and nothing else by URL."""
    client = bridged.test_client()
    token = launch_token(sub="3", name="Bob", target="certs")
    assert client.get("/ssl/launch", query_string={"token": token}).status_code == 302
    assert client.get("/ssl/accounts/7/certs").status_code == 200
    assert client.get("/ssl/accounts/8/certs").status_code == 403
    assert client.get("/ssl/accounts/8/order").status_code == 403
    assert client.get("/ssl/admin/providers").status_code == 403
    # a second token adds its account to the same session
    token = launch_token(sub="3", name="Bob", account="8", target="certs")
    assert client.get("/ssl/launch", query_string={"token": token}).status_code == 302
    assert client.get("/ssl/accounts/8/certs").status_code == 200
    assert sessions(sqlite_url) == 1
    with sa.create_engine(sqlite_url).connect() as conn:
        granted = conn.execute(sa.select(bridge_grants.c.account_id)).scalars().all()
    assert sorted(granted) == ["7", "8"]


def test_another_actors_token_asks_first_then_starts_its_own_session(bridged, sqlite_url):
    """Issue 19, finding 9: a link someone else signed no longer swaps the session silently
    (login CSRF); the person is asked, and agreeing ends the old session."""
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    token = launch_token(sub="3", name="Bob", account="8", target="certs")
    asked = client.get("/ssl/launch", query_string={"token": token})
    assert asked.status_code == 200 and "Continue as Bob" in asked.text
    assert COOKIE not in str(asked.headers.getlist("Set-Cookie"))
    assert client.get("/ssl/accounts/7/certs").status_code == 200  # still Alice's
    agreed = client.post("/ssl/launch", data=FormReader(asked.text).values)
    assert agreed.status_code == 302 and agreed.location == "/ssl/accounts/8/certs"
    assert client.get("/ssl/accounts/7/certs").status_code == 403  # Bob's session now
    assert client.get("/ssl/accounts/8/certs").status_code == 200
    assert sessions(sqlite_url) == 1  # Alice's ended


def test_the_switch_needs_the_form_and_a_fresh_token(bridged, sqlite_url):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    token = launch_token(sub="3", name="Bob")
    assert client.post("/ssl/launch", data={"token": token}).status_code == 400  # no CSRF
    asked = client.get("/ssl/launch", query_string={"token": token})
    assert client.post("/ssl/launch", data=FormReader(asked.text).values).status_code == 302
    again = client.post("/ssl/launch", data=FormReader(asked.text).values)
    assert again.status_code == 401 and "used already" in again.text
    assert sessions(sqlite_url) == 1


def test_the_admin_role_reaches_the_admin_pages(bridged):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token(role="admin", target="admin")})
    assert client.get("/ssl/admin/providers").status_code == 200
    assert client.get("/ssl/admin/webhooks").status_code == 200


def test_without_a_session_a_popup_says_where_to_open_it(bridged):
    response = bridged.test_client().get("/ssl/accounts/7/order")
    assert response.status_code == 401
    assert "Account Mgmt" in response.text
    forged = bridged.test_client()
    forged.set_cookie(COOKIE, "made-up")
    assert forged.get("/ssl/accounts/7/order").status_code == 401


def test_the_panel_down_is_said_in_words(bridged, panel):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    panel.stop()
    response = client.get("/ssl/accounts/7/order")
    assert response.status_code == 502
    assert "Your panel could not be reached" in response.text


def test_the_panels_refusal_is_said_in_words(bridged, panel):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    panel.refuse = "Client 7 is suspended."
    response = client.get("/ssl/accounts/7/order")
    assert response.status_code == 502
    assert "Your panel refused account_profile: Client 7 is suspended." in response.text


def test_an_idle_session_ends_and_the_tick_forgets_it(bridged, sqlite_url):
    """Issue 19, finding 9: unused for IDLE, a session is over (it used to live 8 hours)."""
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token()})
    pm = bridged.extensions["panel_ssl"]
    later = utcnow() + IDLE
    pm.hook.panel_tick(pm=pm, now=later - timedelta(minutes=1))
    assert sessions(sqlite_url) == 1
    pm.hook.panel_tick(pm=pm, now=later)
    assert sessions(sqlite_url) == 0
    assert client.get("/ssl/accounts/7/order").status_code == 401
    with sa.create_engine(sqlite_url).connect() as conn:
        assert conn.execute(sa.select(bridge_grants)).all() == []
        assert conn.execute(sa.select(bridge_launches)).all() == []


def test_a_page_looks_its_session_up_once_and_a_style_sheet_not_at_all(bridged):
    client = bridged.test_client()
    client.get("/ssl/launch", query_string={"token": launch_token(target="certs")})
    engine = runtime_for(bridged.extensions["panel_ssl"]).engine
    lookups: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if "FROM ssl_bridge_sessions" in statement:
            lookups.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    assert client.get("/ssl/accounts/7/certs").status_code == 200
    assert len(lookups) == 1
    assert client.get("/ssl/static/panel_ssl.css").status_code == 200
    assert len(lookups) == 1
    sa.event.remove(engine, "before_cursor_execute", count)
