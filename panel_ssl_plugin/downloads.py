"""The files a customer downloads: certificate, chain, key, PKCS#12, and per-server bundles.

Each server wants its certificate in a different shape (Apache a crt and a ca-bundle, Nginx one
full chain, IIS a pfx), and a customer rarely knows which; the bundle for the order's server type
carries exactly the files that server needs and a note saying where each one goes.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from panel_ssl_plugin import keys

FORMATS = ("pem", "chain", "fullchain", "key", "pfx", "bundle")
NEEDS_PASSWORD = frozenset({"pfx"})
MIN_PASSWORD = 8
PEM = "application/x-pem-file"


class DownloadRefused(ValueError):
    """The file cannot be made (no certificate yet, no key, weak password); says why."""


@dataclass(frozen=True)
class Material:
    """What a download is made from: PEM text, the key in clear (None for a pasted CSR)."""

    domain: str
    server_type: str
    certificate: str
    chain: str
    private_key: str | None


@dataclass(frozen=True)
class Download:
    filename: str
    mimetype: str
    content: bytes


def _stem(material: Material) -> str:
    return material.domain.replace("*", "wildcard")


def _fullchain(material: Material) -> str:
    return material.certificate.strip() + "\n" + material.chain.strip() + "\n"


def _key(material: Material) -> str:
    if not material.private_key:
        raise DownloadRefused("This order was placed with your own CSR: only you hold its key.")
    return material.private_key


def pkcs12_bytes(material: Material, password: str) -> bytes:
    """A PKCS#12 (pfx/p12) of key, certificate and chain, protected by ``password``."""
    if len(password) < MIN_PASSWORD:
        raise DownloadRefused(f"Choose a password of at least {MIN_PASSWORD} characters.")
    leaf = keys.load_certificates(material.certificate)[0]
    chain = keys.load_certificates(material.chain) if material.chain.strip() else None
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        material.domain.encode(), keys.key_from_pem(_key(material)), leaf, chain, encryption
    )


# --- per-server bundles ---------------------------------------------------------------------------

APACHE_NOTE = """Apache / mod_ssl
  SSLCertificateFile      /etc/ssl/certs/{stem}.crt
  SSLCertificateChainFile /etc/ssl/certs/{stem}.ca-bundle   (Apache 2.4.8+: append it to the crt)
  SSLCertificateKeyFile   /etc/ssl/private/{stem}.key       (mode 600)
Then: apachectl configtest && systemctl reload apache2
"""
NGINX_NOTE = """Nginx
  ssl_certificate     /etc/ssl/certs/{stem}.fullchain.pem;
  ssl_certificate_key /etc/ssl/private/{stem}.key;          (mode 600)
Then: nginx -t && systemctl reload nginx
"""
IIS_NOTE = """Microsoft IIS
  IIS Manager > Server Certificates > Import... > {stem}.pfx, with the password you chose.
  Then bind it: Sites > your site > Bindings > https > SSL certificate.
"""
TOMCAT_NOTE = """Tomcat
  In server.xml, on the HTTPS connector:
    <SSLHostConfig><Certificate certificateKeystoreFile="conf/{stem}.p12"
        certificateKeystoreType="PKCS12" certificateKeystorePassword="(your password)"/>
  Then restart Tomcat.
"""
PANEL_NOTE = """{server}
  Paste {stem}.crt into "Certificate", {stem}.key into "Private key" and {stem}.ca-bundle into
  "CA bundle" (or "Certificate Authority Bundle") on the SSL/TLS page of your control panel.
"""


def _pem_files(material: Material) -> dict[str, bytes]:
    stem = _stem(material)
    return {
        f"{stem}.crt": material.certificate.encode(),
        f"{stem}.ca-bundle": material.chain.encode(),
        f"{stem}.key": _key(material).encode(),
    }


def _nginx_files(material: Material) -> dict[str, bytes]:
    stem = _stem(material)
    return {
        f"{stem}.fullchain.pem": _fullchain(material).encode(),
        f"{stem}.key": _key(material).encode(),
    }


def _pkcs12_file(suffix: str) -> Callable[[Material, str], dict[str, bytes]]:
    def files(material: Material, password: str) -> dict[str, bytes]:
        return {f"{_stem(material)}.{suffix}": pkcs12_bytes(material, password)}

    return files


# server type → (files, install note, needs a password)
BUNDLES: dict[str, tuple[Callable, str, bool]] = {
    "apache": (_pem_files, APACHE_NOTE, False),
    "apache_modssl": (_pem_files, APACHE_NOTE, False),
    "nginx": (_nginx_files, NGINX_NOTE, False),
    "iis": (_pkcs12_file("pfx"), IIS_NOTE, True),
    "tomcat": (_pkcs12_file("p12"), TOMCAT_NOTE, True),
    "cpanel": (_pem_files, PANEL_NOTE, False),
    "plesk": (_pem_files, PANEL_NOTE, False),
    "other": (_pem_files, PANEL_NOTE, False),
}


def bundle_needs_password(server_type: str) -> bool:
    return BUNDLES.get(server_type, BUNDLES["other"])[2]


def install_note(material: Material, server_name: str) -> str:
    """How to install the bundle on the order's server, in a few lines."""
    _files, note, _password = BUNDLES.get(material.server_type, BUNDLES["other"])
    return note.format(stem=_stem(material), server=server_name)


def _bundle(material: Material, password: str, server_name: str) -> bytes:
    make, _note, needs_password = BUNDLES.get(material.server_type, BUNDLES["other"])
    files = make(material, password) if needs_password else make(material)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("INSTALL.txt", install_note(material, server_name))
    return buffer.getvalue()


def make_download(
    material: Material, fmt: str, *, password: str = "", server_name: str = ""
) -> Download:
    """The file for one download format; DownloadRefused when it cannot be made."""
    stem = _stem(material)
    if fmt == "pem":
        return Download(f"{stem}.crt", PEM, material.certificate.encode())
    if fmt == "chain":
        return Download(f"{stem}.ca-bundle", PEM, material.chain.encode())
    if fmt == "fullchain":
        return Download(f"{stem}.fullchain.pem", PEM, _fullchain(material).encode())
    if fmt == "key":
        return Download(f"{stem}.key", PEM, _key(material).encode())
    if fmt == "pfx":
        return Download(f"{stem}.pfx", "application/x-pkcs12", pkcs12_bytes(material, password))
    if fmt == "bundle":
        content = _bundle(material, password, server_name)
        return Download(f"{stem}-{material.server_type}.zip", "application/zip", content)
    raise DownloadRefused(f"Unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")
