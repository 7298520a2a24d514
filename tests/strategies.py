"""Hypothesis strategies shared by the property, fuzz and convergence tests.

Three kinds of input, each as S3 or CloudTrail would hand it to the engine and with the hostile
values a person (or another tool) can put there: bucket ACLs, bucket policies and CloudTrail events
(generated from scratch, or real records from tests/data/cloudtrail-samples/ mutated).

The long run: BUCKETWARDEN_HYPOTHESIS_PROFILE=fuzz selects the "fuzz" profile that conftest.py
registers (many more examples, no deadline); tests on moto scale their examples with `examples`.
"""

from __future__ import annotations

import copy
import json
import operator
from collections.abc import Callable
from functools import cache
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st

from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.object_ownership import LOG_DELIVERY_SID
from bucketwarden.controls.public_access_block import SETTINGS as BLOCK_PUBLIC_ACCESS_SETTINGS
from bucketwarden.controls.secure_transport import INSECURE_TRANSPORT_SID, OUTDATED_TLS_SID
from tests.conftest import SAMPLES
from tests.helpers import ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY, cloudtrail_record
from tests.test_controls_public_policy import (
    DISTRIBUTION,
    OAI,
    OTHER_ACCOUNT,
    cloudfront_oac,
    cloudfront_oai,
    cloudtrail_write,
    cross_account,
    elb_logs,
    organisation,
    public_read,
    public_write_over_tls,
)
from tests.test_controls_secure_transport import deny_insecure_transport, deny_outdated_tls

# -- profiles (conftest.py loads the one BUCKETWARDEN_HYPOTHESIS_PROFILE names) -------------


def examples(divisor: int, minimum: int = 5) -> int:
    """The profile's number of examples divided by `divisor`: for tests that run on moto."""
    return max(minimum, settings.default.max_examples // divisor)


def rarely(strategy: st.SearchStrategy[Any], otherwise: Any = None) -> st.SearchStrategy[Any]:
    """`strategy` about one time in six, else `otherwise`."""
    return st.one_of(*[st.just(otherwise)] * 5, strategy)


# Text people and tools put in names and values: any Unicode, except characters that
# str.isdigit() accepts and int() refuses ("²", "①"): secure-transport crashes on them in a
# condition value (tests/test_properties.py keeps that case as an expected failure).
HOSTILE_TEXT = st.text(
    st.characters(codec="utf-8").filter(lambda c: c.isdecimal() or not c.isdigit()),
    max_size=24,
)

# -- ACLs ---------------------------------------------------------------------------------------

PERMISSIONS = ("FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
GROUP_URIS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)
OTHER_CANONICAL_IDS = st.text("0123456789abcdef", min_size=64, max_size=64)
DISPLAY_NAMES = rarely(HOSTILE_TEXT.filter(str.strip))


def group_grant(uri: str, permission: str) -> dict[str, Any]:
    return {"Grantee": {"Type": "Group", "URI": uri}, "Permission": permission}


def canonical_grant(user_id: str, permission: str, display_name: str | None) -> dict[str, Any]:
    grantee = {"Type": "CanonicalUser", "ID": user_id}
    if display_name:
        grantee["DisplayName"] = display_name
    return {"Grantee": grantee, "Permission": permission}


def email_grant(address: str, permission: str) -> dict[str, Any]:
    grantee = {"Type": "AmazonCustomerByEmail", "EmailAddress": address}
    return {"Grantee": grantee, "Permission": permission}


def acl_grants(owner_id: str, *, hostile: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """One grant: to the owner, another account, a group (public or log delivery), an e-mail.

    `hostile=False` leaves out what moto cannot keep: e-mail grantees (it drops the address)
    and display names (any Unicode).
    """
    permission = st.sampled_from(PERMISSIONS)
    names = DISPLAY_NAMES if hostile else st.none()
    kinds = [
        st.builds(canonical_grant, st.just(owner_id), permission, names),
        st.builds(canonical_grant, OTHER_CANONICAL_IDS, permission, names),
        st.builds(group_grant, st.sampled_from(GROUP_URIS), permission),
    ]
    if hostile:
        kinds.append(st.builds(email_grant, st.emails(), permission))
    return st.one_of(kinds)


def acls(owner_id: str, max_grants: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    """A bucket ACL as GetBucketAcl answers it: the owner and up to `max_grants` grants."""
    owner = st.fixed_dictionaries({"ID": st.just(owner_id)}, optional={"DisplayName": HOSTILE_TEXT})
    grants = st.lists(acl_grants(owner_id), max_size=max_grants)
    return st.fixed_dictionaries({"Owner": owner, "Grants": grants})


def owner_and_log_delivery_grants(
    owner_id: str, *, hostile: bool = True
) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Grants object-ownership can move: the owner's and log delivery's; now and then another."""
    names = DISPLAY_NAMES if hostile else st.none()
    movable = st.one_of(
        st.builds(canonical_grant, st.just(owner_id), st.sampled_from(PERMISSIONS), names),
        st.builds(group_grant, st.just(LOG_DELIVERY), st.sampled_from(PERMISSIONS)),
    )
    return st.lists(st.one_of(movable, movable, acl_grants(owner_id, hostile=hostile)), max_size=5)


# -- Block Public Access and Object Ownership ---------------------------------------------------

# What GetPublicAccessBlock can answer: nothing, some settings, values of any JSON type.
BLOCK_PUBLIC_ACCESS_VALUES = st.one_of(
    st.booleans(), st.booleans(), st.none(), st.sampled_from(["true", "false", 1, 0])
)
BLOCK_PUBLIC_ACCESS_STATES = st.none() | st.dictionaries(
    st.sampled_from([*BLOCK_PUBLIC_ACCESS_SETTINGS, "Unknown"]), BLOCK_PUBLIC_ACCESS_VALUES
)
# What PutPublicAccessBlock takes (at least one setting; one left out is false), or none at all.
BLOCK_PUBLIC_ACCESS_CONFIGURATIONS = st.none() | st.dictionaries(
    st.sampled_from(BLOCK_PUBLIC_ACCESS_SETTINGS), st.booleans(), min_size=1
)
OWNERSHIP_SETTINGS = st.sampled_from([None, "ObjectWriter", "BucketOwnerPreferred"])

# -- bucket policies ----------------------------------------------------------------------------

OWN_ACCOUNT = "123456789012"  # moto's account
ORGANISATION = "o-a1b2c3d4e5"
OTHER_DISTRIBUTION = f"arn:aws:cloudfront::{OWN_ACCOUNT}:distribution/E2OTHEREXAMPLE"
TRAIL = f"arn:aws:cloudtrail:us-east-1:{OTHER_ACCOUNT}:trail/main"
VPC_ENDPOINT = "vpce-1a2b3c4d"
CLOUDFRONT = "cloudfront.amazonaws.com"
LOGGING = "logging.s3.amazonaws.com"
OUR_SIDS = (INSECURE_TRANSPORT_SID, OUTDATED_TLS_SID, LOG_DELIVERY_SID)

Builder = Callable[[str], dict[str, Any]]

# Statements real buckets carry, by name: public ones, and ones that must stay.
PUBLIC: dict[str, Builder] = {
    "public-read": public_read,
    "public-write": public_write_over_tls,
    "public-vpc-wildcard": lambda b: {
        **organisation(b),
        "Sid": "AnyVpc",
        "Condition": {"StringLike": {"aws:SourceVpc": "vpc-*"}},
    },
}
KEPT: dict[str, Builder] = {
    "oac": cloudfront_oac,
    "oai": cloudfront_oai,
    "elb": elb_logs,
    "cloudtrail": cloudtrail_write,
    "cross-account": cross_account,
    "organisation": organisation,
    "our-transport-rule": deny_insecure_transport,
    "hand-written-transport-rule": lambda b: {
        **deny_insecure_transport(b),
        "Sid": "EnforceTLS",
        "Principal": {"AWS": "*"},
    },
    "stricter-tls-rule": lambda b: {**deny_outdated_tls(b, 1.3), "Sid": "Tls13"},
}
# The TLS rules each kept statement already covers.
COVERS = {
    "our-transport-rule": "transport",
    "hand-written-transport-rule": "transport",
    "stricter-tls-rule": "tls",
}
CANONICAL: dict[str, Builder] = {"transport": deny_insecure_transport, "tls": deny_outdated_tls}
POLICY_EVENTS = ("PutBucketPolicy", "DeleteBucketPolicy", "CreateBucket")


@st.composite
def event_sequences(draw: st.DrawFn) -> list[str]:
    """Events in any order, with repeats; at least one PutBucketPolicy (public-policy's event)."""
    events = draw(st.lists(st.sampled_from(POLICY_EVENTS), max_size=5))
    events.insert(draw(st.integers(0, len(events))), "PutBucketPolicy")
    return events


PRINCIPALS = st.sampled_from(
    [
        "*",
        {"AWS": "*"},
        {"AWS": OTHER_ACCOUNT},
        {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        {"AWS": [f"arn:aws:iam::{OWN_ACCOUNT}:role/app", f"arn:aws:iam::{OTHER_ACCOUNT}:root"]},
        {"AWS": ["*", OTHER_ACCOUNT]},
        {"AWS": "arn:aws:iam::*:root"},
        {"AWS": OAI},
        {"Service": CLOUDFRONT},
        {"Service": [LOGGING, "cloudtrail.amazonaws.com"]},
        {"CanonicalUser": "b" * 64},
        {"Federated": "cognito-identity.amazonaws.com"},
    ]
)
ACTION_NAMES = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListBucket",
    "s3:DeleteObject",
    "s3:PutBucketPolicy",
    "s3:*",
    "*",
    "s3:Get*",
    "s3:GetObj?ct",
    "S3:getobject",
)


def one_or_list(elements: st.SearchStrategy[Any], max_size: int = 3) -> st.SearchStrategy[Any]:
    """A policy element written as one value or as a list of them."""
    return elements | st.lists(elements, min_size=1, max_size=max_size)


@cache
def resources(bucket: str) -> st.SearchStrategy[Any]:
    arn = f"arn:aws:s3:::{bucket}"
    names = [arn, f"{arn}/*", "*", f"{arn}/logs/*", "arn:aws:s3:::*", f"{arn}*"]
    return one_or_list(st.sampled_from([*names, "arn:aws:s3:::another-bucket/*"]))


# (operators, key, values) of the conditions policies use; keys in any case, as IAM allows.
CONDITION_CLAUSES: tuple[tuple[tuple[str, ...], str, tuple[Any, ...]], ...] = (
    (("Bool", "BoolIfExists"), "aws:SecureTransport", ("true", "false", True, False, "False")),
    (
        ("NumericLessThan", "NumericLessThanIfExists", "NumericGreaterThanEquals"),
        "s3:TlsVersion",
        (1.2, "1.2", 1.3, "1.3", 1.0),
    ),
    (
        ("StringEquals", "ArnEquals", "ArnLike", "StringLike", "ArnNotEquals"),
        "aws:SourceArn",
        (DISTRIBUTION, OTHER_DISTRIBUTION, "arn:aws:cloudfront::*:distribution/*", TRAIL),
    ),
    (
        ("StringEquals", "StringNotEquals", "StringEqualsIfExists", "ForAnyValue:StringEquals"),
        "aws:SourceAccount",
        (OWN_ACCOUNT, OTHER_ACCOUNT, "*", "1111*"),
    ),
    (
        ("StringEquals", "StringNotEquals", "StringLike"),
        "aws:SourceVpce",
        (VPC_ENDPOINT, "vpce-*", "vpce-9z8y7x6w"),
    ),
    (("StringEquals", "StringLike"), "aws:PrincipalOrgID", (ORGANISATION, "o-*")),
    (
        ("IpAddress", "NotIpAddress"),
        "aws:SourceIp",
        ("10.0.0.0/8", "203.0.113.0/24", "0.0.0.0/0", "203.0.113.7/32", "::/0"),
    ),
)


def _clause(operators: tuple[str, ...], key: str, values: tuple[Any, ...]) -> Any:
    return st.tuples(
        st.sampled_from(operators),
        st.sampled_from([key, key.lower(), key.upper()]),
        one_or_list(st.sampled_from(values), max_size=2) | rarely(HOSTILE_TEXT, values[0]),
    )


# One (operator, key, value or values): a known clause, now and then with a hostile value.
CLAUSES = st.one_of([_clause(*clause) for clause in CONDITION_CLAUSES])


def _merged(clauses: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for operator_name, key, value in clauses:
        found.setdefault(operator_name, {})[key] = value
    return found


CONDITIONS = st.lists(CLAUSES, max_size=2).map(_merged)
SIDS = st.one_of(
    st.none(),
    st.sampled_from(["PublicRead", "Statement1", "AllowAll", "DenyOthers", "Allow Reads"]),
    rarely(HOSTILE_TEXT),
)
ACTIONS = one_or_list(st.sampled_from(ACTION_NAMES))
EFFECTS = st.sampled_from(["Allow", "Deny"])
# Which form of each element a statement takes: mostly the positive one.
PRINCIPAL_KEYS = rarely(st.just("NotPrincipal"), "Principal")
ACTION_KEYS = rarely(st.just("NotAction"), "Action")
RESOURCE_KEYS = rarely(st.just("NotResource"), "Resource")


@st.composite
def _statement(draw: st.DrawFn, bucket: str) -> dict[str, Any]:
    statement: dict[str, Any] = {}
    sid = draw(SIDS)
    if sid is not None:
        statement["Sid"] = sid
    statement["Effect"] = draw(EFFECTS)
    statement[draw(PRINCIPAL_KEYS)] = draw(PRINCIPALS)
    statement[draw(ACTION_KEYS)] = draw(ACTIONS)
    statement[draw(RESOURCE_KEYS)] = draw(resources(bucket))
    condition = draw(CONDITIONS)
    if condition:
        statement["Condition"] = condition
    return statement


@cache
def generated_statements(bucket: str) -> st.SearchStrategy[dict[str, Any]]:
    """A statement built from parts: any effect, principal, action, resource, conditions."""
    return _statement(bucket)


@cache
def our_sid_statements(bucket: str) -> st.SearchStrategy[dict[str, Any]]:
    """Statements holding one of our Sids: our rules, our rules narrowed, someone's Allow.

    A Deny under our Sid that denies more than our rule is left out: the fix replaces it and so
    widens access (tests/test_properties.py keeps that case as an expected failure).
    """
    arn = f"arn:aws:s3:::{bucket}"
    ours = [deny_insecure_transport(bucket), deny_outdated_tls(bucket)]
    narrowed = [
        {**ours[0], "Resource": f"{arn}/public/*"},
        {**ours[0], "Action": "s3:GetObject"},
        {**ours[1], "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.1}}},
        {**ours[0], "Condition": {**ours[0]["Condition"], "StringEquals": {"aws:SourceIp": "x"}}},
        {**ours[0], "Sid": OUTDATED_TLS_SID},
    ]
    allows = st.builds(
        lambda statement, sid: {**statement, "Sid": sid, "Effect": "Allow"},
        generated_statements(bucket),
        st.sampled_from(OUR_SIDS),
    )
    return st.sampled_from([*ours, *narrowed]) | allows


@cache
def statements_of(bucket: str) -> st.SearchStrategy[dict[str, Any]]:
    """Any statement a bucket policy may hold."""
    known = st.sampled_from([*PUBLIC.values(), *KEPT.values()]).map(lambda build: build(bucket))
    generated = generated_statements(bucket)
    return st.one_of(generated, generated, known, our_sid_statements(bucket))


def with_unique_sids(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """S3 refuses a policy that holds one Sid twice: a repeated Sid is dropped."""
    seen: set[Any] = set()
    unique = []
    for statement in statements:
        sid = statement.get("Sid")
        repeated = sid is not None and sid in seen
        seen.add(sid)
        unique.append({k: v for k, v in statement.items() if k != "Sid"} if repeated else statement)
    return unique


@st.composite
def _policy(draw: st.DrawFn, bucket: str, max_statements: int) -> dict[str, Any]:
    found = with_unique_sids(draw(st.lists(statements_of(bucket), max_size=max_statements)))
    document: dict[str, Any] = {}
    if draw(st.booleans()):
        document["Version"] = "2012-10-17"
    if draw(rarely(st.just(True), False)):
        document["Id"] = draw(HOSTILE_TEXT)
    single = len(found) == 1 and draw(st.booleans())
    document["Statement"] = found[0] if single else found
    return document


@cache
def policies(bucket: str, max_statements: int = 6) -> st.SearchStrategy[dict[str, Any]]:
    """A bucket policy S3 would store: Version and Id or not, Statement an object or a list."""
    return _policy(bucket, max_statements)


def padded_to(document: dict[str, Any], size: int) -> dict[str, Any]:
    """`document` with one more statement whose Sid makes its compact JSON `size` bytes long."""
    statement = {
        "Sid": "",
        "Effect": "Allow",
        "Principal": {"AWS": OTHER_ACCOUNT},
        "Action": "s3:ListBucket",
        "Resource": "*",
    }
    listed = document["Statement"]
    padded = {**document, "Statement": [*(listed if isinstance(listed, list) else [listed])]}
    padded["Statement"].append(statement)
    missing = size - len(json.dumps(padded, separators=(",", ":")).encode())
    statement["Sid"] = "P" * max(0, missing)
    return padded


@cache
def large_policies(bucket: str) -> st.SearchStrategy[dict[str, Any]]:
    """A policy near S3's 20 KB limit: the TLS rule may or may not fit."""
    return st.builds(padded_to, policies(bucket, max_statements=3), st.integers(19_400, 20_480))


# Documents S3 would not store, which the controls must still judge without crashing.
MALFORMED_POLICIES = st.one_of(
    HOSTILE_TEXT,
    st.just("{not json"),
    st.just({"Version": "2012-10-17"}),
    st.fixed_dictionaries({"Statement": st.sampled_from(["x", 1, None, [1], [None], [[]]])}),
    st.fixed_dictionaries(
        {
            "Statement": st.lists(
                st.fixed_dictionaries(
                    {"Effect": st.sampled_from(["allow", "", None, 1, "Audit"])},
                    optional={"Principal": PRINCIPALS, "Action": st.just("s3:*")},
                ),
                min_size=1,
                max_size=2,
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "Statement": st.lists(
                st.fixed_dictionaries(
                    {"Effect": st.just("Allow")},
                    optional={
                        "Principal": st.sampled_from([7, ["*"], {"AWS": {"x": 1}}, None]),
                        "Condition": st.sampled_from(["x", {"Bool": "x"}, {"Bool": [1]}]),
                    },
                ),
                min_size=1,
                max_size=2,
            )
        }
    ),
)


@cache
def policy_documents(bucket: str) -> st.SearchStrategy[Any]:
    """Whatever GetBucketPolicy can hand the controls: no policy, a policy, a large one, junk."""
    return st.one_of(
        st.none(), policies(bucket), policies(bucket), large_policies(bucket), MALFORMED_POLICIES
    )


# -- CloudTrail events --------------------------------------------------------------------------

HANDLED_EVENT_NAMES = tuple(dict.fromkeys(name for c in CONTROLS for name in c.trigger_events))
EVENT_NAMES = st.one_of(
    st.sampled_from(HANDLED_EVENT_NAMES),
    st.sampled_from(["GetBucketAcl", "PutObject", "DeleteBucket", "", " ", "PutBucketAcl\x00"]),
    HOSTILE_TEXT,
)
EVENT_SOURCES = st.one_of(
    st.sampled_from(
        [
            "ec2.amazonaws.com",
            "S3.amazonaws.com",
            "s3.amazonaws.com ",
            "",
            "s3-control.amazonaws.com",
        ]
    ),
    HOSTILE_TEXT,
)
BUCKET_NAMES = st.one_of(
    st.sampled_from(["a/b", "..", ".", "{bucket}", "x" * 300, "a b", "arn:aws:s3:::b", "..."]),
    st.sampled_from(["", "   ", "Legacy_Bucket", "a"]),
    HOSTILE_TEXT,
)
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(HOSTILE_TEXT, children),
    max_leaves=8,
)


def load_samples() -> list[dict[str, Any]]:
    """Every real-world record of tests/data/cloudtrail-samples/, bare or in its envelope."""
    paths = sorted(path for path in SAMPLES.glob("*.json") if path.name != "INDEX.json")
    return [json.loads(path.read_text()) for path in paths]


SAMPLE_EVENTS = load_samples()

Path = tuple[Any, ...]


def paths_in(value: Any, prefix: Path = ()) -> list[Path]:
    """Every place in a JSON value: the value itself, each key of an object, each list item."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(paths_in(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(paths_in(child, (*prefix, index)))
    return found


def at(value: Any, path: Path) -> Any:
    for part in path:
        value = value[part]
    return value


def replaced(event: Any, path: Path, new: Any) -> Any:
    """`event` with the value at `path` replaced by `new` (in place where there is a place)."""
    if not path:
        return new
    at(event, path[:-1])[path[-1]] = new
    return event


def removed(event: Any, path: Path) -> Any:
    if path:
        del at(event, path[:-1])[path[-1]]
    return event


def record_of(event: Any) -> dict[str, Any] | None:
    """The CloudTrail record in an event: the envelope's detail, or the event itself."""
    if isinstance(event, dict) and isinstance(event.get("detail"), dict):
        return event["detail"]
    return event if isinstance(event, dict) else None


HUGE_TEXT = st.builds(
    operator.mul,
    st.sampled_from(["x", "é", "\u202e", "🪣", "\x00", '"']),
    # Up to EventBridge's 256 KB for an event, in UTF-8 (four bytes for the bucket).
    st.integers(10_000, 64_000),
)


def huge_text(draw: st.DrawFn, value: Any = None) -> str:
    return draw(HUGE_TEXT)


def nested(draw: st.DrawFn, value: Any) -> Any:
    # Kept well below the parser's recursion limit, which JSON text can reach (an expected
    # failure in tests/test_event_fuzz.py).
    for _ in range(draw(st.integers(1, 60))):
        value = [value] if draw(st.booleans()) else {"x": value}
    return value


def retyped(draw: st.DrawFn, value: Any) -> Any:
    """The same value as another JSON type: numbers as text and back, objects as lists."""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return draw(st.sampled_from([[value], {"value": value}, len(value)]))
    if isinstance(value, dict):
        return draw(st.sampled_from([list(value.values()), [value], list(value)]))
    if isinstance(value, list):
        return {str(index): item for index, item in enumerate(value)}
    return draw(JSON_LEAVES)


Mutation = Callable[[st.DrawFn, Any], Any]


def _anywhere(
    change: Callable[[st.DrawFn, Any], Any], avoid: frozenset[str] = frozenset()
) -> Mutation:
    """A mutation that changes the value at a place drawn from the event (but under `avoid`)."""

    def mutate(draw: st.DrawFn, event: Any) -> Any:
        places = [path for path in paths_in(event) if not (path and path[-1] in avoid)]
        path = draw(st.sampled_from(places))
        return replaced(event, path, change(draw, at(event, path)))

    return mutate


def _drop_key(draw: st.DrawFn, event: Any) -> Any:
    keyed = [path for path in paths_in(event) if path]
    return removed(event, draw(st.sampled_from(keyed))) if keyed else event


def _in_record(key: str, values: Callable[[st.DrawFn], Any]) -> Mutation:
    """A mutation that sets one field of the record (eventName, eventSource, ...)."""

    def mutate(draw: st.DrawFn, event: Any) -> Any:
        record = record_of(event)
        if record is not None:
            record[key] = values(draw)
        return event

    return mutate


def _bucket_name(draw: st.DrawFn, event: Any) -> Any:
    record = record_of(event)
    parameters = record.get("requestParameters") if record else None
    if not isinstance(parameters, dict):
        return event
    choice = draw(st.sampled_from(["drop", "null", "hostile"]))
    if choice == "drop":
        parameters.pop("bucketName", None)
    else:
        parameters["bucketName"] = None if choice == "null" else draw(BUCKET_NAMES)
    return event


def _oversized_parameters(draw: st.DrawFn, event: Any) -> Any:
    record = record_of(event)
    if record is None:
        return event
    parameters = record.get("requestParameters")
    parameters = dict(parameters) if isinstance(parameters, dict) else {}
    if draw(st.booleans()):
        statement = {**public_read("fuzzed-bucket"), "Sid": "P" * 21_000}
        parameters["bucketPolicy"] = {"Version": "2012-10-17", "Statement": [statement]}
    else:
        parameters.update({f"key{index}": "v" * 64 for index in range(2_000)})
    record["requestParameters"] = parameters
    return event


HUGE_TEXT_ANYWHERE = _anywhere(huge_text)
MUTATIONS: tuple[Mutation, ...] = (
    _drop_key,
    _anywhere(lambda draw, value: None),
    _anywhere(lambda draw, value: draw(JSON_VALUES)),
    HUGE_TEXT_ANYWHERE,
    _anywhere(lambda draw, value: draw(HOSTILE_TEXT)),
    _anywhere(nested),
    _anywhere(retyped),
    _in_record("eventSource", lambda draw: draw(EVENT_SOURCES)),
    _in_record("eventName", lambda draw: draw(EVENT_NAMES)),
    _in_record("requestParameters", lambda draw: draw(JSON_VALUES)),
    _bucket_name,
    _oversized_parameters,
)


# The record's fields every outcome repeats, and every notification of it several times over.
REPORTED_FIELDS = frozenset(
    {"eventID", "eventName", "eventTime", "sourceIPAddress", "arn", "invokedBy"}
)
# Without huge strings where outcomes repeat them: a notification over SNS's 256 KB fails
# (tests/test_event_fuzz.py keeps that case as an expected failure).
BOUNDED_MUTATIONS = tuple(
    _anywhere(huge_text, avoid=REPORTED_FIELDS) if mutation is HUGE_TEXT_ANYWHERE else mutation
    for mutation in MUTATIONS
)


@st.composite
def mutated_events(draw: st.DrawFn, *, huge_in_reported_fields: bool = True) -> Any:
    """A real record, bare or in its envelope, changed in one to four ways."""
    event: Any = copy.deepcopy(draw(st.sampled_from(SAMPLE_EVENTS)))
    mutations = MUTATIONS if huge_in_reported_fields else BOUNDED_MUTATIONS
    for _ in range(draw(st.integers(1, 4))):
        event = draw(st.sampled_from(mutations))(draw, event)
    return event


def as_delivered(event: Any) -> st.SearchStrategy[Any]:
    """The event as the handler may get it: parsed, or as JSON text or UTF-8 bytes."""
    text = json.dumps(event)
    return st.sampled_from([event, event, text, text.encode()])


@st.composite
def generated_records(draw: st.DrawFn) -> dict[str, Any]:
    """A CloudTrail record built from scratch: any event name, bucket name or source."""
    record = cloudtrail_record(draw(EVENT_NAMES), draw(BUCKET_NAMES), event_id=draw(st.uuids()).hex)
    record["eventSource"] = draw(rarely(EVENT_SOURCES, "s3.amazonaws.com"))
    return record
