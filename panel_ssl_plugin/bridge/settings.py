"""The bridge's configuration, from the environment ``panel-ssl serve`` runs in."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

MIN_SECRET_LENGTH = 32
CALL_TIMEOUT = 5.0  # seconds; a popup waits for the panel's answer, so it must be short


class BridgeMisconfigured(ValueError):
    """The bridge's environment is incomplete or unusable; the message says what to set."""


@dataclass(frozen=True)
class BridgeSettings:
    """Where the panel answers (``url``), where webhooks go (``webhook_url``), and the secret
    both sides sign with. ``repr`` leaves the secret out, so no log ever shows it."""

    url: str | None
    secret: str
    webhook_url: str | None = None
    timeout: float = CALL_TIMEOUT

    def __repr__(self) -> str:
        return f"BridgeSettings(url={self.url!r}, webhook_url={self.webhook_url!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> BridgeSettings | None:
        """The settings from ``PANEL_SSL_BRIDGE_URL``, ``PANEL_SSL_BRIDGE_SECRET`` (or
        ``PANEL_SSL_BRIDGE_SECRET_FILE``) and ``PANEL_SSL_WEBHOOK_URL``; None when no secret is
        set (no bridge mode)."""
        secret = environ.get("PANEL_SSL_BRIDGE_SECRET", "")
        secret_file = environ.get("PANEL_SSL_BRIDGE_SECRET_FILE", "")
        if secret_file and not secret:
            try:
                secret = Path(secret_file).read_text(encoding="utf-8").strip()
            except OSError as error:
                raise BridgeMisconfigured(
                    f"PANEL_SSL_BRIDGE_SECRET_FILE {secret_file} cannot be read: {error.strerror}"
                ) from None
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
        )
