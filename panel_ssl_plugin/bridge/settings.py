"""The bridge's configuration, from the environment ``panel-ssl serve`` (and cron) runs in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

MIN_SECRET_LENGTH = 32
# Seconds a bridge call may take. A popup waits for the panel's answer, so it must be short;
# a panel that serves few requests at once (php -S, a small PHP-FPM pool) needs workers to
# spare for these calls while it waits for the service itself (README, "Deploying the bridge").
CALL_TIMEOUT = 5.0


class BridgeMisconfigured(ValueError):
    """The bridge's environment is incomplete or unusable; the message says what to set."""


@dataclass(frozen=True)
class BridgeSettings:
    """Where the panel answers (``url``), where webhooks go (``webhook_url``), the secret both
    sides derive their keys from, where browsers reach the service (``public_url``: links in
    mail, the host names it answers to) and how long a call may take. ``repr`` leaves the
    secret out, so no log ever shows it."""

    url: str | None
    secret: str
    webhook_url: str | None = None
    timeout: float = CALL_TIMEOUT
    public_url: str | None = None
    trusted_hosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (
            f"BridgeSettings(url={self.url!r}, webhook_url={self.webhook_url!r}, "
            f"public_url={self.public_url!r})"
        )

    def hosts(self) -> list[str]:
        """The host names requests may name (Flask's TRUSTED_HOSTS): the public URL's, and
        ``PANEL_SSL_TRUSTED_HOSTS`` (where the panel posts events to, if it is another)."""
        public = urlsplit(self.public_url).hostname if self.public_url else None
        return [host for host in (public, *self.trusted_hosts) if host]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BridgeSettings | None:
        """The settings from ``PANEL_SSL_BRIDGE_URL``, ``PANEL_SSL_BRIDGE_SECRET`` (or
        ``PANEL_SSL_BRIDGE_SECRET_FILE``), ``PANEL_SSL_WEBHOOK_URL``, ``PANEL_SSL_PUBLIC_URL``,
        ``PANEL_SSL_TRUSTED_HOSTS`` (comma-separated) and ``PANEL_SSL_BRIDGE_TIMEOUT``
        (seconds); None when no secret is set (no bridge)."""
        secret = _secret(environ)
        if not secret:
            if environ.get("PANEL_SSL_BRIDGE_URL"):
                raise BridgeMisconfigured(
                    "PANEL_SSL_BRIDGE_URL is set but no secret: set PANEL_SSL_BRIDGE_SECRET or "
                    "PANEL_SSL_BRIDGE_SECRET_FILE"
                )
            return None
        if len(secret) < MIN_SECRET_LENGTH:
            raise BridgeMisconfigured(
                f"the bridge secret must be at least {MIN_SECRET_LENGTH} characters long"
            )
        return cls(
            url=environ.get("PANEL_SSL_BRIDGE_URL") or None,
            secret=secret,
            webhook_url=environ.get("PANEL_SSL_WEBHOOK_URL") or None,
            timeout=_timeout(environ.get("PANEL_SSL_BRIDGE_TIMEOUT", "")),
            public_url=_public_url(environ.get("PANEL_SSL_PUBLIC_URL", "")),
            trusted_hosts=tuple(
                host.strip()
                for host in environ.get("PANEL_SSL_TRUSTED_HOSTS", "").split(",")
                if host.strip()
            ),
        )


def _secret(environ: Mapping[str, str]) -> str:
    secret = environ.get("PANEL_SSL_BRIDGE_SECRET", "")
    secret_file = environ.get("PANEL_SSL_BRIDGE_SECRET_FILE", "")
    if secret_file and not secret:
        try:
            secret = Path(secret_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise BridgeMisconfigured(
                f"PANEL_SSL_BRIDGE_SECRET_FILE {secret_file} cannot be read: {error.strerror}"
            ) from None
    return secret


def _timeout(text: str) -> float:
    if not text.strip():
        return CALL_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 60:
        raise BridgeMisconfigured("PANEL_SSL_BRIDGE_TIMEOUT must be seconds between 0 and 60")
    return seconds


def _public_url(text: str) -> str | None:
    """``https://ssl.panel.example`` (a path is allowed); no trailing slash."""
    if not text.strip():
        return None
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise BridgeMisconfigured(
            "PANEL_SSL_PUBLIC_URL must be the address browsers reach the service at, like "
            "https://ssl.panel.example"
        )
    return text.strip().rstrip("/")
