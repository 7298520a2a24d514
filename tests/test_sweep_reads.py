"""What the sweep reads thousands of times: wildcard matching of policy patterns, and the copies
`ReadOnce` hands out of a surface read once."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import given
from hypothesis import strategies as st

from bucketwarden.aws import ReadOnce, copied
from bucketwarden.controls.bucket_policy import wildcard_match


def _as_expression(pattern: str, value: str, ignore_case: bool) -> bool:
    """IAM's wildcards spelled as a regular expression, character by character."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    flags = re.IGNORECASE if ignore_case else 0
    return re.fullmatch("".join(parts), value, flags) is not None


@given(
    st.text(alphabet="ab*?/:.\nA", max_size=8),
    st.text(alphabet="ab/:.\nA", max_size=9),
    st.booleans(),
)
def test_wildcard_matching_is_the_regular_expression_match(
    pattern: str, value: str, ignore_case: bool
) -> None:
    assert wildcard_match(pattern, value, ignore_case=ignore_case) == _as_expression(
        pattern, value, ignore_case
    )


def test_wildcard_matching_of_bucket_resources() -> None:
    assert wildcard_match("arn:aws:s3:::logs/*", "arn:aws:s3:::logs/*")
    assert wildcard_match("arn:aws:s3:::logs*", "arn:aws:s3:::logs/*")
    assert wildcard_match("arn:aws:s3:::*/*", "arn:aws:s3:::logs/*")
    assert wildcard_match("arn:aws:s3:::lo?s", "arn:aws:s3:::logs")
    assert not wildcard_match("arn:aws:s3:::logs/*", "arn:aws:s3:::logs")
    assert not wildcard_match("arn:aws:s3:::logs", "arn:aws:s3:::LOGS")
    assert wildcard_match("S3:Get*", "s3:GetObject", ignore_case=True)
    assert not wildcard_match("ab*ba", "aba")  # head and tail may not overlap


def test_a_copy_shares_no_dict_or_list_and_keeps_every_value() -> None:
    when = datetime.datetime(2024, 5, 2, tzinfo=datetime.UTC)
    response = {
        "Grants": [{"Grantee": {"ID": "abc"}, "Permission": "READ"}],
        "Status": "Enabled",
        "Days": 3,
        "Enabled": True,
        "Raw": b"x",
        "When": when,
        "Ratio": Decimal("0.5"),
        "Missing": None,
        "Pair": ("a", ["b"]),
    }

    copy = copied(response)

    assert copy == response
    assert copy is not response
    assert copy["Grants"] is not response["Grants"]
    assert copy["Grants"][0]["Grantee"] is not response["Grants"][0]["Grantee"]
    assert copy["Pair"][1] is not response["Pair"][1]  # not a dict or list: deep-copied too
    copy["Grants"][0]["Grantee"]["ID"] = "changed"
    assert response["Grants"][0]["Grantee"]["ID"] == "abc"


class _Client:
    """A client whose reads are counted, answering a versioning status or an error."""

    def __init__(self) -> None:
        self.calls = 0

    def get_bucket_versioning(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        return {"Status": "Enabled", "MFADelete": {"Nested": ["Disabled"]}}

    def get_bucket_policy(self, **_: Any) -> dict[str, Any]:
        self.calls += 1
        raise ClientError({"Error": {"Code": "NoSuchBucketPolicy"}}, "GetBucketPolicy")

    def put_bucket_versioning(self, **_: Any) -> None:
        self.calls += 1


def test_a_surface_read_once_is_answered_again_unchanged_by_what_a_reader_did() -> None:
    client = _Client()
    reads = ReadOnce(client, {})

    first = reads.get_bucket_versioning(Bucket="b")
    first["Status"] = "Suspended"
    first["MFADelete"]["Nested"].append("Enabled")
    second = reads.get_bucket_versioning(Bucket="b")

    assert second == {"Status": "Enabled", "MFADelete": {"Nested": ["Disabled"]}}
    assert client.calls == 1
    for _ in range(2):
        with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
            reads.get_bucket_policy(Bucket="b")
    assert client.calls == 2
    reads.put_bucket_versioning(Bucket="b")  # a write forgets what was read
    reads.get_bucket_versioning(Bucket="b")
    assert client.calls == 4
