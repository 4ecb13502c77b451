"""Links that leave the panel (in mail): the host's public address and the plugin's path.

During a request Flask knows where the host mounted the plugin, so the path is ``url_for``'s;
outside one (a cron process has no app) the plugin's own prefix ``/ssl`` is assumed. The origin is
the host's ``host_public_url``, else the request's own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import flask
import pluggy

URL_PREFIX = "/ssl"  # where the blueprint is mounted unless the host says otherwise


def public_link(pm: pluggy.PluginManager, endpoint: str, path: str, **values: Any) -> str:
    """The absolute URL of ``panel_ssl.<endpoint>`` with ``values``; ``path`` is the same page
    below the plugin's default prefix, for when no request says where it is mounted."""
    public = pm.hook.host_public_url() or ""
    if not (flask.has_request_context() and "panel_ssl" in flask.current_app.blueprints):
        return f"{public}{URL_PREFIX}{path}"
    route = flask.url_for(f"panel_ssl.{endpoint}", **values)
    origin = urlsplit(public) if public else urlsplit(flask.request.host_url)
    return f"{origin.scheme}://{origin.netloc}{route}"
