"""The provider settings pages in the host's admin area."""

from __future__ import annotations

import flask


def register(blueprint: flask.Blueprint) -> None:
    """Add the admin routes to the plugin's blueprint."""
