"""What every control is: one configuration surface, read, judged and (if wrong) put right.

A control is pure apart from `read` and `apply`: `evaluate` computes the complete desired state of
its surface from a fresh read, so repeated, reordered or concurrent events converge.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, Protocol, TypeVar

from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden.settings import Mode, Settings

if TYPE_CHECKING:
    from bucketwarden.events import CloudTrailRecord

# The client a control reads and writes its surface with (S3 or S3 Control; see `service`).
Api = TypeVar("Api")
# The services whose clients the engine hands to controls.
Service = Literal["s3", "s3control", "cloudtrail"]

# A finding's severity label in the AWS Security Finding Format.
Severity = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]

# The surface's configuration as S3 returns it (ResponseMetadata removed), JSON-serialisable.
State = dict[str, Any] | None


class RecordReader(Protocol):
    """The audit records a control may read (the engine's `AuditStore`): only those whose
    integrity tag verifies, so that no one but BucketWarden can move a recorded baseline."""

    table: str | None

    def history(
        self,
        bucket: str,
        control: str,
        *,
        relevant: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]: ...


class CannotFix(Exception):
    """A fix that turns out impossible while it is applied (found only then): reported as failed.

    Retrying would not help, so the engine makes it an outcome instead of raising it to Lambda.
    """


@dataclass(frozen=True)
class Evaluation:
    """A control's verdict on a state: compliant or not, why, and what the fix writes."""

    compliant: bool
    reason: str
    desired: State = None
    # False when the fix cannot be made by the service (it is reported instead).
    fixable: bool = True
    # True when anyone can read the bucket's objects: it may be serving a website.
    public_read: bool = False


class RestoreTarget(NamedTuple):
    """What a rollback writes to get a state back, and what the surface must read back as."""

    desired: State  # what the control's `apply` writes
    expected: State  # what the surface must read back as (its `surface_of`)
    note: str | None = None  # why the surface ends up other than the state asked for
    # Other read-backs that mean the same (S3 applies a default where nothing is configured).
    equivalents: tuple[State, ...] = ()

    def reached(self, surface: State) -> bool:
        """Does the surface, read back after the write (its `surface_of`), hold the target?"""
        return surface in (self.expected, *self.equivalents)


class Control(ABC, Generic[Api]):
    id: str
    family: str
    title: str
    surface: str
    trigger_events: tuple[str, ...]
    # IAM actions the control's function needs; the template test checks the roles against these.
    read_actions: tuple[str, ...]
    write_actions: tuple[str, ...]
    # What the surface belongs to, and the client the engine hands to read and apply:
    # "bucket" controls get an "s3" client and a bucket name; "account" controls an "s3control"
    # client and the account id; "access-point" controls an "s3control" client and the access
    # point's ARN (see `subject`). A control of another service's surface names it ("cloudtrail":
    # the account's trails, read with a CloudTrail client of the region).
    scope: str = "bucket"
    service: Service = "s3"
    # The region the control's client must be of, whatever the subject's (None: the subject's):
    # S3 Control serves Multi-Region Access Points from us-west-2 only.
    service_region: str | None = None
    # True for controls that can find a bucket publicly readable: when one does, the engine
    # reads the bucket's website configuration (s3:GetBucketWebsite) to warn in the finding.
    checks_website: bool = False
    # True for surfaces people edit by hand (policies, ACLs), where a fix computed from a read
    # could overwrite an edit made since: the engine reads the surface again right before the
    # write, and judges again when it changed (see Engine._evaluate_and_fix).
    recheck_before_write: bool = False
    # True for controls that close public exposure: the flap breaker never holds them (they are
    # fixed every time, and a flap is escalated), and a rollback that would re-open what they
    # judge asks first (rollback.py).
    closes_public_exposure: bool = False
    # Keys of the state that `observe` reads from elsewhere than the surface (a baseline kept in
    # the audit table): a rollback neither restores nor compares them.
    derived_keys: tuple[str, ...] = ()
    # Why S3 may refuse to write a state back although the credentials allow the call (a
    # setting elsewhere forbids it), said when a rollback's write is refused; None if nothing.
    refusal_hint: str | None = None
    # The mode when none is configured (MODE_<ID> unset). Controls added after the first release
    # default to NOTIFY, so that an upgrade reports new findings and changes nobody's buckets.
    default_mode: Mode = Mode.REMEDIATE
    # False for controls that only detect (what they judge cannot be changed by the service,
    # as MFA delete without the root user's MFA): `evaluate` then never asks for a fix, `apply`
    # is never called, and the FSBP map (standards.py) says "detected only".
    fixable: bool = True
    # The AWS Foundational Security Best Practices controls this control checks ("S3.8"), and
    # the severity of its findings in Security Hub (ASFF label: INFORMATIONAL, LOW, MEDIUM, HIGH,
    # CRITICAL).
    fsbp: tuple[str, ...] = ()
    severity: Severity = "MEDIUM"
    # True for bucket controls whose surface directory buckets (S3 Express One Zone) have too:
    # they judge directory buckets, with the same-named `s3express:` actions
    # (`directory_action`), and their family's rule matches S3 Express's events. Every other
    # control never runs on a directory bucket (ACLs, ownership, versioning, logging, object
    # lock and Block Public Access per bucket do not exist there).
    directory_buckets: bool = False

    def applies_to(self, subject: str | None) -> bool:
        """Does the control judge `subject`? Every subject, except a directory bucket for a
        bucket control that does not declare `directory_buckets`."""
        return self.scope != "bucket" or self.directory_buckets or not is_directory_bucket(subject)

    def evaluate_subject(self, subject: str, state: State, settings: Settings) -> Evaluation:
        """`evaluate` for the named subject: a control whose rules differ by kind of subject
        (a directory bucket's encryption) overrides this; most judge the state alone."""
        return self.evaluate(state, settings)

    def subject(self, record: CloudTrailRecord) -> str | None:
        """What the event concerns for this control (bucket name, account id, ARN), or None."""
        return record.bucket_name

    def exemption_bucket(self, subject: str, state: State) -> str | None:
        """The bucket whose tags can exempt the subject (None: only the control's mode can)."""
        return subject if self.scope == "bucket" else None

    def subject_account(self, subject: str) -> str | None:
        """The account the subject belongs to, when its name says (None: it does not)."""
        return None

    def subject_region(self, subject: str, recorded: str | None) -> str | None:
        """The region of the subject: the one its audit record keeps, unless its name says."""
        return recorded

    @abstractmethod
    def read(self, s3: Api, bucket: str) -> State:
        """Read the surface's current configuration (one S3 call)."""

    def observe(
        self, s3: Api, bucket: str, settings: Settings, records: RecordReader | None = None
    ) -> State:
        """What `evaluate` judges: the surface as read, plus anything the settings point to.

        Most controls judge only the surface; one whose baseline is recorded elsewhere (the audit
        records, given as `records`) overrides this and adds it to the state.
        """
        return self.read(s3, bucket)

    def verify(
        self,
        s3: Api,
        bucket: str,
        settings: Settings,
        before: State,
        records: RecordReader | None = None,
    ) -> State:
        """The re-read after a fix. What `observe` added from elsewhere is as it was `before`
        (the fix changed only the surface), so only the surface is read again."""
        return self.observe(s3, bucket, settings, records)

    @abstractmethod
    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        """Judge `state` and compute the complete desired state if it is wrong."""

    @abstractmethod
    def apply(self, s3: Api, bucket: str, desired: State) -> None:
        """Write `desired` to the surface (one S3 call)."""

    def reread(
        self,
        s3: Api,
        subject: str,
        settings: Settings,
        judged: State,
        records: RecordReader | None = None,
    ) -> State:
        """The surface read again right before a write, to compare with the state `judged`."""
        return self.observe(s3, subject, settings, records)

    def same(self, found: State, expected: State) -> bool:
        """Does the surface as read say what `expected` says? (A read before the write against
        the state judged; the read after it against what was written.)"""
        return found == expected

    def describe(self, state: State) -> str:
        """A one-line summary of a state for people (tables, notifications)."""
        return "none" if state is None else json.dumps(state, sort_keys=True)

    # -- rollback: putting a state from before a fix back (bucketwarden rollback) ---------------

    def surface_of(self, state: State) -> State:
        """The part of a state that the surface itself holds: what a rollback restores and
        compares (everything but the `derived_keys`)."""
        if not self.derived_keys or not isinstance(state, dict):
            return state
        return {key: value for key, value in state.items() if key not in self.derived_keys}

    def restore_target(self, before: State) -> RestoreTarget:
        """What to write to get `before` back, and what the surface must then read as: `before`
        itself, unless S3 cannot return the surface to it exactly (a control overrides this
        to write the closest and say so)."""
        return RestoreTarget(before, self.surface_of(before))


def without_metadata(response: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}
