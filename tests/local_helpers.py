"""A `bucketwarden local` stack in a subprocess, driven only through its endpoint.

The stack is started exactly as a person starts it (`python -m bucketwarden_tools.cli local
--json`); its JSON lines are collected in the background so tests can assert on what it reported.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, TypeVar

from bucketwarden.aws import new_client
from bucketwarden.controls.public_access_block import ALL_ON
from tests.conftest import ENGINE_VARIABLES

REGION = "us-east-1"
# Any key but the service's and the emulator's own: the stack logs it as an IAM user.
CALLER_KEY = "e2e-tester"
CALLER_ARN = f"arn:aws:iam::123456789012:user/{CALLER_KEY}"
SELF_CHANGE_REASON = "change made by BucketWarden itself"
ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
START_TIMEOUT_SECONDS = 90.0
# A single drift is fixed in about a second; CI machines are shared, hence the margin.
FIX_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 20.0
# Variables of the caller's shell that would change what the stack does or whom it signs as.
_INHERITED_NOT = (
    *ENGINE_VARIABLES,
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# The local system's TLS certificates (kept in the user's cache folder) go here, not into the
# home folder of whoever runs the tests.
CACHE_FOLDER = Path(tempfile.gettempdir()) / f"bucketwarden-tests-cache-{os.getuid()}"


def stack_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in _INHERITED_NOT}
    env["PYTHONUNBUFFERED"] = "1"
    env["XDG_CACHE_HOME"] = str(CACHE_FOLDER)
    env.update(extra or {})
    return env


def local_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bucketwarden_tools.cli", "local", *args]


def poll_until(
    read: Callable[[], T],
    timeout: float = FIX_TIMEOUT_SECONDS,
    interval: float = 0.1,
    what: str = "",
) -> T:
    """Call `read` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what or read!r}; last: {value!r}")
        time.sleep(interval)


class LocalStack:
    """A running `bucketwarden local --json` and everything it has printed so far."""

    def __init__(
        self, port: int, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
    ) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            local_command("--port", str(port), "--json", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=stack_environment(env),
            # A process group of its own, as a terminal gives a command: signals reach all of it.
            start_new_session=True,
        )
        self.lines: list[dict[str, Any]] = []
        self.other_stdout: list[str] = []
        self.stderr_lines: list[str] = []
        self._lock = threading.Lock()
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    # -- output -------------------------------------------------------------------------------

    def _read_stdout(self, stream: IO[str]) -> None:
        for text in stream:
            try:
                item = json.loads(text)
            except json.JSONDecodeError:
                with self._lock:
                    self.other_stdout.append(text)
                continue
            with self._lock:
                self.lines.append(item)

    def _read_stderr(self, stream: IO[str]) -> None:
        for text in stream:
            with self._lock:
                self.stderr_lines.append(text)

    @property
    def stderr(self) -> str:
        with self._lock:
            return "".join(self.stderr_lines)

    def items(self, kind: str, **fields: Any) -> list[dict[str, Any]]:
        """Lines of one kind whose fields equal the given values."""
        with self._lock:
            snapshot = list(self.lines)
        return [
            item
            for item in snapshot
            if item.get("kind") == kind and all(item.get(k) == v for k, v in fields.items())
        ]

    def outcomes(self, **fields: Any) -> list[dict[str, Any]]:
        return self.items("outcome", **fields)

    # -- lifecycle ----------------------------------------------------------------------------

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the stack exited with {self.process.returncode}: {self.stderr}"
                )
            found = self.items("ready")
            return found[0] if found else None

        return poll_until(ready, timeout=timeout, what="the stack's ready line")

    def stop(self, signum: int = signal.SIGINT) -> int | None:
        """Stop as Ctrl-C in a terminal does (`signum` to the whole process group, the endpoint
        included); the exit code, or None if it did not end in time (then it is killed)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)
        try:
            code: int | None = self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    # -- clients ------------------------------------------------------------------------------

    def https_client(self, service: str, access_key: str = CALLER_KEY) -> Any:
        """A client of the same port over TLS, trusting the CA bundle the ready line names."""
        ready = self.wait_ready()
        return new_client(
            service,
            endpoint_url=ready["https_endpoint"],
            verify=ready["ca_bundle"],
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key="e2e-secret",
        )

    def client(self, service: str, access_key: str = CALLER_KEY) -> Any:
        # S3 Control's host prefix is stripped as docs/local.md tells boto3 users to do
        # (conftest registers bucketwarden_tools.clients.reach_local_endpoints).
        return new_client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key="e2e-secret",
        )


def start_stack(env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> LocalStack:
    stack = LocalStack(free_port(), env, args)
    try:
        stack.wait_ready()
    except BaseException:
        stack.stop(signal.SIGTERM)
        raise
    return stack


def run_local(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run `bucketwarden local ARGS` to its end (for the ways it refuses to start)."""
    return subprocess.run(
        local_command(*args),
        capture_output=True,
        text=True,
        env=stack_environment(),
        timeout=timeout,
        check=False,
    )


# -- reading buckets back through the endpoint ------------------------------------------------


def public_grants(s3: Any, bucket: str) -> list[dict[str, Any]]:
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    return [g for g in grants if g["Grantee"].get("URI") == ALL_USERS]


def versioning_status(s3: Any, bucket: str) -> str | None:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status")


def default_encryption(s3: Any, bucket: str) -> dict[str, Any]:
    rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    return dict(rules[0])


def exempt(s3: Any, bucket: str, controls: str, reason: str) -> None:
    """Tag `bucket` exempt from `controls` (ids joined by "+": tag values take no commas)."""
    tags = [
        {"Key": "bucketwarden:exempt", "Value": controls},
        {"Key": "bucketwarden:exempt-reason", "Value": reason},
    ]
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": tags})


def make_acl_public(s3: Any, bucket: str) -> None:
    """What a person does to open a bucket up: BPA off, ACLs enabled, then a public ACL.

    The bucket is exempted first from bucket-public-access-block and object-ownership, as a
    bucket kept open with ACLs on purpose is; otherwise the service turns BPA back on or
    disables ACLs again, and S3 refuses the public ACL itself.
    """
    exempt(
        s3,
        bucket,
        "bucket-public-access-block+object-ownership",
        "legacy website served through ACLs",
    )
    s3.delete_public_access_block(Bucket=bucket)
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls={"Rules": [{"ObjectOwnership": "ObjectWriter"}]}
    )
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")


def allow_public_policy(stack: LocalStack, s3: Any, bucket: str) -> None:
    """What a person does to attach a public policy: exempt the bucket from
    bucket-public-access-block (or the service turns the block back on at once), relax its
    BlockPublicPolicy, and wait until the stack has judged that."""
    exempt(s3, bucket, "bucket-public-access-block", "website served by its bucket policy")
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={**ALL_ON, "BlockPublicPolicy": False},
    )
    poll_until(
        lambda: stack.outcomes(bucket=bucket, event_name="PutBucketPublicAccessBlock"),
        what=f"the relaxed block of {bucket} judged",
    )


def percentile(values: Iterable[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
