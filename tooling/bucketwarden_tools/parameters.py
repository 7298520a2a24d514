"""Template parameters given on the command line, as `sam deploy --parameter-overrides` takes them.

`bucketwarden local --parameter-overrides PublicAclMode=notify FlapThreshold=5` checks each name
and value against template.yaml's `Parameters` (its AllowedValues, AllowedPattern, lengths and
number bounds, as CloudFormation does) before anything starts, and gives the functions the
environment variables that the template's `Globals` set from those parameters (`!Ref Name`).
SAM's other spelling, `ParameterKey=Name,ParameterValue=Value`, is accepted too.

Only the parameters given change the environment: everything else stays as the local mode sets
it (no BaselineDelaySeconds wait, say), so that running without overrides behaves as before.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from typing import Any

# SAM's long form of one override.
_LONG_FORM = re.compile(r"^ParameterKey=([^,=]+),ParameterValue=(.*)$", re.DOTALL)


class ParameterError(ValueError):
    """An override that names no template parameter, or a value the parameter does not allow."""


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """`Name=Value` (or SAM's `ParameterKey=Name,ParameterValue=Value`) items, in order; one item
    may hold several, separated by spaces and quoted as a shell would (SAM's single string)."""
    overrides: dict[str, str] = {}
    for item in items:
        for word in shlex.split(item):
            name, value = _split(word)
            overrides[name] = value
    return overrides


def _split(word: str) -> tuple[str, str]:
    long_form = _LONG_FORM.match(word)
    if long_form:
        return long_form.group(1), long_form.group(2)
    name, equals, value = word.partition("=")
    if not equals or not name:
        raise ParameterError(
            f"{word!r} is not Name=Value (or ParameterKey=Name,ParameterValue=Value)"
        )
    return name, value


def check_overrides(overrides: Mapping[str, str], template: Mapping[str, Any]) -> None:
    """Raise ParameterError (one line, naming the parameter) unless every override names a
    parameter of `template` with a value it allows."""
    parameters = template.get("Parameters") or {}
    for name, value in overrides.items():
        if name not in parameters:
            known = ", ".join(sorted(parameters))
            raise ParameterError(f"unknown parameter {name!r}; template.yaml has: {known}")
        problem = _refusal(parameters[name] or {}, value)
        if problem:
            raise ParameterError(f"{name}={value!r}: {problem}")


def _refusal(spec: Mapping[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse `value` for the parameter `spec`, or None."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(option) for option in allowed]:
        return "not one of " + ", ".join(repr(str(option)) for option in allowed)
    if spec.get("Type") == "Number":
        return _number_refusal(spec, value)
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        return str(spec.get("ConstraintDescription") or f"does not match {pattern}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        return f"shorter than MinLength {spec['MinLength']}"
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        return f"longer than MaxLength {spec['MaxLength']}"
    return None


def _number_refusal(spec: Mapping[str, Any], value: str) -> str | None:
    try:
        number = float(value)
    except ValueError:
        return "not a number"
    if "MinValue" in spec and number < float(spec["MinValue"]):
        return f"below MinValue {spec['MinValue']}"
    if "MaxValue" in spec and number > float(spec["MaxValue"]):
        return f"above MaxValue {spec['MaxValue']}"
    return None


def global_variables(template: Mapping[str, Any]) -> dict[str, Any]:
    """The environment variables every function gets (Globals.Function.Environment)."""
    function = (template.get("Globals") or {}).get("Function") or {}
    return dict(((function.get("Environment") or {}).get("Variables")) or {})


def function_environment(
    overrides: Mapping[str, str], template: Mapping[str, Any]
) -> dict[str, str]:
    """The variables the template's Globals set to one of the overridden parameters (`!Ref`),
    with the overrides' values."""
    return {
        variable: overrides[value["Ref"]]
        for variable, value in global_variables(template).items()
        if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in overrides
    }


def without_effect(overrides: Mapping[str, str], template: Mapping[str, Any]) -> list[str]:
    """The overridden parameters that set no function's variable directly (the schedule, the
    e-mail subscription, log retention...): they change nothing in the local mode."""
    used = {
        value["Ref"]
        for value in global_variables(template).values()
        if isinstance(value, dict) and set(value) == {"Ref"}
    }
    return [name for name in overrides if name not in used]
