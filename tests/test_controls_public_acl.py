"""public-acl: only AllUsers/AuthenticatedUsers grants are removed; every other grant is kept."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bucketwarden.controls.public_acl import PublicAcl, public_group
from bucketwarden.settings import Settings
from tests.helpers import (
    ALL_USERS,
    API_CALLS,
    AUTHENTICATED_USERS,
    LOG_DELIVERY,
    OTHER_ACCOUNT_ID,
    ControlCase,
    calls_delta,
    check_exempted,
    handle,
    make_bucket,
    s3,
)

pytestmark = pytest.mark.usefixtures("aws")

PUBLIC_URIS = (ALL_USERS, AUTHENTICATED_USERS)


def group(uri: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def canonical(user_id: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "CanonicalUser", "ID": user_id}, "Permission": permission}


def acl(bucket: str) -> dict[str, Any]:
    response = s3().get_bucket_acl(Bucket=bucket)
    return {"Owner": response["Owner"], "Grants": response["Grants"]}


def kept_grants(bucket: str) -> list[dict[str, Any]]:
    """Owner FULL_CONTROL, log delivery and a cross-account reader: none of them public."""
    owner = acl(bucket)["Owner"]
    return [
        canonical(owner["ID"], "FULL_CONTROL"),
        group(LOG_DELIVERY, "WRITE"),
        group(LOG_DELIVERY, "READ_ACP"),
        canonical(OTHER_ACCOUNT_ID, "READ"),
    ]


def make_public(bucket: str) -> None:
    public = [
        group(ALL_USERS, "READ"),
        group(AUTHENTICATED_USERS, "WRITE"),
        group(AUTHENTICATED_USERS, "READ_ACP"),
    ]
    policy = {"Owner": acl(bucket)["Owner"], "Grants": kept_grants(bucket) + public}
    s3().put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)


CASE = ControlCase(
    control="public-acl",
    family="public-access",
    event_name="PutBucketAcl",
    write_operation="PutBucketAcl",
    write_actions=("s3:PutBucketAcl",),
    drift=make_public,
    read=acl,
)


def test_drift_fixed_removes_only_the_public_grants() -> None:
    bucket = CASE.drifted_bucket()
    drifted = acl(bucket)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    now = acl(bucket)
    assert now["Grants"] == kept_grants(bucket)
    assert now["Owner"] == drifted["Owner"]
    assert outcome["before"]["Grants"] == drifted["Grants"]
    assert outcome["after"]["Grants"] == now["Grants"]
    assert "READ to AllUsers" in outcome["reason"]
    assert "WRITE to AuthenticatedUsers" in outcome["reason"]
    # Read, tags (exemption check), write, verify: the budget of 4 S3 calls, plus one read of
    # the website configuration because anyone could read the bucket (is it serving a site?).
    assert calls_delta(before_calls) == {
        "s3.GetBucketAcl": 3,  # read, re-read right before the write, verify
        "s3.GetBucketTagging": 1,
        "s3.GetBucketWebsite": 1,
        "s3.PutBucketAcl": 1,
    }


def test_create_bucket_event_is_handled_too() -> None:
    bucket = CASE.drifted_bucket()
    outcomes = handle("CreateBucket", bucket, CASE.family)
    # The family runs bucket-public-access-block first on CreateBucket, then this control.
    controls = [o["control"] for o in outcomes]
    assert controls[:2] == ["bucket-public-access-block", "public-acl"]
    assert outcomes[1]["status"] == "remediated"


def test_already_compliant_makes_no_write() -> None:
    bucket = make_bucket("private-bucket")
    s3().put_bucket_acl(
        Bucket=bucket,
        AccessControlPolicy={"Owner": acl(bucket)["Owner"], "Grants": kept_grants(bucket)},
    )
    untouched = acl(bucket)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert calls_delta(before_calls) == {"s3.GetBucketAcl": 1}
    assert acl(bucket) == untouched


def test_exemption_until_a_future_date_is_honoured() -> None:
    # Within MaxExemptionDays (365 by default) of today.
    until = (date.today() + timedelta(days=90)).isoformat()
    outcome = check_exempted(
        CASE,
        {
            "bucketwarden:exempt": "public-acl",
            "bucketwarden:exempt-reason": "migration",
            "bucketwarden:exempt-until": until,
        },
    )
    assert f"until {until}" in outcome["reason"]


def test_exemption_for_another_control_does_not_apply() -> None:
    bucket = CASE.drifted_bucket()
    s3().put_bucket_tagging(
        Bucket=bucket,
        Tagging={
            "TagSet": [
                {"Key": "bucketwarden:exempt", "Value": "versioning"},
                {"Key": "bucketwarden:exempt-reason", "Value": "scratch data"},
            ]
        },
    )
    assert CASE.run(bucket)["status"] == "remediated"


def test_exemption_under_a_custom_tag_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXEMPT_TAG_KEY", "acme:no-fix")
    check_exempted(CASE, {"acme:no-fix": "all", "acme:no-fix-reason": "legacy CDN origin"})


# -- evaluate() is pure: properties over arbitrary grant lists ---------------------------------

PERMISSIONS = st.sampled_from(["FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP"])
GRANTS = st.one_of(
    st.builds(group, st.sampled_from([*PUBLIC_URIS, LOG_DELIVERY]), PERMISSIONS),
    st.builds(canonical, st.text("0123456789abcdef", min_size=64, max_size=64), PERMISSIONS),
    st.builds(
        lambda email, permission: {
            "Grantee": {"Type": "AmazonCustomerByEmail", "EmailAddress": email},
            "Permission": permission,
        },
        st.sampled_from(["ops@example.com", "audit@example.org"]),
        PERMISSIONS,
    ),
)
OWNER = {"ID": "c" * 64, "DisplayName": "owner"}


@given(st.lists(GRANTS, max_size=12))
def test_desired_acl_drops_public_grants_and_keeps_the_rest(grants: list[dict[str, Any]]) -> None:
    control, settings = PublicAcl(), Settings()
    state = {"Owner": OWNER, "Grants": grants}
    evaluation = control.evaluate(state, settings)
    public = [g for g in grants if g["Grantee"].get("URI") in PUBLIC_URIS]
    assert evaluation.compliant is (not public)
    if evaluation.compliant:
        assert evaluation.desired is None
        return
    desired = evaluation.desired
    assert desired is not None
    assert desired["Owner"] == OWNER
    assert desired["Grants"] == [g for g in grants if g not in public]
    assert not any(public_group(g) for g in desired["Grants"])
    # The fix is a fixed point: judging the desired state finds nothing to do.
    assert control.evaluate(desired, settings).compliant
