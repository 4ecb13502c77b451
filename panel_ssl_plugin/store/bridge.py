"""What the bridge (panel_ssl_plugin/bridge) remembers between requests: used launch tokens and
event ids, sessions and the accounts granted to them.

Every guarantee is the database's: a token id and an event id are primary keys, so of twenty
processes presenting one token (or one signed event) at once exactly one uses it. The bridge's
webhooks are outbox.py's.

A session ends after ``IDLE`` without a request, ``SESSION_LIFETIME`` after it began at the
latest, when the panel posts ``logout`` for its user, or when the browser switches users.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from panel_ssl_plugin.hookspecs import Actor
from panel_ssl_plugin.store.tables import (
    Queries,
    bridge_events,
    bridge_grants,
    bridge_launches,
    bridge_sessions,
)

if TYPE_CHECKING:
    from panel_ssl_plugin.bridge.tokens import Launch

SESSION_LIFETIME = timedelta(hours=8)  # a working day at most; a new launch link starts a new one
IDLE = timedelta(minutes=30)  # a session unused this long is over
TOUCH = timedelta(minutes=1)  # a session's end moves at most once a minute (a write, not each hit)
KEEP_USED = timedelta(minutes=5)  # a used token id is kept this long past the token's exp


@dataclass(frozen=True)
class Session:
    """A launch session: who it is, and the accounts its launch tokens named."""

    id: int
    actor: Actor
    accounts: frozenset[str] = frozenset()


class _UsedBefore(Exception):
    """The launch token's id is in the table already."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class BridgeRecords(Queries):
    """The queries of the bridge's own tables, on the host's engine."""

    def launch(self, launch: Launch, cookie: str | None, now: datetime) -> str | None:
        """Use ``launch`` once and grant its account to a session: the one ``cookie`` names
        when it is the same actor's and still open, else a new one. Returns the cookie to set,
        or None when the token was used before (nothing is granted then).

        One transaction: the token's id is inserted first, so a replay fails on the primary
        key before anything else is written, and a crash afterwards leaves no half session.
        """
        try:
            with self.engine.begin() as conn:
                self._use(conn, launch)
                session = self._open(conn, cookie, now) if cookie else None
                if session is None or session.actor != launch.actor:
                    cookie = secrets.token_urlsafe(32)
                    session = Session(self._start(conn, launch.actor, cookie, now), launch.actor)
                if launch.account not in session.accounts:
                    grant = {"session_id": session.id, "account_id": launch.account}
                    conn.execute(bridge_grants.insert().values(grant))
        except _UsedBefore:
            return None
        return cookie

    def use_event(self, event_id: str, keep_until: datetime) -> bool:
        """Record a signed event's id; False when it was received before (a replay)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(bridge_events.insert().values(id=event_id, expires_at=keep_until))
        except sa.exc.IntegrityError:
            return False
        return True

    def end(self, cookie: str) -> None:
        """End the session ``cookie`` names (the browser switched users)."""
        ended = sa.select(bridge_sessions.c.id).where(bridge_sessions.c.token_hash == _hash(cookie))
        self._delete(ended)

    def end_sessions_of(self, actor_id: str) -> int:
        """End every session of the panel's user ``actor_id`` (the panel logged them out)."""
        return self._delete(
            sa.select(bridge_sessions.c.id).where(bridge_sessions.c.actor_id == actor_id)
        )

    def _delete(self, sessions: sa.Select) -> int:
        with self.engine.begin() as conn:
            ids = list(conn.execute(sessions).scalars())
            if ids:
                conn.execute(bridge_grants.delete().where(bridge_grants.c.session_id.in_(ids)))
                conn.execute(bridge_sessions.delete().where(bridge_sessions.c.id.in_(ids)))
        return len(ids)

    @staticmethod
    def _use(conn: sa.Connection, launch: Launch) -> None:
        try:
            conn.execute(
                bridge_launches.insert().values(
                    jti=launch.jti, expires_at=launch.expires_at + KEEP_USED
                )
            )
        except sa.exc.IntegrityError:
            raise _UsedBefore from None  # leaving the block rolls the transaction back

    def session(self, cookie: str, now: datetime) -> Session | None:
        """The open session ``cookie`` names, or None; using it keeps it open ``IDLE`` longer
        (within its lifetime), written at most once a ``TOUCH``."""
        with self.engine.connect() as conn:
            return self._open(conn, cookie, now, touch=True)

    def _open(
        self, conn: sa.Connection, cookie: str, now: datetime, touch: bool = False
    ) -> Session | None:
        row = conn.execute(
            bridge_sessions.select().where(
                bridge_sessions.c.token_hash == _hash(cookie), bridge_sessions.c.expires_at > now
            )
        ).first()
        if row is None:
            return None
        until = min(row.created_at + SESSION_LIFETIME, now + IDLE)
        if touch and until - row.expires_at >= TOUCH:
            with self.engine.begin() as writer:
                writer.execute(
                    bridge_sessions.update()
                    .where(bridge_sessions.c.id == row.id)
                    .values(expires_at=until)
                )
        accounts = conn.execute(
            sa.select(bridge_grants.c.account_id).where(bridge_grants.c.session_id == row.id)
        ).scalars()
        actor = Actor(row.actor_id, row.actor_name, row.role)
        return Session(row.id, actor, frozenset(accounts))

    @staticmethod
    def _start(conn: sa.Connection, actor: Actor, cookie: str, now: datetime) -> int:
        return conn.execute(
            bridge_sessions.insert().values(
                token_hash=_hash(cookie),
                actor_id=actor.id,
                actor_name=actor.name,
                role=actor.role,
                created_at=now,
                expires_at=now + min(IDLE, SESSION_LIFETIME),
            )
        ).inserted_primary_key[0]

    def forget_expired(self, now: datetime) -> None:
        """Delete ended sessions with their grants, and token ids whose tokens expired (they
        are refused for their exp now). Run from the tick, apart from the launches: a range
        delete beside the launch inserts would make MariaDB's gap locks collide."""
        ended = sa.select(bridge_sessions.c.id).where(bridge_sessions.c.expires_at <= now)
        with self.engine.begin() as conn:
            conn.execute(bridge_grants.delete().where(bridge_grants.c.session_id.in_(ended)))
            conn.execute(bridge_sessions.delete().where(bridge_sessions.c.expires_at <= now))
            conn.execute(bridge_launches.delete().where(bridge_launches.c.expires_at < now))
            conn.execute(bridge_events.delete().where(bridge_events.c.expires_at < now))
