"""Run every benchmark and print ratios: ``python -m benchmarks`` (or ``make bench``).

The machine is noisy, so no absolute time is trusted: each benchmark runs its alternatives
interleaved, several rounds, and reports the median of each as a ratio to a baseline measured in
the same run. Results are also written to benchmarks/results.txt.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import flask

from panel_ssl_plugin import hookimpls, keys, preflight, schema
from panel_ssl_plugin.drafts import OrderDraft
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.minipanel.demo import prepare_demo, seed_demo
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.runtime import runtime_for
from tests.conftest import login
from tests.providers.gogetssl_sim import PASSWORD, USER, GoGetSSLSim

RESULTS = Path(__file__).with_name("results.txt")


def interleaved(alternatives: dict[str, Callable[[], object]], rounds: int, repeat: int) -> dict:
    """Median seconds per call of each alternative, measured turn by turn."""
    samples: dict[str, list[float]] = {name: [] for name in alternatives}
    for _ in range(rounds):
        for name, work in alternatives.items():
            start = time.perf_counter()
            for _ in range(repeat):
                work()
            samples[name].append((time.perf_counter() - start) / repeat)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(title: str, medians: dict[str, float], baseline: str) -> list[str]:
    lines = [title]
    for name, seconds in medians.items():
        ratio = seconds / medians[baseline]
        lines.append(f"  {name:<44} {ratio:6.2f}x   ({seconds * 1e6:9.1f} µs)")
    return lines


def logged_in(app, username: str):
    client = app.test_client()
    login(client, username)
    return client


def bench_account_mgmt(workdir: Path) -> list[str]:
    """The Account Mgmt tab with the plugin against the same panel without it."""
    apps = {}
    for name, plugins in (("without plugin", []), ("with panel-ssl-plugin", [hookimpls])):
        url = f"sqlite:///{workdir / name.replace(' ', '_')}.db"
        schema.upgrade(url)
        app = create_app({"DATABASE_URL": url, "PLUGINS": plugins})
        seed_demo(app.extensions["minipanel"])
        apps[name] = logged_in(app, "alice")
    medians = interleaved(
        {
            name: (lambda c=client: c.get("/clients/1/account-mgmt"))
            for name, client in apps.items()
        },
        rounds=15,
        repeat=20,
    )
    lines = report(
        "Account Mgmt tab, full request (runs on every page view)", medians, "without plugin"
    )
    app = apps["with panel-ssl-plugin"].application
    with app.test_request_context():
        hook = interleaved(
            {
                "one flask.url_for (what a link usually costs)": lambda: flask.url_for(
                    "account_mgmt", client_id=42
                ),
                "panel_account_tab_links: both links": lambda: hookimpls.panel_account_tab_links(
                    "42"
                ),
            },
            rounds=15,
            repeat=2000,
        )
    return [
        *lines,
        *report("The link hook itself", hook, "one flask.url_for (what a link usually costs)"),
    ]


def bench_keys(_workdir: Path) -> list[str]:
    """Key generation per key type, against the default ECDSA P-256."""
    medians = interleaved(
        {name: (lambda k=name: keys.generate_key(k)) for name in keys.KEY_TYPES},
        rounds=5,
        repeat=3,
    )
    return report("Private key generation at submit", medians, "ec256")


def bench_polling(workdir: Path) -> list[str]:
    """Polling 100 GoGetSSL orders through the simulator: one worker against four.

    The simulator answers after 50 ms, as a provider across the internet would; polling time is
    then mostly waiting, which the worker threads overlap.
    """
    sim = GoGetSSLSim(latency=0.05)
    sim.start()
    os.environ[preflight.DNS_SERVER_ENV] = preflight.OFF  # placing is not measured; no DNS
    try:
        url = f"sqlite:///{workdir / 'poll.db'}"
        schema.upgrade(url)
        app = create_app({"DATABASE_URL": url, "PLUGINS": [hookimpls]})
        prepare_demo(app)
        runtime = runtime_for(app.extensions["hosting_panel"])
        settings = {"base_url": sim.url, "username": USER, "password": PASSWORD}
        accounts = [
            runtime.accounts.create("gogetssl", f"GoGetSSL {n}", settings) for n in range(4)
        ]
        for n in range(100):
            domain = f"site{n}.example.com"
            runtime.orders.place(
                OrderDraft(
                    account_id="1", provider_account_id=accounts[n % 4], product_id="71",
                    period_months=12, server_type="nginx", domain=domain, dcv_method="email",
                    idempotency_key=uuid.uuid4().hex, approver_email=f"admin@{domain}",
                    contact={"first_name": "A", "last_name": "B", "email": "a@b.example"},
                ),
                "bench",
            )  # fmt: skip
        moment = [datetime.now(UTC)]

        def poll(workers: int) -> None:
            moment[0] += timedelta(hours=1)
            poll_due(runtime.orders, moment[0], workers=workers)

        medians = interleaved(
            {"1 worker": lambda: poll(1), "4 workers (4 provider accounts)": lambda: poll(4)},
            rounds=5,
            repeat=1,
        )
    finally:
        sim.stop()
    return report("Polling 100 due orders (batch status per account)", medians, "1 worker")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        lines = [f"panel-ssl-plugin benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
        for bench in (bench_account_mgmt, bench_keys, bench_polling):
            lines += [*bench(workdir), ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
