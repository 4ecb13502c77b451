"""HTTP for the adapters that speak to a REST or form API: one session per account, bounded calls.

Every call has a timeout. Only idempotent reads are retried (urllib3's ``Retry`` on GET), since a
retried order placement could buy a certificate twice. What a failure means depends on the call:

- a read (``creates=False``) that fails by transport, 5xx or 429 is :class:`ProviderUnavailable`:
  ask again later;
- a call that creates something (``creates=True``: an order, a renewal, a reissue) is
  ProviderUnavailable only when the request provably never reached the provider (refused
  connection, DNS or TLS failure, connect timeout) or was turned away before any work (429).
  Once a connection carried the request, a timeout, a reset or a 5xx (often a gateway's, with
  the provider behind it still working) is :class:`ProviderOutcomeUnknown`.

What the provider says in a reply is the adapter's to interpret. Request bodies are never
logged: they carry credentials.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.retry import Retry

from panel_ssl_plugin.providers.base import (
    ProviderError,
    ProviderOutcomeUnknown,
    ProviderUnavailable,
)

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read


def make_session(user_agent: str = "panel-ssl-plugin") -> requests.Session:
    """A session that retries idempotent reads on connection errors and 502/503/504.

    A read timeout is not retried (it would double the wait) and a 429 is not waited out here:
    its Retry-After goes back to the caller in ProviderUnavailable, so nothing blocks for it.
    """
    retry = Retry(
        total=2,
        connect=2,
        read=0,
        backoff_factor=0.2,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    session = requests.Session()
    session.headers["User-Agent"] = user_agent
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def retry_after(response: requests.Response) -> float | None:
    """Seconds a reply's Retry-After header asks for (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def call(
    session: requests.Session,
    method: str,
    url: str,
    *,
    provider: str,
    creates: bool = False,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs,
) -> requests.Response:
    """Send one request; raise what a failure means for the caller (see the module docstring).

    4xx replies other than 429 are returned: their body carries the provider's reason, which the
    adapter turns into ProviderRejected.
    """
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as error:
        log.info("%s %s: %s", method, url.split("?")[0], type(error).__name__)
        raise transport_error(error, provider, creates=creates) from error
    if response.status_code == 429:
        raise ProviderUnavailable(
            f"{provider} is rate limiting requests; try again later.",
            retry_after=retry_after(response),
        )
    if response.status_code >= 500:
        raise server_error(response.status_code, provider, creates=creates)
    return response


def never_sent(error: requests.RequestException) -> bool:
    """Whether the request provably never left: no connection was made (refused, DNS, connect
    timeout) or TLS failed before anything was written."""
    if isinstance(error, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def transport_error(
    error: requests.RequestException, provider: str, *, creates: bool
) -> ProviderError:
    """The plugin's error for a request that failed on the way (the one place that decides)."""
    if creates and not never_sent(error):
        if isinstance(error, requests.Timeout):
            return ProviderOutcomeUnknown(
                f"{provider} did not answer in time after the request was sent; it may have "
                "been carried out, so it is looked up before anything is sent again."
            )
        return ProviderOutcomeUnknown(
            f"The connection to {provider} broke after the request was sent; it may have been "
            "carried out, so it is looked up before anything is sent again."
        )
    if isinstance(error, requests.Timeout) and not isinstance(error, requests.ConnectTimeout):
        return ProviderUnavailable(f"{provider} did not answer in time; try again later.")
    return ProviderUnavailable(f"{provider} cannot be reached; try again later.")


def server_error(status: int, provider: str, *, creates: bool) -> ProviderError:
    """A 5xx: try later for a read; for a create call the provider (or the gateway in front
    of it) may have done the work before failing, so the outcome is unknown."""
    if creates:
        return ProviderOutcomeUnknown(
            f"{provider} answered with an internal error (HTTP {status}) after the request was "
            "sent; it may have been carried out, so it is looked up before anything is sent "
            "again."
        )
    return ProviderUnavailable(
        f"{provider} had an internal error (HTTP {status}); try again later."
    )


def json_body(response: requests.Response, provider: str, *, creates: bool = False) -> dict:
    """The reply's JSON object, or an error when the provider sent something else: after a
    create call that is an unknown outcome, since the work may have been done all the same."""
    problem = ProviderOutcomeUnknown if creates else ProviderError
    try:
        body = response.json()
    except ValueError as error:
        raise problem(f"{provider} sent a reply that is not JSON.") from error
    if not isinstance(body, dict):
        raise problem(f"{provider} sent an unexpected reply.")
    return body
