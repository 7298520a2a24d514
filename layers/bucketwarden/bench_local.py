"""`make bench`, part 2: drift-to-fix latency end to end on the local system.

It starts `bucketwarden local` on a free port, creates N buckets through the endpoint as a user
would (each gets S3's defaults; the service enables versioning on each, which settles first),
then suspends versioning on all N buckets from a few concurrent clients, as a script or
Terraform applying a change would, and waits until the service is idle. Each drift goes the
whole way: the endpoint's CloudTrail emulator, EventBridge, the function's queue, the handler,
the fix through the endpoint. Latency is what the local system reports for each outcome: from
the drifting call's arrival at the endpoint to the outcome.

A flood measures queueing as much as the service, so a second part makes single drifts, one at a
time, each waited for, on an idle system.

    python -m bucketwarden.bench_local [--json] [--check] [--events N] [--single N] [--clients N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bucketwarden.local.system import LocalSystem

USER_ACCESS_KEY = "AKIABENCHUSER"
BUCKET_PREFIX = "bench-local"
DEFAULT_EVENTS = 200
DEFAULT_SINGLE = 20
DEFAULT_CLIENTS = 4
SETTLE_TIMEOUT_SECONDS = 600.0
SINGLE_TIMEOUT_SECONDS = 30.0
DRIFT_CALL = "PutBucketVersioning"

# Targets from issue 3, point 7: drift-to-fix over 200 events on a 2-core machine.
TARGET_MEDIAN_MS = 1000
TARGET_P99_MS = 3000

Item = dict[str, Any]


class Recorder:
    """What the local system reports, from its threads, and the drift fixes by bucket to wait on."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.fixes: dict[str, Item] = {}
        self._changed = threading.Condition()

    def __call__(self, item: Item) -> None:
        with self._changed:
            self.items.append(item)
            if _is_user_drift_fix(item):
                self.fixes[str(item["bucket"])] = item
                self._changed.notify_all()

    def take(self) -> list[Item]:
        with self._changed:
            items, self.items, self.fixes = self.items, [], {}
        return items

    def wait_for_fixes(self, buckets: set[str], timeout: float) -> bool:
        """Wait, without polling, until each bucket's drift has a remediated outcome."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not buckets <= self.fixes.keys():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True


def percentile(values: list[int], share: float) -> int:
    """Nearest-rank percentile: the smallest value at least `share` of the values do not exceed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Flood:
    events: int
    clients: int
    drifts_seen: int
    remediated: int
    lost: list[str]
    dead_lettered: int
    latencies_ms: list[int]
    calls_seconds: float  # first drifting call sent → last call answered
    seconds: float  # first drifting call sent → last fix reported
    not_enabled_after: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.remediated / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Target:
    name: str
    value_ms: int | None
    limit_ms: int

    @property
    def ok(self) -> bool:
        return self.value_ms is not None and self.value_ms < self.limit_ms


def _is_user_drift_fix(item: Item) -> bool:
    return (
        item.get("kind") == "outcome"
        and item.get("control") == "versioning"
        and item.get("event_name") == DRIFT_CALL
        and item.get("status") == "remediated"
        and str(item.get("actor", "")).endswith(f"/{USER_ACCESS_KEY}")
    )


def _suspend(s3: Any, bucket: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})


def _on_each(call: Callable[[str], Any], buckets: Iterable[str], clients: int) -> None:
    with ThreadPoolExecutor(max_workers=clients, thread_name_prefix="client") as pool:
        list(pool.map(call, buckets))  # list() so that a failed call raises here


def _settle(system: LocalSystem, what: str) -> None:
    if not system.wait_until_idle(timeout=SETTLE_TIMEOUT_SECONDS):
        raise RuntimeError(
            f"the local system did not settle within {SETTLE_TIMEOUT_SECONDS} s after {what}"
        )


def create_buckets(
    system: LocalSystem, recorder: Recorder, s3: Any, buckets: list[str], clients: int
) -> None:
    """The buckets, with S3's defaults and the service's first fixes settled and forgotten."""
    _on_each(lambda bucket: s3.create_bucket(Bucket=bucket), buckets, clients)
    _settle(system, "creating the buckets")
    recorder.take()


def flood(
    system: LocalSystem, recorder: Recorder, s3: Any, buckets: list[str], clients: int
) -> Flood:
    started = time.time()
    _on_each(lambda bucket: _suspend(s3, bucket), buckets, clients)
    answered = time.time()
    # Wait on the reports first: polling the queues while the functions work would load the
    # machine being measured. Then settle, so that lost events and dead letters are counted.
    recorder.wait_for_fixes(set(buckets), SETTLE_TIMEOUT_SECONDS)
    _settle(system, "the flood")
    items = recorder.take()
    fixes = [item for item in items if _is_user_drift_fix(item)]
    fixed = {str(item["bucket"]) for item in fixes}
    drifts = [i for i in items if i.get("kind") == "drift" and i.get("event_name") == DRIFT_CALL]
    last_fix = max((float(item["time"]) for item in fixes), default=answered)
    return Flood(
        events=len(buckets),
        clients=clients,
        drifts_seen=sum(
            1 for d in drifts if str(d.get("actor", "")).endswith(f"/{USER_ACCESS_KEY}")
        ),
        remediated=len(fixes),
        lost=sorted(set(buckets) - fixed),
        dead_lettered=sum(1 for item in items if item.get("kind") == "dead-letter"),
        latencies_ms=[int(item["latency_ms"]) for item in fixes],
        calls_seconds=answered - started,
        seconds=last_fix - started,
        not_enabled_after=_not_enabled(s3, buckets),
    )


def _not_enabled(s3: Any, buckets: list[str]) -> list[str]:
    """Buckets whose versioning, read back through the endpoint, is not Enabled."""
    return [b for b in buckets if s3.get_bucket_versioning(Bucket=b).get("Status") != "Enabled"]


def single_drifts(
    system: LocalSystem, recorder: Recorder, s3: Any, buckets: list[str]
) -> list[int]:
    """Drift one bucket, wait for its fix and for quiet, then the next: latency without a queue."""
    latencies: list[int] = []
    for bucket in buckets:
        _suspend(s3, bucket)
        if not recorder.wait_for_fixes({bucket}, SINGLE_TIMEOUT_SECONDS):
            raise RuntimeError(f"no fix for {bucket} within {SINGLE_TIMEOUT_SECONDS} s")
        latencies.append(int(recorder.fixes[bucket]["latency_ms"]))
        _settle(system, f"the single drift on {bucket}")  # the fix's own event comes back
        recorder.take()
    return latencies


def targets(latencies_ms: list[int]) -> list[Target]:
    median = round(statistics.median(latencies_ms)) if latencies_ms else None
    p99 = percentile(latencies_ms, 0.99) if latencies_ms else None
    return [Target("median", median, TARGET_MEDIAN_MS), Target("p99", p99, TARGET_P99_MS)]


def _latency_row(latencies_ms: list[int]) -> dict[str, Any]:
    if not latencies_ms:
        return {"count": 0}
    return {
        "count": len(latencies_ms),
        "median_ms": round(statistics.median(latencies_ms)),
        "p99_ms": percentile(latencies_ms, 0.99),
        "min_ms": min(latencies_ms),
        "max_ms": max(latencies_ms),
    }


def result_row(result: Flood, single: list[int]) -> dict[str, Any]:
    checked = targets(result.latencies_ms)
    return {
        "kind": "local_end_to_end",
        "drift": f"{DRIFT_CALL} Status=Suspended",
        "events": result.events,
        "clients": result.clients,
        "drifts_seen": result.drifts_seen,
        "remediated": result.remediated,
        "lost": len(result.lost),
        "lost_buckets": result.lost,
        "dead_lettered": result.dead_lettered,
        "not_enabled_after": len(result.not_enabled_after),
        "flood_latency": _latency_row(result.latencies_ms),
        "calls_seconds": round(result.calls_seconds, 2),
        "seconds": round(result.seconds, 2),
        "throughput_per_second": round(result.throughput, 1),
        "single_latency": _latency_row(single),
        "targets": {
            t.name: {"value_ms": t.value_ms, "limit_ms": t.limit_ms, "ok": t.ok} for t in checked
        },
        "result": "PASS" if _passed(result) else "FAIL",
    }


def _passed(result: Flood) -> bool:
    complete = not result.lost and result.remediated == result.events
    return complete and all(t.ok for t in targets(result.latencies_ms))


def _verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]FAIL[/]"


def print_report(row: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    table = Table(
        title=(
            f"Local end to end: {row['events']} drifts ({row['drift']}) from {row['clients']} "
            "concurrent clients through the endpoint"
        ),
        title_justify="left",
    )
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    table.add_column("Target")
    flood_ms, single_ms = row["flood_latency"], row["single_latency"]
    complete = row["lost"] == 0 and row["remediated"] == row["events"]
    rows = [
        ("events (drifting calls)", row["events"], ""),
        ("drifts seen by the functions", row["drifts_seen"], ""),
        ("remediated", row["remediated"], _verdict(row["remediated"] == row["events"])),
        ("lost (no remediated outcome)", row["lost"], _verdict(complete)),
        ("dead-lettered", row["dead_lettered"], ""),
        ("versioning not Enabled afterwards", row["not_enabled_after"], ""),
        ("drift → fix median", _ms(flood_ms.get("median_ms")), _target(row, "median")),
        ("drift → fix p99", _ms(flood_ms.get("p99_ms")), _target(row, "p99")),
        ("drift → fix min / max", _range(flood_ms), ""),
        ("creating the buckets settled in", f"{row['creation_settled_seconds']:.1f} s", ""),
        ("drifting calls sent in", f"{row['calls_seconds']:.2f} s", ""),
        ("all fixed in", f"{row['seconds']:.2f} s", ""),
        ("throughput", f"{row['throughput_per_second']:.1f} fixes/s", ""),
        (
            f"single drift median (n={single_ms['count']})",
            _ms(single_ms.get("median_ms")),
            _informative(single_ms.get("median_ms"), TARGET_MEDIAN_MS),
        ),
        (
            f"single drift p99 (n={single_ms['count']})",
            _ms(single_ms.get("p99_ms")),
            _informative(single_ms.get("p99_ms"), TARGET_P99_MS),
        ),
    ]
    for name, value, target in rows:
        table.add_row(name, str(value), target)
    console.print(table)
    console.print(NOTES)
    console.print(f"Result: {_verdict(row['result'] == 'PASS')}")


def _informative(value_ms: int | None, limit_ms: int) -> str:
    """The targets are the flood's; single drifts are held to them for information only."""
    if value_ms is None:
        return ""
    return f"[dim]{'under' if value_ms < limit_ms else 'over'} {limit_ms} ms (not in the result)[/]"


def _ms(value: int | None) -> str:
    return "-" if value is None else f"{value} ms"


def _range(latency: dict[str, Any]) -> str:
    return f"{latency['min_ms']} / {latency['max_ms']} ms" if latency.get("count") else "-"


def _target(row: dict[str, Any], name: str) -> str:
    target = row["targets"][name]
    return f"{_verdict(target['ok'])} < {target['limit_ms']} ms"


NOTES = (
    "Latency: from the drifting call's arrival at the endpoint (noted by the CloudTrail emulator) "
    "to the outcome reported by the function, which has by then fixed the bucket and read it "
    "back. The flood's figures include waiting in the function's queue; single drifts are made "
    "one at a time on an idle system (p99 of a few samples is their maximum). "
    "Throughput: fixes per second from the first drifting call to the last fix. CloudTrail's "
    "own delivery delay in AWS (seconds to minutes) is not part of these figures."
)


def _progress(text: str) -> None:
    # stderr, so that --json output stays one object; the whole run takes minutes.
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(
    events: int, single: int, clients: int, progress: Callable[[str], None] = _progress
) -> dict[str, Any]:
    recorder = Recorder()
    system = LocalSystem(port=0, report=recorder)
    progress("starting the local system")
    system.start()
    try:
        s3 = system.client("s3", access_key=USER_ACCESS_KEY)
        buckets = [f"{BUCKET_PREFIX}-{index:04d}" for index in range(events)]
        progress(f"creating {events} buckets and letting the service settle")
        started = time.monotonic()
        create_buckets(system, recorder, s3, buckets, clients)
        creation_seconds = time.monotonic() - started
        progress(f"settled in {creation_seconds:.1f} s; {events} drifting calls")
        result = flood(system, recorder, s3, buckets, clients)
        progress(f"{result.remediated} fixed in {result.seconds:.1f} s; {single} single drifts")
        latencies = single_drifts(system, recorder, s3, buckets[: min(single, events)])
    finally:
        system.stop()
    row = result_row(result, latencies)
    row["creation_settled_seconds"] = round(creation_seconds, 1)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bucketwarden.bench_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--events", type=int, default=DEFAULT_EVENTS, help="drifting calls (%(default)s)"
    )
    parser.add_argument(
        "--single",
        type=int,
        default=DEFAULT_SINGLE,
        help="single drifts, one at a time (%(default)s)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help="concurrent clients making the calls (%(default)s)",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.clients < 1 or args.single < 0:
        parser.error("--events and --clients must be at least 1, --single at least 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The functions' logs (stderr) would interleave with the report, as `bucketwarden local`
    # keeps them quiet too unless asked.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    row = run(args.events, args.single, args.clients)
    if args.json:
        print(json.dumps(row, ensure_ascii=False))
    else:
        print_report(row)
    return 1 if args.check and row["result"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
