"""The paths every control shares, run for each control of the catalogue.

Each control's own module tests its drift fixes, compliance, exemptions and edge cases; here,
the same checks prove that notify and off modes, a deleted bucket, AccessDenied, throttling and
errors that outlive the retries behave alike for all of them.
"""

from __future__ import annotations

import pytest

from bucketwarden.catalogue import CONTROL_IDS, control
from tests import (
    test_controls_access_logging,
    test_controls_access_point,
    test_controls_access_point_public_access_block,
    test_controls_account_public_access_block,
    test_controls_cross_account_actions,
    test_controls_default_encryption,
    test_controls_event_notifications,
    test_controls_lifecycle,
    test_controls_mfa_delete,
    test_controls_multi_region_access_point_public_access_block,
    test_controls_object_lock_retention,
    test_controls_object_ownership,
    test_controls_public_access_block,
    test_controls_public_acl,
    test_controls_public_policy,
    test_controls_replication_destination,
    test_controls_secure_transport,
    test_controls_versioning,
)
from tests.helpers import (
    ControlCase,
    check_access_denied,
    check_bucket_gone,
    check_exempted,
    check_exemption_not_honoured,
    check_fixed_once,
    check_notify_mode,
    check_off_mode,
    check_persistent_error_raises,
    check_throttling_retried,
    detect_only_on,
)

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    detect_only_on(monkeypatch)


CASES = {
    case.control: case
    for case in (
        test_controls_account_public_access_block.CASE,
        test_controls_public_access_block.CASE,
        test_controls_public_acl.CASE,
        test_controls_object_ownership.CASE,
        test_controls_public_policy.CASE,
        test_controls_secure_transport.CASE,
        test_controls_cross_account_actions.CASE,
        test_controls_access_point.CASE,
        test_controls_access_point_public_access_block.CASE,
        test_controls_multi_region_access_point_public_access_block.CASE,
        test_controls_default_encryption.CASE,
        test_controls_versioning.CASE,
        test_controls_mfa_delete.CASE,
        test_controls_access_logging.CASE,
        test_controls_object_lock_retention.CASE,
        test_controls_lifecycle.CASE,
        test_controls_event_notifications.CASE,
        test_controls_replication_destination.CASE,
    )
}
each_control = pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
# A subject deleted between the event and the read: buckets and access points can go, an
# account cannot (its CASE has no `remove`), so the account-scope control is not run here.
each_removable_control = pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=control) for control, case in CASES.items() if case.remove is not None],
)


# Controls that a bucket tag can exempt (the account's settings have no tags).
each_taggable_control = pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=control) for control, case in CASES.items() if case.tagged_bucket],
)


# Controls that can fix: the paths of a fix (retried, raised, done once, not exempted) apply.
each_fixable_control = pytest.mark.parametrize(
    "case", [pytest.param(case, id=control) for control, case in CASES.items() if case.fixable]
)


def test_every_control_of_the_catalogue_is_covered() -> None:
    """Every control with trigger events; a sweep-only control (no event triggers it, as
    object-level-logging) runs these paths through the sweep in its own module."""
    assert sorted(CASES) == sorted(i for i in CONTROL_IDS if control(i).trigger_events)
    assert all(case.fixable == control(case.control).fixable for case in CASES.values())


@each_control
def test_notify_mode_changes_nothing(case: ControlCase, monkeypatch: pytest.MonkeyPatch) -> None:
    check_notify_mode(case, monkeypatch)


@each_control
def test_off_mode_does_nothing(case: ControlCase, monkeypatch: pytest.MonkeyPatch) -> None:
    check_off_mode(case, monkeypatch)


@each_removable_control
def test_bucket_gone_is_skipped(case: ControlCase) -> None:
    check_bucket_gone(case)


@each_control
def test_access_denied_fails_notifies_and_counts(
    case: ControlCase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    check_access_denied(case, monkeypatch, capsys)


@each_fixable_control
def test_throttled_write_is_retried(case: ControlCase) -> None:
    check_throttling_retried(case)


@each_fixable_control
def test_error_outliving_retries_raises(case: ControlCase) -> None:
    check_persistent_error_raises(case)


@each_fixable_control
def test_second_event_after_the_fix_finds_it_compliant(case: ControlCase) -> None:
    check_fixed_once(case)


@each_taggable_control
@pytest.mark.parametrize("target", ["own id", "all"])
def test_exempted_is_reported_not_changed(case: ControlCase, target: str) -> None:
    value = case.control if target == "own id" else "all"
    reason = "owned by the platform team, ticket SEC-7"
    outcome = check_exempted(
        case, {"bucketwarden:exempt": value, "bucketwarden:exempt-reason": reason}
    )
    assert reason in outcome["reason"]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(case, id=control)
        for control, case in CASES.items()
        if case.tagged_bucket and case.fixable
    ],
)
@pytest.mark.parametrize(
    ("extra", "note"),
    [
        ({"bucketwarden:exempt-reason": ""}, "missing"),
        (
            {"bucketwarden:exempt-reason": "temporary", "bucketwarden:exempt-until": "2023-06-30"},
            "expired on 2023-06-30",
        ),
    ],
    ids=["empty-reason", "expired"],
)
def test_exemption_not_honoured(case: ControlCase, extra: dict[str, str], note: str) -> None:
    check_exemption_not_honoured(case, {"bucketwarden:exempt": case.control, **extra}, note)
