"""Route events with the EventBridge rules of template.yaml, to the handlers the template names.

The CLI and the local mode read the template rather than a copy of it, so what is replayed
locally is routed exactly as the deployed rules route it.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

RULE_EVENT_TYPES = frozenset({"EventBridgeRule", "CloudWatchEvent"})
TEMPLATE_NAME = "template.yaml"


def find_template(start: Path | None = None) -> Path:
    """The BucketWarden template that local mode and replay route with: the first template.yaml
    beside a functions/ folder in the working directory or above it (the checkout one works in),
    else the one of the checkout this package was installed from. A path that does not exist is
    returned as is, and reading it says so."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / TEMPLATE_NAME).is_file() and (folder / "functions").is_dir():
            return folder / TEMPLATE_NAME
    return Path(__file__).resolve().parents[2] / TEMPLATE_NAME


DEFAULT_TEMPLATE = find_template()


class TemplateError(ValueError):
    """template.yaml is missing or not shaped as the routing expects."""


class _CloudFormationLoader(yaml.SafeLoader):
    """Accepts CloudFormation's short-form intrinsics (!Ref, !Sub, ...) as plain mappings."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = DEFAULT_TEMPLATE) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise TemplateError(
            f"cannot read template {path}: {error.strerror} (run from a BucketWarden checkout, "
            "where template.yaml and functions/ are)"
        ) from error
    document = yaml.load(text, Loader=_CloudFormationLoader)
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} has no Resources section")
    return document


@dataclass(frozen=True)
class Route:
    """One EventBridge rule of the template and the function it targets."""

    function_id: str
    rule_name: str
    pattern: dict[str, Any]
    code_dir: Path
    handler: str  # module.function, as in the template
    # Lambda's retries of a failed asynchronous invocation (EventInvokeConfig), then the DLQ.
    max_retry_attempts: int = 2

    @property
    def folder(self) -> str:
        return self.code_dir.name


ACCOUNT_REF = {"Ref": "AWS::AccountId"}


def _for_account(pattern: dict[str, Any], account_id: str | None) -> dict[str, Any]:
    """The pattern as deployed in `account_id`'s stack: `!Ref AWS::AccountId` is that account.

    Without an account (the CLI outside a stack) the rule's account filter is left out: the
    handler still ignores a record that names another account than the one it knows.
    """
    if pattern.get("account") != [ACCOUNT_REF]:
        return pattern
    if account_id is None:
        return {key: value for key, value in pattern.items() if key != "account"}
    return {**pattern, "account": [account_id]}


def routes(template_path: Path = DEFAULT_TEMPLATE, account_id: str | None = None) -> list[Route]:
    """The template's rules and their functions, with the patterns deployed in `account_id`."""
    template = load_template(template_path)
    found = []
    for function_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        properties = resource.get("Properties") or {}
        code_dir = (template_path.parent / str(properties.get("CodeUri", ""))).resolve()
        for rule_name, event in (properties.get("Events") or {}).items():
            if event.get("Type") in RULE_EVENT_TYPES:
                pattern = (event.get("Properties") or {}).get("Pattern") or {}
                pattern = _for_account(pattern, account_id)
                handler = str(properties.get("Handler", "app.lambda_handler"))
                retries = (properties.get("EventInvokeConfig") or {}).get("MaximumRetryAttempts", 2)
                found.append(
                    Route(function_id, rule_name, pattern, code_dir, handler, int(retries))
                )
    if not found:
        raise TemplateError(f"{template_path} has no function with an EventBridge rule")
    return found


HUB_BUS_REF = {"Ref": "HubEventBus"}


def hub_bus_routes(template_path: Path = DEFAULT_TEMPLATE) -> list[Route]:
    """The rules of the hub's event bus (organization mode): the member accounts' calls that
    their forwarders send, and the function each rule targets (`!GetAtt <Function>.Arn`)."""
    template = load_template(template_path)
    resources = template["Resources"]
    by_function = {route.function_id: route for route in routes(template_path)}
    found = []
    for rule_name, resource in resources.items():
        properties = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::Events::Rule" or (
            properties.get("EventBusName") != HUB_BUS_REF
        ):
            continue
        for target in properties.get("Targets") or []:
            function_id = _target_function(target)
            if function_id in by_function:
                route = by_function[function_id]
                pattern = properties.get("EventPattern") or {}
                found.append(replace(route, rule_name=rule_name, pattern=pattern))
    return found


def _target_function(target: dict[str, Any]) -> str | None:
    """The function a rule's target names with `!GetAtt <Function>.Arn`, if it does."""
    arn = target.get("Arn")
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:
        name = arn["Fn::GetAtt"]
        parts = name.split(".") if isinstance(name, str) else list(name)
        if len(parts) == 2 and parts[1] == "Arn":
            return str(parts[0])
    return None


@cache
def _matcher(pattern_json: str) -> Any:
    # moto's implementation of EventBridge content filtering, the one the local mode runs too.
    from moto.events.models import EventPattern

    return EventPattern.load(pattern_json)


def matches(route: Route, event: dict[str, Any]) -> bool:
    return bool(_matcher(json.dumps(route.pattern, sort_keys=True)).matches_event(event))


def matching_routes(
    event: dict[str, Any], template_path: Path = DEFAULT_TEMPLATE, account_id: str | None = None
) -> list[Route]:
    return [route for route in routes(template_path, account_id) if matches(route, event)]


def load_handler(route: Route) -> Any:
    """Import the function's handler from its CodeUri, as the Lambda runtime would."""
    module_name, _, function_name = route.handler.rpartition(".")
    path = route.code_dir / f"{module_name.replace('.', '/')}.py"
    module = _import_file(f"bucketwarden_function_{route.folder}", path)
    try:
        return getattr(module, function_name)
    except AttributeError as error:
        raise TemplateError(f"{path} defines no {function_name}") from error


def _import_file(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise TemplateError(f"cannot import handler module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
