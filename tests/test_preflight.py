"""The pre-flight checks against the local DNS server: RFC 8659's climb and verdict, the
approver's mailbox, HTTP and DNS validation, and what happens when DNS does not answer."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from panel_ssl_plugin.outbound import Outbound, parse_allow
from panel_ssl_plugin.preflight import (
    CaaRecord,
    Level,
    Plan,
    Preflight,
    caa_verdict,
    server_address,
)
from panel_ssl_plugin.providers import caa as issuers_of
from panel_ssl_plugin.providers.acme import AcmeProvider
from panel_ssl_plugin.providers.base import Product
from panel_ssl_plugin.providers.gogetssl import GoGetSSLProvider
from panel_ssl_plugin.providers.sandbox import SandboxProvider
from panel_ssl_plugin.providers.sectigo import SectigoProvider
from tests.providers.recording_host import RecordingHost

SANDBOX = ("sandbox.panel-ssl.test",)


def caa(preflight: Preflight, *names: str, issuers=SANDBOX):
    plan = Plan(names=names, ca="Sandbox", issuers=issuers, dcv_method="dns")
    return [f for f in preflight.check(plan) if f.check == "caa"]


@pytest.fixture
def checks(local_dns) -> Preflight:
    return Preflight(local_dns.address)


# --- RFC 8659: the relevant RRset ----------------------------------------------------------


def test_the_climb_stops_at_the_first_name_with_caa_records(checks, local_dns):
    local_dns.add('shop.example. 60 CAA 0 issue "letsencrypt.org"')
    (finding,) = caa(checks, "www.shop.example")
    assert finding.level == Level.BLOCKED
    assert 'shop.example CAA 0 issue "letsencrypt.org"' in finding.message
    assert "Sandbox (sandbox.panel-ssl.test)" in finding.message
    asked = [name for name, kind in local_dns.asked if kind == "CAA"]
    assert asked == ["www.shop.example", "shop.example"]


def test_the_climb_asks_the_top_level_domain_but_not_the_root(checks, local_dns):
    (finding,) = caa(checks, "a.b.example")
    assert finding.level == Level.OK
    asked = [name for name, kind in local_dns.asked if kind == "CAA"]
    assert asked == ["a.b.example", "b.example", "example"]


def test_a_name_s_own_records_replace_its_parent_s(checks, local_dns):
    local_dns.add(
        'shop.example. 60 CAA 0 issue "letsencrypt.org"',
        'www.shop.example. 60 CAA 0 issue "Sandbox.Panel-SSL.test; accounturi=x"',
    )
    www, shop = caa(checks, "www.shop.example", "shop.example")
    assert (www.level, www.field) == (Level.OK, "domain")
    assert (shop.level, shop.field) == (Level.BLOCKED, "sans")


def test_a_cname_is_followed_and_the_records_at_its_target_decide(checks, local_dns):
    local_dns.add(
        "www.shop.example. 60 CNAME cdn.example.",
        'cdn.example. 60 CAA 0 issue "letsencrypt.org"',
    )
    (finding,) = caa(checks, "www.shop.example")
    assert finding.level == Level.BLOCKED
    assert 'cdn.example CAA 0 issue "letsencrypt.org"' in finding.message


def test_issue_semicolon_forbids_every_ca(checks, local_dns):
    local_dns.add('shop.example. 60 CAA 0 issue ";"')
    (finding,) = caa(checks, "shop.example")
    assert finding.level == Level.BLOCKED and 'CAA 0 issue ";"' in finding.message


def test_wildcards_obey_issuewild_and_other_names_issue(checks, local_dns):
    local_dns.add(
        'shop.example. 60 CAA 0 issue "sandbox.panel-ssl.test"',
        'shop.example. 60 CAA 0 issuewild "letsencrypt.org"',
    )
    wildcard, plain = caa(checks, "*.shop.example", "shop.example")
    assert wildcard.level == Level.BLOCKED and "issuewild" in wildcard.message
    assert plain.level == Level.OK


def record(tag: str, value: str, flags: int = 0) -> CaaRecord:
    return CaaRecord("example", flags, tag, value)


def test_the_verdict_rules():
    ca = ["ca.example"]
    assert caa_verdict([], ca, wildcard=False) == (True, [])
    # only issuewild: a plain name is not restricted, a wildcard is
    wild = record("issuewild", "other.example")
    assert caa_verdict([wild], ca, wildcard=False) == (True, [])
    assert caa_verdict([wild], ca, wildcard=True) == (False, [wild])
    # a wildcard with no issuewild falls back to issue
    assert caa_verdict([record("issue", "ca.example")], ca, wildcard=True)[0] is True
    # an unknown property: ignored, unless flagged critical
    assert caa_verdict([record("future", "x"), record("iodef", "mailto:a@b")], ca, False)[0]
    critical = record("future", "x", flags=128)
    assert caa_verdict([critical, record("issue", "ca.example")], ca, False) == (
        False,
        [critical],
    )


def test_an_unknown_ca_is_reported_but_never_blocked(checks, local_dns):
    local_dns.add('shop.example. 60 CAA 0 issue "letsencrypt.org"')
    (finding,) = caa(checks, "shop.example", issuers=())
    assert finding.level == Level.WARNING and "letsencrypt.org" in finding.message


# --- DNS that does not answer ----------------------------------------------------------------


def test_servfail_says_could_not_check_and_never_blocks(checks, local_dns):
    local_dns.servfail.add("shop.example")
    (finding,) = caa(checks, "shop.example")
    assert finding.level == Level.WARNING
    assert finding.message.startswith("Could not check the CAA records of shop.example")


def test_a_server_that_never_answers_or_is_not_there_gives_warnings():
    """Five checks that each wait out their own deadline all report their own timeout, not
    "not in time": they ran side by side, within the one deadline the caller waits."""
    names = ("a.example", "b.example", "c.example", "d.example")
    plan = Plan(names, "Sandbox", SANDBOX, "email", (("approver_email", "a@x.example"),))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        findings = Preflight(f"127.0.0.1:{port}").check(plan)
    assert [f.level for f in findings] == [Level.WARNING] * 5
    assert all(f.message.endswith("DNS did not answer in time.") for f in findings), findings
    closed = Preflight(f"127.0.0.1:{port}").check(plan)  # the socket is gone now
    assert [f.level for f in closed] == [Level.WARNING] * 5
    assert all(f.message.startswith("Could not check") for f in closed)


def test_answers_are_cached_and_failures_are_not(checks, local_dns):
    local_dns.servfail.add("shop.example")
    caa(checks, "shop.example")
    failed = len(local_dns.asked)
    caa(checks, "shop.example")
    assert len(local_dns.asked) == 2 * failed  # asked again
    local_dns.servfail.clear()
    caa(checks, "shop.example")
    answered = len(local_dns.asked)
    caa(checks, "shop.example")
    assert len(local_dns.asked) == answered  # from the cache


# --- the approval mailbox ------------------------------------------------------------------


def mailbox(preflight: Preflight, address: str):
    plan = Plan(("shop.example",), "Sandbox", SANDBOX, "email", (("approver_email", address),))
    return next(f for f in preflight.check(plan) if f.check == "mailbox")


def test_the_approver_s_domain_must_take_mail(checks, local_dns):
    local_dns.add(
        "mx.example. 60 MX 10 mail.mx.example.",
        "a.example. 60 A 192.0.2.1",
        "null.example. 60 MX 0 .",
        "nomail.example. 60 TXT hello",
    )
    assert mailbox(checks, "admin@mx.example").level == Level.OK
    assert mailbox(checks, "admin@a.example").level == Level.OK
    for address in ("admin@null.example", "admin@nomail.example", "admin@gone.example"):
        finding = mailbox(checks, address)
        assert finding.level == Level.WARNING and address in finding.message
        assert finding.field == "approver_email"


# --- HTTP and DNS validation ---------------------------------------------------------------


class WebHost(ThreadingHTTPServer):
    """A web host that serves what the panel published for it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Files)
        self.files: dict[str, str] = {}

    def publish(self, domain: str, path: str, content: str) -> bool:
        self.files[f"{domain}/{path}"] = content
        return True


class _Files(BaseHTTPRequestHandler):
    server: WebHost

    def do_GET(self) -> None:
        content = self.server.files.get(f"{self.headers['Host']}{self.path}")
        self.send_response(200 if content else 404)
        self.end_headers()
        self.wfile.write((content or "").encode())

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web_host():
    host = WebHost()
    thread = threading.Thread(target=host.serve_forever, daemon=True)
    thread.start()
    yield host
    host.shutdown()
    thread.join()


def http(checks: Preflight, name: str, publish):
    plan = Plan((name,), "Sandbox", SANDBOX, "http", publish=publish)
    return next(f for f in checks.check(plan) if f.check == "http")


def test_http_validation_probes_a_published_file_through_the_host(local_dns, web_host):
    local_dns.add("shop.example. 60 A 127.0.0.1", "elsewhere.example. 60 A 127.0.0.1")
    loopback = Outbound(parse_allow("127.0.0.0/8"))  # the admin's allow-list (test_outbound.py)
    checks = Preflight(local_dns.address, web_host.server_address[1], loopback)
    assert http(checks, "shop.example", web_host.publish).level == Level.OK
    assert len(web_host.files) == 1
    (path,) = web_host.files
    assert path.startswith("shop.example/.well-known/pki-validation/panel-ssl-probe-")

    def lost(domain, path, content):  # published somewhere this address does not serve
        return web_host.publish("other.example", path, content)

    missed = http(checks, "elsewhere.example", lost)
    assert missed.level == Level.WARNING and "answered 404" in missed.message
    unresolved = http(checks, "gone.example", web_host.publish)
    assert unresolved.level == Level.WARNING and "no address" in unresolved.message


def test_dns_validation_needs_the_zone_s_name_servers(checks, local_dns):
    local_dns.add("example. 60 NS ns1.example.", "example. 60 NS ns2.example.")
    plan = Plan(("www.shop.example",), "Sandbox", SANDBOX, "dns")
    found = next(f for f in checks.check(plan) if f.check == "dns")
    assert found.level == Level.OK and "ns1.example, ns2.example" in found.message
    local_dns.clear()
    plan = Plan(("www.shop.test",), "Sandbox", SANDBOX, "dns")
    missing = next(f for f in checks.check(plan) if f.check == "dns")
    assert missing.level == Level.WARNING


def test_off_asks_nothing(local_dns):
    local_dns.add('shop.example. 60 CAA 0 issue ";"')
    off = Preflight("off")
    plan = Plan(("shop.example",), "Sandbox", SANDBOX, "dns")
    assert off.check(plan) == [] and off.refusals(plan) == [] and local_dns.asked == []


# --- which CA each adapter names ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "settings", "brand", "issuers"),
    [
        (SandboxProvider, {}, "Sandbox", issuers_of.SANDBOX),
        (SectigoProvider, {}, "Sectigo", issuers_of.SECTIGO),
        (GoGetSSLProvider, {}, "comodo", issuers_of.SECTIGO),
        (GoGetSSLProvider, {}, "GeoTrust", issuers_of.DIGICERT),
        (GoGetSSLProvider, {}, "unheard-of", ()),
        (AcmeProvider, {"directory": "letsencrypt"}, "", issuers_of.LETS_ENCRYPT),
        (AcmeProvider, {"directory": "zerossl"}, "", issuers_of.SECTIGO),
        (AcmeProvider, {"directory": "custom", "directory_url": "https://ca.test/dir"}, "", ()),
    ],
)
def test_each_adapter_names_its_ca_s_caa_identifiers(cls, settings, brand, issuers):
    adapter = cls(settings, RecordingHost())
    assert adapter.caa_issuers(Product(id="p", name="P", brand=brand)) == issuers


def test_no_real_ca_shares_the_sandbox_s_identifier():
    real = {
        *issuers_of.SECTIGO,
        *issuers_of.DIGICERT,
        *issuers_of.CERTUM,
        *issuers_of.LETS_ENCRYPT,
        *issuers_of.BUYPASS,
        *issuers_of.GOOGLE,
    }
    assert not real & set(issuers_of.SANDBOX) and all(
        n.endswith(".test") for n in issuers_of.SANDBOX
    )


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("[::1]:5353", ("::1", 5353)),
        ("[::1]", ("::1", 53)),
        ("2001:db8::53", ("2001:db8::53", 53)),
    ],
)
def test_the_dns_server_setting(server, expected):
    assert server_address(server) == expected
