"""The ACME adapter against a real Pebble (tests/providers/pebble_server.py), no mocks.

Each test orders names of its own so Pebble's state from one test cannot satisfy another.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
from werkzeug.datastructures import MultiDict

from panel_ssl_plugin.keys import (
    Subject,
    generate_key,
    key_to_pem,
    load_certificates,
    make_csr,
    public_key_der,
)
from panel_ssl_plugin.providers.acme import AcmeProvider
from panel_ssl_plugin.providers.base import (
    DcvMethod,
    OrderRequest,
    OrderState,
    ProviderError,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    ValidationTask,
)
from tests.providers.pebble_server import PebbleServer, free_ports
from tests.providers.recording_host import RecordingHost

STATUS_CALLS = 100  # Pebble validates in milliseconds; this bounds a broken run, it times nothing
EARLY_POLLS = 3  # scheduled polls before the user has published anything


def settings_for(pebble: PebbleServer, **changes: Any) -> dict[str, Any]:
    return {
        "directory": "custom",
        "directory_url": pebble.directory_url,
        "contact_email": "ssl-admin@panel.test",
        "agree_tos": True,
        "eab_kid": "",
        "eab_hmac_key": "",
        "ca_bundle": pebble.ca_bundle,
        **changes,
    }


class MisbehavingCA(ThreadingHTTPServer):
    """Answers every request with :attr:`reply`: what Pebble will not do on cue (5xx, rate
    limits, garbage, EAB). The real ``acme`` library and ``requests`` still read it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CannedReply)
        self.reply: tuple[int, dict[str, str], bytes] = (404, {}, b"")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/dir"

    def problem(self, status: int, code: str, detail: str, **headers: str) -> None:
        body = json.dumps({"type": f"urn:ietf:params:acme:error:{code}", "detail": detail})
        self.reply = (
            status,
            {"Content-Type": "application/problem+json", **headers},
            body.encode(),
        )


class _CannedReply(BaseHTTPRequestHandler):
    server: MisbehavingCA

    def do_GET(self) -> None:
        status, headers, body = self.server.reply
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def misbehaving_provider(ca: MisbehavingCA, **settings: str) -> AcmeProvider:
    """No host: every test of a misbehaving CA fails before anything is published."""
    return AcmeProvider(
        {"directory": "custom", "directory_url": ca.url, "agree_tos": True, **settings}, None
    )


@pytest.fixture
def misbehaving_ca() -> Iterator[MisbehavingCA]:
    server = MisbehavingCA()
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def host(pebble: PebbleServer) -> RecordingHost:
    """A panel that owns the docroots and DNS (``can_publish``) or not, publishing into Pebble."""
    return RecordingHost(
        can_mail=False,
        can_publish=True,
        publish_http=pebble.http01.serve,
        publish_txt=pebble.set_txt,
    )


@pytest.fixture
def provider(pebble: PebbleServer, host: RecordingHost) -> AcmeProvider:
    return AcmeProvider(settings_for(pebble), host)


def names(label: str, *subdomains: str) -> list[str]:
    """A fresh random parent name and ``subdomains`` of it ("*" for its wildcard), so that no
    test meets another's authorizations."""
    parent = f"{label}-{uuid.uuid4().hex[:8]}.example"
    return [parent, *(f"{sub}.{parent}" for sub in subdomains)]


def request_for(domains: list[str], method: DcvMethod) -> OrderRequest:
    csr = make_csr(generate_key(), Subject(domains[0]), domains[1:])
    return OrderRequest("dv", 3, csr, domains[0], method, sans=tuple(domains[1:]))


def settle(provider: AcmeProvider, ref: ProviderRef) -> ProviderStatus:
    """Press "check status" until the order leaves pending; keep data as the order service does."""
    for _ in range(STATUS_CALLS):
        status = provider.status(ref)
        if status.data is not None:
            ref = replace(ref, data=status.data)
        if status.state is not OrderState.PENDING:
            return status
        time.sleep(0.1)
    pytest.fail(f"order still pending: {status}")


def start_validation(provider: AcmeProvider, ref: ProviderRef) -> ProviderRef:
    """The user says the records are published; keep the returned data as the order service
    does (merged into the order's data)."""
    returned = provider.resend_approval(ref)
    assert returned is not None
    return replace(ref, data={**ref.data, **returned})


def publish(pebble: PebbleServer, task: ValidationTask) -> None:
    """Do by hand what ``task`` says, as a user with their own web server or DNS would."""
    if task.method is DcvMethod.HTTP:
        token = task.location.rsplit("/", 1)[-1]
        pebble.http01.serve(token, task.value)
    else:
        pebble.set_txt(task.location, task.value)


def assert_waiting_for_the_user(status: ProviderStatus, ref: ProviderRef) -> None:
    """Pending, nothing answered, nothing to store: the CA was not asked to check yet."""
    assert (status.state, status.raw_status) == (OrderState.PENDING, "pending")
    assert status.data is None
    assert sorted((t.domain, t.status, t.published) for t in status.validation) == sorted(
        (t.domain, "pending", False) for t in ref.validation
    )
    assert "then start validation" in status.detail


def assert_issued_for(
    pebble: PebbleServer, status: ProviderStatus, request: OrderRequest
) -> x509.Certificate:
    """The certificate is for the CSR's key and names, and chains to this Pebble's root."""
    assert status.state is OrderState.ISSUED and status.raw_status == "valid"
    leaf = x509.load_pem_x509_certificate(status.certificate.encode())
    chain = load_certificates(status.chain)
    assert chain == [pebble.issuer("intermediates")]
    csr = x509.load_pem_x509_csr(request.csr.encode())
    assert public_key_der(leaf) == public_key_der(csr)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == sorted([request.domain, *request.sans])
    assert (status.not_before, status.not_after) == (
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
    )
    verifier = (
        PolicyBuilder()
        .store(Store([pebble.issuer("roots")]))
        .build_server_verifier(x509.DNSName(request.domain))
    )
    verifier.verify(leaf, chain)
    return leaf


# --- without a CA ----------------------------------------------------------------------------


def test_products_offer_three_months_and_wildcards_only_by_dns():
    products = {p.id: p for p in AcmeProvider({"directory": "letsencrypt"}, None).products()}

    assert products["dv"].periods == products["dv-wildcard"].periods == (3,)
    assert products["dv"].dcv_methods == (DcvMethod.HTTP, DcvMethod.DNS)
    assert not products["dv"].wildcard
    assert products["dv-wildcard"].wildcard
    assert products["dv-wildcard"].dcv_methods == (DcvMethod.DNS,)
    assert products["dv"].brand == "Let's Encrypt"


def test_no_approver_emails_and_no_email_validation():
    provider = AcmeProvider({"directory": "letsencrypt"}, None)

    assert provider.dcv_emails("example.com") == []
    with pytest.raises(ProviderRejected, match="HTTP or DNS"):
        provider.place_order(request_for(["example.com"], DcvMethod.EMAIL))


def test_settings_form_offers_presets_and_needs_a_url_for_custom():
    presets = AcmeProvider.DIRECTORY_PRESETS
    assert presets["letsencrypt"].url == "https://acme-v02.api.letsencrypt.org/directory"
    assert {"letsencrypt_staging", "zerossl", "buypass", "google"} <= presets.keys()
    assert presets["zerossl"].eab_required and not presets["buypass"].eab_required

    form = AcmeProvider.SettingsForm(MultiDict({"directory": "custom"}))
    assert not form.validate()
    assert "directory_url" in form.errors
    assert AcmeProvider.SettingsForm(MultiDict({"directory": "buypass"})).validate()
    assert "eab_hmac_key" in AcmeProvider.secret_fields


# --- against Pebble ----------------------------------------------------------------------------


def test_connection_describes_the_ca(provider: AcmeProvider):
    message = provider.test_connection()

    assert provider.settings["directory_url"] in message
    assert "Terms of service: data:text/plain" in message
    assert "External Account Binding not required" in message


def test_registration_refused_without_terms_agreement(pebble: PebbleServer, host: RecordingHost):
    provider = AcmeProvider(settings_for(pebble, agree_tos=False), host)

    with pytest.raises(ProviderRejected, match="terms of service") as refused:
        provider.place_order(request_for(names("tos"), DcvMethod.HTTP))
    assert refused.value.field == "agree_tos"
    assert host.saved == []


def test_account_is_registered_once_and_reused(pebble: PebbleServer, host: RecordingHost):
    first = AcmeProvider(settings_for(pebble), host)
    ref = first.place_order(request_for(names("account"), DcvMethod.HTTP))

    [saved] = host.saved
    assert saved["account_url"] == ref.data["account_url"]
    assert saved["account_key"].startswith("-----BEGIN PRIVATE KEY-----")
    later = AcmeProvider(saved, host)
    again = later.place_order(request_for(names("account"), DcvMethod.HTTP))
    assert again.data["account_url"] == saved["account_url"]
    assert len(host.saved) == 1


@pytest.mark.parametrize(
    ("method", "domains"),
    [
        (DcvMethod.HTTP, names("http", "www")),
        (DcvMethod.DNS, names("dns", "*")),
    ],
    ids=["http-01", "dns-01-wildcard"],
)
def test_host_publishes_and_certificate_is_issued(
    pebble: PebbleServer, provider: AcmeProvider, method: DcvMethod, domains: list[str]
):
    request = request_for(domains, method)
    ref = provider.place_order(request)

    assert ref.data["order_url"].endswith(ref.order_id)
    assert {task.method for task in ref.validation} == {method}
    assert all(task.published for task in ref.validation)
    assert_issued_for(pebble, settle(provider, ref), request)


@pytest.mark.parametrize("method", [DcvMethod.HTTP, DcvMethod.DNS])
def test_user_publishes_what_the_tasks_say(
    pebble: PebbleServer, host: RecordingHost, provider: AcmeProvider, method: DcvMethod
):
    host.can_publish = False
    request = request_for(names("manual"), method)
    ref = provider.place_order(request)

    [task] = ref.validation
    assert (task.domain, task.published, task.status) == (request.domain, False, "pending")
    if method is DcvMethod.HTTP:
        prefix = f"http://{request.domain}/.well-known/acme-challenge/"
        assert task.location.startswith(prefix) and task.record_type == ""
    else:
        assert (task.location, task.record_type) == (f"_acme-challenge.{request.domain}", "TXT")
    assert_waiting_for_the_user(provider.status(ref), ref)

    publish(pebble, task)
    returned = provider.resend_approval(ref)

    assert returned == {"published": [], "answered": [returned["answered"][0]]}
    ref = replace(ref, data={**ref.data, **returned})
    assert_issued_for(pebble, settle(provider, ref), request)


@pytest.mark.parametrize("method", [DcvMethod.HTTP, DcvMethod.DNS])
def test_polling_before_publishing_leaves_the_order_pending(
    pebble: PebbleServer, host: RecordingHost, provider: AcmeProvider, method: DcvMethod
):
    """The order service polls on a schedule: none of those polls may tell the CA to check,
    or it would check a record not there yet and fail the order for good."""
    host.can_publish = False
    request = request_for(names("early", "www"), method)
    ref = provider.place_order(request)

    for _ in range(EARLY_POLLS):
        assert_waiting_for_the_user(provider.status(ref), ref)
        time.sleep(0.2)  # room for Pebble to validate, and fail, had it been asked to
    assert_waiting_for_the_user(provider.status(ref), ref)

    for task in ref.validation:
        publish(pebble, task)
    ref = start_validation(provider, ref)
    assert len(ref.data["answered"]) == len(ref.validation) == 2
    assert_issued_for(pebble, settle(provider, ref), request)


def test_resend_approval_publishes_through_the_host(
    pebble: PebbleServer, host: RecordingHost, provider: AcmeProvider
):
    host.can_publish = False
    request = request_for(names("resend", "www"), DcvMethod.HTTP)
    ref = provider.place_order(request)
    assert_waiting_for_the_user(provider.status(ref), ref)
    host.can_publish = True

    ref = start_validation(provider, ref)

    assert len(ref.data["published"]) == len(ref.data["answered"]) == 2
    assert ref.data["published"] == ref.data["answered"]
    assert provider.resend_approval(ref) == {  # nothing answered twice: the CA refuses that
        "published": ref.data["published"],
        "answered": ref.data["answered"],
    }
    assert_issued_for(pebble, settle(provider, ref), request)


def test_renew_and_reissue_order_new_certificates(pebble: PebbleServer, provider: AcmeProvider):
    request = request_for(names("renew"), DcvMethod.HTTP)
    first = provider.place_order(request)
    original = assert_issued_for(pebble, settle(provider, first), request)

    renewal = provider.renew(request, first)
    renewed = assert_issued_for(pebble, settle(provider, renewal), request)
    new_request = request_for([request.domain], DcvMethod.HTTP)
    reissue = provider.reissue(first, new_request.csr)
    reissued = assert_issued_for(pebble, settle(provider, reissue), new_request)

    assert len({first.order_id, renewal.order_id, reissue.order_id}) == 3
    assert len({original.serial_number, renewed.serial_number, reissued.serial_number}) == 3
    assert public_key_der(renewed) == public_key_der(original) != public_key_der(reissued)


def test_cancel_deactivates_pending_authorizations(host: RecordingHost, provider: AcmeProvider):
    host.can_publish = False
    ref = provider.place_order(request_for(names("cancel", "www"), DcvMethod.DNS))

    provider.cancel(ref, "typo in the domain")

    status = provider.status(ref)
    assert status.state is OrderState.CANCELLED
    assert status.raw_status in {"deactivated", "invalid"}


def test_failed_validation_shows_the_ca_reason(pebble: PebbleServer):
    # Says it published the http-01 token but serves nothing: validation must fail.
    forgetful = RecordingHost(can_mail=False, can_publish=True, publish_txt=pebble.set_txt)
    provider = AcmeProvider(settings_for(pebble), forgetful)
    request = request_for(names("fail"), DcvMethod.HTTP)

    status = settle(provider, provider.place_order(request))

    assert (status.state, status.raw_status) == (OrderState.FAILED, "invalid")
    assert status.detail.startswith(f"{request.domain}: ")
    assert "404" in status.detail


def test_wildcard_over_http_is_rejected(provider: AcmeProvider):
    with pytest.raises(ProviderRejected, match=r"no http-01 validation for \*\."):
        provider.place_order(request_for(names("wild", "*"), DcvMethod.HTTP))


def test_name_the_ca_refuses_is_rejected_with_its_detail(provider: AcmeProvider):
    with pytest.raises(ProviderRejected, match="illegal character") as refused:
        provider.place_order(request_for(["bad_name.example"], DcvMethod.HTTP))
    assert refused.value.code == "malformed"


def test_unknown_account_is_rejected(pebble: PebbleServer, host: RecordingHost):
    settings = settings_for(
        pebble,
        account_key=key_to_pem(generate_key()),
        account_url=pebble.directory_url.replace("/dir", "/my-account/unknown"),
        account_directory=pebble.directory_url,
    )
    provider = AcmeProvider(settings, host)

    with pytest.raises(ProviderRejected) as refused:
        provider.place_order(request_for(names("stranger"), DcvMethod.HTTP))
    assert refused.value.code == "accountDoesNotExist"
    assert host.saved == []


@pytest.mark.parametrize(
    ("ca_bundle", "message"),
    [("", "not trusted"), ("/nonexistent/ca.pem", "does not exist")],
    ids=["system-trust", "missing-file"],
)
def test_untrusted_server_is_a_settings_error(
    pebble: PebbleServer, host: RecordingHost, ca_bundle: str, message: str
):
    provider = AcmeProvider(settings_for(pebble, ca_bundle=ca_bundle), host)

    with pytest.raises(ProviderError, match=message) as raised:
        provider.test_connection()
    assert type(raised.value) is ProviderError


def test_closed_port_is_unavailable(pebble: PebbleServer, host: RecordingHost):
    [port] = free_ports(1)
    settings = settings_for(pebble, directory_url=f"https://127.0.0.1:{port}/dir")
    provider = AcmeProvider(settings, host)

    with pytest.raises(ProviderUnavailable):
        provider.test_connection()
    with pytest.raises(ProviderUnavailable):
        provider.place_order(request_for(names("closed"), DcvMethod.HTTP))


# --- a CA misbehaving on cue ---------------------------------------------------------------------


def test_server_errors_are_unavailable(misbehaving_ca: MisbehavingCA):
    headers = {"Content-Type": "text/plain", "Retry-After": "3600"}
    misbehaving_ca.reply = (503, headers, b"down for maintenance")
    provider = misbehaving_provider(misbehaving_ca)

    with pytest.raises(ProviderUnavailable, match="HTTP 503") as down:
        provider.test_connection()
    assert down.value.retry_after == 3600


def test_rate_limit_is_unavailable_with_retry_after(misbehaving_ca: MisbehavingCA):
    misbehaving_ca.problem(429, "rateLimited", "too many new orders", **{"Retry-After": "120"})
    provider = misbehaving_provider(misbehaving_ca)

    with pytest.raises(ProviderUnavailable, match="too many new orders") as limited:
        provider.test_connection()
    assert limited.value.retry_after == 120


def test_problem_documents_are_rejected_with_the_ca_detail(misbehaving_ca: MisbehavingCA):
    misbehaving_ca.problem(403, "unauthorized", "this client is blocked")
    provider = misbehaving_provider(misbehaving_ca)

    with pytest.raises(ProviderRejected, match="this client is blocked") as refused:
        provider.test_connection()
    assert refused.value.code == "unauthorized"


def test_unreadable_reply_is_a_provider_error(misbehaving_ca: MisbehavingCA):
    misbehaving_ca.reply = (200, {"Content-Type": "text/html"}, b"<html>captive portal</html>")
    provider = misbehaving_provider(misbehaving_ca)

    with pytest.raises(ProviderError, match="cannot read") as raised:
        provider.test_connection()
    assert type(raised.value) is ProviderError


@pytest.mark.parametrize(
    ("eab", "blamed"),
    [({}, "eab_kid"), ({"eab_kid": "kid-1", "eab_hmac_key": "a"}, "eab_hmac_key")],
    ids=["missing", "not-base64url"],
)
def test_eab_is_checked_before_registering(
    misbehaving_ca: MisbehavingCA, eab: dict[str, str], blamed: str
):
    directory = {"newAccount": "x", "newNonce": "x", "newOrder": "x"}
    directory["meta"] = {"externalAccountRequired": True}
    misbehaving_ca.reply = (
        200,
        {"Content-Type": "application/json"},
        json.dumps(directory).encode(),
    )
    provider = misbehaving_provider(misbehaving_ca, **eab)

    assert "External Account Binding required" in provider.test_connection()
    with pytest.raises(ProviderRejected, match="EAB") as refused:
        provider.place_order(request_for(names("eab"), DcvMethod.HTTP))
    assert refused.value.field == blamed
