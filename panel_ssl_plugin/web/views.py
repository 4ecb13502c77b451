"""The popups a reseller opens from a client's Account Mgmt tab."""

from __future__ import annotations

import flask


def register(blueprint: flask.Blueprint) -> None:
    """Add the popup routes to the plugin's blueprint."""
