"""List SSL Certs in Chromium: approve from the outbox, check status, details, download, renew."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.sync_api import expect

from panel_ssl_plugin import names
from panel_ssl_plugin.drafts import OrderDraft

pytestmark = pytest.mark.e2e

DOMAIN = "www.bücher.example"
PFX_PASSWORD = "correct horse battery"


def place(server, domain: str) -> None:
    """An order of the bakery (client 1), placed as the popup would, links made for ``server``."""
    runtime = server.runtime
    alabel = names.normalize_domain(domain)
    draft = OrderDraft(
        account_id="1",
        provider_account_id=runtime.accounts.all()[0].id,
        product_id="dv-single",
        period_months=12,
        server_type="nginx",
        domain=domain,
        dcv_method="email",
        idempotency_key=uuid.uuid4().hex,
        approver_email=f"admin@{alabel}",
        contact={"first_name": "Hans", "last_name": "Müller", "email": "hans@example.com"},
    )
    with server.app.test_request_context(base_url=server.url):
        runtime.orders.place(draft, "2")


def log_in(page, base_url: str, user: str = "alice") -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(user)
    page.get_by_role("button", name="Log in").click()


def open_list_popup(page, context, base_url: str):
    page.goto(base_url)
    page.get_by_role("row", name=re.compile("Bäckerei Müller")).get_by_role("link").click()
    with context.expect_page() as opened:
        page.get_by_role("link", name="List SSL Certs").click()
    popup = opened.value
    popup.wait_for_load_state()
    return popup


def test_list_check_details_download_and_renew(panel_server, context, screenshot):
    place(panel_server, DOMAIN)
    place(panel_server, "shop.example.com")
    page = context.new_page()
    log_in(page, panel_server.url)

    page.get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name=re.compile("callback")).last.click()
    expect(page.get_by_role("status")).to_contain_text(f"the certificate for {DOMAIN} is approved")

    popup = open_list_popup(page, context, panel_server.url)
    row = popup.locator("tr", has_text=DOMAIN)
    expect(row.get_by_test_id("cert-status")).to_have_text("issued")
    expect(row).to_contain_text("provider: issued")
    expect(row).to_contain_text("days left")
    expect(popup.locator("tr", has_text="shop.example.com")).to_contain_text("Last checked never")
    screenshot(popup, "1-list")

    popup.locator("tr", has_text="shop.example.com").get_by_role(
        "button", name="Check status"
    ).click()
    expect(popup.get_by_role("status")).to_contain_text(
        "shop.example.com: pending (provider: awaiting_approval)"
    )
    expect(popup.locator("tr", has_text="shop.example.com")).to_contain_text(
        "Last checked just now"
    )
    screenshot(popup, "2-checked")

    popup.locator("tr", has_text=DOMAIN).get_by_role("link", name="Details").click()
    expect(popup.get_by_role("heading", name=re.compile(DOMAIN))).to_be_visible()
    expect(popup.locator(".provider-detail")).to_contain_text("Issued by")
    screenshot(popup, "3-details-status")

    popup.get_by_role("link", name="Certificate", exact=True).click()
    expect(popup.get_by_test_id("certificate-pem")).to_contain_text("BEGIN CERTIFICATE")
    screenshot(popup, "4-details-certificate")
    with popup.expect_download() as crt:
        popup.get_by_role("link", name="Certificate (.crt)").click()
    assert crt.value.suggested_filename == "www.xn--bcher-kva.example.crt"
    leaf = x509.load_pem_x509_certificate(Path(crt.value.path()).read_bytes())
    assert leaf.subject.rfc4514_string() == "CN=www.xn--bcher-kva.example"

    popup.locator("#pfx-password").fill(PFX_PASSWORD)
    with popup.expect_download() as pfx:
        popup.get_by_role("button", name="Download .pfx").click()
    _key, cert, _chain = pkcs12.load_key_and_certificates(
        Path(pfx.value.path()).read_bytes(), PFX_PASSWORD.encode()
    )
    assert cert == leaf

    popup.get_by_role("link", name="All certificates").click()
    popup.locator("tr", has_text=DOMAIN).get_by_role("link", name="Renew").click()
    popup.get_by_label("Validity period").select_option(value="24")
    popup.get_by_role("button", name="Renew").click()
    expect(popup.get_by_role("status")).to_contain_text(f"Renewal of {DOMAIN} for 2 years ordered")
    expect(popup.locator("tr.follow-up")).to_contain_text("renewal of #1")
    screenshot(popup, "5-renewed")


def test_an_answer_lost_on_the_way_is_looked_up_not_ordered_again(
    panel_server, context, screenshot
):
    """The sandbox rehearses a lost reply: the order is unknown, the admin sees what happened
    and what to do, and Check status finds it at the provider."""
    runtime = panel_server.runtime
    sandbox = runtime.accounts.all()[0].id
    runtime.accounts.save_settings(sandbox, {"rehearse": "lost_reply", "rehearse_count": 1})
    place(panel_server, DOMAIN)
    page = context.new_page()
    log_in(page, panel_server.url, "admin")
    popup = open_list_popup(page, context, panel_server.url)
    row = popup.locator("tr", has_text=DOMAIN)
    expect(row.get_by_test_id("cert-status")).to_have_text("unknown")
    screenshot(popup, "1-list")

    row.get_by_role("link", name="Details").click()
    expect(popup.locator(".next-step")).to_contain_text("it will not be placed twice")
    resolve = popup.locator(".resolve")
    expect(resolve).to_contain_text("does the provider have this order?")
    expect(
        resolve.get_by_role("button", name="It does not exist there: place it again")
    ).to_be_visible()
    screenshot(popup, "2-details")

    popup.get_by_role("button", name="Check status").click()
    expect(popup.get_by_role("status")).to_contain_text(f"{DOMAIN}: pending")
    expect(popup.get_by_test_id("cert-status")).to_have_text("pending")
    expect(popup.locator(".resolve")).to_have_count(0)
    screenshot(popup, "3-found")
    assert len(panel_server.app.extensions["minipanel"].mails()) == 1  # one order, one mail
