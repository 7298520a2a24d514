"""The production pieces the handlers give the engine: the audit store and the reporter, built
from the settings with the service's clients (aws.client). Other callers (the CLI, the local
mode, tests) build the same pieces with clients or a metrics sink of their own.

Clients are made only for what the settings use: no audit table, no DynamoDB or KMS client; no
topic, no SNS client.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from bucketwarden.accounts import DEFAULT_SESSION_NAME, AccountAccess
from bucketwarden.audit import AuditStore
from bucketwarden.aws import client
from bucketwarden.integrity import ForgeryAlarm, Integrity
from bucketwarden.metrics import Metrics
from bucketwarden.notify import Notifier
from bucketwarden.organization import Organization, hub_organization
from bucketwarden.reporter import DryRunReporter, EventReporter, Reporter, SweepReporter
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sts import STSClient


@cache
def organization() -> Organization:
    """The hub's view of its organization, kept for the function instance: the OUs of an
    account are asked once an hour, not once per event (`organization.cache_clear()` forgets)."""
    return hub_organization()


def member_access(settings: Settings) -> AccountAccess | None:
    """The function's access to member accounts, kept for the function instance (handlers make
    an engine per event): a member role is assumed once an hour per account, not once per
    event. None outside organization mode. Kept per STS client too, so that clients made
    afresh (aws.reset_clients, a new endpoint) start afresh here."""
    if not settings.organization_mode:
        return None
    role = str(settings.member_role_name)
    session = settings.function_name or DEFAULT_SESSION_NAME
    return _kept_access(settings.account_id, role, session, client("sts"))


@cache
def _kept_access(home: str | None, role: str, session: str, sts: STSClient) -> AccountAccess:
    return AccountAccess(home, role, sts, session)


def notifier(settings: Settings) -> Notifier | None:
    """The stack's topic, or None when there is none."""
    if not settings.topic_arn:
        return None
    return Notifier(client("sns"), settings.topic_arn, settings)


def audit_store(
    settings: Settings, metrics: Metrics, dynamodb: DynamoDBClient | None = None
) -> AuditStore:
    """The stack's audit table (or none), its records tagged and verified with the stack's key;
    read with `dynamodb` when given."""
    table = settings.audit_table
    dynamodb = dynamodb or (client("dynamodb") if table else None)
    kms = client("kms") if table and settings.audit_mac_key else None
    checks = Integrity(kms, dynamodb, table, settings, ForgeryAlarm(metrics, notifier(settings)))
    return AuditStore(dynamodb, table, settings, checks)


def reporter(
    settings: Settings, store: AuditStore, metrics: Metrics, *, sweep: bool = False
) -> Reporter:
    """The reporter the settings call for: nothing recorded in a dry run; the sweep's (one
    summary), or the event path's (a notification per outcome)."""
    if settings.dry_run:
        return DryRunReporter()
    kind = SweepReporter if sweep else EventReporter
    return kind(store, notifier(settings), metrics)
