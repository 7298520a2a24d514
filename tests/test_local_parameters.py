"""`bucketwarden local --parameter-overrides`: template parameters, as `sam deploy` takes them.

Each override is checked against template.yaml before anything starts, and reaches the
functions as the variable the template's Globals set from it. The local mode also enables
Security Hub in the accounts it makes, so exported findings can be read back from it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from bucketwarden_tools.parameters import (
    ParameterError,
    check_overrides,
    function_environment,
    parse_overrides,
    without_effect,
)
from bucketwarden_tools.routing import DEFAULT_TEMPLATE, load_template
from tests.local_helpers import (
    CALLER_ARN,
    LocalStack,
    make_acl_public,
    poll_until,
    public_grants,
    run_local,
    start_stack,
)

TEMPLATE = load_template(DEFAULT_TEMPLATE)


# -- parsing ---------------------------------------------------------------------------------


def test_overrides_are_read_in_both_of_sams_forms() -> None:
    items = ["PublicAclMode=notify", "ParameterKey=FlapThreshold,ParameterValue=5"]
    assert parse_overrides(items) == {"PublicAclMode": "notify", "FlapThreshold": "5"}


def test_one_item_may_hold_several_overrides_as_sams_single_string_does() -> None:
    overrides = parse_overrides(["PublicAclMode=notify LogTargetPrefix='logs/ here/'"])
    assert overrides == {"PublicAclMode": "notify", "LogTargetPrefix": "logs/ here/"}


def test_a_value_may_be_empty_or_hold_an_equals_sign() -> None:
    assert parse_overrides(["TlsMinimum=", "ExemptTagKey=a=b"]) == {
        "TlsMinimum": "",
        "ExemptTagKey": "a=b",
    }


@pytest.mark.parametrize("item", ["PublicAclMode", "=notify"])
def test_an_item_that_is_not_name_equals_value_is_refused(item: str) -> None:
    with pytest.raises(ParameterError, match="is not Name=Value"):
        parse_overrides([item])


# -- checking against the template -----------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"PublicAclModes": "notify"}, "unknown parameter 'PublicAclModes'; template.yaml has: "),
        ({"PublicAclMode": "sometimes"}, "PublicAclMode='sometimes': not one of 'remediate'"),
        ({"FlapThreshold": "many"}, "FlapThreshold='many': not a number"),
        ({"FlapThreshold": "101"}, "FlapThreshold='101': above MaxValue 100"),
        ({"FlapWindowMinutes": "0"}, "FlapWindowMinutes='0': below MinValue 1"),
        ({"LogTargetBucket": "Not_A_Bucket"}, "LogTargetBucket='Not_A_Bucket': "),
    ],
)
def test_an_unknown_name_or_a_value_the_parameter_does_not_allow_is_refused(
    overrides: dict[str, str], problem: str
) -> None:
    with pytest.raises(ParameterError) as refused:
        check_overrides(overrides, TEMPLATE)
    assert str(refused.value).startswith(problem)
    assert "\n" not in str(refused.value)


def test_allowed_values_pass() -> None:
    check_overrides(
        {"PublicAclMode": "notify", "FlapThreshold": "5", "LogTargetBucket": "my-logs"}, TEMPLATE
    )


def test_overrides_become_the_variables_the_template_sets_from_them() -> None:
    overrides = {"PublicAclMode": "notify", "FlapThreshold": "7", "EncryptionBaseline": "SSE-KMS"}
    assert function_environment(overrides, TEMPLATE) == {
        "MODE_PUBLIC_ACL": "notify",
        "FLAP_THRESHOLD": "7",
        "ENCRYPTION_BASELINE": "SSE-KMS",
    }


def test_security_hub_export_is_a_parameter_every_function_gets() -> None:
    check_overrides({"SecurityHubExport": "true"}, TEMPLATE)
    assert function_environment({"SecurityHubExport": "true"}, TEMPLATE) == {
        "SECURITY_HUB_EXPORT": "true"
    }
    with pytest.raises(ParameterError):
        check_overrides({"SecurityHubExport": "yes"}, TEMPLATE)


def test_parameters_that_set_no_function_variable_are_named() -> None:
    overrides = {"SweepSchedule": "rate(1 hour)", "PublicAclMode": "notify"}
    assert without_effect(overrides, TEMPLATE) == ["SweepSchedule"]
    assert function_environment(overrides, TEMPLATE) == {"MODE_PUBLIC_ACL": "notify"}


# -- the command -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["NoSuchParameter=1"], "unknown parameter 'NoSuchParameter'"),
        (["PublicAclMode=sometimes"], "PublicAclMode='sometimes': not one of"),
        (["FlapThreshold"], "'FlapThreshold' is not Name=Value"),
    ],
)
def test_local_refuses_a_bad_override_in_one_line_before_starting(
    overrides: list[str], message: str
) -> None:
    # Port 1 cannot be served by a test: the refusal comes before anything listens.
    finished = run_local("--port", "1", "--parameter-overrides", *overrides)

    assert finished.returncode == 2
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert "--parameter-overrides" in lines[0]
    assert message in lines[0]
    assert "port 1" not in finished.stderr


# -- through the running local mode ------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    running = start_stack(
        args=(
            "--parameter-overrides",
            "PublicAclMode=notify",
            "ParameterKey=FlapThreshold,ParameterValue=9",
        )
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def s3(stack: LocalStack) -> Any:
    return stack.client("s3")


def test_an_overridden_mode_reaches_the_functions(stack: LocalStack, s3: Any) -> None:
    """PublicAclMode=notify: a public ACL is reported, and stays."""
    bucket = f"params-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    make_acl_public(s3, bucket)

    def reported() -> list[dict[str, Any]]:
        return stack.outcomes(
            bucket=bucket, event_name="PutBucketAcl", control="public-acl", actor=CALLER_ARN
        )

    (outcome,) = poll_until(reported, what="public-acl's outcome of PutBucketAcl")
    assert outcome["status"] == "noncompliant"
    assert outcome["mode"] == "notify"
    assert public_grants(s3, bucket), "notify mode changes nothing"


def test_security_hub_is_enabled_in_the_local_account(stack: LocalStack) -> None:
    securityhub = stack.client("securityhub")
    assert securityhub.describe_hub()["HubArn"]
    assert securityhub.get_findings()["Findings"] == []


def test_a_directory_buckets_public_policy_is_fixed_through_local_mode(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local CloudTrail logs a directory bucket's calls as S3 Express does; only the
    controls that judge directory buckets act on them."""
    # Against one endpoint address, botocore signs a directory bucket's calls without an
    # S3 Express session only when told so (the local mode tells its functions the same).
    monkeypatch.setenv("AWS_S3_DISABLE_EXPRESS_SESSION_AUTH", "true")
    s3 = stack.client("s3")
    bucket = f"params-{uuid.uuid4().hex[:8]}--use1-az4--x-s3"
    s3.create_bucket(Bucket=bucket)
    public = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3express:CreateSession",
        "Resource": f"arn:aws:s3express:us-east-1:123456789012:bucket/{bucket}",
    }
    s3.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [public]})
    )

    def fixed() -> list[dict[str, Any]]:
        return stack.outcomes(
            bucket=bucket, event_name="PutBucketPolicy", control="public-policy", actor=CALLER_ARN
        )

    (outcome,) = poll_until(fixed, what="public-policy's fix of the directory bucket")
    assert outcome["status"] == "remediated", outcome["reason"]
    created = poll_until(
        lambda: stack.outcomes(bucket=bucket, event_name="CreateBucket", actor=CALLER_ARN),
        what="the directory bucket's creation judged",
    )
    judged = {o["control"] for o in created if o["status"] != "ignored"}
    assert judged <= {"default-encryption"}
