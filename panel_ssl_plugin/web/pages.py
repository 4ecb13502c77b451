"""What every certificate page does the same way: find the order under the host's permission,
and go back where the user came from, with a message.

Each view looks the order up first and then asks the host's permission for that order's
account, so a reseller never reaches another reseller's certificate.
"""

from __future__ import annotations

from urllib.parse import unquote

import flask
from werkzeug.wrappers import Response

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.orders import OrderNotFound
from panel_ssl_plugin.store import OrderRecord
from panel_ssl_plugin.web import current_runtime, require

VIEW = "ssl.view"


def order_for(order_id: int, action: str) -> tuple[OrderRecord, Actor]:
    """The order and the actor, once the host allows ``action`` on the order's account."""
    try:
        order = current_runtime().orders.get(order_id)
    except OrderNotFound:
        flask.abort(404)
    return order, require(action, order.account_id)


def here() -> str:
    """This page's path and query, for the ``next`` of the forms it shows."""
    return flask.request.full_path.rstrip("?")


def back(default: str) -> str:
    """``next`` when it is a path on this site, else ``default``: no open redirect."""
    return safe_next(flask.request.args.get("next", "")) or default


def safe_next(target: str) -> str | None:
    r"""``target`` when a browser can only read it as a path on this site, else None.

    Read as a browser's URL parser (WHATWG) reads it, not by prefix alone: it drops tabs and
    line breaks anywhere and control characters and spaces at the ends, takes a backslash for
    a slash, and reads ``//host`` (``////host`` too) as another host. So ``/\t/evil`` and
    ``/\evil`` lead away as ``//evil`` does. A target is kept when it starts with exactly one
    slash (so it has no scheme and no host) and holds no whitespace, no character that does not
    print and no backslash: what the parser would strip or turn is refused, never guessed at.
    The same holds once it is percent-decoded (``/%2F/evil`` is harmless to a browser, not to
    every proxy that decodes before it redirects). Every redirect to a ``next`` comes here, the
    minipanel's login included.
    """
    return target if _on_this_site(target) and _on_this_site(unquote(target)) else None


def _on_this_site(target: str) -> bool:
    if any(char == "\\" or char.isspace() or not char.isprintable() for char in target):
        return False
    return target.startswith("/") and not target.startswith("//")


def details_url(order: OrderRecord, tab: str = "status") -> str:
    return flask.url_for(".cert", order_id=order.id, tab=tab)


def list_url(order: OrderRecord) -> str:
    return flask.url_for(".certs", account_id=order.account_id)


def flash_back(message: str, category: str, default: str) -> Response:
    flask.flash(message, category)
    return flask.redirect(back(default))
