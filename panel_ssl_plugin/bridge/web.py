"""The service's own routes: launch links, the panel's events, the webhook admin page.

``/ssl/launch`` turns a launch token into a session cookie and sends the browser on to the
popup; a browser already in another user's session is asked first (a link someone else signed
must not swap the session under you). ``/ssl/bridge/events/<name>`` runs a host event from a
signed POST: its headers are checked before the body is read, the body is 64 KiB at most and
verified before it is parsed, and its ``id`` is used once. Every request first finds its launch
session (hooks.py reads it from ``flask.g``). Whatever goes wrong gets words, never a 500: a
panel that does not answer, a page opened without a session or beyond it, input that does not
decode (``BadInput``, one handler).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from datetime import UTC, datetime

import flask
import pluggy
import sqlalchemy as sa
from flask_wtf import FlaskForm
from werkzeug.exceptions import HTTPException, SecurityError
from werkzeug.wrappers import Response
from wtforms import HiddenField

from panel_ssl_plugin import __version__, events
from panel_ssl_plugin.bridge.client import BridgeError
from panel_ssl_plugin.bridge.hooks import SESSION_KEY, current_session
from panel_ssl_plugin.bridge.signing import TOLERANCE, BadSignature, BridgeKeys, signed_at, verify
from panel_ssl_plugin.bridge.tokens import Launch, LaunchRefused, read_launch
from panel_ssl_plugin.store import Outbox, utcnow
from panel_ssl_plugin.store.bridge import SESSION_LIFETIME, BridgeRecords
from panel_ssl_plugin.web import ADMIN_LAYOUT, LAYOUT, URL_PREFIX, require
from panel_ssl_plugin.web.headers import add_security_headers

log = logging.getLogger(__name__)
COOKIE = "panel_ssl_session"
MESSAGE_PAGE = "panel_ssl/bridge_message.html"
SWITCH_PAGE = "panel_ssl/bridge_switch.html"
TARGETS = {"order": "panel_ssl.order", "certs": "panel_ssl.certs"}
EVENT_STATUS = {events.DONE: 200, events.REFUSED: 409, events.BAD_INPUT: 400}
EVENT_LIMIT = 64 * 1024  # bytes of a signed event's body
EVENT_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
LOGOUT = "logout"  # the bridge's own event: the panel ends a user's sessions
NO_SESSION = (
    "This page opens from your panel: use the Order SSL Cert or List SSL Certs link on the "
    "client's Account Mgmt tab."
)
SENTENCES = {
    400: "The request could not be read; go back and try again.",
    403: "You may not open this page: open it from your panel, for a client of yours.",
    404: "There is no such page here.",
    405: "This page does not take that kind of request.",
    413: "The request is too large.",
}


class BadInput(Exception):
    """A request body that does not decode (not UTF-8, not JSON, infinite numbers, nested too
    deeply): one sentence for the caller, answered 400 by one handler."""


class SwitchForm(FlaskForm):
    """ "Continue as …?": the launch token, posted back once the person agrees."""

    token = HiddenField()


def message(text: str, status: int) -> tuple[str, int]:
    """A plain page saying ``text``, in the plugin's layout."""
    return flask.render_template(MESSAGE_PAGE, text=text, panel_ssl_layout=LAYOUT), status


def wants_json() -> bool:
    """Whether this request is a program's (an event, a script asking for JSON)."""
    request = flask.request
    return request.path.startswith(f"{URL_PREFIX}/bridge/") or (
        request.accept_mimetypes.best == "application/json"
    )


def json_body(body: bytes) -> object:
    """The JSON of a signed body; BadInput, in words, for anything that does not decode."""
    try:
        return json.loads(body.decode() or "{}", parse_constant=_refuse, parse_float=_finite)
    except UnicodeDecodeError:
        raise BadInput("The body is not UTF-8 text.") from None
    except RecursionError:
        raise BadInput("The JSON is nested too deeply.") from None
    except ValueError as error:
        raise BadInput(f"The body is not JSON the service can read: {error}.") from None


def _refuse(constant: str) -> float:
    raise ValueError(f"{constant} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is too large a number")
    return number


def create_bridge_blueprint(
    pm: pluggy.PluginManager,
    keys: BridgeKeys,
    records: BridgeRecords,
    outbox: Outbox,
    secure: bool = False,
) -> flask.Blueprint:
    """The ``panel_ssl_bridge`` blueprint of one service; ``secure``: its cookies are sent
    over HTTPS only (the public address is https)."""
    blueprint = flask.Blueprint("panel_ssl_bridge", __name__, url_prefix=URL_PREFIX)

    @blueprint.before_app_request
    def load_session() -> None:
        """The request's launch session: one query, none for a style sheet, a script or the
        health check."""
        cookie = flask.request.cookies.get(COOKIE)
        if (flask.request.endpoint or "").endswith((".static", ".health")):
            cookie = None
        setattr(flask.g, SESSION_KEY, records.session(cookie, utcnow()) if cookie else None)

    @blueprint.get("/health")
    def health() -> tuple[dict, int]:
        """For a load balancer or a monitor: 200 when the database answers, else 503."""
        try:
            with records.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except sa.exc.SQLAlchemyError as error:
            log.warning("health check: the database did not answer: %s", error)
            return {"ok": False, "version": __version__, "database": "unreachable"}, 503
        return {"ok": True, "version": __version__, "database": "reachable"}, 200

    @blueprint.get("/launch")
    def launch() -> Response | tuple[str, int]:
        token = flask.request.args.get("token", "")
        try:
            grant = read_launch(keys.launch, token, utcnow())
        except LaunchRefused as refused:
            return message(str(refused), 401)
        current = current_session()
        if current is not None and current.actor != grant.actor:
            form = SwitchForm(formdata=None, token=token)
            page = flask.render_template(
                SWITCH_PAGE, form=form, current=current.actor, next=grant.actor,
                panel_ssl_layout=LAYOUT,
            )  # fmt: skip
            return page, 200
        return _open(grant, flask.request.cookies.get(COOKIE))

    @blueprint.post("/launch")
    def switch() -> Response | tuple[str, int]:
        """The person agreed to continue as the link's user: the old session ends."""
        form = SwitchForm()
        if not form.validate_on_submit():
            return message("This page has expired; open the link again from your panel.", 400)
        try:
            grant = read_launch(keys.launch, form.token.data or "", utcnow())
        except LaunchRefused as refused:
            return message(str(refused), 401)
        old = flask.request.cookies.get(COOKIE)
        response = _open(grant, None)
        if old and isinstance(response, Response):
            records.end(old)
        return response

    def _open(grant: Launch, cookie: str | None) -> Response | tuple[str, int]:
        cookie = records.launch(grant, cookie, utcnow())
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
            secure=secure or flask.request.is_secure,
            samesite="Lax",
        )
        return response

    @blueprint.post("/bridge/events/<name>")
    def event(name: str) -> tuple[dict, int]:
        if name not in events.EVENTS and name != LOGOUT:
            return {"ok": False, "error": f"There is no event {name}."}, 404
        flask.request.max_content_length = EVENT_LIMIT
        try:
            signed_at(flask.request.headers, int(time.time()))  # before a byte of the body
            stamp = verify(keys.events, flask.request.headers, flask.request.get_data(),
                           int(time.time()))  # fmt: skip
        except BadSignature as refused:
            return {"ok": False, "error": str(refused)}, 401
        payload = json_body(flask.request.get_data())
        if not isinstance(payload, dict):  # in the words panel-ssl event uses
            code, reply = events.handle(name, pm, payload)
            return reply, EVENT_STATUS[code]
        event_id = payload.pop("id", None)
        if not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id):
            raise BadInput(
                "id is missing or malformed: send a random id per event (1 to 64 letters, "
                "digits, or _.:-), so that a replay is refused."
            )
        if not records.use_event(event_id, datetime.fromtimestamp(stamp + TOLERANCE, UTC)):
            return {"ok": False, "error": f"The event {event_id} was received already."}, 409
        if name == LOGOUT:
            return _logout(payload)
        code, reply = events.handle(name, pm, payload)
        return reply, EVENT_STATUS[code]

    def _logout(payload: dict) -> tuple[dict, int]:
        user = payload.get("user")
        if not isinstance(user, str) or not user or len(user) > 100:
            raise BadInput("user is missing: the panel user's id (the launch tokens' sub).")
        return {"ok": True, "sessions_ended": records.end_sessions_of(user)}, 200

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

    @blueprint.app_errorhandler(BadInput)
    def bad_input(error: BadInput) -> tuple[dict | str, int]:
        if wants_json():
            return {"ok": False, "error": str(error)}, 400
        return message(str(error), 400)

    @blueprint.app_errorhandler(401)
    def no_session(error: Exception) -> tuple[dict | str, int]:
        if wants_json():
            return {"ok": False, "error": NO_SESSION}, 401
        return message(NO_SESSION, 401)

    @blueprint.app_errorhandler(HTTPException)
    def in_words(error: HTTPException) -> Response | tuple[dict | str, int]:
        """Every other HTTP error as one sentence in the plugin's layout (JSON for programs);
        a redirect stays one."""
        status = error.code or 500
        if status < 400:
            return error.get_response()
        if isinstance(error, SecurityError):  # a host name not trusted: no page can be built
            return Response(f"{error.description}\n", status, mimetype="text/plain")
        sentence = SENTENCES.get(status, error.description or "")
        if status == 413 and flask.request.max_content_length:
            sentence = f"The request is larger than {flask.request.max_content_length:,} bytes."
        if wants_json():
            return {"ok": False, "error": sentence}, status
        return message(sentence, status)

    blueprint.after_request(add_security_headers)
    return blueprint
