"""keys.ari_cert_id: the ACME Renewal Information certID (RFC 9773 section 4.1)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from panel_ssl_plugin import keys

# The example certificate of RFC 9773 (its section 4.1 and Appendix A): Authority Key
# Identifier 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 0x87654321.
RFC_9773_EXAMPLE = """-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
"""


def test_the_rfc_9773_example_certificate_has_the_rfcs_cert_id():
    assert keys.ari_cert_id(RFC_9773_EXAMPLE) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def leaf_with_serial(serial: int, *, with_aki: bool = True) -> str:
    ca_key, ca = keys.create_ca("Serial Test CA")
    key = keys.generate_key()
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "serial.test")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
    )
    if with_aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), False
        )
    return keys.cert_to_pem(builder.sign(ca_key, hashes.SHA256()))


@pytest.mark.parametrize(
    ("serial", "encoded"),
    [
        (0x7F, "fw"),  # top bit clear: one byte
        (0x80, "AIA"),  # top bit set: a leading zero byte keeps the INTEGER positive
        (0x0102, "AQI"),
        (0x87654321, "AIdlQyE"),
    ],
)
def test_the_serial_part_is_the_der_integers_content(serial, encoded):
    assert keys.ari_cert_id(leaf_with_serial(serial)).split(".")[1] == encoded


def test_the_first_part_is_the_issuers_key_identifier():
    pem = leaf_with_serial(1234)
    aki = keys.load_certificates(pem)[0].extensions.get_extension_for_class(
        x509.AuthorityKeyIdentifier
    )
    first = keys.ari_cert_id(pem).split(".")[0]
    assert "=" not in first
    assert base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)) == aki.value.key_identifier


def test_a_certificate_without_authority_key_identifier_has_no_cert_id():
    with pytest.raises(keys.InvalidMaterial, match="Authority Key Identifier"):
        keys.ari_cert_id(leaf_with_serial(99, with_aki=False))
