"""The sweep's Lambda function: every bucket on a schedule, one summary, compliance metrics.

EventBridge starts a sweep on the SweepSchedule. The function lists every bucket (anew in each
invocation, in name order) and sweeps them until its time runs short; it then invokes itself
asynchronously with the last bucket done and the totals so far, and the next invocation resumes
after that bucket. The invocation that judges the last bucket publishes the one summary and the
compliance metrics.

Each invocation is claimed in the idempotency table under its sweep id and number, so a
duplicate delivery (EventBridge and Lambda's asynchronous queue deliver at least once) sweeps
nothing twice and sends no second summary.

An event that carries any of a continuation's fields is a continuation and must be a whole one:
a partial or mistyped payload (a hand-made invoke, an edited dead-letter message) is refused
with the reason, not run as a new sweep (a duplicate) and not raised (Lambda would retry it in
vain, then dead-letter it).

In organization mode (org_sweep.py) the scheduled invocation plans the sweep and starts its
first accounts; each account is then swept by invocations of its own (an account's start, then
its continuations, each naming the account and claimed under it), and the invocation that
finishes the last account publishes the organization's one summary. A payload naming an account
that the sweep's plan does not list is refused.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bucketwarden import services
from bucketwarden.accounts import ACCOUNT_ID, MemberRoleUnavailable, account_access
from bucketwarden.audit import AuditStore
from bucketwarden.aws import client
from bucketwarden.catalogue import CONTROL_IDS, CONTROLS
from bucketwarden.claims import claim_store
from bucketwarden.metrics import Metrics
from bucketwarden.org_sweep import (
    FAN_OUT,
    AccountResult,
    SweepPlan,
    check_configuration,
    combined,
    next_in_lane,
    sweep_accounts,
)
from bucketwarden.outcome import Status, utc_now
from bucketwarden.reporter import Reporter
from bucketwarden.settings import Mode, Settings
from bucketwarden.summary import SweepSummary, Tally
from bucketwarden.sweep import OutcomeSink, Sweep, list_bucket_regions
from bucketwarden.tracing import traced

logger = Logger(service="bucketwarden", child=True)

# Stop taking chunks of buckets when less time than this is left: enough for one more chunk
# whose calls are throttled and retried, then the hand-over or the summary.
SAFETY_MARGIN_MS = 120_000
# With a short timeout (a test, a small account), stop when this share of it is left instead.
SHORT_TIMEOUT_SHARE = 0.25
# Buckets judged at once: enough to overlap the calls' latency, few enough for the clients'
# adaptive retries to absorb throttling.
WORKERS = 16
# Subjects named in the summary; only these are carried from one invocation to the next.
WORST_OFFENDERS = 10
# How long a finished invocation is remembered, so that a late duplicate is recognised.
IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60

SweepHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


# The fields of the payload one invocation hands to the next (Progress.handover), besides the
# `account` of an organization's sweep (which a scheduled event's envelope has too).
CONTINUATION_FIELDS = frozenset({"sweep_id", "started_at", "invocation", "resume_after", "tally"})
# What an account's first invocation is given (Progress.account_start).
ACCOUNT_START_FIELDS = frozenset({"sweep_id", "started_at", "account"})
_STATUSES = frozenset(status.value for status in Status)
_Count = Annotated[int, Field(ge=0)]
_Text = Annotated[str, Field(min_length=1)]
_AccountId = Annotated[str, Field(pattern=ACCOUNT_ID.pattern)]


class ContinuationRefused(ValueError):
    """A payload that names itself a continuation but is not a whole, well-typed one."""

    def __init__(self, reason: str, sweep_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.sweep_id = sweep_id


class CarriedTally(BaseModel):
    """Tally.to_dict as JSON carries it: counts per control and status, the worst subjects."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)
    by_control: dict[str, dict[str, _Count]]
    findings_by_bucket: dict[str, _Count]
    subjects: _Count
    flagged: _Count
    # Absent from the payloads of a sweep started before this field existed.
    warned_by_bucket: dict[str, _Count] = Field(default_factory=dict)

    @field_validator("by_control")
    @classmethod
    def _known_statuses(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for control, counts in value.items():
            unknown = sorted(set(counts) - _STATUSES)
            if unknown:
                raise ValueError(f"{control}: unknown status {', '.join(map(repr, unknown))}")
        return value


class Continuation(BaseModel):
    """The payload of Progress.handover, checked field by field before anything is swept."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)
    sweep_id: _Text
    started_at: _Text
    invocation: Annotated[int, Field(ge=1)]
    resume_after: _Text
    tally: CarriedTally
    # The member (or hub) account this continuation sweeps, in an organization's sweep.
    account: _AccountId | None = None

    @field_validator("started_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        return _iso_time(value)


def _iso_time(value: str) -> str:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("must be an ISO 8601 date and time") from None
    return value


class AccountStart(BaseModel):
    """The payload that starts one account of an organization's sweep (Progress.account_start)."""

    model_config = ConfigDict(extra="forbid", strict=True, defer_build=True)
    sweep_id: _Text
    started_at: _Text
    account: _AccountId

    @field_validator("started_at")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        return _iso_time(value)


def _refusal(error: ValidationError) -> str:
    """Every problem of a continuation payload, by field: `invocation: Input should be ...`."""
    problems = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "payload"
        problems.append(f"{where}: {problem['msg']}")
    return "malformed sweep continuation (" + "; ".join(problems) + ")"


@dataclass
class Progress:
    """Where a sweep stands: the payload one invocation hands to the next."""

    sweep_id: str
    started_at: str
    invocation: int = 1
    resume_after: str | None = None
    tally: Tally = field(default_factory=Tally)
    # The account swept, in an organization's sweep (None: the stack's own, as ever).
    account: str | None = None

    @classmethod
    def from_event(cls, event: Any) -> Progress:
        """A continuation payload, or a new sweep (the scheduled event, or a manual start).

        Raises ContinuationRefused when the event has a continuation's fields but is not a
        whole continuation: starting a new sweep instead would sweep every bucket twice.
        """
        event = event if isinstance(event, Mapping) else {}
        if not CONTINUATION_FIELDS & event.keys():
            # EventBridge keeps an event's id when it delivers it again: one sweep per event.
            sweep_id = str(event.get("id") or uuid.uuid4())
            return cls(sweep_id=sweep_id, started_at=utc_now().isoformat())
        try:
            if "account" in event and event.keys() <= ACCOUNT_START_FIELDS:
                start = AccountStart.model_validate(dict(event))
                return cls(start.sweep_id, start.started_at, account=start.account)
            payload = Continuation.model_validate(dict(event))
        except ValidationError as error:
            named = event.get("sweep_id")
            raise ContinuationRefused(
                _refusal(error), named if isinstance(named, str) else None
            ) from error
        return cls(
            sweep_id=payload.sweep_id,
            started_at=payload.started_at,
            invocation=payload.invocation,
            resume_after=payload.resume_after,
            tally=Tally.from_dict(payload.tally.model_dump()),
            account=payload.account,
        )

    def handover(self, resume_after: str) -> dict[str, Any]:
        """The next invocation's payload (the buckets are listed again there, not carried)."""
        return {
            "sweep_id": self.sweep_id,
            "started_at": self.started_at,
            "invocation": self.invocation + 1,
            "resume_after": resume_after,
            "tally": self.tally.to_dict(worst=WORST_OFFENDERS),
            **({"account": self.account} if self.account is not None else {}),
        }

    def account_start(self, account: str) -> dict[str, Any]:
        """The payload of `account`'s first invocation in this organization's sweep."""
        return {"sweep_id": self.sweep_id, "started_at": self.started_at, "account": account}

    def claim_key(self) -> tuple[str, dict[str, Any]]:
        """The idempotency key of this invocation and its path: an account's invocations are
        claimed under the account too."""
        if self.account is None:
            return "[sweep_id, invocation]", {
                "sweep_id": self.sweep_id,
                "invocation": self.invocation,
            }
        key = {"sweep_id": self.sweep_id, "account": self.account, "invocation": self.invocation}
        return "[sweep_id, account, invocation]", key


@dataclass
class TimeBudget:
    """When an invocation must stop taking buckets; never without a Lambda context."""

    context: Any
    margin_ms: int

    @classmethod
    def of(cls, context: Any) -> TimeBudget:
        if context is None:
            return cls(None, 0)
        at_start = context.get_remaining_time_in_millis()
        return cls(context, min(SAFETY_MARGIN_MS, int(at_start * SHORT_TIMEOUT_SHARE)))

    def out_of_time(self) -> bool:
        if self.context is None:
            return False
        return bool(self.context.get_remaining_time_in_millis() < self.margin_ms)


def invoke_async(function_arn: str, payload: dict[str, Any]) -> None:
    """Queue the next invocation (InvocationType Event: Lambda retries it and dead-letters it)."""
    region = function_arn.split(":")[3] or None
    client("lambda", region).invoke(
        FunctionName=function_arn,
        InvocationType="Event",
        Payload=json.dumps(payload).encode(),
    )


def sweep(
    event: Any,
    context: Any = None,
    *,
    workers: int = WORKERS,
    on_outcomes: OutcomeSink | None = None,
    metrics: Metrics | None = None,
) -> dict[str, Any]:
    """One invocation of the sweep; returns what it did (continued, finished, duplicate, or
    refused: a malformed continuation, answered without an exception so Lambda does not retry).
    Metrics are printed (EMF) unless `metrics` publishes them elsewhere."""
    settings = Settings.from_env(CONTROL_IDS)
    check_configuration(settings)
    # As handler.process: in process (the local mode) the context names the function, whose
    # name is the session name of the member roles it assumes.
    function_name = settings.function_name or getattr(context, "function_name", None)
    settings = replace(settings, function_name=function_name)
    metrics = metrics or Metrics()
    try:
        progress = Progress.from_event(event)
        planned = _planned_accounts(settings, progress, context)
    except ContinuationRefused as refused:
        logger.error(
            "sweep continuation refused, nothing swept",
            extra={"reason": refused.reason, "sweep_id": refused.sweep_id},
        )
        metrics.emit("InvalidEvents", "none")
        return {"status": "refused", "sweep_id": refused.sweep_id, "reason": refused.reason}
    run = _Invocation(settings, progress, context, workers, on_outcomes, metrics, planned)
    if settings.dry_run or not settings.idempotency_table:
        return run.start()
    # The whole record is kept (not the event functions' claim only): a duplicate arriving
    # after the invocation finished must not sweep again either.
    key_path, key = progress.claim_key()
    table = settings.idempotency_table
    store, config = claim_store(table, context, key_path, IDEMPOTENCY_TTL_SECONDS, True)

    @idempotent_function(data_keyword_argument="key", persistence_store=store, config=config)
    def claim(key: dict[str, Any]) -> dict[str, Any]:
        return run.start()

    try:
        return dict(claim(key=key))
    except IdempotencyAlreadyInProgressError:
        logger.warning("duplicate delivery of a sweep invocation", extra=key)
        return {**key, "status": "duplicate"}


def _owner(context: Any) -> str:
    """This invocation (Lambda's retry of it has the same request id)."""
    return str(getattr(context, "aws_request_id", None) or uuid.uuid4())


def _planned_accounts(
    settings: Settings, progress: Progress, context: Any
) -> tuple[str, ...] | None:
    """The accounts of the sweep an account's invocation belongs to (None for a single
    account's sweep). ContinuationRefused when the payload names an account the plan does not
    list: only the hub's own function writes the plan, in the hub's table."""
    account = progress.account
    if account is None:
        return None
    if not settings.organization_mode:
        reason = f"account {account}: this stack sweeps only its own account"
        raise ContinuationRefused(reason, progress.sweep_id)
    table = settings.idempotency_table
    if table and not settings.dry_run:
        planned = SweepPlan(table, _owner(context)).accounts(progress.sweep_id)
    else:
        planned = sweep_accounts(settings)
    if planned is None or account not in planned:
        reason = f"account {account} is not among the accounts of sweep {progress.sweep_id}"
        raise ContinuationRefused(reason, progress.sweep_id)
    return planned


@dataclass
class _Invocation:
    """One invocation's work: sweep from where the sweep stands, then hand over or finish."""

    settings: Settings
    progress: Progress
    context: Any
    workers: int
    on_outcomes: OutcomeSink | None
    metrics: Metrics
    # An organization's sweep: its plan's accounts, in order (None for a single account's).
    planned: tuple[str, ...] | None = None

    def start(self) -> dict[str, Any]:
        """An account's invocation, an organization's start, or a single account's sweep."""
        if self.progress.account is not None:
            return self.sweep_account(self.progress.account)
        new_sweep = self.progress.resume_after is None and self.progress.invocation == 1
        if self.settings.organization_mode and new_sweep:
            return self.start_organization()
        return self.sweep()

    def sweep(self) -> dict[str, Any]:
        budget = TimeBudget.of(self.context)
        store = services.audit_store(self.settings, self.metrics)
        reporter = services.reporter(self.settings, store, self.metrics, sweep=True)
        sweeper = Sweep(
            self.settings, CONTROLS, reporter=reporter, store=store, workers=self.workers
        )
        regions = list_bucket_regions(client("s3"))
        progress = self.progress
        result = sweeper.run(
            list(regions),
            resume_after=progress.resume_after,
            out_of_time=budget.out_of_time,
            on_outcomes=self.on_outcomes,
            tally=progress.tally,
            regions=regions,
        )
        if result.resume_after is not None:
            return self.hand_over(result.resume_after)
        summary = SweepSummary(
            sweep_id=progress.sweep_id,
            started_at=progress.started_at,
            finished_at=utc_now().isoformat(),
            invocations=progress.invocation,
            controls=tuple(control.id for control in sweeper.controls),
            tally=result.tally,
            worst_count=WORST_OFFENDERS,
        )
        self.finish(summary, reporter)
        return {"status": "finished", **summary.to_dict()}

    def hand_over(self, resume_after: str) -> dict[str, Any]:
        payload = self.progress.handover(resume_after)
        invoke_async(self.context.invoked_function_arn, payload)
        logger.info(
            "sweep continues in the next invocation",
            extra={key: payload[key] for key in ("sweep_id", "invocation", "resume_after")},
        )
        return {"status": "continued", **payload}

    # -- an organization ----------------------------------------------------------------------

    def _plan(self) -> SweepPlan | None:
        """The sweep's plan in the idempotency table; None where there is none (a dry run, the
        CLI): the accounts are then swept one after the other in this invocation."""
        table = self.settings.idempotency_table
        if not table or self.settings.dry_run:
            return None
        return SweepPlan(table, _owner(self.context))

    def start_organization(self) -> dict[str, Any]:
        """Plan the sweep and start its first FAN_OUT accounts, one invocation each."""
        accounts = sweep_accounts(self.settings)
        plan = self._plan()
        if plan is None:
            return self.sweep_in_turn(accounts)
        progress = self.progress
        planned = plan.create(progress.sweep_id, progress.started_at, accounts)
        for account in planned[:FAN_OUT]:
            invoke_async(self.context.invoked_function_arn, progress.account_start(account))
        logger.info(
            "organization sweep started",
            extra={"sweep_id": progress.sweep_id, "accounts": len(planned), "at_once": FAN_OUT},
        )
        return {"status": "started", "sweep_id": progress.sweep_id, "accounts": len(planned)}

    def sweep_in_turn(self, accounts: tuple[str, ...]) -> dict[str, Any]:
        """Every account in this invocation, then the summary (no plan to share the work)."""
        store = services.audit_store(self.settings, self.metrics)
        reporter = services.reporter(self.settings, store, self.metrics, sweep=True)
        results = []
        for account in accounts:
            found = self.account_result(account, reporter, store)
            if not isinstance(found, AccountResult):  # no time budget: never handed over
                raise RuntimeError(f"account {account} stopped at {found} with no deadline")
            results.append(found)
        summary = self.organization_summary(results)
        self.finish(summary, reporter)
        return {"status": "finished", **summary.to_dict()}

    def sweep_account(self, account: str) -> dict[str, Any]:
        """Sweep one account from where it stands: hand over, or record it done."""
        store = services.audit_store(self.settings, self.metrics)
        reporter = services.reporter(self.settings, store, self.metrics, sweep=True)
        found = self.account_result(account, reporter, store, TimeBudget.of(self.context))
        if not isinstance(found, AccountResult):
            return self.hand_over(found)
        return self.account_done(found, reporter)

    def account_result(
        self,
        account: str,
        reporter: Reporter,
        store: AuditStore,
        budget: TimeBudget | None = None,
    ) -> AccountResult | str:
        """The account's result, or the last bucket done when time ran short. An account whose
        member role cannot be assumed is a result too (reported in the summary, counted), and
        the sweep goes on with the others."""
        access = account_access(self.settings)
        progress = self.progress if self.progress.account == account else None
        try:
            if access is not None:
                access.reach(account)
        except MemberRoleUnavailable as unavailable:
            logger.warning(
                "member account not swept: its member role is unavailable",
                extra={"account": account, "reason": unavailable.reason},
            )
            reporter.count_account("MemberRoleUnavailable", account)
            invocations = progress.invocation if progress else 1
            return AccountResult(account, invocations=invocations, unavailable=unavailable.reason)
        sweeper = Sweep(
            self.settings,
            CONTROLS,
            reporter=reporter,
            store=store,
            workers=self.workers,
            account=account,
            accounts=access,
        )
        regions = list_bucket_regions(sweeper.client("s3"))
        result = sweeper.run(
            list(regions),
            resume_after=progress.resume_after if progress else None,
            out_of_time=budget.out_of_time if budget else lambda: False,
            on_outcomes=self.on_outcomes,
            tally=progress.tally if progress else Tally(),
            regions=regions,
        )
        if result.resume_after is not None:
            return result.resume_after
        return AccountResult(account, result.tally, progress.invocation if progress else 1)

    def account_done(self, result: AccountResult, reporter: Reporter) -> dict[str, Any]:
        """Record the account's result, start the next account of its lane, and publish the
        summary when this was the sweep's last account."""
        plan = self._plan()
        planned = self.planned or ()
        if plan is None:  # a dry run's account payload: nothing shared to record it in
            return {"status": "account-finished", **result.line().to_dict()}
        publishes = plan.finish(self.progress.sweep_id, result, WORST_OFFENDERS)
        following = next_in_lane(planned, result.account)
        if following is not None:
            payload = self.progress.account_start(following)
            invoke_async(self.context.invoked_function_arn, payload)
        if not publishes:
            return {
                "status": "account-finished",
                "sweep_id": self.progress.sweep_id,
                **result.line().to_dict(),
            }
        summary = self.organization_summary(plan.results(self.progress.sweep_id, planned))
        self.finish(summary, reporter)
        return {"status": "finished", **summary.to_dict()}

    def organization_summary(self, results: list[AccountResult]) -> SweepSummary:
        tally, lines, invocations = combined(results)
        enabled = [
            c.id for c in CONTROLS if self.settings.mode(c.id, c.default_mode) is not Mode.OFF
        ]
        return SweepSummary(
            sweep_id=self.progress.sweep_id,
            started_at=self.progress.started_at,
            finished_at=utc_now().isoformat(),
            invocations=invocations,
            controls=tuple(enabled),
            tally=tally,
            worst_count=WORST_OFFENDERS,
            accounts=lines,
        )

    @staticmethod
    def finish(summary: SweepSummary, reporter: Reporter) -> None:
        """The sweep's one notification and its compliance metrics (none in a dry run)."""
        logger.info("sweep finished", extra={"summary": summary.to_dict()})
        reporter.summarize(summary)


def lambda_handler_for_sweep(metrics: Metrics | None = None) -> SweepHandler:
    """The sweep's Lambda entry point: structured logs with the request id, X-Ray tracing;
    `metrics` when they go elsewhere than stdout (the local mode's)."""
    root_logger = Logger(service="bucketwarden")

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return sweep(event, context, metrics=metrics)

    return root_logger.inject_lambda_context(traced(lambda_handler), log_event=False)
