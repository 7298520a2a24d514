"""The AWS Foundational Security Best Practices (FSBP) S3 controls, and what BucketWarden does
about each.

The table lists Security Hub's S3 control ids S3.1 to S3.25 as the Security Hub user guide
("Security Hub controls for Amazon S3") lists them: id, title, severity and the Security Hub
standards that include it. Some ids are retired, some belong to other standards than FSBP (CIS,
NIST SP 800-53, PCI DSS), and some numbers were never given to a control; each row says so.

Which BucketWarden control covers an id is not written here: it is computed from the controls'
own `fsbp` attributes (`coverage`), and how (fixed, or detected only) from their `fixable` and
mode. A row says why nothing covers it (`gap`), shown only while no control declares the id.
docs/fsbp.md is generated from this module (scripts/generate_fsbp_doc.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bucketwarden.settings import Mode

if TYPE_CHECKING:
    from bucketwarden.controls.base import Control, Severity
    from bucketwarden.settings import Settings

FSBP = "fsbp"
# The standards Security Hub names in a control's "related requirements".
FOUNDATIONAL = "FSBP"
CIS = "CIS"
NIST = "NIST 800-53"
PCI = "PCI DSS"


class Lifecycle(StrEnum):
    """Whether Security Hub runs the control today."""

    ACTIVE = "active"
    RETIRED = "retired"
    # Security Hub skips control numbers ("placeholders for future controls").
    UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class StandardControl:
    """One Security Hub S3 control as AWS lists it."""

    id: str
    title: str
    severity: Severity | None
    standards: tuple[str, ...] = ()
    lifecycle: Lifecycle = Lifecycle.ACTIVE
    # Why no BucketWarden control covers it: shown while no control declares this id.
    gap: str | None = None
    # What a reader must know of how BucketWarden handles it, covered or not.
    note: str | None = None

    @property
    def in_fsbp(self) -> bool:
        return FOUNDATIONAL in self.standards


_NOT_YET = "no BucketWarden control checks it yet"
_DATA_EVENTS = (
    "a trail's S3 data events are billed per event and chosen per organization: reported, "
    "never turned on"
)

S3_CONTROLS: tuple[StandardControl, ...] = (
    StandardControl(
        "S3.1",
        "S3 general purpose buckets should have block public access settings enabled",
        "MEDIUM",
        (FOUNDATIONAL, CIS, NIST, PCI),
    ),
    StandardControl(
        "S3.2",
        "S3 general purpose buckets should block public read access",
        "CRITICAL",
        (FOUNDATIONAL, NIST, PCI),
    ),
    StandardControl(
        "S3.3",
        "S3 general purpose buckets should block public write access",
        "CRITICAL",
        (FOUNDATIONAL, NIST, PCI),
    ),
    StandardControl(
        "S3.4",
        "S3 buckets should have server-side encryption enabled",
        "MEDIUM",
        lifecycle=Lifecycle.RETIRED,
        gap="retired by AWS: S3 encrypts every new object (SSE-S3) since January 2023; "
        "default-encryption (S3.17) judges the configured encryption",
    ),
    StandardControl(
        "S3.5",
        "S3 general purpose buckets should require requests to use SSL",
        "MEDIUM",
        (FOUNDATIONAL, CIS, NIST, PCI),
    ),
    StandardControl(
        "S3.6",
        "S3 general purpose bucket policies should restrict access to other AWS accounts",
        "HIGH",
        (FOUNDATIONAL, NIST),
    ),
    StandardControl(
        "S3.7",
        "S3 general purpose buckets should use cross-Region replication",
        "LOW",
        (NIST, PCI),
        gap="not a security baseline BucketWarden enforces: replication is a resilience and "
        "cost choice per bucket (a second bucket, another region), not a setting to put back",
    ),
    StandardControl(
        "S3.8",
        "S3 general purpose buckets should block public access",
        "HIGH",
        (FOUNDATIONAL, CIS, NIST, PCI),
    ),
    StandardControl(
        "S3.9",
        "S3 general purpose buckets should have server access logging enabled",
        "MEDIUM",
        (FOUNDATIONAL, NIST, PCI),
    ),
    StandardControl(
        "S3.10",
        "S3 general purpose buckets with versioning enabled should have Lifecycle configurations",
        "MEDIUM",
        (NIST,),
    ),
    StandardControl(
        "S3.11",
        "S3 general purpose buckets should have event notifications enabled",
        "MEDIUM",
        (NIST, PCI),
    ),
    StandardControl(
        "S3.12",
        "ACLs should not be used to manage user access to S3 general purpose buckets",
        "MEDIUM",
        (FOUNDATIONAL, NIST),
    ),
    StandardControl(
        "S3.13",
        "S3 general purpose buckets should have Lifecycle configurations",
        "LOW",
        (FOUNDATIONAL, NIST),
    ),
    StandardControl(
        "S3.14",
        "S3 general purpose buckets should have versioning enabled",
        "LOW",
        (NIST, PCI),
    ),
    StandardControl(
        "S3.15",
        "S3 general purpose buckets should have Object Lock enabled",
        "MEDIUM",
        (NIST, PCI),
        gap="Object Lock locks objects against deletion: a choice per bucket, not a setting "
        "to put back",
        note="object-lock-retention keeps the default retention of buckets that have Object "
        "Lock; it does not turn Object Lock on",
    ),
    StandardControl("S3.16", "no control has this id", None, lifecycle=Lifecycle.UNASSIGNED),
    StandardControl(
        "S3.17",
        "S3 general purpose buckets should be encrypted at rest with AWS KMS keys",
        "MEDIUM",
        (NIST, PCI),
    ),
    StandardControl("S3.18", "no control has this id", None, lifecycle=Lifecycle.UNASSIGNED),
    StandardControl(
        "S3.19",
        "S3 access points should have block public access settings enabled",
        "CRITICAL",
        (FOUNDATIONAL, NIST),
        gap="an access point's own Block Public Access is fixed at its creation; access-point "
        "names it in its findings, but no control reports it on its own yet",
    ),
    StandardControl(
        "S3.20",
        "S3 general purpose buckets should have MFA delete enabled",
        "LOW",
        (CIS, NIST),
        note="only the root user, with its MFA device, can enable MFA delete: reported, never "
        "attempted",
    ),
    StandardControl("S3.21", "no control has this id", None, lifecycle=Lifecycle.UNASSIGNED),
    StandardControl(
        "S3.22",
        "S3 general purpose buckets should log object-level write events",
        "MEDIUM",
        (CIS, PCI),
        note=_DATA_EVENTS,
    ),
    StandardControl(
        "S3.23",
        "S3 general purpose buckets should log object-level read events",
        "MEDIUM",
        (CIS, PCI),
        note=_DATA_EVENTS,
    ),
    StandardControl(
        "S3.24",
        "S3 Multi-Region Access Points should have block public access settings enabled",
        "HIGH",
        (FOUNDATIONAL, NIST),
    ),
    StandardControl(
        "S3.25",
        "S3 directory buckets should have lifecycle configurations",
        "LOW",
        (FOUNDATIONAL, NIST),
        gap="directory buckets (S3 Express One Zone) hold short-lived data by design; their "
        "lifecycle is an application's choice, not a security setting to put back",
    ),
)

STANDARDS: dict[str, tuple[StandardControl, ...]] = {FSBP: S3_CONTROLS}
BY_ID: dict[str, StandardControl] = {row.id: row for row in S3_CONTROLS}

FIXED = "fixed"
DETECTED_ONLY = "detected only"


@dataclass(frozen=True)
class Coverer:
    """A BucketWarden control that checks a standard's control, and how."""

    control: str
    how: str  # FIXED or DETECTED_ONLY (with the mode that keeps it from fixing)


@dataclass(frozen=True)
class Coverage:
    """One row of the map: the standard's control and the BucketWarden controls that check it."""

    row: StandardControl
    by: tuple[Coverer, ...]

    @property
    def why_not(self) -> str | None:
        """Why nothing covers the row (None when a control does)."""
        if self.by:
            return None
        if self.row.lifecycle is Lifecycle.UNASSIGNED:
            return "Security Hub has no control of this number"
        return self.row.gap or _NOT_YET

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.row.id,
            "title": self.row.title,
            "severity": self.row.severity,
            "lifecycle": self.row.lifecycle.value,
            "standards": list(self.row.standards),
            "covered_by": [{"control": c.control, "how": c.how} for c in self.by],
            "why_not": self.why_not,
            "note": self.row.note,
        }


def how(control: Control[Any], settings: Settings | None = None) -> str:
    """Fixed, or detected only: by nature (not fixable) or by its mode (default or set); not
    checked when its mode is off."""
    mode = control.default_mode
    if settings is not None:
        mode = settings.mode(control.id, control.default_mode)
    if mode is Mode.OFF:
        return f"not checked (mode {mode.value})"
    if not control.fixable:
        return DETECTED_ONLY
    return FIXED if mode is Mode.REMEDIATE else f"{DETECTED_ONLY} (mode {mode.value})"


def unknown_ids(controls: Iterable[Control[Any]]) -> dict[str, list[str]]:
    """FSBP ids that controls declare and the table does not list, by control id."""
    return {c.id: unknown for c in controls if (unknown := [i for i in c.fsbp if i not in BY_ID])}


def coverage(
    controls: Iterable[Control[Any]], settings: Settings | None = None, standard: str = FSBP
) -> list[Coverage]:
    """Every row of `standard`, with the controls whose `fsbp` names it (in catalogue order)."""
    if standard not in STANDARDS:
        raise KeyError(f"unknown standard {standard!r}; known: {', '.join(STANDARDS)}")
    controls = tuple(controls)
    return [
        Coverage(row, tuple(Coverer(c.id, how(c, settings)) for c in controls if row.id in c.fsbp))
        for row in STANDARDS[standard]
    ]
