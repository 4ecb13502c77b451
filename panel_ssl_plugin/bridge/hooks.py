"""The BridgeHost: the ``host_*`` hooks answered by a panel in any language.

Registered on the PluginManager like any host. Who is acting comes from the launch session
(web.py puts it on ``flask.g``); what they may do too: the accounts their launch tokens named,
and for the admin role also the plugin's admin pages. Profiles, contacts, publishing and mail
are one bridge call each (client.py); what a request reads (a profile, the contacts, the
reseller's address) is asked once per request, however often the plugin asks for it.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import flask

from panel_ssl_plugin.bridge.client import BridgeClient, BridgeError
from panel_ssl_plugin.hookspecs import AccountProfile, Actor, Contact, hookimpl
from panel_ssl_plugin.store.bridge import Session

log = logging.getLogger(__name__)
SESSION_KEY = "panel_ssl_bridge_session"
READS_KEY = "panel_ssl_bridge_reads"
ACCOUNT_ACTIONS = frozenset({"ssl.view", "ssl.order"})
ADMIN_ACTION = "ssl.admin"
# Names a panel may use for a profile's street, as in the contract's example
PROFILE_ALIASES = {"street": "address"}


def current_session() -> Session | None:
    """The launch session of this request, if its cookie named an open one."""
    return flask.g.get(SESSION_KEY) if flask.has_request_context() else None


def may(session: Session | None, actor: Actor, action: str, account_id: str | None) -> bool:
    """The bridge's permission rule: only the session's own actor, on the accounts its launch
    tokens named; the admin pages for the admin role only."""
    if session is None or session.actor != actor:
        return False
    if action == ADMIN_ACTION:
        return actor.role == "admin"
    return action in ACCOUNT_ACTIONS and account_id in session.accounts


def _fields(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: "" if v is None else str(v) for k, v in values.items() if k in names}


def contact(values: Any) -> Contact:
    """A Contact from the panel's JSON; BridgeError when it is not one."""
    if not isinstance(values, dict) or not values.get("email"):
        raise BridgeError("Your panel sent a contact without an email.")
    fields = {"id": "", "first_name": "", "last_name": "", **_fields(Contact, values)}
    return Contact(**fields)


def profile(account_id: str, values: Any) -> AccountProfile | None:
    """An AccountProfile from the panel's JSON (None: no such account). Fields it does not
    know go to ``extra``."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise BridgeError("Your panel's account profile is not a JSON object.")
    values = {PROFILE_ALIASES.get(k, k): v for k, v in values.items()}
    known = {"account_id", "name", "default_contact", "extra"}
    fields = {k: v for k, v in _fields(AccountProfile, values).items() if k not in known}
    extra = {k: v for k, v in values.items() if k not in fields and k not in known}
    default = values.get("default_contact")
    return AccountProfile(
        account_id=account_id,
        name=str(values.get("name") or values.get("organization") or account_id),
        default_contact=contact(default) if default else None,
        extra=extra,
        **fields,
    )


class BridgeHost:
    """The host hooks of a panel on the other end of the bridge."""

    def __init__(self, client: BridgeClient | None, public_url: str | None = None):
        self.client = client
        self.public_url = public_url

    def _call(self, method: str, **params: Any) -> Any:
        if self.client is None:
            raise BridgeError(
                "The SSL service has no bridge to your panel: set PANEL_SSL_BRIDGE_URL."
            )
        return self.client.call(method, params)

    def _read(self, method: str, account_id: str) -> Any:
        """A read call's answer, asked once per request (the plugin asks for the profile in
        several places of one order); outside a request, each time."""
        if not flask.has_request_context():
            return self._call(method, account_id=account_id)
        answers = flask.g.setdefault(READS_KEY, {})
        if (method, account_id) not in answers:
            answers[method, account_id] = self._call(method, account_id=account_id)
        return answers[method, account_id]

    def _act(self, method: str, **params: Any) -> bool | None:
        """A call that publishes or sends: a failure is logged and answered None, so the
        plugin shows the user what to do by hand instead of failing the order."""
        try:
            result = self._call(method, **params)
        except BridgeError as error:
            log.warning("bridge call %s failed: %s", method, error)
            return None
        return result if isinstance(result, bool) else None

    @hookimpl
    def host_current_actor(self) -> Actor | None:
        session = current_session()
        return session.actor if session else None

    @hookimpl
    def host_permission_allowed(self, actor: Actor, action: str, account_id: str | None) -> bool:
        return may(current_session(), actor, action, account_id)

    @hookimpl
    def host_public_url(self) -> str | None:
        """Where browsers reach this service (``PANEL_SSL_PUBLIC_URL``): approval links lead
        here. Never the request's Host header, which the client chooses."""
        return self.public_url

    @hookimpl
    def host_account_profile(self, account_id: str) -> AccountProfile | None:
        return profile(account_id, self._read("account_profile", account_id))

    @hookimpl
    def host_account_contacts(self, account_id: str) -> list[Contact]:
        result = self._read("account_contacts", account_id)
        if not isinstance(result, list):
            raise BridgeError("Your panel's contacts are not a JSON list.")
        return [contact(values) for values in result]

    @hookimpl
    def host_publish_http_challenge(self, domain: str, token: str, content: str) -> bool | None:
        return self._act("publish_http_challenge", domain=domain, token=token, content=content)

    @hookimpl
    def host_publish_http_file(self, domain: str, path: str, content: str) -> bool | None:
        return self._act("publish_http_file", domain=domain, path=path, content=content)

    @hookimpl
    def host_unpublish_http_file(self, domain: str, path: str) -> bool | None:
        return self._act("unpublish_http_file", domain=domain, path=path)

    @hookimpl
    def host_publish_dns_record(
        self, domain: str, name: str, record_type: str, value: str
    ) -> bool | None:
        return self._act(
            "publish_dns_record", domain=domain, name=name, record_type=record_type, value=value
        )

    @hookimpl
    def host_send_mail(
        self, to: str, subject: str, body: str, account_id: str | None
    ) -> bool | None:
        return self._act("send_mail", to=to, subject=subject, body=body, account_id=account_id)

    @hookimpl
    def host_reseller_email(self, account_id: str) -> str | None:
        """The copy of an expiry reminder is a courtesy: a panel that cannot say sends none."""
        try:
            result = self._read("reseller_email", account_id)
        except BridgeError as error:
            log.warning("bridge call reseller_email failed: %s", error)
            return None
        return result if isinstance(result, str) and result else None
