"""Notifications: what arrives through SNS, and the email, Chatbot and machine messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bucketwarden import notify
from bucketwarden.outcome import REPORTED, Outcome, Status
from bucketwarden.settings import Settings
from tests.helpers import (
    ACTOR,
    AUTHENTICATED_USERS,
    EVENT_TIME,
    REGION,
    SOURCE_IP,
    create_table,
    handle,
    make_bucket,
    only,
    s3,
    subscribe_inbox,
)

BEFORE = {
    "Owner": {"ID": "c" * 64},
    "Grants": [
        {"Grantee": {"Type": "CanonicalUser", "ID": "c" * 64}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": AUTHENTICATED_USERS}, "Permission": "READ"},
    ],
}
AFTER = {"Owner": BEFORE["Owner"], "Grants": BEFORE["Grants"][:1]}


def outcome(status: Status = Status.REMEDIATED, **fields: Any) -> Outcome:
    values: dict[str, Any] = {
        "bucket": "team-reports",
        "control": "public-acl",
        "status": status,
        "reason": "ACL grants READ to AuthenticatedUsers",
        "before": BEFORE,
        "after": AFTER,
        "event_id": "evt-42",
        "event_name": "PutBucketAcl",
        "event_time": EVENT_TIME,
        "actor": ACTOR,
        "source_ip": SOURCE_IP,
        "region": "eu-west-1",
        "mode": "remediate",
        "fix_time": "2024-05-01T12:00:01+00:00",
        "time_to_remediate_ms": 1234,
        "audit_id": "5f0c6d9e-audit",
    }
    values.update(fields)
    return Outcome(**values)


# -- through SNS, as a subscriber receives it --------------------------------------------------


@pytest.mark.usefixtures("aws")
def test_remediation_arrives_with_subject_attributes_and_machine_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table("bucketwarden-audit", "audit_id"))
    monkeypatch.setenv("AWS_REGION", REGION)  # as Lambda sets it
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("website-assets")
    s3().put_bucket_acl(Bucket=bucket, ACL="authenticated-read")

    result = only(handle("PutBucketAcl", bucket, "public-access", event_id="evt-sns"))

    [envelope] = inbox.receive()
    assert envelope["TopicArn"] == inbox.topic_arn
    assert envelope["Subject"] == f"BucketWarden remediated public-acl on bucket {bucket}"
    attributes = {name: a["Value"] for name, a in envelope["MessageAttributes"].items()}
    assert attributes == {"control": "public-acl", "status": "remediated"}
    machine = json.loads(envelope["Message"])
    # SQS subscribers get the outcome itself, and the command that rolls the fix back.
    rollback = (
        f"bucketwarden rollback {result['audit_id']} --audit-table bucketwarden-audit"
        f" --region {REGION}"
    )
    # The outcome says it is notified: the audit record keeps that (the exempted drift digest).
    assert machine == {**result, "notified": True, "rollback_command": rollback}
    assert machine["audit_id"]
    assert machine["before"]["Grants"] != machine["after"]["Grants"]


# -- the messages ------------------------------------------------------------------------------


def test_message_has_one_text_per_protocol() -> None:
    message = notify.message(outcome(), Settings())
    assert set(message) >= {"default", "email", "sqs", "lambda", "https"}
    rollback = {"rollback_command": "bucketwarden rollback 5f0c6d9e-audit"}
    for protocol in ("default", "sqs", "lambda", "email-json"):
        assert json.loads(message[protocol]) == {**outcome().to_dict(), **rollback}
    # SNS needs every value to be a string.
    assert all(isinstance(text, str) for text in message.values())


def test_email_text_explains_what_who_before_after_and_how_to_exempt_or_undo() -> None:
    text = notify.message(outcome(), Settings())["email"]
    lines = text.splitlines()
    assert lines[0] == "BucketWarden remediated public-acl on bucket team-reports."
    assert "What was wrong: ACL grants READ to AuthenticatedUsers" in lines
    assert "Bucket: team-reports (eu-west-1)" in lines
    changed_by = next(line for line in lines if line.startswith("Changed by: "))
    assert ACTOR in changed_by
    assert SOURCE_IP in changed_by
    assert EVENT_TIME in changed_by
    assert "evt-42" in changed_by
    before_at, after_at = lines.index("Before:"), lines.index("After:")
    assert json.loads("\n".join(lines[before_at + 1 : after_at])) == BEFORE
    after_block = lines[after_at + 1 : lines.index("", after_at)]
    assert json.loads("\n".join(after_block)) == AFTER
    assert "  bucketwarden:exempt = public-acl" in lines
    assert any(line.startswith("  bucketwarden:exempt-reason = ") for line in lines)
    assert any(line.startswith("  bucketwarden:exempt-until = ") for line in lines)
    assert "To undo this fix" in text
    assert "5f0c6d9e-audit" in text
    assert "1234 ms" in text


def test_a_fix_names_the_rollback_command_in_every_form() -> None:
    message = notify.message(outcome(), Settings())
    command = "bucketwarden rollback 5f0c6d9e-audit"

    lines = message["email"].splitlines()
    assert f"  {command}" in lines
    undo_at = next(i for i, line in enumerate(lines) if line.startswith("To undo this fix"))
    assert "5f0c6d9e-audit" in lines[undo_at]
    assert "delete the tags" in lines[undo_at + 2]
    assert json.loads(message["sqs"])["rollback_command"] == command
    chat = json.loads(message["https"])
    assert f"Undo: `{command}`" in chat["content"]["nextSteps"]


def test_the_rollback_command_names_the_region_the_function_runs_in() -> None:
    settings = Settings.from_env((), {"AUDIT_TABLE": "bw-audit", "AWS_REGION": "eu-central-1"})
    message = notify.message(outcome(), settings)
    command = "bucketwarden rollback 5f0c6d9e-audit --audit-table bw-audit --region eu-central-1"
    assert f"  {command}" in message["email"].splitlines()
    assert json.loads(message["sqs"])["rollback_command"] == command
    assert f"Undo: `{command}`" in json.loads(message["https"])["content"]["nextSteps"]


def test_the_rollback_command_names_the_audit_table() -> None:
    settings = Settings(audit_table="prod-bucketwarden-AuditTable-1X2Y3Z")
    message = notify.message(outcome(), settings)
    command = (
        "bucketwarden rollback 5f0c6d9e-audit --audit-table prod-bucketwarden-AuditTable-1X2Y3Z"
    )
    assert f"  {command}" in message["email"].splitlines()
    assert json.loads(message["sqs"])["rollback_command"] == command
    assert f"Undo: `{command}`" in json.loads(message["https"])["content"]["nextSteps"]


@pytest.mark.parametrize("status", [Status.NONCOMPLIANT, Status.EXEMPTED, Status.FAILED])
def test_only_a_fix_offers_a_rollback(status: Status) -> None:
    message = notify.message(outcome(status), Settings())
    assert "rollback_command" not in json.loads(message["sqs"])
    assert "bucketwarden rollback" not in message["email"]
    assert "bucketwarden rollback" not in message["https"]


def test_a_fix_without_an_audit_record_offers_no_rollback_command() -> None:
    message = notify.message(outcome(audit_id=None), Settings())
    assert "rollback_command" not in json.loads(message["sqs"])
    assert "bucketwarden rollback" not in message["email"]
    assert "bucketwarden rollback" not in message["https"]


def test_an_account_fix_says_the_mode_keeps_a_rollback() -> None:
    account = outcome(bucket="123456789012", control="account-public-access-block", scope="account")
    text = notify.email_text(account, Settings())
    assert "  bucketwarden rollback 5f0c6d9e-audit" in text.splitlines()
    assert "Set the control's mode parameter to notify or off first" in text


def test_email_uses_the_configured_tag_key() -> None:
    text = notify.email_text(outcome(), Settings(exempt_tag_key="acme:skip"))
    assert "  acme:skip = public-acl" in text.splitlines()
    assert "  acme:skip-reason = <why it must differ>" in text.splitlines()


def test_undo_is_offered_only_for_a_fix() -> None:
    for status in (Status.NONCOMPLIANT, Status.EXEMPTED, Status.FAILED):
        assert "To undo this fix" not in notify.email_text(outcome(status), Settings())


def test_undo_without_an_audit_record_names_none() -> None:
    text = notify.email_text(outcome(audit_id=None), Settings())
    assert "To undo this fix" in text
    assert "None" not in text


def test_email_shows_an_unknown_actor_plainly() -> None:
    text = notify.email_text(outcome(actor=None, source_ip=None), Settings())
    assert "Changed by: an unknown principal at" in text


def test_chatbot_custom_notification() -> None:
    settings = Settings(exempt_tag_key="acme:skip")
    message = json.loads(notify.message(outcome(), settings)["https"])
    assert message["version"] == "1.0"
    assert message["source"] == "custom"
    content = message["content"]
    assert content["textType"] == "client-markdown"
    assert content["title"].endswith("BucketWarden remediated public-acl on bucket team-reports")
    assert "ACL grants READ to AuthenticatedUsers" in content["description"]
    assert ACTOR in content["description"]
    assert SOURCE_IP in content["description"]
    assert any("acme:skip=public-acl" in step for step in content["nextSteps"])
    assert message["metadata"]["threadId"] == "team-reports/public-acl"
    assert message["metadata"]["relatedResources"] == ["arn:aws:s3:::team-reports"]


@pytest.mark.parametrize(
    ("status", "subject"),
    [
        (Status.REMEDIATED, "BucketWarden remediated public-acl on bucket team-reports"),
        (Status.NONCOMPLIANT, "BucketWarden found public-acl drift on bucket team-reports"),
        (
            Status.EXEMPTED,
            "BucketWarden found exempted public-acl drift on bucket team-reports",
        ),
        (Status.FAILED, "BucketWarden failed to remediate public-acl on bucket team-reports"),
    ],
)
def test_subject_per_status(status: Status, subject: str) -> None:
    assert notify.subject(outcome(status)) == subject
    chat = notify.chatbot_message(outcome(status))
    assert chat["metadata"]["eventType"] == status.value


@given(
    bucket=st.text(min_size=1, max_size=300),
    control=st.sampled_from(["public-acl", "default-encryption", "versioning"]),
    status=st.sampled_from(sorted(REPORTED)),
)
def test_subject_fits_sns(bucket: str, control: str, status: Status) -> None:
    subject = notify.subject(outcome(status, bucket=bucket, control=control))
    assert len(subject) <= notify.SUBJECT_LIMIT
    assert subject.isascii()
    assert subject.startswith("BucketWarden ")
    assert subject.isprintable()  # no line breaks or control characters


def test_longest_bucket_name_subject_is_cut_with_an_ellipsis() -> None:
    bucket = "b" * 63  # the longest name S3 allows
    subject = notify.subject(outcome(Status.EXEMPTED, control="default-encryption", bucket=bucket))
    assert len(subject) == notify.SUBJECT_LIMIT
    assert subject.endswith("...")


def test_account_level_outcome_names_the_account_and_how_to_stop_the_control() -> None:
    account = outcome(bucket="123456789012", control="account-public-access-block", scope="account")
    text = notify.email_text(account, Settings())

    assert notify.subject(account) == (
        "BucketWarden remediated account-public-access-block on account 123456789012"
    )
    assert "Account: 123456789012 (eu-west-1)" in text.splitlines()
    assert "mode parameter" in text
    assert "tag the bucket" not in text
    chatbot = notify.chatbot_message(account)
    assert chatbot["metadata"]["relatedResources"] == ["arn:aws:iam::123456789012:root"]


def test_access_point_outcome_names_the_access_point_and_its_bucket_tags() -> None:
    arn = "arn:aws:s3:eu-west-1:123456789012:accesspoint/reports-ap"
    access_point = outcome(bucket=arn, control="access-point", scope="access-point")
    text = notify.email_text(access_point, Settings())

    assert notify.subject(access_point) == (
        "BucketWarden remediated access-point on access point reports-ap"
    )
    assert "Access point: reports-ap (eu-west-1)" in text.splitlines()
    assert "tag the bucket the access point serves" in text
    assert notify.chatbot_message(access_point)["metadata"]["relatedResources"] == [arn]
