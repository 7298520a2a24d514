"""Fault tolerance: 500 drift events through the Lambda code path while 20% of AWS calls fail.

Every call the handler makes (S3, STS, the DynamoDB audit and idempotency tables, SNS) goes
through `tests.fault_proxy` to a moto server of its own. One call in five is throttled, answered
with a 500, held past the client's read timeout or cut off; a share of those strike after moto
applied the call. Lambda's asynchronous invocation is modelled as the template configures it: an
invocation that raises is retried twice with the same request id, then dead-lettered.

Afterwards a client without faults reads moto directly and judges the result: every event ended
remediated, failed and notified, exempted (recorded, and notified at most once a day), or
dead-lettered; every fix has its audit record; nothing was done twice.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.config import Config

from bucketwarden import aws, engine, reporter
from bucketwarden.catalogue import CONTROL_IDS, control
from bucketwarden.handler import process
from bucketwarden.outcome import REPORTED
from bucketwarden.settings import Settings
from bucketwarden_tools.bench import moto_server as separate_moto_server
from bucketwarden_tools.routing import load_template
from bucketwarden_tools.stack import DEFAULT_MAC_KEY, create_table_like, find_mac_key
from tests.fault_proxy import FaultPlan, FaultProxy, Tally, fault_key, tag_requests
from tests.helpers import ACCOUNT, LOG_DELIVERY, audit_store, cloudtrail_record, eventbridge_event

SEED = 20240501
DISTINCT_EVENTS = 500
SECOND_EVENTS = 50  # buckets that receive a second event
DUPLICATE_DELIVERIES = 20
FAULT_RATE = 0.2
AFTER_SHARE = 0.3
# Lambda runs this many invocations at once here (each Lambda instance would run one).
CONCURRENCY = 32
REGION = "us-east-1"

# The template's asynchronous invocation settings (EventInvokeConfig) and function timeout.
LAMBDA_RETRIES = 2
FUNCTION_TIMEOUT_SECONDS = int(load_template()["Globals"]["Function"]["Timeout"])

# A timeout costs two seconds instead of ten: the proxy holds a request for longer than that.
CLIENT_TIMEOUT_SECONDS = 2
# botocore's retries as the service configures them (five attempts, a retry quota per client),
# without adaptive mode's client-side rate limiter: the invocations here share one client per
# service, and its one token bucket would make every invocation wait on the others' throttling
# (each Lambda instance has its own). The shared retry quota drains under the sustained fault
# rate, as a warm instance's does in a long outage, so faults outlive botocore's retries and the
# paths behind them (the invocation fails, Lambda retries it, then dead-letters it) are taken
# hundreds of times in one run.
CLIENT_RETRIES = {"mode": "standard", "max_attempts": 5}
HOLD_SECONDS = 2.5

AUDIT_TABLE = "fault-audit"
IDEMPOTENCY_TABLE = "fault-idempotency"
MISSING_LOG_TARGET = "fault-log-target-that-does-not-exist"
EXEMPT_TAGS = {"bucketwarden:exempt": "public-acl", "bucketwarden:exempt-reason": "a public site"}

FIXED, FAILED, EXEMPTED = "fixed", "failed", "exempted"


# -- the drifts the events report ---------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """A wrong configuration, the CloudTrail call that made it, and how it must end."""

    name: str
    event_name: str
    family: str
    controls: tuple[str, ...]
    make: Callable[[Any, str], None]  # puts the bucket in the drifted state
    ends: str = FIXED
    weight: int = 10


def _public_read_acl(s3: Any, bucket: str) -> None:
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")


def _public_policy(s3: Any, bucket: str) -> None:
    statement = {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


def _log_delivery_acl(s3: Any, bucket: str) -> None:
    """ACLs enabled and used: the fix moves the log delivery grant to the policy (an STS call)."""
    owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
    grants = [
        {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"}
    ]
    grants += [
        {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": permission}
        for permission in ("WRITE", "READ_ACP")
    ]
    s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": owner, "Grants": grants})


def _versioning_suspended(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def _exempted_public_acl(s3: Any, bucket: str) -> None:
    _public_read_acl(s3, bucket)
    tag_set = [{"Key": key, "Value": value} for key, value in EXEMPT_TAGS.items()]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tag_set})


def _as_created(s3: Any, bucket: str) -> None:
    """moto's new bucket has no encryption, no Block Public Access, no policy, no logging."""


PUBLIC_ACCESS = "public-access"
DRIFTS = (
    Drift("public ACL", "PutBucketAcl", PUBLIC_ACCESS, ("public-acl",), _public_read_acl),
    Drift(
        "public policy",
        "PutBucketPolicy",
        PUBLIC_ACCESS,
        ("public-policy", "secure-transport"),
        _public_policy,
    ),
    Drift(
        "policy deleted", "DeleteBucketPolicy", PUBLIC_ACCESS, ("secure-transport",), _as_created
    ),
    Drift(
        "Block Public Access removed",
        "DeleteBucketPublicAccessBlock",
        PUBLIC_ACCESS,
        ("bucket-public-access-block",),
        _as_created,
    ),
    Drift(
        "ownership controls removed",
        "DeleteBucketOwnershipControls",
        PUBLIC_ACCESS,
        ("object-ownership",),
        _log_delivery_acl,
    ),
    Drift(
        "encryption removed",
        "DeleteBucketEncryption",
        "encryption",
        ("default-encryption",),
        _as_created,
    ),
    Drift(
        "versioning suspended",
        "PutBucketVersioning",
        "versioning",
        ("versioning",),
        _versioning_suspended,
    ),
    # The log target does not exist: S3 refuses the fix, which fails and is notified.
    Drift(
        "logging off",
        "PutBucketLogging",
        "logging",
        ("access-logging",),
        _as_created,
        ends=FAILED,
        weight=4,
    ),
    Drift(
        "exempted public ACL",
        "PutBucketAcl",
        PUBLIC_ACCESS,
        ("public-acl",),
        _exempted_public_acl,
        ends=EXEMPTED,
        weight=3,
    ),
)
# Drifts a bucket can get on top of another one without the two touching one surface.
SECOND_DRIFTS = tuple(d for d in DRIFTS if d.family in {"encryption", "versioning"})


# -- events and their deliveries ---------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    event_id: str
    bucket: str
    drift: Drift

    def eventbridge(self) -> dict[str, Any]:
        record = cloudtrail_record(self.drift.event_name, self.bucket, event_id=self.event_id)
        return eventbridge_event(record)


@dataclass(frozen=True)
class Delivery:
    """One asynchronous invocation: its request id stays the same across Lambda's retries."""

    event: Event
    request_id: str
    duplicate: bool = False


@dataclass
class Result:
    delivery: Delivery
    outcomes: list[dict[str, Any]] | None = None  # the invocation that returned
    attempts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def dead_lettered(self) -> bool:
        return self.outcomes is None


@dataclass(frozen=True)
class Scenario:
    events: list[Event]  # distinct events
    # Each wave's tasks run at once; a task's deliveries in turn (an event, then its duplicate
    # seconds later, within the claim's lifetime). Second events come in the second wave.
    waves: list[list[tuple[Delivery, ...]]]

    @property
    def drifted(self) -> dict[tuple[str, str], str]:
        """(bucket, control) → how it must end."""
        return {
            (event.bucket, control_id): event.drift.ends
            for event in self.events
            for control_id in event.drift.controls
        }


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def plan_scenario(rng: random.Random) -> Scenario:
    weights = [drift.weight for drift in DRIFTS]
    buckets = DISTINCT_EVENTS - SECOND_EVENTS
    first = [
        Event(_uuid(rng), f"fault-{number:04d}", rng.choices(DRIFTS, weights)[0])
        for number in range(buckets)
    ]
    second = []
    for event in rng.sample(first, SECOND_EVENTS):
        # Half repeat the drift (a second call of the same kind), half add one of another family.
        others = [d for d in SECOND_DRIFTS if d.family != event.drift.family]
        repeat = event.drift.ends == FIXED and rng.random() < 0.5
        drift = event.drift if repeat else rng.choice(others)
        second.append(Event(_uuid(rng), event.bucket, drift))
    repeated = {event.event_id for event in rng.sample(first, DUPLICATE_DELIVERIES)}
    first_wave = [
        (Delivery(event, _uuid(rng)), Delivery(event, _uuid(rng), duplicate=True))
        if event.event_id in repeated
        else (Delivery(event, _uuid(rng)),)
        for event in first
    ]
    second_wave = [(Delivery(event, _uuid(rng)),) for event in second]
    return Scenario(first + second, [first_wave, second_wave])


# -- the stack on moto, and the engine's clients through the proxy -----------------------------


@dataclass(frozen=True)
class Stack:
    endpoint: str  # moto itself, without faults
    topic_arn: str
    queue_url: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            made = aws.new_client(service, endpoint_url=self.endpoint, region_name=REGION)
            self.clients[service] = made
        return self.clients[service]


def build_stack(endpoint: str) -> Stack:
    dynamodb = aws.new_client("dynamodb", endpoint_url=endpoint, region_name=REGION)
    create_table_like(dynamodb, AUDIT_TABLE, "AuditTable")
    create_table_like(dynamodb, IDEMPOTENCY_TABLE, "IdempotencyTable")
    kms = aws.new_client("kms", endpoint_url=endpoint, region_name=REGION)
    find_mac_key(DEFAULT_MAC_KEY, create=True, notes=[], kms=kms)
    sns = aws.new_client("sns", endpoint_url=endpoint, region_name=REGION)
    sqs = aws.new_client("sqs", endpoint_url=endpoint, region_name=REGION)
    topic_arn = sns.create_topic(Name="fault-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="fault-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
    return Stack(endpoint, topic_arn, queue_url)


def drift_buckets(stack: Stack, scenario: Scenario) -> None:
    s3 = stack.client("s3")
    made: set[str] = set()

    def drift(event: Event) -> None:
        if event.bucket not in made:
            made.add(event.bucket)
            s3.create_bucket(Bucket=event.bucket)
        event.drift.make(s3, event.bucket)

    # A bucket's drifts in order (the second event's on top of the first's), buckets at once.
    by_bucket: dict[str, list[Event]] = defaultdict(list)
    for event in scenario.events:
        by_bucket[event.bucket].append(event)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda events: [drift(e) for e in events], by_bucket.values()))


def engine_through(proxy_url: str, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The handler's settings as the template sets them; its clients reach moto via the proxy."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy_url)
    monkeypatch.setenv("AUDIT_TABLE", AUDIT_TABLE)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
    monkeypatch.setenv("NOTIFICATION_TOPIC_ARN", stack.topic_arn)
    monkeypatch.setenv("LOG_TARGET_BUCKET", MISSING_LOG_TARGET)
    short = Config(
        connect_timeout=CLIENT_TIMEOUT_SECONDS,
        read_timeout=CLIENT_TIMEOUT_SECONDS,
        max_pool_connections=CONCURRENCY,
        retries=CLIENT_RETRIES,
    )
    monkeypatch.setattr(aws, "RETRY_CONFIG", aws.RETRY_CONFIG.merge(short))
    aws.reset_clients()
    # The clients the handler asks for, tagged so that each request names its invocation.
    clients = (("s3", REGION), ("sts", REGION), ("dynamodb", None), ("sns", None), ("kms", None))
    for service, region in clients:
        tag_requests(aws.client(service, region))


# -- Lambda's asynchronous invocation ------------------------------------------------------------


@dataclass
class LambdaContext:
    """The parts of Lambda's context object that the handler and Powertools read."""

    aws_request_id: str
    deadline: float
    function_name: str = "bucketwarden-fault-injection"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bucketwarden"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def invoke_async(delivery: Delivery) -> Result:
    """Lambda's asynchronous invocation: up to two retries, then the dead-letter queue.

    Lambda waits a minute, then two, before a retry; a claim left by a failed attempt lasts as
    long as the function's timeout (six minutes), so running the retry at once changes nothing
    that the handler can see.
    """
    result = Result(delivery)
    event = delivery.event
    for attempt in range(1 + LAMBDA_RETRIES):
        result.attempts = attempt + 1
        context = LambdaContext(delivery.request_id, time.time() + FUNCTION_TIMEOUT_SECONDS)
        with fault_key(f"{delivery.request_id}/{attempt}"):
            try:
                result.outcomes = process(event.eventbridge(), event.drift.family, context)
            except Exception as error:  # what Lambda counts as a function error
                result.errors.append(f"{type(error).__name__}: {error}")
                continue
        return result
    return result


def invoke_in_turn(deliveries: tuple[Delivery, ...]) -> list[Result]:
    return [invoke_async(delivery) for delivery in deliveries]


def deliver(scenario: Scenario) -> list[Result]:
    results: list[Result] = []
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for wave in scenario.waves:
            for in_turn in pool.map(invoke_in_turn, wave):
                results.extend(in_turn)
    return results


# -- what moto holds afterwards, read without faults -----------------------------------------


def audit_records(stack: Stack) -> list[dict[str, str]]:
    pages = stack.client("dynamodb").get_paginator("scan").paginate(TableName=AUDIT_TABLE)
    return [
        {name: value["S"] for name, value in item.items() if "S" in value}
        for page in pages
        for item in page["Items"]
    ]


def notifications(stack: Stack) -> list[dict[str, Any]]:
    """The machine-readable message of every notification the topic delivered to the queue."""
    sqs = stack.client("sqs")
    received: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=3600
        ).get("Messages", [])
        if not batch:
            return received
        received += [json.loads(json.loads(m["Body"])["Message"]) for m in batch]


def compliant_now(stack: Stack, bucket: str, control_id: str, settings: Settings) -> bool:
    checked = control(control_id)
    # The recorded baselines too (object-lock-retention), as the functions read them.
    records = audit_store(settings, dynamodb=stack.client("dynamodb"))
    state = checked.observe(stack.client(checked.service), bucket, settings, records)
    return checked.evaluate(state, settings).compliant


# -- the verdict --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What was sent, what the proxy did, and what moto holds afterwards."""

    scenario: Scenario
    results: list[Result]
    tally: Tally
    records: list[dict[str, str]]  # the audit table
    messages: list[dict[str, Any]]  # the notifications, as the queue received them
    elapsed: float

    def deliveries_of(self) -> dict[str, list[Result]]:
        by_event: dict[str, list[Result]] = defaultdict(list)
        for result in self.results:
            by_event[result.delivery.event.event_id].append(result)
        return by_event


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    endings: Counter[str] = field(default_factory=Counter)

    def problem(self, text: str) -> None:
        self.problems.append(text)


def judge_events(run: Run, verdict: Verdict) -> None:
    """Each event was handled by one of its deliveries, or dead-lettered: none was dropped."""
    for deliveries in run.deliveries_of().values():
        event = deliveries[0].delivery.event
        if all(result.dead_lettered for result in deliveries):
            verdict.endings["events dead-lettered"] += 1
            continue
        outcomes = [outcome for result in deliveries for outcome in result.outcomes or []]
        for control_id in event.drift.controls:
            if not any(outcome["control"] == control_id for outcome in outcomes):
                reasons = sorted({outcome["reason"] for outcome in outcomes})
                verdict.problem(
                    f"event {event.event_id} ({event.drift.name} on {event.bucket}) was dropped: "
                    f"no {control_id} outcome, only {reasons}"
                )


def judge_surfaces(run: Run, stack: Stack, verdict: Verdict) -> None:
    """Each drifted surface ended fixed and audited, failed or exempted and notified, or its
    events were dead-lettered."""
    settings = Settings.from_env(CONTROL_IDS)
    handled = {r.delivery.event.event_id for r in run.results if not r.dead_lettered}
    notified = {message["audit_id"] for message in run.messages}
    events_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in run.scenario.events:
        for control_id in event.drift.controls:
            events_of[(event.bucket, control_id)].add(event.event_id)
    records_of: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for record in run.records:
        records_of[(record["bucket"], record["control"])].append(record)
    for (bucket, control_id), ends in sorted(run.scenario.drifted.items()):
        found = records_of[(bucket, control_id)]
        statuses = Counter(record["status"] for record in found)
        where = f"{control_id} on {bucket}"
        dead_lettered = not events_of[(bucket, control_id)] & handled
        if compliant_now(stack, bucket, control_id, settings):
            verdict.endings["remediated"] += 1
            # A fix whose every attempt failed after the write keeps its write-ahead record, and
            # its event is dead-lettered; a second event of the pair, handled after it, finds the
            # surface fixed (compliant, nothing recorded).
            some_dead_lettered = bool(events_of[(bucket, control_id)] - handled)
            pending = some_dead_lettered and statuses["pending"]
            if not statuses["remediated"] and not pending:
                verdict.problem(f"{where} was fixed without an audit record: {dict(statuses)}")
        elif dead_lettered:
            verdict.endings["not fixed, its events dead-lettered"] += 1
        elif ends == FIXED:
            verdict.problem(f"{where} is still wrong and no event for it was dead-lettered")
        else:
            judge_reported(where, ends, found, notified, verdict)


def judge_reported(
    where: str, ends: str, found: list[dict[str, str]], notified: set[str], verdict: Verdict
) -> None:
    """A surface left as it was (failed, exempted) has its records, notified: each failure, and
    exempted drift at least once (at most once a day: the others are recorded, not notified)."""
    status = "failed" if ends == FAILED else "exempted"
    verdict.endings[f"{status} and notified"] += 1
    mine = [record for record in found if record["status"] == status]
    if not mine:
        statuses = Counter(record["status"] for record in found)
        verdict.problem(f"{where} has no {status} audit record: {dict(statuses)}")
    unnotified = [record["audit_id"] for record in mine if record["audit_id"] not in notified]
    if ends == EXEMPTED and mine and len(unnotified) == len(mine):
        verdict.problem(f"{where}: no exempted drift was notified")
    for audit_id in unnotified if ends == FAILED else []:
        verdict.problem(f"{where}: {status} record {audit_id} not notified")


def sent_again(run: Run) -> Counter[str]:
    """How often each notification (by audit id) may rightly come again.

    SNS delivers a message as often as it is published, and a Publish is sent again when its
    answer was lost (a fault after forwarding, an answer later than the client's timeout) or
    when Lambda retries the invocation that sent it. The copies share the audit id, for
    receivers to drop.
    """
    calls = [fault.call for fault in run.tally.injected if fault.after] + run.tally.late
    allowed: Counter[str] = Counter()
    for call in calls:
        if call.operation == "Publish":
            message = json.loads(json.loads(call.form()["Message"])["sqs"])
            allowed[message["audit_id"]] += 1
    retries: Counter[str] = Counter()
    for result in run.results:
        retries[result.delivery.event.event_id] += result.attempts - 1
    for audit_id, event_id in {(m["audit_id"], m["event_id"]) for m in run.messages}:
        allowed[audit_id] += retries[event_id]
    return allowed


def judge_nothing_twice(run: Run, verdict: Verdict) -> None:
    """One audit record and one notification per event and control. (An exemption grant found
    in effect is recorded with no event: who granted it is not the drift's actor.)"""
    per_event = Counter(
        (record["event_id"], record["control"]) for record in run.records if "event_id" in record
    )
    for (event_id, control_id), count in per_event.items():
        if count > 1:
            verdict.problem(f"{count} audit records for {control_id}, event {event_id}")
    audit_ids_of: dict[tuple[str, str], set[str]] = defaultdict(set)
    for message in run.messages:
        if message["event_id"]:
            audit_ids_of[(message["event_id"], message["control"])].add(message["audit_id"])
    for (event_id, control_id), audit_ids in audit_ids_of.items():
        if len(audit_ids) > 1:
            verdict.problem(f"{len(audit_ids)} notifications for {control_id}, event {event_id}")
    copies = Counter(message["audit_id"] for message in run.messages)
    allowed = sent_again(run)
    for audit_id, count in copies.items():
        if count > 1 + allowed[audit_id]:
            verdict.problem(f"notification {audit_id} delivered {count} times")
    verdict.endings["notifications sent again"] = sum(copies.values()) - len(copies)
    known = {record["audit_id"] for record in run.records}
    for audit_id in copies.keys() - known:
        verdict.problem(f"notification {audit_id} has no audit record")


def judge_returned(run: Run, verdict: Verdict) -> None:
    """Every reported outcome that an invocation returned is in the audit table."""
    known = {record["audit_id"] for record in run.records}
    for result in run.results:
        for outcome in result.outcomes or []:
            if outcome["status"] in REPORTED and outcome["audit_id"] not in known:
                verdict.problem(f"outcome without its audit record: {outcome}")


def judge_duplicates(run: Run, verdict: Verdict) -> None:
    """A repeated delivery of a handled event did no work: the idempotency claim stopped it."""
    handled = {
        r.delivery.event.event_id for r in run.results if not r.delivery.duplicate and r.outcomes
    }
    for result in run.results:
        delivery = result.delivery
        if not delivery.duplicate or result.outcomes is None:
            continue
        if delivery.event.event_id not in handled:
            continue  # the first delivery was dead-lettered: this one may do the work
        s3_calls = sum(
            count
            for (key, service), count in run.tally.requests_by_key.items()
            if key.startswith(delivery.request_id) and service == "s3"
        )
        reasons = [outcome["reason"] for outcome in result.outcomes]
        if s3_calls or not all("duplicate delivery" in reason for reason in reasons):
            verdict.problem(
                f"duplicate delivery of {delivery.event.event_id} made {s3_calls} S3 calls: "
                f"{reasons}"
            )
        else:
            verdict.endings["duplicate deliveries stopped"] += 1


def judge(run: Run, stack: Stack) -> Verdict:
    verdict = Verdict()
    judge_events(run, verdict)
    judge_surfaces(run, stack, verdict)
    judge_nothing_twice(run, verdict)
    judge_returned(run, verdict)
    judge_duplicates(run, verdict)
    return verdict


def summary(run: Run, verdict: Verdict) -> str:
    tally = run.tally
    outcomes = Counter(
        outcome["status"] for result in run.results for outcome in result.outcomes or []
    )
    errors = Counter(error.split(":")[0] for result in run.results for error in result.errors)
    retried = sum(1 for result in run.results if result.attempts > 1)
    dead = sum(1 for result in run.results if result.dead_lettered)
    records = Counter(record["status"] for record in run.records)
    confirmed = sum(
        "fixed by an earlier attempt" in outcome["reason"]
        for result in run.results
        for outcome in result.outcomes or []
    )
    messages = Counter(message["status"] for message in run.messages)
    deliveries = len(run.results)
    lines = [
        f"fault injection (seed {SEED}): {len(run.scenario.events)} events, {deliveries} "
        f"deliveries, {run.elapsed:.1f} s",
        f"  requests {tally.total_requests}: {_counts(tally.requests)}",
        f"  faults {tally.total_faults} ({sum(tally.faults_after.values())} after forwarding): "
        f"{_counts(tally.faults)}; slow answers (the client may have given up) {len(tally.late)}",
        f"  invocation errors {sum(errors.values())}: {_counts(errors)}",
        f"  invocations retried by Lambda {retried}, dead-lettered {dead}",
        f"  outcomes returned: {_counts(outcomes)}",
        f"  fixes an attempt made and a later attempt recorded (write-ahead record completed): "
        f"{confirmed}",
        f"  surfaces and deliveries: {_counts(verdict.endings)}",
        f"  audit records {len(run.records)}: {_counts(records)}",
        f"  notifications {len(run.messages)}: {_counts(messages)}",
        f"  problems {len(verdict.problems)}",
    ]
    return "\n".join(["", *lines])


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "none"


# -- the test ----------------------------------------------------------------------------------


@pytest.fixture
def stack() -> Iterator[Stack]:
    """A moto server of the test's own (a process apart, so its work runs on the other core)."""
    with separate_moto_server() as endpoint:
        yield build_stack(endpoint)


def run_scenario(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Run:
    scenario = plan_scenario(random.Random(SEED))
    drift_buckets(stack, scenario)
    plan = FaultPlan(
        rate=FAULT_RATE,
        after_share=AFTER_SHARE,
        hold_seconds=HOLD_SECONDS,
        # The proxy starts its clock after the client's: count answers well short of it.
        late_seconds=CLIENT_TIMEOUT_SECONDS * 0.5,
        seed=SEED,
    )
    started = time.monotonic()
    with FaultProxy(stack.endpoint, plan) as proxy:
        engine_through(proxy.url, stack, monkeypatch)
        results = deliver(scenario)
    elapsed = time.monotonic() - started
    return Run(scenario, results, proxy.tally, audit_records(stack), notifications(stack), elapsed)


def test_every_event_ends_fixed_reported_or_dead_lettered_and_nothing_is_done_twice(
    stack: Stack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    record_property: Callable[[str, object], None],
) -> None:
    # A log line per outcome, kept by pytest for a report, costs time and memory here.
    for module in (engine, reporter):
        caplog.set_level(logging.WARNING, logger=module.logger.name)
    run = run_scenario(stack, monkeypatch)

    verdict = judge(run, stack)

    counts = summary(run, verdict)
    # Printed in pytest's terminal summary (conftest.py), with or without xdist.
    record_property("fault_injection_counts", counts)
    assert not verdict.problems, "\n".join([counts, *verdict.problems])
