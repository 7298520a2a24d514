"""A sweep's outcomes as SARIF 2.1.0, the format code-scanning tools ingest.

One run. Its rules are the controls that ran (id, title, the docs page, family and surface); its
results are the findings, one per control and subject:

- noncompliant → kind "fail", level "error": the drift is there now.
- failed → kind "fail", level "warning": drift that could not be fixed or a surface that could
  not be read; a person must look, but nothing says the subject is wrong.
- exempted → kind "fail", level "note", with an in-source suppression (the exemption tag sits on
  the bucket itself) whose justification is the tag's reason.
- remediated → kind "pass", level "none": the subject complies now. Code-scanning tools close
  the alert of an earlier scan; the result keeps what was found and the before/after states.

Compliant, ignored and skipped outcomes are not findings and give no result (the run's
properties count them). A subject is located by its ARN, which is a URI: the bucket's, the access
point's, or for the account "AWS::::Account:<id>" as Security Hub names it. Tools that need a
line to show a result get line 1 of that "artifact".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TextIO

from bucketwarden import catalogue
from bucketwarden.controls.base import Control

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "BucketWarden"
DOCS = "docs/controls/{id}.md"
FINGERPRINT = "bucketwarden/subject-control/v1"

# status → (kind, level)
RESULTS = {
    "noncompliant": ("fail", "error"),
    "failed": ("fail", "warning"),
    "exempted": ("fail", "note"),
    "remediated": ("pass", "none"),
}
# Partitions whose regions have their own prefix; every other region is in "aws".
PARTITIONS = {"cn-": "aws-cn", "us-gov-": "aws-us-gov"}


def tool_version() -> str:
    try:
        return version("bucketwarden")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def _partition(region: str | None) -> str:
    for prefix, partition in PARTITIONS.items():
        if (region or "").startswith(prefix):
            return partition
    return "aws"


def subject_arn(outcome: dict[str, Any]) -> str:
    """The subject's identifier as a URI: bucket ARN, access point ARN or the account."""
    subject = str(outcome.get("bucket"))
    scope = outcome.get("scope", "bucket")
    if scope == "account":
        return f"AWS::::Account:{subject}"
    if scope == "access-point" or subject.startswith("arn:"):
        return subject
    return f"arn:{_partition(outcome.get('region'))}:s3:::{subject}"


def _rule_name(control_id: str) -> str:
    return "".join(part.capitalize() for part in control_id.split("-"))


def rule(control: Control) -> dict[str, Any]:
    docs = DOCS.format(id=control.id)
    return {
        "id": control.id,
        "name": _rule_name(control.id),
        "shortDescription": {"text": control.title},
        "fullDescription": {
            "text": f"{control.title}. Judges the {control.surface} of each {control.scope}."
        },
        "help": {
            "text": f"What it checks, what the fix changes, how to exempt: {docs}",
            "markdown": f"What it checks, what the fix changes, how to exempt: [{docs}]({docs})",
        },
        "defaultConfiguration": {"level": "error"},
        "properties": {
            "tags": ["security", "aws", "s3", control.family],
            "family": control.family,
            "surface": control.surface,
            "scope": control.scope,
            "triggerEvents": list(control.trigger_events),
        },
    }


def _location(outcome: dict[str, Any]) -> dict[str, Any]:
    arn = subject_arn(outcome)
    return {
        "physicalLocation": {"artifactLocation": {"uri": arn}, "region": {"startLine": 1}},
        "logicalLocations": [
            {
                "name": str(outcome.get("bucket")),
                "fullyQualifiedName": arn,
                "kind": "resource",
                "properties": {"scope": outcome.get("scope", "bucket")},
            }
        ],
    }


def result(outcome: dict[str, Any], rule_index: int) -> dict[str, Any]:
    status = str(outcome["status"])
    kind, level = RESULTS[status]
    reason = str(outcome.get("reason") or status)
    found: dict[str, Any] = {
        "ruleId": outcome["control"],
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": {"text": f"fixed: {reason}" if status == "remediated" else reason},
        "locations": [_location(outcome)],
        "partialFingerprints": {FINGERPRINT: f"{subject_arn(outcome)}|{outcome['control']}"},
        "properties": {
            key: outcome.get(key)
            for key in (
                "status",
                "account",
                "region",
                "mode",
                "found_by",
                "before",
                "after",
                "audit_id",
            )
            if outcome.get(key) is not None
        },
    }
    if outcome.get("warnings"):
        found["properties"]["warnings"] = list(outcome["warnings"])
    if status == "exempted":
        found["suppressions"] = [{"kind": "inSource", "justification": reason}]
    return found


def sarif_log(outcomes: Iterable[dict[str, Any]], controls: Iterable[Control]) -> dict[str, Any]:
    """The log of one sweep: `controls` are those that ran (each a rule, findings or not).
    Results come account by account (as the sweep gives them) and name their account; an
    account that could not be swept is a notification of the run (no control judged it)."""
    outcomes = list(outcomes)
    unreached = [o for o in outcomes if not o.get("control") and o.get("status") == "failed"]
    outcomes = [o for o in outcomes if o.get("control")]
    rule_ids = dict.fromkeys([c.id for c in controls] + [str(o["control"]) for o in outcomes])
    rules = [rule(catalogue.control(rule_id)) for rule_id in rule_ids]
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}
    results = [result(o, index[o["control"]]) for o in outcomes if o["status"] in RESULTS]
    counts = Counter(str(o["status"]) for o in outcomes)
    driver = {"name": TOOL_NAME, "version": tool_version(), "rules": rules}
    run = {
        "tool": {"driver": driver},
        "invocations": [_invocation(unreached)],
        "results": results,
        "properties": {"statusCounts": dict(sorted(counts.items()))},
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _invocation(unreached: list[dict[str, Any]]) -> dict[str, Any]:
    invocation: dict[str, Any] = {"executionSuccessful": True}
    if unreached:
        invocation["toolExecutionNotifications"] = [
            {
                "level": "error",
                "message": {"text": f"account {o.get('account')}: {o.get('reason')}"},
                "locations": [_location(o)],
            }
            for o in unreached
        ]
    return invocation


def write_sarif(
    outcomes: Iterable[dict[str, Any]], controls: Iterable[Control], stream: TextIO
) -> None:
    json.dump(sarif_log(outcomes, controls), stream, indent=2, default=str)
    stream.write("\n")
