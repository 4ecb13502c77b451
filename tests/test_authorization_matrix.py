"""Who may do what, on every route there is (issue 9): the plugin's blueprint and the minipanel.

The routes come from Flask's URL map, so a route added later without an entry in ACCESS fails
``test_every_route_has_an_entry``. Each route is tried by anonymous, bob (another reseller),
alice (the owner) and the admin, with every method it takes, on alice's orders in every state.
Whoever may not reach it gets 401, 403 or 404 (or the login page) and not one byte of alice's
data; whoever may gets anything but a refusal or a 500. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flask
import pytest
from werkzeug.routing import Rule

from panel_ssl_plugin import hookimpls
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.providers.base import OrderState
from panel_ssl_plugin.runtime import Runtime, runtime_for

from .conftest import csrf_token, fresh_database, login, minipanel
from .ordering import approve, draft
from .test_minipanel import client_ids

ACTORS = ("anonymous", "bob", "alice", "admin")
# Who may use a route: everyone; anyone logged in (and sees only their own); the owner of the
# client or order (and the admin); the admin alone; whoever holds a signed link.
EVERYONE, USER, OWNER, ADMIN, LINK = "everyone", "user", "owner", "admin", "link"
ALLOWED = {
    EVERYONE: set(ACTORS),
    USER: {"bob", "alice", "admin"},
    OWNER: {"alice", "admin"},
    ADMIN: {"admin"},
    LINK: set(),  # a made-up token or path opens nothing, whoever follows it
}
ACCESS = {
    "home": USER,
    "well_known": LINK,  # serves what the plugin published, nothing made up
    "admin": ADMIN,
    "client": EVERYONE,  # only a redirect to account_mgmt, which asks
    "account_mgmt": OWNER,
    "bill_renewal": OWNER,
    "login": EVERYONE,
    "logout": USER,
    "outbox": USER,
    "static": EVERYONE,
    "panel_ssl.static": EVERYONE,
    "panel_ssl.certs": OWNER,
    "panel_ssl.dcv_emails": OWNER,
    "panel_ssl.preflight": OWNER,
    "panel_ssl.order": OWNER,
    "panel_ssl.order_contact": OWNER,
    "panel_ssl.cert": OWNER,
    "panel_ssl.cert_cancel": OWNER,
    "panel_ssl.cert_check": OWNER,
    "panel_ssl.cert_discard": OWNER,
    "panel_ssl.cert_download": OWNER,
    "panel_ssl.cert_download_secret": OWNER,
    "panel_ssl.cert_reissue": OWNER,
    "panel_ssl.cert_renew": OWNER,
    "panel_ssl.cert_resend": OWNER,
    "panel_ssl.cert_resolve": ADMIN,
    "panel_ssl.cert_reveal_key": OWNER,
    "panel_ssl.provider_callback": LINK,
    "panel_ssl.admin_providers": ADMIN,
    "panel_ssl.admin_provider_new": ADMIN,
    "panel_ssl.admin_provider_edit": ADMIN,
    "panel_ssl.admin_provider_switch": ADMIN,
    "panel_ssl.admin_provider_test": ADMIN,
    "panel_ssl.admin_reminders": ADMIN,
}
REFUSED = {401, 403, 404}
PRIVATE = "alice-private"  # in the name of every one of alice's certificates
STATIC_FILES = {"static": "minipanel.css", "panel_ssl.static": "panel_ssl.css"}
FORM = {
    "reason": "audit", "password": "correct horse battery", "period_months": "12",
    "key_type": "ec256", "provider_order_id": "1", "action": "absent", "domain": "x.example",
    "certificate_id": "1", "username": "nobody", "label": "x", "provider_key": "sandbox",
}  # fmt: skip
CHECKED: Counter[str] = Counter()


@dataclass
class Panel:
    app: flask.Flask
    runtime: Runtime
    client: int  # alice's client
    orders: dict[str, int]  # state -> one of alice's orders in that state
    clients: dict[str, object]  # actor -> its test client


def _orders_in_every_state(app: flask.Flask, runtime: Runtime, client: int) -> dict[str, int]:
    """Real sandbox orders of alice's client, one per state the plugin knows."""
    account = runtime.accounts.all()[0].id
    orders = {}
    for state in OrderState:
        domain = f"{state}.{PRIVATE}.example"
        order = runtime.orders.place(draft(account, account_id=str(client), domain=domain), "alice")
        order = approve(app, runtime, order.order) if state != OrderState.PENDING else order.order
        if order.status != state:
            ended = datetime.now(UTC) - timedelta(days=1) if state == OrderState.EXPIRED else None
            values = {"status": str(state)} | ({"not_after": ended} if ended else {})
            order = runtime.orders.store.update_order(order, "test", "test", **values)
        orders[str(state)] = order.id
    return orders


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def panel(request, server_engines, tmp_path_factory) -> Panel:
    databases = fresh_database(request.param, server_engines, tmp_path_factory.mktemp("authz"))
    app = minipanel(next(databases))
    runtime = runtime_for(app.extensions["hosting_panel"])
    client = client_ids(app, "alice")[0]
    orders = _orders_in_every_state(app, runtime, client)
    clients = {actor: app.test_client() for actor in ACTORS}
    for actor in ACTORS[1:]:
        login(clients[actor], actor)
    yield Panel(app, runtime, client, orders, clients)
    next(databases, None)


def rules() -> list[Rule]:
    """Every route of the minipanel with the plugin, read off a panel that needs no data."""
    app = create_app({"DATABASE_URL": "sqlite://", "PLUGINS": [hookimpls]})
    return sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule)


def urls(rule: Rule, panel: Panel) -> list[str]:
    """The rule's URLs on alice's things: each of her orders for an order's route."""
    values: dict[str, object] = {}
    for name in rule.arguments:
        if name in ("client_id", "account_id") and "provider" not in rule.endpoint:
            values[name] = panel.client
        elif name in ("account_id", "provider_account_id"):
            values[name] = panel.runtime.accounts.all()[0].id
        elif name == "filename":
            values[name] = STATIC_FILES[rule.endpoint]
        elif name == "fmt":
            values[name] = sorted(rule._converters["fmt"].items)[0]
        elif name == "switch":
            values[name] = "enable"
        elif name in ("token", "rest"):
            values[name] = "made-up"
    if rule.endpoint == "panel_ssl.admin_provider_new":
        values["provider"] = "sandbox"  # which kind of account the form is for
    if "order_id" not in rule.arguments:
        return [_build(panel, rule, values)]
    return [_build(panel, rule, {**values, "order_id": o}) for o in panel.orders.values()]


def _build(panel: Panel, rule: Rule, values: dict[str, object]) -> str:
    with panel.app.test_request_context():
        return flask.url_for(rule.endpoint, **values)


def ask(panel: Panel, actor: str, method: str, url: str):
    client = panel.clients[actor]
    if method == "GET":
        return client.get(url)
    token = csrf_token(client, "/login" if actor == "anonymous" else "/")
    return client.post(url, data={"csrf_token": token, **FORM})


def test_every_route_has_an_entry():
    missing = {rule.endpoint for rule in rules()} - set(ACCESS)
    assert not missing, f"routes without an entry in ACCESS: {sorted(missing)}"


@pytest.mark.parametrize("rule", rules(), ids=lambda rule: rule.endpoint)
def test_only_who_may_reaches_a_route_and_nobody_else_sees_alices_data(panel, rule):
    allowed = ALLOWED[ACCESS[rule.endpoint]]
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    for actor in sorted(ACTORS, key=lambda a: a in allowed):  # refusals first: they change nothing
        for method in methods:
            for url in urls(rule, panel):
                response = ask(panel, actor, method, url)
                CHECKED[f"{actor} {method}"] += 1
                where = f"{actor} {method} {url}: {response.status_code}"
                assert response.status_code != 500, where
                if actor in allowed:
                    assert response.status_code not in REFUSED, where
                else:
                    assert response.status_code in REFUSED or _to_login(response), where
                if actor not in ("alice", "admin"):
                    assert PRIVATE not in response.get_data(as_text=True), where
    if rule.endpoint == "logout":  # log them in again for the routes after this one
        for actor in ACTORS[1:]:
            login(panel.clients[actor], actor)


def _to_login(response) -> bool:
    return response.status_code == 302 and re.match(r"/login\b", response.location or "")


def test_the_count_of_requests_checked(panel):
    """Runs last for each database: what docs/security.md quotes."""
    routes = len(rules())
    lines = [f"{routes} routes; requests by actor and method: {dict(sorted(CHECKED.items()))}",
             f"total: {sum(CHECKED.values())}"]  # fmt: skip
    out = Path("test-output")
    out.mkdir(exist_ok=True)
    (out / "authorization-matrix.txt").write_text("\n".join(lines) + "\n")
    assert sum(CHECKED.values()) > routes * len(ACTORS)
