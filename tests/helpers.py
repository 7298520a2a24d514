"""Helpers for the engine and control tests: CloudTrail records, moto resources, failure injection.

Everything here runs inside moto (`aws` fixture). Failures are real AWS-shaped failures: IAM
enforcement by moto for AccessDenied, and HTTP error responses injected below botocore's retry
logic for throttling and 5xx, so the code under test sees exactly what it would see from S3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core import enable_iam_authentication
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws, services
from bucketwarden.audit import AuditStore
from bucketwarden.catalogue import CONTROLS, controls_of
from bucketwarden.controls.base import Control
from bucketwarden.handler import process
from bucketwarden.integrity import FORGED
from bucketwarden.metrics import Metrics
from bucketwarden.notify import SUBJECT_LIMIT
from bucketwarden.settings import Settings, mode_variable
from bucketwarden.sweep import Sweep
from bucketwarden_tools.calls import API_CALLS, uncounted
from bucketwarden_tools.environment import temporary_environment
from bucketwarden_tools.stack import DEFAULT_MAC_KEY, create_table_like, find_mac_key

REGION = "us-east-1"
ACCOUNT = "123456789012"
ACTOR = "arn:aws:iam::123456789012:user/mallory"
SOURCE_IP = "203.0.113.7"
EVENT_TIME = "2024-05-01T12:00:00Z"
SERVICE_ROLE = "arn:aws:iam::123456789012:role/bucketwarden-public-access"
# Lambda names a function's role session after the function.
SERVICE_FUNCTION = "bucketwarden-public-access"

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
OTHER_ACCOUNT_ID = "b" * 64  # a cross-account canonical user id


# -- the production pieces ---------------------------------------------------------------------


def audit_store(
    settings: Settings,
    table: str | None = None,
    dynamodb: Any = None,
    metrics: Metrics | None = None,
) -> AuditStore:
    """The audit store the functions build (of `table` when named, else the settings')."""
    if table is not None:
        settings = replace(settings, audit_table=table)
    return services.audit_store(settings, metrics or Metrics(), dynamodb)


def sweeper(settings: Settings, controls: tuple[Control, ...] = CONTROLS, **options: Any) -> Sweep:
    """A sweep with the reporter and store the sweep function builds for `settings`."""
    metrics = Metrics()
    store = services.audit_store(settings, metrics)
    reporter = services.reporter(settings, store, metrics, sweep=True)
    return Sweep(settings, controls, reporter=reporter, store=store, **options)


# -- CloudTrail records ------------------------------------------------------------------------


def cloudtrail_record(
    event_name: str,
    bucket: str | None,
    *,
    event_id: str = "11111111-2222-3333-4444-555555555555",
    error_code: str | None = None,
    issuer_arn: str | None = None,
    session_name: str = "s",
    region: str = REGION,
    request_parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A CloudTrail record of a successful S3 call by an IAM user (or an assumed role's session).

    `request_parameters` replaces the bucket call's {"bucketName", "Host"}: S3 Control calls
    (account, access point) name no bucket.
    """
    identity: dict[str, Any] = {
        "type": "IAMUser",
        "arn": ACTOR,
        "accountId": ACCOUNT,
        "principalId": "AIDAEXAMPLE",
    }
    if issuer_arn:
        identity = {
            "type": "AssumedRole",
            "arn": (
                f"arn:aws:sts::{ACCOUNT}:assumed-role/{issuer_arn.rsplit('/', 1)[-1]}/"
                f"{session_name}"
            ),
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": issuer_arn}},
        }
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": EVENT_TIME,
        "eventSource": "s3.amazonaws.com",
        "eventName": event_name,
        "awsRegion": region,
        "sourceIPAddress": SOURCE_IP,
        "userAgent": "aws-cli/2.15.0",
        "requestParameters": (
            bucket_request_parameters(bucket) if request_parameters is None else request_parameters
        ),
        "responseElements": None,
        "eventID": event_id,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = "Access Denied"
    return record


def bucket_request_parameters(bucket: str | None) -> dict[str, Any]:
    return {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}


def s3_control_host(account: str = ACCOUNT, region: str = REGION) -> str:
    """The host S3 Control calls go to (and CloudTrail logs): the account id comes first."""
    return f"{account}.s3-control.{region}.amazonaws.com"


def eventbridge_event(record: dict[str, Any]) -> dict[str, Any]:
    """The envelope EventBridge puts around a CloudTrail record (built by hand, not by our code)."""
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": record["eventTime"],
        "region": record["awsRegion"],
        "resources": [],
        "detail": record,
    }


def handle(event_name: str, bucket: str | None, family: str, **record: Any) -> list[dict[str, Any]]:
    """Deliver one CloudTrail record to a family's handler code; returns its outcomes."""
    return process(eventbridge_event(cloudtrail_record(event_name, bucket, **record)), family)


def only(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """The one outcome, beside those of the detect-only controls that tests/conftest.py
    switches off."""
    ran = acting(outcomes)
    assert len(ran) == 1, outcomes
    return ran[0]


def acting(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outcomes but those of detect-only controls switched off (ignored, saying so)."""
    detecting = {c.id for c in CONTROLS if not c.fixable}
    return [
        o
        for o in outcomes
        if o["control"] not in detecting or o["reason"] != f"{o['control']} is off"
    ]


# -- moto resources ----------------------------------------------------------------------------


@cache
def own_client(service: str) -> Any:
    """The tests' own client (not the engine's, so not counted); made once, as making one costs
    ~0.1 s."""
    made = aws.new_client(
        service, aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return uncounted(made)


def s3() -> Any:
    return own_client("s3")


def s3control() -> Any:
    """The tests' S3 Control client (able to reach a moto server too)."""
    return own_client("s3control")


def make_bucket(name: str) -> str:
    s3().create_bucket(Bucket=name)
    return name


def delete_bucket(name: str) -> None:
    s3().delete_bucket(Bucket=name)


def same_name(bucket: str) -> str:
    return bucket


def tag_bucket(bucket: str, tags: dict[str, str]) -> None:
    tag_set = [{"Key": key, "Value": value} for key, value in tags.items()]
    s3().put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})


# The stack's tables by their hash key: tests create them as template.yaml defines them.
_TABLES_BY_KEY = {"audit_id": "AuditTable", "id": "IdempotencyTable"}


def create_table(name: str, key: str) -> str:
    """The table as template.yaml defines it; the audit table comes with its HMAC key."""
    create_table_like(own_client("dynamodb"), name, _TABLES_BY_KEY[key])
    if key == "audit_id":
        find_mac_key(DEFAULT_MAC_KEY, create=True, notes=[])
    return name


def audit_items(table: str) -> list[dict[str, Any]]:
    """Every audit item, with before/after decoded from their JSON text."""
    dynamodb = own_client("dynamodb")
    items = dynamodb.scan(TableName=table)["Items"]
    decoded = []
    for item in items:
        # Every attribute is a string but `flapping` (a boolean).
        plain = {name: next(iter(value.values())) for name, value in item.items()}
        if plain.get("status") == FORGED:
            continue  # the marker of an untrusted record (see integrity.py)
        plain["before"] = json.loads(plain["before"])
        plain["after"] = json.loads(plain["after"])
        decoded.append(plain)
    return decoded


@dataclass
class Inbox:
    """An SQS queue subscribed to the notification topic."""

    topic_arn: str
    queue_url: str

    def receive(self) -> list[dict[str, Any]]:
        """The SNS envelopes delivered so far (Subject, Message, MessageAttributes)."""
        sqs = own_client("sqs")
        envelopes: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = batch.get("Messages", [])
            if not messages:
                return envelopes
            for message in messages:
                envelopes.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


def subscribe_inbox(monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """A topic with an SQS subscriber, set as NOTIFICATION_TOPIC_ARN."""
    sns = own_client("sns")
    sqs = own_client("sqs")
    topic_arn = sns.create_topic(Name="bucketwarden-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="bucketwarden-inbox")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=attributes["Attributes"]["QueueArn"])
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", topic_arn)
    return Inbox(topic_arn, queue_url)


# -- metrics -----------------------------------------------------------------------------------


def emitted_metrics(stdout: str) -> list[tuple[str, str, float]]:
    """(metric name, Control dimension, value) of every EMF line Powertools printed."""
    found = []
    for line in stdout.splitlines():
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                for value in blob[metric["Name"]]:
                    found.append((metric["Name"], blob.get("Control"), value))
    return found


def metric_names(stdout: str, control: str) -> list[str]:
    return [name for name, dimension, _ in emitted_metrics(stdout) if dimension == control]


# -- failures ----------------------------------------------------------------------------------


@contextmanager
def denied(monkeypatch: pytest.MonkeyPatch, *actions: str, resource: str = "*") -> Iterator[None]:
    """Run the engine as an IAM user that may do all but `actions` (on `resource`), with moto
    enforcing IAM.

    moto answers the denied call with a real AccessDenied error response.
    """
    iam = own_client("iam")
    iam.create_user(UserName="bucketwarden-restricted")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": list(actions), "Resource": resource},
        ],
    }
    iam.put_user_policy(
        UserName="bucketwarden-restricted",
        PolicyName="all-but-one",
        PolicyDocument=json.dumps(policy),
    )
    key = iam.create_access_key(UserName="bucketwarden-restricted")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    aws.reset_clients()
    with enable_iam_authentication():
        yield


class ErrorResponses:
    """A botocore `before-send` hook that answers the first `times` requests with an HTTP error.

    It is registered first on the engine's cached client, so it stands in for S3's answer below
    botocore's retry logic: what follows (parsing, retries, the error raised) is botocore's own.
    botocore still offers the request to moto's own `before-send` hook, so a refused request is
    pointed at a host moto does not serve: like a throttled request in S3, it changes nothing.
    """

    def __init__(self, status: int, code: str, times: int, *, query_protocol: bool = False) -> None:
        self.status = status
        self.code = code
        self.times = times
        self.sent = 0
        # Query-protocol services (STS, IAM) wrap the error in an ErrorResponse element.
        self.query_protocol = query_protocol

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        self.sent += 1
        if self.sent > self.times:
            return None
        request.url = "https://refused.invalid/"
        error = f"<Error><Code>{self.code}</Code><Message>injected</Message></Error>"
        if self.query_protocol:
            error = f"<ErrorResponse>{error}</ErrorResponse>"
        body = ('<?xml version="1.0" encoding="UTF-8"?>' + error).encode()
        return AWSResponse(request.url, self.status, {}, MockRawResponse(body))

    def install(
        self, operation: str, service: str = "s3", region: str | None = REGION
    ) -> ErrorResponses:
        """Answer `operation` (e.g. "PutBucketAcl") of the engine's client for `service`."""
        made = aws.client(service, region)
        # Event names use the service id ("s3-control"), not the client name ("s3control").
        prefix = made.meta.service_model.service_id.hyphenize()
        made.meta.events.register_first(f"before-send.{prefix}.{operation}", self)
        return self


class AssumeRoleRequests:
    """The AssumeRole requests an STS client sent (a `provide-client-params` hook on it)."""

    def __init__(self, sts: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        sts.meta.events.register("provide-client-params.sts.AssumeRole", self)

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        self.sent.append(dict(params))


def calls_delta(before: Mapping[str, int]) -> dict[str, int]:
    """API calls made through the engine's clients since `before` (an `API_CALLS.snapshot()`)."""
    return API_CALLS.since(before)


# -- the checks every control's tests run ------------------------------------------------------

# How a notification headline names a subject, by scope (bucket name, account id, access point
# name: an access point's subject is its ARN).
HEADLINE_NOUNS = {"bucket": "bucket", "account": "account", "access-point": "access point"}


@dataclass(frozen=True)
class ControlCase:
    """How to make one control's surface drift and read it back, for the shared checks below.

    The subject is what the control acts on and the outcome's `bucket` field holds: a bucket
    name (the defaults), an account id or an access point ARN. `create` makes it from a name,
    `request_parameters` is what CloudTrail logs for the event on it, `remove` deletes it (None
    when it cannot go away, as an account) and `tagged_bucket` names the bucket whose tags can
    exempt it (None when no tag can, as for the account).
    """

    control: str  # e.g. "public-acl"
    family: str
    event_name: str  # an event of the family that triggers the control
    write_operation: str  # the API operation of the fix, e.g. "PutBucketAcl"
    write_actions: tuple[str, ...]  # IAM actions to deny so that the write fails
    drift: Any  # Callable[[str], None]: makes the subject's surface wrong
    read: Any  # Callable[[str], Any]: the surface as the test reads it from moto
    service: str = "s3"  # the engine's client for the control ("s3control" for S3 Control)
    scope: str = "bucket"
    create: Any = make_bucket  # Callable[[str], str]: name → subject
    request_parameters: Any = bucket_request_parameters  # Callable[[str], dict]
    remove: Any = delete_bucket  # Callable[[str], None] | None
    tagged_bucket: Any = same_name  # Callable[[str], str] | None
    # False where moto's IAM enforcement answers in a shape botocore cannot read: for S3 Control
    # it sends a query-style <ErrorResponse><Errors><Error>, parsed as an error without a code.
    # The access-denied check then answers the write with S3's own AccessDenied instead.
    denied_by_moto: bool = True
    # The region of the engine's client for the control (S3 Control in us-west-2 for
    # Multi-Region Access Points).
    region: str = REGION
    # Settings without which the control finds no drift (a log target, a retention baseline):
    # set around every run.
    environment: Mapping[str, str] = field(default_factory=dict)
    # False for a detect-only control (its drift is reported, never written): the checks then
    # expect "noncompliant" where a fix would be made, and make its read (`read_operation`,
    # refused by denying `read_actions` where moto enforces them) fail where they would make
    # the write fail.
    fixable: bool = True
    read_operation: str = ""
    read_actions: tuple[str, ...] = ()

    @property
    def mode_variable(self) -> str:
        return "MODE_" + self.control.upper().replace("-", "_")

    @property
    def failing_operation(self) -> str:
        """The call the failure paths refuse: the fix, or the read of a control that only
        reports."""
        return self.write_operation if self.fixable else self.read_operation

    @property
    def failing_actions(self) -> tuple[str, ...]:
        return self.write_actions if self.fixable else self.read_actions

    @property
    def drift_status(self) -> str:
        """The status of a drift that nothing holds back (remediate mode): fixed, or reported."""
        return "remediated" if self.fixable else "noncompliant"

    @property
    def write_call(self) -> str:
        """The fix as API_CALLS counts it, e.g. "s3.PutBucketAcl"."""
        return f"{self.service}.{self.write_operation}"

    def drifted(self, name: str = "drifted-bucket") -> str:
        """Make a subject from `name` and make its surface drift; returns the subject."""
        subject = self.create(name)
        self.drift(subject)
        return subject

    def drifted_bucket(self, name: str = "drifted-bucket") -> str:
        """`drifted`, under the name the bucket controls' tests use."""
        return self.drifted(name)

    def headline_subject(self, subject: str) -> str:
        name = subject.rsplit("/", 1)[-1] if self.scope == "access-point" else subject
        return f"{HEADLINE_NOUNS[self.scope]} {name}"

    def run(self, subject: str, *, own_default: bool = False, **record: Any) -> dict[str, Any]:
        """The control's outcome for its event, the family's other controls switched off; in
        remediate mode unless a test set another, or, with `own_default`, in the mode the
        control takes when none is configured."""
        others = [
            c.id
            for c in controls_of(self.family)
            if c.id != self.control and self.event_name in c.trigger_events
        ]
        record.setdefault("request_parameters", self.request_parameters(subject))
        bucket = subject if self.scope == "bucket" else None
        switched_off = {mode_variable(other): "off" for other in others}
        # Remediate mode unless a test set another: a control may default to notify.
        mode = (
            {}
            if own_default
            else {self.mode_variable: os.environ.get(self.mode_variable, "remediate")}
        )
        with temporary_environment({**self.environment, **switched_off, **mode}):
            outcomes = handle(self.event_name, bucket, self.family, **record)
        mine = [o for o in outcomes if o["control"] == self.control]
        assert len(mine) == 1, outcomes
        return mine[0]


def _tag_exemption(case: ControlCase, subject: str, tags: dict[str, str]) -> None:
    assert case.tagged_bucket is not None, f"no tag can exempt a {case.scope}"
    tag_bucket(case.tagged_bucket(subject), tags)


def check_exempted(case: ControlCase, tags: dict[str, str]) -> dict[str, Any]:
    """An honoured exemption: status exempted, the surface untouched, no write made."""
    subject = case.drifted()
    _tag_exemption(case, subject, tags)
    drifted = case.read(subject)
    before = API_CALLS.snapshot()
    outcome = case.run(subject)
    assert outcome["status"] == "exempted", outcome
    assert case.read(subject) == drifted
    assert case.write_call not in calls_delta(before)
    return outcome


def check_fixed_once(case: ControlCase) -> None:
    """After the fix, a second event on the same subject finds it compliant and writes nothing.
    A control that only reports finds the drift each time, in remediate mode too."""
    if not case.fixable:
        check_reported_not_fixed(case)
        return
    subject = case.drifted()
    assert case.run(subject)["status"] == "remediated"
    before = API_CALLS.snapshot()
    assert case.run(subject, event_id="second-event")["status"] == "compliant"
    assert case.write_call not in calls_delta(before)


def check_reported_not_fixed(case: ControlCase) -> None:
    """A control that only reports, in remediate mode: noncompliant twice, nothing written."""
    subject = case.drifted()
    drifted = case.read(subject)
    before = API_CALLS.snapshot()
    with temporary_environment({case.mode_variable: "remediate"}):
        first = case.run(subject)
        second = case.run(subject, event_id="second-event")
    assert [first["status"], second["status"]] == ["noncompliant", "noncompliant"], first
    assert first["mode"] == "remediate"
    assert first["before"] == first["after"]
    assert case.read(subject) == drifted
    assert case.write_call not in calls_delta(before)


def check_exemption_not_honoured(case: ControlCase, tags: dict[str, str], note: str) -> None:
    """An exemption without a reason, or expired, does not stop the fix (or the finding); the
    outcome says why."""
    subject = case.drifted()
    _tag_exemption(case, subject, tags)
    drifted = case.read(subject)
    outcome = case.run(subject)
    assert outcome["status"] == case.drift_status, outcome
    assert (case.read(subject) != drifted) is case.fixable
    assert any(note in warning for warning in outcome["warnings"]), outcome["warnings"]


def check_notify_mode(case: ControlCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(case.mode_variable, "notify")
    subject = case.drifted()
    drifted = case.read(subject)
    before = API_CALLS.snapshot()
    outcome = case.run(subject)
    assert outcome["status"] == "noncompliant", outcome
    assert outcome["mode"] == "notify"
    assert outcome["before"] == outcome["after"]
    assert case.read(subject) == drifted
    assert case.write_call not in calls_delta(before)


def check_off_mode(case: ControlCase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(case.mode_variable, "off")
    subject = case.drifted()
    before = API_CALLS.snapshot()
    outcome = case.run(subject)
    assert outcome["status"] == "ignored", outcome
    assert calls_delta(before) == {}


def check_bucket_gone(case: ControlCase) -> None:
    """The subject (bucket, access point) was deleted after the event: skipped, nothing raised."""
    assert case.remove is not None, f"a {case.scope} cannot be deleted"
    subject = case.drifted("short-lived-bucket")
    case.remove(subject)
    outcome = case.run(subject)
    assert outcome["status"] == "skipped", outcome
    assert "no longer exists" in outcome["reason"]


@contextmanager
def write_denied(case: ControlCase, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The case's fix (or a detect-only control's read) refused with AccessDenied: by moto
    enforcing IAM, or as S3 answers it."""
    if case.denied_by_moto and case.failing_actions:
        with denied(monkeypatch, *case.failing_actions):
            yield
        return
    refusal = ErrorResponses(403, "AccessDenied", times=1000)
    refusal.install(case.failing_operation, case.service, case.region)
    yield
    assert refusal.sent == 1  # AccessDenied is not retried


def detect_only_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Controls that only detect at their default mode (tests/conftest.py turns them off)."""
    for found in CONTROLS:
        if not found.fixable:
            monkeypatch.delenv(mode_variable(found.id), raising=False)


def check_access_denied(
    case: ControlCase, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The role may not write (a reporting control: may not read): failed, notified,
    RemediationFailures counted, surface untouched."""
    inbox = subscribe_inbox(monkeypatch)
    subject = case.drifted()
    drifted = case.read(subject)
    capsys.readouterr()
    with write_denied(case, monkeypatch):
        outcome = case.run(subject)
    assert outcome["status"] == "failed", outcome
    if case.fixable:
        # The reason says what was wrong, then why it was not fixed; before shows what was read.
        assert f"; not fixed: AccessDenied on {case.write_operation}" in outcome["reason"]
        assert outcome["before"] == drifted
    else:
        # Nothing could be read, so nothing is judged: the reason says which read was refused.
        assert outcome["reason"].startswith(f"AccessDenied on {case.read_operation}: ")
        assert outcome["before"] is None
    assert outcome["notified"] is True
    assert case.read(subject) == drifted
    [envelope] = inbox.receive()
    named = case.headline_subject(subject)
    headline = f"BucketWarden failed to remediate {case.control} on {named}"
    # SNS takes 100 characters of subject: a long control id's headline is cut short.
    cut = headline if len(headline) <= SUBJECT_LIMIT else headline[: SUBJECT_LIMIT - 3] + "..."
    assert envelope["Subject"] == cut
    assert json.loads(envelope["Message"])["status"] == "failed"
    assert "RemediationFailures" in metric_names(capsys.readouterr().out, case.control)


def check_throttling_retried(case: ControlCase) -> None:
    """SlowDown twice on the write (a reporting control: its read): botocore retries it and
    the fix lands (the drift is found)."""
    subject = case.drifted()
    throttle = ErrorResponses(503, "SlowDown", times=2)
    throttle.install(case.failing_operation, case.service, case.region)
    outcome = case.run(subject)
    assert outcome["status"] == case.drift_status, outcome
    assert throttle.sent == 3  # two throttled attempts, then the one that reached S3
    if case.fixable:
        assert case.read(subject) == outcome["after"]


def check_persistent_error_raises(case: ControlCase) -> None:
    """A 500 that outlives the retries propagates, so Lambda retries and then dead-letters it."""
    subject = case.drifted()
    drifted = case.read(subject)
    failing = ErrorResponses(500, "InternalError", times=1000)
    failing.install(case.failing_operation, case.service, case.region)
    with pytest.raises(ClientError) as raised:
        case.run(subject)
    assert raised.value.response["Error"]["Code"] == "InternalError"
    assert failing.sent > 1  # it was retried before giving up
    assert case.read(subject) == drifted


def public_bucket(name: str = "public-bucket") -> str:
    """A bucket whose ACL grants READ to AllUsers."""
    make_bucket(name)
    s3().put_bucket_acl(Bucket=name, ACL="public-read")
    return name


def is_public(bucket: str) -> bool:
    grants = s3().get_bucket_acl(Bucket=bucket)["Grants"]
    return any(g["Grantee"].get("URI") == ALL_USERS for g in grants)
