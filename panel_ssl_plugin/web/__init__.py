"""The plugin's Flask blueprint: the popups (views.py) and the provider settings (admin.py).

Every response of the blueprint carries the security headers of headers.py, whatever the host
sends on its own pages.
"""

from __future__ import annotations

import flask
import pluggy
from werkzeug.routing import BaseConverter, IntegerConverter, Map
from werkzeug.wrappers import Response

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.links import URL_PREFIX
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.runtime import HostMisconfigured, Runtime, runtime_for
from panel_ssl_plugin.store import MAX_ID
from panel_ssl_plugin.web.headers import add_security_headers

LAYOUT, ADMIN_LAYOUT = "panel_ssl/layout.html", "panel_ssl/admin_layout.html"
JSON_ENDPOINTS = frozenset({"panel_ssl.dcv_emails"})  # answered to scripts, not to people


class RowId(IntegerConverter):
    """``<ssl_id:…>``: the id of one of the plugin's rows (an order, a provider account), a
    number its column can hold. Any other is a 404 at routing, for anyone, before a view or the
    database sees it."""

    def __init__(self, url_map: Map, *_args: object, **_kwargs: object):
        super().__init__(url_map, min=1, max=MAX_ID)


class AccountId(BaseConverter):
    """``<ssl_account:…>``: a host's account id the plugin can store: at most 64 characters
    (its column), none of them a control character."""

    regex = r"[^/\x00-\x1f\x7f-\x9f]{1,64}"


CONVERTERS = {"ssl_id": RowId, "ssl_account": AccountId}


def create_blueprint(pm: pluggy.PluginManager) -> flask.Blueprint:
    """The ``panel_ssl`` blueprint bound to one host's PluginManager."""
    from panel_ssl_plugin.web import admin, certs, files, followups, views

    blueprint = flask.Blueprint(
        "panel_ssl",
        __name__,
        url_prefix=URL_PREFIX,
        template_folder=str(resource_path("templates")),
        static_folder=str(resource_path("templates") / "static"),
        static_url_path="/static",
    )

    @blueprint.record_once
    def bind(state: flask.blueprints.BlueprintSetupState) -> None:
        if not state.app.secret_key:
            raise HostMisconfigured(
                "Set the Flask app's SECRET_KEY before registering the panel_ssl blueprint: its "
                "forms are signed with it."
            )
        state.app.extensions["panel_ssl"] = pm
        state.app.url_map.converters.update(CONVERTERS)

    @blueprint.before_request
    def remember_accounts() -> None:
        """One request reads each provider account once (Store.remembering_accounts)."""
        scope = current_runtime().accounts.store.remembering_accounts()
        scope.__enter__()
        flask.g.panel_ssl_accounts_scope = scope

    @blueprint.teardown_request
    def forget_accounts(_error: BaseException | None) -> None:
        scope = flask.g.pop("panel_ssl_accounts_scope", None)
        if scope is not None:
            scope.__exit__(None, None, None)

    @blueprint.context_processor
    def layout() -> dict[str, str]:
        """Which layout frames this page (see templates/panel_ssl/layout.html)."""
        admin_page = (flask.request.endpoint or "").startswith("panel_ssl.admin")
        return {"panel_ssl_layout": ADMIN_LAYOUT if admin_page else LAYOUT}

    for module in (views, certs, followups, files, admin):
        module.register(blueprint)
    blueprint.after_request(add_security_headers)
    return blueprint


def current_runtime() -> Runtime:
    """The Runtime of the host serving this request."""
    return runtime_for(flask.current_app.extensions["panel_ssl"])


def require(action: str, account_id: str | None = None) -> Actor:
    """The current actor, if the host allows ``action`` on ``account_id``; else 401/403.

    Every view calls this before it reads or writes anything. The host's answer is final, and
    no answer at all means no.
    """
    pm = current_runtime().pm
    actor = pm.hook.host_current_actor()
    if actor is None:
        flask.abort(_to_login(pm) or 401)
    if not allowed(actor, action, account_id):
        flask.abort(403)
    return actor


def _to_login(pm: pluggy.PluginManager) -> Response | None:
    """The host's login page and back here, for a page a person opened; None (a form posted,
    a script asking for JSON): say 401."""
    request = flask.request
    if request.method != "GET" or request.endpoint in JSON_ENDPOINTS:
        return None
    url = pm.hook.host_login_url(next=request.full_path.rstrip("?"))
    return flask.redirect(url) if url else None


def allowed(actor: Actor, action: str, account_id: str | None) -> bool:
    """The host's answer for ``actor``; only an explicit True allows."""
    pm = current_runtime().pm
    return (
        pm.hook.host_permission_allowed(actor=actor, action=action, account_id=account_id) is True
    )


def query_number(name: str) -> int | None:
    """A whole number from the query string (``?page=``, ``?from=``) within the range of the
    plugin's ids, else None: a number no column holds never reaches the database."""
    try:
        number = int(flask.request.args.get(name, ""))
    except ValueError:
        return None
    return number if 0 < number <= MAX_ID else None
