"""Expiry reminders: once per certificate and threshold, with pollers racing, on every database."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from panel_ssl_plugin import hookimpls
from panel_ssl_plugin.cli import main
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.reminders import (
    GLOBAL_SCHEDULE,
    LEASE,
    RETRY,
    Reminders,
    ScheduleInvalid,
    parse_days,
)
from panel_ssl_plugin.runtime import Runtime, runtime_for
from panel_ssl_plugin.store import OrderRecord, orders, reminder_schedules, reminders

from .conftest import csrf_token, fresh_database, minipanel
from .ordering import approve, draft
from .test_minipanel import client_ids

SUBJECT = re.compile(r"The SSL certificate for (\S+) ends in (\d+) days?")
RESELLER = "ann@reseller.example"


def runtime(app) -> Runtime:
    return runtime_for(app.extensions["hosting_panel"])


def reminder_mails(app) -> list:
    """The outbox's expiry reminders, oldest first."""
    return [
        m for m in reversed(app.extensions["minipanel"].mails(1000)) if SUBJECT.match(m.subject)
    ]


def per_domain(app) -> Counter[str]:
    return Counter(SUBJECT.match(m.subject).group(1) for m in reminder_mails(app))


def certificate(app, domain: str, provider_account_id: int | None = None) -> OrderRecord:
    """An issued sandbox certificate: placed, then approved through the outbox."""
    rt = runtime(app)
    account = provider_account_id or rt.accounts.all()[0].id
    order = rt.orders.place(draft(account, domain=domain), "alice").order
    return approve(app, rt, order)


def move(app, order: OrderRecord, **values) -> OrderRecord:
    """Change a stored certificate as the provider's answers would (a status, an end date)."""
    rt = runtime(app)
    return rt.orders.store.update_order(rt.orders.get(order.id), "test", "test", **values)


def race(runtimes: list[Runtime], now: datetime) -> None:
    """Every runtime runs a reminder round at once (a barrier releases them together)."""
    barrier = threading.Barrier(len(runtimes))
    errors: list[BaseException] = []

    def run(rt: Runtime) -> None:
        barrier.wait()
        try:
            Reminders(rt.orders).run(now)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(rt,)) for rt in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_time_moves_from_31_days_to_the_end_with_two_pollers(database_url):
    """The acceptance test: day by day through the schedule, two pollers racing each round."""
    app = minipanel(database_url)
    second = create_app({"DATABASE_URL": database_url, "PLUGINS": [hookimpls], "TESTING": True})
    rt = runtime(app)
    plain = certificate(app, "plain.example.com")
    renewed = certificate(app, "renewed.example.com")
    cancelled = certificate(app, "cancelled.example.com")
    revoked = move(app, certificate(app, "revoked.example.com"), status="revoked")
    end = max(o.not_after for o in (plain, renewed, cancelled, revoked))
    # first seen five days before its end: only the 7-day reminder, then 3 and 1
    move(app, certificate(app, "late.example.com"), not_after=end - timedelta(days=26))
    # an account of its own: auto-renew on, reminders at 7 and 1 days
    auto = rt.accounts.create("sandbox", "Auto", {}, auto_renew=True)
    Reminders(rt.orders).save_schedule(auto, (7, 1), None)
    certificate(app, "auto.example.com", auto)

    renewal = None
    for days in range(31, -1, -1):
        now = end - timedelta(days=days)
        if days == 20:
            move(app, cancelled, status="cancelled")
        if days == 10:
            renewal = rt.follow_ups.renew(renewed.id, "alice").order
        if days == 5:  # issued, and the CA adds the old certificate's remaining time
            issued = approve(app, rt, renewal)
            move(app, issued, not_after=renewed.not_after + timedelta(days=365))
        race([rt, runtime(second)], now)

    assert per_domain(app) == {
        "plain.example.com": 5,  # 30, 14, 7, 3, 1
        "renewed.example.com": 3,  # 30, 14; 7 with the renewal pending; none once issued
        "cancelled.example.com": 1,  # 30, then cancelled
        "late.example.com": 3,  # 7, 3, 1
        "auto.example.com": 2,  # its account's 7 and 1
    }
    days_left = [
        (SUBJECT.match(m.subject).group(1), int(SUBJECT.match(m.subject).group(2)))
        for m in reminder_mails(app)
    ]
    assert [d for name, d in days_left if name == "plain.example.com"] == [30, 14, 7, 3, 1]
    assert [d for name, d in days_left if name == "late.example.com"] == [5, 3, 1]
    bodies = {SUBJECT.match(m.subject).group(1): m.body for m in reminder_mails(app)}
    assert f"/ssl/certs/{plain.id}/renew" in bodies["plain.example.com"]
    assert f"A renewal is already pending (order #{renewal.id})" in bodies["renewed.example.com"]
    assert "Auto-renew will handle it" in bodies["auto.example.com"]
    assert {m.recipient for m in reminder_mails(app)} == {"hans@baeckerei-mueller.example"}
    with rt.engine.connect() as conn:
        rows = conn.execute(sa.select(reminders.c.order_id, reminders.c.days)).all()
    assert len(rows) == 14 and Counter(rows).most_common(1)[0][1] == 1
    events = [e.detail for e in rt.orders.store.events(plain.id) if e.event == "reminder_sent"]
    assert events[0] == "30-day expiry reminder sent to hans@baeckerei-mueller.example"


def issued_orders(app, count: int, end: datetime) -> list[datetime]:
    """``count`` issued certificates ending from ``end`` on, a day apart, written directly: the
    rows the query must pass over, as many as a big panel has; their end dates."""
    template = runtime(app).orders.get(certificate(app, "template.example.com").id)
    values = {c.name: getattr(template, c.name) for c in orders.c if c.name != "id"}
    values["contact"] = '{"email": "hans@baeckerei-mueller.example"}'
    for name in ("addons", "sans", "validation", "provider_data"):
        values[name] = "[]" if name != "provider_data" else "{}"
    values["organization_address"] = values["san_approvers"] = None
    rows = [
        {
            **values,
            "domain": f"site{n}.example.com",
            "idempotency_key": f"bulk-{n}",
            "not_after": end + timedelta(days=n % 700, minutes=n % 60),
        }
        for n in range(count)
    ]
    with runtime(app).engine.begin() as conn:
        conn.execute(orders.insert(), rows)
    return [row["not_after"] for row in rows]


@pytest.fixture
def statements():
    """``statements(engine)``: the list of (SQL, parameters) the engine runs from then on."""
    seen: list[tuple[str, object]] = []

    def listen(engine: sa.Engine) -> list[tuple[str, object]]:
        sa.event.listen(engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
        return seen

    return listen


@pytest.mark.parametrize("count", [10, 2000])
def test_a_round_is_one_query_on_the_orders_whatever_their_number(sqlite_url, statements, count):
    app = minipanel(sqlite_url)
    now = datetime.now(UTC)
    issued_orders(app, count, now + timedelta(days=60))
    seen = statements(runtime(app).engine)

    report = Reminders(runtime(app).orders).run(now)

    assert report.due == 0
    assert len(seen) == 2, seen  # the schedules, and the one query on ssl_orders
    assert sum("ssl_orders" in sql for sql, _ in seen) == 1


@pytest.fixture
def postgresql_url(server_engines, tmp_path):
    yield from fresh_database("postgresql", server_engines, tmp_path)


def test_postgresql_finds_due_reminders_through_the_end_date_index(postgresql_url, statements):
    """EXPLAIN of the very statement a round ran, among 20,000 certificates over two years."""
    app = minipanel(postgresql_url)
    now = datetime.now(UTC)
    ends = issued_orders(app, 20000, now - timedelta(days=30))
    engine = runtime(app).engine
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE ssl_orders")
        conn.commit()
    seen = statements(engine)

    report = Reminders(runtime(app).orders).run(now)

    statement, parameters = next((sql, p) for sql, p in seen if "FROM ssl_orders" in sql)
    with engine.connect() as conn:
        plan = "\n".join(conn.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars())
    assert "ix_ssl_orders_status_not_after" in plan, plan
    assert "Seq Scan on ssl_orders" not in plan, plan
    assert report.due == sum(now < end <= now + timedelta(days=30) for end in ends)


class FlakyMail:
    """A host whose mailer refuses the first ``refusals`` mails (False) or raises on them."""

    def __init__(self, refusals: int, failure: type[Exception] | None = None):
        self.refusals, self.failure = refusals, failure

    @hookimpl
    def host_send_mail(self, to: str, subject: str, body: str) -> bool | None:
        if self.refusals <= 0:
            return None  # the minipanel's own mailer takes it
        self.refusals -= 1
        if self.failure:
            raise self.failure("SMTP server said 451")
        return False


@pytest.mark.parametrize("failure", [None, OSError], ids=["refused", "raised"])
def test_a_mail_the_host_refused_is_sent_later_and_then_never_again(sqlite_url, failure):
    mailer = FlakyMail(0, failure)
    app = minipanel(sqlite_url, mailer)
    cert = certificate(app, "flaky.example.com")
    mailer.refusals = 1
    now = cert.not_after - timedelta(days=29)
    reminder = Reminders(runtime(app).orders)

    assert reminder.run(now).refused == 1
    assert reminder.run(now + RETRY - timedelta(seconds=1)).due == 0  # not before its retry
    assert reminder.run(now + RETRY).sent == 1
    assert reminder.run(now + RETRY + timedelta(hours=1)).due == 0
    assert per_domain(app) == {"flaky.example.com": 1}


def test_a_worker_that_died_while_sending_leaves_it_to_another_after_its_lease(sqlite_url):
    app = minipanel(sqlite_url)
    cert = certificate(app, "crash.example.com")
    now = cert.not_after - timedelta(days=29)
    reminder = Reminders(runtime(app).orders)
    (due,) = reminder.due(now, reminder.schedules())
    assert reminder._claim(due, now) is not None  # ... and the worker dies here

    assert reminder.run(now + LEASE - timedelta(seconds=1)).due == 0
    assert reminder.run(now + LEASE).sent == 1
    assert per_domain(app) == {"crash.example.com": 1}
    with runtime(app).engine.connect() as conn:
        assert conn.execute(sa.select(reminders.c.attempts)).scalar_one() == 2


class Reseller:
    @hookimpl
    def host_reseller_email(self, account_id: str) -> str:
        return RESELLER


def test_the_reseller_gets_a_copy_when_the_settings_ask_for_one(sqlite_url):
    app = minipanel(sqlite_url, Reseller())
    cert = certificate(app, "copy.example.com")
    reminder = Reminders(runtime(app).orders)
    reminder.run(cert.not_after - timedelta(days=29))
    assert [m.recipient for m in reminder_mails(app)] == ["hans@baeckerei-mueller.example"]

    reminder.save_schedule(GLOBAL_SCHEDULE, (30, 14), True)
    reminder.run(cert.not_after - timedelta(days=13))

    mails = reminder_mails(app)
    assert [m.recipient for m in mails] == [
        "hans@baeckerei-mueller.example",
        "hans@baeckerei-mueller.example",
        RESELLER,
    ]
    assert mails[-1].body.startswith(
        "A copy of the reminder sent to hans@baeckerei-mueller.example."
    )


def test_a_host_overrides_the_mail_templates(sqlite_url, tmp_path, monkeypatch):
    app = minipanel(sqlite_url)
    cert = certificate(app, "own.example.com")
    folder = tmp_path / "templates" / "panel_ssl" / "mail"
    folder.mkdir(parents=True)
    (folder / "expiry_reminder.txt").write_text("Our words: {{ domain }}, {{ days_left }} days.")
    monkeypatch.setenv("PANEL_SSL_TEMPLATES", str(tmp_path / "templates"))

    Reminders(runtime(app).orders).run(cert.not_after - timedelta(days=29))  # cron: no app

    (mail,) = reminder_mails(app)
    assert mail.body == "Our words: own.example.com, 29 days.\n"


def test_inside_the_app_the_hosts_templates_folder_wins(sqlite_url, tmp_path):
    app = minipanel(sqlite_url)
    cert = certificate(app, "app.example.com")
    folder = tmp_path / "panel_ssl" / "mail"
    folder.mkdir(parents=True)
    (folder / "expiry_reminder_subject.txt").write_text("Renew {{ domain }}")
    app.jinja_loader.searchpath.insert(0, str(tmp_path))

    with app.app_context():
        Reminders(runtime(app).orders).run(cert.not_after - timedelta(days=29))

    assert app.extensions["minipanel"].mails(1)[0].subject == "Renew app.example.com"


@pytest.mark.parametrize(
    ("text", "days"),
    [("30,14,7,3,1", (30, 14, 7, 3, 1)), ("1 7, 3", (7, 3, 1)), ("none", ()), ("", ())],
)
def test_schedules_are_read_largest_first(text, days):
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["abc", "0", "400", "7,-1", "1,2,3,4,5,6,7,8,9,10,11", "٣"])
def test_a_schedule_that_cannot_be_used_says_why(text):
    with pytest.raises(ScheduleInvalid):
        parse_days(text)


LIST = "/ssl/admin/providers"


def test_the_admin_sets_the_global_schedule_and_an_accounts_own(app, as_user):
    admin = as_user("admin")
    token = csrf_token(admin, LIST)
    saved = admin.post("/ssl/admin/reminders", data={"csrf_token": token, "days": "14, 2"})
    assert saved.status_code == 302
    refused = admin.post("/ssl/admin/reminders", data={"csrf_token": token, "days": "soon"})
    assert refused.status_code == 302
    page = admin.get(LIST).get_data(as_text=True)
    assert "Expiry reminders go out 14,2 days before the end." in page
    assert "Give whole numbers of days" in page and 'value="14,2"' in page

    account = runtime(app).accounts.all()[0]
    edit = f"{LIST}/{account.id}/edit"
    form = {
        "csrf_token": csrf_token(admin, edit),
        "label": account.label,
        "enabled": "y",
        "settings-organization": "Demo CA",
        "settings-reject_message": "",
        "settings-issue_delay": "0",
        "settings-periods": ["12", "24"],
        "reminder_copy": "yes",
    }
    bad = admin.post(edit, data={**form, "reminder_days": "0"})
    assert bad.status_code == 200 and "between 1 and 365" in bad.get_data(as_text=True)
    assert admin.post(edit, data={**form, "reminder_days": "5"}).status_code == 302

    schedules = Reminders(runtime(app).orders).schedules()
    assert schedules.default.days == (14, 2)
    assert schedules.for_account(account.id).days == (5,)
    assert schedules.for_account(account.id).copy_reseller is True
    assert 'value="5"' in admin.get(edit).get_data(as_text=True)
    assert admin.post(edit, data={**form, "reminder_days": ""}).status_code == 302
    assert Reminders(runtime(app).orders).schedules().for_account(account.id).days == (14, 2)


def test_panel_ssl_remind_and_poll_send_what_is_due_once(sqlite_url):
    app = minipanel(sqlite_url)
    move(
        app, certificate(app, "cron.example.com"), not_after=datetime.now(UTC) + timedelta(days=10)
    )
    cron = ["--minipanel", "--database-url", sqlite_url]

    remind = CliRunner().invoke(main, ["remind", *cron])
    poll = CliRunner().invoke(main, ["poll", *cron])

    assert remind.exit_code == 0 and "1 due, 1 sent" in remind.output, remind.output
    assert poll.exit_code == 0 and "Expiry reminders: 0 due" in poll.output, poll.output
    assert per_domain(app) == {"cron.example.com": 1}


def test_the_hosts_tick_sends_them(sqlite_url):
    app = minipanel(sqlite_url)
    cert = certificate(app, "tick.example.com")
    pm = app.extensions["hosting_panel"]

    pm.hook.panel_tick(pm=pm, now=cert.not_after - timedelta(days=2))

    (mail,) = reminder_mails(app)
    assert mail.subject == "The SSL certificate for tick.example.com ends in 2 days"


def test_a_reissue_with_the_same_end_is_not_reminded_again_of_a_threshold(sqlite_url):
    app = minipanel(sqlite_url)
    rt = runtime(app)
    cert = certificate(app, "reissued.example.com")
    reminder = Reminders(rt.orders)
    reminder.run(cert.not_after - timedelta(days=29))
    reissue = approve(app, rt, rt.follow_ups.reissue(cert.id, "alice").order)
    move(app, reissue, not_after=cert.not_after)  # the CA kept the end date

    assert reminder.run(cert.not_after - timedelta(days=28)).due == 0
    assert reminder.run(cert.not_after - timedelta(days=13)).sent == 1

    days = [SUBJECT.match(m.subject).group(2) for m in reminder_mails(app)]
    assert days == ["29", "13"]
    assert [e.event for e in rt.orders.store.events(reissue.id)].count("reminder_sent") == 1


def test_the_minipanel_shows_a_reminder_to_the_reseller_of_its_client(app, as_user):
    alices = client_ids(app, "alice")[0]
    contact = app.extensions["minipanel"].contacts_of(alices)[0]
    rt = runtime(app)
    placed = rt.orders.place(
        draft(
            rt.accounts.all()[0].id,
            account_id=str(alices),
            domain="shop.alice.example",
            contact={"first_name": "A", "last_name": "B", "email": contact.email},
        ),
        "alice",
    ).order
    cert = approve(app, rt, placed)

    Reminders(rt.orders).run(cert.not_after - timedelta(days=6))

    subject = "The SSL certificate for shop.alice.example ends in 6 days"
    assert subject in as_user("alice").get("/outbox").text
    assert subject not in as_user("bob").get("/outbox").text
    assert subject in as_user("admin").get("/outbox").text


def test_twenty_admins_saving_a_schedule_at_once_make_one_row(database_url):
    app = minipanel(database_url)
    rt = runtime(app)
    account = rt.accounts.all()[0].id
    barrier = threading.Barrier(20)
    errors: list[BaseException] = []

    def save(days: int) -> None:
        barrier.wait()
        try:
            Reminders(rt.orders).save_schedule(account, (days,), None)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(1, 21)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors, errors
    with rt.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(reminder_schedules)).scalar() == 1
        )
    assert Reminders(rt.orders).schedules().for_account(account).days[0] in range(1, 21)
