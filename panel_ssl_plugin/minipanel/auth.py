"""Who is logged in: sessions kept on the server, and the login throttle.

A signed cookie alone cannot be taken back: a copy works until it expires, logout or not. So
the cookie carries a session token and the database says whether it still counts; logout
deletes it. Failed log-ins are counted in the database too, so every process of the panel
shares one count, by user name (a guess at one account from many addresses) and by address
(many names from one place).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import flask

from panel_ssl_plugin.minipanel.db import PanelDB, User

SESSION_KEY = "sid"


@dataclass(frozen=True)
class Throttle:
    """How many failed log-ins within ``window`` a user name (from anywhere) and an address
    (for any name) may have before further attempts are refused without a password check. An
    address gets more: a whole office may sit behind one."""

    per_user: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


THROTTLE = Throttle()


class Throttled(Exception):
    """Too many failed log-ins: try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int):
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        super().__init__(
            "Too many failed log-ins for this user name or from this address: try again in "
            f"{minutes} minute{'s' if minutes != 1 else ''}."
        )


def log_in(db: PanelDB, username: str, password: str, address: str) -> User | None:
    """The user these credentials are for, or None; raises Throttled while too many failed.

    The attempt is written down as a failure before it is counted, so guesses sent at once
    count one another; a refused attempt is struck off again (no password was checked), a
    successful one forgives the user name its failures.
    """
    now = datetime.now(UTC)
    name = username.casefold()  # MariaDB finds "ALICE" as alice: one count for both
    failure = db.add_login_failure(name, address, now)
    by_user, by_address = db.login_failures_since(name, address, now - THROTTLE.window)
    wait = max(_wait(by_user, THROTTLE.per_user, now), _wait(by_address, THROTTLE.per_address, now))
    if wait:
        db.forget_login_failure(failure)
        raise Throttled(wait)
    user = db.authenticate(username, password)
    if user is not None:
        db.forget_login_failures_of(name)
    return user


def start_session(db: PanelDB, user: User, lifetime: timedelta) -> None:
    """A fresh session for ``user``: the one this browser had before ends (no fixation, and no
    earlier user's session lives on behind the new cookie)."""
    end_session(db)
    now = datetime.now(UTC)
    flask.session[SESSION_KEY] = db.start_session(user.id, now, now + lifetime)


def current_user(db: PanelDB) -> User | None:
    """The user of this request's session, if it has not been ended or run out."""
    token = flask.session.get(SESSION_KEY)
    return db.session_user(token, datetime.now(UTC)) if isinstance(token, str) else None


def end_session(db: PanelDB) -> None:
    """Log out: the session's row goes, so every copy of the cookie is anonymous from now on."""
    token = flask.session.get(SESSION_KEY)
    if isinstance(token, str):
        db.end_session(token)
    flask.session.clear()


def _wait(failures: list[datetime], limit: int, now: datetime) -> int:
    """Seconds until fewer than ``limit`` failures precede the newest one in ``failures`` (this
    attempt) within the window; 0 when that is so already."""
    earlier = len(failures) - 1
    if earlier < limit:
        return 0
    frees = failures[earlier - limit] + THROTTLE.window
    return max(1, math.ceil((frees - now).total_seconds()))
