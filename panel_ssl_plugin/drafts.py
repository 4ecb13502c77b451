"""What an order draft is and how it is checked, before anything is stored or sent.

A draft is what the order form collected, as typed; ``checked`` turns it into the order's column
values or names every mistake at once, so a form can show them all. The checks ask the provider's
catalog (its products and approval addresses) through ``Catalog``, which the order service
satisfies with its cached answers; nothing here stores, places or imports the service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from panel_ssl_plugin import keys, names
from panel_ssl_plugin.accounts import UnknownProviderAccount
from panel_ssl_plugin.providers.base import SERVER_TYPES, DcvMethod, Product, ProviderError

FIELD_LIMITS = {"organization": 200, "unit": 200, "state": 200}
CONTACT_LIMITS = {"first_name": 100, "last_name": 100, "email": 254, "phone": 30, "title": 100}
# the organization's address (OrganizationAddress), asked for by OV/EV products; its form fields
# and error keys are "org_<name>"
ADDRESS_LIMITS = {"street": 200, "city": 100, "postal_code": 20, "phone": 30}
NO_PROVIDER_ACCOUNT = "Choose a provider account from the list."
ORG_REQUIRED = "This product validates the organization: required."


class OrderInvalid(ValueError):
    """The draft has mistakes; ``errors`` maps each form field to what is wrong with it."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class OrderDraft:
    """What the order form collected, as typed. ``place`` checks and normalizes all of it."""

    account_id: str
    provider_account_id: int
    product_id: str
    period_months: int
    server_type: str
    domain: str
    dcv_method: str
    idempotency_key: str
    approver_email: str = ""
    sans: tuple[str, ...] = ()
    organization: str = ""
    unit: str = ""
    state: str = ""
    country: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    key_type: str = keys.DEFAULT_KEY_TYPE
    csr: str = ""
    addons: tuple[str, ...] = ()
    address: dict[str, str] = field(default_factory=dict)  # ADDRESS_LIMITS' names
    san_approvers: dict[str, str] = field(default_factory=dict)  # name as typed -> approver


class Catalog(Protocol):
    """What a provider account offers, as the checks need it; both may raise ProviderError."""

    def product(self, provider_account_id: int, product_id: str) -> Product | None: ...

    def dcv_emails(self, provider_account_id: int, domain: str) -> list[str]: ...


def checked(draft: OrderDraft, catalog: Catalog) -> dict[str, Any]:
    """Normalized column values of a draft, or OrderInvalid naming every bad field."""
    errors: dict[str, str] = {}
    product = _checked_product(draft, catalog, errors)
    wildcard = bool(product and product.wildcard)
    domain = _field(errors, "domain", names.normalize_domain, draft.domain, allow_wildcard=wildcard)
    sans = _checked_sans(draft, product, errors)
    san_approvers: dict[str, str] = {}
    if product and domain and not errors.get("dcv_method"):
        _check_approver(draft, domain, catalog, errors)
        if not errors.get("sans"):
            san_approvers = _checked_san_approvers(draft, sans, wildcard, catalog, errors)
    country = (
        _field(errors, "country", names.normalize_country, draft.country) if draft.country else ""
    )
    org_required = bool(product and product.org_required)
    address = _checked_organization(draft, errors) if org_required else {}
    for name, limit in FIELD_LIMITS.items():
        if len(getattr(draft, name)) > limit:
            errors[name] = f"At most {limit} characters."
    contact = _checked_contact(draft.contact, errors)
    if draft.server_type not in SERVER_TYPES:
        errors["server_type"] = "Choose a server type from the list."
    if draft.key_type not in keys.KEY_TYPES and not draft.csr.strip():
        errors["key_type"] = "Choose a key type from the list."
    _check_plain_text(draft, errors, org_required)
    if errors:
        raise OrderInvalid(errors)
    return {
        "account_id": draft.account_id,
        "provider_account_id": draft.provider_account_id,
        "product_id": product.id,
        "product_name": product.name,
        "addons": list(draft.addons),
        "domain": domain,
        "sans": sans,
        "period_months": draft.period_months,
        "server_type": draft.server_type,
        "dcv_method": draft.dcv_method,
        "approver_email": draft.approver_email.strip().lower() or None,
        "organization": draft.organization.strip(),
        "unit": draft.unit.strip(),
        "state": draft.state.strip(),
        "country": country,
        "contact": contact,
        "key_type": "csr" if draft.csr.strip() else draft.key_type,
        "idempotency_key": draft.idempotency_key,
        "organization_address": address,
        "san_approvers": san_approvers,
    }


def _field(errors: dict[str, str], name: str, check, value, **kwargs):
    try:
        return check(value, **kwargs)
    except names.InvalidInput as error:
        errors[name] = str(error)
        return None


def _checked_product(draft: OrderDraft, catalog: Catalog, errors: dict[str, str]) -> Product | None:
    try:
        product = catalog.product(draft.provider_account_id, draft.product_id)
    except UnknownProviderAccount:
        errors["provider_account_id"] = NO_PROVIDER_ACCOUNT
        return None
    except ProviderError as error:
        errors["product_id"] = f"The provider's products could not be loaded: {error}"
        return None
    if product is None:
        errors["product_id"] = "Choose a product from the list."
        return None
    if draft.period_months not in product.periods:
        errors["period_months"] = "Choose a validity period this product offers."
    if draft.dcv_method not in {str(m) for m in product.dcv_methods}:
        errors["dcv_method"] = "Choose a validation method this product offers."
    unknown = set(draft.addons) - {a.id for a in product.addons}
    if unknown:
        errors["addons"] = "Choose add-ons this product offers."
    return product


def _checked_sans(draft: OrderDraft, product: Product | None, errors: dict[str, str]) -> list[str]:
    sans: list[str] = []
    for value in draft.sans:
        if not value.strip():
            continue
        name = _field(
            errors, "sans", names.normalize_domain, value,
            allow_wildcard=bool(product and product.wildcard),
        )  # fmt: skip
        if name and name not in sans:
            sans.append(name)
    if product and len(sans) > product.max_sans:
        errors["sans"] = (
            f"This product covers {product.max_sans} additional names at most."
            if product.max_sans
            else "This product covers one domain name; choose a multi-domain product."
        )
    return sans


def _check_approver(
    draft: OrderDraft, domain: str, catalog: Catalog, errors: dict[str, str]
) -> None:
    """The approver must be one the provider offered for this domain, asked again now."""
    if draft.dcv_method != DcvMethod.EMAIL:
        return
    if not draft.approver_email.strip():
        errors["approver_email"] = "Choose the approval email address."
        return
    try:
        offered = catalog.dcv_emails(draft.provider_account_id, domain)
    except ProviderError as error:
        errors["approver_email"] = f"The provider's approval addresses are unavailable: {error}"
        return
    if draft.approver_email.strip().lower() not in {e.lower() for e in offered}:
        errors["approver_email"] = "Choose one of the approval addresses the provider offers."


def _checked_san_approvers(
    draft: OrderDraft,
    sans: list[str],
    wildcard: bool,
    catalog: Catalog,
    errors: dict[str, str],
) -> dict[str, str]:
    """Each additional name's approver, one the provider offers for that name, asked again
    now: providers validate every name of an e-mail validated order on its own."""
    if draft.dcv_method != DcvMethod.EMAIL or not sans:
        return {}
    chosen = _by_name(draft.san_approvers, wildcard)
    missing, refused = [], []
    for name in sans:
        if not chosen.get(name):
            missing.append(name)
            continue
        try:
            offered = catalog.dcv_emails(draft.provider_account_id, name)
        except ProviderError as error:
            errors["san_approvers"] = (
                f"The provider's approval addresses for {names.display_domain(name)} are "
                f"unavailable: {error}"
            )
            return {}
        if chosen[name] not in {email.lower() for email in offered}:
            refused.append(name)
    complaints = [
        f"{text} {', '.join(names.display_domain(name) for name in found)}."
        for text, found in (
            ("Choose the approval address for", missing),
            ("Choose an approval address the provider offers for", refused),
        )
        if found
    ]
    if complaints:
        errors["san_approvers"] = " ".join(complaints)
    return {name: chosen[name] for name in sans if name in chosen}


def _by_name(approvers: dict[str, str], wildcard: bool) -> dict[str, str]:
    """Approvers keyed by A-label, whatever form the names were typed in; names that are no
    domain names are left out (the additional names' own check says what is wrong)."""
    keyed = {}
    for typed, approver in approvers.items():
        try:
            name = names.normalize_domain(typed, allow_wildcard=wildcard)
        except names.InvalidInput:
            continue
        keyed[name] = approver.strip().lower()
    return keyed


def _checked_organization(draft: OrderDraft, errors: dict[str, str]) -> dict[str, str]:
    """For a product that validates the organization: its name, state, country and address,
    every part required, since the CA checks them against public records before it issues.
    Returns the address."""
    for name in ("organization", "state", "country"):
        if not getattr(draft, name).strip():
            errors.setdefault(name, ORG_REQUIRED)
    fields = {k: (draft.address.get(k) or "").strip() for k in ADDRESS_LIMITS}
    for name, limit in ADDRESS_LIMITS.items():
        if not fields[name]:
            errors[f"org_{name}"] = ORG_REQUIRED
        elif len(fields[name]) > limit:
            errors[f"org_{name}"] = f"At most {limit} characters."
    if fields["phone"]:
        fields["phone"] = _field(errors, "org_phone", names.normalize_phone, fields["phone"]) or ""
    return fields


def _checked_contact(contact: dict[str, str], errors: dict[str, str]) -> dict[str, str]:
    fields = {k: (contact.get(k) or "").strip() for k in CONTACT_LIMITS}
    for name, limit in CONTACT_LIMITS.items():
        if len(fields[name]) > limit:
            errors[f"contact_{name}"] = f"At most {limit} characters."
    for name in ("first_name", "last_name", "email"):
        if not fields[name]:
            errors[f"contact_{name}"] = "Required."
    if fields["email"]:
        fields["email"] = (
            _field(errors, "contact_email", names.normalize_email, fields["email"]) or ""
        )
    fields["phone"] = _field(errors, "contact_phone", names.normalize_phone, fields["phone"]) or ""
    return fields


def _check_plain_text(draft: OrderDraft, errors: dict[str, str], org_required: bool) -> None:
    """Refuse control characters in every text of the draft that is kept (the organization's
    address only for a product that asks for it). Checked last, so that this is the message a
    field shows: a NUL makes any other complaint about the value beside the point."""
    texts = {
        "domain": (draft.domain,),
        "sans": draft.sans,
        "approver_email": (draft.approver_email,),
        "san_approvers": (*draft.san_approvers, *draft.san_approvers.values()),
        **{name: (getattr(draft, name),) for name in ("organization", "unit", "state", "country")},
        **{f"contact_{name}": (draft.contact.get(name) or "",) for name in CONTACT_LIMITS},
        **{
            f"org_{name}": (draft.address.get(name) or "",)
            for name in ADDRESS_LIMITS
            if org_required
        },
    }
    for name, values in texts.items():
        for value in values:
            _field(errors, name, names.plain_text, value)
    _field(errors, "csr", names.plain_text, draft.csr, multiline=True)


def key_and_csr(draft: OrderDraft, values: dict[str, Any]) -> tuple[str | None, str]:
    """The draft's private key (PEM) and CSR: none and the user's own CSR when one was pasted
    (OrderInvalid unless it covers the order's names), else a new key and CSR."""
    order_names = [values["domain"], *values["sans"]]
    if draft.csr.strip():
        try:
            keys.check_csr(draft.csr, order_names)
        except keys.InvalidMaterial as error:
            raise OrderInvalid({"csr": str(error)}) from error
        return None, draft.csr.strip() + "\n"
    return new_key_and_csr(draft.key_type, values)


def new_key_and_csr(key_type: str, values: dict[str, Any]) -> tuple[str, str]:
    """A new private key (PEM) and a CSR for the order's names and subject in ``values``."""
    key = keys.generate_key(key_type)
    subject = keys.Subject(
        common_name=values["domain"],
        organization=values["organization"],
        unit=values["unit"],
        state=values["state"],
        country=values["country"],
    )
    return keys.key_to_pem(key), keys.make_csr(key, subject, values["sans"])
