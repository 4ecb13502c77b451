"""Issue 10, items 1, 2, 4 and 5, walked through the Order SSL Cert popup with Flask's test client.

OV/EV products ask for the organization's address (pre-filled from the client, checked before
any provider is asked, sent to GoGetSSL and Sectigo in their own names, kept for renewals); a
GoGetSSL account that will not tell its balance still lists its products; step 2 says what is
bought and for how much; a multi-domain order has an approver per name. Pages are driven as a
browser without JavaScript drives them (tests/test_order_flow.py's FormReader).
"""

from __future__ import annotations

import html
import re

import pytest

from panel_ssl_plugin.runtime import runtime_for
from tests.providers.gogetssl_sim import PASSWORD, USER
from tests.test_minipanel import client_ids
from tests.test_order_flow import FormReader, all_orders, errors_of, post, step1_url, step2_url

# the bakery's profile in the demo data (minipanel/demo.py)
BAKERY_ADDRESS = {
    "org_street": "Hauptstraße 12",
    "org_city": "München",
    "org_postal_code": "80331",
    "org_phone": "+49 89 123450",
}
STORED_ADDRESS = {
    "street": "Hauptstraße 12",
    "city": "München",
    "postal_code": "80331",
    "phone": "+49 89 123450",
}


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def alice(as_user):
    return as_user("alice")


@pytest.fixture
def bakery(app) -> str:
    return str(client_ids(app, "alice")[0])


@pytest.fixture
def gogetssl(runtime, gogetssl_sim) -> int:
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD}
    return runtime.accounts.create("gogetssl", "GoGetSSL", settings, is_default=True)


@pytest.fixture
def sectigo(runtime, sectigo_sim) -> int:
    return runtime.accounts.create(
        "sectigo", "Sectigo", sectigo_sim.provider_settings(), is_default=True
    )


def step1_for(client, account: str, product_id: str, action: str = "refresh", **changes):
    """Step 1 as a person gets it: opened, then the product chosen (the page redraws)."""
    page = client.get(step1_url(account)).text
    return post(client, step1_url(account), page, action, product_id=product_id, **changes)


def place(client, account: str, step1: str, **changes):
    """From a step 1 page: "Specify Contact Info" with ``changes``, then "Place order"."""
    contact = post(client, step2_url(account), step1, "contact", **changes)
    assert contact.status_code == 200, errors_in(contact.text)
    return post(client, step2_url(account), contact.text, "submit")


def errors_in(page: str) -> list[str]:
    return re.findall(r'<ul class="errors" id="([^"]+)-errors"[^>]*><li>(.*?)</li>', page)


def address_rows(page: str) -> dict[str, bool]:
    """Each organization address row and whether it is shown."""
    rows = re.findall(r'<div class="field[^"]*" id="(org_[a-z_]+)-row"( hidden)?>', page)
    return {name: not hidden for name, hidden in rows}


def summary(page: str) -> dict[str, str]:
    """Step 2's summary, label to value; a label that repeats has its values joined by " | "."""
    block = page[page.index('<dl class="summary"') : page.index("</dl>")]
    lines: dict[str, str] = {}
    for label, value in re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", block):
        lines[label] = f"{lines[label]} | {value}" if label in lines else value
    return lines


# --- item 1: the organization's address --------------------------------------------------------


def test_the_address_shows_only_for_a_product_that_validates_the_organization(alice, bakery):
    dv = alice.get(step1_url(bakery)).text
    assert address_rows(dv) == dict.fromkeys(BAKERY_ADDRESS, False)
    ov = step1_for(alice, bakery, "ov-single")
    assert address_rows(ov.text) == dict.fromkeys(BAKERY_ADDRESS, True)
    values = FormReader(ov.text).values
    assert {name: values[name] for name in BAKERY_ADDRESS} == BAKERY_ADDRESS  # from the client
    assert 'for="org_phone">Organization phone</label>' in ov.text


def test_an_ov_order_keeps_the_organizations_address(alice, bakery, runtime):
    step1 = step1_for(alice, bakery, "ov-single").text
    response = place(
        alice, bakery, step1, domain="shop.example.com", approver_email="admin@example.com"
    )
    assert "Order received" in response.text, errors_in(response.text)
    (order,) = all_orders(runtime)
    assert order.status == "pending" and order.organization_address == STORED_ADDRESS


def test_a_dv_order_keeps_no_address(alice, bakery, runtime):
    page = alice.get(step1_url(bakery)).text
    response = place(
        alice, bakery, page, domain="shop.example.com", approver_email="admin@example.com"
    )
    assert "Order received" in response.text
    (order,) = all_orders(runtime)
    assert order.organization_address == {}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("org_street", "", "This product validates the organization: required."),
        ("org_city", "  ", "This product validates the organization: required."),
        ("org_postal_code", "", "This product validates the organization: required."),
        ("org_phone", "call us", "Enter a phone number"),
        ("org_city", "x" * 101, "At most 100 characters."),
        ("org_street", "Main St\x00", "control character"),
    ],
)
def test_the_address_is_checked_before_any_provider_is_asked(
    alice, bakery, runtime, name, value, message
):
    step1 = step1_for(alice, bakery, "ov-single").text
    changes = {"domain": "shop.example.com", "approver_email": "admin@example.com", name: value}
    response = post(alice, step2_url(bakery), step1, "contact", **changes)
    assert response.status_code == 422 and "Step 1 of 2" in response.text
    assert message in errors_of(response.text, name)
    values = FormReader(response.text).values
    assert values["domain"] == "shop.example.com" and values["product_id"] == "ov-single"
    assert all_orders(runtime) == []


def test_gogetssl_ov_order_from_popup_to_issued_and_renewed(
    alice, bakery, runtime, gogetssl, gogetssl_sim
):
    step1 = step1_for(alice, bakery, "88").text  # GeoTrust TrueBusinessID: org_required
    assert address_rows(step1) == dict.fromkeys(BAKERY_ADDRESS, True)
    response = place(
        alice, bakery, step1, domain="shop.example.com", approver_email="admin@example.com"
    )
    assert "Order received" in response.text, errors_in(response.text)
    (order,) = all_orders(runtime)
    sent = gogetssl_sim.orders[order.provider_order_id].params
    assert {k: v for k, v in sent.items() if k.startswith("org_")} == {
        "org_name": "Bäckerei Müller GmbH",
        "org_addressline1": "Hauptstraße 12",
        "org_city": "München",
        "org_postalcode": "80331",
        "org_region": "Bayern",
        "org_country": "DE",
        "org_phone": "+49 89 123450",
    }
    assert (sent["admin_organization"], sent["admin_addressline1"]) == (
        "Bäckerei Müller GmbH",
        "Hauptstraße 12",
    )
    gogetssl_sim.approve(order.provider_order_id)
    assert runtime.orders.check(order.id).status == "issued"

    renewal = runtime.follow_ups.renew(order.id, "alice").order
    assert renewal.status == "pending" and renewal.organization_address == STORED_ADDRESS
    renewed = gogetssl_sim.orders[renewal.provider_order_id]
    assert renewed.renewal and renewed.params["org_addressline1"] == "Hauptstraße 12"


def test_sectigo_ov_order_from_popup_to_issued(alice, bakery, runtime, sectigo, sectigo_sim):
    step1 = step1_for(alice, bakery, "7").text  # InstantSSL OV
    response = place(
        alice, bakery, step1, domain="shop.example.com", approver_email="admin@example.com"
    )
    assert "Order received" in response.text, errors_in(response.text)
    (order,) = all_orders(runtime)
    received = sectigo_sim.orders[order.provider_order_id].received
    assert {k: received[k] for k in SECTIGO_ORGANIZATION} == {
        "organizationName": "Bäckerei Müller GmbH",
        "streetAddress1": "Hauptstraße 12",
        "localityName": "München",
        "postalCode": "80331",
        "stateOrProvinceName": "Bayern",
        "countryName": "DE",
    }
    sectigo_sim.approve(order.provider_order_id)
    assert runtime.orders.check(order.id).status == "issued"


SECTIGO_ORGANIZATION = (
    "organizationName",
    "streetAddress1",
    "localityName",
    "postalCode",
    "stateOrProvinceName",
    "countryName",
)


def test_order_again_starts_with_the_earlier_orders_address(alice, bakery, runtime):
    step1 = step1_for(alice, bakery, "ov-single").text
    place(
        alice,
        bakery,
        step1,
        domain="shop.example.com",
        approver_email="admin@example.com",
        org_street="Marienplatz 1",
    )
    (order,) = all_orders(runtime)
    again = FormReader(alice.get(f"{step1_url(bakery)}?from={order.id}").text).values
    assert (again["org_street"], again["org_city"]) == ("Marienplatz 1", "München")


# --- item 2: the balance is optional -----------------------------------------------------------


def test_gogetssl_products_load_and_order_without_the_balance(
    alice, bakery, runtime, gogetssl, gogetssl_sim
):
    gogetssl_sim.balance_refused = True  # "Unknown method", as the reseller saw it
    page = alice.get(step1_url(bakery)).text
    assert "<li>" not in errors_of(page, "product_id")  # no error
    assert '<option selected value="71">PositiveSSL</option>' in page
    assert "1 year — 8.50</option>" in page  # the price, its currency unknown
    response = place(
        alice, bakery, page, domain="shop.example.com", approver_email="admin@example.com"
    )
    assert "Order received" in response.text, errors_in(response.text)


def test_a_failed_product_list_names_the_call(alice, bakery, gogetssl, gogetssl_sim):
    gogetssl_sim.fail_next("500", "/products/ssl/")
    page = alice.get(step1_url(bakery)).text
    message = html.unescape(errors_of(page, "product_id"))
    assert "The provider's products could not be loaded: GoGetSSL's product list: " in message


# --- item 4: step 2 says what is bought and for how much --------------------------------------


def test_step2_summarizes_the_server_type_organization_and_price(alice, bakery):
    page = alice.get(step1_url(bakery)).text
    changes = {
        "domain": "shop.example.com",
        "approver_email": "admin@example.com",
        "server_type": "nginx",
        "period_months": "24",
        "addons": ["warranty"],
        "unit": "Backstube",
    }
    contact = post(alice, step2_url(bakery), page, "contact", **changes)
    assert summary(contact.text) == {
        "Domain name": "shop.example.com",
        "Product": "Sandbox DV Single Domain",
        "Server type": "Nginx",
        "Validity period": "2 years",
        "Price": "$18.00 for 2 years",
        "Add-ons": "Extended warranty — $10.00 per year",
        "Validation": "Approval e-mail to admin@example.com",
        "Organization": "Bäckerei Müller GmbH, Backstube, Bayern, DE",
    }


def test_step2_summary_of_an_ov_order_names_the_address(alice, bakery):
    step1 = step1_for(alice, bakery, "ov-single").text
    changes = {"domain": "shop.example.com", "approver_email": "admin@example.com"}
    contact = post(alice, step2_url(bakery), step1, "contact", **changes)
    lines = summary(contact.text)
    assert lines["Address"] == "Hauptstraße 12, 80331 München, +49 89 123450"
    assert lines["Price"] == "$59.00 for 1 year"


# --- item 5: an approver per name --------------------------------------------------------------

MULTI = {
    "domain": "example.com",
    "approver_email": "admin@example.com",
    "sans": "www.example.com\nshop.example.com",
}


def approver_rows(page: str) -> dict[str, list[str]]:
    """Each additional name's dropdown: its label's name and the addresses offered."""
    rows = {}
    for index, name in re.findall(r'id="san_approvers-(\d+)-name"[^>]*value="([^"]*)"', page):
        select = re.search(rf'<select[^>]*id="san_approvers-{index}-approver".*?</select>', page)
        rows[name] = re.findall(r'<option[^>]*value="([^"]*)"', select.group(0))
    return rows


def test_each_additional_name_gets_its_own_approver_dropdown(alice, bakery):
    page = step1_for(alice, bakery, "dv-multi", action="lookup", **MULTI).text
    rows = approver_rows(page)
    assert list(rows) == ["www.example.com", "shop.example.com"]
    assert "admin@www.example.com" in rows["www.example.com"]
    assert "admin@shop.example.com" in rows["shop.example.com"]
    assert "admin@www.example.com" not in rows["shop.example.com"]
    assert "Approval address for www.example.com</label>" in page


def test_each_names_approver_is_kept_and_sent(alice, bakery, runtime):
    page = step1_for(alice, bakery, "dv-multi", action="lookup", **MULTI).text
    chosen = {"san_approvers-0-approver": "webmaster@example.com"}
    contact = post(alice, step2_url(bakery), page, "contact", **MULTI, **chosen)
    assert summary(contact.text)["Additional name"] == (
        "www.example.com · approval e-mail to webmaster@example.com | "
        "shop.example.com · approval e-mail to admin@shop.example.com"
    )
    back = post(alice, step1_url(bakery), contact.text, "back")
    assert FormReader(back.text).values["san_approvers-0-approver"] == "webmaster@example.com"
    response = post(alice, step2_url(bakery), contact.text, "submit")
    assert "Order received" in response.text, errors_in(response.text)
    (order,) = all_orders(runtime)
    assert order.san_approvers == {
        "www.example.com": "webmaster@example.com",
        "shop.example.com": "admin@shop.example.com",
    }
    assert "www.example.com · approval e-mail to webmaster@example.com" in response.text
    again = FormReader(alice.get(f"{step1_url(bakery)}?from={order.id}").text).values
    assert again["san_approvers-0-approver"] == "webmaster@example.com"  # "Order again"


def test_an_approver_the_provider_does_not_offer_for_its_name_is_refused(alice, bakery, runtime):
    page = step1_for(alice, bakery, "dv-multi", action="lookup", **MULTI).text
    forged = {"san_approvers-1-approver": "admin@www.example.com"}  # www's, not shop's
    response = post(alice, step2_url(bakery), page, "contact", **MULTI, **forged)
    assert response.status_code == 422
    assert "Choose an approval address the provider offers for shop.example.com." in errors_of(
        response.text, "san_approvers"
    )
    assert all_orders(runtime) == []


def test_a_name_without_an_approver_is_named(alice, bakery, runtime):
    """A browser that never looked the new name up sends no approver for it."""
    page = step1_for(alice, bakery, "dv-multi", action="lookup", **MULTI).text
    more = {**MULTI, "sans": MULTI["sans"] + "\nblog.example.com"}
    response = post(alice, step2_url(bakery), page, "contact", **more)
    assert response.status_code == 422
    message = errors_of(response.text, "san_approvers")
    assert "Choose the approval address for blog.example.com." in message
    assert "blog.example.com" in approver_rows(response.text)  # now it has its dropdown


def test_gogetssl_gets_each_sans_approver_and_the_renewal_too(
    alice, bakery, runtime, gogetssl, gogetssl_sim
):
    page = step1_for(alice, bakery, "99", action="lookup", **MULTI).text
    chosen = {
        "san_approvers-0-approver": "webmaster@example.com",
        "san_approvers-1-approver": "admin@shop.example.com",
    }
    response = place(alice, bakery, page, **MULTI, **chosen)
    assert "Order received" in response.text, errors_in(response.text)
    (order,) = all_orders(runtime)
    sent = gogetssl_sim.orders[order.provider_order_id].params
    assert sent["dns_names"] == "www.example.com,shop.example.com"
    assert sent["approver_emails"] == "webmaster@example.com,admin@shop.example.com"
    gogetssl_sim.approve(order.provider_order_id)
    runtime.orders.check(order.id)
    renewal = runtime.follow_ups.renew(order.id, "alice").order
    renewed = gogetssl_sim.orders[renewal.provider_order_id].params
    assert renewed["approver_emails"] == "webmaster@example.com,admin@shop.example.com"


def test_sectigo_gets_an_approver_for_every_name(alice, bakery, runtime, sectigo, sectigo_sim):
    page = step1_for(alice, bakery, "279", action="lookup", **MULTI).text
    chosen = {
        "san_approvers-0-approver": "webmaster@example.com",
        "san_approvers-1-approver": "admin@shop.example.com",
    }
    response = place(alice, bakery, page, **MULTI, **chosen)
    assert "Order received" in response.text, errors_in(response.text)
    (order,) = all_orders(runtime)
    received = sectigo_sim.orders[order.provider_order_id].received
    assert received["dcvEmailAddresses"] == (
        "admin@example.com,webmaster@example.com,admin@shop.example.com"
    )
