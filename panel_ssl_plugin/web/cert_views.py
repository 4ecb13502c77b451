"""What a certificate says on the list and the details page: rows, words for times, the
provider's words apart from ours, validation tasks, downloads. View models only: built from
records for the templates, which never compute; the views that use them are in certs.py.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import flask

from panel_ssl_plugin import names
from panel_ssl_plugin.downloads import Material, bundle_needs_password, install_note
from panel_ssl_plugin.followups import REISSUABLE, REISSUE, RENEWABLE, RENEWAL, Chain
from panel_ssl_plugin.providers.base import SERVER_TYPES, DcvMethod, OrderState
from panel_ssl_plugin.sending import NOT_SENT, leased
from panel_ssl_plugin.store import IN_FLIGHT, EventRecord, OrderRecord
from panel_ssl_plugin.web import current_runtime
from panel_ssl_plugin.web.files import LABELS as DOWNLOAD_LABELS
from panel_ssl_plugin.web.files import PUBLIC_FORMATS
from panel_ssl_plugin.web.forms import DCV_LABELS, period_label

SOON_DAYS = 30
# the list's columns: (sort key of orders.account_page, or None, heading)
COLUMNS = (
    ("domain", "Domain"),
    (None, "Product"),
    ("status", "Status"),
    ("expires", "Expires"),
    ("created", "Ordered"),
    (None, "Actions"),
)
# what the customer does next, by state; pending depends on how the domain is validated
NEXT_STEPS = {
    OrderState.DRAFT: "Fix what the provider refused and resubmit: the order opens with every "
    "value you entered. Or discard it.",
    OrderState.SUBMITTED: "The order is saved but the provider has not taken it yet; we retry "
    "automatically. Press Check status to try now.",
    OrderState.UNKNOWN: "We sent this order to the provider but got no usable answer. We are "
    "asking the provider whether it arrived; it will not be placed twice. Press Check status to "
    "ask now.",
    OrderState.ISSUED: "The certificate is issued: download it on the Certificate tab.",
    OrderState.FAILED: "The provider did not issue this certificate (see above); order again.",
    OrderState.CANCELLED: "This order is cancelled; nothing more will happen to it.",
    OrderState.REVOKED: "This certificate is revoked; order a new one.",
    OrderState.EXPIRED: "This certificate has expired; renew it to get a new one.",
}
PENDING_STEPS = {
    DcvMethod.EMAIL: "The approver must open the link in the approval email. No mail arrived? "
    "Send it again.",
    DcvMethod.HTTP: "Publish the file below on the website, then tell the provider to validate.",
    DcvMethod.DNS: "Create the DNS records below, then tell the provider to validate.",
}
PUBLISHED_STEP = "Published by the panel; the provider will check it."
# Orders that ended without a certificate: "order again" starts a new one from their values. A
# refused one (a draft) is fixed and resubmitted instead, from the same popup.
REORDERABLE = frozenset({OrderState.CANCELLED, OrderState.FAILED})
RESEND_LABELS = {
    DcvMethod.EMAIL: "Resend approval email",
    DcvMethod.HTTP: "I have published the records — validate now",
    DcvMethod.DNS: "I have published the records — validate now",
}
RECHECK_LABEL = "Ask the provider to check now"  # the panel published every record itself
# The states in which the provider's last answer still stands: ours changed nothing since.
ANSWERED = frozenset({OrderState.PENDING, OrderState.ISSUED})
REFUSED = "refused"  # what a draft is to the reseller: the provider refused the order
MAX_FAILURE = 300  # characters of a failure's reason in a list row


# --- words for times --------------------------------------------------------------------------


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" + ("" if number == 1 else "s")


def ago(moment: datetime | None, now: datetime) -> str:
    """ "never", "just now", "5 minutes ago": how fresh a status is, at a glance."""
    if moment is None:
        return "never"
    seconds = int((now - moment).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{_count(seconds // size, unit)} ago"
    return "just now"


def due(moment: datetime, now: datetime) -> str:
    """ "in 4 minutes", "now": when something planned happens, to the nearest minute."""
    minutes = round((moment - now).total_seconds() / 60)
    for unit, size in (("day", 1440), ("hour", 60)):
        if minutes >= size:
            return f"in {_count(round(minutes / size), unit)}"
    return f"in {_count(minutes, 'minute')}" if minutes > 0 else "now"


def days_left(not_after: datetime | None, now: datetime) -> tuple[str, str]:
    """The expiry in days as words, and a tone (``soon``, ``past``) for the row's colour."""
    if not_after is None:
        return "", ""
    days = (not_after - now).days
    if days < 0:
        return f"expired {_count(-days, 'day')} ago", "past"
    if days == 0:
        return "expires today", "soon"
    return f"{_count(days, 'day')} left", "soon" if days <= SOON_DAYS else ""


# --- view models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """When the provider was last asked, in words: "Last checked 5 minutes ago", or, while tries
    fail, "Last check failed 1 minute ago: <reason> · next try in 4 minutes"."""

    words: str  # "Last checked", "Last check failed", "Sending failed"
    when: str  # "5 minutes ago"
    title: str  # the exact time, for a tooltip
    reason: str = ""
    next_try: str = ""  # "in 4 minutes", "now"; "" when no retry is planned

    @property
    def failed(self) -> bool:
        return bool(self.reason)


def checked(order: OrderRecord, failure: EventRecord | None, now: datetime) -> Checked | None:
    """None for a refused order: nothing is asked about it."""
    if order.status == OrderState.DRAFT:
        return None
    if failure is None:
        moment = order.last_checked_at
        title = f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""
        return Checked("Last checked", ago(moment, now), title)
    words = "Sending failed" if failure.event == NOT_SENT else "Last check failed"
    retry = order.next_check_at if order.status in IN_FLIGHT else None
    return Checked(
        words,
        ago(failure.at, now),
        f"{failure.at:%Y-%m-%d %H:%M} UTC",
        reason=textwrap.shorten(failure.detail, MAX_FAILURE, placeholder=" …") or "no reason given",
        next_try=due(retry, now) if retry else "",
    )


@dataclass(frozen=True)
class CertRow:
    """One certificate as the list and the details page show it."""

    id: int
    domain: str
    product: str
    provider: str
    status: str
    status_label: str  # the badge's word: the status, or "refused" for a draft
    provider_status: str  # the provider's word while its answer stands, else ""
    refusal: str  # the provider's words when it refused the order
    ordered: str
    expires: str
    days_left: str
    expiry_tone: str
    checked: Checked | None
    fix_href: str  # "fix and resubmit" for a refused order
    can_check: bool
    follows: str  # "renewal of #3", "reissue of #3"; "" for an original order
    superseded_by: int | None  # the chain's current certificate, when this one is older
    renew_blocked: str  # why there is no renew link ("renewal #7 pending"), "" when there is one
    can_renew: bool
    reissue_blocked: str  # why there is no reissue form ("reissue #8 pending"), or ""
    can_reissue: bool

    @property
    def badge(self) -> str:
        return f"badge badge-{self.status_label}"


def cert_row(
    order: OrderRecord,
    providers: dict[int, str],
    now: datetime,
    chain: Chain,
    failure: EventRecord | None = None,
) -> CertRow:
    """``chain``: the order's renewal and reissue chain, for what supersedes or blocks it;
    ``failure``: why its last try failed, while it fails (OrderService.failed_tries)."""
    left, tone = days_left(order.not_after, now)
    current = chain.superseded_by(order)
    renewing, reissuing = chain.in_flight(RENEWAL), chain.in_flight(REISSUE)
    followable = current is None and order.id not in (_id(renewing), _id(reissuing))
    refused = order.status == OrderState.DRAFT
    return CertRow(
        id=order.id,
        domain=names.display_domain(order.domain),
        product=order.product_name or order.product_id,
        provider=providers.get(order.provider_account_id, ""),
        status=order.status,
        status_label=REFUSED if refused else order.status,
        provider_status=order.provider_status if _answer_stands(order, now) else "",
        refusal=order.status_detail if refused else "",
        ordered=f"{order.created_at:%Y-%m-%d}",
        expires=f"{order.not_after:%Y-%m-%d}" if order.not_after else "",
        days_left=left,
        expiry_tone=tone,
        checked=checked(order, failure, now),
        fix_href=order_again_href(order) if refused else "",
        can_check=not refused,
        follows=_follows(order),
        superseded_by=current.id if current else None,
        renew_blocked=_blocked(renewing, RENEWAL) if followable else "",
        can_renew=followable and order.status in RENEWABLE and renewing is None,
        reissue_blocked=_blocked(reissuing, REISSUE) if followable else "",
        can_reissue=followable and order.status in REISSUABLE and reissuing is None,
    )


def _answer_stands(order: OrderRecord, now: datetime) -> bool:
    """Whether the order is where the provider's last answer left it: nothing of ours (a
    cancel, the end of its validity, a certificate refused) came after it."""
    return bool(order.provider_status) and order.status in ANSWERED and not leased(order, now)


def order_again_href(order: OrderRecord) -> str:
    """The order popup pre-filled from ``order``; a refused order's resubmits that order."""
    return flask.url_for(".order", account_id=order.account_id, **{"from": order.id})


def _id(order: OrderRecord | None) -> int | None:
    return order.id if order else None


def _blocked(follow_up: OrderRecord | None, kind) -> str:
    return f"{kind.noun} #{follow_up.id} {follow_up.status}" if follow_up else ""


def _follows(order: OrderRecord) -> str:
    if order.follows is None:
        return ""
    kind = REISSUE if order.reissue_of is not None else RENEWAL
    return f"{kind.noun} of #{order.follows}"


def provider_labels() -> dict[int, str]:
    return current_runtime().accounts.labels()


@dataclass(frozen=True)
class Heading:
    """A column heading; a sortable one links to itself, flipping the direction when current."""

    label: str
    href: str = ""
    aria_sort: str = ""


def headings(account_id: str, sort: str, descending: bool) -> list[Heading]:
    headings = []
    for key, label in COLUMNS:
        if key is None:
            headings.append(Heading(label))
            continue
        current = key == sort
        flip = "desc" if current and not descending else "asc"
        href = flask.url_for(".certs", account_id=account_id, sort=key, dir=flip)
        state = ("descending" if descending else "ascending") if current else "none"
        headings.append(Heading(label, href, state))
    return headings


@dataclass(frozen=True)
class Said:
    """What the provider said about the order, for the details page; the words are its own."""

    heading: str  # "The provider says:", "When last asked (3 days ago), the provider said:"
    words: str
    note: str = ""  # its raw status beside its words: "(status “processing”)"


def said(order: OrderRecord, now: datetime) -> Said | None:
    """None until the provider said something: before its first answer, only we have spoken."""
    if order.status == OrderState.DRAFT:
        return Said("The provider refused the order:", order.status_detail)
    if not order.provider_status:
        return None
    raw = f"“{order.provider_status}”"
    if not _answer_stands(order, now):
        return Said(f"When last asked ({ago(order.last_checked_at, now)}), the provider said:", raw)
    if order.status_detail:
        return Said("The provider says:", order.status_detail, f"(status {raw})")
    return Said("The provider says:", raw)


def our_words(order: OrderRecord, now: datetime) -> str:
    """The order's status line when it is ours (placed, sending, cancelled, held …), not the
    provider's answer, which said shows."""
    provider_spoke = order.status == OrderState.DRAFT or _answer_stands(order, now)
    return "" if provider_spoke else order.status_detail


@dataclass(frozen=True)
class Task:
    """One validation step, with exactly what to publish (or who approves); one the panel
    published itself is folded away."""

    domain: str
    method: str
    fields: list[tuple[str, str]]
    status: str
    published: bool


def task(values: dict[str, Any]) -> Task:
    method = DcvMethod(values["method"])
    location, value = values.get("location", ""), values.get("value", "")
    fields = {
        DcvMethod.HTTP: [("URL", location), ("File content", value)],
        DcvMethod.DNS: [
            ("Record name", location),
            ("Type", values.get("record_type", "")),
            ("Value", value),
        ],
        DcvMethod.EMAIL: [("Approver", names.display_email(location))],
    }[method]
    return Task(
        domain=names.display_domain(values.get("domain", "")),
        method=DCV_LABELS[method],
        fields=fields,
        status=values.get("status", ""),
        published=bool(values.get("published")),
    )


def next_step(order: OrderRecord, tasks: list[Task]) -> str:
    if order.status != OrderState.PENDING:
        return NEXT_STEPS.get(order.status, "")
    if _all_published(tasks):
        return PUBLISHED_STEP
    return PENDING_STEPS.get(order.dcv_method, "")


def _all_published(tasks: list[Task]) -> bool:
    return bool(tasks) and all(task.published for task in tasks)


def resend_label(order: OrderRecord, tasks: list[Task]) -> str:
    if order.status != OrderState.PENDING:
        return ""
    return RECHECK_LABEL if _all_published(tasks) else RESEND_LABELS.get(order.dcv_method, "")


def summary(order: OrderRecord, row: CertRow) -> list[tuple[str, str]]:
    validation = DCV_LABELS.get(order.dcv_method, order.dcv_method)
    if order.approver_email:
        validation = f"{validation} to {names.display_email(order.approver_email)}"
    pairs = [
        ("Domain name", row.domain),
        ("Additional names", ", ".join(names.display_domain(n) for n in order.sans)),
        ("Product", row.product),
        ("Provider", row.provider),
        ("Provider order", order.provider_order_id or ""),
        ("Ordered as", row.follows),
        ("Validity period", period_label(order.period_months)),
        ("Server type", SERVER_TYPES.get(order.server_type, order.server_type)),
        ("Validation", validation),
        ("Valid from", f"{order.not_before:%Y-%m-%d}" if order.not_before else ""),
        ("Expires", f"{row.expires} ({row.days_left})" if row.expires else ""),
    ]
    return [(label, value) for label, value in pairs if value]


@dataclass(frozen=True)
class Downloads:
    """The Certificate tab's download section."""

    public: list[tuple[str, str]]  # (label, href)
    has_key: bool
    bundle_label: str
    bundle_needs_password: bool
    install_note: str


def downloads(order: OrderRecord) -> Downloads:
    server = SERVER_TYPES.get(order.server_type, SERVER_TYPES["other"])
    material = Material(order.domain, order.server_type, "", "", None)
    public = [
        (DOWNLOAD_LABELS[fmt], flask.url_for(".cert_download", order_id=order.id, fmt=fmt))
        for fmt in PUBLIC_FORMATS
    ]
    return Downloads(
        public=public,
        has_key=order.private_key_encrypted is not None,
        bundle_label=DOWNLOAD_LABELS["bundle"].format(server=server),
        bundle_needs_password=bundle_needs_password(order.server_type),
        install_note=install_note(material, server),
    )


def shown(chains: list[Chain]) -> str:
    """ "3 certificates · 4 rows with 1 renewal": what this page shows, the rows counted when
    renewals and reissues stand under their certificates. The page says nothing of the
    client's total: counting every order on every page is what keyset pages avoid."""
    certificates = _count(len(chains), "certificate")
    members = [order for chain in chains for order in chain.orders]
    kinds = [
        (kind, sum(getattr(o, kind.link) is not None for o in members))
        for kind in (RENEWAL, REISSUE)
    ]
    follow_ups = [_count(n, kind.noun) for kind, n in kinds if n]
    if not follow_ups:
        return certificates
    return f"{certificates} · {_count(len(members), 'row')} with {' and '.join(follow_ups)}"


def history(events: list[EventRecord]) -> list[tuple[str, str, str, str]]:
    """Newest first: what happened last is what the user is looking for."""
    return [
        (f"{e.at:%Y-%m-%d %H:%M:%S}", e.actor, e.event.replace("_", " "), e.detail)
        for e in reversed(events)
    ]
