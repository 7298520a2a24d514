"""cross-account-actions: other accounts lose exactly the five actions FSBP S3.6 names.

Every other grant, theirs or the account's own, stays as it was; a statement that also names
the account's own principals is split; a wildcard becomes the S3 actions it matches but the five.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bucketwarden.controls.bucket_policy import as_list, wildcard_match
from bucketwarden.controls.cross_account_actions import (
    DIRECTORY_RISKY_ACTIONS,
    RISKY_ACTIONS,
    S3_ACTIONS,
    S3EXPRESS_ACTIONS,
    CrossAccountActions,
    account_of,
)
from bucketwarden.policy import analyze
from bucketwarden.settings import Settings
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    ControlCase,
    calls_delta,
    handle,
    make_bucket,
)
from tests.strategies import policies, with_unique_sids
from tests.test_controls_public_policy import (
    OTHER_ACCOUNT,
    cross_account,
    elb_logs,
    objects,
    policy,
    policy_state,
    public_read,
    put_policy,
    stored_policy,
)

pytestmark = pytest.mark.usefixtures("aws")

PARTNER = f"arn:aws:iam::{OTHER_ACCOUNT}:root"
OWN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/admin"
SETTINGS = Settings(account_id=ACCOUNT)


def grant(
    sid: str | None, principals: Any, actions: Any, bucket: str, **extra: Any
) -> dict[str, Any]:
    found = {
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        "Action": actions,
        "Resource": [f"arn:aws:s3:::{bucket}", objects(bucket)],
        **extra,
    }
    return {"Sid": sid, **found} if sid else found


def partner_admin(bucket: str) -> dict[str, Any]:
    return grant("PartnerAdmin", PARTNER, ["s3:GetObject", "s3:PutBucketPolicy"], bucket)


def make_drift(bucket: str) -> None:
    """A grant of a policy write to another account between two that must stay."""
    put_policy(bucket, policy(elb_logs(bucket), partner_admin(bucket), cross_account(bucket)))


CASE = ControlCase(
    control="cross-account-actions",
    family="public-access",
    event_name="PutBucketPolicy",
    write_operation="PutBucketPolicy",
    write_actions=("s3:PutBucketPolicy",),
    drift=make_drift,
    read=policy_state,
    environment={"ACCOUNT_ID": ACCOUNT},
)


def test_drift_fixed_removes_only_the_five_actions() -> None:
    bucket = CASE.drifted()
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["reason"] == (
        f'statement "PartnerAdmin" allows account {OTHER_ACCOUNT} s3:PutBucketPolicy'
    )
    narrowed = {**partner_admin(bucket), "Action": ["s3:GetObject"]}
    assert stored_policy(bucket) == policy(elb_logs(bucket), narrowed, cross_account(bucket))
    assert calls_delta(before_calls) == {
        "s3.GetBucketPolicy": 3,  # read, re-read right before the write, verify
        "s3.GetBucketTagging": 1,
        "s3.PutBucketPolicy": 1,
    }


def test_notify_by_default() -> None:
    bucket = CASE.drifted()
    outcomes = handle("PutBucketPolicy", bucket, CASE.family)
    [mine] = [o for o in outcomes if o["control"] == CASE.control]
    assert (mine["status"], mine["mode"]) == ("noncompliant", "notify")


def test_other_accounts_other_grants_are_compliant() -> None:
    bucket = make_bucket("partner-bucket")
    put_policy(bucket, policy(elb_logs(bucket), cross_account(bucket)))
    outcome = CASE.run(bucket)
    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == (
        "no other account may change the bucket's policy, ACLs or encryption"
    )


def test_only_grant_goes_and_the_policy_with_it() -> None:
    bucket = make_bucket("lone-bucket")
    put_policy(bucket, policy(grant("Acl", PARTNER, "s3:PutObjectAcl", bucket)))
    before_calls = API_CALLS.snapshot()

    assert CASE.run(bucket)["status"] == "remediated"

    assert stored_policy(bucket) is None
    assert calls_delta(before_calls)["s3.DeleteBucketPolicy"] == 1


# -- evaluate() is pure: the fix, case by case -----------------------------------------------------

BUCKET = "example-bucket"


def fixed(*statements: dict[str, Any]) -> Any:
    state = {"BucketArn": f"arn:aws:s3:::{BUCKET}", "Policy": policy(*statements)}
    evaluation = CrossAccountActions().evaluate(state, SETTINGS)
    assert not evaluation.compliant, evaluation
    return (evaluation.desired or {})["Policy"]


def test_a_statement_for_own_and_other_principals_is_split() -> None:
    both = grant("Admins", [OWN_ROLE, PARTNER], ["s3:PutBucketAcl", "s3:GetObject"], BUCKET)
    assert fixed(both) == policy(
        {**both, "Principal": {"AWS": [OWN_ROLE]}},
        {**grant(None, [PARTNER], ["s3:GetObject"], BUCKET)},
    )


def test_a_wildcard_becomes_the_actions_it_matches_but_the_five() -> None:
    puts = fixed(grant("Puts", PARTNER, "s3:Put*", BUCKET))["Statement"][0]["Action"]
    assert {"s3:PutObject", "s3:PutBucketTagging"} <= set(puts)
    assert not set(puts) & set(RISKY_ACTIONS)
    assert all(action.startswith("s3:Put") for action in puts)
    everything = fixed(grant("All", PARTNER, "*", BUCKET))["Statement"][0]["Action"]
    assert everything == [a for a in S3_ACTIONS if a not in RISKY_ACTIONS]


def test_not_action_is_extended_with_the_five() -> None:
    statement = {**grant("Most", PARTNER, "x", BUCKET), "NotAction": "s3:DeleteBucket"}
    del statement["Action"]
    assert fixed(statement)["Statement"][0]["NotAction"] == ["s3:DeleteBucket", *RISKY_ACTIONS]


def test_case_of_actions_is_ignored_as_iam_does() -> None:
    statement = grant("Lower", PARTNER, ["S3:putbucketpolicy", "s3:GetObject"], BUCKET)
    assert fixed(statement)["Statement"][0]["Action"] == ["s3:GetObject"]


def test_public_principals_are_left_to_public_policy() -> None:
    """A public statement's public principals are public-policy's fix, not this control's."""
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": policy(public_read("b"))}
    wide = {**public_read("b"), "Action": "s3:*"}
    assert CrossAccountActions().evaluate(state, SETTINGS).compliant
    assert CrossAccountActions().evaluate({**state, "Policy": policy(wide)}, SETTINGS).compliant


def test_a_wildcard_principal_pinned_by_conditions_to_another_account_is_narrowed() -> None:
    pinned = {
        **grant("ViaCondition", "*", "s3:*", BUCKET),
        "Condition": {"StringEquals": {"aws:PrincipalAccount": OTHER_ACCOUNT}},
    }
    actions = fixed(pinned)["Statement"][0]["Action"]
    assert not set(actions) & set(RISKY_ACTIONS)


def test_a_wildcard_principal_pinned_to_the_own_account_is_compliant() -> None:
    own = {
        **grant("Own", "*", "s3:*", BUCKET),
        "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
    }
    state = {"BucketArn": f"arn:aws:s3:::{BUCKET}", "Policy": policy(own)}
    assert CrossAccountActions().evaluate(state, SETTINGS).compliant


def test_unknown_own_account_is_reported_not_fixed() -> None:
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": policy(partner_admin("b"))}
    evaluation = CrossAccountActions().evaluate(state, Settings())
    assert not evaluation.compliant
    assert not evaluation.fixable
    assert "not fixed: the bucket's own account is not known (ACCOUNT_ID)" in evaluation.reason


def test_a_narrowed_policy_over_20_kb_is_reported_not_written() -> None:
    wide = [grant(f"Partner{n}", PARTNER, "s3:*", BUCKET) for n in range(12)]
    state = {"BucketArn": f"arn:aws:s3:::{BUCKET}", "Policy": policy(*wide)}
    evaluation = CrossAccountActions().evaluate(state, SETTINGS)
    assert (evaluation.compliant, evaluation.fixable) == (False, False)
    assert "not fixed: narrowed, the policy would be" in evaluation.reason


def test_a_public_statement_naming_another_account_keeps_its_public_part() -> None:
    """ "*" stays for public-policy to remove; the account named beside it is narrowed."""
    mixed = grant("Mixed", ["*", PARTNER], ["s3:GetObject", "s3:PutObjectAcl"], BUCKET)
    assert fixed(mixed) == policy(
        {**mixed, "Principal": {"AWS": ["*"]}},
        grant(None, [PARTNER], ["s3:GetObject"], BUCKET),
    )


def test_a_policy_that_cannot_be_judged_is_reported() -> None:
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": {"Version": "2012-10-17"}}
    evaluation = CrossAccountActions().evaluate(state, SETTINGS)
    assert (evaluation.compliant, evaluation.fixable) == (False, False)


# -- properties ------------------------------------------------------------------------------------

PROBE_ACTIONS = (*S3_ACTIONS, "iam:PassRole", "s3:SomeFutureAction")


def _allows(statement: dict[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(
            wildcard_match(p, action, ignore_case=True) for p in as_list(statement["NotAction"])
        )
    return any(
        wildcard_match(p, action, ignore_case=True) for p in as_list(statement.get("Action", []))
    )


def grants(
    document: Any, probes: tuple[str, ...] = PROBE_ACTIONS
) -> set[tuple[str, str, str, str]]:
    """(principal kind, principal, action, everything else) of each Allow: what it grants."""
    found = set()
    for statement in as_list((document or {}).get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        rest = repr(
            sorted(
                (k, repr(v))
                for k, v in statement.items()
                if k not in {"Sid", "Principal", "Action", "NotAction"}
            )
        )
        principal = statement.get("Principal", statement.get("NotPrincipal"))
        who = (
            [("*", "*")]
            if not isinstance(principal, dict)
            else [(k, str(v)) for k, vs in principal.items() for v in as_list(vs)]
        )
        for kind, value in who:
            for action in probes:
                if _allows(statement, action):
                    found.add((kind, value, action, rest))
    return found


# Grants to other accounts, alone or beside the account's own principals, of the five, of
# wildcards that take them in, and of NotActions that leave them in or out.
EXTERNAL_GRANTS = st.builds(
    lambda principals, key, actions, sid: {
        **({"Sid": sid} if sid else {}),
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        key: actions,
        "Resource": [f"arn:aws:s3:::{BUCKET}", objects(BUCKET)],
    },
    st.sampled_from([PARTNER, OTHER_ACCOUNT, [OWN_ROLE, PARTNER], ["*", PARTNER], [PARTNER]]),
    st.sampled_from(["Action", "Action", "NotAction"]),
    st.lists(
        st.sampled_from(
            [*RISKY_ACTIONS, "s3:*", "*", "s3:Put*", "s3:GetObject", "S3:PUTOBJECTACL"]
        ),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from([None, "Partner", "Admins"]),
)


@st.composite
def with_external_grants(draw: st.DrawFn) -> dict[str, Any]:
    document = draw(policies(BUCKET))
    listed = as_list(document["Statement"])
    for grant_ in draw(st.lists(EXTERNAL_GRANTS, max_size=3)):
        listed.insert(draw(st.integers(0, len(listed))), grant_)
    return {**document, "Statement": with_unique_sids(listed)}


@given(with_external_grants())
def test_the_fix_grants_no_other_account_the_five_and_nothing_new(document: dict[str, Any]) -> None:
    state = {"BucketArn": f"arn:aws:s3:::{BUCKET}", "Policy": document}
    control = CrossAccountActions()
    evaluation = control.evaluate(state, SETTINGS)
    if evaluation.compliant or not evaluation.fixable:
        return
    after = (evaluation.desired or {})["Policy"]
    assert grants(after) <= grants(document)
    assert control.evaluate(evaluation.desired, SETTINGS).compliant
    public = [s.public for s in analyze(after).statements] if after else []
    for index, statement in enumerate(as_list((after or {}).get("Statement", []))):
        principal = statement.get("Principal")
        if statement.get("Effect") != "Allow" or public[index] or not isinstance(principal, dict):
            continue
        theirs = [
            v for v in as_list(principal.get("AWS", [])) if account_of(v) not in (None, ACCOUNT)
        ]
        if theirs:
            assert not any(_allows(statement, action) for action in RISKY_ACTIONS), statement


@given(st.sampled_from(RISKY_ACTIONS))
def test_every_one_of_the_five_is_found(action: str) -> None:
    assert fixed(grant("One", PARTNER, action, BUCKET)) is None


# -- directory buckets (S3 Express One Zone): the same judgement in `s3express:` actions --------

DIRECTORY_BUCKET = "example--use1-az4--x-s3"


def judged_as(subject: str, *statements: dict[str, Any]) -> Any:
    state = {"BucketArn": f"arn:aws:s3:::{subject}", "Policy": policy(*statements)}
    return CrossAccountActions().evaluate_subject(subject, state, SETTINGS)


def fixed_directory(*statements: dict[str, Any]) -> Any:
    evaluation = judged_as(DIRECTORY_BUCKET, *statements)
    assert not evaluation.compliant, evaluation
    return (evaluation.desired or {})["Policy"]


def test_a_directory_bucket_has_three_of_the_five() -> None:
    assert DIRECTORY_RISKY_ACTIONS == (
        "s3express:DeleteBucketPolicy",
        "s3express:PutBucketPolicy",
        "s3express:PutEncryptionConfiguration",
    )
    assert set(DIRECTORY_RISKY_ACTIONS) <= set(S3EXPRESS_ACTIONS)


@pytest.mark.parametrize("action", DIRECTORY_RISKY_ACTIONS)
def test_every_one_of_the_three_is_found_on_a_directory_bucket(action: str) -> None:
    assert fixed_directory(grant("One", PARTNER, action, DIRECTORY_BUCKET)) is None


def test_a_directory_buckets_wildcards_become_its_actions_but_the_three() -> None:
    for pattern in ("s3express:*", "*"):
        found = fixed_directory(grant("All", PARTNER, pattern, DIRECTORY_BUCKET))
        expected = [a for a in S3EXPRESS_ACTIONS if a not in DIRECTORY_RISKY_ACTIONS]
        assert found["Statement"][0]["Action"] == expected
    puts = fixed_directory(grant("Puts", PARTNER, "s3express:Put*", DIRECTORY_BUCKET))
    assert puts["Statement"][0]["Action"] == [
        "s3express:PutInventoryConfiguration",
        "s3express:PutLifecycleConfiguration",
        "s3express:PutMetricsConfiguration",
    ]


def test_a_directory_buckets_not_action_is_extended_with_the_three() -> None:
    statement = {**grant("Most", PARTNER, "x", DIRECTORY_BUCKET), "NotAction": "s3express:Delete*"}
    del statement["Action"]
    assert fixed_directory(statement)["Statement"][0]["NotAction"] == [
        "s3express:Delete*",
        "s3express:PutBucketPolicy",
        "s3express:PutEncryptionConfiguration",
    ]


def test_a_directory_bucket_split_keeps_the_own_accounts_grant() -> None:
    both = grant("Admins", [OWN_ROLE, PARTNER], "s3express:*", DIRECTORY_BUCKET)
    narrowed = [a for a in S3EXPRESS_ACTIONS if a not in DIRECTORY_RISKY_ACTIONS]
    assert fixed_directory(both) == policy(
        {**both, "Principal": {"AWS": [OWN_ROLE]}},
        grant(None, [PARTNER], narrowed, DIRECTORY_BUCKET),
    )


def test_s3_actions_grant_nothing_on_a_directory_bucket_and_are_not_judged_there() -> None:
    """A directory bucket's policy is read in `s3express:` actions only."""
    statement = grant("Partner", PARTNER, ["s3:PutBucketPolicy", "s3:PutObjectAcl"], BUCKET)
    assert judged_as(DIRECTORY_BUCKET, statement).compliant
    assert not judged_as(BUCKET, statement).compliant


def test_a_general_purpose_bucket_is_judged_as_before() -> None:
    """`s3express:` actions grant nothing on a general purpose bucket; its verdicts are those of
    `evaluate`, with or without the subject."""
    express = grant("Express", PARTNER, "s3express:*", BUCKET)
    assert judged_as(BUCKET, express).compliant
    state = {"BucketArn": f"arn:aws:s3:::{BUCKET}", "Policy": policy(partner_admin(BUCKET))}
    control = CrossAccountActions()
    assert control.evaluate_subject(BUCKET, state, SETTINGS) == control.evaluate(state, SETTINGS)


DIRECTORY_PROBES = (*S3EXPRESS_ACTIONS, *RISKY_ACTIONS, "s3express:SomeFutureAction")
DIRECTORY_GRANTS = st.builds(
    lambda principals, key, actions: {
        "Effect": "Allow",
        "Principal": {"AWS": principals},
        key: actions,
        "Resource": f"arn:aws:s3express:us-east-1:{ACCOUNT}:bucket/{DIRECTORY_BUCKET}",
    },
    st.sampled_from([PARTNER, OWN_ROLE, [OWN_ROLE, PARTNER], ["*", PARTNER]]),
    st.sampled_from(["Action", "Action", "NotAction"]),
    st.lists(
        st.sampled_from(
            [
                *DIRECTORY_RISKY_ACTIONS,
                "s3express:*",
                "s3express:Put*",
                "*",
                "s3express:CreateSession",
                "S3EXPRESS:PUTBUCKETPOLICY",
                "s3:PutBucketPolicy",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
)


@given(st.lists(DIRECTORY_GRANTS, min_size=1, max_size=4))
def test_a_directory_fix_grants_no_other_account_the_three_and_nothing_new(
    listed: list[dict[str, Any]],
) -> None:
    evaluation = judged_as(DIRECTORY_BUCKET, *listed)
    if evaluation.compliant or not evaluation.fixable:
        return
    after = (evaluation.desired or {})["Policy"]
    assert grants(after, DIRECTORY_PROBES) <= grants(policy(*listed), DIRECTORY_PROBES)
    again = CrossAccountActions().evaluate_subject(DIRECTORY_BUCKET, evaluation.desired, SETTINGS)
    assert again.compliant, again.reason
