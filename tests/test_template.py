"""template.yaml agrees with the catalogue: rules, modes, least-privilege roles, encryption, alarms.

These tests are what keep "adding a control" to one place: they fail until the template's rule
patterns, mode parameters, role actions and alarms match layers/bucketwarden/catalogue.py.
The sweep function is no family: it runs every control on a schedule, and is checked apart.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from bucketwarden import audit, metrics, website
from bucketwarden.catalogue import CONTROLS, FAMILIES, controls_of, trigger_events
from bucketwarden.controls.base import Control
from bucketwarden.directory_buckets import directory_action
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Mode, Settings, mode_variable
from tests.conftest import settings_variables

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
# What every function may do in S3 besides its controls' actions: read the exemption tags.
EXEMPTION_ACTIONS = {"s3:GetBucketTagging"}
SWEEP_FUNCTION = "SweepFunction"
# What the sweep may do besides every control's actions: list the buckets and access points,
# and find a bucket's region when the listing does not say it.
SWEEP_LISTING_ACTIONS = {"s3:ListAllMyBuckets", "s3:ListAccessPoints", "s3:GetBucketLocation"}


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader reading CloudFormation short-form tags (!Ref, !GetAtt...) as {tag: value}."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"!" + suffix: value}


TemplateLoader.add_multi_constructor("!", _tagged)


@cache
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=TemplateLoader)


def resources() -> dict[str, Any]:
    return template()["Resources"]


def properties(logical_id: str) -> dict[str, Any]:
    return resources()[logical_id]["Properties"]


def camel(name: str) -> str:
    """public-access / public_access → PublicAccess."""
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def function_id(family: str) -> str:
    return camel(FAMILIES[family]) + "Function"


# Every function: one per family, then the sweep.
FUNCTION_IDS = (*(function_id(family) for family in FAMILIES), SWEEP_FUNCTION)


def function_controls(function: str) -> tuple[Control, ...]:
    """The controls a function runs: its family's, or every control for the sweep."""
    if function == SWEEP_FUNCTION:
        return CONTROLS
    (family,) = [family for family in FAMILIES if function_id(family) == function]
    return controls_of(family)


def ref_target(value: Any, tag: str) -> str:
    """The logical id named by !Ref X or !GetAtt X.Attr."""
    assert isinstance(value, dict), f"expected {tag}, got {value!r}"
    assert tag in value, f"expected {tag}, got {value!r}"
    return value[tag].split(".")[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_id(function: str) -> str:
    return ref_target(properties(function)["Role"], "!GetAtt")


def role_statements(role: str) -> Iterator[dict[str, Any]]:
    """Every statement the role grants: inline policies and the template's managed policies."""
    role_properties = properties(role)
    for policy in role_properties.get("Policies", []):
        yield from unfold(policy["PolicyDocument"]["Statement"])
    for arn in role_properties.get("ManagedPolicyArns", []):
        managed = ref_target(arn, "!Ref")  # AWS managed policies would escape these checks
        yield from unfold(properties(managed)["PolicyDocument"]["Statement"])
    # Policies that attach themselves to the role (a conditional one, say).
    for policy_id in of_type("AWS::IAM::Policy"):
        policy = properties(policy_id)
        if {"Ref": role} in policy["Roles"] or {"!Ref": role} in policy["Roles"]:
            yield from unfold(policy["PolicyDocument"]["Statement"])


def allowed(role: str, prefix: str) -> dict[str, list[Any]]:
    """Allowed actions of one service, each with the resources it is allowed on."""
    grants: dict[str, list[Any]] = {}
    for statement in role_statements(role):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            if action.startswith(prefix + ":"):
                grants.setdefault(action, []).extend(as_list(statement["Resource"]))
    return grants


def function_actions(function: str) -> set[str]:
    controls = function_controls(function)
    actions = {a for c in controls for a in (*c.read_actions, *c.write_actions)}
    if any(c.checks_website for c in controls):
        actions.add(website.READ_ACTION)
    listing = SWEEP_LISTING_ACTIONS if function == SWEEP_FUNCTION else set()
    return actions | EXEMPTION_ACTIONS | listing


def environment() -> dict[str, Any]:
    return template()["Globals"]["Function"]["Environment"]["Variables"]


def queue_id(function: str) -> str:
    config = properties(function)["EventInvokeConfig"]
    return ref_target(config["DestinationConfig"]["OnFailure"]["Destination"], "!GetAtt")


def rule_event(family: str) -> tuple[str, dict[str, Any]]:
    events = properties(function_id(family))["Events"]
    assert len(events) == 1, f"{function_id(family)} must have exactly one event"
    name, event = next(iter(events.items()))
    return name, event


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in resources().items() if value["Type"] == kind}


# ---------------------------------------------------------------- functions and rules


def test_one_function_per_family_the_sweep_and_no_other() -> None:
    functions = of_type("AWS::Serverless::Function")
    assert set(functions) == set(FUNCTION_IDS)
    folders = {function_id(family): folder for family, folder in FAMILIES.items()}
    folders[SWEEP_FUNCTION] = "sweep"
    for function, folder in folders.items():
        assert properties(function)["CodeUri"] == f"functions/{folder}/"
        assert (ROOT / "functions" / folder / "app.py").is_file()
    function_globals = template()["Globals"]["Function"]
    assert function_globals["Handler"] == "app.lambda_handler"
    assert function_globals["Runtime"] == "python3.13"
    assert function_globals["Architectures"] == ["arm64"]


@pytest.mark.parametrize("family", FAMILIES)
def test_rule_pattern_matches_the_catalogue(family: str) -> None:
    _, event = rule_event(family)
    assert event["Type"] == "EventBridgeRule"
    pattern = event["Properties"]["Pattern"]
    # S3 Express One Zone's calls too, for a family with a control that judges directory buckets.
    directory = any(c.directory_buckets for c in controls_of(family))
    sources, event_sources = ["aws.s3"], ["s3.amazonaws.com"]
    if directory:
        sources, event_sources = (
            [*sources, "aws.s3express"],
            [*event_sources, "s3express.amazonaws.com"],
        )
    assert pattern["source"] == sources
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"]
    assert pattern["detail"]["eventSource"] == event_sources
    assert pattern["detail"]["eventName"] == list(trigger_events(family))
    # Only the stack's own account's events: another account's bus forwarding to this one
    # reaches no function (routing.py resolves this one intrinsic when it routes locally).
    assert pattern["account"] == [{"!Ref": "AWS::AccountId"}]
    # Otherwise literal YAML: the CLI routes events with these patterns.
    assert "!" not in json.dumps({k: v for k, v in pattern.items() if k != "account"})


@pytest.mark.parametrize("family", FAMILIES)
def test_undeliverable_events_reach_the_family_dead_letter_queue(family: str) -> None:
    name, event = rule_event(family)
    rule = event["Properties"]
    queue = queue_id(function_id(family))
    assert ref_target(rule["DeadLetterConfig"]["Arn"], "!GetAtt") == queue
    assert rule["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert properties(function_id(family))["EventInvokeConfig"]["MaximumRetryAttempts"] == 2

    statements = as_list(properties(queue + "Policy")["PolicyDocument"]["Statement"])
    # The hub bus rule's statement (organization only) is under !If: tests/test_organization_hub.py.
    (send,) = [s for s in statements if s.get("Effect") == "Allow"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    # SAM names the generated rule <FunctionId><EventName>; only that rule may write.
    source_arn = send["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert ref_target(source_arn, "!GetAtt") == function_id(family) + name


def sweep_rule() -> tuple[str, dict[str, Any]]:
    rules = {
        logical_id: rule
        for logical_id, rule in of_type("AWS::Events::Rule").items()
        if any(
            ref_target(target["Arn"], "!GetAtt") == SWEEP_FUNCTION
            for target in rule["Properties"]["Targets"]
        )
    }
    assert len(rules) == 1, f"one rule starts the sweep, not {sorted(rules)}"
    return next(iter(rules.items()))


def test_sweep_runs_on_the_schedule_parameter_or_not_at_all() -> None:
    parameter = template()["Parameters"]["SweepSchedule"]
    assert parameter["Default"] == "rate(1 day)"
    for accepted in ("", "rate(1 day)", "rate(12 hours)", "cron(0 3 * * ? *)"):
        assert re.fullmatch(parameter["AllowedPattern"], accepted), accepted
    for refused in ("daily", "rate 1 day", "at(2024-05-01T00:00:00)"):
        assert not re.fullmatch(parameter["AllowedPattern"], refused), refused
    # An empty schedule creates no rule (nor the permission it needs): the condition says so.
    condition = template()["Conditions"]["SweepScheduled"]
    assert condition == {"!Not": [{"!Equals": [{"!Ref": "SweepSchedule"}, ""]}]}

    rule_id, rule = sweep_rule()
    assert rule["Condition"] == "SweepScheduled"
    assert rule["Properties"]["ScheduleExpression"] == {"!Ref": "SweepSchedule"}
    assert "EventPattern" not in rule["Properties"]
    # The sweep reacts to no CloudTrail event: the schedule is its only trigger.
    assert "Events" not in properties(SWEEP_FUNCTION)

    (permission,) = [
        permission
        for permission in of_type("AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == {"!Ref": SWEEP_FUNCTION}
    ]
    assert permission["Condition"] == "SweepScheduled"
    assert permission["Properties"]["Principal"] == "events.amazonaws.com"
    assert ref_target(permission["Properties"]["FunctionName"], "!Ref") == SWEEP_FUNCTION
    assert ref_target(permission["Properties"]["SourceArn"], "!GetAtt") == rule_id


def test_undeliverable_sweeps_reach_the_sweep_dead_letter_queue() -> None:
    rule_id, rule = sweep_rule()
    (target,) = rule["Properties"]["Targets"]
    queue = queue_id(SWEEP_FUNCTION)
    assert ref_target(target["DeadLetterConfig"]["Arn"], "!GetAtt") == queue
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert properties(SWEEP_FUNCTION)["EventInvokeConfig"]["MaximumRetryAttempts"] == 2

    statements = as_list(properties(queue + "Policy")["PolicyDocument"]["Statement"])
    (conditional,) = [s for s in statements if "!If" in s]
    condition, send, otherwise = conditional["!If"]
    assert (condition, otherwise) == ("SweepScheduled", {"!Ref": "AWS::NoValue"})
    assert send["Principal"] == {"Service": "events.amazonaws.com"}
    assert send["Action"] == "sqs:SendMessage"
    assert ref_target(send["Condition"]["ArnEquals"]["aws:SourceArn"], "!GetAtt") == rule_id


def test_sweep_has_lambdas_longest_timeout_and_room_for_its_workers() -> None:
    sweep = properties(SWEEP_FUNCTION)
    assert sweep["Timeout"] == 900
    assert sweep["MemorySize"] == 512
    assert sweep["FunctionName"] == {"!Sub": "${AWS::StackName}-sweep"}


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.id)
def test_every_control_has_a_mode_parameter_reaching_the_functions(control: Control) -> None:
    parameter = camel(control.id) + "Mode"
    definition = template()["Parameters"][parameter]
    assert sorted(definition["AllowedValues"]) == sorted(mode.value for mode in Mode)
    # Controls added after a release default to notify: an upgrade changes no bucket.
    assert definition["Default"] == control.default_mode.value
    assert environment()[mode_variable(control.id)] == {"!Ref": parameter}


def test_no_mode_without_a_control() -> None:
    modes = {name for name in environment() if name.startswith("MODE_")}
    assert modes == {mode_variable(control.id) for control in CONTROLS}
    parameters = {name for name in template()["Parameters"] if name.endswith("Mode")}
    assert parameters == {camel(control.id) + "Mode" for control in CONTROLS}


def test_functions_receive_every_variable_the_engine_reads() -> None:
    # Dry run is for the CLI; a deployed function always acts. Lambda sets AWS_REGION and
    # AWS_LAMBDA_FUNCTION_NAME itself (reserved variables, which a template may not set).
    reserved = {"AWS_REGION", "AWS_LAMBDA_FUNCTION_NAME"}
    expected = set(settings_variables()) - {"BUCKETWARDEN_DRY_RUN", *reserved}
    # Each function's own variables (MEMBER_ROLE_NAME and ORGANIZATION_ID, in an organization)
    # join the global ones.
    for function in FUNCTION_IDS:
        own = properties(function).get("Environment", {}).get("Variables", {})
        assert expected <= set(environment()) | set(own), function
    assert "BUCKETWARDEN_DRY_RUN" not in environment()
    assert not reserved & set(environment())
    assert ref_target(environment()["AUDIT_TABLE"], "!Ref") == "AuditTable"
    assert ref_target(environment()["IDEMPOTENCY_TABLE"], "!Ref") == "IdempotencyTable"
    assert ref_target(environment()["NOTIFICATION_TOPIC_ARN"], "!Ref") == "NotificationTopic"


def test_service_roles_are_every_function_role() -> None:
    separator, arns = environment()["SERVICE_ROLE_ARNS"]["!Join"]
    assert separator == ","
    # The sweep's fixes are the service's own changes too: no event function fixes them again.
    assert {ref_target(arn, "!GetAtt") for arn in arns} == {role_id(f) for f in FUNCTION_IDS}


def test_service_functions_are_every_function_by_its_name() -> None:
    separator, names = environment()["SERVICE_FUNCTION_NAMES"]["!Join"]
    assert separator == ","
    # Spelled out as the functions' FunctionName (a !Ref would make each depend on all).
    assert names == [properties(f)["FunctionName"] for f in FUNCTION_IDS]


S3_WRITE = re.compile(r"^s3:(Put|Delete)", re.IGNORECASE)


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_every_s3_write_is_allowed_only_from_its_own_function(function: str) -> None:
    """A role passed to another function (iam:PassRole) may read, but changes nothing."""
    writes = [
        statement
        for statement in role_statements(role_id(function))
        if any(S3_WRITE.match(action) for action in as_list(statement["Action"]))
    ]
    # A family whose controls only report (data-management) may write nothing at all.
    assert bool(writes) is any(c.write_actions for c in function_controls(function))
    for statement in writes:
        assert statement["Condition"] == {
            "ArnEquals": {"lambda:SourceFunctionArn": own_arn(function)}
        }, statement["Sid"]


def test_parameters_for_exemption_and_encryption() -> None:
    parameters = template()["Parameters"]
    assert parameters["ExemptTagKey"]["Default"] == Settings().exempt_tag_key
    assert sorted(parameters["EncryptionBaseline"]["AllowedValues"]) == ["SSE-KMS", "SSE-S3"]
    assert parameters["NotificationEmail"]["Default"] == ""
    subscriptions = of_type("AWS::SNS::Subscription")
    assert [s["Condition"] for s in subscriptions.values()] == ["HasNotificationEmail"]


# ---------------------------------------------------------------- least privilege


BUCKETS = {"!Sub": "arn:${AWS::Partition}:s3:::*"}
ACCESS_POINTS = {"!Sub": "arn:${AWS::Partition}:s3:*:${AWS::AccountId}:accesspoint/*"}
# Actions without a resource type in IAM's service authorization reference: only "*" works.
UNSCOPED_ACTIONS = {
    "s3:GetAccountPublicAccessBlock",
    "s3:PutAccountPublicAccessBlock",
    "s3:GetAccessPoint",
    "s3:ListAllMyBuckets",
    "s3:ListAccessPoints",
    "s3:ListMultiRegionAccessPoints",
}
# Controls that read the audit history (object-lock-retention's recorded baseline).


def expected_resource(action: str, function: str) -> Any:
    if action in UNSCOPED_ACTIONS:
        return "*"
    scopes = {
        c.scope
        for c in function_controls(function)
        if action in (*c.read_actions, *c.write_actions)
    }
    return ACCESS_POINTS if scopes == {"access-point"} else BUCKETS


# Actions of other services than S3 that controls read (object-level-logging: the trails);
# on "*", since an organization trail belongs to the management account.
OTHER_SERVICES = ("cloudtrail",)


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_role_allows_exactly_its_controls_s3_actions(function: str) -> None:
    grants = allowed(role_id(function), "s3")
    for service in OTHER_SERVICES:
        for action, targets in allowed(role_id(function), service).items():
            assert targets == ["*"], (action, targets)
            grants[action] = []
    assert set(grants) == function_actions(function)
    for action, targets in grants.items():
        for target in targets:
            # Buckets (arn:...:s3:::*) or the account's access points: no object ARNs, and "*"
            # only where IAM accepts nothing else.
            assert target == expected_resource(action, function), (action, target)


DIRECTORY_BUCKETS = {"!Sub": "arn:${AWS::Partition}:s3express:*:${AWS::AccountId}:bucket/*"}


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_role_allows_exactly_its_directory_bucket_controls_s3express_actions(function: str) -> None:
    """The s3express actions of the controls that judge directory buckets, on the account's
    directory buckets only; the sweep also lists them ("*": no resource type in IAM)."""
    controls = [c for c in function_controls(function) if c.directory_buckets]
    expected = {directory_action(a) for c in controls for a in (*c.read_actions, *c.write_actions)}
    grants = allowed(role_id(function), "s3express")
    listing = grants.pop("s3express:ListAllMyDirectoryBuckets", None)
    assert listing == (["*"] if function == SWEEP_FUNCTION else None)
    assert set(grants) == expected
    assert all(targets == [DIRECTORY_BUCKETS] for targets in grants.values()), grants


def by_resource(role: str, prefix: str) -> dict[str, set[str]]:
    """Allowed actions of one service grouped by the template resource they are allowed on."""
    grouped: dict[str, set[str]] = {}
    for action, targets in allowed(role, prefix).items():
        for target in targets:
            if "!Sub" in target:  # ${Resource.Arn}/sub/path
                resource, _, path = target["!Sub"].removeprefix("${").partition("}")
                name = resource.split(".")[0] + path
            else:
                name = ref_target(target, "!Ref" if "!Ref" in target else "!GetAtt")
            grouped.setdefault(name, set()).add(action)
    return grouped


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_role_reaches_only_the_stack_resources(function: str) -> None:
    role = role_id(function)
    assert by_resource(role, "dynamodb") == {
        # Records written (ahead of a fix and after it) and read back by id on a retry.
        "AuditTable": {"dynamodb:PutItem", "dynamodb:GetItem"},
        # The flap breaker and object-lock-retention read a bucket's history.
        "AuditTable/index/bucket-time-index": {"dynamodb:Query"},
        "IdempotencyTable": {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
    }
    assert by_resource(role, "sns") == {"NotificationTopic": {"sns:Publish"}}
    assert by_resource(role, "kms") == FUNCTION_KEYS
    assert by_resource(role, "sqs") == {queue_id(function): {"sqs:SendMessage"}}
    # Only the sweep invokes a function: itself, to continue where it stopped.
    invokes = {"lambda:InvokeFunction": [own_arn(function)]} if function == SWEEP_FUNCTION else {}
    assert allowed(role, "lambda") == invokes


# The keys a function uses: the service key (topic, queues) and the audit records' HMAC key.
FUNCTION_KEYS = {
    "ServiceKey": {"kms:GenerateDataKey", "kms:Decrypt"},
    "AuditMacKey": {"kms:GenerateMac", "kms:VerifyMac"},
}


def own_arn(function: str) -> dict[str, str]:
    """The function's ARN spelled out from its FunctionName (!Sub "${AWS::StackName}-...")."""
    name = properties(function)["FunctionName"]["!Sub"]
    region = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}"
    return {"!Sub": f"{region}:function:{name}"}


def unfold(statements: Any) -> Iterator[dict[str, Any]]:
    """Every statement, with the one of a conditional statement (!If [condition, it, NoValue])."""
    for statement in as_list(statements):
        if "!If" in statement:
            _, *branches = statement["!If"]
            yield from (b for b in branches if b != {"!Ref": "AWS::NoValue"})
        else:
            yield statement


def _all_policy_statements() -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in resources().items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        for key in ("PolicyDocument", "KeyPolicy"):
            if key in props:
                documents.append(props[key])
        for document in documents:
            for statement in unfold(document["Statement"]):
                yield logical_id, statement


def _is_key_administration(statement: dict[str, Any]) -> bool:
    principal = statement.get("Principal", {})
    root = {"!Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    return isinstance(principal, dict) and principal.get("AWS") == root


def test_no_wildcard_actions_and_no_object_access_anywhere() -> None:
    for logical_id, statement in _all_policy_statements():
        actions = as_list(statement.get("Action", []))
        assert "s3:GetObject" not in actions, logical_id
        # Deny statements may be broad (deny all without TLS); the account's own key
        # administration is the one Allow that needs kms:*.
        if statement["Effect"] == "Allow" and not _is_key_administration(statement):
            assert not [a for a in actions if "*" in a], (logical_id, statement)


# ---------------------------------------------------------------- encryption, logs, alarms


def test_topic_and_queues_are_encrypted_with_the_service_key() -> None:
    key = properties("ServiceKey")
    assert key["EnableKeyRotation"] is True
    encrypted = {**of_type("AWS::SNS::Topic"), **of_type("AWS::SQS::Queue")}
    assert {queue_id(function) for function in FUNCTION_IDS} <= set(encrypted)
    for logical_id, resource in encrypted.items():
        key_id = resource["Properties"].get("KmsMasterKeyId")
        assert key_id == {"!GetAtt": "ServiceKey.Arn"}, logical_id


def test_topic_and_queues_refuse_insecure_transport() -> None:
    policies = {**of_type("AWS::SNS::TopicPolicy"), **of_type("AWS::SQS::QueuePolicy")}
    protected = set()
    for resource in policies.values():
        document = resource["Properties"]["PolicyDocument"]
        if any(
            s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
            for s in unfold(document["Statement"])
            if "Bool" in s.get("Condition", {})
        ):
            targets = resource["Properties"].get("Topics") or resource["Properties"]["Queues"]
            protected |= {ref_target(t, "!Ref") for t in targets}
    assert protected == set(of_type("AWS::SNS::Topic")) | set(of_type("AWS::SQS::Queue"))


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_every_function_logs_to_its_own_group_with_retention(function: str) -> None:
    function_properties = properties(function)
    group = ref_target(function_properties["LoggingConfig"]["LogGroup"], "!Ref")
    group_properties = properties(group)
    assert group_properties["RetentionInDays"] == {"!Ref": "LogRetentionDays"}
    assert group_properties["LogGroupName"] == {
        "!Sub": "/aws/lambda/" + function_properties["FunctionName"]["!Sub"]
    }
    assert allowed(role_id(function), "logs") == {
        "logs:CreateLogStream": [{"!GetAtt": group + ".Arn"}],
        "logs:PutLogEvents": [{"!GetAtt": group + ".Arn"}],
    }


def _alarms(namespace: str, metric: str) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in of_type("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"]["Namespace"] == namespace
        and alarm["Properties"]["MetricName"] == metric
    ]


def _notifies(alarm: dict[str, Any]) -> bool:
    return alarm["AlarmActions"] == [{"!Ref": "NotificationTopic"}] and alarm["Threshold"] == 0


def test_every_dead_letter_queue_has_a_depth_alarm() -> None:
    alarms = _alarms("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    watched = {
        ref_target(dimension["Value"], "!GetAtt")
        for alarm in alarms
        if _notifies(alarm)
        for dimension in alarm["Dimensions"]
        if dimension["Name"] == "QueueName"
    }
    assert watched == set(of_type("AWS::SQS::Queue"))


def test_a_failed_sweep_invocation_raises_an_alarm() -> None:
    watched = [
        alarm
        for alarm in _alarms("AWS/Lambda", "Errors")
        if alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"!Ref": SWEEP_FUNCTION}}]
    ]
    assert len(watched) == 1
    assert _notifies(watched[0])
    assert watched[0]["Statistic"] == "Sum"


def _emitted_dimensions(control_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """The dimensions of the RemediationFailures metric as the engine really prints it (EMF)."""
    capsys.readouterr()
    metrics.Metrics().emit("RemediationFailures", control_id)
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    document = json.loads(line)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == environment()["POWERTOOLS_METRICS_NAMESPACE"]
    (names,) = directive["Dimensions"]
    return {name: document[name] for name in names}


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.id)
def test_every_control_has_a_failure_alarm_on_the_emitted_metric(
    control: Control, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", environment()["POWERTOOLS_SERVICE_NAME"])
    monkeypatch.setenv(
        "POWERTOOLS_METRICS_NAMESPACE", environment()["POWERTOOLS_METRICS_NAMESPACE"]
    )
    emitted = _emitted_dimensions(control.id, capsys)
    namespace = environment()["POWERTOOLS_METRICS_NAMESPACE"]
    alarms = [
        alarm
        for alarm in _alarms(namespace, "RemediationFailures")
        if {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == emitted
    ]
    assert len(alarms) == 1, f"one RemediationFailures alarm on {emitted}"
    assert _notifies(alarms[0])


# ---------------------------------------------------------------- tables and layer


def test_audit_table_keys_match_the_audit_records() -> None:
    table = properties("AuditTable")
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    outcome = Outcome(bucket="b", control="versioning", status=Status.REMEDIATED, reason="r")
    item = audit.to_item(outcome, "id-1")
    (key,) = table["KeySchema"]
    assert key["KeyType"] == "HASH"
    assert set(item[key["AttributeName"]]) == {types[key["AttributeName"]]}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == audit.BUCKET_INDEX
    for index_key in index["KeySchema"]:
        assert set(item[index_key["AttributeName"]]) == {types[index_key["AttributeName"]]}


def test_idempotency_table_matches_the_powertools_persistence_layer() -> None:
    defaults = inspect.signature(DynamoDBPersistenceLayer.__init__).parameters
    table = properties("IdempotencyTable")
    assert table["KeySchema"] == [
        {"AttributeName": defaults["key_attr"].default, "KeyType": "HASH"}
    ]
    assert table["TimeToLiveSpecification"] == {
        "AttributeName": defaults["expiry_attr"].default,
        "Enabled": True,
    }


FUNCTION_ROLES = [{"!GetAtt": f"{role_id(function)}.Arn"} for function in FUNCTION_IDS]
# Whoever is neither a function role nor an operator of AuditWriterArns.
OTHERS = {
    "ArnNotEquals": {"aws:PrincipalArn": FUNCTION_ROLES},
    "ArnNotLike": {
        "!If": [
            "HasAuditWriters",
            {"aws:PrincipalArn": {"!Split": [",", {"!Ref": "AuditWriterArns"}]}},
            {"!Ref": "AWS::NoValue"},
        ]
    },
}
ITEM_WRITES = {
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
}


def test_only_the_stack_writes_audit_records_and_nobody_deletes_the_table() -> None:
    table = properties("AuditTable")
    assert table["DeletionProtectionEnabled"] is True
    (deny,) = table["ResourcePolicy"]["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Resource"]) == ("Deny", "*", "*")
    assert set(deny["Action"]) == ITEM_WRITES
    assert deny["Condition"] == OTHERS


def test_only_the_stack_may_tag_or_verify_audit_records() -> None:
    key = properties("AuditMacKey")
    assert (key["KeySpec"], key["KeyUsage"]) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    assert resources()["AuditMacKey"]["DeletionPolicy"] == "Retain"  # as the table
    statements = {s["Sid"]: s for s in key["KeyPolicy"]["Statement"]}
    assert _is_key_administration(statements["AccountAdministersKey"])
    deny = statements["OnlyTheStackTagsAuditRecords"]
    assert (deny["Effect"], deny["Principal"]) == ("Deny", "*")
    assert set(deny["Action"]) == {"kms:GenerateMac", "kms:VerifyMac"}
    assert deny["Condition"] == OTHERS
    assert environment()["AUDIT_MAC_KEY"] == {"!GetAtt": "AuditMacKey.Arn"}


def references(value: Any) -> set[str]:
    """Every logical id that `value` names with !Ref, !GetAtt or ${...} in !Sub."""
    if isinstance(value, list):
        return {name for item in value for name in references(item)}
    if not isinstance(value, dict):
        return set()
    found = {name for item in value.values() for name in references(item)}
    if "!Ref" in value:
        found.add(value["!Ref"])
    if "!GetAtt" in value:
        found.add(value["!GetAtt"].split(".")[0])
    if "!Sub" in value:
        text = value["!Sub"] if isinstance(value["!Sub"], str) else value["!Sub"][0]
        found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
    return found


def test_roles_do_not_depend_on_what_names_them() -> None:
    """The table's and the key's policies name the roles: a role that depended on them (through
    a managed policy naming the table, say) would make a cycle CloudFormation refuses."""
    for function in FUNCTION_IDS:
        role = role_id(function)
        reached = references(resources()[role])
        for managed in list(reached):
            if managed in resources():
                reached |= references(resources()[managed])
        assert not reached & {"AuditTable", "AuditMacKey", "AuditRecordsPolicy"}, role


@pytest.mark.parametrize("table", ["AuditTable", "IdempotencyTable"])
def test_tables_are_encrypted_recoverable_and_on_demand(table: str) -> None:
    table_properties = properties(table)
    assert table_properties["BillingMode"] == "PAY_PER_REQUEST"
    assert table_properties["SSESpecification"]["SSEEnabled"] is True
    assert table_properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]


def test_layer_builds_the_engine_for_the_runtime() -> None:
    (layer_id,) = of_type("AWS::Serverless::LayerVersion")
    layer = resources()[layer_id]
    assert layer["Properties"]["ContentUri"] == "layers/"
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
    # The layer installs the runtime package's declared dependencies; no second list.
    assert "pyproject.toml" in (ROOT / "layers" / "Makefile").read_text()
    assert not (ROOT / "layers" / "requirements.txt").exists()
    # sam build runs the Makefile's build-<LayerId> target: wheels for the runtime's version and
    # architecture, bytecode Python trusts on a read-only /opt (scripts/check-template looks).
    makefile = (ROOT / "layers" / "Makefile").read_text()
    assert f"\nbuild-{layer_id}:\n" in makefile
    assert "--platform manylinux2014_aarch64" in makefile
    assert "--python-version 3.13" in makefile
    assert "--invalidation-mode unchecked-hash" in makefile
    assert (ROOT / "layers" / "bucketwarden" / "handler.py").is_file()
    assert template()["Globals"]["Function"]["Layers"] == [{"!Ref": layer_id}]


# ---------------------------------------------------------------- the service's own security
# scripts/security-check runs checkov and parliament on the template (docs/security.md); these
# tests hold the rules that need no tool: no wildcard action, no object data, no plain secret.

IDENTITY_POLICY_TYPES = ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::IAM::RolePolicy")
# A literal action: service prefix, colon, a name without * or ? (IAM's wildcards).
LITERAL_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9]+")
# What would read object data (or list the keys of a bucket): no function needs any of these.
# IAM compares actions case-insensitively, and a wildcard grant reads whatever it matches.
OBJECT_DATA_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAcl",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectTagging",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectTorrent",
    "s3:GetObjectVersionTorrent",
    "s3:GetObjectVersionForReplication",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3-object-lambda:GetObject",
    "s3express:CreateSession",
)
# S3 Express One Zone's object data is reached only through a session (CreateSession, above);
# its bucket policy and encryption calls, which the directory bucket controls use, read none.
OBJECT_DATA_PREFIXES = ("s3:getobject", "s3:listbucket", "s3-object-lambda:", "s3express:create")


def reads_object_data(action: str) -> bool:
    granted = action.lower()
    return granted.startswith(OBJECT_DATA_PREFIXES) or any(
        fnmatch.fnmatchcase(candidate.lower(), granted) for candidate in OBJECT_DATA_ACTIONS
    )


def identity_policies() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every role's statements (inline and the template's managed policies), and every
    policy resource's."""
    for logical_id in of_type("AWS::IAM::Role"):
        for statement in role_statements(logical_id):
            yield from ((logical_id, s) for s in unfold(statement))
    for kind in IDENTITY_POLICY_TYPES:
        for logical_id, resource in of_type(kind).items():
            for statement in unfold(resource["Properties"]["PolicyDocument"]["Statement"]):
                yield logical_id, statement


def test_every_permission_is_written_in_the_template() -> None:
    # SAM writes policies of its own for a function's Policies (policy templates included) and
    # Connectors, and a role for a DeploymentPreference; with none of them and an explicit role,
    # the template's statements are all a function can do.
    function_globals = template()["Globals"]["Function"]
    assert not {"Policies", "Connectors", "PermissionsBoundary"} & set(function_globals)
    assert not of_type("AWS::Serverless::Connector")
    for function in of_type("AWS::Serverless::Function"):
        assert not {"Policies", "Connectors", "DeploymentPreference"} & set(properties(function))
        assert role_id(function) in of_type("AWS::IAM::Role"), function
    for role in of_type("AWS::IAM::Role"):
        assert "PermissionsBoundary" not in properties(role)


def test_no_identity_policy_has_a_wildcard_action() -> None:
    statements = list(identity_policies())
    assert len({logical_id for logical_id, _ in statements}) >= len(FUNCTION_IDS)
    for logical_id, statement in statements:
        assert "NotAction" not in statement, (logical_id, statement)
        for action in as_list(statement["Action"]):
            assert LITERAL_ACTION.fullmatch(action), (logical_id, action)


@pytest.mark.parametrize(
    ("action", "reads"),
    [
        ("s3:GetObject", True),
        ("S3:getObjectVersion", True),
        ("s3:*", True),
        ("s3:Get*", True),
        ("s3:List*", True),
        ("*", True),
        ("s3:GetObjectAcl", True),
        ("s3:ListBucketVersions", True),
        ("s3:GetBucketPolicy", False),
        ("s3:ListAllMyBuckets", False),
        ("s3:GetBucketTagging", False),
        ("s3express:CreateSession", True),
        ("s3express:*", True),
        ("s3express:Create*", True),
        ("s3express:GetBucketPolicy", False),
        ("s3express:PutEncryptionConfiguration", False),
    ],
)
def test_object_data_rule_catches_wildcards_and_case(action: str, reads: bool) -> None:
    assert reads_object_data(action) is reads


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_no_function_role_can_read_object_data(function: str) -> None:
    granted = [
        action
        for statement in role_statements(role_id(function))
        for branch in unfold(statement)
        if branch["Effect"] == "Allow"
        for action in as_list(branch["Action"])
    ]
    assert granted
    assert [action for action in granted if reads_object_data(action)] == []
    # Object data encrypted with KMS stays closed too: the only key a function may use is its own.
    # (The audit record key is an HMAC key: it encrypts nothing.)
    assert by_resource(role_id(function), "kms") == FUNCTION_KEYS


SECRET_NAME = re.compile(
    r"webhook|secret|token|password|passphrase|credential|api_?key|private_?key", re.IGNORECASE
)
# {{resolve:secretsmanager:...}} or {{resolve:ssm-secure:...}}: CloudFormation fetches the value
# at deploy time, and neither the template nor the stack's parameters ever hold it.
DYNAMIC_REFERENCE = re.compile(
    r"\{\{resolve:(?:secretsmanager|ssm-secure):(?:[^}$]|\$\{[^}]*\})*\}\}"
)
WEBHOOK_URL = re.compile(r"hooks\.slack\.com|/webhookb2/|discord(?:app)?\.com/api/webhooks")


def parameter_uses(node: Any, name: str) -> Iterator[str]:
    """Where a template part uses parameter `name`: "ref", or the text of a !Sub that names it."""
    if isinstance(node, dict):
        if node.get("!Ref") == name:
            yield "ref"
        text = node.get("!Sub")
        text = text[0] if isinstance(text, list) else text
        if isinstance(text, str) and "${" + name + "}" in text:
            yield text
        for value in node.values():
            yield from parameter_uses(value, name)
    elif isinstance(node, list):
        for value in node:
            yield from parameter_uses(value, name)


def names_a_secret(parameter: dict[str, Any], name: str) -> bool:
    """An ARN of a Secrets Manager secret that the code reads itself: a pointer, not a secret."""
    return name.endswith("Arn") and "secretsmanager" in parameter.get("AllowedPattern", "")


def secret_parameter_problems(document: dict[str, Any]) -> list[str]:
    problems = []
    uses_from = {key: value for key, value in document.items() if key != "Parameters"}
    for name, parameter in document.get("Parameters", {}).items():
        if not SECRET_NAME.search(name) or names_a_secret(parameter, name):
            continue
        if parameter.get("NoEcho") is not True:
            problems.append(f"{name}: no NoEcho")
        if parameter.get("Default"):
            problems.append(f"{name}: a default value")
        for use in parameter_uses(uses_from, name):
            outside = DYNAMIC_REFERENCE.sub("", use)
            if use == "ref" or "${" + name + "}" in outside:
                problems.append(f"{name}: used outside a dynamic reference ({use})")
    text = yaml.safe_dump(document)
    problems += [f"webhook URL in the template: {url}" for url in WEBHOOK_URL.findall(text)]
    return problems


def test_no_secret_is_a_plain_parameter() -> None:
    assert secret_parameter_problems(template()) == []


def _with(parameter: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """The template with one more parameter and an environment variable set from it."""
    document = copy.deepcopy(template())
    document["Parameters"][name] = parameter
    document["Globals"]["Function"]["Environment"]["Variables"]["NOTIFY_TARGET"] = value
    return document


def test_secret_rule_refuses_plain_and_echoed_secrets_and_accepts_references() -> None:
    plain = _with({"Type": "String"}, "SlackWebhookUrl", {"!Ref": "SlackWebhookUrl"})
    assert "SlackWebhookUrl: no NoEcho" in secret_parameter_problems(plain)
    hidden = _with({"Type": "String", "NoEcho": True}, "ApiToken", {"!Ref": "ApiToken"})
    assert secret_parameter_problems(hidden) == ["ApiToken: used outside a dynamic reference (ref)"]
    resolved = _with(
        {"Type": "String", "NoEcho": True},
        "WebhookSecretName",
        {"!Sub": "{{resolve:secretsmanager:${WebhookSecretName}:SecretString:url}}"},
    )
    assert secret_parameter_problems(resolved) == []
    pointer = _with(
        {"Type": "String", "AllowedPattern": "^arn:aws[a-z-]*:secretsmanager:.+$"},
        "WebhookSecretArn",
        {"!Ref": "WebhookSecretArn"},
    )
    assert secret_parameter_problems(pointer) == []
    literal = _with({"Type": "String"}, "Channel", "https://hooks.slack.com/services/T/B/x")
    assert secret_parameter_problems(literal) == ["webhook URL in the template: hooks.slack.com"]


def test_function_logs_are_encrypted_with_the_service_key() -> None:
    prefix = "/aws/lambda/${AWS::StackName}-"
    groups = of_type("AWS::Logs::LogGroup")
    assert len(groups) == len(FUNCTION_IDS)
    for logical_id, group in groups.items():
        assert group["Properties"]["KmsKeyId"] == {"!GetAtt": "ServiceKey.Arn"}, logical_id
        assert group["Properties"]["LogGroupName"]["!Sub"].startswith(prefix), logical_id
    # CloudWatch Logs may use the key for these log groups only.
    (logs,) = [
        statement
        for statement in properties("ServiceKey")["KeyPolicy"]["Statement"]
        if statement["Principal"].get("Service") == {"!Sub": "logs.${AWS::Region}.amazonaws.com"}
    ]
    group_arns = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
    assert logs["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": {"!Sub": group_arns + prefix + "*"}}
    }


def checkov_skips() -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in resources().items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            yield logical_id, skip


def test_every_checkov_skip_gives_its_reason_and_is_documented() -> None:
    documented = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    skips = list(checkov_skips())
    assert skips
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(skip.get("comment", "").split()) >= 10, (logical_id, skip)
        assert skip["id"] in documented, f"{skip['id']} is not explained in docs/security.md"


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_role_reads_only_the_exemption_allowlist_parameter(function: str) -> None:
    parameter = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
    assert allowed(role_id(function), "ssm") == {
        "ssm:GetParameter": [{"!Sub": parameter + "${ExemptionsParameterName}"}]
    }
    assert environment()["EXEMPTIONS_PARAMETER"] == {"!Ref": "ExemptionsParameterName"}
    # Only a stack with an allowlist grants reading it.
    assert resources()["ExemptionAllowlistPolicy"]["Condition"] == "HasExemptionsParameter"
    # Names start with "/", so the ARN needs no separator; none at all is allowed too.
    pattern = template()["Parameters"]["ExemptionsParameterName"]["AllowedPattern"]
    assert re.fullmatch(pattern, "/bucketwarden/exemptions")
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "bucketwarden-exemptions")
