"""`make bench`, part 2: drift-to-fix latency end to end on the local system.

It starts `bucketwarden local` on a free port and creates N buckets through the endpoint as a
user would (each gets S3's defaults; the service enables versioning on each, which settles
first). Then two runs of N drifts (versioning Suspended), each going the whole way: the
endpoint's CloudTrail emulator, EventBridge, the function's queue, the handler, the fix through
the endpoint. Latency is what the local system reports for each outcome: from the drifting
call's arrival at the endpoint to the outcome.

1. Paced: N drifts at a steady rate (--rate per second, below what the system fixes per second),
   as changes arrive in an account. The latency targets are judged here.
2. Flood: N drifts at once from a few concurrent clients, as a script or Terraform applying a
   change would. It shows the capacity (fixes per second) and that nothing is lost; its latency
   is mostly time spent queueing, and is shown for information.

    python -m bucketwarden_tools.bench_local [--json] [--check] [--events N] [--rate R]
        [--clients N]
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

from bucketwarden_tools.local.system import LocalSystem

USER_ACCESS_KEY = "AKIABENCHUSER"
BUCKET_PREFIX = "bench-local"
DEFAULT_EVENTS = 200
DEFAULT_RATE = 4.0
DEFAULT_CLIENTS = 4
SETTLE_TIMEOUT_SECONDS = 600.0
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


def send_concurrently(s3: Any, buckets: list[str], clients: int) -> None:
    _on_each(lambda bucket: _suspend(s3, bucket), buckets, clients)


def send_paced(s3: Any, buckets: list[str], rate: float) -> None:
    started = time.monotonic()
    for index, bucket in enumerate(buckets):
        delay = started + index / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        _suspend(s3, bucket)


def drive(
    system: LocalSystem,
    recorder: Recorder,
    s3: Any,
    buckets: list[str],
    send: Callable[[], None],
    *,
    clients: int,
) -> Flood:
    """Make the drifts with `send`, wait for every fix, and count what happened."""
    started = time.time()
    send()
    answered = time.time()
    # Wait on the reports first: polling the queues while the functions work would load the
    # machine being measured. Then settle, so that lost events and dead letters are counted.
    recorder.wait_for_fixes(set(buckets), SETTLE_TIMEOUT_SECONDS)
    _settle(system, "the drifts")
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


def _run_row(result: Flood) -> dict[str, Any]:
    return {
        "events": result.events,
        "drifts_seen": result.drifts_seen,
        "remediated": result.remediated,
        "lost": len(result.lost),
        "lost_buckets": result.lost,
        "dead_lettered": result.dead_lettered,
        "not_enabled_after": len(result.not_enabled_after),
        "latency": _latency_row(result.latencies_ms),
        "calls_seconds": round(result.calls_seconds, 2),
        "seconds": round(result.seconds, 2),
        "throughput_per_second": round(result.throughput, 1),
    }


def result_row(paced: Flood, flooded: Flood, rate: float, clients: int) -> dict[str, Any]:
    checked = targets(paced.latencies_ms)
    complete = all(
        not run.lost and run.remediated == run.events and not run.not_enabled_after
        for run in (paced, flooded)
    )
    return {
        "kind": "local_end_to_end",
        "drift": f"{DRIFT_CALL} Status=Suspended",
        "rate_per_second": rate,
        "clients": clients,
        "paced": _run_row(paced),
        "flood": _run_row(flooded),
        "targets": {
            t.name: {"value_ms": t.value_ms, "limit_ms": t.limit_ms, "ok": t.ok} for t in checked
        },
        "result": "PASS" if complete and all(t.ok for t in checked) else "FAIL",
    }


def _verdict(ok: bool) -> str:
    return "[green]PASS[/]" if ok else "[red]FAIL[/]"


def _run_rows(name: str, run: dict[str, Any]) -> list[tuple[str, str, str]]:
    complete = run["lost"] == 0 and run["remediated"] == run["events"]
    latency = run["latency"]
    return [
        (f"{name}: remediated / events", f"{run['remediated']} / {run['events']}",
         _verdict(complete)),
        (f"{name}: lost, dead-lettered, not Enabled after",
         f"{run['lost']}, {run['dead_lettered']}, {run['not_enabled_after']}", ""),
        (f"{name}: drifting calls sent in", f"{run['calls_seconds']:.2f} s", ""),
        (f"{name}: all fixed in", f"{run['seconds']:.2f} s", ""),
        (f"{name}: fixes per second", f"{run['throughput_per_second']:.1f}", ""),
        (f"{name}: drift → fix median / p99", f"{_ms(latency.get('median_ms'))} / "
         f"{_ms(latency.get('p99_ms'))}", ""),
        (f"{name}: drift → fix min / max", _range(latency), ""),
    ]  # fmt: skip


def print_report(row: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160, highlight=False)
    table = Table(
        title=(
            f"Local end to end: {row['paced']['events']} drifts ({row['drift']}) paced at "
            f"{row['rate_per_second']}/s, then flooded from {row['clients']} clients"
        ),
        title_justify="left",
    )
    table.add_column("Measure")
    table.add_column("Value", justify="right")
    table.add_column("Target")
    paced = row["paced"]["latency"]
    rows = [
        ("paced: drift → fix median", _ms(paced.get("median_ms")), _target(row, "median")),
        ("paced: drift → fix p99", _ms(paced.get("p99_ms")), _target(row, "p99")),
        *_run_rows("paced", row["paced"]),
        *_run_rows("flood", row["flood"]),
        ("creating the buckets settled in", f"{row['creation_settled_seconds']:.1f} s", ""),
    ]
    for name, value, target in rows:
        table.add_row(name, str(value), target)
    console.print(table)
    console.print(NOTES)
    console.print(f"Result: {_verdict(row['result'] == 'PASS')}")


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
    "back. Targets are judged on the paced run; the flood sends faster than the system fixes, "
    "so its latency is mostly time spent waiting in the function's queue. "
    "Throughput: fixes per second from the first drifting call to the last fix. CloudTrail's "
    "own delivery delay in AWS (seconds to minutes) is not part of these figures."
)


def _progress(text: str) -> None:
    # stderr, so that --json output stays one object; the whole run takes minutes.
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(
    events: int, rate: float, clients: int, progress: Callable[[str], None] = _progress
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
        progress(f"settled in {creation_seconds:.1f} s; {events} drifts at {rate}/s")
        paced = drive(
            system, recorder, s3, buckets, lambda: send_paced(s3, buckets, rate), clients=1
        )
        progress(f"{paced.remediated} fixed; now {events} drifts at once from {clients} clients")
        flooded = drive(
            system,
            recorder,
            s3,
            buckets,
            lambda: send_concurrently(s3, buckets, clients),
            clients=clients,
        )
        progress(f"{flooded.remediated} fixed in {flooded.seconds:.1f} s")
    finally:
        system.stop()
    row = result_row(paced, flooded, rate, clients)
    row["creation_settled_seconds"] = round(creation_seconds, 1)
    return row


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bucketwarden_tools.bench_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--events", type=int, default=DEFAULT_EVENTS, help="drifting calls (%(default)s)"
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        help="drifts per second in the paced run (%(default)s)",
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=DEFAULT_CLIENTS,
        help="concurrent clients making the calls (%(default)s)",
    )
    args = parser.parse_args(argv)
    if args.events < 1 or args.clients < 1 or args.rate <= 0:
        parser.error("--events and --clients must be at least 1, --rate above 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The functions' logs (stderr) would interleave with the report, as `bucketwarden local`
    # keeps them quiet too unless asked.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    row = run(args.events, args.rate, args.clients)
    if args.json:
        print(json.dumps(row, ensure_ascii=False))
    else:
        print_report(row)
    return 1 if args.check and row["result"] == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
