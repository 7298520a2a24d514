"""The hub in an organization, and without one: template.yaml as CloudFormation processes it.

With OrganizationId empty (the default) the stack must be today's single-account stack: the
same resources with the same properties, nothing named after the organization parameters. With
an organization id it gains exactly the organization's resources: an event bus that admits the
organization, each family's rule on it, and the grants to assume the member roles. These tests
resolve the template's Conditions, Fn::If and AWS::NoValue for given parameter values, as
CloudFormation does before it creates anything, and judge the result.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from bucketwarden.catalogue import FAMILIES
from scripts.generate_template import camel
from tests.test_template import SWEEP_FUNCTION, as_list, function_id, role_id, template

ORGANIZATION = "o-a1b2c3d4e5"
NO_VALUE = {"!Ref": "AWS::NoValue"}
# Everything the hub gains in an organization, and nothing else.
ORGANIZATION_RESOURCES = {
    "HubEventBus",
    "HubEventBusPolicy",
    "SweepMemberAccessPolicy",
    "OrganizationalUnitsPolicy",
    # replication-destination: the organization's accounts may receive replicas.
    "DataManagementOrganizationAccountsPolicy",
    *(
        f"{camel(family)}{suffix}"
        for family in FAMILIES
        for suffix in ("HubBusRule", "HubBusPermission", "MemberAccessPolicy")
    ),
}
ORGANIZATION_OUTPUTS = {"HubEventBusName", "HubEventBusArn"}
# With SecurityHubExport only (default "false"): each function's grant to import its findings.
SECURITY_HUB_RESOURCES = {
    "SweepSecurityHubPolicy",
    *(f"{camel(family)}SecurityHubPolicy" for family in FAMILIES),
}
ORGANIZATION_NAMES = (
    "OrganizationId",
    "MemberRoleName",
    "AccountIds",
    "HubEventBus",
    "HubBusRule",
)


class Processed:
    """template.yaml as CloudFormation processes it for some parameter values: resources and
    outputs whose Condition is false left out, Fn::If resolved, AWS::NoValue removed."""

    def __init__(self, parameters: dict[str, str]) -> None:
        document = copy.deepcopy(template())
        defaults = {
            name: str(definition.get("Default", ""))
            for name, definition in document["Parameters"].items()
        }
        self.parameters = {**defaults, **parameters}
        self.conditions = {
            name: bool(self.evaluate(expression))
            for name, expression in document["Conditions"].items()
        }
        self.document = {
            key: self.resolve(
                {
                    name: {k: v for k, v in item.items() if k != "Condition"}
                    for name, item in value.items()
                    if self.conditions.get(item.get("Condition", ""), True)
                }
                if key in ("Resources", "Outputs")
                else value
            )
            for key, value in document.items()
        }

    def evaluate(self, expression: Any) -> Any:
        if not isinstance(expression, dict):
            return expression
        ((function, argument),) = expression.items()
        if function == "Condition":
            return self.conditions[argument]
        if function == "!Ref":
            return self.parameters.get(argument, expression)
        operands = [self.evaluate(operand) for operand in argument]
        functions = {
            "!Not": lambda: not operands[0],
            "!And": lambda: all(operands),
            "!Or": lambda: any(operands),
            "!Equals": lambda: operands[0] == operands[1],
        }
        return functions[function]()

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(item) for item in value]
            return [item for item in items if item != NO_VALUE]
        if not isinstance(value, dict):
            return value
        if list(value) == ["!If"]:
            condition, when_true, when_false = value["!If"]
            return self.resolve(when_true if self.conditions[condition] else when_false)
        items = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in items.items() if item != NO_VALUE}

    @property
    def resources(self) -> dict[str, Any]:
        return self.document["Resources"]

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id]["Properties"]


# Every other optional part on, so that every resource is compared.
EVERY_OPTION = {
    "NotificationEmail": "security@example.com",
    "ExemptionsParameterName": "/bucketwarden/exemptions",
    "AuditWriterArns": "arn:aws:iam::123456789012:role/operator",
    "TraceAwsCalls": "true",
}


def single_account(parameters: dict[str, str] = EVERY_OPTION) -> Processed:
    return Processed(parameters)


def organization() -> Processed:
    return Processed({**EVERY_OPTION, "OrganizationId": ORGANIZATION})


def granted_actions(stack: Processed) -> list[str]:
    """Every action an identity policy of the stack allows (roles' and policy resources')."""
    documents = []
    for resource in stack.resources.values():
        properties = resource["Properties"]
        if resource["Type"] == "AWS::IAM::Role":
            documents += [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(properties["PolicyDocument"])
    return [
        action
        for document in documents
        for statement in document["Statement"]
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    ]


# ---------------------------------------------------------------- single account: today's stack


def test_without_an_organization_the_stack_has_exactly_todays_resources() -> None:
    everything = set(template()["Resources"])
    assert everything >= ORGANIZATION_RESOURCES | SECURITY_HUB_RESOURCES
    optional = ORGANIZATION_RESOURCES | SECURITY_HUB_RESOURCES
    assert set(single_account().resources) == everything - optional
    assert not set(single_account().document["Outputs"]) & ORGANIZATION_OUTPUTS
    for logical_id in ORGANIZATION_RESOURCES:
        assert template()["Resources"][logical_id]["Condition"] == "IsOrganization", logical_id
    for output in ORGANIZATION_OUTPUTS:
        assert template()["Outputs"][output]["Condition"] == "IsOrganization", output
    for logical_id in SECURITY_HUB_RESOURCES:
        condition = template()["Resources"][logical_id]["Condition"]
        assert condition == "ExportsToSecurityHub", logical_id


@pytest.mark.parametrize("parameters", [{}, EVERY_OPTION], ids=["defaults", "every option"])
def test_without_an_organization_nothing_depends_on_the_organization_parameters(
    parameters: dict[str, str],
) -> None:
    stack = single_account(parameters)
    processed = json.dumps(
        {key: stack.document[key] for key in ("Globals", "Resources", "Outputs")}
    )
    for name in ORGANIZATION_NAMES:
        assert name not in processed, name
    assert "ORGANIZATION_ID" not in processed
    assert "MEMBER_ROLE_NAME" not in processed
    # No function may assume any role: only Lambda assumes theirs (their trust policies).
    assert not [action for action in granted_actions(stack) if action.startswith("sts:")]
    # Roles keep CloudFormation's generated names, as before: no CAPABILITY_NAMED_IAM needed.
    for logical_id, resource in stack.resources.items():
        if resource["Type"] == "AWS::IAM::Role":
            assert "RoleName" not in resource["Properties"], logical_id


def test_the_organization_parameters_change_nothing_else() -> None:
    """Every resource present in both stacks is the same but for the organization's additions:
    role names, MEMBER_ROLE_NAME (and the sweep's ACCOUNT_IDS), the dead-letter queues' admission
    of the hub bus rules."""
    alone, organized = single_account().resources, organization().resources
    for logical_id, resource in alone.items():
        other = copy.deepcopy(organized[logical_id])
        other["Properties"].pop("RoleName", None)
        variables = other["Properties"].get("Environment", {}).get("Variables", {})
        variables.pop("MEMBER_ROLE_NAME", None)
        variables.pop("ACCOUNT_IDS", None)
        document = other["Properties"].get("PolicyDocument", {})
        if "Statement" in document:
            document["Statement"] = [
                s for s in document["Statement"] if s.get("Sid") != "HubBusRuleDeadLetters"
            ]
        assert other == resource, logical_id
    # The functions' shared environment gains only the organization's id.
    alone_globals = single_account().document["Globals"]
    organized_globals = copy.deepcopy(organization().document["Globals"])
    organized_globals["Function"]["Environment"]["Variables"].pop("ORGANIZATION_ID")
    assert organized_globals == alone_globals
    for output, value in single_account().document["Outputs"].items():
        assert organization().document["Outputs"][output] == value, output


# ---------------------------------------------------------------- organization: the hub's additions


def test_in_an_organization_the_stack_gains_exactly_the_organization_resources() -> None:
    assert set(organization().resources) - set(single_account().resources) == (
        ORGANIZATION_RESOURCES
    )
    outputs = set(organization().document["Outputs"]) - set(single_account().document["Outputs"])
    assert outputs == ORGANIZATION_OUTPUTS
    assumed = [action for action in granted_actions(organization()) if action == "sts:AssumeRole"]
    assert len(assumed) == len(FAMILIES) + 1  # each family's function and the sweep
    environment = organization().document["Globals"]["Function"]["Environment"]["Variables"]
    assert environment["ORGANIZATION_ID"] == {"!Ref": "OrganizationId"}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("", True),
        (ORGANIZATION, True),
        ("o-abcdefghij0123456789", True),
        ("o-", False),
        ("o-short", False),
        ("o-ABCDEFGHIJ", False),
        ("r-a1b2", False),
        ("123456789012", False),
    ],
)
def test_organization_id_is_an_organization_or_empty(value: str, valid: bool) -> None:
    parameter = template()["Parameters"]["OrganizationId"]
    assert parameter["Default"] == ""
    assert bool(re.fullmatch(parameter["AllowedPattern"], value)) is valid


def test_only_the_organization_may_put_events_on_the_hub_bus() -> None:
    hub = organization()
    assert hub.properties("HubEventBus")["Name"] == {"!Sub": "${AWS::StackName}-hub"}
    policy = hub.properties("HubEventBusPolicy")
    assert policy["EventBusName"] == {"!Ref": "HubEventBus"}
    statement = policy["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "events:PutEvents"
    assert statement["Principal"] == "*"
    assert statement["Resource"] == {"!GetAtt": "HubEventBus.Arn"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:PrincipalOrgID": {"!Ref": "OrganizationId"}}
    }
    assert hub.document["Outputs"]["HubEventBusName"]["Value"] == {"!Ref": "HubEventBus"}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_rule_is_on_the_hub_bus_for_any_account(family: str) -> None:
    hub = organization()
    function = function_id(family)
    sam_event = hub.properties(function)["Events"]["S3ConfigChange"]["Properties"]
    rule = hub.properties(f"{camel(family)}HubBusRule")
    assert rule["EventBusName"] == {"!Ref": "HubEventBus"}
    assert rule["State"] == "ENABLED"
    # The same pattern but the account: the bus admits only the organization, and the engine
    # checks the envelope's account against the record's.
    expected = {k: v for k, v in sam_event["Pattern"].items() if k != "account"}
    assert rule["EventPattern"] == expected
    (target,) = rule["Targets"]
    assert target["Arn"] == {"!GetAtt": f"{function}.Arn"}
    assert target["RetryPolicy"] == sam_event["RetryPolicy"]
    assert target["DeadLetterConfig"] == sam_event["DeadLetterConfig"]

    permission = hub.properties(f"{camel(family)}HubBusPermission")
    assert permission == {
        "Action": "lambda:InvokeFunction",
        "FunctionName": {"!Ref": function},
        "Principal": "events.amazonaws.com",
        "SourceArn": {"!GetAtt": f"{camel(family)}HubBusRule.Arn"},
    }
    # The dead-letter queue admits the hub bus rule too (only in an organization).
    queue = target["DeadLetterConfig"]["Arn"]["!GetAtt"].split(".")[0]
    statements = hub.properties(f"{queue}Policy")["PolicyDocument"]["Statement"]
    (admits,) = [s for s in statements if s.get("Sid") == "HubBusRuleDeadLetters"]
    assert admits["Principal"] == {"Service": "events.amazonaws.com"}
    assert admits["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"!GetAtt": f"{camel(family)}HubBusRule.Arn"}}
    }


@pytest.mark.parametrize(
    ("function", "member_role"),
    [*((function_id(family), family) for family in FAMILIES), (SWEEP_FUNCTION, "sweep")],
)
def test_in_an_organization_each_function_role_is_named_and_told_its_member_role(
    function: str, member_role: str
) -> None:
    hub = organization()
    role = hub.properties(role_id(function))
    assert role["RoleName"] == {"!Sub": f"${{AWS::StackName}}-{member_role}"}
    variables = hub.properties(function)["Environment"]["Variables"]
    assert variables["MEMBER_ROLE_NAME"] == {"!Sub": f"${{MemberRoleName}}-{member_role}"}
    # The role is named like its function: one rule for the member templates' HubStackName.
    assert role["RoleName"] == hub.properties(function)["FunctionName"]


def test_in_an_organization_the_sweep_is_told_its_accounts_and_every_function_reads_ous() -> None:
    sweep = organization().properties("SweepFunction")["Environment"]["Variables"]
    assert sweep["ACCOUNT_IDS"] == {"!Ref": "AccountIds"}
    policy = organization().properties("OrganizationalUnitsPolicy")
    roles = {role["!Ref"] for role in policy["Roles"]}
    assert roles == {f"{camel(family)}Role" for family in FAMILIES} | {"SweepRole"}
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "organizations:ListParents"
    # In this organization only: its accounts and OUs.
    assert all("${OrganizationId}" in resource["!Sub"] for resource in statement["Resource"])
    rule = template()["Rules"]["AccountIdsNeedOrganization"]
    assert rule["RuleCondition"] == {"!Not": [{"!Equals": [{"!Ref": "AccountIds"}, ""]}]}
