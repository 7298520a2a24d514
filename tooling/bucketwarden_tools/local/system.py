"""The whole local system: emulated AWS endpoint, CloudTrail, EventBridge rules, functions.

One process serves the endpoint (moto behind the CloudTrail middleware) and runs the functions,
which reach the endpoint over HTTP like any other client, with the service's own access key.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bucketwarden import integrity
from bucketwarden.aws import new_client, reset_clients
from bucketwarden.metrics import Metrics
from bucketwarden.settings import mode_variable
from bucketwarden_tools import stack
from bucketwarden_tools.clients import reach_local_endpoints
from bucketwarden_tools.local import endpoint, organization, tls
from bucketwarden_tools.local.cloudtrail import (
    ACCOUNT,
    EMULATOR_ACCESS_KEY,
    RECEIVED_AT,
    SERVICE_ACCESS_KEY,
    SERVICE_ROLE_ARN,
)
from bucketwarden_tools.local.functions import (
    FunctionRunner,
    Hub,
    Invocation,
    function_names,
    name_the_calling_functions,
    take_messages,
)
from bucketwarden_tools.local.organization import HUB_BUS_NAME, MEMBER_ROLE_PREFIX, Organization
from bucketwarden_tools.parameters import ParameterError, check_overrides, function_environment
from bucketwarden_tools.routing import DEFAULT_TEMPLATE, TemplateError, load_template

REGION = endpoint.REGION
START_TIMEOUT_SECONDS = 60
METRICS_PER_CALL = 1000  # PutMetricData's limit
DRIFTS_REMEMBERED = 10_000  # for latency: more than any backlog the functions could have
Report = Callable[[dict[str, Any]], None]


class LocalSystemError(RuntimeError):
    """The local system cannot start; the message says why and what to do."""


class LocalSystem:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 4566,
        report: Report | None = None,
        modes: dict[str, str] | None = None,
        template: Path = DEFAULT_TEMPLATE,
        *,
        accounts: int = 1,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        if accounts < 1:
            raise LocalSystemError(f"--accounts {accounts}: an organization has at least 1")
        # Template parameters given as `sam deploy --parameter-overrides` takes them: checked
        # against template.yaml now, before anything starts.
        self.parameters = dict(parameters or {})
        self.parameter_environment = self._parameter_environment(template)
        self.host = host
        # 1: the emulator's one account, as always; more: an organization (local/organization.py).
        self.accounts = accounts
        self.organization: Organization | None = None
        self._function_names: frozenset[str] = frozenset()  # the organization's, for drifts
        self.port = port
        self.report = report or (lambda _item: None)
        self.modes = modes or {}
        self.template = template
        self.process: multiprocessing.process.BaseProcess | None = None
        # Tells the endpoint that the functions' rules exist: it holds the events of calls made
        # before, so that a call made the moment the port accepts connections is fixed too.
        self._open_delivery: Any = None
        self.runner: FunctionRunner | None = None
        self.drift_started: dict[str, float] = {}
        self._seen_lock = threading.Lock()
        self.notification_queue_url = ""
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._metric_data: list[tuple[str, dict[str, Any]]] = []
        self._metrics_lock = threading.Lock()

    def _parameter_environment(self, template: Path) -> dict[str, str]:
        """The functions' variables that the overridden parameters set (template Globals)."""
        if not self.parameters:
            return {}
        try:
            document = load_template(template)
            check_overrides(self.parameters, document)
        except (ParameterError, TemplateError) as error:
            raise LocalSystemError(f"--parameter-overrides: {error}") from error
        return function_environment(self.parameters, document)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def https_endpoint(self) -> str:
        """The same port over TLS (local/tls.py), as S3 serves objects: clients trust it with
        the CA bundle, `certificates.ca_bundle` (AWS_CA_BUNDLE)."""
        return f"https://{self.host}:{self.port}"

    # -- clients ------------------------------------------------------------------------------

    def client(self, service: str, access_key: str = EMULATOR_ACCESS_KEY) -> Any:
        """One client per service and key: making one costs more CPU than the call it makes.

        Clients are thread-safe once made; sessions are not, so they are made under a lock.
        """
        with self._clients_lock:
            key = (self.endpoint, service, access_key)  # the port is known only once serving
            if key not in self._clients:
                self._clients[key] = new_client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=REGION,
                    aws_access_key_id=access_key,
                    aws_secret_access_key="local",
                )
            return self._clients[key]

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalSystem:
        self._serve()
        self._configure_functions_environment()
        resources = stack.prepare(create_missing=True)  # the audit records' key too
        os.environ.update(resources.environment())
        # Security Hub on, as a security account has it: findings exported there (parameter
        # SecurityHubExport) show in `aws securityhub get-findings --endpoint-url ...`.
        self.client("securityhub").enable_security_hub()
        integrity.forget()  # verdicts and reports of another endpoint's records
        if self.accounts > 1:
            self._create_organization()
        self._spawn(self._send_metrics_every_second, "metrics")
        self._watch_notifications(str(resources.topic_arn))
        self.runner = FunctionRunner(
            self.client,
            self.template,
            self._on_invocation,
            self._on_received,
            account_id=ACCOUNT,
            metrics=Metrics(self._metrics_to_cloudwatch),
            hub=None if self.organization is None else Hub(HUB_BUS_NAME, MEMBER_ROLE_PREFIX),
        )
        functions = self.runner.deploy()
        self._open_delivery.send("deliver")
        self.runner.start()
        ready = {
            "kind": "ready",
            "endpoint": self.endpoint,
            "functions": [f.route.function_id for f in functions],
            "topic_arn": resources.topic_arn,
            "audit_table": resources.audit_table,
            "https_endpoint": self.https_endpoint,
            "ca_bundle": str(self.certificates.ca_bundle),
        }
        if self.organization is not None:
            ready.update(
                {
                    "organization_id": self.organization.organization_id,
                    "hub_account": self.organization.hub,
                    "accounts": self.organization.accounts,
                    "member_user_role": self.organization.user_role,
                }
            )
        self.report(ready)
        return self

    def _create_organization(self) -> None:
        """The hub and its members (local/organization.py); the functions run in organization
        mode: ORGANIZATION_ID here, each one's MEMBER_ROLE_NAME its own (functions.Hub)."""
        member_folder = self.template.parent / "member"
        if not (member_folder / "roles.yaml").is_file():
            raise LocalSystemError(
                f"--accounts needs the member templates: {member_folder} has no roles.yaml"
            )
        try:
            self.organization = organization.create(
                self.accounts, self.client, member_folder, REGION, self.endpoint
            )
        except (BotoCoreError, ClientError) as error:
            raise LocalSystemError(f"cannot create the organization: {error}") from error
        os.environ["ORGANIZATION_ID"] = self.organization.organization_id
        self._function_names = frozenset(function_names(self.template))

    def stop(self) -> None:
        self._stopping.set()
        if self.runner:
            self.runner.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        if self.process and self.process.is_alive():
            self.process.kill()  # it ignores SIGTERM; its state is all in memory
            self.process.join(timeout=10)

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every delivered event has been handled; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.runner is None or self.runner.idle():
                # Let a put that is on its way reach a queue before calling it quiet.
                time.sleep(0.2)
                if self.runner is None or self.runner.idle():
                    return True
            time.sleep(0.05)
        return False

    def wait_for_notifications(self, timeout: float = 10.0) -> bool:
        """Wait until every published notification has been shown; False on timeout."""
        sqs = self.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.notification_queue_url, AttributeNames=names
            )["Attributes"]
            if not any(int(value) for value in attributes.values()):
                return True
            time.sleep(0.05)
        return False

    def _serve(self) -> None:
        try:
            self.certificates = tls.certificates()
        except OSError as error:
            raise LocalSystemError(
                f"cannot keep the local TLS certificates in {tls.cache_folder()}: "
                f"{error.strerror or error}; set XDG_CACHE_HOME to a writable folder"
            ) from error
        context = multiprocessing.get_context("spawn")
        receive, send = context.Pipe(duplex=False)
        held, self._open_delivery = context.Pipe(duplex=False)
        self.process = context.Process(
            target=endpoint.serve,
            args=(self.host, self.port, send, held, self.certificates),
            name="endpoint",
            daemon=True,
        )
        self.process.start()
        status, detail = self._endpoint_status(receive)
        if status == "in-use":
            raise LocalSystemError(
                f"port {self.port} on {self.host} is in use; stop what uses it or choose "
                "another with --port"
            )
        if status != "ready":
            raise LocalSystemError(f"cannot listen on {self.host}:{self.port}: {detail}")
        self.port = int(detail)

    def _endpoint_status(self, receive: Any) -> tuple[str, str]:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if receive.poll(0.1):
                status: tuple[str, str] = receive.recv()
                return status
            if self.process is not None and not self.process.is_alive():
                return "error", f"the endpoint process ended with code {self.process.exitcode}"
        return "error", f"the endpoint did not start in {START_TIMEOUT_SECONDS} s"

    def _configure_functions_environment(self) -> None:
        """What the template sets for the functions, pointed at this endpoint."""
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ACCESS_KEY_ID": SERVICE_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "SERVICE_ROLE_ARNS": SERVICE_ROLE_ARN,
                "SERVICE_FUNCTION_NAMES": ",".join(function_names(self.template)),
                # The emulator's one account, as the template sets AWS::AccountId.
                "ACCOUNT_ID": ACCOUNT,
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
        )
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)
        # Organization mode only with --accounts (set by _create_organization).
        os.environ.pop("ORGANIZATION_ID", None)
        os.environ.pop("MEMBER_ROLE_NAME", None)
        os.environ.update(self.parameter_environment)
        for control_id, mode in self.modes.items():
            os.environ[mode_variable(control_id)] = mode
        name_the_calling_functions()
        reach_local_endpoints()
        reset_clients()  # the functions' clients are made again, with both

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- the event path -----------------------------------------------------------------------

    def _on_received(self, event: dict[str, Any]) -> None:
        """A function took an event off its queue: show the drift, once per event."""
        record = event.get("detail") or {}
        received_at = (record.get("additionalEventData") or {}).get(RECEIVED_AT)
        with self._seen_lock:
            if record.get("eventID") in self.drift_started:
                return
            self.drift_started[record.get("eventID", "")] = received_at or time.time()
            while len(self.drift_started) > DRIFTS_REMEMBERED:  # a long session stays small
                del self.drift_started[next(iter(self.drift_started))]
        if not self._made_by_a_function(record):
            drift = {"kind": "drift", "time": received_at, **_drift_summary(record)}
            if self.organization is not None:
                drift["account"] = record.get("recipientAccountId")
            self.report(drift)

    def _made_by_a_function(self, record: dict[str, Any]) -> bool:
        """A change of the functions: with their own key, or, in a member account, in a member
        role's session that they named (the engine ignores both as its own)."""
        identity = record.get("userIdentity") or {}
        if identity.get("accessKeyId") == SERVICE_ACCESS_KEY:
            return True
        issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
        session = str(identity.get("arn", "")).rsplit("/", 1)[-1]
        return (
            self.organization is not None
            and str(issuer).rsplit("/", 1)[-1].startswith(f"{MEMBER_ROLE_PREFIX}-")
            and session in self._function_names
        )

    def _on_invocation(self, invocation: Invocation) -> None:
        event_id = str(invocation.event.get("detail", {}).get("eventID", ""))
        started = self.drift_started.get(event_id)
        now = time.time()
        if invocation.error:
            self.report(
                {
                    "kind": "dead-letter",
                    "time": now,
                    "function": invocation.function,
                    "event_id": event_id,
                    "attempts": invocation.attempts,
                    "error": invocation.error,
                }
            )
            return
        for outcome in invocation.outcomes:
            latency = None if started is None else round((now - started) * 1000)
            self.report({"kind": "outcome", "time": now, "latency_ms": latency, **outcome})

    def _watch_notifications(self, topic_arn: str) -> None:
        sqs = self.client("sqs")
        queue_url = sqs.create_queue(QueueName="bucketwarden-local-notifications")["QueueUrl"]
        self.notification_queue_url = queue_url
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        self.client("sns").subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=arn["Attributes"]["QueueArn"]
        )

        def poll() -> None:
            while not self._stopping.is_set():
                for message in take_messages(sqs, queue_url, self._stopping):
                    envelope = json.loads(message["Body"])
                    self.report(
                        {
                            "kind": "notification",
                            "time": time.time(),
                            "subject": envelope.get("Subject"),
                            "message": json.loads(envelope.get("Message", "{}")),
                        }
                    )

        self._spawn(poll, "notifications")

    def _metrics_to_cloudwatch(self, metric_set: Mapping[str, Any]) -> None:
        """Embedded Metric Format → metric data, sent in batches as CloudWatch Logs does."""
        directive = metric_set["_aws"]["CloudWatchMetrics"][0]
        dimensions = [
            {"Name": name, "Value": str(metric_set[name])}
            for group in directive["Dimensions"]
            for name in group
        ]
        with self._metrics_lock:
            self._metric_data.extend(
                (
                    directive["Namespace"],
                    {
                        "MetricName": metric["Name"],
                        "Unit": metric.get("Unit", "None"),
                        "Value": float(value),
                        "Dimensions": dimensions,
                    },
                )
                for metric in directive["Metrics"]
                for value in metric_set[metric["Name"]]
            )

    def _flush_metrics(self) -> None:
        with self._metrics_lock:
            pending, self._metric_data = self._metric_data, []
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for namespace, datum in pending:
            by_namespace.setdefault(namespace, []).append(datum)
        cloudwatch = self.client("cloudwatch")
        for namespace, data in by_namespace.items():
            for start in range(0, len(data), METRICS_PER_CALL):
                batch = data[start : start + METRICS_PER_CALL]
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)

    def _send_metrics_every_second(self) -> None:
        while not self._stopping.wait(1.0):
            try:
                self._flush_metrics()
            except (BotoCoreError, ClientError):
                continue  # the endpoint is stopping; metrics are not worth a traceback
        with contextlib.suppress(BotoCoreError, ClientError):
            self._flush_metrics()


def _drift_summary(record: dict[str, Any]) -> dict[str, Any]:
    parameters = record.get("requestParameters") or {}
    # What the call changed: a bucket, an access point (by name), or else the account.
    subject = parameters.get("bucketName") or parameters.get("name")
    return {
        "event_id": record["eventID"],
        "event_name": record["eventName"],
        "bucket": subject or record.get("recipientAccountId"),
        "actor": record["userIdentity"].get("arn"),
        "source_ip": record.get("sourceIPAddress"),
    }
