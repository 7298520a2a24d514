"""`bucketwarden rollback`: every control's fix undone exactly, the bucket exempted first.

Each scenario makes a surface drift (the defaults of the controls' own tests, and the "absent"
states: no policy, no encryption, no Block Public Access, no ownership controls, logging off),
lets the engine fix it as an event would, rolls the fix back through the CLI and reads the
surface again: it must be what it was before the fix, the bucket must carry the exemption with
its other tags kept, and the next event for the control must find it exempted.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import pytest

from bucketwarden.catalogue import CONTROL_IDS, control
from bucketwarden.controls.object_ownership import LOG_DELIVERY_SID
from bucketwarden.exemptions import read_tags
from bucketwarden.outcome import utc_now
from bucketwarden.settings import Settings
from bucketwarden_tools import cli
from bucketwarden_tools.rollback import (
    Record,
    RollbackError,
    exempted_tags,
    mode_parameter,
    opened_by_restore,
    tag_text,
)
from bucketwarden_tools.stack import DEFAULT_MAC_KEY
from tests import test_controls_access_logging as access_logging
from tests import test_controls_access_point as access_point
from tests import test_controls_account_public_access_block as account_block
from tests import test_controls_default_encryption as encryption
from tests import test_controls_object_lock_retention as object_lock
from tests import test_controls_object_ownership as ownership
from tests import test_controls_public_access_block as bucket_block
from tests import test_controls_public_acl as public_acl
from tests import test_controls_public_policy as public_policy
from tests import test_controls_secure_transport as secure_transport
from tests import test_controls_versioning as versioning
from tests.helpers import (
    ACCOUNT,
    ALL_USERS,
    OTHER_ACCOUNT_ID,
    REGION,
    ControlCase,
    audit_items,
    audit_store,
    create_table,
    denied,
    handle,
    make_bucket,
    own_client,
    s3,
    subscribe_inbox,
    tag_bucket,
)
from tests.test_cli_replay import json_lines, on_moto_server, run_cli  # noqa: F401 (fixture)
from tests.test_handler import AnswerLost, lose_answers

AUDIT_TABLE = "bucketwarden-audit"
# What the engine and the CLI verify audit records with (the test environment's key).
KEYED = Settings(audit_mac_key=DEFAULT_MAC_KEY)
EXEMPT = "bucketwarden:exempt"
EXEMPT_REASON = "bucketwarden:exempt-reason"
EXEMPT_UNTIL = "bucketwarden:exempt-until"
# Tags of the team that owns the bucket: a rollback must keep every one of them.
TEAM_TAGS = {"team": "analytics", "cost-center": "cc-42"}
CALLER = "arn:aws:sts::123456789012:user/moto"  # who moto says the caller is


def a_week_from_today() -> set[str]:
    """When the rollback's exemption ends by default: a week from today (UTC), for a rollback
    that ran moments ago, perhaps just before midnight."""
    now = utc_now()
    return {
        (moment.date() + timedelta(days=7)).isoformat()
        for moment in (now - timedelta(minutes=1), now)
    }


@dataclass
class Ran:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return json_lines(self.out)

    @property
    def said(self) -> str:
        """stderr as one line (rich wraps long messages)."""
        return " ".join(self.err.split())

    @property
    def printed(self) -> str:
        """stdout as one line."""
        return " ".join(self.out.split())


@pytest.fixture
def table(aws: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """The stack's audit table (with its bucket index), which the engine writes to."""
    create_table(AUDIT_TABLE, "audit_id")
    monkeypatch.setenv("AUDIT_TABLE", AUDIT_TABLE)
    # The CLI quietens Powertools with os.environ.setdefault: set here, they are undone after.
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")
    return AUDIT_TABLE


@pytest.fixture
def bucketwarden(table: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run the CLI in this process (inside moto) and capture what it printed."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


# -- the scenarios: each control, and each "absent" state -------------------------------------


def nothing(_: str) -> None:
    """A new bucket in moto already lacks the surface (moto applies none of S3's defaults)."""


def log_elsewhere(bucket: str) -> None:
    """Logs go to another team's bucket: the fix moves them, the rollback moves them back."""
    access_logging.log_bucket()  # the configured target, where the fix sends them
    access_logging.send_logs(bucket, access_logging.log_bucket("team-own-logs"), "mine/")


def kms_default(bucket: str) -> None:
    encryption.put_default(bucket, "aws:kms", UNAPPROVED_KEY, bucket_key=False)


APPROVED_KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
UNAPPROVED_KEY = "arn:aws:kms:us-east-1:123456789012:key/99999999-8888-7777-6666-555555555555"

SCENARIOS: dict[str, ControlCase] = {
    "public-acl": public_acl.CASE,
    "bucket-public-access-block all off": bucket_block.CASE,
    "bucket-public-access-block absent": replace(
        bucket_block.CASE, drift=nothing, event_name="DeleteBucketPublicAccessBlock"
    ),
    "object-ownership ObjectWriter": ownership.CASE,
    "object-ownership absent": replace(
        ownership.CASE,
        drift=lambda bucket: ownership.set_ownership(bucket, None),
        event_name="DeleteBucketOwnershipControls",
    ),
    "public-policy": public_policy.CASE,
    "secure-transport in a policy": secure_transport.CASE,
    "secure-transport no policy": replace(
        secure_transport.CASE, drift=nothing, event_name="DeleteBucketPolicy"
    ),
    "access-point": access_point.CASE,
    "default-encryption absent": encryption.CASE,
    "default-encryption unapproved key": replace(
        encryption.CASE,
        drift=kms_default,
        event_name="PutBucketEncryption",
        environment={"ENCRYPTION_BASELINE": "SSE-KMS", "APPROVED_KMS_KEYS": APPROVED_KEY},
    ),
    "versioning suspended": versioning.CASE,
    "access-logging off": access_logging.CASE,
    "access-logging elsewhere": replace(access_logging.CASE, drift=log_elsewhere),
    "object-lock-retention": object_lock.CASE,
}


def test_every_control_of_the_catalogue_is_rolled_back() -> None:
    # The account's Block Public Access has no tags: it is rolled back in its own test below.
    tested = {case.control for case in SCENARIOS.values()} | {account_block.CASE.control}
    # A detect-only control fixes nothing, so it has nothing to roll back.
    assert tested == {i for i in CONTROL_IDS if control(i).fixable}


def fixed(case: ControlCase, name: str = "team-bucket") -> tuple[str, Any, dict[str, Any]]:
    """A subject whose surface drifted and was fixed: (subject, the drifted state, the fix)."""
    subject = case.drifted(name)
    tagged = case.tagged_bucket(subject) if case.tagged_bucket else None
    if tagged:
        tag_bucket(tagged, TEAM_TAGS)
    drifted = case.read(subject)
    fix = case.run(subject)
    assert fix["status"] == "remediated", fix
    assert case.read(subject) != drifted
    return subject, drifted, fix


# Scenarios whose `before` is open (public, Block Public Access off): the rollback is refused
# without --force, naming what it would open.
OPENING = {
    "public-acl": "public-acl: ACL grants READ to AllUsers",
    "bucket-public-access-block all off": "bucket-public-access-block: Block Public Access off",
    "bucket-public-access-block absent": "no Block Public Access configuration",
    "public-policy": 'public-policy: Statement "PublicRead" is public',
    "access-point": "access-point: Statement",
}


@pytest.mark.parametrize(("name", "case"), SCENARIOS.items(), ids=SCENARIOS.keys())
def test_rollback_restores_the_surface_exactly_and_the_service_leaves_it(
    name: str, case: ControlCase, bucketwarden: Callable[..., Ran], table: str
) -> None:
    subject, drifted, fix = fixed(case)
    bucket = case.tagged_bucket(subject)
    # The record holds the surface exactly as it was (object-lock-retention adds the baseline
    # it read from the audit table: none yet here).
    [item] = [i for i in audit_items(table) if i["audit_id"] == fix["audit_id"]]
    assert item["before"] == drifted

    ran = bucketwarden("rollback", fix["audit_id"], "--json")
    if name in OPENING:
        assert ran.code == 2
        assert "as it was before the fix would open it: " in ran.said
        assert OPENING[name] in ran.said
        assert "--force rolls back anyway" in ran.said
        assert case.read(subject) == fix["after"]  # nothing changed, no tag written
        assert read_tags(s3(), bucket) == TEAM_TAGS
        ran = bucketwarden("rollback", fix["audit_id"], "--json", "--force")

    assert ran.code == 0, ran.err
    [line] = ran.lines
    assert case.read(subject) == drifted
    assert line["status"] == "rolled-back"
    assert (line["bucket"], line["control"]) == (subject, case.control)
    assert line["before"] == fix["after"]
    # The exemption: the control's id and who rolled back what, the team's tags all kept.
    reason = f"rolled back {fix['audit_id']} on {utc_now().date().isoformat()} by {CALLER}"
    until = (utc_now().date() + timedelta(days=7)).isoformat()
    exemption = {EXEMPT: case.control, EXEMPT_REASON: reason, EXEMPT_UNTIL: until}
    assert read_tags(s3(), bucket) == {**TEAM_TAGS, **exemption}
    assert line["exemption"] == {
        "bucket": bucket,
        "tags_before": TEAM_TAGS,
        "tags_after": {**TEAM_TAGS, **exemption},
    }
    # The rollback's own event finds the exemption: nothing is fixed again.
    again = case.run(subject, event_id="event-after-the-rollback")
    assert again["status"] == "exempted", again
    assert case.read(subject) == drifted
    # Recorded: the rollback has a record, and the fix's record names it.
    record = audit_store(KEYED, table, own_client("dynamodb")).get_record(fix["audit_id"])
    assert record is not None
    assert record["rolled_back_by"] == line["rollback_audit_id"]
    undo = audit_store(KEYED, table, own_client("dynamodb")).get_record(line["rollback_audit_id"])
    assert undo is not None
    assert (undo["status"], undo["rolls_back"], undo["actor"]) == (
        "rolled-back",
        fix["audit_id"],
        CALLER,
    )
    assert undo["before"] == fix["after"]


def test_dry_run_prints_the_exact_change_and_changes_nothing(
    bucketwarden: Callable[..., Ran], table: str
) -> None:
    case = public_acl.CASE
    subject, drifted, fix = fixed(case)
    records = audit_items(table)

    refused = bucketwarden("rollback", fix["audit_id"], "--dry-run")
    # Re-opening a public ACL is asked for explicitly, in a dry run too.
    text = bucketwarden("rollback", fix["audit_id"], "--dry-run", "--force")
    planned = bucketwarden("rollback", fix["audit_id"], "--dry-run", "--json", "--force")

    assert refused.code == 2
    assert "would open it: public-acl: ACL grants READ to AllUsers" in refused.said
    assert text.code == 0, text.err
    assert "rollback --dry-run: the change it would make, nothing changed" in text.printed
    assert "READ:AllUsers" in text.printed  # the grant the rollback would put back
    assert EXEMPT in text.printed
    assert "(none)" in text.printed  # the exempt tag does not exist yet
    assert planned.code == 0, planned.err
    [line] = planned.lines
    assert (line["status"], line["dry_run"], line["rollback_audit_id"]) == ("planned", True, None)
    assert line["before"] == fix["after"]
    assert line["after"] == drifted
    assert line["exemption"]["tags_after"][EXEMPT] == "public-acl"
    assert any("would open it" in warning for warning in line["warnings"])
    # Nothing changed: the fix stands, no tag, no record.
    assert case.read(subject) == fix["after"]
    assert read_tags(s3(), subject) == TEAM_TAGS
    assert audit_items(table) == records


def test_a_table_on_the_terminal_says_what_was_done_and_how_to_undo_the_exemption(
    bucketwarden: Callable[..., Ran],
) -> None:
    subject, _, fix = fixed(versioning.CASE)

    ran = bucketwarden("rollback", fix["audit_id"])

    assert ran.code == 0, ran.err
    assert f"audit record {fix['audit_id']}: versioning on bucket {subject}" in ran.printed
    assert "rolled back" in ran.printed
    assert "read back and verified" in ran.printed
    assert "delete them" in ran.printed
    assert "Suspended" in ran.printed


# -- surfaces shared by controls, and subjects without tags -----------------------------------


def test_a_policy_fixed_by_two_controls_in_one_write_is_restored_and_both_exempted(
    bucketwarden: Callable[..., Ran],
) -> None:
    bucket = make_bucket("website-bucket")
    tag_bucket(bucket, TEAM_TAGS)
    public_policy.make_public(bucket)  # public, and without the TLS rule
    drifted = public_policy.policy_state(bucket)
    outcomes = handle("PutBucketPolicy", bucket, "public-access")
    fixes = {o["control"]: o for o in outcomes if o["status"] == "remediated"}
    assert set(fixes) == {"public-policy", "secure-transport"}

    ran = bucketwarden("rollback", fixes["public-policy"]["audit_id"], "--json", "--force")

    assert ran.code == 0, ran.err
    assert [(line["control"], line["audit_id"]) for line in ran.lines] == [
        ("public-policy", fixes["public-policy"]["audit_id"]),
        ("secure-transport", fixes["secure-transport"]["audit_id"]),
    ]
    assert public_policy.policy_state(bucket) == drifted
    assert read_tags(s3(), bucket)[EXEMPT] == "public-policy+secure-transport"
    again = handle("PutBucketPolicy", bucket, "public-access", event_id="after-rollback")
    assert {o["control"]: o["status"] for o in again} == {
        "public-policy": "exempted",
        "secure-transport": "exempted",
    }
    assert public_policy.policy_state(bucket) == drifted


@pytest.mark.parametrize(
    ("drift", "event_name"),
    [
        (account_block.turn_off, "PutAccountPublicAccessBlock"),
        (lambda account: None, "DeleteAccountPublicAccessBlock"),  # moto's account has none
    ],
    ids=["all off", "absent"],
)
def test_the_account_block_is_restored_with_a_warning_that_only_its_mode_keeps_it(
    drift: Callable[[str], None],
    event_name: str,
    bucketwarden: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = replace(account_block.CASE, drift=drift, event_name=event_name)
    drift(ACCOUNT)
    drifted = case.read(ACCOUNT)
    fix = case.run(ACCOUNT)
    assert fix["status"] == "remediated", fix

    ran = bucketwarden("rollback", fix["audit_id"], "--json", "--force")

    assert ran.code == 0, ran.err
    [line] = ran.lines
    assert case.read(ACCOUNT) == drifted
    assert line["exemption"] is None
    opened, warning = line["warnings"]
    assert "would open it: account-public-access-block: " in opened
    assert "AccountPublicAccessBlockMode" in warning
    assert "notify or off" in warning
    assert "AccountPublicAccessBlockMode" in ran.said  # said to the person too
    # As warned: with the mode at notify the next event reports and leaves it.
    monkeypatch.setenv(case.mode_variable, "notify")
    assert case.run(ACCOUNT, event_id="after-rollback")["status"] == "noncompliant"
    assert case.read(ACCOUNT) == drifted


def test_mode_parameter_names_the_template_parameter() -> None:
    assert mode_parameter("account-public-access-block") == "AccountPublicAccessBlockMode"
    assert mode_parameter("access-point") == "AccessPointMode"


def test_versioning_never_enabled_comes_back_suspended_and_says_why(
    bucketwarden: Callable[..., Ran],
) -> None:
    case = replace(versioning.CASE, drift=nothing)
    subject, drifted, fix = fixed(case)
    assert drifted == {}

    ran = bucketwarden("rollback", fix["audit_id"], "--json")

    assert ran.code == 0, ran.err
    [line] = ran.lines
    assert versioning.versioning(subject) == {"Status": "Suspended"}
    assert line["after"] == {"Status": "Suspended"}
    assert any("never enabled" in warning for warning in line["warnings"])
    assert case.run(subject, event_id="after-rollback")["status"] == "exempted"


def test_log_delivery_moved_to_the_policy_stays_there_when_acls_come_back(
    bucketwarden: Callable[..., Ran],
) -> None:
    case = replace(ownership.CASE, create=ownership.log_delivery_bucket, drift=nothing)
    subject, drifted, fix = fixed(case)
    assert LOG_DELIVERY_SID in json.dumps(ownership.bucket_policy(subject))

    ran = bucketwarden("rollback", fix["audit_id"], "--json")

    assert ran.code == 0, ran.err
    assert ownership.surface(subject) == drifted  # the setting and the log delivery grants
    # The statement grants the logging service what the ACL grant does: it is left in place.
    assert LOG_DELIVERY_SID in json.dumps(ownership.bucket_policy(subject))


def test_the_policy_keeps_its_key_order_in_the_record_and_after_the_rollback(
    bucketwarden: Callable[..., Ran], table: str
) -> None:
    bucket = make_bucket("ordered-bucket")
    statement = {  # keys in the order people write them, not sorted
        "Sid": "PublicRead",
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    public_policy.put_policy(bucket, {"Version": "2012-10-17", "Statement": [statement]})
    fix = public_policy.CASE.run(bucket)
    item = own_client("dynamodb").get_item(
        TableName=table, Key={"audit_id": {"S": fix["audit_id"]}}
    )["Item"]
    recorded = json.loads(item["before"]["S"])["Policy"]
    assert list(recorded) == ["Version", "Statement"]
    assert list(recorded["Statement"][0]) == list(statement)

    assert bucketwarden("rollback", fix["audit_id"], "--force").code == 0
    restored = json.loads(s3().get_bucket_policy(Bucket=bucket)["Policy"])
    assert list(restored["Statement"][0]) == list(statement)


# -- the exemption tags -----------------------------------------------------------------------


def test_an_existing_exemption_gains_the_control_and_keeps_its_reason(
    bucketwarden: Callable[..., Ran],
) -> None:
    subject, drifted, fix = fixed(public_acl.CASE)
    tag_bucket(subject, {**TEAM_TAGS, EXEMPT: "versioning", EXEMPT_REASON: "archive bucket"})

    ran = bucketwarden("rollback", fix["audit_id"], "--force")

    assert ran.code == 0, ran.err
    tags = read_tags(s3(), subject)
    assert tags[EXEMPT] == "versioning+public-acl"
    assert tags[EXEMPT_REASON].startswith(f"archive bucket - rolled back {fix['audit_id']} on ")
    assert {k: tags[k] for k in TEAM_TAGS} == TEAM_TAGS
    # It had no end: it has the rollback's now (no exemption the rollback touches is endless).
    assert tags[EXEMPT_UNTIL] in a_week_from_today()
    assert public_acl.acl(subject) == drifted


def test_a_lapsed_exemption_is_replaced_not_revived(bucketwarden: Callable[..., Ran]) -> None:
    subject, _, fix = fixed(public_acl.CASE)
    lapsed = {EXEMPT: "all", EXEMPT_REASON: "migration", EXEMPT_UNTIL: "2020-01-31"}
    tag_bucket(subject, {**TEAM_TAGS, **lapsed})

    ran = bucketwarden("rollback", fix["audit_id"], "--json", "--force")

    assert ran.code == 0, ran.err
    tags = read_tags(s3(), subject)
    assert tags[EXEMPT] == "public-acl"
    assert tags[EXEMPT_UNTIL] in a_week_from_today()  # the lapsed date is replaced by ours
    assert tags[EXEMPT_REASON].startswith("rolled back ")
    [line] = ran.lines
    assert any(
        "was not in effect (exemption expired on 2020-01-31)" in warning
        for warning in line["warnings"]
    )


def test_an_earlier_end_date_is_kept_and_named(bucketwarden: Callable[..., Ran]) -> None:
    subject, _, fix = fixed(versioning.CASE)
    tomorrow = (utc_now().date() + timedelta(days=1)).isoformat()
    tag_bucket(subject, {EXEMPT: "encryption", EXEMPT_REASON: "archive", EXEMPT_UNTIL: tomorrow})

    ran = bucketwarden("rollback", fix["audit_id"], "--json")

    assert ran.code == 0, ran.err
    assert read_tags(s3(), subject)[EXEMPT_UNTIL] == tomorrow
    [line] = ran.lines
    assert any(f"ends after {tomorrow}" in warning for warning in line["warnings"])


def test_a_later_end_date_is_brought_forward_to_the_rollbacks(
    bucketwarden: Callable[..., Ran],
) -> None:
    subject, _, fix = fixed(versioning.CASE)
    # Within MaxExemptionDays (365 by default), so the exemption is in effect.
    later = (utc_now().date() + timedelta(days=200)).isoformat()
    tag_bucket(subject, {EXEMPT: "encryption", EXEMPT_REASON: "archive", EXEMPT_UNTIL: later})

    ran = bucketwarden("rollback", fix["audit_id"], "--json", "--exempt-days", "30")

    assert ran.code == 0, ran.err
    in_30_days = (utc_now().date() + timedelta(days=30)).isoformat()
    assert read_tags(s3(), subject)[EXEMPT_UNTIL] == in_30_days
    [line] = ran.lines
    assert any(
        f"ends after {in_30_days}" in warning
        and f"own end date {later} is brought forward" in warning
        for warning in line["warnings"]
    )


def test_system_tags_are_left_alone_through_s3_control(bucketwarden: Callable[..., Ran]) -> None:
    subject, drifted, fix = fixed(public_acl.CASE)
    system = {"aws:cloudformation:stack-name": "analytics"}
    own_client("s3control").tag_resource(
        AccountId=ACCOUNT,
        ResourceArn=f"arn:aws:s3:::{subject}",
        Tags=[{"Key": k, "Value": v} for k, v in system.items()],
    )

    ran = bucketwarden("rollback", fix["audit_id"], "--force")

    assert ran.code == 0, ran.err
    tags = read_tags(s3(), subject)
    assert {k: tags[k] for k in (*TEAM_TAGS, *system)} == {**TEAM_TAGS, **system}
    assert tags[EXEMPT] == "public-acl"
    assert public_acl.acl(subject) == drifted


def test_the_exempt_tag_key_follows_the_settings(
    bucketwarden: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXEMPT_TAG_KEY", "acme:skip")
    subject, _, fix = fixed(public_acl.CASE)

    assert bucketwarden("rollback", fix["audit_id"], "--force").code == 0

    tags = read_tags(s3(), subject)
    assert tags["acme:skip"] == "public-acl"
    assert tags["acme:skip-reason"].startswith("rolled back ")
    assert tags["acme:skip-until"] in a_week_from_today()
    assert EXEMPT not in tags


def test_tag_values_keep_to_what_s3_accepts() -> None:
    reason = tag_text("rolled back x by arn:aws:sts::1:assumed-role/Ops,Team/jo!e@corp" + "x" * 300)
    assert len(reason) == 256
    assert "," not in reason
    assert "!" not in reason
    assert reason.startswith("rolled back x by arn:aws:sts::1:assumed-role/Ops_Team/jo_e@corp")


TODAY = date(2025, 6, 1)
UNTIL = date(2025, 6, 8)
ROLLBACK_EXEMPTION = {EXEMPT: "public-acl", EXEMPT_REASON: "r", EXEMPT_UNTIL: "2025-06-08"}


def exempt_public_acl(tags: dict[str, str]) -> Any:
    """The tags a rollback of a public-acl fix on TODAY wants, exempting until UNTIL."""
    return exempted_tags(
        "b", tags, ["public-acl"], Settings(), reason="r", today=TODAY, until=UNTIL
    )


def test_an_exemption_without_a_reason_is_replaced_not_widened() -> None:
    # Giving "versioning" a reason would exempt versioning, which nobody asked for.
    tags = {**TEAM_TAGS, EXEMPT: "versioning"}

    change = exempt_public_acl(tags)

    assert change.after == {**TEAM_TAGS, **ROLLBACK_EXEMPTION}
    assert any("was not in effect" in note for note in change.notes)


def test_an_end_date_left_without_an_exemption_is_replaced() -> None:
    tags = {**TEAM_TAGS, EXEMPT_UNTIL: "2025-01-01"}

    change = exempt_public_acl(tags)

    assert change.after == {**TEAM_TAGS, **ROLLBACK_EXEMPTION}


def test_an_exemption_in_effect_keeps_its_separator_and_reason() -> None:
    tags = {EXEMPT: "versioning, access-logging", EXEMPT_REASON: "archive"}

    change = exempt_public_acl(tags)

    assert change.after == {
        EXEMPT: "versioning, access-logging,public-acl",
        EXEMPT_REASON: "archive - r",
        EXEMPT_UNTIL: "2025-06-08",
    }
    assert change.changes() == [
        (EXEMPT, "versioning, access-logging", "versioning, access-logging,public-acl"),
        (EXEMPT_REASON, "archive", "archive - r"),
        (EXEMPT_UNTIL, None, "2025-06-08"),
    ]


def test_a_bucket_already_exempt_keeps_its_tags() -> None:
    tags = {EXEMPT: "all", EXEMPT_REASON: "sandbox"}

    change = exempt_public_acl(tags)

    assert not change.changed


def test_too_many_tags_is_refused_before_anything_changes() -> None:
    tags = {f"tag-{n}": "v" for n in range(49)}
    with pytest.raises(RollbackError, match="exceed S3's 50"):
        exempt_public_acl(tags)


# -- refusals: exit code 2, nothing changed ---------------------------------------------------


def test_an_unknown_audit_id_is_refused(bucketwarden: Callable[..., Ran]) -> None:
    ran = bucketwarden("rollback", "no-such-record")
    assert ran.code == 2
    assert "no audit record 'no-such-record'" in ran.said


@pytest.mark.parametrize("status", ["noncompliant", "exempted"])
def test_a_record_that_changed_nothing_is_refused(
    status: str, bucketwarden: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = public_acl.CASE
    subject = case.drifted()
    if status == "noncompliant":
        monkeypatch.setenv(case.mode_variable, "notify")
    else:
        tag_bucket(subject, {EXEMPT: "public-acl", EXEMPT_REASON: "public website"})
    outcome = case.run(subject)
    assert outcome["status"] == status

    ran = bucketwarden("rollback", outcome["audit_id"])

    assert ran.code == 2
    assert f"is {status}: only a remediated (or pending) record" in ran.said


def test_a_surface_changed_since_the_fix_is_refused_unless_forced(
    bucketwarden: Callable[..., Ran],
) -> None:
    subject, drifted, fix = fixed(public_acl.CASE)
    # Someone granted another account more since the fix: a rollback would take that away.
    grants = [*fix["after"]["Grants"], public_acl.canonical(OTHER_ACCOUNT_ID, "READ_ACP")]
    s3().put_bucket_acl(
        Bucket=subject, AccessControlPolicy={"Owner": fix["after"]["Owner"], "Grants": grants}
    )
    changed = public_acl.acl(subject)

    refused = bucketwarden("rollback", fix["audit_id"])

    assert refused.code == 2
    assert f"the bucket ACL of {subject} changed since the fix" in refused.said
    assert "--force rolls back anyway" in refused.said
    # Both objections are named at once, as --force overrides both.
    assert "would open it: public-acl: ACL grants READ to AllUsers" in refused.said
    assert public_acl.acl(subject) == changed
    assert read_tags(s3(), subject) == TEAM_TAGS

    forced = bucketwarden("rollback", fix["audit_id"], "--force", "--json")

    assert forced.code == 0, forced.err
    [line] = forced.lines
    assert any("--force" in warning for warning in line["warnings"])
    assert read_tags(s3(), subject)[EXEMPT] == "public-acl"
    assert public_acl.acl(subject) == drifted


def test_a_surface_already_back_as_before_is_refused(bucketwarden: Callable[..., Ran]) -> None:
    subject, drifted, fix = fixed(versioning.CASE)
    versioning.put_status(subject, "Suspended")  # someone undid the fix by hand
    assert versioning.versioning(subject) == drifted

    ran = bucketwarden("rollback", fix["audit_id"])

    assert ran.code == 2
    assert "already holds its configuration from before the fix" in ran.said
    assert read_tags(s3(), subject) == TEAM_TAGS


def test_a_second_rollback_of_the_same_record_is_refused(bucketwarden: Callable[..., Ran]) -> None:
    _, _, fix = fixed(public_acl.CASE)
    assert bucketwarden("rollback", fix["audit_id"], "--force").code == 0

    again = bucketwarden("rollback", fix["audit_id"])

    assert again.code == 2
    assert "rolled back already" in again.said
    assert "(--force rolls back anyway)" in again.said


def test_a_forced_second_rollback_still_needs_a_surface_that_is_not_before(
    bucketwarden: Callable[..., Ran], table: str
) -> None:
    subject, drifted, fix = fixed(public_acl.CASE)
    first = bucketwarden("rollback", fix["audit_id"], "--json", "--force")
    assert first.code == 0, first.err
    [first_line] = first.lines

    # Nothing changed since the first rollback: the surface holds `before`, nothing to do.
    unchanged = bucketwarden("rollback", fix["audit_id"], "--force")
    assert unchanged.code == 2
    assert "already holds its configuration from before the fix" in unchanged.said

    # Someone put the fixed ACL back by hand: --force rolls the record back a second time.
    s3().put_bucket_acl(Bucket=subject, AccessControlPolicy=fix["after"])
    forced = bucketwarden("rollback", fix["audit_id"], "--force", "--json")

    assert forced.code == 0, forced.err
    [line] = forced.lines
    assert public_acl.acl(subject) == drifted
    assert line["rollback_audit_id"] != first_line["rollback_audit_id"]
    [record] = [item for item in audit_items(table) if item["audit_id"] == fix["audit_id"]]
    assert record["rolled_back_by"] == line["rollback_audit_id"]  # the latest rollback


@pytest.mark.parametrize(
    ("case", "noun"),
    [(public_acl.CASE, "bucket"), (access_point.CASE, "access point")],
    ids=["bucket", "access point"],
)
def test_a_subject_gone_since_the_fix_is_refused(
    case: ControlCase, noun: str, bucketwarden: Callable[..., Ran]
) -> None:
    subject, _, fix = fixed(case, "short-lived")
    case.remove(subject)

    ran = bucketwarden("rollback", fix["audit_id"])

    assert ran.code == 2
    assert f"{noun} {subject} no longer exists" in ran.said


def test_access_denied_on_the_tags_changes_nothing(
    bucketwarden: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    subject, _, fix = fixed(public_acl.CASE)

    with denied(monkeypatch, "s3:PutBucketTagging"):
        ran = bucketwarden("rollback", fix["audit_id"], "--force")

    assert ran.code == 2
    assert "AccessDenied on PutBucketTagging" in ran.said
    assert public_acl.acl(subject) == fix["after"]
    assert read_tags(s3(), subject) == TEAM_TAGS


def test_access_denied_on_the_restore_puts_the_tags_back(
    bucketwarden: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    subject, _, fix = fixed(public_acl.CASE)

    with denied(monkeypatch, "s3:PutBucketAcl"):
        ran = bucketwarden("rollback", fix["audit_id"], "--force")

    assert ran.code == 2
    message = ran.said
    assert "AccessDenied on PutBucketAcl" in message
    assert "BlockPublicAcls" in message  # why S3 itself may refuse it, too
    assert "the exemption tags were put back as they were" in message
    assert public_acl.acl(subject) == fix["after"]
    assert read_tags(s3(), subject) == TEAM_TAGS
    assert "rolled_back_by" not in (
        audit_store(KEYED, AUDIT_TABLE, own_client("dynamodb")).get_record(fix["audit_id"]) or {}
    )


@pytest.mark.parametrize(
    ("case", "action"),
    [
        (public_acl.CASE, "s3:PutBucketAcl"),
        (public_policy.CASE, "s3:PutBucketPolicy"),
        (access_point.CASE, "s3:PutAccessPointPolicy"),
    ],
    ids=["public-acl", "public-policy", "access-point"],
)
def test_a_refused_restore_says_why_s3_itself_may_refuse_it(
    bucketwarden: Callable[..., Ran],
    monkeypatch: pytest.MonkeyPatch,
    case: ControlCase,
    action: str,
) -> None:
    subject, _, fix = fixed(case)

    with denied(monkeypatch, action):
        ran = bucketwarden("rollback", fix["audit_id"], "--force")

    assert ran.code == 2
    hint = control(case.control).refusal_hint
    assert hint
    assert " ".join(hint.split()) in ran.said
    assert case.read(subject) == fix["after"]


def test_a_restore_refused_half_way_says_what_it_left(
    bucketwarden: Callable[..., Ran], monkeypatch: pytest.MonkeyPatch
) -> None:
    # ACLs come back in two writes: the setting, then the ACL; the ACL write is refused.
    case = replace(ownership.CASE, create=ownership.log_delivery_bucket, drift=nothing)
    subject, _, fix = fixed(case)

    with denied(monkeypatch, "s3:PutBucketAcl"):
        ran = bucketwarden("rollback", fix["audit_id"])

    assert ran.code == 2
    assert "AccessDenied on PutBucketAcl" in ran.said
    assert "was rolled back in part and is now BucketOwnerPreferred (ACLs enabled)" in ran.said
    assert read_tags(s3(), subject) == TEAM_TAGS


def test_a_rollback_record_is_not_rolled_back(bucketwarden: Callable[..., Ran]) -> None:
    _, _, fix = fixed(public_acl.CASE)
    [line] = bucketwarden("rollback", fix["audit_id"], "--json", "--force").lines

    ran = bucketwarden("rollback", line["rollback_audit_id"])

    assert ran.code == 2
    assert f"records a rollback (of {fix['audit_id']}), not a fix" in ran.said
    assert "delete the exemption tags" in ran.said


def test_a_missing_audit_table_is_refused(bucketwarden: Callable[..., Ran]) -> None:
    ran = bucketwarden("rollback", "any-id", "--audit-table", "no-such-table")
    assert ran.code == 2
    assert "audit table 'no-such-table' not found" in ran.said
    assert "AuditTableName" in ran.said


# -- as a user runs it --------------------------------------------------------------------------


@pytest.mark.usefixtures("on_moto_server")
def test_rollback_as_a_user_runs_it_against_an_endpoint(
    moto_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    create_table(AUDIT_TABLE, "audit_id")
    bucket = make_bucket("served-bucket")
    tag_bucket(bucket, TEAM_TAGS)
    s3().put_bucket_acl(Bucket=bucket, ACL="public-read")
    drifted = public_acl.acl(bucket)
    monkeypatch.setenv("AUDIT_TABLE", AUDIT_TABLE)  # the engine's and the CLI's
    fix = public_acl.CASE.run(bucket)
    assert fix["status"] == "remediated"

    refused = run_cli("rollback", fix["audit_id"], endpoint=moto_server)
    assert refused.returncode == 2
    assert "would open it" in " ".join(refused.stderr.split())
    dry = run_cli("rollback", fix["audit_id"], "--dry-run", "--force", endpoint=moto_server)
    assert dry.returncode == 0, dry.stderr
    assert public_acl.acl(bucket) == fix["after"]

    ran = run_cli("rollback", fix["audit_id"], "--json", "--force", endpoint=moto_server)

    assert ran.returncode == 0, ran.stderr
    [line] = json_lines(ran.stdout)
    assert line["status"] == "rolled-back"
    assert public_acl.acl(bucket) == drifted
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in public_acl.acl(bucket)["Grants"])
    assert read_tags(s3(), bucket) == {**TEAM_TAGS, **line["exemption"]["tags_after"]}


def test_the_notified_command_rolls_back_from_a_shell_set_to_another_region(
    bucketwarden: Callable[..., Ran], table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)  # set by Lambda: the stack's region
    inbox = subscribe_inbox(monkeypatch)
    subject, drifted, fix = fixed(public_acl.CASE)
    [envelope] = inbox.receive()
    command = json.loads(envelope["Message"])["rollback_command"]
    assert command == (
        f"bucketwarden rollback {fix['audit_id']} --audit-table {table} --region {REGION}"
    )
    # The person's shell: another region, no stack variables.
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AUDIT_TABLE")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    program, *args = shlex.split(command)
    assert program == "bucketwarden"

    without_region = bucketwarden(*args[:-2])
    assert without_region.code == 2
    assert f"audit table '{table}' not found" in without_region.said
    assert public_acl.acl(subject) == fix["after"]

    # The fix closed a public ACL: the command as notified asks before re-opening it.
    asked = bucketwarden(*args)
    assert asked.code == 2
    assert "would open it" in asked.said
    ran = bucketwarden(*args, "--force")

    assert ran.code == 0, ran.err
    assert public_acl.acl(subject) == drifted


def test_a_fix_left_pending_by_a_dead_lettered_event_can_be_rolled_back(
    bucketwarden: Callable[..., Ran], table: str
) -> None:
    """The write landed and its answer was lost, and the retries never got through (then the
    dead-letter queue): only the write-ahead record is left. The surface holds its planned
    `after`, so the rollback restores `before`."""
    subject = public_acl.CASE.drifted("team-bucket")
    drifted = public_acl.acl(subject)
    lose_answers("PutBucketAcl")
    with pytest.raises(AnswerLost):
        public_acl.CASE.run(subject)
    [pending] = audit_items(table)
    assert pending["status"] == "pending"
    assert public_acl.acl(subject) == pending["after"] != drifted

    ran = bucketwarden("rollback", pending["audit_id"], "--force")

    assert ran.code == 0, ran.err
    assert public_acl.acl(subject) == drifted
    assert read_tags(s3(), subject)[EXEMPT] == "public-acl"


# -- a rollback that would open asks first (issue 12, row 7) -------------------------------------


def record_of(control_id: str, before: Any, after: Any) -> Record:
    item = {"audit_id": "a1", "bucket": "team-bucket", "status": "remediated"}
    return Record({**item, "before": before, "after": after}, control(control_id))


def policy_granting(*principals: str, condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": list(principals)},
        "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::team-bucket/*",
    }
    if condition:
        statement["Condition"] = condition
    return {"BucketArn": "arn:aws:s3:::team-bucket", "Policy": {"Statement": [statement]}}


NO_POLICY = {"BucketArn": "arn:aws:s3:::team-bucket", "Policy": None}
OTHER = "111122223333"


@pytest.mark.parametrize(
    ("before", "named"),
    [
        (policy_granting(f"arn:aws:iam::{OTHER}:role/reader"), f"account {OTHER}"),
        (policy_granting(OTHER), f"account {OTHER}"),
        (
            policy_granting(
                f"arn:aws:iam::{ACCOUNT}:root",
                condition={"StringEquals": {"aws:PrincipalAccount": OTHER}},
            ),
            f"account {OTHER}",
        ),
    ],
    ids=["role ARN", "account id", "aws:PrincipalAccount"],
)
def test_a_policy_granting_another_account_would_open(before: Any, named: str) -> None:
    opened = opened_by_restore(
        record_of("secure-transport", before, NO_POLICY), NO_POLICY, Settings(), ACCOUNT
    )
    assert opened == [f"access for {named}"]


def test_a_policy_granting_the_own_account_opens_nothing() -> None:
    before = policy_granting(f"arn:aws:iam::{ACCOUNT}:role/reader")
    record = record_of("secure-transport", before, NO_POLICY)
    assert opened_by_restore(record, NO_POLICY, Settings(), ACCOUNT) == []


def test_a_grant_kept_by_the_fix_is_not_opened_again() -> None:
    """public-policy keeps cross-account statements: restoring them opens nothing new."""
    kept = policy_granting(f"arn:aws:iam::{OTHER}:role/reader")
    record = record_of("secure-transport", kept, kept)
    assert opened_by_restore(record, kept, Settings(), ACCOUNT) == []


def test_an_acl_grant_to_another_canonical_user_would_open() -> None:
    owner = {"ID": "a" * 64}
    own = {"Grantee": {"Type": "CanonicalUser", "ID": owner["ID"]}, "Permission": "FULL_CONTROL"}
    other = public_acl.canonical(OTHER_ACCOUNT_ID, "READ")
    before = {"Owner": owner, "Grants": [own, other]}
    now = {"Owner": owner, "Grants": [own]}
    opened = opened_by_restore(record_of("public-acl", before, now), now, Settings(), ACCOUNT)
    assert opened == [f"access for canonical user {OTHER_ACCOUNT_ID}"]


def test_a_public_before_that_is_public_now_too_opens_nothing_new() -> None:
    """The surface is as public now as `before` (public-policy in notify mode, say)."""
    public = {
        "BucketArn": "arn:aws:s3:::team-bucket",
        "Policy": {"Statement": [public_policy.public_read("team-bucket")]},
    }
    record = record_of("secure-transport", public, public)
    assert opened_by_restore(record, public, Settings(), ACCOUNT) == []


@pytest.mark.parametrize("days", ["0", "366", "seven", "-1"])
def test_exempt_days_out_of_range_is_refused(days: str, bucketwarden: Callable[..., Ran]) -> None:
    with pytest.raises(SystemExit) as stopped:
        bucketwarden("rollback", "any-id", "--exempt-days", days)
    assert stopped.value.code == 2


def test_exempt_days_sets_the_end_of_the_exemption(bucketwarden: Callable[..., Ran]) -> None:
    subject, _, fix = fixed(versioning.CASE)

    ran = bucketwarden("rollback", fix["audit_id"], "--exempt-days", "1")

    assert ran.code == 0, ran.err
    tomorrow = (utc_now().date() + timedelta(days=1)).isoformat()
    assert read_tags(s3(), subject)[EXEMPT_UNTIL] == tomorrow
    assert f"the exemption ends after {tomorrow}" in ran.printed


def test_a_before_that_is_no_policy_asks_too() -> None:
    """A text S3 once held that cannot be judged grants no account, but may be anything: the
    public-policy judge cannot call it closed, so restoring it asks."""
    before = {"BucketArn": "arn:aws:s3:::team-bucket", "Policy": "not a policy"}
    record = record_of("secure-transport", before, NO_POLICY)
    [opened] = opened_by_restore(record, NO_POLICY, Settings(), ACCOUNT)
    assert opened.startswith("public-policy: the bucket policy cannot be judged: ")
