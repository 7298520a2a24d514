"""handler.process and the thin Lambda handlers: idempotency on the eventID, retries, dry runs."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws
from bucketwarden.catalogue import controls_of
from bucketwarden.handler import process
from tests.helpers import (
    API_CALLS,
    REGION,
    ErrorResponses,
    acting,
    audit_items,
    calls_delta,
    cloudtrail_record,
    create_table,
    eventbridge_event,
    is_public,
    only,
    own_client,
    public_bucket,
    s3,
    subscribe_inbox,
)
from tests.test_template import by_resource, function_id, role_id

pytestmark = [
    pytest.mark.usefixtures("aws"),
    # Without a Lambda context (as in the CLI) Powertools cannot bound the claim by time left.
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left:UserWarning"),
]

ROOT = Path(__file__).resolve().parent.parent
IDEMPOTENCY_TABLE = "bucketwarden-idempotency"


def acl_event(bucket: str, event_id: str = "evt-dup-1") -> dict[str, Any]:
    return eventbridge_event(cloudtrail_record("PutBucketAcl", bucket, event_id=event_id))


@pytest.fixture
def idempotency(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(IDEMPOTENCY_TABLE, "id"))
    return IDEMPOTENCY_TABLE


@pytest.mark.usefixtures("idempotency")
def test_same_event_twice_does_the_work_once(monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    event = acl_event(bucket)

    first = only(process(event, "public-access"))
    # Someone makes it public again; the *repeated* delivery of the old event must not act.
    s3().put_bucket_acl(Bucket=bucket, ACL="public-read")
    before = API_CALLS.snapshot()
    second = only(process(event, "public-access"))

    assert first["status"] == "remediated"
    assert second["status"] == "ignored"
    assert second["reason"].startswith("duplicate delivery")
    assert second["event_id"] == first["event_id"]
    assert not second["notified"]
    assert not any(name.startswith("s3.") for name in calls_delta(before))
    assert is_public(bucket)
    assert len(inbox.receive()) == 1


@pytest.mark.usefixtures("idempotency")
def test_a_new_event_for_the_same_bucket_is_handled() -> None:
    bucket = public_bucket()
    assert only(process(acl_event(bucket, "evt-a"), "public-access"))["status"] == "remediated"
    s3().put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert only(process(acl_event(bucket, "evt-b"), "public-access"))["status"] == "remediated"
    assert not is_public(bucket)


def create_bucket_controls(family: str) -> list[str]:
    return [c.id for c in controls_of(family) if "CreateBucket" in c.trigger_events]


@pytest.mark.usefixtures("idempotency")
def test_one_event_is_handled_once_per_family() -> None:
    bucket = public_bucket()
    event = eventbridge_event(cloudtrail_record("CreateBucket", bucket, event_id="evt-create"))
    # public_bucket() has a public ACL and, in moto, none of S3's defaults: every control fixes.
    outcomes = process(event, "public-access")
    assert [o["control"] for o in outcomes] == create_bucket_controls("public-access")
    assert {o["status"] for o in outcomes} == {"remediated"}
    assert only(process(event, "versioning"))["status"] == "remediated"
    assert only(process(event, "versioning"))["status"] == "ignored"


@pytest.mark.usefixtures("idempotency")
def test_failed_run_is_not_remembered_so_the_lambda_retry_works() -> None:
    bucket = public_bucket()
    event = acl_event(bucket)
    ErrorResponses(500, "InternalError", times=1000).install("PutBucketAcl")
    with pytest.raises(ClientError):
        process(event, "public-access")

    aws.reset_clients()  # the outage is over
    assert only(process(event, "public-access"))["status"] == "remediated"
    assert not is_public(bucket)


@pytest.mark.usefixtures("idempotency")
def test_dry_run_does_not_consume_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = public_bucket()
    event = acl_event(bucket)
    monkeypatch.setenv("BUCKETWARDEN_DRY_RUN", "true")
    assert only(process(event, "public-access"))["status"] == "noncompliant"
    assert is_public(bucket)

    monkeypatch.delenv("BUCKETWARDEN_DRY_RUN")
    assert only(process(event, "public-access"))["status"] == "remediated"


@pytest.mark.usefixtures("idempotency")
def test_rejected_event_bypasses_idempotency() -> None:
    outcome = only(process("{not json", "public-access"))
    assert outcome["status"] == "ignored"
    assert outcome["reason"].startswith("rejected: not JSON")


# -- attempts that fail part-way: Lambda's retries and second deliveries -----------------------

AUDIT_TABLE = "bucketwarden-audit"


@dataclass
class Invocation:
    """The part of Lambda's context the claim reads: the request id Lambda's retries keep."""

    aws_request_id: str
    remaining_ms: int = 300_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


class AnswerLost(Exception):
    """The request reached S3 and was applied; its answer never came back."""


def lose_answers(operation: str, service: str = "s3", times: int | None = None) -> None:
    """Apply `operation` calls of the engine's client (every one, or the first `times`), then
    fail them as lost answers."""
    lost_so_far = []

    def lost(**_: Any) -> None:
        if times is None or len(lost_so_far) < times:
            lost_so_far.append(operation)
            raise AnswerLost(operation)

    made = aws.client(service, REGION if service == "s3" else None)
    prefix = made.meta.service_model.service_id.hyphenize()
    made.meta.events.register(f"after-call.{prefix}.{operation}", lost)


@pytest.fixture
def audited(idempotency: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    return AUDIT_TABLE


def public_acl_grants(bucket: str) -> list[dict[str, Any]]:
    return s3().get_bucket_acl(Bucket=bucket)["Grants"]


@pytest.mark.usefixtures("audited")
@pytest.mark.parametrize("second", ["Lambda's retry", "another delivery"])
def test_a_fix_whose_answer_was_lost_is_recorded_by_the_next_attempt(
    monkeypatch: pytest.MonkeyPatch, second: str
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    grants = public_acl_grants(bucket)
    event = acl_event(bucket)
    lose_answers("PutBucketAcl")
    with pytest.raises(AnswerLost):
        process(event, "public-access", Invocation("request-1"))
    # The write landed; the write-ahead record holds what it replaced.
    assert not is_public(bucket)
    [pending] = audit_items(AUDIT_TABLE)
    assert (pending["status"], pending["before"]["Grants"]) == ("pending", grants)
    assert inbox.receive() == []

    aws.reset_clients()  # answers come back
    request = "request-1" if second == "Lambda's retry" else "request-2"
    outcome = only(process(event, "public-access", Invocation(request)))

    assert outcome["status"] == "remediated"
    assert "fixed by an earlier attempt at this event" in outcome["reason"]
    assert outcome["before"]["Grants"] == grants
    assert outcome["audit_id"] == pending["audit_id"]
    [record] = audit_items(AUDIT_TABLE)
    assert (record["audit_id"], record["status"]) == (pending["audit_id"], "remediated")
    assert record["before"]["Grants"] == grants
    assert record["after"] == outcome["after"]
    assert len(inbox.receive()) == 1


@pytest.mark.usefixtures("audited")
def test_a_retry_after_a_lost_notification_sends_it_and_keeps_one_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = public_bucket()
    event = acl_event(bucket)
    lose_answers("Publish", "sns", times=2)  # the invocation's and Lambda's first retry's
    with pytest.raises(AnswerLost):
        process(event, "public-access", Invocation("request-1"))
    [first] = audit_items(AUDIT_TABLE)
    assert first["status"] == "remediated"
    with pytest.raises(AnswerLost):
        process(event, "public-access", Invocation("request-1"))

    outcome = only(process(event, "public-access", Invocation("request-1")))

    assert outcome["status"] == "remediated"
    assert outcome["audit_id"] == first["audit_id"]
    assert outcome["reason"].count("fixed by an earlier attempt") == 1
    assert [r["audit_id"] for r in audit_items(AUDIT_TABLE)] == [first["audit_id"]]
    # At least once: the lost answers' messages arrived, and each retry sent it again.
    audit_ids = [json.loads(e["Message"])["audit_id"] for e in inbox.receive()]
    assert audit_ids == [first["audit_id"]] * 3


@pytest.mark.usefixtures("audited")
def test_a_late_second_delivery_that_fixes_again_keeps_the_first_fix_on_record() -> None:
    bucket = public_bucket()
    event = acl_event(bucket)
    # The first delivery's claim ends with it (no time left), as a claim does after minutes.
    first = only(process(event, "public-access", Invocation("request-1", remaining_ms=0)))
    s3().put_bucket_acl(Bucket=bucket, ACL="public-read")  # drifted again, its event not here yet

    late = only(process(event, "public-access", Invocation("request-2")))

    assert (first["status"], late["status"]) == ("remediated", "remediated")
    assert late["audit_id"] != first["audit_id"]
    records = {r["audit_id"]: r for r in audit_items(AUDIT_TABLE)}
    assert set(records) == {first["audit_id"], late["audit_id"]}
    # The first fix's record is as it was: its own before and after, still a rollback source.
    assert records[first["audit_id"]]["before"] == first["before"]
    assert records[first["audit_id"]]["after"] == first["after"]
    assert records[late["audit_id"]]["status"] == "remediated"
    assert not is_public(bucket)


@pytest.mark.usefixtures("idempotency")
def test_a_claim_the_failed_attempt_could_not_release_stays_its_own() -> None:
    bucket = public_bucket()
    event = acl_event(bucket)
    ErrorResponses(500, "InternalError", times=1000).install("PutBucketAcl")
    # The release of the claim fails too (the engine's DynamoDB client names no region).
    ErrorResponses(500, "InternalServerError", times=1000).install("UpdateItem", "dynamodb", None)
    with pytest.raises(Exception, match="idempotency store"):
        process(event, "public-access", Invocation("request-1"))

    aws.reset_clients()
    # Another delivery finds the event claimed; Lambda's retry of the claiming request runs it.
    other = only(process(event, "public-access", Invocation("request-2")))
    assert other["reason"].startswith("duplicate delivery")
    assert is_public(bucket)
    retried = only(process(event, "public-access", Invocation("request-1")))
    assert retried["status"] == "remediated"
    assert not is_public(bucket)


@pytest.mark.usefixtures("idempotency")
def test_a_claim_whose_answer_was_lost_is_not_taken_for_a_second_delivery() -> None:
    bucket = public_bucket()
    # botocore repeats the PutItem: the claim is there already, made by this very invocation.
    dynamodb = aws.client("dynamodb")
    dynamodb.meta.events.register_first("before-send.dynamodb.PutItem", ClaimTwice(dynamodb))

    outcome = only(process(acl_event(bucket), "public-access", Invocation("request-1")))

    assert outcome["status"] == "remediated"
    assert not is_public(bucket)


class TableCalls:
    """Records (operation, table) of every call the engine's DynamoDB client makes."""

    def __init__(self) -> None:
        self.made: set[tuple[str, str]] = set()
        aws.client("dynamodb").meta.events.register("before-parameter-build.dynamodb", self)

    def __call__(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        index = params.get("IndexName")
        self.made.add((model.name, params["TableName"] + (f"/index/{index}" if index else "")))


@pytest.mark.usefixtures("audited")
def test_the_role_allows_every_table_call_of_a_retried_fix() -> None:
    """The claim, its release, the write-ahead record, the retry's read of it: all allowed by
    the function's role in template.yaml (moto does not enforce IAM here)."""
    calls = TableCalls()
    event = acl_event(public_bucket())
    lose_answers("PutBucketAcl", times=1)
    with pytest.raises(AnswerLost):
        process(event, "public-access", Invocation("request-1"))
    assert only(process(event, "public-access", Invocation("request-1")))["status"] == "remediated"

    granted = by_resource(role_id(function_id("public-access")), "dynamodb")
    logical = {AUDIT_TABLE: "AuditTable", IDEMPOTENCY_TABLE: "IdempotencyTable"}
    for operation, target in calls.made:
        table, _, index = target.partition("/")
        assert f"dynamodb:{operation}" in granted[logical[table] + _ + index], (operation, target)
    # The release of the first attempt's claim and the retry's read of its record were made.
    assert {("UpdateItem", IDEMPOTENCY_TABLE), ("GetItem", AUDIT_TABLE)} <= calls.made


class ClaimTwice:
    """Sends the first PutItem itself, then answers it with a 500: botocore sends it again."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.done = False

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.done:
            return None
        self.done = True
        own_client("dynamodb").put_item(**json.loads(request.body))
        body = b'{"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}'
        request.url = "https://refused.invalid/"
        return AWSResponse(request.url, 500, {}, MockRawResponse(body))


# -- functions/<folder>/app.py -----------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str = "bucketwarden-public-access"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:bucketwarden"
    aws_request_id: str = "52fdfc07-2182-154f-163f-5f0f9a621d72"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_function(folder: str) -> Any:
    path = ROOT / "functions" / folder / "app.py"
    spec = importlib.util.spec_from_file_location(f"bucketwarden_function_{folder}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("folder", "event_name", "control"),
    [
        ("public_access", "PutBucketAcl", "public-acl"),
        ("encryption", "DeleteBucketEncryption", "default-encryption"),
        ("versioning", "PutBucketVersioning", "versioning"),
    ],
)
def test_lambda_handler_of_each_family(
    monkeypatch: pytest.MonkeyPatch, folder: str, event_name: str, control: str
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(IDEMPOTENCY_TABLE, "id"))
    bucket = public_bucket()
    event = eventbridge_event(cloudtrail_record(event_name, bucket, event_id=f"evt-{folder}"))

    outcomes = load_function(folder).lambda_handler(event, FakeLambdaContext())

    assert [(o["control"], o["status"]) for o in acting(outcomes)] == [(control, "remediated")]
