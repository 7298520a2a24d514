"""Issue 12, rows 6, 8, 9 and 10: how BucketWarden writes policies, ACLs and encryption.

- Row 6, no lost edits: an edit made between the engine's read and its write is kept (judged
  again) or, when the surface keeps changing, the fix is given up and reported; an edit right
  after the write is recorded. The concurrent edit is made for real, by a botocore hook on the
  engine's own client that changes the surface right after the engine's read of it.
- Row 8, encryption keys are judged: a KMS key of another account (or off the approved list) is
  drift under either baseline.
- Row 9, policies keep their bytes: written as UTF-8, size judged in UTF-8 bytes, and a write
  S3 refuses is a failed, notified outcome, not an exception into Lambda's retries.
- Row 10, only the public part of a statement goes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bucketwarden import aws
from bucketwarden.controls.access_point import AccessPointPolicy
from bucketwarden.controls.bucket_policy import MAX_POLICY_BYTES, OversizedPolicy
from bucketwarden.controls.default_encryption import DefaultEncryption
from bucketwarden.controls.public_policy import PublicPolicy
from bucketwarden.policy import analyze
from bucketwarden.settings import Settings
from bucketwarden_tools import cli
from bucketwarden_tools.local.behaviour import policy_size
from tests import test_controls_access_point as access_points
from tests import test_controls_public_acl as acls
from tests import test_controls_public_policy as policies
from tests import test_controls_secure_transport as secure_transport
from tests.helpers import (
    ACCOUNT,
    ALL_USERS,
    API_CALLS,
    OTHER_ACCOUNT_ID,
    REGION,
    ErrorResponses,
    audit_items,
    calls_delta,
    create_table,
    handle,
    make_bucket,
    s3,
    subscribe_inbox,
)
from tests.test_controls_default_encryption import CASE as ENCRYPTION
from tests.test_controls_default_encryption import encryption, put_default, use_kms_baseline

pytestmark = pytest.mark.usefixtures("aws")

PARTNER = "444455556666"
FOREIGN = "999988887777"
FOREIGN_KEY = f"arn:aws:kms:{REGION}:{FOREIGN}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
OWN_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


# -- row 6: no lost edits ----------------------------------------------------------------------


def partner_read(bucket: str, sid: str = "PartnerTwo") -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{PARTNER}:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def edit_after(operation: str, edit: Callable[[int], None], times: int | None = 1) -> None:
    """Make `edit` (given its count, from 1) right after the engine's `operation` answers:
    another person's change landing between the engine's calls. `times` None: every time."""
    made = {"count": 0}

    def hook(**_: Any) -> None:
        if times is None or made["count"] < times:
            made["count"] += 1
            edit(made["count"])

    prefix = "s3-control" if operation.startswith(("GetAccessPoint", "PutAccessPoint")) else "s3"
    service = "s3control" if prefix == "s3-control" else "s3"
    aws.client(service, REGION).meta.events.register(f"after-call.{prefix}.{operation}", hook)


def test_an_edit_between_the_read_and_the_write_is_kept_and_recorded() -> None:
    bucket = make_bucket("edited-meanwhile")
    policies.put_policy(bucket, policies.policy(policies.public_read(bucket)))
    edited = policies.policy(policies.public_read(bucket), partner_read(bucket))
    edit_after("GetBucketPolicy", lambda _: policies.put_policy(bucket, edited))

    outcome = policies.CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    # The partner's statement, added while the fix was prepared, is still there.
    assert policies.stored_policy(bucket) == policies.policy(partner_read(bucket))
    # What the fix replaced is the edited policy: a rollback would restore the edit too.
    assert outcome["before"]["Policy"] == edited
    [warning] = [w for w in outcome["warnings"] if "changed while the fix was prepared" in w]
    assert "judged again on the new one, the edit is kept" in warning
    assert "1 statement: PublicRead → 2 statements: PublicRead, PartnerTwo" in warning


def edited_every_time(bucket: str, *first: dict[str, Any]) -> None:
    """After every GetBucketPolicy, someone puts `first` and a new partner statement."""

    def another_edit(count: int) -> None:
        statements = [*first, partner_read(bucket, f"Partner{count}")]
        policies.put_policy(bucket, policies.policy(*statements))

    edit_after("GetBucketPolicy", another_edit, times=None)


def test_a_policy_that_keeps_changing_is_left_as_it_is_and_reported_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The TLS rule missing: secure-transport's fix, which closes no public exposure.
    inbox = subscribe_inbox(monkeypatch)
    bucket = make_bucket("always-edited")
    policies.put_policy(bucket, policies.policy(partner_read(bucket, "Partner0")))
    edited_every_time(bucket)
    before_calls = API_CALLS.snapshot()

    outcome = secure_transport.CASE.run(bucket)

    assert outcome["status"] == "failed", outcome
    assert "the bucket policy changed 3 times while the fix was prepared" in outcome["reason"]
    assert "left as it is rather than overwrite someone's edit" in outcome["reason"]
    # Judged three times on three reads, then never written: the last edit stands.
    assert calls_delta(before_calls)["s3.GetBucketPolicy"] == 4
    assert "s3.PutBucketPolicy" not in calls_delta(before_calls)
    assert policies.stored_policy(bucket)["Statement"][0]["Sid"] == "Partner4"
    assert len(inbox.receive()) == 1


def test_edits_that_keep_coming_cannot_keep_a_bucket_public() -> None:
    # Someone re-puts the public statement after every read, hoping the fix gives up.
    bucket = make_bucket("kept-open")
    public = policies.public_read(bucket)
    policies.put_policy(bucket, policies.policy(public))
    edited_every_time(bucket, public)

    outcome = policies.CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert any("public exposure is closed anyway" in w for w in outcome["warnings"]), outcome
    # The fix written is the last judgement: the public statement gone, the partner's kept (the
    # edit made right after that last read may be replaced, and the outcome says so). The
    # re-put that follows the verify is a new call, with an event of its own.
    [kept] = outcome["after"]["Policy"]["Statement"]
    assert kept["Sid"].startswith("Partner"), kept


def test_an_edit_right_after_the_write_is_kept_and_recorded() -> None:
    bucket = make_bucket("edited-after")
    partner = policies.cross_account(bucket)
    policies.put_policy(bucket, policies.policy(policies.public_read(bucket), partner))
    edited = policies.policy(partner, partner_read(bucket))
    edit_after("PutBucketPolicy", lambda _: policies.put_policy(bucket, edited))

    outcome = policies.CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert outcome["after"]["Policy"] == edited
    assert policies.stored_policy(bucket) == edited
    assert any(
        "read after the fix is not the one written" in warning
        and "2 statements: PartnerReads, PartnerTwo" in warning
        for warning in outcome["warnings"]
    ), outcome["warnings"]


def test_a_fix_without_concurrent_edits_carries_no_such_warning() -> None:
    bucket = policies.CASE.drifted_bucket()
    outcome = policies.CASE.run(bucket)
    assert outcome["status"] == "remediated", outcome
    assert not [w for w in outcome["warnings"] if "fix" in w], outcome["warnings"]


def test_an_acl_grant_added_between_the_read_and_the_write_is_kept() -> None:
    bucket = acls.CASE.drifted_bucket()
    owner = s3().get_bucket_acl(Bucket=bucket)["Owner"]

    def grant_partner(_: int) -> None:
        current = s3().get_bucket_acl(Bucket=bucket)
        partner = {
            "Grantee": {"Type": "CanonicalUser", "ID": OTHER_ACCOUNT_ID},
            "Permission": "READ",
        }
        s3().put_bucket_acl(
            Bucket=bucket,
            AccessControlPolicy={"Owner": owner, "Grants": [*current["Grants"], partner]},
        )

    edit_after("GetBucketAcl", grant_partner)

    outcome = acls.CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    grants = s3().get_bucket_acl(Bucket=bucket)["Grants"]
    assert {"Type": "CanonicalUser", "ID": OTHER_ACCOUNT_ID} in [
        {k: v for k, v in g["Grantee"].items() if k in {"Type", "ID"}} for g in grants
    ]
    assert not [g for g in grants if g["Grantee"].get("URI") == ALL_USERS]
    assert any("bucket ACL changed while the fix was prepared" in w for w in outcome["warnings"])


def test_an_access_point_policy_edited_between_the_read_and_the_write_keeps_the_edit() -> None:
    arn = access_points.CASE.drifted("edited-point")
    extra = access_points.statement("Auditors", {"AWS": f"arn:aws:iam::{PARTNER}:root"}, arn)

    def add_auditors(_: int) -> None:
        found = access_points.access_point_state(arn)["Policy"]
        access_points.put_policy(arn, {**found, "Statement": [*found["Statement"], extra]})

    edit_after("GetAccessPointPolicy", add_auditors)

    outcome = access_points.CASE.run(arn)

    assert outcome["status"] == "remediated", outcome
    assert access_points.access_point_state(arn)["Policy"]["Statement"] == [
        access_points.analytics_read(arn),
        extra,
    ]


# -- row 9: policies keep their bytes ----------------------------------------------------------


def prefixes_in_japanese(bucket: str, count: int) -> dict[str, Any]:
    """A partner's statement limited to folders named in Japanese (3 UTF-8 bytes a letter)."""
    folders = [f"請求書/{n:04}/領収書と明細書の保管場所" for n in range(count)]
    return {
        **partner_read(bucket, "PartnerFolders"),
        "Action": "s3:ListBucket",
        "Resource": f"arn:aws:s3:::{bucket}",
        "Condition": {"StringLike": {"s3:prefix": folders}},
    }


def test_non_ascii_text_is_written_as_utf8_and_stays_under_the_limit() -> None:
    bucket = make_bucket("japanese-bucket")
    kept = prefixes_in_japanese(bucket, 250)
    document = policies.policy(policies.public_read(bucket), kept)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    # Under 20 KB as UTF-8; escaped (\uXXXX, six bytes a letter) it would be far over.
    assert len(text.encode()) < MAX_POLICY_BYTES < len(json.dumps(document).encode())
    s3().put_bucket_policy(Bucket=bucket, Policy=text)

    outcome = policies.CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    written = s3().get_bucket_policy(Bucket=bucket)["Policy"]
    assert "請求書" in written
    assert "\\u" not in written
    assert len(written.encode()) <= MAX_POLICY_BYTES
    assert json.loads(written) == policies.policy(kept)


def test_a_write_s3_refuses_is_a_failed_outcome_and_notified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox = subscribe_inbox(monkeypatch)
    bucket = policies.CASE.drifted_bucket()
    refusal = ErrorResponses(400, "MalformedPolicy", times=1).install("PutBucketPolicy")

    outcome = policies.CASE.run(bucket)  # returns: nothing is raised into Lambda's retries

    assert refusal.sent == 1
    assert outcome["status"] == "failed", outcome
    assert "S3 refused PutBucketPolicy (MalformedPolicy: injected)" in outcome["reason"]
    assert len(inbox.receive()) == 1


def test_a_refused_access_point_policy_write_is_a_failed_outcome() -> None:
    arn = access_points.CASE.drifted("refused-point")
    ErrorResponses(400, "MalformedPolicy", times=1).install(
        "PutAccessPointPolicy", service="s3control"
    )
    outcome = access_points.CASE.run(arn)
    assert outcome["status"] == "failed", outcome
    assert "S3 refused PutAccessPointPolicy (MalformedPolicy" in outcome["reason"]


def test_a_rollback_writes_the_policy_back_as_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_TABLE", create_table("policy-audit", "audit_id"))
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    bucket = make_bucket("restored-in-japanese")
    own_role = {"AWS": f"arn:aws:iam::{ACCOUNT}:role/analytics"}
    folders = {**prefixes_in_japanese(bucket, 250), "Principal": own_role}
    s3().put_bucket_policy(
        Bucket=bucket, Policy=json.dumps(policies.policy(folders), ensure_ascii=False)
    )
    fix = secure_transport.CASE.run(bucket)
    assert fix["status"] == "remediated", fix

    assert cli.main(["rollback", fix["audit_id"]]) == 0

    written = s3().get_bucket_policy(Bucket=bucket)["Policy"]
    assert "請求書" in written
    assert "\\u" not in written
    assert json.loads(written) == policies.policy(folders)


def oversized(bucket: str) -> dict[str, Any]:
    state = policies.policy_state(bucket)
    return {**state, "Policy": policies.policy(prefixes_in_japanese(bucket, 400))}


def test_a_policy_over_the_limit_in_utf8_bytes_is_never_sent() -> None:
    bucket = make_bucket("oversized-bucket")
    desired = oversized(bucket)
    before_calls = API_CALLS.snapshot()
    with pytest.raises(OversizedPolicy, match=r"would be \d+ bytes, over S3's 20480"):
        PublicPolicy().apply(aws.client("s3", REGION), bucket, desired)
    assert calls_delta(before_calls) == {}


def test_an_access_point_policy_over_the_limit_is_never_sent() -> None:
    arn = access_points.CASE.drifted("oversized-point")
    desired = {**access_points.access_point_state(arn), **oversized("oversized-point")}
    with pytest.raises(OversizedPolicy):
        AccessPointPolicy().apply(aws.client("s3control", REGION), arn, desired)


# -- row 10: only the public part of a statement goes ------------------------------------------


def mixed(bucket: str, principal: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Sid": "Shared",
        "Effect": "Allow",
        "Principal": principal,
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
        **extra,
    }


def test_a_named_account_beside_anyone_keeps_its_grant() -> None:
    bucket = make_bucket("shared-bucket")
    root = f"arn:aws:iam::{PARTNER}:root"
    policies.put_policy(bucket, policies.policy(mixed(bucket, {"AWS": [root, "*"]})))

    outcome = policies.CASE.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert policies.stored_policy(bucket) == policies.policy(mixed(bucket, {"AWS": [root]}))
    assert 'it allows AWS "*" (anyone)' in outcome["reason"]
    assert (
        f'It also names AWS "{root}": a fix removes only the public principals'
        in (outcome["reason"])
    )


@pytest.mark.parametrize(
    ("principal", "kept"),
    [
        (
            {"AWS": ["arn:aws:iam::444455556666:root", "*"]},
            {"AWS": ["arn:aws:iam::444455556666:root"]},
        ),
        (
            {"AWS": "*", "Service": "logging.s3.amazonaws.com"},
            {"Service": "logging.s3.amazonaws.com"},
        ),
        (
            {
                "AWS": ["arn:aws:iam::*:role/x", "111122223333"],
                "Federated": "cognito-identity.amazonaws.com",
            },
            {"AWS": ["111122223333"]},
        ),
        ("*", None),
        ({"AWS": "*"}, None),
        ({"AWS": ["*", "arn:aws:iam::*:root"]}, None),
    ],
)
def test_only_public_principals_are_removed(principal: Any, kept: Any) -> None:
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": policies.policy(mixed("b", principal))}
    evaluation = PublicPolicy().evaluate(state, Settings())
    assert not evaluation.compliant
    expected = policies.policy(mixed("b", kept)) if kept else None
    assert evaluation.desired == {**state, "Policy": expected}
    if expected:
        assert not analyze(expected).public


def test_not_principal_and_conditions_still_remove_the_statement() -> None:
    not_principal = {
        "Sid": "AllButOne",
        "Effect": "Allow",
        "NotPrincipal": {"AWS": "arn:aws:iam::444455556666:root"},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::b/*",
    }
    state = {"BucketArn": "arn:aws:s3:::b", "Policy": policies.policy(not_principal)}
    assert PublicPolicy().evaluate(state, Settings()).desired == {**state, "Policy": None}


def test_an_access_point_statement_keeps_its_named_role() -> None:
    arn = access_points.open_access_point("shared-point-bucket")
    role = access_points.ANALYTICS_ROLE
    shared = access_points.statement("Shared", {"AWS": [role, "*"]}, arn)
    access_points.put_policy(arn, access_points.policy(shared))

    outcome = access_points.CASE.run(arn)

    assert outcome["status"] == "remediated", outcome
    assert access_points.access_point_state(arn)["Policy"]["Statement"] == [
        access_points.statement("Shared", {"AWS": [role]}, arn)
    ]


# -- row 8: encryption keys are judged ---------------------------------------------------------


@pytest.fixture
def stack_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)


def default_of(bucket: str) -> dict[str, Any]:
    config = encryption(bucket)
    assert config is not None
    return dict(config["Rules"][0]["ApplyServerSideEncryptionByDefault"])


@pytest.mark.usefixtures("stack_account")
@pytest.mark.parametrize("algorithm", ["aws:kms", "aws:kms:dsse"])
@pytest.mark.parametrize(
    "key", [FOREIGN_KEY, f"arn:aws:kms:{REGION}:{FOREIGN}:alias/backup"], ids=["key", "alias"]
)
def test_a_key_of_another_account_is_drift_under_sse_s3(algorithm: str, key: str) -> None:
    bucket = make_bucket("ransom-bucket")
    put_default(bucket, algorithm, key, bucket_key=algorithm == "aws:kms")

    outcome = ENCRYPTION.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert f"KMS key {key} is in another account ({FOREIGN}), not {ACCOUNT}" in outcome["reason"]
    assert default_of(bucket) == {"SSEAlgorithm": "AES256"}


@pytest.mark.usefixtures("stack_account")
@pytest.mark.parametrize(
    "key", [OWN_KEY, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "alias/backup", None]
)
def test_a_key_of_the_account_is_never_downgraded_under_sse_s3(key: str | None) -> None:
    bucket = make_bucket("own-key-bucket")
    put_default(bucket, "aws:kms", key, bucket_key=True)
    untouched = encryption(bucket)

    outcome = ENCRYPTION.run(bucket)

    assert outcome["status"] == "compliant", outcome
    assert encryption(bucket) == untouched


@pytest.mark.usefixtures("stack_account")
def test_with_an_approved_list_an_unlisted_key_is_swapped_for_the_first_approved_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPROVED_KMS_KEYS", OWN_KEY)
    bucket = make_bucket("unlisted-key-bucket")
    put_default(bucket, "aws:kms:dsse", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/other")

    outcome = ENCRYPTION.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert "is not on the approved list" in outcome["reason"]
    # SSE-S3 is the baseline, but the bucket keeps its (stronger) algorithm, with an approved key.
    assert default_of(bucket) == {"SSEAlgorithm": "aws:kms:dsse", "KMSMasterKeyID": OWN_KEY}


@pytest.mark.usefixtures("stack_account")
def test_an_approved_key_of_a_central_key_account_is_compliant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPROVED_KMS_KEYS", FOREIGN_KEY)
    bucket = make_bucket("central-key-bucket")
    put_default(bucket, "aws:kms", FOREIGN_KEY, bucket_key=True)
    assert ENCRYPTION.run(bucket)["status"] == "compliant"


@pytest.mark.usefixtures("stack_account")
def test_an_alias_of_another_account_does_not_pass_for_an_approved_alias(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_kms_baseline(monkeypatch, "alias/backup")
    bucket = make_bucket("lookalike-alias-bucket")
    lookalike = f"arn:aws:kms:{REGION}:{FOREIGN}:alias/backup"
    put_default(bucket, "aws:kms", lookalike, bucket_key=True)

    outcome = ENCRYPTION.run(bucket)

    assert outcome["status"] == "remediated", outcome
    assert f"(it is in another account, {FOREIGN})" in outcome["reason"]
    assert default_of(bucket) == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/backup"}


def test_a_key_arn_with_the_account_unknown_is_reported_not_replaced() -> None:
    bucket = make_bucket("unknown-account-bucket")
    put_default(bucket, "aws:kms", OWN_KEY, bucket_key=True)
    untouched = encryption(bucket)

    outcome = ENCRYPTION.run(bucket)

    assert outcome["status"] == "noncompliant", outcome
    assert "ACCOUNT_ID is not set, so it is reported, not replaced" in outcome["reason"]
    assert encryption(bucket) == untouched


@pytest.mark.parametrize(
    ("key", "account", "foreign"),
    [
        (FOREIGN_KEY, ACCOUNT, True),
        (OWN_KEY, ACCOUNT, False),
        ("alias/anything", ACCOUNT, False),
        ("alias/anything", None, False),
        ("1234abcd-12ab-34cd-56ef-1234567890ab", None, False),
    ],
)
def test_pure_judgement_of_key_accounts(key: str, account: str | None, foreign: bool) -> None:
    rule = {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
    }
    evaluation = DefaultEncryption().evaluate({"Rules": [rule]}, Settings(account_id=account))
    assert evaluation.compliant is not foreign
    if foreign:
        assert evaluation.desired == {
            "Rules": [
                {
                    **rule,
                    "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                    "BucketKeyEnabled": False,
                }
            ]
        }


def test_the_local_endpoint_measures_a_policy_as_s3_limits_it() -> None:
    """Whitespace between tokens is not counted; escapes count as written (six bytes)."""
    document = {"Sid": "Zone é", "Values": ["a b", 1]}
    pretty = json.dumps(document, indent=2)
    assert policy_size(pretty) == len(json.dumps(document, separators=(",", ":")).encode())
    utf8 = json.dumps(document, indent=2, ensure_ascii=False)
    compact = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    assert policy_size(utf8) == len(compact.encode()) < policy_size(pretty)


@pytest.mark.parametrize("times", [1, None], ids=["edited once", "edited every time"])
def test_a_surface_judged_again_leaves_one_audit_record_and_none_pending(
    monkeypatch: pytest.MonkeyPatch, times: int | None
) -> None:
    # The fix is recorded ahead of the write; when the surface changed meanwhile, the record of
    # the fix that was not made is replaced by the next one, never left
    # pending for a rollback to take as a fix that landed.
    monkeypatch.setenv("AUDIT_TABLE", create_table("bucketwarden-audit", "audit_id"))
    bucket = make_bucket("edited-while-recorded")
    policies.put_policy(bucket, policies.policy(policies.public_read(bucket)))

    def another_edit(count: int) -> None:
        statements = [policies.public_read(bucket), partner_read(bucket, f"Partner{count}")]
        policies.put_policy(bucket, policies.policy(*statements))

    edit_after("GetBucketPolicy", another_edit, times=times)

    outcome = policies.CASE.run(bucket)

    records = [r for r in audit_items("bucketwarden-audit") if r.get("control") == "public-policy"]
    assert [(r["audit_id"], r["status"]) for r in records] == [
        (outcome["audit_id"], outcome["status"])
    ]
    # Public exposure is closed even when the edits keep coming (see below).
    assert outcome["status"] == "remediated"


def test_a_public_edit_met_by_another_events_fix_is_judged_by_the_whole_surface() -> None:
    # CreateBucket's fix of the bucket policy is secure-transport's alone. A public policy put
    # while it is in flight is kept by its re-judgement: public-policy judges it too, so the
    # write cannot carry the public statement back over the public policy's own fix.
    bucket = make_bucket("opened-while-created")
    public = policies.policy(policies.public_read(bucket))
    edit_after("GetBucketPolicy", lambda _: policies.put_policy(bucket, public))

    outcomes = {o["control"]: o for o in handle("CreateBucket", bucket, "public-access")}

    assert outcomes["public-policy"]["status"] == "remediated", outcomes["public-policy"]
    assert outcomes["secure-transport"]["status"] == "remediated", outcomes["secure-transport"]
    stored = policies.stored_policy(bucket)
    assert stored["Statement"] == secure_transport.tls_rules(bucket)
