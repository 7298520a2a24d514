"""The organization sweep bench, on a small organization: the counts it prints, not its times.

Three accounts of four buckets each against twelve buckets in one account, on the bench's own
moto server: every bucket judged once in each, the same S3 reads per bucket (each account
lists its own buckets), at most one STS call per account per invocation, and for a member's
event one STS call on a cold function instance and none on a warm one.
"""

from __future__ import annotations

import pytest

from bucketwarden.org_sweep import FAN_OUT
from bucketwarden_tools import bench_org_sweep, bench_sweep
from bucketwarden_tools.bench import moto_server_process

SHAPE = bench_org_sweep.Shape(accounts=3, per_account=4)

# The member event's claim is made outside Lambda: Powertools cannot tell the time left.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")


def test_a_small_organization_sweep_counts_what_the_bench_prints() -> None:
    with moto_server_process() as (endpoint, _):
        figures = bench_org_sweep.measure(endpoint, SHAPE)

    single, organization = figures.single, figures.organization
    assert (single.buckets, organization.buckets) == (12, 12)
    assert single.invocations == 1
    # The start, then one invocation per account (none runs short of time).
    assert organization.invocations == 1 + SHAPE.accounts <= 1 + FAN_OUT
    assert organization.calls["sts.AssumeRole"] == SHAPE.accounts - 1  # not the hub's own
    assert organization.sts_per_account_and_invocation == 1
    assert single.calls.get("sts.AssumeRole", 0) == 0
    # The same reads per bucket: one per surface; each account lists its own buckets.
    for read in bench_sweep.SURFACE_READS - {"s3.GetBucketLogging"}:
        assert single.calls[read] == organization.calls[read] == SHAPE.buckets, read
    assert organization.calls["s3.ListBuckets"] == single.calls["s3.ListBuckets"] + 2
    assert (figures.cold_sts, figures.warm_sts) == (1, 0)
    # Only the time ratio is left to the bench itself (a test asserts no time).
    assert [f for f in figures.failures() if "x the single" not in f] == []
