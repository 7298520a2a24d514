"""Properties of every public-access fix, on generated ACLs, policies and settings.

For public-acl, the bucket policy (public-policy and secure-transport, one read-modify-write),
object-ownership and bucket-public-access-block:

- the fix never widens access: no grant appears that was not there (the owner's aside, who holds
  every right once ACLs are disabled); no Allow statement appears or changes, and every request a
  Deny refused before is refused after, so the policy allows no request it did not allow; the only
  statements added are the TLS rules (and object-ownership's log delivery statement, standing in
  for the log delivery group's ACL grant); a Block Public Access setting only goes from off to on;
- the fix is idempotent: judging the fixed state finds it right, and fixing again changes nothing;
- nothing raises: what cannot be fixed is an unfixable finding or a failed outcome.

The pure `evaluate` step is judged on many examples, the engine on moto on a bounded number.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import operator
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bucketwarden.catalogue import controls_of
from bucketwarden.controls.base import Evaluation, State
from bucketwarden.controls.bucket_policy import as_list, wildcard_match
from bucketwarden.controls.object_ownership import (
    ENFORCED,
    LOG_DELIVERY,
    LOG_DELIVERY_SID,
    LOG_DELIVERY_STATEMENT,
    ObjectOwnership,
    log_delivery_statement,
    with_log_delivery,
)
from bucketwarden.controls.public_access_block import (
    ALL_ON,
    SETTINGS,
    BucketPublicAccessBlock,
)
from bucketwarden.controls.public_acl import PublicAcl, public_group
from bucketwarden.controls.public_policy import PublicPolicy
from bucketwarden.controls.secure_transport import (
    INSECURE_TRANSPORT_SID,
    SecureTransport,
    rules,
)
from bucketwarden.policy import statements
from bucketwarden.settings import TLS_VERSIONS, Settings, mode_variable
from tests.helpers import API_CALLS, calls_delta, handle, make_bucket, s3, temporary_environment
from tests.strategies import (
    BLOCK_PUBLIC_ACCESS_CONFIGURATIONS,
    BLOCK_PUBLIC_ACCESS_STATES,
    CLOUDFRONT,
    CONDITION_CLAUSES,
    LOGGING,
    OAI,
    OTHER_ACCOUNT,
    OWN_ACCOUNT,
    OWNERSHIP_SETTINGS,
    VPC_ENDPOINT,
    acl_grants,
    acls,
    canonical_grant,
    examples,
    large_policies,
    owner_and_log_delivery_grants,
    padded_to,
    policies,
    policy_documents,
)
from tests.test_controls_object_ownership import ownership, set_ownership
from tests.test_controls_public_policy import DISTRIBUTION, public_read, stored_policy

FAMILY = "public-access"
BUCKET = "property-bucket"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
OWNER_ID = "c" * 64
# moto's canonical id for its account (checked where the engine reads it).
MOTO_OWNER_ID = "75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a"
SETTINGS_OF_TLS = st.sampled_from(TLS_VERSIONS).map(lambda minimum: Settings(tls_minimum=minimum))


def multiset(items: list[Any]) -> Counter[str]:
    return Counter(json.dumps(item, sort_keys=True) for item in items)


def assert_no_new_grants(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    """Every grant after the fix was there before (as many times), the owner's aside."""
    others = [
        g for g in after if (g.get("Grantee") or {}).get("ID") not in (OWNER_ID, MOTO_OWNER_ID)
    ]
    assert not multiset(others) - multiset(before), (before, after)


# -- what a bucket policy allows and denies: a small model of IAM's evaluation ------------------


@dataclass(frozen=True)
class Caller:
    kind: str  # "AWS", "Service", "CanonicalUser", "Federated" or "Anonymous"
    name: str
    account: str | None = None


@dataclass(frozen=True)
class Request:
    caller: Caller
    action: str
    resource: str
    context: tuple[tuple[str, str], ...]  # condition keys (lower case) the request carries

    def value(self, key: str) -> str | None:
        return dict(self.context).get(key.lower())


CALLERS = (
    Caller("Anonymous", "anonymous"),
    Caller("AWS", f"arn:aws:iam::{OWN_ACCOUNT}:role/app", OWN_ACCOUNT),
    Caller("AWS", f"arn:aws:iam::{OTHER_ACCOUNT}:root", OTHER_ACCOUNT),
    Caller("AWS", f"arn:aws:iam::{OTHER_ACCOUNT}:role/partner", OTHER_ACCOUNT),
    Caller("AWS", OAI),
    Caller("Service", CLOUDFRONT),
    Caller("Service", LOGGING),
    Caller("CanonicalUser", "b" * 64),
    Caller("Federated", "cognito-identity.amazonaws.com"),
)
ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:PutBucketPolicy")
# What requests carry for each condition key the generated policies use (None: not at all).
CONTEXT_VALUES: dict[str, tuple[str | None, ...]] = {
    "aws:securetransport": ("true", "false"),
    "s3:tlsversion": ("1.0", "1.2", "1.3"),
    "aws:sourcearn": (None, DISTRIBUTION, "arn:aws:cloudtrail:us-east-1:1:trail/x"),
    "aws:sourceaccount": (None, OWN_ACCOUNT, OTHER_ACCOUNT),
    "aws:sourcevpce": (None, VPC_ENDPOINT, "vpce-9z8y7x6w"),
    "aws:principalorgid": (None, "o-a1b2c3d4e5"),
    "aws:sourceip": ("10.1.2.3", "203.0.113.7"),
}
assert {key.lower() for _, key, _ in CONDITION_CLAUSES} <= set(CONTEXT_VALUES)
_ACCOUNT_ROOT = re.compile(r"^(?:arn:aws:iam::)?(\d{12})(?::root)?$")


def _principal_matches(element: Any, caller: Caller) -> bool:
    if element == "*":
        return True
    if not isinstance(element, dict):
        return False
    for kind, values in element.items():
        for value in as_list(values):
            if kind == "AWS" and value == "*":
                return True  # {"AWS": "*"} is everyone, anonymous callers too
            if kind != caller.kind:
                continue
            account = _ACCOUNT_ROOT.match(str(value)) if kind == "AWS" else None
            if account and account[1] == caller.account:
                return True
            if wildcard_match(value, caller.name):
                return True
    return False


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _ip_in(value: Any, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return False


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[Any, str], bool]:
    def check(wanted: Any, found: str) -> bool:
        left, right = _number(found), _number(wanted)
        return left is not None and right is not None and compare(left, right)

    return check


def _same_text(wanted: Any, found: str) -> bool:
    return str(wanted).lower() == found.lower()


# How a request's value satisfies one value of a positive operator (lower case, no IfExists).
COMPARISONS: dict[str, Callable[[Any, str], bool]] = {
    "stringequals": lambda wanted, found: str(wanted) == found,
    "stringequalsignorecase": _same_text,
    "stringlike": wildcard_match,
    "arnequals": wildcard_match,
    "arnlike": wildcard_match,
    "bool": _same_text,
    "ipaddress": _ip_in,
    "numericequals": _numeric(operator.eq),
    "numericlessthan": _numeric(operator.lt),
    "numericlessthanequals": _numeric(operator.le),
    "numericgreaterthan": _numeric(operator.gt),
    "numericgreaterthanequals": _numeric(operator.ge),
}


NEGATED = {
    "stringnotequals": "stringequals",
    "stringnotlike": "stringlike",
    "arnnotequals": "arnequals",
    "arnnotlike": "arnlike",
    "notipaddress": "ipaddress",
    "numericnotequals": "numericequals",
    "stringnotequalsignorecase": "stringequalsignorecase",
}


def _condition_holds(operator_name: str, key: str, values: Any, request: Request) -> bool:
    qualifier, _, base = str(operator_name).lower().rpartition(":")
    if_exists = base.endswith("ifexists")
    base = base.removesuffix("ifexists")
    found = request.value(str(key))
    negated = base in NEGATED
    if found is None:
        # IAM: a missing key fails a condition, unless IfExists, ForAllValues or a negation.
        return if_exists or qualifier == "forallvalues" or negated
    compare = COMPARISONS.get(NEGATED.get(base, base), lambda wanted, found: False)
    matched = any(compare(value, found) for value in as_list(values))
    return not matched if negated else matched


def matches(statement: Any, request: Request) -> bool:
    """Does the statement apply to the request (its Principal, Action, Resource, Condition)?"""
    if not isinstance(statement, dict):
        return False
    if "Principal" in statement:
        who = _principal_matches(statement["Principal"], request.caller)
    else:
        who = "NotPrincipal" in statement and not _principal_matches(
            statement["NotPrincipal"], request.caller
        )
    what = _element_matches(statement, "Action", request.action, ignore_case=True)
    where = _element_matches(statement, "Resource", request.resource)
    condition = statement.get("Condition")
    clauses = [
        (operator_name, key, values)
        for operator_name, body in (condition.items() if isinstance(condition, dict) else [])
        for key, values in (body.items() if isinstance(body, dict) else [("?", None)])
    ]
    return who and what and where and all(_condition_holds(*c, request) for c in clauses)


def _element_matches(statement: dict[str, Any], name: str, value: str, ignore_case=False) -> bool:
    if name in statement:
        return any(
            wildcard_match(p, value, ignore_case=ignore_case) for p in as_list(statement[name])
        )
    excluded = statement.get(f"Not{name}")
    if excluded is None:
        return False
    return not any(wildcard_match(p, value, ignore_case=ignore_case) for p in as_list(excluded))


def _keys_in(found: list[Any]) -> list[str]:
    keys = {
        str(key).lower()
        for statement in found
        if isinstance(statement, dict) and isinstance(statement.get("Condition"), dict)
        for body in statement["Condition"].values()
        if isinstance(body, dict)
        for key in body
    }
    return sorted(keys & set(CONTEXT_VALUES))


def requests(bucket_arn: str, keys: list[str]) -> Iterator[Request]:
    """Every request of the model that varies the condition keys `keys`."""
    objects = [bucket_arn, f"{bucket_arn}/key.txt", f"{bucket_arn}/logs/key", "arn:aws:s3:::x/k"]
    for caller, action, resource in itertools.product(CALLERS, ACTIONS, objects):
        for values in itertools.product(*(CONTEXT_VALUES[key] for key in keys)):
            context = tuple((k, v) for k, v in zip(keys, values, strict=True) if v is not None)
            yield Request(caller, action, resource, context)


def listed(document: Any) -> list[Any]:
    return [] if document is None else statements(document)


def without_sid(statement: Any) -> Any:
    """A statement for comparing: its Sid is a label and grants or denies nothing."""
    if not isinstance(statement, dict):
        return statement
    return {key: value for key, value in statement.items() if key != "Sid"}


def assert_never_widens(before: Any, after: Any, bucket_arn: str, may_add: list[Any]) -> None:
    """The policy `after` allows no request `before` did not.

    Statements are compared without their Sid. No Allow statement appears or changes; the
    statements that appear are among `may_add`; every request a Deny of `before` refused is
    refused by a Deny of `after` (a removed Deny would let identity-based grants of the account
    through as well as the policy's own).
    """
    if after == before:
        return
    assert isinstance(before, dict | type(None)), "a document that cannot be judged was changed"
    old = [without_sid(s) for s in listed(before)]
    new = [without_sid(s) for s in listed(after)]
    allowed_additions = multiset([without_sid(s) for s in may_add])
    added = multiset(new) - multiset(old)
    # An Allow that changed counts as added: it may grant more than it did. One that only lost
    # principals (the public ones beside fixed ones) grants less, and is allowed.
    unexplained = [
        text for text in (added - allowed_additions).elements() if not _narrowed(text, old)
    ]
    assert not unexplained, f"statements added: {unexplained}"
    removed = [s for s in old if s.get("Effect") == "Deny" and s not in new]
    if not removed:
        return
    denies = [s for s in new if s.get("Effect") == "Deny"]
    for request in requests(bucket_arn, _keys_in(removed + denies)):
        if any(matches(s, request) for s in removed):
            assert any(matches(s, request) for s in denies), f"no longer denied: {request}"


def _principals(statement: dict[str, Any]) -> dict[str, set[str]] | None:
    """A statement's Principal as sets of values per kind; None for "*" or an odd shape."""
    principal = statement.get("Principal")
    if not isinstance(principal, dict):
        return None
    values = {kind: v if isinstance(v, list) else [v] for kind, v in principal.items()}
    return {kind: {json.dumps(value) for value in found} for kind, found in values.items()}


def _narrowed(text: str, originals: list[dict[str, Any]]) -> bool:
    """The statement (as `multiset` writes it) is one of `originals` with principals removed."""
    statement = json.loads(text)
    kept = _principals(statement)
    if kept is None:
        return False
    for original in originals:
        had = _principals(original)
        rest = {k: v for k, v in original.items() if k != "Principal"}
        if had is None or rest != {k: v for k, v in statement.items() if k != "Principal"}:
            continue
        if all(kind in had and values <= had[kind] for kind, values in kept.items()):
            return True
    return False


# -- the bucket policy surface, judged as the engine judges it ------------------------------------

POLICY_CONTROLS = (PublicPolicy(), SecureTransport())


def fix_policy_surface(state: State, judged_by: Settings) -> tuple[State, list[Evaluation]]:
    """The state the engine writes: each control judges what the one before it left."""
    evaluations = []
    for control in POLICY_CONTROLS:
        evaluation = control.evaluate(state, judged_by)
        evaluations.append(evaluation)
        if not evaluation.compliant and evaluation.fixable:
            state = evaluation.desired
    return state, evaluations


def tls_statements(bucket_arn: str, judged_by: Settings) -> list[dict[str, Any]]:
    return [rule.statement(bucket_arn) for rule in rules(judged_by)]


def check_policy_fix(document: Any, judged_by: Settings) -> None:
    before = {"BucketArn": BUCKET_ARN, "Policy": document}
    after, evaluations = fix_policy_surface(before, judged_by)
    may_add = tls_statements(BUCKET_ARN, judged_by)
    assert_never_widens(document, after["Policy"], BUCKET_ARN, may_add)
    again, second = fix_policy_surface(after, judged_by)
    assert again == after
    for first, then in zip(evaluations, second, strict=True):
        if first.compliant or first.fixable:
            assert then.compliant, then.reason


@given(document=policy_documents(BUCKET), judged_by=SETTINGS_OF_TLS)
# Anyone beside a named account in one statement: the statement stays for the account.
@example(
    document={
        "Statement": [
            public_read(BUCKET),
            {
                "Effect": "Allow",
                "Principal": {"AWS": ["*", "111122223333"]},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{BUCKET}",
            },
        ]
    },
    judged_by=Settings(tls_minimum=""),
)
def test_policy_fix_never_widens_access_and_is_idempotent(
    document: Any, judged_by: Settings
) -> None:
    check_policy_fix(document, judged_by)


@given(document=large_policies(BUCKET))
# A character JSON escapes unless asked not to (DEL): its written size is one byte, not six.
@example(document=padded_to({"Id": "\x7f", "Statement": []}, 20042))
def test_policy_near_the_size_limit_gets_the_rule_only_if_it_fits(document: dict[str, Any]) -> None:
    before = {"BucketArn": BUCKET_ARN, "Policy": document}
    after, [_, transport] = fix_policy_surface(before, Settings())
    # As S3 measures it: the UTF-8 bytes of the text written (non-ASCII text is not escaped).
    written = json.dumps(after["Policy"], separators=(",", ":"), ensure_ascii=False).encode()
    assert len(written) <= 20 * 1024 or after == before
    if not transport.compliant and not transport.fixable:
        assert "not fixed: with the rule the policy would be" in transport.reason


# -- public-acl ---------------------------------------------------------------------------------


@given(acl=acls(OWNER_ID))
def test_public_acl_fix_removes_grants_only_and_is_idempotent(acl: dict[str, Any]) -> None:
    control = PublicAcl()
    evaluation = control.evaluate(acl, Settings())
    public = [g for g in acl["Grants"] if public_group(g)]
    assert evaluation.compliant is (not public)
    if evaluation.compliant:
        return
    desired = evaluation.desired
    assert desired["Owner"] == acl["Owner"]
    assert_no_new_grants(acl["Grants"], desired["Grants"])
    assert not any(public_group(g) for g in desired["Grants"])
    assert control.evaluate(desired, Settings()).compliant


# -- object-ownership ---------------------------------------------------------------------------


@given(grants=owner_and_log_delivery_grants(OWNER_ID), setting=OWNERSHIP_SETTINGS)
def test_object_ownership_fix_never_widens_and_is_idempotent(
    grants: list[dict[str, Any]], setting: str | None
) -> None:
    state = {"ObjectOwnership": setting, "Owner": {"ID": OWNER_ID}, "Grants": grants}
    control = ObjectOwnership()
    evaluation = control.evaluate(state, Settings())
    assert not evaluation.compliant
    movable = [g for g in grants if is_owner_or_log_delivery(g)]
    if len(movable) < len(grants):
        assert not evaluation.fixable
        assert "a person must move these grants" in evaluation.reason
        return
    desired = evaluation.desired
    assert desired["ObjectOwnership"] == ENFORCED
    assert_no_new_grants(grants, desired.get("Grants", []))
    writes_logs = any(is_log_delivery(g) and g["Permission"] == "WRITE" for g in grants)
    assert (desired.get(LOG_DELIVERY_STATEMENT) == LOG_DELIVERY_SID) is writes_logs
    assert control.evaluate(desired, Settings()).compliant


def is_log_delivery(grant: dict[str, Any]) -> bool:
    return grant["Grantee"].get("URI") == LOG_DELIVERY


def is_owner_or_log_delivery(grant: dict[str, Any]) -> bool:
    if grant["Grantee"].get("ID") == OWNER_ID:
        return True
    return is_log_delivery(grant) and grant["Permission"] in {"WRITE", "READ_ACP"}


@given(document=st.none() | policies(BUCKET) | large_policies(BUCKET))
def test_log_delivery_statement_adds_only_itself_and_is_added_once(document: Any) -> None:
    wanted = log_delivery_statement(BUCKET_ARN, OWN_ACCOUNT)
    changed = with_log_delivery(document, wanted)
    if changed is None:
        return  # a statement already lets the logging service deliver
    assert_never_widens(document, changed, BUCKET_ARN, [wanted])
    assert with_log_delivery(changed, wanted) is None


# -- bucket-public-access-block -----------------------------------------------------------------


@given(state=BLOCK_PUBLIC_ACCESS_STATES)
def test_block_public_access_fix_only_turns_settings_on(state: dict[str, Any] | None) -> None:
    control = BucketPublicAccessBlock()
    evaluation = control.evaluate(state, Settings())
    if evaluation.compliant:
        assert all(state[name] is True for name in SETTINGS)
        return
    assert evaluation.desired == ALL_ON
    assert control.evaluate(evaluation.desired, Settings()).compliant


# -- the engine on moto: what our code reads, writes and reads back -------------------------------

bucket_numbers = itertools.count()


def new_bucket() -> str:
    """A bucket of its own for each example (one moto for the whole test)."""
    return make_bucket(f"property-bucket-{next(bucket_numbers)}")


def run(
    event_name: str, bucket: str, controls: set[str], **environment: str
) -> list[dict[str, Any]]:
    """The outcomes of `controls` for the event, the family's other controls off."""
    off = {mode_variable(c.id): "off" for c in controls_of(FAMILY) if c.id not in controls}
    with temporary_environment({**environment, **off}):
        outcomes = handle(event_name, bucket, FAMILY, event_id=f"{event_name}-{bucket}")
    return [o for o in outcomes if o["control"] in controls]


def run_again(event_name: str, bucket: str, controls: set[str], **environment: str) -> list[Any]:
    """The same event delivered once more: nothing is written."""
    before = API_CALLS.snapshot()
    outcomes = run(event_name, bucket, controls, **environment)
    writes = [
        call for call in calls_delta(before) if call.split(".")[1].startswith(("Put", "Delete"))
    ]
    assert not writes, (writes, outcomes)
    return outcomes


def read_acl(bucket: str) -> dict[str, Any]:
    answer = s3().get_bucket_acl(Bucket=bucket)
    return {"Owner": answer["Owner"], "Grants": answer["Grants"]}


def put_acl(bucket: str, grants: list[dict[str, Any]]) -> None:
    # The owner's FULL_CONTROL, as S3 starts every ACL: moto fails on an ACL left with no grant.
    owner = canonical_grant(MOTO_OWNER_ID, "FULL_CONTROL", None)
    policy = {"Owner": {"ID": MOTO_OWNER_ID}, "Grants": [owner, *grants]}
    s3().put_bucket_acl(Bucket=bucket, AccessControlPolicy=policy)


MOTO_GRANTS = st.lists(acl_grants(MOTO_OWNER_ID, hostile=False), max_size=6)


@pytest.mark.usefixtures("aws")
@settings(max_examples=examples(10))
@given(grants=MOTO_GRANTS)
def test_public_acl_through_the_engine(grants: list[dict[str, Any]]) -> None:
    bucket = new_bucket()
    put_acl(bucket, grants)
    [outcome] = run("PutBucketAcl", bucket, {"public-acl"})
    before = outcome["before"]
    assert before["Owner"]["ID"] == MOTO_OWNER_ID
    expected = "remediated" if any(public_group(g) for g in before["Grants"]) else "compliant"
    assert outcome["status"] == expected, outcome
    after = read_acl(bucket)
    assert_no_new_grants(before["Grants"], after["Grants"])
    assert not any(public_group(g) for g in after["Grants"])
    [again] = run_again("PutBucketAcl", bucket, {"public-acl"})
    assert again["status"] == "compliant", again


POLICY_CONTROL_IDS = {"public-policy", "secure-transport"}


def put_document(bucket: str, document: Any) -> None:
    if document is not None:
        text = document if isinstance(document, str) else json.dumps(document)
        s3().put_bucket_policy(Bucket=bucket, Policy=text)


@pytest.mark.usefixtures("aws")
@settings(max_examples=examples(10))
@given(
    document=policy_documents("placeholder").filter(lambda d: d != ""),
    minimum=st.sampled_from(TLS_VERSIONS),
)
def test_bucket_policy_through_the_engine(document: Any, minimum: str) -> None:
    bucket = new_bucket()
    document = json.loads(json.dumps(document).replace("placeholder", bucket))
    put_document(bucket, document)
    environment = {"TLS_MINIMUM": minimum}

    outcomes = run("PutBucketPolicy", bucket, POLICY_CONTROL_IDS, **environment)

    assert {o["status"] for o in outcomes} <= {"compliant", "remediated", "noncompliant"}, outcomes
    before = outcomes[0]["before"]["Policy"]
    after = stored_policy(bucket) if not isinstance(before, str) else before
    arn = f"arn:aws:s3:::{bucket}"
    assert_never_widens(before, after, arn, tls_statements(arn, Settings(tls_minimum=minimum)))
    again = run_again("PutBucketPolicy", bucket, POLICY_CONTROL_IDS, **environment)
    for first, then in zip(outcomes, again, strict=True):
        if first["status"] in {"compliant", "remediated"}:
            assert then["status"] == "compliant", then


def read_ownership_surface(bucket: str) -> tuple[str | None, list[Any], Any]:
    return ownership(bucket), read_acl(bucket)["Grants"], stored_policy(bucket)


@pytest.mark.usefixtures("aws")
@settings(max_examples=examples(10))
@given(
    grants=owner_and_log_delivery_grants(MOTO_OWNER_ID, hostile=False),
    setting=OWNERSHIP_SETTINGS,
    document=st.none() | policies("placeholder") | large_policies("placeholder"),
)
def test_object_ownership_through_the_engine(
    grants: list[dict[str, Any]], setting: str | None, document: Any
) -> None:
    bucket = new_bucket()
    set_ownership(bucket, setting)
    put_acl(bucket, grants)
    document = json.loads(json.dumps(document).replace("placeholder", bucket))
    put_document(bucket, document)
    found = read_ownership_surface(bucket)

    [outcome] = run("PutBucketOwnershipControls", bucket, {"object-ownership"})

    setting_after, grants_after, policy_after = read_ownership_surface(bucket)
    if outcome["status"] != "remediated":
        # A grant only a person can move, or a policy with no room for the log statement.
        assert outcome["status"] in {"noncompliant", "failed"}, outcome
        assert (setting_after, grants_after, policy_after) == found
        return
    assert setting_after == ENFORCED
    assert_no_new_grants(found[1], grants_after)
    wanted = log_delivery_statement(f"arn:aws:s3:::{bucket}", OWN_ACCOUNT)
    assert_never_widens(found[2], policy_after, f"arn:aws:s3:::{bucket}", [wanted])
    [again] = run_again("PutBucketOwnershipControls", bucket, {"object-ownership"})
    assert again["status"] == "compliant", again


def read_block(bucket: str) -> dict[str, Any] | None:
    try:
        answer = s3().get_public_access_block(Bucket=bucket)
    except s3().exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "NoSuchPublicAccessBlockConfiguration":
            raise
        return None
    return dict(answer["PublicAccessBlockConfiguration"])


@pytest.mark.usefixtures("aws")
@settings(max_examples=examples(10))
@given(configuration=BLOCK_PUBLIC_ACCESS_CONFIGURATIONS)
def test_block_public_access_through_the_engine(configuration: dict[str, bool] | None) -> None:
    bucket = new_bucket()
    if configuration is not None:
        s3().put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)
    found = read_block(bucket) or {}

    [outcome] = run("PutBucketPublicAccessBlock", bucket, {"bucket-public-access-block"})

    assert outcome["status"] in {"compliant", "remediated"}, outcome
    after = read_block(bucket)
    assert after == ALL_ON
    assert all(after[name] for name, on in found.items() if on)
    [again] = run_again("PutBucketPublicAccessBlock", bucket, {"bucket-public-access-block"})
    assert again["status"] == "compliant", again


CREATE_BUCKET_CONTROLS = {c.id for c in controls_of(FAMILY) if "CreateBucket" in c.trigger_events}


@pytest.mark.usefixtures("aws")
@settings(max_examples=examples(10))
@given(
    grants=MOTO_GRANTS,
    setting=OWNERSHIP_SETTINGS,
    configuration=BLOCK_PUBLIC_ACCESS_CONFIGURATIONS,
    document=st.none() | policies("placeholder"),
)
def test_every_create_bucket_control_at_once(
    grants: list[dict[str, Any]],
    setting: str | None,
    configuration: dict[str, bool] | None,
    document: Any,
) -> None:
    """CreateBucket runs four controls on four surfaces: together they still widen nothing."""
    bucket = new_bucket()
    set_ownership(bucket, setting)
    put_acl(bucket, grants)
    if configuration is not None:
        s3().put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=configuration)
    document = json.loads(json.dumps(document).replace("placeholder", bucket))
    put_document(bucket, document)
    acl_before = read_acl(bucket)["Grants"]

    outcomes = run("CreateBucket", bucket, CREATE_BUCKET_CONTROLS)

    statuses = {o["control"]: o["status"] for o in outcomes}
    assert set(statuses) == CREATE_BUCKET_CONTROLS
    assert set(statuses.values()) <= {"compliant", "remediated", "noncompliant", "failed"}
    assert statuses["bucket-public-access-block"] in {"compliant", "remediated"}
    assert read_block(bucket) == ALL_ON
    assert_no_new_grants(acl_before, read_acl(bucket)["Grants"])
    arn = f"arn:aws:s3:::{bucket}"
    may_add = [*tls_statements(arn, Settings()), log_delivery_statement(arn, OWN_ACCOUNT)]
    assert_never_widens(document, stored_policy(bucket), arn, may_add)
    again = run_again("CreateBucket", bucket, CREATE_BUCKET_CONTROLS)
    for first, then in zip(outcomes, again, strict=True):
        if first["status"] in {"compliant", "remediated"}:
            assert then["status"] == "compliant", then


# -- examples the fuzzing found: each was a product bug ------------------------------------------


def test_a_deny_under_our_transport_sid_that_denies_more_is_not_replaced() -> None:
    outside_the_endpoint = {
        "Sid": INSECURE_TRANSPORT_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [BUCKET_ARN, f"{BUCKET_ARN}/*"],
        "Condition": {"StringNotEquals": {"aws:SourceVpce": VPC_ENDPOINT}},
    }
    document = {"Version": "2012-10-17", "Statement": [outside_the_endpoint]}
    check_policy_fix(document, Settings(tls_minimum=""))


def test_a_deny_under_our_log_delivery_sid_is_not_dropped() -> None:
    no_plain_http = {
        "Sid": LOG_DELIVERY_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": f"{BUCKET_ARN}/*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    document = {"Version": "2012-10-17", "Statement": [public_read(BUCKET), no_plain_http]}
    wanted = log_delivery_statement(BUCKET_ARN, OWN_ACCOUNT)
    assert_never_widens(document, with_log_delivery(document, wanted), BUCKET_ARN, [wanted])


def test_a_superscript_digit_in_a_deny_condition_is_judged_not_raised() -> None:
    deny_from_an_odd_endpoint = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceVpce": "²"}},
    }
    document = {
        "Version": "2012-10-17",
        "Statement": [public_read(BUCKET), deny_from_an_odd_endpoint],
    }
    check_policy_fix(document, Settings())


@pytest.mark.usefixtures("aws")
def test_a_superscript_digit_in_a_deny_condition_through_the_engine() -> None:
    bucket = new_bucket()
    deny = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceVpce": "²"}},
    }
    put_document(bucket, {"Version": "2012-10-17", "Statement": [public_read(bucket), deny]})
    outcomes = run("PutBucketPolicy", bucket, POLICY_CONTROL_IDS)
    assert [o["status"] for o in outcomes] == ["remediated", "remediated"]
