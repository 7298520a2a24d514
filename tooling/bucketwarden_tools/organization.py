"""The CLI across accounts: `--accounts ID,...` or `--organization`, with `--role-name`.

`scan` and `remediate` sweep each account in turn: the caller's own with the caller's
credentials, every other one with the member role (`--role-name`, by default the member sweep
role the member roles template deploys) assumed once per account. An account whose role is
missing or refuses the caller is reported as a failed line of its own, and the others are swept.
`history` reads the hub's audit table only, keeping the records of the accounts named.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from bucketwarden.settings import ROLE_NAME

# The member roles template's sweep role (accounts.SWEEP_ROLE_SUFFIX), with the default
# MemberRoleName. The runtime's AWS modules are imported when used: `--help` stays quick.
DEFAULT_ROLE_NAME = "bucketwarden-member-sweep"
# The member roles' session name when the CLI assumes them (CloudTrail shows it).
SESSION_NAME = "bucketwarden-cli"


def account_list(text: str) -> tuple[str, ...]:
    """`--accounts`: comma-separated 12-digit account ids, in order, without repeats."""
    from bucketwarden.accounts import is_account_id

    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("name at least one account id")
    wrong = [part for part in ids if not is_account_id(part)]
    if wrong:
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(repr, wrong))}: not a 12-digit AWS account id"
        )
    return tuple(dict.fromkeys(ids))


def role_name(text: str) -> str:
    if not ROLE_NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IAM role name")
    return text


def account_arguments(command: argparse.ArgumentParser, *, assumes_roles: bool) -> None:
    """--accounts or --organization (and --role-name where the command acts in accounts)."""
    which = command.add_mutually_exclusive_group()
    verb = "sweep" if assumes_roles else "keep the records of"
    which.add_argument(
        "--accounts",
        type=account_list,
        metavar="ID[,ID...]",
        help=f"{verb} these accounts (comma-separated 12-digit ids; default: the caller's own)",
    )
    which.add_argument(
        "--organization",
        action="store_true",
        help=f"{verb} every ACTIVE account of the organization (ListAccounts, allowed to the "
        "management account and a delegated administrator)",
    )
    if assumes_roles:
        command.add_argument(
            "--role-name",
            type=role_name,
            default=DEFAULT_ROLE_NAME,
            metavar="NAME",
            help="the role assumed in each account but the caller's (default: %(default)s, "
            "the member sweep role)",
        )


def selected_accounts(
    args: argparse.Namespace, organizations: Callable[[], Any]
) -> tuple[str, ...] | None:
    """The accounts named, the organization's (listed with the caller's credentials), or None:
    the caller's own only, as before."""
    if args.accounts:
        return tuple(args.accounts)
    if args.organization:
        from bucketwarden.org_sweep import organization_accounts

        return tuple(sorted(organization_accounts(organizations())))
    return None


def unavailable_outcome(account: str, reason: str) -> dict[str, Any]:
    """A line for an account whose role could not be assumed: failed, the reason given."""
    return {
        "account": account,
        "bucket": account,
        "scope": "account",
        "control": None,
        "status": "failed",
        "reason": f"not swept: {reason}",
        "before": None,
        "after": None,
    }


def of_accounts(
    records: Iterable[dict[str, Any]], accounts: tuple[str, ...] | None
) -> Iterator[dict[str, Any]]:
    """The records of `accounts` (all when None). A record without an account predates
    organization mode and is not named by any."""
    wanted = None if accounts is None else set(accounts)
    return (record for record in records if wanted is None or record.get("account") in wanted)
