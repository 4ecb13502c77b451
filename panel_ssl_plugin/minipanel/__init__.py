"""MiniPanel: the reference host panel (demo, docs by example, and the host of every test)."""

from panel_ssl_plugin.minipanel.app import create_app

__all__ = ["create_app"]
