"""The ACME adapter against a real Pebble (tests/providers/pebble_server.py), no mocks.

Each test orders names of its own so Pebble's state from one test cannot satisfy another.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
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
    Placement,
    PlacementKind,
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderRef,
    ProviderRejected,
    ProviderStatus,
    ProviderUnavailable,
    ValidationTask,
)
from tests.providers.faults import Exchange, FaultProxy, Headers
from tests.providers.pebble_server import PebbleServer, _listener_certificate, free_ports
from tests.providers.recording_host import RecordingHost

NEW_ORDER, NEW_NONCE = "/order-plz", "/nonce-plz"  # Pebble's paths, which the proxy matches
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


# --- orders whose reply was lost -----------------------------------------------------------------


def lost(
    request: OrderRequest,
    *tracked: ProviderRef,
    kind: PlacementKind = PlacementKind.ORDER,
    previous: ProviderRef | None = None,
) -> Placement:
    """The order service's memory of a create call whose reply was lost."""
    return Placement(
        kind, request, datetime.now(UTC), previous, frozenset(ref.order_id for ref in tracked)
    )


def untouched(ref: ProviderRef) -> ProviderRef:
    """``ref`` as found again: nothing of it was seen, so no tasks (its data has no progress
    either when the host could not publish)."""
    assert ref.data["published"] == ref.data["answered"] == []
    return replace(ref, validation=())


def created_orders(exchanges: list[Exchange]) -> list[str]:
    """The ids of the orders Pebble created, from its replies as the proxy saw them (the
    finalize URL ends with the order's id)."""
    return [
        json.loads(exchange.body)["finalize"].rsplit("/", 1)[-1]
        for exchange in exchanges
        if (exchange.method, exchange.path, exchange.status) == ("POST", NEW_ORDER, 201)
    ]


@pytest.fixture
def proxied(
    pebble: PebbleServer, fault_proxy: Callable[..., FaultProxy], tmp_path: Path
) -> tuple[FaultProxy, dict[str, Any]]:
    """A FaultProxy in front of Pebble and the settings that reach Pebble through it. Pebble
    builds its URLs from the Host header and the scheme it was reached by, so the proxy speaks
    TLS too, with a certificate of its own."""
    ca, cert, key = _listener_certificate(tmp_path)
    origin = pebble.directory_url.removesuffix("/dir")
    proxy = fault_proxy(origin, tls=(str(cert), str(key)), upstream_verify=pebble.ca_bundle)
    return proxy, settings_for(pebble, directory_url=f"{proxy.url}/dir", ca_bundle=str(ca))


@pytest.mark.parametrize(
    ("tracked", "found"),
    [((), 3), ((3,), 0), ((0, 3), None)],
    ids=["last-listed-of-two", "passing-over-tracked-and-other-names", "all-tracked"],
)
def test_find_order_looks_through_the_account_orders(
    host: RecordingHost, provider: AcmeProvider, tracked: tuple[int, ...], found: int | None
):
    """Orders 0 and 3 are for the lost request's names, 1 and 2 for others. Pebble lists three
    orders a page, so order 3 is on the second."""
    host.can_publish = False
    request = request_for(names("lost", "www"), DcvMethod.HTTP)
    others = [request_for(names("other"), DcvMethod.HTTP) for _ in range(2)]
    refs = [provider.place_order(sent) for sent in (request, *others, request)]

    result = provider.find_order(lost(request, *(refs[index] for index in tracked)))

    assert result == (None if found is None else untouched(refs[found]))


def test_lost_renewal_is_found_and_validated_by_status(
    pebble: PebbleServer, host: RecordingHost, provider: AcmeProvider
):
    request = request_for(names("renewal"), DcvMethod.HTTP)
    original = provider.place_order(request)
    first = assert_issued_for(pebble, settle(provider, original), request)
    host.can_publish = False  # lost: nothing of the renewal was published or answered
    renewal = provider.renew(request, original)

    found = provider.find_order(
        lost(request, original, kind=PlacementKind.RENEWAL, previous=original)
    )

    assert found == untouched(renewal)
    host.can_publish = True
    renewed = assert_issued_for(pebble, settle(provider, found), request)
    assert renewed.serial_number != first.serial_number


def test_adopted_order_url_is_tracked_like_a_placed_order(
    host: RecordingHost, provider: AcmeProvider
):
    host.can_publish = False
    request = request_for(names("adopt", "www"), DcvMethod.DNS)
    placed = provider.place_order(request)

    adopted = provider.adopt_order(lost(request), f" {placed.data['order_url']}\n")

    assert adopted == untouched(placed)
    assert_waiting_for_the_user(provider.status(adopted), placed)


@pytest.mark.parametrize(
    ("pasted", "other_names", "message"),
    [
        (lambda ref: ref.order_id, False, "Paste the order's URL"),
        (lambda ref: ref.data["order_url"].replace("127.0.0.1", "localhost"), False, "not an"),
        (lambda ref: ref.data["order_url"], True, "other names"),
    ],
    ids=["bare-id", "another-host", "another-names-order"],
)
def test_adopt_refuses_what_is_not_this_order(
    host: RecordingHost, provider: AcmeProvider, pasted, other_names: bool, message: str
):
    host.can_publish = False
    request = request_for(names("adopt"), DcvMethod.HTTP)
    placed = provider.place_order(request)
    sent = request_for(names("adopt"), DcvMethod.HTTP) if other_names else request

    with pytest.raises(ProviderRejected, match=message):
        provider.adopt_order(lost(sent), pasted(placed))


def without_location(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    return status, {k: v for k, v in headers.items() if k.lower() != "location"}, body


def unreadable_body(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    return status, headers, b"<html>Order received</html>"


@pytest.mark.parametrize(
    ("kind", "method", "transform", "raised"),
    [
        ("reset_after", "POST", None, ProviderOutcomeUnknown),
        ("timeout_after", "POST", None, ProviderOutcomeUnknown),
        ("502", "POST", None, ProviderOutcomeUnknown),
        ("garbage", "POST", None, ProviderOutcomeUnknown),
        ("no_id", "POST", without_location, ProviderOutcomeUnknown),
        ("429", "POST", None, ProviderUnavailable),
        ("reset_after", "HEAD", None, ProviderUnavailable),
        ("garbage", "HEAD", None, ProviderError),
    ],
    ids=[
        "reset",
        "silence-then-close",
        "502",
        "garbage",
        "no-location",
        "429",
        "nonce-reset",
        "nonce-garbage",
    ],
)
def test_lost_order_reply_is_unknown_and_the_order_is_found(
    host: RecordingHost,
    proxied: tuple[FaultProxy, dict[str, Any]],
    kind: str,
    method: str,
    transform,
    raised: type[ProviderError],
):
    """Only a failure of the newOrder POST itself leaves the outcome unknown, and then exactly
    the order Pebble created is found; a 429 or a failed nonce fetch placed nothing (a nonce
    reply that cannot be read is the plain error it always was)."""
    proxy, settings = proxied
    host.can_publish = False
    first = AcmeProvider(settings, host).place_order(request_for(names("first"), DcvMethod.HTTP))
    provider = AcmeProvider(host.saved[-1], host)  # no nonce in hand: the POST follows a HEAD
    request = request_for(names("lost"), DcvMethod.HTTP)
    seen = len(proxy.forwarded)
    path = NEW_ORDER if method == "POST" else NEW_NONCE
    proxy.fail_next(kind, method, path, hold=0.3, transform=transform)

    with pytest.raises(ProviderError) as failure:
        provider.place_order(request)

    assert type(failure.value) is raised
    assert proxy.fired == [kind]
    created = created_orders(proxy.forwarded[seen:])
    found = provider.find_order(lost(request, first))
    if raised is ProviderOutcomeUnknown:
        assert [found.order_id] == created
        assert found.data["csr"] == request.csr
    else:
        assert (created, found) == ([], None)


@pytest.mark.parametrize(
    ("kind", "path", "transform"),
    [("no_id", NEW_ORDER, unreadable_body), ("reset_after", "/authZ/", None)],
    ids=["unreadable-order-body", "authorization-fetch-reset"],
)
def test_order_the_ca_named_is_kept_and_status_carries_on(
    host: RecordingHost, proxied: tuple[FaultProxy, dict[str, Any]], kind: str, path: str, transform
):
    """Once the CA said where the order is, nothing may lose it: what failed after is left to
    status(), which publishes and answers like for any pending order."""
    proxy, settings = proxied
    provider = AcmeProvider(settings, host)
    request = request_for(names("kept"), DcvMethod.HTTP)
    proxy.fail_next(kind, "POST", path, transform=transform)

    ref = provider.place_order(request)

    assert proxy.fired == [kind]
    assert created_orders(proxy.forwarded) == [ref.order_id]
    assert ref == untouched(ref)
    status = provider.status(ref)
    assert status.state is OrderState.PENDING
    assert len(status.data["answered"]) == len(status.validation) == 1
