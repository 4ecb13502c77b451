"""Domain names, e-mail addresses, phone numbers and countries: checked and normalized once.

Every entry point (the order form, a pasted CSR, the CLI) goes through these functions, so a
domain is judged by the same rules wherever it comes from. Messages are written for the person
who typed the value.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import idna
import pycountry

MAX_DOMAIN_LENGTH = 253
# Control characters (Cc: C0, DEL, C1) and lone surrogates (Cs) have no place in a name, an
# address or a CSR: PostgreSQL refuses NUL outright, no database can store a lone surrogate, and
# the others would travel on into CSRs, provider calls and pages. Text of several lines keeps
# its line breaks and tabs.
_UNSTORABLE = frozenset({"Cc", "Cs"})
_LINE_BREAKS = frozenset("\t\n\r")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([^@\s]{1,253})$")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{5,30}$")


class InvalidInput(ValueError):
    """A value a user typed is not acceptable; ``str(error)`` says why and what to do."""


def plain_text(value: str, *, multiline: bool = False) -> str:
    """``value`` itself, or InvalidInput when it holds a control character (see _UNSTORABLE).

    Every text a user types goes through here before it is stored or sent anywhere, so what one
    database would refuse is refused on all of them, with a message instead of a 500.
    """
    allowed = _LINE_BREAKS if multiline else frozenset()
    for char in value:
        if unicodedata.category(char) in _UNSTORABLE and char not in allowed:
            raise InvalidInput(
                f"Remove the invisible control character U+{ord(char):04X}: it cannot be "
                "stored or sent on."
            )
    return value


def normalize_domain(value: str, *, allow_wildcard: bool = False) -> str:
    """The A-label (punycode) form of a domain name, or InvalidInput explaining what is wrong.

    IDNA 2008 with UTS 46 mapping, so ``Bücher.Example`` becomes ``xn--bcher-kva.example``.
    """
    name = value.strip().rstrip(".")
    if not name:
        raise InvalidInput("Enter a domain name, like www.example.com.")
    _refuse_ip_address(name)
    wildcard = name.startswith("*.")
    if wildcard and not allow_wildcard:
        raise InvalidInput("This product does not cover wildcard names (*.example.com).")
    base = name[2:] if wildcard else name
    if "*" in base:
        raise InvalidInput("A wildcard may only be the whole first label, as in *.example.com.")
    if "_" in base:
        raise InvalidInput("Domain names in certificates cannot contain an underscore (_).")
    try:
        alabel = idna.encode(base, uts46=True).decode("ascii").lower()
    except idna.IDNAError as error:
        raise InvalidInput(f"{value.strip()!r} is not a valid domain name ({error}).") from error
    labels = alabel.split(".")
    if len(labels) < 2:
        raise InvalidInput("Enter a full domain name with its extension, like example.com.")
    if labels[-1].isdigit():
        raise InvalidInput("The last part of a domain name cannot be a number.")
    full = f"*.{alabel}" if wildcard else alabel
    if len(full) > MAX_DOMAIN_LENGTH:
        raise InvalidInput(f"A domain name has at most {MAX_DOMAIN_LENGTH} characters.")
    return full


def _refuse_ip_address(name: str) -> None:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return
    raise InvalidInput("Certificates here are for domain names, not IP addresses.")


def display_domain(alabel: str) -> str:
    """The U-label (Unicode) form of an A-label, for showing to people."""
    prefix, base = ("*.", alabel[2:]) if alabel.startswith("*.") else ("", alabel)
    try:
        return prefix + idna.decode(base)
    except idna.IDNAError:
        return alabel


def display_email(address: str) -> str:
    """An address with its domain as people write it (U-label)."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{display_domain(domain)}" if local else address


def normalize_email(value: str) -> str:
    """An e-mail address with its domain in A-label form, lower-cased domain."""
    match = _EMAIL.match(value.strip())
    if not match:
        raise InvalidInput(f"{value.strip()!r} is not a valid e-mail address.")
    local, domain = value.strip().rsplit("@", 1)
    try:
        domain = normalize_domain(domain)
    except InvalidInput as error:
        raise InvalidInput(f"{value.strip()!r} is not a valid e-mail address.") from error
    return f"{local}@{domain}"


def normalize_phone(value: str) -> str:
    """A phone number as typed, checked for plausible characters and length."""
    phone = value.strip()
    if phone and not _PHONE.match(phone):
        raise InvalidInput("Enter a phone number with digits, like +49 89 123456.")
    return phone


def normalize_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-case; accepts the code in any case."""
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidInput(f"{value.strip()!r} is not an ISO 3166-1 country code (like DE or US).")
    return code


def country_choices() -> list[tuple[str, str]]:
    """(code, name) of every country, sorted by name, for a dropdown."""
    return sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])
