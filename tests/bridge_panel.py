"""A panel at the other end of the bridge, for the bridge's tests: it answers the plugin's
signed calls from dictionaries, keeps the mail it is asked to send, and verifies and keeps the
webhooks it receives. It speaks only the wire contract, as the PHP reference panel does.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from typing import Any

import jwt
import pluggy
import requests
from cryptography.fernet import Fernet
from standardwebhooks import Webhook
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from panel_ssl_plugin import hookimpls, hookspecs, schema
from panel_ssl_plugin.bridge.service import create_service
from panel_ssl_plugin.bridge.settings import BridgeSettings
from panel_ssl_plugin.bridge.signing import BadSignature, BridgeKeys, signed_headers, verify
from panel_ssl_plugin.cli import CommandLineHost
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.runtime import runtime_for

SECRET = secrets.token_urlsafe(32)
KEYS = BridgeKeys.from_secret(SECRET)  # what the panel derives from the secret, as PHP does
PUBLIC_URL = "http://localhost"  # the test client's own host
FERNET_KEY = Fernet.generate_key().decode()
PROFILE = {
    "organization": "Bäckerei Müller GmbH",
    "state": "Bayern",
    "country": "DE",
    "email": "office@mueller.example",
    "street": "Hauptstraße 12",
    "city": "München",
    "postal_code": "80331",
    "phone": "+49 89 123450",
}
CONTACTS = [
    {"id": "31", "first_name": "Hans", "last_name": "Müller", "email": "hans@mueller.example"}
]


class FakePanel:
    """The panel's bridge endpoint (``/bridge``) and webhook receiver (``/webhooks``)."""

    def __init__(self) -> None:
        self.profiles: dict[str, dict] = {"7": PROFILE, "8": {**PROFILE, "organization": "Other"}}
        self.calls: list[tuple[str, dict]] = []
        self.raw: list[tuple[dict, bytes]] = []  # (headers, body) of every signed call
        self.mails: list[dict] = []
        self.webhooks: list[tuple[str, dict]] = []  # (webhook-id, body), verified
        self.webhooks_down = False
        self.refuse: str | None = None  # an error the bridge endpoint answers every call with
        self.answers: dict[str, Any] = {}  # a result per method, instead of the ones below
        self._server = make_server("127.0.0.1", 0, self.wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @Request.application
    def wsgi(self, request: Request) -> Response:
        if request.path == "/webhooks":
            return self.receive(request)
        try:
            verify(KEYS.calls, request.headers, request.get_data(), int(time.time()))
        except BadSignature as error:
            return _json({"error": str(error)}, 401)
        self.raw.append((dict(request.headers), request.get_data()))
        if self.refuse:
            return _json({"error": self.refuse}, 500)
        call = json.loads(request.get_data())
        method, params = call["method"], call["params"]
        self.calls.append((method, params))
        if method in self.answers:
            return _json({"result": self.answers[method]})
        if method == "account_profile":
            return _json({"result": self.profiles.get(params["account_id"])})
        if method == "account_contacts":
            return _json({"result": CONTACTS if params["account_id"] in self.profiles else []})
        if method == "send_mail":
            self.mails.append(params)
            return _json({"result": True})
        return _json({"result": None})

    def receive(self, request: Request) -> Response:
        if self.webhooks_down:
            return _json({"error": "down for maintenance"}, 503)
        body = Webhook(KEYS.webhooks).verify(request.get_data(), dict(request.headers))
        self.webhooks.append((request.headers["webhook-id"], body))
        return Response(status=204)

    def webhook_counts(self) -> Counter:
        return Counter(webhook_id for webhook_id, _ in self.webhooks)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status, content_type="application/json")


class Keys:
    @hookimpl
    def host_secret_keys(self) -> list[str]:
        return [FERNET_KEY]


def service_pm(database_url: str) -> pluggy.PluginManager:
    """The PluginManager ``panel-ssl serve`` builds: the command line's host, the plugin."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(CommandLineHost(database_url))
    pm.register(Keys())
    pm.register(hookimpls)
    return pm


def service(database_url: str, panel: FakePanel, *, migrate: bool = True, **settings: Any):
    """A service on ``database_url`` bridged to ``panel``, with a default sandbox account."""
    if migrate:
        schema.upgrade(database_url)
    pm = service_pm(database_url)
    values = {
        "url": f"{panel.url}/bridge",
        "secret": SECRET,
        "webhook_url": f"{panel.url}/webhooks",
        "public_url": PUBLIC_URL,
        **settings,
    }
    app = create_service(pm, BridgeSettings(**values), requests.Session())
    app.config["TESTING"] = True
    accounts = runtime_for(pm).accounts
    if not accounts.all():
        accounts.create("sandbox", "Sandbox", {}, is_default=True)
    return app


def launch_token(secret: Any = KEYS.launch, algorithm: str = "HS256", **claims: Any) -> str:
    """A launch token for reseller 2 on account 7's order popup, signed with the launch key;
    ``claims`` change it (None leaves a claim out)."""
    now = int(time.time())
    values = {
        "sub": "2",
        "name": "Alice",
        "role": "reseller",
        "account": "7",
        "target": "order",
        "iat": now,
        "exp": now + 120,
        "jti": secrets.token_hex(16),
        **claims,
    }
    return jwt.encode({k: v for k, v in values.items() if v is not None}, secret, algorithm)


def event_request(payload: object, key: bytes = KEYS.events, **headers: str) -> dict[str, Any]:
    """The keyword arguments of a signed event POST: ``payload`` with a fresh ``id`` (when it
    is an object without one), signed with ``key``, and ``headers`` on top."""
    if isinstance(payload, dict):
        payload = {"id": f"evt_{secrets.token_hex(16)}", **payload}
    body = json.dumps(payload).encode()
    signed = signed_headers(key, int(time.time()), body)
    return {
        "data": body,
        "headers": {"Content-Type": "application/json", **signed, **headers},
    }


def post_event(app, name: str, payload: object, key: bytes = KEYS.events):
    """A signed event, as a panel posts it."""
    return app.test_client().post(f"/ssl/bridge/events/{name}", **event_request(payload, key))
