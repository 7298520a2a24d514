"""Findings in AWS Security Hub (issue 15, point 1).

A drift imports a FAILED finding with the control's FSBP id; its fix passes the same finding
(one finding, not two) and asks Security Hub to resolve it; an exemption suppresses it; a
deleted bucket archives it; the sweep imports in batches of 100 and passes the findings of
subjects found compliant again. Security Hub not enabled, or refusing, is a warning only.

moto has BatchImportFindings and GetFindings, and differs from AWS where the tests say so:
- its GetFindings ignores Filters (it answers every finding of the account and region), so
  the filters are asserted as requested, and our own filtering again is what the tests see;
- it has no BatchUpdateFindings (it answers 404): `SecurityHubAnswers` answers it as Security
  Hub does, below botocore, and records what was requested;
- its BatchImportFindings neither checks that Security Hub is enabled nor refuses a finding
  with a full resource list: `SecurityHubAnswers` answers those as Security Hub would.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from moto.core.botocore_stubber import MockRawResponse

from bucketwarden import aws, securityhub
from bucketwarden.catalogue import control
from bucketwarden.handler import process
from bucketwarden.metrics import Metrics
from bucketwarden.outcome import Outcome, Status
from bucketwarden.securityhub import FindingsExporter, Place, Planned, asff, plan
from bucketwarden.settings import ConfigError, Settings
from bucketwarden_tools.calls import API_CALLS
from bucketwarden_tools.clients import register_for_new_clients
from tests.helpers import (
    ACCOUNT,
    REGION,
    calls_delta,
    cloudtrail_record,
    create_table,
    delete_bucket,
    emitted_metrics,
    eventbridge_event,
    make_bucket,
    only,
    own_client,
    s3,
    sweeper,
    tag_bucket,
)
from tests.test_organization_engine import MEMBER, member_client
from tests.test_organization_sweep import Delivery, unversioned
from tests.test_sweep import only_controls, scheduled_event
from tests.test_template import (
    FUNCTION_IDS,
    as_list,
    of_type,
    properties,
    resources,
    role_id,
    role_statements,
    template,
)

pytestmark = pytest.mark.usefixtures("aws")

FAMILY = "versioning"
BUCKET = "drifting-bucket"
PRODUCT_ARN = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
FINDING_ID = f"bucketwarden/{ACCOUNT}/{REGION}/versioning/{BUCKET}"
AUDIT_TABLE = "bucketwarden-audit"


class SecurityHubAnswers:
    """A botocore `before-send` hook answering what moto lacks, as Security Hub does, and
    recording the requests; disarmed (None), every request goes to moto."""

    def __init__(self) -> None:
        self.armed = False
        self.updates: list[dict[str, Any]] = []
        # An error code BatchImportFindings answers (Security Hub not enabled, say).
        self.import_error: str | None = None
        # BatchImportFindings answers every finding as refused (FailedFindings).
        self.refuse_findings = False

    def reset(self, armed: bool) -> None:
        self.armed = armed
        self.updates.clear()
        self.import_error = None
        self.refuse_findings = False

    def update(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self.armed:
            return None
        body = json.loads(request.body)
        self.updates.append(body)
        processed = body["FindingIdentifiers"]
        return _answer(request, 200, {"ProcessedFindings": processed, "UnprocessedFindings": []})

    def import_(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self.armed:
            return None
        if self.import_error:
            error = {"__type": self.import_error, "Message": "Account is not subscribed"}
            return _answer(request, 401, error)
        if self.refuse_findings:
            ids = [finding["Id"] for finding in json.loads(request.body)["Findings"]]
            failed = [
                {"Id": i, "ErrorCode": "InvalidInput", "ErrorMessage": "Finding too large"}
                for i in ids
            ]
            answer = {"FailedCount": len(ids), "SuccessCount": 0, "FailedFindings": failed}
            return _answer(request, 200, answer)
        return None

    def workflows(self) -> list[tuple[str, str, list[str]]]:
        """(status, note, finding ids) of every BatchUpdateFindings requested."""
        return [
            (u["Workflow"]["Status"], u["Note"]["Text"], [f["Id"] for f in u["FindingIdentifiers"]])
            for u in self.updates
        ]


def _answer(request: Any, status: int, body: dict[str, Any]) -> AWSResponse:
    # botocore still offers the request to moto's own `before-send` hook: pointed at a host moto
    # does not serve, it changes nothing there (as helpers.ErrorResponses does).
    request.url = "https://refused.invalid/"
    raw = MockRawResponse(json.dumps(body).encode())
    return AWSResponse(request.url, status, {"Content-Type": "application/json"}, raw)


ANSWERS = SecurityHubAnswers()
register_for_new_clients("before-send.securityhub.BatchUpdateFindings", ANSWERS.update)
register_for_new_clients("before-send.securityhub.BatchImportFindings", ANSWERS.import_)


@pytest.fixture(autouse=True)
def answers() -> Iterator[SecurityHubAnswers]:
    # The accounts kept quiet are forgotten for every test (conftest.aws_environment).
    ANSWERS.reset(armed=True)
    yield ANSWERS
    ANSWERS.reset(armed=False)


@pytest.fixture
def export(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stack exporting findings, with its audit table; Security Hub enabled in its account."""
    monkeypatch.setenv("SECURITY_HUB_EXPORT", "true")
    monkeypatch.setenv("ACCOUNT_ID", ACCOUNT)
    monkeypatch.setenv("AUDIT_TABLE", create_table(AUDIT_TABLE, "audit_id"))
    hub().enable_security_hub()


def hub() -> Any:
    return own_client("securityhub")


def findings(client: Any = None) -> list[dict[str, Any]]:
    """Every finding of the account (moto ignores filters)."""
    pages = (client or hub()).get_paginator("get_findings").paginate()
    return [finding for page in pages for finding in page["Findings"]]


def suspended(bucket: str = BUCKET) -> str:
    make_bucket(bucket)
    s3().put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    return bucket


def versioning_event(bucket: str = BUCKET, event_id: str = "evt-1") -> dict[str, Any]:
    return eventbridge_event(cloudtrail_record("PutBucketVersioning", bucket, event_id=event_id))


def drift_noticed(monkeypatch: pytest.MonkeyPatch, event_id: str = "evt-1") -> dict[str, Any]:
    """A suspended bucket, judged in notify mode: its FAILED finding."""
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    suspended()
    outcome = only(process(versioning_event(event_id=event_id), FAMILY))
    assert outcome["status"] == "noncompliant", outcome
    monkeypatch.delenv("MODE_VERSIONING")
    [finding] = findings()
    return finding


# -- the lifecycle of a finding ----------------------------------------------------------------


@pytest.mark.usefixtures("export")
def test_a_drift_imports_a_failed_finding_with_its_fsbp_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finding = drift_noticed(monkeypatch)

    assert finding["Id"] == FINDING_ID
    assert finding["ProductArn"] == PRODUCT_ARN
    assert finding["GeneratorId"] == "bucketwarden/versioning"
    assert finding["AwsAccountId"] == ACCOUNT
    assert finding["SchemaVersion"] == "2018-10-08"
    assert finding["Compliance"]["Status"] == "FAILED"
    assert finding["Compliance"]["SecurityControlId"] == "S3.14"
    assert finding["Compliance"]["AssociatedStandards"] == [
        {"StandardsId": "standards/aws-foundational-security-best-practices/v/1.0.0"}
    ]
    assert finding["RecordState"] == "ACTIVE"
    assert finding["FindingProviderFields"]["Severity"] == {"Label": "LOW"}
    assert finding["Severity"] == {"Label": "LOW"}
    assert finding["Resources"] == [
        {
            "Type": "AwsS3Bucket",
            "Id": f"arn:aws:s3:::{BUCKET}",
            "Partition": "aws",
            "Region": REGION,
        }
    ]
    text = finding["Remediation"]["Recommendation"]["Text"]
    assert "notify mode" in text
    assert "bucketwarden:exempt=versioning" in text
    assert finding["ProductFields"]["bucketwarden/event_id"] == "evt-1"
    # A drift opens nothing BucketWarden had not suppressed: no workflow is set.
    assert ANSWERS.workflows() == []


@pytest.mark.usefixtures("export")
def test_its_fix_passes_the_same_finding_and_resolves_it(monkeypatch: pytest.MonkeyPatch) -> None:
    first = drift_noticed(monkeypatch)
    before = API_CALLS.snapshot()

    outcome = only(process(versioning_event(event_id="evt-2"), FAMILY))

    assert outcome["status"] == "remediated"
    [finding] = findings()  # one finding, not two
    assert finding["Id"] == first["Id"]
    assert finding["Compliance"]["Status"] == "PASSED"
    assert finding["RecordState"] == "ACTIVE"
    text = finding["Remediation"]["Recommendation"]["Text"]
    assert f"Undo: bucketwarden rollback {outcome['audit_id']}" in text
    # A provider cannot set Workflow with BatchImportFindings once the finding exists.
    assert ANSWERS.workflows() == [("RESOLVED", "fixed by BucketWarden", [FINDING_ID])]
    assert ANSWERS.updates[0]["FindingIdentifiers"] == [
        {"Id": FINDING_ID, "ProductArn": PRODUCT_ARN}
    ]
    made = calls_delta(before)
    assert made["securityhub.BatchImportFindings"] == 1
    assert made["securityhub.BatchUpdateFindings"] == 1


@pytest.mark.usefixtures("export")
def test_an_exemption_suppresses_the_finding_with_its_reason_and_end_date() -> None:
    until = (date.today() + timedelta(days=30)).isoformat()
    suspended()
    tag_bucket(
        BUCKET,
        {
            "bucketwarden:exempt": "versioning",
            "bucketwarden:exempt-reason": "legacy archive",
            "bucketwarden:exempt-until": until,
        },
    )

    outcome = only(process(versioning_event(), FAMILY))

    assert outcome["status"] == "exempted"
    [finding] = findings()
    assert finding["Compliance"]["Status"] == "FAILED"
    [(status, note, ids)] = ANSWERS.workflows()
    assert (status, ids) == ("SUPPRESSED", [FINDING_ID])
    assert "legacy archive" in note
    assert until in note
    assert ANSWERS.updates[0]["Note"]["UpdatedBy"] == "BucketWarden"


@pytest.mark.usefixtures("export")
def test_a_drift_no_longer_exempted_is_opened_again_but_not_a_persons_suppression(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    finding = drift_noticed(monkeypatch)
    # As Security Hub holds it after BucketWarden's BatchUpdateFindings (moto has none).
    suppressed = {"Workflow": {"Status": "SUPPRESSED"}}
    note = {"Text": "exempted", "UpdatedBy": "BucketWarden", "UpdatedAt": finding["UpdatedAt"]}
    hub().batch_import_findings(Findings=[{**finding, **suppressed, "Note": note}])
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    ANSWERS.updates.clear()

    assert only(process(versioning_event(event_id="evt-2"), FAMILY))["status"] == "noncompliant"
    [(status, _note, ids)] = ANSWERS.workflows()
    assert (status, ids) == ("NEW", [FINDING_ID])

    # A person suppressed it: BucketWarden leaves their decision alone.
    person = {
        "Text": "accepted risk",
        "UpdatedBy": "arn:aws:iam::123456789012:user/alice",
        "UpdatedAt": finding["UpdatedAt"],
    }
    hub().batch_import_findings(Findings=[{**findings()[0], **suppressed, "Note": person}])
    ANSWERS.updates.clear()
    assert only(process(versioning_event(event_id="evt-3"), FAMILY))["status"] == "noncompliant"
    assert ANSWERS.workflows() == []


@pytest.mark.usefixtures("export")
def test_a_deleted_bucket_archives_its_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    drift_noticed(monkeypatch)
    delete_bucket(BUCKET)

    outcome = only(process(versioning_event(event_id="evt-2"), FAMILY))

    assert outcome["status"] == "skipped"
    [finding] = findings()
    assert finding["Id"] == FINDING_ID
    assert finding["RecordState"] == "ARCHIVED"


@pytest.mark.usefixtures("export")
def test_a_deleted_bucket_without_a_finding_imports_nothing() -> None:
    before = API_CALLS.snapshot()
    outcome = only(process(versioning_event("never-seen"), FAMILY))
    assert outcome["status"] == "skipped"
    assert findings() == []
    made = calls_delta(before)
    # It looked (one GetFindings, filtered on the Id and our product) and imported nothing.
    assert made["securityhub.GetFindings"] == 1
    assert "securityhub.BatchImportFindings" not in made


# -- batches, refusals, Security Hub unavailable -----------------------------------------------


def noncompliant(bucket: str) -> Outcome:
    return Outcome(
        bucket=bucket,
        control="versioning",
        status=Status.NONCOMPLIANT,
        reason="versioning is Suspended",
        account=ACCOUNT,
        region=REGION,
        mode="notify",
    )


def exporter(settings: Settings, metrics: Metrics | None = None) -> FindingsExporter:
    return FindingsExporter(
        settings, lambda account, region: aws.client("securityhub", region), metrics
    )


def test_more_than_100_findings_go_in_batches_of_100() -> None:
    hub().enable_security_hub()
    sent = exporter(Settings(account_id=ACCOUNT, security_hub_export=True))
    before = API_CALLS.snapshot()
    for number in range(250):
        sent.add(noncompliant(f"bucket-{number:03}"))

    sent.flush()

    assert len(findings()) == 250
    made = calls_delta(before)
    assert made["securityhub.BatchImportFindings"] == 3
    assert sent.calls["BatchImportFindings"] == 3


def test_findings_security_hub_refuses_are_logged_counted_and_said(
    answers: SecurityHubAnswers,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=securityhub.logger.name)
    hub().enable_security_hub()
    answers.refuse_findings = True
    sent = exporter(Settings(account_id=ACCOUNT, security_hub_export=True), Metrics())
    outcome = noncompliant(BUCKET)

    sent.export(outcome)

    assert findings() == []
    assert sent.failed == 1
    assert outcome.warnings == [
        "Security Hub refused its finding (InvalidInput: Finding too large)"
    ]
    out = capsys.readouterr().out
    assert ("SecurityHubFailedFindings", "versioning", 1.0) in emitted_metrics(out)
    assert "Security Hub refused a finding" in caplog.text


@pytest.mark.usefixtures("export")
@pytest.mark.parametrize("code", ["InvalidAccessException", "AccessDeniedException"])
def test_security_hub_not_enabled_or_refusing_is_one_warning_and_no_retry_storm(
    code: str, answers: SecurityHubAnswers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not enabled ("not subscribed"), or the role refused: the same for BucketWarden.
    answers.import_error = code
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    suspended()
    before = API_CALLS.snapshot()

    first = only(process(versioning_event(event_id="evt-1"), FAMILY))
    second = only(process(versioning_event(event_id="evt-2"), FAMILY))

    assert (first["status"], second["status"]) == ("noncompliant", "noncompliant")
    [warning] = first["warnings"]
    assert f"account {ACCOUNT}, region {REGION}" in warning
    assert code in warning
    assert second["warnings"] == []
    # One import tried (no retry: it is not a throttle); the second event calls nothing.
    made = calls_delta(before)
    assert made["securityhub.BatchImportFindings"] == 1
    assert made.get("securityhub.GetFindings", 0) == 0


@pytest.mark.usefixtures("export")
def test_without_moto_s_workflow_call_the_finding_is_still_imported(
    answers: SecurityHubAnswers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As against the local emulator: BatchUpdateFindings answers 404. The import stands.
    drift_noticed(monkeypatch)
    answers.reset(armed=False)
    outcome = only(process(versioning_event(event_id="evt-2"), FAMILY))
    assert outcome["status"] == "remediated"
    assert findings()[0]["Compliance"]["Status"] == "PASSED"


# -- switched off, dry runs --------------------------------------------------------------------


def test_with_the_export_off_no_security_hub_call_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    suspended()
    before = API_CALLS.snapshot()
    assert only(process(versioning_event(), FAMILY))["status"] == "noncompliant"
    assert not [name for name in calls_delta(before) if name.startswith("securityhub.")]


@pytest.mark.usefixtures("export")
def test_a_dry_run_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKETWARDEN_DRY_RUN", "true")
    suspended()
    before = API_CALLS.snapshot()
    assert only(process(versioning_event(), FAMILY))["status"] == "noncompliant"
    assert not [name for name in calls_delta(before) if name.startswith("securityhub.")]
    assert findings() == []


def test_the_switch_is_strict() -> None:
    assert Settings.from_env((), {"SECURITY_HUB_EXPORT": "true"}).security_hub_export
    assert not Settings.from_env((), {}).security_hub_export
    with pytest.raises(ConfigError, match="SECURITY_HUB_EXPORT='yes': expected true or false"):
        Settings.from_env((), {"SECURITY_HUB_EXPORT": "yes"})


# -- the sweep reconciles ----------------------------------------------------------------------


@pytest.mark.usefixtures("export")
def test_the_sweep_passes_findings_whose_subject_is_compliant_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    drift_noticed(monkeypatch)
    # Someone else's FAILED finding (another product): the sweep must not touch it.
    foreign = {
        **findings()[0],
        "Id": "someone-else/1",
        "ProductArn": f"arn:aws:securityhub:{REGION}::product/other/scanner",
        "GeneratorId": "scanner/s3",
    }
    hub().batch_import_findings(Findings=[foreign])
    # Fixed by hand: no event reached BucketWarden.
    s3().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    ANSWERS.updates.clear()
    settings = Settings.from_env(("versioning",))
    before = API_CALLS.snapshot()

    sweeper(settings, (control("versioning"),)).run([BUCKET])

    by_id = {f["Id"]: f for f in findings()}
    assert by_id[FINDING_ID]["Compliance"]["Status"] == "PASSED"
    assert by_id["someone-else/1"]["Compliance"]["Status"] == "FAILED"
    assert ANSWERS.workflows() == [
        ("RESOLVED", "compliant again (BucketWarden sweep)", [FINDING_ID])
    ]
    made = calls_delta(before)
    assert made["securityhub.GetFindings"] == 1
    assert made["securityhub.BatchImportFindings"] == 1


@pytest.mark.usefixtures("export")
def test_the_sweep_imports_its_findings_in_batches_of_100(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    buckets = [suspended(f"drifting-{number:03}") for number in range(120)]
    settings = Settings.from_env(("versioning",))
    before = API_CALLS.snapshot()

    sweeper(settings, (control("versioning"),)).run(buckets)

    assert len(findings()) == 120
    made = calls_delta(before)
    assert made["securityhub.BatchImportFindings"] == 2
    # Drifts may reopen what an exemption suppressed: one read of our FAILED findings.
    assert made["securityhub.GetFindings"] == 1


@pytest.mark.usefixtures("export")
def test_the_sweep_reopens_a_drift_whose_exemption_ended(monkeypatch: pytest.MonkeyPatch) -> None:
    finding = drift_noticed(monkeypatch)
    note = {"Text": "exempted", "UpdatedBy": "BucketWarden", "UpdatedAt": finding["UpdatedAt"]}
    hub().batch_import_findings(
        Findings=[{**finding, "Workflow": {"Status": "SUPPRESSED"}, "Note": note}]
    )
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    ANSWERS.updates.clear()
    before = API_CALLS.snapshot()

    sweeper(Settings.from_env(("versioning",)), (control("versioning"),)).run([BUCKET])

    [(status, _note, ids)] = ANSWERS.workflows()
    assert (status, ids) == ("NEW", [FINDING_ID])
    assert calls_delta(before)["securityhub.GetFindings"] == 1


@pytest.mark.usefixtures("export")
def test_the_sweep_reads_the_failed_findings_with_our_filters_page_by_page() -> None:
    hub().enable_security_hub()
    sent = exporter(Settings(account_id=ACCOUNT, security_hub_export=True))
    for number in range(150):
        sent.add(noncompliant(f"bucket-{number:03}"))
    sent.flush()
    requested: list[dict[str, Any]] = []
    engine_hub = aws.client("securityhub", REGION)
    engine_hub.meta.events.register(
        "provide-client-params.securityhub.GetFindings",
        lambda params, **_: requested.append(dict(params)),
    )
    reconciling = FindingsExporter(
        Settings(account_id=ACCOUNT, security_hub_export=True),
        lambda account, region: engine_hub,
        reconcile=True,
    )
    compliant = noncompliant("bucket-007")
    compliant.status = Status.COMPLIANT
    reconciling.add(compliant)

    reconciling.flush()

    # 150 findings: two pages of 100.
    assert reconciling.calls["GetFindings"] == 2
    assert requested[0]["Filters"] == {
        "ProductArn": [{"Value": PRODUCT_ARN, "Comparison": "EQUALS"}],
        "GeneratorId": [{"Value": "bucketwarden/", "Comparison": "PREFIX"}],
        "ComplianceStatus": [{"Value": "FAILED", "Comparison": "EQUALS"}],
        "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
    }
    assert requested[1]["NextToken"]
    passed = [f["Id"] for f in findings() if f["Compliance"]["Status"] == "PASSED"]
    assert passed == [f"bucketwarden/{ACCOUNT}/{REGION}/versioning/bucket-007"]


# -- organization scale ------------------------------------------------------------------------

MEMBER_ROLE = "bucketwarden-member-versioning"
FUNCTION = "bucketwarden-versioning"


@pytest.mark.usefixtures("export")
def test_a_members_finding_is_imported_in_the_member_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")
    monkeypatch.setenv("MEMBER_ROLE_NAME", MEMBER_ROLE)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("MODE_VERSIONING", "notify")
    member_hub = member_client("securityhub")
    member_hub.enable_security_hub()
    member_s3 = member_client("s3")
    member_s3.create_bucket(Bucket=BUCKET)
    member_s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    detail = cloudtrail_record("PutBucketVersioning", BUCKET)
    detail["recipientAccountId"] = MEMBER
    detail["userIdentity"]["accountId"] = MEMBER
    event = eventbridge_event(detail)
    event["account"] = MEMBER

    outcome = only(process(event, FAMILY))

    assert (outcome["status"], outcome["account"]) == ("noncompliant", MEMBER)
    [finding] = findings(member_hub)
    assert finding["AwsAccountId"] == MEMBER
    assert (
        finding["ProductArn"] == f"arn:aws:securityhub:{REGION}:{MEMBER}:product/{MEMBER}/default"
    )
    assert finding["Id"] == f"bucketwarden/{MEMBER}/{REGION}/versioning/{BUCKET}"
    assert findings() == []  # nothing in the hub's account


# -- the finding's shape for other scopes ------------------------------------------------------


def test_an_account_and_an_access_point_are_their_asff_resources() -> None:
    place = Place(ACCOUNT, REGION, "aws")
    settings = Settings()
    account_control = control("account-public-access-block")
    outcome = Outcome(ACCOUNT, account_control.id, Status.NONCOMPLIANT, "off", mode="notify")
    planned = plan(outcome, account_control, compliant_passes=False)
    assert isinstance(planned, Planned)
    [resource] = asff(planned, place, settings, "2024-05-01T12:00:00Z")["Resources"]
    assert (resource["Type"], resource["Id"]) == ("AwsAccount", f"AWS::::Account:{ACCOUNT}")

    point = f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/reports"
    point_control = control("access-point")
    outcome = Outcome(point, point_control.id, Status.NONCOMPLIANT, "public", mode="notify")
    planned = plan(outcome, point_control, compliant_passes=False)
    assert isinstance(planned, Planned)
    finding = asff(planned, place, settings, "2024-05-01T12:00:00Z")
    assert finding["Resources"][0]["Type"] == "AwsS3AccessPoint"
    assert finding["Resources"][0]["Id"] == point
    # No exemption command for what no bucket tag can exempt.
    assert "bucketwarden:exempt" not in finding["Remediation"]["Recommendation"]["Text"]


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (Status.NONCOMPLIANT, "versioning is Suspended", ("FAILED", "ACTIVE", None)),
        (Status.FAILED, "AccessDenied on PutBucketVersioning", ("FAILED", "ACTIVE", None)),
        (Status.REMEDIATED, "versioning was Suspended", ("PASSED", "ACTIVE", "RESOLVED")),
        (Status.EXEMPTED, "exempt until 2030-01-01", ("FAILED", "ACTIVE", "SUPPRESSED")),
        (Status.SKIPPED, "bucket no longer exists", ("NOT_AVAILABLE", "ARCHIVED", None)),
    ],
)
def test_each_outcome_has_its_place_in_the_findings_lifecycle(
    status: Status, reason: str, expected: tuple[str, str, str | None]
) -> None:
    outcome = Outcome(BUCKET, "versioning", status, reason, mode="notify")
    planned = plan(outcome, control("versioning"), compliant_passes=False)
    assert isinstance(planned, Planned)
    assert (planned.compliance, planned.record_state, planned.workflow) == expected
    # Only a drift may reopen what BucketWarden suppressed; only a deletion needs a finding.
    assert planned.reopen == (status in {Status.NONCOMPLIANT, Status.FAILED})
    assert planned.only_if_found == (status is Status.SKIPPED)


def test_outcomes_that_say_nothing_make_no_finding() -> None:
    versioning = control("versioning")
    for status in (Status.COMPLIANT, Status.IGNORED):
        outcome = Outcome(BUCKET, "versioning", status, "", mode="notify")
        assert plan(outcome, versioning, compliant_passes=False) is None
    throttled = Outcome(BUCKET, "versioning", Status.SKIPPED, "held", mode="notify")
    assert plan(throttled, versioning, compliant_passes=False) is None


# -- the template --------------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTION_IDS)
def test_each_role_may_export_findings_only_with_the_parameter(function: str) -> None:
    role = role_id(function)
    policies = [
        logical_id
        for logical_id in of_type("AWS::IAM::Policy")
        if {"!Ref": role} in properties(logical_id)["Roles"]
        and resources()[logical_id].get("Condition") == "ExportsToSecurityHub"
    ]
    [policy] = policies
    statements = properties(policy)["PolicyDocument"]["Statement"]
    grants = {
        action: statement["Resource"]["!Sub"]
        for statement in statements
        for action in as_list(statement["Action"])
    }
    account = "arn:${AWS::Partition}:securityhub:*:${AWS::AccountId}"
    assert grants == {
        "securityhub:BatchImportFindings": f"{account}:product/${{AWS::AccountId}}/default",
        "securityhub:GetFindings": f"{account}:hub/default",
        "securityhub:BatchUpdateFindings": f"{account}:hub/default",
    }
    # Only from the function itself, as every write of its role.
    for statement in statements:
        assert "lambda:SourceFunctionArn" in statement["Condition"]["ArnEquals"]
    # No other policy of the role names Security Hub.
    others = [s for s in role_statements(role) if s not in statements]
    assert not [s for s in others if "securityhub" in json.dumps(s)]


def test_the_parameter_reaches_every_function_and_is_off_by_default() -> None:
    parameter = template()["Parameters"]["SecurityHubExport"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("false", ["true", "false"])
    variables = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["SECURITY_HUB_EXPORT"] == {"!Ref": "SecurityHubExport"}
    assert template()["Conditions"]["ExportsToSecurityHub"] == {
        "!Equals": [{"!Ref": "SecurityHubExport"}, "true"]
    }


def test_an_account_kept_quiet_is_tried_again_after_the_quiet_period(
    answers: SecurityHubAnswers, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub().enable_security_hub()
    answers.import_error = "InvalidAccessException"
    sent = exporter(Settings(account_id=ACCOUNT, security_hub_export=True))
    first, second, third = (noncompliant(f"bucket-{n}") for n in range(3))
    sent.export(first)
    sent.export(second)
    assert sent.calls["BatchImportFindings"] == 1
    assert (len(first.warnings), second.warnings) == (1, [])

    # An hour later (Security Hub enabled meanwhile) the account is tried again.
    answers.import_error = None
    later = securityhub.utc_now() + securityhub.QUIET_PERIOD + timedelta(seconds=1)
    monkeypatch.setattr(securityhub, "utc_now", lambda: later)
    sent.export(third)
    assert sent.calls["BatchImportFindings"] == 2
    assert [f["Id"] for f in findings()] == [f"bucketwarden/{ACCOUNT}/{REGION}/versioning/bucket-2"]


@pytest.mark.usefixtures("export")
@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left:UserWarning")
def test_an_organization_sweep_imports_each_finding_in_the_account_of_its_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORGANIZATION_ID", "o-abcdefghij")
    monkeypatch.setenv("MEMBER_ROLE_NAME", "bucketwarden-member-sweep")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "bucketwarden-sweep")
    monkeypatch.setenv("ACCOUNT_IDS", MEMBER)
    monkeypatch.setenv("IDEMPOTENCY_TABLE", create_table("bucketwarden-idempotency", "id"))
    only_controls(monkeypatch, "versioning", mode="notify")
    member_hub = member_client("securityhub")
    member_hub.enable_security_hub()
    unversioned(ACCOUNT, "hub-logs")
    unversioned(MEMBER, "member-data")

    Delivery().run(scheduled_event("org-daily"))

    [own] = findings()
    [members] = findings(member_hub)
    assert (own["AwsAccountId"], own["Resources"][0]["Id"]) == (ACCOUNT, "arn:aws:s3:::hub-logs")
    assert (members["AwsAccountId"], members["Resources"][0]["Id"]) == (
        MEMBER,
        "arn:aws:s3:::member-data",
    )
    assert (
        members["ProductArn"] == f"arn:aws:securityhub:{REGION}:{MEMBER}:product/{MEMBER}/default"
    )
    assert own["Compliance"]["Status"] == members["Compliance"]["Status"] == "FAILED"


def test_outside_a_stack_the_callers_account_is_asked_once() -> None:
    hub().enable_security_hub()
    asked: list[str] = []

    def own_account() -> str:
        asked.append(ACCOUNT)
        return ACCOUNT

    sent = FindingsExporter(
        Settings(security_hub_export=True),
        lambda account, region: aws.client("securityhub", region),
        account_of=own_account,
    )
    for number in range(3):
        outcome = noncompliant(f"bucket-{number}")
        outcome.account = None
        sent.add(outcome)
    sent.flush()
    assert asked == [ACCOUNT]
    assert {f["AwsAccountId"] for f in findings()} == {ACCOUNT}
