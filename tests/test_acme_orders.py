"""An ACME order through the whole plugin, against a real Pebble: the host publishes the proof.

The host here is the minipanel plus a small plugin that plays the host's web server and DNS
zone, so nothing is asked of the user: place, poll, issued, renew.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from panel_ssl_plugin import hookimpls, keys, schema
from panel_ssl_plugin.hookspecs import hookimpl
from panel_ssl_plugin.minipanel import create_app
from panel_ssl_plugin.minipanel.demo import prepare_demo
from panel_ssl_plugin.polling import poll_due
from panel_ssl_plugin.runtime import runtime_for

from .ordering import draft
from .providers.test_acme import settings_for


class WebAndDnsHost:
    """The host's web server and DNS zone: what the panel would do for its own clients."""

    def __init__(self, pebble):
        self.pebble = pebble

    @hookimpl
    def host_publish_http_challenge(self, domain, token, content):
        self.pebble.http01.serve(token, content)
        return True

    @hookimpl
    def host_publish_dns_record(self, domain, name, record_type, value):
        self.pebble.set_txt(name, value)
        return True


@pytest.fixture
def runtime(pebble, sqlite_url):
    schema.upgrade(sqlite_url)
    plugins = [hookimpls, WebAndDnsHost(pebble)]
    app = create_app({"DATABASE_URL": sqlite_url, "PLUGINS": plugins})
    prepare_demo(app)
    return runtime_for(app.extensions["hosting_panel"])


def poll_until_settled(runtime, order_id: int):
    """Poll as the host's scheduler would, each round a minute later, until the CA is done."""
    moment = datetime.now(UTC)
    for _ in range(40):
        order = runtime.orders.get(order_id)
        if order.status != "pending":
            return order
        moment += timedelta(minutes=1)
        poll_due(runtime.orders, moment)
        time.sleep(0.2)  # Pebble validates in the background
    return runtime.orders.get(order_id)


@pytest.mark.parametrize(("method", "product"), [("http", "dv"), ("dns", "dv-wildcard")])
def test_acme_order_is_issued_and_renewed(runtime, pebble, method, product):
    account = runtime.accounts.create("acme", "Pebble", settings_for(pebble))
    domain = "*.pebble.example" if product == "dv-wildcard" else "www.pebble.example"
    placed = runtime.orders.place(
        draft(
            account, product_id=product, period_months=3, domain=domain, dcv_method=method,
            approver_email="",
        ),
        "alice",
    )  # fmt: skip
    assert placed.order.status == "pending"

    issued = poll_until_settled(runtime, placed.order.id)
    assert issued.status == "issued", issued.status_detail
    keys.verify_issued(
        certificate=issued.certificate,
        chain=issued.chain,
        expected_names=[domain],
        public_key_of=keys.key_from_pem(runtime.orders.private_key(issued)),
        trusted_roots=[keys.cert_to_pem(pebble.issuer("roots"))],
    )

    renewal = runtime.follow_ups.renew(issued.id, "alice").order
    renewed = poll_until_settled(runtime, renewal.id)
    assert renewed.status == "issued" and renewed.renewal_of == issued.id
    assert renewed.certificate != issued.certificate
    assert keys.public_key_der(keys.load_certificates(renewed.certificate)[0]) == (
        keys.public_key_der(keys.load_certificates(issued.certificate)[0])
    )
