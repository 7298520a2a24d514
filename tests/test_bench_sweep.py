"""The sweep's scale bench, on a small population: every drift found, no surface read twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bucketwarden import bench_sweep
from bucketwarden.bench import emulated_aws


@pytest.fixture
def endpoint(moto_server: str) -> Iterator[str]:
    with emulated_aws(moto_server):
        yield moto_server


def test_a_small_sweep_finds_every_drift_and_reads_each_surface_once(endpoint: str) -> None:
    population = bench_sweep.populate(endpoint, 24, prefix="bench-sweep")

    figures = bench_sweep.sweep(population)

    assert figures.size == 24
    assert figures.missed == []
    assert figures.repeated_reads == 0
    # One read per surface and bucket (access-logging reads nothing without a log target;
    # moto lists no regions: one GetBucketLocation each).
    for read in bench_sweep.SURFACE_READS - {"s3.GetBucketLogging"}:
        assert figures.calls[read] == 24, read
    assert figures.calls["s3.GetBucketLogging"] == 0
    assert figures.calls["s3.GetBucketLocation"] == 24
    assert figures.failures() == []
