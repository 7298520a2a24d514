"""object-ownership: ACLs disabled; a log delivery grant moves to the bucket policy first.

moto neither refuses BucketOwnerEnforced while the ACL grants others access nor enforces it, so
these tests assert what the control requests (which calls, in which order) and read the result
back: the policy statement added, the ACL left with the owner only, the setting.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketwarden import aws
from bucketwarden.controls.object_ownership import (
    ENFORCED,
    LOG_DELIVERY_SID,
    LOG_DELIVERY_STATEMENT,
    ObjectOwnership,
    PolicyTooLarge,
    log_delivery_statement,
)
from bucketwarden.policy import analyze
from bucketwarden.settings import Settings
from tests.helpers import (
    ACCOUNT,
    ALL_USERS,
    API_CALLS,
    LOG_DELIVERY,
    OTHER_ACCOUNT_ID,
    REGION,
    ControlCase,
    calls_delta,
    handle,
    make_bucket,
    s3,
)
from tests.test_controls_public_acl import acl, canonical, group

pytestmark = pytest.mark.usefixtures("aws")

WRITES = ("PutBucketPolicy", "PutBucketAcl", "PutBucketOwnershipControls")


def ownership(bucket: str) -> str | None:
    try:
        response = s3().get_bucket_ownership_controls(Bucket=bucket)
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "OwnershipControlsNotFoundError":
            return None
        raise
    return str(response["OwnershipControls"]["Rules"][0]["ObjectOwnership"])


def set_ownership(bucket: str, setting: str | None) -> None:
    if setting is None:
        s3().delete_bucket_ownership_controls(Bucket=bucket)
        return
    rules = {"Rules": [{"ObjectOwnership": setting}]}
    s3().put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=rules)


def surface(bucket: str) -> dict[str, Any]:
    """The setting and, while ACLs are enabled, the ACL: the state the control reads."""
    setting = ownership(bucket)
    if setting == ENFORCED:
        return {"ObjectOwnership": ENFORCED}
    return {"ObjectOwnership": setting, **acl(bucket)}


def enable_acls(bucket: str) -> None:
    """What the console's "ACLs enabled, object writer" writes."""
    set_ownership(bucket, "ObjectWriter")


def owner_grant(bucket: str) -> dict[str, Any]:
    return canonical(acl(bucket)["Owner"]["ID"], "FULL_CONTROL")


def put_grants(bucket: str, *grants: dict[str, Any]) -> None:
    policy = {"Owner": acl(bucket)["Owner"], "Grants": [owner_grant(bucket), *grants]}
    s3().put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)


def log_delivery_bucket(name: str = "log-target-bucket") -> str:
    """ACLs enabled, and the ACL grants the S3 log delivery group what logging needs."""
    make_bucket(name)
    set_ownership(name, "BucketOwnerPreferred")
    put_grants(name, group(LOG_DELIVERY, "WRITE"), group(LOG_DELIVERY, "READ_ACP"))
    return name


def bucket_policy(bucket: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(s3().get_bucket_policy(Bucket=bucket)["Policy"]))
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] == "NoSuchBucketPolicy":
            return None
        raise


def put_policy(bucket: str, *statements: dict[str, Any]) -> None:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    s3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))


def reader_statement(bucket: str) -> dict[str, Any]:
    """A statement of the owner's own: it must survive the fix as it is."""
    return {
        "Sid": "AnalyticsRead",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analytics"},
        "Action": ["s3:GetObject", "s3:ListBucket"],
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


def ours(bucket: str) -> dict[str, Any]:
    return log_delivery_statement(f"arn:aws:s3:::{bucket}", ACCOUNT)


def record_operations() -> list[str]:
    """The names of the S3 operations the engine's client makes from now on, in order."""
    names: list[str] = []

    def remember(model: Any, **_: Any) -> None:
        names.append(model.name)

    aws.client("s3", REGION).meta.events.register("before-call.s3", remember)
    return names


CASE = ControlCase(
    control="object-ownership",
    family="public-access",
    event_name="PutBucketOwnershipControls",
    write_operation="PutBucketOwnershipControls",
    # The IAM action, and the one moto checks instead: its action map has no entry for the
    # "ownershipControls" query key, so it authorises the call as a PUT on the bucket,
    # s3:CreateBucket.
    write_actions=("s3:PutBucketOwnershipControls", "s3:CreateBucket"),
    drift=enable_acls,
    read=surface,
)


# -- drift fixed ------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", [None, "ObjectWriter", "BucketOwnerPreferred"])
def test_acls_enabled_are_disabled(setting: str | None) -> None:
    bucket = make_bucket("acl-bucket")
    set_ownership(bucket, setting)
    drifted = surface(bucket)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    shown = setting or "no Object Ownership setting"
    assert outcome["reason"] == f"ACLs are enabled ({shown})"
    assert outcome["before"] == drifted == {"ObjectOwnership": setting, **acl(bucket)}
    assert outcome["after"] == {"ObjectOwnership": ENFORCED}
    assert ownership(bucket) == ENFORCED
    # The ACL is owner-only already: no ACL or policy write, and no ACL read once enforced.
    assert calls_delta(before_calls) == {
        "s3.GetBucketOwnershipControls": 2,
        "s3.GetBucketAcl": 1,
        "s3.GetBucketTagging": 1,
        "s3.PutBucketOwnershipControls": 1,
    }


def test_deleted_configuration_is_put_back() -> None:
    bucket = make_bucket("unowned-bucket")
    set_ownership(bucket, ENFORCED)
    set_ownership(bucket, None)

    [outcome] = [
        o
        for o in handle("DeleteBucketOwnershipControls", bucket, CASE.family)
        if o["control"] == CASE.control
    ]

    assert outcome["status"] == "remediated", outcome
    assert outcome["before"]["ObjectOwnership"] is None
    assert ownership(bucket) == ENFORCED


def test_already_compliant_makes_one_read_and_no_write() -> None:
    bucket = make_bucket("owned-bucket")
    set_ownership(bucket, ENFORCED)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == f"ACLs are disabled ({ENFORCED})"
    assert calls_delta(before_calls) == {"s3.GetBucketOwnershipControls": 1}


def test_on_create_bucket_public_grants_go_first_then_acls_are_disabled() -> None:
    """public-acl runs before this control: its fix leaves an ACL this control can disable."""
    bucket = make_bucket("new-public-bucket")
    s3().put_bucket_acl(Bucket=bucket, ACL="public-read")

    outcomes = handle("CreateBucket", bucket, CASE.family)

    statuses = {o["control"]: o["status"] for o in outcomes}
    order = [o["control"] for o in outcomes]
    assert order.index("public-acl") < order.index(CASE.control)
    assert statuses["public-acl"] == statuses[CASE.control] == "remediated"
    assert ownership(bucket) == ENFORCED


# -- the log delivery grant ---------------------------------------------------------------------


def test_log_delivery_grant_moves_to_the_policy_before_acls_are_disabled() -> None:
    bucket = log_delivery_bucket()
    put_policy(bucket, reader_statement(bucket))
    operations = record_operations()
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert "the S3 log delivery group's ACL grant moves to the bucket policy" in outcome["reason"]
    # The policy first (read fresh, then written), then the ACL, then the setting.
    assert operations == [
        "GetBucketOwnershipControls",
        "GetBucketAcl",
        "GetBucketTagging",
        "GetBucketPolicy",
        "PutBucketPolicy",
        "PutBucketAcl",
        "PutBucketOwnershipControls",
        "GetBucketOwnershipControls",
    ]
    # The account for aws:SourceAccount: the caller's, which S3 checks is the bucket owner's.
    assert calls_delta(before_calls)["sts.GetCallerIdentity"] == 1
    policy = bucket_policy(bucket)
    assert policy is not None
    assert policy["Statement"] == [reader_statement(bucket), ours(bucket)]
    assert ours(bucket)["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert not analyze(policy).public  # public-policy will not take it out again
    assert acl(bucket)["Grants"] == [owner_grant(bucket)]
    assert ownership(bucket) == ENFORCED


def test_a_new_policy_is_made_when_the_bucket_has_none() -> None:
    bucket = log_delivery_bucket()

    assert CASE.run(bucket)["status"] == "remediated"

    assert bucket_policy(bucket) == {"Version": "2012-10-17", "Statement": [ours(bucket)]}


def hand_written(bucket: str) -> dict[str, Any]:
    """An equivalent statement written another way: no Sid, lists, no condition, wildcards."""
    return {
        "Effect": "Allow",
        "Principal": {"Service": ["logging.s3.amazonaws.com"]},
        "Action": ["s3:Put*"],
        "Resource": [f"arn:aws:s3:::{bucket}*"],
    }


@pytest.mark.parametrize("present", [ours, hand_written], ids=["ours", "hand-written"])
def test_log_delivery_statement_already_there_is_not_added_twice(present: Any) -> None:
    bucket = log_delivery_bucket()
    put_policy(bucket, reader_statement(bucket), present(bucket))
    policy = bucket_policy(bucket)
    operations = record_operations()

    assert CASE.run(bucket)["status"] == "remediated"

    assert "PutBucketPolicy" not in operations
    assert bucket_policy(bucket) == policy
    assert acl(bucket)["Grants"] == [owner_grant(bucket)]
    assert ownership(bucket) == ENFORCED


def narrower(bucket: str) -> list[dict[str, Any]]:
    """Statements that let the logging service write only some logs: they are not enough."""
    base = hand_written(bucket)
    return [
        {**base, "Sid": "OnlyLogsPrefix", "Resource": f"arn:aws:s3:::{bucket}/logs/*"},
        {
            **base,
            "Sid": "OnlyOneSource",
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::source-bucket"}},
        },
        {**base, "Sid": "OnlyGet", "Action": "s3:GetObject"},
    ]


def test_narrower_statements_are_kept_and_the_full_one_added() -> None:
    bucket = log_delivery_bucket()
    put_policy(bucket, *narrower(bucket))

    assert CASE.run(bucket)["status"] == "remediated"

    policy = bucket_policy(bucket)
    assert policy is not None
    assert policy["Statement"] == [*narrower(bucket), ours(bucket)]


def test_a_changed_statement_under_our_sid_keeps_its_meaning_without_the_sid() -> None:
    # It may be a Deny or someone's grant: dropping it could widen access or cut it, and a
    # policy holds a Sid once, so it stays where it is without the Sid.
    bucket = log_delivery_bucket()
    changed = {**ours(bucket), "Resource": f"arn:aws:s3:::{bucket}/old-prefix/*"}
    put_policy(bucket, changed, reader_statement(bucket))

    assert CASE.run(bucket)["status"] == "remediated"

    policy = bucket_policy(bucket)
    assert policy is not None
    unnamed = {key: value for key, value in changed.items() if key != "Sid"}
    assert policy["Statement"] == [unnamed, reader_statement(bucket), ours(bucket)]


def test_read_acp_alone_needs_no_statement() -> None:
    bucket = make_bucket("acl-read-bucket")
    enable_acls(bucket)
    put_grants(bucket, group(LOG_DELIVERY, "READ_ACP"))
    operations = record_operations()

    assert CASE.run(bucket)["status"] == "remediated"

    assert [name for name in operations if name in WRITES] == [
        "PutBucketAcl",
        "PutBucketOwnershipControls",
    ]
    assert bucket_policy(bucket) is None
    assert acl(bucket)["Grants"] == [owner_grant(bucket)]


def test_a_policy_at_the_size_limit_stops_the_fix_before_the_acl() -> None:
    bucket = log_delivery_bucket()
    padding = {**reader_statement(bucket), "Sid": "x" * 20_000}
    put_policy(bucket, padding)
    drifted = surface(bucket)
    desired = ObjectOwnership().evaluate(drifted, Settings()).desired

    with pytest.raises(PolicyTooLarge, match="would exceed 20480 bytes"):
        ObjectOwnership().apply(aws.client("s3", REGION), bucket, desired)

    assert surface(bucket) == drifted


def test_audit_before_rolls_the_fix_back() -> None:
    """`before` holds what a rollback needs: the setting and the ACL, written back by apply."""
    bucket = log_delivery_bucket()
    outcome = CASE.run(bucket)
    assert outcome["status"] == "remediated"

    ObjectOwnership().apply(s3(), bucket, outcome["before"])

    assert surface(bucket) == outcome["before"]
    assert ownership(bucket) == "BucketOwnerPreferred"


# -- grants only a person can move ------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant", "named"),
    [
        (canonical(OTHER_ACCOUNT_ID, "READ"), f"READ to canonical user {OTHER_ACCOUNT_ID}"),
        (group(ALL_USERS, "READ"), "READ to AllUsers"),
        (group(LOG_DELIVERY, "FULL_CONTROL"), "FULL_CONTROL to LogDelivery"),
    ],
    ids=["cross-account", "public-acl-off", "log-delivery-full-control"],
)
def test_other_grants_are_reported_and_nothing_is_changed(
    grant: dict[str, Any], named: str
) -> None:
    bucket = make_bucket("shared-bucket")
    enable_acls(bucket)
    put_grants(bucket, grant, group(LOG_DELIVERY, "WRITE"))
    drifted = surface(bucket)
    operations = record_operations()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"] == (
        f"ACLs are enabled (ObjectWriter); S3 cannot disable them while the ACL grants {named}: "
        "a person must move these grants to the bucket policy (a canonical user id does not map "
        "safely to an account principal)"
    )
    assert not [name for name in operations if name in WRITES or name == "GetBucketPolicy"]
    assert surface(bucket) == drifted
    assert bucket_policy(bucket) is None


# -- exemptions -------------------------------------------------------------------------------


# -- evaluate() and describe() are pure ---------------------------------------------------------

OWNER = {"ID": "c" * 64, "DisplayName": "owner"}
OWNER_FULL_CONTROL = canonical(OWNER["ID"], "FULL_CONTROL")


def test_desired_state_keeps_the_owner_and_names_the_statement() -> None:
    state = {
        "ObjectOwnership": "ObjectWriter",
        "Owner": OWNER,
        "Grants": [OWNER_FULL_CONTROL, group(LOG_DELIVERY, "WRITE")],
    }
    evaluation = ObjectOwnership().evaluate(state, Settings())
    assert evaluation.desired == {
        "ObjectOwnership": ENFORCED,
        "Owner": OWNER,
        "Grants": [OWNER_FULL_CONTROL],
        LOG_DELIVERY_STATEMENT: LOG_DELIVERY_SID,
    }


@pytest.mark.parametrize(
    ("state", "text"),
    [
        ({"ObjectOwnership": ENFORCED}, "BucketOwnerEnforced (ACLs disabled)"),
        (
            {
                "ObjectOwnership": None,
                "Owner": OWNER,
                "Grants": [OWNER_FULL_CONTROL, group(LOG_DELIVERY, "WRITE")],
            },
            "no Object Ownership setting (ACLs enabled); "
            "ACL: FULL_CONTROL to the owner, WRITE to LogDelivery",
        ),
    ],
    ids=["enforced", "acls-enabled"],
)
def test_describe(state: dict[str, Any], text: str) -> None:
    assert ObjectOwnership().describe(state) == text


def test_a_policy_at_the_size_limit_is_a_failed_outcome_not_a_retry() -> None:
    bucket = log_delivery_bucket()
    put_policy(bucket, {**reader_statement(bucket), "Sid": "x" * 20_000})
    drifted = surface(bucket)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "failed", outcome
    assert "not fixed: the bucket policy of" in outcome["reason"]
    assert "would exceed 20480 bytes" in outcome["reason"]
    assert surface(bucket) == drifted
