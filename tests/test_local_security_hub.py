"""Local mode with SecurityHubExport=true: findings land in the embedded Security Hub, where the
AWS CLI (`aws securityhub get-findings --endpoint-url ...`) reads them, as docs/local.md says."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.local_helpers import LocalStack, poll_until, start_stack


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    running = start_stack(
        args=("--parameter-overrides", "SecurityHubExport=true", "VersioningMode=notify")
    )
    yield running
    running.stop()


def test_a_drift_is_a_failed_finding_in_the_embedded_security_hub(stack: LocalStack) -> None:
    s3 = stack.client("s3")
    bucket = f"findings-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})

    def findings() -> list[dict[str, Any]]:
        found = stack.client("securityhub").get_findings(MaxResults=100)["Findings"]
        return [
            f
            for f in found
            if f["GeneratorId"] == "bucketwarden/versioning" and bucket in f["Id"]
            and f["Compliance"]["Status"] == "FAILED"
        ]  # fmt: skip

    [finding] = poll_until(findings, what=f"the versioning finding of {bucket}")

    assert finding["Compliance"]["SecurityControlId"] == "S3.14"
    assert finding["AwsAccountId"] == "123456789012"
    assert finding["Resources"][0]["Type"] == "AwsS3Bucket"
    assert bucket in finding["Resources"][0]["Id"]
