"""The benchmark counts the AWS calls one event really costs (no timing is asserted here)."""

from __future__ import annotations

from collections import Counter

import pytest

from bucketwarden import bench


@pytest.fixture
def stack(aws: None) -> bench.Stack:
    return bench.create_stack()


def test_remediated_public_acl_costs_its_reads_and_writes(stack: bench.Stack) -> None:
    measured = bench.measure(bench.scenario("public-acl", "public-read ACL"), stack, runs=1)

    assert measured.statuses == ["remediated"]
    s3 = Counter({name: n for name, n in measured.calls.items() if name.startswith("s3.")})
    # Read, exemption tags (only because something is wrong), write, verify by re-reading. The
    # set-up calls (CreateBucket, PutBucketAcl public-read) made before the event are not counted.
    assert s3 == Counter({"s3.GetBucketAcl": 2, "s3.GetBucketTagging": 1, "s3.PutBucketAcl": 1})
    assert measured.audit_calls == 1
    assert measured.sns_publishes == 1
    assert measured.idempotency_ops == Counter({"PutItem": 1})
    assert measured.stable


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
