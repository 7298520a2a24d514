"""Report checkov's JSON results: failures, skips with their reasons, and a summary per file.

Usage: python scripts/checkov_report.py CHECKOV_JSON TRANSLATED_JSON

scripts/security-check runs checkov (-o json) on template.yaml and on its translation. A run
passes when checkov parsed every file, found resources in each, failed no check, and every skip
(resource Metadata `checkov: skip: [{id, comment}]`) gives its reason. Exit status 1 otherwise.
It also names the IAM resources of TRANSLATED_JSON that checkov evaluated no check on: checkov
passes over a policy it cannot resolve (a statement under Fn::If, say), which parliament and
tests/test_template.py still audit.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from typing import Any

NO_COMMENT = "No comment provided"  # what checkov records for a skip without a comment
IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::IAM::Policy")


def reports(path: str) -> list[dict[str, Any]]:
    """checkov writes one report object, or a list of them when several frameworks ran."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    return document if isinstance(document, list) else [document]


def where(check: dict[str, Any]) -> str:
    first, last = check.get("file_line_range") or (0, 0)
    return f"{check['file_path'].lstrip('/')}:{first}-{last}"


def logical_id(check: dict[str, Any]) -> str:
    """AWS::Lambda::Function.SweepFunction → SweepFunction (the same in both files)."""
    return check["resource"].rsplit(".", 1)[-1]


def print_skips(skips: list[dict[str, Any]]) -> None:
    """Each skipped check once, each distinct reason once with the resources that give it."""
    by_check: dict[str, dict[str, list[str]]] = {}
    names: dict[str, str] = {}
    for check in skips:
        names[check["check_id"]] = check["check_name"]
        reasons = by_check.setdefault(check["check_id"], {})
        resources = reasons.setdefault(check["check_result"]["suppress_comment"], [])
        if logical_id(check) not in resources:
            resources.append(logical_id(check))
    for check_id, reasons in sorted(by_check.items()):
        print(f"skip {check_id} {names[check_id]}")
        for reason, resources in reasons.items():
            print(f"     {', '.join(resources)}: {reason}")


def unchecked(translated: str, frameworks: list[dict[str, Any]]) -> None:
    """Name the IAM resources of the translated template that no check evaluated."""
    with open(translated, encoding="utf-8") as handle:
        template = json.load(handle)
    evaluated = {
        check["resource"]
        for framework in frameworks
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for check in framework.get("results", {}).get(kind, [])
        if check["file_path"].endswith(os.path.basename(translated))
    }
    for name, resource in sorted(template.get("Resources", {}).items()):
        if resource["Type"] in IAM_TYPES and f"{resource['Type']}.{name}" not in evaluated:
            print(
                f"note {resource['Type']}.{name}: checkov evaluated no check on it (a policy it "
                "cannot resolve, such as a statement under Fn::If); parliament still audits it"
            )


def report(path: str, translated: str) -> int:
    problems = 0
    per_file: dict[str, Counter[str]] = {}
    skips = []
    for framework in reports(path):
        results = framework.get("results", {})
        summary = framework.get("summary", {})
        if summary.get("parsing_errors"):
            problems += summary["parsing_errors"]
            for file in results.get("parsing_errors", []):
                print(f"FAIL could not parse {file}")
        for check in results.get("failed_checks", []):
            problems += 1
            per_file.setdefault(check["file_path"], Counter())["failed"] += 1
            print(f"FAIL {check['check_id']} {check['resource']} ({where(check)})")
            print(f"     {check['check_name']}")
            if check.get("guideline"):
                print(f"     {check['guideline']}")
        for check in results.get("skipped_checks", []):
            comment = check["check_result"].get("suppress_comment") or NO_COMMENT
            if comment == NO_COMMENT:
                problems += 1
                per_file.setdefault(check["file_path"], Counter())["failed"] += 1
                print(f"FAIL {check['check_id']} {check['resource']}: skipped without a reason")
            else:
                per_file.setdefault(check["file_path"], Counter())["skipped"] += 1
                skips.append(check)
        for check in results.get("passed_checks", []):
            per_file.setdefault(check["file_path"], Counter())["passed"] += 1
    print_skips(skips)
    unchecked(translated, reports(path))
    if not per_file:
        print("FAIL checkov evaluated no resource (wrong framework or unreadable files?)")
        problems += 1
    version = reports(path)[0].get("summary", {}).get("checkov_version", "?")
    for file, counts in sorted(per_file.items()):
        print(
            f"checkov {version} on {file.lstrip('/')}: {counts['passed']} checks passed, "
            f"{counts['failed']} failed, {counts['skipped']} skipped (each with its reason)"
        )
    return 1 if problems else 0


def main(arguments: list[str]) -> int:
    if len(arguments) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    return report(*arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
