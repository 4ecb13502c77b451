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

The rows and their queries are the store's (store/reminder_queries.py): this module decides
what is due and sends it, and hands the store its schedules as plain tuples of days.
"""

from __future__ import annotations

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

from panel_ssl_plugin import names
from panel_ssl_plugin.links import public_link
from panel_ssl_plugin.orders import OrderService
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.store import Due, Store

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
        self.any_contact = os.environ.get(ANY_CONTACT_ENV, "").strip() == "1"
        self._contacts: dict[str, frozenset[str]] = {}  # per round: an account's addresses

    # --- settings -------------------------------------------------------------------------------

    def schedules(self) -> Schedules:
        stored = {
            account: (None if days is None else parse_days(days), copy)
            for account, (days, copy) in self.store.reminder_schedule_rows().items()
        }
        days, copy = stored.pop(GLOBAL_SCHEDULE, (None, None))
        default = Schedule(DEFAULT_DAYS if days is None else days, bool(copy))
        return Schedules(default, stored)

    def save_schedule(
        self, provider_account_id: int, days: tuple[int, ...] | None, copy_reseller: bool | None
    ) -> None:
        """Store a provider account's schedule (GLOBAL_SCHEDULE: the global one); None in a
        value means "as the global schedule says"."""
        text = None if days is None else format_days(days)
        self.store.save_reminder_schedule(provider_account_id, text, copy_reseller)

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
        """The reminders due at ``now``, in one query (store/reminder_queries.py)."""
        own = {account: schedules.for_account(account).days for account in schedules.own}
        return self.store.reminders_due(now, schedules.default.days, own)

    # --- one reminder ---------------------------------------------------------------------------

    def _claim(self, item: Due, now: datetime) -> str | None:
        """Take the reminder for this worker; its claim token, or None: another worker holds
        it or sent it."""
        token = secrets.token_hex(16)
        return token if self.store.claim_reminder(item, token, now, LEASE) else None

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
        if not sent:
            self.store.reminder_retry(item, token, now + RETRY)
            return
        self.store.reminder_sent(item, token, now, ", ".join(recipients or []))
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
            "action": action(item),
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


def action(item: Due) -> str:
    """What the mail tells the client to do."""
    if item.renewal_id is not None:
        return RENEWAL_PENDING
    return AUTO_RENEW if item.auto_renew else RENEW


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
