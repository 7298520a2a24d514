"""`make bench`, part 3: a read-only sweep (`bucketwarden scan`) of 500 and 2,000 buckets.

A moto server in its own process holds the buckets of an account whose Block Public Access is
on. Each bucket starts compliant, as S3 makes a new bucket since 2023 (Block Public Access, SSE-S3,
ACLs disabled: moto applies none of these) plus what the sweep's settings ask for (versioning on,
the bucket policy's TLS rules), as in an account the service already looks after. A quarter of
them then drift in one of six ways, each as S3 lets it happen: a public ACL (Block Public Access
off and ACLs enabled first), a public policy statement (Block Public Access off first),
versioning suspended, the TLS rules deleted with the policy, Block Public Policy off, ACLs
enabled. The bench checks that every drift is found and that no compliant bucket has a finding.
The sweep runs as the CLI's `scan` runs it, and the bench prints wall time, buckets per second,
API calls per bucket, the requests per second the server answered, and both processes' CPU.

The server (`bench.moto_server`) is moto's app in one Python process, with keep-alive
connections. moto names no region in ListBuckets, so the sweep names them with a listing per
region (S3 names them in its one listing). Each S3 call costs a few milliseconds of CPU on each
side (signing, botocore's hooks, moto's dispatch and XML), and each side is one Python process:
on two cores the wall time is bound by CPU and moves with the machine's load. The bench prints
both processes' CPU seconds and the load.

Targets: no surface read twice for one bucket (reads per bucket ≤ surfaces, plus the bucket's
location and, on drift, its tags and website), every drift found, and 2,000 buckets in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bucketwarden import aws, services
from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.public_access_block import SETTINGS as BLOCK_PUBLIC_ACCESS_SETTINGS
from bucketwarden.controls.secure_transport import rules as tls_rules
from bucketwarden.metrics import Metrics
from bucketwarden.outcome import Outcome, Status
from bucketwarden.reporter import DryRunReporter
from bucketwarden.settings import Mode, Settings
from bucketwarden.sweep import Sweep, list_bucket_regions
from bucketwarden_tools.bench import ACCOUNT, emulated_aws, moto_server_process
from bucketwarden_tools.calls import API_CALLS, uncounted

REGION = "us-east-1"
SIZES = (500, 2000)
MAX_SECONDS_2000 = 60.0
WORKERS = 16
# Reads a bucket may cost besides one per surface: its location, and on drift its tags (for
# exemptions) and its website (when anyone can read it).
EXTRA_READS = {"s3.GetBucketLocation", "s3.GetBucketTagging", "s3.GetBucketWebsite"}
# The reads of the bucket surfaces (one each), as bucketwarden_tools.calls.API_CALLS names them.
SURFACE_READS = {
    "s3.GetPublicAccessBlock",
    "s3.GetBucketAcl",
    "s3.GetBucketOwnershipControls",
    "s3.GetBucketPolicy",
    "s3.GetBucketEncryption",
    "s3.GetBucketVersioning",
    "s3.GetBucketLogging",
    "s3.GetObjectLockConfiguration",
    "s3.GetBucketLifecycleConfiguration",
    "s3.GetBucketNotificationConfiguration",
    "s3.GetBucketReplication",
}

# Old versions expire: the lifecycle rule every baseline bucket has.
LIFECYCLE = {
    "Rules": [
        {
            "ID": "old-versions",
            "Status": "Enabled",
            "Filter": {},
            "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
        }
    ]
}

# The settings of the sweep (every control on, the defaults): the baseline buckets meet.
# Every control at its default but mfa-delete: only the root user can turn MFA delete on (and
# moto keeps no MFADelete), so it would find every bucket of the population.
SETTINGS = Settings(dry_run=True, modes={"mfa-delete": Mode.OFF})
ALL_ON = dict.fromkeys(BLOCK_PUBLIC_ACCESS_SETTINGS, True)
PUBLIC_READ = {
    "Effect": "Allow",
    "Principal": "*",
    "Action": "s3:GetObject",
    "Resource": "{arn}/*",
}


def _tls_policy(bucket: str, *extra: dict[str, Any]) -> str:
    """The bucket's policy: the TLS rules the settings ask for, then `extra` statements."""
    arn = f"arn:aws:s3:::{bucket}"
    statements = [rule.statement(arn) for rule in tls_rules(SETTINGS)]
    statements += [json.loads(json.dumps(s).replace("{arn}", arn)) for s in extra]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _compliant(s3: Any, bucket: str, queue_arn: str) -> None:
    """A new bucket as S3 makes it since 2023 (Block Public Access, SSE-S3, ACLs disabled: moto
    applies none of these), with versioning on and the bucket policy's TLS rules, and what its
    owners add: a lifecycle rule that expires noncurrent versions, events sent to a queue."""
    s3.create_bucket(Bucket=bucket)
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=ALL_ON)
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    _ownership(s3, bucket, "BucketOwnerEnforced")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=bucket, Policy=_tls_policy(bucket))
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=LIFECYCLE)
    queue = {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [queue]}
    )


def _ownership(s3: Any, bucket: str, ownership: str) -> None:
    rules = {"Rules": [{"ObjectOwnership": ownership}]}
    s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=rules)


def _public_acl(s3: Any, bucket: str) -> None:
    """As S3 lets it happen: Block Public Access off and ACLs enabled first."""
    s3.delete_public_access_block(Bucket=bucket)
    _ownership(s3, bucket, "ObjectWriter")
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")


def _public_policy(s3: Any, bucket: str) -> None:
    """A public statement added beside the TLS rules, with Block Public Access off first."""
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=_tls_policy(bucket, PUBLIC_READ))


def _suspended(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def _no_tls_rule(s3: Any, bucket: str) -> None:
    s3.delete_bucket_policy(Bucket=bucket)


def _block_public_policy_off(s3: Any, bucket: str) -> None:
    configuration = {**ALL_ON, "BlockPublicPolicy": False}
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)


def _acls_enabled(s3: Any, bucket: str) -> None:
    _ownership(s3, bucket, "BucketOwnerPreferred")


# Each drifted bucket gets one of these, on top of the compliant baseline.
DRIFTS = {
    "public-acl": _public_acl,
    "public-policy": _public_policy,
    "versioning": _suspended,
    "secure-transport": _no_tls_rule,
    "bucket-public-access-block": _block_public_policy_off,
    "object-ownership": _acls_enabled,
}


@dataclass(frozen=True)
class Population:
    buckets: list[str]
    drifted: dict[str, str]  # bucket → the control whose surface was made to drift


def populate(
    endpoint: str,
    size: int,
    prefix: str,
    account: str = ACCOUNT,
    credentials: Mapping[str, str] | None = None,
) -> Population:
    """`size` compliant buckets, every fourth one drifted (set-up calls are not counted), in an
    account whose Block Public Access is on: the default credentials' account, or `account`
    with `credentials` of it."""
    made = {"endpoint_url": endpoint, "region_name": REGION, **(credentials or {})}
    s3 = uncounted(aws.new_client("s3", **made))
    s3control = uncounted(aws.new_client("s3control", **made))
    s3control.put_public_access_block(AccountId=account, PublicAccessBlockConfiguration=ALL_ON)
    sqs = uncounted(aws.new_client("sqs", **made))
    queue_url = sqs.create_queue(QueueName=f"{prefix}-events")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    queue_arn = attributes["Attributes"]["QueueArn"]
    names = [f"{prefix}-{index:05d}" for index in range(size)]
    drifted = {
        name: list(DRIFTS)[(index // 4) % len(DRIFTS)]
        for index, name in enumerate(names)
        if index % 4 == 0
    }

    def make(name: str) -> None:
        _compliant(s3, name, queue_arn)
        if name in drifted:
            DRIFTS[drifted[name]](s3, name)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(make, names))
    return Population(names, drifted)


@dataclass(frozen=True)
class SweepFigures:
    size: int
    seconds: float
    calls: Counter[str]
    outcomes: list[Outcome]
    missed: list[str]  # drifted buckets the sweep did not report for their control
    load: float = 0.0  # the machine's 1-minute load average when the sweep ended
    client_cpu: float = 0.0  # CPU seconds of this process (the sweep) during the sweep
    server_cpu: float | None = None  # CPU seconds of the moto server, where /proc tells
    # Findings on buckets left compliant, as "bucket control" (should be none).
    false_findings: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return self.size / self.seconds if self.seconds else 0.0

    @property
    def requests_per_second(self) -> float:
        """Calls the server answered per second (botocore retried none: moto never throttles)."""
        return self.calls.total() / self.seconds if self.seconds else 0.0

    def cpu_per_call(self, seconds: float | None) -> float | None:
        """Milliseconds of CPU per API call, of the sweep's or the server's process."""
        calls = self.calls.total()
        return None if seconds is None or not calls else 1000 * seconds / calls

    def per_bucket(self, names: set[str] | None = None) -> float:
        counted = sum(n for op, n in self.calls.items() if names is None or op in names)
        return counted / self.size

    @property
    def repeated_reads(self) -> int:
        """Surface reads beyond one per bucket (should be 0)."""
        return sum(max(0, n - self.size) for op, n in self.calls.items() if op in SURFACE_READS)

    def failures(self) -> list[str]:
        wrong = []
        if self.repeated_reads:
            wrong.append(f"{self.repeated_reads} repeated surface reads")
        if self.missed:
            wrong.append(f"{len(self.missed)} drifts missed")
        if self.false_findings:
            wrong.append(f"{len(self.false_findings)} findings on compliant buckets")
        if self.size >= 2000 and self.seconds > MAX_SECONDS_2000:
            wrong.append(f"{self.seconds:.1f} s > {MAX_SECONDS_2000:.0f} s")
        return wrong


def sweep(population: Population, server_pid: int | None = None) -> SweepFigures:
    """A read-only sweep of the population, as `bucketwarden scan` runs it."""
    # Read-only: a dry run's reporter records nothing, and its store reads no audit table.
    store = services.audit_store(SETTINGS, Metrics())
    runner = Sweep(SETTINGS, CONTROLS, reporter=DryRunReporter(), store=store, workers=WORKERS)
    outcomes: list[Outcome] = []
    API_CALLS.clear()
    server_before = process_cpu_seconds(server_pid)
    client_before = own_cpu_seconds()
    started = time.perf_counter()
    names = set(population.buckets)
    regions = list_bucket_regions(aws.client("s3", REGION))
    listed = sorted(name for name in regions if name in names)
    runner.run(listed, on_outcomes=outcomes.extend, region=REGION, regions=regions)
    seconds = time.perf_counter() - started
    client_cpu = own_cpu_seconds() - client_before
    server_after = process_cpu_seconds(server_pid)
    server_cpu = (
        None if server_before is None or server_after is None else server_after - server_before
    )
    found = {(o.bucket, o.control) for o in outcomes if o.status is Status.NONCOMPLIANT}
    missed = [b for b, control in population.drifted.items() if (b, control) not in found]
    false_findings = [
        f"{o.bucket} {o.control}"
        for o in outcomes
        if o.bucket in names and o.bucket not in population.drifted
        if o.status is not Status.COMPLIANT
    ]
    calls = API_CALLS.snapshot()
    load = os.getloadavg()[0]
    return SweepFigures(
        len(listed),
        seconds,
        calls,
        outcomes,
        missed,
        load,
        client_cpu,
        server_cpu,
        false_findings,
    )


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int | None) -> float | None:
    """User and system CPU seconds of another process, from /proc (Linux); None elsewhere."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _table(results: list[SweepFigures]) -> Table:
    table = Table(title="Part 3: read-only sweep (scan) on a moto server")
    for column in (
        "buckets",
        "wall s",
        "load",
        "buckets/s",
        "API calls/bucket",
        "requests/s",
        "CPU s: sweep / server",
        "CPU ms/call: sweep / server",
        "surface reads/bucket",
        "repeated reads",
        "drifts found",
        "verdict",
    ):
        table.add_column(column, justify="right")
    for result in results:
        wrong = result.failures()
        drifted = sum(1 for o in result.outcomes if o.status is Status.NONCOMPLIANT)
        table.add_row(
            str(result.size),
            f"{result.seconds:.1f}",
            f"{result.load:.1f}",
            f"{result.per_second:.0f}",
            f"{result.per_bucket():.1f}",
            f"{result.requests_per_second:.0f}",
            f"{result.client_cpu:.0f} / {_seconds(result.server_cpu)}",
            f"{_milliseconds(result.cpu_per_call(result.client_cpu))} / "
            f"{_milliseconds(result.cpu_per_call(result.server_cpu))}",
            f"{result.per_bucket(SURFACE_READS):.1f}",
            str(result.repeated_reads),
            f"{drifted} ({len(result.missed)} missed)",
            "[green]PASS[/green]" if not wrong else "[red]FAIL: " + "; ".join(wrong) + "[/red]",
        )
    return table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    results = []
    with moto_server_process() as (endpoint, server), emulated_aws(endpoint):
        for size in args.sizes:
            console.print(f"creating {size} buckets on the moto server ...")
            population = populate(endpoint, size, prefix=f"sweep{size}")
            results.append(sweep(population, server.pid))
    console.print(_table(results))
    console.print(
        f"Targets: every drift found, no finding on a compliant bucket, no surface read twice "
        f"for a bucket (besides "
        f"{', '.join(sorted(EXTRA_READS))}), 2,000 buckets under {MAX_SECONDS_2000:.0f} s. "
        f"{WORKERS} threads; the moto server is one Python process. Load: the machine's 1-minute "
        f"load average ({os.cpu_count()} cores) as the sweep ended."
    )
    failed = any(result.failures() for result in results)
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
