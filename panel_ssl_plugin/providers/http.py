"""HTTP for the adapters that speak to a REST or form API: one session per account, bounded calls.

Every call has a timeout. Only idempotent reads are retried (urllib3's ``Retry`` on GET), since a
retried order placement could buy a certificate twice. Transport failures, 5xx and 429 become
:class:`ProviderUnavailable`; what the provider says in a reply is the adapter's to interpret.
Request bodies are never logged: they carry credentials.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from panel_ssl_plugin.providers.base import ProviderError, ProviderUnavailable

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
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    **kwargs,
) -> requests.Response:
    """Send one request; raise ProviderUnavailable for what a later retry may cure.

    4xx replies other than 429 are returned: their body carries the provider's reason, which the
    adapter turns into ProviderRejected.
    """
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.Timeout as error:
        raise ProviderUnavailable(f"{provider} did not answer in time; try again later.") from error
    except requests.RequestException as error:
        log.info("%s %s: %s", method, url.split("?")[0], type(error).__name__)
        raise ProviderUnavailable(f"{provider} cannot be reached; try again later.") from error
    if response.status_code == 429:
        raise ProviderUnavailable(
            f"{provider} is rate limiting requests; try again later.",
            retry_after=retry_after(response),
        )
    if response.status_code >= 500:
        raise ProviderUnavailable(
            f"{provider} had an internal error (HTTP {response.status_code}); try again later."
        )
    return response


def json_body(response: requests.Response, provider: str) -> dict:
    """The reply's JSON object, or ProviderError when the provider sent something else."""
    try:
        body = response.json()
    except ValueError as error:
        raise ProviderError(f"{provider} sent a reply that is not JSON.") from error
    if not isinstance(body, dict):
        raise ProviderError(f"{provider} sent an unexpected reply.")
    return body
