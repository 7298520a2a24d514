"""public-policy: no statement of the bucket policy is public in S3's meaning.

The fix removes exactly the public statements (bucketwarden.policy says which, and why) and
keeps everything else as it was: the other statements in their order, Version and Id. A public
statement that also names fixed principals (an account beside "*") loses only its public
principals and stays for the named ones. CloudFront
origin access (OAC, OAI), load balancer and CloudTrail log delivery, cross-account grants pinned
by conditions are not public, so they stay. Deleting the whole policy, as blunter tools do, would
cut those services off; the policy is deleted only when no statement is left.
"""

from __future__ import annotations

import re
from typing import Any

from bucketwarden.controls.base import Evaluation, State
from bucketwarden.controls.bucket_policy import (
    BucketPolicySurface,
    as_list,
    policy_of,
    wildcard_match,
    with_statements,
    without_public_parts,
)
from bucketwarden.policy import PolicyError, Verdict, analyze, statements
from bucketwarden.settings import Settings

CLOUDFRONT_SERVICE = "cloudfront.amazonaws.com"
DISTRIBUTION_ARN = re.compile(r"^arn:[\w-]+:cloudfront::\d{12}:distribution/")
ORIGIN_ACCESS_IDENTITY = re.compile(
    r"^arn:[\w-]+:iam::cloudfront:user/CloudFront Origin Access Identity "
)
OBJECT_READ = "s3:GetObject"


def _condition_values(statement: dict[str, Any], key: str) -> list[Any]:
    """Every value the statement's conditions give `key` (compared without case, as IAM does)."""
    condition = statement.get("Condition")
    bodies = condition.values() if isinstance(condition, dict) else []
    found: list[Any] = []
    for body in bodies:
        for name, values in body.items() if isinstance(body, dict) else []:
            if str(name).lower() == key.lower():
                found.extend(as_list(values))
    return found


def serves_cloudfront(statement: dict[str, Any]) -> bool:
    """An origin access statement: CloudFront OAC (service + distribution ARN) or an OAI."""
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return False
    identities = [str(v) for v in as_list(principal.get("AWS", []))]
    if any(ORIGIN_ACCESS_IDENTITY.match(identity) for identity in identities):
        return True
    if CLOUDFRONT_SERVICE not in as_list(principal.get("Service", [])):
        return False
    sources = _condition_values(statement, "aws:SourceArn")
    return any(DISTRIBUTION_ARN.match(str(source)) for source in sources)


def allows_object_reads(statement: dict[str, Any]) -> bool:
    """Does the statement's Action (or NotAction) take in s3:GetObject? (IAM ignores case.)"""
    if "NotAction" in statement:
        excluded = as_list(statement["NotAction"])
        return not any(wildcard_match(a, OBJECT_READ, ignore_case=True) for a in excluded)
    actions = as_list(statement.get("Action", []))
    return any(wildcard_match(a, OBJECT_READ, ignore_case=True) for a in actions)


def _cloudfront_note(document: dict[str, Any] | str, verdict: Verdict) -> str | None:
    found = statements(document)
    origins = [s for s in verdict.statements if not s.public and serves_cloudfront(found[s.index])]
    kept = [s.label for s in origins]
    return f"served through CloudFront (kept): {', '.join(kept)}" if kept else None


class PublicPolicy(BucketPolicySurface):
    id = "public-policy"
    fsbp = ("S3.2", "S3.3")
    severity = "CRITICAL"
    family = "public-access"
    title = "Bucket policy grants no public access"
    trigger_events = ("PutBucketPolicy",)
    # A policy letting anyone read objects is how most static websites are served.
    checks_website = True
    closes_public_exposure = True
    refusal_hint = (
        "S3 refuses a public policy while BlockPublicPolicy is on for the bucket or the account"
    )
    # The fix deletes the policy when every statement was public.
    write_actions = ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy")
    # A directory bucket's policy is public in the same meaning.
    directory_buckets = True

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        document = policy_of(state)
        if document is None:
            return Evaluation(True, "no bucket policy")
        try:
            verdict = analyze(document, "bucket")
        except PolicyError as error:
            return Evaluation(False, f"the bucket policy cannot be judged: {error}", fixable=False)
        note = _cloudfront_note(document, verdict)
        if not verdict.public:
            return Evaluation(True, "; ".join(filter(None, ["no public statement", note])))
        public = set(verdict.public_statement_indexes)
        found = statements(document)
        kept = without_public_parts(document, verdict)
        readable = any(allows_object_reads(found[i]) for i in public)
        reasons = [reason.text.removesuffix(".") for reason in verdict.reasons]
        reason = "; ".join(filter(None, [*reasons, note]))
        return Evaluation(False, reason, with_statements(state, kept), public_read=readable)
