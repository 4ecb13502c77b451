"""The Order SSL Cert popup through Flask's test client: every step, rule and error path.

Pages are driven the way a browser without JavaScript drives them: read the form's values from
the HTML, change what a user would change, post it with the button pressed. A scripted sandbox
provider (registered through ``ssl_register_providers``) can be down, slow, or fail its lookups.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from panel_ssl_plugin import keys
from panel_ssl_plugin.accounts import provider_classes
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.providers.base import OrderRequest, ProviderRef, ProviderUnavailable
from panel_ssl_plugin.providers.sandbox import SandboxProvider
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import orders as orders_table
from tests.conftest import csrf_token
from tests.providers.gogetssl_sim import PASSWORD, USER
from tests.test_minipanel import client_ids

DOMAIN = "www.bücher.example"
ALABEL = "www.xn--bcher-kva.example"
APPROVER = "admin@xn--bcher-kva.example"


# --- a provider the tests steer -------------------------------------------------------------------


@dataclass
class Script:
    """What the scripted provider does on its next calls."""

    down: bool = False
    lookup_down: bool = False
    catalogue_down: bool = False
    delay: float = 0.0
    placed: list[str] = field(default_factory=list)


def scripted_provider(script: Script) -> type[SandboxProvider]:
    class ScriptedSandbox(SandboxProvider):
        key = "scripted"
        name = "Scripted sandbox"

        def products(self):
            if script.catalogue_down:
                raise ProviderUnavailable("Catalogue service unavailable (HTTP 503).")
            return super().products()

        def dcv_emails(self, domain: str) -> list[str]:
            if script.lookup_down:
                raise ProviderUnavailable("Approver service timed out after 10 s.")
            return super().dcv_emails(domain)

        def place_order(self, request: OrderRequest) -> ProviderRef:
            time.sleep(script.delay)
            if script.down:
                raise ProviderUnavailable("The provider is down for maintenance.")
            script.placed.append(request.idempotency_key)
            return super().place_order(request)

    return ScriptedSandbox


class ScriptedPlugin:
    def __init__(self, script: Script):
        self.provider = scripted_provider(script)

    @hookimpl
    def ssl_register_providers(self) -> list[type]:
        return [self.provider]


@pytest.fixture
def script() -> Script:
    return Script()


@pytest.fixture
def app(app, script):
    """The shared minipanel, with the scripted provider registered as another package would.

    The demo data already started the plugin's runtime, so its registry is read again.
    """
    pm = app.extensions["hosting_panel"]
    pm.register(ScriptedPlugin(script))
    runtime_for(pm).accounts.classes.update(provider_classes(pm))
    return app


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def scripted(runtime) -> int:
    return runtime.accounts.create("scripted", "Scripted", {})


@pytest.fixture
def alice(as_user):
    return as_user("alice")


@pytest.fixture
def bakery(app) -> str:
    return str(client_ids(app, "alice")[0])


@pytest.fixture
def acme(app) -> str:
    return str(client_ids(app, "alice")[1])


# --- a browser without JavaScript -------------------------------------------------------------


class FormReader(HTMLParser):
    """The values a browser sends for a page's form, before any button is pressed; what a
    ``<template>`` holds is no part of the form."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.values: MultiDict = MultiDict()
        self._select: tuple[str, list[str], list[str]] | None = None
        self._textarea: list[str] | None = None
        self._templates = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._templates += tag == "template"
        if self._templates:
            return
        if tag == "input" and "name" in attrs and attrs.get("type") not in ("submit", "button"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.values.add(attrs["name"], attrs.get("value", ""))
        elif tag == "select":
            self._select = (attrs["name"], [], [])
        elif tag == "option" and self._select:
            self._select[1].append(attrs["value"])
            if "selected" in attrs:
                self._select[2].append(attrs["value"])
        elif tag == "textarea":
            self._textarea = [attrs["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        self._templates -= tag == "template"
        if tag == "select" and self._select:
            name, options, selected = self._select
            self.values.add(name, (selected or options or [""])[0])
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.add(self._textarea[0], self._textarea[1].removeprefix("\n"))
            self._textarea = None


def post(client, url: str, page: str, action: str, **changes):
    """Press the button ``action`` on ``page`` after changing some fields (lists for many)."""
    data = FormReader(page).values
    for name, value in changes.items():
        data.setlist(name, value if isinstance(value, list) else [value])
    data["action"] = action
    return client.post(url, data=data)


def step1_url(account: str) -> str:
    return f"/ssl/accounts/{account}/order"


def step2_url(account: str) -> str:
    return f"/ssl/accounts/{account}/order/contact"


def to_contact(client, account: str, **changes):
    """Step 1 opened, filled (a domain and its first approver by default), then "continue"."""
    changes = {"domain": DOMAIN, "approver_email": APPROVER, **changes}
    return post(
        client, step2_url(account), client.get(step1_url(account)).text, "contact", **changes
    )


def submit(client, account: str, step1: dict | None = None, **changes):
    """The whole popup: step 1 with ``step1`` changes, then submit with ``changes``."""
    contact_page = to_contact(client, account, **(step1 or {}))
    assert contact_page.status_code == 200, contact_page.text
    return post(client, step2_url(account), contact_page.text, "submit", **changes)


def all_orders(runtime) -> list:
    with runtime.engine.connect() as conn:
        ids = [row.id for row in conn.execute(orders_table.select().order_by(orders_table.c.id))]
    return [runtime.orders.get(order_id) for order_id in ids]


def errors_of(page: str, name: str) -> str:
    start = page.index(f'id="{name}-errors"')
    return page[start : page.index("</ul>", start)]


# --- step 1 -------------------------------------------------------------------------------------


def test_step1_is_prefilled_from_the_client(alice, bakery):
    page = alice.get(step1_url(bakery)).text
    values = FormReader(page).values
    assert values["organization"] == "Bäckerei Müller GmbH"
    assert values["state"] == "Bayern" and values["country"] == "DE"
    assert values["unit"] == "" and values["domain"] == ""
    assert values["period_months"] == "12" and values["product_id"] == "dv-single"
    assert values["key_type"] == keys.DEFAULT_KEY_TYPE and values["key_source"] == "generate"
    assert len(values["idempotency_key"]) >= 16
    for label in ("Domain name", "Validity period", "Server type", "Product", "Add-ons"):
        assert label in page
    assert "Approval Email Address" in page and "Look up approval emails" in page
    assert "Microsoft IIS" in page and "Extended warranty" in page
    assert page.index('id="domain"') < page.index('id="period_months"')
    assert page.index('id="server_type"') < page.index('id="product_id"')
    assert page.index('id="product_id"') < page.index('id="approver_email"')
    assert page.index('id="approver_email"') < page.index('id="organization"')
    assert 'name="provider_account_id" value=' in page  # one account: no choice shown


def test_order_again_starts_from_an_earlier_order(alice, bakery, runtime, as_user):
    """Cancel-and-reorder: a typo'd order is cancelled and ordered again, values kept."""
    response = submit(alice, bakery, {"unit": "Web team", "server_type": "iis"})
    assert response.status_code == 200, response.text
    (first,) = all_orders(runtime)
    runtime.orders.cancel(first.id, "alice", "typo in the domain")
    values = FormReader(alice.get(f"{step1_url(bakery)}?from={first.id}").text).values
    assert values["domain"] == DOMAIN and values["approver_email"] == APPROVER
    assert (values["unit"], values["server_type"]) == ("Web team", "iis")
    assert values["idempotency_key"] != first.idempotency_key
    assert as_user("bob").get(f"{step1_url(bakery)}?from={first.id}").status_code == 403
    other_client = str(int(bakery) + 1)
    foreign = FormReader(alice.get(f"{step1_url(other_client)}?from={first.id}").text).values
    assert foreign["domain"] == ""  # another client's order is never a template


def test_every_popup_gets_its_own_idempotency_key(alice, bakery):
    first, second = (FormReader(alice.get(step1_url(bakery)).text).values for _ in range(2))
    assert first["idempotency_key"] != second["idempotency_key"]


def test_provider_choice_appears_with_the_default_preselected(alice, bakery, runtime, scripted):
    page = alice.get(step1_url(bakery)).text
    assert '<select aria-describedby="provider_account_id-hint' in page
    assert FormReader(page).values["provider_account_id"] == str(runtime.accounts.all()[0].id)
    runtime.accounts.set_default(scripted)
    assert FormReader(alice.get(step1_url(bakery)).text).values["provider_account_id"] == str(
        scripted
    )


def test_choosing_a_product_redraws_its_options(alice, bakery):
    page = alice.get(step1_url(bakery)).text
    multi = post(alice, step1_url(bakery), page, "refresh", product_id="dv-multi").text
    assert "Additional domain names" in multi and "Extra SAN" in multi
    wildcard = post(alice, step1_url(bakery), page, "refresh", product_id="dv-wildcard").text
    assert '<select aria-describedby="dcv_method-hint' in wildcard
    assert "DNS record" in wildcard and "Additional domain names" in wildcard


def test_lookup_button_fills_the_approvers_without_javascript(alice, bakery):
    page = alice.get(step1_url(bakery)).text
    found = post(alice, step1_url(bakery), page, "lookup", domain=DOMAIN).text
    assert f'<option value="{APPROVER}">admin@bücher.example</option>' in found
    assert FormReader(found).values["domain"] == DOMAIN


def test_lookup_shows_the_providers_error_beside_the_field(alice, bakery, script, scripted):
    script.lookup_down = True
    page = alice.get(step1_url(bakery)).text
    found = post(
        alice, step1_url(bakery), page, "lookup", domain=DOMAIN, provider_account_id=str(scripted)
    )
    assert "Approver service timed out after 10 s." in errors_of(found.text, "approver_email")
    assert "Look up approval emails" in found.text  # the retry


def test_products_that_cannot_load_say_why(alice, bakery, script, runtime, scripted):
    script.catalogue_down = True
    runtime.accounts.set_default(scripted)
    page = alice.get(step1_url(bakery)).text
    assert "Catalogue service unavailable (HTTP 503)." in errors_of(page, "product_id")


def test_no_enabled_provider_account(alice, bakery, runtime):
    for account in runtime.accounts.all():
        runtime.accounts.set_enabled(account.id, False)
    response = alice.get(step1_url(bakery))
    assert response.status_code == 503 and "No SSL provider account" in response.text


# --- the live lookup (JSON) -------------------------------------------------------------------


def dcv(client, account: str, domain: str, **params):
    return client.get(
        f"/ssl/accounts/{account}/dcv-emails", query_string={"domain": domain, **params}
    )


def test_dcv_emails_give_a_labels_to_the_provider_and_u_labels_to_people(alice, bakery):
    response = dcv(alice, bakery, DOMAIN)
    assert response.status_code == 200 and response.json["domain"] == DOMAIN
    assert {"value": APPROVER, "label": "admin@bücher.example"} in response.json["emails"]
    assert all(isinstance(e["label"], str) for e in response.json["emails"])


def test_dcv_emails_explain_a_bad_domain(alice, bakery):
    response = dcv(alice, bakery, "exa")
    assert response.status_code == 422
    assert response.json == {
        "error": "Enter a full domain name with its extension, like example.com.",
        "field": "domain",
    }


def test_dcv_emails_pass_on_the_providers_message(alice, bakery, script, scripted):
    script.lookup_down = True
    response = dcv(alice, bakery, DOMAIN, provider_account_id=scripted)
    assert response.status_code == 502 and response.json["field"] == "approver_email"
    assert "Approver service timed out after 10 s." in response.json["error"]


def test_dcv_emails_refuse_an_unknown_provider_account(alice, bakery):
    response = dcv(alice, bakery, DOMAIN, provider_account_id=999)
    assert response.status_code == 400 and response.json["field"] == "provider_account_id"


# --- step 2 -------------------------------------------------------------------------------------


def test_contact_step_starts_with_the_default_contact_and_carries_step1(alice, acme):
    response = to_contact(alice, acme, unit="Web team")
    values = FormReader(response.text).values
    assert response.status_code == 200 and "Specify Contact Info" in response.text
    assert (values["contact_first_name"], values["contact_email"]) == (
        "Wile",
        "wile@acme-widgets.example",
    )
    assert values["domain"] == DOMAIN and values["unit"] == "Web team"
    assert "Road Runner &lt;rr@acme-widgets.example&gt;" in response.text
    assert "admin@bücher.example" in response.text  # the summary, in U-labels


def test_choosing_another_contact_fills_the_fields(alice, acme):
    page = to_contact(alice, acme).text
    road = next(v for v in ("1", "2", "3", "4") if f'value="{v}">Road Runner' in page)
    picked = FormReader(post(alice, step2_url(acme), page, "pick_contact", contact_id=road).text)
    assert picked.values["contact_first_name"] == "Road"
    assert picked.values["contact_email"] == "rr@acme-widgets.example"


def test_another_clients_contact_cannot_be_picked(alice, acme):
    page = to_contact(alice, acme).text
    picked = FormReader(post(alice, step2_url(acme), page, "pick_contact", contact_id="4").text)
    assert picked.values["contact_email"] == "" and picked.values["contact_id"] == "new"


def test_back_keeps_every_value(alice, acme):
    page = to_contact(alice, acme, unit="Web team", server_type="nginx").text
    back = post(alice, step1_url(acme), page, "back", contact_first_name="Wilhelmina")
    values = FormReader(back.text).values
    assert back.status_code == 200 and "Step 1 of 2" in back.text
    assert values["domain"] == DOMAIN and values["approver_email"] == APPROVER
    assert values["unit"] == "Web team" and values["server_type"] == "nginx"
    assert values["contact_first_name"] == "Wilhelmina"
    forward = post(alice, step2_url(acme), back.text, "contact")
    assert FormReader(forward.text).values["contact_first_name"] == "Wilhelmina"


def test_contact_page_is_not_a_get(alice, bakery):
    response = alice.get(step2_url(bakery))
    assert response.status_code == 302 and response.location.endswith(step1_url(bakery))


# --- submit ---------------------------------------------------------------------------------------


def test_submit_places_a_pending_order(alice, bakery, runtime):
    response = submit(alice, bakery, {"unit": "Bakery IT"}, contact_title="Owner")
    assert response.status_code == 200, response.text
    assert "Order received; the approval email was sent to" in response.text
    assert f'href="/ssl/accounts/{bakery}/certs"' in response.text
    (order,) = all_orders(runtime)
    assert order.status == "pending" and order.domain == ALABEL
    assert order.approver_email == APPROVER and order.unit == "Bakery IT"
    assert order.contact["title"] == "Owner" and order.account_id == bakery
    csr = keys.load_csr(order.csr)
    subject = csr.subject.rfc4514_string()
    assert "O=Bäckerei Müller GmbH" in subject and f"CN={ALABEL}" in subject
    assert "OU=Bakery IT" in subject and "C=DE" in subject
    key = keys.key_from_pem(runtime.orders.private_key(order))
    assert "PRIVATE KEY" not in order.private_key_encrypted
    assert keys.public_key_der(key) == keys.public_key_der(csr)


@pytest.mark.parametrize("key_type", list(keys.KEY_TYPES))
def test_every_key_type(alice, bakery, runtime, key_type):
    assert submit(alice, bakery, key_type=key_type).status_code == 200
    (order,) = all_orders(runtime)
    key = keys.key_from_pem(runtime.orders.private_key(order))
    assert order.key_type == key_type and order.status == "pending"
    assert key.key_size == {"ec256": 256, "ec384": 384}.get(key_type, int(key_type[3:]))


def test_sans_go_into_the_csr(alice, bakery, runtime):
    step1 = {
        "product_id": "dv-multi",
        "domain": "example.com",
        "approver_email": "admin@example.com",
        "sans": "www.example.com\nshop.example.com",
    }
    looked_up = post(alice, step1_url(bakery), alice.get(step1_url(bakery)).text, "lookup", **step1)
    contact = post(alice, step2_url(bakery), looked_up.text, "contact", **step1)
    response = post(alice, step2_url(bakery), contact.text, "submit")
    assert response.status_code == 200, response.text
    (order,) = all_orders(runtime)
    names = keys.csr_names(keys.load_csr(order.csr))
    assert names == ["example.com", "www.example.com", "shop.example.com"]
    assert order.san_approvers == {
        "www.example.com": "admin@www.example.com",
        "shop.example.com": "admin@shop.example.com",
    }


def test_a_pasted_csr_is_used_and_no_key_is_kept(alice, bakery, runtime):
    csr = keys.make_csr(keys.generate_key(), keys.Subject(ALABEL))
    response = submit(alice, bakery, key_source="csr", csr=csr)
    assert response.status_code == 200, response.text
    (order,) = all_orders(runtime)
    assert order.key_type == "csr" and order.private_key_encrypted is None
    assert order.csr.strip() == csr.strip()


@pytest.mark.parametrize(
    ("csr", "message"),
    [
        ("", "Paste your CSR"),
        ("hello", "not a readable certificate signing request"),
        ("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "That is a private key"),
        (keys.make_csr(keys.generate_key(), keys.Subject("other.example")), "the order is for"),
    ],
    ids=["empty", "garbage", "private-key", "other-domain"],
)
def test_a_bad_csr_is_refused_beside_the_field(alice, bakery, runtime, csr, message):
    response = submit(alice, bakery, key_source="csr", csr=csr)
    assert response.status_code == 422 and "Step 2 of 2" in response.text
    assert message in errors_of(response.text, "csr")
    assert FormReader(response.text).values["csr"].strip() == csr.strip()
    assert all_orders(runtime) == []


TOP = "top"  # the page does not show the field for this product: the message goes on top
STEP1_RULES = [
    ("domain", "", "Enter a domain name"),
    ("domain", "192.0.2.10", "not IP addresses"),
    ("domain", "*.example.com", "does not cover wildcard names"),
    ("domain", "my_shop.example", "underscore"),
    ("domain", "localhost", "full domain name"),
    ("period_months", "36", "Choose a validity period this product offers."),
    ("product_id", "gold-plated", "Choose a product from the list."),
    ("server_type", "lighttpd", "Choose a server type from the list."),
    ("addons", "free-lunch", "Choose add-ons this product offers."),
    ("approver_email", "", "Choose the approval email address."),
    ("approver_email", "ceo@example.com", "Choose one of the approval addresses"),
    ("country", "XX", "is not an ISO 3166-1 country code"),
    ("organization", "x" * 201, "At most 200 characters."),
    ("unit", "x" * 201, "At most 200 characters."),
    ("state", "x" * 201, "At most 200 characters."),
    ("dcv_method", "http", TOP + "Choose a validation method this product offers."),
    ("sans", "shop.example.com", TOP + "This product covers one domain name"),
    ("provider_account_id", "999", TOP + "Choose a provider account from the list."),
    ("provider_account_id", "", TOP + "Choose a provider account from the list."),
]


@pytest.mark.parametrize(("name", "value", "message"), STEP1_RULES)
def test_step1_rules_are_checked_on_submit(alice, bakery, runtime, name, value, message):
    contact = to_contact(alice, bakery)
    response = post(alice, step2_url(bakery), contact.text, "submit", **{name: value})
    assert response.status_code == 422 and "Step 1 of 2" in response.text
    top = response.text[response.text.index("order-alert") : response.text.index("<form")]
    assert "Please correct the marked fields." in top
    if message.startswith(TOP):
        assert message.removeprefix(TOP) in top
    else:
        assert message in errors_of(response.text, name)
    assert FormReader(response.text).values["contact_first_name"] == "Hans"
    assert all_orders(runtime) == []


@pytest.mark.parametrize(
    ("name", "value", "message"), [r for r in STEP1_RULES if not r[2].startswith(TOP)]
)
def test_step1_mistakes_are_shown_before_the_contact_step(alice, bakery, name, value, message):
    response = to_contact(alice, bakery, **{name: value})
    assert response.status_code == 422 and "Step 1 of 2" in response.text
    assert message in errors_of(response.text, name)
    assert FormReader(response.text).values["domain"] == (value if name == "domain" else DOMAIN)


def test_an_organization_product_needs_the_organization(alice, bakery, runtime):
    response = submit(alice, bakery, product_id="ov-single", organization="", state="")
    assert response.status_code == 422
    for name in ("organization", "state"):
        assert "This product validates the organization" in errors_of(response.text, name)
    assert all_orders(runtime) == []


STEP2_RULES = [
    ("contact_first_name", "", "Required."),
    ("contact_last_name", "", "Required."),
    ("contact_email", "", "Required."),
    ("contact_email", "hans at example", "is not a valid e-mail address"),
    ("contact_phone", "call me", "Enter a phone number"),
    ("contact_title", "x" * 101, "At most 100 characters."),
    ("key_type", "dsa1024", "Choose a key type from the list."),
]


@pytest.mark.parametrize(("name", "value", "message"), STEP2_RULES)
def test_step2_rules_are_checked_on_submit(alice, bakery, runtime, name, value, message):
    response = submit(alice, bakery, unit="Kept", **{name: value})
    assert response.status_code == 422 and "Step 2 of 2" in response.text
    assert message in errors_of(response.text, name)
    assert FormReader(response.text).values["unit"] == "Kept"
    assert all_orders(runtime) == []


# --- provider errors ------------------------------------------------------------------------------


def test_a_provider_rejection_returns_to_step1_with_every_value(alice, bakery, runtime):
    rejecting = runtime.accounts.create("sandbox", "Strict", {"reject_message": "Blocklisted."})
    contact = to_contact(alice, bakery, provider_account_id=str(rejecting), unit="IT")
    response = post(alice, step2_url(bakery), contact.text, "submit", contact_title="Boss")
    assert response.status_code == 422 and "Step 1 of 2" in response.text
    assert (
        '<div class="flash flash-error order-alert" role="alert">Blocklisted.</div>'
        in response.text
    )
    values = FormReader(response.text).values
    assert (values["domain"], values["unit"], values["contact_title"]) == (DOMAIN, "IT", "Boss")
    (draft,) = all_orders(runtime)
    assert draft.status == "draft"
    runtime.accounts.update(
        rejecting, label="Strict", settings={"reject_message": ""}, enabled=True
    )
    again = post(
        alice,
        step2_url(bakery),
        post(alice, step2_url(bakery), response.text, "contact").text,
        "submit",
    )
    assert "Order received" in again.text
    (order,) = all_orders(runtime)
    assert order.id == draft.id and order.status == "pending"


def test_a_provider_that_is_down_keeps_the_order_and_places_it_once(
    alice, bakery, runtime, script, scripted
):
    script.down = True
    contact = to_contact(alice, bakery, provider_account_id=str(scripted))
    response = post(alice, step2_url(bakery), contact.text, "submit", contact_title="Boss")
    assert response.status_code == 200
    assert "The provider is down for maintenance. We will retry automatically." in response.text
    (order,) = all_orders(runtime)
    assert order.status == "submitted" and order.contact["title"] == "Boss"
    assert order.private_key_encrypted and order.domain == ALABEL
    again = post(alice, step2_url(bakery), contact.text, "submit").text
    assert "Your order is saved; nothing you entered is lost." in again
    script.down = False
    assert runtime.orders.check(order.id).status == "pending"
    repeat = post(alice, step2_url(bakery), contact.text, "submit")
    assert "Order received; the approval email was sent to" in repeat.text
    assert [o.id for o in all_orders(runtime)] == [order.id]
    assert script.placed == [order.idempotency_key]


# --- the same order, once ---------------------------------------------------------------------


def test_submitting_twice_places_one_order(alice, bakery, runtime, script, scripted):
    contact = to_contact(alice, bakery, provider_account_id=str(scripted)).text
    first = post(alice, step2_url(bakery), contact, "submit")
    second = post(alice, step2_url(bakery), contact, "submit")
    assert "Order received" in first.text and "Order received" in second.text
    assert len(all_orders(runtime)) == 1 and len(script.placed) == 1


def test_two_submits_at_once_place_one_order(app, as_user, bakery, runtime, script, scripted):
    script.delay = 0.3
    clients = [as_user("alice"), as_user("alice")]
    contact = to_contact(clients[0], bakery, provider_account_id=str(scripted)).text
    start, pages = threading.Barrier(2), []

    def press(client) -> None:
        data = FormReader(contact).values
        data["csrf_token"] = FormReader(client.get(step1_url(bakery)).text).values["csrf_token"]
        data["action"] = "submit"
        start.wait()
        pages.append(client.post(step2_url(bakery), data=data))

    threads = [threading.Thread(target=press, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [p.status_code for p in pages] == [200, 200]
    assert len(all_orders(runtime)) == 1 and len(script.placed) == 1


def test_a_tampered_idempotency_key_is_replaced(alice, bakery):
    page = alice.get(step1_url(bakery)).text
    redrawn = post(alice, step1_url(bakery), page, "refresh", idempotency_key="x")
    assert len(FormReader(redrawn.text).values["idempotency_key"]) >= 16


def test_a_submit_without_a_key_orders_nothing(alice, bakery, runtime):
    contact = to_contact(alice, bakery).text
    response = post(alice, step2_url(bakery), contact, "submit", idempotency_key="")
    assert response.status_code == 422 and "nothing was ordered" in response.text
    assert FormReader(response.text).values["idempotency_key"] and all_orders(runtime) == []


# --- permission and CSRF ----------------------------------------------------------------------


def routes(account: str) -> list[tuple[str, str]]:
    return [
        ("get", step1_url(account)),
        ("post", step1_url(account)),
        ("get", step2_url(account)),
        ("post", step2_url(account)),
        ("get", f"/ssl/accounts/{account}/dcv-emails?domain=example.com"),
    ]


def test_a_reseller_never_reaches_another_resellers_client(app, as_user, runtime):
    bob = as_user("bob")
    token = {"csrf_token": csrf_token(bob, "/login")}
    for account in map(str, client_ids(app, "alice")):
        for method, url in routes(account):
            assert getattr(bob, method)(url, data=token).status_code == 403, url
    assert all_orders(runtime) == []


def test_anonymous_users_are_refused(client, bakery):
    """A page is sent to the host's login (and back); a POST or a script gets 401."""
    token = {"csrf_token": csrf_token(client, "/login")}
    for method, url in routes(bakery):
        response = getattr(client, method)(url, data=token)
        if method == "get" and "dcv-emails" not in url:
            assert response.status_code == 302 and response.location.startswith("/login?"), url
        else:
            assert response.status_code == 401, url


def test_an_unknown_client_is_not_found(as_user):
    assert as_user("admin").get(step1_url("9999")).status_code == 404


def test_every_post_needs_the_csrf_token(alice, bakery, runtime):
    contact = to_contact(alice, bakery).text
    data = FormReader(contact).values
    data.pop("csrf_token")
    for url in (step1_url(bakery), step2_url(bakery)):
        assert alice.post(url, data=data | {"action": "submit"}).status_code == 400
    assert all_orders(runtime) == []


def test_the_csrf_check_does_not_depend_on_the_host(app, alice, bakery, runtime):
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # the host's CSRFProtect checks nothing now
    contact = to_contact(alice, bakery).text
    data = FormReader(contact).values
    data["csrf_token"] = "forged"
    assert alice.post(step2_url(bakery), data=data | {"action": "submit"}).status_code == 400
    assert all_orders(runtime) == []


# --- the same popup on the GoGetSSL simulator ---------------------------------------------------


@pytest.fixture
def gogetssl(runtime, gogetssl_sim) -> int:
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD}
    return runtime.accounts.create("gogetssl", "GoGetSSL", settings, is_default=True)


def test_gogetssl_lookup_and_order(alice, bakery, runtime, gogetssl, gogetssl_sim):
    emails = dcv(alice, bakery, "shop.example.com").json["emails"]
    assert {"value": "admin@example.com", "label": "admin@example.com"} in emails
    page = alice.get(step1_url(bakery)).text
    assert "PositiveSSL" in page and "HTTP file on the website" in page
    response = submit(
        alice, bakery, {"domain": "shop.example.com", "approver_email": "admin@example.com"}
    )
    assert "Order received; the approval email was sent to admin@example.com" in response.text
    (order,) = all_orders(runtime)
    assert order.status == "pending" and order.provider_order_id in gogetssl_sim.orders


def test_gogetssl_rejection_returns_to_step1(alice, bakery, runtime, gogetssl, gogetssl_sim):
    step1 = {"domain": "shop.example.com", "approver_email": "admin@example.com"}
    contact = to_contact(alice, bakery, **step1).text
    assert dcv(alice, bakery, "shop.example.com").status_code == 200  # the plugin's cache
    gogetssl_sim.set_dcv_emails("shop.example.com", comodo=["ceo@example.com"], geotrust=[])
    response = post(alice, step2_url(bakery), contact, "submit")
    assert response.status_code == 422 and "Step 1 of 2" in response.text
    assert "admin@example.com is not a valid approver for shop.example.com" in response.text
    assert FormReader(response.text).values["domain"] == "shop.example.com"
    assert [o.status for o in all_orders(runtime)] == ["draft"] and not gogetssl_sim.orders


def test_gogetssl_outage_keeps_the_order(alice, bakery, runtime, gogetssl, gogetssl_sim):
    step1 = {"domain": "shop.example.com", "approver_email": "admin@example.com"}
    contact = to_contact(alice, bakery, **step1).text
    gogetssl_sim.fail_next("429", "/orders/add_ssl_order/")  # turned away before any work
    down = post(alice, step2_url(bakery), contact, "submit")
    assert "We will retry automatically" in down.text, down.text
    (order,) = all_orders(runtime)
    assert order.status == "submitted"
    assert runtime.orders.check(order.id).status == "pending"
    assert "Order received" in post(alice, step2_url(bakery), contact, "submit").text
    assert len(gogetssl_sim.orders) == 1


# --- pre-flight checks: what DNS says before the provider is paid ------------------------------

CAA_OTHER_CA = 'xn--bcher-kva.example. 60 CAA 0 issue "letsencrypt.org"'


def test_a_caa_record_naming_another_ca_stops_submit_before_the_provider(
    alice, bakery, runtime, script, scripted, local_dns
):
    local_dns.add(CAA_OTHER_CA)
    response = submit(alice, bakery, {"provider_account_id": str(scripted)})
    assert response.status_code == 422 and "Step 1 of 2" in response.text
    refusal = errors_of(response.text, "domain")
    assert "CAA forbids Sandbox (sandbox.panel-ssl.test) to issue for www.bücher.example" in refusal
    assert "xn--bcher-kva.example CAA 0 issue &#34;letsencrypt.org&#34;" in refusal
    values = FormReader(response.text).values
    assert values["domain"] == DOMAIN and values["provider_account_id"] == str(scripted)
    assert script.placed == [] and all_orders(runtime) == []

    local_dns.clear()  # the domain's owner drops the record: asked afresh at submit
    local_dns.add('xn--bcher-kva.example. 60 CAA 0 issue "sandbox.panel-ssl.test"')
    placed = post(alice, step2_url(bakery), response.text, "contact")
    assert post(alice, step2_url(bakery), placed.text, "submit").status_code == 200
    assert len(script.placed) == 1 and [o.status for o in all_orders(runtime)] == ["pending"]


def test_dns_that_cannot_answer_stops_an_order_until_it_can(
    alice, bakery, runtime, script, scripted, local_dns
):
    """A CA does not issue while CAA cannot be read (RFC 8659), so neither does the plugin
    place the order: it says to try again, and the retry once DNS answers goes through
    (issue 19; it used to let the order through)."""
    local_dns.servfail.add("xn--bcher-kva.example")
    response = submit(alice, bakery, {"provider_account_id": str(scripted)})
    assert response.status_code == 422 and script.placed == []
    assert "Try again in a moment" in errors_of(response.text, "domain")
    local_dns.servfail.clear()
    placed = post(alice, step2_url(bakery), response.text, "contact")
    assert post(alice, step2_url(bakery), placed.text, "submit").status_code == 200
    assert len(script.placed) == 1


def preflight(client, account: str, **changes) -> list[dict]:
    page = client.get(step1_url(account)).text
    response = post(client, f"/ssl/accounts/{account}/preflight", page, "", **changes)
    assert response.status_code == 200, response.text
    return response.json["findings"]


def test_preflight_shows_the_caa_refusal_and_the_approver_without_mx(alice, bakery, local_dns):
    local_dns.add(CAA_OTHER_CA, "mail.example. 60 MX 10 mx.mail.example.")
    findings = preflight(alice, bakery, domain=DOMAIN, approver_email=APPROVER)
    by_field = {f["field"]: f for f in findings}
    assert by_field["domain"]["level"] == "blocked"
    assert 'CAA 0 issue "letsencrypt.org"' in by_field["domain"]["message"]
    assert by_field["approver_email"]["level"] == "warning"
    assert "bücher.example has no MX record" in by_field["approver_email"]["message"]
    fine = preflight(alice, bakery, domain="shop.mail.example", approver_email="admin@mail.example")
    assert [(f["field"], f["level"]) for f in fine] == [("domain", "ok"), ("approver_email", "ok")]


def test_preflight_of_a_half_typed_form_says_nothing(alice, bakery):
    assert preflight(alice, bakery, domain="not a domain") == []


def test_without_javascript_the_lookup_button_shows_the_checks(alice, bakery, local_dns):
    local_dns.add(CAA_OTHER_CA)
    page = alice.get(step1_url(bakery)).text
    changes = {"domain": DOMAIN, "approver_email": APPROVER}  # chosen, then looked up again
    response = post(alice, step1_url(bakery), page, "lookup", **changes)
    assert response.status_code == 200
    assert '<li class="preflight-blocked">CAA forbids Sandbox' in response.text
    assert "xn--bcher-kva.example CAA 0 issue &#34;letsencrypt.org&#34;" in response.text
    assert '<li class="preflight-warning">bücher.example has no MX record' in response.text


@pytest.mark.parametrize(
    "changes",
    [
        {"domain": "bad\x00name.example"},
        {"domain": "a" * 10_000},
        {"domain": "shop.example", "sans": "\x00 ;; " + "b." * 200 + "example"},
        {"domain": "shop.example", "approver_email": "admin@\x00.example"},
        {"domain": "shop.example", "approver_email": "@"},
        {"domain": "shop.example", "provider_account_id": "9" * 30},
        {"domain": "shop.example", "product_id": "<script>"},
    ],
)
def test_preflight_answers_any_input_without_a_500(alice, bakery, changes):
    for finding in preflight(alice, bakery, **changes):
        assert finding["level"] in {"ok", "warning", "blocked"}


def test_a_submit_costs_few_statements(app, alice, bakery):
    """Form, draft check, adapter and sending all ask for the provider account, and the order
    was inserted, read back, then taken for sending by an UPDATE: 18 plugin statements. Now
    the request reads the enabled accounts for the form, the account once (again after the
    sandbox saves its CA state), and the INSERT is the taking, returning the row."""
    engine = runtime_for(app.extensions["hosting_panel"]).engine
    contact_page = to_contact(alice, bakery)
    statements: list[str] = []

    def count(conn, cursor, statement, *_args) -> None:
        if "ssl_" in statement and "mp_" not in statement:  # the plugin's, not the panel's
            statements.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        reply = post(alice, step2_url(bakery), contact_page.text, "submit")
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert reply.status_code == 200 and "pending" in reply.text
    by_id = [
        q for q in statements
        if q.startswith("SELECT") and q.endswith("WHERE ssl_provider_accounts.id = ?")
    ]  # fmt: skip
    assert len(by_id) <= 2, statements
    assert len(statements) <= 10, statements
