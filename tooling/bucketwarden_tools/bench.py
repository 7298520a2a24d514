"""`make bench`: what one event costs in AWS calls, CPU and memory, and what a cold start costs.

Part 1 runs one event per control and drift through `bucketwarden.handler.process`, exactly as
Lambda does, against a moto server in its own process (so the CPU time and memory figures are the
handler's and botocore's, not the emulator's). API calls are counted with the `before-call` hook
of `bucketwarden.aws`; DynamoDB calls are split by table with one more hook registered here.
Every control of the catalogue has a scenario it fixes. A scenario passes when the event ends in
the outcomes it expects within its budget: per surface, 4 S3 calls fixed and 2 compliant, plus
the extras it names, each with its reason (printed under the table).

Part 2 imports each functions/<folder>/app.py in a fresh interpreter with the environment Lambda
sets, then handles one event in it: import time, first-event time and the child's peak RSS.

Part 3 states the cold start as what our code adds: in each of several fresh interpreters, the
import of the libraries a function loads (boto3, the Powertools utilities it uses, pydantic),
then of the function on top of them, as a ratio of the whole to the libraries (target ≤ 1.15).

    python -m bucketwarden_tools.bench [--json] [--check] [--runs N] [--skip-cold-start]
                                       [--only-cold-start] [--import-pairs N]
"""

from __future__ import annotations

import argparse
import atexit
import compileall
import contextlib
import io
import json
import os
import py_compile
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

import bucketwarden
from bucketwarden import aws
from bucketwarden.catalogue import FAMILIES, control, controls_of
from bucketwarden.controls.access_logging import log_prefix
from bucketwarden.controls.base import Control
from bucketwarden.controls.bucket_policy import POLICY_VERSION, bucket_arn
from bucketwarden.controls.object_ownership import LOG_DELIVERY, log_delivery_statement
from bucketwarden.controls.public_access_block import SETTINGS as BLOCK_PUBLIC_ACCESS_SETTINGS
from bucketwarden.controls.secure_transport import INSECURE_TRANSPORT, rules
from bucketwarden.events import as_eventbridge_event
from bucketwarden.handler import process
from bucketwarden.outcome import REPORTED
from bucketwarden.settings import Settings, mode_variable
from bucketwarden_tools.calls import API_CALLS, count_api_calls, uncounted
from bucketwarden_tools.clients import reach_local_endpoints
from bucketwarden_tools.environment import temporary_environment
from bucketwarden_tools.stack import create_table_like, find_mac_key

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "events"
FUNCTIONS_DIR = ROOT / "functions"
PACKAGE_DIR = Path(bucketwarden.__file__).resolve().parent  # the runtime package the layer ships
REGION = "us-east-1"
ACCOUNT = "123456789012"
APPROVED_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
OTHER_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d"
FOREIGN_KEY = f"arn:aws:kms:{REGION}:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab"
KMS_BASELINE = {"ENCRYPTION_BASELINE": "SSE-KMS", "APPROVED_KMS_KEYS": APPROVED_KEY}
LOG_TARGET = "bucketwarden-bench-access-logs"
LOGGING = {"LOG_TARGET_BUCKET": LOG_TARGET}
LOGGING_SETTINGS = Settings(log_target_bucket=LOG_TARGET)
OBJECT_LOCK_BASELINE = {"OBJECT_LOCK_MODE": "GOVERNANCE", "OBJECT_LOCK_DAYS": "30"}
ANALYTICS_ROLE = f"arn:aws:iam::{ACCOUNT}:role/analytics"
DISTRIBUTION = f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2QWRUHAPOMQZL"

# Targets from issue 2, point 11, per surface: a fixed one costs its read, the exemption tags, the
# write and the re-read that verifies it; a compliant one its read. S3 Control calls count as S3
# calls. A scenario may go beyond them only by an Extra, which says why (a table footnote).
MAX_S3_REMEDIATED = 4
MAX_S3_COMPLIANT = 2
# One audit PutItem and one SNS Publish per reported outcome; one idempotency claim per event.
# A fix writes its audit record twice: ahead of the change (pending) and once it is verified.
MAX_PER_SIDE_SERVICE = 1
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
    Block Public Access configuration, no policy, logging off)."""


def _setup_client(service: str) -> Any:
    """A client for setting scenarios up (not counted)."""
    return uncounted(aws.new_client(service, region_name=REGION))


def _acl(canned: str) -> Setup:
    def setup(s3: Any, bucket: str) -> None:
        s3.put_bucket_acl(Bucket=bucket, ACL=canned)

    return setup


def _block_configuration(off: tuple[str, ...]) -> dict[str, bool]:
    """A Block Public Access configuration with the named settings off and the others on."""
    return {name: name not in off for name in BLOCK_PUBLIC_ACCESS_SETTINGS}


def _public_access_block(*off: str) -> Setup:
    def setup(s3: Any, bucket: str) -> None:
        configuration = _block_configuration(off)
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)

    return setup


def _account_public_access_block(*off: str) -> Setup:
    """The account's Block Public Access (the bucket is not involved)."""

    def setup(s3: Any, bucket: str) -> None:
        configuration = _block_configuration(off)
        _setup_client("s3control").put_public_access_block(
            AccountId=ACCOUNT, PublicAccessBlockConfiguration=configuration
        )

    return setup


def _no_account_public_access_block(s3: Any, bucket: str) -> None:
    _setup_client("s3control").delete_public_access_block(AccountId=ACCOUNT)


def _acls_enabled(*log_delivery: str) -> Setup:
    """ACLs enabled as the console's "ACLs enabled, object writer" does; the ACL grants the owner
    FULL_CONTROL and the S3 log delivery group the `log_delivery` permissions."""

    def setup(s3: Any, bucket: str) -> None:
        rules = {"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
        s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=rules)
        owner = s3.get_bucket_acl(Bucket=bucket)["Owner"]
        grantee = {"Type": "CanonicalUser", "ID": owner["ID"]}
        grants = [{"Grantee": grantee, "Permission": "FULL_CONTROL"}]
        group = {"Type": "Group", "URI": LOG_DELIVERY}
        grants += [{"Grantee": group, "Permission": permission} for permission in log_delivery]
        s3.put_bucket_acl(Bucket=bucket, AccessControlPolicy={"Owner": owner, "Grants": grants})

    return setup


# Policy statements, made from the ARN of what the policy is attached to.
Statement = Callable[[str], dict[str, Any]]


def _objects(arn: str) -> str:
    """Every object behind a bucket's or an access point's ARN, as a policy Resource."""
    return f"{arn}/object/*" if ":accesspoint/" in arn else f"{arn}/*"


def _public_read(arn: str) -> dict[str, Any]:
    return {
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": _objects(arn),
    }


def _analytics_read(arn: str) -> dict[str, Any]:
    return {**_public_read(arn), "Sid": "AnalyticsRead", "Principal": {"AWS": ANALYTICS_ROLE}}


def _cloudfront_read(arn: str) -> dict[str, Any]:
    """CloudFront origin access control: a service statement public-policy must keep."""
    return {
        **_public_read(arn),
        "Sid": "CloudFrontRead",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Condition": {"StringEquals": {"AWS:SourceArn": DISTRIBUTION}},
    }


def _log_delivery(arn: str) -> dict[str, Any]:
    """S3 server access log delivery into this bucket: another service statement."""
    return log_delivery_statement(arn, ACCOUNT)


def _partner_admin(arn: str) -> dict[str, Any]:
    """Another account may read objects and rewrite the bucket policy: cross-account-actions
    takes the policy write away and keeps the reads."""
    return {
        **_public_read(arn),
        "Sid": "PartnerAdmin",
        "Principal": {"AWS": "arn:aws:iam::999988887777:root"},
        "Action": ["s3:GetObject", "s3:PutBucketPolicy"],
        "Resource": [arn, _objects(arn)],
    }


def _policy(arn: str, statements: tuple[Statement, ...]) -> str:
    return json.dumps({"Version": POLICY_VERSION, "Statement": [make(arn) for make in statements]})


def _bucket_policy(*statements: Statement) -> Setup:
    def setup(s3: Any, bucket: str) -> None:
        s3.put_bucket_policy(Bucket=bucket, Policy=_policy(bucket_arn(s3, bucket), statements))

    return setup


def access_point_name(bucket: str) -> str:
    """The access point a scenario makes to its bucket: unique, as the bucket's name is."""
    return f"{bucket}-ap"


def _internet_access_point(*statements: Statement) -> Setup:
    """An internet access point to the bucket with a policy; its own Block Public Access is off,
    as S3 requires for a public policy to be accepted."""

    def setup(s3: Any, bucket: str) -> None:
        s3control = _setup_client("s3control")
        name = access_point_name(bucket)
        created = s3control.create_access_point(
            AccountId=ACCOUNT,
            Name=name,
            Bucket=bucket,
            PublicAccessBlockConfiguration=_block_configuration(off=BLOCK_PUBLIC_ACCESS_SETTINGS),
        )
        policy = _policy(created["AccessPointArn"], statements)
        s3control.put_access_point_policy(AccountId=ACCOUNT, Name=name, Policy=policy)

    return setup


def _open_access_point(s3: Any, bucket: str) -> None:
    """An access point created with its own Block Public Access off (fixed for its life)."""
    _setup_client("s3control").create_access_point(
        AccountId=ACCOUNT,
        Name=access_point_name(bucket),
        Bucket=bucket,
        PublicAccessBlockConfiguration=_block_configuration(off=BLOCK_PUBLIC_ACCESS_SETTINGS),
    )


def _open_multi_region_access_point(s3: Any, bucket: str) -> None:
    """A Multi-Region Access Point to the bucket created with Block Public Access off."""
    _setup_client("s3control").create_multi_region_access_point(
        AccountId=ACCOUNT,
        ClientToken=bucket,
        Details={
            "Name": access_point_name(bucket),
            "PublicAccessBlock": _block_configuration(off=BLOCK_PUBLIC_ACCESS_SETTINGS),
            "Regions": [{"Bucket": bucket}],
        },
    )


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


def _replicates_to(account: str) -> Setup:
    """Every new object replicated to a bucket of `account` (named with the owner override)."""

    def setup(s3: Any, bucket: str) -> None:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        rule = {
            "ID": "copy-everything",
            "Priority": 1,
            "Status": "Enabled",
            "Filter": {},
            "DeleteMarkerReplication": {"Status": "Disabled"},
            "Destination": {
                "Bucket": f"arn:aws:s3:::{bucket}-replica",
                "Account": account,
                "AccessControlTranslation": {"Owner": "Destination"},
            },
        }
        configuration = {"Role": f"arn:aws:iam::{ACCOUNT}:role/replication", "Rules": [rule]}
        s3.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=configuration)

    return setup


def _log_target(s3: Any, bucket: str) -> None:
    """The log target bucket, made once, with the policy docs/controls/access-logging.md gives
    (on every key: moto compares the statement's Resource with the exact TargetPrefix)."""
    try:
        s3.head_bucket(Bucket=LOG_TARGET)
    except ClientError:
        s3.create_bucket(Bucket=LOG_TARGET)
        _bucket_policy(_log_delivery)(s3, LOG_TARGET)


def _logs_to(prefix_of: Callable[[str], str]) -> Setup:
    """Server access logs to the log target, under `prefix_of(bucket)`."""

    def setup(s3: Any, bucket: str) -> None:
        _log_target(s3, bucket)
        logging = {"TargetBucket": LOG_TARGET, "TargetPrefix": prefix_of(bucket)}
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={"LoggingEnabled": logging})

    return setup


def _shared_prefix(bucket: str) -> str:
    """The bare LOG_TARGET_PREFIX many buckets share (drift: one bucket's logs cannot be found)."""
    return LOGGING_SETTINGS.log_target_prefix


def _default_retention(mode: str, days: int) -> Setup:
    """Object Lock with a default retention; S3 turns Object Lock on for versioned buckets."""

    def setup(s3: Any, bucket: str) -> None:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        rule = {"DefaultRetention": {"Mode": mode, "Days": days}}
        configuration = {"ObjectLockEnabled": "Enabled", "Rule": rule}
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=configuration)

    return setup


@dataclass(frozen=True)
class Extra:
    """Calls a scenario may make beyond the standard budget, and why (a footnote of the table)."""

    mark: str
    reason: str
    s3: int = 0  # S3 and S3 Control calls
    audit_queries: int = 0  # Query calls on the audit table
    calls: Mapping[str, int] = field(default_factory=dict)  # other services, "service.Operation"


WEBSITE = Extra(
    "ᵃ",
    "+1 S3: GetBucketWebsite. The control found the bucket readable by anyone, so the engine "
    "reads its website configuration to warn, in the finding, that closing it takes a site "
    "offline (once per event, only then).",
    s3=1,
)
OWNERSHIP_READ = Extra(
    "ᵇ",
    "+1 S3: object-ownership reads two surfaces while ACLs are enabled, the setting "
    "(GetBucketOwnershipControls) and the ACL (GetBucketAcl), since the ACL decides whether ACLs "
    "can be disabled. The re-read after the fix is one call: with ACLs disabled the ACL is "
    "owner-only.",
    s3=1,
)
LOG_DELIVERY_MOVE = Extra(
    "ᶜ",
    "+3 S3, +1 STS: the S3 log delivery group's ACL grant moves to the bucket policy before ACLs "
    "are disabled, in the order S3 accepts: GetBucketPolicy right before PutBucketPolicy (every "
    "other statement kept), PutBucketAcl (owner only), PutBucketOwnershipControls; "
    "sts:GetCallerIdentity names the owner's account for the statement's aws:SourceAccount (an "
    "ACL names its owner by canonical id only).",
    s3=3,
    calls={"sts.GetCallerIdentity": 1},
)
ACCESS_POINT_READ = Extra(
    "ᵈ",
    "+2 S3 Control: an access point is read with two calls, before the fix and again to verify "
    "it: GetAccessPoint (network origin, bucket, its own Block Public Access) and "
    "GetAccessPointPolicy. Its exemption tags are its bucket's (s3:GetBucketTagging).",
    s3=2,
)

RECHECK = Extra(
    "ᶠ",
    "+1 S3: a policy or ACL is read again right before its fix is written (GetBucketPolicy, "
    "GetBucketAcl, GetAccessPointPolicy), so that an edit made since the first read is judged, "
    "not overwritten.",
    s3=1,
)


AUDIT_HISTORY = Extra(
    "ᵉ",
    "+1 DynamoDB Query on the audit table (bucket index) when the bucket has Object Lock: "
    "object-lock-retention's baseline is also the strongest default retention its earlier "
    "audit records hold for the bucket. The re-read that verifies a fix reuses it.",
    audit_queries=1,
)


@dataclass(frozen=True)
class Scenario:
    """One drift, the event that reports it, and what handling that event must end in.

    `expected` is the status of `control`; `also` the statuses of the family's other controls
    the same event runs that the scenario is about too. The family's remaining controls for the
    event are switched off (MODE_<ID>=off), so each row measures what it names.
    """

    control: str
    drift: str
    event_name: str
    setup: Setup
    expected: str  # the outcome status the engine must report for `control`
    env: Mapping[str, str] = field(default_factory=dict)
    also: Mapping[str, str] = field(default_factory=dict)
    extras: tuple[Extra, ...] = ()

    def __post_init__(self) -> None:
        triggered = {c.id for c in self.triggered}
        if not self.expectations.keys() <= triggered:
            raise ValueError(f"{self.event_name} does not run {', '.join(self.expectations)}")

    @property
    def family(self) -> str:
        return control(self.control).family

    @property
    def expectations(self) -> dict[str, str]:
        """Control → status, for the controls the scenario is about."""
        return {self.control: self.expected, **self.also}

    @property
    def triggered(self) -> list[Control]:
        """The family's controls the event runs, in the engine's (catalogue) order."""
        return [c for c in controls_of(self.family) if self.event_name in c.trigger_events]

    @property
    def expected_outcomes(self) -> list[tuple[str, str]]:
        """(control, status) of every outcome of the event; switched-off controls are ignored."""
        return [(c.id, self.expectations.get(c.id, "ignored")) for c in self.triggered]

    @property
    def environment(self) -> dict[str, str]:
        off = {mode_variable(c.id): "off" for c in self.triggered if c.id not in self.expectations}
        # The row's own controls act whatever their default (controls added later notify).
        on = {mode_variable(control_id): "remediate" for control_id in self.expectations}
        return {**off, **on, **self.env}

    @property
    def max_s3(self) -> int:
        """The standard budget of each surface of the scenario's controls, plus the extras.

        Controls sharing a surface (public-policy, secure-transport) share one read-modify-write,
        so they share one budget.
        """
        per_surface: dict[str, int] = {}
        for control_id, status in self.expectations.items():
            standard = MAX_S3_COMPLIANT if status == "compliant" else MAX_S3_REMEDIATED
            surface = control(control_id).surface
            per_surface[surface] = max(per_surface.get(surface, 0), standard)
        return sum(per_surface.values()) + sum(extra.s3 for extra in self.extras)

    @property
    def max_reports(self) -> int:
        """Audit records and notifications: MAX_PER_SIDE_SERVICE per reported outcome."""
        reported = sum(status in REPORTED for status in self.expectations.values())
        return MAX_PER_SIDE_SERVICE * reported

    @property
    def max_audit_writes(self) -> int:
        """One record per reported outcome, written ahead (pending) and again for each fix."""
        fixes = sum(status == "remediated" for status in self.expectations.values())
        return self.max_reports + MAX_PER_SIDE_SERVICE * fixes

    @property
    def max_audit_queries(self) -> int:
        """One per fix (the flap breaker counts the pair's recent fixes), plus the extras."""
        fixes = sum(status == "remediated" for status in self.expectations.values())
        return fixes + sum(extra.audit_queries for extra in self.extras)

    @property
    def max_audit_tags(self) -> int:
        """One KMS GenerateMac per audit record written (every record carries its tag)."""
        return self.max_audit_writes

    @property
    def max_audit_verifications(self) -> int:
        """KMS VerifyMac: at most one per history read, for a record it returns that this
        process has not verified yet (verdicts are kept per process)."""
        return self.max_audit_queries

    @property
    def allowed_calls(self) -> Counter[str]:
        """Calls to services other than S3, SNS and DynamoDB that the extras allow."""
        allowed: Counter[str] = Counter()
        for extra in self.extras:
            allowed.update(extra.calls)
        return allowed

    @property
    def marks(self) -> str:
        return "".join(extra.mark for extra in self.extras)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "account-public-access-block",
        "all four settings off",
        "PutAccountPublicAccessBlock",
        _account_public_access_block(*BLOCK_PUBLIC_ACCESS_SETTINGS),
        "remediated",
    ),
    Scenario(
        "account-public-access-block",
        "configuration deleted",
        "DeleteAccountPublicAccessBlock",
        _no_account_public_access_block,
        "remediated",
    ),
    Scenario(
        "account-public-access-block",
        "already compliant",
        "PutAccountPublicAccessBlock",
        _account_public_access_block(),
        "compliant",
    ),
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
    Scenario(
        "public-acl",
        "public-read ACL",
        "PutBucketAcl",
        _acl("public-read"),
        "remediated",
        extras=(
            RECHECK,
            WEBSITE,
        ),
    ),
    Scenario(
        "public-acl",
        "AuthenticatedUsers grant",
        "PutBucketAcl",
        _acl("authenticated-read"),
        "remediated",
        extras=(RECHECK,),
    ),
    Scenario("public-acl", "already compliant", "PutBucketAcl", _nothing, "compliant"),
    Scenario(
        "object-ownership",
        "ObjectWriter, owner-only ACL",
        "PutBucketOwnershipControls",
        _acls_enabled(),
        "remediated",
        extras=(OWNERSHIP_READ,),
    ),
    Scenario(
        "object-ownership",
        "log delivery ACL grant moved to the policy",
        "PutBucketOwnershipControls",
        _acls_enabled("WRITE", "READ_ACP"),
        "remediated",
        extras=(OWNERSHIP_READ, LOG_DELIVERY_MOVE),
    ),
    Scenario(
        "public-policy",
        "public statement among service statements",
        "PutBucketPolicy",
        _bucket_policy(_cloudfront_read, _log_delivery, _public_read),
        "remediated",
        extras=(
            RECHECK,
            WEBSITE,
        ),
    ),
    Scenario(
        "public-policy",
        "service statements only",
        "PutBucketPolicy",
        _bucket_policy(_cloudfront_read, _log_delivery),
        "compliant",
    ),
    Scenario(
        "secure-transport",
        "no policy",
        "DeleteBucketPolicy",
        _nothing,
        "remediated",
        extras=(RECHECK,),
    ),
    Scenario(
        "secure-transport",
        "TLS version rule removed",
        "PutBucketPolicy",
        _bucket_policy(_log_delivery, INSECURE_TRANSPORT.statement),
        "remediated",
        extras=(RECHECK,),
    ),
    Scenario(
        "secure-transport",
        "already compliant",
        "PutBucketPolicy",
        _bucket_policy(_log_delivery, *(rule.statement for rule in rules(Settings()))),
        "compliant",
    ),
    Scenario(
        "public-policy",
        "public statement and no TLS rule",
        "PutBucketPolicy",
        _bucket_policy(_log_delivery, _public_read),
        "remediated",
        also={"secure-transport": "remediated"},
        extras=(
            RECHECK,
            WEBSITE,
        ),
    ),
    Scenario(
        "access-point",
        "internet access point, public policy",
        "PutAccessPointPolicy",
        _internet_access_point(_public_read, _analytics_read),
        "remediated",
        extras=(
            RECHECK,
            ACCESS_POINT_READ,
        ),
    ),
    Scenario(
        "cross-account-actions",
        "another account may rewrite the policy",
        "PutBucketPolicy",
        _bucket_policy(_analytics_read, _partner_admin),
        "remediated",
        {"MODE_CROSS_ACCOUNT_ACTIONS": "remediate"},
        extras=(RECHECK,),
    ),
    Scenario(
        "access-point-public-access-block",
        "created with Block Public Access off (detect only)",
        "CreateAccessPoint",
        _open_access_point,
        "noncompliant",
    ),
    Scenario(
        "multi-region-access-point-public-access-block",
        "created with Block Public Access off (detect only)",
        "CreateMultiRegionAccessPoint",
        _open_multi_region_access_point,
        "noncompliant",
    ),
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
        "KMS key of another account (SSE-S3 baseline)",
        "PutBucketEncryption",
        _encryption("aws:kms", FOREIGN_KEY, bucket_key=True),
        "remediated",
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
    Scenario(
        "access-logging",
        "logging off",
        "PutBucketLogging",
        _log_target,
        "remediated",
        LOGGING,
    ),
    Scenario(
        "access-logging",
        "shared prefix without the bucket's name",
        "PutBucketLogging",
        _logs_to(_shared_prefix),
        "remediated",
        LOGGING,
    ),
    Scenario(
        "access-logging",
        "already compliant",
        "PutBucketLogging",
        _logs_to(partial(log_prefix, LOGGING_SETTINGS)),
        "compliant",
        LOGGING,
    ),
    Scenario(
        "object-lock-retention",
        "GOVERNANCE 1 day under a 30-day baseline",
        "PutObjectLockConfiguration",
        _default_retention("GOVERNANCE", 1),
        "remediated",
        OBJECT_LOCK_BASELINE,
        extras=(AUDIT_HISTORY,),
    ),
    Scenario(
        "object-lock-retention",
        "already compliant",
        "PutObjectLockConfiguration",
        _default_retention("GOVERNANCE", 30),
        "compliant",
        OBJECT_LOCK_BASELINE,
        extras=(AUDIT_HISTORY,),
    ),
    # The data-management controls only report: their drift ends noncompliant, in any mode.
    Scenario(
        "lifecycle",
        "no lifecycle configuration",
        "DeleteBucketLifecycle",
        _nothing,
        "noncompliant",
    ),
    Scenario(
        "event-notifications",
        "no notifications",
        "PutBucketNotification",
        _nothing,
        "noncompliant",
    ),
    Scenario(
        "replication-destination",
        "replicas to an account nobody allowed",
        "PutBucketReplication",
        _replicates_to("999999999999"),
        "noncompliant",
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


def _renames(parameters: dict[str, Any], bucket: str) -> dict[str, str]:
    """The sample's bucket and access point names → the scenario's."""
    renames = {}
    sample_bucket = parameters.get("bucketName") or parameters.get(
        "CreateAccessPointRequest", {}
    ).get("Bucket")
    if sample_bucket:
        renames[sample_bucket] = bucket
    if isinstance(parameters.get("name"), str):
        renames[parameters["name"]] = access_point_name(bucket)
    return renames


def make_event(event_name: str, bucket: str) -> dict[str, Any]:
    """events/<name>.json about `bucket`, with a new eventID and time.

    A bucket call's sample names its bucket (requestParameters.bucketName); an access point
    call's names its access point (requestParameters.name), which becomes the scenario's
    (`access_point_name`). An account call names neither: its account, 123456789012, is moto's
    default account, so it stays.
    """
    sample_path = EVENTS_DIR / f"{event_name}.json"
    sample = as_eventbridge_event(json.loads(sample_path.read_text()))
    text = json.dumps(sample)
    # Names also appear in Host, resources, ARNs and policies: replace them everywhere.
    for old, new in _renames(sample["detail"]["requestParameters"], bucket).items():
        text = text.replace(old, new)
    event: dict[str, Any] = json.loads(text)
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
    audit_mac_key: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "AUDIT_TABLE": self.audit_table,
            "AUDIT_MAC_KEY": self.audit_mac_key,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "NOTIFICATION_TOPIC_ARN": self.topic_arn,
            "ACCOUNT_ID": ACCOUNT,  # as template.yaml sets it
            # Every run of the account scenarios fixes the same account again: the flap breaker
            # still counts (its Query is measured) but must not hold the account back.
            "FLAP_THRESHOLD": "100",
        }


def create_stack() -> Stack:
    """The audit and idempotency tables and the topic, made with clients that are not counted."""
    # Unique names, so that the handler's cached idempotency store is built on today's client.
    suffix = uuid.uuid4().hex[:8]
    dynamodb = _setup_client("dynamodb")
    names = {}
    for role, logical_id in (("audit", "AuditTable"), ("idempotency", "IdempotencyTable")):
        name = f"bucketwarden-bench-{role}-{suffix}"
        create_table_like(dynamodb, name, logical_id)
        names[role] = name
    topic = _setup_client("sns").create_topic(Name=f"bucketwarden-{suffix}")
    kms = _setup_client("kms")
    key = find_mac_key(f"alias/bucketwarden-bench-{suffix}", create=True, notes=[], kms=kms)
    return Stack(names["audit"], names["idempotency"], topic["TopicArn"], str(key))


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

# (control, status) of each outcome, in the order the engine gives them.
Outcomes = list[tuple[str | None, str]]
S3_SERVICES = ("s3.", "s3control.")
AUDIT_OPERATIONS = ("PutItem", "Query")  # records written; history read (flap breaker, Object Lock)
# Every audit record written is tagged, every record read for a decision verified (integrity.py).
TAG_CALL, VERIFY_CALL = "kms.GenerateMac", "kms.VerifyMac"


def outcome_failure(item: Scenario, found: Outcomes) -> str | None:
    """What is wrong with the outcomes of the scenario's event, or None."""
    expected = item.expected_outcomes
    if found == expected:
        return None
    return f"outcomes {_outcome_text(found)} instead of {_outcome_text(expected)}"


def _outcome_text(outcomes: Sequence[tuple[str | None, str]]) -> str:
    return ", ".join(f"{control_id}={status}" for control_id, status in outcomes)


@dataclass
class Run:
    calls: Counter[str]
    tables: Counter[tuple[str, str]]
    outcomes: Outcomes
    cpu_ms: float
    peak_alloc: int | None


@dataclass
class Measurement:
    scenario: Scenario
    calls: Counter[str]  # "service.Operation" → count, as bucketwarden_tools.calls.API_CALLS counts
    audit_ops: Counter[str]  # operation → count on the audit table
    idempotency_ops: Counter[str]
    other_table_calls: Counter[tuple[str, str]]  # DynamoDB calls on neither table
    outcomes: Outcomes
    cpu_ms: float  # median over the timed runs
    peak_alloc_kib: float
    max_rss_mb: float
    stable: bool  # every run made the same calls

    @property
    def statuses(self) -> list[str]:
        """The statuses of the scenario's controls, in the engine's order."""
        mine = self.scenario.expectations
        return [status for control_id, status in self.outcomes if control_id in mine]

    @property
    def s3_calls(self) -> int:
        return sum(n for name, n in self.calls.items() if name.startswith(S3_SERVICES))

    @property
    def audit_calls(self) -> int:
        """Audit records written."""
        return self.audit_ops["PutItem"]

    @property
    def audit_queries(self) -> int:
        return self.audit_ops["Query"]

    @property
    def idempotency_calls(self) -> int:
        return sum(self.idempotency_ops.values())

    @property
    def sns_publishes(self) -> int:
        return self.calls["sns.Publish"]

    @property
    def audit_tags(self) -> int:
        return self.calls[TAG_CALL]

    @property
    def audit_verifications(self) -> int:
        return self.calls[VERIFY_CALL]

    @property
    def other_calls(self) -> Counter[str]:
        """Calls to services other than S3, SNS, DynamoDB and the audit records' key (STS, say)."""
        counted = (*S3_SERVICES, "sns.Publish", "dynamodb.", TAG_CALL, VERIFY_CALL)
        return Counter({k: n for k, n in self.calls.items() if not k.startswith(counted)})

    def unexpected_calls(self) -> dict[str, int]:
        """Calls no budget and no extra of the scenario accounts for."""
        allowed = self.scenario.allowed_calls
        unexpected = {k: n - allowed[k] for k, n in self.other_calls.items() if n > allowed[k]}
        for op, n in self.audit_ops.items():
            if op not in AUDIT_OPERATIONS:
                unexpected[f"audit:{op}"] = n
        for (table, op), n in self.other_table_calls.items():
            unexpected[f"{table}:{op}"] = n
        return unexpected

    def failures(self) -> list[str]:
        item = self.scenario
        wrong = [problem] if (problem := outcome_failure(item, self.outcomes)) else []
        if self.s3_calls > item.max_s3:
            wrong.append(f"S3 {self.s3_calls} > {item.max_s3}")
        for name, count, limit in (
            ("audit", self.audit_calls, item.max_audit_writes),
            ("notification", self.sns_publishes, item.max_reports),
            ("idempotency", self.idempotency_calls, MAX_PER_SIDE_SERVICE),
            ("audit history", self.audit_queries, item.max_audit_queries),
            ("audit tags", self.audit_tags, item.max_audit_tags),
            ("audit verifications", self.audit_verifications, item.max_audit_verifications),
        ):
            if count > limit:
                wrong.append(f"{name} {count} > {limit}")
        if unexpected := self.unexpected_calls():
            wrong.append(f"unexpected calls {unexpected}")
        if not self.stable:
            wrong.append("runs made different calls")
        return wrong


def drifted_bucket(item: Scenario, prefix: str) -> str:
    """A fresh bucket with the scenario's drift (set up with clients that are not counted)."""
    bucket = f"{prefix}-{uuid.uuid4().hex[:16]}"
    s3 = _setup_client("s3")
    s3.create_bucket(Bucket=bucket)
    item.setup(s3, bucket)
    return bucket


def _run_once(item: Scenario, stack: Stack, trace_memory: bool) -> Run:
    event = make_event(item.event_name, drifted_bucket(item, "bw-bench"))
    watch_tables()
    API_CALLS.clear()
    TABLE_CALLS.clear()
    peak = None
    # EMF metrics go to stdout, as in Lambda; here they would garble the tables.
    with (
        temporary_environment({**stack.env, **item.environment}),
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
    found = [(outcome["control"], str(outcome["status"])) for outcome in outcomes]
    return Run(API_CALLS.snapshot(), Counter(TABLE_CALLS), found, cpu * 1000, peak)


def measure(item: Scenario, stack: Stack, runs: int = 3) -> Measurement:
    """Handle fresh drifted buckets: one warm-up, `runs` timed, one under tracemalloc.

    The warm-up pays for client creation (a cold start's cost, measured in part 2); tracemalloc
    slows Python down, so the timed runs go without it.
    """
    _run_once(item, stack, trace_memory=False)  # the warm-up
    timed = [_run_once(item, stack, trace_memory=False) for _ in range(max(1, runs))]
    traced = _run_once(item, stack, trace_memory=True)
    first = timed[0]
    # The warm-up is the process's first event of the scenario: besides clients, it may find
    # audit records no run has verified yet (the account scenarios find the previous scenario's
    # last record), which the later runs find verified (verdicts are kept per process).
    every = [*timed, traced]
    stable = all(run.calls == first.calls and run.tables == first.tables for run in every)

    def operations(table: str) -> Counter[str]:
        return Counter({op: n for (name, op), n in first.tables.items() if name == table})

    ours = {stack.audit_table, stack.idempotency_table}
    return Measurement(
        scenario=item,
        calls=first.calls,
        audit_ops=operations(stack.audit_table),
        idempotency_ops=operations(stack.idempotency_table),
        other_table_calls=Counter({k: n for k, n in first.tables.items() if k[0] not in ours}),
        outcomes=first.outcomes,
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
import bucketwarden
assert bucketwarden.__file__.startswith(sys.argv[3]), f"engine from {bucketwarden.__file__}"
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
    outcomes=[[outcome["control"], outcome["status"]] for outcome in outcomes],
)
with open(sys.argv[1], "w") as out:
    json.dump(figures, out)
"""

# One drift per function for the first event: the remediation path, the longest one. The child
# gets the scenario's environment too (a log target, a retention baseline, modes switched off).
COLD_EVENTS = {
    "public-access": scenario("public-acl", "public-read ACL"),
    "encryption": scenario("default-encryption", "missing config (SSE-S3 baseline)"),
    "versioning": scenario("versioning", "suspended"),
    "logging": scenario("access-logging", "logging off"),
    "object-lock": scenario("object-lock-retention", "GOVERNANCE 1 day under a 30-day baseline"),
    "data-management": scenario("lifecycle", "no lifecycle configuration"),
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
    scenario: Scenario
    outcomes: list[Outcomes]  # of each run's first event

    @property
    def import_median(self) -> float:
        return statistics.median(self.import_ms)

    def failures(self) -> list[str]:
        wrong = []
        if self.import_median >= MAX_IMPORT_MS:
            wrong.append(f"import {self.import_median:.0f} ms ≥ {MAX_IMPORT_MS:.0f}")
        if self.peak_mb >= MAX_PEAK_MB:
            wrong.append(f"peak RSS {self.peak_mb:.0f} MB ≥ {MAX_PEAK_MB:.0f}")
        problems = {outcome_failure(self.scenario, found) for found in self.outcomes}
        wrong += sorted(f"first event: {problem}" for problem in problems if problem)
        return wrong


@cache
def layer_package_dir() -> Path:
    """A directory holding the bucketwarden package as the layer ships it (layers/Makefile).

    The layer carries bytecode compiled at build time (unchecked-hash: /opt is read-only and
    Python does not compare source times), so a cold start does not compile the package. The
    dependencies come from the virtualenv, where pip compiled them when it installed them.
    """
    workdir = Path(tempfile.mkdtemp(prefix="bw-layer-"))
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    shutil.copytree(
        PACKAGE_DIR, workdir / "bucketwarden", ignore=shutil.ignore_patterns("__pycache__")
    )
    unchecked = py_compile.PycInvalidationMode.UNCHECKED_HASH
    if not compileall.compile_dir(workdir, quiet=1, invalidation_mode=unchecked):
        raise RuntimeError(f"could not compile the bucketwarden package in {workdir}")
    return workdir


def lambda_environment(folder: Path, stack: Stack, endpoint: str) -> dict[str, str]:
    """What the Lambda runtime and template.yaml set, pointed at the moto server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "MODE_"))}
    service = ("SERVICE_ROLE_ARNS", "SERVICE_FUNCTION_NAMES")
    for name in ("AWS_PROFILE", "ENCRYPTION_BASELINE", "APPROVED_KMS_KEYS", *service):
        env.pop(name, None)
    # Lambda's path: the function's folder (/var/task), then the layer (/opt/python).
    path = [str(folder), str(layer_package_dir()), env.get("PYTHONPATH", "")]
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
    bucket = drifted_bucket(item, "bw-cold")
    path = workdir / f"{bucket}.json"
    path.write_text(json.dumps(make_event(item.event_name, bucket)))
    return path


def _child_run(folder: Path, env: dict[str, str], event: Path, workdir: Path) -> dict[str, Any]:
    result = workdir / f"{uuid.uuid4().hex}.json"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(result), str(event), str(layer_package_dir())],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,  # the function's JSON logs and EMF metrics
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not result.is_file():
        raise RuntimeError(f"{folder.name}: child failed ({done.returncode}):\n{done.stderr}")
    measured: dict[str, Any] = json.loads(result.read_text())
    return measured


def cold_start(family: str, stack: Stack, endpoint: str, runs: int = 5) -> ColdStart:
    folder = FUNCTIONS_DIR / FAMILIES[family]
    item = COLD_EVENTS[family]
    env = {**lambda_environment(folder, stack, endpoint), **item.environment}
    results = []
    with tempfile.TemporaryDirectory(prefix="bw-bench-") as tmp:
        for _ in range(runs):
            event = _drifted_event(item, Path(tmp))
            results.append(_child_run(folder, env, event, Path(tmp)))
    return ColdStart(
        function=folder.name,
        import_ms=[r["import_ms"] for r in results],
        import_cpu_ms=[r["import_cpu_ms"] for r in results],
        import_peak_mb=max(r["import_peak_kib"] for r in results) / 1024,
        first_event_ms=[r["first_event_ms"] for r in results],
        first_event_cpu_ms=[r["first_event_cpu_ms"] for r in results],
        peak_mb=max(r["peak_kib"] for r in results) / 1024,
        scenario=item,
        outcomes=[[(c, status) for c, status in r["outcomes"]] for r in results],
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


# -- part 3: what our code adds to import -----------------------------------------------------

# The cold start our code is answerable for: in a fresh interpreter, the libraries the function's
# own modules import (boto3, the Powertools utilities it uses, pydantic), timed, then `import app`,
# timed: the second figure is what our code adds, measured in the same process right after the
# first, so that the machine's noise of the moment falls on both alike.
MAX_IMPORT_RATIO = 1.15
IMPORT_PAIRS = 20

# Runs `import app` once, recording each library module the function's own modules (app,
# bucketwarden.*) import as they load, not theirs nor the standard library's, with the module
# that defines each name they import from it. Prints the names, in import order.
LIBRARIES_FINDER = r"""
import builtins, json, sys

OWN = ("app", "bucketwarden")
found = {}
real_import = builtins.__import__

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    module = real_import(name, globals, locals, fromlist, level)
    importer = (globals or {}).get("__name__", "").partition(".")[0]
    top = name.partition(".")[0]
    if level == 0 and importer in OWN and top not in OWN and top not in sys.stdlib_module_names:
        found.setdefault(name)
        for item in fromlist or ():
            value = getattr(module, item, None)
            # A submodule, or the module that defines the class or function imported (a
            # package may load it only when the name is first asked for).
            where = getattr(value, "__name__", None) if type(value) is type(sys) else None
            where = where or getattr(value, "__module__", None) or ""
            if where.partition(".")[0] == top:
                found.setdefault(where)
    return module

builtins.__import__ = recording_import
import app
import bucketwarden
assert bucketwarden.__file__.startswith(sys.argv[1]), f"engine from {bucketwarden.__file__}"
print(json.dumps(list(found)))
"""

# Imports the library modules named in argv[1:], then app, in a fresh interpreter; prints the CPU
# time of each step, start-up excluded. CPU time: a process waiting for a core while others run
# adds wall time only.
IMPORT_CHILD = r"""
import importlib, json, sys, time

cpu = time.process_time()
for name in sys.argv[1:]:
    importlib.import_module(name)
libraries = time.process_time() - cpu
cpu = time.process_time()
import app
own = time.process_time() - cpu
print(json.dumps({"libraries_cpu_ms": libraries * 1000, "own_cpu_ms": own * 1000}))
"""


@dataclass
class ImportRatio:
    """Per fresh interpreter: the CPU ms of importing the libraries app loads, and the CPU ms
    `import app` adds once they are loaded (our modules, and any library module they load
    that the list missed, counted as ours)."""

    function: str
    libraries: list[str]
    libraries_ms: list[float]
    own_runs_ms: list[float]

    @property
    def function_ms(self) -> list[float]:
        """Each run's whole import: what a cold start pays for `import app`."""
        return [lib + own for lib, own in zip(self.libraries_ms, self.own_runs_ms, strict=True)]

    @property
    def function_median(self) -> float:
        return statistics.median(self.function_ms)

    @property
    def libraries_median(self) -> float:
        return statistics.median(self.libraries_ms)

    @property
    def ratio(self) -> float:
        """The median of the runs' ratios, each taken inside one interpreter."""
        pairs = zip(self.function_ms, self.libraries_ms, strict=True)
        return statistics.median(function / libraries for function, libraries in pairs)

    @property
    def own_ms(self) -> float:
        """What the function's own modules add: the median of the runs."""
        return statistics.median(self.own_runs_ms)

    def failures(self) -> list[str]:
        if self.ratio <= MAX_IMPORT_RATIO:
            return []
        return [f"import ratio {self.ratio:.2f} > {MAX_IMPORT_RATIO:.2f}"]


def function_folders() -> list[Path]:
    """Every Lambda function of the template: functions/<folder>/app.py."""
    return sorted(path.parent for path in FUNCTIONS_DIR.glob("*/app.py"))


def _python(code: str, folder: Path, env: dict[str, str], *args: str) -> str:
    """Run `code` in a fresh interpreter from the function's folder; return what it prints."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{folder.name}: child failed ({done.returncode}):\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def libraries_of(folder: Path, env: dict[str, str]) -> list[str]:
    """The libraries the function's own modules import when Lambda imports it."""
    found: list[str] = json.loads(_python(LIBRARIES_FINDER, folder, env, str(layer_package_dir())))
    return found


def _import_cpu_ms(folder: Path, env: dict[str, str], libraries: list[str]) -> tuple[float, float]:
    """CPU ms of importing `libraries`, then of `import app`, in one fresh interpreter."""
    measured = json.loads(_python(IMPORT_CHILD, folder, env, *libraries))
    return float(measured["libraries_cpu_ms"]), float(measured["own_cpu_ms"])


def import_ratio(folder: Path, env: dict[str, str], runs: int = IMPORT_PAIRS) -> ImportRatio:
    """`runs` fresh interpreters, after one untimed that warms the file cache."""
    libraries = libraries_of(folder, env)
    _import_cpu_ms(folder, env, libraries)
    measured = ImportRatio(folder.name, libraries, libraries_ms=[], own_runs_ms=[])
    for _ in range(runs):
        libraries_ms, own_ms = _import_cpu_ms(folder, env, libraries)
        measured.libraries_ms.append(libraries_ms)
        measured.own_runs_ms.append(own_ms)
    return measured


def import_ratios(stack: Stack, endpoint: str, pairs: int = IMPORT_PAIRS) -> list[ImportRatio]:
    return [
        import_ratio(folder, lambda_environment(folder, stack, endpoint), pairs)
        for folder in function_folders()
    ]


# -- the moto server --------------------------------------------------------------------------

# moto settings for the server process (moto reads them on import): the bench's clients are
# SDKs, not browsers, and need no CORS headers on every answer.
MOTO_SETTINGS = {"MOTO_DISABLE_GLOBAL_CORS": "true"}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server in its own process, so that its work is not counted as the handler's."""
    with moto_server_process() as (endpoint, _):
        yield endpoint


@contextlib.contextmanager
def moto_server_process() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The moto server's endpoint and process (whose CPU time a bench may read).

    moto's app behind a server that keeps connections alive (`bucketwarden_tools.moto_http`): moto's
    own `moto.server` closes each connection after one answer, which made the sweep bench
    measure TCP connects and thread starts rather than the sweep.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["-m", "bucketwarden_tools.moto_http", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        [sys.executable, *command],
        env={**os.environ, **MOTO_SETTINGS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}", server
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
        count_api_calls()
        reach_local_endpoints()
        aws.reset_clients()  # made again, counted and able to reach the emulator
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
    return ", ".join(parts)


def s3_operations(m: Measurement) -> str:
    """S3 operations by name; S3 Control's apart, as some have the same names."""
    bucket_ops, control_ops = _ops(m.calls, "s3."), _ops(m.calls, "s3control.")
    if not control_ops:
        return bucket_ops or "-"
    return "; ".join(
        filter(None, [f"S3 Control: {control_ops}", bucket_ops and f"S3: {bucket_ops}"])
    )


def other_operations(m: Measurement) -> str:
    """Calls beyond S3, audit records, SNS and idempotency: history reads, tags, STS."""
    parts = [f"audit Query x{m.audit_queries}"] if m.audit_queries else []
    parts += [op if n == 1 else f"{op} x{n}" for op, n in sorted(_kms_calls(m).items())]
    parts += [op if n == 1 else f"{op} x{n}" for op, n in sorted(m.other_calls.items())]
    return ", ".join(parts) or "-"


def _kms_calls(m: Measurement) -> Counter[str]:
    return Counter({name: m.calls[name] for name in (TAG_CALL, VERIFY_CALL) if m.calls[name]})


def measurement_row(m: Measurement) -> dict[str, Any]:
    item = m.scenario
    return {
        "kind": "api_calls",
        "control": item.control,
        "controls": item.expectations,
        "drift": item.drift,
        "event": item.event_name,
        "outcome": ",".join(m.statuses),
        "outcomes": dict(m.outcomes),
        "calls": dict(sorted(m.calls.items())),
        "s3_calls": m.s3_calls,
        "s3_target": item.max_s3,
        "extras": [extra.reason for extra in item.extras],
        "audit_calls": m.audit_calls,
        "audit_queries": m.audit_queries,
        "audit_tags": m.audit_tags,
        "audit_verifications": m.audit_verifications,
        "notification_calls": m.sns_publishes,
        "report_target": item.max_reports,
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


def ratio_row(r: ImportRatio) -> dict[str, Any]:
    return {
        "kind": "import_ratio",
        "function": r.function,
        "libraries": r.libraries,
        "function_cpu_ms_median": round(r.function_median, 1),
        "libraries_cpu_ms_median": round(r.libraries_median, 1),
        "function_cpu_ms_runs": [round(v, 1) for v in r.function_ms],
        "libraries_cpu_ms_runs": [round(v, 1) for v in r.libraries_ms],
        "own_ms": round(r.own_ms, 1),
        "ratio": round(r.ratio, 3),
        "ratio_target": MAX_IMPORT_RATIO,
        "result": "PASS" if not r.failures() else "FAIL",
        "failures": r.failures(),
    }


def _ok(text: str, ok: bool) -> str:
    return f"[green]{text}[/]" if ok else f"[red]{text}[/]"


def _styled_verdict(failures: list[str]) -> str:
    return "[green]PASS[/]" if not failures else "[red]FAIL[/]: " + "; ".join(failures)


def _within(count: int, limit: int) -> str:
    return _ok(str(count), count <= limit)


def _calls_table(measurements: list[Measurement], runs: int) -> Any:
    from rich.table import Table

    table = Table(
        title="AWS API calls, CPU and memory of ONE event (handler.process on a moto server)",
        title_justify="left",
        caption=(
            f"Targets per surface: S3 ≤ {MAX_S3_REMEDIATED} calls when it is fixed, ≤ "
            f"{MAX_S3_COMPLIANT} when it is compliant, plus the marked extras⁵; ≤ "
            f"{MAX_PER_SIDE_SERVICE} audit record (a fix writes it twice: pending ahead of the "
            f"change, then done) and notification per reported outcome, ≤ "
            f"{MAX_PER_SIDE_SERVICE} idempotency claim per event. CPU: median of {runs} timed "
            "runs."
        ),
        caption_justify="left",
    )
    table.add_column("Control", no_wrap=True)
    table.add_column("Drift (event)", min_width=32)
    table.add_column("Outcome", no_wrap=True)
    table.add_column("S3 / target", justify="right", no_wrap=True)
    table.add_column("S3 operations", min_width=30)
    table.add_column("Audit", justify="right")
    table.add_column("SNS", justify="right")
    table.add_column("Idem.¹", justify="right")
    table.add_column("Other calls⁵")
    table.add_column("CPU ms²", justify="right")
    table.add_column("Alloc KiB³", justify="right")
    table.add_column("RSS MB⁴", justify="right")
    table.add_column("Result")
    for m in measurements:
        item = m.scenario
        table.add_row(
            " +\n".join(item.expectations),
            f"{item.drift} ({item.event_name})",
            "\n".join(m.statuses),
            _ok(f"{m.s3_calls} / ≤{item.max_s3}{item.marks}", m.s3_calls <= item.max_s3),
            s3_operations(m),
            _within(m.audit_calls, item.max_audit_writes),
            _within(m.sns_publishes, item.max_reports),
            _within(m.idempotency_calls, MAX_PER_SIDE_SERVICE),
            other_operations(m),
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


def library_names(libraries: list[str]) -> str:
    """The libraries by package, Powertools by utility: "Powertools (logging, parser), boto3"."""
    utilities: dict[str, set[str]] = {}
    for name in libraries:
        package, *inside = name.split(".")
        package = "boto3" if package == "botocore" else package  # boto3's own half
        found = utilities.setdefault(package, set())
        if package == "aws_lambda_powertools" and inside:
            found.add(inside[1] if inside[0] == "utilities" and len(inside) > 1 else inside[0])
    return ", ".join(
        f"Powertools ({', '.join(sorted(utilities[package]))})"
        if package == "aws_lambda_powertools"
        else package
        for package in sorted(utilities)
    )


def _ratio_table(ratios: list[ImportRatio], pairs: int) -> Any:
    from rich.table import Table

    table = Table(
        title=(
            "What each function's own code adds to its import (fresh interpreters, "
            f"medians of {pairs} fresh interpreters)"
        ),
        title_justify="left",
        caption=f"Target: function / libraries ≤ {MAX_IMPORT_RATIO:.2f}.",
        caption_justify="left",
    )
    table.add_column("Function")
    table.add_column("Libraries it loads", min_width=40)
    for figure in ("Libraries CPU ms", "Function CPU ms", "Own ms", "Ratio"):
        table.add_column(figure, justify="right")
    table.add_column("Result")
    for r in ratios:
        table.add_row(
            r.function,
            library_names(r.libraries),
            f"{r.libraries_median:.0f}",
            f"{r.function_median:.0f}",
            f"{r.own_ms:.0f}",
            _ok(f"{r.ratio:.2f}", r.ratio <= MAX_IMPORT_RATIO),
            _styled_verdict(r.failures()),
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
    "Lambda-like figure is the cold-start table's peak RSS.\n"
    "⁵ Budgets. A row names the controls it is about; the family's other controls for the same "
    "event are off (MODE_<ID>=off). Controls on one surface share one read-modify-write and so "
    "one budget: public-policy + secure-transport are fixed with ONE GetBucketPolicy, ONE "
    "re-read right before the write (ᶠ), ONE PutBucketPolicy and ONE re-read. An account has "
    "no tags, so account-public-access-block "
    "reads none. S3 Control calls count as S3 calls. Each fix also costs one DynamoDB Query "
    "on the audit table's bucket index: the flap breaker counts the bucket and control's recent "
    "fixes before making another. Every audit record written is tagged (KMS GenerateMac, one "
    "per write), and a record a decision reads is verified (KMS VerifyMac, at most one per "
    "history read: each record once per process, as verdicts are kept; a fresh bucket has "
    "none, the account scenarios find the previous run's record). "
    "A budget above the standard one is marked, "
    "and each mark is a call the fix needs:"
)


def budget_notes(measurements: list[Measurement]) -> str:
    """One line per extra the measured scenarios use, by mark."""
    extras = {extra.mark: extra for m in measurements for extra in m.scenario.extras}
    return "\n".join(f"  {mark} {extra.reason}" for mark, extra in extras.items())


COLD_NOTES = (
    "Import: wall time of `import app` in a fresh interpreter, start-up excluded, with the "
    "environment Lambda sets and the template's defaults (TraceAwsCalls=false: the X-Ray SDK is "
    "not loaded; run with --trace-aws-calls for the other setting), and nothing is written to "
    "__pycache__ (/var/task and /opt are read-only); the engine is loaded from bytecode compiled "
    "at build time, as the layer ships it (layers/Makefile). "
    "First event: lambda_handler on one drifted bucket (clients created, remediation, audit, "
    "SNS, idempotency) against the moto server, which runs in another process. Deferring imports "
    "would move their time into the first event, not remove it."
)

RATIO_NOTES = (
    "In each fresh interpreter (the environment and path Lambda gives the function), first every "
    "library module the function's own modules import as Lambda loads them (boto3, the "
    "Powertools utilities, pydantic; found by recording one `import app`, with the module that "
    "defines each name they take from it), timed: Libraries; then `import app`, timed: Own, "
    "what our modules add (a library module they load that the list missed counts as ours). "
    "Function = Libraries + Own, the whole import. CPU time, medians over the interpreters. "
    "Both steps of a run share the machine's load of that moment, so the ratio moves by about "
    "±0.02 between runs where two separate processes moved by ±0.08 (--import-pairs takes more "
    "runs). The event models are built on the first parse, in the first event (about 1.5 ms "
    "there)."
)

BREAKDOWN_NOTE = (
    "Self time of each module under python -X importtime, summed by top-level package; a "
    "standard-library module counts for the package that imported it. -X importtime inflates "
    "every figure: read the shares."
)


def print_tables(
    measurements: list[Measurement],
    colds: list[ColdStart],
    ratios: list[ImportRatio],
    breakdown: tuple[str, list[tuple[str, float]]] | None,
    args: argparse.Namespace,
) -> None:
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 220)
    if measurements:
        console.print(_calls_table(measurements, args.runs))
        console.print(NOTES, highlight=False)
        console.print(budget_notes(measurements), highlight=False)
    if colds:
        console.print()
        console.print(_cold_table(colds, args.cold_runs))
        console.print(COLD_NOTES, highlight=False)
    if ratios:
        console.print()
        console.print(_ratio_table(ratios, args.import_pairs))
        console.print(RATIO_NOTES, highlight=False)
    if breakdown:
        console.print()
        console.print(_breakdown_table(breakdown[1], breakdown[0]))
        console.print(BREAKDOWN_NOTE, highlight=False)


# -- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bucketwarden_tools.bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per scenario")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters per function")
    parser.add_argument("--skip-cold-start", action="store_true", help="only part 1")
    parser.add_argument(
        "--only-cold-start", action="store_true", help="only the cold start (parts 2 and 3)"
    )
    parser.add_argument(
        "--import-pairs",
        type=int,
        default=IMPORT_PAIRS,
        help="fresh interpreters per function for the import ratio (libraries, then app)",
    )
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
        scenarios = [] if args.only_cold_start else SCENARIOS
        measurements = [measure(item, stack, args.runs) for item in scenarios]
        colds: list[ColdStart] = []
        ratios: list[ImportRatio] = []
        breakdown: tuple[str, list[tuple[str, float]]] | None = None
        if not args.skip_cold_start:
            colds = [cold_start(family, stack, endpoint, args.cold_runs) for family in FAMILIES]
            if any(c.import_median >= MAX_IMPORT_MS for c in colds):
                slowest = max(colds, key=lambda c: c.import_median)
                family = next(f for f, folder in FAMILIES.items() if folder == slowest.function)
                breakdown = (slowest.function, import_breakdown(family, stack, endpoint))
            ratios = import_ratios(stack, endpoint, args.import_pairs)
    if args.json:
        rows = [measurement_row(m) for m in measurements] + [cold_row(c) for c in colds]
        rows += [ratio_row(r) for r in ratios]
        if breakdown:
            function, packages = breakdown
            rows += [
                {"kind": "import_breakdown", "function": function, "package": n, "self_ms": ms}
                for n, ms in packages
            ]
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        print_tables(measurements, colds, ratios, breakdown, args)
    failed = any(item.failures() for group in (measurements, colds, ratios) for item in group)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
