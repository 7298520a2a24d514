"""Claims in the idempotency table (`bucketwarden.claims`): who may take, retake and release one."""

from __future__ import annotations

import time

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from bucketwarden import aws
from bucketwarden.claims import ClaimStore
from tests.helpers import create_table, own_client

TABLE = "bucketwarden-idempotency"
KEY = "public-access#event-1"


@pytest.fixture(autouse=True)
def table(aws: None) -> None:
    create_table(TABLE, "id")


def store(owner: str, keep_results: bool = False) -> ClaimStore:
    return ClaimStore(TABLE, aws.client("dynamodb"), owner, keep_results=keep_results)


def in_progress(milliseconds: int) -> DataRecord:
    """A claim of KEY whose in-progress time ends `milliseconds` from now (negative: over)."""
    now = time.time()
    return DataRecord(
        idempotency_key=KEY,
        status="INPROGRESS",
        expiry_timestamp=int(now) + 3600,
        in_progress_expiry_timestamp=int(now * 1000) + milliseconds,
    )


def completed() -> DataRecord:
    """KEY's invocation finished, with its result."""
    return DataRecord(
        idempotency_key=KEY,
        status="COMPLETED",
        expiry_timestamp=int(time.time()) + 3600,
        response_data='{"status": "finished"}',
    )


def held() -> dict[str, str]:
    item = own_client("dynamodb").get_item(TableName=TABLE, Key={"id": {"S": KEY}})["Item"]
    return {name: next(iter(value.values())) for name, value in item.items()}


def test_a_live_claim_of_another_invocation_is_refused_and_our_own_is_retaken() -> None:
    first = store("request-1")
    first._put_record(in_progress(60_000))
    assert not first.tried_before

    with pytest.raises(IdempotencyItemAlreadyExistsError) as refused:
        store("request-2")._put_record(in_progress(60_000))
    assert refused.value.old_data_record is not None
    assert refused.value.old_data_record.status == "INPROGRESS"

    retry = store("request-1")  # Lambda's retry, or botocore repeating the claim
    retry._put_record(in_progress(60_000))
    assert retry.tried_before
    assert held()["owner"] == "request-1"


def test_a_released_claim_is_taken_by_the_next_delivery_which_knows_it_was_tried() -> None:
    first = store("request-1")
    first._put_record(claim := in_progress(60_000))
    first._delete_record(claim)  # the attempt failed: released, not deleted
    assert held()["in_progress_expiration"] == "0"

    second = store("request-2")
    second._put_record(in_progress(60_000))
    assert second.tried_before
    assert held()["owner"] == "request-2"


def test_a_late_release_leaves_the_claim_another_delivery_took_after_ours_expired() -> None:
    store("request-1")._put_record(late := in_progress(-1))  # our time ran out
    store("request-2")._put_record(in_progress(60_000))  # so another delivery took the event

    store("request-1")._delete_record(late)

    now_held = held()
    assert now_held["owner"] == "request-2"
    assert int(now_held["in_progress_expiration"]) > time.time() * 1000


def test_a_finished_invocation_is_not_retaken_by_its_owner_when_results_are_kept() -> None:
    keeping = store("request-1", keep_results=True)
    keeping._put_record(in_progress(60_000))
    keeping._update_record(completed())
    assert held()["status"] == "COMPLETED"

    with pytest.raises(IdempotencyItemAlreadyExistsError):
        store("request-1")._put_record(in_progress(60_000))


def test_without_kept_results_the_completion_writes_nothing() -> None:
    claim_only = store("request-1")
    claim_only._put_record(in_progress(60_000))
    claim_only._update_record(completed())
    assert held()["status"] == "INPROGRESS"
