"""The sandbox CA: catalogue, approver addresses, validation, the approval-link flow, issuance,
and its money-safety side: orders named by the idempotency key, lookups of lost replies, and the
admin's rehearsals of provider failures."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from werkzeug.datastructures import MultiDict

from panel_ssl_plugin import keys
from panel_ssl_plugin.providers.base import (
    DcvMethod,
    OrderRequest,
    OrderState,
    Placement,
    PlacementKind,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    RevocationReason,
)
from panel_ssl_plugin.providers.sandbox import (
    CANCELLED_AT,
    LOST_REPLY,
    RATE_LIMITED,
    UNAVAILABLE,
    SandboxProvider,
)
from panel_ssl_plugin.providers.sandbox_approval import sign
from tests.providers import faults
from tests.providers.clock import Clock
from tests.providers.recording_host import CALLBACK_BASE, Mail, RecordingHost


@pytest.fixture(scope="module")
def key() -> keys.PrivateKey:
    return keys.generate_key()


@pytest.fixture
def host() -> RecordingHost:
    """Sends mail and publishes DNS records."""
    return RecordingHost(can_publish=True)


@pytest.fixture
def sandbox(host: RecordingHost) -> SandboxProvider:
    return SandboxProvider({}, host)


def csr_for(key: keys.PrivateKey, *names: str) -> str:
    return keys.make_csr(key, keys.Subject(names[0]), names[1:])


def order(key: keys.PrivateKey, **changes: Any) -> OrderRequest:
    """A valid single-domain order with an idempotency key of its own; ``changes`` override
    fields (the CSR follows the names)."""
    domain = changes.get("domain", "www.example.com")
    sans = changes.get("sans", ())
    defaults = OrderRequest(
        product_id="dv-single",
        period_months=12,
        csr=csr_for(key, domain, *sans),
        domain=domain,
        dcv_method=DcvMethod.EMAIL,
        approver_email="admin@example.com",
        idempotency_key=uuid.uuid4().hex,
    )
    return replace(defaults, **changes)


def token_of(mail: Mail) -> str:
    link = next(line for line in mail.body.splitlines() if line.startswith(CALLBACK_BASE))
    return link.removeprefix(CALLBACK_BASE)


def merged(ref: ProviderRef, data: dict[str, Any] | None) -> ProviderRef:
    """What the order service does with data handed back by a callback or a status."""
    return replace(ref, data={**ref.data, **(data or {})})


def approve(sandbox: SandboxProvider, host: RecordingHost, ref: ProviderRef) -> ProviderRef:
    order_id, data = sandbox.handle_callback(token_of(host.mails[-1]))
    assert order_id == ref.order_id
    return merged(ref, data)


def issue(sandbox: SandboxProvider, ref: ProviderRef) -> tuple[ProviderRef, ProviderStatus]:
    status = sandbox.status(ref)
    assert status.state is OrderState.ISSUED, status.detail
    return merged(ref, status.data), status


# --- the CA --------------------------------------------------------------------------------------


def test_ca_is_created_once_persisted_and_reused(sandbox: SandboxProvider, host: RecordingHost):
    root = sandbox.trusted_roots()[0]
    sandbox.products()
    sandbox.trusted_roots()[0]
    assert len(host.saved) == 1
    saved = host.saved[0]
    assert all(saved[name] for name in SandboxProvider.secret_fields)

    later_host = RecordingHost()
    later = SandboxProvider(saved, later_host)
    assert later.trusted_roots()[0] == root
    assert later_host.saved == []


def test_link_secret_alone_is_regenerated_without_a_new_root(sandbox: SandboxProvider):
    root = sandbox.trusted_roots()[0]
    settings = {**sandbox.settings, "link_secret": ""}
    host = RecordingHost()
    again = SandboxProvider(settings, host)
    assert again.trusted_roots()[0] == root
    assert host.saved[0]["link_secret"]


def test_ca_named_after_the_organization_setting(host: RecordingHost):
    sandbox = SandboxProvider({"organization": "Acme Hosting"}, host)
    assert "Acme Hosting Root CA" in sandbox.test_connection()


def test_test_connection_reports_ca_and_products(sandbox: SandboxProvider):
    report = sandbox.test_connection()
    assert "CN=Panel SSL Sandbox Root CA" in report
    assert "4 products" in report and "Sandbox DV Wildcard" in report


def test_settings_form_defaults_are_valid():
    form = SandboxProvider.SettingsForm()
    assert form.validate(), form.errors
    assert form.data["periods"] == [12, 24] and form.data["issue_delay"] == 0
    assert (form.data["rehearse"], form.data["rehearse_count"]) == ("", 0)
    assert not set(SandboxProvider.secret_fields) & set(form.data)


@pytest.mark.parametrize(
    ("posted", "field"),
    [
        ({"issue_delay": "-1"}, "issue_delay"),
        ({"periods": ["48"]}, "periods"),
        ({"organization": ""}, "organization"),
        ({"rehearse": "flood"}, "rehearse"),
        ({"rehearse_count": "-1"}, "rehearse_count"),
    ],
)
def test_settings_form_refuses_bad_values(posted: dict[str, Any], field: str):
    fields = {"organization": "Test CA", "issue_delay": "0", "periods": ["12"], **posted}
    form = SandboxProvider.SettingsForm(MultiDict(fields))
    assert not form.validate()
    assert list(form.errors) == [field]


# --- catalogue and approver addresses ------------------------------------------------------------


def test_products_have_prices_addons_and_settings_periods(host: RecordingHost):
    products = {p.id: p for p in SandboxProvider({"periods": [12, 36]}, host).products()}
    assert set(products) == {"dv-single", "dv-wildcard", "dv-multi", "ov-single"}
    assert all(p.periods == (12, 36) for p in products.values())
    assert products["dv-single"].prices == {12: "$9.00", 36: "$27.00"}
    assert [a.id for a in products["dv-multi"].addons] == ["extra-san", "warranty"]
    assert "per name" in products["dv-multi"].addons[0].price
    assert products["dv-wildcard"].wildcard
    assert set(products["dv-wildcard"].dcv_methods) == {DcvMethod.EMAIL, DcvMethod.DNS}
    assert products["ov-single"].org_required and products["ov-single"].validation == "ov"


def test_dcv_emails_of_a_subdomain_include_the_parent(sandbox: SandboxProvider):
    assert sandbox.dcv_emails("Shop.Example.com.") == [
        "admin@shop.example.com",
        "administrator@shop.example.com",
        "hostmaster@shop.example.com",
        "postmaster@shop.example.com",
        "webmaster@shop.example.com",
        "admin@example.com",
        "administrator@example.com",
        "hostmaster@example.com",
        "postmaster@example.com",
        "webmaster@example.com",
    ]


def test_dcv_emails_of_a_registrable_domain_a_wildcard_and_an_idn(sandbox: SandboxProvider):
    assert sandbox.dcv_emails("example.com")[0] == "admin@example.com"
    assert len(sandbox.dcv_emails("example.com")) == 5
    assert sandbox.dcv_emails("*.example.com") == sandbox.dcv_emails("example.com")
    assert sandbox.dcv_emails("bücher.de")[0] == "admin@xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("192.0.2.1", "IP address"),
        ("2001:db8::1", "IP address"),
        ("localhost", "full domain name"),
        ("", "Enter a domain name"),
        ("-bad.example.com", "not a valid domain"),
        ("shop\n.example.com", "not a valid domain"),
        ("*.com", "full domain name"),
    ],
)
def test_dcv_emails_reject_what_is_not_a_domain(sandbox: SandboxProvider, domain: str, words):
    with pytest.raises(ProviderRejected, match=words):
        sandbox.dcv_emails(domain)


# --- the approval flow and the certificate -------------------------------------------------------


def test_approval_link_issues_a_certificate_that_verifies(sandbox, host, key):
    sans = ("example.com", "shop.example.com")
    approvers = dict.fromkeys(sans, "admin@example.com")
    request = order(key, product_id="dv-multi", sans=sans, san_approvers=approvers)
    ref = sandbox.place_order(request)
    assert ref.order_id.startswith("SBX-")
    [mail] = host.mails
    assert mail.to == "admin@example.com" and "www.example.com" in mail.subject
    assert sandbox.status(ref).state is OrderState.PENDING

    ref, status = issue(sandbox, approve(sandbox, host, ref))

    leaf = x509.load_pem_x509_certificate(status.certificate.encode())
    [intermediate] = keys.load_certificates(status.chain)
    root = x509.load_pem_x509_certificate(sandbox.trusted_roots()[0].encode())
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(root)
    assert keys.public_key_der(leaf) == keys.public_key_der(key)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted(
        ["www.example.com", "example.com", "shop.example.com"]
    )
    assert (status.not_before, status.not_after) == (
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
    )
    assert status.not_before == host.now()


def test_every_names_approver_is_mailed_and_each_must_approve(sandbox, host, key):
    """One mail per approver, naming the names it approves; issued once all have approved."""
    approvers = {
        "shop.example.org": "hostmaster@example.org",
        "blog.example.net": "admin@example.net",
    }
    request = order(
        key,
        product_id="dv-multi",
        sans=tuple(approvers),
        san_approvers=approvers,
    )
    ref = sandbox.place_order(request)
    mails = {mail.to: mail for mail in host.mails}
    assert sorted(mails) == ["admin@example.com", "admin@example.net", "hostmaster@example.org"]
    assert "approve certificates for shop.example.org.\n" in mails["hostmaster@example.org"].body
    for approver in ("admin@example.com", "hostmaster@example.org"):
        _, data = sandbox.handle_callback(token_of(mails[approver]))
        ref = merged(ref, data)
        status = sandbox.status(ref)
        assert status.state is OrderState.PENDING
    assert "admin@example.net" in status.detail and "admin@example.com" not in status.detail
    _, data = sandbox.handle_callback(token_of(mails["admin@example.net"]))
    issue(sandbox, merged(ref, data))


def test_an_approver_for_a_name_it_may_not_approve_is_refused(sandbox, key):
    request = order(
        key,
        product_id="dv-multi",
        sans=("shop.example.org",),
        san_approvers={"shop.example.org": "admin@example.com"},
    )
    with pytest.raises(
        ProviderRejected,
        match=r"admin@example\.com is not an approver address for shop\.example\.org",
    ):
        sandbox.place_order(request)


@pytest.mark.parametrize(
    ("issued", "months", "days", "paid_until"),
    [
        ("2026-03-14T23:59:59+00:00", 12, 365, "2027-03-14T23:59:59+00:00"),
        ("2026-03-14T23:59:59+00:00", 24, 398, "2028-03-14T23:59:59+00:00"),
        ("2026-03-15T00:00:00+00:00", 12, 200, "2027-03-15T00:00:00+00:00"),
        ("2027-03-15T00:00:00+00:00", 24, 100, "2029-03-15T00:00:00+00:00"),
        ("2029-03-15T00:00:00+00:00", 12, 47, "2030-03-15T00:00:00+00:00"),
    ],
)
def test_each_certificate_is_capped_on_its_issue_day_and_the_subscription_is_the_period(
    key, issued, months, days, paid_until
):
    host = RecordingHost(clock=Clock(datetime.fromisoformat(issued)))
    sandbox = SandboxProvider({}, host)
    ref = sandbox.place_order(order(key, period_months=months))
    assert sandbox.status(ref).subscription_ends is None  # nothing issued, nothing started
    _, status = issue(sandbox, approve(sandbox, host, ref))
    assert status.not_before == datetime.fromisoformat(issued)
    assert status.not_after - status.not_before == timedelta(days=days)
    assert status.subscription_starts == status.not_before
    assert status.subscription_ends == datetime.fromisoformat(paid_until)


def test_a_reissue_inside_the_subscription_is_free_and_never_outlasts_it(key):
    clock = Clock(datetime(2026, 6, 10, tzinfo=UTC))
    host = RecordingHost(clock=clock)
    sandbox = SandboxProvider({}, host)
    ref, first = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    paid_until = datetime(2027, 6, 10, tzinfo=UTC)
    assert first.not_after == clock() + timedelta(days=200)

    clock.advance(days=170)
    new_csr = csr_for(keys.generate_key(), "www.example.com")
    ref = approve(sandbox, host, sandbox.reissue(ref, new_csr, replaces="ignored.AQ"))
    ref, second = issue(sandbox, ref)
    assert second.not_before == clock()
    assert second.not_after == paid_until  # 195 days were left: cut at the subscription's end
    assert (second.subscription_starts, second.subscription_ends) == (
        first.subscription_starts,
        paid_until,
    )

    clock.set(paid_until)
    assert sandbox.status(ref).state is OrderState.EXPIRED
    with pytest.raises(ProviderRejected, match="ended on 2027-06-10; renew"):
        sandbox.reissue(ref, csr_for(keys.generate_key(), "www.example.com"))


def test_a_renewal_placed_early_starts_its_subscription_where_the_last_one_ends(key):
    clock = Clock(datetime(2026, 6, 10, tzinfo=UTC))
    host = RecordingHost(clock=clock)
    sandbox = SandboxProvider({}, host)
    previous, _ = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    clock.set(datetime(2027, 5, 20, tzinfo=UTC))
    renewal = approve(sandbox, host, sandbox.renew(order(key), previous))
    _, status = issue(sandbox, renewal)
    assert status.not_before == clock()
    assert status.subscription_starts == datetime(2027, 6, 10, tzinfo=UTC)
    assert status.subscription_ends == datetime(2028, 6, 10, tzinfo=UTC)
    assert status.not_after == clock() + timedelta(days=100)  # issued after 2027-03-15


def test_status_is_stable_once_issued(sandbox, host, key):
    ref, first = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    second = sandbox.status(ref)
    assert second.certificate == first.certificate and second.chain == first.chain
    assert second.data is None


@pytest.mark.parametrize(
    "garble",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        lambda token: "U0JYLTEyMzQ6eA." + token.partition(".")[2],
        lambda token: "not a token",
        lambda token: "",
        lambda token: "%%%.é",
    ],
)
def test_forged_or_garbled_tokens_are_rejected(sandbox, host, key, garble):
    sandbox.place_order(order(key))
    with pytest.raises(ProviderRejected, match="not valid"):
        sandbox.handle_callback(garble(token_of(host.mails[0])))


def test_a_token_of_another_installation_is_rejected(sandbox, host, key):
    sandbox.place_order(order(key))
    other = SandboxProvider({}, RecordingHost())
    with pytest.raises(ProviderRejected, match="not valid"):
        other.handle_callback(token_of(host.mails[0]))


# --- validation ----------------------------------------------------------------------------------


def _rejections(key: keys.PrivateKey) -> list[tuple[OrderRequest, str, str]]:
    """(request, field blamed, words of the message) for every rule place_order enforces."""
    return [
        (order(key, product_id="ev-gold"), "product_id", "Unknown product"),
        (order(key, period_months=36), "period_months", "sold for 12, 24 months"),
        (order(key, addons=("insurance",)), "addons", "no add-on insurance"),
        (order(key, dcv_method=DcvMethod.DNS), "dcv_method", "cannot be validated by dns"),
        (order(key, approver_email="root@example.com"), "approver_email", "not an approver"),
        (order(key, approver_email=None), "approver_email", "No address is not an approver"),
        (order(key, approver_email="admin@example.org"), "approver_email", "not an approver"),
        (order(key, csr="garbage"), "csr", "not a readable certificate signing request"),
        (order(key, csr=csr_for(key, "www.example.org")), "csr", "differ from the order"),
        (order(key, sans=("example.com",)), "sans", "allows 0 names besides"),
        (order(key, domain="*.example.com"), "domain", "does not cover wildcard"),
        (order(key, domain="192.0.2.7"), "domain", "IP address"),
        (
            order(key, product_id="dv-multi", sans=("a.example.com", "b.example.com", "c.net")),
            "addons",
            "add the 'Extra SAN' add-on for the other 1",
        ),
        (order(key, product_id="ov-single"), "organization", "needs the organization"),
        (
            order(key, product_id="ov-single", organization="Acme", country="Germany"),
            "country",
            "not an ISO 3166-1 country code",
        ),
    ]


def test_every_rule_rejects_with_a_clear_message(sandbox, host, key):
    for request, field, words in _rejections(key):
        with pytest.raises(ProviderRejected, match=words) as caught:
            sandbox.place_order(request)
        assert caught.value.field == field, words
    assert host.mails == []


def test_the_csr_signature_is_checked(sandbox, key):
    pem = csr_for(key, "www.example.com")
    forged = pem.replace(pem.splitlines()[-2], pem.splitlines()[-2][:-6] + "AAAA==")
    with pytest.raises(ProviderRejected) as caught:
        sandbox.place_order(order(key, csr=forged))
    assert caught.value.field == "csr"


def test_orders_that_pass_every_rule(sandbox, host, key):
    accepted = [
        order(key, product_id="dv-wildcard", domain="*.example.com", sans=("example.com",)),
        order(
            key,
            product_id="dv-multi",
            sans=("a.example.com", "b.example.com", "c.net"),
            addons=("extra-san", "warranty"),
        ),
        order(key, product_id="ov-single", organization="Acme", country="de"),
        order(key, domain="shop.example.com", approver_email="webmaster@shop.example.com"),
    ]
    for request in accepted:
        sandbox.place_order(request)
    approvers = [{r.approver_for(name) for name in (r.domain, *r.sans)} for r in accepted]
    assert len(host.mails) == sum(map(len, approvers)) == 7  # the multi-domain order has four


def test_reject_setting_refuses_every_order(host, key):
    sandbox = SandboxProvider({"reject_message": "Sandbox is closed for maintenance."}, host)
    with pytest.raises(ProviderRejected, match="closed for maintenance") as caught:
        sandbox.place_order(order(key))
    assert caught.value.code == "rejected"


# --- settings that shape issuance ----------------------------------------------------------------


def test_delay_keeps_an_approved_order_pending_until_due(host, key):
    sandbox = SandboxProvider({"issue_delay": 600}, host)
    ref = approve(sandbox, host, sandbox.place_order(order(key)))
    waiting = sandbox.status(ref)
    assert (waiting.state, waiting.raw_status) == (OrderState.PENDING, "approved")
    assert "issuing in" in waiting.detail

    earlier = (datetime.now(UTC) - timedelta(seconds=601)).isoformat()
    issue(sandbox, merged(ref, {"approved_at": earlier}))


def test_auto_approve_issues_on_the_first_status_without_mail(host, key):
    sandbox = SandboxProvider({"auto_approve": True}, host)
    ref = sandbox.place_order(order(key))
    issue(sandbox, ref)
    assert host.mails == []


def test_dns_validation_is_approved_when_the_host_publishes(sandbox, host, key):
    request = order(
        key,
        product_id="dv-wildcard",
        domain="*.example.com",
        sans=("example.com",),
        dcv_method=DcvMethod.DNS,
        approver_email=None,
    )
    ref = sandbox.place_order(request)
    [(domain, name, record_type, _)] = host.dns_records
    assert (domain, name, record_type) == ("example.com", "_sandbox-validation.example.com", "TXT")
    assert [task.published for task in ref.validation] == [True]
    issue(sandbox, ref)
    assert host.mails == []


def test_dns_validation_is_rejected_when_the_host_cannot_publish(key):
    sandbox = SandboxProvider({}, RecordingHost(can_publish=False))
    request = order(key, product_id="dv-wildcard", domain="*.example.com", dcv_method=DcvMethod.DNS)
    with pytest.raises(ProviderRejected, match="choose e-mail validation"):
        sandbox.place_order(request)


# --- renew, reissue, resend, cancel --------------------------------------------------------------


def test_renew_is_a_new_order_that_names_the_previous(sandbox, host, key):
    previous, _ = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    renewal = sandbox.renew(order(key, period_months=24), previous)
    assert renewal.order_id != previous.order_id
    assert renewal.data["renewal_of"] == previous.order_id
    assert len(host.mails) == 2
    assert sandbox.status(renewal).state is OrderState.PENDING
    issue(sandbox, approve(sandbox, host, renewal))


def test_reissue_keeps_the_order_and_needs_a_new_approval(sandbox, host, key):
    ref = approve(sandbox, host, sandbox.place_order(order(key)))
    old_token = token_of(host.mails[-1])
    ref, first = issue(sandbox, ref)

    new_key = keys.generate_key()
    reissued = sandbox.reissue(ref, csr_for(new_key, "www.example.com"))
    assert reissued.order_id == ref.order_id and len(host.mails) == 2
    assert sandbox.status(reissued).state is OrderState.PENDING

    _, stale = sandbox.handle_callback(old_token)
    assert sandbox.status(merged(reissued, stale)).state is OrderState.PENDING

    _, second = issue(sandbox, approve(sandbox, host, reissued))
    assert second.certificate != first.certificate
    leaf = x509.load_pem_x509_certificate(second.certificate.encode())
    assert keys.public_key_der(leaf) == keys.public_key_der(new_key)


def test_reissue_must_ask_for_the_same_names(sandbox, host, key):
    ref = sandbox.place_order(order(key))
    with pytest.raises(ProviderRejected, match="differ from the order"):
        sandbox.reissue(ref, csr_for(key, "other.example.com"))


def test_resend_mails_the_same_link_until_approved(sandbox, host, key):
    ref = sandbox.place_order(order(key))
    sandbox.resend_approval(ref)
    first, again = host.mails
    assert again.to == first.to and token_of(again) == token_of(first)
    with pytest.raises(ProviderRejected, match="already approved"):
        sandbox.resend_approval(approve(sandbox, host, ref))


def test_cancel_pending_is_accepted_and_reported(sandbox, host, key):
    ref = sandbox.place_order(order(key))
    cancelled = merged(ref, sandbox.cancel(ref, "typo in the domain"))
    assert CANCELLED_AT in cancelled.data
    assert sandbox.status(cancelled).state is OrderState.CANCELLED
    for refused in (sandbox.resend_approval, lambda r: sandbox.reissue(r, r.data["csr"])):
        with pytest.raises(ProviderRejected, match="cancelled"):
            refused(cancelled)


def test_cancel_refuses_an_issued_order(sandbox, host, key):
    ref, _ = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    with pytest.raises(ProviderRejected, match="revoke") as caught:
        sandbox.cancel(ref)
    assert caught.value.code == "issued"


def test_a_revoked_certificate_is_reported_revoked_until_a_reissue_replaces_it(sandbox, host, key):
    ref, issued = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    changes = sandbox.revoke(ref, issued.certificate, RevocationReason.KEY_COMPROMISE)
    revoked = sandbox.status(merged(ref, changes))
    assert (revoked.state, revoked.raw_status) == (OrderState.REVOKED, "revoked")
    assert "reason 1" in revoked.detail and revoked.certificate == issued.certificate

    ref = merged(ref, changes)
    new_csr = csr_for(keys.generate_key(), "www.example.com")
    ref, replaced = issue(sandbox, approve(sandbox, host, sandbox.reissue(ref, new_csr)))
    assert replaced.certificate != issued.certificate
    assert sandbox.status(ref).state is OrderState.ISSUED


def test_only_certificates_of_the_order_from_this_ca_can_be_revoked(sandbox, host, key):
    ref, _ = issue(sandbox, approve(sandbox, host, sandbox.place_order(order(key))))
    other = SandboxProvider({}, RecordingHost())
    theirs, _ = issue(other, approve(other, other.host, other.place_order(order(key))))
    with pytest.raises(ProviderRejected, match="not a certificate of this sandbox CA"):
        sandbox.revoke(ref, theirs.data["certificate"], RevocationReason.UNSPECIFIED)
    request = order(key, domain="shop.example.com", approver_email="admin@example.com")
    _, elsewhere = issue(sandbox, approve(sandbox, host, sandbox.place_order(request)))
    with pytest.raises(ProviderRejected, match="not one of order"):
        sandbox.revoke(ref, elsewhere.certificate, RevocationReason.SUPERSEDED)


def test_a_link_signed_before_links_named_their_approver_approves_the_round(sandbox, host, key):
    """Mails sent by the sandbox before approvers were per name carry order id and round
    only; following one still approves the order, as it did."""
    ref = sandbox.place_order(order(key))
    old_link = sign(sandbox.settings["link_secret"], f"{ref.order_id}:{ref.data['link']}")
    order_id, data = sandbox.handle_callback(old_link)
    assert order_id == ref.order_id
    issue(sandbox, merged(ref, data))


# --- money safety: one order per key, lost replies looked up, rehearsed failures -----------------


def test_the_same_key_names_the_same_order_and_link(sandbox, host, key):
    request = order(key)
    first, again = sandbox.place_order(request), sandbox.place_order(request)
    assert again == first and first.order_id.startswith("SBX-")
    assert token_of(host.mails[0]) == token_of(host.mails[1])

    other_key = sandbox.place_order(replace(request, idempotency_key="another-key"))
    other_ca = SandboxProvider({}, RecordingHost()).place_order(request)
    assert first.order_id not in {other_key.order_id, other_ca.order_id}
    assert token_of(host.mails[2]) != token_of(host.mails[0])


def test_a_request_without_an_idempotency_key_is_refused(sandbox, host, key):
    with pytest.raises(ProviderRejected, match="idempotency key") as caught:
        sandbox.place_order(order(key, idempotency_key=""))
    assert caught.value.field == "idempotency_key" and host.mails == []


SENT_AT = datetime(2025, 3, 1, 12, 0, 5, 123456, tzinfo=UTC)


def rehearsing(sandbox: SandboxProvider, rehearse: str, count: int) -> SandboxProvider:
    """The same sandbox account (its CA made first), its admin having asked to rehearse
    ``count`` failures."""
    sandbox.trusted_roots()
    settings = {**sandbox.settings, "rehearse": rehearse, "rehearse_count": count}
    return SandboxProvider(settings, sandbox.host)


CreateCall = Callable[[SandboxProvider], ProviderRef]


def lost_call(
    kind: PlacementKind, sandbox: SandboxProvider, host: RecordingHost, key: keys.PrivateKey
) -> tuple[CreateCall, Placement]:
    """A create call of ``kind`` and the Placement the order service keeps when its reply is
    lost; renewals and reissues follow an issued order."""
    request = order(key)
    if kind is PlacementKind.ORDER:
        return (lambda s: s.place_order(request)), Placement(kind, request, SENT_AT)
    previous, _ = issue(sandbox, approve(sandbox, host, sandbox.place_order(request)))
    if kind is PlacementKind.RENEWAL:
        renewal = order(key, period_months=24)
        return (lambda s: s.renew(renewal, previous)), Placement(kind, renewal, SENT_AT, previous)
    csr = csr_for(keys.generate_key(), "www.example.com")
    reissue = replace(request, csr=csr, idempotency_key="reissue-1")
    return (lambda s: s.reissue(previous, csr)), Placement(kind, reissue, SENT_AT, previous)


@pytest.mark.parametrize("kind", list(PlacementKind))
def test_a_lost_reply_is_found_without_mail_and_its_link_approves(sandbox, host, key, kind):
    call, placement = lost_call(kind, sandbox, host, key)
    with pytest.raises(ProviderOutcomeUnknown, match="reply was lost"):
        call(rehearsing(sandbox, LOST_REPLY, 1))
    lost_mail = host.mails[-1]

    before = len(host.calls)
    found = sandbox.find_order(placement)
    assert host.calls[before:] == []

    assert found == call(sandbox)  # what the create call returns when its reply comes back
    assert token_of(host.mails[-1]) == token_of(lost_mail)
    if kind is PlacementKind.RENEWAL:
        assert found.data["renewal_of"] == placement.previous.order_id != found.order_id
    if kind is PlacementKind.REISSUE:
        assert found.order_id == placement.previous.order_id
        assert found.data["link"] != placement.previous.data["link"]
    issue(sandbox, approve(sandbox, host, found))


def test_an_order_approved_at_placement_is_found_approved_when_it_was_sent(sandbox, key):
    request = order(
        key,
        product_id="dv-wildcard",
        domain="*.example.com",
        dcv_method=DcvMethod.DNS,
        approver_email=None,
    )
    placed = sandbox.place_order(request)
    found = sandbox.find_order(Placement(PlacementKind.ORDER, request, SENT_AT))
    assert found.validation == placed.validation and found.order_id == placed.order_id
    assert found.data["approved_at"] == "2025-03-01T12:00:05+00:00"
    assert sandbox.status(found).state is OrderState.ISSUED


@pytest.mark.parametrize(
    "refused",
    [
        {"approver_email": "root@example.com"},
        {"product_id": "ev-gold"},
        {"idempotency_key": ""},
    ],
)
def test_a_request_the_sandbox_refuses_was_never_an_order(sandbox, key, refused):
    placement = Placement(PlacementKind.ORDER, order(key, **refused), SENT_AT)
    assert sandbox.find_order(placement) is None
    with pytest.raises(ProviderRejected):
        sandbox.adopt_order(placement, "SBX-0123456789")


def test_a_reissue_of_a_cancelled_order_was_never_made(sandbox, key):
    request = order(key)
    ref = sandbox.place_order(request)
    cancelled = merged(ref, sandbox.cancel(ref))
    placement = Placement(PlacementKind.REISSUE, request, SENT_AT, cancelled)
    assert sandbox.find_order(placement) is None


def test_adopt_takes_the_order_the_key_names(sandbox, key):
    placement = Placement(PlacementKind.ORDER, order(key), SENT_AT)
    found = sandbox.find_order(placement)
    assert sandbox.adopt_order(placement, found.order_id) == found
    assert sandbox.adopt_order(placement, f" {found.order_id.lower()} ") == found


def test_adopt_refuses_an_order_of_another_key(sandbox, key):
    placement = Placement(PlacementKind.ORDER, order(key), SENT_AT)
    foreign = sandbox.place_order(order(key)).order_id
    for order_id in (foreign, "SBX-0000000000", ""):
        with pytest.raises(ProviderRejected, match="not the sandbox order") as caught:
            sandbox.adopt_order(placement, order_id)
        assert caught.value.code == "not_found"


# The sandbox's column of the fault matrix: for each fault the HTTP adapters meet through
# tests/providers/faults.py, the rehearsal that stands in for it, what the create call raises,
# its Retry-After, and whether the order is made.
TURNED_AWAY = (UNAVAILABLE, ProviderUnavailable, None, False)
LOST = (LOST_REPLY, ProviderOutcomeUnknown, None, True)
FAULT_COLUMN = {
    "timeout_before": TURNED_AWAY,
    "429": (RATE_LIMITED, ProviderUnavailable, 1, False),
    **dict.fromkeys(
        ("timeout_after", "reset_after", "502", "503", "504", "garbage", "no_id"), LOST
    ),
}


def test_every_fault_of_the_matrix_has_its_rehearsal():
    assert set(FAULT_COLUMN) == set(faults.KINDS)


@pytest.mark.parametrize(
    ("rehearse", "error", "retry_after", "made"),
    [pytest.param(*row, id=fault) for fault, row in FAULT_COLUMN.items()],
)
def test_each_rehearsal_fails_the_next_create_calls_then_orders_go_through(
    sandbox, host, key, rehearse, error, retry_after, made
):
    previous = SandboxProvider({}, RecordingHost()).place_order(order(key))
    calls: list[CreateCall] = [
        lambda s: s.place_order(order(key)),
        lambda s: s.renew(order(key), previous),
        lambda s: s.reissue(previous, csr_for(keys.generate_key(), "www.example.com")),
    ]
    rehearsed = rehearsing(sandbox, rehearse, len(calls))
    for done, call in enumerate(calls, start=1):
        with pytest.raises(error, match="Sandbox rehearsal") as caught:
            call(rehearsed)
        assert getattr(caught.value, "retry_after", None) == retry_after
        assert host.saved[-1]["rehearse_count"] == len(calls) - done
    assert len(host.mails) == (len(calls) if made else 0)

    assert rehearsed.place_order(order(key)).order_id.startswith("SBX-")
    assert rehearsed.settings["rehearse_count"] == 0


@pytest.mark.parametrize("rehearse", [UNAVAILABLE, RATE_LIMITED, LOST_REPLY])
def test_a_rehearsal_with_nothing_left_to_count_changes_nothing(sandbox, host, key, rehearse):
    rehearsing(sandbox, rehearse, 0).place_order(order(key))
    assert len(host.mails) == 1 and len(host.saved) == 1  # the CA's


def test_a_refusal_is_a_reply_and_spends_no_lost_reply(sandbox, host, key):
    rehearsed = rehearsing(sandbox, LOST_REPLY, 1)
    with pytest.raises(ProviderRejected):
        rehearsed.place_order(order(key, approver_email="root@example.com"))
    assert rehearsed.settings["rehearse_count"] == 1
    with pytest.raises(ProviderOutcomeUnknown):
        rehearsed.place_order(order(key))
