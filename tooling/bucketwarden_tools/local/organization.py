"""An AWS Organization on the embedded AWS (`bucketwarden local --accounts N`).

The emulator's account is the hub and the organization's management account; Organizations
makes N-1 member accounts. Each member gets what the member templates deploy, through the
emulated CloudFormation in that account: the member roles (member/roles.yaml) and the forwarder
(member/forwarder.yaml), whose rule sends the account's S3 calls to the hub's bus. Each member
also gets a role any local client may assume to act there as a person would (USER_ROLE).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bucketwarden_tools.local.cloudtrail import ACCOUNT

# The hub stack's names, as `sam deploy --stack-name bucketwarden-local` would make them.
HUB_STACK_NAME = "bucketwarden-local"
HUB_BUS_NAME = f"{HUB_STACK_NAME}-hub"
MEMBER_ROLE_PREFIX = "bucketwarden-member"  # the hub's MemberRoleName, as its default
# The role a person (any local client) assumes in a member account to act there.
USER_ROLE = "bucketwarden-local-user"
# The role Organizations makes in each account it creates (the emulator too): the local system
# deploys with it, and `bucketwarden rollback` acts with it by default.
ADMIN_ROLE = "OrganizationAccountAccessRole"
SETUP_SESSION = "bucketwarden-local-setup"
MEMBER_TEMPLATES = ("roles.yaml", "forwarder.yaml")

Client = Callable[..., Any]


@dataclass(frozen=True)
class Organization:
    """The local organization: its id, the hub account and the member accounts."""

    organization_id: str
    hub: str
    members: tuple[str, ...]
    user_role: str = USER_ROLE

    @property
    def accounts(self) -> list[str]:
        return [self.hub, *self.members]

    def user_role_arn(self, account: str) -> str:
        return f"arn:aws:iam::{account}:role/{self.user_role}"


def create(
    accounts: int, client: Client, member_folder: Path, region: str, endpoint: str
) -> Organization:
    """The organization with `accounts` accounts in all (the hub, then accounts - 1 members),
    each member deployed as the member templates deploy it."""
    organizations = client("organizations")
    organization = organizations.create_organization(FeatureSet="ALL")["Organization"]
    members = []
    for number in range(1, accounts):
        status = organizations.create_account(
            AccountName=f"member-{number}", Email=f"member-{number}@example.com"
        )["CreateAccountStatus"]
        members.append(str(status["AccountId"]))
    created = Organization(str(organization["Id"]), ACCOUNT, tuple(members))
    client("events").create_event_bus(Name=HUB_BUS_NAME)
    for member in members:
        deploy_member(member, client, member_folder, region, endpoint)
    return created


def deploy_member(
    account: str, client: Client, member_folder: Path, region: str, endpoint: str
) -> None:
    """What the StackSets deploy in a member account, and the local user's role."""
    session = _admin_session(account, client, region, endpoint)
    cloudformation = session.client("cloudformation")
    parameters = {
        "HubAccountId": ACCOUNT,
        "HubStackName": HUB_STACK_NAME,
        "MemberRoleName": MEMBER_ROLE_PREFIX,
        "HubRegion": region,
        "HubEventBusName": HUB_BUS_NAME,
    }
    for name in MEMBER_TEMPLATES:
        body = (member_folder / name).read_text()
        cloudformation.create_stack(
            StackName=f"bucketwarden-member-{name.removesuffix('.yaml')}",
            TemplateBody=body,
            Parameters=[
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in parameters.items()
                if f"\n  {key}:" in body
            ],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    _create_role(session.client("iam"), USER_ROLE, "a person acting here", {"Action": "s3:*"})
    # Findings about a member's buckets are imported in the member's own Security Hub.
    session.client("securityhub").enable_security_hub()


def _admin_session(account: str, client: Client, region: str, endpoint: str) -> Any:
    """A session in `account` with the role Organizations made there."""
    role = f"arn:aws:iam::{account}:role/{ADMIN_ROLE}"
    return AssumedSession(client("sts"), role, SETUP_SESSION, endpoint, region)


class AssumedSession:
    """Clients at the local endpoint with the credentials of `role_arn`, assumed with `sts`
    (as `aws sts assume-role` gets them): they act in the role's account."""

    def __init__(self, sts: Any, role_arn: str, session_name: str, endpoint: str, region: str):
        self.credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
            "Credentials"
        ]
        self._endpoint = endpoint
        self._region = region

    def client(self, service: str) -> Any:
        from bucketwarden.aws import new_client

        return new_client(
            service,
            endpoint_url=self._endpoint,
            region_name=self._region,
            aws_access_key_id=self.credentials["AccessKeyId"],
            aws_secret_access_key=self.credentials["SecretAccessKey"],
            aws_session_token=self.credentials["SessionToken"],
        )


def _create_role(iam: Any, name: str, what: str, allowed: dict[str, str]) -> None:
    """A role the hub account's principals may assume in the member (the person's: S3 only,
    the changes BucketWarden judges)."""
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
    iam.create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(trust),
        Description=f"bucketwarden local: {what}",
    )
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Resource": "*", **allowed}],
    }
    iam.put_role_policy(RoleName=name, PolicyName="access", PolicyDocument=json.dumps(grant))
