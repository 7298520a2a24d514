"""The sweep covers the organization (issue 14, point 4).

A hub in organization mode sweeps every account (ACCOUNT_IDS, else the organization's ACTIVE
accounts, its own always): the scheduled invocation plans the sweep and starts the first
accounts; each account is swept by invocations of its own with its member role (the hub's with
its own clients); the invocation that finishes the last account publishes one summary, worst
accounts first. An account whose member role cannot be assumed is named in the summary and the
rest goes on.

The self-invocations are the real Invoke requests botocore builds, answered below botocore as
Lambda answers them (tests/test_sweep.py's SelfInvocations) and fed back to the handler, each
with a request id of its own, as Lambda would deliver them. moto runs every account; it checks
no trust policy, so a refused role is STS's AccessDenied answer to the hub's AssumeRole request
for it (a `before-send` stand-in, as tests.helpers.ErrorResponses is for S3's errors).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws, notify
from bucketwarden.accounts import account_access
from bucketwarden.handler import process
from bucketwarden.org_sweep import (
    FAN_OUT,
    AccountResult,
    SweepPlan,
    combined,
    configured_accounts,
    next_in_lane,
    organization_accounts,
)
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import ConfigError, Settings
from bucketwarden.summary import SweepSummary, Tally
from bucketwarden.sweep_handler import sweep
from tests import test_organization_engine as engine_tests
from tests.helpers import (
    ACCOUNT,
    API_CALLS,
    Inbox,
    audit_items,
    calls_delta,
    create_table,
    only,
    own_client,
    s3,
    subscribe_inbox,
)
from tests.test_organization_engine import member_client
from tests.test_sweep import FakeContext, SelfInvocations, only_controls, scheduled_event

pytestmark = [
    pytest.mark.usefixtures("aws"),
    pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left:UserWarning"),
]

MEMBER = "222222222222"
DENIED = "333333333333"
ORGANIZATION = "o-abcdefghij"
SWEEP_ROLE = "bucketwarden-member-sweep"
AUDIT_TABLE = "bucketwarden-audit"
IDEMPOTENCY_TABLE = "bucketwarden-idempotency"


class RefusedRoles:
    """STS's answer (AccessDenied) to the hub's AssumeRole requests for the roles of `accounts`:
    a role missing, or not trusting the hub. Other requests go on to moto."""

    def __init__(self, *accounts: str) -> None:
        self.accounts = accounts
        self.refused: list[str] = []

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        [arn] = parse_qs(body)["RoleArn"]
        if arn.split(":")[4] not in self.accounts:
            return None
        self.refused.append(arn)
        request.url = "https://refused.invalid/"  # moto serves no such host
        error = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>"
            f"User is not authorized to perform: sts:AssumeRole on resource: {arn}"
            "</Message></Error></ErrorResponse>"
        )
        return AWSResponse(request.url, 403, {}, MockRawResponse(error.encode()))

    def install(self) -> RefusedRoles:
        aws.client("sts").meta.events.register_first("before-send.sts.AssumeRole", self)
        return self


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Inbox:
    """A hub's sweep function in organization mode, its tables and its topic; versioning only
    (in remediate mode) keeps the sweeps short."""
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("ORGANIZATION_ID", ORGANIZATION)
    monkeypatch.setenv("MEMBER_ROLE_NAME", SWEEP_ROLE)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bucketwarden-sweep")
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(IDEMPOTENCY_TABLE, "id"))
    only_controls(monkeypatch, "versioning")
    return subscribe_inbox(monkeypatch)


def unversioned(account: str, *names: str) -> None:
    """Buckets of `account` without versioning, made by the account's own people."""
    maker = s3() if account == ACCOUNT else member_client("s3", account)
    for name in names:
        maker.create_bucket(Bucket=name)


def versioning(account: str, name: str) -> str | None:
    reader = s3() if account == ACCOUNT else member_client("s3", account)
    status: str | None = reader.get_bucket_versioning(Bucket=name).get("Status")
    return status


class Delivery:
    """Lambda's side of a sweep: each queued invocation delivered (`times` times each), with a
    request id of its own per delivery; what each returned, judged and asked of STS."""

    def __init__(self, times: int = 1) -> None:
        self.times = times
        self.invocations = SelfInvocations().install()
        self.results: list[dict[str, Any]] = []
        self.judged: list[Outcome] = []
        self.assumed: list[Counter[str]] = []
        self.sts = aws.client("sts")
        self.sts.meta.events.register("provide-client-params.sts.AssumeRole", self._assumed)
        self._current: Counter[str] = Counter()

    def _assumed(self, params: dict[str, Any], **_: Any) -> None:
        self._current[params["RoleArn"].split(":")[4]] += 1

    def run(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        queue = [event]
        delivered = 0
        while queue:
            payload = queue.pop(0)
            for _ in range(self.times):
                delivered += 1
                self._current = Counter()
                context = replace(FakeContext(), aws_request_id=f"request-{delivered}")
                sent_before = len(self.invocations.requests)
                self.results.append(sweep(payload, context, on_outcomes=self.judged.extend))
                self.assumed.append(self._current)
                queue += self.invocations.payloads()[sent_before:]
        return self.results

    def finished(self) -> list[dict[str, Any]]:
        return [result for result in self.results if result["status"] == "finished"]


def test_a_sweep_across_three_accounts_with_one_denied_names_it_and_sweeps_the_others(
    hub: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNT_IDS", f"{MEMBER}, {DENIED}")
    unversioned(ACCOUNT, "hub-logs")
    unversioned(MEMBER, "member-data", "member-web")
    unversioned(DENIED, "denied-archive")
    refused = RefusedRoles(DENIED).install()
    before = API_CALLS.snapshot()

    delivery = Delivery()
    results = delivery.run(scheduled_event("org-daily"))

    assert results[0] == {"status": "started", "sweep_id": "org-daily", "accounts": 3}
    # The member's buckets fixed there with its role, the hub's with its own; nothing else.
    assert versioning(MEMBER, "member-data") == versioning(MEMBER, "member-web") == "Enabled"
    assert versioning(ACCOUNT, "hub-logs") == "Enabled"
    assert versioning(DENIED, "denied-archive") is None
    assert {(o.account, o.bucket, o.status) for o in delivery.judged} == {
        (ACCOUNT, "hub-logs", Status.REMEDIATED),
        (MEMBER, "member-data", Status.REMEDIATED),
        (MEMBER, "member-web", Status.REMEDIATED),
    }
    assert refused.refused == [f"arn:aws:iam::{DENIED}:role/{SWEEP_ROLE}"]
    # STS: at most one call per account per invocation, none for the hub's own account.
    assert all(max(counts.values(), default=0) <= 1 for counts in delivery.assumed)
    assert ACCOUNT not in sum(delivery.assumed, Counter())
    assert calls_delta(before)["sts.AssumeRole"] == 2
    # Audited by the hub, naming each account.
    assert sorted((i["account"], i["bucket"]) for i in audit_items(AUDIT_TABLE)) == [
        (ACCOUNT, "hub-logs"),
        (MEMBER, "member-data"),
        (MEMBER, "member-web"),
    ]

    [final] = delivery.finished()
    [envelope] = hub.receive()  # one summary for the organization
    summary = json.loads(envelope["Message"])
    assert summary == {key: final[key] for key in summary}
    assert (summary["findings"], summary["buckets"]) == (3, 3)
    [denied, member, own] = summary["accounts"]  # worst first: the unreachable one
    assert (denied["account"], denied["status"]) == (DENIED, "unavailable")
    assert (
        f"cannot assume arn:aws:iam::{DENIED}:role/{SWEEP_ROLE} (AccessDenied" in denied["reason"]
    )
    assert member == {
        "account": MEMBER,
        "status": "swept",
        "findings": 2,
        "flagged": 2,
        "subjects": 2,
    }
    assert (own["account"], own["findings"]) == (ACCOUNT, 1)
    assert envelope["Subject"] == (
        "BucketWarden sweep: 3 findings on 3 buckets in 3 accounts (1 not reached)"
    )


def test_every_invocation_delivered_twice_sweeps_each_account_once_and_publishes_once(
    hub: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNT_IDS", MEMBER)
    unversioned(ACCOUNT, "hub-only")
    unversioned(MEMBER, "member-only")

    delivery = Delivery(times=2)
    results = delivery.run(scheduled_event("twice"))

    statuses = Counter(result["status"] for result in results)
    # The starter and each account's invocation: a duplicate of each answers as the first did.
    assert statuses["finished"] >= 1
    assert sorted(o.bucket for o in delivery.judged) == ["hub-only", "member-only"]
    assert len(hub.receive()) == 1
    # A duplicate delivered after the first finished gets the stored answer.
    assert results[1::2] == results[0::2]


def test_organization_accounts_come_from_organizations_active_ones_only(
    hub: Inbox,
) -> None:
    organizations = own_client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    made = [
        organizations.create_account(AccountName=name, Email=f"{name}@example.com")[
            "CreateAccountStatus"
        ]["AccountId"]
        for name in ("team-a", "team-b", "closed")
    ]
    organizations.close_account(AccountId=made[2])

    assert sorted(organization_accounts(aws.client("organizations"))) == sorted(
        [ACCOUNT, made[0], made[1]]
    )
    delivery = Delivery()
    started = delivery.run(scheduled_event("from-organizations"))[0]
    assert started["accounts"] == 3
    [final] = delivery.finished()
    assert sorted(line["account"] for line in final["accounts"]) == sorted(
        [ACCOUNT, made[0], made[1]]
    )


# -- who and what may be swept -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "wrong"),
    [
        ("12345678901", "'12345678901'"),
        ("222222222222,abc", "'abc'"),
        ("222222222222,,333333333333", "''"),
        ("arn:aws:iam::222222222222:root", "'arn:aws:iam::222222222222:root'"),
    ],
)
def test_account_ids_must_be_twelve_digit_ids(value: str, wrong: str) -> None:
    with pytest.raises(ConfigError, match=f"ACCOUNT_IDS: {wrong} is not a 12-digit"):
        configured_accounts({"ACCOUNT_IDS": value})


def test_account_ids_are_kept_in_order_without_repeats() -> None:
    listed = configured_accounts({"ACCOUNT_IDS": f" {DENIED}, {MEMBER},{DENIED} "})
    assert listed == (DENIED, MEMBER)
    assert configured_accounts({"ACCOUNT_IDS": " "}) is None


def test_a_sweep_refuses_bad_account_ids_before_anything_is_swept(
    hub: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNT_IDS", "2222")
    before = API_CALLS.snapshot()
    with pytest.raises(ConfigError, match="ACCOUNT_IDS: '2222' is not a 12-digit"):
        sweep(scheduled_event("bad-ids"), FakeContext())
    assert not calls_delta(before)


def test_account_ids_need_organization_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNT_IDS", MEMBER)
    with pytest.raises(ConfigError, match="ACCOUNT_IDS needs MEMBER_ROLE_NAME"):
        sweep(scheduled_event("single"), FakeContext())


def started(hub: Inbox) -> list[dict[str, Any]]:
    """Start an organization sweep of the hub and MEMBER; the accounts' start payloads."""
    invocations = SelfInvocations().install()
    assert sweep(scheduled_event("planned"), FakeContext())["status"] == "started"
    return invocations.payloads()


FOREIGN = "999999999999"


@pytest.mark.parametrize(
    "payload",
    [
        {"sweep_id": "planned", "started_at": "2024-05-02T03:00:00+00:00", "account": FOREIGN},
        {
            "sweep_id": "planned",
            "started_at": "2024-05-02T03:00:00+00:00",
            "invocation": 2,
            "resume_after": "a",
            "tally": {"by_control": {}, "findings_by_bucket": {}, "subjects": 0, "flagged": 0},
            "account": FOREIGN,
        },
        {"sweep_id": "never-planned", "started_at": "2024-05-02T03:00:00+00:00", "account": MEMBER},
    ],
    ids=["start", "continuation", "unknown-sweep"],
)
def test_a_payload_naming_an_account_the_plan_does_not_list_is_refused(
    hub: Inbox, monkeypatch: pytest.MonkeyPatch, payload: dict[str, Any]
) -> None:
    monkeypatch.setenv("ACCOUNT_IDS", MEMBER)
    planned = started(hub)
    assert {p["account"] for p in planned} == {ACCOUNT, MEMBER}
    unversioned(ACCOUNT, "hub-bucket")
    judged: list[Outcome] = []

    result = sweep(payload, FakeContext(), on_outcomes=judged.extend)

    assert result == {
        "status": "refused",
        "sweep_id": payload["sweep_id"],
        "reason": f"account {payload['account']} is not among the accounts of sweep "
        f"{payload['sweep_id']}",
    }
    assert not judged
    assert not audit_items(AUDIT_TABLE)


@pytest.mark.parametrize("account", ["22222222222", "22222222222a", 222222222222])
def test_an_account_payload_whose_account_is_not_an_id_is_refused(hub: Inbox, account: Any) -> None:
    payload = {"sweep_id": "s", "started_at": "2024-05-02T03:00:00+00:00", "account": account}
    result = sweep(payload, FakeContext())
    assert result["status"] == "refused"
    assert result["reason"].startswith("malformed sweep continuation (account: ")


def test_a_single_account_stack_refuses_a_payload_naming_an_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(IDEMPOTENCY_TABLE, "id"))
    payload = {"sweep_id": "s", "started_at": "2024-05-02T03:00:00+00:00", "account": ACCOUNT}
    result = sweep(payload, FakeContext())
    assert (result["status"], result["reason"]) == (
        "refused",
        f"account {ACCOUNT}: this stack sweeps only its own account",
    )


def test_a_single_account_summary_is_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table(IDEMPOTENCY_TABLE, "id"))
    only_controls(monkeypatch, "versioning")
    unversioned(ACCOUNT, "alone")
    invocations = SelfInvocations().install()
    result = sweep(scheduled_event("single"), FakeContext())
    assert (result["status"], result["buckets"]) == ("finished", 1)
    assert "accounts" not in result
    assert not invocations.requests


# -- the plan: lanes, results, the summary -----------------------------------------------------


def test_at_most_fan_out_accounts_are_started_at_once_and_each_lane_continues_in_turn(
    hub: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = [f"{number:012d}" for number in range(400000000001, 400000000001 + FAN_OUT + 4)]
    monkeypatch.setenv("ACCOUNT_IDS", ",".join(members))
    planned = started(hub)
    everyone = tuple(sorted([ACCOUNT, *members]))
    assert [p["account"] for p in planned] == list(everyone[:FAN_OUT])
    assert next_in_lane(everyone, everyone[0]) == everyone[FAN_OUT]
    assert next_in_lane(everyone, everyone[-1]) is None


def account_result(account: str, findings: int, unavailable: str | None = None) -> AccountResult:
    tally = Tally()
    tally.subjects = findings + 1
    tally.add(
        Outcome(
            bucket=f"{account}-b{n}", control="versioning", status=Status.NONCOMPLIANT, reason="r"
        )
        for n in range(findings)
    )
    return AccountResult(account, tally, 1, unavailable)


def test_the_organization_summary_puts_the_worst_accounts_first() -> None:
    tally, lines, invocations = combined(
        [
            account_result("111111111111", 1),
            account_result("222222222222", 3),
            account_result("333333333333", 0, unavailable="cannot assume ..."),
            account_result("444444444444", 0),
            account_result("555555555555", 3),
        ]
    )
    assert [(line.account, line.status, line.findings) for line in lines] == [
        ("333333333333", "unavailable", 0),
        ("222222222222", "swept", 3),
        ("555555555555", "swept", 3),
        ("111111111111", "swept", 1),
        ("444444444444", "swept", 0),
    ]
    assert (tally.findings, tally.flagged, tally.subjects, invocations) == (7, 7, 12, 5)
    assert tally.worst(1)[0][1] == 1


def test_without_an_idempotency_table_the_accounts_are_swept_in_turn_in_one_invocation(
    hub: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No table to plan in (a dry run, a stack without one): one invocation, one summary."""
    monkeypatch.delenv("IDEMPOTENCY_TABLE")
    monkeypatch.setenv("ACCOUNT_IDS", f"{MEMBER},{DENIED}")
    unversioned(MEMBER, "member-data")
    RefusedRoles(DENIED).install()
    invocations = SelfInvocations().install()
    judged: list[Outcome] = []

    result = sweep(scheduled_event("in-turn"), FakeContext(), on_outcomes=judged.extend)

    assert not invocations.requests
    assert result["status"] == "finished"
    assert [(line["account"], line["status"]) for line in result["accounts"]] == [
        (DENIED, "unavailable"),
        (MEMBER, "swept"),
        (ACCOUNT, "swept"),
    ]
    assert [(o.account, o.bucket) for o in judged] == [(MEMBER, "member-data")]
    assert len(hub.receive()) == 1


# -- exactly once: the plan's conditional writes -----------------------------------------------


def plan_of(owner: str) -> SweepPlan:
    return SweepPlan(IDEMPOTENCY_TABLE, owner)


def test_only_the_write_that_finishes_the_last_account_publishes_and_a_retry_of_it_may_again(
    hub: Inbox,
) -> None:
    accounts = (ACCOUNT, MEMBER, DENIED)
    assert plan_of("starter").create("s", "2024-05-02T03:00:00+00:00", accounts) == accounts
    # A second start of the same sweep keeps the plan it finds.
    assert plan_of("again").create("s", "2024-05-02T03:00:00+00:00", (MEMBER,)) == accounts

    assert plan_of("first").finish("s", account_result(ACCOUNT, 1), 10) is False
    # Another delivery finishing the same account is not its first writer: nothing to do.
    assert plan_of("duplicate").finish("s", account_result(ACCOUNT, 1), 10) is False
    assert plan_of("second").finish("s", account_result(MEMBER, 2), 10) is False
    assert plan_of("last").finish("s", account_result(DENIED, 0, "refused"), 10) is True
    # Lambda's retry of the last (its request id again, after a failed publish) publishes.
    assert plan_of("last").finish("s", account_result(DENIED, 0, "refused"), 10) is True
    # No other invocation does, even one finishing an account again.
    assert plan_of("late").finish("s", account_result(MEMBER, 2), 10) is False

    results = plan_of("last").results("s", accounts)
    assert [(r.account, r.tally.findings, r.unavailable) for r in results] == [
        (ACCOUNT, 1, None),
        (MEMBER, 2, None),
        (DENIED, 0, "refused"),
    ]


def test_the_organization_summary_reads_well_in_email_and_chat() -> None:
    tally, lines, invocations = combined(
        [
            account_result(MEMBER, 2),
            account_result(DENIED, 0, unavailable="cannot assume <role> (AccessDenied: no)"),
        ]
    )
    summary = SweepSummary(
        sweep_id="org",
        started_at="2024-05-02T03:00:00+00:00",
        finished_at="2024-05-02T03:09:00+00:00",
        invocations=invocations,
        controls=("versioning",),
        tally=tally,
        accounts=lines,
    )
    message = notify.summary_message(summary, Settings())

    email = message["email"]
    assert email.startswith(
        "BucketWarden sweep: 2 findings on 2 buckets in 2 accounts (1 not reached).\n"
    )
    assert (
        "Accounts, worst first:\n"
        f"{DENIED}  not reached: cannot assume <role> (AccessDenied: no)\n"
        f"{MEMBER}  2 findings on 2 of 3 buckets\n"
    ) in email
    chat = json.loads(message["https"])["content"]["description"]
    assert f"*Accounts, worst first:* `{DENIED}` (not reached), `{MEMBER}` (2)" in chat
    machine = json.loads(message["sqs"])
    assert [line["account"] for line in machine["accounts"]] == [DENIED, MEMBER]


# -- one AccountAccess per function instance ---------------------------------------------------


def test_a_warm_function_instance_assumes_a_members_role_once_across_invocations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each Lambda invocation builds its engine anew (handler.process): the member role's
    credentials are the instance's, so the second event of the member costs no STS call."""
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("ORGANIZATION_ID", ORGANIZATION)
    monkeypatch.setenv("MEMBER_ROLE_NAME", engine_tests.MEMBER_ROLE)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", engine_tests.FUNCTION)
    member_s3 = engine_tests.suspended_bucket()
    assumed = []
    for event_id in ("cold", "warm"):
        member_s3.put_bucket_versioning(
            Bucket=engine_tests.BUCKET, VersioningConfiguration={"Status": "Suspended"}
        )
        before = API_CALLS.snapshot()
        outcome = only(process(engine_tests.member_event(event_id=event_id), engine_tests.FAMILY))
        assert outcome["status"] == "remediated"
        assumed.append(calls_delta(before).get("sts.AssumeRole", 0))
    assert assumed == [1, 0]
    settings = Settings.from_env(())
    kept = account_access(settings)
    assert kept is account_access(settings)
    aws.reset_clients()  # another endpoint or credentials: another access, holding nothing
    assert account_access(settings) is not kept
