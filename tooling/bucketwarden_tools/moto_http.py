"""moto's server as the benches run it: moto's own WSGI app, with HTTP keep-alive.

`python -m bucketwarden_tools.moto_http --port N` serves the same app as `python -m moto.server`, in
a process of its own on 127.0.0.1, with these differences, measured on a sweep's reads:

- Connections are kept alive. werkzeug's development server closes every connection after one
  response, so each call paid a TCP connect and a new server thread, and waited in werkzeug's
  10 ms drain of the closed socket. Here a request body is read to its end before the next
  request is parsed, which is what werkzeug's server cannot promise.
- moto's dispatcher remembers which service a host name is. moto works it out for every
  request, listing its own package directory and trying hundreds of URL patterns: about a
  third of the server's time.
- moto's error shapes are looked up once per service, and so is the service an exception's
  module belongs to. moto means to cache the first, but builds a new cache for every error
  response, and works out the second by listing botocore's data directory (S3 answers most
  configuration reads of a new bucket with an error, such as NoSuchBucketPolicy).
- The benches start it with `MOTO_DISABLE_GLOBAL_CORS` (a moto setting, read on import): their
  clients are SDKs, not browsers, and need no CORS headers.
- No line is logged per request.

Every answer is moto's own: these only remember what moto computes from its installed files.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import IO, Any, cast

from moto.core import errors, utils
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.datastructures import Headers
from werkzeug.serving import ThreadedWSGIServer
from werkzeug.wsgi import LimitedStream

# Services whose requests may wait for another request (an SQS long poll for a message), so
# that answering one at a time would hold every other request up for the length of the wait.
WAITS_ON_PURPOSE = frozenset({"sqs"})
# Responses that never carry a body (RFC 9110).
BODYLESS = frozenset({204, 304})


class Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which service a host name is, and answering one request
    at a time per service.

    moto works out the service on every request, listing its own package directory and trying
    hundreds of URL patterns; that was a quarter of the local endpoint's time under load.

    moto's backends keep their state in plain dicts without locks, and its server answers
    requests on many threads: a DynamoDB Query that iterates a table while another thread puts
    an item fails with "dictionary changed size during iteration" (an HTTP 500 that AWS would
    never send). Requests to one service wait for each other; different services do not. SQS
    is the exception: its long polls wait for messages on purpose, under moto's own lock.
    """

    def __init__(self, create_app: Callable[[Any], Any]) -> None:
        super().__init__(create_app)
        self._service_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        backend_app = self.get_application(environ)
        with self.lock:  # moto's own lock, guarding its table of apps
            service = getattr(backend_app, "service", "")
            service_lock = None if service in WAITS_ON_PURPOSE else self._service_locks[service]
        with service_lock or contextlib.nullcontext():
            response = backend_app(environ, start_response)
            try:
                return list(response)
            finally:
                if hasattr(response, "close"):
                    response.close()

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one instance, alive as long as the process
    def get_backend_for_host(self, host: str | None) -> Any:
        return super().get_backend_for_host(host)


def _remember_error_lookups() -> None:
    """One cache of error shapes for every `ErrorLookupFactory` (moto makes one per error), and
    each moto package's service name worked out once (both read only installed files)."""
    shared: dict[str, errors.ErrorLookup] = {}

    def share(factory: errors.ErrorLookupFactory) -> None:
        factory._error_lut_cache = shared

    # Replacing moto's own functions is the point here; their types differ (a cache, no self).
    errors.ErrorLookupFactory.__init__ = share  # type: ignore[method-assign, assignment]
    utils.service_name_from_moto_package_name = functools.cache(
        utils.service_name_from_moto_package_name
    )


class KeepAliveHandler(MotoRequestHandler):
    """moto's request handler, answering each request on a connection that stays open."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, the body would wait for the
    # client's delayed acknowledgement of the headers.
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # werkzeug's own path reads a chunked body and closes the connection after it.
            self.close_connection = True
            super().run_wsgi()
            return
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.environ = environ = self.make_environ()
        # The connection's reader: typeshed names only its base class.
        reader = cast("IO[bytes]", self.rfile)
        body = LimitedStream(reader, int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = body
        try:
            status, headers, payload = self._call_app(environ)
        except Exception as error:  # the app failed: say so, as werkzeug's server does
            self.log_error("error on %s %s: %r", self.command, self.path, error)
            self.close_connection = True
            self.send_error(500)
            return
        body.exhaust()  # the next request starts after this one's body, read or not
        self._respond(status, headers, payload)

    def _call_app(self, environ: dict[str, Any]) -> tuple[str, Headers, bytes]:
        started: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started["status"], started["headers"] = status, Headers(headers)
            return written.append

        result: Iterable[bytes] = self.server.app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return started["status"], started["headers"], b"".join(written)

    def _respond(self, status: str, headers: Headers, payload: bytes) -> None:
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        carries_body = self.command != "HEAD" and int(code) not in BODYLESS and int(code) >= 200
        if "Content-Length" not in headers and carries_body:
            headers["Content-Length"] = str(len(payload))
        headers.remove("Connection")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if carries_body:
            self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request (errors are still logged)."""


def serve(host: str, port: int) -> None:
    _remember_error_lookups()
    server = ThreadedWSGIServer(host, port, Dispatcher(create_backend_app), KeepAliveHandler)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    serve(args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
