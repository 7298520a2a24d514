"""Local mode's TLS: certificates kept and renewed, and bucket policies judged with the transport.

The whole path (a bucket with the TLS-only rule, object calls over HTTPS and plain HTTP on one
port) is in test_local_e2e.py; here, the parts on their own.
"""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from moto.iam.access_control import PermissionResult

from bucketwarden_tools.local import tls
from bucketwarden_tools.local.transport import conditions_hold, permission, request_values

BUCKET = "arn:aws:s3:::b"
TLS_ONLY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [BUCKET, f"{BUCKET}/*"],
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ],
}
HTTP = request_values({"wsgi.url_scheme": "http"})
TLS_1_3 = request_values({"wsgi.url_scheme": "https", "bucketwarden.tls_version": "1.3"})
TLS_1_1 = request_values({"wsgi.url_scheme": "https", "bucketwarden.tls_version": "1.1"})


@pytest.mark.parametrize(
    ("values", "expected"),
    [(HTTP, PermissionResult.DENIED), (TLS_1_3, PermissionResult.NEUTRAL)],
    ids=["plain-http", "tls-1.3"],
)
def test_the_tls_only_rule_refuses_plain_http_and_lets_tls_through(
    values: dict[str, str], expected: PermissionResult
) -> None:
    assert permission(TLS_ONLY, "s3:PutObject", f"{BUCKET}/key", values) is expected


def test_a_tls_version_below_the_minimum_is_refused() -> None:
    assert permission(TLS_ONLY, "s3:GetObject", f"{BUCKET}/key", TLS_1_1) is PermissionResult.DENIED


def test_an_allow_applies_only_where_its_action_and_resource_match() -> None:
    document = {
        "Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                      "Resource": f"{BUCKET}/public/*"}
    }  # fmt: skip

    assert permission(document, "s3:GetObject", f"{BUCKET}/public/a", HTTP) is (
        PermissionResult.PERMITTED
    )
    assert permission(document, "s3:GetObject", f"{BUCKET}/private/a", HTTP) is (
        PermissionResult.NEUTRAL
    )
    assert permission(document, "s3:PutObject", f"{BUCKET}/public/a", HTTP) is (
        PermissionResult.NEUTRAL
    )


def test_a_condition_on_a_key_the_local_endpoint_cannot_tell_is_not_met() -> None:
    vpc_only = {"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}

    assert not conditions_hold(vpc_only, TLS_1_3)
    assert not conditions_hold({"DateGreaterThan": {"aws:SecureTransport": "x"}}, TLS_1_3)
    assert conditions_hold({}, HTTP)


def test_certificates_are_made_once_and_kept(tmp_path: Path) -> None:
    made = tls.certificates(tmp_path)
    first = made.certificate.read_bytes()

    again = tls.certificates(tmp_path)

    assert again == made
    assert again.certificate.read_bytes() == first
    assert oct(made.key.stat().st_mode & 0o777) == "0o600"


def test_the_certificate_names_the_local_addresses_and_chains_to_the_bundle(
    tmp_path: Path,
) -> None:
    made = tls.certificates(tmp_path)
    certificate = x509.load_pem_x509_certificate(made.certificate.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    client = ssl.create_default_context(cafile=str(made.ca_bundle))
    server = tls.server_context(made)
    assert client.verify_mode == ssl.CERT_REQUIRED
    assert server.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_damaged_certificate_is_made_again(tmp_path: Path) -> None:
    made = tls.certificates(tmp_path)
    made.certificate.write_text("not a certificate")

    remade = tls.certificates(tmp_path)

    certificate = x509.load_pem_x509_certificate(remade.certificate.read_bytes())
    left = certificate.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert left > tls.RENEW_BEFORE


def test_the_cache_folder_follows_xdg() -> None:
    assert tls.cache_folder({"XDG_CACHE_HOME": "/c"}) == Path("/c/bucketwarden/local-tls")
    assert tls.cache_folder({}) == Path.home() / ".cache" / "bucketwarden" / "local-tls"
