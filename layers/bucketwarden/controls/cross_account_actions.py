"""cross-account-actions: the bucket policy lets no other account change who may use the bucket.

FSBP S3.6: no Allow statement grants a principal of another AWS account s3:DeleteBucketPolicy,
s3:PutBucketAcl, s3:PutBucketPolicy, s3:PutEncryptionConfiguration or s3:PutObjectAcl, by name,
through a wildcard (`s3:Put*`, `s3:*`, `*`) or through a NotAction that does not exclude them.

Who is another account: an AWS principal whose account its id or ARN names and which is not the
bucket's (`Settings.account_id`, the member account's in organization mode). A wildcard
principal (`"*"`, `{"AWS": "*"}`) in a statement its conditions make non-public grants to whoever
they admit: another account, unless `aws:PrincipalAccount` or `aws:PrincipalArn` pin it to the
bucket's own. Public statements are public-policy's concern: their public principals are left to
it (never fixed twice), only the fixed accounts they also name are judged here. Service
principals, canonical users (a policy does not say whose they are) and AWS principals whose
account cannot be read (the unique id of a deleted principal) are not judged.

The fix removes exactly those actions, from exactly those principals, and keeps the rest of the
policy as it was (docs/controls/cross-account-actions.md shows each case):
- a statement granting them to other accounts only keeps its place and its Sid, narrowed;
- a statement that also names other principals is split: it stays, Sid and all, for the others,
  and a narrowed copy without a Sid (a policy holds a Sid once) follows it for the other
  accounts;
- narrowing drops a listed action, replaces a wildcard by the S3 actions on buckets and objects
  it matches minus the five (`S3_ACTIONS`: an action S3 adds later is not granted until someone
  writes it), and adds the five to a NotAction;
- a narrowed statement left with no action goes; the policy is deleted only when no statement is
  left. Nothing is ever added to what a principal may do.

A directory bucket (S3 Express One Zone) is judged the same way in its own action namespace: its
policy grants `s3express:` actions only, of which three are among the five
(`DIRECTORY_RISKY_ACTIONS`: it has no ACLs), and a wildcard is narrowed to the `s3express:`
actions on a directory bucket (`S3EXPRESS_ACTIONS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

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
from bucketwarden.directory_buckets import directory_action, is_directory_bucket
from bucketwarden.policy import PolicyError, analyze
from bucketwarden.settings import Mode, Settings

# The actions FSBP S3.6 (AWS Config's s3-bucket-blacklisted-actions-prohibited) names.
RISKY_ACTIONS = (
    "s3:DeleteBucketPolicy",
    "s3:PutBucketAcl",
    "s3:PutBucketPolicy",
    "s3:PutEncryptionConfiguration",
    "s3:PutObjectAcl",
)
# The S3 actions that apply to a bucket or its objects (Service Authorization Reference): what a
# wildcard in a bucket policy can grant. A narrowed wildcard becomes the ones it matches.
S3_ACTIONS = (
    "s3:AbortMultipartUpload",
    "s3:BypassGovernanceRetention",
    "s3:CreateBucket",
    "s3:CreateBucketMetadataTableConfiguration",
    "s3:DeleteBucket",
    "s3:DeleteBucketMetadataTableConfiguration",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucketWebsite",
    "s3:DeleteObject",
    "s3:DeleteObjectTagging",
    "s3:DeleteObjectVersion",
    "s3:DeleteObjectVersionTagging",
    "s3:GetAccelerateConfiguration",
    "s3:GetAnalyticsConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketMetadataTableConfiguration",
    "s3:GetBucketNotification",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPolicyStatus",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetIntelligentTieringConfiguration",
    "s3:GetInventoryConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetMetricsConfiguration",
    "s3:GetObject",
    "s3:GetObjectAcl",
    "s3:GetObjectAttributes",
    "s3:GetObjectLegalHold",
    "s3:GetObjectRetention",
    "s3:GetObjectTagging",
    "s3:GetObjectTorrent",
    "s3:GetObjectVersion",
    "s3:GetObjectVersionAcl",
    "s3:GetObjectVersionAttributes",
    "s3:GetObjectVersionForReplication",
    "s3:GetObjectVersionTagging",
    "s3:GetObjectVersionTorrent",
    "s3:GetReplicationConfiguration",
    "s3:InitiateReplication",
    "s3:ListBucket",
    "s3:ListBucketMultipartUploads",
    "s3:ListBucketVersions",
    "s3:ListMultipartUploadParts",
    "s3:ListTagsForResource",
    "s3:ObjectOwnerOverrideToBucketOwner",
    "s3:PutAccelerateConfiguration",
    "s3:PutAnalyticsConfiguration",
    "s3:PutBucketAcl",
    "s3:PutBucketCORS",
    "s3:PutBucketLogging",
    "s3:PutBucketNotification",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketRequestPayment",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutBucketWebsite",
    "s3:PutEncryptionConfiguration",
    "s3:PutIntelligentTieringConfiguration",
    "s3:PutInventoryConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutMetricsConfiguration",
    "s3:PutObject",
    "s3:PutObjectAcl",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionAcl",
    "s3:PutObjectVersionTagging",
    "s3:PutReplicationConfiguration",
    "s3:ReplicateDelete",
    "s3:ReplicateObject",
    "s3:ReplicateTags",
    "s3:RestoreObject",
    "s3:TagResource",
    "s3:UntagResource",
    "s3:UpdateBucketMetadataInventoryTableConfiguration",
    "s3:UpdateBucketMetadataJournalTableConfiguration",
)
# A directory bucket's policy speaks of `s3express:` actions only (an `s3:` action in it grants
# nothing there). Of the five, those that exist in that namespace: directory buckets have no ACLs.
DIRECTORY_RISKY_ACTIONS = tuple(
    directory_action(action)
    for action in ("s3:DeleteBucketPolicy", "s3:PutBucketPolicy", "s3:PutEncryptionConfiguration")
)
# The S3 Express actions that apply to a directory bucket (Service Authorization Reference, the
# `bucket` resource type; access point actions and ListAllMyDirectoryBuckets take other
# resources): what a wildcard in a directory bucket's policy can grant.
S3EXPRESS_ACTIONS = (
    "s3express:CreateBucket",
    "s3express:CreateSession",
    "s3express:DeleteBucket",
    "s3express:DeleteBucketPolicy",
    "s3express:GetBucketPolicy",
    "s3express:GetEncryptionConfiguration",
    "s3express:GetInventoryConfiguration",
    "s3express:GetLifecycleConfiguration",
    "s3express:GetMetricsConfiguration",
    "s3express:ListTagsForResource",
    "s3express:PutBucketPolicy",
    "s3express:PutEncryptionConfiguration",
    "s3express:PutInventoryConfiguration",
    "s3express:PutLifecycleConfiguration",
    "s3express:PutMetricsConfiguration",
    "s3express:TagResource",
    "s3express:UntagResource",
)


@dataclass(frozen=True)
class ActionNames:
    """The actions a kind of bucket's policy is judged by: the risky ones, and every action on
    such a bucket or its objects (what a narrowed wildcard becomes)."""

    risky: tuple[str, ...]
    known: tuple[str, ...]

    def is_risky(self, action: str) -> bool:
        return action.lower() in {risky.lower() for risky in self.risky}


GENERAL_PURPOSE = ActionNames(RISKY_ACTIONS, S3_ACTIONS)
DIRECTORY = ActionNames(DIRECTORY_RISKY_ACTIONS, S3EXPRESS_ACTIONS)
_ACCOUNT = re.compile(r"^(?:arn:[\w-]+:(?:iam|sts)::(\d{12}):.+|(\d{12}))$")
# Condition keys that say whose principals a wildcard principal admits (lower case).
_PRINCIPAL_KEYS = frozenset({"aws:principalaccount", "aws:principalarn"})
_PINNING = frozenset({"stringequals", "stringequalsignorecase", "arnequals"})

Statement = dict[str, Any]


def account_of(principal: Any) -> str | None:
    """The account an AWS principal value names (an id, an IAM or STS ARN), else None."""
    match = _ACCOUNT.match(str(principal)) if isinstance(principal, str | int) else None
    return (match[1] or match[2]) if match else None


def is_wildcard(value: Any) -> bool:
    return isinstance(value, str) and ("*" in value or "?" in value)


def granted_risky_actions(statement: Statement, names: ActionNames = GENERAL_PURPOSE) -> list[str]:
    """The risky actions the statement's Action (or NotAction) takes in (IAM ignores case)."""
    if "NotAction" in statement:
        excluded = as_list(statement["NotAction"])
        return [
            action
            for action in names.risky
            if not any(wildcard_match(p, action, ignore_case=True) for p in excluded)
        ]
    patterns = as_list(statement.get("Action", []))
    return [
        action
        for action in names.risky
        if any(wildcard_match(p, action, ignore_case=True) for p in patterns)
    ]


def _narrowed_pattern(pattern: Any, names: ActionNames) -> list[Any]:
    """What stays of one Action entry without the risky actions: itself, nothing, or the known
    actions a wildcard matches but for the risky ones."""
    if not any(wildcard_match(pattern, action, ignore_case=True) for action in names.risky):
        return [pattern]
    if not is_wildcard(pattern):
        return []
    return [
        action
        for action in names.known
        if not names.is_risky(action) and wildcard_match(pattern, action, ignore_case=True)
    ]


def without_risky_actions(
    statement: Statement, names: ActionNames = GENERAL_PURPOSE
) -> Statement | None:
    """The statement granting none of the risky actions; None when it would grant nothing."""
    if "NotAction" in statement:
        excluded = as_list(statement["NotAction"])
        return {**statement, "NotAction": [*excluded, *granted_risky_actions(statement, names)]}
    patterns = as_list(statement.get("Action", []))
    kept = list(dict.fromkeys(a for p in patterns for a in _narrowed_pattern(p, names)))
    if not kept:
        return None
    single = not isinstance(statement.get("Action"), list) and len(kept) == 1
    return {**statement, "Action": kept[0] if single else kept}


def _pinned_to(statement: Statement, account: str) -> bool:
    """Do the conditions admit principals of `account` only (aws:PrincipalAccount, or
    aws:PrincipalArn naming its principals)?"""
    condition = statement.get("Condition")
    for operator, body in condition.items() if isinstance(condition, dict) else []:
        if str(operator).lower() not in _PINNING or not isinstance(body, dict):
            continue
        for key, values in body.items():
            listed = as_list(values)
            if str(key).lower() not in _PRINCIPAL_KEYS or not listed:
                continue
            if all(not is_wildcard(v) and account_of(v) == account for v in listed):
                return True
    return False


@dataclass(frozen=True)
class Grantees:
    """A statement's principals: those of other accounts, and the others (kept as they are)."""

    foreign: dict[str, Any]
    others: dict[str, Any]
    # A wildcard principal restricted by conditions to any account: the whole statement grants
    # to other accounts and cannot be split by principal.
    whole: bool = False

    def names(self) -> list[str]:
        if self.whole:
            return ["any account its conditions admit"]
        accounts = (account_of(v) for v in as_list(self.foreign.get("AWS", [])))
        return [f"account {a}" for a in dict.fromkeys(accounts) if a]


def _split_principals(principal: dict[str, Any], own: str | None) -> Grantees:
    foreign: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for kind, values in principal.items():
        listed = as_list(values)
        external = [kind == "AWS" and account_of(v) not in (None, own) for v in listed]
        theirs = [v for v, other in zip(listed, external, strict=True) if other]
        ours = [v for v, other in zip(listed, external, strict=True) if not other]
        for part, found in ((foreign, theirs), (others, ours)):
            if found:  # one value stays one value; a list stays a list
                part[kind] = found if isinstance(values, list) else found[0]
    return Grantees(foreign, others)


def grantees(statement: Statement, public: bool, own: str | None) -> Grantees | None:
    """Who of another account the Allow statement grants to; None when nobody (or it is not
    this control's to judge: a Deny, a NotPrincipal, a public statement's public principals)."""
    if statement.get("Effect") != "Allow" or "NotPrincipal" in statement:
        return None
    principal = statement.get("Principal")
    wildcard = principal == "*" or (
        isinstance(principal, dict)
        and any(is_wildcard(v) for v in as_list(principal.get("AWS", [])))
    )
    if wildcard and not public and (own is None or not _pinned_to(statement, own)):
        return Grantees({}, {}, whole=True)
    if not isinstance(principal, dict):
        return None
    found = _split_principals(principal, own)
    return found if found.foreign else None


def fixed_statement(
    statement: Statement, found: Grantees, names: ActionNames = GENERAL_PURPOSE
) -> list[Statement]:
    """The statement without the risky actions for the other accounts: narrowed in place when
    it grants to them only, else kept for the others and followed by a narrowed copy without
    its Sid."""
    if found.whole or not found.others:
        narrowed = without_risky_actions(statement, names)
        return [narrowed] if narrowed else []
    kept = {**statement, "Principal": found.others}
    foreign = {**without_sid(statement), "Principal": found.foreign}
    narrowed = without_risky_actions(foreign, names)
    return [kept, narrowed] if narrowed else [kept]


def _label(index: int, statement: Statement) -> str:
    sid = statement.get("Sid")
    return f'"{sid}"' if isinstance(sid, str) and sid else f"#{index + 1}"


@dataclass(frozen=True)
class Finding:
    index: int
    grantees: Grantees
    actions: list[str]

    def text(self, statement: Statement) -> str:
        who = ", ".join(self.grantees.names())
        return f"statement {_label(self.index, statement)} allows {who} {', '.join(self.actions)}"


def findings(
    found: list[Statement],
    public: list[bool],
    own: str | None,
    names: ActionNames = GENERAL_PURPOSE,
) -> list[Finding]:
    result = []
    for index, statement in enumerate(found):
        who = grantees(statement, public[index], own)
        actions = granted_risky_actions(statement, names) if who else []
        if who and actions:
            result.append(Finding(index, who, actions))
    return result


class CrossAccountActions(BucketPolicySurface):
    id = "cross-account-actions"
    fsbp = ("S3.6",)
    severity = "HIGH"
    family = "public-access"
    title = "Bucket policy lets no other account change its policy, ACLs or encryption"
    trigger_events = ("PutBucketPolicy",)
    default_mode = Mode.NOTIFY
    # The fix deletes the policy when no statement is left.
    write_actions = ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy")
    # A directory bucket's policy can grant other accounts its own (`s3express:`) three.
    directory_buckets = True

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        return self._judge(state, settings, GENERAL_PURPOSE)

    def evaluate_subject(self, subject: str, state: State, settings: Settings) -> Evaluation:
        names = DIRECTORY if is_directory_bucket(subject) else GENERAL_PURPOSE
        return self._judge(state, settings, names)

    def _judge(self, state: State, settings: Settings, names: ActionNames) -> Evaluation:
        try:
            found = checked_statements(state)
            document = policy_of(state)
            public = [s.public for s in analyze(document).statements] if document else []
        except PolicyError as error:
            return Evaluation(False, f"the bucket policy cannot be judged: {error}", fixable=False)
        own = settings.account_id
        wrong = findings(found, public, own, names)
        if not wrong:
            return Evaluation(
                True, "no other account may change the bucket's policy, ACLs or encryption"
            )
        reason = "; ".join(f.text(found[f.index]) for f in wrong)
        if own is None:
            why = "the bucket's own account is not known (ACCOUNT_ID), so no grant is changed"
            return Evaluation(False, f"{reason}; not fixed: {why}", fixable=False)
        desired = with_statements(state, _fixed(found, wrong, names))
        limit = too_large(desired["Policy"]) if desired["Policy"] else None
        if limit:
            return Evaluation(False, f"{reason}; not fixed: narrowed, {limit}", fixable=False)
        return Evaluation(False, reason, desired)


def _fixed(found: list[Statement], wrong: list[Finding], names: ActionNames) -> list[Statement]:
    by_index = {f.index: f for f in wrong}
    fixed: list[Statement] = []
    for index, statement in enumerate(found):
        finding = by_index.get(index)
        narrowed = fixed_statement(statement, finding.grantees, names) if finding else [statement]
        fixed.extend(narrowed)
    return fixed
