"""Bucket policies judged with the request's transport, as S3 judges them on object calls.

moto checks a bucket's policy on object calls, but with no request context: any statement with
a condition counts as a Deny, so a bucket with the TLS-only rule refuses every object call, over
HTTPS too. Locally, a statement applies when its action and resource match and each of its
conditions holds for the request: `aws:SecureTransport` (HTTPS or not) and `s3:TlsVersion` are
known; a condition on any other key is not met. Principals are not judged (moto does not
either): the local endpoint has no callers' identities to judge them with.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any

from bucketwarden_tools.local.tls import transport_of

# WSGI environ key of the request's TLS version (S3's spelling: "1.2"), set by the handler.
TLS_VERSION = "bucketwarden.tls_version"

_request = threading.local()

_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "NumericEquals": lambda found, wanted: found == wanted,
    "NumericNotEquals": lambda found, wanted: found != wanted,
    "NumericLessThan": lambda found, wanted: found < wanted,
    "NumericLessThanEquals": lambda found, wanted: found <= wanted,
    "NumericGreaterThan": lambda found, wanted: found > wanted,
    "NumericGreaterThanEquals": lambda found, wanted: found >= wanted,
}


def handler_with_transport(base: type) -> type:
    """`base` (werkzeug's request handler), telling the app whether the request came over TLS."""

    class TransportHandler(base):
        def make_environ(self) -> dict[str, Any]:
            environ: dict[str, Any] = super().make_environ()
            secure, version = transport_of(self.connection)
            if secure:
                environ["wsgi.url_scheme"] = "https"
                environ[TLS_VERSION] = version
            return environ

    return TransportHandler


class TransportContext:
    """WSGI middleware: keeps the request's transport where the bucket policy check finds it
    (the request's own thread)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        _request.values = request_values(environ)
        return self.app(environ, start_response)


def request_values(environ: dict[str, Any]) -> dict[str, str]:
    """The condition keys a bucket policy may ask of this request."""
    secure = environ.get("wsgi.url_scheme") == "https"
    values = {"aws:SecureTransport": "true" if secure else "false"}
    if secure and environ.get(TLS_VERSION):
        values["s3:TlsVersion"] = str(environ[TLS_VERSION])
    return values


def judge_bucket_policies_with_the_transport() -> None:
    """Replace moto's check of a bucket's policy on object calls (FakeBucket.get_permission)."""
    from moto.s3.models import FakeBucket

    def get_permission(bucket: Any, action: str, resource: str) -> Any:
        if bucket.policy is None:
            from moto.iam.access_control import PermissionResult

            return PermissionResult.NEUTRAL
        values = getattr(_request, "values", None) or request_values({})
        return permission(json.loads(bucket.policy), action, resource, values)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign, assignment]


def permission(document: dict[str, Any], action: str, resource: str, values: dict[str, str]) -> Any:
    """DENIED when a Deny statement applies, PERMITTED when only Allow statements do, else
    NEUTRAL (moto's PermissionResult)."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    result = PermissionResult.NEUTRAL
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        matcher = IAMPolicyStatement(statement)
        if not _concerns(matcher, statement, action, resource):
            continue
        if not conditions_hold(statement.get("Condition") or {}, values):
            continue
        if statement.get("Effect") == "Deny":
            return PermissionResult.DENIED
        result = PermissionResult.PERMITTED
    return result


def _concerns(matcher: Any, statement: dict[str, Any], action: str, resource: str) -> bool:
    if "NotAction" in statement:
        acts = not matcher._check_element_matches("NotAction", action)
    else:
        acts = matcher._check_element_matches("Action", action)
    if "NotResource" in statement:
        return acts and not matcher._check_element_matches("NotResource", resource)
    return acts and matcher._check_element_matches("Resource", resource)


def conditions_hold(conditions: dict[str, Any], values: dict[str, str]) -> bool:
    """Does every condition hold for the request's `values`? Unknown keys or operators: no."""
    return all(
        _holds(operator, key, expected, values)
        for operator, pairs in conditions.items()
        for key, expected in pairs.items()
    )


def _holds(operator: str, key: str, expected: Any, values: dict[str, str]) -> bool:
    found = values.get(key)
    if found is None:
        return False
    wanted = [str(value) for value in (expected if isinstance(expected, list) else [expected])]
    if operator == "Bool":
        return found.lower() in {value.lower() for value in wanted}
    if operator in ("StringEquals", "StringNotEquals"):
        return (found in wanted) == (operator == "StringEquals")
    if operator in _NUMERIC:
        try:
            return any(_NUMERIC[operator](float(found), float(value)) for value in wanted)
        except ValueError:
            return False
    return False
