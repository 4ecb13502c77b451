"""The Sectigo adapter against the simulator, over real HTTP on loopback: no patching."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import socket
from typing import Any

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
    ProviderError,
    ProviderRef,
    ProviderRejected,
    ProviderUnavailable,
)
from panel_ssl_plugin.providers.sectigo import SectigoProvider, SectigoSettingsForm
from tests.providers.recording_host import RecordingHost
from tests.providers.sectigo_sim import LOGIN_PASSWORD, Fault, SectigoSim

APPLY = "!AutoApplySSL"
COLLECT = "download/CollectSSL"


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


def test_server_types_without_a_known_sectigo_id_are_sent_as_other(sectigo, sectigo_sim):
    sectigo.place_order(order(server_type="nginx"))

    assert sectigo_sim.last_form(APPLY)["serverSoftware"] == "-1"
    assert "test" not in sectigo_sim.last_form(APPLY)


def test_the_same_idempotency_key_places_one_order(sectigo, sectigo_sim):
    request = order()

    first = sectigo.place_order(request)
    second = sectigo.place_order(request)

    assert first.order_id == second.order_id
    assert list(sectigo_sim.orders) == [first.order_id]
    assert sectigo_sim.count(APPLY) == 2


def test_a_lost_reply_is_not_retried_and_the_retry_finds_the_order(sectigo_sim, host):
    sectigo = SectigoProvider(sectigo_sim.provider_settings(timeout=0.3), host)
    request = order()
    sectigo_sim.inject(Fault(delay=1.0))

    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        sectigo.place_order(request)
    assert sectigo_sim.count(APPLY) == 1
    ref = sectigo.place_order(request)

    assert list(sectigo_sim.orders) == [ref.order_id]


def test_an_idempotency_key_reused_for_another_csr_is_refused(sectigo, sectigo_sim):
    sectigo.place_order(order())

    with pytest.raises(ProviderRejected) as error:
        sectigo.place_order(order())

    assert (error.value.code, error.value.field) == ("-4", "uniqueValue")
    assert len(sectigo_sim.orders) == 1


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


def test_a_renewal_under_the_previous_key_is_not_taken_for_a_renewal(sectigo, sectigo_sim):
    first = order()
    previous = issue(sectigo, sectigo_sim, first)

    with pytest.raises(ProviderError, match="need a key of their own"):
        sectigo.renew(first, previous)

    assert list(sectigo_sim.orders) == [previous.order_id]


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


def test_the_call_limit_means_try_later(sectigo, sectigo_sim):
    sectigo_sim.inject(Fault(body="errorCode=-42&errorMessage=Call+limit+reached"))

    with pytest.raises(ProviderUnavailable, match="try again later"):
        sectigo.dcv_emails("example.com")


# --- transport faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_unavailable_and_the_order_is_not_resent(sectigo, sectigo_sim, status):
    sectigo_sim.inject(Fault(status=status, body="oops"))

    with pytest.raises(ProviderUnavailable, match=f"HTTP {status}"):
        sectigo.place_order(order())

    assert sectigo_sim.count(APPLY) == 1 and sectigo_sim.orders == {}


@pytest.mark.parametrize(
    "body", ["<html><body>Maintenance</body></html>", "orderNumber=5", "errorCode=zero"]
)
def test_an_unreadable_reply_is_a_provider_error(sectigo, sectigo_sim, body):
    sectigo_sim.inject(Fault(body=body))

    with pytest.raises(ProviderError, match="could not be read") as error:
        sectigo.place_order(order())

    assert type(error.value) is ProviderError


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


def test_a_refused_connection_is_unavailable(host):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = {"base_url": f"http://127.0.0.1:{port}/products", "login_name": "x"}
    sectigo = SectigoProvider({**settings, "login_password": "y", "timeout": 2}, host)

    with pytest.raises(ProviderUnavailable, match="cannot be reached"):
        sectigo.dcv_emails("example.com")


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
