"""A CloudTrail emulator in front of the emulated S3: every successful configuration call, from
any client, becomes the record CloudTrail would log, put on EventBridge as AWS delivers it.

It is WSGI middleware around moto's server app, so it sees each request and its response. It also
applies S3's defaults and refusals (behaviour.py) that moto lacks.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bucketwarden.controls.access_point import partition_of
from bucketwarden.directory_buckets import is_directory_bucket
from bucketwarden_tools.local import behaviour, sts
from bucketwarden_tools.local.operations import (
    ConfigurationCall,
    access_key,
    identify,
    is_configuration_request,
    region,
)

ACCOUNT = "123456789012"
# The access key the local functions sign with, standing for the deployed functions' role.
SERVICE_ACCESS_KEY = "BUCKETWARDENLOCAL"
SERVICE_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/bucketwarden-local-function"
# The key the emulator itself uses for S3's own defaults: not a caller, so never logged.
EMULATOR_ACCESS_KEY = "BUCKETWARDENEMULATOR"

Publish = Callable[[dict[str, Any], float], None]
# How WSGI presents local/functions.py's FUNCTION_HEADER.
FUNCTION_ENVIRON_KEY = "HTTP_X_BUCKETWARDEN_LOCAL_FUNCTION"
# Where the emulator notes, in the record's additionalEventData, when it received the call:
# CloudTrail's eventTime has whole seconds, too coarse for drift-to-fix latency.
RECEIVED_AT = "bucketwardenLocalReceivedAt"


@dataclass(frozen=True)
class Identity:
    arn: str
    kind: str
    access_key: str
    issuer_arn: str | None = None
    # The caller's account: the hub's, or a member's for a role assumed there (--accounts).
    account: str = ACCOUNT

    def user_identity(self) -> dict[str, Any]:
        identity: dict[str, Any] = {
            "type": self.kind,
            "principalId": self.access_key,
            "arn": self.arn,
            "accountId": self.account,
            "accessKeyId": self.access_key,
        }
        if self.issuer_arn:
            identity["sessionContext"] = {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": self.issuer_arn,
                    "accountId": self.account,
                },
                "attributes": {"mfaAuthenticated": "false"},
            }
        else:
            identity["userName"] = self.arn.rsplit("/", 1)[-1]
        return identity


# Lambda names a function's role session after the function; a call with the service's key that
# names no local function is a session of the role under this name, which is no function's.
UNNAMED_SESSION = "bucketwarden"
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # Lambda's function name characters


def identity_of(key: str | None, function: str | None = None) -> Identity:
    """Who an access key stands for: the service's role (in a session named after the calling
    function), or a user named after the key."""
    if key == SERVICE_ACCESS_KEY:
        role = SERVICE_ROLE_ARN.rsplit("/", 1)[-1]
        session = function if function and _FUNCTION_NAME.match(function) else UNNAMED_SESSION
        arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"
        return Identity(arn, "AssumedRole", key, SERVICE_ROLE_ARN)
    assumed = _assumed_role(key)
    if assumed is not None:
        return assumed
    name = key or "anonymous"
    return Identity(f"arn:aws:iam::{ACCOUNT}:user/{name}", "IAMUser", name)


def _assumed_role(key: str | None) -> Identity | None:
    """The session an access key from STS AssumeRole stands for, in the role's account (a
    member account's, for a role assumed there); None for any other key."""
    if not key:
        return None
    from moto.sts.models import sts_backends

    for partitions in list(sts_backends.values()):
        for backend in list(partitions.values()):
            session = backend.get_assumed_role_from_access_key(key)
            if session is not None:
                account = str(session.account_id)
                return Identity(session.arn, "AssumedRole", key, session.role_arn, account)
    return None


def cloudtrail_record(
    call: ConfigurationCall, identity: Identity, environ: dict[str, Any], aws_region: str
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity.user_identity(),
        "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        # S3 Express One Zone logs its directory buckets' calls under its own source.
        "eventSource": "s3express.amazonaws.com"
        if is_directory_bucket(call.bucket)
        else "s3.amazonaws.com",
        "eventName": call.event_name,
        "awsRegion": aws_region,
        "sourceIPAddress": environ.get("REMOTE_ADDR", "127.0.0.1"),
        "userAgent": environ.get("HTTP_USER_AGENT", ""),
        "requestParameters": call.request_parameters,
        "responseElements": None,
        "additionalEventData": {"SignatureVersion": "SigV4", "AuthenticationMethod": "AuthHeader"},
        "requestID": uuid.uuid4().hex[:16].upper(),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        # Locally a caller acts on its own account's resources only.
        "recipientAccountId": identity.account,
        "eventCategory": "Management",
    }
    if call.access_point:
        record["resources"] = [
            _access_point_resource(call.access_point, aws_region, identity.account)
        ]
    return record


def _access_point_resource(name: str, aws_region: str, account: str) -> dict[str, str]:
    """The access point as CloudTrail names it in the record's `resources`."""
    arn = f"arn:{partition_of(aws_region)}:s3:{aws_region}:{account}:accesspoint/{name}"
    return {"accountId": account, "type": "AWS::S3::AccessPoint", "ARN": arn}


class CloudTrailMiddleware:
    def __init__(
        self,
        app: Callable[..., Iterable[bytes]],
        publish: Publish,
        internal_s3: Callable[[], Any],
        default_region: str,
    ) -> None:
        self.app = app
        self.publish = publish
        self.internal_s3 = internal_s3
        self.default_region = default_region

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if sts.is_sts_request(environ) and access_key(environ) != EMULATOR_ACCESS_KEY:
            answer = self._sts_answer(environ)
            if answer is not None:
                return self._answer(start_response, *answer)
        # Objects and reads pass untouched: their bodies may be large or streamed.
        if not is_configuration_request(environ):
            return self.app(environ, start_response)
        started = time.time()
        body = _read_body(environ)
        call = identify(environ, body)
        key = access_key(environ)
        if call is None or key == EMULATOR_ACCESS_KEY:
            return self.app(environ, start_response)
        refused = behaviour.refusal(call)
        if refused is not None:
            start_response(
                f"{refused.status} {refused.code}", [("Content-Type", "application/xml")]
            )
            return [refused.body()]
        status: list[str] = []

        def remember_status(code: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(code)
            return (
                start_response(code, headers, exc_info)
                if exc_info
                else start_response(code, headers)
            )

        response = list(self.app(environ, remember_status))
        if status and status[0].startswith("2"):
            self._after_success(call, key, environ, started)
        return response

    @staticmethod
    def _sts_answer(environ: dict[str, Any]) -> tuple[str, bytes] | None:
        """What the emulator answers itself for STS: a refused AssumeRole, or the identity of a
        user's key; None leaves the call to moto."""
        body = _read_body(environ)
        denied = sts.assume_role_refusal(body)
        if denied is not None:
            return "403 Forbidden", denied
        identity = identity_of(access_key(environ))
        if identity.kind != "IAMUser":  # moto knows its assumed-role sessions
            return None
        answer = sts.caller_identity_answer(body, identity.arn, identity.access_key, ACCOUNT)
        return None if answer is None else ("200 OK", answer)

    @staticmethod
    def _answer(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", "text/xml")])
        return [body]

    def _after_success(
        self, call: ConfigurationCall, key: str | None, environ: dict[str, Any], started: float
    ) -> None:
        if call.event_name == "CreateBucket":
            behaviour.new_bucket_defaults(call, self.internal_s3())
        elif call.event_name == "DeleteBucketEncryption":
            behaviour.encryption_falls_back(call, self.internal_s3())
        aws_region = region(environ) or self.default_region
        identity = identity_of(key, environ.get(FUNCTION_ENVIRON_KEY))
        self.publish(cloudtrail_record(call, identity, environ, aws_region), started)


def _read_body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def put_on_default_bus(record: dict[str, Any], received_at: float, bus_region: str) -> None:
    """Deliver a record to the emulated EventBridge, as CloudTrail delivers management events.

    Every call goes to the bus of the region the local system runs in, whatever region the
    client signed for: locally there is one deployment, where AWS has one per region. A member
    account's record goes to that account's default bus, whose forwarder sends it on.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.events.models import events_backends

    from bucketwarden.events import API_CALL_DETAIL_TYPE, envelope_source

    record["additionalEventData"][RECEIVED_AT] = received_at
    account = str(record.get("recipientAccountId") or DEFAULT_ACCOUNT_ID)
    entry = {
        "Source": envelope_source(record.get("eventSource")),
        "DetailType": API_CALL_DETAIL_TYPE,
        "Detail": json.dumps(record),
        "EventBusName": "default",
        "Resources": [],
    }
    if account == DEFAULT_ACCOUNT_ID:
        events_backends[DEFAULT_ACCOUNT_ID][bus_region].put_events([entry])
    else:
        forward_from_member(account, bus_region, record)


def forward_from_member(account: str, bus_region: str, record: dict[str, Any]) -> None:
    """The member account's rules on its default bus (the forwarder, member/forwarder.yaml) send
    its record to the bus their target names, the hub's, with the member as the envelope's
    `account`, as EventBridge sets it from the sender. (moto's own cross-account delivery would
    name the receiving account instead, and the hub rightly rejects such an envelope.)"""
    import copy

    from moto.core.utils import unix_time
    from moto.events.models import events_backends
    from moto.events.utils import _BASE_EVENT_MESSAGE
    from moto.utilities.arns import parse_arn

    from bucketwarden.events import API_CALL_DETAIL_TYPE, envelope_source

    message: Any = copy.deepcopy(_BASE_EVENT_MESSAGE)
    message.update(
        {
            "id": str(uuid.uuid4()),
            "detail-type": API_CALL_DETAIL_TYPE,
            "source": envelope_source(record.get("eventSource")),
            "account": account,
            "time": unix_time(),
            "region": bus_region,
            "resources": [],
            "detail": record,
            "ingestion-time": unix_time(),
        }
    )
    member_bus = events_backends[account][bus_region].describe_event_bus("default")
    for rule in list(member_bus.rules.values()):
        if rule.state != "ENABLED" or not rule.event_pattern.matches_event(message):
            continue
        for target in rule.targets:
            arn = parse_arn(target["Arn"])
            if arn.service != "events" or arn.resource_type != "event-bus":
                continue  # a forwarder targets a bus; nothing else is emulated for members
            hub_bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
            for hub_rule in list(hub_bus.rules.values()):
                hub_rule.send_to_targets(copy.deepcopy(message))
