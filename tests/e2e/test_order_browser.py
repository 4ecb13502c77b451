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


# --- issue 10: the spinner, OV orders, step 2's summary, an approver per name ---------------

ORANGE = "rgb(247, 162, 27)"  # the manual's spinner, the colour of the link bar
CSP_REFUSALS = re.compile("Content Security Policy|CSP violation")


@pytest.fixture
def refused(context) -> list[str]:
    """Whatever the Content-Security-Policy refuses on any page (none may be)."""
    found: list[str] = []
    context.on(
        "console",
        lambda message: found.append(message.text) if CSP_REFUSALS.search(message.text) else None,
    )
    return found


def test_the_spinner_is_orange_beside_approval_email_address(panel_server, context, screenshot):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    held = []
    popup.route("**/dcv-emails?*", lambda route: held.append(route))  # held until let go
    popup.get_by_label("Domain name").fill(DOMAIN)
    spinner = popup.locator("#approver_email-row .label-cell .spinner")
    expect(spinner).to_be_visible()
    popup.wait_for_timeout(500)  # past the typing pause: the request is out and held
    assert len(held) == 1
    assert spinner.evaluate("e => getComputedStyle(e).borderTopColor") == ORANGE
    label = popup.locator("label[for=approver_email]").bounding_box()
    box = spinner.bounding_box()
    assert box["x"] > label["x"] + label["width"] - 1  # right after the words
    assert abs((box["y"] + box["height"] / 2) - (label["y"] + label["height"] / 2)) < 10
    screenshot(popup, "spinner")
    held[0].continue_()
    expect(popup.get_by_label("Approval Email Address")).to_contain_text(APPROVER_LABEL)
    expect(spinner).to_have_count(0)


def test_an_ov_order_asks_for_the_organizations_address(panel_server, context, screenshot, refused):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    street = popup.get_by_label("Street address")
    expect(street).to_be_hidden()  # a DV product: no address asked
    popup.get_by_label("Product").select_option(label="Sandbox OV Business")
    expect(street).to_be_visible()
    expect(street).to_have_value("Hauptstraße 12")  # from the client's profile
    expect(popup.get_by_label("Postal code")).to_have_value("80331")
    expect(popup.get_by_label("City")).to_have_value("München")
    expect(popup.get_by_label("Organization phone")).to_have_value("+49 89 123450")
    popup.get_by_label("Domain name").fill("shop.example.com")
    expect(popup.get_by_label("Approval Email Address")).to_contain_text("admin@example.com")
    screenshot(popup, "1-address")
    popup.get_by_label("Postal code").fill("")
    popup.get_by_role("button", name="Specify Contact Info").click()
    expect(popup.locator("#org_postal_code-errors")).to_have_text(
        "This product validates the organization: required."
    )
    screenshot(popup, "2-required")
    popup.get_by_label("Postal code").fill("80333")
    popup.get_by_role("button", name="Specify Contact Info").click()
    summary = popup.get_by_label("Your certificate")
    expect(summary).to_contain_text("Hauptstraße 12, 80333 München, +49 89 123450")
    screenshot(popup, "3-summary")
    popup.get_by_role("button", name="Place order").click()
    expect(popup.get_by_test_id("order-status")).to_have_text("pending")
    (order,) = panel_server.runtime.orders.store.account_orders("1")[0]
    assert order.organization_address["postal_code"] == "80333"
    assert refused == []


def test_step2_shows_what_is_bought_and_for_how_much(panel_server, context, screenshot):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    popup.get_by_label("Domain name").fill("shop.example.com")
    expect(popup.get_by_label("Approval Email Address")).to_contain_text("admin@example.com")
    popup.get_by_label("Validity period").select_option(label="2 years — $18.00")
    popup.get_by_label("Server type").select_option(label="Nginx")
    popup.get_by_label("Extended warranty — $10.00 per year").check()
    popup.get_by_role("button", name="Specify Contact Info").click()
    summary = popup.get_by_label("Your certificate")
    for words in (
        "Server type",
        "Nginx",
        "Organization",
        "Bäckerei Müller GmbH, Bayern, DE",
        "Price",
        "$18.00 for 2 years",
        "Extended warranty — $10.00 per year",
    ):
        expect(summary).to_contain_text(words)
    screenshot(popup, "summary")


def test_each_additional_name_gets_its_own_approver(panel_server, context, screenshot, refused):
    popup = open_order_popup(context.new_page(), context, panel_server.url)
    popup.get_by_label("Product").select_option(value="dv-multi")
    expect(popup.get_by_label("Additional domain names")).to_be_visible()  # the page redrawn
    popup.get_by_label("Domain name", exact=True).fill("example.com")
    expect(popup.get_by_label("Approval Email Address")).to_contain_text("admin@example.com")
    popup.get_by_label("Additional domain names").fill("www.example.com\nshop.example.com")
    www = popup.get_by_label("Approval address for www.example.com")
    shop = popup.get_by_label("Approval address for shop.example.com")
    expect(www).to_contain_text("admin@www.example.com")
    expect(shop).to_contain_text("admin@shop.example.com")
    expect(shop).not_to_contain_text("www.example.com")
    www.select_option("webmaster@example.com")
    popup.get_by_label("Additional domain names").fill(
        "www.example.com\nshop.example.com\nblog.example.com"
    )
    expect(popup.get_by_label("Approval address for blog.example.com")).to_contain_text(
        "admin@blog.example.com"
    )
    expect(www).to_have_value("webmaster@example.com")  # kept while its name stays
    popup.get_by_label("Extra SAN — $5.00 per name per year").check()  # 2 are included
    screenshot(popup, "1-approvers")
    popup.get_by_role("button", name="Specify Contact Info").click()
    expect(popup.get_by_label("Your certificate")).to_contain_text(
        "www.example.com · approval e-mail to webmaster@example.com"
    )
    screenshot(popup, "2-summary")
    popup.get_by_role("button", name="Place order").click()
    expect(popup.get_by_test_id("order-status")).to_have_text("pending")
    (order,) = panel_server.runtime.orders.store.account_orders("1")[0]
    assert order.san_approvers == {
        "www.example.com": "webmaster@example.com",
        "shop.example.com": "admin@shop.example.com",
        "blog.example.com": "admin@blog.example.com",
    }
    assert refused == []
