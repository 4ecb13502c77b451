"""The minipanel's own security (issue 9): where a login may send you, whose mail the outbox
shows, that a logged-out cookie stays logged out, and that guessing passwords is slow and says
nothing about which user names exist."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import pytest

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.minipanel import db as panel_db
from panel_ssl_plugin.minipanel.auth import THROTTLE
from panel_ssl_plugin.runtime import runtime_for

from .conftest import csrf_token, login, minipanel
from .ordering import approval_token, draft
from .test_minipanel import client_ids


@pytest.fixture
def panel(database_url):
    """The minipanel on each of the three databases."""
    return minipanel(database_url)


def try_login(client, username: str, password: str, url: str = "/login"):
    """Post the login form as a browser would: to the page it came from, ``next`` included."""
    token = csrf_token(client, url)
    return client.post(url, data={"username": username, "password": password, "csrf_token": token})


# --- item 2: where a login sends you ------------------------------------------------------------

OFF_SITE = (
    "//evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "/\t/evil.example",
    "https://evil.example/",
    "http:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "//[evil.example",
    "http://[::1",
    "",
)


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_never_redirects_off_site(client, target):
    response = try_login(client, "alice", "alice", f"/login?next={quote(target, safe='')}")
    assert response.status_code == 302 and response.location == "/"


def test_login_goes_back_to_the_page_asked_for(client):
    sent_to_login = client.get("/clients/1/account-mgmt?tab=x")
    response = try_login(client, "alice", "alice", sent_to_login.location)
    assert response.location == "/clients/1/account-mgmt?tab=x"


# --- item 3: the outbox, per tenant ---------------------------------------------------------------


def place(app, client_id: int, domain: str, actor: str):
    """An order of ``client_id`` with the sandbox: its approval mail lands in the outbox."""
    runtime = runtime_for(app.extensions["hosting_panel"])
    account = runtime.accounts.all()[0].id
    return runtime.orders.place(
        draft(account, account_id=str(client_id), domain=domain), actor
    ).order


def test_outbox_shows_each_reseller_only_mail_about_their_clients(panel):
    alices = place(panel, client_ids(panel, "alice")[0], "shop.alice.example", "alice")
    bobs = place(panel, client_ids(panel, "bob")[0], "tours.bob.example", "bob")
    pm = panel.extensions["hosting_panel"]
    pm.hook.host_send_mail(
        to="ops@panel.example", subject="Nightly report", body="all fine", account_id=None
    )
    pages = {}
    for user in ("alice", "bob", "admin"):
        client = panel.test_client()
        login(client, user)
        pages[user] = client.get("/outbox").text
    alice_link, bob_link = approval_token(panel, alices), approval_token(panel, bobs)
    assert alice_link in pages["alice"] and alices.provider_order_id in pages["alice"]
    assert bob_link not in pages["alice"] and "bob.example" not in pages["alice"]
    assert bob_link in pages["bob"] and alices.provider_order_id not in pages["bob"]
    assert alice_link not in pages["bob"] and "alice.example" not in pages["bob"]
    assert "Nightly report" not in pages["alice"] + pages["bob"]
    assert alice_link in pages["admin"] and bob_link in pages["admin"]
    assert "Nightly report" in pages["admin"]


def test_a_mail_sent_again_is_still_the_clients(app, as_user):
    order = place(app, client_ids(app, "alice")[0], "again.alice.example", "alice")
    runtime_for(app.extensions["hosting_panel"]).orders.resend_approval(order.id, "alice")
    page = as_user("alice").get("/outbox").text
    assert page.count(f"(order {order.provider_order_id})") == 2
    assert approval_token(app, order) not in as_user("bob").get("/outbox").text


# --- item 4: sessions end on the server -----------------------------------------------------------


def test_a_copied_cookie_stops_working_after_logout(panel):
    alice = panel.test_client()
    login(alice, "alice")
    copy = alice.get_cookie("session").value
    assert alice.get("/").status_code == 200
    token = csrf_token(alice, "/")
    assert alice.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = panel.test_client()
    thief.set_cookie("session", copy)
    response = thief.get("/outbox")
    assert response.status_code == 302 and response.location.startswith("/login")


def test_logging_in_again_ends_the_session_before(app):
    shared = app.test_client()
    login(shared, "alice")
    alices = shared.get_cookie("session").value
    login(shared, "bob")
    copy = app.test_client()
    copy.set_cookie("session", alices)
    assert copy.get("/").status_code == 302


def test_the_cookie_holds_a_session_id_not_the_user(app, as_user):
    cookie = as_user("alice").get_cookie("session").value
    data = app.session_interface.get_signing_serializer(app).loads(cookie)
    assert "user_id" not in data and set(data) <= {"sid", "csrf_token", "_flashes"}


def test_a_session_ends_after_its_lifetime(app, as_user):
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(0)
    assert as_user("alice").get("/").status_code == 302


# --- ids and names no column can hold: no row, not a database error ---------------------------


@pytest.mark.parametrize("client_id", ["2147483648", "9223372036854775808", "1" * 30])
def test_client_ids_beyond_the_column_are_not_found(panel, client_id):
    admin = panel.test_client()
    login(admin, "admin")
    assert admin.get(f"/clients/{client_id}/account-mgmt").status_code == 404


@pytest.mark.parametrize("account_id", ["²", "\u0661", "2147483648", "1" * 30, "1\x00", ""])
def test_account_ids_no_client_has_are_no_account(panel, account_id):
    pm = panel.extensions["hosting_panel"]
    reseller = Actor("2", "Alice", "reseller")
    assert pm.hook.host_account_profile(account_id=account_id) is None
    assert pm.hook.host_account_contacts(account_id=account_id) == []
    assert not pm.hook.host_permission_allowed(
        actor=reseller, action="ssl.view", account_id=account_id
    )


def test_a_published_path_with_nul_is_not_found(panel):
    assert panel.test_client().get("/.well-known/acme-challenge/x%00y").status_code == 404


# --- item 5: login throttle and constant work -----------------------------------------------------


def test_five_failures_then_429_with_retry_after(panel):
    assert THROTTLE.per_user == 5 and THROTTLE.window == timedelta(minutes=15)
    client = panel.test_client()
    for _ in range(5):
        assert try_login(client, "alice", "wrong").status_code == 200
    response = try_login(client, "alice", "alice")  # the right password changes nothing now
    assert response.status_code == 429
    assert "Too many failed log-ins" in response.text
    assert 0 < int(response.headers["Retry-After"]) <= 15 * 60
    assert 'value="alice"' in response.text  # what was typed stays in the form
    other = panel.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert try_login(other, "alice", "alice").status_code == 429  # by user, from anywhere
    assert try_login(other, "bob", "bob").status_code == 302


def test_many_user_names_from_one_address_are_throttled(app):
    client = app.test_client()
    for index in range(THROTTLE.per_address):
        assert try_login(client, f"guess{index}", "x").status_code == 200
    assert try_login(client, "bob", "bob").status_code == 429
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "192.0.2.8"
    assert try_login(elsewhere, "bob", "bob").status_code == 302


def test_the_throttle_is_shared_by_every_process(sqlite_url):
    first, second = minipanel(sqlite_url), create_app({"DATABASE_URL": sqlite_url})
    for _ in range(THROTTLE.per_user):
        try_login(first.test_client(), "alice", "wrong")
    assert try_login(second.test_client(), "alice", "alice").status_code == 429


def test_a_login_forgives_the_users_earlier_failures(client):
    for _ in range(THROTTLE.per_user - 1):
        try_login(client, "alice", "wrong")
    assert try_login(client, "alice", "alice").status_code == 302
    assert try_login(client, "alice", "wrong").status_code == 200


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("alice", "alice"), ("nobody", "x")]
)
def test_every_login_checks_one_password_hash(client, monkeypatch, username, password):
    """An unknown user costs what a known one does, so timing does not tell them apart."""
    calls = []
    real = panel_db.check_password_hash

    def spy(stored: str, given: str) -> bool:
        calls.append(stored)
        return real(stored, given)

    monkeypatch.setattr(panel_db, "check_password_hash", spy)
    try_login(client, username, password)
    assert len(calls) == 1


@pytest.mark.parametrize("username", ["al\x00ice", "a" * 10_000, "<b>alice</b>", "ä" * 81])
def test_hostile_user_names_are_a_wrong_login(panel, username):
    response = try_login(panel.test_client(), username, "x\x00" * 50)
    assert response.status_code == 200 and "Wrong user name or password" in response.text
    assert "<b>alice</b>" not in response.text
