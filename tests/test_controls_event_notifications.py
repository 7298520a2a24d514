"""event-notifications: at least one event notification (FSBP S3.11); detect only."""

from __future__ import annotations

from typing import Any

import pytest

from bucketwarden.controls.event_notifications import EventNotifications
from bucketwarden.settings import Settings
from tests.helpers import ControlCase, detect_only_on, make_bucket, own_client, s3

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture(autouse=True)
def at_default_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controls that only detect are on, at their default mode (conftest turns them off)."""
    detect_only_on(monkeypatch)


def no_notifications(bucket: str) -> None:
    s3().put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})


def notifications(bucket: str) -> dict[str, Any]:
    response = s3().get_bucket_notification_configuration(Bucket=bucket)
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}


CASE = ControlCase(
    control="event-notifications",
    family="data-management",
    event_name="PutBucketNotification",
    write_operation="PutBucketNotificationConfiguration",
    write_actions=("s3:PutBucketNotification",),
    drift=no_notifications,
    read=notifications,
    fixable=False,
    # moto's IAM enforcement lets this read through: the refusal is S3's own AccessDenied.
    denied_by_moto=False,
    read_operation="GetBucketNotificationConfiguration",
    read_actions=("s3:GetBucketNotification",),
)


def test_bucket_without_notifications_is_reported() -> None:
    bucket = CASE.drifted_bucket()

    outcome = CASE.run(bucket, own_default=True)

    assert outcome["status"] == "noncompliant", outcome
    assert outcome["mode"] == "notify"
    assert outcome["reason"].startswith("no event notification (SNS, SQS, Lambda or EventBridge)")
    assert notifications(bucket) == {}


def notify_a_queue(bucket: str) -> None:
    """The bucket's created objects announced to an SQS queue."""
    sqs = own_client("sqs")
    url = sqs.create_queue(QueueName="bucket-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    configuration = {
        "QueueConfigurations": [{"QueueArn": arn["QueueArn"], "Events": ["s3:ObjectCreated:*"]}]
    }
    s3().put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=configuration
    )


def test_a_queue_notification_is_compliant() -> None:
    bucket = make_bucket("announced-bucket")
    notify_a_queue(bucket)

    outcome = CASE.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert outcome["reason"] == "events are notified to 1 SQS queue(s)"


def test_eventbridge_alone_is_compliant() -> None:
    # S3 answers <EventBridgeConfiguration/> when EventBridge is on (botocore: an empty dict);
    # moto leaves it out, so the verdict is checked on the state S3 returns.
    verdict = EventNotifications().evaluate({"EventBridgeConfiguration": {}}, Settings())
    assert verdict.compliant
    assert verdict.reason == "events are notified to EventBridge"


def test_describe() -> None:
    control = EventNotifications()
    assert control.describe({}) == "no notifications"
    state = {"TopicConfigurations": [{}, {}], "EventBridgeConfiguration": {}}
    assert control.describe(state) == "2 SNS topic(s), EventBridge"
