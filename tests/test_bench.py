"""The benchmark counts the AWS calls one event really costs (no timing is asserted here)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bucketwarden.catalogue import CONTROL_IDS, FAMILIES, control
from bucketwarden_tools import bench


@pytest.fixture
def stack(aws: None) -> bench.Stack:
    return bench.create_stack()


def s3_calls(measured: bench.Measurement) -> Counter[str]:
    return Counter({name: n for name, n in measured.calls.items() if name.startswith("s3.")})


def test_remediated_public_acl_costs_its_reads_and_writes(stack: bench.Stack) -> None:
    measured = bench.measure(bench.scenario("public-acl", "public-read ACL"), stack, runs=1)

    assert measured.statuses == ["remediated"]
    # Read, exemption tags (only because something is wrong), the website configuration (only
    # because anyone could read the bucket), a re-read right before the write (an edit made
    # meanwhile is judged, not overwritten), write, verify by re-reading. The set-up calls
    # (CreateBucket, PutBucketAcl public-read) made before the event are not counted.
    assert s3_calls(measured) == Counter(
        {
            "s3.GetBucketAcl": 3,
            "s3.GetBucketTagging": 1,
            "s3.GetBucketWebsite": 1,
            "s3.PutBucketAcl": 1,
        }
    )
    assert measured.s3_calls == measured.scenario.max_s3 == bench.MAX_S3_REMEDIATED + 2
    # The fix's audit record: written ahead of the change (pending), then completed.
    assert measured.audit_calls == 2
    # Each write tagged; a fresh bucket has no record to verify.
    assert (measured.audit_tags, measured.audit_verifications) == (2, 0)
    assert measured.sns_publishes == 1
    assert measured.idempotency_ops == Counter({"PutItem": 1})
    assert measured.stable
    assert measured.failures() == []


def test_public_policy_and_secure_transport_are_fixed_with_one_policy_write(
    stack: bench.Stack,
) -> None:
    item = bench.scenario("public-policy", "public statement and no TLS rule")

    measured = bench.measure(item, stack, runs=1)

    assert measured.outcomes == [
        ("public-policy", "remediated"),
        ("secure-transport", "remediated"),
        ("cross-account-actions", "ignored"),  # switched off: the row measures what it names
    ]
    # One surface: one read, one re-read before the write, one write, one verify for both
    # controls (and one budget).
    assert s3_calls(measured) == Counter(
        {
            "s3.GetBucketPolicy": 3,
            "s3.GetBucketTagging": 1,
            "s3.GetBucketWebsite": 1,
            "s3.PutBucketPolicy": 1,
        }
    )
    assert item.max_s3 == bench.MAX_S3_REMEDIATED + 2
    # Each remediated control is audited (ahead of the change and after it) and notified.
    assert (measured.audit_calls, measured.sns_publishes) == (4, 2)
    assert measured.failures() == []


def test_a_scenario_about_one_control_switches_the_events_other_controls_off(
    stack: bench.Stack,
) -> None:
    item = bench.scenario("public-policy", "public statement among service statements")

    measured = bench.measure(item, stack, runs=1)

    assert item.environment["MODE_SECURE_TRANSPORT"] == "off"
    assert measured.outcomes == [
        ("public-policy", "remediated"),
        ("secure-transport", "ignored"),
        ("cross-account-actions", "ignored"),
    ]
    assert measured.statuses == ["remediated"]


def test_calls_beyond_the_budget_and_its_extras_fail_the_scenario(stack: bench.Stack) -> None:
    item = bench.scenario("object-ownership", "log delivery ACL grant moved to the policy")
    measured = bench.measure(item, stack, runs=1)
    assert measured.failures() == []
    assert measured.calls["s3.PutBucketPolicy"] == 1
    assert measured.calls["sts.GetCallerIdentity"] == 1

    without_extras = dataclasses.replace(measured, scenario=dataclasses.replace(item, extras=()))

    assert without_extras.failures() == [
        f"S3 {measured.s3_calls} > {bench.MAX_S3_REMEDIATED}",
        "unexpected calls {'sts.GetCallerIdentity': 1}",
    ]


def test_every_control_has_a_remediated_scenario() -> None:
    expected = [
        (control_id, status)
        for item in bench.SCENARIOS
        for control_id, status in item.expectations.items()
    ]
    remediated = {control_id for control_id, status in expected if status == "remediated"}
    fixing = {control_id for control_id in CONTROL_IDS if control(control_id).fixable}

    assert fixing - remediated == set()
    # A control that only detects has its drift found where it has a scenario, never fixed.
    assert not remediated - fixing


def test_the_cold_start_covers_every_function() -> None:
    assert set(bench.COLD_EVENTS) == set(FAMILIES)


def test_compliant_bucket_costs_one_read_and_no_report(stack: bench.Stack) -> None:
    measured = bench.measure(bench.scenario("versioning", "already compliant"), stack, runs=1)

    assert measured.statuses == ["compliant"]
    assert measured.calls["s3.GetBucketVersioning"] == 1
    assert measured.s3_calls == 1
    assert (measured.audit_calls, measured.sns_publishes) == (0, 0)


def test_import_time_goes_to_the_package_that_imported_it() -> None:
    importtime = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       500 |        500 | encodings",
            "import time:       300 |        300 |     ssl",
            "import time:      1000 |       1300 |   botocore.compat",
            "import time:       200 |        200 |     re",
            "import time:       400 |        600 |   pydantic",
            "import time:        50 |       1950 | app",
        ]
    )

    assert bench.attribute_import_time(importtime) == [
        ("botocore", 1.3),
        ("pydantic", 0.6),
        ("app", 0.05),
    ]


def test_every_scenario_ends_as_expected_within_its_budget(stack: bench.Stack) -> None:
    # One stack for all (a fresh one costs more than a scenario); each scenario has its buckets.
    failures = {
        f"{item.control}/{item.drift}": bench.measure(item, stack, runs=1).failures()
        for item in bench.SCENARIOS
    }

    assert {name: found for name, found in failures.items() if found} == {}


def test_the_import_ratio_covers_every_function_of_the_template() -> None:
    folders = {folder.name for folder in bench.function_folders()}

    assert folders == {*FAMILIES.values(), "sweep"}


def lambda_environment(folder: Path) -> dict[str, str]:
    """The environment a cold-start child gets; importing reaches no endpoint."""
    stack = bench.Stack("audit", "idempotency", "arn:aws:sns:us-east-1:123456789012:t", "key")
    return bench.lambda_environment(folder, stack, "http://127.0.0.1:9")


def test_a_functions_libraries_are_boto3_and_the_powertools_utilities_it_uses() -> None:
    folder = bench.FUNCTIONS_DIR / FAMILIES["versioning"]

    libraries = bench.libraries_of(folder, lambda_environment(folder))

    packages = {name.split(".")[0] for name in libraries}
    assert packages == {
        "aws_lambda_powertools",
        "boto3",
        "botocore",
        "pydantic",
        "typing_extensions",
    }
    # Each name taken from a package counts with the module that defines it: EventBridgeModel
    # is loaded by Powertools only when asked for.
    assert "aws_lambda_powertools.utilities.parser.models.event_bridge" in libraries
    assert "aws_lambda_powertools.utilities.idempotency" in libraries
    assert bench.library_names(libraries) == (
        "Powertools (idempotency, logging, metrics, parameters, parser, tracing), boto3, pydantic, "
        "typing_extensions"
    )


def test_a_function_is_measured_on_top_of_its_libraries_in_each_interpreter() -> None:
    folder = bench.FUNCTIONS_DIR / "sweep"

    measured = bench.import_ratio(folder, lambda_environment(folder), runs=2)

    assert measured.function == "sweep"
    assert "pydantic" in measured.libraries  # the sweep's own payload models
    assert (len(measured.libraries_ms), len(measured.own_runs_ms)) == (2, 2)
    assert all(own > 0 for own in measured.own_runs_ms)  # our modules load after the libraries
    ratios = [f / lib for f, lib in zip(measured.function_ms, measured.libraries_ms, strict=True)]
    assert min(ratios) <= measured.ratio <= max(ratios)
    row = bench.ratio_row(measured)
    assert row["kind"] == "import_ratio"
    assert row["ratio_target"] == bench.MAX_IMPORT_RATIO == 1.15


def test_a_function_whose_own_code_adds_more_than_the_target_fails() -> None:
    # Each run is judged inside its interpreter: a load that slowed both steps cancels out.
    libraries_ms, own_ms = [100.0, 200.0, 100.0], [15.0, 30.0, 10.0]
    within = bench.ImportRatio("versioning", ["boto3"], libraries_ms, own_ms)
    beyond = bench.ImportRatio("versioning", ["boto3"], [100.0], [20.0])

    assert (within.ratio, within.own_ms, within.failures()) == (1.15, 15.0, [])
    assert beyond.failures() == ["import ratio 1.20 > 1.15"]
    assert bench.ratio_row(beyond)["result"] == "FAIL"


def test_the_event_models_are_built_on_the_first_parse_not_at_import() -> None:
    record = {
        "eventID": "5d2c1f3e-0000-4000-8000-000000000001",
        "eventName": "PutBucketVersioning",
        "eventSource": "s3.amazonaws.com",
        "requestParameters": {"bucketName": "example-bucket"},
    }
    code = (
        "import json, sys\n"
        "from bucketwarden import events\n"
        "before = events.CloudTrailRecord.__pydantic_complete__\n"
        "events.parse_record(sys.argv[1])\n"
        "print(before, events.CloudTrailRecord.__pydantic_complete__)\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(record)], capture_output=True, text=True, check=True
    )

    assert done.stdout.split() == ["False", "True"]
