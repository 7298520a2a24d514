"""The local end-to-end benchmark accounts for every drift it makes (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bucketwarden.bench_local import percentile

EVENTS = 5


def test_every_drift_of_a_small_flood_is_remediated_and_counted() -> None:
    # A process of its own, as `make bench` runs it: the local system changes its environment.
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    command = [sys.executable, "-m", "bucketwarden.bench_local", "--json"]
    command += ["--events", str(EVENTS), "--single", "2", "--clients", "2"]
    finished = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=300
    )

    assert finished.returncode == 0, finished.stderr
    row = json.loads(finished.stdout)
    assert row["events"] == EVENTS
    assert row["drifts_seen"] == EVENTS
    assert row["remediated"] == EVENTS
    assert (row["lost"], row["lost_buckets"], row["dead_lettered"]) == (0, [], 0)
    assert row["not_enabled_after"] == 0
    assert row["flood_latency"]["count"] == EVENTS
    assert row["single_latency"]["count"] == 2
    assert set(row["targets"]) == {"median", "p99"}


def test_p99_is_the_nearest_rank() -> None:
    hundred = list(range(1, 101))

    assert percentile(hundred, 0.99) == 99
    assert percentile(hundred, 0.5) == 50
    assert percentile([7], 0.99) == 7
    assert percentile([3, 1, 2], 0.99) == 3
