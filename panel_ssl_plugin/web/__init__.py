"""The plugin's Flask blueprint: the popups (views.py) and the provider settings (admin.py)."""

from __future__ import annotations

import flask
import pluggy

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.runtime import Runtime, runtime_for

URL_PREFIX = "/ssl"


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
        state.app.extensions["panel_ssl"] = pm

    for module in (views, certs, followups, files, admin):
        module.register(blueprint)
    return blueprint


def current_runtime() -> Runtime:
    """The Runtime of the host serving this request."""
    return runtime_for(flask.current_app.extensions["panel_ssl"])


def require(action: str, account_id: str | None = None) -> Actor:
    """The current actor, if the host allows ``action`` on ``account_id``; else 401/403.

    Every view calls this before it reads or writes anything. The host's answer is final, and
    no answer at all means no.
    """
    actor = current_runtime().pm.hook.host_current_actor()
    if actor is None:
        flask.abort(401)
    if not allowed(actor, action, account_id):
        flask.abort(403)
    return actor


def allowed(actor: Actor, action: str, account_id: str | None) -> bool:
    """The host's answer for ``actor``; only an explicit True allows."""
    pm = current_runtime().pm
    return (
        pm.hook.host_permission_allowed(actor=actor, action=action, account_id=account_id) is True
    )
