"""The sweep of an organization: which accounts, the sweep's plan, one summary for them all.

In organization mode the sweep covers every account: those of `ACCOUNT_IDS` (comma-separated
12-digit ids, the stack's `AccountIds` parameter), else the ACTIVE accounts that Organizations
lists (ListAccounts, allowed to the management account and to a delegated administrator), and
always the hub's own account, swept with the hub's own credentials.

The invocation the schedule starts writes the sweep's plan (its accounts, in order) to the
idempotency table, then starts the first `FAN_OUT` accounts, one asynchronous invocation each.
Each account is swept as a single account is (continuing in further invocations when time runs
short); when it is done its result is recorded and it starts the account `FAN_OUT` places after
it in the plan: at most `FAN_OUT` accounts are swept at once, in lanes, with no shared counter.

Exactly once, under duplicate deliveries: each account's result is a conditional put (only its
first writer, or that writer's Lambda retry, succeeds), then the account is removed from the
plan's pending set with the condition that it is still there; the write that empties the set
finishes the sweep, and the summary is published by the one invocation that then claims the
plan's `publisher` (again conditionally; a retry of that same invocation may claim it again).
Everything these decisions read is in the hub's own table, which no member account can write;
a continuation naming an account is refused unless the plan lists it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden.accounts import is_account_id
from bucketwarden.aws import client, error_code
from bucketwarden.settings import ConfigError, Settings
from bucketwarden.summary import SWEPT, UNAVAILABLE, AccountLine, Tally

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ACCOUNT_IDS_VARIABLE = "ACCOUNT_IDS"
# Accounts swept at once: enough to sweep a thousand accounts in a few lanes' time, few enough
# for S3's and STS's request rates and the function's concurrency (each is one invocation).
FAN_OUT = 10
# How long a sweep's plan and results are kept (TTL), as the sweep's claims are.
PLAN_TTL_SECONDS = 2 * 24 * 60 * 60
_CONDITION_FAILED = "ConditionalCheckFailedException"


def configured_accounts(env: Mapping[str, str] | None = None) -> tuple[str, ...] | None:
    """ACCOUNT_IDS as account ids (None when unset); ConfigError naming any that is not one."""
    env = os.environ if env is None else env
    raw = env.get(ACCOUNT_IDS_VARIABLE, "").strip()
    if not raw:
        return None
    ids = [part.strip() for part in raw.split(",")]
    wrong = [part for part in ids if not is_account_id(part)]
    if wrong:
        raise ConfigError(
            f"{ACCOUNT_IDS_VARIABLE}: {', '.join(map(repr, wrong))} is not a 12-digit AWS "
            "account id (expected comma-separated ids)"
        )
    return tuple(dict.fromkeys(ids))


def organization_accounts(organizations: Any) -> list[str]:
    """The organization's ACTIVE accounts (suspended and closing ones have nothing to sweep)."""
    pages = organizations.get_paginator("list_accounts").paginate()
    return [
        account["Id"]
        for page in pages
        for account in page.get("Accounts", [])
        if account.get("Status") == "ACTIVE"
    ]


def sweep_accounts(settings: Settings, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Every account an organization's sweep covers, in order, the hub's own among them."""
    configured = configured_accounts(env)
    if not settings.organization_mode or settings.account_id is None:
        raise ConfigError(f"{ACCOUNT_IDS_VARIABLE} needs MEMBER_ROLE_NAME and ACCOUNT_ID")
    if configured is None:
        organizations = client("organizations")
        configured = tuple(organization_accounts(organizations))
    return tuple(sorted({*configured, settings.account_id}))


def check_configuration(settings: Settings, env: Mapping[str, str] | None = None) -> None:
    """ACCOUNT_IDS is well formed, and set only where there are member roles to sweep with."""
    if configured_accounts(env) is not None and not settings.organization_mode:
        raise ConfigError(f"{ACCOUNT_IDS_VARIABLE} needs MEMBER_ROLE_NAME (organization mode)")


@dataclass
class AccountResult:
    """What the sweep of one account found, or why the account could not be swept."""

    account: str
    tally: Tally = field(default_factory=Tally)
    invocations: int = 0
    unavailable: str | None = None

    def line(self) -> AccountLine:
        if self.unavailable is not None:
            return AccountLine(self.account, UNAVAILABLE, reason=self.unavailable)
        return AccountLine(
            self.account, SWEPT, self.tally.findings, self.tally.flagged, self.tally.subjects
        )

    def to_json(self, worst: int) -> str:
        return json.dumps(
            {
                "tally": self.tally.to_dict(worst=worst),
                "invocations": self.invocations,
                "unavailable": self.unavailable,
            }
        )

    @classmethod
    def from_json(cls, account: str, text: str) -> AccountResult:
        data = json.loads(text)
        tally = Tally.from_dict(data["tally"])
        return cls(account, tally, data["invocations"], data["unavailable"])


class SweepPlan:
    """An organization sweep's plan and results, in the hub's idempotency table."""

    def __init__(self, table: str, owner: str, dynamodb: DynamoDBClient | None = None) -> None:
        self.table = table
        # This invocation (the Lambda request id): its retry may finish what it started.
        self.owner = owner
        self.dynamodb = dynamodb or client("dynamodb")

    @staticmethod
    def _plan_key(sweep_id: str) -> dict[str, Any]:
        return {"id": {"S": f"sweep-plan#{sweep_id}"}}

    @staticmethod
    def _result_key(sweep_id: str, account: str) -> dict[str, Any]:
        return {"id": {"S": f"sweep-account#{sweep_id}#{account}"}}

    def _expiry(self) -> dict[str, str]:
        return {"N": str(int(time.time()) + PLAN_TTL_SECONDS)}

    def create(self, sweep_id: str, started_at: str, accounts: tuple[str, ...]) -> tuple[str, ...]:
        """Write the plan; the plan already written for this sweep when there is one."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    **self._plan_key(sweep_id),
                    "accounts": {"L": [{"S": account} for account in accounts]},
                    "pending": {"SS": list(accounts)},
                    "started_at": {"S": started_at},
                    "expiration": self._expiry(),
                },
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as error:
            if error_code(error) != _CONDITION_FAILED:
                raise
            return self.accounts(sweep_id) or ()
        return accounts

    def _plan(self, sweep_id: str) -> dict[str, Any] | None:
        found = self.dynamodb.get_item(
            TableName=self.table, Key=self._plan_key(sweep_id), ConsistentRead=True
        )
        item: dict[str, Any] | None = found.get("Item")
        return item

    def accounts(self, sweep_id: str) -> tuple[str, ...] | None:
        """The plan's accounts, in order; None when there is no such sweep."""
        plan = self._plan(sweep_id)
        if plan is None:
            return None
        return tuple(entry["S"] for entry in plan["accounts"]["L"])

    def finish(self, sweep_id: str, result: AccountResult, worst: int) -> bool:
        """Record an account's result; True for the one invocation that must publish the
        organization's summary (its write finished the sweep)."""
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    **self._result_key(sweep_id, result.account),
                    "result": {"S": result.to_json(worst)},
                    "owner": {"S": self.owner},
                    "expiration": self._expiry(),
                },
                ConditionExpression="attribute_not_exists(id) OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": self.owner}},
            )
        except ClientError as error:
            if error_code(error) != _CONDITION_FAILED:
                raise
            return False  # another delivery finished this account: the rest is its to do
        if not self._done(sweep_id, result.account):
            return False
        return self._claim_publisher(sweep_id)

    def _done(self, sweep_id: str, account: str) -> bool:
        """Take `account` off the pending set; whether no account is left."""
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key=self._plan_key(sweep_id),
                UpdateExpression="DELETE pending :account",
                ConditionExpression="contains(pending, :name)",
                ExpressionAttributeValues={":account": {"SS": [account]}, ":name": {"S": account}},
                ReturnValues="ALL_NEW",
            )
            return "pending" not in answer.get("Attributes", {})
        except ClientError as error:
            if error_code(error) != _CONDITION_FAILED:
                raise
        # Taken off before: by this invocation's earlier attempt (Lambda's retry).
        plan = self._plan(sweep_id)
        return plan is not None and "pending" not in plan

    def _claim_publisher(self, sweep_id: str) -> bool:
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key=self._plan_key(sweep_id),
                UpdateExpression="SET publisher = :owner",
                ConditionExpression="attribute_not_exists(publisher) OR publisher = :owner",
                ExpressionAttributeValues={":owner": {"S": self.owner}},
            )
        except ClientError as error:
            if error_code(error) != _CONDITION_FAILED:
                raise
            return False
        return True

    def results(self, sweep_id: str, accounts: tuple[str, ...]) -> list[AccountResult]:
        """Every account's recorded result (read once, by the invocation that publishes)."""
        found: list[AccountResult] = []
        for account in accounts:
            item = self.dynamodb.get_item(
                TableName=self.table, Key=self._result_key(sweep_id, account), ConsistentRead=True
            ).get("Item")
            if item is not None:
                found.append(AccountResult.from_json(account, item["result"]["S"]))
        return found


def next_in_lane(accounts: tuple[str, ...], account: str) -> str | None:
    """The account that `account`'s lane sweeps after it: FAN_OUT places further in the plan."""
    following = accounts.index(account) + FAN_OUT
    return accounts[following] if following < len(accounts) else None


def combined(results: list[AccountResult]) -> tuple[Tally, tuple[AccountLine, ...], int]:
    """The organization's totals, its accounts worst first, and the invocations they took."""
    tally = Tally()
    for result in results:
        tally.merge(result.tally)
    lines = tuple(sorted((result.line() for result in results), key=AccountLine.rank))
    return tally, lines, sum(result.invocations for result in results)
