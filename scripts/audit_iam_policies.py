"""Audit the IAM policies of a translated template with parliament (and its community auditors).

Usage: SECURITY_PYTHON scripts/audit_iam_policies.py TRANSLATED_JSON... CONFIG_YAML

Each TRANSLATED_JSON is a template as aws-sam-translator translates it
(scripts/translate_template.py), so the policies are the ones CloudFormation creates: the hub's,
and the member templates'. Each role's inline policies, each managed policy and each queue, topic
or bucket policy is one document. CloudFormation intrinsics (Ref,
Fn::GetAtt, Fn::Sub, Fn::Join) become example ARNs of the right shape, so parliament can match
actions to resource types. CONFIG_YAML is parliament's own configuration: the suppressions, each
with its reason. Exit status 1 when a finding is left (or a suppression matches nothing), 2 when
a policy cannot be read.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# parliament still locates its data with pkg_resources (setuptools < 81), which warns on import.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    import parliament

PSEUDO_PARAMETERS = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "bucketwarden",
    "AWS::URLSuffix": "amazonaws.com",
}
# Example values of parameters whose default is empty but which policies name (under a condition
# that the parameter is set): a value the parameter's AllowedPattern accepts.
EXAMPLE_PARAMETERS = {
    "ExemptionsParameterName": "/bucketwarden/exemptions",
    "OrganizationId": "o-a1b2c3d4e5",
    "HubAccountId": "210987654321",
    "HubRegion": "eu-west-1",
}
NO_VALUE = "AWS::NoValue"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
SEVERITIES = ("MUTE", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")
MINIMUM_SEVERITY = "LOW"


class UnsupportedIntrinsic(Exception):
    """A policy uses an intrinsic (or names a resource type) this audit cannot spell out."""


@dataclass(frozen=True)
class PolicyDocument:
    location: str  # <LogicalId>/<PolicyName>: what parliament's ignore_locations match as filepath
    document: dict[str, Any]


class Renderer:
    """Turns CloudFormation intrinsics into example values of the shape AWS would give."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.resources: dict[str, Any] = template.get("Resources", {})
        self.parameters: dict[str, Any] = template.get("Parameters", {})

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for element in value for item in self._render_in_list(element)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            return self.intrinsic(*next(iter(value.items())))
        return {key: self.render(item) for key, item in value.items()}

    def intrinsic(self, function: str, argument: Any) -> str:
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(name, attribute)
        if function == "Fn::Sub":
            return self.sub(argument)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(part) for part in self.render(parts))
        raise UnsupportedIntrinsic(f"{function} here: {json.dumps(argument)}")

    def _render_in_list(self, element: Any) -> list[Any]:
        """A list keeps both branches of Fn::If (the broader grant is the one audited)."""
        if isinstance(element, dict) and list(element) == ["Fn::If"]:
            _, *branches = element["Fn::If"]
            return [
                item
                for branch in branches
                if branch != {"Ref": NO_VALUE}
                for item in self._render_in_list(branch)
            ]
        return [self.render(element)]

    def ref(self, name: str) -> str:
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        if name in self.parameters:
            default = self.parameters[name].get("Default")
            if default in (None, ""):
                if name not in EXAMPLE_PARAMETERS:
                    raise UnsupportedIntrinsic(
                        f"Ref {name}: no default; add an example value to EXAMPLE_PARAMETERS"
                    )
                return EXAMPLE_PARAMETERS[name]
            return str(default)
        resource_type = self._type(name)
        if resource_type == "AWS::SNS::Topic":
            return self._arn("sns", name)
        if resource_type == "AWS::IAM::ManagedPolicy":
            return self._arn("iam", f"policy/{name}", region="")
        raise UnsupportedIntrinsic(f"Ref {name} ({resource_type})")

    def get_att(self, name: str, attribute: str) -> str:
        resource_type = self._type(name)
        if attribute != "Arn":
            raise UnsupportedIntrinsic(f"Fn::GetAtt {name}.{attribute}")
        properties = self.resources[name].get("Properties", {})
        arns = {
            "AWS::DynamoDB::Table": lambda: self._arn("dynamodb", f"table/{name}"),
            "AWS::SQS::Queue": lambda: self._arn("sqs", name),
            "AWS::SNS::Topic": lambda: self._arn("sns", name),
            "AWS::KMS::Key": lambda: self._arn("kms", f"key/{KEY_ID}"),
            "AWS::Events::Rule": lambda: self._arn("events", f"rule/{name}"),
            "AWS::IAM::Role": lambda: self._arn("iam", f"role/{name}", region=""),
            "AWS::Lambda::Function": lambda: self._arn(
                "lambda", "function:" + str(self.render(properties.get("FunctionName", name)))
            ),
            "AWS::Logs::LogGroup": lambda: self._arn(
                "logs", "log-group:" + str(self.render(properties.get("LogGroupName", name))) + ":*"
            ),
        }
        if resource_type not in arns:
            raise UnsupportedIntrinsic(f"Fn::GetAtt {name}.Arn ({resource_type})")
        return arns[resource_type]()

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is written as ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.render(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _type(self, name: str) -> str:
        if name not in self.resources:
            raise UnsupportedIntrinsic(f"{name} is no resource of the template")
        return self.resources[name]["Type"]

    @staticmethod
    def _arn(service: str, resource: str, region: str = PSEUDO_PARAMETERS["AWS::Region"]) -> str:
        account = PSEUDO_PARAMETERS["AWS::AccountId"]
        return f"arn:{PSEUDO_PARAMETERS['AWS::Partition']}:{service}:{region}:{account}:{resource}"


# Resource policies parliament reads like identity policies (they name their Resource). Key
# policies ("Resource": "*" means the key itself) and trust policies (no Resource) it misreads.
RESOURCE_POLICIES = ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy")


def policy_documents(template: dict[str, Any]) -> Iterator[PolicyDocument]:
    """Every identity policy (role inline policies, managed and inline policy resources) and
    every queue, topic and bucket policy, rendered."""
    renderer = Renderer(template)
    for name, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"):
            for policy in properties.get("Policies", []):
                location = f"{name}/{policy['PolicyName']}"
                yield PolicyDocument(location, renderer.render(policy["PolicyDocument"]))
        elif kind in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::IAM::RolePolicy"):
            location = f"{name}/{properties.get('PolicyName', 'managed')}"
            yield PolicyDocument(location, renderer.render(properties["PolicyDocument"]))
        elif kind in RESOURCE_POLICIES:
            location = f"{name}/resource-policy"
            yield PolicyDocument(location, renderer.render(properties["PolicyDocument"]))


def _located(finding: Any, key: str) -> Any:
    if key == "detail":
        return getattr(finding, "detail", "")
    return finding.location.get(key, "")


def suppression(finding: Any) -> tuple[str, int] | None:
    """The config entry (finding type, index) that suppresses the finding, if one does.

    parliament's ignore_locations semantics: every key of an entry must match (regular
    expressions, whole value, any case), one of a key's values is enough. parliament 1.6.4's own
    matcher (cli.is_finding_filtered) drops values read from YAML (its make_list only accepts
    jsoncfg nodes), so the matching is done here. Besides the location's keys, `detail` matches
    the finding's detail (RESOURCE_STAR: the actions it names), so a suppression can name them.
    """
    for index, entry in enumerate(finding.ignore_locations or []):
        if all(
            any(
                re.fullmatch(str(pattern), str(_located(finding, key)), re.IGNORECASE)
                for pattern in (patterns if isinstance(patterns, list) else [patterns])
            )
            for key, patterns in entry.items()
        ):
            return finding.issue, index
    return None


def directory_bucket_mismatch(finding: Any, document: dict[str, Any]) -> bool:
    """A RESOURCE_MISMATCH that parliament 1.6.4 cannot but report: its S3 bucket special case
    (is_arn_match) refuses any resource with a "/", and every directory bucket's ARN has one
    (arn:...:s3express:REGION:ACCOUNT:bucket/NAME). Such a finding is checked here instead: it
    is dropped only when every action it names is an s3express one, and every resource of every
    statement granting one of them matches the ARN format parliament asks for."""
    if finding.issue != "RESOURCE_MISMATCH" or not isinstance(finding.detail, list):
        return False
    formats = {str(d.get("action")): str(d.get("required_format")) for d in finding.detail}
    if not formats or not all(action.startswith("s3express:") for action in formats):
        return False
    for statement in _statements(document):
        actions = statement.get("Action")
        granted = set(actions if isinstance(actions, list) else [actions]) & set(formats)
        resources = statement.get("Resource")
        for resource in resources if isinstance(resources, list) else [resources]:
            if any(not fnmatch.fnmatchcase(str(resource), formats[a]) for a in granted):
                return False
    return True


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document.get("Statement") or []
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, dict)]


def audit(policy: PolicyDocument) -> tuple[list[Any], list[tuple[str, int]]]:
    """The findings left for one document, and the config entries that suppressed the others."""
    analysed = parliament.analyze_policy_string(
        json.dumps(policy.document), filepath=policy.location, include_community_auditors=True
    )
    kept, used = [], []
    for raw in analysed.findings:
        # parliament shares one default location dict between findings, so the first policy's
        # filepath sticks to the later ones: set each finding's own.
        raw.location = {**raw.location, "filepath": policy.location}
        finding = parliament.enhance_finding(raw)
        if SEVERITIES.index(finding.severity) < SEVERITIES.index(MINIMUM_SEVERITY):
            continue
        if directory_bucket_mismatch(finding, policy.document):
            continue
        entry = suppression(finding)
        if entry:
            used.append(entry)
        else:
            kept.append(finding)
    return kept, used


def configured_suppressions() -> set[tuple[str, int]]:
    return {
        (issue, index)
        for issue, settings in parliament.config.items()
        for index, _ in enumerate(settings.get("ignore_locations") or [])
    }


def load_configuration(path: str) -> None:
    """The community auditors' settings, then ours (suppressions), as parliament's CLI does."""
    community = parliament.pkg_resources.resource_filename(
        "parliament", "community_auditors/config_override.yaml"
    )
    parliament.override_config(community)
    parliament.override_config(path)


def read_documents(paths: list[str]) -> list[PolicyDocument]:
    documents = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            documents += policy_documents(json.load(handle))
    return documents


def main(arguments: list[str]) -> int:
    if len(arguments) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    *translated, configuration = arguments
    load_configuration(configuration)
    try:
        documents = read_documents(translated)
    except UnsupportedIntrinsic as error:
        print(f"cannot spell out a policy for parliament: {error}", file=sys.stderr)
        return 2
    if not documents:
        print("no IAM policy found in the translated template", file=sys.stderr)
        return 2
    findings = 0
    used: list[tuple[str, int]] = []
    for policy in documents:
        kept, suppressed = audit(policy)
        used += suppressed
        findings += len(kept)
        note = f" ({len(suppressed)} findings suppressed by the config)" if suppressed else ""
        print(f"{'FAIL' if kept else 'ok  '} {policy.location}{note}")
        for finding in kept:
            print(f"     {finding.severity} {finding.issue}: {finding.title}")
            print(f"       {finding.detail} {json.dumps(finding.location, default=str)}")
    # A suppression that no longer matches anything would hide the next finding of its kind.
    for issue, index in sorted(configured_suppressions() - set(used)):
        findings += 1
        print(f"FAIL {issue} ignore_locations[{index}] in {configuration} suppresses nothing")
    print(
        f"parliament {parliament.__version__}: {len(documents)} policies, "
        f"{findings} findings, {len(used)} suppressed by the config"
    )
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
