"""Translate a SAM template to plain CloudFormation with aws-sam-translator, offline.

Usage: TOOLS_PYTHON scripts/translate_template.py TEMPLATE OUTPUT_JSON

TOOLS_PYTHON is the interpreter of the virtualenv that holds SAM CLI (`make tools` creates
.tools/sam), which brings aws-sam-translator. scripts/check-template lints the output with
cfn-lint and scripts/security-check scans it with checkov and parliament, so both checks judge
the same translation, the one CloudFormation deploys. A plain CloudFormation template (no
Transform, as the member templates of member/) is written as it is, in JSON with the intrinsics
in their long form, for the same checks.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# What `sam package` does: local code folders become S3 locations (the translator needs them).
CODE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class NoManagedPolicies:
    """The template names no AWS managed policy by name, so no IAM lookup is needed."""

    def load(self) -> dict[str, str]:
        return {}


def as_packaged(template: dict[str, Any]) -> dict[str, Any]:
    for name, resource in template.get("Resources", {}).items():
        key = CODE_PROPERTIES.get(resource.get("Type"))
        properties = resource.get("Properties", {})
        if key and isinstance(properties.get(key), str) and "://" not in properties[key]:
            properties[key] = f"s3://offline-check-artifacts/{name}.zip"
    return template


def translate(source: str) -> dict[str, Any]:
    # The translator needs a region; nothing here calls AWS.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(source, encoding="utf-8") as handle:
        template = yaml_parse(handle.read())
    if "Transform" not in template:
        return dict(template)
    return transform(as_packaged(template), {}, NoManagedPolicies())


def main(arguments: list[str]) -> int:
    if len(arguments) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    source, target = arguments
    try:
        translated = translate(source)
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"  {cause.message}", file=sys.stderr)
        return 1
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(translated, handle, indent=2, sort_keys=True)
    print(f"{len(translated['Resources'])} CloudFormation resources in the translated template")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
