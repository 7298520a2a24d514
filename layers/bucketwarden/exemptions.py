"""Exemptions by bucket tag: `<key>` = all | control ids, `<key>-reason`, `<key>-until`.

An exemption is honoured only with a reason and, if it has an end date, before that date.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.settings import Settings

# Tag values may not allow commas everywhere, so spaces, "+" and "/" separate control ids too.
_SEPARATORS = re.compile(r"[,\s+/]+")
NO_TAGS = frozenset({"NoSuchTagSet", "NoSuchTagSetError"})


@dataclass(frozen=True)
class ExemptionCheck:
    exempt: bool
    # Why it is or is not honoured; None when the bucket has no exemption for the control.
    note: str | None = None


def read_tags(s3: Any, bucket: str) -> dict[str, str]:
    try:
        response = s3.get_bucket_tagging(Bucket=bucket)
    except ClientError as error:
        if error_code(error) in NO_TAGS:
            return {}
        raise
    # An empty value may come back without a Value element.
    return {tag["Key"]: tag.get("Value", "") for tag in response.get("TagSet", [])}


def check(tags: dict[str, str], control_id: str, settings: Settings, today: date) -> ExemptionCheck:
    value = tags.get(settings.exempt_tag_key)
    if value is None:
        return ExemptionCheck(False)
    targets = {part.lower() for part in _SEPARATORS.split(value) if part}
    if "all" not in targets and control_id not in targets:
        return ExemptionCheck(False)
    reason = tags.get(settings.exempt_reason_key, "").strip()
    if not reason:
        return ExemptionCheck(
            False, f"exemption ignored: tag {settings.exempt_reason_key} is missing or empty"
        )
    return _honoured_until(tags.get(settings.exempt_until_key, "").strip(), reason, settings, today)


def _honoured_until(until: str, reason: str, settings: Settings, today: date) -> ExemptionCheck:
    if not until:
        return ExemptionCheck(True, f"exempt: {reason}")
    try:
        end = date.fromisoformat(until[:10])
    except ValueError:
        note = f"exemption ignored: {settings.exempt_until_key}={until!r} is not a date"
        return ExemptionCheck(False, note)
    if end < today:
        return ExemptionCheck(False, f"exemption expired on {end.isoformat()}")
    return ExemptionCheck(True, f"exempt until {end.isoformat()}: {reason}")
