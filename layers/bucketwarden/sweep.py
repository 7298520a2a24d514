"""The sweep: every bucket, the account and every access point, judged by every enabled control.

CloudTrail to EventBridge delivery is best effort, so events alone cannot promise compliance. The
sweep runs the same engine without an event (`found_by` "sweep"): one read per surface, the same
exemptions, fixes per mode, verification and audit records. It serves the scheduled Lambda
function and the CLI's `scan` and `remediate`.

Buckets are taken in name order, a chunk at a time on a bounded thread pool. Between chunks the
caller may say time is short: the sweep then stops after a whole chunk and returns the last
bucket done, and the next run resumes after it, so no bucket is skipped or done twice. The
question is asked as a chunk's last buckets start, and the next chunk queues behind them.

Each bucket is read with a client of its own region: ListBuckets names it when asked for a page
(S3 adds `BucketRegion` then), else a listing per region or GetBucketLocation does. A surface
whose calls keep failing (throttling past the retries, 5xx) is a failed outcome for that bucket,
not the end of the sweep: one bad bucket does not stop ten thousand, and the next sweep tries
it again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from bucketwarden.accounts import AccountAccess
from bucketwarden.audit import AuditStore
from bucketwarden.aws import GONE_CODES, client, error_code
from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.base import Control, Service
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.engine import Engine, EventContext, surface_groups
from bucketwarden.outcome import Outcome, Status
from bucketwarden.reporter import Reporter
from bucketwarden.settings import Mode, Settings
from bucketwarden.summary import NOT_FINDINGS, SWEEP_STATUSES, SweepSummary, Tally

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3control import S3ControlClient

# The summary's models, where callers of the sweep have always found them.
__all__ = ["NOT_FINDINGS", "SWEEP_STATUSES", "Sweep", "SweepResult", "SweepSummary", "Tally"]

FOUND_BY = "sweep"
SWEEP_FAMILY = "sweep"
# GetBucketLocation answers these for the regions that predate region names.
LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}
NOT_FOUND_CODES = frozenset({"NoSuchBucket"})
# The largest ListBuckets page. Asking for a page size makes S3 name each bucket's region, and
# accounts allowed more than 10,000 buckets must ask for pages.
LIST_PAGE_SIZE = 10_000
OutcomeSink = Callable[[list[Outcome]], None]

_MAKING_CLIENTS = threading.Lock()
logger = Logger(service="bucketwarden", child=True)


class SweepResult(NamedTuple):
    """What one sweep pass did, and where the next invocation resumes."""

    tally: Tally
    # The last bucket done when the sweep stopped early; None when every bucket was done.
    resume_after: str | None


def list_bucket_regions(s3: S3Client) -> dict[str, str | None]:
    """Every bucket name, in order, with its region when the listing names it (else None).

    S3 names each bucket's region in ListBuckets. Where an endpoint does not (moto), and more
    buckets lack one than the partition has regions, ListBuckets filtered by each region
    (`BucketRegion`, which S3 and moto accept) names them: a call per region instead of a
    GetBucketLocation per bucket.
    """
    found = _listed_buckets(s3)
    unnamed = {name for name, region in found.items() if region is None}
    regions = _partition_regions(s3) if unnamed else []
    if len(unnamed) > len(regions):
        found.update(_regions_by_filter(s3, regions, unnamed))
    found.update(list_directory_buckets(s3))
    return dict(sorted(found.items()))


def list_directory_buckets(s3: S3Client) -> dict[str, str | None]:
    """The directory buckets (S3 Express One Zone) of the client's region, each with that region
    (ListDirectoryBuckets answers for its regional endpoint; paginated).

    A listing refused or unknown to the endpoint (a role without
    s3express:ListAllMyDirectoryBuckets, an emulator) leaves them out with a warning: the
    general purpose buckets are swept all the same.
    """
    region = s3.meta.region_name
    found: dict[str, str | None] = {}
    more: dict[str, Any] = {}
    try:
        while True:
            page = s3.list_directory_buckets(**more)
            for bucket in page.get("Buckets", []):
                # Only directory buckets' names carry the suffix; an endpoint that answers with
                # general purpose buckets (moto's ListBuckets) adds none of them here.
                if is_directory_bucket(bucket.get("Name")):
                    found[bucket["Name"]] = region
            token = page.get("ContinuationToken")
            if not token:
                return found
            more = {"ContinuationToken": token}
    except (ClientError, BotoCoreError) as error:
        logger.warning(
            "directory buckets not listed", extra={"region": region, "error": str(error)}
        )
        return found


def _listed_buckets(s3: S3Client, **filters: str) -> dict[str, str | None]:
    pages = s3.get_paginator("list_buckets").paginate(
        PaginationConfig={"PageSize": LIST_PAGE_SIZE}, **filters
    )
    return {
        bucket["Name"]: bucket.get("BucketRegion") or None
        for page in pages
        for bucket in page.get("Buckets", [])
    }


def _partition_regions(s3: S3Client) -> list[str]:
    return boto3.session.Session().get_available_regions("s3", partition_name=s3.meta.partition)


def _regions_by_filter(s3: S3Client, regions: list[str], unnamed: set[str]) -> dict[str, str]:
    """The regions of `unnamed` buckets, from a listing per region. None at all when a bucket
    is listed in two regions: the endpoint ignored the filter. A bucket in none (a region that
    cannot be listed, a bucket made since) keeps its GetBucketLocation."""
    named: dict[str, str] = {}
    for region in regions:
        try:
            listed = _listed_buckets(s3, BucketRegion=region)
        except ClientError:
            continue
        for name in listed.keys() & unnamed:
            if name in named:
                return {}
            named[name] = region
    return named


def list_buckets(s3: S3Client) -> list[str]:
    """Every bucket name, in order (paginated: S3 returns pages past 10,000 buckets)."""
    return list(list_bucket_regions(s3))


def bucket_region(s3: S3Client, bucket: str) -> str:
    location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
    return LEGACY_LOCATIONS.get(location) or str(location)


def shared_client(service: Literal["s3"], region: str | None = None) -> S3Client:
    """`client`, built by one worker only. Its cache does not stop workers that ask for the same
    new client at once from each building one: that costs tens of milliseconds of CPU apiece
    (the service model is loaded again), before the first bucket is read."""
    with _MAKING_CLIENTS:
        return client(service, region)


def account_id() -> str:
    return str(client("sts").get_caller_identity()["Account"])


def access_point_arns(s3control: S3ControlClient, account: str) -> list[str]:
    arns: list[str] = []
    token: str | None = None
    while True:
        more: dict[str, Any] = {"NextToken": token} if token else {}
        page = s3control.list_access_points(AccountId=account, **more)
        arns += [point["AccessPointArn"] for point in page.get("AccessPointList", [])]
        token = page.get("NextToken")
        if not token:
            return arns


def controls_for(ids: Iterable[str] | None = None) -> tuple[Control, ...]:
    """The catalogue's controls, or those named (in catalogue order); unknown ids are an error."""
    if ids is None:
        return CONTROLS
    wanted = set(ids)
    unknown = wanted - {c.id for c in CONTROLS}
    if unknown:
        known = ", ".join(c.id for c in CONTROLS)
        raise ValueError(f"unknown control(s) {', '.join(sorted(unknown))}; known: {known}")
    return tuple(c for c in CONTROLS if c.id in wanted)


class Sweep:
    """One pass over the account's subjects with the engine, from the sweep's point of view."""

    def __init__(
        self,
        settings: Settings,
        controls: tuple[Control, ...] = CONTROLS,
        *,
        reporter: Reporter,
        store: AuditStore,
        workers: int = 8,
        chunk: int | None = None,
        account: str | None = None,
        accounts: AccountAccess | None = None,
    ) -> None:
        enabled = tuple(c for c in controls if settings.mode(c.id, c.default_mode) is not Mode.OFF)
        self.controls = enabled
        self.reporter = reporter
        # A member account of an organization (`account`, reached through `accounts`) is swept
        # with its member role's clients, and judged with the settings naming it as the account
        # (its own KMS keys are its account's), as the engine judges a member's event.
        self.member = accounts is not None and accounts.is_member(account)
        self.accounts = accounts if self.member else None
        if self.member:
            settings = replace(settings, account_id=account)
        self.engine = Engine(SWEEP_FAMILY, settings, reporter, store, enabled, accounts=accounts)
        # The account its outcomes name: the one given, else the stack's (ACCOUNT_ID; None when
        # unknown).
        self.account = account or settings.account_id
        self.workers = max(1, workers)
        self.chunk = chunk or self.workers * 4
        self.by_scope = {
            scope: [c for c in enabled if c.scope == scope]
            for scope in ("bucket", "account", "access-point")
        }

    # -- the account and its access points ----------------------------------------------------

    def account_outcomes(self, region: str | None) -> list[Outcome]:
        """The account-level controls and every access point (once per sweep, at its start)."""
        controls = self.by_scope["account"]
        points = self.by_scope["access-point"]
        if not controls and not points:
            return []
        # A member's account is the one named; the hub's own is asked of STS, as before.
        account = str(self.account) if self.member else account_id()
        # Asked of STS here anyway: the outcomes after it name the account too.
        self.account = self.account or account
        outcomes = self.check(controls, account, region) if controls else []
        if points:
            for arn in access_point_arns(self.client("s3control", region), account):
                outcomes += self.check(points, arn, _arn_region(arn))
        return outcomes

    # -- buckets ------------------------------------------------------------------------------

    def bucket_outcomes(self, bucket: str, region: str | None = None) -> list[Outcome]:
        """Every bucket control on one bucket, with the client of the bucket's region.

        `region` is the one ListBuckets gave; without it GetBucketLocation is asked.
        """
        controls = [c for c in self.by_scope["bucket"] if c.applies_to(bucket)]
        if not controls:
            return []
        if region is None:
            try:
                region = bucket_region(self.client("s3"), bucket)
            except ClientError as error:
                if error_code(error) in NOT_FOUND_CODES:
                    return self.gone(controls, bucket)
                return self.not_checked(controls, bucket, None, error)
            except BotoCoreError as error:
                return self.not_checked(controls, bucket, None, error)
        self.client("s3", region)  # the engine's client for the region, built once
        return self.check(controls, bucket, region)

    def client(self, service: Service, region: str | None = None) -> Any:
        """A client of the swept account: the member role's for a member (AccountAccess makes
        each once, under the account's lock), else the hub's own, built by one worker only."""
        if self.accounts is not None:
            return self.accounts.client(service, self.account, region)
        if service == "s3":
            return shared_client("s3", region)
        return client(service, region)

    # -- one subject --------------------------------------------------------------------------

    def check(self, controls: list[Control], subject: str, region: str | None) -> list[Outcome]:
        """The controls on one subject, one surface at a time, so that a surface whose calls keep
        failing fails only its own controls: the event path raises for Lambda to retry the
        event, but the sweep has thousands of other subjects to judge and runs again anyway."""
        context = EventContext(
            None, region, found_by=FOUND_BY, account=self.account, accounts=self.accounts
        )
        outcomes: list[Outcome] = []
        for group in surface_groups(controls):
            try:
                outcomes += self.engine.run_surface(group, context, subject)
            except (ClientError, BotoCoreError) as error:
                outcomes += self.not_checked(group, subject, region, error)
        return outcomes

    def gone(self, controls: list[Control], bucket: str) -> list[Outcome]:
        """Skipped outcomes for a bucket deleted since the listing, as the engine words them."""
        reason = f"{GONE_CODES['NoSuchBucket']} no longer exists"
        return self._decided(controls, bucket, None, Status.SKIPPED, reason)

    def not_checked(
        self,
        controls: list[Control],
        subject: str,
        region: str | None,
        error: ClientError | BotoCoreError,
    ) -> list[Outcome]:
        """Failed outcomes for controls whose calls failed: audited, counted, alarmed."""
        if isinstance(error, ClientError):
            operation = getattr(error, "operation_name", "a call")
            cause = f"{error_code(error)} on {operation}"
        else:
            cause = type(error).__name__
        reason = f"not checked: {cause} after retries; the next sweep tries again"
        outcomes = self._decided(controls, subject, region, Status.FAILED, reason)
        for outcome in outcomes:
            self.reporter.report(outcome)
        return outcomes

    def _decided(
        self,
        controls: list[Control],
        subject: str,
        region: str | None,
        status: Status,
        reason: str,
    ) -> list[Outcome]:
        context = EventContext(None, region, found_by=FOUND_BY, account=self.account)
        settings = self.engine.settings
        return [
            replace(
                context.base(c, settings.mode(c.id, c.default_mode), subject),
                status=status,
                reason=reason,
            )
            for c in controls
        ]

    def run(
        self,
        buckets: list[str],
        *,
        resume_after: str | None = None,
        out_of_time: Callable[[], bool] = lambda: False,
        on_outcomes: OutcomeSink | None = None,
        tally: Tally | None = None,
        region: str | None = None,
        regions: Mapping[str, str | None] | None = None,
    ) -> SweepResult:
        """Sweep `buckets` (in name order) after `resume_after`; stop early when out of time.

        `regions` gives the buckets' regions where they are known (`list_bucket_regions`).
        """
        tally = tally or Tally()
        report = on_outcomes if on_outcomes is not None else (lambda outcomes: None)
        known = regions or {}
        if resume_after is None:
            found = self.account_outcomes(region)
            tally.add(found)
            report(found)
        todo = [name for name in sorted(buckets) if resume_after is None or name > resume_after]

        def count(outcomes: list[Outcome]) -> None:
            tally.subjects += 1
            tally.add(outcomes)
            report(outcomes)

        stopped_after = self._sweep_buckets(todo, known, out_of_time, count)
        # What the reporter queued (Security Hub findings) goes before this invocation ends.
        self.reporter.flush()
        return SweepResult(tally, resume_after=stopped_after)

    def _sweep_buckets(
        self,
        todo: list[str],
        regions: Mapping[str, str | None],
        out_of_time: Callable[[], bool],
        count: OutcomeSink,
    ) -> str | None:
        """Sweep `todo` a chunk at a time, outcomes counted in name order; the last bucket done
        when time ran out, else None."""
        chunks = list(_chunks(todo, self.chunk))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:

            def start(chunk: list[str]) -> list[Future[list[Outcome]]]:
                return [
                    pool.submit(self.bucket_outcomes, name, regions.get(name)) for name in chunk
                ]

            current: list[Future[list[Outcome]]] = []
            started = start(chunks[0]) if chunks else []
            try:
                for index, chunk in enumerate(chunks):
                    current, started = started, []
                    # When only the chunk's last `workers` buckets are left, all have started:
                    # time is asked then, and the next chunk starts behind them, so that no
                    # worker idles while the chunk's slowest buckets finish.
                    ask_at = max(0, len(current) - self.workers)
                    stopping = False
                    for position, future in enumerate(current):
                        if position == ask_at and index + 1 < len(chunks):
                            stopping = out_of_time()
                            started = [] if stopping else start(chunks[index + 1])
                        count(future.result())
                    if stopping:
                        return chunk[-1]
            finally:
                for future in current + started:  # after an error, what has not started never will
                    future.cancel()
        return None


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[3] if len(parts) > 3 and parts[3] else None
