"""Pre-flight checks: whether an order is doomed, asked of DNS before the provider is paid.

While a reseller fills step 1 of the order popup, and again when the order is submitted, the
plugin asks DNS what the CA will ask it:

- **CAA** (RFC 8659): the relevant CAA RRset of each name (the name's own, else its parent's, up
  to the top-level domain) must let the product's CA issue. Only this check can stop an order,
  and only when records were read and forbid the CA; every other outcome is a warning.
- **Approval mailbox**: the approver's domain takes mail (MX, or an address record without MX).
- **HTTP validation**: the name resolves to a public address, and ``/.well-known/`` there
  serves a probe file the plugin publishes through the host (and removes afterwards); the
  connection follows outbound.py's rule.
- **DNS validation**: the name's zone has name servers that answer.

Every check of one request shares one deadline (``LOOKUP_SECONDS``); the checks run side by
side and the caller waits for them until then, so a DNS outage costs the popup a moment and says
"could not check", never more; a check still queued at the deadline is cancelled. The work is
bounded per request (the names the product covers), per actor (``NAMES_PER_MINUTE``) and per
moment (workshare.FairPool: each actor's checks queue apart and take the threads in turn), so one
reseller's flood leaves every other reseller's checks their threads. Answers are kept briefly,
in a bounded cache.
No Flask and no SQL here: the order service hands in the names, the CA's CAA identifiers and the
host's publishing hook; ``PANEL_SSL_DNS_SERVER`` (``host:port``) points the resolver at a
server of one's choice (tests and the demo use a local one).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from enum import StrEnum
from functools import partial

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from cachetools import TTLCache

from panel_ssl_plugin import names
from panel_ssl_plugin.outbound import Outbound, Refused, Unreachable
from panel_ssl_plugin.providers.base import DcvMethod
from panel_ssl_plugin.workshare import FairPool, Throttle

DNS_SERVER_ENV = "PANEL_SSL_DNS_SERVER"
PROBE_PORT_ENV = "PANEL_SSL_PROBE_HTTP_PORT"
OFF = "off"  # PANEL_SSL_DNS_SERVER=off: no checks (a panel that cannot reach DNS, benchmarks)
LOOKUP_SECONDS = 2.0
GRACE_SECONDS = 0.5  # a check that ran out of time says so within this, after the deadline
CACHE_SECONDS = 60.0
CACHE_ENTRIES = 2000
PROBE_DIRECTORY = ".well-known/pki-validation"
# Properties RFC 8659 defines (and RFC 8657's account and method parameters ride on ``issue``);
# an unknown one with the issuer-critical flag forbids issuance.
KNOWN_CAA_TAGS = frozenset({"issue", "issuewild", "iodef", "contactemail", "contactphone"})
CRITICAL = 128
COULD_NOT = "Could not check"
TOO_MANY = (
    "Too many names checked in the last minute: the checks wait a minute. Nothing is wrong "
    "with the order; at Place order CAA is checked again."
)
RETRY = (
    "Nothing was ordered: a CA does not issue while it cannot read CAA either. Try again in "
    "a moment."
)
NAMES_PER_MINUTE = 600  # names one actor may have checked per minute, live and at submit
# Threads shared by every host in the process: the checks of many popups at once queue here,
# each actor's apart, rather than start threads without bound.
POOL = FairPool(workers=16, per_key=6, name="panel-ssl-preflight")


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

    ``names`` are A-labels, the order's domain first (wildcards as ``*.name``), no more than
    the product covers; ``issuers`` are the product's CA's CAA identifiers (empty: the CA is
    not known, CAA is only reported); ``approvers`` map a field to the approver addresses
    chosen in it; ``publish`` and ``unpublish`` are the host's ``host_publish_http_file`` and
    ``host_unpublish_http_file``; ``actor`` is whose work it is (workshare).
    """

    names: tuple[str, ...]
    ca: str
    issuers: tuple[str, ...]
    dcv_method: str
    approvers: tuple[tuple[str, str], ...] = ()
    publish: Callable[[str, str, str], bool] | None = None
    unpublish: Callable[[str, str], object] | None = None
    actor: Hashable = ""


class Unanswered(Exception):
    """DNS gave no usable answer (timeout, SERVFAIL, no resolver): the check cannot tell."""


def name_field(plan: Plan, name: str) -> str:
    """The form field a name came from: the domain's, or the additional names'."""
    return "domain" if name == plan.names[0] else "sans"


Job = tuple[Finding, Callable[[float], Finding]]  # (the finding if it is late, the check)


class Preflight:
    """The checks of one host, with their resolver, cache and outbound rule."""

    def __init__(
        self,
        server: str | None = None,
        probe_port: int = 80,
        outbound: Outbound | None = None,
        pool: FairPool = POOL,
        throttle: Throttle | None = None,
    ):
        self.server = server
        self.probe_port = probe_port
        self.outbound = outbound or Outbound()
        self.pool = pool
        self.throttle = throttle or Throttle(NAMES_PER_MINUTE)
        self._cache: TTLCache = TTLCache(CACHE_ENTRIES, CACHE_SECONDS)
        self._lock = threading.Lock()
        self._resolver: dns.resolver.Resolver | None = None

    @classmethod
    def from_environment(cls) -> Preflight:
        """``PANEL_SSL_DNS_SERVER`` (``host:port``; default the system's resolver; ``off``: no
        checks), ``PANEL_SSL_PROBE_HTTP_PORT`` (default 80, where a CA fetches files) and
        ``PANEL_SSL_OUTBOUND_ALLOW`` (outbound.py)."""
        port = os.environ.get(PROBE_PORT_ENV, "").strip()
        server = os.environ.get(DNS_SERVER_ENV, "").strip() or None
        return cls(server, int(port or 80), Outbound.from_environment())

    # --- what callers ask ----------------------------------------------------------------------

    def check(self, plan: Plan) -> list[Finding]:
        """Every check the plan calls for, side by side, within one deadline."""
        if self.server == OFF:
            return []
        if not self.throttle.take(plan.actor, len(plan.names)):
            return [Finding("caa", "domain", Level.WARNING, TOO_MANY)]
        jobs: list[Job] = [
            (_late("caa", name_field(plan, name)), partial(self._caa, plan, name))
            for name in plan.names
        ]
        if plan.dcv_method == DcvMethod.EMAIL:
            jobs += [
                (_late("mailbox", field), partial(self._mailbox, field, address))
                for field, address in plan.approvers
            ]
        elif plan.dcv_method == DcvMethod.HTTP:
            jobs += [(_late("http", "dcv_method"), partial(self._http, plan, name))
                     for name in plan.names]  # fmt: skip
        elif plan.dcv_method == DcvMethod.DNS:
            jobs += [(_late("dns", "dcv_method"), partial(self._zone, name))
                     for name in plan.names]  # fmt: skip
        return self._run(plan.actor, jobs)

    def refusals(self, plan: Plan) -> list[Finding]:
        """What stops an order at submit: the CAA checks alone, asked afresh (a record fixed a
        moment ago counts). A CAA answer that forbids the CA stops it; so does one that could
        not be had in time when the CA is known, since the CA would not issue without it
        either: the reseller is told to try again."""
        if self.server == OFF:
            return []
        jobs: list[Job] = [
            (_late("caa", name_field(plan, name)), partial(self._caa, plan, name, fresh=True))
            for name in plan.names
        ]
        found = self._run(("submit", plan.actor), jobs)
        blocked = [f for f in found if f.level == Level.BLOCKED]
        if not plan.issuers:
            return blocked
        unknown = [
            Finding(f.check, f.field, Level.BLOCKED, f"{f.message} {RETRY}")
            for f in found
            if f.level == Level.WARNING and f.message.startswith(COULD_NOT)
        ]
        return blocked + unknown

    # --- running -------------------------------------------------------------------------------

    def _run(self, actor: Hashable, jobs: list[Job]) -> list[Finding]:
        """Run the jobs as ``actor``'s, each given the one deadline; at the deadline the ones
        not started are cancelled and every unfinished one answers "could not check in time"."""
        deadline = time.monotonic() + LOOKUP_SECONDS
        futures: list[Future] = [self.pool.submit(actor, partial(job, deadline))
                                 for _, job in jobs]  # fmt: skip
        wait(futures, timeout=LOOKUP_SECONDS + GRACE_SECONDS)
        for future in futures:
            future.cancel()
        return [_outcome(future, late) for (late, _), future in zip(jobs, futures, strict=True)]

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

    def _caa(self, plan: Plan, name: str, deadline: float, fresh: bool = False) -> Finding:
        field = name_field(plan, name)
        key = ("caa", name, plan.ca, plan.issuers, field)
        if fresh:
            with self._lock:
                self._cache.pop(key, None)
        return self._cached(
            key, lambda: caa_finding(self.lookup(deadline), name, plan.ca, plan.issuers, field)
        )

    def _mailbox(self, field: str, address: str, deadline: float) -> Finding:
        return self._cached(
            ("mailbox", address, field),
            lambda: mailbox_finding(self.lookup(deadline), address, field),
        )

    def _zone(self, name: str, deadline: float) -> Finding:
        return self._cached(("dns", name), lambda: zone_finding(self.lookup(deadline), name))

    def _http(self, plan: Plan, name: str, deadline: float) -> Finding:
        probe = Probe(self.outbound, self.probe_port, plan.publish, plan.unpublish)
        return self._cached(
            ("http", name, self.probe_port),
            lambda: http_finding(self.lookup(deadline), name, probe),
        )


def _late(check: str, field: str) -> Finding:
    return Finding(check, field, Level.WARNING, f"{COULD_NOT} in time; DNS is slow.")


def _outcome(future: Future, late: Finding) -> Finding:
    """A check's finding; ``late`` when it is still running, and words for one that broke."""
    if not future.done() or future.cancelled():
        return late
    error = future.exception()
    if error is None:
        return future.result()
    return Finding(late.check, late.field, Level.WARNING, f"{COULD_NOT}: {error}.")


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

    def addresses(self, name: str) -> list[str]:
        """The IPv4 addresses of ``name``, else its IPv6 ones; none when it has neither."""
        for rdtype in ("A", "AAAA"):
            found = self.records(name, rdtype)
            if found is not None:
                return [rdata.address for rdata in found[1]]
        return []

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


@dataclass(frozen=True)
class Probe:
    """How the HTTP check reaches a name: the outbound rule, the port a CA fetches from, and
    the host's hooks that publish the probe file and remove it."""

    outbound: Outbound
    port: int
    publish: Callable[[str, str, str], bool] | None
    unpublish: Callable[[str, str], object] | None


def http_finding(lookup: Lookup, name: str, probe: Probe) -> Finding:
    """Whether the CA could fetch a validation file from ``name``: it resolves to a public
    address, and a probe file the host publishes comes back over HTTP from that address."""
    try:
        addresses = lookup.addresses(name)
    except Unanswered as why:
        return _could_not("http", "dcv_method", f"whether {name} resolves", why)
    if not addresses:
        return Finding(
            "http", "dcv_method", Level.WARNING,
            f"{name} has no address (A or AAAA record): the CA cannot fetch the validation "
            "file.",
        )  # fmt: skip
    try:
        target = probe.outbound.target(name, addresses, probe.port)
    except Refused as why:
        return Finding("http", "dcv_method", Level.WARNING, str(why))
    token = secrets.token_urlsafe(16)
    path = f"{PROBE_DIRECTORY}/panel-ssl-probe-{token}.txt"
    if probe.publish is None or not probe.publish(name, path, token):
        return Finding(
            "http", "dcv_method", Level.OK,
            f"{name} resolves; the panel does not publish files there, so put the validation "
            "file in place yourself.",
        )  # fmt: skip
    try:
        status, body = probe.outbound.http_get(target, path, lookup.deadline)
    except Unreachable as why:
        return Finding(
            "http", "dcv_method", Level.WARNING,
            f"http://{name}/.well-known/ {why}: the CA could not fetch the validation file.",
        )  # fmt: skip
    finally:
        if probe.unpublish is not None:
            probe.unpublish(name, path)
    if status == 200 and body.strip() == token.encode():
        return Finding("http", "dcv_method", Level.OK, f"http://{name}/.well-known/ answers.")
    return Finding(
        "http", "dcv_method", Level.WARNING,
        f"http://{name}/.well-known/ answered {status} instead of the file the "
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
