"""Runs the SAM transform on template.yaml offline, as CloudFormation would on deploy; exits non-zero on failure.

Run by `make validate` with the SAM virtualenv's Python (aws-sam-translator comes with aws-sam-cli there):
    .venv-sam/bin/python tests/sam_transform.py template.yaml [transformed.json]
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

FUNCTION = "AWS::Serverless::Function"
PACKAGED_CODE_URI = "s3://sam-artifacts-bucket/analytics/0123456789abcdef"


class BundledPolicies:
    """The AWS managed policy names SAM knows, from the translator's own copy instead of IAM (no account)."""

    def load(self) -> dict[str, str]:
        from samtranslator.internal.managed_policies import get_bundled_managed_policy_map

        return get_bundled_managed_policy_map("aws") or {}


def as_packaged(template: dict) -> dict:
    """What `sam package` hands CloudFormation: every local CodeUri replaced by the S3 object it uploads."""
    functions = [template.get("Globals", {}).get("Function", {})]
    functions += [r.get("Properties", {}) for r in template["Resources"].values() if r["Type"] == FUNCTION]
    for properties in functions:
        if isinstance(properties.get("CodeUri"), str) and not properties["CodeUri"].startswith("s3://"):
            properties["CodeUri"] = PACKAGED_CODE_URI
    return template


def transform(template_path: Path) -> dict:
    from samtranslator.translator.transform import transform as sam_transform
    from samtranslator.yaml_helper import yaml_parse

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the pseudo parameters need a region
    return sam_transform(as_packaged(yaml_parse(template_path.read_text())), {}, BundledPolicies())


def main(argv: list[str]) -> int:
    from samtranslator.model.exceptions import InvalidDocumentException

    try:
        output = transform(Path(argv[1]))
    except InvalidDocumentException as error:
        for cause in error.causes:
            print(f"SAM transform: {cause.message}", file=sys.stderr)
        return 1
    if len(argv) > 2:
        Path(argv[2]).parent.mkdir(parents=True, exist_ok=True)
        Path(argv[2]).write_text(json.dumps(output, indent=1, sort_keys=True))
    kinds = Counter(resource["Type"] for resource in output["Resources"].values())
    print("SAM transform ok: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
