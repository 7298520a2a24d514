"""policy: S3's meaning of a public policy, the reasons given, and `bucketwarden policy check`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bucketwarden.policy import NO_CONDITION, PolicyError, analyze

CASES = Path(__file__).parent / "data" / "policy-cases" / "aws-docs.jsonl"
BUCKET_OBJECTS = "arn:aws:s3:::amzn-s3-demo-bucket/*"
ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"


def statement(principal: Any = "*", condition: dict[str, Any] | None = None, **extra: Any):
    body: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": BUCKET_OBJECTS,
    }
    if condition is not None:
        body["Condition"] = condition
    return body | extra


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def is_public(*statements: dict[str, Any], context: Any = "bucket") -> bool:
    return analyze(policy(*statements), context).public


def doc_cases() -> list[Any]:
    lines = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    return [pytest.param(case, id=case["note"].split(":")[0]) for case in lines]


# -- the S3 user guide's own examples -----------------------------------------------------------


@pytest.mark.parametrize("case", doc_cases())
def test_aws_guide_examples(case: dict[str, Any]) -> None:
    assert analyze(case["policy"]).public is case["expected_public"]


# -- principals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ["*"]},
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "*"]},
        {"AWS": "arn:aws:iam::*:root"},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:user/dev-?"},
        {"AWS": "arn:aws:iam::${aws:PrincipalAccount}:root"},
        {"Federated": "graph.facebook.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
        {"Service": "*"},
        {"CanonicalUser": "*"},
        {"Unknown": "something"},
        {"AWS": {"account": ACCOUNT}},
    ],
    ids=[
        "star",
        "aws-star",
        "aws-star-list",
        "account-and-star",
        "wildcard-account-arn",
        "wildcard-role-arn",
        "question-mark-arn",
        "policy-variable",
        "federated-facebook",
        "federated-cognito",
        "service-star",
        "canonical-star",
        "not-a-name",
        "unknown-type",
    ],
)
def test_public_principals(principal: Any) -> None:
    assert is_public(statement(principal))


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": ACCOUNT},
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"AWS": [f"arn:aws:iam::{ACCOUNT}:role/reader", f"arn:aws:iam::{OTHER_ACCOUNT}:user/x"]},
        {"Service": "logging.s3.amazonaws.com"},
        {"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
        {"AWS": ACCOUNT, "Service": ["cloudtrail.amazonaws.com", "config.amazonaws.com"]},
    ],
    ids=["account-id", "account-root", "iam-arns", "service", "canonical-user", "mixed-fixed"],
)
def test_fixed_principals_are_not_public(principal: Any) -> None:
    assert not is_public(statement(principal))


def test_not_principal_with_allow_is_public() -> None:
    granted = statement(None) | {"NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    del granted["Principal"]
    verdict = analyze(policy(granted))
    assert verdict.public
    assert verdict.reasons[0].principal.startswith(
        f'everyone except AWS "arn:aws:iam::{ACCOUNT}:root"'
    )


def test_not_principal_with_allow_restricted_by_fixed_condition() -> None:
    granted = {
        "Effect": "Allow",
        "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:GetObject",
        "Resource": BUCKET_OBJECTS,
        "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}},
    }
    assert not is_public(granted)


@pytest.mark.parametrize("excluded", ["*", {"AWS": "*"}])
def test_not_principal_excluding_everyone_grants_nothing(excluded: Any) -> None:
    granted = {"Effect": "Allow", "NotPrincipal": excluded, "Action": "s3:*", "Resource": "*"}
    assert not is_public(granted)


def test_not_principal_in_deny_is_ignored() -> None:
    denied = {
        "Effect": "Deny",
        "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "s3:*",
        "Resource": BUCKET_OBJECTS,
    }
    assert not is_public(denied)


def test_not_action_does_not_change_publicness() -> None:
    def with_not_action(principal: Any) -> dict[str, Any]:
        body = statement(principal) | {"NotAction": "s3:DeleteObject"}
        del body["Action"]
        return body

    assert is_public(with_not_action("*"))
    assert not is_public(with_not_action({"AWS": ACCOUNT}))


def test_action_does_not_change_publicness() -> None:
    # S3 judges who may call, not what they may do: even a harmless-looking action is public.
    assert is_public(statement("*", Action="s3:GetBucketLocation"))


# -- statements ---------------------------------------------------------------------------------


def test_single_object_statement() -> None:
    assert analyze({"Version": "2012-10-17", "Statement": statement("*")}).public
    assert not analyze({"Version": "2012-10-17", "Statement": statement({"AWS": ACCOUNT})}).public


def test_deny_statements_are_ignored() -> None:
    deny_everyone = statement("*", Effect="Deny", Action="s3:*")
    deny_insecure = statement(
        "*", {"Bool": {"aws:SecureTransport": "false"}}, Effect="Deny", Action="s3:*"
    )
    assert not is_public(deny_everyone, deny_insecure)


def test_one_public_statement_makes_the_policy_public() -> None:
    verdict = analyze(
        policy(
            statement({"Service": "cloudtrail.amazonaws.com"}, Sid="Trail"),
            statement({"AWS": OTHER_ACCOUNT}, Sid="Partner"),
            statement("*", Sid="Everyone"),
        )
    )
    assert verdict.public
    assert verdict.public_statement_indexes == [2]
    assert [r.statement for r in verdict.reasons] == ["Everyone"]
    assert [s.public for s in verdict.statements] == [False, False, True]


def test_empty_statement_list_is_not_public() -> None:
    verdict = analyze(policy())
    assert not verdict.public
    assert verdict.reasons == []


# -- condition operators ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:SourceVpc": "vpc-91237329"}},
        {"StringEqualsIgnoreCase": {"aws:SourceVpc": "VPC-91237329"}},
        {"StringLike": {"aws:SourceVpc": "vpc-91237329"}},
        {"StringEquals": {"aws:SourceVpce": ["vpce-1a2b3c4d", "vpce-5e6f7a8b"]}},
        {"ArnEquals": {"aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main"}},
        {"ArnLike": {"aws:SourceArn": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main"}},
        {"ForAnyValue:StringEquals": {"aws:SourceVpc": "vpc-91237329"}},
        {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
        {"StringEquals": {"aws:SourceOwner": ACCOUNT}},
        {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}},
        {"StringEquals": {"aws:PrincipalAccount": OTHER_ACCOUNT}},
        {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER_ACCOUNT}:role/reader"}},
        {"StringEquals": {"aws:userid": "AIDAEXAMPLEUSERID"}},
        {"StringEquals": {"aws:userid": "AROAEXAMPLEROLEID:alice"}},
        {
            "StringEquals": {
                "s3:x-amz-server-side-encryption-aws-kms-key-id": (
                    f"arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                )
            }
        },
        {"StringEquals": {"s3:DataAccessPointAccount": ACCOUNT}},
        {"StringEquals": {"AWS:SOURCEVPC": "vpc-91237329"}},
    ],
    ids=[
        "string-equals",
        "string-equals-ignore-case",
        "string-like-without-wildcard",
        "several-fixed-values",
        "arn-equals",
        "arn-like-without-wildcard",
        "for-any-value",
        "ip-address",
        "source-owner",
        "source-account",
        "principal-org-id",
        "principal-account",
        "principal-arn",
        "userid-user",
        "userid-one-role-session",
        "kms-key-id",
        "data-access-point-account",
        "key-name-any-case",
    ],
)
def test_fixed_condition_makes_public_principal_non_public(condition: dict[str, Any]) -> None:
    assert not is_public(statement("*", condition))


@pytest.mark.parametrize(
    ("condition", "why"),
    [
        ({"StringLike": {"aws:SourceVpc": "vpc-*"}}, "aws:SourceVpc value 'vpc-*' has a wildcard"),
        ({"StringEquals": {"aws:SourceVpc": "vpc-9123?329"}}, "has a wildcard"),
        ({"ArnLike": {"aws:SourceArn": "arn:aws:cloudtrail:*:*:trail/*"}}, "has a wildcard"),
        ({"StringEquals": {"aws:SourceVpce": ["vpce-1a2b", "vpce-*"]}}, "'vpce-*' has a wildcard"),
        ({"StringEquals": {"aws:SourceVpc": "${aws:username}"}}, "uses a policy variable"),
        ({"StringNotEquals": {"aws:SourceVpc": "vpc-91237329"}}, "excludes values"),
        ({"StringNotEqualsIgnoreCase": {"aws:SourceVpc": "vpc-1"}}, "excludes values"),
        ({"StringNotLike": {"aws:SourceVpc": "vpc-1"}}, "excludes values"),
        ({"ArnNotEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t"}}, "excludes"),
        ({"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, "excludes values"),
        ({"StringEqualsIfExists": {"aws:SourceVpc": "vpc-1"}}, "lets requests without"),
        ({"IpAddressIfExists": {"aws:SourceIp": "203.0.113.0/24"}}, "lets requests without"),
        ({"ForAllValues:StringEquals": {"aws:SourceVpc": "vpc-1"}}, "also matches requests"),
        ({"Null": {"aws:SourceVpc": "false"}}, "Null does not pin aws:SourceVpc"),
        ({"Bool": {"aws:SecureTransport": "true"}}, "aws:SecureTransport does not limit"),
        ({"StringEquals": {"aws:RequestedRegion": "us-east-1"}}, "does not limit who can call"),
        ({"StringEquals": {"aws:SourceIp": "203.0.113.7"}}, "cannot pin aws:SourceIp"),
        ({"IpAddress": {"aws:SourceVpc": "10.0.0.0/16"}}, "IpAddress cannot pin aws:SourceVpc"),
        ({"StringEquals": {"aws:userid": "AROAEXAMPLEROLEID:*"}}, "every session of a role"),
        ({"StringEquals": {"aws:PrincipalOrgID": "o-*"}}, "has a wildcard"),
        ({"StringEquals": {"aws:SourceVpc": []}}, "aws:SourceVpc has no value"),
        ({"StringEquals": {"aws:SourceVpc": {"id": "vpc-1"}}}, "a value that is not a string"),
    ],
    ids=[
        "string-like-wildcard",
        "question-mark",
        "arn-like-wildcard",
        "one-wildcard-among-values",
        "policy-variable",
        "string-not-equals",
        "string-not-equals-ignore-case",
        "string-not-like",
        "arn-not-equals",
        "not-ip-address",
        "if-exists",
        "ip-address-if-exists",
        "for-all-values",
        "null",
        "secure-transport",
        "other-key",
        "source-ip-with-string-operator",
        "ip-operator-on-other-key",
        "userid-any-role-session",
        "org-id-wildcard",
        "no-value",
        "not-a-string",
    ],
)
def test_condition_that_does_not_restrict(condition: dict[str, Any], why: str) -> None:
    verdict = analyze(policy(statement("*", condition)))
    assert verdict.public
    assert why in verdict.reasons[0].condition


def test_one_restricting_condition_is_enough() -> None:
    condition = {
        "Bool": {"aws:SecureTransport": "true"},
        "StringLike": {"aws:SourceVpc": "vpc-*"},
        "StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"},
    }
    assert not is_public(statement("*", condition))


def test_several_keys_under_one_operator_one_fixed_is_enough() -> None:
    condition = {"StringLike": {"aws:SourceVpc": "vpc-*", "aws:SourceAccount": ACCOUNT}}
    assert not is_public(statement("*", condition))


# -- aws:SourceIp breadth -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "cidr",
    [
        "203.0.113.7",
        "203.0.113.0/24",
        "11.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "2001:db8::/32",
        "2001:db8:1234::/48",
        "2001:db8::1",
    ],
)
def test_source_ip_narrow_enough(cidr: str) -> None:
    assert not is_public(statement("*", {"IpAddress": {"aws:SourceIp": cidr}}))


@pytest.mark.parametrize(
    ("cidr", "limit"),
    [
        ("0.0.0.0/0", 8),
        ("0.0.0.0/1", 8),
        ("10.0.0.0/7", 8),
        ("::/0", 32),
        ("2001:db8::/31", 32),
    ],
)
def test_source_ip_too_broad(cidr: str, limit: int) -> None:
    verdict = analyze(policy(statement("*", {"IpAddress": {"aws:SourceIp": cidr}})))
    assert verdict.public
    assert verdict.reasons[0].condition == f"aws:SourceIp {cidr} is broader than /{limit}"


def test_source_ip_list_with_one_broad_range_is_public() -> None:
    condition = {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "0.0.0.0/0"]}}
    assert is_public(statement("*", condition))


def test_source_ip_that_is_no_ip_is_public() -> None:
    verdict = analyze(policy(statement("*", {"IpAddress": {"aws:SourceIp": "10.*"}})))
    assert verdict.public
    assert "is not an IP range" in verdict.reasons[0].condition


# -- access points ------------------------------------------------------------------------------

ANY_ACCESS_POINT = f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/*"


@pytest.mark.parametrize("operator", ["StringEquals", "StringLike", "ArnLike", "ArnEquals"])
def test_access_point_wildcard_with_fixed_account_in_bucket_policy(operator: str) -> None:
    assert not is_public(statement("*", {operator: {"s3:DataAccessPointArn": ANY_ACCESS_POINT}}))


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:s3:us-east-1:*:accesspoint/*",
        "arn:aws:s3:*:111122223333:accesspoint/*",
        "arn:aws:s3:us-east-1:1111222233?3:accesspoint/reports",
    ],
)
def test_access_point_wildcard_outside_name_in_bucket_policy(arn: str) -> None:
    verdict = analyze(policy(statement("*", {"StringLike": {"s3:DataAccessPointArn": arn}})))
    assert verdict.public
    assert "wildcard outside the access point name" in verdict.reasons[0].condition


@pytest.mark.parametrize(
    "arn", [ANY_ACCESS_POINT, f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/reports"]
)
def test_data_access_point_arn_does_not_restrict_an_access_point_policy(arn: str) -> None:
    granted = statement("*", {"StringEquals": {"s3:DataAccessPointArn": arn}})
    assert not is_public(granted, context="bucket")
    verdict = analyze(policy(granted), "access-point")
    assert verdict.public
    assert "does not make an access point policy non-public" in verdict.reasons[0].condition


def test_access_point_policy_follows_the_other_rules() -> None:
    fixed = statement("*", {"StringEquals": {"aws:SourceVpc": "vpc-91237329"}})
    assert not is_public(fixed, context="access-point")
    assert is_public(statement("*"), context="access-point")


def test_unknown_context_rejected() -> None:
    with pytest.raises(ValueError, match="context"):
        analyze(policy(statement("*")), "table")  # type: ignore[arg-type]


# -- real-world statements that must stay non-public --------------------------------------------


def test_cloudfront_origin_access_control() -> None:
    oac = statement(
        {"Service": "cloudfront.amazonaws.com"},
        {"StringEquals": {"AWS:SourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/EDFD"}},
        Sid="AllowCloudFrontServicePrincipalReadOnly",
    )
    assert not is_public(oac)


def test_cloudfront_origin_access_identity() -> None:
    oai = statement(
        {"AWS": "arn:aws:iam::cloudfront:user/CloudFront Origin Access Identity E15MNIMTCFKK4C"}
    )
    assert not is_public(oai)


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::127311923021:root"},
        {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
    ],
    ids=["elb-account", "elb-service"],
)
def test_elb_access_log_delivery(principal: dict[str, str]) -> None:
    delivery = statement(
        principal,
        Action="s3:PutObject",
        Resource=f"arn:aws:s3:::amzn-s3-demo-bucket/AWSLogs/{ACCOUNT}/*",
    )
    assert not is_public(delivery)


def test_cloudtrail_service_statements() -> None:
    trail = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main"
    acl_check = statement(
        {"Service": "cloudtrail.amazonaws.com"},
        {"StringEquals": {"aws:SourceArn": trail}},
        Sid="AWSCloudTrailAclCheck",
        Action="s3:GetBucketAcl",
        Resource="arn:aws:s3:::amzn-s3-demo-bucket",
    )
    write = statement(
        {"Service": "cloudtrail.amazonaws.com"},
        {
            "StringEquals": {
                "s3:x-amz-acl": "bucket-owner-full-control",
                "aws:SourceArn": trail,
            }
        },
        Sid="AWSCloudTrailWrite",
        Action="s3:PutObject",
    )
    assert not is_public(acl_check, write)


def test_cross_account_grants() -> None:
    partner = statement({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}, Sid="Partner")
    organisation = statement(
        "*", {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}, Sid="Organisation"
    )
    assert not is_public(partner, organisation)


# -- reasons ------------------------------------------------------------------------------------


def test_reason_names_sid_principal_and_missing_condition() -> None:
    [reason] = analyze(policy(statement({"AWS": "*"}, Sid="PublicRead"))).reasons
    assert reason.statement == "PublicRead"
    assert reason.principal == 'AWS "*" (anyone)'
    assert reason.condition == NO_CONDITION
    assert reason.text == (
        'Statement "PublicRead" is public: it allows AWS "*" (anyone) and no condition '
        "restricts it."
    )


def test_reason_names_statement_by_position_without_sid() -> None:
    verdict = analyze(
        policy(
            statement({"AWS": ACCOUNT}),
            statement("*", {"StringLike": {"aws:SourceVpc": "vpc-*"}}),
        )
    )
    [reason] = verdict.reasons
    assert reason.statement == "#2"
    assert reason.text.startswith('Statement #2 is public: it allows "*" (anyone)')
    assert reason.text.endswith(
        "its conditions do not restrict it: aws:SourceVpc value 'vpc-*' has a wildcard."
    )


def test_reason_lists_only_the_principals_that_are_not_fixed() -> None:
    principal = {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", "arn:aws:iam::*:role/x"]}
    [reason] = analyze(policy(statement(principal))).reasons
    assert reason.principal == 'AWS "arn:aws:iam::*:role/x" (has a wildcard)'


def test_reason_for_federated_principal() -> None:
    [reason] = analyze(policy(statement({"Federated": "graph.facebook.com"}))).reasons
    assert (
        reason.principal == 'Federated "graph.facebook.com" (anyone the identity provider signs in)'
    )


def test_reason_lists_every_condition_that_fails() -> None:
    condition = {
        "Bool": {"aws:SecureTransport": "true"},
        "IpAddress": {"aws:SourceIp": "0.0.0.0/0"},
    }
    [reason] = analyze(policy(statement("*", condition))).reasons
    assert reason.condition == (
        "aws:SecureTransport does not limit who can call; aws:SourceIp 0.0.0.0/0 is broader than /8"
    )


def test_non_public_statements_say_why() -> None:
    verdict = analyze(
        policy(
            statement({"AWS": ACCOUNT}),
            statement("*", {"StringEquals": {"aws:SourceVpce": "vpce-1a2b"}}),
            statement("*", Effect="Deny"),
        )
    )
    summaries = [s.summary for s in verdict.statements]
    assert summaries == [
        "grants to fixed principals only",
        "restricted: StringEquals aws:SourceVpce is fixed to 'vpce-1a2b'",
        "a Deny statement grants nothing",
    ]


# -- documents that are not policies ------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "a policy is a JSON object"),
        ({"Version": "2012-10-17"}, "no Statement"),
        ({"Statement": "Allow everything"}, "Statement must be an object or a list"),
        ({"Statement": ["Allow"]}, "statement #1 is not an object"),
        ({"Statement": [{"Principal": "*", "Action": "s3:*"}]}, "Effect must be Allow or Deny"),
        ({"Statement": [{"Sid": "X", "Effect": "Permit"}]}, "statement X: Effect must be"),
        ({"Statement": [{"Effect": "Allow", "Action": "s3:*"}]}, "needs Principal or NotPrincipal"),
        ({"Statement": [statement("arn:aws:iam::1:root")]}, 'Principal must be "*" or an object'),
        ({"Statement": [statement("*", ["StringEquals"])]}, "Condition must be an object"),
        ({"Statement": [statement("*", {"Bool": "true"})]}, "Condition Bool must be an object"),
    ],
)
def test_not_a_policy(document: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=re.escape(message)):
        analyze(document)


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)


def test_json_text_and_parsed_document_agree() -> None:
    document = policy(statement("*", Sid="A"), statement({"AWS": ACCOUNT}, Sid="B"))
    assert analyze(json.dumps(document)) == analyze(document)


# -- properties ---------------------------------------------------------------------------------

ACCOUNTS = st.from_regex(r"\A[0-9]{12}\Z")
FIXED_PRINCIPAL_VALUES = st.one_of(
    st.tuples(st.just("AWS"), ACCOUNTS),
    st.tuples(st.just("AWS"), ACCOUNTS.map(lambda a: f"arn:aws:iam::{a}:root")),
    st.tuples(st.just("AWS"), ACCOUNTS.map(lambda a: f"arn:aws:iam::{a}:role/app")),
    st.tuples(
        st.just("Service"),
        st.sampled_from(["cloudtrail.amazonaws.com", "logging.s3.amazonaws.com"]),
    ),
    st.tuples(st.just("CanonicalUser"), st.from_regex(r"\A[0-9a-f]{64}\Z")),
)
PUBLIC_PRINCIPALS = st.sampled_from(
    ["*", {"AWS": "*"}, {"AWS": "arn:aws:iam::*:root"}, {"Federated": "graph.facebook.com"}]
)
CONDITION_KEYS = st.sampled_from(
    ["aws:SourceVpc", "aws:SourceIp", "aws:SecureTransport", "aws:SourceArn", "aws:userid"]
)
OPERATORS = st.sampled_from(
    ["StringEquals", "StringLike", "StringNotEquals", "IpAddress", "Bool", "ArnLike", "Null"]
)
VALUES = st.one_of(
    st.sampled_from(["vpc-1", "vpc-*", "10.0.0.0/8", "0.0.0.0/0", "true", "${aws:username}"]),
    st.text(max_size=12),
)
CONDITIONS = st.dictionaries(
    OPERATORS, st.dictionaries(CONDITION_KEYS, VALUES, max_size=2), max_size=3
)


@st.composite
def fixed_principals(draw: st.DrawFn) -> dict[str, list[str]]:
    principal: dict[str, list[str]] = {}
    for kind, value in draw(st.lists(FIXED_PRINCIPAL_VALUES, min_size=1, max_size=4)):
        principal.setdefault(kind, []).append(value)
    return principal


@st.composite
def statements_of(draw: st.DrawFn, principals: st.SearchStrategy[Any]) -> dict[str, Any]:
    condition = draw(st.none() | CONDITIONS)
    effect = draw(st.sampled_from(["Allow", "Deny"]))
    return statement(draw(principals), condition, Effect=effect)


ANY_STATEMENTS = st.lists(
    statements_of(st.one_of(PUBLIC_PRINCIPALS, fixed_principals())), max_size=6
)


@settings(max_examples=150, deadline=None)
@given(st.lists(statements_of(fixed_principals()), max_size=6))
def test_fixed_principals_are_never_public(found: list[dict[str, Any]]) -> None:
    assert not analyze(policy(*found)).public


@settings(max_examples=150, deadline=None)
@given(ANY_STATEMENTS, st.lists(statements_of(PUBLIC_PRINCIPALS), min_size=1, max_size=3))
def test_deny_statements_never_change_the_verdict(
    found: list[dict[str, Any]], extra: list[dict[str, Any]]
) -> None:
    denies = [dict(s, Effect="Deny") for s in extra]
    before = analyze(policy(*found))
    after = analyze(policy(*found, *denies))
    assert after.public is before.public
    assert after.public_statement_indexes == before.public_statement_indexes
    assert after.reasons == before.reasons


@settings(max_examples=150, deadline=None)
@given(ANY_STATEMENTS, st.randoms(use_true_random=False))
def test_verdict_is_the_union_of_statement_verdicts(
    found: list[dict[str, Any]], random: Any
) -> None:
    verdict = analyze(policy(*found))
    alone = [i for i, s in enumerate(found) if analyze(policy(s)).public]
    assert verdict.public_statement_indexes == alone
    assert verdict.public is bool(alone)
    assert len(verdict.reasons) == len(alone)
    shuffled = list(found)
    random.shuffle(shuffled)
    assert analyze(policy(*shuffled)).public is verdict.public


@settings(max_examples=150, deadline=None)
@given(ANY_STATEMENTS)
def test_a_fixed_source_vpce_makes_any_statement_non_public(found: list[dict[str, Any]]) -> None:
    pinned = [
        dict(
            s,
            Condition={**(s.get("Condition") or {}), "StringEquals": {"aws:SourceVpce": "vpce-1"}},
        )
        for s in found
    ]
    assert not analyze(policy(*pinned)).public


@settings(max_examples=150, deadline=None)
@given(ANY_STATEMENTS)
def test_removing_the_public_statements_leaves_a_non_public_policy(
    found: list[dict[str, Any]],
) -> None:
    # What the public-policy remediation will do with public_statement_indexes.
    drop = set(analyze(policy(*found)).public_statement_indexes)
    kept = [s for i, s in enumerate(found) if i not in drop]
    assert not analyze(policy(*kept)).public


# -- the command line ---------------------------------------------------------------------------


def run_check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bucketwarden_tools.cli", "policy", "check", *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def write(tmp_path: Path, content: Any) -> Path:
    path = tmp_path / "policy.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_cli_json_public(tmp_path: Path) -> None:
    document = policy(
        statement({"Service": "cloudfront.amazonaws.com"}, Sid="OAC"),
        statement("*", {"StringLike": {"aws:SourceVpc": "vpc-*"}}, Sid="Open"),
    )
    done = run_check(str(write(tmp_path, document)), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["public"] is True
    [reason] = result["reasons"]
    assert reason["statement"] == "Open"
    assert reason["principal"] == '"*" (anyone)'
    assert reason["condition"] == "aws:SourceVpc value 'vpc-*' has a wildcard"
    assert reason["text"].startswith('Statement "Open" is public')


def test_cli_json_not_public(tmp_path: Path) -> None:
    document = policy(statement({"AWS": ACCOUNT}))
    done = run_check(str(write(tmp_path, document)), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"public": False, "reasons": []}


def test_cli_access_point_context(tmp_path: Path) -> None:
    document = policy(statement("*", {"StringEquals": {"s3:DataAccessPointArn": ANY_ACCESS_POINT}}))
    path = str(write(tmp_path, document))
    assert json.loads(run_check(path, "--json").stdout)["public"] is False
    assert json.loads(run_check(path, "--json", "--access-point").stdout)["public"] is True


def test_cli_human_output(tmp_path: Path) -> None:
    document = policy(statement("*", Sid="PublicRead"), statement({"AWS": ACCOUNT}, Sid="Mine"))
    done = run_check(str(write(tmp_path, document)))
    assert done.returncode == 0, done.stderr
    assert "PUBLIC" in done.stdout
    assert "1 of 2 statements public" in done.stdout
    assert "PublicRead" in done.stdout
    assert "Mine" in done.stdout
    assert "no condition restricts it" in done.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "is not a policy: not JSON"),
        (json.dumps({"Version": "2012-10-17"}), "is not a policy: the document has no Statement"),
        (json.dumps([statement("*")]), "is not a policy: a policy is a JSON object"),
    ],
    ids=["not-json", "no-statement", "not-an-object"],
)
def test_cli_rejects_what_is_not_a_policy(tmp_path: Path, content: str, message: str) -> None:
    done = run_check(str(write(tmp_path, content)), "--json")
    assert done.returncode == 2
    assert done.stdout == ""
    assert message in " ".join(done.stderr.split())


def test_cli_reads_the_answer_of_get_bucket_policy_from_standard_input() -> None:
    # `aws s3api get-bucket-policy --bucket b | bucketwarden policy check -`: the AWS CLI prints
    # the document as a string under "Policy".
    document = policy(statement("*", Sid="PublicRead"))
    answer = json.dumps({"Policy": json.dumps(document)})

    done = run_check("-", "--json", stdin=answer)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["reasons"][0]["statement"] == "PublicRead"


def test_cli_reads_a_plain_document_from_standard_input() -> None:
    done = run_check("-", stdin=json.dumps(policy(statement({"AWS": ACCOUNT}, Sid="Mine"))))

    assert done.returncode == 0, done.stderr
    assert "not public standard input (bucket policy)" in " ".join(done.stdout.split())


def test_cli_names_standard_input_when_what_it_reads_is_not_a_policy() -> None:
    done = run_check("-", stdin="this is not json")

    assert done.returncode == 2
    assert "standard input is not a policy: not JSON" in " ".join(done.stderr.split())


def test_cli_unreadable_file(tmp_path: Path) -> None:
    done = run_check(str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert "cannot read" in done.stderr
