"""Pre-flight checks: whether an order is doomed, asked of DNS before the provider is paid.

While a reseller fills step 1 of the order popup, and again when the order is submitted, the
plugin asks DNS what the CA will ask it:

- **CAA** (RFC 8659): the relevant CAA RRset of each name (the name's own, else its parent's, up
  to the top-level domain) must let the product's CA issue. Only this check can stop an order,
  and only when records were read and forbid the CA; every other outcome is a warning.
- **Approval mailbox**: the approver's domain takes mail (MX, or an address record without MX).
- **HTTP validation**: the name resolves, and ``/.well-known/`` on it serves a probe file the
  plugin publishes through the host.
- **DNS validation**: the name's zone has name servers that answer.

Every lookup of one check shares one deadline (``LOOKUP_SECONDS``); the checks run side by side
and the caller waits for them at most ``LOOKUP_SECONDS`` too, so a DNS outage costs the popup a
moment and says "could not check", never more. Answers are kept briefly, in a bounded cache.
No Flask and no SQL here: the order service hands in the names, the CA's CAA identifiers and the
host's publishing hook; ``PANEL_SSL_DNS_SERVER`` (``host:port``) points the resolver at a
server of one's choice (tests and the demo use a local one).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
import requests
from cachetools import TTLCache

from panel_ssl_plugin import names
from panel_ssl_plugin.providers.base import DcvMethod

DNS_SERVER_ENV = "PANEL_SSL_DNS_SERVER"
PROBE_PORT_ENV = "PANEL_SSL_PROBE_HTTP_PORT"
OFF = "off"  # PANEL_SSL_DNS_SERVER=off: no checks (a panel that cannot reach DNS, benchmarks)
LOOKUP_SECONDS = 2.0
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 2000
PROBE_DIRECTORY = ".well-known/pki-validation"
# Properties RFC 8659 defines (and RFC 8657's account and method parameters ride on ``issue``);
# an unknown one with the issuer-critical flag forbids issuance.
KNOWN_CAA_TAGS = frozenset({"issue", "issuewild", "iodef", "contactemail", "contactphone"})
CRITICAL = 128
COULD_NOT = "Could not check"
# Threads shared by every host in the process: the checks of many popups at once queue here
# rather than start threads without bound.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="panel-ssl-preflight")


class Level(StrEnum):
    OK = "ok"
    WARNING = "warning"
    BLOCKED = "blocked"  # certain: the CA will refuse; the order is not placed


@dataclass(frozen=True)
class Finding:
    """What one check found, and the form field it is shown beside."""

    check: str  # caa, mailbox, http, dns
    field: str
    level: Level
    message: str


@dataclass(frozen=True)
class CaaRecord:
    owner: str
    flags: int
    tag: str
    value: str

    @property
    def issuer(self) -> str:
        """The issuer domain name of an ``issue``/``issuewild`` value; "" for ``";"``."""
        return self.value.split(";", 1)[0].strip().lower()

    def __str__(self) -> str:
        return f'{self.owner} CAA {self.flags} {self.tag} "{self.value}"'


@dataclass(frozen=True)
class Plan:
    """What to check for one order, as the order service knows it.

    ``names`` are A-labels, the order's domain first (wildcards as ``*.name``); ``issuers`` are
    the product's CA's CAA identifiers (empty: the CA is not known, CAA is only reported);
    ``approvers`` map a field to the approver addresses chosen in it; ``publish`` is the host's
    ``host_publish_http_file``.
    """

    names: tuple[str, ...]
    ca: str
    issuers: tuple[str, ...]
    dcv_method: str
    approvers: tuple[tuple[str, str], ...] = ()
    publish: Callable[[str, str, str], bool] | None = None


class Unanswered(Exception):
    """DNS gave no usable answer (timeout, SERVFAIL, no resolver): the check cannot tell."""


def name_field(plan: Plan, name: str) -> str:
    """The form field a name came from: the domain's, or the additional names'."""
    return "domain" if name == plan.names[0] else "sans"


class Preflight:
    """The checks of one host, with their resolver and cache."""

    def __init__(self, server: str | None = None, probe_port: int = 80):
        self.server = server
        self.probe_port = probe_port
        self._cache: TTLCache = TTLCache(CACHE_ENTRIES, CACHE_SECONDS)
        self._lock = threading.Lock()
        self._resolver: dns.resolver.Resolver | None = None

    @classmethod
    def from_environment(cls) -> Preflight:
        """``PANEL_SSL_DNS_SERVER`` (``host:port``; default the system's resolver; ``off``: no
        checks) and ``PANEL_SSL_PROBE_HTTP_PORT`` (default 80, where a CA fetches files)."""
        port = os.environ.get(PROBE_PORT_ENV, "").strip()
        return cls(os.environ.get(DNS_SERVER_ENV, "").strip() or None, int(port or 80))

    # --- what callers ask ----------------------------------------------------------------------

    def check(self, plan: Plan) -> list[Finding]:
        """Every check the plan calls for, side by side, within one deadline."""
        if self.server == OFF:
            return []
        jobs: list[tuple[Finding, Callable[[], Finding]]] = [
            (self._late("caa", name_field(plan, name)), lambda n=name: self._caa(plan, n))
            for name in plan.names
        ]
        if plan.dcv_method == DcvMethod.EMAIL:
            jobs += [
                (self._late("mailbox", field), lambda f=field, a=address: self._mailbox(f, a))
                for field, address in plan.approvers
            ]
        elif plan.dcv_method == DcvMethod.HTTP:
            jobs += [
                (self._late("http", "dcv_method"), lambda n=name: self._http(plan, n))
                for name in plan.names
            ]
        elif plan.dcv_method == DcvMethod.DNS:
            jobs += [
                (self._late("dns", "dcv_method"), lambda n=name: self._zone(n))
                for name in plan.names
            ]
        return self._run(jobs)

    def refusals(self, plan: Plan) -> list[Finding]:
        """The CAA checks alone, asked afresh (a record fixed a moment ago counts), and only
        those certain that the CA will refuse: what stops an order at submit."""
        if self.server == OFF:
            return []
        jobs = [
            (self._late("caa", name_field(plan, name)), lambda n=name: self._caa(plan, n, True))
            for name in plan.names
        ]
        return [f for f in self._run(jobs) if f.level == Level.BLOCKED]

    # --- running -------------------------------------------------------------------------------

    def _run(self, jobs: list[tuple[Finding, Callable[[], Finding]]]) -> list[Finding]:
        futures: list[Future] = [_POOL.submit(job) for _, job in jobs]
        wait(futures, timeout=LOOKUP_SECONDS + 0.5)
        return [_outcome(future, late) for (late, _), future in zip(jobs, futures, strict=True)]

    @staticmethod
    def _late(check: str, field: str) -> Finding:
        return Finding(check, field, Level.WARNING, "Could not check in time; DNS is slow.")

    def _cached(self, key: tuple, make: Callable[[], Finding]) -> Finding:
        """A finding from the cache, or made now and kept unless DNS could not tell: the next
        question should ask DNS again rather than repeat "could not check" for a minute."""
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None:
            return hit
        finding = make()
        if not finding.message.startswith(COULD_NOT):
            with self._lock:
                self._cache[key] = finding
        return finding

    def lookup(self, deadline: float) -> Lookup:
        """Questions sharing ``deadline``, asked through this host's one resolver."""
        if self._resolver is None:
            try:
                self._resolver = _resolver(self.server)
            except dns.resolver.NoResolverConfiguration:
                return Lookup(None, deadline)
        return Lookup(self._resolver, deadline)

    # --- the checks ----------------------------------------------------------------------------

    def _caa(self, plan: Plan, name: str, fresh: bool = False) -> Finding:
        field = name_field(plan, name)
        key = ("caa", name, plan.ca, plan.issuers, field)
        if fresh:
            with self._lock:
                self._cache.pop(key, None)
        return self._cached(
            key, lambda: caa_finding(self.lookup(_deadline()), name, plan.ca, plan.issuers, field)
        )

    def _mailbox(self, field: str, address: str) -> Finding:
        return self._cached(
            ("mailbox", address, field),
            lambda: mailbox_finding(self.lookup(_deadline()), address, field),
        )

    def _zone(self, name: str) -> Finding:
        return self._cached(("dns", name), lambda: zone_finding(self.lookup(_deadline()), name))

    def _http(self, plan: Plan, name: str) -> Finding:
        return self._cached(
            ("http", name, self.probe_port),
            lambda: http_finding(self.lookup(_deadline()), name, plan.publish, self.probe_port),
        )


def _outcome(future: Future, late: Finding) -> Finding:
    """A check's finding; ``late`` when it is still running, and words for one that broke."""
    if not future.done():
        return late
    error = future.exception()
    if error is None:
        return future.result()
    return Finding(late.check, late.field, Level.WARNING, f"{COULD_NOT}: {error}.")


def _deadline() -> float:
    return time.monotonic() + LOOKUP_SECONDS


class Lookup:
    """DNS questions that share one deadline; ``Unanswered`` when DNS cannot tell. A resolver
    of None stands for a machine with no resolver configured."""

    def __init__(self, resolver: dns.resolver.Resolver | None, deadline: float):
        self._resolver = resolver
        self.deadline = deadline

    def records(self, name: str, rdtype: str) -> tuple[str, list] | None:
        """(owner, rdatas) of ``name``'s RRset of ``rdtype`` (CNAMEs followed, the owner is
        where the records are); None when the name does not exist or has no such records."""
        if self._resolver is None:
            raise Unanswered("no DNS resolver is configured on this machine")
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise Unanswered("the time for this check ran out")
        try:
            answer = self._resolver.resolve(
                name, rdtype, raise_on_no_answer=False, lifetime=remaining
            )
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.LifetimeTimeout as error:
            raise Unanswered("DNS did not answer in time") from error
        except dns.resolver.NoNameservers as error:
            raise Unanswered("the name servers failed to answer (SERVFAIL)") from error
        except dns.exception.DNSException as error:
            raise Unanswered(str(error) or type(error).__name__) from error
        if answer.rrset is None or not len(answer.rrset):
            return None
        return answer.rrset.name.to_text(omit_final_dot=True), list(answer.rrset)

    def climb(self, name: str, rdtype: str) -> tuple[str, list] | None:
        """The first non-empty RRset of ``name`` or of a parent of it, the top-level domain
        included and the root not (RFC 8659 section 3); None when there is none."""
        current = dns.name.from_text(name)
        while current != dns.name.root:
            found = self.records(current.to_text(), rdtype)
            if found is not None:
                return found
            current = current.parent()
        return None


def _resolver(server: str | None) -> dns.resolver.Resolver:
    """The system's resolver, or one that asks ``server`` alone."""
    if server is None:
        return dns.resolver.Resolver()
    resolver = dns.resolver.Resolver(configure=False)
    host, resolver.port = server_address(server)
    resolver.nameservers = [host]
    return resolver


def server_address(server: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``; a bare IPv6 address has no port."""
    if server.startswith("["):
        host, _, port = server[1:].partition("]")
        return host, int(port.removeprefix(":") or 53)
    if server.count(":") == 1:
        host, _, port = server.partition(":")
        return host, int(port)
    return server, 53


def _could_not(check: str, field: str, what: str, why: Exception) -> Finding:
    return Finding(check, field, Level.WARNING, f"{COULD_NOT} {what}: {why}.")


# --- CAA -----------------------------------------------------------------------------------


def relevant_caa(lookup: Lookup, name: str) -> list[CaaRecord]:
    """RFC 8659's relevant CAA RRset of a name; a wildcard's is its base name's."""
    found = lookup.climb(name.removeprefix("*."), "CAA")
    if found is None:
        return []
    owner, rdatas = found
    return [
        CaaRecord(
            owner,
            rdata.flags,
            rdata.tag.decode(errors="replace").lower(),
            rdata.value.decode(errors="replace"),
        )
        for rdata in rdatas
    ]


def caa_verdict(
    records: Iterable[CaaRecord], issuers: Iterable[str], wildcard: bool
) -> tuple[bool, list[CaaRecord]]:
    """(allowed, the records that decide it) for a CA known by ``issuers``.

    An unknown property flagged critical forbids every CA. A wildcard name is governed by the
    ``issuewild`` records when there are any, else by ``issue``; a name no ``issue`` record
    restricts may be issued by any CA. Otherwise one record must name one of the CA's names.
    """
    records = list(records)
    critical = [r for r in records if r.flags & CRITICAL and r.tag not in KNOWN_CAA_TAGS]
    if critical:
        return False, critical
    wild = [r for r in records if r.tag == "issuewild"]
    governing = wild if wildcard and wild else [r for r in records if r.tag == "issue"]
    if not governing:
        return True, []
    known = {issuer.lower() for issuer in issuers}
    naming = [r for r in governing if r.issuer in known]
    return (True, naming) if naming else (False, governing)


def caa_finding(
    lookup: Lookup, name: str, ca: str, issuers: tuple[str, ...], field: str
) -> Finding:
    """Whether CAA lets the CA issue for ``name``, in words naming the deciding records."""
    shown = names.display_domain(name)
    try:
        records = relevant_caa(lookup, name)
    except Unanswered as why:
        return _could_not("caa", field, f"the CAA records of {shown}", why)
    allowed, deciding = caa_verdict(records, issuers, name.startswith("*."))
    listed = "; ".join(str(r) for r in deciding)
    if not issuers:
        if deciding:
            return Finding(
                "caa", field, Level.WARNING,
                f"CAA restricts who may issue for {shown} ({listed}); the provider does not "
                f"say which CAA name {ca} uses, so check that one of these names it.",
            )  # fmt: skip
        return Finding("caa", field, Level.OK, f"No CAA record restricts the CA for {shown}.")
    if allowed:
        why = f"{listed} names it" if deciding else "no CAA record restricts the CA"
        return Finding("caa", field, Level.OK, f"CAA lets {ca} issue for {shown}: {why}.")
    return Finding(
        "caa", field, Level.BLOCKED,
        f"CAA forbids {ca} ({', '.join(issuers)}) to issue for {shown}: {listed}. To order "
        f'it, add {deciding[0].owner} CAA 0 issue "{issuers[0]}" to the zone, or choose a '
        "product of a CA the records name.",
    )  # fmt: skip


# --- the approval mailbox ------------------------------------------------------------------


def mailbox_finding(lookup: Lookup, address: str, field: str) -> Finding:
    """Whether mail to the approver's domain has somewhere to go (RFC 5321 section 5.1)."""
    domain = address.rpartition("@")[2]
    shown, address = names.display_domain(domain), names.display_email(address)
    try:
        exchanges = lookup.records(domain, "MX")
        if exchanges is not None:
            hosts = [r.exchange for r in exchanges[1] if r.exchange != dns.name.root]
            if not hosts:  # a null MX (RFC 7505): the domain takes no mail
                return Finding(
                    "mailbox", field, Level.WARNING,
                    f"{shown} says it accepts no mail (null MX): the approval e-mail to "
                    f"{address} cannot arrive.",
                )  # fmt: skip
            return Finding(
                "mailbox", field, Level.OK,
                f"Mail for {shown} goes to {hosts[0].to_text(omit_final_dot=True)}.",
            )  # fmt: skip
        if lookup.records(domain, "A") or lookup.records(domain, "AAAA"):
            return Finding(
                "mailbox", field, Level.OK, f"{shown} has no MX; mail goes to its address."
            )
    except Unanswered as why:
        return _could_not("mailbox", field, f"the mail servers of {shown}", why)
    return Finding(
        "mailbox", field, Level.WARNING,
        f"{shown} has no MX record and no address: the approval e-mail to {address} "
        "cannot be delivered. Choose another approver, or add an MX record first.",
    )  # fmt: skip


# --- HTTP and DNS validation ---------------------------------------------------------------


def http_finding(
    lookup: Lookup, name: str, publish: Callable[[str, str, str], bool] | None, port: int
) -> Finding:
    """Whether the CA could fetch a validation file from ``name``: it resolves, and a probe
    file the host publishes comes back over HTTP from the address DNS gives."""
    try:
        found = lookup.records(name, "A")
    except Unanswered as why:
        return _could_not("http", "dcv_method", f"whether {name} resolves", why)
    if found is None:
        return Finding(
            "http", "dcv_method", Level.WARNING,
            f"{name} has no address (A record): the CA cannot fetch the validation file.",
        )  # fmt: skip
    token = secrets.token_urlsafe(16)
    path = f"{PROBE_DIRECTORY}/panel-ssl-probe-{token}.txt"
    if publish is None or not publish(name, path, token):
        return Finding(
            "http", "dcv_method", Level.OK,
            f"{name} resolves; the panel does not publish files there, so put the validation "
            "file in place yourself.",
        )  # fmt: skip
    address = found[1][0].address
    try:
        reply = requests.get(
            f"http://{address}:{port}/{path}",
            headers={"Host": name},
            timeout=max(0.1, lookup.deadline - time.monotonic()),
            allow_redirects=False,
        )
    except requests.RequestException as error:
        return Finding(
            "http", "dcv_method", Level.WARNING,
            f"http://{name}/.well-known/ did not answer ({type(error).__name__}): the CA "
            "could not fetch the validation file.",
        )  # fmt: skip
    if reply.status_code == 200 and reply.text.strip() == token:
        return Finding("http", "dcv_method", Level.OK, f"http://{name}/.well-known/ answers.")
    return Finding(
        "http", "dcv_method", Level.WARNING,
        f"http://{name}/.well-known/ answered {reply.status_code} instead of the file the "
        "panel published: the CA would see the same.",
    )  # fmt: skip


def zone_finding(lookup: Lookup, name: str) -> Finding:
    """Whether the zone ``name`` is in has name servers that answer, where the validation
    record goes."""
    try:
        found = lookup.climb(name.removeprefix("*."), "NS")
    except Unanswered as why:
        return _could_not("dns", "dcv_method", f"the name servers of {name}", why)
    if found is None:
        return Finding(
            "dns", "dcv_method", Level.WARNING,
            f"No name servers answer for {name}'s zone: the validation record cannot be seen.",
        )  # fmt: skip
    zone, servers = found
    listed = ", ".join(sorted(r.target.to_text(omit_final_dot=True) for r in servers))
    return Finding("dns", "dcv_method", Level.OK, f"The zone {zone} is served by {listed}.")
