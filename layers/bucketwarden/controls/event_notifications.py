"""event-notifications: the bucket announces its object events somewhere (FSBP S3.11).

At least one notification to an SNS topic, an SQS queue, a Lambda function, or EventBridge
turned on. Detect only: what should hear of a bucket's events is for its owners to choose.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bucketwarden.controls.base import Evaluation, State, without_metadata
from bucketwarden.controls.detect_only import DetectOnly
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# Where S3 sends notifications, as its configuration names each kind.
DESTINATIONS = {
    "TopicConfigurations": "SNS topic",
    "QueueConfigurations": "SQS queue",
    "LambdaFunctionConfigurations": "Lambda function",
}
EVENTBRIDGE = "EventBridgeConfiguration"


def destinations(state: State) -> list[str]:
    """What the bucket notifies, e.g. ["2 SQS queue(s)", "EventBridge"]."""
    found = [
        f"{len(state[key])} {name}(s)"
        for key, name in DESTINATIONS.items()
        if state and state.get(key)
    ]
    # S3 answers an empty EventBridgeConfiguration element when EventBridge is on.
    if state and EVENTBRIDGE in state:
        found.append("EventBridge")
    return found


class EventNotifications(DetectOnly["S3Client"]):
    id = "event-notifications"
    fsbp = ("S3.11",)
    severity = "MEDIUM"
    family = "data-management"
    title = "Bucket event notifications are configured"
    surface = "notification configuration"
    trigger_events = ("PutBucketNotification",)
    read_actions = ("s3:GetBucketNotification",)

    def read(self, s3: S3Client, bucket: str) -> State:
        return without_metadata(s3.get_bucket_notification_configuration(Bucket=bucket))

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        found = destinations(state)
        if found:
            return Evaluation(True, f"events are notified to {', '.join(found)}")
        reason = (
            "no event notification (SNS, SQS, Lambda or EventBridge): nobody hears of objects "
            "created or deleted in this bucket"
        )
        return Evaluation(False, reason, fixable=False)

    def describe(self, state: State) -> str:
        return ", ".join(destinations(state)) or "no notifications"
