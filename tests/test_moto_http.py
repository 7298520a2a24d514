"""The moto server's dispatcher answers one request at a time per service.

moto's backends keep their state in plain dicts without locks: a DynamoDB Query walking a table
while another thread put an item failed with "dictionary changed size during iteration", an
HTTP 500 that AWS never sends. The apps here stand in for moto's and note how many requests
they answer at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bucketwarden_tools.moto_http import Dispatcher


class CountingApp:
    """A WSGI app for one service that notes the most requests it was answering at once."""

    def __init__(self, service: str, busy: dict[str, int], lock: threading.Lock) -> None:
        self.service = service
        self._busy = busy
        self._lock = lock

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterator[bytes]:
        with self._lock:
            self._busy[self.service] += 1
            self._busy[f"{self.service} peak"] = max(
                self._busy[f"{self.service} peak"], self._busy[self.service]
            )
        time.sleep(0.02)
        with self._lock:
            self._busy[self.service] -= 1
        start_response("200 OK", [("Content-Type", "application/json")])
        return iter([b"{}"])


def _dispatcher() -> tuple[Dispatcher, dict[str, int]]:
    busy = {"dynamodb": 0, "dynamodb peak": 0, "sqs": 0, "sqs peak": 0}
    lock = threading.Lock()
    return Dispatcher(lambda service: CountingApp(service, busy, lock)), busy


TARGETS = {"dynamodb": "DynamoDB_20120810.Query", "sqs": "AmazonSQS.ReceiveMessage"}


def _request(dispatcher: Dispatcher, service: str) -> list[bytes]:
    # moto tells the service by the credential scope of the request's signature.
    scope = f"testing/20261206/us-east-1/{service}/aws4_request"
    environ: dict[str, Any] = {
        "HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={scope}, Signature=0",
        "HTTP_HOST": "127.0.0.1:5000",
        "PATH_INFO": "/",
        "REQUEST_METHOD": "POST",
    }
    if service in TARGETS:
        environ["HTTP_X_AMZ_TARGET"] = TARGETS[service]
    return dispatcher(environ, lambda status, headers, exc_info=None: None)


def test_requests_to_one_service_are_answered_one_at_a_time() -> None:
    dispatcher, busy = _dispatcher()

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: _request(dispatcher, "dynamodb"), range(16)))

    assert answers == [[b"{}"]] * 16
    assert busy["dynamodb peak"] == 1


@pytest.mark.parametrize(
    "services",
    [("dynamodb", "s3"), ("sqs", "sqs")],
    ids=["different services", "SQS, whose long polls wait on purpose"],
)
def test_requests_that_do_not_wait_for_each_other(services: tuple[str, str]) -> None:
    # Each app answers only once the other request is being answered too.
    both_answering = threading.Barrier(2, timeout=5)

    def rendezvous_app(service: str) -> Callable[..., list[bytes]]:
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            both_answering.wait()  # broken after 5 s if one request waited for the other
            start_response("200 OK", [])
            return [service.encode()]

        app.service = service  # type: ignore[attr-defined]
        return app

    dispatcher = Dispatcher(rendezvous_app)
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda service: _request(dispatcher, service), services))

    assert answers == [[service.encode()] for service in services]
