"""Issue 19, finding 7: a reseller made the panel mail anyone, in their own words.

Any address typed as an order's contact, with a contact name like "URGENT: your account is
suspended, pay at https://…", became an expiry reminder from the panel; and the minipanel filed
it in the outbox of whichever reseller's client had that address, since ``host_send_mail`` named
no account. Now every mail names the account it is about (``account_id``, bridged too; the
minipanel files by it), a name in mail is a name (its charset, its length) or nothing, and
reminders go only to addresses the host knows for that account unless the admin allows more.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.reminders import ANY_CONTACT_ENV, Reminders
from panel_ssl_plugin.runtime import runtime_for
from tests.conftest import login, minipanel
from tests.ordering import approve, draft
from tests.test_minipanel import client_ids

LURE = {
    "first_name": "URGENT: your account is suspended, pay at",
    "last_name": "https://evil.example/pay",
    "email": "ingrid@fjord-tours.example",  # bob's client's contact
}


class Mailroom:
    """A host's mailer that records which account each mail was about."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, str, str | None]] = []

    @hookimpl(tryfirst=True)
    def host_send_mail(self, to, subject, body, account_id):
        self.mails.append((to, subject, account_id))


class OldMailer:
    """A hookimpl written before account_id: pluggy passes what it names, so it still works."""

    def __init__(self) -> None:
        self.mails: list[str] = []

    @hookimpl(tryfirst=True)
    def host_send_mail(self, to, subject, body):
        self.mails.append(to)


def issued(app, contact: dict, account_id: str):
    runtime = runtime_for(app.extensions["hosting_panel"])
    account = runtime.accounts.all()[0].id
    order = runtime.orders.place(
        draft(account, account_id=account_id, contact=contact), "alice"
    ).order
    return approve(app, runtime, order)


def remind(app, order) -> None:
    Reminders(runtime_for(app.extensions["hosting_panel"]).orders).run(
        order.not_after - timedelta(days=29)
    )


def outbox_of(app, user: str) -> str:
    client = app.test_client()
    login(client, user)
    return client.get("/outbox").text


def test_a_reminder_goes_only_to_an_address_the_host_knows_for_the_account(sqlite_url):
    """The reported attack: alice's client's order with bob's client's address and a lure."""
    app = minipanel(sqlite_url)
    bakery = str(client_ids(app, "alice")[0])
    order = issued(app, LURE, bakery)
    remind(app, order)
    recipients = [m.recipient for m in app.extensions["minipanel"].mails(100)]
    assert LURE["email"] not in recipients
    assert "evil.example" not in outbox_of(app, "bob") + outbox_of(app, "admin")
    events = runtime_for(app.extensions["hosting_panel"]).orders.events(order.id)
    assert any("not one of the client's contacts" in e.detail for e in events)


def test_the_admin_may_allow_any_address_and_a_lure_is_still_no_name(sqlite_url, monkeypatch):
    monkeypatch.setenv(ANY_CONTACT_ENV, "1")
    app = minipanel(sqlite_url)
    bakery = str(client_ids(app, "alice")[0])
    remind(app, issued(app, LURE, bakery))
    (mail,) = [m for m in app.extensions["minipanel"].mails(100) if m.recipient == LURE["email"]]
    assert mail.body.startswith("Hello,\n") and "URGENT" not in mail.body
    assert "evil.example" not in mail.body
    assert "ends on" in outbox_of(app, "alice")  # filed as the account's, not by address
    assert "ends on" not in outbox_of(app, "bob")


def test_a_name_is_a_name_in_mail(sqlite_url):
    app = minipanel(sqlite_url)
    bakery = str(client_ids(app, "alice")[0])
    contact = {"first_name": "Hans-Jürgen", "last_name": "O'Müller", "email":
               "hans@baeckerei-mueller.example"}  # fmt: skip
    remind(app, issued(app, contact, bakery))
    (mail,) = [m for m in app.extensions["minipanel"].mails(100) if "ends on" in m.body]
    assert mail.body.startswith("Hello Hans-Jürgen O'Müller,\n")


def test_every_mail_names_the_account_it_is_about(sqlite_url):
    mailroom = Mailroom()
    app = minipanel(sqlite_url, mailroom)
    bakery = str(client_ids(app, "alice")[0])
    order = issued(app, {**LURE, "email": "hans@baeckerei-mueller.example"}, bakery)
    remind(app, order)
    assert {account for _, _, account in mailroom.mails} == {bakery}
    assert len(mailroom.mails) == 2  # the approval mail and the reminder


@pytest.mark.parametrize("mailer", [OldMailer])
def test_a_hookimpl_without_account_id_still_sends(sqlite_url, mailer):
    old = mailer()
    app = minipanel(sqlite_url, old)
    issued(app, {**LURE, "email": "hans@baeckerei-mueller.example"},
           str(client_ids(app, "alice")[0]))  # fmt: skip
    assert old.mails  # the approval mail
