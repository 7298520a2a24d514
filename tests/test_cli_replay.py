"""`bucketwarden replay` as a user runs it: a subprocess against a moto server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from bucketwarden.catalogue import CONTROLS
from bucketwarden.exemptions import CHANGE_CONTROL, CHANGE_EVENTS
from bucketwarden.settings import mode_variable
from tests.conftest import EVENTS, REGION, SAMPLES
from tests.helpers import acting, own_client
from tests.test_sample_events import CONTROL_SETTINGS, make_drifted_bucket
from tests.test_sample_events import SAMPLES as SAMPLE_EVENTS

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def run_cli(*args: str, endpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bucketwarden_tools.cli", *args]
    if endpoint:
        command += ["--endpoint-url", endpoint]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def event_for(tmp_path: Path, name: str, bucket: str, event_id: str | None = None) -> Path:
    event = json.loads((EVENTS / name).read_text())
    event["detail"]["requestParameters"]["bucketName"] = bucket
    event["detail"]["eventID"] = event_id or str(uuid.uuid4())
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(event))
    return path


@pytest.fixture
def public_bucket(moto_server: str) -> str:
    name = f"replay-{uuid.uuid4().hex[:12]}"
    s3 = client(moto_server, "s3")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_acl(Bucket=name, ACL="public-read")
    return name


def public_grants(endpoint: str, bucket: str) -> list[dict[str, Any]]:
    grants = client(endpoint, "s3").get_bucket_acl(Bucket=bucket)["Grants"]
    return [g for g in grants if g["Grantee"].get("URI") == ALL_USERS]


def test_replay_fixes_then_reports_compliant(moto_server: str, public_bucket: str, tmp_path: Path):
    first = run_cli(
        "replay",
        str(event_for(tmp_path, "PutBucketAcl.json", public_bucket)),
        "--json",
        endpoint=moto_server,
    )
    assert first.returncode == 0, first.stderr
    [outcome] = json_lines(first.stdout)
    assert outcome["bucket"] == public_bucket
    assert outcome["control"] == "public-acl"
    assert outcome["status"] == "remediated"
    assert outcome["audit_id"]
    assert public_grants(moto_server, public_bucket) == []

    second = run_cli(
        "replay",
        str(event_for(tmp_path, "PutBucketAcl.json", public_bucket)),
        "--json",
        endpoint=moto_server,
    )
    assert second.returncode == 0, second.stderr
    assert [o["status"] for o in json_lines(second.stdout)] == ["compliant"]


def test_same_event_twice_does_its_work_once(moto_server: str, public_bucket: str, tmp_path: Path):
    path = event_for(tmp_path, "PutBucketAcl.json", public_bucket)
    first = json_lines(run_cli("replay", str(path), "--json", endpoint=moto_server).stdout)
    # The bucket drifts again, but a repeated delivery of the old event must not act twice.
    client(moto_server, "s3").put_bucket_acl(Bucket=public_bucket, ACL="public-read")
    second = json_lines(run_cli("replay", str(path), "--json", endpoint=moto_server).stdout)
    assert [o["status"] for o in first] == ["remediated"]
    assert [o["status"] for o in second] == ["ignored"]
    assert "duplicate delivery" in second[0]["reason"]
    audit = client(moto_server, "dynamodb").scan(TableName="bucketwarden-audit")["Items"]
    assert [item["status"]["S"] for item in audit if item["bucket"]["S"] == public_bucket] == [
        "remediated"
    ]


def test_missing_stack_resources_are_created_and_said(moto_server: str, tmp_path: Path):
    bucket = f"replay-{uuid.uuid4().hex[:12]}"
    client(moto_server, "s3").create_bucket(Bucket=bucket)
    result = run_cli(
        "replay",
        str(event_for(tmp_path, "PutBucketVersioning.json", bucket)),
        "--json",
        "--audit-table",
        f"audit-{bucket}",
        "--idempotency-table",
        f"idem-{bucket}",
        endpoint=moto_server,
    )
    assert result.returncode == 0, result.stderr
    assert f"created audit table audit-{bucket}" in result.stderr
    assert f"created idempotency table idem-{bucket}" in result.stderr
    assert [o["status"] for o in acting(json_lines(result.stdout))] == ["remediated"]
    versioning = client(moto_server, "s3").get_bucket_versioning(Bucket=bucket)
    assert versioning["Status"] == "Enabled"
    # The local tables are the template's: same keys, and the bucket index that history reads.
    table = client(moto_server, "dynamodb").describe_table(TableName=f"audit-{bucket}")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "audit_id", "KeyType": "HASH"}]
    assert [index["IndexName"] for index in table["GlobalSecondaryIndexes"]] == [
        "bucket-time-index"
    ]


def test_dry_run_changes_nothing(moto_server: str, public_bucket: str, tmp_path: Path):
    path = event_for(tmp_path, "PutBucketAcl.json", public_bucket)
    result = run_cli("replay", str(path), "--json", "--dry-run", endpoint=moto_server)
    assert result.returncode == 0, result.stderr
    [outcome] = json_lines(result.stdout)
    assert outcome["status"] == "noncompliant"
    assert not [g for g in outcome["after"]["Grants"] if g["Grantee"].get("URI") == ALL_USERS]
    assert len(public_grants(moto_server, public_bucket)) == 1


def test_create_bucket_reaches_every_family(moto_server: str, tmp_path: Path):
    bucket = f"replay-{uuid.uuid4().hex[:12]}"
    client(moto_server, "s3").create_bucket(Bucket=bucket)
    result = run_cli(
        "replay",
        str(event_for(tmp_path, "CreateBucket.json", bucket)),
        "--json",
        endpoint=moto_server,
    )
    assert result.returncode == 0, result.stderr
    statuses = {o["control"]: o["status"] for o in json_lines(result.stdout)}
    # moto gives new buckets none of AWS's 2023 defaults, so Block Public Access, ownership,
    # encryption and versioning drift; no log target is configured here.
    assert statuses == {
        "bucket-public-access-block": "remediated",
        "public-acl": "compliant",
        "object-ownership": "remediated",
        "secure-transport": "remediated",
        "default-encryption": "remediated",
        "versioning": "remediated",
        "access-logging": "compliant",
    }


def test_table_output_names_bucket_and_status(moto_server: str, public_bucket: str, tmp_path: Path):
    path = event_for(tmp_path, "PutBucketAcl.json", public_bucket)
    result = run_cli("replay", str(path), endpoint=moto_server)
    assert result.returncode == 0, result.stderr
    assert "remediated" in result.stdout
    assert "public-acl" in result.stdout


def test_event_no_rule_matches_is_ignored(moto_server: str, tmp_path: Path):
    # The sample's account ("12345") made the stack's, or it is ignored for that first.
    record = json.loads((SAMPLES / "streamalert__PutObjectAcl__5.json").read_text())
    sample = tmp_path / "PutObjectAcl.json"
    sample.write_text(json.dumps({**record, "recipientAccountId": "123456789012"}))
    result = run_cli("replay", str(sample), "--json", endpoint=moto_server)
    assert result.returncode == 0, result.stderr
    [outcome] = json_lines(result.stdout)
    assert outcome["status"] == "ignored"
    assert "no rule" in outcome["reason"]


def test_failed_call_is_ignored(moto_server: str):
    sample = SAMPLES / "panther-analysis__PutBucketAcl__2.json"
    result = run_cli("replay", str(sample), "--json", endpoint=moto_server)
    assert result.returncode == 0, result.stderr
    assert {o["status"] for o in json_lines(result.stdout)} == {"ignored"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "expected a JSON object"),
        (
            json.dumps(
                {"eventID": "1", "eventName": "RunInstances", "eventSource": "ec2.amazonaws.com"}
            ),
            "is not S3",
        ),
        (json.dumps({"hello": "world"}), "not a CloudTrail record"),
    ],
)
def test_bad_input_exits_2_with_reason(tmp_path: Path, content: str, message: str):
    path = tmp_path / "event.json"
    path.write_text(content)
    result = run_cli("replay", str(path))
    assert result.returncode == 2
    # The terminal wraps long lines (a long temporary path moves the breaks).
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""


@pytest.mark.parametrize(
    "content",
    [b'{"eventName": "PutBucketAcl\xff"}', b"[" * 100_000 + b"]" * 100_000],
    ids=["not-utf8", "nested-too-deep"],
)
def test_text_that_is_not_json_in_any_way_exits_2(tmp_path: Path, content: bytes):
    path = tmp_path / "event.json"
    path.write_bytes(content)
    result = run_cli("replay", str(path))
    assert result.returncode == 2
    assert "is not JSON" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(tmp_path: Path):
    result = run_cli("replay", str(tmp_path / "absent.json"))
    assert result.returncode == 2
    assert "cannot read" in result.stderr


def test_unreachable_endpoint_exits_2(tmp_path: Path):
    result = run_cli("replay", str(EVENTS / "PutBucketAcl.json"), endpoint="http://127.0.0.1:9")
    assert result.returncode == 2
    assert "AWS error" in result.stderr


def reset(endpoint: str) -> None:
    """Forget every resource of the moto server (the samples all name the same bucket)."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


@pytest.fixture
def on_moto_server(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The tests' own clients point at a fresh moto server for one test, and forget it after."""
    reset(moto_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)  # the set-up and the CLI alike
    own_client.cache_clear()
    yield moto_server
    own_client.cache_clear()


@pytest.mark.parametrize(
    "path", [p for p in SAMPLE_EVENTS if p.stem not in CHANGE_EVENTS], ids=lambda p: p.stem
)
def test_every_sample_event_is_fixed_through_replay(
    path: Path, on_moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each control of the catalogue, through each of its trigger events, as a user replays it."""
    # Detect-only controls are off (tests/conftest.py): they fix nothing to replay.
    controls = [c for c in CONTROLS if path.stem in c.trigger_events and c.fixable]
    moto_server = on_moto_server
    for control in controls:
        for name, value in CONTROL_SETTINGS.get(control.id, {}).items():
            monkeypatch.setenv(name, value)
        # Remediate mode, which the controls added later (notify by default) must be given.
        monkeypatch.setenv(mode_variable(control.id), "remediate")
    make_drifted_bucket({c.id for c in controls})

    result = run_cli("replay", str(path), "--json", endpoint=moto_server)

    assert result.returncode == 0, result.stderr
    outcomes = acting(json_lines(result.stdout))
    assert [(o["control"], o["status"]) for o in outcomes] == [
        (c.id, "remediated") for c in controls
    ], outcomes


def test_a_tagging_sample_is_audited_as_an_exemption_change_through_replay(
    on_moto_server: str,
) -> None:
    bucket = "bucketwarden-demo-bucket"
    s3 = own_client("s3")
    s3.create_bucket(Bucket=bucket)
    tags = [
        {"Key": "bucketwarden:exempt", "Value": "versioning"},
        {"Key": "bucketwarden:exempt-reason", "Value": "archive"},
    ]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})

    result = run_cli(
        "replay", str(EVENTS / "PutBucketTagging.json"), "--json", endpoint=on_moto_server
    )

    assert result.returncode == 0, result.stderr
    (outcome,) = json_lines(result.stdout)
    assert (outcome["control"], outcome["status"]) == (CHANGE_CONTROL, "exempted")
    assert outcome["after"]["controls"] == ["versioning"]
    assert outcome["actor"].endswith("assumed-role/PlatformEngineer/jane.doe")
