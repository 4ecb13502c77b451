"""The GoGetSSL adapter against its simulator over real HTTP; neither requests nor it is patched."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from werkzeug.datastructures import MultiDict

from panel_ssl_plugin import keys
from panel_ssl_plugin.providers.base import (
    Contact,
    DcvMethod,
    OrderRequest,
    OrderState,
    OrganizationAddress,
    Placement,
    PlacementKind,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderUnavailable,
    RevocationReason,
)
from panel_ssl_plugin.providers.gogetssl import GoGetSSLProvider
from tests.providers.clock import Clock
from tests.providers.faults import FaultProxy, Headers, running
from tests.providers.gogetssl_sim import PASSWORD, USER, GoGetSSLSim
from tests.providers.recording_host import RecordingHost

CONTACT = Contact(
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    phone="+44.2079460000",
    title="CTO",
    organization="Example Ltd",
    address="1 Analytical Way",
    city="London",
    postal_code="N1 9GU",
    state="Greater London",
    country="GB",
)
ADDRESS = OrganizationAddress(
    street="1 Analytical Way", city="London", postal_code="N1 9GU", phone="+44.2079460001"
)


def make_provider(sim: GoGetSSLSim, **settings: Any) -> GoGetSSLProvider:
    defaults = {"base_url": sim.url, "username": USER, "password": PASSWORD, "timeout": 5.0}
    return GoGetSSLProvider({**defaults, **settings}, RecordingHost(can_mail=False))


def new_csr(domain: str, *sans: str) -> tuple[keys.PrivateKey, str]:
    key = keys.generate_key()
    return key, keys.make_csr(key, keys.Subject(domain), sans)


def order_request(csr: str, domain: str = "example.com", **fields: Any) -> OrderRequest:
    """A complete order for the single-domain DV product, org details included (DV drops them)."""
    defaults: dict[str, Any] = {
        "product_id": "71",
        "period_months": 12,
        "dcv_method": DcvMethod.EMAIL,
        "approver_email": "admin@example.com",
        "organization": "Example Ltd",
        "unit": "Web",
        "state": "Greater London",
        "country": "GB",
        "contact": CONTACT,
        "organization_address": ADDRESS,
    }
    return OrderRequest(csr=csr, domain=domain, **{**defaults, **fields})


def place(provider: GoGetSSLProvider, domain: str = "example.com", **fields: Any) -> ProviderRef:
    _, csr = new_csr(domain)
    return provider.place_order(order_request(csr, domain, **fields))


def placement(
    kind: PlacementKind,
    request: OrderRequest,
    previous: ProviderRef | None = None,
    tracked: tuple[str, ...] = (),
) -> Placement:
    return Placement(kind, request, datetime.now(UTC), previous, frozenset(tracked))


@pytest.fixture
def provider(gogetssl_sim: GoGetSSLSim) -> GoGetSSLProvider:
    return make_provider(gogetssl_sim)


@pytest.fixture
def proxy(gogetssl_sim: GoGetSSLSim) -> Iterator[FaultProxy]:
    """The simulator behind a FaultProxy: replies lost after GoGetSSL did the work."""
    with running(FaultProxy(gogetssl_sim.url)) as proxy:
        yield proxy


@pytest.fixture
def proxied(gogetssl_sim: GoGetSSLSim, proxy: FaultProxy) -> GoGetSSLProvider:
    return make_provider(gogetssl_sim, base_url=f"{proxy.url}/api", timeout=0.5)


def rewrite_reply(change: Any) -> Any:
    """A FaultProxy transform that passes the JSON reply through ``change`` (it edits the dict)."""

    def transform(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        reply = json.loads(body)
        change(reply)
        return status, headers, json.dumps(reply).encode()

    return transform


def rewrapped(pem: str) -> str:
    """The same CSR as another system may print it: 76 columns, CRLF, blanks around it."""
    first, *body, last = pem.strip().splitlines()
    text = "".join(body)
    lines = [text[i : i + 76] for i in range(0, len(text), 76)]
    return "\r\n".join(["", first, *lines, last, "  "])


# --- settings and catalogue -----------------------------------------------------------------------


def test_settings_form_takes_a_free_url_and_offers_the_presets(gogetssl_sim):
    formdata = MultiDict({"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD})
    form = GoGetSSLProvider.SettingsForm(formdata)
    assert form.validate(), form.errors
    assert form.data["timeout"] == 30
    assert GoGetSSLProvider.url_presets == {
        "production": "https://my.gogetssl.com/api",
        "sandbox": "https://sandbox.gogetssl.com/api",
    }
    assert GoGetSSLProvider.secret_fields == ("password",)


def test_test_connection_reports_products_and_balance(provider):
    message = provider.test_connection()
    assert message.startswith("Connected: 4 products (PositiveSSL, ")
    assert message.endswith("Balance: 250.00 USD.")


def test_products_load_without_the_balance(provider, gogetssl_sim):
    """Issue 10, item 2: the balance only gives the prices a currency; an account whose API
    will not tell its balance still sees and orders the products."""
    gogetssl_sim.balance_refused = True
    products = {product.id: product for product in provider.products()}
    assert products["71"].prices == {12: "8.50", 24: "15.90"}
    assert provider.test_connection().endswith(
        "Balance: unknown (GoGetSSL's balance: Unknown method)."
    )
    assert place(provider).order_id in gogetssl_sim.orders


def test_a_failed_product_list_names_the_call(provider, gogetssl_sim):
    gogetssl_sim.fail_next("429", "/products/ssl/")
    with pytest.raises(ProviderUnavailable, match=r"^GoGetSSL's product list: ") as caught:
        provider.products()
    assert caught.value.retry_after == 7
    bad_login = make_provider(gogetssl_sim, password="wrong")
    with pytest.raises(ProviderRejected) as refused:
        bad_login.products()
    assert (
        str(refused.value)
        == "GoGetSSL's product list: Auth error: Wrong user name or API password."
    )


def test_products_carry_periods_prices_validation_and_the_san_addon(provider):
    products = {product.id: product for product in provider.products()}
    assert list(products) == ["71", "72", "88", "99"]
    single = products["71"]
    assert single.periods == (12, 24)  # the 36-month price is beyond max_period
    assert single.prices == {12: "8.50 USD", 24: "15.90 USD"}
    assert (single.validation, single.wildcard, single.max_sans, single.addons) == (
        "dv",
        False,
        0,
        (),
    )
    assert single.dcv_methods == (DcvMethod.EMAIL, DcvMethod.HTTP, DcvMethod.DNS)
    assert products["72"].wildcard
    assert products["72"].dcv_methods == (DcvMethod.EMAIL, DcvMethod.DNS)
    ov = products["88"]
    assert (ov.brand, ov.validation, ov.org_required) == ("geotrust", "ov", True)
    multi = products["99"]
    (addon,) = multi.addons
    assert multi.max_sans == 10
    assert (addon.id, addon.price) == ("extra_san", "12 months: 9.00 USD, 24 months: 17.50 USD")
    assert "the first 2 are included" in addon.description


# --- approver e-mails -----------------------------------------------------------------------------


def test_dcv_emails_merge_the_brand_lists_in_order_without_duplicates(provider, gogetssl_sim):
    gogetssl_sim.set_dcv_emails(
        "example.com",
        comodo=["admin@example.com", "webmaster@example.com"],
        geotrust=["Admin@Example.com", "hostmaster@example.com"],
    )
    assert provider.dcv_emails("example.com") == [
        "admin@example.com",
        "webmaster@example.com",
        "hostmaster@example.com",
    ]


def test_dcv_emails_of_a_wildcard_are_those_of_its_base_name(provider):
    emails = provider.dcv_emails("*.shop.example.com")
    assert emails[0] == "admin@shop.example.com"
    assert "admin@example.com" in emails
    assert len(emails) == len(set(emails)) == 10


def test_dcv_emails_may_be_an_empty_list(provider, gogetssl_sim):
    gogetssl_sim.set_dcv_emails("example.net", comodo=[], geotrust=[])
    assert provider.dcv_emails("example.net") == []


def test_dcv_email_errors_show_the_providers_words_not_raw_objects(provider):
    with pytest.raises(ProviderRejected) as caught:
        provider.dcv_emails("bad_name.example.com")
    message = str(caught.value)
    assert message == "Validation error: domain: The domain name contains invalid characters."
    assert caught.value.field == "domain"
    assert not re.search(r"[{}\[\]]|object", message)


# --- ordering -------------------------------------------------------------------------------------


def test_order_is_pending_until_approved_then_issued_with_a_verifiable_chain(
    provider, gogetssl_sim
):
    sans = ("www.example.com", "shop.example.com")
    key, csr = new_csr("example.com", *sans)
    ref = provider.place_order(order_request(csr, product_id="99", sans=sans))
    pending = provider.status(ref)
    assert (pending.state, pending.raw_status, pending.certificate) == (
        OrderState.PENDING,
        "processing",
        None,
    )

    gogetssl_sim.approve(ref.order_id)
    issued = provider.status(ref)

    assert (issued.state, issued.raw_status) == (OrderState.ISSUED, "active")
    leaf = x509.load_pem_x509_certificate(issued.certificate.encode())
    (intermediate,) = keys.load_certificates(issued.chain)
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(gogetssl_sim.root_cert)
    assert keys.public_key_der(leaf) == keys.public_key_der(key)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["example.com", *sans]
    assert issued.not_after.date() == leaf.not_valid_after_utc.date()


def test_order_sends_the_documented_fields(provider, gogetssl_sim):
    ref = place(provider, "www.example.com", server_type="nginx")
    sent = gogetssl_sim.orders[ref.order_id].params
    assert sent["server_count"] == "-1"
    assert sent["webserver_type"] == "37"
    assert (sent["dcv_method"], sent["approver_email"]) == ("email", "admin@example.com")
    assert (sent["admin_firstname"], sent["tech_email"]) == ("Ada", "ada@example.com")
    assert "org_name" not in sent  # DV products take no organization


def test_each_san_is_sent_with_its_own_approver(provider, gogetssl_sim):
    sans = ("www.example.com", "shop.example.com")
    _, csr = new_csr("example.com", *sans)
    chosen = {
        "www.example.com": "webmaster@example.com",
        "shop.example.com": "admin@shop.example.com",
    }
    ref = provider.place_order(order_request(csr, product_id="99", sans=sans, san_approvers=chosen))
    sent = gogetssl_sim.orders[ref.order_id].params
    assert sent["dns_names"] == "www.example.com,shop.example.com"
    assert sent["approver_email"] == "admin@example.com"
    assert sent["approver_emails"] == "webmaster@example.com,admin@shop.example.com"


def test_a_san_without_its_own_approver_gets_the_chosen_mailbox_at_its_name(provider, gogetssl_sim):
    """Orders placed before approvers were chosen per name (and their renewals)."""
    sans = ("www.example.com", "shop.example.com")
    _, csr = new_csr("example.com", *sans)
    ref = provider.place_order(order_request(csr, product_id="99", sans=sans))
    sent = gogetssl_sim.orders[ref.order_id].params
    assert sent["approver_emails"] == "admin@www.example.com,admin@shop.example.com"


@pytest.mark.parametrize(
    ("product_id", "server_type", "webserver_id"),
    [
        ("71", "apache", "3"),
        ("71", "iis", "18"),
        ("71", "cpanel", "35"),
        ("88", "nginx", "1"),
        ("88", "iis", "11"),
        ("88", "plesk", "99"),
    ],
)
def test_server_types_map_onto_the_brands_web_server_list(
    provider, gogetssl_sim, product_id, server_type, webserver_id
):
    ref = place(provider, product_id=product_id, server_type=server_type)
    assert gogetssl_sim.orders[ref.order_id].params["webserver_type"] == webserver_id


def test_ov_orders_carry_the_organization_and_its_address(provider, gogetssl_sim):
    ref = place(provider, product_id="88")
    sent = gogetssl_sim.orders[ref.order_id].params
    assert {k: v for k, v in sent.items() if k.startswith("org_")} == {
        "org_name": "Example Ltd",
        "org_division": "Web",
        "org_addressline1": "1 Analytical Way",
        "org_city": "London",
        "org_postalcode": "N1 9GU",
        "org_region": "Greater London",
        "org_country": "GB",
        "org_phone": "+44.2079460001",
    }
    assert (sent["admin_organization"], sent["admin_addressline1"]) == (
        "Example Ltd",
        "1 Analytical Way",
    )


@pytest.mark.parametrize(
    ("fields", "text", "field"),
    [
        ({"product_id": "12345"}, "Product 12345 does not exist.", "product_id"),
        ({"csr": "not a CSR"}, "Invalid CSR", "csr"),
        (
            {"approver_email": "ceo@example.com"},
            "ceo@example.com is not a valid approver",
            "approver_email",
        ),
        ({"period_months": 36}, "Period 36 is not offered", "period"),
        ({"product_id": "88", "organization": ""}, "org_name is required.", "org_name"),
        (
            {"product_id": "88", "organization_address": OrganizationAddress()},
            "org_addressline1 is required.",
            "org_addressline1",
        ),
    ],
)
def test_invalid_orders_are_rejected_with_the_providers_reason(
    provider, gogetssl_sim, fields, text, field
):
    _, csr = new_csr("example.com")
    with pytest.raises(ProviderRejected) as caught:
        provider.place_order(order_request(**{"csr": csr, **fields}))
    assert text in str(caught.value)
    assert caught.value.field == field
    assert gogetssl_sim.orders == {}


@pytest.mark.parametrize(
    ("method", "location"),
    [
        (DcvMethod.HTTP, r"http://www\.example\.com/\.well-known/pki-validation/[0-9A-F]{32}\.txt"),
        (DcvMethod.DNS, r"_[0-9a-f]{32}\.www\.example\.com"),
    ],
)
def test_http_and_dns_validation_return_a_task_per_name(provider, gogetssl_sim, method, location):
    _, csr = new_csr("example.com", "www.example.com")
    request = order_request(
        csr, product_id="99", sans=("www.example.com",), dcv_method=method, approver_email=None
    )
    ref = provider.place_order(request)
    main, san = ref.validation
    assert (main.domain, san.domain) == ("example.com", "www.example.com")
    assert re.fullmatch(location, san.location)
    assert main.value == san.value != ""
    assert all(t.method is method and not t.published for t in ref.validation)
    sent = gogetssl_sim.orders[ref.order_id].params
    assert sent["approver_emails"] == method.value
    assert "approver_email" not in sent


# --- status ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("new_order", OrderState.PENDING),
        ("processing", OrderState.PENDING),
        ("pending", OrderState.PENDING),
        ("incomplete", OrderState.PENDING),
        ("unpaid", OrderState.PENDING),
        ("reissue", OrderState.PENDING),
        ("rejected", OrderState.FAILED),
        ("cancelled", OrderState.CANCELLED),
        ("expired", OrderState.EXPIRED),
    ],
)
def test_raw_statuses_map_onto_the_plugins_states(provider, gogetssl_sim, raw, state):
    ref = place(provider)
    gogetssl_sim.set_status(ref.order_id, raw, f"The CA says {raw}.")
    status = provider.status(ref)
    assert (status.state, status.raw_status, status.detail) == (state, raw, f"The CA says {raw}.")


def test_an_unknown_raw_status_is_an_error_not_a_guess(provider, gogetssl_sim):
    ref = place(provider)
    gogetssl_sim.set_status(ref.order_id, "on_hold")
    with pytest.raises(ProviderError, match="on_hold"):
        provider.status(ref)


def test_batch_statuses_ask_again_only_for_orders_that_turned_active(provider, gogetssl_sim):
    issued, failed, waiting = (place(provider, f"site{n}.example.com") for n in range(3))
    gogetssl_sim.approve(issued.order_id)
    gogetssl_sim.reject(failed.order_id, "CAA records forbid this CA.")

    result = provider.statuses([issued, failed, waiting, ProviderRef("424242")])

    assert result[issued.order_id].state is OrderState.ISSUED
    assert result[issued.order_id].certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert result[failed.order_id].state is OrderState.FAILED
    assert result[waiting.order_id].state is OrderState.PENDING
    assert "did not report on order 424242" in str(result["424242"])
    assert gogetssl_sim.path_calls["/orders/statuses/"] == 1
    single_calls = [
        gogetssl_sim.path_calls[f"/orders/status/{r.order_id}"] for r in (issued, failed)
    ]
    assert single_calls == [1, 0]


def test_a_failed_batch_call_is_each_orders_error(provider, gogetssl_sim):
    refs = [place(provider), place(provider)]
    gogetssl_sim.fail_next("500", "/orders/statuses/")
    result = provider.statuses(refs)
    assert all(isinstance(result[ref.order_id], ProviderUnavailable) for ref in refs)


# --- renew, reissue, cancel, resend ---------------------------------------------------------------


def test_renew_places_a_new_order_with_the_same_csr(provider, gogetssl_sim):
    _, csr = new_csr("example.com")
    request = order_request(csr)
    first = provider.place_order(request)
    gogetssl_sim.approve(first.order_id)

    renewed = provider.renew(request, first)

    assert renewed.order_id != first.order_id
    order = gogetssl_sim.orders[renewed.order_id]
    assert order.renewal and order.csr == csr
    assert provider.status(renewed).state is OrderState.PENDING


def test_reissue_issues_a_new_certificate_for_the_new_key(provider, gogetssl_sim):
    ref = place(provider)
    gogetssl_sim.approve(ref.order_id)
    old = provider.status(ref).certificate
    new_key, csr = new_csr("example.com")

    reissued = provider.reissue(ref, csr)
    waiting = provider.status(reissued)
    gogetssl_sim.approve(reissued.order_id)
    status = provider.status(reissued)

    assert reissued.order_id == ref.order_id
    assert gogetssl_sim.orders[ref.order_id].reissues == 1
    assert (waiting.state, waiting.raw_status) == (OrderState.PENDING, "reissue")
    assert status.state is OrderState.ISSUED and status.certificate != old
    leaf = x509.load_pem_x509_certificate(status.certificate.encode())
    assert keys.public_key_der(leaf) == keys.public_key_der(new_key)


# --- subscriptions: the term bought beside each certificate issued under it ---------------------


@pytest.fixture
def clock(gogetssl_sim: GoGetSSLSim) -> Clock:
    """One clock for the simulator and the adapter's host, at 10:00 UTC on 10 Jun 2026."""
    clock = Clock(datetime(2026, 6, 10, 10, tzinfo=UTC))
    gogetssl_sim.clock = clock
    return clock


def test_status_reports_the_subscription_apart_from_the_certificate(provider, gogetssl_sim, clock):
    ref = place(provider, period_months=24)
    assert provider.status(ref).subscription_ends is None  # not started before it is issued
    gogetssl_sim.approve(ref.order_id)

    status = provider.status(ref)

    assert (status.not_before, status.not_after) == (clock(), clock() + timedelta(days=200))
    assert status.subscription_starts == datetime(2026, 6, 10, tzinfo=UTC)
    assert status.subscription_ends == datetime(2028, 6, 10, tzinfo=UTC)
    [batch] = provider.statuses([ref]).values()
    assert (batch.subscription_starts, batch.subscription_ends) == (
        status.subscription_starts,
        status.subscription_ends,
    )


def test_a_year_is_one_order_and_one_free_reissue_at_gogetssl(provider, gogetssl_sim, clock):
    ref = place(provider)
    gogetssl_sim.approve(ref.order_id)
    first = provider.status(ref)
    paid_until = datetime(2027, 6, 10, tzinfo=UTC)

    clock.advance(days=170)  # 194 days left in the subscription: more than a third of 200
    _, csr = new_csr("example.com")
    reissued = provider.reissue(ref, csr, replaces=keys.ari_cert_id(first.certificate))
    waiting = provider.status(reissued)
    gogetssl_sim.approve(ref.order_id)
    second = provider.status(reissued)

    assert (waiting.state, waiting.raw_status) == (OrderState.PENDING, "reissue")
    assert waiting.subscription_ends == paid_until
    assert second.state is OrderState.ISSUED and second.not_before == clock()
    assert second.not_after == paid_until  # 200 days would outlast what was paid for
    assert gogetssl_sim.created == {"order": 1, "reissue": 1}

    clock.set(paid_until)
    assert provider.status(ref).state is OrderState.EXPIRED
    with pytest.raises(ProviderRejected, match="Only active orders"):
        provider.reissue(ref, new_csr("example.com")[1])
    assert gogetssl_sim.created == {"order": 1, "reissue": 1}


@pytest.mark.parametrize(
    ("begin", "end", "starts", "ends"),
    [
        ("2026-06-10", "2027-06-10", "2026-06-10T00:00:00+00:00", "2027-06-10T00:00:00+00:00"),
        (
            "2026-06-10 08:15:00",
            "2027-06-10 08:15:00",
            "2026-06-10T08:15:00+00:00",
            "2027-06-10T08:15:00+00:00",
        ),
        ("", None, None, None),
        ("0000-00-00", "0000-00-00 00:00:00", None, None),
    ],
)
def test_subscription_dates_are_read_as_gogetssls_whmcs_module_reads_them(
    provider, proxied, proxy, gogetssl_sim, begin, end, starts, ends
):
    ref = place(provider)
    gogetssl_sim.approve(ref.order_id)

    def dates(reply: dict[str, Any]) -> None:
        reply["begin_date"] = begin
        if end is None:
            del reply["end_date"]
        else:
            reply["end_date"] = end

    proxy.fail_next(
        "no_id", "GET", f"/api/orders/status/{ref.order_id}", transform=rewrite_reply(dates)
    )
    status = proxied.status(ref)
    expected = [datetime.fromisoformat(d) if d else None for d in (starts, ends)]
    assert [status.subscription_starts, status.subscription_ends] == expected


def test_revoking_is_left_to_gogetssls_dashboard(provider, gogetssl_sim):
    ref = place(provider)
    gogetssl_sim.approve(ref.order_id)
    certificate = provider.status(ref).certificate
    with pytest.raises(
        ProviderRejected, match="revoke the certificate in the provider's dashboard"
    ):
        provider.revoke(ref, certificate, RevocationReason.KEY_COMPROMISE)
    assert not any("revoke" in path or "cancel" in path for path in gogetssl_sim.path_calls)


@pytest.mark.parametrize("fault", ["timeout_after", "reset_after", "502", "503", "504", "garbage"])
def test_a_free_replacement_whose_reply_is_lost_is_found_and_made_once(
    proxied, proxy, gogetssl_sim, fault
):
    """The replacement column at the adapter: a reissue with ``replaces`` whose reply is lost
    (timeout, reset, 5xx, garbage) is an unknown outcome, found by the order's CSR, and
    GoGetSSL holds one reissue."""
    _, csr = new_csr("example.com")
    request = order_request(csr)
    ref = proxied.place_order(request)
    gogetssl_sim.approve(ref.order_id)
    certificate = proxied.status(ref).certificate
    _, new = new_csr("example.com")
    proxy.fail_next(fault, "POST", f"/api/orders/ssl/reissue/{ref.order_id}", hold=1.0)

    with pytest.raises(ProviderOutcomeUnknown):
        proxied.reissue(ref, new, replaces=keys.ari_cert_id(certificate))

    reissue = placement(PlacementKind.REISSUE, replace(request, csr=new), ref, (ref.order_id,))
    assert proxied.find_order(reissue).order_id == ref.order_id
    assert gogetssl_sim.created["reissue"] == 1
    assert gogetssl_sim.path_calls["/orders/ssl/reissue/" + ref.order_id] == 1


def test_cancel_then_cancelling_again_is_refused(provider, gogetssl_sim):
    ref = place(provider)
    provider.cancel(ref, "Typo in the domain name.")
    status = provider.status(ref)
    assert (status.state, status.detail) == (OrderState.CANCELLED, "Typo in the domain name.")
    with pytest.raises(ProviderRejected, match="cannot be cancelled"):
        provider.cancel(ref)


def test_resend_approval_sends_the_email_again(provider, gogetssl_sim):
    ref = place(provider)
    provider.resend_approval(ref)
    assert gogetssl_sim.orders[ref.order_id].resends == 1


def test_resend_approval_for_dns_validation_asks_nothing(provider, gogetssl_sim):
    """GoGetSSL finds published records by itself: "validate now" has nothing to send."""
    ref = place(provider, dcv_method=DcvMethod.DNS, approver_email=None)
    before = gogetssl_sim.path_calls.copy()
    assert provider.resend_approval(ref) is None
    assert gogetssl_sim.path_calls == before


# --- auth -----------------------------------------------------------------------------------------


def test_an_expired_key_costs_one_login_and_the_call_succeeds(provider, gogetssl_sim):
    ref = place(provider)
    gogetssl_sim.expire_keys()
    assert provider.status(ref).state is OrderState.PENDING
    assert gogetssl_sim.path_calls["/auth/"] == 2
    assert gogetssl_sim.order_calls[ref.order_id] == 2  # the refused call and its repeat


def test_an_order_refused_for_an_expired_key_is_placed_once(provider, gogetssl_sim):
    place(provider)
    gogetssl_sim.expire_keys()
    place(provider)
    assert gogetssl_sim.path_calls["/auth/"] == 2
    assert len(gogetssl_sim.orders) == 2


def test_wrong_credentials_are_rejected_with_the_providers_words(gogetssl_sim):
    provider = make_provider(gogetssl_sim, password="not-it")
    with pytest.raises(ProviderRejected, match=r"Auth error: Wrong user name or API password\."):
        provider.products()


def test_credentials_never_reach_the_logs(provider, gogetssl_sim, caplog):
    caplog.set_level(logging.DEBUG, logger="panel_ssl_plugin")
    provider.products()
    gogetssl_sim.expire_keys()
    gogetssl_sim.fail_next("garbage", "/auth/")
    with pytest.raises(ProviderError):
        provider.products()
    assert "logging in again" in caplog.text
    assert PASSWORD not in caplog.text
    assert "auth_key" not in caplog.text


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        ("500", ProviderUnavailable, "internal error (HTTP 500)"),
        ("garbage", ProviderError, "not JSON"),
        ("slow", ProviderUnavailable, "did not answer in time"),
    ],
)
def test_faults_become_the_matching_error(gogetssl_sim, fault, error, text):
    provider = make_provider(gogetssl_sim, timeout=0.5)
    gogetssl_sim.fail_next(fault, "/tools/domain/emails/")
    with pytest.raises(ProviderError) as caught:
        provider.dcv_emails("example.com")
    assert type(caught.value) is error
    assert text in str(caught.value)


def test_rate_limit_says_when_to_come_back(provider, gogetssl_sim):
    gogetssl_sim.fail_next("429", "/tools/domain/emails/")
    with pytest.raises(ProviderUnavailable) as caught:
        provider.dcv_emails("example.com")
    assert caught.value.retry_after == 7


@pytest.mark.parametrize(
    ("kind", "transform"),
    [
        ("timeout_after", None),
        ("reset_after", None),
        ("502", None),
        ("504", None),
        ("garbage", None),
        ("no_id", rewrite_reply(lambda reply: reply.pop("order_id"))),
    ],
)
def test_an_order_whose_reply_is_lost_is_unknown_then_found(
    proxied, proxy, gogetssl_sim, kind, transform
):
    _, csr = new_csr("example.com")
    request = order_request(csr)
    proxy.fail_next(kind, "POST", "/api/orders/add_ssl_order/", transform=transform)

    with pytest.raises(ProviderOutcomeUnknown):
        proxied.place_order(request)

    (order_id,) = gogetssl_sim.orders
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 1
    found = proxied.find_order(placement(PlacementKind.ORDER, request))
    assert found is not None and found.order_id == order_id
    dcv = {"webserver_type": "-1", "dcv_method": "email", "approver_email": "admin@example.com"}
    assert found.data == {"domain": "example.com", "dcv": dcv}


def test_a_reissue_whose_reply_is_lost_is_unknown_then_found(proxied, proxy, gogetssl_sim):
    _, csr = new_csr("example.com")
    request = order_request(csr, dcv_method=DcvMethod.DNS, approver_email=None)
    ref = proxied.place_order(request)
    gogetssl_sim.approve(ref.order_id)
    _, new = new_csr("example.com")
    proxy.fail_next("502", "POST", f"/api/orders/ssl/reissue/{ref.order_id}")

    with pytest.raises(ProviderOutcomeUnknown):
        proxied.reissue(ref, new)

    reissue = placement(PlacementKind.REISSUE, replace(request, csr=new), ref, (ref.order_id,))
    found = proxied.find_order(reissue)
    assert gogetssl_sim.orders[ref.order_id].reissues == 1
    assert found is not None and found.order_id == ref.order_id and found.data == ref.data
    assert found.validation and found.validation != ref.validation  # the new CSR's record


def test_an_order_turned_away_before_any_work_may_be_sent_again(proxied, proxy, gogetssl_sim):
    proxy.fail_next("429", "POST", "/api/orders/add_ssl_order/")
    with pytest.raises(ProviderUnavailable):
        place(proxied)
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 0
    assert gogetssl_sim.orders == {}


@pytest.mark.parametrize(
    ("fault", "path", "error"),
    [
        ("garbage", "/auth/", ProviderError),
        ("garbage", "/products/ssl/71", ProviderError),
        ("500", "/tools/webservers/", ProviderUnavailable),
    ],
)
def test_calls_before_the_order_fail_as_usual_since_nothing_was_sent(
    provider, gogetssl_sim, fault, path, error
):
    gogetssl_sim.fail_next(fault, path)
    with pytest.raises(ProviderError) as caught:
        place(provider)
    assert type(caught.value) is error
    assert gogetssl_sim.path_calls["/orders/add_ssl_order/"] == 0


# --- finding and adopting an order whose reply was lost -------------------------------------------


@pytest.mark.parametrize("method", [DcvMethod.EMAIL, DcvMethod.HTTP, DcvMethod.DNS])
def test_find_returns_the_ref_the_order_call_returned(provider, gogetssl_sim, method):
    tracked = place(provider, "other.example.com")
    _, csr = new_csr("example.com")
    approver = "admin@example.com" if method is DcvMethod.EMAIL else None
    request = order_request(csr, dcv_method=method, approver_email=approver)
    ref = provider.place_order(request)

    found = provider.find_order(
        placement(PlacementKind.ORDER, request, tracked=(tracked.order_id,))
    )

    assert found == ref
    assert gogetssl_sim.path_calls[f"/orders/status/{tracked.order_id}"] == 0


def test_find_a_renewal_passes_over_the_order_it_renews(provider, gogetssl_sim):
    _, csr = new_csr("example.com")
    request = order_request(csr)
    first = provider.place_order(request)
    renewed = provider.renew(request, first)
    renewal = placement(PlacementKind.RENEWAL, request, first, (first.order_id,))
    assert provider.find_order(renewal) == renewed


def test_an_order_that_was_never_placed_is_absent_after_one_status_call_per_untracked_order(
    provider, gogetssl_sim
):
    tracked = tuple(place(provider, f"site{n}.example.com").order_id for n in range(3))
    untracked = place(provider, "elsewhere.example.com")
    _, csr = new_csr("example.com")

    assert (
        provider.find_order(placement(PlacementKind.ORDER, order_request(csr), None, tracked))
        is None
    )

    asked = {path for path in gogetssl_sim.path_calls if path.startswith("/orders/status/")}
    assert asked == {f"/orders/status/{untracked.order_id}"}


def test_two_untracked_orders_with_the_csr_are_left_to_a_person(provider, gogetssl_sim):
    _, csr = new_csr("example.com")
    request = order_request(csr)
    refs = [provider.place_order(request) for _ in range(2)]
    with pytest.raises(ProviderOutcomeUnknown) as caught:
        provider.find_order(placement(PlacementKind.ORDER, request))
    assert all(ref.order_id in str(caught.value) for ref in refs)


def test_the_csr_is_compared_as_der(provider, gogetssl_sim):
    _, csr = new_csr("example.com")
    request = order_request(csr)
    ref = provider.place_order(request)
    gogetssl_sim.orders[ref.order_id].csr = rewrapped(csr)
    assert provider.find_order(placement(PlacementKind.ORDER, request)) == ref


@pytest.mark.parametrize(
    "shown",
    [lambda pem: "", lambda pem: pem.replace("MI", "XX", 1)],  # none; armoured, but not a CSR
    ids=["missing", "garbled"],
)
def test_an_untracked_order_whose_csr_cannot_be_read_leaves_it_to_a_person(
    provider, gogetssl_sim, shown
):
    """It may be the order sought: "absent" would send it again and pay twice."""
    _, csr = new_csr("example.com")
    request = order_request(csr)
    ref = provider.place_order(request)
    gogetssl_sim.orders[ref.order_id].csr = shown(csr)
    with pytest.raises(ProviderOutcomeUnknown, match=ref.order_id):
        provider.find_order(placement(PlacementKind.ORDER, request))


@pytest.mark.parametrize(("orders", "pages"), [(5, 3), (4, 2), (2, 2)])
def test_the_listing_is_read_page_by_page_to_the_end(provider, gogetssl_sim, orders, pages):
    """Newest first, the order sought is on the last page; a page as long as ``count`` could be
    the whole account or the page alone, so one more page is asked."""
    provider.listing_limit = 2
    _, csr = new_csr("example.com")
    request = order_request(csr)
    ref = provider.place_order(request)
    for n in range(orders - 1):
        place(provider, f"site{n}.example.com")

    assert provider.find_order(placement(PlacementKind.ORDER, request)) == ref
    assert gogetssl_sim.path_calls["/orders/ssl/all"] == pages


def test_a_count_that_is_only_the_pages_does_not_end_the_listing(proxied, proxy, gogetssl_sim):
    proxied.listing_limit = 2
    _, csr = new_csr("example.com")
    request = order_request(csr)
    ref = proxied.place_order(request)
    for n in range(4):
        place(proxied, f"site{n}.example.com")
    count_the_page = rewrite_reply(lambda reply: reply.update(count=len(reply["orders"])))
    for offset in (0, 2, 4):
        listing = f"/api/orders/ssl/all?limit=2&offset={offset}&"
        proxy.fail_next("no_id", "GET", listing, transform=count_the_page)

    assert proxied.find_order(placement(PlacementKind.ORDER, request)) == ref


def test_a_listing_that_does_not_advance_cannot_tell(proxied, proxy, gogetssl_sim):
    proxied.listing_limit = 2
    refs = [place(proxied, f"site{n}.example.com") for n in range(3)]
    newest = [{"order_id": ref.order_id, "status": "processing"} for ref in refs[:0:-1]]
    first_page_again = rewrite_reply(lambda reply: reply.update(orders=newest))
    proxy.fail_next(
        "no_id", "GET", "/api/orders/ssl/all?limit=2&offset=2&", transform=first_page_again
    )
    _, csr = new_csr("example.com")

    with pytest.raises(ProviderOutcomeUnknown, match="listed the same orders again"):
        proxied.find_order(placement(PlacementKind.ORDER, order_request(csr)))


@pytest.mark.parametrize(
    ("fault", "path", "error"),
    [
        ("500", "/orders/ssl/all", ProviderUnavailable),
        ("429", "/orders/ssl/all", ProviderUnavailable),
        ("garbage", "/orders/ssl/all", ProviderOutcomeUnknown),
        ("500", "/orders/status/", ProviderUnavailable),
        ("garbage", "/orders/status/", ProviderOutcomeUnknown),
    ],
)
def test_find_asks_later_after_a_fault_and_cannot_tell_from_an_unreadable_reply(
    provider, gogetssl_sim, fault, path, error
):
    place(provider)  # untracked, so its status is asked
    _, csr = new_csr("example.com")
    gogetssl_sim.fail_next(fault, path)
    with pytest.raises(ProviderError) as caught:
        provider.find_order(placement(PlacementKind.ORDER, order_request(csr)))
    assert type(caught.value) is error


@pytest.mark.parametrize("sent", [True, False])
def test_find_a_reissue_by_the_orders_current_csr(provider, gogetssl_sim, sent):
    _, csr = new_csr("example.com")
    request = order_request(csr, dcv_method=DcvMethod.DNS, approver_email=None)
    ref = provider.place_order(request)
    gogetssl_sim.approve(ref.order_id)
    _, new = new_csr("example.com")
    reissued = provider.reissue(ref, new) if sent else None

    reissue = placement(PlacementKind.REISSUE, replace(request, csr=new), ref, (ref.order_id,))

    assert provider.find_order(reissue) == reissued


def test_adopted_orders_get_the_ref_their_call_returned_and_status_works(provider, gogetssl_sim):
    _, csr = new_csr("example.com")
    request = order_request(csr, dcv_method=DcvMethod.HTTP, approver_email=None)
    ref = provider.place_order(request)

    adopted = provider.adopt_order(placement(PlacementKind.ORDER, request), ref.order_id)

    assert adopted == ref
    assert provider.status(adopted).state is OrderState.PENDING
    gogetssl_sim.approve(ref.order_id)
    _, new = new_csr("example.com")
    reissued = provider.reissue(adopted, new)
    reissue = placement(PlacementKind.REISSUE, replace(request, csr=new), ref)
    assert provider.adopt_order(reissue, ref.order_id) == reissued


def test_adopting_an_id_gogetssl_does_not_know_is_refused(provider):
    _, csr = new_csr("example.com")
    with pytest.raises(ProviderRejected, match="not found"):
        provider.adopt_order(placement(PlacementKind.ORDER, order_request(csr)), "424242")
