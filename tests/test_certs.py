"""List SSL Certs, the details popup, check status, downloads, renewal and reissue through
Flask's client.

Orders are placed through the order service (the order popup has its own tests) on the sandbox
provider and approved by following the link of its approval email, as a customer would; check
status also runs against the GoGetSSL simulator, outage included.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from panel_ssl_plugin import keys
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import OrderRecord
from panel_ssl_plugin.web import certs
from tests.conftest import csrf_token
from tests.ordering import draft, follow_approval_link
from tests.providers.gogetssl_sim import PASSWORD as GOGETSSL_PASSWORD
from tests.providers.gogetssl_sim import USER as GOGETSSL_USER
from tests.test_minipanel import client_ids

PFX_PASSWORD = "correct horse battery"


# --- orders to look at --------------------------------------------------------------------------


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def bakery(app) -> str:
    """Alice's first client."""
    return str(client_ids(app, "alice")[0])


@pytest.fixture
def alice(as_user):
    return as_user("alice")


def place(runtime, account_id: str, domain: str = "shop.example.com", **fields) -> OrderRecord:
    """A pending sandbox order of ``account_id``, approval email sent."""
    account = fields.pop("provider_account_id", runtime.accounts.all()[0].id)
    order = draft(account, account_id=account_id, domain=domain, **fields)
    return runtime.orders.place(order, "alice").order


def approval_path(app, order: OrderRecord) -> str:
    """The path of the newest approval link mailed for ``order``."""
    mails = app.extensions["minipanel"].mails()
    body = next(m.body for m in mails if order.provider_order_id in m.body)
    return re.search(r"https?://[^/]+(/\S+/callback/\S+)", body).group(1)


def issued(app, runtime, account_id: str, domain: str = "shop.example.com", **fields):
    """An issued sandbox certificate: placed, then approved through the link in the outbox."""
    order = place(runtime, account_id, domain, **fields)
    response = follow_approval_link(app.test_client(), approval_path(app, order))
    assert response.status_code == 200 and "is approved" in response.text
    return runtime.orders.get(order.id)


def post(client, url: str, page: str, data: dict | None = None, **kwargs):
    """POST ``url`` with the CSRF token read from ``page``, as the page's form would."""
    token = csrf_token(client, page)
    return client.post(url, data={"csrf_token": token, **(data or {})}, **kwargs)


def text(response) -> str:
    """The page's words with whitespace squeezed, for asserting sentences."""
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


# --- 1. the list --------------------------------------------------------------------------------


def test_list_shows_both_statuses_expiry_and_when_last_checked(app, runtime, alice, bakery):
    done = issued(app, runtime, bakery, "www.bücher.example")
    place(runtime, bakery, "pending.example.com")
    page = text(alice.get(f"/ssl/accounts/{bakery}/certs"))
    assert "www.bücher.example" in page and "xn--bcher" not in page
    assert "Sandbox DV Single Domain" in page and "Sandbox (demo CA)" in page
    assert 'badge badge-issued" data-testid="cert-status">issued</span>' in page
    assert "provider: issued" in page
    assert f"{done.not_after:%Y-%m-%d}" in page and re.search(r"\d+ days left", page)
    assert "Last checked <span" in page and ">just now</span>" in page and ">never</span>" in page
    assert page.count("Check status") == 2 and page.count(">Details</a>") == 2
    assert page.count(">Renew</a>") == 1  # the pending order cannot be renewed yet


def test_list_sorts_by_link_and_pages(app, runtime, alice, bakery, monkeypatch):
    monkeypatch.setattr(certs, "PER_PAGE", 2)
    for domain in ("b.example.com", "c.example.com", "a.example.com"):
        place(runtime, bakery, domain)
    url = f"/ssl/accounts/{bakery}/certs"

    def domains(response) -> list[str]:
        return re.findall(r'class="domain"[^>]*>([^<]+)<', response.text)

    def link(response, rel: str) -> str:
        found = re.search(rf'href="([^"]+)" rel="{rel}"', response.text)
        return found.group(1).replace("&amp;", "&") if found else ""

    newest_first = alice.get(url)
    assert domains(newest_first) == ["a.example.com", "c.example.com"]
    assert "2 certificates" in text(newest_first) and not link(newest_first, "prev")
    assert domains(alice.get(link(newest_first, "next"))) == ["b.example.com"]
    assert f'href="{url}?sort=domain&amp;dir=asc"' in newest_first.text
    by_domain = alice.get(f"{url}?sort=domain&dir=asc")
    assert domains(by_domain) == ["a.example.com", "b.example.com"]
    second = alice.get(link(by_domain, "next"))  # keyset: after the last row shown
    assert domains(second) == ["c.example.com"] and not link(second, "next")
    assert "This page: 1 certificate" in text(second)
    assert domains(alice.get(link(second, "prev"))) == domains(by_domain)
    assert 'href="/ssl/accounts/' in second.text and "dir=desc" in second.text  # the link flips
    assert domains(alice.get(f"{url}?sort=nonsense&after=x")) == domains(newest_first)


def test_renewals_are_grouped_under_what_they_renew(app, runtime, alice, bakery):
    first = issued(app, runtime, bakery, "first.example.com")
    other = issued(app, runtime, bakery, "other.example.com")
    renewal = runtime.follow_ups.renew(first.id, "alice").order
    page = alice.get(f"/ssl/accounts/{bakery}/certs").text
    groups = page.split('<tbody class="cert-group">')[1:]
    (group,) = [g for g in groups if "first.example.com" in g]
    assert group.index(f'data-cert-id="{first.id}"') < group.index(f'data-cert-id="{renewal.id}"')
    assert f"renewal of #{first.id}" in group and f"renewal #{renewal.id} pending" in group
    assert f"/ssl/certs/{first.id}/renew" not in group
    assert f"/ssl/certs/{other.id}/renew" in page


def test_reissues_are_grouped_like_renewals_and_say_which_they_are(app, runtime, alice, bakery):
    first = issued(app, runtime, bakery, "first.example.com")
    reissue = runtime.follow_ups.reissue(first.id, "alice").order
    follow_approval_link(app.test_client(), approval_path(app, reissue))
    renewal = runtime.follow_ups.renew(reissue.id, "alice").order
    page = alice.get(f"/ssl/accounts/{bakery}/certs").text
    (group,) = page.split('<tbody class="cert-group">')[1:]
    rows = re.findall(r'<tr class="([^"]*)" data-cert-id="(\d+)"', group)
    assert [(c.split()[0] if c else "", int(i)) for c, i in rows] == [
        ("", first.id), ("follow-up", reissue.id), ("follow-up", renewal.id),
    ]  # fmt: skip
    assert f"↳</span> reissue of #{first.id}</span>" in group
    assert f"↳</span> renewal of #{reissue.id}</span>" in group
    assert f"renewal of #{first.id}" not in group


# --- 2. check status ----------------------------------------------------------------------------


def test_check_status_shows_the_providers_answer_and_goes_back(app, runtime, alice, bakery):
    order = place(runtime, bakery)
    listing = f"/ssl/accounts/{bakery}/certs"
    response = post(alice, f"/ssl/certs/{order.id}/check-status?next={quote(listing)}", listing)
    assert response.status_code == 302 and response.location == listing
    page = text(alice.get(listing))
    assert "shop.example.com: pending (provider: awaiting_approval)" in page
    assert "Awaiting approval by admin@shop.example.com." in page
    assert ">just now</span>" in page
    details = f"/ssl/certs/{order.id}?tab=status"
    back = post(alice, f"/ssl/certs/{order.id}/check-status?next={quote(details)}", details)
    assert back.location == details


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_check_status_refuses_to_send_the_user_elsewhere(runtime, alice, bakery, target):
    order = place(runtime, bakery)
    listing = f"/ssl/accounts/{bakery}/certs"
    response = post(alice, f"/ssl/certs/{order.id}/check-status?next={quote(target)}", listing)
    assert response.location == listing


@pytest.fixture
def gogetssl(runtime, gogetssl_sim) -> int:
    settings = {
        "base_url": gogetssl_sim.url,
        "username": GOGETSSL_USER,
        "password": GOGETSSL_PASSWORD,
    }
    return runtime.accounts.create("gogetssl", "GoGetSSL", settings, is_default=True)


def test_check_status_against_gogetssl_outage_then_issued(
    runtime, alice, bakery, gogetssl, gogetssl_sim
):
    order = place(runtime, bakery, "example.com", provider_account_id=gogetssl, product_id="71")
    listing = f"/ssl/accounts/{bakery}/certs"
    check = f"/ssl/certs/{order.id}/check-status"
    gogetssl_sim.fail_next("500", f"/orders/status/{order.provider_order_id}")
    down = text(post(alice, check, listing, follow_redirects=True))
    assert "example.com: the provider could not be asked:" in down
    assert "GoGetSSL had an internal error (HTTP 500); try again later." in down
    assert "We will retry automatically at" in down
    assert 'role="alert"' in down

    pending = text(post(alice, check, listing, follow_redirects=True))
    assert "example.com: pending (provider: processing)" in pending

    gogetssl_sim.approve(order.provider_order_id)
    done = text(post(alice, check, listing, follow_redirects=True))
    assert "example.com: issued (provider: active). Certificate issued." in done
    assert runtime.orders.get(order.id).status == "issued"


# --- 3. details: the Status tab -----------------------------------------------------------------


def test_status_tab_of_an_email_order(runtime, alice, bakery):
    order = place(runtime, bakery)
    page = text(alice.get(f"/ssl/certs/{order.id}"))
    assert "The provider says" not in page  # our words, until the provider has answered
    assert '<p class="status-line">Order received; the approval email was sent to' in page
    assert "What to do next:</strong> The approver must open the link" in page
    assert "Resend approval email" in page and "Cancel order" in page
    assert 'aria-current="page" class="current">Status</a>' in page
    assert f'href="/ssl/certs/{order.id}?tab=certificate"' in page
    assert "History" in page and "placed" in page and "provider order" in page


def test_resend_approval_email(app, runtime, alice, bakery):
    order = place(runtime, bakery)
    details = f"/ssl/certs/{order.id}"
    page = text(post(alice, f"{details}/resend-approval", details, follow_redirects=True))
    assert "The approval email was sent again to admin@shop.example.com." in page
    assert (
        len([m for m in app.extensions["minipanel"].mails() if order.provider_order_id in m.body])
        == 2
    )


def test_http_validation_shows_what_to_publish_and_validate_now(
    runtime, alice, bakery, gogetssl, gogetssl_sim
):
    order = place(
        runtime, bakery, "example.com", provider_account_id=gogetssl, product_id="71",
        dcv_method="http", approver_email="",
    )  # fmt: skip
    (task,) = runtime.orders.get(order.id).validation
    response = alice.get(f"/ssl/certs/{order.id}")
    assert f"<dt>URL</dt><dd><code>{task['location']}</code></dd>" in response.text
    assert f"<dt>File content</dt><dd><code>{task['value']}</code></dd>" in response.text
    page = text(response)
    assert task["published"]  # the minipanel serves the site: nothing left for the user to do
    assert "Published by the panel; the provider will check it." in page
    assert "Ask the provider to check now" in page
    assert "Resend approval email" not in page
    details = f"/ssl/certs/{order.id}"
    before = gogetssl_sim.path_calls.copy()
    answer = text(post(alice, f"{details}/resend-approval", details, follow_redirects=True))
    assert "The provider was asked to validate now." in answer
    # GoGetSSL has no "validate now" call: it finds the file by itself; the status is asked again
    assert gogetssl_sim.path_calls - before == Counter(
        {f"/orders/status/{order.provider_order_id}": 1}
    )


def test_cancel_needs_a_reason(runtime, alice, bakery):
    order = place(runtime, bakery, "typo.example.com")
    details = f"/ssl/certs/{order.id}"
    refused = text(
        post(alice, f"{details}/cancel", details, {"reason": " "}, follow_redirects=True)
    )
    assert "Say why the order is cancelled." in refused
    assert runtime.orders.get(order.id).status == "pending"
    done = post(alice, f"{details}/cancel", details, {"reason": "Typo in the domain"})
    assert done.location == f"{details}?tab=status"
    page = text(alice.get(details))
    assert "The order for typo.example.com is cancelled." in page
    assert "badge-cancelled" in page and "Cancel order" not in page
    assert runtime.orders.get(order.id).status_detail == "Typo in the domain"
    reorder = f"/ssl/accounts/{bakery}/order?from={order.id}"
    assert f'href="{reorder}"'.replace("&", "&amp;") in alice.get(details).text
    assert 'value="typo.example.com"' in alice.get(reorder).text


# --- 3. details: the Certificate tab and every download ----------------------------------------


def test_certificate_tab_shows_pem_downloads_and_the_install_note(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    page = text(alice.get(f"/ssl/certs/{order.id}?tab=certificate"))
    assert "-----BEGIN CERTIFICATE-----" in page and "Show the private key" in page
    assert "-----BEGIN PRIVATE KEY-----" not in page
    assert "Bundle for Nginx (.zip)" in page and "ssl_certificate_key" in page
    assert 'id="bundle-password"' not in page and 'id="pfx-password"' in page


def test_public_downloads_are_links_that_parse(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    base = f"/ssl/certs/{order.id}/download"
    pem = alice.get(f"{base}/pem")
    assert pem.headers["Content-Disposition"] == "attachment; filename=shop.example.com.crt"
    assert pem.headers["Cache-Control"] == "no-store"
    leaf = x509.load_pem_x509_certificate(pem.data)
    (intermediate,) = x509.load_pem_x509_certificates(alice.get(f"{base}/chain").data)
    assert x509.load_pem_x509_certificates(alice.get(f"{base}/fullchain").data) == [
        leaf, intermediate,
    ]  # fmt: skip
    leaf.verify_directly_issued_by(intermediate)


def test_key_pfx_and_bundle_are_posts_that_parse(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    details, base = f"/ssl/certs/{order.id}?tab=certificate", f"/ssl/certs/{order.id}/download"
    leaf = x509.load_pem_x509_certificate(alice.get(f"{base}/pem").data)
    assert alice.get(f"{base}/key").status_code == 405

    key = keys.key_from_pem(post(alice, f"{base}/key", details).data.decode())
    assert keys.public_key_der(key) == keys.public_key_der(leaf)

    pfx = post(alice, f"{base}/pfx", details, {"password": PFX_PASSWORD})
    assert pfx.headers["Content-Disposition"] == "attachment; filename=shop.example.com.pfx"
    pfx_key, pfx_cert, chain = pkcs12.load_key_and_certificates(pfx.data, PFX_PASSWORD.encode())
    assert pfx_cert == leaf and len(chain) == 1
    assert keys.public_key_der(pfx_key) == keys.public_key_der(leaf)

    bundle = zipfile.ZipFile(io.BytesIO(post(alice, f"{base}/bundle", details).data))
    assert set(bundle.namelist()) == {
        "shop.example.com.fullchain.pem", "shop.example.com.key", "INSTALL.txt",
    }  # fmt: skip
    assert x509.load_pem_x509_certificates(bundle.read("shop.example.com.fullchain.pem"))[0] == leaf


def test_a_short_pfx_password_is_refused_with_the_reason(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    details = f"/ssl/certs/{order.id}?tab=certificate"
    response = post(alice, f"/ssl/certs/{order.id}/download/pfx", details, {"password": "short"})
    assert response.location == details
    assert "Choose a password of at least 8 characters." in alice.get(details).text


def test_iis_bundle_takes_the_typed_password(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery, server_type="iis")
    details = f"/ssl/certs/{order.id}?tab=certificate"
    page = text(alice.get(details))
    assert "Bundle for Microsoft IIS (.zip)" in page and 'id="bundle-password"' in page
    response = post(
        alice, f"/ssl/certs/{order.id}/download/bundle", details, {"password": PFX_PASSWORD}
    )
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert "IIS Manager" in archive.read("INSTALL.txt").decode()
    pkcs12.load_key_and_certificates(archive.read("shop.example.com.pfx"), PFX_PASSWORD.encode())


def test_reveal_key_is_shown_once_and_audited(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    details = f"/ssl/certs/{order.id}?tab=certificate"
    response = post(alice, f"/ssl/certs/{order.id}/reveal-key", details)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    shown = re.search(r'data-testid="private-key">([^<]+)<', response.text).group(1)
    assert keys.key_from_pem(shown)
    events = [(e.event, e.actor) for e in runtime.orders.events(order.id)]
    assert ("key_revealed", "Alice Reseller (#2)") in events
    assert "-----BEGIN PRIVATE KEY-----" not in alice.get(details).text


def test_an_own_csr_order_offers_no_key(app, runtime, alice, bakery):
    csr = keys.make_csr(keys.generate_key(), keys.Subject("shop.example.com"))
    order = issued(app, runtime, bakery, csr=csr)
    page = text(alice.get(f"/ssl/certs/{order.id}?tab=certificate"))
    assert "placed with your own CSR" in page
    assert "Show the private key" not in page and "/download/key" not in page


def test_pending_order_has_no_certificate_yet(runtime, alice, bakery):
    order = place(runtime, bakery)
    page = text(alice.get(f"/ssl/certs/{order.id}?tab=certificate"))
    assert "The certificate is not issued yet." in page and "/download/" not in page
    refused = alice.get(f"/ssl/certs/{order.id}/download/pem", follow_redirects=True)
    assert "The certificate is not issued yet; check its status first." in refused.text


# --- 4. renewal from the list -------------------------------------------------------------------


def renew_form(client, order_id: int) -> tuple[str, dict[str, str]]:
    """The renewal page and its form's values."""
    page = client.get(f"/ssl/certs/{order_id}/renew").text
    values = dict(re.findall(r'name="(csrf_token|idempotency_key)"[^>]*value="([^"]+)"', page))
    return page, values


def test_renew_twice_from_the_same_form_makes_one_renewal(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    page, values = renew_form(alice, order.id)
    assert '<option selected value="12">1 year — $9.00</option>' in page
    assert "2 years — $18.00" in page
    url = f"/ssl/certs/{order.id}/renew?next={quote(f'/ssl/accounts/{bakery}/certs')}"
    first = alice.post(url, data={**values, "period_months": "24"})
    second = alice.post(url, data={**values, "period_months": "24"}, follow_redirects=True)
    assert first.location == f"/ssl/accounts/{bakery}/certs"
    (renewal,) = runtime.follow_ups.renewals(order.id)
    assert (renewal.status, renewal.period_months) == ("pending", 24)
    assert f"The renewal of shop.example.com was already ordered: order #{renewal.id}" in text(
        second
    )


def test_renewal_success_message(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    _, values = renew_form(alice, order.id)
    data = {**values, "period_months": "12"}
    done = text(alice.post(f"/ssl/certs/{order.id}/renew", data=data, follow_redirects=True))
    renewal = runtime.follow_ups.renewals(order.id)[0]
    assert (
        f"Renewal of shop.example.com for 1 year ordered: order #{renewal.id} is pending." in done
    )


def test_renewal_refusals_show_the_services_reason(app, runtime, alice, bakery):
    pending = place(runtime, bakery, "pending.example.com")
    _, values = renew_form(alice, pending.id)
    refused = alice.post(f"/ssl/certs/{pending.id}/renew", data={**values, "period_months": "12"})
    assert refused.status_code == 422
    assert "Only issued certificates can be renewed; this one is pending." in refused.text

    order = issued(app, runtime, bakery)
    billed = runtime.follow_ups.renew(order.id, "billing").order
    _, values = renew_form(alice, order.id)
    again = alice.post(
        f"/ssl/certs/{order.id}/renew",
        data={**values, "period_months": "12"},
        follow_redirects=True,
    )
    assert f"already ordered: order #{billed.id}, pending" in text(again)
    assert len(runtime.follow_ups.renewals(order.id)) == 1


def test_renew_form_refuses_a_period_not_offered(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    _, values = renew_form(alice, order.id)
    wrong = alice.post(f"/ssl/certs/{order.id}/renew", data={**values, "period_months": "7"})
    assert wrong.status_code == 422 and "Choose a validity period from the list." in wrong.text
    assert runtime.follow_ups.renewals(order.id) == []


# --- 5. reissue from the details page -----------------------------------------------------------


def reissue_form(client, order_id: int) -> tuple[str, dict[str, str]]:
    """The details page and its reissue form's values."""
    page = client.get(f"/ssl/certs/{order_id}").text
    form = page[page.index('class="reissue-form"') :]
    values = dict(re.findall(r'name="(csrf_token|idempotency_key)"[^>]*value="([^"]+)"', form))
    return page, values


def test_details_offer_a_reissue_only_for_an_issued_certificate(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    page, values = reissue_form(alice, order.id)
    assert f'action="/ssl/certs/{order.id}/reissue"' in page
    assert "Reissue with a new key" in page and "This certificate and its key stay here" in page
    assert '<option selected value="ec256">ECDSA P-256 (recommended)</option>' in page
    assert '<option value="rsa4096">RSA 4096</option>' in page
    assert re.fullmatch(r"[\w-]{16,64}", values["idempotency_key"])
    pending = place(runtime, bakery, "pending.example.com")
    assert "reissue-form" not in alice.get(f"/ssl/certs/{pending.id}").text


def test_reissue_twice_from_the_same_form_then_approve_it(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    _, values = reissue_form(alice, order.id)
    url = f"/ssl/certs/{order.id}/reissue"
    first = alice.post(url, data={**values, "key_type": "rsa2048"})
    (reissue,) = runtime.follow_ups.reissues(order.id)
    assert first.status_code == 302 and first.location == f"/ssl/certs/{reissue.id}?tab=status"
    shown = text(alice.get(first.location))
    assert (
        f"Reissue of shop.example.com with a new key ordered: order #{reissue.id} is pending."
        in shown
    )
    assert f"Ordered as</dt><dd>reissue of #{order.id}" in shown
    second = text(alice.post(url, data={**values, "key_type": "rsa2048"}, follow_redirects=True))
    assert f"The reissue of shop.example.com was already ordered: order #{reissue.id}" in second
    assert len(runtime.follow_ups.reissues(order.id)) == 1
    old_page = text(alice.get(f"/ssl/certs/{order.id}"))
    assert f"Reissue in progress: reissue #{reissue.id} pending" in old_page
    assert "reissue-form" not in old_page

    approved = follow_approval_link(app.test_client(), approval_path(app, reissue))
    assert approved.status_code == 200 and "is approved" in approved.text
    done = runtime.orders.get(reissue.id)
    assert done.status == "issued" and done.key_type == "rsa2048"
    new_key = key_download(alice, done.id)
    old_key = key_download(alice, order.id)
    assert old_key == runtime.orders.private_key(order) != new_key
    leaf = x509.load_pem_x509_certificate(done.certificate.encode())
    assert keys.public_key_der(leaf) == keys.public_key_der(keys.key_from_pem(new_key))
    assert runtime.orders.get(order.id).certificate == order.certificate


def key_download(client, order_id: int) -> str:
    details = f"/ssl/certs/{order_id}?tab=certificate"
    return post(client, f"/ssl/certs/{order_id}/download/key", details).get_data(as_text=True)


def test_reissue_refusals_are_shown_on_the_details_page(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery)
    _, values = reissue_form(alice, order.id)
    url = f"/ssl/certs/{order.id}/reissue"
    wrong = text(alice.post(url, data={**values, "key_type": "dsa"}, follow_redirects=True))
    assert "Choose a key type from the list." in wrong
    lost = {"csrf_token": values["csrf_token"], "key_type": "ec256"}
    assert "nothing was ordered" in text(alice.post(url, data=lost, follow_redirects=True))
    assert runtime.follow_ups.reissues(order.id) == []

    pending = place(runtime, bakery, "pending.example.com")
    refused = alice.post(f"/ssl/certs/{pending.id}/reissue", data=values, follow_redirects=True)
    assert "Only issued certificates can be reissued; this one is pending." in text(refused)
    assert runtime.follow_ups.reissues(pending.id) == []


# --- 6. the minipanel bills a renewal -----------------------------------------------------------


def test_minipanel_bills_a_renewal_once(app, runtime, alice, bakery):
    order = issued(app, runtime, bakery, "www.bücher.example")
    mgmt = f"/clients/{bakery}/account-mgmt"
    page = text(alice.get(mgmt))
    assert f"#{order.id}" in page and "www.bücher.example" in page and "Bill renewal" in page
    form = {"certificate_id": str(order.id), "period_months": "12"}
    first = text(post(alice, f"/clients/{bakery}/bill-renewal", mgmt, form, follow_redirects=True))
    (renewal,) = runtime.follow_ups.renewals(order.id)
    assert f"Renewal of certificate #{order.id} billed: order #{renewal.id}." in first
    post(alice, f"/clients/{bakery}/bill-renewal", mgmt, form)
    assert len(runtime.follow_ups.renewals(order.id)) == 1


def test_minipanel_shows_a_refused_renewal_and_guards_its_clients(app, runtime, as_user, bakery):
    alice = as_user("alice")
    order = issued(app, runtime, bakery)
    mgmt = f"/clients/{bakery}/account-mgmt"
    bill = f"/clients/{bakery}/bill-renewal"
    form = {"certificate_id": str(order.id), "period_months": "36"}
    refused = post(alice, bill, mgmt, form, follow_redirects=True)
    assert "not billed: Choose a validity period this product offers." in text(refused)
    unknown = post(alice, bill, mgmt, {**form, "certificate_id": "999", "period_months": "12"})
    assert unknown.status_code == 400
    bob = as_user("bob")
    bob_client = client_ids(app, "bob")[0]
    stolen = post(bob, bill, f"/clients/{bob_client}/account-mgmt", {**form, "period_months": "12"})
    assert stolen.status_code == 404 and runtime.follow_ups.renewals(order.id) == []


# --- 7. permissions and CSRF --------------------------------------------------------------------


def routes(order_id: int, account_id: str) -> list[tuple[str, str]]:
    base = f"/ssl/certs/{order_id}"
    return [
        ("GET", f"/ssl/accounts/{account_id}/certs"),
        ("GET", base),
        ("GET", f"{base}?tab=certificate"),
        ("GET", f"{base}/renew"),
        ("GET", f"{base}/download/pem"),
        ("POST", f"{base}/check-status"),
        ("POST", f"{base}/resend-approval"),
        ("POST", f"{base}/cancel"),
        ("POST", f"{base}/reveal-key"),
        ("POST", f"{base}/renew"),
        ("POST", f"{base}/reissue"),
        ("POST", f"{base}/download/key"),
        ("POST", f"{base}/download/pfx"),
    ]


def test_another_reseller_gets_403_everywhere(app, runtime, as_user, bakery):
    order = issued(app, runtime, bakery)
    bob = as_user("bob")
    token = csrf_token(bob, "/")
    for method, url in routes(order.id, bakery):
        response = bob.open(url, method=method, data={"csrf_token": token, "reason": "x"})
        assert response.status_code == 403, (method, url)
    assert runtime.orders.get(order.id).status == "issued"
    assert [e.event for e in runtime.orders.events(order.id)].count("key_revealed") == 0


def test_unknown_ids_404_anonymous_to_login_admin_allowed(app, runtime, as_user, client, bakery):
    order = place(runtime, bakery)
    alice = as_user("alice")
    token = csrf_token(alice, "/")
    for method, url in routes(999, bakery)[1:]:
        assert alice.open(url, method=method, data={"csrf_token": token}).status_code == 404, url
    for url in (f"/ssl/certs/{order.id}", f"/ssl/accounts/{bakery}/certs"):
        sent = client.get(url)  # the host's login page, and back here after it (host_login_url)
        assert sent.status_code == 302 and sent.location == f"/login?next={url}"
    assert as_user("admin").get(f"/ssl/certs/{order.id}").status_code == 200


@pytest.mark.parametrize("host_checks_csrf", [True, False])
def test_every_post_needs_the_csrf_token(app, runtime, alice, bakery, host_checks_csrf):
    app.config["WTF_CSRF_CHECK_DEFAULT"] = host_checks_csrf
    order = issued(app, runtime, bakery)
    pending = place(runtime, bakery, "pending.example.com")
    events = len(runtime.orders.events(order.id)) + len(runtime.orders.events(pending.id))
    for method, url in routes(order.id, bakery) + routes(pending.id, bakery):
        if method == "POST":
            data = {"csrf_token": "forged", "reason": "x", "password": PFX_PASSWORD}
            assert alice.post(url, data=data).status_code == 400, url
    assert len(runtime.orders.events(order.id)) + len(runtime.orders.events(pending.id)) == events
    assert runtime.follow_ups.renewals(order.id) == runtime.follow_ups.reissues(order.id) == []


def test_a_forged_approval_link_changes_nothing(app, runtime, client, bakery):
    order = place(runtime, bakery)
    forged = re.sub(r"callback/\S+", "callback/forged-token", approval_path(app, order))
    response = client.get(forged)
    assert response.status_code == 404 and "This approval link is not valid" in response.text
    assert runtime.orders.get(order.id).status == "pending"
