"""The local end-to-end benchmark accounts for every drift it makes (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bucketwarden_tools.bench_local import percentile

EVENTS = 5


def test_every_drift_paced_and_flooded_is_remediated_and_counted() -> None:
    # A process of its own, as `make bench` runs it: the local system changes its environment.
    env = {key: value for key, value in os.environ.items() if key != "AWS_ENDPOINT_URL"}
    command = [sys.executable, "-m", "bucketwarden_tools.bench_local", "--json"]
    command += ["--events", str(EVENTS), "--rate", "10", "--clients", "2"]
    finished = subprocess.run(
        command, check=False, env=env, capture_output=True, text=True, timeout=300
    )

    assert finished.returncode == 0, finished.stderr
    row = json.loads(finished.stdout)
    for run in (row["paced"], row["flood"]):
        assert run["events"] == EVENTS
        assert run["drifts_seen"] == EVENTS
        assert run["remediated"] == EVENTS
        assert (run["lost"], run["lost_buckets"], run["dead_lettered"]) == (0, [], 0)
        assert run["not_enabled_after"] == 0
        assert run["latency"]["count"] == EVENTS
    assert set(row["targets"]) == {"median", "p99"}


def test_p99_is_the_nearest_rank() -> None:
    hundred = list(range(1, 101))

    assert percentile(hundred, 0.99) == 99
    assert percentile(hundred, 0.5) == 50
    assert percentile([7], 0.99) == 7
    assert percentile([3, 1, 2], 0.99) == 3
