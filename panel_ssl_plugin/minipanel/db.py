"""The minipanel's own tables and queries: users, clients, contacts, the outbox.

They sit beside the plugin's ``ssl_`` tables in the same database, as a real host's tables would,
and are created by the minipanel itself (a real host has its own migrations; the plugin's never
touch these).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

metadata = sa.MetaData()

users = sa.Table(
    "mp_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
)

clients = sa.Table(
    "mp_clients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("reseller_id", sa.Integer, sa.ForeignKey("mp_users.id"), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("organization", sa.String(200), nullable=False, default=""),
    sa.Column("address", sa.String(200), nullable=False, default=""),
    sa.Column("city", sa.String(100), nullable=False, default=""),
    sa.Column("postal_code", sa.String(20), nullable=False, default=""),
    sa.Column("state", sa.String(100), nullable=False, default=""),
    sa.Column("country", sa.String(2), nullable=False, default=""),
    sa.Column("phone", sa.String(40), nullable=False, default=""),
)

contacts = sa.Table(
    "mp_contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("mp_clients.id"), nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False, default=False),
    sa.Column("first_name", sa.String(100), nullable=False),
    sa.Column("last_name", sa.String(100), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("phone", sa.String(40), nullable=False, default=""),
    sa.Column("title", sa.String(100), nullable=False, default=""),
)

outbox = sa.Table(
    "mp_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sent_at", sa.DateTime, nullable=False),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
)

# Files under /.well-known/ the panel serves for its sites: ACME tokens, pki-validation files.
well_known = sa.Table(
    "mp_well_known",
    metadata,
    sa.Column("path", sa.String(300), primary_key=True),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("content", sa.Text, nullable=False),
)

# What the host learns from the SSL plugin's ssl_certificate_issued notifications: enough to bill
# a renewal (the certificate id) and to show which certificate it is.
certificates = sa.Table(
    "mp_certificates",
    metadata,
    sa.Column("certificate_id", sa.Integer, primary_key=True),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("mp_clients.id"), nullable=False),
    sa.Column("domain", sa.String(253), nullable=False),
    sa.Column("not_after", sa.DateTime),
)

settings = sa.Table(
    "mp_settings",
    metadata,
    sa.Column("name", sa.String(80), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    display_name: str


class PanelDB:
    """Every query the minipanel makes, on one engine."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    # users
    def add_user(self, username: str, password: str, role: str, display_name: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                users.insert().values(
                    username=username,
                    password_hash=generate_password_hash(password),
                    role=role,
                    display_name=display_name,
                )
            ).inserted_primary_key[0]

    def authenticate(self, username: str, password: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(users.select().where(users.c.username == username)).first()
        if row is None or not check_password_hash(row.password_hash, password):
            return None
        return User(row.id, row.username, row.role, row.display_name)

    def user(self, user_id: int) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(users.select().where(users.c.id == user_id)).first()
        return row and User(row.id, row.username, row.role, row.display_name)

    def user_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()

    # clients and contacts
    def add_client(self, reseller_id: int, name: str, **profile: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                clients.insert().values(reseller_id=reseller_id, name=name, **profile)
            ).inserted_primary_key[0]

    def add_contact(self, client_id: int, *, is_default: bool = False, **fields: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(
                contacts.insert().values(client_id=client_id, is_default=is_default, **fields)
            ).inserted_primary_key[0]

    def clients_of(self, user: User) -> list[sa.Row]:
        query = clients.select().order_by(clients.c.name)
        if user.role != "admin":
            query = query.where(clients.c.reseller_id == user.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def client(self, client_id: int) -> sa.Row | None:
        with self.engine.connect() as conn:
            return conn.execute(clients.select().where(clients.c.id == client_id)).first()

    def contacts_of(self, client_id: int) -> list[sa.Row]:
        query = (
            contacts.select()
            .where(contacts.c.client_id == client_id)
            .order_by(contacts.c.is_default.desc(), contacts.c.id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # outbox and challenges
    def send_mail(self, to: str, subject: str, body: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                outbox.insert().values(
                    sent_at=datetime.now(UTC).replace(tzinfo=None),
                    recipient=to,
                    subject=subject,
                    body=body,
                )
            )

    def mails(self, limit: int = 100) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(outbox.select().order_by(outbox.c.id.desc()).limit(limit)))

    def publish_file(self, domain: str, path: str, content: str) -> None:
        """Serve ``content`` at ``/<path>`` (under .well-known/), replacing what was there."""
        with self.engine.begin() as conn:
            conn.execute(well_known.delete().where(well_known.c.path == path))
            conn.execute(well_known.insert().values(path=path, domain=domain, content=content))

    def published_file(self, path: str) -> str | None:
        with self.engine.connect() as conn:
            query = sa.select(well_known.c.content).where(well_known.c.path == path)
            return conn.execute(query).scalar_one_or_none()

    # certificates the SSL plugin reported issued
    def record_certificate(
        self, certificate_id: int, client_id: int, domain: str, not_after: datetime | None
    ) -> None:
        """Once per certificate: the plugin notifies once, but a host should not count on it."""
        ends = not_after.astimezone(UTC).replace(tzinfo=None) if not_after else None
        with self.engine.begin() as conn:
            conn.execute(
                certificates.delete().where(certificates.c.certificate_id == certificate_id)
            )
            conn.execute(
                certificates.insert().values(
                    certificate_id=certificate_id,
                    client_id=client_id,
                    domain=domain,
                    not_after=ends,
                )
            )

    def certificates_of(self, client_id: int) -> list[sa.Row]:
        query = (
            certificates.select()
            .where(certificates.c.client_id == client_id)
            .order_by(certificates.c.not_after, certificates.c.certificate_id)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    # settings the demo generates once (a real host keeps these in its configuration)
    def setting(self, name: str, make: callable) -> str:
        """The stored value of ``name``, created with ``make()`` the first time."""
        with self.engine.begin() as conn:
            value = conn.execute(
                sa.select(settings.c.value).where(settings.c.name == name)
            ).scalar_one_or_none()
            if value is None:
                value = make()
                conn.execute(settings.insert().values(name=name, value=value))
            return value


def new_secret() -> str:
    return secrets.token_urlsafe(32)
