"""The reseller's walk of issue 10 through Flask's client: List SSL Certs and the details page.

A refused order reads *refused* with the provider's words and is fixed and resubmitted or
discarded; "The provider says" carries only what the provider said; a periodic check that fails
says so in the list, and GoGetSSL's batch status call falls back to asking order by order; a
record the panel published is folded away; the pager counts the rows it shows; the key's words
are true; the provider form lists its URL presets once and warns about a plain http:// URL.
Pages are driven as a browser without JavaScript drives them (tests/test_order_flow.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from panel_ssl_plugin.orders import OrderRejected
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.providers.base import ProviderRejected
from panel_ssl_plugin.providers.sandbox import SandboxProvider
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import utcnow
from tests.conftest import csrf_token
from tests.ordering import draft
from tests.providers import gogetssl_sim as sim
from tests.test_certs import issued, place, post, text
from tests.test_minipanel import client_ids
from tests.test_order_flow import DOMAIN, all_orders, step2_url, to_contact
from tests.test_order_flow import post as press

REFUSAL = "Missing org_city"
HTTPS_URL = "https://sandbox.gogetssl.com/api"


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def bakery(app) -> str:
    return str(client_ids(app, "alice")[0])


@pytest.fixture
def alice(as_user):
    return as_user("alice")


@pytest.fixture
def strict(runtime) -> int:
    """A sandbox account that refuses every order in the words a provider used for an OV order."""
    return runtime.accounts.create("sandbox", "Strict", {"reject_message": REFUSAL})


@pytest.fixture
def gogetssl(runtime, gogetssl_sim) -> int:
    settings = {"base_url": gogetssl_sim.url, "username": sim.USER, "password": sim.PASSWORD}
    return runtime.accounts.create("gogetssl", "GoGetSSL", settings, is_default=True)


def listing(bakery: str) -> str:
    return f"/ssl/accounts/{bakery}/certs"


def row_of(page: str, order_id: int) -> str:
    """One row of the list, as HTML."""
    start = page.index(f'data-cert-id="{order_id}"')
    return page[start : page.index("</tr>", start)]


def refused(runtime, account_id: int, domain: str = "shop.example.com"):
    """An order the provider refused: a draft with the provider's words."""
    with pytest.raises(OrderRejected) as rejection:
        runtime.orders.place(draft(account_id, domain=domain), "alice")
    return rejection.value.order


# --- item 6: a refused order ----------------------------------------------------------------------


def test_a_refused_order_reads_refused_and_is_fixed_and_resubmitted(runtime, alice, bakery, strict):
    contact = to_contact(alice, bakery, provider_account_id=str(strict))
    answer = press(alice, step2_url(bakery), contact.text, "submit")
    assert answer.status_code == 422 and REFUSAL in answer.text
    (order,) = all_orders(runtime)

    html = row_of(alice.get(listing(bakery)).text, order.id)
    row = text_of(html)
    assert "refused" in row and REFUSAL in row and "draft" not in row
    assert "Fix and resubmit" in row and "Discard" in row
    assert "Check status" not in row and "Cancel" not in row
    fix = f"/ssl/accounts/{bakery}/order?from={order.id}"
    assert f'href="{fix}"' in html

    form = alice.get(fix)
    assert f'value="{DOMAIN}"' in form.text
    demo = runtime.accounts.all()[0].id
    fixed = press(alice, step2_url(bakery), form.text, "contact", provider_account_id=str(demo))
    placed = press(alice, step2_url(bakery), fixed.text, "submit")
    assert "Order received" in placed.text
    (resubmitted,) = all_orders(runtime)  # the refused order itself, not a second one
    assert resubmitted.id == order.id and resubmitted.status == "pending"
    assert "refused" not in text_of(row_of(alice.get(listing(bakery)).text, order.id))


def test_discard_takes_a_refused_order_off_the_list_and_keeps_its_history(
    runtime, alice, bakery, strict
):
    order = refused(runtime, strict)
    pending = place(runtime, bakery, "kept.example.com")
    url = f"/ssl/certs/{order.id}/discard"
    assert alice.get(url).status_code == 405

    done = post(alice, url, listing(bakery), follow_redirects=True)
    page = text(done)
    assert "The refused order for shop.example.com is discarded." in page
    assert f'data-cert-id="{order.id}"' not in done.text and "kept.example.com" in page
    assert "1 certificate" in page and "Next" not in page

    kept = runtime.orders.get(order.id)  # for the audit trail
    assert kept.status == "cancelled"
    assert ("discarded", "Alice Reseller (#2)") in [
        (e.event, e.actor) for e in runtime.orders.events(order.id)
    ]
    assert alice.get(f"/ssl/certs/{order.id}").status_code == 200

    not_refused = post(alice, f"/ssl/certs/{pending.id}/discard", listing(bakery))
    assert not_refused.status_code == 302 and runtime.orders.get(pending.id).status == "pending"
    assert "Only a refused order can be discarded" in text(alice.get(listing(bakery)))


# --- item 7: the provider's words, and ours ----------------------------------------------------


def test_the_provider_says_only_what_the_provider_said(runtime, alice, bakery):
    order = place(runtime, bakery)
    details = f"/ssl/certs/{order.id}"
    before = text(alice.get(details))
    assert "The provider says" not in before  # it has not been asked yet
    assert "Order received; the approval email was sent to admin@shop.example.com." in before

    post(alice, f"{details}/check-status", details)
    after = text(alice.get(details))
    assert (
        "The provider says:</strong> Awaiting approval by admin@shop.example.com. "
        '<span class="muted">(status “awaiting_approval”)</span>'
    ) in after
    assert "Order received; the approval email" not in after


def test_an_issued_certificate_without_a_description_is_not_nothing_yet(
    runtime, alice, bakery, gogetssl, gogetssl_sim
):
    order = place(runtime, bakery, "example.com", provider_account_id=gogetssl, product_id="71")
    gogetssl_sim.approve(order.provider_order_id)
    gogetssl_sim.set_status(order.provider_order_id, "active", "")
    details = f"/ssl/certs/{order.id}"
    post(alice, f"{details}/check-status", details)
    page = text(alice.get(details))
    assert runtime.orders.get(order.id).status == "issued"
    assert "nothing yet" not in page
    assert "The provider says:</strong> “active”" in page


def test_a_cancelled_order_does_not_say_the_provider_still_processes_it(
    runtime, alice, bakery, gogetssl
):
    order = place(runtime, bakery, "example.com", provider_account_id=gogetssl, product_id="71")
    details = f"/ssl/certs/{order.id}"
    post(alice, f"{details}/check-status", details)
    assert "The provider says" in text(alice.get(details))
    post(alice, f"{details}/cancel", details, {"reason": "Typo in the domain"})
    page = text(alice.get(details))
    assert 'data-testid="cert-status">cancelled<' in page
    assert "The provider says" not in page and "Typo in the domain" in page
    assert re.search(
        r"When last asked \(just now\), the provider said:</strong> “processing”", page
    )


# --- item 8: a failing check is visible ----------------------------------------------------------


def test_a_failing_periodic_check_says_so_in_the_list(
    runtime, alice, bakery, gogetssl, gogetssl_sim
):
    order = place(runtime, bakery, "example.com", provider_account_id=gogetssl, product_id="71")
    gogetssl_sim.fail_next("500", "/orders/statuses/")
    poll_due(runtime.orders, utcnow() + timedelta(minutes=2))

    row = text_of(row_of(alice.get(listing(bakery)).text, order.id))
    assert "Last checked" not in row
    assert "Last check failed just now: GoGetSSL had an internal error (HTTP 500)" in row
    assert re.search(r"· next try in [34] minutes", row), row

    poll_due(runtime.orders, utcnow() + timedelta(minutes=5))
    row = text_of(row_of(alice.get(listing(bakery)).text, order.id))
    assert "Last checked just now" in row and "failed" not in row


def test_a_refused_batch_call_falls_back_to_asking_each_order(
    runtime, alice, bakery, gogetssl, gogetssl_sim, monkeypatch
):
    """An account whose GoGetSSL refuses /orders/statuses/ ("Unknown method") is still polled."""

    def refuse(_sim, _call):
        raise sim.ApiError("", message="Unknown method")

    routes = [
        sim.Route(r.method, r.pattern, refuse) if r.handler is sim.GoGetSSLSim.statuses else r
        for r in sim.ROUTES
    ]
    monkeypatch.setattr(sim, "ROUTES", tuple(routes))
    orders = [
        place(runtime, bakery, domain, provider_account_id=gogetssl, product_id="71")
        for domain in ("one.example.com", "two.example.com")
    ]
    poll_due(runtime.orders, utcnow() + timedelta(minutes=2))
    assert gogetssl_sim.path_calls["/orders/statuses/"] == 1
    page = alice.get(listing(bakery)).text
    for order in orders:
        assert gogetssl_sim.path_calls[f"/orders/status/{order.provider_order_id}"] == 1
        checked = runtime.orders.get(order.id)
        assert (checked.provider_status, checked.check_failures) == ("processing", 0)
        assert "Last checked just now" in text_of(row_of(page, order.id))


def test_the_poller_asks_one_by_one_when_a_batch_call_raises(runtime, bakery, monkeypatch):
    def refused_batch(_adapter, _refs):
        raise ProviderRejected("Unknown method")

    monkeypatch.setattr(SandboxProvider, "statuses", refused_batch)
    order = place(runtime, bakery)
    report = poll_due(runtime.orders, utcnow() + timedelta(minutes=2))
    assert report.by_status == {"pending": 1}
    checked = runtime.orders.get(order.id)
    assert (checked.provider_status, checked.check_failures) == ("awaiting_approval", 0)


# --- item 9: what the panel published ------------------------------------------------------------


def test_a_record_the_panel_published_is_folded_away(runtime, alice, bakery, gogetssl):
    http = place(
        runtime, bakery, "example.com", provider_account_id=gogetssl, product_id="71",
        dcv_method="http", approver_email="",
    )  # fmt: skip
    (task,) = runtime.orders.get(http.id).validation
    assert task["published"]  # the minipanel serves the site's files
    response = alice.get(f"/ssl/certs/{http.id}")
    page = text(response)
    assert "Published by the panel; the provider will check it." in page
    assert "Publish the file below" not in page
    folded = re.search(r"<details class=\"published\">(.*?)</details>", response.text, re.S)
    assert folded and task["location"] in folded.group(1)
    assert "I have published the records" not in page and "Ask the provider to check now" in page

    dns = place(
        runtime, bakery, "example.org", provider_account_id=gogetssl, product_id="71",
        dcv_method="dns", approver_email="",
    )  # fmt: skip
    dns_page = alice.get(f"/ssl/certs/{dns.id}")
    assert "Create the DNS records below" in text(dns_page) and "<details" not in dns_page.text
    assert "I have published the records — validate now" in text(dns_page)


# --- item 10: the pager, long names, the key -----------------------------------------------------


def test_the_pager_counts_the_rows_it_shows(app, runtime, alice, bakery):
    first = issued(app, runtime, bakery, "first.example.com")
    place(runtime, bakery, "second.example.com")
    place(runtime, bakery, "third.example.com")
    runtime.follow_ups.renew(first.id, "alice")
    page = text(alice.get(listing(bakery)))
    assert page.count("<tr class=") == 4
    assert "3 certificates · 4 rows with 1 renewal" in page


def test_long_domain_names_may_wrap_between_any_letters_only_where_they_must():
    css = (Path(__file__).parents[1] / "templates/static/panel_ssl.css").read_text()
    assert "break-all" not in css  # that broke every long value mid-word, needed or not
    assert re.search(r"table\.certs a\.domain[^{]*\{[^}]*overflow-wrap: anywhere", css)


def test_a_shown_key_says_what_is_true(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    details = f"/ssl/certs/{order.id}?tab=certificate"
    for _ in range(2):
        shown = text(post(alice, f"/ssl/certs/{order.id}/reveal-key", details))
        assert "Shown once" not in shown
        assert "Shown to you on this page only: it is not cached or kept in your session" in shown
        assert "you can show it again at any time" in shown
        assert "Each time it is shown, that is recorded in the order's history." in shown
    events = [e.event for e in runtime.orders.events(order.id)]
    assert events.count("key_revealed") == 2


# --- item 11: the provider form ------------------------------------------------------------------


class VisibleText(HTMLParser):
    """The words a person reads on a page: no attribute values, no datalist options."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self._hidden += tag in ("datalist", "script", "head")

    def handle_endtag(self, tag):
        self._hidden -= tag in ("datalist", "script", "head")

    def handle_data(self, data):
        if not self._hidden:
            self.words.append(data)

    @property
    def text(self) -> str:
        return "".join(self.words)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", VisibleText(html).text)


@pytest.mark.parametrize(
    ("provider", "urls"),
    [
        ("gogetssl", ("https://my.gogetssl.com/api", "https://sandbox.gogetssl.com/api")),
        ("sectigo", ("https://secure.trust-provider.com/products", "https://secure.comodo.net/products")),
    ],
)  # fmt: skip
def test_url_presets_are_listed_once(as_user, provider, urls):
    page = text_of(as_user("admin").get(f"/ssl/admin/providers/new?provider={provider}").text)
    assert [page.count(url) for url in urls] == [1, 1]


def test_a_plain_http_api_url_is_saved_with_a_warning(runtime, as_user, gogetssl_sim):
    admin = as_user("admin")
    new = "/ssl/admin/providers/new?provider=gogetssl"
    data = {
        "csrf_token": csrf_token(admin, new),
        "label": "GoGetSSL simulator",
        "enabled": "y",
        "settings-base_url": gogetssl_sim.url,
        "settings-username": sim.USER,
        "settings-password": sim.PASSWORD,
        "settings-timeout": "5",
    }
    saved = admin.post(new, data=data, follow_redirects=True)
    page = text(saved)
    assert "GoGetSSL simulator is added." in page
    assert (
        f"GoGetSSL simulator talks to {gogetssl_sim.url} over plain http://: its login and every "
        "order travel unencrypted. Use https:// unless this is a test server."
    ) in page
    assert 'class="flash flash-warning"' in saved.text
    account_id = max(account.id for account in runtime.accounts.all())
    edit = f"/ssl/admin/providers/{account_id}/edit"
    https = {**data, "csrf_token": csrf_token(admin, edit), "settings-base_url": HTTPS_URL}
    assert "plain http://" not in text(admin.post(edit, data=https, follow_redirects=True))
