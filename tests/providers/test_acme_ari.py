"""ACME renewal information (RFC 9773), profiles and revocation, against a real Pebble: Debian's
Pebble 2.4 has neither ARI nor profiles, so tests/providers/ari_responder.py adds them in front
of it and counts what the adapter asks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from panel_ssl_plugin.keys import (
    Subject,
    ari_cert_id,
    csr_names,
    generate_key,
    load_csr,
    make_csr,
)
from panel_ssl_plugin.providers.acme import AcmeProvider
from panel_ssl_plugin.providers.base import (
    DcvMethod,
    OrderState,
    ProviderError,
    ProviderRef,
    ProviderRejected,
    ProviderUnavailable,
    RenewalWindow,
    RevocationReason,
)
from tests.providers.ari_responder import PROFILES, AriResponder
from tests.providers.clock import Clock
from tests.providers.pebble_server import PebbleServer
from tests.providers.recording_host import RecordingHost
from tests.providers.test_acme import names, request_for, settings_for, settle


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def host(pebble: PebbleServer, clock: Clock) -> RecordingHost:
    return RecordingHost(
        can_mail=False,
        can_publish=True,
        publish_http=pebble.http01.serve,
        publish_txt=pebble.set_txt,
        clock=clock,
    )


def through(responder: AriResponder, pebble: PebbleServer, host: RecordingHost, **settings):
    """An adapter whose directory is the responder's."""
    return AcmeProvider(
        settings_for(pebble, directory_url=responder.directory_url, **settings), host
    )


@pytest.fixture
def provider(ari_responder, pebble, host) -> AcmeProvider:
    return through(ari_responder, pebble, host)


def issued(provider: AcmeProvider, label: str) -> tuple[ProviderRef, str]:
    """A certificate from Pebble: the order's ref and the certificate's PEM."""
    ref = provider.place_order(request_for(names(label), DcvMethod.HTTP))
    status = settle(provider, ref)
    assert status.state is OrderState.ISSUED, status.detail
    return ref, status.certificate


def new_csr(ref: ProviderRef) -> str:
    """A CSR with a new key for the names of the order's own CSR."""
    domains = csr_names(load_csr(ref.data["csr"]))
    return make_csr(generate_key(), Subject(domains[0]), domains[1:])


# --- renewal information -------------------------------------------------------------------------


def test_a_window_the_ca_suggests_is_reported_as_it_gave_it(provider, ari_responder, clock):
    _, certificate = issued(provider, "window")
    cert_id = ari_cert_id(certificate)
    start, end = clock() + timedelta(days=50), clock() + timedelta(days=52)
    ari_responder.suggest(cert_id, start, end, retry_after=3600, explanation_url="https://ca/why")

    window = provider.renewal_window(certificate)

    assert window == RenewalWindow(start, end, clock() + timedelta(hours=1), "https://ca/why")
    assert ari_responder.asked == {cert_id: 1}


def test_retry_after_is_honoured_no_second_get_before_it(provider, ari_responder, clock):
    _, certificate = issued(provider, "retry")
    cert_id = ari_cert_id(certificate)
    start = clock() + timedelta(days=50)
    ari_responder.suggest(cert_id, start, start + timedelta(days=2), retry_after=3600)

    first = provider.renewal_window(certificate)
    moved = clock() - timedelta(days=1)  # the CA moves the window (e.g. it will revoke)
    ari_responder.suggest(cert_id, moved, moved + timedelta(hours=1), retry_after=3600)
    clock.advance(minutes=59)
    again = provider.renewal_window(certificate)
    assert again == first and ari_responder.asked[cert_id] == 1

    clock.advance(minutes=1)
    later = provider.renewal_window(certificate)
    assert later.start == moved and ari_responder.asked[cert_id] == 2


@pytest.mark.parametrize(("seconds", "kept"), [(5, 60), (None, 6 * 3600), (7 * 86400, 86400)])
def test_retry_after_is_kept_between_a_minute_and_a_day(
    provider, ari_responder, clock, seconds, kept
):
    _, certificate = issued(provider, "bounds")
    start = clock() + timedelta(days=50)
    ari_responder.suggest(
        ari_cert_id(certificate), start, start + timedelta(days=1), retry_after=seconds
    )
    assert provider.renewal_window(certificate).retry_after == clock() + timedelta(seconds=kept)


def test_a_certificate_the_ca_does_not_know_has_no_window(provider, ari_responder):
    _, certificate = issued(provider, "unknown")
    assert provider.renewal_window(certificate) is None
    assert provider.renewal_window(certificate) is None  # the 404 is kept for six hours too
    assert ari_responder.asked == {ari_cert_id(certificate): 1}


def test_a_window_that_ends_before_it_starts_is_no_window(provider, ari_responder, clock):
    _, certificate = issued(provider, "inverted")
    start = clock() + timedelta(days=50)
    ari_responder.suggest(ari_cert_id(certificate), start, start - timedelta(hours=1))
    assert provider.renewal_window(certificate) is None


def test_a_ca_without_renewal_info_is_never_asked(provider, ari_responder):
    ari_responder.offer_renewal_info = False
    _, certificate = issued(provider, "noari")
    assert provider.renewal_window(certificate) is None
    assert ari_responder.asked == {}


def test_an_expired_certificate_is_not_asked_about(provider, ari_responder, clock):
    _, certificate = issued(provider, "expired")
    clock.advance(days=5 * 366)  # Pebble's certificates last five years
    assert provider.renewal_window(certificate) is None
    assert ari_responder.asked == {}


def test_a_ca_in_trouble_is_asked_again_later(provider, ari_responder, clock):
    _, certificate = issued(provider, "trouble")
    start = clock() + timedelta(days=50)
    ari_responder.suggest(
        ari_cert_id(certificate), start, start + timedelta(days=1), retry_after=120, status=503
    )
    with pytest.raises(ProviderUnavailable) as caught:
        provider.renewal_window(certificate)
    assert caught.value.retry_after == 120


# --- replacements and profiles -------------------------------------------------------------------


def test_a_replacement_is_a_new_order_carrying_replaces_and_the_profile(
    ari_responder, pebble, host
):
    provider = through(ari_responder, pebble, host, profile="shortlived")
    ref, certificate = issued(provider, "replace")

    replacement = provider.reissue(ref, new_csr(ref), replaces=ari_cert_id(certificate))

    first, second = ari_responder.new_orders
    assert first["profile"] == "shortlived" and "replaces" not in first
    assert (second["profile"], second["replaces"]) == ("shortlived", ari_cert_id(certificate))
    assert replacement.order_id != ref.order_id
    status = settle(provider, replacement)
    assert status.state is OrderState.ISSUED and status.certificate != certificate
    assert (status.subscription_starts, status.subscription_ends) == (None, None)


def test_replaces_is_not_sent_to_a_ca_without_renewal_info(provider, ari_responder):
    ari_responder.offer_renewal_info = False
    ref, certificate = issued(provider, "noreplaces")
    provider.reissue(ref, new_csr(ref), replaces=ari_cert_id(certificate))
    assert all("replaces" not in order for order in ari_responder.new_orders)


def test_profiles_are_the_directorys(provider, pebble, host):
    assert provider.profiles() == PROFILES
    assert AcmeProvider(settings_for(pebble), host).profiles() == {}  # plain Pebble 2.4


def test_a_profile_the_ca_does_not_offer_is_refused_before_anything_is_ordered(
    ari_responder, pebble, host
):
    provider = through(ari_responder, pebble, host, profile="tlsserver")
    with pytest.raises(ProviderRejected, match="classic, shortlived") as caught:
        provider.place_order(request_for(names("noprofile"), DcvMethod.HTTP))
    assert caught.value.field == "profile"
    assert ari_responder.new_orders == []


# --- revocation ----------------------------------------------------------------------------------


def test_revoke_cert_and_the_order_reports_revoked(provider):
    ref, certificate = issued(provider, "revoke")

    changes = provider.revoke(ref, certificate, RevocationReason.KEY_COMPROMISE)

    revoked = provider.status(replace(ref, data={**ref.data, **changes}))
    assert (revoked.state, revoked.raw_status) == (OrderState.REVOKED, "revoked")
    assert "reason 1" in revoked.detail
    with pytest.raises(ProviderError):  # Pebble knows it is revoked
        provider.revoke(ref, certificate, RevocationReason.KEY_COMPROMISE)
