"""Scale: pollers share the work, a round's SQL does not grow per unchanged order, selections use
their indexes. Counted where it happens (rows claimed, SQL statements, calls at the simulator),
never timed."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from click.testing import CliRunner

from panel_ssl_plugin import schema
from panel_ssl_plugin.cli import main
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.orders import CACHE_SECONDS, DCV_DOMAINS
from panel_ssl_plugin.polling import PollSettings, poll_due
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import Store, make_engine, orders
from panel_ssl_plugin.store import _encode as store_encode

from .ordering import draft
from .providers.gogetssl_sim import PASSWORD, USER
from .seeding import seed_pending
from .test_minipanel import client_ids
from .test_polling import poller_runtime

LEASE = timedelta(minutes=5)


def seed_due(store: Store, count: int, now: datetime, **values) -> list[int]:
    """``count`` pending orders due at ``now`` (rows only: the claim needs no provider)."""
    account = store.add_provider_account(
        provider_key="sandbox", label="Sandbox", settings_encrypted="x", enabled=True
    )
    row = {
        "account_id": "1", "provider_account_id": account, "product_id": "dv-single",
        "period_months": 12, "server_type": "nginx", "dcv_method": "email", "key_type": "ec256",
        "csr": "csr", "status": "pending", "created_at": now, "updated_at": now,
        "next_check_at": now, **values,
    }  # fmt: skip
    rows = [
        {
            **row,
            "provider_order_id": f"p{n}",
            "domain": f"site{n}.example.com",
            "idempotency_key": uuid.uuid4().hex,
        }
        for n in range(count)
    ]
    with store.engine.begin() as conn:
        conn.execute(orders.insert(), rows)
        return list(conn.execute(sa.select(orders.c.id).order_by(orders.c.id)).scalars())


@contextmanager
def held_after(engine: sa.Engine, marker: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Stop the first statement containing ``marker`` on ``engine`` right after it ran, its
    transaction open, until the test says go: two claims then overlap for certain."""
    reached, go = threading.Event(), threading.Event()

    def hold(conn, cursor, statement, parameters, context, executemany) -> None:
        if marker in statement and not reached.is_set():
            reached.set()
            go.wait(30)

    sa.event.listen(engine, "after_cursor_execute", hold)
    try:
        yield reached, go
    finally:
        go.set()
        sa.event.remove(engine, "after_cursor_execute", hold)


def test_two_claims_at_once_each_get_their_share(row_locking_database_url):
    """The claim reads the due orders through an index, so FOR UPDATE SKIP LOCKED locks only the
    rows it takes: a poller claiming while another holds its claim open gets the next share.
    (Before, MariaDB scanned and sorted the whole table, locking every row: the second got 0.)"""
    url = row_locking_database_url
    schema.upgrade(url)
    first, second = Store(make_engine(url)), Store(make_engine(url))
    now = datetime.now(UTC)
    # settled orders too: the claim must not lock its way through them
    seed_due(first, 300, now - timedelta(days=1), status="issued", next_check_at=None)
    # due, but leased by a poller at work: the claim reads past them (with most of the table in
    # range, MariaDB would rather scan and sort the whole table)
    seed_due(first, 2000, now - timedelta(hours=1), lease_until=now + LEASE)
    seed_due(first, 200, now)
    claimed: dict[str, list[int]] = {}

    def claim_first() -> None:
        claimed["first"] = [o.id for o in first.claim_due(now, 50, LEASE)]

    with held_after(first.engine, "FOR UPDATE") as (reached, go):
        thread = threading.Thread(target=claim_first)
        thread.start()
        assert reached.wait(30)
        claimed["second"] = [o.id for o in second.claim_due(now, 50, LEASE)]
        go.set()
        thread.join()

    assert len(claimed["first"]) == 50
    assert len(claimed["second"]) == 50, "the second poller found nothing to claim"
    assert not set(claimed["first"]) & set(claimed["second"])


# --- a polling round -----------------------------------------------------------------------------


KEY = Vault.generate_key()
CRON_ENV = {"PANEL_SSL_SECRET_KEYS": KEY}  # what `panel-ssl poll` needs besides the database


def gogetssl_host(url: str, sim) -> tuple:
    """A host process on ``url`` (tables migrated) with one GoGetSSL account on ``sim``."""
    schema.upgrade(url)
    runtime = poller_runtime(url, [KEY])
    settings = {"base_url": sim.url, "username": USER, "password": PASSWORD}
    return runtime, runtime.accounts.create("gogetssl", "GoGetSSL", settings)


@contextmanager
def counted_sql(engine: sa.Engine) -> Iterator[list[str]]:
    """Every SQL statement ``engine`` sends while inside, in order."""
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def test_a_round_where_nothing_changed_costs_a_statement_per_batch(database_url, gogetssl_sim):
    """Unchanged answers are recorded with one UPDATE per chunk, not an UPDATE, an event, a
    re-read and a commit per order; the orders are checked all the same."""
    runtime, account = gogetssl_host(database_url, gogetssl_sim)
    ids = seed_pending(runtime, gogetssl_sim.clone, account, 200, due=datetime.now(UTC))
    poll_due(runtime.orders, datetime.now(UTC))  # the first answer is news: "processing"
    now = datetime.now(UTC) + timedelta(hours=1)
    before = {i: runtime.orders.get(i) for i in ids}
    asked = Counter(gogetssl_sim.order_calls)

    with counted_sql(runtime.engine) as statements:
        report = poll_due(runtime.orders, now, workers=4)

    assert report.claimed == 200 and report.by_status == {"pending": 200}
    assert len(statements) / 200 <= 0.1, statements
    for order_id, old in before.items():
        order = runtime.orders.get(order_id)
        assert order.last_checked_at == now and order.next_check_at > now
        assert order.version == old.version + 1 and order.lease_until is None
        assert gogetssl_sim.order_calls[order.provider_order_id] - asked[old.provider_order_id] == 1


def test_changed_answers_still_move_their_orders_one_by_one(database_url, gogetssl_sim):
    """In the same chunk as unchanged ones: issued and refused orders make their transition,
    with its event and one notification each."""
    runtime, account = gogetssl_host(database_url, gogetssl_sim)
    now = datetime.now(UTC)
    ids = seed_pending(runtime, gogetssl_sim.clone, account, 60, due=now)
    # the first is the order placed for real: its certificate names its domain
    issued, rejected = runtime.orders.get(ids[0]), runtime.orders.get(ids[7])
    gogetssl_sim.approve(issued.provider_order_id)
    gogetssl_sim.reject(rejected.provider_order_id)
    changes = []
    runtime.pm.register(StatusListener(changes))

    report = poll_due(runtime.orders, now, workers=4)

    assert report.by_status == {"pending": 58, "issued": 1, "failed": 1}
    assert sorted(changes) == [(issued.id, "issued"), (rejected.id, "failed")]
    assert runtime.orders.events(issued.id)[-1].event == "issued"


class StatusListener:
    """A host plugin that writes down every status change it hears."""

    def __init__(self, changes: list):
        self.changes = changes

    @hookimpl
    def ssl_order_status_changed(self, order, old, new) -> None:
        self.changes.append((order["id"], new))


def test_one_poll_run_clears_everything_due_in_batches(sqlite_url, gogetssl_sim):
    """``panel-ssl poll`` checks every due order, claiming ``--batch`` at a time; ``--limit``
    stops it earlier."""
    runtime, account = gogetssl_host(sqlite_url, gogetssl_sim)
    now = datetime.now(UTC) - timedelta(seconds=1)
    ids = seed_pending(runtime, gogetssl_sim.clone, account, 70, due=now)
    env = CRON_ENV
    limited = CliRunner().invoke(
        main, ["poll", "--database-url", sqlite_url, "--limit", "30", "--batch", "20"], env=env
    )
    assert limited.exit_code == 0, limited.output
    assert "Checked 30 orders" in limited.output

    result = CliRunner().invoke(
        main, ["poll", "--database-url", sqlite_url, "--batch", "20"], env=env
    )

    assert result.exit_code == 0, result.output
    assert "Checked 40 orders" in result.output
    assert all(runtime.orders.get(i).last_checked_at is not None for i in ids)


def test_one_tick_clears_everything_due_with_the_hosts_settings(
    sqlite_url, gogetssl_sim, monkeypatch
):
    runtime, account = gogetssl_host(sqlite_url, gogetssl_sim)
    now = datetime.now(UTC)
    ids = seed_pending(runtime, gogetssl_sim.clone, account, 120, due=now)
    monkeypatch.setenv("PANEL_SSL_POLL_BATCH", "25")
    monkeypatch.setenv("PANEL_SSL_POLL_WORKERS", "3")
    with counted_sql(runtime.engine) as statements:
        runtime.pm.hook.panel_tick(pm=runtime.pm, now=now)
    assert all(runtime.orders.get(i).last_checked_at == now for i in ids)
    claims = [s for s in statements if "next_check_at <=" in s]
    assert len(claims) == 120 // 25 + 2  # 5 batches, then one that finds nothing due


def test_poll_settings_from_the_environment_say_what_is_wrong():
    assert PollSettings.from_env({}) == PollSettings()
    assert PollSettings.from_env({"PANEL_SSL_POLL_WORKERS": "16"}).workers == 16
    with pytest.raises(ValueError, match="PANEL_SSL_POLL_BATCH must be a whole number"):
        PollSettings.from_env({"PANEL_SSL_POLL_BATCH": "-3"})


LOCK_HOLDER = """
import sys
from panel_ssl_plugin.store import Store, make_engine
with Store(make_engine(sys.argv[1])).poller_lock():
    print("holding", flush=True)
    sys.stdin.read()
"""


def test_a_second_poller_on_sqlite_refuses_and_says_why(sqlite_url, gogetssl_sim):
    """SQLite has no row locks: two pollers would ask the provider twice about each order. The
    second one, in another process, refuses and nothing is asked."""
    runtime, account = gogetssl_host(sqlite_url, gogetssl_sim)
    now = datetime.now(UTC) - timedelta(seconds=1)
    seed_pending(runtime, gogetssl_sim.clone, account, 10, due=now)
    asked = sum(gogetssl_sim.order_calls.values())
    env = CRON_ENV
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, sqlite_url],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline() == "holding\n"
        result = CliRunner().invoke(main, ["poll", "--database-url", sqlite_url], env=env)
        assert result.exit_code == 1
        assert "Another poller is checking orders on this SQLite database" in result.output
        assert sum(gogetssl_sim.order_calls.values()) == asked
    finally:
        holder.communicate("")
    after = CliRunner().invoke(main, ["poll", "--database-url", sqlite_url], env=env)
    assert "Checked 10 orders" in after.output, after.output


def test_the_demo_is_served_by_waitress(tmp_path):
    """Not Flask's development server: a host copying the demo copies a real WSGI server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(Path(sys.executable).with_name("panel-ssl")), "demo", "--port", str(port),
        "--database-url", f"sqlite:///{tmp_path / 'demo.db'}",
    ]  # fmt: skip
    demo = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                reply = requests.get(f"http://127.0.0.1:{port}/login", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert reply.status_code == 200
        assert reply.headers["Server"] == "waitress"
    finally:
        demo.terminate()
        demo.wait(10)


# --- caches -------------------------------------------------------------------------------------


def test_popups_opened_at_once_in_a_fresh_process_fetch_the_products_once(sqlite_url, gogetssl_sim):
    """8 order popups at once: one of them logs in, asks the balance and the products; the
    others wait for that answer (before: 3 calls each)."""
    _, account = gogetssl_host(sqlite_url, gogetssl_sim)
    fresh = poller_runtime(sqlite_url, [KEY])  # a new process: no adapter, nothing cached
    barrier, products = threading.Barrier(8), []

    def popup() -> None:
        barrier.wait()
        products.append(fresh.orders.products(account))

    threads = [threading.Thread(target=popup) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(products) == 8 and all(p == products[0] for p in products)
    assert sum(gogetssl_sim.path_calls.values()) == 3, gogetssl_sim.path_calls


def test_the_approver_cache_is_bounded_by_size_and_age(sqlite_url, monkeypatch):
    """20,000 distinct domains keep at most DCV_DOMAINS answers per adapter; older than
    CACHE_SECONDS, an answer is asked again."""
    schema.upgrade(sqlite_url)
    runtime = poller_runtime(sqlite_url, [KEY])
    account = runtime.accounts.create("sandbox", "Sandbox", {})
    for n in range(20_000):
        runtime.orders.dcv_emails(account, f"site{n}.example.com")
    assert len(runtime.orders._dcv) == DCV_DOMAINS

    adapter = runtime.accounts.adapter(account)
    asked = []
    monkeypatch.setattr(adapter, "dcv_emails", lambda domain: asked.append(domain) or [])
    runtime.orders.dcv_emails(account, "site19999.example.com")
    assert asked == []  # kept
    cache = runtime.orders._dcv._caches[adapter]
    cache.expire(cache.timer() + CACHE_SECONDS + 1)
    runtime.orders.dcv_emails(account, "site19999.example.com")
    assert asked == ["site19999.example.com"]  # too old: asked again


# --- the list ------------------------------------------------------------------------------------


def copies(runtime, order, count: int, **values) -> None:
    """``count`` copies of an order's row (the list reads rows; no provider is asked)."""
    kept = {k: v for k, v in store_encode(asdict(order)).items() if k not in ("id", "flight")}
    rows = [{**kept, "idempotency_key": uuid.uuid4().hex, **values} for _ in range(count)]
    with runtime.engine.begin() as conn:
        conn.execute(orders.insert(), rows)


def list_page_sql(app, client, account_id: str) -> list[str]:
    """The plugin's statements for page 1 of a client's list (the minipanel shares the engine
    and asks for its own tables too)."""
    runtime = runtime_for(app.extensions["hosting_panel"])
    with counted_sql(runtime.engine) as statements:
        reply = client.get(f"/ssl/accounts/{account_id}/certs")
    assert reply.status_code == 200
    return [statement for statement in statements if "ssl_" in statement]


def test_a_list_page_costs_the_same_queries_for_3_certificates_or_300(app, as_user):
    """However many certificates, renewal generations and provider accounts: the page asks
    three plugin queries (labels, the page, its chains), counts nothing, and decrypts no
    provider account's settings."""
    alice, bakery = as_user("alice"), str(client_ids(app, "alice")[0])
    runtime = runtime_for(app.extensions["hosting_panel"])
    account = runtime.accounts.all()[0].id
    first = runtime.orders.place(draft(account, account_id=bakery), "alice").order
    copies(runtime, first, 2)
    few = list_page_sql(app, alice, bakery)

    copies(runtime, first, 300)
    with runtime.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(orders.c.id))).scalar_one()
    renewed = newest
    for _ in range(3):  # three generations of renewals under the newest certificate
        copies(runtime, first, 1, root_id=newest, renewal_of=renewed)
        with runtime.engine.connect() as conn:
            renewed = conn.execute(sa.select(sa.func.max(orders.c.id))).scalar_one()
    for n in range(5):
        runtime.accounts.create("sandbox", f"Sandbox {n}", {})
    opened = []
    decrypt = runtime.vault.decrypt_json
    runtime.vault.decrypt_json = lambda token: opened.append(token) or decrypt(token)
    many = list_page_sql(app, alice, bakery)

    assert len(many) == len(few) <= 3, many
    assert not [q for q in many if "count(" in q.lower()]
    assert opened == []


@pytest.mark.parametrize("sort", ["created", "domain", "status", "expires"])
@pytest.mark.parametrize("descending", [True, False])
def test_keyset_pages_show_every_certificate_once_in_order(database_url, sort, descending):
    """Ties, and orders with no end date (sorted as ending last), across page edges: forward
    to the end shows each certificate once, and back from there gives the same pages."""
    schema.upgrade(database_url)
    runtime = poller_runtime(database_url, [KEY])
    account = runtime.accounts.create("sandbox", "Sandbox", {})
    first = runtime.orders.place(draft(account), "alice").order
    ends = [None, datetime(2030, 1, 1, tzinfo=UTC), datetime(2029, 6, 1, tzinfo=UTC)]
    for n in range(23):
        copies(
            runtime, first, 1, domain=f"d{n % 4}.example.com", status=("issued", "pending")[n % 2],
            not_after=ends[n % 3],
        )  # fmt: skip
    store = runtime.orders.store
    pages, after = [], None
    while True:
        page, more = store.account_orders(
            "1", sort=sort, descending=descending, limit=5, after=after
        )
        pages.append([o.id for o in page])
        if not more:
            break
        after = page[-1].id
    seen = [i for page in pages for i in page]
    everything, _ = store.account_orders("1", sort=sort, descending=descending, limit=100)
    assert seen == [o.id for o in everything] and len(seen) == 24

    back, before = [pages[-1]], pages[-1][0]
    while before is not None:
        page, more = store.account_orders(
            "1", sort=sort, descending=descending, limit=5, before=before
        )
        back.insert(0, [o.id for o in page])
        before = page[0].id if more else None
    assert [i for page in back for i in page] == seen
