"""CloudTrail records for S3 calls made through a boto3 client, as S3 would log them.

An emulator logs no CloudTrail events, so the demo attaches a `TrailRecorder` to the client
that plays the user: every successful S3 configuration call becomes the record CloudTrail
would deliver to EventBridge.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

# Calls that change configuration, as CloudTrail names them (the botocore operation names).
READ_ONLY_PREFIXES = ("Get", "List", "Head")


def cloudtrail_record(
    operation: str,
    params: dict[str, Any],
    *,
    actor_arn: str,
    account: str,
    region: str,
    source_ip: str,
    user_agent: str,
) -> dict[str, Any]:
    bucket = params.get("Bucket")
    request: dict[str, Any] = {"bucketName": bucket, "Host": f"{bucket}.s3.amazonaws.com"}
    for key, value in params.items():
        if key == "ACL":
            request["x-amz-acl"] = [value]
        elif key != "Bucket":
            request[key] = value
    role = actor_arn.split("/")[1] if ":assumed-role/" in actor_arn else None
    identity: dict[str, Any] = {
        "type": "AssumedRole" if role else "IAMUser",
        "arn": actor_arn,
        "accountId": account,
        "principalId": "AROADEMO:session" if role else "AIDADEMO",
    }
    if role:
        identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "arn": f"arn:aws:iam::{account}:role/{role}"}
        }
    return {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "s3.amazonaws.com",
        "eventName": operation,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": user_agent,
        "requestParameters": request,
        "responseElements": None,
        "requestID": uuid.uuid4().hex[:16].upper(),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    }


class TrailRecorder:
    """Collects a CloudTrail record for every successful configuration call of a client."""

    def __init__(
        self,
        actor_arn: str,
        account: str = "123456789012",
        region: str = "us-east-1",
        source_ip: str = "198.51.100.7",
    ) -> None:
        self.actor_arn = actor_arn
        self.account = account
        self.region = region
        self.source_ip = source_ip
        self.records: list[dict[str, Any]] = []

    def attach(self, s3_client: Any) -> Any:
        s3_client.meta.events.register("provide-client-params.s3", self._remember_params)
        s3_client.meta.events.register("after-call.s3", self._record)
        return s3_client

    @staticmethod
    def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["bucketwarden_params"] = dict(params)

    def _record(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        if model.name.startswith(READ_ONLY_PREFIXES) or http_response.status_code >= 300:
            return
        self.records.append(
            cloudtrail_record(
                model.name,
                context.get("bucketwarden_params", {}),
                actor_arn=self.actor_arn,
                account=self.account,
                region=self.region,
                source_ip=self.source_ip,
                user_agent="aws-cli/2.22.0 bucketwarden-demo",
            )
        )

    def drain(self) -> list[dict[str, Any]]:
        records, self.records = self.records, []
        return records
