"""public-policy and secure-transport share the bucket policy: one read, one write, one result.

The engine runs them as one read-modify-write, so an event that finds both wrong writes once,
and any order of events, repeated or not, ends with the same policy: the statements that were
not public, in their order, and each TLS rule exactly once.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from bucketwarden import aws
from bucketwarden.catalogue import controls_of
from bucketwarden.settings import mode_variable
from tests.helpers import API_CALLS, calls_delta, handle, make_bucket, temporary_environment
from tests.strategies import (
    CANONICAL,
    COVERS,
    KEPT,
    POLICY_EVENTS,
    PUBLIC,
    event_sequences,
    examples,
)
from tests.test_controls_cross_account_actions import partner_admin
from tests.test_controls_public_policy import (
    cloudfront_oac,
    policy,
    public_read,
    put_policy,
    stored_policy,
)
from tests.test_controls_secure_transport import tls_rules

FAMILY = "public-access"
POLICY_CONTROLS = ("public-policy", "secure-transport")
BUCKET = "converging-bucket"


def other_controls_off(*judging: str) -> dict[str, str]:
    """The family's controls on other surfaces, off: the policy is what these tests judge."""
    others = [c.id for c in controls_of(FAMILY) if c.id not in (judging or POLICY_CONTROLS)]
    return {mode_variable(control_id): "off" for control_id in others}


def of_tls_and_public(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outcomes of public-policy and secure-transport (cross-account-actions judges the
    same policy, notify by default: tests/test_controls_cross_account_actions.py)."""
    return [o for o in outcomes if o["control"] in POLICY_CONTROLS]


def deliver(event_name: str, bucket: str, **record: Any) -> list[dict[str, Any]]:
    with temporary_environment(other_controls_off()):
        outcomes = handle(event_name, bucket, FAMILY, **record)
    return [o for o in outcomes if o["control"] in POLICY_CONTROLS]


@pytest.mark.usefixtures("aws")
def test_public_policy_without_tls_rule_is_fixed_in_one_write() -> None:
    bucket = make_bucket(BUCKET)
    put_policy(bucket, policy(public_read(bucket), cloudfront_oac(bucket), Id="Site"))
    before_calls = API_CALLS.snapshot()

    outcomes = of_tls_and_public(handle("PutBucketPolicy", bucket, FAMILY))

    assert [(o["control"], o["status"]) for o in outcomes] == [
        ("public-policy", "remediated"),
        ("secure-transport", "remediated"),
    ]
    expected = policy(cloudfront_oac(bucket), *tls_rules(bucket), Id="Site")
    assert stored_policy(bucket) == expected
    # Both outcomes show the policy as found and as written by the one write.
    assert outcomes[0]["before"] == outcomes[1]["before"]
    assert outcomes[0]["after"] == outcomes[1]["after"]
    assert outcomes[1]["after"]["Policy"] == expected
    assert calls_delta(before_calls) == {
        "s3.GetBucketPolicy": 3,  # read, re-read right before the write, verify
        "s3.GetBucketTagging": 1,
        "s3.GetBucketWebsite": 1,
        "s3.PutBucketPolicy": 1,
    }


@pytest.mark.usefixtures("aws")
def test_only_public_statements_and_tls_rule_off_deletes_the_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODE_SECURE_TRANSPORT", "off")
    bucket = make_bucket(BUCKET)
    put_policy(bucket, policy(public_read(bucket)))
    before_calls = API_CALLS.snapshot()

    outcomes = of_tls_and_public(handle("PutBucketPolicy", bucket, FAMILY))

    assert [(o["control"], o["status"]) for o in outcomes] == [
        ("public-policy", "remediated"),
        ("secure-transport", "ignored"),
    ]
    assert stored_policy(bucket) is None
    delta = calls_delta(before_calls)
    assert delta["s3.DeleteBucketPolicy"] == 1
    assert "s3.PutBucketPolicy" not in delta


@pytest.mark.usefixtures("aws")
def test_only_public_statements_become_the_tls_rules_in_one_write() -> None:
    bucket = make_bucket(BUCKET)
    put_policy(bucket, policy(public_read(bucket)))
    before_calls = API_CALLS.snapshot()

    outcomes = of_tls_and_public(handle("PutBucketPolicy", bucket, FAMILY))

    assert [o["status"] for o in outcomes] == ["remediated", "remediated"]
    assert stored_policy(bucket) == {"Version": "2012-10-17", "Statement": tls_rules(bucket)}
    # Both show the policy as read before and as written after; secure-transport judged what
    # public-policy's fix left (no policy), and says so.
    public_policy, secure_transport = outcomes
    assert public_policy["before"] == secure_transport["before"]
    assert secure_transport["reason"].startswith(
        "after the fix of public-policy: no bucket policy: no Deny of requests without TLS"
    )
    assert not public_policy["reason"].startswith("after")
    delta = calls_delta(before_calls)
    assert delta["s3.PutBucketPolicy"] == 1
    assert "s3.DeleteBucketPolicy" not in delta


@pytest.mark.usefixtures("aws")
def test_public_policy_in_notify_mode_still_gets_the_tls_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODE_PUBLIC_POLICY", "notify")
    bucket = make_bucket(BUCKET)
    put_policy(bucket, policy(public_read(bucket)))

    outcomes = of_tls_and_public(handle("PutBucketPolicy", bucket, FAMILY))

    assert [o["status"] for o in outcomes] == ["noncompliant", "remediated"]
    assert stored_policy(bucket)["Statement"] == [public_read(bucket), *tls_rules(bucket)]


@pytest.mark.usefixtures("aws")
def test_the_three_controls_of_the_policy_make_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """public-policy removes the public statement, cross-account-actions narrows the partner's,
    secure-transport adds the TLS rule: one read, one write, one re-read."""
    monkeypatch.setenv("MODE_CROSS_ACCOUNT_ACTIONS", "remediate")
    monkeypatch.setenv("ACCOUNT_ID", "123456789012")
    bucket = make_bucket(BUCKET)
    put_policy(bucket, policy(public_read(bucket), partner_admin(bucket)))
    before_calls = API_CALLS.snapshot()

    with temporary_environment(other_controls_off(*POLICY_CONTROLS, "cross-account-actions")):
        outcomes = handle("PutBucketPolicy", bucket, FAMILY)

    assert [(o["control"], o["status"]) for o in outcomes] == [
        ("public-policy", "remediated"),
        ("secure-transport", "remediated"),
        ("cross-account-actions", "remediated"),
    ]
    narrowed = {**partner_admin(bucket), "Action": ["s3:GetObject"]}
    assert stored_policy(bucket) == policy(narrowed, *tls_rules(bucket))
    assert calls_delta(before_calls)["s3.PutBucketPolicy"] == 1
    assert calls_delta(before_calls)["s3.GetBucketPolicy"] == 3


# -- any order of events converges --------------------------------------------------------------

# The statements a bucket may carry (PUBLIC, KEPT) and the event sequences are shared with
# tests/test_properties.py: tests/strategies.py.


def expected_statements(kept: list[str], bucket: str) -> list[dict[str, Any]]:
    covered = {COVERS[name] for name in kept if name in COVERS}
    missing = [CANONICAL[rule](bucket) for rule in ("transport", "tls") if rule not in covered]
    return [KEPT[name](bucket) for name in kept] + missing


@settings(max_examples=examples(5, minimum=10))
@given(
    names=st.lists(st.sampled_from([*PUBLIC, *KEPT]), min_size=1, max_size=8, unique=True),
    events=event_sequences(),
)
def test_any_order_of_events_ends_with_the_same_policy(names: list[str], events: list[str]) -> None:
    builders = {**PUBLIC, **KEPT}
    with mock_aws():
        aws.reset_clients()
        bucket = make_bucket(BUCKET)
        put_policy(bucket, policy(*(builders[name](bucket) for name in names)))

        for number, event_name in enumerate(events):
            for outcome in deliver(event_name, bucket, event_id=f"event-{number}"):
                assert outcome["status"] in {"compliant", "remediated"}, outcome

        kept = [name for name in names if name in KEPT]
        assert stored_policy(bucket) == {
            "Version": "2012-10-17",
            "Statement": expected_statements(kept, bucket),
        }
        # Once there, every event finds it right and writes nothing.
        before_calls = API_CALLS.snapshot()
        for event_name in POLICY_EVENTS:
            outcomes = deliver(event_name, bucket, event_id=f"again-{event_name}")
            assert {o["status"] for o in outcomes} == {"compliant"}, outcomes
        assert set(calls_delta(before_calls)) == {"s3.GetBucketPolicy"}
    aws.reset_clients()
