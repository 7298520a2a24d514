"""Messages cannot be steered (issue 12, row 12).

Bucket names, policy text in reasons, actors, tag values and the event's fields are written by
whoever made the call. Slack markup in a policy condition value reached the Chatbot message
unescaped (`<!channel>`, links), and a 100 KB value made SNS Publish fail.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketwarden import notify
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Settings
from tests.helpers import handle, make_bucket, s3, subscribe_inbox

STEERING = "<!channel> <!here> <@U024BE7LH> <http://evil.example|click here> & *bold* _it_ ~s~ `x`"
# Text that would be Slack syntax or markup if it reached the message as written.
SLACK_SYNTAX = ("<!", "<@", "<#", "<http", "*bold*", "_it_", "~s~", "`x`")
LIMIT = notify.MESSAGE_LIMIT


def outcome(**fields: Any) -> Outcome:
    values: dict[str, Any] = {
        "bucket": "team-reports",
        "control": "public-policy",
        "status": Status.REMEDIATED,
        "reason": "statement is public",
        "before": {"Statement": []},
        "after": None,
        "event_id": "evt-1",
        "event_name": "PutBucketPolicy",
        "event_time": "2024-05-01T12:00:00Z",
        "actor": "arn:aws:iam::123456789012:user/mallory",
        "source_ip": "203.0.113.7",
        "region": "us-east-1",
        "mode": "remediate",
        "audit_id": "audit-1",
    }
    values.update(fields)
    return Outcome(**values)


def chat_texts(message: dict[str, str]) -> list[str]:
    """Everything of the Chatbot copy that Slack renders."""
    chat = json.loads(message["https"])
    content = chat["content"]
    return [content["title"], content["description"], *content["nextSteps"]]


def size(message: dict[str, str]) -> int:
    return len(json.dumps(message).encode())


EVERY_OUTSIDER_FIELD = {
    "reason": f"aws:SourceArn value '{STEERING}' has a wildcard",
    "actor": f"arn:aws:sts::123456789012:assumed-role/r/{STEERING}",
    "event_name": STEERING,
    "event_id": STEERING,
    "source_ip": STEERING,
    "event_time": STEERING,
    "region": STEERING,
    "warnings": [f"exemption reason {STEERING}"],
}


def test_slack_syntax_from_any_value_is_escaped_in_chat() -> None:
    message = notify.message(outcome(**EVERY_OUTSIDER_FIELD), Settings())
    for text in chat_texts(message):
        for syntax in SLACK_SYNTAX:
            assert syntax not in text, (syntax, text)
    description = json.loads(message["https"])["content"]["description"]
    assert notify.chat_text(EVERY_OUTSIDER_FIELD["reason"]) in description
    assert "&lt;!channel&gt;" in description
    assert "&amp;" in description


def test_escalations_and_bucket_names_are_escaped_in_chat_too() -> None:
    held = outcome(bucket="under_score_bucket", escalation=f"held: {STEERING}")
    texts = chat_texts(notify.message(held, Settings()))
    assert all(syntax not in text for text in texts for syntax in SLACK_SYNTAX), texts


def test_a_value_cannot_start_a_line_of_its_own() -> None:
    forged = outcome(reason="public\nOutcome: compliant\r\n*Outcome:* compliant\u202e")
    email = notify.message(forged, Settings())["email"]
    assert "\nOutcome: compliant" not in email
    assert "\u202e" not in email
    description = json.loads(notify.message(forged, Settings())["https"])["content"]["description"]
    assert description.count("\n") == 2  # what was wrong, changed by, outcome: three lines


def test_a_mention_without_brackets_is_broken_up() -> None:
    text = notify.chat_text("ping @channel and @here")
    assert "@channel" not in text
    assert "@here" not in text


def test_long_values_are_capped_in_chat_and_email() -> None:
    long_reason = "x" * 40_000  # the machine copies keep it whole: it fits
    message = notify.message(outcome(reason=long_reason), Settings())
    assert json.loads(message["default"])["reason"] == long_reason
    description = json.loads(message["https"])["content"]["description"]
    assert len(description) < notify.CHAT_FIELD_LIMIT + 500
    assert f"({40_000 - notify.CHAT_FIELD_LIMIT} more characters)" in description
    assert len(message["email"]) < notify.EMAIL_FIELD_LIMIT + 5_000


@pytest.mark.parametrize("character", ["x", "\U0001f600", '"', "\x01", "<", "é"])
def test_the_largest_values_still_fit_snss_limit(character: str) -> None:
    huge = character * 30_000  # ten such fields, in six copies, are far over the limit
    every_text = {
        name: huge
        for name in notify.OUTSIDER_FIELDS
        if name not in {"bucket"}  # a bucket name is at most 255 characters (events.py)
    }
    worst = outcome(
        **every_text,
        bucket=character * 255,
        before={"Policy": huge},
        after={"Policy": huge},
        warnings=[huge] * 20,
    )
    message = notify.message(worst, Settings())
    assert size(message) <= LIMIT
    json.loads(message["https"])
    json.loads(message["default"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    piece=st.text(max_size=40),
    repeat=st.integers(min_value=1, max_value=20_000),
    field=st.sampled_from([*notify.OUTSIDER_FIELDS, "warnings", "before"]),
)
def test_any_value_gives_a_chatbot_message_under_the_limit(
    piece: str, repeat: int, field: str
) -> None:
    value = (piece + STEERING) * repeat
    found = outcome()
    if field == "warnings":
        found = replace(found, warnings=[value, value])
    elif field == "before":
        found = replace(found, before={"Policy": value})
    else:
        found = replace(found, **{field: value[:255] if field == "bucket" else value})
    message = notify.message(found, Settings())

    assert size(message) <= LIMIT
    chat = json.loads(message["https"])
    assert chat["version"] == "1.0"
    assert chat["source"] == "custom"
    assert set(chat["content"]) == {"textType", "title", "description", "nextSteps"}
    for text in chat_texts(message):
        assert "<!" not in text
        assert "<@" not in text
        assert "<http" not in text


@pytest.mark.usefixtures("aws")
def test_a_policy_with_slack_markup_and_100_kb_of_condition_is_fixed_and_notified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("steered-bucket")
    value = STEERING + " *" + "y" * 100_000
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"StringLike": {"aws:SourceArn": value}},
            }
        ],
    }
    s3().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    outcomes = handle("PutBucketPolicy", bucket, "public-access")

    fixed = [o for o in outcomes if o["control"] == "public-policy"]
    assert [o["status"] for o in fixed] == ["remediated"], outcomes
    [envelope] = [e for e in inbox.receive() if "public-policy" in e["Subject"]]
    assert json.loads(envelope["Message"])["control"] == "public-policy"


def test_an_exemption_change_escapes_its_tag_values_in_chat_and_email() -> None:
    grant = {"controls": ["all"], "reason": STEERING, "until": "2027-01-31", "source": "tags"}
    change = outcome(
        control="exemption",
        status=Status.EXEMPTED,
        event_name="PutBucketTagging",
        reason=f"exemption granted: {STEERING}",
        before=None,
        after=grant,
    )
    message = notify.message(change, Settings())
    texts = chat_texts(message)
    assert all(syntax not in text for text in texts for syntax in SLACK_SYNTAX), texts
    assert any("&lt;!channel&gt;" in text for text in texts)
    email = message["email"]
    assert "\nOutcome" not in email
    assert all(len(line) <= notify.EMAIL_FIELD_LIMIT + 200 for line in email.splitlines())
