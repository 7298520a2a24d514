"""Where an account sits in the organization, and the scopes of the central allowlist.

An allowlist entry (an exemption, or a mode) may be scoped to accounts and organizational units:
a sandbox OU in notify mode, say. Which OUs hold an account is asked of Organizations
(ListParents, from the account up to the root: one call per level) with the hub's own
credentials, which only the management account or a delegated administrator may ask. The answer
is kept an hour per function instance (an account moved to another OU is seen within the hour);
a lookup that failed is kept five minutes, so a hub that may not ask does not ask on every event.

An account whose OUs cannot be learnt (not a delegated administrator, denied, not in an
organization) is in none of them: an entry scoped to an OU never applies on a guess, and the
finding says why (`Placement.problem`). The hub's own account is looked up as any other.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from bucketwarden.accounts import ACCOUNT_ID
from bucketwarden.aws import client, error_code, error_message

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient

# Organizations' pattern for an organizational unit's id.
UNIT_ID = re.compile(r"^ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}$")
# How long an account's OUs, or the failure to learn them, are kept (seconds).
KNOWN_FOR = 3600.0
UNKNOWN_FOR = 300.0
# Organizations nests OUs at most five deep under the root: more parents than this is no tree.
MAX_DEPTH = 6

Clock = Callable[[], float]


class Placement(NamedTuple):
    """The organizational units above `account`, nearest first; `problem` says why they are
    unknown (the account is then in none)."""

    account: str
    units: tuple[str, ...] = ()
    problem: str | None = None


# Who answers an account's placement: an Organization's `placement`, or no_organization.
PlacementLookup = Callable[[str], Placement]


def no_organization(account: str) -> Placement:
    """The placement where nothing may ask Organizations: unknown, and said so."""
    return Placement(account, problem="no access to AWS Organizations here")


class Organization:
    """Accounts' organizational units, from Organizations with the client `connect` gives,
    kept per account (see the module's docstring). Safe across threads (the sweep's workers)."""

    def __init__(
        self, connect: Callable[[], OrganizationsClient], clock: Clock = time.monotonic
    ) -> None:
        self._connect = connect
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[str, tuple[float, Placement]] = {}
        # One lock per account: workers of one account wait for its one chain of calls.
        self._account_locks: dict[str, threading.Lock] = {}

    def placement(self, account: str) -> Placement:
        with self._account_lock(account):
            kept = self._known.get(account)
            if kept is not None and self._clock() < kept[0]:
                return kept[1]
            found = self._look_up(account)
            lasts = UNKNOWN_FOR if found.problem else KNOWN_FOR
            with self._lock:
                self._known[account] = (self._clock() + lasts, found)
            return found

    def _account_lock(self, account: str) -> threading.Lock:
        with self._lock:
            return self._account_locks.setdefault(account, threading.Lock())

    def _look_up(self, account: str) -> Placement:
        if not ACCOUNT_ID.match(account):
            return Placement(account, problem=f"{account!r} is not a 12-digit AWS account id")
        try:
            return self._climb(account)
        except ClientError as error:
            cause = f"{error_code(error)}: {error_message(error) or 'no message'}"
        except BotoCoreError as error:
            cause = str(error)
        problem = (
            f"the organizational units of account {account} are unknown (ListParents: {cause}); "
            "only the management account or a delegated administrator may ask, for the "
            "organization's accounts"
        )
        return Placement(account, problem=problem)

    def _climb(self, account: str) -> Placement:
        """ListParents from the account up to the root."""
        organizations = self._connect()
        units: list[str] = []
        child = account
        for _ in range(MAX_DEPTH):
            parents = organizations.list_parents(ChildId=child).get("Parents", [])
            if not parents:
                break
            parent = parents[0]
            if parent.get("Type") == "ROOT":
                return Placement(account, tuple(units))
            child = str(parent.get("Id"))
            units.append(child)
        problem = f"the organizational units of account {account} are unknown (no root above it)"
        return Placement(account, problem=problem)


class Membership(NamedTuple):
    """The organization's accounts; `problem` says why they are unknown (then none counts)."""

    accounts: frozenset[str] = frozenset()
    problem: str | None = None


class Members:
    """The accounts of the organization `organization_id` (ListAccounts, with the client
    `connect` gives: the hub's, as only the management account or a delegated administrator may
    ask), kept as an account's OUs are: an hour, a failure five minutes. Every account listed
    must say it is in that organization (its ARN names it): an answer about another
    organization is a problem, never a list to trust."""

    def __init__(
        self,
        connect: Callable[[], OrganizationsClient],
        organization_id: str,
        clock: Clock = time.monotonic,
    ) -> None:
        self._connect = connect
        self.organization_id = organization_id
        self._clock = clock
        self._lock = threading.Lock()
        self._known: tuple[float, Membership] | None = None

    def accounts(self) -> Membership:
        with self._lock:
            if self._known is not None and self._clock() < self._known[0]:
                return self._known[1]
            found = self._look_up()
            lasts = UNKNOWN_FOR if found.problem else KNOWN_FOR
            self._known = (self._clock() + lasts, found)
            return found

    def _look_up(self) -> Membership:
        try:
            listed = self._list()
        except ClientError as error:
            cause = f"{error_code(error)}: {error_message(error) or 'no message'}"
        except BotoCoreError as error:
            cause = str(error)
        else:
            elsewhere = [arn for arn in listed.values() if f"/{self.organization_id}/" not in arn]
            if listed and not elsewhere:
                return Membership(frozenset(listed))
            # An organization holds at least the account that manages it.
            cause = "no account listed"
            if elsewhere:
                cause = f"it listed {elsewhere[0]}, not an account of {self.organization_id}"
        problem = (
            f"the accounts of organization {self.organization_id} are unknown (ListAccounts: "
            f"{cause}); only the management account or a delegated administrator may ask"
        )
        return Membership(problem=problem)

    def _list(self) -> dict[str, str]:
        """Every account listed, by id, with its ARN (which names its organization)."""
        pages = self._connect().get_paginator("list_accounts").paginate()
        return {
            str(account.get("Id")): str(account.get("Arn"))
            for page in pages
            for account in page.get("Accounts", [])
        }


def hub_organization() -> Organization:
    """The hub's view of its organization, with its own credentials."""
    return Organization(lambda: client("organizations"))


class Reach(NamedTuple):
    """Whether a scope covers an account; `problem` when it could not be told."""

    applies: bool
    problem: str | None = None


class Scope(NamedTuple):
    """The accounts and organizational units an allowlist entry is for; both empty: every
    account, as before scopes existed."""

    accounts: frozenset[str] = frozenset()
    units: frozenset[str] = frozenset()

    @property
    def everywhere(self) -> bool:
        return not self.accounts and not self.units

    def describe(self) -> str:
        named = [f"account {a}" for a in sorted(self.accounts)]
        named += [f"organizational unit {u}" for u in sorted(self.units)]
        return ", ".join(named)

    def reach(self, account: str | None, placement: PlacementLookup) -> Reach:
        """Whether the scope covers `account` (asking its OUs only when it must)."""
        if self.everywhere:
            return Reach(True)
        if account is None:
            return Reach(False, "the account is not known")
        if account in self.accounts:
            return Reach(True)
        if not self.units:
            return Reach(False)
        found = placement(account)
        if found.problem:
            return Reach(False, found.problem)
        return Reach(not self.units.isdisjoint(found.units))
