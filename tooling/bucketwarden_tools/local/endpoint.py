"""The emulated AWS endpoint, in a process of its own: moto behind the CloudTrail emulator.

The functions run in the parent process and reach it over HTTP, so endpoint and functions use
a core each, as AWS and Lambda would not share one.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bucketwarden_tools.local.tls import Certificates

REGION = "us-east-1"


def _internal_s3(endpoint: str) -> Any:
    import boto3

    from bucketwarden_tools.local.cloudtrail import EMULATOR_ACCESS_KEY

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=EMULATOR_ACCESS_KEY,
        aws_secret_access_key="local",
    )


def _parse_each_jsonpath_once() -> None:
    """moto's EventBridge parses the same JSONPath expressions ("$.detail", "$.source", ...)
    for every event and every rule target, building a new parser each time: a quarter of a
    flood's time once CreateBucket reaches four rules. A parsed path is immutable, so one per
    expression serves every request thread.
    """
    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)


def _stop_with_parent(server: Any) -> None:
    """An endpoint whose parent died (killed, not stopped) must not linger on the port."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(1)
    server.shutdown()


class HeldUntilDelivery:
    """Publishes records, but holds those of calls made before the functions' rules exist and
    publishes them, in order, once they do: the port accepts connections before the local
    system has made the rules (it makes them through the port), and a record put on the bus
    then would reach no function."""

    def __init__(self, publish: Callable[[dict[str, Any], float], None]) -> None:
        self._publish = publish
        self._held: list[tuple[dict[str, Any], float]] | None = []
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any], received_at: float) -> None:
        with self._lock:
            if self._held is not None:
                self._held.append((record, received_at))
                return
        self._publish(record, received_at)

    def deliver(self) -> None:
        """From now on publish at once, after every record held so far."""
        with self._lock:  # a call meanwhile waits, so that the bus gets records in order
            for record, received_at in self._held or []:
                self._publish(record, received_at)
            self._held = None


def _deliver_when_told(gate: HeldUntilDelivery, told: Connection) -> None:
    with contextlib.suppress(EOFError, OSError):  # the parent ended first: nothing to deliver to
        told.recv()
        gate.deliver()


def serve(
    host: str,
    port: int,
    ready: Connection,
    open_delivery: Connection | None = None,
    certificates: Certificates | None = None,
) -> None:
    """Process entry point: serve until killed; report ("ready", port) or ("error", text).

    With `open_delivery`, events are held until a message arrives on it (HeldUntilDelivery).
    With `certificates`, the port answers HTTPS too (local/tls.py).
    """
    # Ctrl-C or a supervisor's SIGTERM reach the whole process group: the parent stops the
    # functions first, then this process, so that no invocation loses its endpoint midway.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    from bucketwarden_tools.local import tls
    from bucketwarden_tools.local.behaviour import judge_log_targets_by_principal_objects
    from bucketwarden_tools.local.cloudtrail import CloudTrailMiddleware, put_on_default_bus
    from bucketwarden_tools.local.transport import (
        TransportContext,
        handler_with_transport,
        judge_bucket_policies_with_the_transport,
    )
    from bucketwarden_tools.moto_http import Dispatcher

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    # The endpoint's own S3 calls on a directory bucket, signed without an S3 Express session:
    # the endpoint is one address for every service.
    os.environ["AWS_S3_DISABLE_EXPRESS_SESSION_AUTH"] = "true"
    _parse_each_jsonpath_once()
    judge_log_targets_by_principal_objects()
    judge_bucket_policies_with_the_transport()
    endpoint: dict[str, Any] = {}

    def internal_s3() -> Any:
        if "s3" not in endpoint:
            endpoint["s3"] = _internal_s3(f"http://{host}:{endpoint['port']}")
        return endpoint["s3"]

    gate = HeldUntilDelivery(
        lambda record, received_at: put_on_default_bus(record, received_at, REGION)
    )
    if open_delivery is None:
        gate.deliver()
    else:
        threading.Thread(target=_deliver_when_told, args=(gate, open_delivery), daemon=True).start()
    cloudtrail = CloudTrailMiddleware(
        Dispatcher(create_backend_app),
        publish=gate,
        internal_s3=internal_s3,
        default_region=REGION,
    )
    try:
        # werkzeug prints two lines of its own before it exits on a port in use; the local
        # system says it in one.
        with contextlib.redirect_stderr(io.StringIO()):
            server = make_server(
                host,
                port,
                TransportContext(cloudtrail),
                threaded=True,
                request_handler=handler_with_transport(MotoRequestHandler),
            )
    except OSError as error:
        in_use = error.errno == errno.EADDRINUSE
        ready.send(("in-use" if in_use else "error", str(error)))
        return
    except SystemExit:  # werkzeug exits, after printing why, when the port is taken
        ready.send(("in-use", f"{host}:{port}"))
        return
    if certificates is not None:
        tls.answer_tls_too(server, tls.server_context(certificates))
    endpoint["port"] = server.server_port
    ready.send(("ready", server.server_port))
    threading.Thread(target=_stop_with_parent, args=(server,), daemon=True).start()
    server.serve_forever()
    server.server_close()
