"""The service's own routes: launch links, the panel's events, the webhook admin page.

``/ssl/launch`` turns a launch token into a session cookie and sends the browser on to the
popup; ``/ssl/bridge/events/<name>`` runs a host event from a signed POST; the admin page lists
webhooks the panel has not taken yet. Every request first finds its launch session (hooks.py
reads it from ``flask.g``). A panel that does not answer, or a page opened without a session,
gets a page that says so in words, never a 500.
"""

from __future__ import annotations

import json
import time

import flask
import pluggy
from werkzeug.wrappers import Response

from panel_ssl_plugin import events
from panel_ssl_plugin.bridge.client import BridgeError
from panel_ssl_plugin.bridge.hooks import SESSION_KEY
from panel_ssl_plugin.bridge.signing import BadSignature, verify
from panel_ssl_plugin.bridge.tokens import LaunchRefused, read_launch
from panel_ssl_plugin.store import Outbox, utcnow
from panel_ssl_plugin.store.bridge import SESSION_LIFETIME, BridgeRecords
from panel_ssl_plugin.web import ADMIN_LAYOUT, LAYOUT, URL_PREFIX, require
from panel_ssl_plugin.web.headers import add_security_headers

COOKIE = "panel_ssl_session"
MESSAGE_PAGE = "panel_ssl/bridge_message.html"
TARGETS = {"order": "panel_ssl.order", "certs": "panel_ssl.certs"}
EVENT_STATUS = {events.DONE: 200, events.REFUSED: 409, events.BAD_INPUT: 400}
NO_SESSION = (
    "This page opens from your panel: use the Order SSL Cert or List SSL Certs link on the "
    "client's Account Mgmt tab."
)


def message(text: str, status: int) -> tuple[str, int]:
    """A plain page saying ``text``, in the plugin's layout."""
    return flask.render_template(MESSAGE_PAGE, text=text, panel_ssl_layout=LAYOUT), status


def create_bridge_blueprint(
    pm: pluggy.PluginManager, secret: str, records: BridgeRecords, outbox: Outbox
) -> flask.Blueprint:
    """The ``panel_ssl_bridge`` blueprint of one service."""
    blueprint = flask.Blueprint("panel_ssl_bridge", __name__, url_prefix=URL_PREFIX)

    @blueprint.before_app_request
    def load_session() -> None:
        """The request's launch session: one query, none for a style sheet or script."""
        cookie = flask.request.cookies.get(COOKIE)
        if (flask.request.endpoint or "").endswith(".static"):
            cookie = None
        setattr(flask.g, SESSION_KEY, records.session(cookie, utcnow()) if cookie else None)

    @blueprint.get("/launch")
    def launch() -> Response | tuple[str, int]:
        try:
            grant = read_launch(secret, flask.request.args.get("token", ""), utcnow())
        except LaunchRefused as refused:
            return message(str(refused), 401)
        cookie = records.launch(grant, flask.request.cookies.get(COOKIE), utcnow())
        if cookie is None:
            return message("This link was used already; open it again from your panel.", 401)
        if grant.target == "admin":
            target = flask.url_for("panel_ssl.admin_providers")
        else:
            target = flask.url_for(TARGETS[grant.target], account_id=grant.account)
        response = flask.redirect(target)
        response.set_cookie(
            COOKIE,
            cookie,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            httponly=True,
            secure=flask.request.is_secure,
            samesite="Lax",
        )
        return response

    @blueprint.post("/bridge/events/<name>")
    def event(name: str) -> tuple[dict, int]:
        if name not in events.EVENTS:
            return {"ok": False, "error": f"There is no event {name}."}, 404
        body = flask.request.get_data()
        try:
            verify(secret, flask.request.headers, body, int(time.time()))
        except BadSignature as refused:
            return {"ok": False, "error": str(refused)}, 401
        try:
            payload = json.loads(body or b"{}")
        except ValueError as error:
            code, reply = events.failure(events.BAD_INPUT, f"bad input: {error}")
        else:
            code, reply = events.handle(name, pm, payload)
        return reply, EVENT_STATUS[code]

    @blueprint.get("/admin/webhooks")
    def admin_webhooks() -> str:
        require("ssl.admin")
        waiting, total = outbox.undelivered()
        return flask.render_template(
            "panel_ssl/admin/webhooks.html",
            webhooks=waiting,
            total=total,
            panel_ssl_layout=ADMIN_LAYOUT,
        )

    @blueprint.app_errorhandler(BridgeError)
    def panel_down(error: BridgeError) -> tuple[str, int]:
        return message(str(error), 502)

    @blueprint.app_errorhandler(401)
    def no_session(error: Exception) -> tuple[str, int]:
        return message(NO_SESSION, 401)

    blueprint.after_request(add_security_headers)
    return blueprint
