"""The plugin's Flask blueprint: the popups (views.py) and the provider settings (admin.py)."""

from __future__ import annotations

import flask
import pluggy

from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.runtime import runtime_for


def create_blueprint(pm: pluggy.PluginManager) -> flask.Blueprint:
    """The ``panel_ssl`` blueprint bound to one host's PluginManager."""
    from panel_ssl_plugin.web import admin, views

    blueprint = flask.Blueprint(
        "panel_ssl",
        __name__,
        url_prefix="/ssl",
        template_folder=str(resource_path("templates")),
        static_folder=str(resource_path("templates") / "static"),
        static_url_path="/static",
    )

    @blueprint.record_once
    def bind(state: flask.blueprints.BlueprintSetupState) -> None:
        state.app.extensions["panel_ssl"] = pm

    views.register(blueprint)
    admin.register(blueprint)
    return blueprint


def current_runtime():
    """The Runtime of the host serving this request."""
    return runtime_for(flask.current_app.extensions["panel_ssl"])
