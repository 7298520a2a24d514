"""What the demo prints besides its table: latencies told honestly, its baseline said."""

from __future__ import annotations

from typing import Any

from bucketwarden_tools.demo import _latency_summary, baseline_note


def fixed(control: str, latency_ms: int) -> dict[str, Any]:
    return {"kind": "outcome", "status": "remediated", "control": control, "latency_ms": latency_ms}


def test_fewer_than_three_fixes_are_listed_not_summarised_by_a_median() -> None:
    items = [fixed("versioning", 1705), fixed("versioning", 94)]

    assert _latency_summary(items) == "drift → fix: versioning 1705, 94 ms"


def test_three_fixes_or_more_show_their_median_count_and_spread() -> None:
    items = [fixed("public-acl", ms) for ms in (120, 95, 300)]

    assert _latency_summary(items) == "drift → fix: public-acl median 120 ms (n=3, 95-300 ms)"


def test_nothing_remediated_is_said() -> None:
    skipped = {"kind": "outcome", "status": "compliant", "control": "versioning"}

    assert _latency_summary([skipped]) == "drift → fix: nothing was remediated"


def test_the_demo_says_it_switches_the_encryption_baseline_to_sse_kms() -> None:
    note = baseline_note("arn:aws:kms:us-east-1:123456789012:key/k")

    assert "ENCRYPTION_BASELINE=SSE-KMS" in note
    assert "APPROVED_KMS_KEYS=arn:aws:kms:us-east-1:123456789012:key/k" in note
    assert "default baseline is SSE-S3" in note
