"""Links that leave the panel (in mail): the host's public address and the plugin's path.

During a request Flask knows where the host mounted the plugin, so the path is ``url_for``'s;
outside one (a cron process has no app) the plugin's own prefix ``/ssl`` is assumed. The origin is
the host's ``host_public_url`` (``PANEL_SSL_PUBLIC_URL`` for cron and the bridge), and nothing
else: never the request's Host header, which whoever sends the request chooses (a link to
``attacker.example`` in an approval mail hands its token over). Without one, no link is made.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import flask
import pluggy

URL_PREFIX = "/ssl"  # where the blueprint is mounted unless the host says otherwise


class NoPublicAddress(RuntimeError):
    """The host gave no public address, so a link that leaves the panel cannot be made."""

    def __init__(self) -> None:
        super().__init__(
            "The panel has no public address for links in mail: the host implements "
            "host_public_url, or sets PANEL_SSL_PUBLIC_URL for cron and the bridge."
        )


def public_link(pm: pluggy.PluginManager, endpoint: str, path: str, **values: Any) -> str:
    """The absolute URL of ``panel_ssl.<endpoint>`` with ``values``; ``path`` is the same page
    below the plugin's default prefix, for when no request says where it is mounted.
    NoPublicAddress when the host has none."""
    public = (pm.hook.host_public_url() or "").rstrip("/")
    if not public:
        raise NoPublicAddress()
    if not (flask.has_request_context() and "panel_ssl" in flask.current_app.blueprints):
        return f"{public}{URL_PREFIX}{path}"
    route = flask.url_for(f"panel_ssl.{endpoint}", **values)
    origin = urlsplit(public)
    return f"{origin.scheme}://{origin.netloc}{route}"
