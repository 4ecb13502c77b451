"""Launch tokens: the signed links a panel renders on its Account Mgmt tab (contract section 1).

A token is an HS256 JWT signed with the bridge's launch key (signing.py), checked by PyJWT with
the algorithm pinned, so ``none`` and public-key algorithms are refused whatever the token's
header says. Every claim is checked for its kind before it is used: text that is printable and
fits its column (no NUL, no control character, no lone surrogate), times that are numbers, a
role and target from their lists, and the admin pages for an admin's token only. Using a token
once (its ``jti``) is store/bridge.py's business: the database refuses a second use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from panel_ssl_plugin.hookspecs import Actor

ALGORITHM = "HS256"
MAX_LIFETIME = 300  # seconds between a token's iat and its exp, at most
CLAIMS = ("sub", "name", "role", "account", "target", "iat", "exp", "jti")
ROLES = ("admin", "reseller")
TARGETS = ("order", "certs", "admin")
LIMITS = {"sub": 100, "name": 200, "account": 64, "jti": 128}  # the columns that keep them


class LaunchRefused(Exception):
    """The token opens nothing; the message is one sentence for the person who clicked."""


@dataclass(frozen=True)
class Launch:
    """What a valid launch token grants: ``actor`` may open ``target`` for ``account``."""

    actor: Actor
    account: str
    target: str
    jti: str
    expires_at: datetime


def read_launch(key: bytes, token: str, now: datetime) -> Launch:
    """The launch a token grants, or LaunchRefused saying why not. PyJWT checks ``exp`` and
    ``iat`` on its own clock; ``now`` bounds how far ahead ``exp`` may be."""
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": list(CLAIMS), "verify_sub": False},  # _launch checks it
        )
    except jwt.ExpiredSignatureError:
        raise LaunchRefused("This link has expired; open it again from your panel.") from None
    except jwt.MissingRequiredClaimError as error:
        raise LaunchRefused(f"This link lacks its {error.claim} claim.") from None
    except jwt.InvalidAlgorithmError:
        raise LaunchRefused(f"This link is not signed with {ALGORITHM}.") from None
    except jwt.InvalidSignatureError:
        raise LaunchRefused("This link is not signed by your panel.") from None
    except (jwt.InvalidTokenError, ValueError, TypeError, OverflowError, RecursionError):
        # PyJWT's own checks meet claims of any JSON kind: Infinity, huge numbers, nesting
        raise LaunchRefused("This link is not a valid launch token.") from None
    return _launch(claims, now)


def _launch(claims: dict, now: datetime) -> Launch:
    for name, limit in LIMITS.items():
        value = claims[name]
        if not (isinstance(value, str) and 0 < len(value) <= limit and value.isprintable()):
            raise LaunchRefused(f"This link's {name} claim must be printable text of 1 to "
                                f"{limit} characters.")  # fmt: skip
    if claims["role"] not in ROLES:
        raise LaunchRefused(f"This link's role must be one of {', '.join(ROLES)}.")
    if claims["target"] not in TARGETS:
        raise LaunchRefused(f"This link's target must be one of {', '.join(TARGETS)}.")
    if claims["target"] == "admin" and claims["role"] != "admin":
        raise LaunchRefused("Only an admin's link opens the admin pages; ask your panel's admin.")
    issued, expires = _seconds(claims, "iat"), _seconds(claims, "exp")
    if expires - issued > MAX_LIFETIME or expires - now.timestamp() > MAX_LIFETIME:
        raise LaunchRefused(f"This link is valid for more than {MAX_LIFETIME} seconds; "
                            "the panel must sign shorter-lived links.")  # fmt: skip
    return Launch(
        actor=Actor(claims["sub"], claims["name"], claims["role"]),
        account=claims["account"],
        target=claims["target"],
        jti=claims["jti"],
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def _seconds(claims: dict, name: str) -> float:
    """A time claim: a finite number of unix seconds (RFC 7519's NumericDate)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LaunchRefused(f"This link's {name} claim must be a time in unix seconds.")
    return value
