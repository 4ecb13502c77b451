"""The CAA issuer domain names (RFC 8659) of the CAs behind the built-in providers.

A domain's CAA records name the CAs that may issue for it, each by the issuer domain name the CA
publishes in its policy. Several providers resell the same CA (GoGetSSL and Sectigo's own API,
and ZeroSSL's ACME, all end at Sectigo), so each CA's names are written down once, here, and
every adapter's ``caa_identifiers`` table (see ``Provider.caa_issuers``) points at them.
"""

from __future__ import annotations

# Sectigo (formerly Comodo CA) accepts every name it has been known by.
SECTIGO = ("sectigo.com", "comodoca.com", "comodo.com", "usertrust.com", "trust-provider.com")
# DigiCert and the brands it bought from Symantec.
DIGICERT = ("digicert.com", "symantec.com", "geotrust.com", "thawte.com", "rapidssl.com")
CERTUM = ("certum.pl", "certum.eu")
LETS_ENCRYPT = ("letsencrypt.org",)
BUYPASS = ("buypass.com", "buypass.no")
GOOGLE = ("pki.goog",)
# The sandbox's local CA is nobody's: a name under .test (RFC 2606) that no real CAA record
# names by accident, so a record naming a real CA keeps it out, as it would keep out any other.
SANDBOX = ("sandbox.panel-ssl.test",)
