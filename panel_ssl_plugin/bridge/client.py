"""Calls from the plugin to the panel: one signed JSON POST per host hook (contract section 2).

A popup waits while the panel answers, so every call has a short timeout and every failure is
a BridgeError whose message says, in words a reseller can pass on, what went wrong: never where
the panel answers (an internal address is for the log, which has it).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests

from panel_ssl_plugin.bridge.signing import signed_headers

log = logging.getLogger(__name__)

# The host hooks a panel answers over the bridge: the method is the hook's name without
# ``host_``, its params the hookspec's arguments (the table in docs/bridge/index.md is tested
# against both).
METHODS = (
    "account_profile",
    "account_contacts",
    "publish_http_challenge",
    "publish_http_file",
    "unpublish_http_file",
    "publish_dns_record",
    "send_mail",
    "reseller_email",
)


class BridgeError(Exception):
    """The panel did not answer a call usefully; the message is one sentence for a person."""


class BridgeClient:
    """Calls to the panel at ``url``, signed with the bridge's ``calls`` key."""

    def __init__(self, url: str, key: bytes, timeout: float, session: requests.Session):
        self.url = url
        self._key = key
        self.timeout = timeout
        self.session = session

    def call(self, method: str, params: dict[str, Any]) -> Any:
        """The panel's ``result`` for ``method``, or BridgeError."""
        body = json.dumps({"method": method, "params": params}).encode()
        headers = {
            "Content-Type": "application/json",
            **signed_headers(self._key, int(time.time()), body),
        }
        try:
            response = self.session.post(
                self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.Timeout:
            log.warning("bridge call %s to %s timed out after %g s", method, self.url, self.timeout)
            raise BridgeError(
                f"Your panel did not answer {method} within {self.timeout:g} seconds; "
                "please try again in a moment."
            ) from None
        except requests.RequestException as error:
            log.warning("bridge call %s to %s failed: %s", method, self.url, error)
            raise BridgeError(
                "Your panel could not be reached; please try again in a moment."
            ) from None
        return _result(method, response)


def _result(method: str, response: requests.Response) -> Any:
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise BridgeError(
            f"Your panel's answer to {method} was not the JSON object expected "
            f"(HTTP {response.status_code})."
        )
    if response.status_code != 200 or "error" in answer:
        error = str(answer.get("error") or f"HTTP {response.status_code}")
        raise BridgeError(f"Your panel refused {method}: {error}")
    if "result" not in answer:
        raise BridgeError(f"Your panel's answer to {method} has no result.")
    return answer["result"]
