"""The sweep's scale bench, on a small population: every drift found, no surface read twice.

It runs on the bench's own moto server (`bucketwarden_tools.moto_http`, in a process of its own),
which keeps connections alive where `moto.server` closes each one after an answer.
"""

from __future__ import annotations

import http.client
import subprocess
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from bucketwarden_tools import bench_sweep
from bucketwarden_tools.bench import emulated_aws, moto_server_process


@pytest.fixture(scope="module")
def bench_server() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with moto_server_process() as (endpoint, server):
        yield endpoint, server


@pytest.fixture
def endpoint(bench_server: tuple[str, subprocess.Popen[bytes]]) -> Iterator[str]:
    with emulated_aws(bench_server[0]):
        yield bench_server[0]


def test_a_small_sweep_finds_every_drift_and_reads_each_surface_once(
    endpoint: str, bench_server: tuple[str, subprocess.Popen[bytes]]
) -> None:
    population = bench_sweep.populate(endpoint, 24, prefix="bench-sweep")

    figures = bench_sweep.sweep(population, server_pid=bench_server[1].pid)

    assert figures.size == 24
    assert figures.missed == []
    assert figures.repeated_reads == 0
    # One read per surface and bucket (access-logging reads nothing without a log target;
    # moto lists no regions: one GetBucketLocation each).
    for read in bench_sweep.SURFACE_READS - {"s3.GetBucketLogging"}:
        assert figures.calls[read] == 24, read
    assert figures.calls["s3.GetBucketLogging"] == 0
    assert figures.calls["s3.GetBucketLocation"] == 24
    # Tags once per bucket: a sweep reports exemptions that would not be honoured, drift or not.
    assert figures.calls["s3.GetBucketTagging"] == 24
    assert figures.false_findings == []
    assert figures.failures() == []
    assert figures.requests_per_second > 0
    # Both sides of each call cost CPU: the sweep's process and the server's.
    assert figures.client_cpu > 0
    assert figures.server_cpu is not None
    assert figures.server_cpu > 0


def test_the_server_answers_on_one_connection_past_a_body_nobody_read(
    bench_server: tuple[str, subprocess.Popen[bytes]],
) -> None:
    address = urlsplit(bench_server[0])
    connection = http.client.HTTPConnection(str(address.hostname), address.port, timeout=10)
    answers = []
    sockets = set()
    # ListBuckets reads no body: the server must skip it to find the next request.
    for body in (b"x" * 5000, None, None):
        connection.request("GET", "/", body=body)
        response = connection.getresponse()
        listed = b"ListAllMyBucketsResult" in response.read()
        answers.append((response.status, listed, response.will_close))
        sockets.add(connection.sock)
    connection.close()

    assert answers == [(200, True, False)] * 3
    assert len(sockets) == 1
