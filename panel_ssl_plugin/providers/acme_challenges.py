"""What ACME validation asks for, in the plugin's words: the challenge each method answers, the
instructions a user or the host follows to meet it, and which challenges were published and
answered (kept in an order's data, since the CA checks a challenge once). Used by the ACME
adapter (``acme.py``); no network here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import josepy as jose
from acme import challenges, client, messages

from panel_ssl_plugin.providers.base import DcvMethod, ProviderRejected, ValidationTask

# The challenge each validation method answers; ACME has no e-mail validation.
CHALLENGE_TYPES: dict[DcvMethod, type[challenges.KeyAuthorizationChallenge]] = {
    DcvMethod.HTTP: challenges.HTTP01,
    DcvMethod.DNS: challenges.DNS01,
}


@dataclass
class Progress:
    """Which challenges the host published and which the CA was asked to check (answering
    twice is refused), as kept in ``ProviderRef.data``."""

    published: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Progress:
        return cls(set(data["published"]), set(data["answered"]))

    def as_data(self) -> dict[str, list[str]]:
        return {"published": sorted(self.published), "answered": sorted(self.answered)}


def outstanding(
    acme: client.ClientV2, authorizations: list[messages.AuthorizationResource], method: DcvMethod
) -> list[tuple[messages.ChallengeBody, ValidationTask]]:
    """The challenge to meet for each authorization still pending, with its instructions."""
    pending = [a for a in authorizations if a.body.status == messages.STATUS_PENDING]
    return [
        (challb, instructions(acme.net.key, authz, challb))
        for authz in pending
        for challb in [challenge(authz, method)]
    ]


def waiting_for(tasks: list[ValidationTask]) -> str:
    """What a pending order waits for: the CA's check of answered challenges, the user's
    records (and their go-ahead) for the rest."""
    checking = ", ".join(dict.fromkeys(t.domain for t in tasks if t.status == "processing"))
    waiting = ", ".join(dict.fromkeys(t.domain for t in tasks if t.status != "processing"))
    parts = []
    if checking:
        parts.append(f"Waiting for the CA to validate {checking}.")
    if waiting:
        parts.append(f"Publish the records for {waiting}, then start validation.")
    return " ".join(parts)


class MethodNotOffered(ProviderRejected):
    """The CA offers no challenge of the chosen method for a name: the order can never be
    validated that way."""


def challenge(authz: messages.AuthorizationResource, method: DcvMethod) -> messages.ChallengeBody:
    for challb in authz.body.challenges:
        if isinstance(challb.chall, CHALLENGE_TYPES[method]):
            return challb
    raise MethodNotOffered(
        f"The CA offers no {CHALLENGE_TYPES[method].typ} validation for {shown_name(authz)}; "
        "choose another validation method (wildcards need DNS).",
        field="dcv_method",
    )


def instructions(
    account_key: jose.JWK, authz: messages.AuthorizationResource, challb: messages.ChallengeBody
) -> ValidationTask:
    """What must be published, in the exact form the CA will look for it. A wildcard's task
    is named ``*.domain`` so the user can tell its TXT value from the bare domain's, which goes
    to the same record name."""
    name = authz.body.identifier.value
    chall = challb.chall
    value = chall.validation(account_key)
    if isinstance(chall, challenges.HTTP01):
        return ValidationTask(shown_name(authz), DcvMethod.HTTP, chall.uri(name), value)
    record = chall.validation_domain_name(name)
    return ValidationTask(shown_name(authz), DcvMethod.DNS, record, value, "TXT")


def shown_name(authz: messages.AuthorizationResource) -> str:
    """The name as ordered: ACME strips the ``*.`` of a wildcard into a flag."""
    name = authz.body.identifier.value
    return f"*.{name}" if authz.body.wildcard else name
