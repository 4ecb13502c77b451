"""The Sectigo adapter against the simulator, over real HTTP on loopback: no patching."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, rsa
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
from panel_ssl_plugin.providers.sectigo import SectigoProvider, SectigoSettingsForm
from tests.providers.clock import Clock
from tests.providers.faults import FaultProxy, Headers, Transform
from tests.providers.recording_host import RecordingHost
from tests.providers.sectigo_sim import LOGIN_PASSWORD, Fault, SectigoSim

APPLY = "!AutoApplySSL"
ORGANIZATION_ARGUMENTS = (
    "organizationName",
    "streetAddress1",
    "localityName",
    "postalCode",
    "stateOrProvinceName",
    "countryName",
)
COLLECT = "download/CollectSSL"
REPORT = "!WebHostReport"


@pytest.fixture
def host() -> RecordingHost:
    return RecordingHost(
        can_mail=False,
        forbidden={
            "save_settings": "the Sectigo adapter has nothing to save",
            "callback_url": "the Sectigo adapter sends no links",
        },
    )


@pytest.fixture
def sectigo(sectigo_sim: SectigoSim, host: RecordingHost) -> SectigoProvider:
    return SectigoProvider(sectigo_sim.provider_settings(), host)


def csr_for(domain: str, sans: tuple[str, ...] = (), key: Any = None) -> str:
    return keys.make_csr(key or keys.generate_key(), keys.Subject(domain), sans)


def order(domain: str = "example.com", **changes: Any) -> OrderRequest:
    """A DV e-mail order that the simulator accepts; ``changes`` alter it."""
    sans = changes.get("sans", ())
    request = OrderRequest(
        product_id="287",
        period_months=12,
        csr=changes.pop("csr", None) or csr_for(domain, sans),
        domain=domain,
        dcv_method=DcvMethod.EMAIL,
        server_type="nginx",
        approver_email=f"admin@{domain.removeprefix('*.')}",
        country="GB",
        contact=Contact("Ada", "Lovelace", "ada@example.net", phone="+44 20 7946 0000"),
        idempotency_key="order-key-0001",
    )
    return dataclasses.replace(request, **changes)


def issue(sectigo: SectigoProvider, sim: SectigoSim, request: OrderRequest) -> ProviderRef:
    ref = sectigo.place_order(request)
    sim.approve(ref.order_id)
    return ref


# --- settings, catalogue, DCV e-mails ----------------------------------------------------------


def test_settings_form_takes_a_free_url_and_offers_presets(sectigo_sim):
    form = SectigoSettingsForm(
        MultiDict(
            {
                "base_url": sectigo_sim.base_url,
                "login_name": "reseller",
                "login_password": "pw",
                "timeout": "0.5",
            }
        )
    )

    assert form.validate(), form.errors
    assert form.data["test_mode"] is False
    assert set(SectigoProvider.BASE_URL_PRESETS.values()) == {
        "https://secure.trust-provider.com/products",
        "https://secure.comodo.net/products",
    }
    assert SectigoSettingsForm().timeout.data == 30.0
    assert SectigoProvider.secret_fields == ("login_password",)


def test_products_are_the_built_in_catalogue_without_a_call(sectigo, sectigo_sim):
    products = {p.id: p for p in sectigo.products()}

    assert set(products) == {"287", "289", "279", "7", "556"}
    assert all(p.periods == (12, 24) and set(p.prices) == {12, 24} for p in products.values())
    assert products["289"].wildcard and DcvMethod.HTTP not in products["289"].dcv_methods
    assert products["279"].max_sans == 249
    assert [a.id for a in products["279"].addons] == ["extra_san"]
    assert products["279"].addons[0].price
    assert [p.validation for p in products.values() if p.org_required] == ["ov", "ev"]
    assert sectigo_sim.count() == 0


def test_dcv_emails_whois_then_level2_then_level3_without_duplicates(sectigo, sectigo_sim):
    sectigo_sim.whois["example.com"] = "admin@example.com"

    emails = sectigo.dcv_emails("shop.example.com")

    boxes = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")
    assert emails == [
        *(f"{box}@example.com" for box in boxes),
        *(f"{box}@shop.example.com" for box in boxes),
    ]
    assert sectigo_sim.last_form("!GetDCVEmailAddressList")["domainName"] == "shop.example.com"


def test_test_connection_reaches_sectigo_and_checks_the_login(sectigo_sim, host):
    good = SectigoProvider(sectigo_sim.provider_settings(), host)
    bad = SectigoProvider(sectigo_sim.provider_settings(login_password="wrong"), host)

    assert "Connected" in good.test_connection()
    with pytest.raises(ProviderRejected, match="check the login name and password") as error:
        bad.test_connection()
    assert error.value.code == "-16"


# --- ordering and issuance ---------------------------------------------------------------------


def test_order_is_pending_until_approved_then_issued_with_a_sorted_chain(sectigo, sectigo_sim):
    key = keys.generate_key()
    sans = ("www.example.com", "shop.example.com")
    request = order(
        product_id="279", sans=sans, csr=csr_for("example.com", sans, key), period_months=24
    )

    ref = sectigo.place_order(request)
    pending = sectigo.status(ref)
    sectigo_sim.approve(ref.order_id)
    issued = sectigo.status(ref)

    assert ref.data["certificateID"] and ref.data["totalCost"] == "29.00"
    assert (pending.state, pending.raw_status) == (OrderState.PENDING, "Not Yet Issued")
    assert "DCV: Pending" in pending.detail and pending.certificate is None
    assert (issued.state, issued.raw_status) == (OrderState.ISSUED, "Issued")
    leaf = keys.load_certificates(issued.certificate)[0]
    intermediate, root = keys.load_certificates(issued.chain)
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    root.verify_directly_issued_by(root)
    assert keys.public_key_der(leaf) == keys.public_key_der(key)
    assert keys.csr_names(keys.load_csr(request.csr)) == ["example.com", *sans]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["example.com", *sans]
    assert issued.not_before == leaf.not_valid_before_utc.replace(microsecond=0)
    assert issued.not_after == leaf.not_valid_after_utc.replace(microsecond=0)
    assert issued.not_after.utcoffset().total_seconds() == 0


def test_order_sends_the_documented_arguments(sectigo_sim, host):
    sectigo = SectigoProvider(sectigo_sim.provider_settings(test_mode=True), host)

    sectigo.place_order(order(server_type="iis", organization="Example Ltd", unit="Web"))

    form = sectigo_sim.last_form(APPLY)
    expected = {
        "product": "287",
        "days": "365",
        "serverSoftware": "14",
        "dcvMethod": "EMAIL",
        "dcvEmailAddress": "admin@example.com",
        "domainNames": "example.com",
        "primaryDomainName": "example.com",
        "isCustomerValidated": "N",
        "showCertificateID": "Y",
        "organizationName": "Example Ltd",
        "organizationalUnitName": "Web",
        "countryName": "GB",
        "appRepSurname": "Lovelace",
        "responseFormat": "1",
        "test": "Y",
    }
    assert {k: form[k] for k in expected} == expected
    assert len(form["uniqueValue"]) == 20 and form["uniqueValue"].isalnum()


ADDRESS = OrganizationAddress(
    street="1 Analytical Way", city="London", postal_code="N1 9GU", phone="+44 20 7946 0001"
)


def test_ov_orders_carry_the_organization_and_its_address(sectigo, sectigo_sim):
    ov = order(
        product_id="7", organization="Example Ltd", state="London", organization_address=ADDRESS
    )

    ref = sectigo.place_order(ov)

    received = sectigo_sim.orders[ref.order_id].received
    assert {k: received[k] for k in ORGANIZATION_ARGUMENTS} == {
        "organizationName": "Example Ltd",
        "streetAddress1": "1 Analytical Way",
        "localityName": "London",
        "postalCode": "N1 9GU",
        "stateOrProvinceName": "London",
        "countryName": "GB",
    }
    assert received["appRepTelephone"] == "+44 20 7946 0000"  # the contact's own


def test_the_organizations_phone_stands_in_for_a_contact_without_one(sectigo, sectigo_sim):
    no_phone = Contact("Ada", "Lovelace", "ada@example.net")
    ov = order(product_id="7", organization="Example Ltd", organization_address=ADDRESS)

    ref = sectigo.place_order(dataclasses.replace(ov, contact=no_phone))

    assert sectigo_sim.orders[ref.order_id].received["appRepTelephone"] == "+44 20 7946 0001"


def test_each_name_is_sent_with_its_own_approver(sectigo, sectigo_sim):
    sans = ("www.example.com", "shop.example.com")
    chosen = {
        "www.example.com": "webmaster@www.example.com",
        "shop.example.com": "admin@example.com",
    }
    request = order(product_id="279", sans=sans, san_approvers=chosen)

    ref = sectigo.place_order(request)

    received = sectigo_sim.orders[ref.order_id].received
    assert received["domainNames"] == "example.com,www.example.com,shop.example.com"
    assert received["dcvEmailAddresses"] == (
        "admin@example.com,webmaster@www.example.com,admin@example.com"
    )
    assert "dcvEmailAddress" not in received
    assert [(t.domain, t.location) for t in ref.validation] == [
        ("example.com", "admin@example.com"),
        ("www.example.com", "webmaster@www.example.com"),
        ("shop.example.com", "admin@example.com"),
    ]
    sectigo_sim.approve(ref.order_id)
    sectigo.reissue(ref, csr_for("example.com", sans))
    assert (
        sectigo_sim.last_form("!AutoReplaceSSL")["dcvEmailAddresses"]
        == (received["dcvEmailAddresses"])
    )


def test_an_approver_not_offered_for_its_name_is_refused(sectigo, sectigo_sim):
    sans = ("www.example.com",)
    request = order(product_id="279", sans=sans, san_approvers={"www.example.com": "me@gmail.com"})

    with pytest.raises(ProviderRejected) as refused:
        sectigo.place_order(request)

    assert (refused.value.code, refused.value.field) == ("-4", "dcvEmailAddresses")
    assert sectigo_sim.orders == {}


def test_server_types_without_a_known_sectigo_id_are_sent_as_other(sectigo, sectigo_sim):
    sectigo.place_order(order(server_type="nginx"))

    assert sectigo_sim.last_form(APPLY)["serverSoftware"] == "-1"
    assert "test" not in sectigo_sim.last_form(APPLY)


def test_a_replayed_order_is_a_second_order_and_fails_the_first(sectigo, sectigo_sim):
    """Why the adapter never replays: Sectigo takes the same uniqueValue and CSR for a new order
    (docs: the original order fails), so a blind retry would show up here as two orders."""
    request = order()

    first = sectigo.place_order(request)
    second = sectigo.place_order(request)

    assert first.order_id != second.order_id
    assert list(sectigo_sim.orders) == [first.order_id, second.order_id]
    assert sectigo.status(first).state is OrderState.FAILED
    assert sectigo.status(second).state is OrderState.PENDING


def test_an_accepted_order_awaiting_payment_is_placed(sectigo, sectigo_sim):
    sectigo_sim.inject(Fault(body="errorCode=1&orderNumber=4711&certificateID=9&totalCost=8.95"))

    ref = sectigo.place_order(order())

    assert ref.order_id == "4711" and ref.data["paymentRequired"] is True


# --- validation tasks ---------------------------------------------------------------------------


def csr_digests(csr_pem: str) -> tuple[str, str]:
    der = keys.load_csr(csr_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.md5(der).hexdigest().upper(), hashlib.sha256(der).hexdigest().upper()


def test_http_validation_serves_the_csr_hashes_under_pki_validation(sectigo, host):
    request = order(product_id="279", sans=("www.example.com",), dcv_method=DcvMethod.HTTP)

    ref = sectigo.place_order(request)

    md5, sha256 = csr_digests(request.csr)
    content = f"{sha256}\nsectigo.com\n{ref.data['uniqueValue']}"
    assert [(t.domain, t.location, t.value, t.published) for t in ref.validation] == [
        (d, f"http://{d}/.well-known/pki-validation/{md5}.txt", content, False)
        for d in ("example.com", "www.example.com")
    ]
    assert host.http_tokens == []


def test_cname_validation_names_the_record(sectigo, sectigo_sim, host):
    """The adapter says what to publish; publishing is the order service's, for every provider."""
    request = order("*.example.com", product_id="289", dcv_method=DcvMethod.DNS)

    (task,) = sectigo.place_order(request).validation

    md5, sha256 = csr_digests(request.csr)
    unique = sectigo_sim.last_form(APPLY)["uniqueValue"]
    target = f"{sha256[:32]}.{sha256[32:]}.{unique}.sectigo.com"
    assert (task.domain, task.location, task.record_type, task.value) == (
        "example.com",
        f"_{md5}.example.com",
        "CNAME",
        target,
    )
    assert not task.published and host.dns_records == []


def test_email_validation_names_the_approver(sectigo):
    (task,) = sectigo.place_order(order()).validation

    assert (task.method, task.location) == (DcvMethod.EMAIL, "admin@example.com")


# --- renew, reissue, cancel, resend -------------------------------------------------------------


def test_renew_places_a_new_order_with_the_same_csr(sectigo, sectigo_sim):
    first = order()
    previous = issue(sectigo, sectigo_sim, first)

    renewal = sectigo.renew(dataclasses.replace(first, idempotency_key="renewal-1"), previous)

    assert renewal.order_id != previous.order_id
    assert renewal.data["renewalOf"] == previous.order_id
    assert sectigo_sim.orders[renewal.order_id].csr == keys.load_csr(first.csr)
    assert sectigo.status(renewal).state is OrderState.PENDING


def test_reissue_issues_a_new_certificate_for_a_new_key(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order(dcv_method=DcvMethod.HTTP))
    old = sectigo.status(ref).certificate
    new_key = keys.generate_key()
    new_csr = csr_for("example.com", key=new_key)

    reissued = sectigo.reissue(ref, new_csr)
    assert sectigo.status(reissued).state is OrderState.PENDING
    sectigo_sim.approve(ref.order_id)
    status = sectigo.status(reissued)

    assert reissued.order_id == ref.order_id
    assert reissued.validation[0].location.endswith(f"/{csr_digests(new_csr)[0]}.txt")
    assert status.state is OrderState.ISSUED and status.certificate != old
    leaf = keys.load_certificates(status.certificate)[0]
    assert keys.public_key_der(leaf) == keys.public_key_der(new_key)


def test_cancel_refunds_a_pending_order(sectigo, sectigo_sim):
    ref = sectigo.place_order(order())

    sectigo.cancel(ref)

    assert sectigo_sim.count("!AutoRefund", ref.order_id) == 1
    assert sectigo_sim.count("!AutoRevokeSSL") == 0
    status = sectigo.status(ref)
    assert (status.state, status.raw_status) == (OrderState.CANCELLED, "Refunded")
    with pytest.raises(ProviderRejected, match="already been refunded"):
        sectigo.cancel(ref)


def test_cancel_revokes_an_issued_certificate(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())

    sectigo.cancel(ref, reason="keyCompromise")

    assert sectigo_sim.last_form("!AutoRevokeSSL")["revocationReason"] == "keyCompromise"
    assert sectigo_sim.count("!AutoRefund") == 0
    assert sectigo.status(ref).state is OrderState.REVOKED
    with pytest.raises(ProviderRejected, match="already been revoked") as error:
        sectigo.cancel(ref)
    assert error.value.code == "-21"


def test_a_rejected_order_cannot_be_reissued(sectigo, sectigo_sim):
    ref = sectigo.place_order(order())
    sectigo_sim.reject(ref.order_id)

    status = sectigo.status(ref)
    with pytest.raises(ProviderRejected, match="already been rejected") as error:
        sectigo.reissue(ref, csr_for("example.com"))

    assert (status.state, status.raw_status) == (OrderState.FAILED, "Rejected")
    assert "Validation: Rejected" in status.detail
    assert error.value.code == "-20"


def test_an_expired_certificate_is_expired(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    sectigo_sim.expire(ref.order_id)

    assert sectigo.status(ref).state is OrderState.EXPIRED


def test_resend_approval_sends_the_dcv_email_again(sectigo, sectigo_sim):
    ref = sectigo.place_order(order())

    sectigo.resend_approval(ref)

    assert sectigo_sim.orders[ref.order_id].dcv_emails_sent == 2


def test_resend_approval_is_refused_without_a_call_for_cname_orders(sectigo, sectigo_sim):
    ref = sectigo.place_order(order(dcv_method=DcvMethod.DNS))

    with pytest.raises(ProviderRejected, match="not e-mail"):
        sectigo.resend_approval(ref)

    assert sectigo_sim.count("!ResendDCVEmail") == 0


# --- documented error codes ---------------------------------------------------------------------


def pem_csr(der: bytes) -> str:
    body = base64.encodebytes(der).decode()
    return f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"


def dsa_csr() -> str:
    key = dsa.generate_private_key(2048)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        keys.Subject("example.com").to_name()
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def tampered_csr() -> str:
    der = bytearray(keys.load_csr(csr_for("example.com")).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01
    return pem_csr(bytes(der))


REFUSALS = {
    "unknown product": (dict(product_id="999"), "-4", "product", "does not accept"),
    "unsold period": (dict(period_months=6), "-4", "days", "does not accept"),
    "bad country": (dict(country="UK"), "-7", "countryName", "two-letter ISO 3166"),
    "not base64": (dict(csr="hello"), "-9", "csr", "BEGIN and END lines"),
    "not a CSR": (dict(csr=pem_csr(b"not a csr at all")), "-10", "csr", "cannot be decoded"),
    "DSA key": (dict(csr=dsa_csr()), "-11", "csr", "RSA or ECDSA"),
    "bad signature": (dict(csr=tampered_csr()), "-12", "csr", "generate a new CSR"),
    "short RSA key": (
        dict(csr=csr_for("example.com", key=rsa.generate_private_key(65537, 1024))),
        "-13",
        "csr",
        "RSA 2048 bits or more",
    ),
    "wildcard on single": (
        dict(domain="*.example.com", csr=csr_for("*.example.com")),
        "-5",
        "csr",
        "choose a wildcard product",
    ),
    "single on wildcard": (dict(product_id="289"), "-6", "csr", "'*.' and the domain"),
    "too many names": (dict(sans=("www.example.com",)), "-4", "domainNames", "does not accept"),
    "OV without organization": (dict(product_id="7"), "-3", "organizationName", "fill it in"),
    "OV without address": (
        dict(product_id="7", organization="Example Ltd"),
        "-3",
        "streetAddress1",
        "fill it in",
    ),
    "no approver": (dict(approver_email=None), "-3", "dcvEmailAddress", "fill it in"),
    "foreign approver": (
        dict(approver_email="me@gmail.com"),
        "-4",
        "dcvEmailAddress",
        "correct it",
    ),
}


@pytest.mark.parametrize("changes, code, field, advice", REFUSALS.values(), ids=REFUSALS)
def test_refusals_carry_code_field_and_advice(sectigo, sectigo_sim, changes, code, field, advice):
    with pytest.raises(ProviderRejected) as error:
        sectigo.place_order(order(**changes))

    assert (error.value.code, error.value.field) == (code, field)
    assert advice in str(error.value) and f"Sectigo error {code}:" in str(error.value)
    assert sectigo_sim.orders == {}


def test_insufficient_credit_says_to_top_up(sectigo, sectigo_sim):
    sectigo_sim.insufficient_credits = True

    with pytest.raises(ProviderRejected, match="insufficient credit: top it up") as error:
        sectigo.place_order(order())

    assert error.value.code == "-15"


def test_an_unknown_order_number_is_refused(sectigo):
    with pytest.raises(ProviderRejected) as error:
        sectigo.status(ProviderRef("424242"))

    assert (error.value.code, error.value.field) == ("-4", "orderNumber")


def test_an_undocumented_code_keeps_sectigos_message(sectigo, sectigo_sim):
    sectigo_sim.inject(Fault(body="errorCode=-99&errorMessage=Something+new&errorItem="))

    with pytest.raises(ProviderRejected, match=r"refused the request.*-99: Something new"):
        sectigo.dcv_emails("example.com")


def dcv_list(sectigo: SectigoProvider) -> object:
    return sectigo.dcv_emails("example.com")


def apply(sectigo: SectigoProvider) -> object:
    return sectigo.place_order(order())


CODES_AFTER_SENDING = {
    "unknown error, read": (dcv_list, -14, ProviderUnavailable, "try again later"),
    "unknown error, order": (apply, -14, ProviderOutcomeUnknown, "looked up before anything"),
    "call limit, read": (dcv_list, -42, ProviderUnavailable, "try again later"),
    "call limit, order": (apply, -42, ProviderUnavailable, "try again later"),
}


@pytest.mark.parametrize(
    "call, code, error, says", CODES_AFTER_SENDING.values(), ids=CODES_AFTER_SENDING
)
def test_codes_that_may_mean_try_later(sectigo, sectigo_sim, call, code, error, says):
    """-14 may come after the work was done: on an order that is an unknown outcome."""
    sectigo_sim.inject(Fault(body=f"errorCode={code}&errorMessage=Something+went+wrong"))

    with pytest.raises(ProviderError, match=says) as raised:
        call(sectigo)

    assert type(raised.value) is error
    assert f"Sectigo error {code}: Something went wrong" in str(raised.value)


# --- transport faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_on_a_read_is_unavailable(sectigo, sectigo_sim, status):
    sectigo_sim.inject(Fault(status=status, body="oops"))

    with pytest.raises(ProviderUnavailable, match=f"HTTP {status}"):
        sectigo.dcv_emails("example.com")


@pytest.mark.parametrize(
    "call, error", [(dcv_list, ProviderError), (apply, ProviderOutcomeUnknown)]
)
@pytest.mark.parametrize(
    "body", ["<html><body>Maintenance</body></html>", "orderNumber=5", "errorCode=zero"]
)
def test_an_unreadable_reply_is_an_error_and_after_an_order_unknown(
    sectigo, sectigo_sim, body, call, error
):
    sectigo_sim.inject(Fault(body=body))

    with pytest.raises(ProviderError, match="could not be read") as raised:
        call(sectigo)

    assert type(raised.value) is error


def test_an_order_accepted_without_its_number_is_unknown(sectigo, sectigo_sim):
    sectigo_sim.inject(Fault(body="errorCode=0&certificateID=9&totalCost=8.95"))

    with pytest.raises(ProviderOutcomeUnknown, match="without giving its number"):
        sectigo.place_order(order())


def test_a_wrong_base_url_is_a_provider_error(sectigo_sim, host):
    base = sectigo_sim.base_url.removesuffix("/products")
    sectigo = SectigoProvider(sectigo_sim.provider_settings(base_url=base), host)

    with pytest.raises(ProviderError, match="could not be read"):
        sectigo.dcv_emails("example.com")


def test_a_slow_reply_is_unavailable(sectigo_sim, host):
    sectigo = SectigoProvider(sectigo_sim.provider_settings(timeout=0.3), host)
    ref = sectigo.place_order(order())
    sectigo_sim.inject(Fault(delay=1.0))

    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        sectigo.status(ref)


def test_rate_limiting_says_when_to_come_back(sectigo, sectigo_sim):
    sectigo_sim.inject(Fault(status=429, body="slow down", headers={"Retry-After": "120"}))

    with pytest.raises(ProviderUnavailable) as error:
        sectigo.dcv_emails("example.com")

    assert error.value.retry_after == 120


@pytest.mark.parametrize("call", [dcv_list, apply])
def test_a_refused_connection_is_unavailable(host, call):
    """Nothing reached Sectigo, so even an order may simply be sent again."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {"base_url": f"http://127.0.0.1:{port}/products", "login_name": "x"}
    sectigo = SectigoProvider({**settings, "login_password": "y", "timeout": 2}, host)

    with pytest.raises(ProviderUnavailable, match="cannot be reached") as raised:
        call(sectigo)

    assert type(raised.value) is ProviderUnavailable


def test_credentials_never_reach_the_log(sectigo_sim, host, caplog):
    caplog.set_level(logging.DEBUG)
    sectigo = SectigoProvider(sectigo_sim.provider_settings(), host)
    sectigo_sim.insufficient_credits = True

    with pytest.raises(ProviderRejected):
        sectigo.place_order(order())
    sectigo_sim.inject(Fault(status=500))
    with pytest.raises(ProviderUnavailable):
        sectigo.dcv_emails("example.com")

    assert caplog.records and LOGIN_PASSWORD not in caplog.text
    assert LOGIN_PASSWORD.replace(" ", "+") not in caplog.text


# --- a create call whose answer was lost --------------------------------------------------------


@pytest.fixture
def proxy(fault_proxy: Callable[..., FaultProxy], sectigo_sim: SectigoSim) -> FaultProxy:
    return fault_proxy(sectigo_sim.base_url)


@pytest.fixture
def proxied(proxy: FaultProxy, sectigo_sim: SectigoSim, host: RecordingHost) -> SectigoProvider:
    """The adapter talking to the simulator through the fault proxy, with short timeouts."""
    settings = sectigo_sim.provider_settings(base_url=f"{proxy.url}/products", timeout=0.5)
    return SectigoProvider(settings, host)


def reply_without(name: str) -> Transform:
    def transform(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
        pairs = [(k, v) for k, v in parse_qsl(body.decode(), keep_blank_values=True) if k != name]
        return status, headers, urlencode(pairs).encode()

    return transform


def unknown_error(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    return 200, headers, b"errorCode=-14&errorMessage=Unknown+error"


LOST_ANSWERS = {
    "timeout after sending": ("timeout_after", None),
    "reset after sending": ("reset_after", None),
    "bad gateway": ("502", None),
    "unavailable": ("503", None),
    "gateway timeout": ("504", None),
    "maintenance page": ("garbage", None),
    "no orderNumber": ("no_id", reply_without("orderNumber")),
    "error -14": ("no_id", unknown_error),
}


def placement(
    kind: PlacementKind,
    request: OrderRequest,
    sent_at: datetime,
    previous: ProviderRef | None = None,
    tracked: tuple[str, ...] = (),
) -> Placement:
    return Placement(kind, request, sent_at, previous, frozenset(tracked))


@pytest.mark.parametrize("fault, transform", LOST_ANSWERS.values(), ids=LOST_ANSWERS)
def test_a_lost_answer_is_unknown_and_the_order_is_found(
    proxied, proxy, sectigo, sectigo_sim, fault, transform
):
    request = order()
    sent_at = datetime.now(UTC)
    proxy.fail_next(fault, "POST", f"/products/{APPLY}", transform=transform)

    with pytest.raises(ProviderOutcomeUnknown, match="looked up before anything"):
        proxied.place_order(request)
    found = sectigo.find_order(placement(PlacementKind.ORDER, request, sent_at))

    (number,) = sectigo_sim.orders
    assert sectigo_sim.count(APPLY) == 1
    assert found is not None and found.order_id == number
    assert found.data["certificateID"] == sectigo_sim.orders[number].certificate_ids[0]
    assert found.data["uniqueValue"] == sectigo_sim.last_form(APPLY)["uniqueValue"]
    assert [(t.method, t.location) for t in found.validation] == [
        (DcvMethod.EMAIL, "admin@example.com")
    ]
    assert sectigo.status(found).state is OrderState.PENDING


@pytest.mark.parametrize("fault", ["timeout_before", "429"])
def test_an_order_that_never_reached_sectigo_is_unavailable(proxied, proxy, sectigo_sim, fault):
    proxy.fail_next(fault, "POST", f"/products/{APPLY}", hold=3.0)

    with pytest.raises(ProviderUnavailable) as raised:
        proxied.place_order(order())

    assert type(raised.value) is ProviderUnavailable
    assert sectigo_sim.orders == {} and proxy.fired == [fault]


def test_an_order_that_was_never_placed_is_absent_and_placed_once_more(sectigo, sectigo_sim):
    """A 5xx before Sectigo did anything: unknown to the adapter, absent in the report, so the
    order service may send it again, and then there is exactly one order."""
    request = order()
    sent_at = datetime.now(UTC)
    sectigo_sim.inject(Fault(status=503, body="busy"))

    with pytest.raises(ProviderOutcomeUnknown):
        sectigo.place_order(request)
    found = sectigo.find_order(placement(PlacementKind.ORDER, request, sent_at))
    ref = sectigo.place_order(request)

    assert found is None
    assert list(sectigo_sim.orders) == [ref.order_id]
    assert sectigo.status(ref).state is OrderState.PENDING


# --- finding and adopting orders ----------------------------------------------------------------


def test_find_asks_for_the_domain_around_the_time_the_order_was_sent(sectigo, sectigo_sim):
    sent_at = datetime.now(UTC) - timedelta(minutes=30)

    sectigo.find_order(placement(PlacementKind.ORDER, order("shop.example.com"), sent_at))

    form = sectigo_sim.last_form(REPORT)
    now = datetime.now(UTC).timestamp()
    assert form["fqdn"] == "shop.example.com"
    assert int(form["notBefore"]) == int(sent_at.timestamp()) - 300
    assert now + 290 < int(form["notAfter"]) <= now + 300
    assert (form["firstResultNo"], form["lastResultNo"]) == ("1", "50")


def test_orders_of_other_domains_earlier_times_or_tracked_are_not_the_lost_one(
    sectigo, sectigo_sim
):
    tracked = sectigo.place_order(order(idempotency_key="tracked"))
    sectigo.place_order(order("other.example", idempotency_key="other"))
    earlier = sectigo.place_order(order(idempotency_key="earlier"))
    sectigo_sim.orders[earlier.order_id].placed_at -= timedelta(minutes=6)

    found = sectigo.find_order(
        placement(PlacementKind.ORDER, order(), datetime.now(UTC), tracked=(tracked.order_id,))
    )

    assert found is None and len(sectigo_sim.orders) == 3


def test_two_untracked_orders_for_the_domain_cannot_be_told_apart(sectigo, sectigo_sim):
    sent_at = datetime.now(UTC)
    first = sectigo.place_order(order(idempotency_key="one"))
    second = sectigo.place_order(order(idempotency_key="two"))

    with pytest.raises(ProviderOutcomeUnknown, match=r"2 orders for example\.com") as raised:
        sectigo.find_order(placement(PlacementKind.ORDER, order(), sent_at))

    assert first.order_id in str(raised.value) and second.order_id in str(raised.value)


def test_a_lost_renewal_is_found_beside_the_tracked_order_it_renews(
    proxied, proxy, sectigo, sectigo_sim
):
    previous = issue(sectigo, sectigo_sim, order())
    request = order(csr=csr_for("example.com"), idempotency_key="renewal-1")
    sent_at = datetime.now(UTC)
    proxy.fail_next("reset_after", "POST", f"/products/{APPLY}")

    with pytest.raises(ProviderOutcomeUnknown):
        proxied.renew(request, previous)
    found = sectigo.find_order(
        placement(PlacementKind.RENEWAL, request, sent_at, previous, (previous.order_id,))
    )

    (renewal,) = set(sectigo_sim.orders) - {previous.order_id}
    assert found is not None and found.order_id == renewal
    assert found.data["renewalOf"] == previous.order_id


def test_the_report_is_read_page_by_page(sectigo, sectigo_sim):
    """Sectigo may give fewer orders than asked for: the next page starts after the last read."""
    sent_at = datetime.now(UTC)
    tracked = [sectigo.place_order(order(idempotency_key=f"t{i}")).order_id for i in range(4)]
    lost = sectigo.place_order(order(idempotency_key="lost"))
    sectigo_sim.report_page_limit = 2

    found = sectigo.find_order(placement(PlacementKind.ORDER, order(), sent_at, tracked=tracked))

    assert found is not None and found.order_id == lost.order_id
    pages = [form["firstResultNo"] for name, form in sectigo_sim.requests if name == REPORT]
    assert pages == ["1", "3", "5"]


REPORT_PROBLEMS = {
    "fewer orders than counted": (Fault(body="errorCode=0&noOfResults=3"), ProviderOutcomeUnknown),
    "no count": (Fault(body="errorCode=0"), ProviderOutcomeUnknown),
    "not a report": (Fault(body="<html>Maintenance</html>"), ProviderOutcomeUnknown),
    "report not allowed": (
        Fault(body="errorCode=-16&errorMessage=Permission+denied!"),
        ProviderOutcomeUnknown,
    ),
    "call limit": (Fault(body="errorCode=-42&errorMessage=Call+limit"), ProviderUnavailable),
    "server error": (Fault(status=503, body="busy"), ProviderUnavailable),
}


@pytest.mark.parametrize("fault, error", REPORT_PROBLEMS.values(), ids=REPORT_PROBLEMS)
def test_a_report_that_cannot_be_followed_never_means_absent(sectigo, sectigo_sim, fault, error):
    sectigo_sim.inject(fault)

    with pytest.raises(ProviderError) as raised:
        sectigo.find_order(placement(PlacementKind.ORDER, order(), datetime.now(UTC)))

    assert type(raised.value) is error


def reissue_placement(previous: ProviderRef, csr: str, sent_at: datetime) -> Placement:
    return placement(PlacementKind.REISSUE, order(csr=csr), sent_at, previous, (previous.order_id,))


@pytest.mark.parametrize("replaced", [True, False], ids=["replaced", "not replaced"])
def test_a_lost_reissue_is_the_certificate_the_order_did_not_have(
    proxied, proxy, sectigo, sectigo_sim, replaced
):
    ref = issue(sectigo, sectigo_sim, order(dcv_method=DcvMethod.HTTP))
    csr = csr_for("example.com")
    sent_at = datetime.now(UTC)
    proxy.fail_next("timeout_after" if replaced else "429", "POST", "/products/!AutoReplaceSSL")

    with pytest.raises(ProviderOutcomeUnknown if replaced else ProviderUnavailable):
        proxied.reissue(ref, csr)
    found = sectigo.find_order(reissue_placement(ref, csr, sent_at))

    certificates = sectigo_sim.orders[ref.order_id].certificate_ids
    if not replaced:
        assert found is None and certificates == [ref.data["certificateID"]]
        return
    assert found is not None and found.order_id == ref.order_id
    assert certificates == [ref.data["certificateID"], found.data["certificateID"]]
    assert found.validation[0].location.endswith(f"/{csr_digests(csr)[0]}.txt")


def test_a_reissue_of_a_reissue_passes_over_every_certificate_it_replaced(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    first = sectigo.reissue(ref, csr_for("example.com"))
    sectigo_sim.approve(ref.order_id)
    csr = csr_for("example.com")
    sent_at = datetime.now(UTC)

    second = sectigo.reissue(first, csr)
    found = sectigo.find_order(reissue_placement(first, csr, sent_at))

    assert found is not None and found.data["certificateID"] == second.data["certificateID"]
    assert second.data["replacedCertificateIDs"] == [
        ref.data["certificateID"],
        first.data["certificateID"],
    ]


def test_two_reissues_the_panel_has_not_seen_cannot_be_told_apart(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    sectigo.reissue(ref, csr_for("example.com"))
    csr = csr_for("example.com")
    sectigo.reissue(ref, csr)

    with pytest.raises(ProviderOutcomeUnknown, match="2 certificates the panel has not seen"):
        sectigo.find_order(reissue_placement(ref, csr, datetime.now(UTC)))


def test_an_adopted_order_is_tracked_like_a_placed_one(sectigo, sectigo_sim):
    request = order(dcv_method=DcvMethod.DNS)
    placed = sectigo.place_order(request)

    adopted = sectigo.adopt_order(
        placement(PlacementKind.ORDER, request, datetime.now(UTC)), f" {placed.order_id} "
    )

    assert adopted.order_id == placed.order_id and adopted.validation == placed.validation
    from_request = ("uniqueValue", "dcvMethod", "dcvEmailAddress", "domainNames")
    assert adopted.data == {key: placed.data[key] for key in from_request}
    assert sectigo.status(adopted).raw_status == "Not Yet Issued"


def test_an_adopted_reissue_keeps_the_order_number(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    csr = csr_for("example.com")
    sectigo.reissue(ref, csr)
    lost = reissue_placement(ref, csr, datetime.now(UTC))

    adopted = sectigo.adopt_order(lost, ref.order_id)
    with pytest.raises(
        ProviderRejected, match=f"keeps the order number: this one is {ref.order_id}"
    ):
        sectigo.adopt_order(lost, "4711")

    assert adopted.data["replacedCertificateIDs"] == [ref.data["certificateID"]]
    assert sectigo.status(adopted).state is OrderState.PENDING
    with pytest.raises(ProviderOutcomeUnknown, match="not known to the panel"):
        sectigo.find_order(reissue_placement(adopted, csr_for("example.com"), datetime.now(UTC)))


# --- subscriptions: the product term beside each certificate; revocation ------------------------


@pytest.fixture
def clock(sectigo_sim: SectigoSim, host: RecordingHost) -> Clock:
    """One clock for the simulator and the adapter's host, at 10:00 UTC on 10 Jun 2026."""
    clock = Clock(datetime(2026, 6, 10, 10, tzinfo=UTC))
    sectigo_sim.clock = host.clock = clock
    return clock


def test_collect_reports_the_product_term_apart_from_the_certificate(sectigo, sectigo_sim, clock):
    ref = sectigo.place_order(order(period_months=24))
    assert sectigo.status(ref).subscription_ends is None  # no term before the first certificate
    sectigo_sim.approve(ref.order_id)

    status = sectigo.status(ref)

    assert (status.not_before, status.not_after) == (clock(), clock() + timedelta(days=200))
    assert status.subscription_starts == clock()
    assert status.subscription_ends == clock() + timedelta(days=730)  # the days ordered


def test_a_year_is_one_order_and_one_free_reissue_at_sectigo(sectigo, sectigo_sim, clock):
    ref = issue(sectigo, sectigo_sim, order())
    first = sectigo.status(ref)
    term_ends = clock() + timedelta(days=365)

    clock.advance(days=170)
    reissued = sectigo.reissue(
        ref, csr_for("example.com"), replaces=keys.ari_cert_id(first.certificate)
    )
    assert sectigo.status(reissued).state is OrderState.PENDING
    sectigo_sim.approve(ref.order_id)
    second = sectigo.status(reissued)

    assert second.state is OrderState.ISSUED and second.not_before == clock()
    assert second.not_after == term_ends == second.subscription_ends
    assert sectigo_sim.created == {"order": 1, "reissue": 1}

    clock.set(term_ends)
    assert sectigo.status(ref).state is OrderState.EXPIRED
    with pytest.raises(ProviderRejected, match="term of this order has ended"):
        sectigo.reissue(ref, csr_for("example.com"))
    assert sectigo_sim.created == {"order": 1, "reissue": 1}


def test_revoke_names_the_certificate_by_serial_with_the_rfc_5280_code(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    certificate = sectigo.status(ref).certificate

    sectigo.revoke(ref, certificate, RevocationReason.KEY_COMPROMISE)

    form = sectigo_sim.last_form("!AutoRevokeSSL")
    serial = x509.load_pem_x509_certificate(certificate.encode()).serial_number
    assert (form["serialNumber"], form["codeReason"]) == (f"{serial:X}", "1")
    assert "key compromise" in form["revocationReason"] and "orderNumber" not in form
    status = sectigo.status(ref)
    assert (status.state, status.raw_status) == (OrderState.REVOKED, "Revoked")


def test_revoking_a_replaced_certificate_leaves_the_current_one_issued(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    replaced = sectigo.status(ref).certificate
    sectigo.reissue(ref, csr_for("example.com"))
    sectigo_sim.approve(ref.order_id)

    sectigo.revoke(ref, replaced, RevocationReason.SUPERSEDED)

    assert sectigo.status(ref).state is OrderState.ISSUED
    serial = x509.load_pem_x509_certificate(replaced.encode()).serial_number
    assert serial in sectigo_sim.orders[ref.order_id].revoked_serials


def test_a_certificate_sectigo_did_not_issue_is_refused(sectigo, sectigo_sim):
    ref = issue(sectigo, sectigo_sim, order())
    _, foreign = keys.create_ca("Not Sectigo")
    with pytest.raises(ProviderRejected, match="serialNumber"):
        sectigo.revoke(ref, keys.cert_to_pem(foreign), RevocationReason.UNSPECIFIED)
    assert sectigo.status(ref).state is OrderState.ISSUED


@pytest.mark.parametrize("fault", ["timeout_after", "reset_after", "502", "503", "504", "garbage"])
def test_a_free_replacement_whose_reply_is_lost_is_found_and_made_once(
    proxied, proxy, sectigo, sectigo_sim, fault
):
    """The replacement column at the adapter: a reissue with ``replaces`` whose reply is lost is
    an unknown outcome, found in the order report, and Sectigo holds one reissue."""
    ref = issue(sectigo, sectigo_sim, order())
    certificate = sectigo.status(ref).certificate
    csr = csr_for("example.com")
    sent_at = datetime.now(UTC)
    proxy.fail_next(fault, "POST", "/products/!AutoReplaceSSL", hold=1.0)

    with pytest.raises(ProviderOutcomeUnknown):
        proxied.reissue(ref, csr, replaces=keys.ari_cert_id(certificate))

    found = sectigo.find_order(reissue_placement(ref, csr, sent_at))
    assert found is not None and found.order_id == ref.order_id
    assert sectigo_sim.created == {"order": 1, "reissue": 1}
    assert sectigo_sim.count("!AutoReplaceSSL") == 1
