"""Issue 13's acceptance: a panel in PHP hosts the plugin through ``panel-ssl serve``.

The two processes ``make php-demo`` starts (examples/php-panel/demo.py), on free ports: the
service with the sandbox CA, and the PHP panel under ``php -S``. Chromium walks a reseller from
the PHP panel's Account Mgmt tab through an order, the approval mail in the PHP panel, to the
issued certificate and the signed webhook the PHP panel verified. PHP is not optional here: CI
installs php-cli and php-sqlite3, and a machine without them fails this test, it does not skip.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import importlib.util
import json
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from playwright.sync_api import expect
from standardwebhooks import Webhook

from panel_ssl_plugin.bridge.signing import BridgeKeys
from panel_ssl_plugin.hookspecs import AccountProfile, Contact

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
DOMAIN = "baeckerei-mueller.example"
APPROVER = f"admin@{DOMAIN}"
BAKERY, BOBS_CLIENT = "1", "3"  # the PHP panel's demo clients: alice's first, bob's only
WEBHOOK_ROUNDS = 60  # reloads of a page waiting for a webhook (0.5 s apart) before giving up


def _load_demo():
    spec = importlib.util.spec_from_file_location(
        "php_panel_demo", ROOT / "examples" / "php-panel" / "demo.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


demo = _load_demo()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def stack(tmp_path) -> Iterator:
    """The service and the PHP panel, as ``make php-demo`` runs them; their logs are printed
    when a test fails (pytest shows a failing test's output)."""
    setup = demo.Demo(tmp_path / "data", free_port(), free_port())
    demo.prepare(setup)
    logs = tmp_path / "logs"
    processes = demo.start(setup, logs)
    yield setup
    demo.stop(processes)
    for log in sorted(logs.iterdir()):
        print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")


def panel_rows(setup, sql: str, *params) -> list[tuple]:
    """Rows of the PHP panel's own SQLite, to count what it kept."""
    with sqlite3.connect(setup.data / "panel.sqlite") as db:
        return db.execute(sql, params).fetchall()


def log_in(page, setup, user: str) -> None:
    page.goto(f"{setup.panel_url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(user)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Clients")).to_be_visible()


def reload_until(page, locator) -> None:
    """Webhooks arrive from the service's outbox a moment after the change: reload until
    ``locator`` shows, as a person would."""
    for _ in range(WEBHOOK_ROUNDS):
        if locator.count():
            return
        page.wait_for_timeout(500)
        page.reload()
    expect(locator.first).to_be_visible()  # fails, saying what never came


def open_link(context, page, name: str):
    """Click a link of the orange bar: the popup it opens, once loaded."""
    with context.expect_page() as opened:
        page.get_by_role("link", name=name).click()
    popup = opened.value
    popup.wait_for_load_state()
    return popup


def test_a_reseller_orders_in_the_php_panel_and_hears_the_signed_webhook(
    stack, browser, context, screenshot
):
    page = context.new_page()
    log_in(page, stack, "alice")
    page.get_by_role("link", name="Bäckerei Müller").click()
    page.get_by_role("link", name="Account Mgmt").click()
    expect(page.locator(".orange-bar")).to_contain_text("Order SSL Cert")

    popup = open_link(context, page, "Order SSL Cert")
    assert popup.url.startswith(f"{stack.service_url}/ssl/")  # the launch link went through
    # the profile and the contacts came over the bridge, from the PHP panel's SQLite
    expect(popup.get_by_label("Organization", exact=True)).to_have_value("Bäckerei Müller GmbH")
    popup.get_by_label("Domain name").fill(DOMAIN)
    approvers = popup.get_by_label("Approval Email Address")
    expect(approvers).to_contain_text(APPROVER)
    approvers.select_option(label=APPROVER)
    popup.get_by_role("button", name="Specify Contact Info").click()
    expect(popup.get_by_label("First name")).to_have_value("Hans")
    popup.get_by_role("button", name="Place order").click()
    expect(popup.get_by_role("status")).to_contain_text(
        f"Order received; the approval email was sent to {APPROVER}"
    )
    screenshot(popup, "1-order-received")
    popup.close()

    # the approval mail, sent through the bridge, is alice's once the webhook says whose it is
    page.goto(f"{stack.panel_url}/mail")
    mail = page.get_by_role("article").filter(has_text=f"Approve the SSL certificate for {DOMAIN}")
    reload_until(page, mail)
    screenshot(page, "2-mail")
    with context.expect_page() as opened:
        mail.locator("a[href*='/callback/']").click()  # the approval link
    approval = opened.value
    approval.get_by_role("button", name=re.compile("Approve the certificate")).click()
    expect(approval.get_by_role("status")).to_contain_text("is approved")
    screenshot(approval, "3-approved")
    approval.close()

    page.goto(f"{stack.panel_url}/clients/{BAKERY}?tab=account")
    certs = open_link(context, page, "List SSL Certs")
    expect(certs.get_by_role("row", name=re.compile(DOMAIN))).to_contain_text("issued")
    screenshot(certs, "4-list-ssl-certs")
    certs.close()

    page.goto(f"{stack.panel_url}/webhooks")
    issued = page.get_by_role("row").filter(has_text="certificate.issued")
    reload_until(page, issued)
    expect(issued).to_contain_text("signature verified")
    expect(issued).to_contain_text(DOMAIN)
    page.screenshot(path=str(DOCS / "php-panel-webhooks.png"), full_page=True)

    page.goto(f"{stack.panel_url}/clients/{BAKERY}?tab=account")
    expect(page.get_by_role("row", name=re.compile(DOMAIN))).to_contain_text("issued")
    approval_mails = "SELECT COUNT(*) FROM mail WHERE recipient = ?"
    assert panel_rows(stack, approval_mails, APPROVER) == [(1,)]
    page.screenshot(path=str(DOCS / "php-panel.png"), full_page=True)
    page.get_by_role("button", name="Bill renewal").click()
    expect(page.locator(".flash")).to_contain_text("the SSL service made renewal order #")
    screenshot(page, "6-billed")

    # one approval mail for one order; the issuance kept once, delivered once
    issued_hooks = "SELECT deliveries FROM webhooks WHERE type = 'certificate.issued'"
    assert panel_rows(stack, issued_hooks) == [(1,)]
    assert panel_rows(stack, "SELECT MAX(deliveries) FROM webhooks") == [(1,)]  # none twice

    # bob, in his own browser, sees neither alice's mail nor her webhooks
    bobs = browser.new_context()
    bob = bobs.new_page()
    log_in(bob, stack, "bob")
    bob.goto(f"{stack.panel_url}/mail")
    expect(bob.get_by_text("No mail yet.")).to_be_visible()
    bob.goto(f"{stack.panel_url}/webhooks")
    expect(bob.get_by_text("signature verified")).to_have_count(0)
    bobs.close()


def test_bob_cannot_launch_into_alices_client(stack, context):
    page = context.new_page()
    log_in(page, stack, "bob")
    expect(page.get_by_role("link", name="Bäckerei Müller")).to_have_count(0)

    # the PHP panel signs no launch link for another reseller's client
    refused = context.request.get(f"{stack.panel_url}/clients/{BAKERY}/ssl/order", max_redirects=0)
    assert refused.status == 403
    assert "may not manage SSL for this client" in refused.text()

    # bob's own link, its account swapped for alice's client after signing: the service says no
    own = context.request.get(f"{stack.panel_url}/clients/{BOBS_CLIENT}/ssl/order", max_redirects=0)
    assert own.status == 302
    launch = own.headers["location"]
    assert launch.startswith(f"{stack.service_url}/ssl/launch?token=")
    swapped = context.request.get(_swap_account(launch, BAKERY), max_redirects=0)
    assert swapped.status == 401
    assert "set-cookie" not in swapped.headers

    # the untouched link opens bob's client, and his session reaches only that one
    opened = context.request.get(launch, max_redirects=0)
    assert opened.status == 302
    assert f"/ssl/accounts/{BOBS_CLIENT}/" in opened.headers["location"]
    alices = context.request.get(f"{stack.service_url}/ssl/accounts/{BAKERY}/certs")
    assert alices.status == 403
    assert "Bäckerei" not in alices.text()


def test_logging_out_of_the_panel_ends_the_services_session(stack, context):
    """The PHP panel's logout posts the signed logout event: the popups' session ends too."""
    page = context.new_page()
    log_in(page, stack, "alice")
    certs = f"{stack.service_url}/ssl/accounts/{BAKERY}/certs"
    assert context.request.get(f"{stack.panel_url}/clients/{BAKERY}/ssl/certs").ok
    assert context.request.get(certs).status == 200
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert context.request.get(certs).status == 401


def test_the_admin_opens_the_services_provider_pages_and_a_reseller_does_not(stack, context):
    page = context.new_page()
    log_in(page, stack, "alice")
    assert context.request.get(f"{stack.panel_url}/admin/ssl", max_redirects=0).status == 403
    page.get_by_role("button", name="Log out").click()
    log_in(page, stack, "admin")
    providers = open_link(context, page, "SSL Providers")
    assert providers.url.startswith(f"{stack.service_url}/ssl/admin/")
    expect(providers.get_by_text("Sandbox (demo CA)").first).to_be_visible()


def _swap_account(launch_url: str, account: str) -> str:
    """The launch URL with the token's ``account`` claim changed and its signature kept."""
    prefix, token = launch_url.split("token=")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["account"] = account
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{prefix}token={header}.{forged}.{signature}"


# --- the PHP panel's side of the wire, without a browser ------------------------------------


def bridge_call(setup, method: str, params: dict, secret: str | None = None, skew: int = 0):
    """A bridge call as the service signs it (contract section 2): the call key, derived."""
    body = json.dumps({"method": method, "params": params}).encode()
    timestamp = str(int(time.time()) + skew)
    key = BridgeKeys.from_secret(secret or setup.secret).calls
    mac = hmac.new(key, f"{timestamp}.".encode() + body, "sha256")
    headers = {
        "Content-Type": "application/json",
        "X-Panel-SSL-Timestamp": timestamp,
        "X-Panel-SSL-Signature": f"v1={mac.hexdigest()}",
    }
    return requests.post(f"{setup.panel_url}/bridge", data=body, headers=headers, timeout=10)


def test_the_php_bridge_answers_in_the_hookspecs_fields_and_refuses_bad_signatures(stack):
    profile = bridge_call(stack, "account_profile", {"account_id": BAKERY})
    assert profile.status_code == 200
    result = profile.json()["result"]
    profile_fields = {f.name for f in dataclasses.fields(AccountProfile)}
    contact_fields = {f.name for f in dataclasses.fields(Contact)}
    assert set(result) <= profile_fields and result["organization"] == "Bäckerei Müller GmbH"
    assert set(result["default_contact"]) <= contact_fields
    contacts = bridge_call(stack, "account_contacts", {"account_id": "2"}).json()["result"]
    assert [c["first_name"] for c in contacts] == ["Wile", "Road"]
    assert all(set(c) <= contact_fields for c in contacts)
    assert bridge_call(stack, "account_profile", {"account_id": "99"}).json() == {"result": None}

    published = {"domain": DOMAIN, "path": ".well-known/pki-validation/x.txt", "content": "ok"}
    assert bridge_call(stack, "publish_http_file", published).json() == {"result": True}
    served = requests.get(f"{stack.panel_url}/.well-known/pki-validation/x.txt", timeout=10)
    assert served.text == "ok"

    mail = {"to": APPROVER, "subject": "Hello", "body": "Hi", "account_id": BAKERY}
    refusals = [
        bridge_call(stack, "send_mail", mail, secret="another secret of more than 32 chars"),
        bridge_call(stack, "send_mail", mail, skew=-301),
        bridge_call(stack, "send_mail", {"to": APPROVER}),
        bridge_call(stack, "drop_tables", {}),
    ]
    assert [r.status_code for r in refusals] == [401, 401, 400, 400]
    assert all(r.json()["error"].endswith(".") for r in refusals)  # a sentence, in words
    assert panel_rows(stack, "SELECT COUNT(*) FROM mail") == [(0,)]
    assert bridge_call(stack, "send_mail", mail).json() == {"result": True}
    filed = "SELECT recipient, subject, account_id FROM mail"
    assert panel_rows(stack, filed) == [(APPROVER, "Hello", BAKERY)]  # filed by the account
    probe = {"domain": DOMAIN, "path": ".well-known/pki-validation/x.txt"}
    assert bridge_call(stack, "unpublish_http_file", probe).json() == {"result": True}
    gone = requests.get(f"{stack.panel_url}/.well-known/pki-validation/x.txt", timeout=10)
    assert gone.status_code == 404


def post_webhook(setup, webhook_id: str, payload: dict, key: bytes | None = None):
    """A webhook as the service sends it: Standard Webhooks, with the derived webhook key."""
    key = key or BridgeKeys.from_secret(setup.secret).webhooks
    body = json.dumps(payload)
    signer = Webhook("whsec_" + base64.b64encode(key).decode())
    now = datetime.now(UTC)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signer.sign(webhook_id, now, body),
    }
    return requests.post(f"{setup.panel_url}/hooks/ssl", data=body, headers=headers, timeout=10)


def test_the_php_receiver_keeps_each_webhook_once_and_refuses_forged_ones(stack):
    order = {"id": 7, "account_id": BAKERY, "domain": DOMAIN, "status": "issued"}
    event = {"type": "certificate.issued", "timestamp": "2026-11-29T10:00:00+00:00", "data": order}
    forged = post_webhook(stack, "msg_forged", event, key=b"not the bridge secret at all, no")
    assert forged.status_code == 401
    answers = [post_webhook(stack, "msg_1", event).status_code for _ in range(3)]  # retried
    assert answers == [200, 200, 200]
    kept = panel_rows(stack, "SELECT webhook_id, deliveries FROM webhooks")
    assert kept == [("msg_1", 3)]
    assert panel_rows(stack, "SELECT order_id, status FROM ssl_orders") == [(7, "issued")]


def test_the_php_cron_script_posts_a_signed_tick(stack):
    def cron(**env) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["php", str(demo.HERE / "cron.php")],
            env={**stack.panel_env(), **env},
            capture_output=True,
            text=True,
            timeout=30,
        )

    done = cron()
    assert (done.returncode, json.loads(done.stdout)) == (0, {"ok": True})
    forged = cron(PANEL_SSL_BRIDGE_SECRET="a secret the service does not know, 40+ chars")
    assert forged.returncode == 1 and json.loads(forged.stdout)["ok"] is False


def race(count: int, work) -> list:
    """``work()`` from ``count`` threads released together by a barrier."""
    barrier = threading.Barrier(count)

    def run():
        barrier.wait()
        return work()

    with ThreadPoolExecutor(count) as pool:
        return [future.result() for future in [pool.submit(run) for _ in range(count)]]


def test_twenty_first_requests_seed_the_php_panel_once(stack):
    assert not (stack.data / "panel.sqlite").exists()  # nothing asked the panel yet
    answers = race(20, lambda: bridge_call(stack, "account_profile", {"account_id": BAKERY}))
    assert {(a.status_code, a.json()["result"]["name"]) for a in answers} == {
        (200, "Bäckerei Müller")
    }
    assert panel_rows(stack, "SELECT COUNT(*) FROM users") == [(3,)]
    assert panel_rows(stack, "SELECT COUNT(*) FROM clients") == [(3,)]


def test_twenty_deliveries_of_one_webhook_at_once_keep_it_once(stack):
    order = {"id": 7, "account_id": BAKERY, "domain": DOMAIN, "status": "issued"}
    event = {"type": "certificate.issued", "timestamp": "2026-11-29T10:00:00+00:00", "data": order}
    answers = race(20, lambda: post_webhook(stack, "msg_raced", event).status_code)
    assert answers == [200] * 20
    assert panel_rows(stack, "SELECT webhook_id, deliveries FROM webhooks") == [("msg_raced", 20)]
