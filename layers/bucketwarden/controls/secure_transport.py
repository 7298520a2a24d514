"""secure-transport: the bucket policy denies requests without TLS, and outdated TLS.

Compliant when Deny statements for everyone and every S3 action cover the bucket and its objects
(`arn:aws:s3:::NAME` and `arn:aws:s3:::NAME/*`, by name or wildcard, in one statement or several)
under `Bool`/`BoolIfExists` `aws:SecureTransport` false, and, when a TLS minimum is configured,
under `NumericLessThan` `s3:TlsVersion` at that minimum or a stricter one. Whatever their Sid:
a rule written by hand or by another tool counts, so it is never duplicated.

The fix adds what is missing as one statement per rule with a fixed Sid; a statement that has
our Sid but says something else is replaced where it stands. Nothing else in the policy changes.
S3 refuses policies over 20 KB: when the rule would not fit, it is reported, not written.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

from bucketwarden.controls.base import Evaluation, State
from bucketwarden.controls.bucket_policy import (
    BucketPolicySurface,
    as_list,
    checked_statements,
    policy_of,
    too_large,
    wildcard_match,
    with_statements,
    without_sid,
)
from bucketwarden.policy import PolicyError
from bucketwarden.settings import Settings

INSECURE_TRANSPORT_SID = "BucketWardenDenyInsecureTransport"
OUTDATED_TLS_SID = "BucketWardenDenyOutdatedTls"
EVERY_S3_ACTION = frozenset({"s3:*", "*"})

Statement = dict[str, Any]


def _only_condition(statement: Statement) -> tuple[str, str, list[Any]] | None:
    """(operator, key, values) of a condition with one operator and one key, all lower case.

    A Deny with more conditions applies to fewer requests, so it does not cover the rule.
    """
    condition = statement.get("Condition")
    if not isinstance(condition, dict) or len(condition) != 1:
        return None
    [(operator, body)] = condition.items()
    if not isinstance(body, dict) or len(body) != 1:
        return None
    [(key, values)] = body.items()
    return str(operator).lower(), str(key).lower(), as_list(values)


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _version(value: Any) -> tuple[int, ...] | None:
    parts = str(value).strip().split(".")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if isinstance(value, bool) or not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def denies_insecure_transport(statement: Statement) -> bool:
    found = _only_condition(statement)
    if found is None:
        return False
    operator, key, values = found
    return (
        operator in {"bool", "boolifexists"}
        and key == "aws:securetransport"
        and any(_is_false(value) for value in values)
    )


def denies_tls_below(minimum: str, statement: Statement) -> bool:
    """A NumericLessThan s3:TlsVersion at `minimum` or above (a stricter rule counts)."""
    found = _only_condition(statement)
    if found is None:
        return False
    operator, key, values = found
    versions = [v for v in map(_version, values) if v is not None]
    return (
        operator in {"numericlessthan", "numericlessthanifexists"}
        and key == "s3:tlsversion"
        and bool(versions)
        and max(versions) >= (_version(minimum) or ())
    )


def _denies_everyone_everything(statement: Statement) -> bool:
    """A Deny of every S3 action to every principal (the resources are judged apart)."""
    if statement.get("Effect") != "Deny":
        return False
    if {"NotPrincipal", "NotAction", "NotResource"} & statement.keys():
        return False
    principal = statement.get("Principal")
    everyone = principal == "*" or (
        isinstance(principal, dict) and "*" in as_list(principal.get("AWS", []))
    )
    actions = {str(action).lower() for action in as_list(statement.get("Action", []))}
    return everyone and bool(actions & EVERY_S3_ACTION)


def bucket_resources(bucket_arn: str) -> tuple[str, str]:
    """What the rules must cover: the bucket and every object in it."""
    return bucket_arn, f"{bucket_arn}/*"


class Rule(NamedTuple):
    """One Deny the policy must hold: its fixed Sid, its condition, how to recognise it."""

    sid: str
    what: str  # what it denies, for reasons
    condition: dict[str, Any]
    expresses: Callable[[Statement], bool]  # does a statement's condition say this rule

    def statement(self, bucket_arn: str) -> Statement:
        return {
            "Sid": self.sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": list(bucket_resources(bucket_arn)),
            "Condition": self.condition,
        }

    def uncovered(self, statements: list[Statement], bucket_arn: str) -> list[str]:
        """The bucket resources no statement of this rule covers."""
        patterns = [
            pattern
            for statement in statements
            if _denies_everyone_everything(statement) and self.expresses(statement)
            for pattern in as_list(statement.get("Resource", []))
        ]
        return [
            resource
            for resource in bucket_resources(bucket_arn)
            if not any(wildcard_match(pattern, resource) for pattern in patterns)
        ]

    def placed_in(self, statements: list[Statement], bucket_arn: str) -> list[Statement]:
        """`statements`, every one kept, with this rule's statement at the end.

        A statement holding our Sid but saying something else keeps its place and its meaning
        without the Sid (a policy holds a Sid once): a Deny there may deny more than the rule,
        an Allow may be someone's grant, so replacing it could widen access or cut it.
        """
        kept = [without_sid(s) if s.get("Sid") == self.sid else s for s in statements]
        return [*kept, self.statement(bucket_arn)]

    def problem(self, statements: list[Statement], bucket_arn: str) -> str:
        missing = self.uncovered(statements, bucket_arn)
        where = "the bucket and its objects" if len(missing) > 1 else missing[0]
        found = f"no Deny of {self.what} covers {where}"
        if any(s.get("Sid") == self.sid for s in statements):
            found += f' (statement "{self.sid}" says something else)'
        return found


INSECURE_TRANSPORT = Rule(
    INSECURE_TRANSPORT_SID,
    "requests without TLS (aws:SecureTransport false)",
    {"Bool": {"aws:SecureTransport": "false"}},
    denies_insecure_transport,
)


def outdated_tls(minimum: str) -> Rule:
    return Rule(
        OUTDATED_TLS_SID,
        f"TLS below {minimum} (s3:TlsVersion)",
        {"NumericLessThan": {"s3:TlsVersion": float(minimum)}},
        partial(denies_tls_below, minimum),
    )


def rules(settings: Settings) -> tuple[Rule, ...]:
    if not settings.tls_minimum:
        return (INSECURE_TRANSPORT,)
    return INSECURE_TRANSPORT, outdated_tls(settings.tls_minimum)


def with_rules(
    statements: list[Statement], wanted: tuple[Rule, ...], bucket_arn: str
) -> list[Statement]:
    """`statements` with every rule covered, each placed once.

    Placing a rule removes no statement (it only takes its Sid off another one), so a rule
    once covered stays covered.
    """
    fixed = list(statements)
    while missing := [rule for rule in wanted if rule.uncovered(fixed, bucket_arn)]:
        fixed = missing[0].placed_in(fixed, bucket_arn)
    return fixed


class SecureTransport(BucketPolicySurface):
    id = "secure-transport"
    fsbp = ("S3.5",)
    severity = "MEDIUM"
    family = "public-access"
    title = "Bucket policy denies requests without TLS"
    trigger_events = ("CreateBucket", "PutBucketPolicy", "DeleteBucketPolicy")
    write_actions = ("s3:PutBucketPolicy",)

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        bucket_arn = str((state or {})["BucketArn"])
        try:
            found = checked_statements(state)
        except PolicyError as error:
            return Evaluation(False, f"the bucket policy cannot be judged: {error}", fixable=False)
        wanted = rules(settings)
        missing = [rule for rule in wanted if rule.uncovered(found, bucket_arn)]
        if not missing:
            denied = " and ".join(rule.what for rule in wanted)
            return Evaluation(True, f"{denied} denied for the bucket and its objects")
        reason = "; ".join(rule.problem(found, bucket_arn) for rule in missing)
        if policy_of(state) is None:
            reason = f"no bucket policy: {reason}"
        desired = with_statements(state, with_rules(found, wanted, bucket_arn))
        limit = too_large(desired["Policy"])
        if limit:
            return Evaluation(False, f"{reason}; not fixed: with the rule {limit}", fixable=False)
        return Evaluation(False, reason, desired)
