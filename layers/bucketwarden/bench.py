"""`make bench`: what one event costs in AWS calls, CPU and memory, and what a cold start costs.

Part 1 runs one event per control and drift through `bucketwarden.handler.process`, exactly as
Lambda does, against a moto server in its own process (so the CPU time and memory figures are the
handler's and botocore's, not the emulator's). API calls are counted with the `before-call` hook
of `bucketwarden.aws`; DynamoDB calls are split by table with one more hook registered here.

Part 2 imports each functions/<folder>/app.py in a fresh interpreter with the environment Lambda
sets, then handles one event in it: import time, first-event time and the child's peak RSS.

    python -m bucketwarden.bench [--json] [--check] [--runs N] [--skip-cold-start]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from bucketwarden import aws
from bucketwarden.catalogue import FAMILIES, control
from bucketwarden.controls.public_access_block import SETTINGS as BLOCK_PUBLIC_ACCESS_SETTINGS
from bucketwarden.events import as_eventbridge_event
from bucketwarden.handler import process
from bucketwarden.settings import temporary_environment
from bucketwarden.stack import create_table_like

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
FUNCTIONS_DIR = ROOT / "functions"
REGION = "us-east-1"
ACCOUNT = "123456789012"
APPROVED_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OTHER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
KMS_BASELINE = {"ENCRYPTION_BASELINE": "SSE-KMS", "APPROVED_KMS_KEYS": APPROVED_KEY}

# Targets from issue 2, point 11.
MAX_S3_REMEDIATED = 4
MAX_S3_COMPLIANT = 2
MAX_PER_SIDE_SERVICE = 1  # audit PutItem, SNS Publish, idempotency
MAX_IMPORT_MS = 300.0
TRACE_AWS_CALLS = False
MAX_PEAK_MB = 128.0

IDEMPOTENCY_FOOTNOTE = (
    "Idempotency: one conditional PutItem claims the eventID per family (Powertools' in-progress "
    "record). No completion write follows: the engine re-reads the bucket on every run, so a "
    "repeat of a finished event has nothing to do, and a duplicate delivery costs one PutItem "
    "that fails its condition."
)

Setup = Callable[[Any, str], None]


# -- scenarios --------------------------------------------------------------------------------


def _nothing(s3: Any, bucket: str) -> None:
    """The bucket as moto creates it (private ACL, no encryption, versioning never enabled, no
    Block Public Access configuration)."""


def _acl(canned: str) -> Setup:
    def setup(s3: Any, bucket: str) -> None:
        s3.put_bucket_acl(Bucket=bucket, ACL=canned)

    return setup


def _public_access_block(*off: str) -> Setup:
    """A Block Public Access configuration with the named settings off and the others on."""

    def setup(s3: Any, bucket: str) -> None:
        configuration = {name: name not in off for name in BLOCK_PUBLIC_ACCESS_SETTINGS}
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)

    return setup


def _encryption(algorithm: str, key: str | None = None, bucket_key: bool = False) -> Setup:
    def setup(s3: Any, bucket: str) -> None:
        default: dict[str, str] = {"SSEAlgorithm": algorithm}
        if key:
            default["KMSMasterKeyID"] = key
        rule = {"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bucket_key}
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})

    return setup


def _versioning(*statuses: str) -> Setup:
    def setup(s3: Any, bucket: str) -> None:
        for status in statuses:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})

    return setup


@dataclass(frozen=True)
class Scenario:
    control: str
    drift: str
    event_name: str
    setup: Setup
    expected: str  # the outcome status the engine must report
    env: dict[str, str] = field(default_factory=dict)

    @property
    def family(self) -> str:
        return control(self.control).family

    @property
    def max_s3(self) -> int:
        return MAX_S3_COMPLIANT if self.expected == "compliant" else MAX_S3_REMEDIATED


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "bucket-public-access-block",
        "all four settings off",
        "PutBucketPublicAccessBlock",
        _public_access_block(*BLOCK_PUBLIC_ACCESS_SETTINGS),
        "remediated",
    ),
    Scenario(
        "bucket-public-access-block",
        "BlockPublicPolicy off",
        "PutBucketPublicAccessBlock",
        _public_access_block("BlockPublicPolicy"),
        "remediated",
    ),
    Scenario(
        "bucket-public-access-block",
        "configuration deleted",
        "DeleteBucketPublicAccessBlock",
        _nothing,
        "remediated",
    ),
    Scenario(
        "bucket-public-access-block",
        "already compliant",
        "PutBucketPublicAccessBlock",
        _public_access_block(),
        "compliant",
    ),
    Scenario("public-acl", "public-read ACL", "PutBucketAcl", _acl("public-read"), "remediated"),
    Scenario(
        "public-acl",
        "AuthenticatedUsers grant",
        "PutBucketAcl",
        _acl("authenticated-read"),
        "remediated",
    ),
    Scenario("public-acl", "already compliant", "PutBucketAcl", _nothing, "compliant"),
    Scenario(
        "default-encryption",
        "missing config (SSE-S3 baseline)",
        "DeleteBucketEncryption",
        _nothing,
        "remediated",
    ),
    Scenario(
        "default-encryption",
        "AES256 (SSE-KMS baseline)",
        "PutBucketEncryption",
        _encryption("AES256"),
        "remediated",
        KMS_BASELINE,
    ),
    Scenario(
        "default-encryption",
        "unapproved KMS key",
        "PutBucketEncryption",
        _encryption("aws:kms", OTHER_KEY, bucket_key=True),
        "remediated",
        KMS_BASELINE,
    ),
    Scenario(
        "default-encryption",
        "bucket key off",
        "PutBucketEncryption",
        _encryption("aws:kms", APPROVED_KEY, bucket_key=False),
        "remediated",
        KMS_BASELINE,
    ),
    Scenario(
        "default-encryption",
        "already compliant (SSE-S3)",
        "PutBucketEncryption",
        _encryption("AES256"),
        "compliant",
    ),
    Scenario(
        "versioning",
        "suspended",
        "PutBucketVersioning",
        _versioning("Enabled", "Suspended"),
        "remediated",
    ),
    Scenario("versioning", "never enabled", "CreateBucket", _nothing, "remediated"),
    Scenario(
        "versioning",
        "already compliant",
        "PutBucketVersioning",
        _versioning("Enabled"),
        "compliant",
    ),
)


def scenario(control_id: str, drift: str) -> Scenario:
    for candidate in SCENARIOS:
        if candidate.control == control_id and candidate.drift == drift:
            return candidate
    raise KeyError(f"no scenario {control_id}/{drift}")


# -- events -----------------------------------------------------------------------------------


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def make_event(event_name: str, bucket: str) -> dict[str, Any]:
    """events/<name>.json for `bucket`, with a new eventID and time."""
    sample_path = EVENTS_DIR / f"{event_name}.json"
    sample = as_eventbridge_event(json.loads(sample_path.read_text()))
    old_bucket = sample["detail"]["requestParameters"]["bucketName"]
    # The name also appears in Host, resources and tlsDetails: replace it everywhere.
    event = json.loads(json.dumps(sample).replace(old_bucket, bucket))
    now = _now()
    event.update(id=str(uuid.uuid4()), time=now, region=REGION)
    event["detail"].update(eventID=str(uuid.uuid4()), eventTime=now, awsRegion=REGION)
    return event


# -- the stack (tables and topic) and call counting -------------------------------------------


@dataclass(frozen=True)
class Stack:
    audit_table: str
    idempotency_table: str
    topic_arn: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AUDIT_TABLE": self.audit_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "NOTIFICATION_TOPIC_ARN": self.topic_arn,
        }


def create_stack() -> Stack:
    """The audit and idempotency tables and the topic, made with clients that are not counted."""
    # Unique names, so that the handler's cached idempotency store is built on today's client.
    suffix = uuid.uuid4().hex[:8]
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    names = {}
    for role, logical_id in (("audit", "AuditTable"), ("idempotency", "IdempotencyTable")):
        name = f"bucketwarden-bench-{role}-{suffix}"
        create_table_like(dynamodb, name, logical_id)
        names[role] = name
    topic = boto3.client("sns", region_name=REGION).create_topic(Name=f"bucketwarden-{suffix}")
    return Stack(names["audit"], names["idempotency"], topic["TopicArn"])


# (table, operation) of every DynamoDB call made through bucketwarden.aws clients.
TABLE_CALLS: Counter[tuple[str, str]] = Counter()


def _count_table_call(model: Any, params: dict[str, Any], **_: Any) -> None:
    TABLE_CALLS[(str(params.get("TableName", "?")), model.name)] += 1


def watch_tables() -> None:
    """Register the per-table counter on the engine's DynamoDB client (once: unique_id)."""
    # At before-call, `params` is the serialised request; here it is the API parameters.
    # Both events fire once per API call (retries happen later, in the endpoint).
    aws.client("dynamodb").meta.events.register(
        "before-parameter-build.dynamodb", _count_table_call, unique_id="bucketwarden-bench"
    )


class FakeLambdaContext:
    """What the Lambda runtime passes as `context`, as far as Powertools reads it."""

    function_name = "bucketwarden-bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:bucketwarden-bench"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/bucketwarden-bench"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


# -- part 1: one event ------------------------------------------------------------------------


@dataclass
class Run:
    calls: Counter[str]
    tables: Counter[tuple[str, str]]
    statuses: list[str]
    cpu_ms: float
    peak_alloc: int | None


@dataclass
class Measurement:
    scenario: Scenario
    calls: Counter[str]  # "service.Operation" → count, as bucketwarden.aws.API_CALLS counts
    audit_calls: int
    idempotency_calls: int
    idempotency_ops: Counter[str]
    other_table_calls: Counter[tuple[str, str]]  # DynamoDB calls on neither table
    statuses: list[str]
    cpu_ms: float  # median over the timed runs
    peak_alloc_kib: float
    max_rss_mb: float
    stable: bool  # every run made the same calls

    @property
    def s3_calls(self) -> int:
        return sum(n for name, n in self.calls.items() if name.startswith("s3."))

    @property
    def sns_publishes(self) -> int:
        return self.calls["sns.Publish"]

    @property
    def other_calls(self) -> Counter[str]:
        counted = ("s3.", "sns.Publish", "dynamodb.")
        return Counter({k: n for k, n in self.calls.items() if not k.startswith(counted)})

    def failures(self) -> list[str]:
        wrong = []
        if self.statuses != [self.scenario.expected]:
            wrong.append(f"outcome {self.statuses} instead of {self.scenario.expected}")
        if self.s3_calls > self.scenario.max_s3:
            wrong.append(f"S3 {self.s3_calls} > {self.scenario.max_s3}")
        for name, count in (
            ("audit", self.audit_calls),
            ("notification", self.sns_publishes),
            ("idempotency", self.idempotency_calls),
        ):
            if count > MAX_PER_SIDE_SERVICE:
                wrong.append(f"{name} {count} > {MAX_PER_SIDE_SERVICE}")
        if self.other_calls or self.other_table_calls:
            unexpected = {
                **self.other_calls,
                **{f"{t}:{op}": n for (t, op), n in self.other_table_calls.items()},
            }
            wrong.append(f"unexpected calls {unexpected}")
        if not self.stable:
            wrong.append("runs made different calls")
        return wrong


def _run_once(item: Scenario, stack: Stack, trace_memory: bool) -> Run:
    bucket = f"bw-bench-{uuid.uuid4().hex[:16]}"
    s3 = boto3.client("s3", region_name=REGION)  # set-up client: not counted
    s3.create_bucket(Bucket=bucket)
    item.setup(s3, bucket)
    event = make_event(item.event_name, bucket)
    watch_tables()
    aws.API_CALLS.clear()
    TABLE_CALLS.clear()
    peak = None
    # EMF metrics go to stdout, as in Lambda; here they would garble the tables.
    with (
        temporary_environment({**stack.env, **item.env}),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        if trace_memory:
            tracemalloc.start()
        started = time.process_time()
        outcomes = process(event, item.family, FakeLambdaContext())
        cpu = time.process_time() - started
        if trace_memory:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    statuses = [str(outcome["status"]) for outcome in outcomes]
    return Run(Counter(aws.API_CALLS), Counter(TABLE_CALLS), statuses, cpu * 1000, peak)


def measure(item: Scenario, stack: Stack, runs: int = 3) -> Measurement:
    """Handle fresh drifted buckets: one warm-up, `runs` timed, one under tracemalloc.

    The warm-up pays for client creation (a cold start's cost, measured in part 2); tracemalloc
    slows Python down, so the timed runs go without it.
    """
    warm_up = _run_once(item, stack, trace_memory=False)
    timed = [_run_once(item, stack, trace_memory=False) for _ in range(max(1, runs))]
    traced = _run_once(item, stack, trace_memory=True)
    first = timed[0]
    every = [warm_up, *timed, traced]
    stable = all(run.calls == first.calls and run.tables == first.tables for run in every)
    idempotency = Counter(
        {op: n for (table, op), n in first.tables.items() if table == stack.idempotency_table}
    )
    audit = sum(n for (table, _), n in first.tables.items() if table == stack.audit_table)
    ours = {stack.audit_table, stack.idempotency_table}
    other_tables = Counter({key: n for key, n in first.tables.items() if key[0] not in ours})
    return Measurement(
        scenario=item,
        calls=first.calls,
        audit_calls=audit,
        idempotency_calls=sum(idempotency.values()),
        idempotency_ops=idempotency,
        other_table_calls=other_tables,
        statuses=first.statuses,
        cpu_ms=statistics.median(run.cpu_ms for run in timed),
        peak_alloc_kib=(traced.peak_alloc or 0) / 1024,
        max_rss_mb=_max_rss_mb(resource.RUSAGE_SELF),
        stable=stable,
    )


def _max_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


# -- part 2: cold start -----------------------------------------------------------------------

# Runs in the fresh interpreter. Times `import app` (the Lambda init phase) and one invocation,
# then writes its figures to the file named by argv[1]. VmHWM is the peak RSS so far.
CHILD = r"""
import json, sys, time

def peak_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

class Context:
    function_name = "bucketwarden-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bucketwarden-bench"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-4000-8000-000000000001"
    log_group_name = "/aws/lambda/bucketwarden-bench"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 60000

wall, cpu = time.perf_counter(), time.process_time()
import app
figures = {
    "import_ms": (time.perf_counter() - wall) * 1000,
    "import_cpu_ms": (time.process_time() - cpu) * 1000,
    "import_peak_kib": peak_kib(),
}
with open(sys.argv[2]) as source:
    event = json.load(source)
wall, cpu = time.perf_counter(), time.process_time()
outcomes = app.lambda_handler(event, Context())
figures.update(
    first_event_ms=(time.perf_counter() - wall) * 1000,
    first_event_cpu_ms=(time.process_time() - cpu) * 1000,
    peak_kib=peak_kib(),
    statuses=[outcome["status"] for outcome in outcomes],
)
with open(sys.argv[1], "w") as out:
    json.dump(figures, out)
"""

# One drift per function for the first event: the remediation path, the longest one.
COLD_EVENTS = {
    "public-access": scenario("public-acl", "public-read ACL"),
    "encryption": scenario("default-encryption", "missing config (SSE-S3 baseline)"),
    "versioning": scenario("versioning", "suspended"),
}


@dataclass
class ColdStart:
    function: str
    import_ms: list[float]
    import_cpu_ms: list[float]
    import_peak_mb: float
    first_event_ms: list[float]
    first_event_cpu_ms: list[float]
    peak_mb: float
    statuses: list[str]

    @property
    def import_median(self) -> float:
        return statistics.median(self.import_ms)

    def failures(self) -> list[str]:
        wrong = []
        if self.import_median >= MAX_IMPORT_MS:
            wrong.append(f"import {self.import_median:.0f} ms ≥ {MAX_IMPORT_MS:.0f}")
        if self.peak_mb >= MAX_PEAK_MB:
            wrong.append(f"peak RSS {self.peak_mb:.0f} MB ≥ {MAX_PEAK_MB:.0f}")
        if any(status != "remediated" for status in self.statuses):
            wrong.append(f"first event outcome {sorted(set(self.statuses))}")
        return wrong


def lambda_environment(folder: Path, stack: Stack, endpoint: str) -> dict[str, str]:
    """What the Lambda runtime and template.yaml set, pointed at the moto server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "MODE_"))}
    for name in ("AWS_PROFILE", "ENCRYPTION_BASELINE", "APPROVED_KMS_KEYS", "SERVICE_ROLE_ARNS"):
        env.pop(name, None)
    path = [str(folder), env.get("PYTHONPATH", "")]
    env.update(
        stack.env,
        PYTHONPATH=os.pathsep.join(p for p in path if p),
        # /var/task and /opt are read-only in Lambda: nothing compiled there is cached.
        PYTHONDONTWRITEBYTECODE="1",
        # Powertools' Tracer is on only inside Lambda, which it detects by LAMBDA_TASK_ROOT.
        LAMBDA_TASK_ROOT=str(folder),
        AWS_LAMBDA_FUNCTION_NAME=f"bucketwarden-{folder.name}",
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
        AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
        AWS_EXECUTION_ENV="AWS_Lambda_python3.13",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL=endpoint,
        # Tracing: Active; the segments go over UDP to a daemon that is not there, as harmless.
        _X_AMZN_TRACE_ID="Root=1-67d3f0a1-3f1c2b4a5d6e7f8091a2b3c4;Parent=53995c3f42cd8ad8;Sampled=1",
        AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000",
        POWERTOOLS_SERVICE_NAME="bucketwarden",
        # The template's default (TraceAwsCalls=false): Lambda traces the invocation, the X-Ray
        # SDK stays unloaded. `--trace-aws-calls` measures the other setting.
        POWERTOOLS_TRACE_DISABLED="false" if TRACE_AWS_CALLS else "true",
        POWERTOOLS_METRICS_NAMESPACE="BucketWarden",
    )
    return env


def _drifted_event(item: Scenario, workdir: Path) -> Path:
    bucket = f"bw-cold-{uuid.uuid4().hex[:16]}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    item.setup(s3, bucket)
    path = workdir / f"{bucket}.json"
    path.write_text(json.dumps(make_event(item.event_name, bucket)))
    return path


def _child_run(folder: Path, env: dict[str, str], event: Path, workdir: Path) -> dict[str, Any]:
    result = workdir / f"{uuid.uuid4().hex}.json"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(result), str(event)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,  # the function's JSON logs and EMF metrics
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not result.is_file():
        raise RuntimeError(f"{folder.name}: child failed ({done.returncode}):\n{done.stderr}")
    return json.loads(result.read_text())


def cold_start(family: str, stack: Stack, endpoint: str, runs: int = 5) -> ColdStart:
    folder = FUNCTIONS_DIR / FAMILIES[family]
    env = lambda_environment(folder, stack, endpoint)
    results = []
    with tempfile.TemporaryDirectory(prefix="bw-bench-") as tmp:
        for _ in range(runs):
            event = _drifted_event(COLD_EVENTS[family], Path(tmp))
            results.append(_child_run(folder, env, event, Path(tmp)))
    return ColdStart(
        function=folder.name,
        import_ms=[r["import_ms"] for r in results],
        import_cpu_ms=[r["import_cpu_ms"] for r in results],
        import_peak_mb=max(r["import_peak_kib"] for r in results) / 1024,
        first_event_ms=[r["first_event_ms"] for r in results],
        first_event_cpu_ms=[r["first_event_cpu_ms"] for r in results],
        peak_mb=max(r["peak_kib"] for r in results) / 1024,
        statuses=[status for r in results for status in r["statuses"]],
    )


def import_breakdown(
    family: str, stack: Stack, endpoint: str, top: int = 8
) -> list[tuple[str, float]]:
    """Time of `import app` under `python -X importtime`, by the package that caused it.

    Each module's self time goes to its top-level package; a standard-library module's goes to
    the nearest importer outside the standard library (botocore's `ssl` counts for botocore),
    since that importer is what a fix would change.
    """
    folder = FUNCTIONS_DIR / FAMILIES[family]
    env = lambda_environment(folder, stack, endpoint)
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return attribute_import_time(done.stderr, top)


def attribute_import_time(importtime: str, top: int = 8) -> list[tuple[str, float]]:
    # -X importtime prints a module after everything it imported, indented by depth: the
    # lines still pending deeper than a new line are that module's imports.
    pending: list[tuple[int, str, int, list[Any]]] = []
    for line in importtime.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        depth = (len(name) - len(name.lstrip())) // 2
        children = []
        while pending and pending[-1][0] > depth:
            children.append(pending.pop())
        pending.append((depth, name.strip(), int(self_us), children))
    per_package: Counter[str] = Counter()

    def walk(node: tuple[int, str, int, list[Any]], owner: str) -> None:
        _, name, self_us, children = node
        package = name.split(".")[0]
        if package not in sys.stdlib_module_names:
            owner = package
        per_package[owner] += self_us
        for child in children:
            walk(child, owner)

    for node in pending:
        if node[1] == "app":  # start-up imports (site, encodings) are not the function's
            walk(node, "app")
    return [(name, us / 1000) for name, us in per_package.most_common(top)]


# -- the moto server --------------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process, so that its work is not counted as the handler's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def _wait_for_port(port: int, server: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the moto server exited with {server.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the moto server did not listen on port {port} within {timeout} s")


@contextlib.contextmanager
def emulated_aws(endpoint: str) -> Iterator[None]:
    """Fake credentials and every client pointed at the emulator: the bench never reaches AWS."""
    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }
    profile = os.environ.pop("AWS_PROFILE", None)
    with temporary_environment(fake):
        aws.reset_clients()
        try:
            yield
        finally:
            aws.reset_clients()
            if profile is not None:
                os.environ["AWS_PROFILE"] = profile


# -- output -----------------------------------------------------------------------------------


def _ops(calls: Counter[str], prefix: str) -> str:
    parts = []
    for name, count in sorted(calls.items()):
        if name.startswith(prefix):
            op = name.removeprefix(prefix)
            parts.append(op if count == 1 else f"{op} x{count}")
    return ", ".join(parts) or "-"


def measurement_row(m: Measurement) -> dict[str, Any]:
    return {
        "kind": "api_calls",
        "control": m.scenario.control,
        "drift": m.scenario.drift,
        "event": m.scenario.event_name,
        "outcome": ",".join(m.statuses),
        "calls": dict(sorted(m.calls.items())),
        "s3_calls": m.s3_calls,
        "s3_target": m.scenario.max_s3,
        "audit_calls": m.audit_calls,
        "notification_calls": m.sns_publishes,
        "idempotency_calls": m.idempotency_calls,
        "idempotency_ops": dict(m.idempotency_ops),
        "side_target": MAX_PER_SIDE_SERVICE,
        "cpu_ms": round(m.cpu_ms, 2),
        "peak_alloc_kib": round(m.peak_alloc_kib, 1),
        "max_rss_mb": round(m.max_rss_mb, 1),
        "result": "PASS" if not m.failures() else "FAIL",
        "failures": m.failures(),
    }


def cold_row(c: ColdStart) -> dict[str, Any]:
    return {
        "kind": "cold_start",
        "function": c.function,
        "import_ms_median": round(c.import_median, 1),
        "import_ms_min": round(min(c.import_ms), 1),
        "import_ms_runs": [round(v, 1) for v in c.import_ms],
        "import_cpu_ms_median": round(statistics.median(c.import_cpu_ms), 1),
        "import_target_ms": MAX_IMPORT_MS,
        "import_peak_mb": round(c.import_peak_mb, 1),
        "first_event_ms_median": round(statistics.median(c.first_event_ms), 1),
        "first_event_cpu_ms_median": round(statistics.median(c.first_event_cpu_ms), 1),
        "peak_mb": round(c.peak_mb, 1),
        "peak_target_mb": MAX_PEAK_MB,
        "result": "PASS" if not c.failures() else "FAIL",
        "failures": c.failures(),
    }


def _ok(text: str, ok: bool) -> str:
    return f"[green]{text}[/]" if ok else f"[red]{text}[/]"


def _styled_verdict(failures: list[str]) -> str:
    return "[green]PASS[/]" if not failures else "[red]FAIL[/]: " + "; ".join(failures)


def _side(count: int) -> str:
    return _ok(str(count), count <= MAX_PER_SIDE_SERVICE)


def _calls_table(measurements: list[Measurement], runs: int) -> Any:
    from rich.table import Table

    table = Table(
        title="AWS API calls, CPU and memory of ONE event (handler.process on a moto server)",
        title_justify="left",
        caption=(
            f"Targets: S3 ≤ {MAX_S3_REMEDIATED} calls for a remediated event, ≤ "
            f"{MAX_S3_COMPLIANT} for a compliant bucket; ≤ {MAX_PER_SIDE_SERVICE} each for "
            f"audit, notification and idempotency. CPU: median of {runs} timed runs."
        ),
        caption_justify="left",
    )
    table.add_column("Control", no_wrap=True)
    table.add_column("Drift (event)")
    table.add_column("Outcome", no_wrap=True)
    table.add_column("S3 / target", justify="right", no_wrap=True)
    table.add_column("S3 operations", no_wrap=True)
    table.add_column("Audit", justify="right")
    table.add_column("SNS", justify="right")
    table.add_column("Idem.¹", justify="right")
    table.add_column("CPU ms²", justify="right")
    table.add_column("Alloc KiB³", justify="right")
    table.add_column("RSS MB⁴", justify="right")
    table.add_column("Result")
    for m in measurements:
        item = m.scenario
        table.add_row(
            item.control,
            f"{item.drift} ({item.event_name})",
            ",".join(m.statuses),
            _ok(f"{m.s3_calls} / ≤{item.max_s3}", m.s3_calls <= item.max_s3),
            _ops(m.calls, "s3."),
            _side(m.audit_calls),
            _side(m.sns_publishes),
            _side(m.idempotency_calls),
            f"{m.cpu_ms:.1f}",
            f"{m.peak_alloc_kib:.0f}",
            f"{m.max_rss_mb:.0f}",
            _styled_verdict(m.failures()),
        )
    return table


def _cold_table(colds: list[ColdStart], runs: int) -> Any:
    from rich.table import Table

    table = Table(
        title=f"Cold start per function (fresh interpreter, median of {runs})",
        title_justify="left",
        caption=(
            f"Targets: import < {MAX_IMPORT_MS:.0f} ms, peak memory < {MAX_PEAK_MB:.0f} MB "
            "(peak RSS after the first event, which is what Lambda's memory size must hold)."
        ),
        caption_justify="left",
    )
    table.add_column("Function")
    table.add_column("Import ms (min)", justify="right")
    table.add_column("Import CPU ms", justify="right")
    table.add_column("RSS after import MB", justify="right")
    table.add_column("First event ms (CPU ms)", justify="right")
    table.add_column("Peak RSS MB", justify="right")
    table.add_column("Result")
    for c in colds:
        table.add_row(
            c.function,
            _ok(f"{c.import_median:.0f} ({min(c.import_ms):.0f})", c.import_median < MAX_IMPORT_MS),
            f"{statistics.median(c.import_cpu_ms):.0f}",
            f"{c.import_peak_mb:.0f}",
            f"{statistics.median(c.first_event_ms):.0f} "
            f"({statistics.median(c.first_event_cpu_ms):.0f})",
            _ok(f"{c.peak_mb:.0f}", c.peak_mb < MAX_PEAK_MB),
            _styled_verdict(c.failures()),
        )
    return table


def _breakdown_table(breakdown: list[tuple[str, float]], function: str) -> Any:
    from rich.table import Table

    total = sum(ms for _, ms in breakdown)
    table = Table(title=f"Where `import app` ({function}) spends its time", title_justify="left")
    table.add_column("Package")
    table.add_column("ms (-X importtime)", justify="right")
    table.add_column("Share", justify="right")
    for name, ms in breakdown:
        table.add_row(name, f"{ms:.0f}", f"{ms / total:.0%}")
    return table


NOTES = (
    f"¹ {IDEMPOTENCY_FOOTNOTE}\n"
    "² time.process_time() around process() (after one warm-up "
    "event, so clients exist: the cold cost is in the next table).\n"
    "³ tracemalloc peak of Python allocations during process(), measured in a separate run "
    "because tracing slows the timed runs down.\n"
    "⁴ ru_maxrss of this bench process so far (rich, boto3 and the clients included); the "
    "Lambda-like figure is the cold-start table's peak RSS."
)
COLD_NOTES = (
    "Import: wall time of `import app` in a fresh interpreter, start-up excluded, with the "
    "environment Lambda sets and the template's defaults (TraceAwsCalls=false: the X-Ray SDK is "
    "not loaded; run with --trace-aws-calls for the other setting), and nothing is written to "
    "__pycache__ (/var/task and /opt are read-only). "
    "First event: lambda_handler on one drifted bucket (clients created, remediation, audit, "
    "SNS, idempotency) against the moto server, which runs in another process. Deferring imports "
    "would move their time into the first event, not remove it."
)

BREAKDOWN_NOTE = (
    "Self time of each module under python -X importtime, summed by top-level package; a "
    "standard-library module counts for the package that imported it. -X importtime inflates "
    "every figure: read the shares."
)


def print_tables(
    measurements: list[Measurement],
    colds: list[ColdStart],
    breakdown: tuple[str, list[tuple[str, float]]] | None,
    args: argparse.Namespace,
) -> None:
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 220)
    console.print(_calls_table(measurements, args.runs))
    console.print(NOTES, highlight=False)
    if colds:
        console.print()
        console.print(_cold_table(colds, args.cold_runs))
        console.print(COLD_NOTES, highlight=False)
    if breakdown:
        console.print()
        console.print(_breakdown_table(breakdown[1], breakdown[0]))
        console.print(BREAKDOWN_NOTE, highlight=False)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bucketwarden.bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per scenario")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters per function")
    parser.add_argument("--skip-cold-start", action="store_true", help="only part 1")
    parser.add_argument(
        "--trace-aws-calls",
        action="store_true",
        help="cold start with the X-Ray SDK loaded (template parameter TraceAwsCalls=true)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global TRACE_AWS_CALLS  # noqa: PLW0603 - one switch read by every cold-start child's env
    args = parse_args(argv)
    TRACE_AWS_CALLS = args.trace_aws_calls
    with moto_server() as endpoint, emulated_aws(endpoint):
        stack = create_stack()
        measurements = [measure(item, stack, args.runs) for item in SCENARIOS]
        colds: list[ColdStart] = []
        breakdown: tuple[str, list[tuple[str, float]]] | None = None
        if not args.skip_cold_start:
            colds = [cold_start(family, stack, endpoint, args.cold_runs) for family in FAMILIES]
            if any(c.import_median >= MAX_IMPORT_MS for c in colds):
                slowest = max(colds, key=lambda c: c.import_median)
                family = next(f for f, folder in FAMILIES.items() if folder == slowest.function)
                breakdown = (slowest.function, import_breakdown(family, stack, endpoint))
    if args.json:
        rows = [measurement_row(m) for m in measurements] + [cold_row(c) for c in colds]
        if breakdown:
            function, packages = breakdown
            rows += [
                {"kind": "import_breakdown", "function": function, "package": n, "self_ms": ms}
                for n, ms in packages
            ]
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print_tables(measurements, colds, breakdown, args)
    failed = any(m.failures() for m in measurements) or any(c.failures() for c in colds)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
