"""Browser tests: the minipanel served on a loopback port, Chromium driven by Playwright.

The system Chromium is used as it is (``playwright install`` is never run); without it these
tests skip and say why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import flask
import pytest
from playwright.sync_api import sync_playwright
from werkzeug.serving import make_server

from panel_ssl_plugin import hookimpls, schema
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.minipanel.demo import prepare_demo
from panel_ssl_plugin.runtime import Runtime, runtime_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "e2e"


@dataclass(frozen=True)
class PanelServer:
    """A running minipanel: its base URL, and the plugin's runtime to look into its database."""

    url: str
    app: flask.Flask

    @property
    def runtime(self) -> Runtime:
        return runtime_for(self.app.extensions["hosting_panel"])


@pytest.fixture
def panel_server(tmp_path) -> Iterator[PanelServer]:
    """The demo minipanel (users, clients, the sandbox provider) on a free port, in a thread."""
    database = f"sqlite:///{tmp_path / 'panel.db'}"
    schema.upgrade(database)
    app = create_app({"DATABASE_URL": database, "PLUGINS": [hookimpls], "DEMO": True})
    prepare_demo(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.extensions["hosting_panel"].get_plugin("minipanel").public_url = url  # links in mail
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield PanelServer(url, app)
    server.shutdown()
    thread.join()


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install the Debian package chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800}, locale="en-US")
    yield context
    context.close()


@pytest.fixture
def screenshot(request) -> Callable:
    """``screenshot(page, "step")`` saves test-output/e2e/<test>-<step>.png and returns it."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, step: str) -> Path:
        path = SCREENSHOTS / f"{request.node.name}-{step}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
