"""What the sandbox CA sells and what it accepts: its settings form, its catalogue, and the
checks a real CA makes on an order (names, CSR, organization), in a CA's words.

The readings behind these are in ``panel_ssl_plugin/providers/sandbox.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import wtforms
from wtforms import validators

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.providers.base import (
    Addon,
    DcvMethod,
    OrderRequest,
    Product,
    ProviderRejected,
)

APPROVER_MAILBOXES = ("admin", "administrator", "hostmaster", "postmaster", "webmaster")


PERIOD_CHOICES = [
    wtforms.SelectChoice(str(months), label)
    for months, label in ((12, "1 year"), (24, "2 years"), (36, "3 years"))
]
DEFAULT_PERIODS = (12, 24)
DEFAULT_ORGANIZATION = "Panel SSL Sandbox"


UNAVAILABLE = "unavailable"
RATE_LIMITED = "rate_limited"
LOST_REPLY = "lost_reply"
REHEARSAL_CHOICES = [
    wtforms.SelectChoice("", "Nothing: orders go through"),
    wtforms.SelectChoice(UNAVAILABLE, "The provider is down: nothing is ordered"),
    wtforms.SelectChoice(RATE_LIMITED, "The provider is busy (rate limit): nothing is ordered"),
    wtforms.SelectChoice(
        LOST_REPLY, "The reply is lost: the order is made, the answer never comes"
    ),
]


WARRANTY = Addon(
    "warranty",
    "Extended warranty",
    "$10.00 per year",
    "Raises the relying-party warranty (sandbox: no money changes hands).",
)
EXTRA_SAN = Addon(
    "extra-san", "Extra SAN", "$5.00 per name per year", "Each name beyond the included ones."
)


class SandboxSettingsForm(wtforms.Form):
    """What an admin tunes to rehearse the paths a real CA takes: delays, rejections, load."""

    organization = wtforms.StringField(
        "Organization name of the test CA",
        default=DEFAULT_ORGANIZATION,
        validators=[validators.DataRequired(), validators.Length(max=64)],
        description="Names the CA when it is first created.",
    )
    reject_message = wtforms.StringField(
        "Reject every order with this message",
        validators=[validators.Optional(), validators.Length(max=500)],
        description="Leave empty to accept orders; set it to rehearse the error path.",
    )
    issue_delay = wtforms.IntegerField(
        "Issue N seconds after approval",
        default=0,
        validators=[validators.NumberRange(min=0, max=86400)],
    )
    auto_approve = wtforms.BooleanField(
        "Approve automatically",
        description="Skip the approval e-mail (load tests, benchmarks).",
    )
    periods = wtforms.SelectMultipleField(
        "Periods offered",
        choices=PERIOD_CHOICES,
        coerce=int,
        default=list(DEFAULT_PERIODS),
        validators=[validators.DataRequired()],
    )
    rehearse = wtforms.SelectField(
        "Rehearse a failure of the provider",
        choices=REHEARSAL_CHOICES,
        default="",
        description="What happens to the next N orders, renewals and reissues (below).",
    )
    rehearse_count = wtforms.IntegerField(
        "Rehearse it on the next N orders",
        default=0,
        validators=[validators.NumberRange(min=0, max=1000)],
        description="Counts down with each order it fails; at 0 orders go through again.",
    )


@dataclass(frozen=True)
class Offer:
    """A catalogue entry; periods and prices follow the admin's settings, so not a Product yet."""

    id: str
    name: str
    cents_per_year: int
    validation: str = "dv"
    max_sans: int = 0
    included_sans: int = 0
    wildcard: bool = False
    dcv_methods: tuple[DcvMethod, ...] = (DcvMethod.EMAIL,)
    addons: tuple[Addon, ...] = (WARRANTY,)

    def product(self, periods: tuple[int, ...]) -> Product:
        prices = {months: f"${self.cents_per_year * months / 1200:.2f}" for months in periods}
        return Product(
            id=self.id,
            name=self.name,
            brand="Sandbox",
            validation=self.validation,
            periods=periods,
            prices=prices,
            max_sans=self.max_sans,
            wildcard=self.wildcard,
            org_required=self.validation != "dv",
            dcv_methods=self.dcv_methods,
            addons=self.addons,
        )


OFFERS = {
    offer.id: offer
    for offer in (
        Offer("dv-single", "Sandbox DV Single Domain", 900),
        Offer(
            "dv-wildcard",
            "Sandbox DV Wildcard",
            4900,
            max_sans=1,
            included_sans=1,
            wildcard=True,
            dcv_methods=(DcvMethod.EMAIL, DcvMethod.DNS),
        ),
        Offer(
            "dv-multi",
            "Sandbox DV Multi-Domain (2 extra names included)",
            2900,
            max_sans=100,
            included_sans=2,
            addons=(EXTRA_SAN, WARRANTY),
        ),
        Offer("ov-single", "Sandbox OV Business", 5900, validation="ov"),
    )
}


def normalized_domain(name: str, allow_wildcard: bool) -> str:
    """The plugin's one reading of a domain name, in the words a CA would reject it with."""
    try:
        return names.normalize_domain(name, allow_wildcard=allow_wildcard)
    except names.InvalidInput as error:
        raise ProviderRejected(str(error), field="domain") from error


def approver_domains(domain: str) -> list[str]:
    """Where a name's approvers may be: the name (a wildcard's base) and its parent domain."""
    base = normalized_domain(domain, allow_wildcard=True).removeprefix("*.")
    parent = base.partition(".")[2]
    return [base, parent] if "." in parent else [base]


def check_names(request: OrderRequest, offer: Offer) -> list[str]:
    asked = (request.domain, *request.sans)
    ordered = list(dict.fromkeys(normalized_domain(name, offer.wildcard) for name in asked))
    extra = len(ordered) - 1
    if extra > offer.max_sans:
        raise ProviderRejected(
            f"{offer.name} allows {offer.max_sans} names besides the domain; {extra} asked.",
            field="sans",
        )
    if extra > offer.included_sans and EXTRA_SAN.id not in request.addons:
        raise ProviderRejected(
            f"{offer.name} includes {offer.included_sans} extra names; add the "
            f"{EXTRA_SAN.name!r} add-on for the other {extra - offer.included_sans}.",
            field="addons",
        )
    return ordered


def check_csr(csr_pem: str, ordered: list[str]) -> None:
    try:
        csr = keys.load_csr(csr_pem)
    except keys.InvalidMaterial as error:
        raise ProviderRejected(str(error), field="csr") from error
    if not csr.is_signature_valid:
        raise ProviderRejected("The CSR's signature does not verify.", field="csr")
    asked = sorted({n.lower() for n in keys.csr_names(csr)})
    if asked != sorted(ordered):
        raise ProviderRejected(
            f"The CSR names ({', '.join(asked)}) differ from the order's "
            f"({', '.join(sorted(ordered))}).",
            field="csr",
        )


def check_org(request: OrderRequest, offer: Offer) -> None:
    if offer.validation == "dv":
        return
    if not request.organization.strip():
        raise ProviderRejected(f"{offer.name} needs the organization name.", field="organization")
    try:
        names.normalize_country(request.country)
    except names.InvalidInput as error:
        raise ProviderRejected(f"{offer.name}: {error}", field="country") from error
