"""functions.FunctionRunner: the template's rules on EventBridge, Lambda's asynchronous invocation.

Each test writes a small template.yaml and handler into tmp_path, deploys it on the moto server and
puts CloudTrail-shaped events on the default bus, as the local endpoint's CloudTrail emulator does.
Handler folders have unique names: routing.load_handler caches modules by folder name.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bucketwarden_tools.local.functions import FunctionRunner, Invocation

REGION = "us-east-1"
DETAIL_TYPE = "AWS API Call via CloudTrail"
WAIT_SECONDS = 15

HANDLER = '''
"""Records every event it is given; refuses the ones named FAIL_ON, as a failing function does."""

EVENTS = []
FAIL_ON = "PutBucketAcl"


def handle(event, context):
    EVENTS.append(event)
    name = event["detail"]["eventName"]
    if name == FAIL_ON:
        raise RuntimeError(f"cannot handle {name}")
    return [{"bucket": event["detail"]["requestParameters"]["bucketName"], "status": "compliant"}]
'''

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  WatcherFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {folder}/
      Handler: app.handle
      Runtime: python3.13
      EventInvokeConfig:
        MaximumRetryAttempts: 1
      Events:
        Drift:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [aws.s3]
              detail-type: ["{detail_type}"]
              detail:
                eventName: [PutBucketVersioning, PutBucketAcl]
                requestParameters:
                  bucketName: [{bucket}]
"""


class Deployed:
    """A FunctionRunner over a fresh template and handler, with what it reported."""

    def __init__(self, endpoint: str, tmp_path: Path) -> None:
        self.endpoint = endpoint
        self.folder = f"fn{uuid.uuid4().hex[:10]}"
        self.bucket = f"bucket-{self.folder}"
        (tmp_path / self.folder).mkdir()
        (tmp_path / self.folder / "app.py").write_text(HANDLER)
        self.template = tmp_path / "template.yaml"
        self.template.write_text(
            TEMPLATE.format(folder=self.folder, bucket=self.bucket, detail_type=DETAIL_TYPE)
        )
        self.invocations: list[Invocation] = []
        self._lock = threading.Lock()
        self._clients = threading.local()
        self.runner = FunctionRunner(self.client, self.template, self._invoked, workers=2)

    def client(self, service: str) -> Any:
        # Clients per thread (sessions are not thread-safe), kept: each new one costs ~0.2 s.
        clients = self._clients.__dict__
        if service not in clients:
            clients[service] = boto3.session.Session().client(
                service,
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return clients[service]

    def _invoked(self, invocation: Invocation) -> None:
        with self._lock:
            self.invocations.append(invocation)

    @property
    def handler_events(self) -> list[dict[str, Any]]:
        """Every event the handler was called with, retries included."""
        return list(sys.modules[f"bucketwarden_function_{self.folder}"].EVENTS)

    def put_event(self, event_name: str, bucket: str | None = None) -> str:
        """A CloudTrail record on the default bus; returns its eventID."""
        event_id = str(uuid.uuid4())
        record = {
            "eventSource": "s3.amazonaws.com",
            "eventName": event_name,
            "eventID": event_id,
            "requestParameters": {"bucketName": bucket or self.bucket},
        }
        answer = self.client("events").put_events(
            Entries=[{"Source": "aws.s3", "DetailType": DETAIL_TYPE, "Detail": json.dumps(record)}]
        )
        assert answer["FailedEntryCount"] == 0, answer
        return event_id

    def wait_for(self, count: int) -> list[Invocation]:
        """Invocations once `count` have ended and the function has nothing left to do."""
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                done = len(self.invocations) >= count
            if done and self.runner.idle():
                return list(self.invocations)
            time.sleep(0.05)
        raise AssertionError(
            f"{len(self.invocations)} of {count} invocations after {WAIT_SECONDS}s"
        )


@pytest.fixture
def deployed(moto_server: str, tmp_path: Path) -> Iterator[Deployed]:
    system = Deployed(moto_server, tmp_path)
    system.runner.deploy()
    system.runner.start()
    yield system
    system.runner.stop()


def _detail_ids(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail"]["eventID"] for event in events]


def test_deploy_creates_queue_dead_letter_queue_and_rule(deployed: Deployed) -> None:
    (function,) = deployed.runner.functions
    name = f"bucketwarden-local-{deployed.folder}"
    sqs, events = deployed.client("sqs"), deployed.client("events")
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == function.queue_url
    assert sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"] == function.dead_letter_url
    rule = events.describe_rule(Name=f"{name}-Drift")
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": [DETAIL_TYPE],
        "detail": {
            "eventName": ["PutBucketVersioning", "PutBucketAcl"],
            "requestParameters": {"bucketName": [deployed.bucket]},
        },
    }
    (target,) = events.list_targets_by_rule(Rule=f"{name}-Drift")["Targets"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=function.queue_url, AttributeNames=["QueueArn"])
    assert target["Arn"] == queue_arn["Attributes"]["QueueArn"]
    assert function.route.max_retry_attempts == 1


def test_matched_events_reach_the_handler_once(deployed: Deployed) -> None:
    ignored_name = deployed.put_event("PutBucketTagging")
    ignored_bucket = deployed.put_event("PutBucketVersioning", bucket="someone-elses-bucket")
    matched = deployed.put_event("PutBucketVersioning")

    (invocation,) = deployed.wait_for(1)

    assert invocation.event["detail"]["eventID"] == matched
    assert (invocation.attempts, invocation.error) == (1, None)
    assert invocation.outcomes == [{"bucket": deployed.bucket, "status": "compliant"}]
    assert invocation.function == "WatcherFunction"
    handled = _detail_ids(deployed.handler_events)
    assert handled == [matched]
    assert ignored_name not in handled
    assert ignored_bucket not in handled


def test_failing_invocation_is_retried_then_dead_lettered(deployed: Deployed) -> None:
    failing = deployed.put_event("PutBucketAcl")

    (invocation,) = deployed.wait_for(1)

    # One attempt and MaximumRetryAttempts (1) retries, as Lambda runs an asynchronous event.
    assert _detail_ids(deployed.handler_events) == [failing, failing]
    assert invocation.attempts == 2
    assert invocation.error == "RuntimeError: cannot handle PutBucketAcl"
    (function,) = deployed.runner.functions
    dead = deployed.client("sqs").receive_message(
        QueueUrl=function.dead_letter_url, MessageAttributeNames=["All"], WaitTimeSeconds=1
    )
    (message,) = dead["Messages"]
    assert json.loads(message["Body"])["detail"]["eventID"] == failing
    attributes = message["MessageAttributes"]
    assert attributes["ErrorMessage"]["StringValue"] == invocation.error
    assert attributes["Attempts"]["StringValue"] == "2"
    assert deployed.runner.idle()


def test_a_failure_does_not_hold_up_other_events(deployed: Deployed) -> None:
    failing = deployed.put_event("PutBucketAcl")
    passing = [deployed.put_event("PutBucketVersioning") for _ in range(3)]

    invocations = deployed.wait_for(4)

    by_event: Callable[[Invocation], str] = lambda i: i.event["detail"]["eventID"]  # noqa: E731
    errors = {by_event(i): i.error for i in invocations}
    assert errors == {failing: "RuntimeError: cannot handle PutBucketAcl"} | dict.fromkeys(passing)
    assert sorted(_detail_ids(deployed.handler_events)) == sorted([failing, failing, *passing])
