"""secure-transport: the TLS rules are added once, recognised under any Sid, never duplicated."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from bucketwarden.controls.secure_transport import SecureTransport
from bucketwarden.settings import Settings
from tests.helpers import (
    API_CALLS,
    ControlCase,
    calls_delta,
    handle,
    make_bucket,
    s3,
)
from tests.test_controls_public_policy import (
    cloudfront_oac,
    cross_account,
    elb_logs,
    policy,
    policy_state,
    put_policy,
    stored_policy,
)

pytestmark = pytest.mark.usefixtures("aws")

INSECURE_SID = "BucketWardenDenyInsecureTransport"
OUTDATED_SID = "BucketWardenDenyOutdatedTls"


def arns(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def deny_insecure_transport(bucket: str) -> dict[str, Any]:
    """The statement the control writes for requests without TLS."""
    return {
        "Sid": INSECURE_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": arns(bucket),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def deny_outdated_tls(bucket: str, minimum: float = 1.2) -> dict[str, Any]:
    """The statement the control writes for TLS below the minimum."""
    return {
        "Sid": OUTDATED_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": arns(bucket),
        "Condition": {"NumericLessThan": {"s3:TlsVersion": minimum}},
    }


def tls_rules(bucket: str) -> list[dict[str, Any]]:
    return [deny_insecure_transport(bucket), deny_outdated_tls(bucket)]


def without_tls_rule(bucket: str) -> None:
    """A policy that grants another account access and denies nothing."""
    put_policy(bucket, policy(cross_account(bucket)))


CASE = ControlCase(
    control="secure-transport",
    family="public-access",
    event_name="PutBucketPolicy",
    write_operation="PutBucketPolicy",
    write_actions=("s3:PutBucketPolicy",),
    drift=without_tls_rule,
    read=policy_state,
)


def evaluate(document: dict[str, Any] | None, settings: Settings | None = None) -> Any:
    state = {"BucketArn": "arn:aws:s3:::tls-bucket", "Policy": document}
    return SecureTransport().evaluate(state, settings or Settings())


def test_drift_fixed_appends_both_rules_and_keeps_the_rest() -> None:
    bucket = make_bucket("plain-bucket")
    drifted = policy(cross_account(bucket), elb_logs(bucket), Id="Partners")
    put_policy(bucket, drifted)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    expected = {**drifted, "Statement": [*drifted["Statement"], *tls_rules(bucket)]}
    assert stored_policy(bucket) == expected
    assert outcome["before"] == {"BucketArn": "arn:aws:s3:::plain-bucket", "Policy": drifted}
    assert outcome["after"] == policy_state(bucket)
    assert outcome["reason"] == (
        "no Deny of requests without TLS (aws:SecureTransport false) covers the bucket and its "
        "objects; no Deny of TLS below 1.2 (s3:TlsVersion) covers the bucket and its objects"
    )
    # Read, tags (exemption check), write, verify.
    assert calls_delta(before_calls) == {
        "s3.GetBucketPolicy": 3,  # read, re-read right before the write, verify
        "s3.GetBucketTagging": 1,
        "s3.PutBucketPolicy": 1,
    }


def test_already_compliant_makes_no_write() -> None:
    bucket = make_bucket("tls-bucket")
    document = policy(cross_account(bucket), *tls_rules(bucket))
    put_policy(bucket, document)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert calls_delta(before_calls) == {"s3.GetBucketPolicy": 1}
    assert stored_policy(bucket) == document


def test_create_bucket_gets_a_new_policy() -> None:
    bucket = make_bucket("new-bucket")

    outcome = replace(CASE, event_name="CreateBucket").run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["before"]["Policy"] is None
    assert outcome["reason"].startswith("no bucket policy: no Deny of requests without TLS")
    assert stored_policy(bucket) == {"Version": "2012-10-17", "Statement": tls_rules(bucket)}


def test_deleted_policy_gets_the_rule_back() -> None:
    bucket = make_bucket("tls-bucket")
    put_policy(bucket, policy(*tls_rules(bucket)))
    s3().delete_bucket_policy(Bucket=bucket)

    [outcome] = handle("DeleteBucketPolicy", bucket, "public-access")

    assert outcome["control"] == "secure-transport"
    assert outcome["status"] == "remediated", outcome
    assert stored_policy(bucket) == {"Version": "2012-10-17", "Statement": tls_rules(bucket)}


def _equivalent(bucket: str, **changes: Any) -> dict[str, Any]:
    return {**deny_insecure_transport(bucket), "Sid": "EnforceTLS", **changes}


EQUIVALENTS = {
    "principal-aws-star": lambda b: [_equivalent(b, Principal={"AWS": "*"})],
    "principal-aws-star-list": lambda b: [_equivalent(b, Principal={"AWS": ["*"]})],
    "action-star": lambda b: [_equivalent(b, Action="*")],
    "action-list": lambda b: [_equivalent(b, Action=["s3:GetObject", "s3:*"])],
    "resource-star": lambda b: [_equivalent(b, Resource="*")],
    "resource-wildcard": lambda b: [_equivalent(b, Resource=f"arn:aws:s3:::{b}*")],
    "split-over-two": lambda b: [
        _equivalent(b, Resource=arns(b)[0]),
        _equivalent(b, Sid="EnforceTLSObjects", Resource=arns(b)[1]),
    ],
    "bool-false": lambda b: [_equivalent(b, Condition={"Bool": {"aws:SecureTransport": False}})],
    "bool-list": lambda b: [_equivalent(b, Condition={"Bool": {"aws:SecureTransport": ["false"]}})],
    "bool-if-exists": lambda b: [
        _equivalent(b, Condition={"BoolIfExists": {"aws:SecureTransport": "false"}})
    ],
    "no-sid": lambda b: [{k: v for k, v in deny_insecure_transport(b).items() if k != "Sid"}],
}


@pytest.mark.parametrize("variant", list(EQUIVALENTS))
def test_equivalent_rule_under_another_sid_is_not_duplicated(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TLS_MINIMUM", "")
    bucket = make_bucket("hand-written-bucket")
    document = policy(elb_logs(bucket), *EQUIVALENTS[variant](bucket))
    put_policy(bucket, document)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert "s3.PutBucketPolicy" not in calls_delta(before_calls)
    assert stored_policy(bucket) == document


NOT_EQUIVALENT = {
    "allow": {"Effect": "Allow"},
    "one-account": {"Principal": {"AWS": "arn:aws:iam::111122223333:root"}},
    "not-principal": {"Principal": None, "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"}},
    "some-actions": {"Action": ["s3:GetObject", "s3:PutObject"]},
    "not-action": {"Action": None, "NotAction": "s3:ListBucket"},
    "secure-true": {"Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    "extra-condition": {
        "Condition": {
            "Bool": {"aws:SecureTransport": "false"},
            "StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"},
        }
    },
    "other-bucket": {"Resource": ["arn:aws:s3:::other", "arn:aws:s3:::other/*"]},
    "string-equals": {"Condition": {"StringEquals": {"aws:SecureTransport": "false"}}},
}


@pytest.mark.parametrize("variant", list(NOT_EQUIVALENT))
def test_statement_that_does_not_deny_insecure_transport_everywhere_is_drift(
    variant: str,
) -> None:
    changed = {**deny_insecure_transport("tls-bucket"), "Sid": "Nearly"}
    changed.update(NOT_EQUIVALENT[variant])
    statement = {key: value for key, value in changed.items() if value is not None}

    evaluation = evaluate(policy(statement), Settings(tls_minimum=""))

    assert not evaluation.compliant
    assert evaluation.desired["Policy"]["Statement"] == [
        statement,
        deny_insecure_transport("tls-bucket"),
    ]


def test_rule_covering_only_the_objects_names_the_bucket() -> None:
    objects_only = _equivalent("tls-bucket", Resource="arn:aws:s3:::tls-bucket/*")
    evaluation = evaluate(policy(objects_only), Settings(tls_minimum=""))
    assert evaluation.reason == (
        "no Deny of requests without TLS (aws:SecureTransport false) covers arn:aws:s3:::tls-bucket"
    )
    statements = evaluation.desired["Policy"]["Statement"]
    assert statements == [objects_only, deny_insecure_transport("tls-bucket")]


def unnamed(statement: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in statement.items() if key != "Sid"}


def test_our_sid_saying_something_else_keeps_its_meaning_without_the_sid() -> None:
    # A statement under our Sid may deny more than the rule (or be someone's grant): replacing
    # it could widen access, so it stays in place without the Sid and the rule is added.
    bucket = make_bucket("tampered-bucket")
    tampered = {**deny_insecure_transport(bucket), "Resource": f"arn:aws:s3:::{bucket}/public/*"}
    put_policy(bucket, policy(elb_logs(bucket), tampered, cross_account(bucket)))

    outcome = CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert f'(statement "{INSECURE_SID}" says something else)' in outcome["reason"]
    assert stored_policy(bucket)["Statement"] == [
        elb_logs(bucket),
        unnamed(tampered),
        cross_account(bucket),
        deny_insecure_transport(bucket),
        deny_outdated_tls(bucket),
    ]


def test_our_tls_sid_holding_the_transport_rule_is_fixed_without_losing_either() -> None:
    # Someone wrote the transport rule under our TLS Sid: it stays (without the Sid), still
    # covering the transport rule, and the TLS rule is added under its Sid.
    misplaced = {**deny_insecure_transport("tls-bucket"), "Sid": OUTDATED_SID}
    evaluation = evaluate(policy(misplaced))
    assert evaluation.desired["Policy"]["Statement"] == [
        unnamed(misplaced),
        deny_outdated_tls("tls-bucket"),
    ]


def test_stricter_tls_minimum_than_configured_counts() -> None:
    document = policy(deny_insecure_transport("tls-bucket"), deny_outdated_tls("tls-bucket", 1.3))
    assert evaluate(document, Settings(tls_minimum="1.2")).compliant


@pytest.mark.parametrize("value", ["1.3", ["1.2", "1.3"], 1.3])
def test_tls_minimum_values_in_any_form_are_read(value: Any) -> None:
    tls = {**deny_outdated_tls("tls-bucket"), "Sid": "MinTls"}
    tls["Condition"] = {"NumericLessThan": {"s3:TlsVersion": value}}
    document = policy(deny_insecure_transport("tls-bucket"), tls)
    assert evaluate(document, Settings(tls_minimum="1.3")).compliant


def test_weaker_tls_minimum_than_configured_gets_our_rule_added() -> None:
    weaker = {**deny_outdated_tls("tls-bucket", 1.1), "Sid": "OldClients"}
    document = policy(deny_insecure_transport("tls-bucket"), weaker)

    evaluation = evaluate(document, Settings(tls_minimum="1.2"))

    assert (
        evaluation.reason
        == "no Deny of TLS below 1.2 (s3:TlsVersion) covers the bucket and its objects"
    )
    assert evaluation.desired["Policy"]["Statement"] == [
        *document["Statement"],
        deny_outdated_tls("tls-bucket"),
    ]


def test_tls_minimum_off_asks_only_for_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLS_MINIMUM", "")
    bucket = CASE.drifted_bucket()
    assert CASE.run(bucket)["status"] == "remediated"
    assert stored_policy(bucket)["Statement"] == [
        cross_account(bucket),
        deny_insecure_transport(bucket),
    ]


def test_tls_minimum_1_3_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TLS_MINIMUM", "1.3")
    bucket = CASE.drifted_bucket()
    assert CASE.run(bucket)["status"] == "remediated"
    assert stored_policy(bucket)["Statement"][-1] == deny_outdated_tls(bucket, 1.3)


def test_single_statement_object_becomes_a_list() -> None:
    bucket = make_bucket("single-statement-bucket")
    put_policy(bucket, {"Version": "2012-10-17", "Statement": cloudfront_oac(bucket)})
    assert CASE.run(bucket)["status"] == "remediated"
    assert stored_policy(bucket) == policy(cloudfront_oac(bucket), *tls_rules(bucket))


# -- S3's 20 KB limit --------------------------------------------------------------------------


def compact_size(document: dict[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")).encode())


def _padded(sid_length: int) -> dict[str, Any]:
    return policy({**cross_account("tls-bucket"), "Sid": "P" * sid_length})


def test_rule_that_fills_the_policy_to_exactly_20_kb_is_added() -> None:
    room = 20480 - compact_size(evaluate(_padded(1)).desired["Policy"])
    fits = evaluate(_padded(1 + room))
    assert fits.fixable
    assert compact_size(fits.desired["Policy"]) == 20480
    over = evaluate(_padded(2 + room))
    assert (over.compliant, over.fixable, over.desired) == (False, False, None)
    assert over.reason.endswith(
        "; not fixed: with the rule the policy would be 20481 bytes, over S3's 20480"
    )


def test_policy_too_full_for_the_rule_is_reported_not_changed() -> None:
    bucket = make_bucket("full-bucket")
    partners = [
        {**cross_account(bucket), "Sid": f"Partner{n:03}", "Principal": {"AWS": f"{n:012}"}}
        for n in range(110)
    ]
    document = policy(*partners)
    assert 20000 < compact_size(document) < 20480
    put_policy(bucket, document)
    before_calls = API_CALLS.snapshot()

    outcome = CASE.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert "over S3's 20480" in outcome["reason"]
    assert stored_policy(bucket) == document
    assert "s3.PutBucketPolicy" not in calls_delta(before_calls)


def test_policy_that_cannot_be_judged_is_reported_not_changed() -> None:
    bucket = make_bucket("malformed-bucket")
    put_policy(bucket, "{not json")
    outcome = CASE.run(bucket)
    assert outcome["status"] == "noncompliant", outcome
    assert outcome["reason"].startswith("the bucket policy cannot be judged: not JSON")
    assert s3().get_bucket_policy(Bucket=bucket)["Policy"] == "{not json"


# -- exemptions --------------------------------------------------------------------------------
