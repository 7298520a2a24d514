"""What the tooling adds to the engine's botocore clients, from outside the runtime package.

The runtime's clients are plain boto3 clients (`bucketwarden.aws`). The tooling registers its
hooks for every client its process makes: the local mode names the calling function, the bench
and the tests count calls (`bucketwarden_tools.calls`), and every tool that points clients at
an emulator strips S3 Control's account-id host prefix (`reach_local_endpoints`).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from botocore import handlers

Handler = Callable[..., Any]


def register_for_new_clients(event: str, handler: Handler) -> None:
    """Register `handler` for `event` on every botocore client made from now on in this process.

    botocore registers `BUILTIN_HANDLERS` on every new session (moto's `mock_aws` adds its own
    stub the same way), and `bucketwarden.aws.new_client` makes each client from a session of
    its own: so the engine's clients get the handler without the runtime knowing of it. Clients
    made before are left as they are: callers reset the engine's client cache after this.
    Registering the same handler again changes nothing.
    """
    if (event, handler) not in handlers.BUILTIN_HANDLERS:
        handlers.BUILTIN_HANDLERS.append((event, handler))


def strip_account_host_prefix(request: Any, **_: Any) -> None:
    """Undo S3 Control's `<account id>.` host prefix when the endpoint is an address.

    botocore prefixes every S3 Control host with the account id, which is right for AWS
    (`123456789012.s3-control.us-east-1.amazonaws.com`) but names no host for an emulator on
    `127.0.0.1` or `localhost`.
    """
    parts = urlsplit(request.url)
    label, _dot, rest = (parts.hostname or "").partition(".")
    if not (label.isdigit() and _is_local_host(rest)):
        return
    netloc = rest if parts.port is None else f"{rest}:{parts.port}"
    request.url = urlunsplit(parts._replace(netloc=netloc))


def _is_local_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def reach_local_endpoints() -> None:
    """Let every S3 Control client made from now on reach an emulator on an address.

    For AWS's own hosts the handler changes nothing, so a tool registers it whether or not it
    talks to an emulator.

    A directory bucket's bucket-level calls are signed as usual, without an S3 Express session:
    against one emulator address botocore cannot tell S3 Express's regional endpoint from its
    zonal ones (which need a session) and would ask for one first. AWS's regional endpoint,
    the only one these tools call, takes such requests as they are.
    """
    register_for_new_clients("before-sign.s3-control", strip_account_host_prefix)
    os.environ.setdefault("AWS_S3_DISABLE_EXPRESS_SESSION_AUTH", "true")
