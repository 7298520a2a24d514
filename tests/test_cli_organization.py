"""`scan`, `remediate` and `history` across accounts: --accounts, --organization, --role-name.

The CLI runs in this process, inside moto, with IAM enforced where a role must be refused: the
caller may assume every member role but DENIED's (an IAM policy on the caller, as a role that
does not exist or does not trust the caller answers). Each member's sweep role is the member
roles template's, here with an inline policy that allows what the sweep does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest

from tests import test_rollback
from tests.helpers import ACCOUNT, denied, make_bucket
from tests.test_cli_scan import SARIF_SCHEMA
from tests.test_organization_engine import member_client
from tests.test_rollback import Ran

pytestmark = pytest.mark.usefixtures("aws")

# The audit table and the in-process CLI runner are the rollback tests' fixtures.
table = test_rollback.table
bucketwarden = test_rollback.bucketwarden

MEMBER = "222222222222"
DENIED = "333333333333"
SWEEP_ROLE = "bucketwarden-member-sweep"
DENIED_ROLE = f"arn:aws:iam::{DENIED}:role/{SWEEP_ROLE}"
VERSIONING = ("--controls", "versioning")
OTHER_ROLE = "security-audit"


def member_role(account: str, name: str = SWEEP_ROLE) -> None:
    """The member roles template's sweep role in `account`, trusting the caller's account."""
    iam = member_client("iam", account)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="sweep", PolicyDocument=json.dumps(everything))


@pytest.fixture
def organization(table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The caller's account and MEMBER with an unversioned bucket each; DENIED refuses the
    caller."""
    make_bucket("hub-bucket")
    member_client("s3", MEMBER).create_bucket(Bucket="member-bucket")
    member_client("s3", DENIED).create_bucket(Bucket="denied-bucket")
    member_role(MEMBER)
    # Another role name, which DENIED's policy on the caller does not refuse (--role-name).
    member_role(MEMBER, OTHER_ROLE)
    member_role(DENIED, OTHER_ROLE)
    # moto enforces IAM from here on: the tests' own clients have no valid credentials, so
    # what the CLI did is read back through the CLI.
    with denied(monkeypatch, "sts:AssumeRole", resource=DENIED_ROLE):
        yield


Runner = Callable[..., Ran]


@pytest.mark.usefixtures("organization")
def test_scan_sweeps_each_account_named_and_reports_the_one_it_cannot_reach(
    bucketwarden: Runner,
) -> None:
    ran = bucketwarden("scan", "--accounts", f"{ACCOUNT},{MEMBER},{DENIED}", *VERSIONING, "--json")

    assert ran.code == 0, ran.err
    assert [(line["account"], line["bucket"], line["status"]) for line in ran.lines] == [
        (ACCOUNT, "hub-bucket", "noncompliant"),
        (MEMBER, "member-bucket", "noncompliant"),
        (DENIED, DENIED, "failed"),
    ]
    reason = ran.lines[-1]["reason"]
    assert reason.startswith(f"not swept: cannot assume {DENIED_ROLE} (AccessDenied")
    assert f"warning: account {DENIED} not swept: cannot assume {DENIED_ROLE}" in ran.said
    assert "2 checks on 2 buckets: 2 noncompliant" in ran.said

    failing = bucketwarden(
        "scan", "--accounts", f"{MEMBER},{DENIED}", *VERSIONING, "--json", "--fail-on-findings"
    )
    assert failing.code == 1


@pytest.mark.usefixtures("organization")
def test_remediate_fixes_a_member_with_its_role_and_history_keeps_an_accounts_records(
    bucketwarden: Runner,
) -> None:
    ran = bucketwarden("remediate", "--accounts", f"{MEMBER},{ACCOUNT}", *VERSIONING, "--json")

    assert ran.code == 0, ran.err
    assert [(line["account"], line["status"]) for line in ran.lines] == [
        (MEMBER, "remediated"),
        (ACCOUNT, "remediated"),
    ]
    again = bucketwarden("scan", "--accounts", f"{MEMBER},{ACCOUNT}", *VERSIONING, "--json")
    assert [line["status"] for line in again.lines] == ["compliant", "compliant"]
    every = bucketwarden("history", "--json").lines  # the hub's table, both accounts
    assert sorted((r["account"], r["bucket"], r["status"]) for r in every) == [
        (ACCOUNT, "hub-bucket", "remediated"),
        (MEMBER, "member-bucket", "remediated"),
    ]

    history = bucketwarden("history", "--accounts", MEMBER, "--json")
    assert history.code == 0, history.err
    assert [(r["account"], r["bucket"]) for r in history.lines] == [(MEMBER, "member-bucket")]
    assert bucketwarden("history", "--accounts", DENIED, "--json").lines == []


@pytest.mark.usefixtures("organization")
def test_role_name_names_the_role_assumed_in_each_member(bucketwarden: Runner) -> None:
    ran = bucketwarden(
        "scan", "--accounts", MEMBER, "--role-name", OTHER_ROLE, *VERSIONING, "--json"
    )
    assert ran.code == 0, ran.err
    assert [line["status"] for line in ran.lines] == ["noncompliant"]
    refused = bucketwarden(
        "scan", "--accounts", DENIED, "--role-name", OTHER_ROLE, *VERSIONING, "--json"
    )
    # Only the default role of DENIED is refused: another name is asked for, and granted.
    assert [line["status"] for line in refused.lines] == ["noncompliant"]


def test_organization_sweeps_the_organizations_active_accounts(bucketwarden: Runner) -> None:
    from tests.helpers import own_client

    organizations = own_client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    member = organizations.create_account(AccountName="team", Email="team@example.com")[
        "CreateAccountStatus"
    ]["AccountId"]
    make_bucket("management-bucket")
    member_client("s3", member).create_bucket(Bucket="team-bucket")

    ran = bucketwarden("scan", "--organization", *VERSIONING, "--json")

    assert ran.code == 0, ran.err
    assert sorted((line["account"], line["bucket"]) for line in ran.lines) == sorted(
        [(ACCOUNT, "management-bucket"), (member, "team-bucket")]
    )


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (("--accounts", "12345"), "'12345': not a 12-digit AWS account id"),
        (("--accounts", f"{MEMBER},x"), "'x': not a 12-digit AWS account id"),
        (("--accounts", " , "), "name at least one account id"),
        (("--accounts", MEMBER, "--organization"), "not allowed with argument"),
        (("--role-name", "no spaces please"), "'no spaces please' is not an IAM role name"),
    ],
)
def test_bad_accounts_and_role_names_are_refused_with_exit_code_2(
    bucketwarden: Runner,
    capsys: pytest.CaptureFixture[str],
    arguments: tuple[str, ...],
    said: str,
) -> None:
    with pytest.raises(SystemExit) as exited:
        bucketwarden("scan", *arguments)
    assert exited.value.code == 2
    assert said in capsys.readouterr().err


def test_history_takes_no_role_name(
    bucketwarden: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bucketwarden("history", "--role-name", SWEEP_ROLE)
    assert "unrecognized arguments: --role-name" in capsys.readouterr().err


# -- the reports group by account --------------------------------------------------------------


@pytest.mark.usefixtures("organization")
def test_the_table_shows_each_account_in_turn_with_a_line_each(bucketwarden: Runner) -> None:
    ran = bucketwarden("scan", "--accounts", f"{ACCOUNT},{MEMBER},{DENIED}", *VERSIONING)

    assert ran.code == 0, ran.err
    printed = ran.printed
    first, second, third = (
        printed.index(f"account {ACCOUNT}: scan"),
        printed.index(f"account {MEMBER}: scan"),
        printed.index(f"account {DENIED}: scan"),
    )
    assert first < printed.index("hub-bucket") < second < printed.index("member-bucket") < third
    assert f"account {ACCOUNT}: 1 check on 1 bucket: 1 noncompliant" in printed
    assert f"account {DENIED}: not swept: cannot assume {DENIED_ROLE}" in printed


@pytest.mark.usefixtures("organization")
def test_sarif_names_each_results_account_and_the_account_not_reached(
    bucketwarden: Runner,
) -> None:
    ran = bucketwarden("scan", "--accounts", f"{MEMBER},{DENIED}", *VERSIONING, "--format", "sarif")

    assert ran.code == 0, ran.err
    log = json.loads(ran.out)
    jsonschema.validate(log, SARIF_SCHEMA)
    [run] = log["runs"]
    assert [r["properties"]["account"] for r in run["results"]] == [MEMBER]
    [notification] = run["invocations"][0]["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert notification["message"]["text"].startswith(
        f"account {DENIED}: not swept: cannot assume {DENIED_ROLE}"
    )


@pytest.mark.usefixtures("organization")
def test_html_has_an_account_column_and_a_line_per_account(
    bucketwarden: Runner, tmp_path: Path
) -> None:
    report = tmp_path / "report.html"
    ran = bucketwarden(
        "scan",
        "--accounts",
        f"{MEMBER},{ACCOUNT},{DENIED}",
        *VERSIONING,
        "--format",
        "html",
        "--output",
        str(report),
    )

    assert ran.code == 0, ran.err
    page = report.read_text()
    assert '<th scope="col"><button type="button">account</button></th>' in page
    rows = page[page.index("<tbody>") :]
    assert rows.index(f"<td>{MEMBER}</td>") < rows.index(f"<td>{ACCOUNT}</td>")
    assert rows.index(f"<td>{ACCOUNT}</td>") < rows.index(f"<td>{DENIED}</td>")
    assert f"<li>account {MEMBER}: 1 check on 1 bucket: 1 noncompliant</li>" in page


def test_one_accounts_reports_are_as_before(bucketwarden: Runner, tmp_path: Path) -> None:
    make_bucket("alone")
    report = tmp_path / "report.html"
    ran = bucketwarden("scan", *VERSIONING, "--format", "html", "--output", str(report))
    assert ran.code == 0, ran.err
    page = report.read_text()
    assert '<button type="button">account</button>' not in page
    assert 'id="accounts"' not in page
    table_ran = bucketwarden("scan", *VERSIONING)
    assert f"account {ACCOUNT}" not in table_ran.printed


@pytest.mark.usefixtures("organization")
def test_buckets_named_are_looked_for_in_every_account_swept(bucketwarden: Runner) -> None:
    accounts = ("--accounts", f"{ACCOUNT},{MEMBER}")
    ran = bucketwarden("scan", *accounts, "--bucket", "member-bucket", *VERSIONING, "--json")
    assert ran.code == 0, ran.err
    assert [(line["account"], line["bucket"]) for line in ran.lines] == [(MEMBER, "member-bucket")]

    typo = bucketwarden("scan", *accounts, "--bucket", "member-bucket", "--bucket", "membr")
    assert typo.code == 2
    assert "error: no bucket named 'membr' in the accounts swept" in typo.said
