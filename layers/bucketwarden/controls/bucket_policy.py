"""The bucket policy surface, shared by public-policy and secure-transport.

Both controls judge and change one document, so the engine runs them as one read-modify-write
(their `surface` is the same): one GetBucketPolicy, each control's fix applied to the state the
previous one left, one PutBucketPolicy (or DeleteBucketPolicy) of the result, one re-read.

The state is {"BucketArn": "arn:aws:s3:::NAME", "Policy": DOCUMENT}: DOCUMENT is the policy as
S3 returns it, parsed (None when the bucket has none, the text itself when it is not a JSON
object). The bucket's ARN rides along because a rule that covers "the bucket and its objects"
must name them, even when there is no policy yet; before/after in the audit show the same shape,
and a rollback writes `Policy` back.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import CannotFix, Control, State
from bucketwarden.policy import PolicyError, Verdict, analyze, statements, without_public_principals

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOT_CONFIGURED = "NoSuchBucketPolicy"
SURFACE = "bucket policy"
POLICY_VERSION = "2012-10-17"
# S3 refuses a bucket (or access point) policy larger than 20 KB: measured in UTF-8 bytes on the
# JSON we would write.
MAX_POLICY_BYTES = 20 * 1024


def bucket_arn(s3: S3Client, bucket: str) -> str:
    """The bucket's ARN in the client's partition (aws, aws-cn, aws-us-gov)."""
    partition = getattr(s3.meta, "partition", None) or "aws"
    return f"arn:{partition}:s3:::{bucket}"


def as_list(value: Any) -> list[Any]:
    """A policy element that may be one value or a list of them, as a list."""
    return value if isinstance(value, list) else [value]


def wildcard_match(pattern: Any, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's matching of actions and resources: `*` any characters (`/` too), `?` any one.

    A pattern without wildcards, or with one `*` and no `?` (a bucket's `arn:aws:s3:::NAME/*`),
    is compared as text; others go to a regular expression, compiled once per pattern.
    """
    text = str(pattern)
    if not ignore_case and "?" not in text and "\n" not in value:
        head, star, tail = text.partition("*")
        if not star:
            return value == text
        if "*" not in tail:
            fits = len(value) >= len(head) + len(tail)
            return fits and value.startswith(head) and value.endswith(tail)
    return _wildcard_expression(text, ignore_case).fullmatch(value) is not None


@lru_cache(maxsize=1024)
def _wildcard_expression(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE if ignore_case else 0)


def without_sid(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement as it is, but for its Sid: what it allows or denies does not change."""
    return {key: value for key, value in statement.items() if key != "Sid"}


def parse_policy(text: str) -> dict[str, Any] | str:
    """The policy text parsed, or the text itself when it is not a JSON object."""
    try:
        document = json.loads(text)
    except ValueError:
        return text
    return document if isinstance(document, dict) else text


def compact(document: dict[str, Any] | str) -> str:
    """The policy as written to S3: compact JSON (a text that is not a document goes as is).

    Text stays UTF-8 as S3 holds it: escaping it (`\\u00e9`, json's default) would make a policy
    written in any language other than English up to six times its size, past S3's limit.
    """
    if isinstance(document, str):
        return document
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def size_in_bytes(document: dict[str, Any] | str) -> int:
    return len(compact(document).encode("utf-8"))


def too_large(document: dict[str, Any] | str) -> str | None:
    """Why S3 would refuse `document` for its size, or None when it fits."""
    size = size_in_bytes(document)
    if size <= MAX_POLICY_BYTES:
        return None
    return f"the policy would be {size} bytes, over S3's {MAX_POLICY_BYTES}"


class OversizedPolicy(CannotFix):
    """A policy about to be written is over S3's size limit: reported, not sent to be refused."""


def policy_text(document: dict[str, Any] | str) -> str:
    """The text to write for `document`; OversizedPolicy when S3 would refuse its size."""
    problem = too_large(document)
    if problem:
        raise OversizedPolicy(problem)
    return compact(document)


def policy_of(state: State) -> dict[str, Any] | str | None:
    return (state or {}).get("Policy")


def checked_statements(state: State) -> list[dict[str, Any]]:
    """The policy's statements ([] without a policy); PolicyError when it is not a policy."""
    document = policy_of(state)
    if document is None:
        return []
    analyze(document)  # the analyzer's checks of form: every statement an object with an Effect
    return list(statements(document))


def with_statements(state: State, kept: list[dict[str, Any]]) -> dict[str, Any]:
    """`state` with its policy's statements replaced by `kept`; no statement → no policy.

    Every other top-level key (Version, Id) is kept as it was; a new policy gets a Version.
    """
    document = policy_of(state)
    base = document if isinstance(document, dict) else {"Version": POLICY_VERSION}
    policy = {**base, "Statement": kept} if kept else None
    return {**(state or {}), "Policy": policy}


def without_public_parts(document: dict[str, Any] | str, verdict: Verdict) -> list[dict[str, Any]]:
    """The policy's statements without what makes them public, the others as they are.

    A public statement that also names fixed principals stays for them, with only its public
    principals removed (an account named beside "*" keeps its grant); any other public statement
    goes whole.
    """
    public = set(verdict.public_statement_indexes)
    kept: list[dict[str, Any]] = []
    for index, statement in enumerate(statements(document)):
        narrowed = without_public_principals(statement) if index in public else statement
        if narrowed is not None:
            kept.append(narrowed)
    return kept


def _has_statements(document: Any) -> bool:
    return not isinstance(document, dict) or bool(document.get("Statement"))


def _canonical(value: Any) -> object:
    """A policy value as compared: S3 may give back a number or a boolean as text."""
    if isinstance(value, dict):
        return {key: _canonical(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    if isinstance(value, bool):
        return str(value).lower()
    return value if value is None else str(value)


def same_policy(found: State, expected: State) -> bool:
    """Do two states hold the same policy document (and the same of everything else)?"""
    return _canonical(found) == _canonical(expected)


def read_policy(s3: S3Client, bucket: str) -> State:
    """The surface's state, read fresh (also by a control that adds one statement in apply)."""
    try:
        document = parse_policy(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as error:
        if error_code(error) != NOT_CONFIGURED:
            raise
        document = None
    return {"BucketArn": bucket_arn(s3, bucket), "Policy": document}


class BucketPolicySurface(Control["S3Client"]):
    """Read, write and describe the bucket policy; the controls on it only judge."""

    surface = SURFACE
    read_actions = ("s3:GetBucketPolicy",)
    recheck_before_write = True

    def read(self, s3: S3Client, bucket: str) -> State:
        return read_policy(s3, bucket)

    def apply(self, s3: S3Client, bucket: str, desired: State) -> None:
        document = policy_of(desired)
        if document is None or not _has_statements(document):
            s3.delete_bucket_policy(Bucket=bucket)
            return
        s3.put_bucket_policy(Bucket=bucket, Policy=policy_text(document))

    def same(self, found: State, expected: State) -> bool:
        return same_policy(found, expected)

    def describe(self, state: State) -> str:
        document = policy_of(state)
        if document is None:
            return "no bucket policy"
        try:
            judged = analyze(document).statements
        except PolicyError as error:
            return f"not a policy ({error})"
        count = f"{len(judged)} statement" + ("" if len(judged) == 1 else "s")
        return f"{count}: {', '.join(s.label for s in judged)}" if judged else count
