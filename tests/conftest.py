"""Shared fixtures: fake credentials, moto in-process (`mock_aws`), a moto server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from bucketwarden import integrity, securityhub, services
from bucketwarden.aws import reset_clients
from bucketwarden.catalogue import CONTROL_IDS, CONTROLS
from bucketwarden.settings import Settings, mode_variable
from bucketwarden_tools.calls import count_api_calls
from bucketwarden_tools.clients import reach_local_endpoints
from bucketwarden_tools.moto_http import Dispatcher
from bucketwarden_tools.stack import DEFAULT_MAC_KEY

ROOT = Path(__file__).resolve().parent.parent
# Real-world CloudTrail records (see data/cloudtrail-samples/SOURCES.md for where each came from).
SAMPLES = ROOT / "tests" / "data" / "cloudtrail-samples"
EVENTS = ROOT / "events"
REGION = "us-east-1"

# CI machines are shared and slow at times: judge properties, not generation speed.
settings.register_profile(
    "default", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.register_profile(
    "fuzz", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=5000
)
settings.load_profile(
    os.environ.get("BUCKETWARDEN_HYPOTHESIS_PROFILE")
    or os.environ.get("HYPOTHESIS_PROFILE", "default")
)


# Every variable the engine reads; tests set what they need on top of this clean slate.
class _RecordingEnvironment(dict[str, str]):
    """An empty environment that remembers which variables the settings ask for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)


def settings_variables() -> tuple[str, ...]:
    environment = _RecordingEnvironment()
    Settings.from_env(CONTROL_IDS, environment)
    return tuple(sorted(environment.asked))


# Every variable the engine reads (so a developer's shell cannot leak into the tests), and
# the ones that point clients at an endpoint or profile.
ENGINE_VARIABLES = (*settings_variables(), "AWS_ENDPOINT_URL", "AWS_PROFILE")
DETECT_ONLY_VARIABLES = tuple(mode_variable(c.id) for c in CONTROLS if not c.fixable)


# Every client made in the tests, the engine's made again for each test included, counts its calls
# (tests.helpers.API_CALLS; the tests' own clients are `uncounted`) and reaches a moto server's S3
# Control, as the bench's and the local mode's do. Registered before any test makes a client.
count_api_calls()
reach_local_endpoints()


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and a clean engine configuration for every test."""
    for name in ENGINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Controls that only detect (MFA delete, a trail's data events) report beside the others on
    # every event and sweep of their surface: off here, so that the other controls' tests see
    # their own outcomes; their own tests turn them back on (helpers.detect_only_on).
    for name in DETECT_ONLY_VARIABLES:
        monkeypatch.setenv(name, "off")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "BucketWarden")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    # As the template sets it; the key itself exists once a test makes the audit table.
    monkeypatch.setenv("AUDIT_MAC_KEY", DEFAULT_MAC_KEY)
    reset_clients()
    integrity.forget()
    securityhub.forget()
    services.organization.cache_clear()
    services.organization_members.cache_clear()
    yield
    reset_clients()


@pytest.fixture
def aws() -> Iterator[None]:
    """moto in-process for the duration of the test."""
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port; yields its endpoint URL.

    moto's app behind the dispatcher the local endpoint and the benches use, which answers one
    request at a time per service (moto's backends are not safe across threads).
    """
    server = make_server(
        "127.0.0.1",
        0,
        Dispatcher(create_backend_app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def load_sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def s3_client() -> Any:
    return boto3.client("s3", region_name=REGION)


# Figures a test publishes with `record_property(name, text)` for people to read. With xdist the
# workers' output never reaches the terminal, but their reports' properties do.
PRINTED_PROPERTIES = ("fault_injection_counts",)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for reports in terminalreporter.stats.values():
        for report in reports:
            for name, text in getattr(report, "user_properties", ()):
                if name in PRINTED_PROPERTIES and getattr(report, "when", "") == "call":
                    terminalreporter.write_sep("-", name.replace("_", " "))
                    terminalreporter.write_line(str(text).strip("\n"))
