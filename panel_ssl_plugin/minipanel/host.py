"""The minipanel's side of the contract: the ``host_*`` hooks, answered from its own tables."""

from __future__ import annotations

import flask
import sqlalchemy as sa

from panel_ssl_plugin import names
from panel_ssl_plugin.hookspecs import AccountProfile, Actor, Contact, hookimpl
from panel_ssl_plugin.minipanel.db import PanelDB

ACCOUNT_ACTIONS = frozenset({"ssl.view", "ssl.order"})


def _contact(row: sa.Row) -> Contact:
    return Contact(
        id=str(row.id),
        first_name=row.first_name,
        last_name=row.last_name,
        email=row.email,
        phone=row.phone,
        title=row.title,
    )


class MiniPanelHost:
    """Registered on the minipanel's PluginManager as the plugin named ``minipanel``."""

    def __init__(self, db: PanelDB, secret_keys: list[str], public_url: str):
        self.db = db
        self.secret_keys = secret_keys
        self.public_url = public_url

    @hookimpl
    def host_database(self) -> sa.Engine:
        return self.db.engine

    @hookimpl
    def host_secret_keys(self) -> list[str]:
        return self.secret_keys

    @hookimpl
    def host_public_url(self) -> str:
        """The configured address (``PUBLIC_URL``), never the request's Host header."""
        return self.public_url

    @hookimpl
    def host_current_actor(self) -> Actor | None:
        user = flask.g.get("user") if flask.has_request_context() else None
        return Actor(str(user.id), user.display_name, user.role) if user else None

    @hookimpl
    def host_login_url(self, next: str) -> str:
        return flask.url_for("login", next=next)

    def client(self, account_id: str | None) -> sa.Row | None:
        """The client an account id of the contract names: a client's id in decimal digits."""
        text = str(account_id)
        return self.db.client(int(text)) if text.isascii() and text.isdigit() else None

    @hookimpl
    def host_permission_allowed(self, actor: Actor, action: str, account_id: str | None) -> bool:
        if actor.role == "admin":
            return True
        client = self.client(account_id) if action in ACCOUNT_ACTIONS else None
        return client is not None and str(client.reseller_id) == actor.id

    @hookimpl
    def host_account_profile(self, account_id: str) -> AccountProfile | None:
        client = self.client(account_id)
        if client is None:
            return None
        contacts = self.db.contacts_of(client.id)
        return AccountProfile(
            account_id=str(client.id),
            name=client.name,
            organization=client.organization,
            state=client.state,
            country=client.country,
            city=client.city,
            address=client.address,
            postal_code=client.postal_code,
            phone=client.phone,
            default_contact=_contact(contacts[0]) if contacts else None,
        )

    @hookimpl
    def host_account_contacts(self, account_id: str) -> list[Contact]:
        client = self.client(account_id)
        return [_contact(row) for row in self.db.contacts_of(client.id)] if client else []

    @hookimpl
    def host_send_mail(self, to: str, subject: str, body: str, account_id: str | None) -> bool:
        """Kept in the outbox, filed as the mail of the client it is about (the reseller of
        that client sees it); a mail about no client is the admin's alone."""
        client = self.client(account_id) if account_id is not None else None
        self.db.send_mail(to, subject, body, client.id if client else None)
        return True

    @hookimpl
    def host_publish_http_challenge(self, domain: str, token: str, content: str) -> bool:
        return self.host_publish_http_file(domain, f".well-known/acme-challenge/{token}", content)

    @hookimpl
    def host_publish_http_file(self, domain: str, path: str, content: str) -> bool:
        self.db.publish_file(domain, path.lstrip("/"), content)
        return True

    @hookimpl
    def host_unpublish_http_file(self, domain: str, path: str) -> bool:
        self.db.unpublish_file(domain, path.lstrip("/"))
        return True

    @hookimpl
    def ssl_certificate_issued(self, certificate: dict) -> None:
        """Remember the certificate so the Account Mgmt tab can bill its renewal."""
        client = self.client(certificate["account_id"])
        if client is not None:
            self.db.record_certificate(
                certificate["id"],
                client.id,
                names.display_domain(certificate["domain"]),
                certificate["not_after"],
            )
