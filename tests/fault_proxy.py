"""A fault-injecting HTTP proxy for AWS API calls, in front of a moto server on 127.0.0.1.

Clients point `AWS_ENDPOINT_URL` at the proxy. Each request is forwarded to the backend, or it
meets one of four faults, in the shape AWS answers with (so botocore classifies it as it would
classify AWS's own answer):

- throttle: S3 `SlowDown` (503, XML), DynamoDB `ThrottlingException` (400, JSON), STS
  `Throttling` (400, query XML) and SNS `Throttled` (429, query XML: SNS's modelled
  ThrottledException, which botocore does not count among the errors it retries);
- server_error: `InternalError` (500) or the JSON protocol's `InternalServerError` (500);
- timeout: the request is held longer than the client's read timeout, then the socket is closed;
- drop: the socket is closed without an answer.

A fault strikes BEFORE forwarding (the backend never sees the request) or AFTER it (the backend
applied the request, the client sees only the fault): the case where a retry repeats work that
was done. Throttling strikes before only, as AWS refuses a throttled request before doing it.

Decisions are seeded: a request's fate depends only on the seed, its fault key (the
`x-fault-key` header, set by the caller per unit of work, e.g. one Lambda invocation) and how many
requests came with that key before it. Concurrent work therefore meets the same faults run after
run, whatever the threads' interleaving.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

FAULT_KEY_HEADER = "x-fault-key"
UNTAGGED = "untagged"

THROTTLE = "throttle"
SERVER_ERROR = "server_error"
TIMEOUT = "timeout"
DROP = "drop"
FAULT_KINDS = (THROTTLE, SERVER_ERROR, TIMEOUT, DROP)
# Faults that may strike after the backend applied the request.
AFTER_KINDS = frozenset({SERVER_ERROR, TIMEOUT, DROP})

# Headers that describe one connection, not the message: never relayed.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        FAULT_KEY_HEADER,
    }
)
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass(frozen=True)
class FaultPlan:
    """What share of requests fail, how, and with which seed."""

    rate: float = 0.2
    # Of the faults that can strike after forwarding (AFTER_KINDS), the share that does.
    after_share: float = 0.3
    kinds: tuple[str, ...] = FAULT_KINDS
    # How long a "timeout" holds a request: longer than the client's read timeout.
    hold_seconds: float = 1.5
    # An answer slower than this may reach a client that gave up: counted as late (None: never).
    late_seconds: float | None = None
    seed: int = 0

    def decide(self, key: str, number: int) -> tuple[str | None, bool]:
        """(fault kind or None, strikes after forwarding) for the `number`th request of `key`."""
        draw = random.Random(f"{self.seed}|{key}|{number}")
        if draw.random() >= self.rate:
            return None, False
        kind = draw.choice(self.kinds)
        after = kind in AFTER_KINDS and draw.random() < self.after_share
        return kind, after


@dataclass(frozen=True)
class Call:
    """One request as the proxy saw it: which service and operation, for whom, with what body."""

    service: str
    operation: str
    key: str
    body: bytes

    def form(self) -> dict[str, str]:
        """The parameters of a query-protocol request (SNS, STS), e.g. {"Action": "Publish"}."""
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}


@dataclass(frozen=True)
class Fault:
    kind: str
    after: bool
    call: Call


@dataclass
class Tally:
    """What the proxy saw and did; safe to read once the work is over."""

    requests: Counter[str] = field(default_factory=Counter)  # by service
    requests_by_key: Counter[tuple[str, str]] = field(default_factory=Counter)  # (key, service)
    faults: Counter[str] = field(default_factory=Counter)  # by kind
    faults_after: Counter[str] = field(default_factory=Counter)  # by kind, struck after forwarding
    injected: list[Fault] = field(default_factory=list)
    # Calls answered so late that the client may have timed out: as ambiguous as an AFTER fault.
    late: list[Call] = field(default_factory=list)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def total_faults(self) -> int:
        return sum(self.faults.values())


class FaultProxy:
    """The proxy: `with FaultProxy(backend, plan) as proxy:` serves on `proxy.url`."""

    def __init__(self, backend: str, plan: FaultPlan) -> None:
        parts = urlsplit(backend)
        self.backend = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan = plan
        self.tally = Tally()
        self._lock = threading.Lock()
        self._seen: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()  # releases requests held for a timeout
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def hold(self) -> None:
        self._stopping.wait(self.plan.hold_seconds)

    def admit(self, call: Call) -> tuple[str | None, bool]:
        """Count the request and decide its fate."""
        with self._lock:
            number = self._seen[call.key]
            self._seen[call.key] += 1
            self.tally.requests[call.service] += 1
            self.tally.requests_by_key[(call.key, call.service)] += 1
        kind, after = self.plan.decide(call.key, number)
        if kind is not None:
            with self._lock:
                self.tally.faults[kind] += 1
                if after:
                    self.tally.faults_after[kind] += 1
                self.tally.injected.append(Fault(kind, after, call))
        return kind, after

    def answered(self, call: Call, seconds: float) -> None:
        late = self.plan.late_seconds
        if late is not None and seconds >= late:
            with self._lock:
                self.tally.late.append(call)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(*self.backend, timeout=60)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        pass

    Handler.proxy = proxy
    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's connection pool expects
    proxy: FaultProxy
    _backend: http.client.HTTPConnection | None = None

    def do_GET(self) -> None:
        self._serve()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tally says what happened."""

    def _serve(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        call = self._describe(body)
        kind, after = self.proxy.admit(call)
        if kind is not None and not after:
            self._strike(kind, call)
            return
        headers = {
            name: value for name, value in self.headers.items() if name.lower() not in HOP_BY_HOP
        }
        status, response_headers, payload = self._forward(headers, body)
        if kind is not None:
            self._strike(kind, call)
            return
        self._relay(status, response_headers, payload)
        self.proxy.answered(call, time.monotonic() - started)

    def _forward(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request on to the backend, on a connection kept for this client's."""
        if self._backend is None:
            self._backend = self.proxy.connect()
        try:
            self._backend.request(self.command, self.path, body=body, headers=headers)
            response = self._backend.getresponse()
            return response.status, response.getheaders(), response.read()
        except (OSError, http.client.HTTPException):
            self._backend.close()
            self._backend = None
            raise

    def finish(self) -> None:
        super().finish()
        if self._backend is not None:
            self._backend.close()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunks()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _read_chunks(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers, then the blank line
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _describe(self, body: bytes) -> Call:
        authorization = self.headers.get("Authorization", "")
        found = _CREDENTIAL_SCOPE.search(authorization)
        service = found.group(1) if found else "unknown"
        target = self.headers.get("X-Amz-Target")
        path = urlsplit(self.path)
        if target:
            operation = target.rsplit(".", 1)[-1]
        elif body.startswith(b"Action="):
            operation = parse_qs(body.decode("utf-8", "replace")).get("Action", ["?"])[0]
        else:
            # S3 names the operation by method and sub-resource (`PUT ?acl`).
            sub_resources = sorted(name for name in parse_qs(path.query, keep_blank_values=True))
            operation = f"{self.command} ?{'&'.join(sub_resources)}"
        if path.path.startswith("/v20180820/"):
            service = "s3control"
        key = self.headers.get(FAULT_KEY_HEADER) or UNTAGGED
        return Call(service, operation, key, body)

    # -- answers ----------------------------------------------------------------------------

    def _relay(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                continue
            self.send_header(name, value)
        if self.command == "HEAD":
            length = {n.lower(): v for n, v in headers}.get("content-length", "0")
            self.send_header("Content-Length", length)
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _strike(self, kind: str, call: Call) -> None:
        if kind == DROP:
            self._close()
        elif kind == TIMEOUT:
            self.proxy.hold()
            self._close()
        else:
            status, content_type, payload = error_response(kind, call, self.headers)
            self.send_response_only(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

    def _close(self) -> None:
        """Close the connection without a word: the client sees it reset or closed."""
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may have given up and closed its end
            self.connection.shutdown(socket.SHUT_RDWR)


def error_response(kind: str, call: Call, headers: Any) -> tuple[int, str, bytes]:
    """(status, content type, body) of the error AWS answers with, in the call's protocol."""
    if headers.get("X-Amz-Target"):  # JSON protocol: DynamoDB
        content_type = headers.get("Content-Type") or "application/x-amz-json-1.0"
        if kind == THROTTLE:
            name, status = "ThrottlingException", 400
            message = "Rate of requests exceeds the allowed throughput."
        else:
            name, status, message = "InternalServerError", 500, "Internal server error"
        payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{name}", "message": message}
        return status, content_type, json.dumps(payload).encode()
    if call.body.startswith(b"Action="):  # query protocol: SNS, STS
        if kind == THROTTLE:
            code, status, fault = ("Throttled", 429, "Sender")
            if call.service != "sns":
                code, status = "Throttling", 400
        else:
            code, status, fault = "InternalError", 500, "Receiver"
        body = (
            f"<ErrorResponse><Error><Type>{fault}</Type><Code>{code}</Code>"
            f"<Message>injected {kind}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        )
        return status, "text/xml", body.encode()
    code, status = ("SlowDown", 503) if kind == THROTTLE else ("InternalError", 500)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>injected {kind}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16]}</RequestId></Error>"
    )
    return status, "application/xml", body.encode()


# -- tagging a client's requests with the unit of work they belong to ---------------------------

_current_key = threading.local()


@contextmanager
def fault_key(key: str) -> Iterator[None]:
    """Tag the requests this thread sends in the block (through tagged clients) with `key`."""
    previous = getattr(_current_key, "value", None)
    _current_key.value = key
    try:
        yield
    finally:
        _current_key.value = previous


def tag_requests(client: Any) -> Any:
    """Make a boto3 client send the current thread's fault key with each request it sends."""

    def tag(request: Any, **_: Any) -> None:
        key = getattr(_current_key, "value", None)
        if key:
            request.headers[FAULT_KEY_HEADER] = key

    client.meta.events.register("before-send", tag)
    return client
