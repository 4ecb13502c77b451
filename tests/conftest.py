"""Shared fixtures: databases on all three servers, the minipanel with the plugin, logins."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import flask
import pytest
import sqlalchemy as sa

from panel_ssl_plugin import hookimpls, schema
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.minipanel.demo import prepare_demo

# The provider simulators and the Pebble fixture live beside their tests; every test may use them.
pytest_plugins = [
    "tests.providers.gogetssl_sim",
    "tests.providers.sectigo_sim",
    "tests.providers.pebble_server",
    "tests.providers.faults",
    "tests.providers.ari_responder",
    "tests.local_dns",
]

SERVER_URLS = {
    "postgresql": os.environ.get(
        "PANEL_SSL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mariadb": os.environ.get(
        "PANEL_SSL_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}


def _server_engine(kind: str) -> sa.Engine:
    engine = sa.create_engine(SERVER_URLS[kind], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        pytest.skip(f"{kind} server not reachable at {SERVER_URLS[kind]}: {error.orig}")
    return engine


@pytest.fixture(scope="session")
def server_engines() -> dict[str, sa.Engine]:
    """Lazily connected admin engines, one per database server."""
    return {}


def fresh_database(kind: str, engines: dict[str, sa.Engine], tmp_path) -> Iterator[str]:
    """A new, empty database of ``kind`` for one test, dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'panel.db'}"
        return
    if kind not in engines:
        engines[kind] = _server_engine(kind)
    admin = engines[kind]
    name = f"panel_ssl_t_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        drop = f"DROP DATABASE {name}" + (" WITH (FORCE)" if kind == "postgresql" else "")
        with admin.connect() as conn:
            conn.execute(sa.text(drop))


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database_url(request, server_engines, tmp_path) -> Iterator[str]:
    """An empty database on each of the three supported servers in turn."""
    yield from fresh_database(request.param, server_engines, tmp_path)


@pytest.fixture(params=["postgresql", "mariadb"])
def row_locking_database_url(request, server_engines, tmp_path) -> Iterator[str]:
    """An empty database on each server with row locks (SELECT ... SKIP LOCKED)."""
    yield from fresh_database(request.param, server_engines, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'panel.db'}"


def minipanel(database_url: str, *plugins: object, **config: object) -> flask.Flask:
    """The minipanel on ``database_url`` with this plugin (and ``plugins``) registered directly,
    its tables migrated and the demo data in; ``config`` adds to its configuration."""
    schema.upgrade(database_url)
    app = create_app(
        {"DATABASE_URL": database_url, "PLUGINS": [hookimpls, *plugins], "TESTING": True,
         **config}
    )  # fmt: skip
    prepare_demo(app)
    app.before_request_funcs.setdefault(None, []).insert(0, _forget_g)
    return app


@pytest.fixture
def app(sqlite_url):
    """The minipanel on SQLite."""
    return minipanel(sqlite_url)


def _forget_g() -> None:
    """Each request starts with an empty ``g``, as it does outside the tests.

    pytest-flask keeps one app context, so one ``g``, for a whole test. Flask-WTF keeps its
    token and its "CSRF already checked" mark there: a token made before a login (which clears
    the session) would be served again after it, and a check passed once would pass every POST.
    """
    for name in list(flask.g):
        flask.g.pop(name)


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    """The CSRF token of the form on ``url``, as a browser would read it."""
    response = client.get(url)
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, f"no CSRF token on {url} ({response.status_code})"
    return match.group(1)


def login(client, username: str) -> None:
    """Log ``username`` in with the demo password (equal to the user name)."""
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"username": username, "password": username, "csrf_token": token}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


@pytest.fixture
def as_user(app):
    """``as_user("alice")`` is a test client logged in as alice."""

    def make(username: str):
        client = app.test_client()
        login(client, username)
        return client

    return make


@pytest.fixture
def client(app):
    return app.test_client()
