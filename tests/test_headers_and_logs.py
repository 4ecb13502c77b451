"""Security headers on every page, and no secret or personal data in any log line.

Every route is taken from the Flask URL map, so a route added later is checked without an entry
here. Log records are read as a log handler would write them: message and exception together.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.routing import AnyConverter, IntegerConverter, Rule
from werkzeug.serving import make_server

from panel_ssl_plugin.minipanel import app as minipanel_app
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.runtime import runtime_for

from .ordering import approval_token, draft, issued

FIXED_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
# what the plugin's own pages need, and nothing more: its script and style, fetch and forms to
# its origin; no inline code, no plugins, no <base>
CSP_DIRECTIVES = {
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
}
ACTORS = (None, "alice", "admin")
TEMPLATE_FOLDERS = (resource_path("templates"), Path(minipanel_app.__file__).parent / "templates")
INLINE_CODE = re.compile(
    r'<script(?![^>]*\b(?:src=|type="application/json"))|<style|\sstyle=|\son\w+='
)


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def order(app, runtime):
    """An issued certificate of client 1: the certificate pages render in full."""
    return issued(app, runtime)


def sample_values(rule: Rule, order_id: int) -> dict[str, object]:
    """A value for each variable of ``rule`` that reaches the view: the order, client 1, the
    first provider account, a static file that exists."""
    files = {"panel_ssl.static": "panel_ssl.css", "static": "minipanel.css"}
    values: dict[str, object] = {}
    for name in rule.arguments:
        converter = rule._converters[name]
        if isinstance(converter, AnyConverter):
            values[name] = sorted(converter.items)[0]
        elif isinstance(converter, IntegerConverter):
            values[name] = order_id if name == "order_id" else 1
        else:
            values[name] = files.get(rule.endpoint, "1") if name == "filename" else "1"
    return values


def every_request(app, order_id: int, plugin: bool) -> Iterator[tuple[str, str]]:
    """(method, url) for each method of each rule of the plugin's blueprint, or of the host."""
    urls = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("panel_ssl.") != plugin:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = urls.build(rule.endpoint, sample_values(rule, order_id), method=method)
            yield method, url


def clients(app, as_user):
    return {actor: as_user(actor) if actor else app.test_client() for actor in ACTORS}


def assert_security_headers(response, where: str, frame_ancestors: str = "'self'") -> None:
    for name, value in FIXED_HEADERS.items():
        assert response.headers.get(name) == value, f"{name} on {where}"
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {part.strip() for part in policy.split(";")}
    assert directives >= {*CSP_DIRECTIVES, f"frame-ancestors {frame_ancestors}"}, where
    assert "unsafe" not in policy, where


def check_routes(app, as_user, order_id: int, plugin: bool) -> dict[int, int]:
    """Request every route (the plugin's or the host's) as every actor; answers per status."""
    statuses: dict[int, int] = {}
    for actor, client in clients(app, as_user).items():
        for method, url in every_request(app, order_id, plugin):
            response = client.open(url, method=method)
            assert_security_headers(response, f"{method} {url} as {actor}")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses


# --- item 6: headers --------------------------------------------------------------------------


def test_every_blueprint_route_sends_the_security_headers(app, as_user, order):
    statuses = check_routes(app, as_user, order.id, plugin=True)
    assert statuses.get(200, 0) >= 10, statuses  # rendered pages, not only refusals
    assert statuses.get(302) and statuses.get(404), statuses  # redirects and refusals too


def test_minipanel_pages_send_the_same_headers(app, as_user, order):
    statuses = check_routes(app, as_user, order.id, plugin=False)
    assert statuses.get(200, 0) >= 8, statuses


def test_frame_ancestors_is_the_hosts_choice(app, as_user):
    app.config["PANEL_SSL_FRAME_ANCESTORS"] = "'self' https://panel.example"
    response = as_user("alice").get("/ssl/accounts/1/order")
    assert_security_headers(response, "the order popup", "'self' https://panel.example")


@pytest.mark.parametrize("value", ["'self'; script-src *", "'self', *", "'self'\nX-Evil: 1"])
def test_frame_ancestors_cannot_add_directives(app, value):
    app.config["PANEL_SSL_FRAME_ANCESTORS"] = value
    with pytest.raises(ValueError, match="PANEL_SSL_FRAME_ANCESTORS"):
        app.test_client().get("/ssl/accounts/1/order")


def test_no_template_carries_inline_script_or_style():
    """A strict policy blocks inline code, so none may be left in the markup (a JSON data block
    is data, not script: it runs under any policy)."""
    for folder in TEMPLATE_FOLDERS:
        for page in folder.rglob("*.html"):
            found = INLINE_CODE.search(page.read_text())
            assert found is None, f"{page}: {found.group(0)}"


# --- item 8: logs -----------------------------------------------------------------------------


@pytest.fixture
def served(app) -> Iterator[str]:
    """The minipanel on a loopback port, so its request log is written as in the demo."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


def written(caplog) -> str:
    """Every captured record as a handler writes it: the message, then any traceback."""
    formatter = logging.Formatter("%(name)s %(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records)


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_approval_tokens_stay_out_of_the_request_log(app, runtime, served, caplog):
    account = runtime.accounts.all()[0].id
    placed = runtime.orders.place(draft(account), "alice").order
    token = approval_token(app, placed)
    caplog.set_level(logging.INFO)
    callback = f"{served}/ssl/providers/{account}/callback/{token}"
    assert get(callback) == 200
    assert get(f"{callback}x?token=SECRET1&api_key=SECRET2") == 404
    assert get(f"{served}/login?next=/x&csrf_token=SECRET3&password=SECRET4&page=2") == 200
    log = written(caplog)
    assert f"/ssl/providers/{account}/callback/" in log and "page=2" in log  # the lines are there
    for secret in (token, "SECRET"):
        assert secret not in log


def test_database_errors_log_no_parameters(app, runtime, order, caplog):
    """A failed insert of a whole order: the contact and the encrypted key stay out."""
    store = runtime.orders.store
    values = {
        field.name: getattr(order, field.name)
        for field in dataclasses.fields(order)
        if field.name not in ("id", "created_at", "updated_at")
    }
    values.update(idempotency_key="another-key", flight=None, csr=None)  # NOT NULL: refused
    with pytest.raises(sa.exc.IntegrityError) as refused:
        store.add_order("alice", **values)
    logging.getLogger("panel_ssl_plugin").error("insert failed", exc_info=refused.value)
    log = written(caplog)
    assert "IntegrityError" in log
    for secret in (order.contact["email"], order.private_key_encrypted):
        assert secret not in log
