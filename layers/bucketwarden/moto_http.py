"""moto's server as the benches run it: moto's own WSGI app, with HTTP keep-alive.

`python -m bucketwarden.moto_http --port N` serves the same app as `python -m moto.server`, in
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
import functools
import sys
from collections.abc import Iterable
from typing import Any

from moto.core import errors, utils
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.datastructures import Headers
from werkzeug.serving import ThreadedWSGIServer
from werkzeug.wsgi import LimitedStream

# Responses that never carry a body (RFC 9110).
BODYLESS = frozenset({204, 304})


class Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which service a host name is.

    moto works it out on every request, listing its own package directory and trying hundreds
    of URL patterns; that was a quarter of the local endpoint's time under load.
    """

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one instance, alive as long as the process
    def get_backend_for_host(self, host: str | None) -> Any:
        return super().get_backend_for_host(host)


def _remember_error_lookups() -> None:
    """One cache of error shapes for every `ErrorLookupFactory` (moto makes one per error), and
    each moto package's service name worked out once (both read only installed files)."""
    shared: dict[str, errors.ErrorLookup] = {}

    def share(factory: errors.ErrorLookupFactory) -> None:
        factory._error_lut_cache = shared

    errors.ErrorLookupFactory.__init__ = share  # type: ignore[method-assign]
    utils.service_name_from_moto_package_name = functools.cache(  # type: ignore[assignment]
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
        body = LimitedStream(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))
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
