"""The production pieces the handlers give the engine: the audit store and the reporter, built
from the settings with the service's clients (aws.client). Other callers (the CLI, the local
mode, tests) build the same pieces with clients or a metrics sink of their own.

Clients are made only for what the settings use: no audit table, no DynamoDB or KMS client; no
topic, no SNS client.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from bucketwarden.accounts import account_access
from bucketwarden.audit import AuditStore
from bucketwarden.aws import client
from bucketwarden.integrity import ForgeryAlarm, Integrity
from bucketwarden.metrics import Metrics
from bucketwarden.notify import Notifier
from bucketwarden.organization import Members, Organization, hub_organization
from bucketwarden.reporter import DryRunReporter, EventReporter, Reporter, SweepReporter
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from bucketwarden.securityhub import FindingsExporter


@cache
def organization() -> Organization:
    """The hub's view of its organization, kept for the function instance: the OUs of an
    account are asked once an hour, not once per event (`organization.cache_clear()` forgets)."""
    return hub_organization()


@cache
def organization_members(organization_id: str) -> Members:
    """The accounts of the hub's organization, kept for the function instance as `organization`
    is (`organization_members.cache_clear()` forgets)."""
    return Members(lambda: client("organizations"), organization_id)


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
    return kind(
        store, notifier(settings), metrics, findings_exporter(settings, metrics, sweep=sweep)
    )


def findings_exporter(
    settings: Settings, metrics: Metrics, *, sweep: bool = False
) -> FindingsExporter | None:
    """Security Hub's importer when SecurityHubExport is on (None otherwise: no client, no
    call). Findings go to the subject's account: with its member role in organization mode."""
    if not settings.security_hub_export:
        return None
    # Imported here: a stack without the export never loads it.
    from bucketwarden.securityhub import FindingsExporter

    access = account_access(settings)

    def client_for(account: str | None, region: str | None) -> Any:
        if access is None:
            return client("securityhub", region)
        return access.client("securityhub", account, region)

    def own_account() -> str:
        return str(client("sts").get_caller_identity()["Account"])

    return FindingsExporter(settings, client_for, metrics, reconcile=sweep, account_of=own_account)
