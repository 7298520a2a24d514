"""The stack's audit table and key, idempotency table and topic, as the CLI finds or creates them.

Against an emulator endpoint the CLI creates what is missing, so a replay behaves like the
deployed stack. Against AWS it never creates anything: what is missing is skipped with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from bucketwarden.aws import client, error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_kms import KMSClient

DEFAULT_AUDIT_TABLE = "bucketwarden-audit"
DEFAULT_IDEMPOTENCY_TABLE = "bucketwarden-idempotency"
DEFAULT_TOPIC_NAME = "bucketwarden-notifications"
# The HMAC key that tags audit records (integrity.py), as local mode and replay make it.
DEFAULT_MAC_KEY = "alias/bucketwarden-audit-mac"


@dataclass
class StackResources:
    audit_table: str | None = None
    audit_mac_key: str | None = None
    idempotency_table: str | None = None
    topic_arn: str | None = None
    notes: list[str] = field(default_factory=list)

    def environment(self) -> dict[str, str]:
        """The environment variables the engine reads, as the template sets them."""
        values = {
            "AUDIT_TABLE": self.audit_table,
            "AUDIT_MAC_KEY": self.audit_mac_key,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "NOTIFICATION_TOPIC_ARN": self.topic_arn,
        }
        return {name: value for name, value in values.items() if value}


def _table_exists(dynamodb: DynamoDBClient, name: str) -> bool:
    try:
        dynamodb.describe_table(TableName=name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            return False
        raise
    return True


# The parts of a template table that the CreateTable API takes as they are written there.
_CREATE_TABLE_PROPERTIES = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "BillingMode",
)


def create_table_like(dynamodb: DynamoDBClient, name: str, logical_id: str) -> None:
    """Create `name` as template.yaml defines `logical_id`: same keys, same indexes."""
    from bucketwarden_tools.routing import load_template

    properties = load_template()["Resources"][logical_id]["Properties"]
    dynamodb.create_table(
        TableName=name,
        **{key: properties[key] for key in _CREATE_TABLE_PROPERTIES if key in properties},
    )


def _table(name: str, logical_id: str, purpose: str, create: bool, notes: list[str]) -> str | None:
    dynamodb = client("dynamodb")
    if _table_exists(dynamodb, name):
        return name
    if create:
        create_table_like(dynamodb, name, logical_id)
        notes.append(f"created {purpose} table {name} on the endpoint")
        return name
    notes.append(f"{purpose} table {name} not found: {purpose} skipped")
    return None


def find_mac_key(
    name: str, create: bool, notes: list[str], kms: KMSClient | None = None
) -> str | None:
    """The audit records' HMAC key by alias (its ARN), made on an endpoint if it is missing."""
    kms = kms or client("kms")
    try:
        return str(kms.describe_key(KeyId=name)["KeyMetadata"]["Arn"])
    except ClientError as error:
        if error_code(error) != "NotFoundException":
            raise
    if not create:
        notes.append(
            f"audit record key {name} not found: records are not tagged and drive no decision"
        )
        return None
    made = kms.create_key(
        KeySpec="HMAC_256",
        KeyUsage="GENERATE_VERIFY_MAC",
        Description="BucketWarden audit record integrity tags",
    )["KeyMetadata"]
    kms.create_alias(AliasName=name, TargetKeyId=made["KeyId"])
    notes.append(f"created audit record key {name} on the endpoint")
    return str(made["Arn"])


def prepare(
    create_missing: bool,
    audit_table: str = DEFAULT_AUDIT_TABLE,
    idempotency_table: str = DEFAULT_IDEMPOTENCY_TABLE,
    topic_arn: str | None = None,
    mac_key: str = DEFAULT_MAC_KEY,
) -> StackResources:
    resources = StackResources()
    notes = resources.notes
    resources.audit_table = _table(audit_table, "AuditTable", "audit", create_missing, notes)
    if resources.audit_table:
        resources.audit_mac_key = find_mac_key(mac_key, create_missing, notes)
    resources.idempotency_table = _table(
        idempotency_table, "IdempotencyTable", "idempotency", create_missing, notes
    )
    if topic_arn:
        resources.topic_arn = topic_arn
    elif create_missing:
        sns = client("sns")
        resources.topic_arn = sns.create_topic(Name=DEFAULT_TOPIC_NAME)["TopicArn"]
        notes.append(f"notifications go to topic {resources.topic_arn} on the endpoint")
    else:
        notes.append("no --topic-arn given: notifications skipped")
    return resources
