"""`make bench`, part 4: an organization's sweep against one account's, and STS per event.

On a moto server (its own process), the sweep function sweeps 1,000 buckets twice: first all in
one account (a single-account stack), then 20 accounts of 50 buckets each (a hub in organization
mode: its own account and 19 members, through their member sweep role). The buckets are part 3's
population (bench_sweep.populate: a compliant baseline, every fourth bucket drifted), every
control in notify mode (read-only, findings audited). Both runs go through the sweep function's
handler as Lambda runs it: its self-invocations are answered as Lambda answers them (202) and
delivered to the handler on a pool of threads standing in for concurrent instances, each with a
request id of its own. The sweep starts FAN_OUT accounts at once, as in Lambda; the pool runs as
many of them at a time as the machine has cores (INSTANCES), since each Lambda instance has a
CPU of its own: ten instances as threads on two cores would measure the cores' contention (160
workers where one account's sweep has 16), not the organization's cost. The others wait in the
queue, as throttled asynchronous invocations wait in Lambda's.

Printed: each run's wall time and their ratio (target: the organization within 2x), S3 requests
per bucket in each (the same reads per bucket), STS calls per account per invocation (at most
1), the invocations and DynamoDB calls the organization's plan costs; then, for an event in a
member account (the versioning function), STS calls on a cold function instance (at most 1) and
on a warm one (0).

Wall time is bound by CPU on two cores (both processes are Python), and moves with the load.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
import urllib.request
import warnings
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders
from rich.console import Console
from rich.table import Table

from bucketwarden import aws, sweep_handler
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.handler import process
from bucketwarden.metrics import Metrics
from bucketwarden.org_sweep import FAN_OUT
from bucketwarden.settings import mode_variable
from bucketwarden_tools.bench import ACCOUNT, emulated_aws, moto_server_process
from bucketwarden_tools.bench_sweep import REGION, populate
from bucketwarden_tools.calls import API_CALLS, uncounted
from bucketwarden_tools.environment import temporary_environment
from bucketwarden_tools.stack import create_table_like

ACCOUNTS = 20
BUCKETS_PER_ACCOUNT = 50
MAX_RATIO = 2.0
ORGANIZATION = "o-benchmark01"
AUDIT_TABLE = "bench-audit"
IDEMPOTENCY_TABLE = "bench-idempotency"
SWEEP_FUNCTION = "bucketwarden-sweep"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{SWEEP_FUNCTION}"
EVENTS = Path(__file__).resolve().parents[2] / "events"
# Every control judges, none writes: the sweep reads as `scan` does and audits its findings.
NOTIFY_ONLY = {mode_variable(control_id): "notify" for control_id in CONTROL_IDS}
QUIET = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_TRACE_DISABLED": "true"}


@dataclass
class Context:
    """A Lambda context with the time a 15-minute function has: nothing is handed over."""

    aws_request_id: str
    invoked_function_arn: str = FUNCTION_ARN
    function_name: str = SWEEP_FUNCTION
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 1024

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


# Invocations handled at once: one per core, as each Lambda instance has a CPU of its own.
INSTANCES = min(FAN_OUT, os.cpu_count() or 1)


class Lambda:
    """Lambda's side of the sweep: its asynchronous invocations accepted (202) and delivered to
    the handler, at most INSTANCES at once; the AssumeRole calls each invocation made."""

    def __init__(self) -> None:
        self.queued: queue.Queue[dict[str, Any]] = queue.Queue()
        self.results: list[dict[str, Any]] = []
        self.assumed: list[Counter[str]] = []
        self._current = threading.local()
        # Answering in place of Lambda: botocore's hook type expects no answer.
        aws.client("lambda", REGION).meta.events.register_first(
            "before-send.lambda.Invoke",
            self._accept,  # type: ignore[arg-type]
        )
        aws.client("sts").meta.events.register(
            "provide-client-params.sts.AssumeRole", self._count_assume_role
        )

    def _accept(self, request: Any, **_: Any) -> AWSResponse:
        self.queued.put(json.loads(request.body))
        request.url = "https://accepted.invalid/"
        return AWSResponse(request.url, 202, HTTPHeaders(), _Empty())

    def _count_assume_role(self, params: dict[str, Any], **_: Any) -> None:
        counts: Counter[str] | None = getattr(self._current, "assumed", None)
        if counts is not None:
            counts[params["RoleArn"].split(":")[4]] += 1

    def _invoke(self, payload: dict[str, Any], number: int) -> dict[str, Any]:
        self._current.assumed = Counter()
        metrics = Metrics(sink=lambda _: None)
        result = sweep_handler.sweep(payload, Context(f"bench-{number}"), metrics=metrics)
        self.assumed.append(self._current.assumed)
        return result

    def run(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The invocation `event` starts, and every one queued after it, to the last."""
        self.queued.put(event)
        started = 0
        with ThreadPoolExecutor(max_workers=INSTANCES) as pool:
            running: set[Future[dict[str, Any]]] = set()
            while running or not self.queued.empty():
                while not self.queued.empty():
                    started += 1
                    running.add(pool.submit(self._invoke, self.queued.get(), started))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                self.results += [future.result() for future in done]
        return self.results


class _Empty:
    """An empty HTTP body, as botocore reads it."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""

    def read(self, *_: Any) -> bytes:
        return b""


@dataclass
class Run:
    """One sweep of the 1,000 buckets: by one account's stack, or by an organization's hub."""

    name: str
    accounts: int
    buckets: int
    seconds: float
    calls: Counter[str]
    invocations: int
    findings: int
    assumed: list[Counter[str]] = field(default_factory=list)

    def per_bucket(self, prefix: str) -> float:
        return sum(n for op, n in self.calls.items() if op.startswith(prefix)) / self.buckets

    @property
    def sts_per_account_and_invocation(self) -> int:
        return max((max(counts.values(), default=0) for counts in self.assumed), default=0)


def _reset(endpoint: str) -> None:
    """An empty emulator, and the function's clients (and member credentials) forgotten."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=30):
        pass
    aws.reset_clients()
    dynamodb = uncounted(aws.new_client("dynamodb", endpoint_url=endpoint, region_name=REGION))
    create_table_like(dynamodb, AUDIT_TABLE, "AuditTable")
    create_table_like(dynamodb, IDEMPOTENCY_TABLE, "IdempotencyTable")


def _member_credentials(endpoint: str, account: str) -> dict[str, str]:
    """Credentials of the member's own administrators (not the hub's), to make its buckets."""
    sts = uncounted(aws.new_client("sts", endpoint_url=endpoint, region_name=REGION))
    made = sts.assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
        RoleSessionName="member-admin",
    )["Credentials"]
    return {
        "aws_access_key_id": made["AccessKeyId"],
        "aws_secret_access_key": made["SecretAccessKey"],
        "aws_session_token": made["SessionToken"],
    }


def _scheduled(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "source": "aws.events", "detail-type": "Scheduled Event"}


def _sweep(name: str, accounts: int, buckets: int) -> Run:
    lambda_ = Lambda()
    API_CALLS.clear()
    started = time.perf_counter()
    results = lambda_.run(_scheduled(name))
    seconds = time.perf_counter() - started
    [final] = [result for result in results if result["status"] == "finished"]
    if final["buckets"] != buckets:
        raise RuntimeError(f"the {name} sweep judged {final['buckets']} buckets, not {buckets}")
    return Run(
        name,
        accounts,
        buckets,
        seconds,
        API_CALLS.snapshot(),
        len(results),
        final["findings"],
        lambda_.assumed,
    )


@dataclass(frozen=True)
class Shape:
    """The organization: `accounts` (the hub's and members'), `per_account` buckets each."""

    accounts: int = ACCOUNTS
    per_account: int = BUCKETS_PER_ACCOUNT

    @property
    def buckets(self) -> int:
        return self.accounts * self.per_account

    @property
    def members(self) -> tuple[str, ...]:
        return tuple(f"{400000000000 + number:012d}" for number in range(1, self.accounts))


def single_account(endpoint: str, shape: Shape) -> Run:
    _reset(endpoint)
    populate(endpoint, shape.buckets, prefix="single")
    with temporary_environment({"ACCOUNT_ID": ACCOUNT}):
        return _sweep("single-account", 1, shape.buckets)


def organization_environment(shape: Shape, role: str, function: str) -> dict[str, str]:
    return {
        "ACCOUNT_ID": ACCOUNT,
        "ORGANIZATION_ID": ORGANIZATION,
        "MEMBER_ROLE_NAME": role,
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "ACCOUNT_IDS": ",".join(shape.members),
    }


def organization(endpoint: str, shape: Shape) -> Run:
    _reset(endpoint)
    populate(endpoint, shape.per_account, prefix="org-hub")
    for number, member in enumerate(shape.members, start=1):
        credentials = _member_credentials(endpoint, member)
        populate(endpoint, shape.per_account, f"org-{number:02d}", member, credentials)
    environment = organization_environment(shape, "bucketwarden-member-sweep", SWEEP_FUNCTION)
    with temporary_environment(environment):
        return _sweep("organization", shape.accounts, shape.buckets)


def _member_event(member: str, bucket: str, event_id: str) -> dict[str, Any]:
    """What a member's forwarder delivers: its PutBucketVersioning, named for its account."""
    event: dict[str, Any] = json.loads((EVENTS / "PutBucketVersioning.json").read_text())
    detail = event["detail"]
    detail["requestParameters"]["bucketName"] = bucket
    detail["recipientAccountId"] = detail["userIdentity"]["accountId"] = member
    detail["eventID"] = event_id
    detail["awsRegion"] = REGION
    event["account"] = member
    return event


def event_sts_calls(endpoint: str, shape: Shape) -> tuple[int, int]:
    """STS calls for an event of a member account: on a cold function instance, then warm."""
    member = shape.members[0]
    bucket = "org-01-00001"
    s3 = uncounted(
        aws.new_client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            **_member_credentials(endpoint, member),
        )
    )
    environment = {
        **organization_environment(
            shape, "bucketwarden-member-versioning", "bucketwarden-versioning"
        ),
        mode_variable("versioning"): "remediate",
    }
    counts = []
    with temporary_environment(environment):
        aws.reset_clients()  # a new function instance: no client, no credentials yet
        for attempt in ("cold", "warm"):
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
            before = API_CALLS.snapshot()
            outcomes = process(
                _member_event(member, bucket, f"bench-{attempt}"),
                "versioning",
                metrics=Metrics(sink=lambda _: None),
            )
            [outcome] = [o for o in outcomes if o["control"] == "versioning"]
            if outcome["status"] != "remediated":
                raise RuntimeError(f"the {attempt} event was {outcome['status']}")
            counts.append(API_CALLS.since(before).get("sts.AssumeRole", 0))
    return counts[0], counts[1]


@dataclass(frozen=True)
class Figures:
    single: Run
    organization: Run
    cold_sts: int
    warm_sts: int

    @property
    def ratio(self) -> float:
        return self.organization.seconds / self.single.seconds

    def failures(self) -> list[str]:
        wrong = []
        if self.ratio > MAX_RATIO:
            wrong.append(f"organization {self.ratio:.2f}x the single account > {MAX_RATIO:.0f}x")
        if self.organization.sts_per_account_and_invocation > 1:
            wrong.append("more than one STS call for an account in one invocation")
        if self.cold_sts > 1 or self.warm_sts > 0:
            wrong.append(f"STS per event: {self.cold_sts} cold, {self.warm_sts} warm")
        if abs(self.organization.per_bucket("s3.") - self.single.per_bucket("s3.")) > 1.0:
            wrong.append("S3 requests per bucket differ by more than one")
        return wrong


@contextmanager
def bench_environment(endpoint: str) -> Iterator[None]:
    # Findings are audited without an integrity tag in both runs (no KMS key to sign with), and
    # nothing is notified: what is compared is the sweep.
    tables = {
        "AUDIT_TABLE": AUDIT_TABLE,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "AUDIT_MAC_KEY": "",
        "NOTIFICATION_TOPIC_ARN": "",
    }
    with emulated_aws(endpoint), temporary_environment({**NOTIFY_ONLY, **QUIET, **tables}):
        yield


def measure(endpoint: str, shape: Shape | None = None) -> Figures:
    shape = shape or Shape()
    with bench_environment(endpoint):
        single = single_account(endpoint, shape)
        organized = organization(endpoint, shape)
        cold, warm = event_sts_calls(endpoint, shape)
    return Figures(single, organized, cold, warm)


def _table(figures: Figures) -> Table:
    table = Table(title="Part 4: an organization's sweep against one account's (moto server)")
    for column in (
        "sweep",
        "accounts",
        "buckets",
        "wall s",
        "invocations",
        "S3 requests/bucket",
        "DynamoDB calls",
        "STS calls (max per account and invocation)",
        "findings",
    ):
        table.add_column(column, justify="right")
    for run in (figures.single, figures.organization):
        table.add_row(
            run.name,
            str(run.accounts),
            str(run.buckets),
            f"{run.seconds:.1f}",
            str(run.invocations),
            f"{run.per_bucket('s3.'):.2f}",
            str(sum(n for op, n in run.calls.items() if op.startswith("dynamodb."))),
            f"{run.calls.get('sts.AssumeRole', 0)} ({run.sts_per_account_and_invocation})",
            str(run.findings),
        )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    # The handler's idempotency asks its Lambda context for time left; this one has no deadline.
    warnings.filterwarnings("ignore", "Couldn't determine the remaining time left")
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(
        f"creating {ACCOUNTS * BUCKETS_PER_ACCOUNT} buckets in one account, then "
        f"{BUCKETS_PER_ACCOUNT} in each of {ACCOUNTS} accounts, on a moto server ..."
    )
    with moto_server_process() as (endpoint, _):
        figures = measure(endpoint)
    console.print(_table(figures))
    wrong = figures.failures()
    verdict = "[green]PASS[/green]" if not wrong else "[red]FAIL: " + "; ".join(wrong) + "[/red]"
    console.print(
        f"Organization / single account wall time: {figures.ratio:.2f}x (target <= "
        f"{MAX_RATIO:.0f}x). STS per event in a member account: {figures.cold_sts} on a cold "
        f"instance (target <= 1), {figures.warm_sts} warm (target 0). {verdict}"
    )
    console.print(
        f"{FAN_OUT} accounts started at once, {INSTANCES} swept at a time (threads standing in "
        "for Lambda instances, one per core); "
        f"every control in notify mode. Load: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores."
    )
    return 1 if wrong and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
