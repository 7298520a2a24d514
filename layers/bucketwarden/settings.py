"""Runtime configuration, read once from environment variables set by template.yaml.

Every variable has a safe default so the CLI and tests work without a deployed stack.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# IAM's rule for a role name, and the form of an organization's id.
ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
_ORGANIZATION_ID = re.compile(r"^o-[a-z0-9]{10,32}$")

# TLS versions S3 accepts as a minimum in `s3:TlsVersion` conditions ("" turns the rule off).
TLS_VERSIONS = ("", "1.2", "1.3")


class ExemptionSource(StrEnum):
    """Where exemptions may come from: bucket tags, the central allowlist, or both."""

    TAGS = "tags"
    ALLOWLIST = "allowlist"
    BOTH = "both"


class Mode(StrEnum):
    REMEDIATE = "remediate"
    NOTIFY = "notify"
    OFF = "off"


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the variable."""


def mode_variable(control_id: str) -> str:
    """Name of the environment variable holding a control's mode, e.g. MODE_PUBLIC_ACL."""
    return "MODE_" + control_id.upper().replace("-", "_")


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _whole_number(
    env: Mapping[str, str], name: str, default: int, maximum: int, minimum: int = 0
) -> int:
    raw = env.get(name, str(default)).strip() or str(default)
    if not raw.isdigit() or not minimum <= int(raw) <= maximum:
        raise ConfigError(f"{name}={raw!r}: expected a whole number from {minimum} to {maximum}")
    return int(raw)


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """A "true"/"false" variable; anything else is an error, not silently off."""
    raw = env.get(name, str(default).lower()).strip().lower()
    if raw not in {"true", "false"}:
        raise ConfigError(f"{name}={raw!r}: expected true or false")
    return raw == "true"


def account_id_from_env(env: Mapping[str, str]) -> str | None:
    """ACCOUNT_ID, the stack's account (None when unset); ConfigError when not an account id."""
    return _account_id(env)


def _exemption_source(env: Mapping[str, str], parameter: str | None) -> ExemptionSource:
    raw = env.get("EXEMPTION_SOURCE", "").strip().lower() or ExemptionSource.BOTH.value
    try:
        source = ExemptionSource(raw)
    except ValueError as error:
        allowed = ", ".join(s.value for s in ExemptionSource)
        raise ConfigError(f"EXEMPTION_SOURCE={raw!r}: expected one of {allowed}") from error
    # Allowlist only, and no allowlist: a mistake that would silently exempt nothing.
    if source is ExemptionSource.ALLOWLIST and not parameter:
        raise ConfigError("EXEMPTION_SOURCE=allowlist needs EXEMPTIONS_PARAMETER")
    return source


def _account_id(env: Mapping[str, str]) -> str | None:
    raw = env.get("ACCOUNT_ID", "").strip()
    if raw and not (len(raw) == 12 and raw.isdigit()):
        raise ConfigError(f"ACCOUNT_ID={raw!r}: expected a 12-digit AWS account id")
    return raw or None


def _organization(env: Mapping[str, str], account_id: str | None) -> tuple[str | None, str | None]:
    """MEMBER_ROLE_NAME and ORGANIZATION_ID, checked. A member role is assumed only by a hub
    that knows its organization and its own account (whose events it handles with its own
    role): without them, acting in other accounts would be a mistake, not a mode."""
    role = env.get("MEMBER_ROLE_NAME", "").strip() or None
    organization = env.get("ORGANIZATION_ID", "").strip() or None
    if role is not None and not ROLE_NAME.match(role):
        raise ConfigError(f"MEMBER_ROLE_NAME={role!r}: expected an IAM role name")
    if organization is not None and not _ORGANIZATION_ID.match(organization):
        raise ConfigError(
            f"ORGANIZATION_ID={organization!r}: expected an organization id (o-, then 10 to 32 "
            "lowercase letters or digits)"
        )
    if role is not None and organization is None:
        raise ConfigError("MEMBER_ROLE_NAME needs ORGANIZATION_ID")
    if role is not None and account_id is None:
        raise ConfigError("MEMBER_ROLE_NAME needs ACCOUNT_ID (the hub's account)")
    return role, organization


@dataclass(frozen=True)
class Settings:
    """The stack's configuration, read once from the function's environment (template.yaml)."""

    modes: Mapping[str, Mode] = field(default_factory=dict)
    exempt_tag_key: str = "bucketwarden:exempt"
    encryption_baseline: str = "SSE-S3"
    approved_kms_keys: tuple[str, ...] = ()
    block_sse_c: bool = False
    service_role_arns: tuple[str, ...] = ()
    # The service's function names (Lambda names each role session after its function): a change
    # is the service's own only from one of these sessions of one of those roles.
    service_function_names: tuple[str, ...] = ()
    audit_table: str | None = None
    # KMS HMAC key (id, ARN or alias) that tags every audit record (integrity.py): without it,
    # recorded data drives no decision (no flap hold, no recorded baseline, no rollback).
    audit_mac_key: str | None = None
    idempotency_table: str | None = None
    topic_arn: str | None = None
    dry_run: bool = False
    # secure-transport: requests below this TLS version are denied too ("" = no TLS version rule).
    tls_minimum: str = "1.2"
    # access-logging: where every bucket's server access logs go; no target = nothing to check.
    log_target_bucket: str | None = None
    log_target_prefix: str = "s3-access-logs/"
    # object-lock-retention: the weakest default retention allowed (no mode = the recorded one).
    object_lock_mode: str | None = None
    object_lock_days: int = 0
    # CreateBucket: seconds to wait before the baseline is checked (infrastructure-as-code time).
    baseline_delay_seconds: int = 0
    # Flap breaker: more than `flap_threshold` fixes of one bucket and control within
    # `flap_window_minutes` and the pair is only reported until it has been quiet that long.
    # 0 turns the breaker off.
    flap_threshold: int = 3
    flap_window_minutes: int = 60
    # SSM parameter holding the central exemption allowlist (None: tags only).
    exemptions_parameter: str | None = None
    # Which exemptions count: tags, the allowlist, or both. With the allowlist only, a tag
    # exempts nothing (the finding says it was not honoured, and why).
    exemption_source: ExemptionSource = ExemptionSource.BOTH
    # The longest an exemption may last, in days (0: no limit): an end date further away is
    # not honoured, and one without an end date lapses this long after it was first recorded.
    max_exemption_days: int = 365
    # The region the function runs in (AWS_REGION, which Lambda sets): the stack's region, where
    # its audit table is. None outside Lambda.
    region: str | None = None
    # The account the stack guards (ACCOUNT_ID, set by template.yaml from AWS::AccountId): events
    # of other accounts are not acted on, and KMS keys are judged against it. None when unknown
    # (the CLI outside a stack asks STS where it needs it).
    account_id: str | None = None
    # Organization mode (issue 14): the member role this function assumes to act in a member
    # account (`<MemberRoleName>-<family>`), and the organization. None: single account, and
    # events of other accounts are ignored as before.
    member_role_name: str | None = None
    organization_id: str | None = None
    # The function's name (AWS_LAMBDA_FUNCTION_NAME, which Lambda sets): the session name of
    # the member roles it assumes, so that its changes in a member account are recognised.
    function_name: str | None = None

    @property
    def organization_mode(self) -> bool:
        """Events of member accounts are acted on there, with the member role."""
        return self.member_role_name is not None

    def mode(self, control_id: str, default: Mode = Mode.REMEDIATE) -> Mode:
        """The control's configured mode, or its own default (`Control.default_mode`: controls
        added after a release detect only until someone chooses, so an upgrade changes no
        bucket)."""
        return self.modes.get(control_id, default)

    @property
    def exempt_reason_key(self) -> str:
        return f"{self.exempt_tag_key}-reason"

    @property
    def exempt_until_key(self) -> str:
        return f"{self.exempt_tag_key}-until"

    @classmethod
    def from_env(
        cls, control_ids: tuple[str, ...], env: Mapping[str, str] | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        modes: dict[str, Mode] = {}
        for control_id in control_ids:
            configured = env.get(mode_variable(control_id))
            if configured is None:
                continue  # the control's own default_mode applies (see `mode`)
            raw = configured.strip().lower()
            try:
                modes[control_id] = Mode(raw)
            except ValueError as error:
                allowed = ", ".join(m.value for m in Mode)
                raise ConfigError(
                    f"{mode_variable(control_id)}={raw!r}: expected one of {allowed}"
                ) from error
        baseline = env.get("ENCRYPTION_BASELINE", "SSE-S3").strip().upper()
        keys = _split(env.get("APPROVED_KMS_KEYS", ""))
        if baseline not in {"SSE-S3", "SSE-KMS"}:
            raise ConfigError(f"ENCRYPTION_BASELINE={baseline!r}: expected SSE-S3 or SSE-KMS")
        if baseline == "SSE-KMS" and not keys:
            raise ConfigError("ENCRYPTION_BASELINE=SSE-KMS needs at least one APPROVED_KMS_KEYS")
        tls_minimum = env.get("TLS_MINIMUM", "1.2").strip()
        if tls_minimum not in TLS_VERSIONS:
            raise ConfigError(f"TLS_MINIMUM={tls_minimum!r}: expected one of 1.2, 1.3 or empty")
        lock_mode = env.get("OBJECT_LOCK_MODE", "").strip().upper() or None
        if lock_mode not in {None, "GOVERNANCE", "COMPLIANCE"}:
            raise ConfigError(
                f"OBJECT_LOCK_MODE={lock_mode!r}: expected GOVERNANCE, COMPLIANCE or empty"
            )
        lock_days = _whole_number(env, "OBJECT_LOCK_DAYS", 0, maximum=36500)
        parameter = env.get("EXEMPTIONS_PARAMETER", "").strip() or None
        account_id = _account_id(env)
        member_role_name, organization_id = _organization(env, account_id)
        if lock_mode and lock_days < 1:
            raise ConfigError(f"OBJECT_LOCK_MODE={lock_mode} needs OBJECT_LOCK_DAYS of at least 1")
        return cls(
            modes=modes,
            exempt_tag_key=env.get("EXEMPT_TAG_KEY", "bucketwarden:exempt").strip(),
            encryption_baseline=baseline,
            approved_kms_keys=keys,
            block_sse_c=_switch(env, "BLOCK_SSE_C", default=False),
            service_role_arns=_split(env.get("SERVICE_ROLE_ARNS", "")),
            service_function_names=_split(env.get("SERVICE_FUNCTION_NAMES", "")),
            audit_table=env.get("AUDIT_TABLE") or None,
            audit_mac_key=env.get("AUDIT_MAC_KEY", "").strip() or None,
            idempotency_table=env.get("IDEMPOTENCY_TABLE") or None,
            topic_arn=env.get("NOTIFICATION_TOPIC_ARN") or None,
            dry_run=env.get("BUCKETWARDEN_DRY_RUN", "").lower() in {"1", "true", "yes"},
            tls_minimum=tls_minimum,
            log_target_bucket=env.get("LOG_TARGET_BUCKET", "").strip() or None,
            log_target_prefix=env.get("LOG_TARGET_PREFIX", "s3-access-logs/").strip(),
            object_lock_mode=lock_mode,
            object_lock_days=lock_days,
            baseline_delay_seconds=_whole_number(env, "BASELINE_DELAY_SECONDS", 0, maximum=300),
            flap_threshold=_whole_number(env, "FLAP_THRESHOLD", 3, maximum=100),
            flap_window_minutes=_whole_number(env, "FLAP_WINDOW_MINUTES", 60, 10080, minimum=1),
            exemptions_parameter=parameter,
            exemption_source=_exemption_source(env, parameter),
            max_exemption_days=_whole_number(env, "MAX_EXEMPTION_DAYS", 365, maximum=36500),
            region=env.get("AWS_REGION", "").strip() or None,
            account_id=account_id,
            member_role_name=member_role_name,
            organization_id=organization_id,
            function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", "").strip() or None,
        )
