"""Expiry reminders: mail before a certificate ends, once per certificate and threshold.

A schedule is a list of thresholds in days before ``not_after`` (30, 14, 7, 3 and 1 unless an
admin says otherwise), per provider account or globally. A round (``panel_tick``, ``panel-ssl
poll``, ``panel-ssl remind``) finds, in one query on the orders, every current issued certificate
that has crossed a threshold it was not reminded of; only the nearest crossed threshold counts,
so a certificate first seen five days before its end gets the 7-day reminder, not three at once.

Exactly once: before the mail leaves, a row (certificate, threshold) is inserted under a unique
constraint, holding a lease. The worker whose insert succeeded sends; a second poller's insert
fails and it moves on. Once the host accepted the mail the row is marked sent and nothing sends
it again. A mail the host refused keeps the row unsent with a later lease, so a later round tries
again; a worker that died mid-send leaves a lease that runs out, and the reminder is tried again
(a crash between the host accepting the mail and the row being marked is the one case that can
mail twice; losing a reminder would be worse).

The rows and queries are here rather than in store.py so this feature stays one module; the
tables are declared with the others in store.py's metadata.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

import flask
import jinja2
import pluggy
import sqlalchemy as sa

from panel_ssl_plugin import names
from panel_ssl_plugin.links import public_link
from panel_ssl_plugin.orders import OrderService
from panel_ssl_plugin.providers.base import OrderState
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.store import (
    IN_FLIGHT,
    Store,
    orders,
    provider_accounts,
    reminder_schedules,
    reminders,
    utcnow,
)

log = logging.getLogger(__name__)

DEFAULT_DAYS = (30, 14, 7, 3, 1)
GLOBAL_SCHEDULE = 0  # the schedules row of every account without its own (no account has id 0)
MAX_DAYS = 365
MAX_THRESHOLDS = 10
LEASE = timedelta(minutes=10)  # how long a worker may take to hand a reminder to the host
RETRY = timedelta(minutes=15)  # when a reminder the host refused is tried again
TEMPLATES_VARIABLE = "PANEL_SSL_TEMPLATES"
SUBJECT_TEMPLATE = "panel_ssl/mail/expiry_reminder_subject.txt"
BODY_TEMPLATE = "panel_ssl/mail/expiry_reminder.txt"
ACTOR = "reminders"
# The admin's leave to remind any contact address an order names, not only the client's own
# contacts in the panel ("1"); without it, a reseller cannot make the panel mail whomever they
# like in the panel's name.
ANY_CONTACT_ENV = "PANEL_SSL_REMIND_ANY_CONTACT"
# A name as mail may show it: letters, joined by spaces, dots, apostrophes and hyphens; anything
# else a reseller typed (a colon, a link, digits) is left out of the mail, not quoted.
MAIL_NAME = re.compile("[^\\W\\d_]+(?:[ .'\u2019-]+[^\\W\\d_]+)*\\.?")
MAIL_NAME_LIMIT = 64
# what the mail tells the client to do
RENEW, RENEWAL_PENDING, AUTO_RENEW = "renew", "renewal_pending", "auto_renew"


class ScheduleInvalid(ValueError):
    """A schedule an admin typed that cannot be used; ``str(error)`` says why, for the form."""


def parse_days(text: str) -> tuple[int, ...]:
    """ "30, 14, 7" → (30, 14, 7): whole days, each once, largest first; "" or "none" → ()."""
    words = [w for w in re.split(r"[\s,;]+", text.strip()) if w]
    if words in ([], ["none"]):
        return ()
    if not all(re.fullmatch("[0-9]{1,4}", w) for w in words):
        raise ScheduleInvalid("Give whole numbers of days, separated by commas, like 30,14,7,3,1.")
    days = sorted({int(w) for w in words}, reverse=True)
    if not 1 <= days[-1] <= days[0] <= MAX_DAYS:
        raise ScheduleInvalid(f"Each threshold is between 1 and {MAX_DAYS} days.")
    if len(days) > MAX_THRESHOLDS:
        raise ScheduleInvalid(f"At most {MAX_THRESHOLDS} thresholds.")
    return tuple(days)


def format_days(days: tuple[int, ...]) -> str:
    return ",".join(map(str, days))


@dataclass(frozen=True)
class Schedule:
    """When reminders go out and to whom: thresholds in days, largest first (none: no mail)."""

    days: tuple[int, ...] = DEFAULT_DAYS
    copy_reseller: bool = False


@dataclass(frozen=True)
class Schedules:
    """The global schedule, and what each provider account changes of it (None: as global)."""

    default: Schedule = Schedule()
    own: dict[int, tuple[tuple[int, ...] | None, bool | None]] = field(default_factory=dict)

    def for_account(self, provider_account_id: int) -> Schedule:
        days, copy = self.own.get(provider_account_id, (None, None))
        return Schedule(
            self.default.days if days is None else days,
            self.default.copy_reseller if copy is None else copy,
        )


@dataclass(frozen=True)
class Due:
    """A certificate that has crossed ``threshold`` and was not reminded of it yet."""

    order_id: int
    account_id: str
    provider_account_id: int
    domain: str
    product_name: str
    contact: dict
    not_after: datetime
    threshold: int
    auto_renew: bool
    renewal_id: int | None  # a renewal of this certificate in flight

    @property
    def action(self) -> str:
        if self.renewal_id is not None:
            return RENEWAL_PENDING
        return AUTO_RENEW if self.auto_renew else RENEW


@dataclass
class RemindReport:
    """What one round did, for the CLI and the host's logs."""

    due: int = 0
    sent: int = 0
    refused: int = 0  # by the host's mailer: tried again later
    unaddressed: int = 0  # the order has no contact address, and no reseller gets a copy
    taken: int = 0  # another worker holds them

    def summary(self) -> str:
        return (
            f"Expiry reminders: {self.due} due, {self.sent} sent, {self.refused} refused by the "
            f"mail host (tried again later), {self.unaddressed} without an address, "
            f"{self.taken} taken by another worker."
        )


class Reminders:
    """The expiry reminders of one host."""

    def __init__(self, orders: OrderService):
        self.pm: pluggy.PluginManager = orders.pm
        self.store: Store = orders.store
        self.engine = orders.store.engine
        self.any_contact = os.environ.get(ANY_CONTACT_ENV, "").strip() == "1"
        self._contacts: dict[str, frozenset[str]] = {}  # per round: an account's addresses

    # --- settings -------------------------------------------------------------------------------

    def schedules(self) -> Schedules:
        with self.engine.connect() as conn:
            rows = conn.execute(reminder_schedules.select()).all()
        stored = {
            row.provider_account_id: (
                None if row.days is None else parse_days(row.days),
                row.copy_reseller,
            )
            for row in rows
        }
        days, copy = stored.pop(GLOBAL_SCHEDULE, (None, None))
        default = Schedule(DEFAULT_DAYS if days is None else days, bool(copy))
        return Schedules(default, stored)

    def save_schedule(
        self, provider_account_id: int, days: tuple[int, ...] | None, copy_reseller: bool | None
    ) -> None:
        """Store a provider account's schedule (GLOBAL_SCHEDULE: the global one); None in a
        value means "as the global schedule says"."""
        values = {
            "days": None if days is None else format_days(days),
            "copy_reseller": copy_reseller,
            "updated_at": utcnow(),
        }
        update = reminder_schedules.update().values(values)
        update = update.where(reminder_schedules.c.provider_account_id == provider_account_id)
        with self.engine.begin() as conn:
            if conn.execute(update).rowcount:
                return
        try:
            with self.engine.begin() as conn:
                insert = reminder_schedules.insert()
                conn.execute(insert.values(provider_account_id=provider_account_id, **values))
        except sa.exc.IntegrityError:  # another admin saved it meanwhile: this save wins
            with self.engine.begin() as conn:
                conn.execute(update)

    # --- a round --------------------------------------------------------------------------------

    def run(self, now: datetime) -> RemindReport:
        """Send every reminder due at ``now``; safe to run in several pollers at once."""
        schedules = self.schedules()
        due = self.due(now, schedules)
        report = RemindReport(due=len(due))
        self._contacts.clear()
        for item in due:
            token = self._claim(item, now)
            if token is None:
                report.taken += 1
                continue
            outcome = self._send(item, schedules.for_account(item.provider_account_id), now, token)
            setattr(report, outcome, getattr(report, outcome) + 1)
        return report

    def due(self, now: datetime, schedules: Schedules) -> list[Due]:
        """The reminders due at ``now``, in one query (due_query)."""
        query = self.due_query(now, schedules)
        if query is None:
            return []
        with self.engine.connect() as conn:
            return [_due(row) for row in conn.execute(query)]

    @staticmethod
    def due_query(now: datetime, schedules: Schedules) -> sa.Select | None:
        """Current issued certificates past a threshold they were not reminded of: an index
        range on ``not_after`` up to the longest threshold (the certificates ending within it,
        never the rest of the table), each row checked by primary key and unique index (a newer
        certificate of its chain, a renewal in flight, a reminder sent). None when no schedule
        sends anything."""
        every = [schedules.default, *map(schedules.for_account, schedules.own)]
        longest = max(max(s.days, default=0) for s in every)
        if not longest:
            return None
        threshold = _threshold(schedules, now)
        root = sa.func.coalesce(orders.c.root_id, orders.c.id)
        later, renewal, reminded = (orders.alias(n) for n in ("later", "renewal", "reminded"))
        newer = sa.exists().where(
            later.c.status.in_((OrderState.ISSUED, OrderState.EXPIRED)),
            sa.or_(later.c.root_id == root, later.c.id == orders.c.root_id),
            sa.or_(
                later.c.not_after > orders.c.not_after,
                sa.and_(later.c.not_after == orders.c.not_after, later.c.id > orders.c.id),
            ),
        )
        # sent (or being sent) for this certificate, or for an older one of its chain with the
        # same end: a reissue keeps the end date, and its client was reminded already
        done = sa.exists().where(
            reminders.c.order_id == reminded.c.id,
            sa.or_(reminded.c.id == root, reminded.c.root_id == root),
            reminded.c.not_after == orders.c.not_after,
            reminders.c.days <= threshold,
            sa.or_(reminders.c.sent_at.is_not(None), reminders.c.claim_until > now),
        )
        in_flight = (
            sa.select(sa.func.min(renewal.c.id))
            .where(
                renewal.c.root_id == root,
                renewal.c.renewal_of.is_not(None),
                renewal.c.status.in_(IN_FLIGHT),
            )
            .scalar_subquery()
        )
        return (
            sa.select(
                orders.c.id,
                orders.c.account_id,
                orders.c.provider_account_id,
                orders.c.domain,
                orders.c.product_name,
                orders.c.contact,
                orders.c.not_after,
                threshold.label("threshold"),
                provider_accounts.c.auto_renew,
                in_flight.label("renewal_id"),
            )
            .join(provider_accounts, provider_accounts.c.id == orders.c.provider_account_id)
            .where(
                orders.c.status == OrderState.ISSUED,
                orders.c.not_after > now,
                orders.c.not_after <= now + timedelta(days=longest),
                threshold.is_not(None),
                ~newer,
                ~done,
            )
            .order_by(orders.c.not_after, orders.c.id)
        )

    # --- one reminder ---------------------------------------------------------------------------

    def _claim(self, item: Due, now: datetime) -> str | None:
        """Take the reminder for this worker: the row's insert, or the takeover of a lease that
        ran out unsent. None: another worker holds it or sent it."""
        token = secrets.token_hex(16)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    reminders.insert().values(
                        order_id=item.order_id,
                        days=item.threshold,
                        claim=token,
                        claim_until=now + LEASE,
                        attempts=1,
                        recipients="",
                    )
                )
            return token
        except sa.exc.IntegrityError:
            pass
        with self.engine.begin() as conn:
            taken = conn.execute(
                reminders.update()
                .where(
                    _row(item),
                    reminders.c.sent_at.is_(None),
                    reminders.c.claim_until <= now,
                )
                .values(claim=token, claim_until=now + LEASE, attempts=reminders.c.attempts + 1)
            ).rowcount
        return token if taken == 1 else None

    def _send(self, item: Due, schedule: Schedule, now: datetime, token: str) -> str:
        """Mail the client (and a copy to the reseller); which RemindReport count it makes.

        The reminder counts as sent once the host accepted the client's mail; the copy is not
        retried, since that would mail the client again. Without any address it is settled
        too: the order's contact will not change, and asking every round helps nobody."""
        client, why = self._addressee(item)
        reseller = self._reseller(item) if schedule.copy_reseller else None
        first = client or reseller
        if not first:
            self._settle(item, token, now, sent=True, nobody=why)
            return "unaddressed"
        subject, body = self.compose(item, now)
        if not self._mail(first, subject, body, item.account_id):
            self._settle(item, token, now, sent=False)
            return "refused"
        recipients = [first]
        if client and reseller:
            _, copy = self.compose(item, now, copy_of=client)
            if self._mail(reseller, subject, copy, item.account_id):
                recipients.append(reseller)
        self._settle(item, token, now, sent=True, recipients=recipients)
        return "sent"

    def _settle(
        self,
        item: Due,
        token: str,
        now: datetime,
        *,
        sent: bool,
        recipients: list[str] | None = None,
        nobody: str = "the order has no contact address",
    ) -> None:
        """Mark the reminder sent, or leave it for a later round (RETRY); by this worker's
        claim only, so a worker whose lease was taken over changes nothing."""
        values = (
            {"sent_at": now, "claim_until": None, "recipients": ", ".join(recipients or [])[:600]}
            if sent
            else {"claim_until": now + RETRY}
        )
        with self.engine.begin() as conn:
            conn.execute(
                reminders.update().where(_row(item), reminders.c.claim == token).values(values)
            )
        if sent:
            to = ", ".join(recipients or []) or f"nobody: {nobody}"
            detail = f"{item.threshold}-day expiry reminder sent to {to}"
            self.store.add_event(item.order_id, ACTOR, "reminder_sent", detail)

    def _addressee(self, item: Due) -> tuple[str, str]:
        """The client's address to remind, and why there is none: the order's contact, if the
        host knows it as one of the account's contacts (or the admin allows any)."""
        address = (item.contact.get("email") or "").strip()
        if not address:
            return "", "the order has no contact address"
        if self.any_contact or address.lower() in self._known(item.account_id):
            return address, ""
        return "", f"{address} is not one of the client's contacts in the panel"

    def _known(self, account_id: str) -> frozenset[str]:
        """The addresses the host has for the account's contacts, asked once per round."""
        if account_id not in self._contacts:
            try:
                contacts = self.pm.hook.host_account_contacts(account_id=account_id) or []
                profile = self.pm.hook.host_account_profile(account_id=account_id)
            except Exception:
                log.exception("the host could not say the contacts of account %s", account_id)
                contacts, profile = [], None
            if profile is not None and profile.default_contact is not None:
                contacts = [*contacts, profile.default_contact]
            self._contacts[account_id] = frozenset(c.email.lower() for c in contacts if c.email)
        return self._contacts[account_id]

    def _reseller(self, item: Due) -> str | None:
        address = self.pm.hook.host_reseller_email(account_id=item.account_id)
        return address.strip() if isinstance(address, str) and address.strip() else None

    def _mail(self, to: str, subject: str, body: str, account_id: str) -> bool:
        """Whether the host accepted the mail (about ``account_id``); a host's mailer failing
        is a refusal, not the end of the round."""
        try:
            sent = self.pm.hook.host_send_mail(
                to=to, subject=subject, body=body, account_id=account_id
            )
            return sent is True
        except Exception:
            log.exception("the host's host_send_mail failed for an expiry reminder")
            return False

    def compose(self, item: Due, now: datetime, copy_of: str = "") -> tuple[str, str]:
        """The subject and the plain-text body, from templates a host may override."""
        left = max(1, math.ceil((item.not_after - now) / timedelta(days=1)))
        context = {
            "domain": names.display_domain(item.domain),
            "certificate_id": item.order_id,
            "product_name": item.product_name,
            "contact_name": mail_name(item.contact),
            "end_date": f"{item.not_after:%Y-%m-%d %H:%M} UTC",
            "days_left": left,
            "days_left_text": f"{left} day{'' if left == 1 else 's'}",
            "threshold": item.threshold,
            "action": item.action,
            "renewal_id": item.renewal_id,
            "renew_url": public_link(
                self.pm,
                "cert_renew",
                f"/certs/{item.order_id}/renew",
                order_id=item.order_id,
            ),
            "copy_of": copy_of,
        }
        env = mail_templates()
        subject = " ".join(env.get_template(SUBJECT_TEMPLATE).render(context).split())
        body = env.get_template(BODY_TEMPLATE).render(context).strip() + "\n"
        return subject, body


def mail_name(contact: dict) -> str:
    """The contact's name, if it is one (MAIL_NAME, at most MAIL_NAME_LIMIT characters);
    else nothing: the mail says "Hello," rather than repeat what a reseller typed."""
    first, last = (str(contact.get(key) or "").strip() for key in ("first_name", "last_name"))
    name = " ".join(filter(None, (first, last)))
    return name if len(name) <= MAIL_NAME_LIMIT and MAIL_NAME.fullmatch(name) else ""


def mail_templates() -> jinja2.Environment:
    """Where the mail templates come from, the host's first, as for the page layouts: inside a
    Flask app with the plugin, the app's own loader (its templates folder, then the plugin's);
    elsewhere (cron), the folders in PANEL_SSL_TEMPLATES, then the plugin's."""
    if flask.has_app_context() and "panel_ssl" in flask.current_app.blueprints:
        return flask.current_app.jinja_env
    folders = tuple(filter(None, os.environ.get(TEMPLATES_VARIABLE, "").split(os.pathsep)))
    return _environment(folders)


@cache
def _environment(folders: tuple[str, ...]) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader([*folders, str(resource_path("templates"))])
    return jinja2.Environment(loader=loader, autoescape=False, undefined=jinja2.StrictUndefined)


def _threshold(schedules: Schedules, now: datetime) -> sa.ColumnElement:
    """The nearest threshold each certificate has crossed at ``now`` (NULL: none), as SQL: the
    smallest d of its account's schedule with not_after <= now + d days."""

    def crossed(days: tuple[int, ...]) -> sa.ColumnElement:
        if not days:
            return sa.null()
        whens = [
            (orders.c.not_after <= now + timedelta(days=d), sa.literal(d, sa.Integer))
            for d in sorted(days)
        ]
        return sa.case(*whens, else_=sa.null())

    accounts_by_days: dict[tuple[int, ...], list[int]] = {}
    for account_id in schedules.own:
        days = schedules.for_account(account_id).days
        if days != schedules.default.days:
            accounts_by_days.setdefault(days, []).append(account_id)
    default = crossed(schedules.default.days)
    if not accounts_by_days:
        return default
    branches = [
        (orders.c.provider_account_id.in_(ids), crossed(days))
        for days, ids in accounts_by_days.items()
    ]
    return sa.case(*branches, else_=default)


def _row(item: Due) -> sa.ColumnElement:
    return sa.and_(reminders.c.order_id == item.order_id, reminders.c.days == item.threshold)


def _due(row: sa.Row) -> Due:
    return Due(
        order_id=row.id,
        account_id=row.account_id,
        provider_account_id=row.provider_account_id,
        domain=row.domain,
        product_name=row.product_name,
        contact=json.loads(row.contact or "{}"),
        not_after=row.not_after,
        threshold=row.threshold,
        auto_renew=bool(row.auto_renew),
        renewal_id=row.renewal_id,
    )
