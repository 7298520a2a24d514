"""Lambda's asynchronous invocation, locally, for the functions of template.yaml.

Each function gets the EventBridge rule the template gives it, targeting an SQS queue that
stands for Lambda's internal event queue. Pollers take events off it and invoke the same handler
as in Lambda on a worker pool; a failed invocation is retried as many times as the template's
EventInvokeConfig allows (with short pauses instead of Lambda's minutes), then sent to the
function's dead-letter queue.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from bucketwarden.metrics import Metrics
from bucketwarden_tools.clients import register_for_new_clients
from bucketwarden_tools.delivery import invoke
from bucketwarden_tools.routing import Route, hub_bus_routes, load_handler, routes

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

RETRY_PAUSES_SECONDS = (0.2, 0.5, 1.0)
RECEIVE_ERROR_PAUSE_SECONDS = 0.5
# The header naming the local function a request comes from: the CloudTrail emulator names the
# role session after it, as Lambda names a function's session after the function.
FUNCTION_HEADER = "X-BucketWarden-Local-Function"
_calling_function: ContextVar[str | None] = ContextVar("calling_function", default=None)


def function_name(route: Route) -> str:
    """The local function's name (its queues are named after it too)."""
    return f"bucketwarden-local-{route.folder}"


def function_names(template: Path) -> list[str]:
    return [function_name(route) for route in routes(template)]


def name_the_calling_functions() -> None:
    """Make every client made from now on name, on each request, the local function whose
    invocation makes it (as Lambda's credentials name it, the role session, in AWS)."""
    register_for_new_clients("before-sign", _add_function_header)


def _add_function_header(request: Any, **_: Any) -> None:
    name = _calling_function.get()
    if name:
        request.headers[FUNCTION_HEADER] = name


def take_messages(
    sqs: SQSClient,
    queue_url: str,
    stopping: threading.Event,
    before_delete: Callable[[int], None] = lambda _taken: None,
) -> list[MessageTypeDef]:
    """Receive a batch and delete it from the queue; [] when the endpoint fails or is gone.

    A poller must outlive a failed call: the endpoint may stop first (a signal to the whole
    process group) or fail once, and a poller that ended would leave its queue unread for good.
    """
    try:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        messages = batch.get("Messages", [])
        if messages:
            before_delete(len(messages))
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                    for n, m in enumerate(messages)
                ],
            )
    except (BotoCoreError, ClientError):
        stopping.wait(RECEIVE_ERROR_PAUSE_SECONDS)
        return []
    return messages


@dataclass(frozen=True)
class Hub:
    """The hub of a local organization: the event bus the member accounts' forwarders send to,
    and the prefix of the member roles (MemberRoleName)."""

    bus_name: str
    member_role_prefix: str


@dataclass
class Invocation:
    """What one asynchronous invocation ended with, for the console."""

    function: str
    event: dict[str, Any]
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    error: str | None = None  # set when the event went to the dead-letter queue


@dataclass
class LocalFunction:
    route: Route
    queue_url: str
    dead_letter_url: str
    # The function's entry point, publishing its metrics where the local mode reads them.
    handler: Any


class FunctionRunner:
    def __init__(
        self,
        client: Callable[[str], Any],
        template: Path,
        on_invocation: Callable[[Invocation], None],
        on_received: Callable[[dict[str, Any]], None] = lambda _event: None,
        workers: int = 8,
        *,
        account_id: str | None = None,
        metrics: Metrics | None = None,
        hub: Hub | None = None,
    ) -> None:
        self.client = client
        # Where the functions' metrics go (EMF on stdout without one, as in Lambda).
        self.metrics = metrics
        self.template = template
        # The account whose events the rules match (`!Ref AWS::AccountId` in the template).
        self.account_id = account_id
        # Organization mode: the hub's bus, its rules, and each function's member role.
        self.hub = hub
        self.on_invocation = on_invocation
        self.on_received = on_received
        self.functions: list[LocalFunction] = []
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lambda")
        self.stopping = threading.Event()
        self.pollers: list[threading.Thread] = []
        self.in_flight = 0
        self._lock = threading.Lock()

    def deploy(self) -> list[LocalFunction]:
        """Create each function's queues and rule, as `sam deploy` creates the real ones."""
        sqs, events = self.client("sqs"), self.client("events")
        for route in routes(self.template, self.account_id):
            # Imported once, before worker threads race to do it.
            handler = self._handler(route)
            name = function_name(route)
            queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
            dead_letter_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
            rule = f"{name}-{route.rule_name}"
            events.put_rule(Name=rule, EventPattern=json.dumps(route.pattern), State="ENABLED")
            target = {"Id": route.folder, "Arn": arn["Attributes"]["QueueArn"]}
            events.put_targets(Rule=rule, Targets=[target])
            self.functions.append(LocalFunction(route, queue_url, dead_letter_url, handler))
        if self.hub is not None:
            self._deploy_hub_rules(self.hub)
        return self.functions

    def _deploy_hub_rules(self, hub: Hub) -> None:
        """The template's rules on the hub's bus (its organization mode), each targeting its
        function's queue as the function's own rule does."""
        sqs, events = self.client("sqs"), self.client("events")
        queues = {function.route.function_id: function.queue_url for function in self.functions}
        for route in hub_bus_routes(self.template):
            arn = sqs.get_queue_attributes(
                QueueUrl=queues[route.function_id], AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
            rule = f"{function_name(route)}-{route.rule_name}"
            events.put_rule(
                Name=rule,
                EventBusName=hub.bus_name,
                EventPattern=json.dumps(route.pattern),
                State="ENABLED",
            )
            events.put_targets(
                Rule=rule, EventBusName=hub.bus_name, Targets=[{"Id": route.folder, "Arn": arn}]
            )

    def _handler(self, route: Route) -> Any:
        """The route's entry point, its metrics sent to this runner's `metrics` (a function
        without `with_metrics` prints them)."""
        handler = load_handler(route)
        if self.hub is not None and hasattr(handler, "with_environment"):
            # As the template sets it per function: <MemberRoleName>-<family>.
            role = f"{self.hub.member_role_prefix}-{handler.family}"
            handler = handler.with_environment({"MEMBER_ROLE_NAME": role})
        if self.metrics is None or not hasattr(handler, "with_metrics"):
            return handler
        return handler.with_metrics(self.metrics)

    def start(self) -> None:
        for function in self.functions:
            poller = threading.Thread(
                target=self._poll,
                args=(function,),
                name=f"poll-{function.route.folder}",
                daemon=True,
            )
            poller.start()
            self.pollers.append(poller)

    def stop(self) -> None:
        self.stopping.set()
        for poller in self.pollers:
            poller.join(timeout=5)
        self.pool.shutdown(wait=True, cancel_futures=False)

    def idle(self) -> bool:
        """True when no invocation is running or waiting in a function's queue."""
        with self._lock:
            if self.in_flight:
                return False
        sqs = self.client("sqs")
        for function in self.functions:
            attributes = sqs.get_queue_attributes(
                QueueUrl=function.queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            if any(int(value) for value in attributes.values()):
                return False
        return True

    def _poll(self, function: LocalFunction) -> None:
        sqs = self.client("sqs")
        while not self.stopping.is_set():
            messages = take_messages(sqs, function.queue_url, self.stopping, self._count_in)
            for message in messages:
                event = json.loads(message["Body"])
                # Showing an event must never stop its delivery.
                with contextlib.suppress(Exception):
                    self.on_received(event)
                self.pool.submit(self._invoke, function, event)

    def _count_in(self, taken: int) -> None:
        with self._lock:
            self.in_flight += taken

    def _invoke(self, function: LocalFunction, event: dict[str, Any]) -> None:
        route = function.route
        invocation = Invocation(route.function_id, event)
        calling = _calling_function.set(function_name(route))
        try:
            for attempt in range(route.max_retry_attempts + 1):
                invocation.attempts = attempt + 1
                try:
                    name = function_name(route)
                    invocation.outcomes = invoke(route, event, function.handler, name)
                    invocation.error = None
                    break
                except Exception as error:  # Lambda catches everything too
                    invocation.error = f"{type(error).__name__}: {error}"
                    if attempt < route.max_retry_attempts:
                        time.sleep(RETRY_PAUSES_SECONDS[min(attempt, 2)])
            if invocation.error:
                self._dead_letter(function, invocation)
            self.on_invocation(invocation)
        except (BotoCoreError, ClientError) as error:
            # The dead-letter queue itself failed (the endpoint is gone): say so, never silently.
            invocation.error = f"{invocation.error}; and the dead-letter write failed: {error}"
            self.on_invocation(invocation)
        finally:
            _calling_function.reset(calling)
            with self._lock:
                self.in_flight -= 1

    def _dead_letter(self, function: LocalFunction, invocation: Invocation) -> None:
        self.client("sqs").send_message(
            QueueUrl=function.dead_letter_url,
            MessageBody=json.dumps(invocation.event),
            MessageAttributes={
                "ErrorMessage": {"DataType": "String", "StringValue": str(invocation.error)[:1000]},
                "Attempts": {"DataType": "Number", "StringValue": str(invocation.attempts)},
            },
        )
