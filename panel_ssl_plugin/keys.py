"""Private keys, CSRs, certificates and chains, all through ``cryptography``.

The plugin makes the private key and CSR itself so a client never has to run openssl, and it
checks what comes back (the certificate matches the key, the chain builds) before trusting it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

KEY_TYPES: dict[str, str] = {
    "ec256": "ECDSA P-256 (recommended)",
    "ec384": "ECDSA P-384",
    "rsa2048": "RSA 2048",
    "rsa3072": "RSA 3072",
    "rsa4096": "RSA 4096",
}
DEFAULT_KEY_TYPE = "ec256"
MAX_COMMON_NAME = 64


class InvalidMaterial(ValueError):
    """A key, CSR or certificate is unusable; the message says why in words a user can act on."""


def generate_key(key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
    """A new private key of one of :data:`KEY_TYPES`."""
    if key_type == "ec256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ec384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type.startswith("rsa") and key_type in KEY_TYPES:
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise InvalidMaterial(f"Unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}.")


def key_to_pem(key: PrivateKey) -> str:
    """PKCS#8 PEM, unencrypted: the caller encrypts it at rest (see encryption.py)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_from_pem(pem: str) -> PrivateKey:
    """Load a PEM private key (no password)."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as error:
        raise InvalidMaterial("This is not a readable private key.") from error
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise InvalidMaterial("Only RSA and ECDSA keys are supported.")
    return key


@dataclass(frozen=True)
class Subject:
    """The distinguished name of a CSR; empty parts are left out."""

    common_name: str
    organization: str = ""
    unit: str = ""
    state: str = ""
    country: str = ""
    locality: str = ""
    email: str = ""

    def to_name(self) -> x509.Name:
        parts = [
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.STATE_OR_PROVINCE_NAME, self.state),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.unit),
            (NameOID.COMMON_NAME, self.common_name),
            (NameOID.EMAIL_ADDRESS, self.email),
        ]
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in parts if value])


def make_csr(key: PrivateKey, subject: Subject, sans: list[str] | tuple[str, ...] = ()) -> str:
    """A PEM CSR for ``subject`` whose SAN extension holds the common name and ``sans``.

    Names must already be A-labels; the common name comes first, duplicates are dropped. The
    subject's CN is the first of these names that fits its 64 characters (RFC 5280
    ub-common-name), or none: a domain name may have 253. The Baseline Requirements make the CN
    optional in DV certificates and browsers read only the SAN: Let's Encrypt has issued CN-less
    certificates for such names since 2023, and Sectigo and DigiCert ask for a shorter name of
    the order in the CN with the long one in the SAN, which is what this does when the order has
    one. A subject left empty makes the SAN extension critical, as RFC 5280 (4.2.1.6) requires.
    """
    names = list(dict.fromkeys([subject.common_name, *sans]))
    fitting = next((name for name in names if len(name) <= MAX_COMMON_NAME), "")
    subject_name = replace(subject, common_name=fitting).to_name()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(subject_name)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
            critical=not subject_name,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def load_csr(pem: str) -> x509.CertificateSigningRequest:
    """Parse a PEM CSR; InvalidMaterial when it is not one."""
    try:
        return x509.load_pem_x509_csr(pem.strip().encode())
    except ValueError as error:
        raise InvalidMaterial(
            "This is not a readable certificate signing request (CSR)."
        ) from error


def csr_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """Every DNS name a CSR asks for: its SANs, or its common name when it has none."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = san.value.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return [str(n) for n in names]


def load_certificates(pem: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle, in the order given."""
    try:
        return x509.load_pem_x509_certificates(pem.strip().encode())
    except ValueError as error:
        raise InvalidMaterial("This is not a readable PEM certificate.") from error


def ari_cert_id(certificate_pem: str) -> str:
    """The ACME Renewal Information certID of a certificate (RFC 9773 section 4.1): its
    Authority Key Identifier's keyIdentifier and the content bytes of its serial number's DER
    INTEGER, each base64url without padding, joined by ".". ACME names the certificate a new
    order replaces by it, and the CA serves the renewal window under it.

    The serial's DER content is its minimal two's complement: a serial whose top bit is set
    gets a leading zero byte (0x87654321 is ``00 87 65 43 21``, "AIdlQyE").
    """
    (leaf, *_chain) = load_certificates(certificate_pem)
    try:
        aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        aki = None
    if aki is None or not aki.key_identifier:
        raise InvalidMaterial(
            "The certificate names no Authority Key Identifier to build its ARI id."
        )
    serial = leaf.serial_number
    serial_der = serial.to_bytes(serial.bit_length() // 8 + 1, "big")
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial_der)}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def certificate_names(cert: x509.Certificate) -> list[str]:
    """The DNS names a certificate is for (its subjectAltName), lower case."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in san.value.get_values_for_type(x509.DNSName)]


def cert_to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def public_key_der(obj) -> bytes:
    """The DER of the public key of a key, CSR or certificate, for comparing them."""
    public = obj.public_key() if hasattr(obj, "public_key") else obj
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# --- a small CA: the sandbox provider and the test simulators issue real certificates -----------


def create_ca(
    common_name: str,
    *,
    issuer_key: CertificateIssuerPrivateKeyTypes | None = None,
    issuer_cert: x509.Certificate | None = None,
    days: int = 3650,
) -> tuple[PrivateKey, x509.Certificate]:
    """A CA key and certificate: self-signed root, or an intermediate under ``issuer_*``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    signer_key = issuer_key or key
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), False
        )
    return key, builder.sign(signer_key, hashes.SHA256())


def sign_csr(
    csr: x509.CertificateSigningRequest,
    ca_key: CertificateIssuerPrivateKeyTypes,
    ca_cert: x509.Certificate,
    *,
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """Issue a TLS server certificate for the names and key of ``csr``, from ``not_before``
    (a minute ago) until ``not_after`` (``days`` later)."""
    start = not_before or datetime.now(UTC) - timedelta(minutes=1)
    end = not_after or start + timedelta(days=days)
    names = csr_names(csr)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca_cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )


MIN_RSA_BITS = 2048
ALLOWED_CURVES = ("secp256r1", "secp384r1")


def check_csr(pem: str, expected_names: list[str]) -> x509.CertificateSigningRequest:
    """Accept a pasted CSR only if it is sound and asks for exactly the order's names.

    Catches what people paste by mistake (a private key, a certificate), broken signatures,
    weak keys, and a CSR made for another domain.
    """
    if "PRIVATE KEY" in pem:
        raise InvalidMaterial(
            "That is a private key, not a CSR. Keep the key secret and paste the block that "
            "starts with -----BEGIN CERTIFICATE REQUEST-----."
        )
    if "BEGIN CERTIFICATE-----" in pem:
        raise InvalidMaterial("That is a certificate, not a CSR (a certificate signing request).")
    csr = load_csr(pem)
    if not csr.is_signature_valid:
        raise InvalidMaterial("The CSR's signature does not verify; make a new CSR.")
    key = csr.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise InvalidMaterial(f"The CSR's RSA key has {key.key_size} bits; at least 2048 needed.")
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name not in ALLOWED_CURVES:
        raise InvalidMaterial("The CSR's key must be RSA or ECDSA on P-256 or P-384.")
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise InvalidMaterial("The CSR's key must be RSA or ECDSA.")
    names = sorted(n.lower() for n in csr_names(csr))
    if names != sorted(expected_names):
        raise InvalidMaterial(
            f"The CSR is for {', '.join(names) or 'no name'}, but the order is for "
            f"{', '.join(sorted(expected_names))}."
        )
    return csr


def verify_issued(
    *,
    certificate: str,
    chain: str,
    expected_names: list[str],
    public_key_of,
    trusted_roots: list[str],
) -> x509.Certificate:
    """Refuse a certificate that does not belong to the order (InvalidMaterial says why).

    It must carry the order's key (``public_key_of`` is the private key or the CSR), cover
    exactly the order's names, and its chain must link signature by signature up to one of
    ``trusted_roots`` (the provider's roots; when it names none, the links are still checked).
    """
    (leaf, *_extra) = load_certificates(certificate)
    if public_key_der(leaf) != public_key_der(public_key_of):
        raise InvalidMaterial("it does not match the order's private key")
    names = sorted(certificate_names(leaf))
    if names != sorted(expected_names):
        raise InvalidMaterial(f"it names {', '.join(names) or 'nothing'}, not the order's names")
    intermediates = load_certificates(chain) if chain.strip() else []
    roots = [c for pem in trusted_roots for c in load_certificates(pem)]
    _check_links(leaf, intermediates, roots)
    return leaf


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _check_links(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate]
) -> None:
    current, pool = leaf, list(intermediates)
    while True:
        if any(_signed_by(current, root) for root in roots):
            return
        issuer = next((c for c in pool if _signed_by(current, c)), None)
        if issuer is None:
            break
        pool.remove(issuer)
        current = issuer
    if roots:
        raise InvalidMaterial("its chain does not lead to the provider's root certificate")
    if intermediates and current is leaf:
        raise InvalidMaterial("the chain sent with it did not sign it")
