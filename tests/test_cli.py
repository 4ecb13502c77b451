"""The command line and the hook scripts a cron or a non-Python host runs."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from cryptography.fernet import Fernet

from panel_ssl_plugin.cli import main, parse_duration
from panel_ssl_plugin.encryption import Vault
from panel_ssl_plugin.resources import resource_path
from panel_ssl_plugin.runtime import runtime_for
from panel_ssl_plugin.store import orders as orders_table
from panel_ssl_plugin.store import provider_accounts

from . import cron_host
from .ordering import draft
from .ordering import issued as issued_order
from .providers.gogetssl_sim import PASSWORD, USER


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


@pytest.fixture
def issued(app, runtime):
    """An issued sandbox certificate of client 1."""
    return issued_order(app, runtime)


def run_hook(name: str, payload: str, database_url: str) -> subprocess.CompletedProcess:
    """Run a hook script as a host's cron would: the CLI is not on its PATH, the script finds
    the one installed beside it."""
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    env.pop("PANEL_SSL", None)
    return subprocess.run(
        [str(resource_path("hooks") / name), "--minipanel", "--database-url", database_url],
        input=payload, capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def test_renewal_due_script_twice_makes_one_renewal(issued, runtime, sqlite_url):
    payload = json.dumps({"account_id": "1", "certificate_id": issued.id, "period_months": 24})
    first = run_hook("renewal-due", payload, sqlite_url)
    assert first.returncode == 0, first.stderr
    second = run_hook("renewal-due", payload, sqlite_url)
    replies = [json.loads(first.stdout), json.loads(second.stdout)]
    assert replies[0]["ok"] and replies[0] == replies[1]
    (renewal,) = runtime.follow_ups.renewals(issued.id)
    assert renewal.id == replies[0]["renewal_order_id"] and renewal.period_months == 24
    assert renewal.status == "pending"


def test_renewal_due_script_refusals_are_json_in_words(issued, sqlite_url):
    bad = run_hook("renewal-due", "not json", sqlite_url)
    assert bad.returncode == 2 and "bad input" in json.loads(bad.stdout)["error"]
    missing = run_hook("renewal-due", '{"account_id": "1"}', sqlite_url)
    assert missing.returncode == 2
    assert "certificate_id is missing" in json.loads(missing.stdout)["error"]
    no_period = json.dumps({"account_id": "1", "certificate_id": issued.id})
    refused = run_hook("renewal-due", no_period, sqlite_url)
    assert refused.returncode == 2  # what was billed is not guessed
    assert "period_months is missing: how many months were billed" in refused.stdout
    foreign = json.dumps({"account_id": "2", "certificate_id": issued.id, "period_months": 12})
    refused = run_hook("renewal-due", foreign, sqlite_url)
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {
        "ok": False,
        "error": f"Certificate {issued.id} is not one of account 2's.",
    }


def test_events_without_a_database_answer_in_json(issued):
    result = CliRunner().invoke(
        main, ["event", "tick"], input="{}", env={"PANEL_SSL_DATABASE_URL": ""}
    )
    assert result.exit_code == 2
    assert json.loads(result.output) == {
        "ok": False,
        "error": "no database: give --database-url or set PANEL_SSL_DATABASE_URL",
    }


def test_account_updated_event(issued, sqlite_url):
    result = run_hook("account-updated", '{"account_id": "1"}', sqlite_url)
    assert result.returncode == 0 and json.loads(result.stdout) == {"ok": True}


def test_tick_script_polls(issued, runtime, sqlite_url):
    result = run_hook("tick", "{}", sqlite_url)
    assert result.returncode == 0 and json.loads(result.stdout) == {"ok": True}


def test_poll_command_reports_and_expires(issued, runtime, sqlite_url):
    runtime.orders.store.update_order(
        issued, "test", "backdated", not_after=datetime.now(UTC) - timedelta(days=1)
    )
    result = CliRunner().invoke(main, ["poll", "--minipanel", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "1 expired" in result.output
    assert runtime.orders.get(issued.id).status == "expired"


def test_renew_due_only_on_auto_renew_accounts(issued, runtime, sqlite_url):
    args = ["renew-due", "--within", "400d", "--minipanel", "--database-url", sqlite_url]
    result = CliRunner().invoke(main, args)
    assert "0 certificates due" in result.output
    account = runtime.accounts.get(issued.provider_account_id)
    runtime.accounts.update(
        account.id, label=account.label, settings={}, enabled=True, auto_renew=True
    )
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "renewal order" in result.output and "1 certificate due" in result.output
    assert len(runtime.follow_ups.renewals(issued.id)) == 1


def test_parse_duration():
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("7") == timedelta(days=7)


def test_rotate_keys(issued, runtime, sqlite_url, monkeypatch):
    """Rotation: the newest key first, re-encrypt, then the old key can go."""
    from cryptography.fernet import Fernet

    from panel_ssl_plugin.encryption import DecryptionError, Vault

    new = Fernet.generate_key().decode()
    db = runtime.pm.get_plugin("minipanel").db
    current = db.setting("fernet_key", Vault.generate_key)
    monkeypatch.setenv("PANEL_SSL_SECRET_KEYS", f"{new},{current}")
    result = CliRunner().invoke(main, ["rotate-keys", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 2 secrets" in result.output  # the sandbox account and the order key
    only_new = Vault([new])
    order = runtime.orders.store.order(issued.id)
    assert "PRIVATE KEY" in only_new.decrypt(order.private_key_encrypted)
    record = runtime.orders.store.provider_account(issued.provider_account_id)
    assert only_new.decrypt_json(record.settings_encrypted)["ca_root_key"]
    with pytest.raises(DecryptionError):
        Vault([current]).decrypt(order.private_key_encrypted)


def encrypted_values(runtime) -> list[str | None]:
    """Every encrypted column of every row, to show a refused rotation changed nothing."""
    store = runtime.orders.store
    with store.engine.connect() as conn:
        accounts = conn.execute(sa.select(provider_accounts.c.settings_encrypted)).scalars()
        keys = conn.execute(sa.select(orders_table.c.private_key_encrypted)).scalars()
        return [*accounts, *keys]


NEW_KEY = Fernet.generate_key().decode()
BAD_KEYS = {
    "missing": (None, "PANEL_SSL_SECRET_KEYS"),
    "empty list": (" , ", "PANEL_SSL_SECRET_KEYS"),
    "malformed": (f"{NEW_KEY},not-a-fernet-key", "key 2 of 2 is not a Fernet key"),
    "wrong": (Fernet.generate_key().decode(), "cannot be decrypted"),
    "old key dropped": (NEW_KEY, "cannot be decrypted"),
}


@pytest.mark.parametrize("case", BAD_KEYS)
def test_rotate_keys_refuses_bad_keys_in_one_line(case, issued, runtime, sqlite_url, monkeypatch):
    keys, words = BAD_KEYS[case]
    if keys is None:
        monkeypatch.delenv("PANEL_SSL_SECRET_KEYS", raising=False)
    else:
        monkeypatch.setenv("PANEL_SSL_SECRET_KEYS", keys)
    before = encrypted_values(runtime)
    result = CliRunner().invoke(main, ["rotate-keys", "--database-url", sqlite_url])
    assert result.exit_code == 2 and result.stdout == "", result.output
    (line,) = result.stderr.splitlines()
    assert words in line and "hook" not in line and "nothing was changed" in line.lower()
    assert "not-a-fernet-key" not in line and NEW_KEY not in line  # keys are secrets too
    assert encrypted_values(runtime) == before


def test_rotate_keys_rewrites_all_or_nothing(issued, runtime, sqlite_url, monkeypatch):
    """The provider account rotates, then the order's key (under a key no one has) cannot:
    the account's new ciphertext is rolled back with the rest."""
    lost = Fernet(Fernet.generate_key()).encrypt(b"a key under a lost key").decode()
    runtime.orders.store.update_order(issued, "test", "lost", private_key_encrypted=lost)
    current = runtime.pm.get_plugin("minipanel").db.setting("fernet_key", Vault.generate_key)
    monkeypatch.setenv("PANEL_SSL_SECRET_KEYS", f"{NEW_KEY},{current}")
    before = encrypted_values(runtime)
    result = CliRunner().invoke(main, ["rotate-keys", "--database-url", sqlite_url])
    assert result.exit_code == 2 and "cannot be decrypted" in result.stderr
    assert encrypted_values(runtime) == before


def test_cron_with_the_hosts_own_hooks(app, runtime, sqlite_url, gogetssl_sim, monkeypatch):
    """Without --host a cron process has nobody to publish or notify; with it, the host hears."""
    settings = {"base_url": gogetssl_sim.url, "username": USER, "password": PASSWORD}
    account = runtime.accounts.create("gogetssl", "GoGetSSL", settings)
    order = runtime.orders.place(
        draft(account, product_id="71", dcv_method="http", approver_email=""), "alice"
    ).order
    gogetssl_sim.approve(order.provider_order_id)
    keys = runtime.pm.get_plugin("minipanel").db.setting("fernet_key", lambda: "")
    monkeypatch.setenv("PANEL_SSL_SECRET_KEYS", keys)
    monkeypatch.setenv("PANEL_SSL_HOST", "tests.cron_host:HOST")
    runtime.orders.store.update_order(order, "test", "due", next_check_at=datetime.now(UTC))
    result = CliRunner().invoke(main, ["poll", "--database-url", sqlite_url])
    assert result.exit_code == 0, result.output
    assert cron_host.HOST.issued == [order.id]


def test_a_host_object_that_cannot_be_loaded_is_said(sqlite_url):
    result = CliRunner().invoke(
        main, ["poll", "--database-url", sqlite_url, "--host", "tests.no_such_module:HOST"]
    )
    assert result.exit_code == 2 and "cannot load 'tests.no_such_module:HOST'" in result.output
