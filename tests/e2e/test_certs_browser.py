"""List SSL Certs in Chromium: approve from the outbox, check status, details, download, renew;
a refused order fixed or discarded, a failing check, a published record, long names, the pager."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from playwright.sync_api import expect

from panel_ssl_plugin import names
from panel_ssl_plugin.drafts import OrderDraft
from panel_ssl_plugin.orders import OrderRejected
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.store import OrderRecord, utcnow
from tests.providers.gogetssl_sim import PASSWORD as GOGETSSL_PASSWORD
from tests.providers.gogetssl_sim import USER as GOGETSSL_USER

pytestmark = pytest.mark.e2e

DOMAIN = "www.bücher.example"
PFX_PASSWORD = "correct horse battery"


def place(server, domain: str, **changes) -> OrderRecord:
    """An order of the bakery (client 1), placed as the popup would, links made for ``server``;
    ``changes`` override any field (another provider account, product, validation)."""
    runtime = server.runtime
    alabel = names.normalize_domain(domain)
    values = {
        "account_id": "1",
        "provider_account_id": runtime.accounts.all()[0].id,
        "product_id": "dv-single",
        "period_months": 12,
        "server_type": "nginx",
        "domain": domain,
        "dcv_method": "email",
        "idempotency_key": uuid.uuid4().hex,
        "approver_email": f"admin@{alabel}",
        "contact": {"first_name": "Hans", "last_name": "Müller", "email": "hans@example.com"},
        **changes,
    }
    with server.app.test_request_context(base_url=server.url):
        return runtime.orders.place(OrderDraft(**values), "2").order


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
    page.get_by_role("button", name=re.compile("Approve the certificate")).click()
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

    popup.get_by_role("button", name="Show the private key").click()
    expect(popup.get_by_test_id("private-key")).to_contain_text("BEGIN PRIVATE KEY")
    expect(popup.locator(".hint", has_text="Shown to you on this page only")).to_contain_text(
        "you can show it again at any time"
    )
    screenshot(popup, "4b-key-shown")

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


def test_a_refused_order_reads_refused_and_is_fixed_or_discarded(panel_server, context, screenshot):
    runtime = panel_server.runtime
    strict = runtime.accounts.create("sandbox", "Strict", {"reject_message": "Missing org_city"})
    for domain in ("shop.example.com", "typo.example.com"):
        with pytest.raises(OrderRejected):
            place(panel_server, domain, provider_account_id=strict)
    page = context.new_page()
    log_in(page, panel_server.url)
    popup = open_list_popup(page, context, panel_server.url)
    row = popup.locator("tr", has_text="shop.example.com")
    expect(row.get_by_test_id("cert-status")).to_have_text("refused")
    expect(row.locator(".refusal")).to_have_text("Missing org_city")
    expect(row.get_by_role("link", name="Fix and resubmit")).to_be_visible()
    expect(row.get_by_role("button", name="Discard")).to_be_visible()
    expect(row.get_by_role("button", name="Check status")).to_have_count(0)
    screenshot(popup, "1-list")

    popup.locator("tr", has_text="typo.example.com").get_by_role("button", name="Discard").click()
    expect(popup.get_by_role("status")).to_contain_text(
        "The refused order for typo.example.com is discarded."
    )
    expect(popup.locator("tr", has_text="typo.example.com")).to_have_count(0)
    screenshot(popup, "2-discarded")

    popup.locator("tr", has_text="shop.example.com").get_by_role(
        "link", name="Fix and resubmit"
    ).click()
    expect(popup.get_by_label("Domain name")).to_have_value("shop.example.com")
    screenshot(popup, "3-fix")


def test_a_failing_check_and_a_record_the_panel_published(
    panel_server, context, screenshot, gogetssl_sim
):
    runtime = panel_server.runtime
    settings = {
        "base_url": gogetssl_sim.url,
        "username": GOGETSSL_USER,
        "password": GOGETSSL_PASSWORD,
    }
    gogetssl = runtime.accounts.create("gogetssl", "GoGetSSL", settings)
    on_gogetssl = {"provider_account_id": gogetssl, "product_id": "71", "approver_email": ""}
    published = place(panel_server, "www.example.com", dcv_method="http", **on_gogetssl)
    failing = place(panel_server, "shop.example.com", dcv_method="dns", **on_gogetssl)
    gogetssl_sim.fail_next("500", "/orders/statuses/")
    poll_due(runtime.orders, utcnow() + timedelta(minutes=2))

    page = context.new_page()
    log_in(page, panel_server.url)
    popup = open_list_popup(page, context, panel_server.url)
    for order in (published, failing):
        row = popup.locator(f"tr[data-cert-id='{order.id}']")
        expect(row.locator(".check-failed")).to_contain_text(
            "Last check failed just now: GoGetSSL had an internal error (HTTP 500)"
        )
        expect(row.locator(".check-failed")).to_contain_text(re.compile(r"next try in \d+ minutes"))
    screenshot(popup, "1-check-failed")

    popup.locator(f"tr[data-cert-id='{published.id}']").get_by_role("link", name="Details").click()
    expect(popup.locator(".next-step")).to_have_text(
        "What to do next: Published by the panel; the provider will check it."
    )
    record = popup.locator("details.published")
    expect(record.locator("dl.publish")).to_be_hidden()
    screenshot(popup, "2-published-folded")
    record.locator("summary").click()
    expect(record.locator("dl.publish")).to_contain_text(".well-known/pki-validation/")
    screenshot(popup, "3-published-open")


# Too long for a certificate's common name, and for their column in the list: one breaks at its
# hyphens, the other has none and breaks between letters.
LONG_DOMAIN = "www.backstube-und-konditorei-mueller-am-marktplatz-seit-1850.example"
UNBROKEN_DOMAIN = "www.baeckereiundkonditoreimuelleramaltenmarktplatzzumhasen.example"


def test_long_names_wrap_in_the_popup_and_the_pager_counts_rows(panel_server, context, screenshot):
    first = place(panel_server, LONG_DOMAIN)
    place(panel_server, UNBROKEN_DOMAIN)
    place(panel_server, "shop.example.com")
    page = context.new_page()
    log_in(page, panel_server.url)
    page.get_by_role("link", name="Outbox").click()
    page.get_by_role("link", name=re.compile("callback")).last.click()
    page.get_by_role("button", name=re.compile("Approve the certificate")).click()
    expect(page.get_by_role("status")).to_contain_text("is approved")
    panel_server.runtime.follow_ups.renew(first.id, "2")

    popup = open_list_popup(page, context, panel_server.url)
    popup.set_viewport_size({"width": 1000, "height": 700})
    expect(popup.locator(".pager")).to_contain_text("3 certificates · 4 rows with 1 renewal")
    assert popup.evaluate("document.documentElement.scrollWidth") <= 1000  # no sideways scroll

    def lines(name: str) -> int:
        link = popup.locator("a.domain", has_text=name).first
        assert link.evaluate("a => getComputedStyle(a).overflowWrap") == "anywhere"
        return link.evaluate("a => a.getClientRects().length")

    assert lines("shop.example.com") == 1  # a short name never breaks
    assert lines("backstube") > 1 and lines("baeckerei") > 1
    screenshot(popup, "1-list")


def test_the_provider_form_lists_its_presets_once_and_warns_about_plain_http(
    panel_server, context, screenshot, gogetssl_sim
):
    page = context.new_page()
    log_in(page, panel_server.url, "admin")
    page.goto(f"{panel_server.url}/ssl/admin/providers/new?provider=gogetssl")
    for url in ("https://my.gogetssl.com/api", "https://sandbox.gogetssl.com/api"):
        expect(page.get_by_text(url, exact=True)).to_have_count(1)
    page.get_by_label("Label").fill("GoGetSSL simulator")
    page.get_by_label("API base URL").fill(gogetssl_sim.url)
    page.get_by_label("Username").fill(GOGETSSL_USER)
    page.get_by_label("API password").fill(GOGETSSL_PASSWORD)
    screenshot(page, "1-form")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-warning")).to_contain_text(
        f"GoGetSSL simulator talks to {gogetssl_sim.url} over plain http://"
    )
    expect(page.get_by_role("row", name=re.compile("GoGetSSL simulator"))).to_be_visible()
    screenshot(page, "2-saved-with-warning")
