"""Clients that act in an account of the organization: the hub's own, or a member role's.

In organization mode a hub function acts in a member account with that account's member role
for its family (`<MemberRoleName>-<family>`, deployed by the member roles template). The role is
assumed once per account and its credentials are kept until shortly before they expire (an
hour: the most role chaining allows), so a warm function makes no STS call per event, and a cold
one at most one per account. The session is named after the function (`session_name`), as
Lambda names the hub role's own session: the engine recognises its own changes in a member
account by that name on that role (see engine.Engine._is_own_change).

The hub's own account (or no account at all) gets the hub's cached clients (aws.client):
outside organization mode (no role name) every account does, exactly as before. Audit records,
notifications and metrics never come through here: they are always the hub's (services.py).

A role that is missing or that refuses the hub raises MemberRoleUnavailable, with STS's code
and message: the caller reports the account as such, it does not retry.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.exceptions import ClientError

from bucketwarden.aws import RETRY_CONFIG, client, error_code, error_message, new_client
from bucketwarden.outcome import utc_now
from bucketwarden.settings import ROLE_NAME, Settings

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3control import S3ControlClient
    from mypy_boto3_sts import STSClient

ACCOUNT_ID = re.compile(r"^\d{12}$")
# IAM's rule for a role session name (a role name's is settings.ROLE_NAME).
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$")
# Role chaining (a Lambda function's role assuming another) allows an hour at most.
SESSION_SECONDS = 3600
# Credentials are renewed this long before they expire: a call made with them must not outlive
# them (a sweep of an account's buckets takes minutes).
RENEW_BEFORE = timedelta(minutes=5)
# STS's answers for a role that does not exist, does not trust the hub, or may not be assumed
# in the region: retrying cannot help. Anything else (throttling, 5xx) is raised as it is.
UNAVAILABLE_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "NoSuchEntity",
        "NoSuchEntityException",
        "RegionDisabledException",
    }
)

# The member role of the sweep is `<MemberRoleName>-sweep`; the families' are named after them.
SWEEP_ROLE_SUFFIX = "sweep"
# The session name outside Lambda (the CLI's replay), where no function names it.
DEFAULT_SESSION_NAME = "bucketwarden"
# Set on a member role's clients: the account they act in (see acting_account).
_ACTING_ACCOUNT = "bucketwarden_acting_account"

Clock = Callable[[], datetime]


class MemberRoleUnavailable(Exception):
    """The member role of `account` cannot be assumed; `reason` says why (STS's code and
    message when STS refused)."""

    def __init__(self, account: str, reason: str, code: str | None = None) -> None:
        super().__init__(f"account {account}: {reason}")
        self.account = account
        self.reason = reason
        self.code = code


def is_account_id(value: str | None) -> bool:
    return bool(value) and ACCOUNT_ID.match(str(value)) is not None


def role_arn(partition: str, account: str, role_name: str) -> str:
    """The ARN of `role_name` in `account`; MemberRoleUnavailable for an account that is not a
    12-digit id (it would name something else in the ARN)."""
    if not is_account_id(account):
        raise MemberRoleUnavailable(str(account), f"{account!r} is not a 12-digit AWS account id")
    return f"arn:{partition}:iam::{account}:role/{role_name}"


def member_role_names(role_name: str, suffixes: tuple[str, ...]) -> tuple[str, ...]:
    """Every member role of the set `role_name` belongs to: `<prefix>-<suffix>` for each of
    `suffixes` (the families and the sweep), when `role_name` is one of them; else itself."""
    for suffix in suffixes:
        prefix = role_name.removesuffix(f"-{suffix}")
        if prefix != role_name and prefix:
            return tuple(f"{prefix}-{other}" for other in suffixes)
    return (role_name,)


def acting_account(api: Any) -> str | None:
    """The member account a client made here acts in; None for the hub's own clients (whose
    account STS tells). A control that names the bucket owner's account in what it writes
    (a bucket policy's aws:SourceAccount) asks this first."""
    account = getattr(api, _ACTING_ACCOUNT, None)
    return account if isinstance(account, str) else None


def account_access(settings: Settings) -> AccountAccess | None:
    """The hub function's access to member accounts in organization mode; None otherwise (every
    client is the hub's own, as in a single-account stack).

    One per process for the same settings: a handler builds its engine for each event, and a
    warm function must keep its members' credentials between events. A new STS client (after
    aws.reset_clients) makes a new one, with credentials of its own.
    """
    if not settings.organization_mode:
        return None
    session_name = settings.function_name or DEFAULT_SESSION_NAME
    return _shared_access(
        client("sts"), settings.account_id, str(settings.member_role_name), session_name
    )


@cache
def _shared_access(
    sts: STSClient, home_account: str | None, role_name: str, session_name: str
) -> AccountAccess:
    return AccountAccess(home_account, role_name, sts, session_name)


@dataclass
class _Session:
    """One account's assumed-role credentials and the clients made with them."""

    credentials: dict[str, str]
    expires: datetime
    clients: dict[tuple[str, str | None], Any] = field(default_factory=dict)


class AccountAccess:
    """Clients for an account: the hub's own for `home_account` (or no account), else clients
    with the credentials of `role_name` assumed in that account (see the module's docstring).

    `home_account` None: the hub's account is asked of STS the first time a member's is.
    `role_name` None: not in organization mode, every client is the hub's own.
    Safe across threads (the sweep reads from several at once).
    """

    def __init__(
        self,
        home_account: str | None,
        role_name: str | None,
        sts: STSClient,
        session_name: str,
        clock: Clock = utc_now,
    ) -> None:
        if role_name is not None and not ROLE_NAME.match(role_name):
            raise ValueError(f"{role_name!r} is not an IAM role name")
        if role_name is not None and not SESSION_NAME.match(session_name):
            raise ValueError(f"{session_name!r} is not a role session name")
        self.home_account = home_account
        self.role_name = role_name
        self.session_name = session_name
        self._sts = sts
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Session] = {}
        # One lock per account: a sweep's workers wait for the one STS call of their account,
        # not for other accounts'.
        self._account_locks: dict[str, threading.Lock] = {}

    @overload
    def client(
        self, service: Literal["s3"], account: str | None, region: str | None
    ) -> S3Client: ...
    @overload
    def client(
        self, service: Literal["s3control"], account: str | None, region: str | None
    ) -> S3ControlClient: ...
    @overload
    def client(
        self, service: Literal["securityhub"], account: str | None, region: str | None
    ) -> Any: ...
    @overload
    def client(
        self, service: Literal["cloudtrail"], account: str | None, region: str | None
    ) -> CloudTrailClient: ...
    def client(self, service: str, account: str | None, region: str | None) -> Any:
        """A client of `service` acting in `account` and `region`."""
        if self.role_name is None or account is None or account == self._home():
            return client(service, region)  # type: ignore[call-overload]  # any named service
        session = self._session(account)
        with self._account_lock(account):
            made = session.clients.get((service, region))
            if made is None:
                made = _client_with(service, region, session.credentials)
                setattr(made, _ACTING_ACCOUNT, account)
                session.clients[(service, region)] = made
            return made

    def reach(self, account: str | None) -> None:
        """Assume `account`'s member role now, if it needs one (MemberRoleUnavailable when it
        cannot be): the engine learns it once per event, before it reads anything."""
        if self.is_member(account):
            self._session(str(account))

    def is_member(self, account: str | None) -> bool:
        """Whether `account`'s clients come from its member role (organization mode only)."""
        return self.role_name is not None and account is not None and account != self._home()

    def _home(self) -> str:
        if self.home_account is None:
            with self._lock:
                if self.home_account is None:
                    self.home_account = str(self._sts.get_caller_identity()["Account"])
        return self.home_account

    def _session(self, account: str) -> _Session:
        """The account's session, renewed when it is about to expire."""
        arn = role_arn(self._sts.meta.partition, account, str(self.role_name))
        with self._account_lock(account):
            session = self._sessions.get(account)
            if session is None or self._clock() >= session.expires - RENEW_BEFORE:
                session = self._assume(account, arn)
                with self._lock:
                    self._sessions[account] = session
            return session

    def _account_lock(self, account: str) -> threading.Lock:
        with self._lock:
            return self._account_locks.setdefault(account, threading.Lock())

    def _assume(self, account: str, arn: str) -> _Session:
        try:
            answer = self._sts.assume_role(
                RoleArn=arn, RoleSessionName=self.session_name, DurationSeconds=SESSION_SECONDS
            )
        except ClientError as error:
            code = error_code(error)
            if code not in UNAVAILABLE_CODES:
                raise
            reason = f"cannot assume {arn} ({code}: {error_message(error) or 'no message'})"
            raise MemberRoleUnavailable(account, reason, code) from error
        credentials = answer["Credentials"]
        keys = {
            "aws_access_key_id": credentials["AccessKeyId"],
            "aws_secret_access_key": credentials["SecretAccessKey"],
            "aws_session_token": credentials["SessionToken"],
        }
        return _Session(keys, credentials["Expiration"])


def _client_with(service: str, region: str | None, credentials: dict[str, str]) -> Any:
    return new_client(service, region_name=region, config=RETRY_CONFIG, **credentials)
