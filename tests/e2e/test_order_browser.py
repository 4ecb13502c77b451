"""The Order SSL Cert popup in Chromium: from the Account Mgmt tab to a pending order."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

DOMAIN = "www.bücher.example"
APPROVER_LABEL = "admin@bücher.example"


def open_order_popup(page, context, base_url: str):
    """Log in as alice, open the bakery's Account Mgmt tab, click Order SSL Cert."""
    page.goto(f"{base_url}/login")
    page.get_by_label("User name").fill("alice")
    page.get_by_label("Password").fill("alice")
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("row", name=re.compile("Bäckerei Müller")).get_by_role("link").click()
    expect(page.get_by_role("heading", name="Bäckerei Müller")).to_be_visible()
    with context.expect_page() as opened:
        page.get_by_role("link", name="Order SSL Cert").click()
    popup = opened.value
    popup.wait_for_load_state()
    return popup


def test_order_from_domain_to_pending(panel_server, context, screenshot):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    expect(popup.get_by_label("Organization", exact=True)).to_have_value("Bäckerei Müller GmbH")
    expect(popup.get_by_role("button", name="Look up approval emails")).to_be_hidden()
    screenshot(popup, "1-step1")

    popup.get_by_label("Domain name").press_sequentially(DOMAIN, delay=15)
    expect(popup.locator("#approver_email-status .spinner")).to_be_visible()
    screenshot(popup, "2-spinner")
    approvers = popup.get_by_label("Approval Email Address")
    expect(approvers).to_contain_text(APPROVER_LABEL)
    expect(popup.locator("#approver_email-status .spinner")).to_have_count(0)
    approvers.select_option(label=APPROVER_LABEL)
    popup.get_by_label("Server type").select_option(label="Nginx")
    screenshot(popup, "3-approvers")

    popup.get_by_role("button", name="Specify Contact Info").click()
    expect(popup.get_by_label("First name")).to_have_value("Hans")
    popup.get_by_label("Job title").fill("Owner")
    screenshot(popup, "4-contact")

    popup.get_by_role("button", name="Place order").click()
    expect(popup.get_by_role("status")).to_contain_text(
        "Order received; the approval email was sent to"
    )
    expect(popup.get_by_role("link", name="List SSL Certs")).to_have_attribute(
        "href", re.compile(r"/ssl/accounts/\d+/certs$")
    )
    screenshot(popup, "5-received")

    (order,) = panel_server.runtime.orders.store.account_orders("1")[0]
    assert order.status == "pending" and order.domain == "www.xn--bcher-kva.example"
    assert order.server_type == "nginx" and order.contact["title"] == "Owner"


def test_only_the_latest_domain_fills_the_dropdown(panel_server, context):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    domain = popup.get_by_label("Domain name")
    domain.fill("first.example")
    domain.fill("second.example")
    approvers = popup.get_by_label("Approval Email Address")
    expect(approvers).to_contain_text("admin@second.example")
    expect(approvers).not_to_contain_text("first.example")


def test_a_provider_error_shows_its_words_and_a_retry(panel_server, context, screenshot):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    failure = {"error": "Approver service timed out after 10 s.", "field": "approver_email"}
    popup.route("**/dcv-emails?*", lambda route: route.fulfill(status=502, json=failure))
    popup.get_by_label("Domain name").fill(DOMAIN)
    expect(popup.locator("#approver_email-errors")).to_have_text(failure["error"])
    retry = popup.get_by_role("button", name="Retry")
    expect(retry).to_be_visible()
    screenshot(popup, "provider-error")
    popup.unroute("**/dcv-emails?*")
    retry.click()
    expect(popup.get_by_label("Approval Email Address")).to_contain_text(APPROVER_LABEL)
    expect(popup.locator("#approver_email-errors")).to_be_empty()
    assert "[object Object]" not in popup.content()


def test_choosing_a_product_redraws_its_options(panel_server, context):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    popup.get_by_label("Domain name").fill("example.com")
    expect(popup.get_by_label("Approval Email Address")).to_contain_text("admin@example.com")
    popup.get_by_label("Product").select_option(value="dv-multi")
    expect(popup.get_by_label("Additional domain names")).to_be_visible()
    expect(popup.get_by_label("Domain name", exact=True)).to_have_value("example.com")
    expect(popup.get_by_label("Extra SAN — $5.00 per name per year")).to_be_visible()
