"""What ACME gained after RFC 8555 that the ACME adapter uses: the CA's own renewal timing (ACME
Renewal Information, RFC 9773) and certificate profiles. No Flask, no SQL, no state but a cache.

Renewal information. A CA that offers it names a ``renewalInfo`` URL in its directory; a plain,
unauthenticated ``GET <renewalInfo>/<certID>`` (``keys.ari_cert_id``) answers
``{"suggestedWindow": {"start", "end"}, "explanationURL"?}`` with a ``Retry-After``. Read as
RFC 9773 section 4 says:

- A window whose end is not after its start is no answer (section 4.2): ``None``, as is a 404
  (the CA does not know the certificate) or a CA without ``renewalInfo`` (no request at all).
- Retry-After says when to ask again, as both least and most (section 4.3); values under a
  minute count as a minute and over a day as a day, and without one the next question is in six
  hours. Until then :class:`WindowCache` answers from memory, so the CA sees no second GET
  before it asked for one, however often the order service asks.
- A certificate that has expired is not asked about (section 4.3): ``None``.
- A 429 or 5xx is "ask again later" (``ProviderUnavailable`` with the Retry-After given).

The window is reported as the CA gave it; choosing the random moment inside it, or "at once"
for a window already past, is the order service's (it owns the clock and the schedule).

``replaces`` (section 5) goes on the new order of a replacement, and only to a CA that offers
``renewalInfo``: one that does not may not know the field. Profiles: a directory's
``meta.profiles`` maps names to descriptions; ``profile`` goes on every new order when the
account's settings name one, and a name the CA does not offer is refused before anything is
sent. The ``acme`` library's ``NewOrder`` carries ``profile`` but not ``replaces``, hence
:class:`NewOrder`.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import josepy as jose
import requests
from acme import messages

from panel_ssl_plugin.providers.base import (
    ProviderError,
    ProviderRejected,
    ProviderUnavailable,
    RenewalWindow,
)
from panel_ssl_plugin.providers.http import retry_after, server_error, transport_error

DEFAULT_RECHECK = timedelta(hours=6)
SHORTEST_RECHECK = timedelta(minutes=1)
LONGEST_RECHECK = timedelta(days=1)


class NewOrder(messages.NewOrder):
    """RFC 8555's newOrder with RFC 9773's ``replaces`` (the library has ``profile``)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


def renewal_info_url(directory: messages.Directory) -> str | None:
    """Where the CA serves renewal information; ``None`` when it does not."""
    try:
        return str(directory["renewalInfo"]).rstrip("/")
    except KeyError:
        return None


def offered_profiles(directory: messages.Directory) -> dict[str, str]:
    """The directory's ``meta.profiles``: name -> description, empty when it offers none."""
    return dict(directory.meta.profiles or {})


def checked_profile(directory: messages.Directory, profile: str, ca: str) -> str | None:
    """The profile to put on a new order (``None``: the CA's default), refused when the CA does
    not offer it: an order the CA would refuse is better never sent."""
    if not profile:
        return None
    offered = offered_profiles(directory)
    if profile not in offered:
        names = ", ".join(sorted(offered)) or "none"
        raise ProviderRejected(
            f"{ca} offers no certificate profile {profile!r} (it offers: {names}); choose one "
            "of them or leave the profile empty in the ACME settings.",
            field="profile",
        )
    return profile


def fetch_window(
    session: requests.Session,
    url: str,
    *,
    now: datetime,
    ca: str,
    **request: object,
) -> tuple[RenewalWindow | None, datetime]:
    """GET one certificate's renewal information: the window (``None`` when the CA gives
    none) and when to ask again. ``request`` goes to ``session.get`` (timeout, verify)."""
    try:
        response = session.get(url, **request)
    except requests.RequestException as error:
        raise transport_error(error, ca, creates=False) from error
    asked = retry_after(response)
    if response.status_code == 429 or response.status_code >= 500:
        unavailable = server_error(response.status_code, ca, creates=False)
        raise ProviderUnavailable(str(unavailable), retry_after=asked)
    recheck = now + _recheck_in(asked)
    if response.status_code == 404:
        return None, recheck
    if response.status_code != 200:
        raise ProviderError(f"{ca} answered renewal information with HTTP {response.status_code}.")
    return _window(response, recheck, ca), recheck


def _recheck_in(seconds: float | None) -> timedelta:
    if seconds is None:
        return DEFAULT_RECHECK
    return min(LONGEST_RECHECK, max(SHORTEST_RECHECK, timedelta(seconds=seconds)))


def _window(response: requests.Response, recheck: datetime, ca: str) -> RenewalWindow | None:
    try:
        body = response.json()
        suggested = messages.RenewalInfo.from_json(body).suggested_window
    except (ValueError, jose.DeserializationError) as error:
        raise ProviderError(f"{ca} sent renewal information this plugin cannot read.") from error
    if suggested.end <= suggested.start:
        return None  # RFC 9773 section 4.2: as if no answer came
    explanation = body.get("explanationURL") if isinstance(body, dict) else None
    return RenewalWindow(
        start=suggested.start,
        end=suggested.end,
        retry_after=recheck,
        explanation_url=explanation if isinstance(explanation, str) else "",
    )


class WindowCache:
    """What the CA said about each certificate, until it asked to be asked again."""

    def __init__(self) -> None:
        self._answers: dict[str, tuple[RenewalWindow | None, datetime]] = {}
        self._lock = threading.Lock()

    def get(self, cert_id: str, now: datetime) -> tuple[bool, RenewalWindow | None]:
        """(known, window): known while ``now`` is before the CA's Retry-After."""
        with self._lock:
            answer = self._answers.get(cert_id)
        if answer is None or now >= answer[1]:
            return False, None
        return True, answer[0]

    def put(self, cert_id: str, window: RenewalWindow | None, recheck: datetime) -> None:
        with self._lock:
            self._answers[cert_id] = (window, recheck)
