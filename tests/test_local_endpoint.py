"""The local endpoint's parts that keep every call's event, and name the calling function."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from bucketwarden_tools.local.cloudtrail import (
    SERVICE_ACCESS_KEY,
    SERVICE_ROLE_ARN,
    UNNAMED_SESSION,
    identity_of,
)
from bucketwarden_tools.local.endpoint import HeldUntilDelivery

ROLE_SESSION = "arn:aws:sts::123456789012:assumed-role/bucketwarden-local-function/"


def record(number: int) -> dict[str, Any]:
    return {"eventID": str(number)}


def test_records_are_held_until_delivery_then_published_in_order() -> None:
    published: list[str] = []
    gate = HeldUntilDelivery(lambda found, _received_at: published.append(found["eventID"]))

    gate(record(1), 1.0)
    gate(record(2), 2.0)
    assert published == []

    gate.deliver()
    gate(record(3), 3.0)
    assert published == ["1", "2", "3"]


def test_a_call_during_delivery_waits_for_the_held_ones() -> None:
    published: list[str] = []
    releasing = threading.Event()
    carry_on = threading.Event()

    def publish(found: dict[str, Any], _received_at: float) -> None:
        if found["eventID"] == "1":
            releasing.set()
            carry_on.wait(timeout=5)
        published.append(found["eventID"])

    gate = HeldUntilDelivery(publish)
    gate(record(1), 1.0)
    delivering = threading.Thread(target=gate.deliver)
    delivering.start()
    releasing.wait(timeout=5)
    late = threading.Thread(target=gate, args=(record(2), 2.0))
    late.start()
    carry_on.set()
    delivering.join(timeout=5)
    late.join(timeout=5)

    assert published == ["1", "2"]


def test_the_service_key_is_a_session_named_after_the_calling_function() -> None:
    identity = identity_of(SERVICE_ACCESS_KEY, "bucketwarden-local-public_access")
    assert identity.arn == ROLE_SESSION + "bucketwarden-local-public_access"
    assert identity.issuer_arn == SERVICE_ROLE_ARN


@pytest.mark.parametrize("function", [None, "", "not/a function", "x" * 65])
def test_a_call_naming_no_function_is_a_session_no_function_has(function: str | None) -> None:
    assert identity_of(SERVICE_ACCESS_KEY, function).arn == ROLE_SESSION + UNNAMED_SESSION


def test_another_key_naming_a_function_is_still_its_user() -> None:
    identity = identity_of("mallory", "bucketwarden-local-public_access")
    assert identity.arn == "arn:aws:iam::123456789012:user/mallory"
    assert identity.issuer_arn is None
