"""The fault matrix (issue 8): every way a create call's answer can go missing, for every kind of
create call, at every provider. In every cell the provider ends up holding one order and the
plugin tracks exactly that one.

Faults are real: the FaultProxy (tests/providers/faults.py) sits between the adapter and the
GoGetSSL or Sectigo simulator or Pebble, and loses the reply on the wire. The sandbox has no
wire; its rehearsal settings stand in (before-send faults make nothing, after-send ones make the
order and lose the answer). Orders are counted where they are made: in the simulators' books, in
Pebble's 201 replies to newOrder as the proxy saw them, in the sandbox's approval mails.

The last run's table is written to test-output/fault-matrix.md for docs/money-safety.md.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.providers import acme
from panel_ssl_plugin.runtime import Runtime, runtime_for
from panel_ssl_plugin.store import OrderRecord

from .conftest import minipanel
from .ordering import approve, draft
from .providers.faults import FaultProxy, Headers
from .providers.gogetssl_sim import PASSWORD, USER
from .providers.pebble_server import _listener_certificate
from .providers.test_acme import settings_for
from .providers.test_sandbox import FAULT_COLUMN
from .test_acme_orders import WebAndDnsHost, poll_until_settled

FAULTS = ("timeout_before", "429", "timeout_after", "reset_after", "502", "503", "504", "garbage",
          "no_id")  # fmt: skip
OPERATIONS = ("order", "renewal", "reissue")
PROVIDERS = ("gogetssl", "sectigo", "acme", "sandbox")
TIMEOUT = 0.5  # the adapters' timeouts here: a held reply is a timeout at once
HOLD = 2.5  # longer than a connect with its retries, or a read, at TIMEOUT
RESULTS: dict[tuple[str, str, str], tuple[int, str]] = {}


@dataclass
class Bench:
    """One provider as the matrix drives it: where its create calls go, how a certificate gets
    issued, and what the provider itself holds."""

    runtime: Runtime
    account: int
    paths: dict[str, str]  # operation -> path of its create call (below the origin)
    no_id: Callable[[int, Headers, bytes], tuple[int, Headers, bytes]] | None
    made: Callable[[str], list[str]]  # operation -> what the provider made, one id per order
    issue: Callable[[OrderRecord], OrderRecord]
    proxy: FaultProxy | None = None
    draft_fields: dict[str, Any] = field(default_factory=dict)
    rehearse: Callable[[str], None] | None = None  # the sandbox's stand-in for the proxy
    released_at: float = 0.0

    def inject(self, fault: str, operation: str) -> None:
        if self.proxy is None:
            self.rehearse(fault)
            return
        if fault == "timeout_before":
            self.released_at = time.monotonic() + HOLD
        transform = self.no_id if fault == "no_id" else None
        self.proxy.fail_next(fault, "POST", self.paths[operation], hold=HOLD, transform=transform)

    def wait_for_the_wire(self) -> None:
        """A connect-level fault holds the proxy's door shut for a while; the next sending
        needs it open, as it would be once a provider's outage ends."""
        time.sleep(max(0.0, self.released_at - time.monotonic()))


def _without_order_id(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    reply = json.loads(body)
    reply.pop("order_id", None)
    return status, headers, json.dumps(reply).encode()


def _without_numbers(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if k not in ("orderNumber", "certificateID")]
    return status, headers, urlencode(kept).encode()


def _without_location(status: int, headers: Headers, body: bytes) -> tuple[int, Headers, bytes]:
    return status, {k: v for k, v in headers.items() if k.lower() != "location"}, body


# --- the four providers ------------------------------------------------------------------------


@pytest.fixture
def gogetssl_bench(sqlite_url, gogetssl_sim, fault_proxy) -> Bench:
    runtime = runtime_for(minipanel(sqlite_url).extensions["hosting_panel"])
    proxy = fault_proxy(gogetssl_sim.url)
    settings = {"base_url": f"{proxy.url}/api", "username": USER, "password": PASSWORD,
                "timeout": TIMEOUT}  # fmt: skip
    account = runtime.accounts.create("gogetssl", "GoGetSSL", settings)
    seen = {"orders": set(), "reissues": {}}

    def made(operation: str) -> list[str]:
        if operation == "reissue":
            return [i for i, o in gogetssl_sim.orders.items()
                    for _ in range(o.reissues - seen["reissues"].get(i, 0))]  # fmt: skip
        return [i for i in gogetssl_sim.orders if i not in seen["orders"]]

    def issue(order: OrderRecord) -> OrderRecord:
        gogetssl_sim.approve(order.provider_order_id)
        done = runtime.orders.check(order.id)
        seen["orders"] = set(gogetssl_sim.orders)
        seen["reissues"] = {i: o.reissues for i, o in gogetssl_sim.orders.items()}
        return done

    paths = {"order": "/api/orders/add_ssl_order/", "renewal": "/api/orders/add_ssl_renew_order/",
             "reissue": "/api/orders/ssl/reissue/"}  # fmt: skip
    return Bench(runtime, account, paths, _without_order_id, made, issue, proxy,
                 {"product_id": "71"})  # fmt: skip


@pytest.fixture
def sectigo_bench(sqlite_url, sectigo_sim, fault_proxy) -> Bench:
    runtime = runtime_for(minipanel(sqlite_url).extensions["hosting_panel"])
    proxy = fault_proxy(sectigo_sim.base_url)
    settings = sectigo_sim.provider_settings(base_url=f"{proxy.url}/products", timeout=TIMEOUT)
    account = runtime.accounts.create("sectigo", "Sectigo", settings)
    seen: dict[str, int] = {}

    def made(operation: str) -> list[str]:
        if operation == "reissue":
            return [n for n, o in sectigo_sim.orders.items()
                    for _ in range(len(o.certificate_ids) - seen.get(n, 0))]  # fmt: skip
        return [n for n in sectigo_sim.orders if n not in seen]

    def issue(order: OrderRecord) -> OrderRecord:
        sectigo_sim.approve(order.provider_order_id)
        done = runtime.orders.check(order.id)
        seen.update({n: len(o.certificate_ids) for n, o in sectigo_sim.orders.items()})
        return done

    apply, replace = "/products/!AutoApplySSL", "/products/!AutoReplaceSSL"
    paths = {"order": apply, "renewal": apply, "reissue": replace}
    return Bench(runtime, account, paths, _without_numbers, made, issue, proxy,
                 {"product_id": "287", "domain": "shop.example.com",
                  "approver_email": "admin@example.com"})  # fmt: skip


@pytest.fixture
def acme_bench(sqlite_url, pebble, fault_proxy, tmp_path, monkeypatch) -> Bench:
    monkeypatch.setattr(acme, "DEFAULT_TIMEOUT", (TIMEOUT, 2 * TIMEOUT))
    runtime = runtime_for(minipanel(sqlite_url, WebAndDnsHost(pebble)).extensions["hosting_panel"])
    ca, cert, key = _listener_certificate(tmp_path)
    origin = pebble.directory_url.removesuffix("/dir")
    proxy = fault_proxy(origin, tls=(str(cert), str(key)), upstream_verify=pebble.ca_bundle)
    settings = settings_for(pebble, directory_url=f"{proxy.url}/dir", ca_bundle=str(ca))
    account = runtime.accounts.create("acme", "Pebble", settings)
    seen = {"exchanges": 0}

    def made(operation: str) -> list[str]:
        return [json.loads(e.body)["finalize"].rsplit("/", 1)[-1]
                for e in proxy.forwarded[seen["exchanges"]:]
                if (e.method, e.path, e.status) == ("POST", "/order-plz", 201)]  # fmt: skip

    def issue(order: OrderRecord) -> OrderRecord:
        done = poll_until_settled(runtime, order.id)
        seen["exchanges"] = len(proxy.forwarded)
        return done

    paths = dict.fromkeys(OPERATIONS, "/order-plz")
    domain = f"m{int(time.monotonic() * 1000) % 10**8}.pebble.example"  # Pebble is shared
    return Bench(runtime, account, paths, _without_location, made, issue, proxy,
                 {"product_id": "dv", "period_months": 3, "dcv_method": "http",
                  "approver_email": "", "domain": domain})  # fmt: skip


@pytest.fixture
def sandbox_bench(sqlite_url) -> Bench:
    app = minipanel(sqlite_url)
    runtime = runtime_for(app.extensions["hosting_panel"])
    account = runtime.accounts.all()[0].id
    seen = {"mail": 0}

    def made(operation: str) -> list[str]:
        """One entry per approval round mailed: a round is an order (or a reissue of one)."""
        mails = [m for m in app.extensions["minipanel"].mails() if m.id > seen["mail"]]
        rounds = {re.search(r"/callback/(\S+)", m.body).group(1): m.body for m in mails}
        return [re.search(r"order (SBX-[0-9A-F]+)", body).group(1) for body in rounds.values()]

    def issue(order: OrderRecord) -> OrderRecord:
        done = approve(app, runtime, order)
        seen["mail"] = max(m.id for m in app.extensions["minipanel"].mails())
        return done

    def rehearse(fault: str) -> None:
        settings = {"rehearse": FAULT_COLUMN[fault][0], "rehearse_count": 1}
        runtime.accounts.save_settings(account, settings)

    return Bench(runtime, account, {}, None, made, issue, rehearse=rehearse)


# --- the matrix ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def table() -> Iterator[None]:
    """After the module, the matrix as a table: orders at the provider per cell."""
    yield
    if not RESULTS:
        return
    lines = ["| provider | operation | " + " | ".join(FAULTS) + " |",
             "| --- | --- | " + " | ".join("---" for _ in FAULTS) + " |"]  # fmt: skip
    for provider in PROVIDERS:
        for operation in OPERATIONS:
            if (provider, operation, FAULTS[0]) not in RESULTS:
                continue
            cells = [RESULTS.get((provider, operation, fault), (0, "-")) for fault in FAULTS]
            counts = " | ".join(f"{count} ({state})" for count, state in cells)
            lines.append(f"| {provider} | {operation} | {counts} |")
    out = Path("test-output")
    out.mkdir(exist_ok=True)
    (out / "fault-matrix.md").write_text("\n".join(lines) + "\n")


def act(bench: Bench, operation: str, certificate: OrderRecord | None) -> OrderRecord:
    """The create call of ``operation``, as the reseller's popup makes it."""
    if operation == "order":
        form = draft(bench.account, **bench.draft_fields)
        return bench.runtime.orders.place(form, "alice").order
    if operation == "renewal":
        return bench.runtime.follow_ups.renew(certificate.id, "alice").order
    return bench.runtime.follow_ups.reissue(certificate.id, "alice").order


def settle(bench: Bench, order: OrderRecord) -> OrderRecord:
    """Poll as the host's scheduler would, later and later, until the order is placed."""
    bench.wait_for_the_wire()
    start = datetime.now(UTC)
    for minutes in (3, 10, 60, 240):
        order = bench.runtime.orders.get(order.id)
        if order.status not in ("submitted", "unknown"):
            break
        poll_due(bench.runtime.orders, start + timedelta(minutes=minutes))
    return bench.runtime.orders.get(order.id)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_provider_holds_one_order_and_the_plugin_tracks_it(request, provider, operation, fault):
    bench: Bench = request.getfixturevalue(f"{provider}_bench")
    # an issued certificate first: what a renewal or reissue follows, and for a new order a
    # warm adapter (logged in, catalogue read), so that the fault meets the create call itself
    # (settled like any order: on a loaded machine its own reply may miss TIMEOUT)
    certificate = bench.issue(settle(bench, act(bench, "order", None)))
    assert certificate.status == "issued", certificate.status_detail
    bench.inject(fault, operation)
    first = act(bench, operation, certificate)
    order = settle(bench, first)
    made = bench.made(operation)
    RESULTS[provider, operation, fault] = (len(made), first.status)
    assert made == [order.provider_order_id], (first.status, order.status, order.status_detail)
    assert order.status == "pending"
