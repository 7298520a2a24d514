"""The member account templates (member/) agree with the hub and the catalogue.

member/roles.yaml gives each hub function a role in every member account with exactly the S3
actions of the hub's own role for it, trusted only by that hub role; member/forwarder.yaml sends
every S3 call any hub rule matches to the hub's bus. Both are written by
scripts/generate_member_templates.py (`make template`); these tests keep them in step, and check
them against template.yaml as tests/test_template.py checks the hub against the catalogue.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.events.models import EventPattern

from bucketwarden.catalogue import CONTROLS, FAMILIES, trigger_events
from scripts.generate_member_templates import (
    COMMAND,
    FORWARDER,
    MEMBER,
    ROLES,
    MemberTemplatesOutOfStep,
    check,
    main,
    write,
)
from scripts.generate_template import camel
from tests.test_template import (
    OTHER_SERVICES,
    ROOT,
    SWEEP_FUNCTION,
    TemplateLoader,
    as_list,
    function_id,
    role_id,
    role_statements,
    unfold,
)
from tests.test_template import (
    properties as hub_properties,
)
from tests.test_template import (
    template as hub_template,
)

HUB_ACCOUNT = "210987654321"
MEMBER_ACCOUNT = "123456789012"
# The hub function each member role serves: one per family, and the sweep.
MEMBER_ROLES = {**{family: function_id(family) for family in FAMILIES}, "sweep": SWEEP_FUNCTION}


@cache
def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=TemplateLoader)


def roles() -> dict[str, Any]:
    return load(ROLES)["Resources"]


def forwarder() -> dict[str, Any]:
    return load(FORWARDER)["Resources"]


def member_role(name: str) -> dict[str, Any]:
    return roles()[f"{camel(name)}MemberRole"]["Properties"]


def member_statements(name: str) -> Iterator[dict[str, Any]]:
    for policy in member_role(name)["Policies"]:
        yield from unfold(policy["PolicyDocument"]["Statement"])


# Other services' actions the controls read with (object-level-logging: the trails).
OTHER_SERVICE_READS = {
    a for c in CONTROLS for a in c.read_actions if a.split(":")[0] in OTHER_SERVICES
}


def s3_grants(statements: Iterator[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) of every S3 action a set of statements allows (and of the other
    services whose configuration controls read, as the trails)."""
    return {
        (action, json.dumps(resource, sort_keys=True))
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if action.startswith(("s3:", "s3express:")) or action.split(":")[0] in OTHER_SERVICES
        for resource in as_list(statement["Resource"])
    }


def hub_role_name(function: str) -> Any:
    """The name the hub gives the function's role in an organization (the !If's first branch)."""
    condition, named, unnamed = hub_properties(role_id(function))["RoleName"]["!If"]
    assert (condition, unnamed) == ("IsOrganization", {"!Ref": "AWS::NoValue"})
    return named


# ---------------------------------------------------------------- generated from the catalogue


def test_member_templates_are_what_the_generator_writes() -> None:
    try:
        check()
    except MemberTemplatesOutOfStep as error:
        pytest.fail(str(error))


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """The member templates, copied where a test may change them."""
    for path in (ROLES, FORWARDER):
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_an_edited_member_template_is_caught_and_written_back(copies: Path) -> None:
    roles_copy = copies / ROLES.name
    original = roles_copy.read_text(encoding="utf-8")
    roles_copy.write_text(original.replace("s3:GetBucketVersioning", "s3:*"), encoding="utf-8")

    with pytest.raises(MemberTemplatesOutOfStep, match=rf"roles\.yaml .*run `{COMMAND}`"):
        check(copies)
    assert write(copies) == [roles_copy]
    assert roles_copy.read_text(encoding="utf-8") == original
    assert write(copies) == []


def test_a_missing_member_template_is_caught_and_written(copies: Path) -> None:
    (copies / FORWARDER.name).unlink()

    with pytest.raises(MemberTemplatesOutOfStep, match=r"forwarder\.yaml"):
        check(copies)
    assert write(copies) == [copies / FORWARDER.name]
    check(copies)


def test_command_line_checks_writes_and_refuses_unknown_arguments(
    copies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check"], copies) == 0
    (copies / FORWARDER.name).write_text("Resources: {}\n", encoding="utf-8")

    assert main(["--check"], copies) == 1
    assert f"run `{COMMAND}`" in capsys.readouterr().err
    assert main([], copies) == 0
    assert "rewritten: forwarder.yaml" in capsys.readouterr().out
    assert main(["--check"], copies) == 0
    assert main(["--write"], copies) == 2
    assert "Usage" in capsys.readouterr().err


def test_member_templates_are_plain_cloudformation() -> None:
    """Service-managed StackSets cannot run a transform (macro): none, and no SAM type."""
    for path in (ROLES, FORWARDER):
        document = load(path)
        assert "Transform" not in document, path.name
        assert document["AWSTemplateFormatVersion"] == "2010-09-09"
        kinds = {resource["Type"] for resource in document["Resources"].values()}
        assert not [kind for kind in kinds if kind.startswith("AWS::Serverless::")], path.name
        assert path.parent == MEMBER


# ---------------------------------------------------------------- member roles


def test_one_member_role_per_family_and_one_for_the_sweep() -> None:
    assert set(roles()) == {f"{camel(name)}MemberRole" for name in MEMBER_ROLES}
    for name in MEMBER_ROLES:
        assert member_role(name)["RoleName"] == {"!Sub": f"${{MemberRoleName}}-{name}"}
        assert member_role(name)["MaxSessionDuration"] == 3600
        assert load(ROLES)["Outputs"][f"{camel(name)}MemberRoleArn"] == {
            "Value": {"!GetAtt": f"{camel(name)}MemberRole.Arn"}
        }


@pytest.mark.parametrize("name", MEMBER_ROLES)
def test_member_role_allows_exactly_the_hub_roles_s3_actions(name: str) -> None:
    hub_role = role_id(MEMBER_ROLES[name])
    assert s3_grants(member_statements(name)) == s3_grants(role_statements(hub_role))


# With SecurityHubExport only: findings of the member's own account (its default product).
SECURITY_HUB_GRANTS = {
    "securityhub:BatchImportFindings": "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:"
    "product/${AWS::AccountId}/default",
    "securityhub:GetFindings": "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:hub/default",
    "securityhub:BatchUpdateFindings": (
        "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}:hub/default"
    ),
}


def security_hub_statements(name: str) -> list[dict[str, Any]]:
    """The role's statements that exist only with SecurityHubExport (!If on its condition)."""
    found = []
    for policy in member_role(name)["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "!If" in statement and statement["!If"][0] == "ExportsToSecurityHub":
                assert statement["!If"][2] == {"!Ref": "AWS::NoValue"}
                found.append(statement["!If"][1])
    return found


@pytest.mark.parametrize("name", MEMBER_ROLES)
def test_member_role_allows_nothing_but_s3_configuration(name: str) -> None:
    """Logs, queues, tables, keys, topics and STS stay the hub's: its own role uses them. The
    findings of the account are the one exception, with SecurityHubExport only."""
    conditional = security_hub_statements(name)
    for statement in member_statements(name):
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in as_list(statement["Action"]):
            if statement in conditional:
                assert statement["Resource"] == {"!Sub": SECURITY_HUB_GRANTS[action]}
                continue
            if action.split(":")[0] in OTHER_SERVICES:
                assert action in OTHER_SERVICE_READS, (name, action)  # reads of a control
                continue
            assert re.fullmatch(r"s3(express)?:[A-Za-z]+", action), (name, action)
            assert not action.startswith(("s3:GetObject", "s3:ListBucket")), (name, action)
            assert action != "s3express:CreateSession", (name, action)  # object data
    granted = {action for statement in conditional for action in as_list(statement["Action"])}
    assert granted == set(SECURITY_HUB_GRANTS)


# Roles of the hub account that people run `scan --organization` with: only with
# OperatorRoleArns, and only principals of the hub account.
OPERATOR_TRUST = {
    "!If": [
        "HasOperators",
        {
            "Sid": "HubOperatorRoles",
            "Effect": "Allow",
            "Principal": {"AWS": {"!Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}},
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnEquals": {"aws:PrincipalArn": {"!Ref": "OperatorRoleArns"}},
                # A person's session never looks like a hub function's (the engine's own).
                "StringNotLike": {"sts:RoleSessionName": {"!Sub": "${HubStackName}-*"}},
            },
        },
        {"!Ref": "AWS::NoValue"},
    ]
}


@pytest.mark.parametrize("name", MEMBER_ROLES)
def test_member_role_trusts_only_the_hub_role_of_the_same_function(name: str) -> None:
    trust, *others = member_role(name)["AssumeRolePolicyDocument"]["Statement"]
    # The sweep's role may also admit the hub's operator roles (see below); no other may.
    assert others == ([OPERATOR_TRUST] if name == "sweep" else [])
    assert trust["Effect"] == "Allow"
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {
        "AWS": {"!Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}
    }
    role_arn = f"arn:${{AWS::Partition}}:iam::${{HubAccountId}}:role/${{HubStackName}}-{name}"
    assert trust["Condition"] == {"ArnEquals": {"aws:PrincipalArn": {"!Sub": role_arn}}}
    # The name the hub gives that role in an organization, with HubStackName its stack's name.
    assert hub_role_name(MEMBER_ROLES[name]) == {"!Sub": f"${{AWS::StackName}}-{name}"}


@pytest.mark.parametrize("name", MEMBER_ROLES)
def test_the_hub_role_assumes_the_member_role_of_its_own_function_only(name: str) -> None:
    function = MEMBER_ROLES[name]
    policy_id = f"{camel(name)}MemberAccessPolicy"
    policy = hub_template()["Resources"][policy_id]
    assert policy["Condition"] == "IsOrganization"
    assert policy["Properties"]["Roles"] == [{"!Ref": role_id(function)}]
    (assume,) = [
        statement
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sts:AssumeRole" in as_list(statement["Action"])
    ]
    assert as_list(assume["Action"]) == ["sts:AssumeRole"]
    member = f"arn:${{AWS::Partition}}:iam::*:role/${{MemberRoleName}}-{name}"
    assert assume["Resource"] == {"!Sub": member}
    own_function = (
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}"
        f":function:{hub_properties(function)['FunctionName']['!Sub']}"
    )
    assert assume["Condition"] == {
        "ArnEquals": {"lambda:SourceFunctionArn": {"!Sub": own_function}},
        "StringEquals": {"aws:ResourceOrgID": {"!Ref": "OrganizationId"}},
    }
    # The function is told the role's full name, the same one.
    variables = hub_properties(function)["Environment"]["Variables"]
    assert variables["MEMBER_ROLE_NAME"] == {
        "!If": [
            "IsOrganization",
            {"!Sub": f"${{MemberRoleName}}-{name}"},
            {"!Ref": "AWS::NoValue"},
        ]
    }


def test_only_the_sweep_and_replication_destination_list_the_organization() -> None:
    lists = {
        logical_id
        for logical_id, resource in hub_template()["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in unfold(resource["Properties"]["PolicyDocument"]["Statement"])
        if "organizations:ListAccounts" in as_list(statement["Action"])
    }
    # The sweep covers the organization's accounts; replication-destination allows replicas
    # to them (the data-management function).
    assert lists == {"SweepMemberAccessPolicy", "DataManagementOrganizationAccountsPolicy"}


def test_parameters_agree_between_hub_and_members() -> None:
    hub = hub_template()["Parameters"]
    members = load(ROLES)["Parameters"]
    assert members["MemberRoleName"]["Default"] == hub["MemberRoleName"]["Default"]
    assert members["MemberRoleName"]["AllowedPattern"] == hub["MemberRoleName"]["AllowedPattern"]
    # The defaults name the stack `sam deploy` makes (samconfig.toml) and its bus.
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    stack = samconfig["default"]["global"]["parameters"]["stack_name"]
    assert members["HubStackName"]["Default"] == stack
    bus = hub_template()["Resources"]["HubEventBus"]["Properties"]["Name"]["!Sub"]
    forwarder_bus = load(FORWARDER)["Parameters"]["HubEventBusName"]["Default"]
    assert bus.replace("${AWS::StackName}", stack) == forwarder_bus


@pytest.mark.parametrize(
    ("path", "parameter", "accepted", "refused"),
    [
        (ROLES, "HubAccountId", [HUB_ACCOUNT], ["", "12345", "1234567890123", "o-a1b2c3d4e5"]),
        (FORWARDER, "HubAccountId", [HUB_ACCOUNT], ["", "abcdefghijkl"]),
        (ROLES, "HubStackName", ["bucketwarden", "bw-hub-2"], ["", "2bw", "bw_hub", "b" * 51]),
        (ROLES, "MemberRoleName", ["bucketwarden-member", "a.b@c"], ["", "a b", "r" * 51]),
        (FORWARDER, "HubRegion", ["us-east-1", "eu-central-2", "us-gov-west-1"], ["", "east"]),
        (FORWARDER, "HubEventBusName", ["bucketwarden-hub"], ["", "a/b", "b" * 257]),
    ],
)
def test_member_parameters_accept_only_their_values(
    path: Path, parameter: str, accepted: list[str], refused: list[str]
) -> None:
    pattern = load(path)["Parameters"][parameter]["AllowedPattern"]
    for value in accepted:
        assert re.fullmatch(pattern, value), value
    for value in refused:
        assert not re.fullmatch(pattern, value), value


# ---------------------------------------------------------------- forwarder


def hub_patterns() -> dict[str, dict[str, Any]]:
    """Every family's rule pattern on the hub's bus (the member accounts' calls)."""
    return {
        family: hub_template()["Resources"][f"{camel(family)}HubBusRule"]["Properties"][
            "EventPattern"
        ]
        for family in FAMILIES
    }


def member_call(event_name: str, region: str = "eu-west-1") -> dict[str, Any]:
    """A member account's S3 call as EventBridge delivers it (built by hand)."""
    return {
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.s3",
        "account": MEMBER_ACCOUNT,
        "time": "2026-01-01T00:00:00Z",
        "region": region,
        "resources": [],
        "detail": {
            "eventSource": "s3.amazonaws.com",
            "eventName": event_name,
            "awsRegion": region,
            "recipientAccountId": MEMBER_ACCOUNT,
            "requestParameters": {"bucketName": "b"},
        },
    }


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    # moto's implementation of EventBridge content filtering, as the CLI's routing uses.
    return bool(EventPattern.load(json.dumps(pattern)).matches_event(event))


def rule() -> dict[str, Any]:
    return forwarder()["ForwardingRule"]["Properties"]


def forwarded_names() -> list[str]:
    return list(dict.fromkeys(name for family in FAMILIES for name in trigger_events(family)))


@pytest.mark.parametrize("family", FAMILIES)
def test_every_call_a_hub_rule_matches_is_forwarded(family: str) -> None:
    """Each of the family's calls in a member account passes the forwarder's rule and then the
    family's rule on the hub's bus; the same event names as the hub's own rule for its account."""
    sam_pattern = hub_properties(function_id(family))["Events"]["S3ConfigChange"]["Properties"]
    sam_names = sam_pattern["Pattern"]["detail"]["eventName"]
    assert (
        hub_patterns()[family]["detail"]["eventName"] == sam_names == list(trigger_events(family))
    )
    for event_name in trigger_events(family):
        call = member_call(event_name)
        assert matches(rule()["EventPattern"], call), event_name
        assert matches(hub_patterns()[family], call), event_name


def test_forwarder_sends_only_s3_calls_that_some_hub_rule_matches() -> None:
    pattern = rule()["EventPattern"]
    hub_names = {name for p in hub_patterns().values() for name in p["detail"]["eventName"]}
    assert set(pattern["detail"]["eventName"]) == hub_names
    assert len(pattern["detail"]["eventName"]) == len(hub_names)
    # Every source a hub rule matches (S3 Express One Zone's for the families that judge
    # directory buckets), and nothing else.
    for key, where in (("source", lambda p: p), ("eventSource", lambda p: p["detail"])):
        hub_values = {value for p in hub_patterns().values() for value in where(p)[key]}
        assert set(where(pattern)[key]) == hub_values, key
    for hub_pattern in hub_patterns().values():
        assert {k: v for k, v in pattern.items() if k not in ("detail", "source")} == {
            k: v for k, v in hub_pattern.items() if k not in ("detail", "source")
        }
    assert pattern["source"] == ["aws.s3", "aws.s3express"]
    for ignored in ("GetBucketPolicy", "PutObject", "DeleteBucket"):
        assert not matches(pattern, member_call(ignored)), ignored
    assert not matches(pattern, {**member_call("PutBucketPolicy"), "source": "aws.ec2"})


HUB_BUS = "arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/${HubEventBusName}"


def test_forwarder_targets_the_hub_bus_with_a_role_that_may_put_there_only() -> None:
    assert rule()["EventBusName"] == "default"
    assert rule()["State"] == "ENABLED"
    (target,) = rule()["Targets"]
    assert target["Arn"] == {"!Sub": HUB_BUS}
    assert target["RoleArn"] == {"!GetAtt": "ForwarderRole.Arn"}
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400

    role = forwarder()["ForwarderRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"!Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    (put,) = policy["PolicyDocument"]["Statement"]
    assert (put["Effect"], put["Action"], put["Resource"]) == (
        "Allow",
        "events:PutEvents",
        {"!Sub": HUB_BUS},
    )


def evaluate(condition: Any, values: dict[str, str]) -> Any:
    """A Conditions expression of the forwarder, with parameters and pseudo parameters."""
    if isinstance(condition, dict):
        ((function, argument),) = condition.items()
        if function == "!Ref":
            return values[argument]
        operands = [evaluate(item, values) for item in argument]
        results = {
            "!Not": lambda: not operands[0],
            "!And": lambda: all(operands),
            "!Equals": lambda: operands[0] == operands[1],
        }
        return results[function]()
    return condition


@pytest.mark.parametrize(
    ("account", "region", "forwards"),
    [
        (MEMBER_ACCOUNT, "eu-west-1", True),
        (MEMBER_ACCOUNT, "us-east-1", True),
        (HUB_ACCOUNT, "us-east-1", True),
        # The hub's own rules watch its own default bus there.
        (HUB_ACCOUNT, "eu-west-1", False),
    ],
)
def test_forwarder_forwards_everywhere_but_the_hubs_own_region(
    account: str, region: str, forwards: bool
) -> None:
    values = {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "HubAccountId": HUB_ACCOUNT,
        "HubRegion": "eu-west-1",
    }
    condition = load(FORWARDER)["Conditions"]["ForwardsToHub"]
    assert evaluate(condition, values) is forwards
    assert {resource["Condition"] for resource in forwarder().values()} == {"ForwardsToHub"}


# ---------------------------------------------------------------- deployed (moto's CloudFormation)

HUB_REGION = "us-east-1"
MEMBER_REGION = "eu-west-1"


def hub_session() -> boto3.Session:
    """The hub account, through moto's cross-account credentials."""
    credentials = boto3.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{HUB_ACCOUNT}:role/setup", RoleSessionName="setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=HUB_REGION,
    )


def deploy(cloudformation: Any, path: Path, **parameters: str) -> None:
    cloudformation.create_stack(
        StackName=f"bucketwarden-{path.stem}",
        TemplateBody=path.read_text(encoding="utf-8"),
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    (stack,) = cloudformation.describe_stacks(StackName=f"bucketwarden-{path.stem}")["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"


def forwarder_parameters() -> dict[str, str]:
    return {"HubAccountId": HUB_ACCOUNT, "HubRegion": HUB_REGION}


def hub_family_queues(hub: boto3.Session) -> dict[str, str]:
    """The hub's bus with each family's rule (the pattern of template.yaml) sending to a queue."""
    events, sqs = hub.client("events"), hub.client("sqs")
    bus = load(FORWARDER)["Parameters"]["HubEventBusName"]["Default"]
    events.create_event_bus(Name=bus)
    queues = {}
    for family, pattern in hub_patterns().items():
        queues[family] = sqs.create_queue(QueueName=family)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queues[family], AttributeNames=["QueueArn"])
        events.put_rule(Name=family, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(
            Rule=family,
            EventBusName=bus,
            Targets=[{"Id": family, "Arn": arn["Attributes"]["QueueArn"]}],
        )
    return queues


def received(sqs: Any, queue: str) -> list[str]:
    names = []
    while messages := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        names += [json.loads(m["Body"])["detail"]["eventName"] for m in messages]
        for message in messages:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return names


@pytest.mark.usefixtures("aws")
def test_a_member_accounts_calls_reach_each_familys_rule_on_the_hub_bus() -> None:
    hub = hub_session()
    queues = hub_family_queues(hub)
    deploy(
        boto3.client("cloudformation", region_name=MEMBER_REGION),
        FORWARDER,
        **forwarder_parameters(),
    )

    member_events = boto3.client("events", region_name=MEMBER_REGION)
    # Every call any family handles, and two that none does.
    for name in [*forwarded_names(), "GetBucketPolicy", "PutObject"]:
        call = member_call(name, MEMBER_REGION)
        entry = {"Source": call["source"], "DetailType": call["detail-type"]}
        member_events.put_events(Entries=[{**entry, "Detail": json.dumps(call["detail"])}])

    sqs = hub.client("sqs")
    for family, queue in queues.items():
        assert sorted(received(sqs, queue)) == sorted(trigger_events(family)), family


@pytest.mark.usefixtures("aws")
def test_the_forwarder_creates_nothing_in_the_hubs_own_region() -> None:
    hub = hub_session()
    deploy(hub.client("cloudformation"), FORWARDER, **forwarder_parameters())
    assert hub.client("events").list_rules()["Rules"] == []
    assert hub.client("iam").list_roles()["Roles"] == []
    # The hub account's other regions forward as any member account's do.
    deploy(
        hub.client("cloudformation", region_name=MEMBER_REGION), FORWARDER, **forwarder_parameters()
    )
    (rule,) = hub.client("events", region_name=MEMBER_REGION).list_rules()["Rules"]
    assert (
        json.loads(rule["EventPattern"])
        == forwarder()["ForwardingRule"]["Properties"]["EventPattern"]
    )


@pytest.mark.usefixtures("aws")
def test_the_member_roles_deploy_with_their_names_trust_and_actions() -> None:
    cloudformation = boto3.client("cloudformation", region_name=HUB_REGION)
    deploy(cloudformation, ROLES, HubAccountId=HUB_ACCOUNT)

    iam = boto3.client("iam")
    for name, function in MEMBER_ROLES.items():
        role = iam.get_role(RoleName=f"bucketwarden-member-{name}")["Role"]
        # moto keeps AWS::NoValue as a null statement where CloudFormation drops it.
        (trust,) = [s for s in role["AssumeRolePolicyDocument"]["Statement"] if s is not None]
        assert trust["Principal"] == {"AWS": f"arn:aws:iam::{HUB_ACCOUNT}:root"}
        hub_role = f"arn:aws:iam::{HUB_ACCOUNT}:role/bucketwarden-{name}"
        assert trust["Condition"] == {"ArnEquals": {"aws:PrincipalArn": hub_role}}
        (policy,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
        document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy)
        # moto returns a role policy made by CloudFormation as the text of a Python dict.
        statements = ast.literal_eval(str(document["PolicyDocument"]))["Statement"]
        # SecurityHubExport is off by default: its statements are AWS::NoValue (None here).
        actions = {
            action
            for statement in statements
            if statement is not None
            for action in as_list(statement["Action"])
        }
        assert actions == {action for action, _ in s3_grants(role_statements(role_id(function)))}


@pytest.mark.usefixtures("aws")
def test_operator_roles_of_the_hub_may_assume_the_sweep_role_when_named() -> None:
    cloudformation = boto3.client("cloudformation", region_name=HUB_REGION)
    operators = f"arn:aws:iam::{HUB_ACCOUNT}:role/secops,arn:aws:iam::{HUB_ACCOUNT}:role/audit"
    deploy(cloudformation, ROLES, HubAccountId=HUB_ACCOUNT, OperatorRoleArns=operators)

    role = boto3.client("iam").get_role(RoleName="bucketwarden-member-sweep")["Role"]
    hub_function, people = role["AssumeRolePolicyDocument"]["Statement"]
    assert hub_function["Sid"] == "HubFunctionRoleOnly"
    assert people["Principal"] == {"AWS": f"arn:aws:iam::{HUB_ACCOUNT}:root"}
    assert people["Condition"] == {
        "ArnEquals": {"aws:PrincipalArn": operators.split(",")},
        "StringNotLike": {"sts:RoleSessionName": "bucketwarden-*"},
    }
    # The family roles stay the hub functions' alone.
    family = boto3.client("iam").get_role(RoleName="bucketwarden-member-versioning")["Role"]
    versioning_function = f"arn:aws:iam::{HUB_ACCOUNT}:role/bucketwarden-versioning"
    assert [s for s in family["AssumeRolePolicyDocument"]["Statement"] if s] == [
        {**hub_function, "Condition": {"ArnEquals": {"aws:PrincipalArn": versioning_function}}}
    ]
