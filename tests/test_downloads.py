"""Every download format opens with cryptography; bundles fit the order's server."""

from __future__ import annotations

import io
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from panel_ssl_plugin import keys
from panel_ssl_plugin.downloads import DownloadRefused
from panel_ssl_plugin.runtime import runtime_for

from .ordering import issued

PASSWORD = "correct horse battery"


@pytest.fixture
def runtime(app):
    return runtime_for(app.extensions["hosting_panel"])


def test_pem_chain_fullchain_and_key(app, runtime):
    order = issued(app, runtime)
    get = lambda fmt: runtime.orders.download(order.id, fmt, "alice")  # noqa: E731
    leaf = x509.load_pem_x509_certificate(get("pem").content)
    (intermediate,) = x509.load_pem_x509_certificates(get("chain").content)
    full = x509.load_pem_x509_certificates(get("fullchain").content)
    assert full == [leaf, intermediate]
    leaf.verify_directly_issued_by(intermediate)
    key = keys.key_from_pem(get("key").content.decode())
    assert keys.public_key_der(key) == keys.public_key_der(leaf)
    assert get("pem").filename == "shop.example.com.crt"


def test_pkcs12_opens_with_the_typed_password(app, runtime):
    order = issued(app, runtime)
    pfx = runtime.orders.download(order.id, "pfx", "alice", password=PASSWORD).content
    key, cert, chain = pkcs12.load_key_and_certificates(pfx, PASSWORD.encode())
    assert keys.public_key_der(key) == keys.public_key_der(cert)
    assert len(chain) == 1
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(pfx, b"wrong password")
    with pytest.raises(DownloadRefused, match="at least 8"):
        runtime.orders.download(order.id, "pfx", "alice", password="short")


@pytest.mark.parametrize(
    ("server_type", "files"),
    [
        (
            "apache_modssl",
            {"shop.example.com.crt", "shop.example.com.ca-bundle", "shop.example.com.key"},
        ),
        ("nginx", {"shop.example.com.fullchain.pem", "shop.example.com.key"}),
        ("iis", {"shop.example.com.pfx"}),
        ("tomcat", {"shop.example.com.p12"}),
    ],
)
def test_bundle_per_server_type(app, runtime, server_type, files):
    order = issued(app, runtime, server_type=server_type)
    download = runtime.orders.download(order.id, "bundle", "alice", password=PASSWORD)
    archive = zipfile.ZipFile(io.BytesIO(download.content))
    assert set(archive.namelist()) == files | {"INSTALL.txt"}
    note = archive.read("INSTALL.txt").decode()
    assert any(name in note for name in files)
    for name in files:
        if name.endswith((".pfx", ".p12")):
            pkcs12.load_key_and_certificates(archive.read(name), PASSWORD.encode())
        elif name.endswith(".key"):
            keys.key_from_pem(archive.read(name).decode())
        else:
            x509.load_pem_x509_certificates(archive.read(name))


def test_key_downloads_and_reveals_are_audited(app, runtime):
    order = issued(app, runtime)
    runtime.orders.download(order.id, "pem", "alice")
    runtime.orders.download(order.id, "key", "alice")
    runtime.orders.reveal_key(order.id, "bob")
    events = [(e.event, e.actor) for e in runtime.orders.store.events(order.id)]
    assert ("key_downloaded", "alice") in events and ("key_revealed", "bob") in events
    assert not any(e == "key_downloaded" and d == "pem" for e, d in events)


def test_refusals(app, runtime):
    key = keys.generate_key()
    order = issued(app, runtime, csr=keys.make_csr(key, keys.Subject("shop.example.com")))
    with pytest.raises(DownloadRefused, match="own CSR"):
        runtime.orders.download(order.id, "key", "alice")
    assert runtime.orders.download(order.id, "pem", "alice").content
    with pytest.raises(DownloadRefused, match="Unknown format"):
        runtime.orders.download(order.id, "exe", "alice")
