"""The minipanel's own tables and queries: users, sessions, clients, contacts, the outbox.

They sit beside the plugin's ``ssl_`` tables in the same database, as a real host's tables would,
and are created by the minipanel itself (a real host has its own migrations; the plugin's never
touch these).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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

# Which client a mail concerns (host_send_mail's account_id); a mail without a row is the admin's
# alone. A table of its own, so a database made before it needs no migration.
mail_clients = sa.Table(
    "mp_mail_clients",
    metadata,
    sa.Column(
        "mail_id", sa.Integer, sa.ForeignKey("mp_outbox.id"), primary_key=True, autoincrement=False
    ),
    sa.Column("client_id", sa.Integer, sa.ForeignKey("mp_clients.id"), nullable=False),
)

# Logged-in sessions: the cookie holds the token, this table its hash, so a copy of the cookie
# dies with the row (logout, expiry) and a leaked table logs no one in.
sessions = sa.Table(
    "mp_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("mp_users.id"), nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
)

# Failed log-ins, by hashed user name and hashed address, shared by every process of the panel.
login_failures = sa.Table(
    "mp_login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("user_key", sa.String(64), nullable=False, index=True),
    sa.Column("address_key", sa.String(64), nullable=False, index=True),
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
        """The user with this name and password. An unknown name costs one password check all
        the same (against a dummy hash), so the time taken does not tell which names exist."""
        row = None
        if _storable(username, users.c.username):
            with self.engine.connect() as conn:
                row = conn.execute(users.select().where(users.c.username == username)).first()
        stored = row.password_hash if row is not None else _dummy_hash()
        if not check_password_hash(stored, password) or row is None:
            return None
        return _user(row)

    def user(self, user_id: int) -> User | None:
        if not _in_range(user_id):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(users.select().where(users.c.id == user_id)).first()
        return row and _user(row)

    def user_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one()

    # sessions
    def start_session(self, user_id: int, now: datetime, expires_at: datetime) -> str:
        """A new session of ``user_id``: its token goes into the cookie, only its hash here.
        Sessions that have run out are cleared away on the way."""
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.expires_at <= _naive(now)))
            conn.execute(
                sessions.insert().values(
                    token_hash=_digest(token), user_id=user_id, expires_at=_naive(expires_at)
                )
            )
        return token

    def session_user(self, token: str, now: datetime) -> User | None:
        """The user of a session that has neither been ended nor run out."""
        query = (
            users.select()
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(sessions.c.token_hash == _digest(token), sessions.c.expires_at > _naive(now))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return row and _user(row)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.token_hash == _digest(token)))

    # failed log-ins, kept as hashes of the user name and the address (no personal data)
    def add_login_failure(self, user_name: str, address: str, at: datetime) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                login_failures.delete().where(login_failures.c.at < _naive(at) - FAILURES_KEPT)
            )
            return conn.execute(
                login_failures.insert().values(
                    at=_naive(at),
                    user_key=_digest(f"user:{user_name}"),
                    address_key=_digest(f"address:{address}"),
                )
            ).inserted_primary_key[0]

    def login_failures_since(
        self, user_name: str, address: str, since: datetime
    ) -> tuple[list[datetime], list[datetime]]:
        """When this user name, and this address, failed to log in since ``since``: oldest
        first, in UTC."""
        user_key, address_key = _digest(f"user:{user_name}"), _digest(f"address:{address}")
        query = (
            login_failures.select()
            .where(
                sa.or_(
                    login_failures.c.user_key == user_key,
                    login_failures.c.address_key == address_key,
                ),
                login_failures.c.at > _naive(since),
            )
            .order_by(login_failures.c.at, login_failures.c.id)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return (
            [row.at.replace(tzinfo=UTC) for row in rows if row.user_key == user_key],
            [row.at.replace(tzinfo=UTC) for row in rows if row.address_key == address_key],
        )

    def forget_login_failure(self, failure_id: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.id == failure_id))

    def forget_login_failures_of(self, user_name: str) -> None:
        user_key = _digest(f"user:{user_name}")
        with self.engine.begin() as conn:
            conn.execute(login_failures.delete().where(login_failures.c.user_key == user_key))

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
        if not _in_range(client_id):
            return None
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
    def send_mail(self, to: str, subject: str, body: str, client_id: int | None) -> None:
        """Keep the mail, as ``client_id``'s (None: the admin's alone)."""
        with self.engine.begin() as conn:
            mail_id = conn.execute(
                outbox.insert().values(
                    sent_at=_naive(datetime.now(UTC)), recipient=to, subject=subject, body=body
                )
            ).inserted_primary_key[0]
            if client_id is not None:
                conn.execute(mail_clients.insert().values(mail_id=mail_id, client_id=client_id))

    def mails(self, limit: int = 100) -> list[sa.Row]:
        """Every mail, newest first: the admin's outbox (and the tests')."""
        with self.engine.connect() as conn:
            return list(conn.execute(outbox.select().order_by(outbox.c.id.desc()).limit(limit)))

    def mails_for(self, user: User, limit: int = 100) -> list[sa.Row]:
        """The mail ``user`` may read: about their own clients, or everything for the admin."""
        if user.role == "admin":
            return self.mails(limit)
        query = (
            outbox.select()
            .join(mail_clients, mail_clients.c.mail_id == outbox.c.id)
            .join(clients, clients.c.id == mail_clients.c.client_id)
            .where(clients.c.reseller_id == user.id)
            .order_by(outbox.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def publish_file(self, domain: str, path: str, content: str) -> None:
        """Serve ``content`` at ``/<path>`` (under .well-known/), replacing what was there."""
        with self.engine.begin() as conn:
            conn.execute(well_known.delete().where(well_known.c.path == path))
            conn.execute(well_known.insert().values(path=path, domain=domain, content=content))

    def unpublish_file(self, domain: str, path: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                well_known.delete().where(well_known.c.path == path, well_known.c.domain == domain)
            )

    def published_file(self, path: str) -> str | None:
        if not _storable(path, well_known.c.path):
            return None
        with self.engine.connect() as conn:
            query = sa.select(well_known.c.content).where(well_known.c.path == path)
            return conn.execute(query).scalar_one_or_none()

    # certificates the SSL plugin reported issued
    def record_certificate(
        self, certificate_id: int, client_id: int, domain: str, not_after: datetime | None
    ) -> None:
        """Once per certificate: the plugin notifies once, but a host should not count on it."""
        ends = _naive(not_after) if not_after else None
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


# Failed log-ins older than this are deleted as new ones come in (longer than any throttle window).
FAILURES_KEPT = timedelta(days=1)
# The largest id an Integer column holds on every database (PostgreSQL's int4).
MAX_ID = 2**31 - 1


def _user(row: sa.Row) -> User:
    return User(row.id, row.username, row.role, row.display_name)


def _naive(moment: datetime) -> datetime:
    """UTC without a zone: how every DateTime column here stores time."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _in_range(row_id: int) -> bool:
    """Ids the column can hold: any other is no row, not a database error."""
    return 0 < row_id <= MAX_ID


def _storable(text: str, column: sa.Column) -> bool:
    """Whether ``text`` could be in ``column``: a name with NUL (which PostgreSQL refuses) or
    longer than the column is in no row, so it is not looked up."""
    return "\x00" not in text and len(text) <= column.type.length


@functools.cache
def _dummy_hash() -> str:
    """A hash made the way real ones are, so checking it costs what checking theirs does."""
    return generate_password_hash(secrets.token_urlsafe(16))
