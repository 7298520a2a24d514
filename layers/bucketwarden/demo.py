"""`bucketwarden demo`: buckets drift on an in-process AWS emulator (moto) and get fixed.

A person's S3 calls are recorded as the CloudTrail events S3 would log, delivered through the
rules of template.yaml to the same handlers as in Lambda; notifications are read back from an
SQS queue subscribed to the topic, as a mail or chat integration would receive them.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.table import Table

from bucketwarden import stack
from bucketwarden.aws import client, reset_clients
from bucketwarden.delivery import deliver
from bucketwarden.report import STATUS_STYLES, change, write_json_lines
from bucketwarden.trail import TrailRecorder

ACTOR = "arn:aws:sts::123456789012:assumed-role/PlatformEngineer/alice"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"

Step = Callable[[Any, str], Any]


@dataclass
class Scenario:
    title: str
    bucket: str
    drift: Step
    prepare: Step | None = None  # unrecorded set-up: the bucket's state before the drift
    environment: dict[str, str] = field(default_factory=dict)
    deliver_twice: bool = False


def _open_acl_keeping_log_delivery(s3: Any, bucket: str) -> None:
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    grants = [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "WRITE"},
        {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "READ_ACP"},
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"},
    ]
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": owner, "Grants": grants})


def _baseline(s3: Any, bucket: str) -> None:
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _exempt_public_acl(s3: Any, bucket: str) -> None:
    tags = [
        {"Key": "bucketwarden:exempt", "Value": "public-acl"},
        {"Key": "bucketwarden:exempt-reason", "Value": "public website assets"},
        {"Key": "bucketwarden:exempt-until", "Value": "2099-12-31"},
    ]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})


def _suspend(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


SCENARIOS = (
    Scenario(
        "new bucket without encryption or versioning",
        "demo-new-bucket",
        lambda s3, b: s3.create_bucket(Bucket=b),
    ),
    Scenario(
        "ACL opened to everyone (log delivery must stay)",
        "demo-public-acl",
        _open_acl_keeping_log_delivery,
        prepare=_baseline,
    ),
    Scenario(
        "ACL opened to any AWS account",
        "demo-authenticated-acl",
        lambda s3, b: s3.put_bucket_acl(
            Bucket=b,
            GrantRead=f"uri={AUTHENTICATED_USERS}",
            GrantFullControl=f"id={s3.get_bucket_acl(Bucket=b)['Owner']['ID']}",
        ),
        prepare=_baseline,
    ),
    Scenario(
        "default encryption deleted",
        "demo-encryption",
        lambda s3, b: s3.delete_bucket_encryption(Bucket=b),
        prepare=_baseline,
    ),
    Scenario("versioning suspended", "demo-versioning", _suspend, prepare=_baseline),
    Scenario(
        "exempted bucket made public",
        "demo-exempt-website",
        lambda s3, b: s3.put_bucket_acl(Bucket=b, ACL="public-read"),
        prepare=lambda s3, b: (_baseline(s3, b), _exempt_public_acl(s3, b)),
    ),
    Scenario(
        "versioning suspended, control in notify mode",
        "demo-notify-only",
        _suspend,
        prepare=_baseline,
        environment={"MODE_VERSIONING": "notify"},
    ),
    Scenario(
        "same CloudTrail event delivered twice",
        "demo-duplicate",
        _suspend,
        prepare=_baseline,
        deliver_twice=True,
    ),
)


@contextmanager
def _environment(values: dict[str, str]) -> Any:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _subscribe_queue(topic_arn: str) -> str:
    sqs = client("sqs")
    queue_url = sqs.create_queue(QueueName="bucketwarden-demo-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"]
    )
    return queue_url


def _received_subjects(queue_url: str) -> dict[str, str]:
    """Subjects of the notifications that reached the queue, by audit id."""
    sqs = client("sqs")
    subjects: dict[str, str] = {}
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        messages = batch.get("Messages", [])
        if not messages:
            return subjects
        for message in messages:
            envelope = json.loads(message["Body"])
            audit_id = json.loads(envelope["Message"]).get("audit_id")
            subjects[str(audit_id)] = envelope.get("Subject", "")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _play(scenario: Scenario, user_s3: Any, recorder: TrailRecorder, template: Path) -> list[dict]:
    if scenario.prepare:
        scenario.prepare(user_s3, scenario.bucket)
    recorder.drain()  # the set-up is the bucket's past, not the drift
    scenario.drift(user_s3, scenario.bucket)
    outcomes = []
    with _environment(scenario.environment):
        for record in recorder.drain():
            deliveries = 2 if scenario.deliver_twice else 1
            for _ in range(deliveries):
                outcomes += [{**o, "scenario": scenario.title} for o in deliver(record, template)]
    return outcomes


def _run_scenarios(template: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    resources = stack.prepare(create_missing=True)
    os.environ.update(resources.environment())
    queue_url = _subscribe_queue(str(resources.topic_arn))
    user_s3 = client("s3")
    for scenario in SCENARIOS[1:]:
        user_s3.create_bucket(Bucket=scenario.bucket)
    recorder = TrailRecorder(ACTOR)
    # The person's own client, recorded; the service's clients are not.
    person = recorder.attach(boto3.session.Session().client("s3", region_name="us-east-1"))
    outcomes: list[dict[str, Any]] = []
    for scenario in SCENARIOS:
        outcomes += _play(scenario, person, recorder, template)
    return outcomes, _received_subjects(queue_url)


def _table(outcomes: list[dict[str, Any]], subjects: dict[str, str]) -> Table:
    table = Table(title="BucketWarden demo: drift → outcome → notification", show_lines=True)
    for column in ("drift", "event", "control", "outcome", "before → after", "notification"):
        table.add_column(column, overflow="fold")
    for outcome in outcomes:
        status = str(outcome["status"])
        table.add_row(
            f"{outcome['scenario']}\n[dim]{outcome.get('bucket')}[/]",
            str(outcome.get("event_name") or "-"),
            str(outcome.get("control") or "-"),
            f"[{STATUS_STYLES.get(status, '')}]{status}[/]\n[dim]{outcome.get('reason', '')}[/]",
            change(outcome),
            subjects.get(str(outcome.get("audit_id")), "-") if outcome.get("notified") else "-",
        )
    return table


def run_demo(console: Console, as_json: bool = False, template: Path | None = None) -> int:
    from moto import mock_aws

    from bucketwarden.routing import DEFAULT_TEMPLATE

    saved = {name: os.environ.get(name) for name in ("AWS_ENDPOINT_URL",)}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    defaults = {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with _environment(defaults), mock_aws():
        reset_clients()
        try:
            outcomes, subjects = _run_scenarios(template or DEFAULT_TEMPLATE)
        finally:
            reset_clients()
    os.environ.update({k: v for k, v in saved.items() if v})
    if as_json:
        write_json_lines(outcomes, sys.stdout)
        return 0
    console.print(_table(outcomes, subjects))
    counts = Counter(str(o["status"]) for o in outcomes)
    summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
    console.print(f"{len(SCENARIOS)} drifts, {len(outcomes)} outcomes: {summary}")
    console.print(f"{len(subjects)} notifications reached the subscribed queue.")
    return 0
