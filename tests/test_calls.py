"""The hooks the tooling registers for every client its process makes: the API call counter
(bucketwarden_tools.calls) and S3 Control's host fix for a local endpoint (.clients)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore import handlers
from botocore.awsrequest import AWSRequest

from bucketwarden.aws import client, new_client, reset_clients
from bucketwarden_tools.calls import API_CALLS, ApiCallCounter, count_api_calls, uncounted
from bucketwarden_tools.clients import (
    reach_local_endpoints,
    register_for_new_clients,
    strip_account_host_prefix,
)
from tests.helpers import ACCOUNT, REGION

THREADS = 8
CALLS_EACH = 5


@pytest.mark.usefixtures("aws")
def test_the_engines_clients_made_after_registration_are_counted() -> None:
    reset_clients()  # the engine's clients are made again, after the counter's registration
    before = API_CALLS.snapshot()

    client("s3", REGION).list_buckets()
    client("s3", REGION).list_buckets()
    client("sns").list_topics()

    assert API_CALLS.since(before) == {"s3.ListBuckets": 2, "sns.ListTopics": 1}


@pytest.mark.usefixtures("aws")
def test_a_client_made_before_registration_is_not_counted() -> None:
    counter = ApiCallCounter()
    earlier = aws_client("s3")
    register_for_new_clients("before-call", counter)
    try:
        later = aws_client("s3")
        earlier.list_buckets()
        later.list_buckets()
        assert counter.snapshot() == {"s3.ListBuckets": 1}
    finally:
        handlers.BUILTIN_HANDLERS.remove(("before-call", counter))


@pytest.mark.usefixtures("aws")
def test_an_uncounted_client_is_not_counted() -> None:
    before = API_CALLS.snapshot()
    uncounted(aws_client("s3")).list_buckets()
    assert API_CALLS.since(before) == {}


@pytest.mark.usefixtures("aws")
def test_registering_twice_counts_each_call_once() -> None:
    count_api_calls()
    count_api_calls()
    before = API_CALLS.snapshot()
    aws_client("sts").get_caller_identity()
    assert API_CALLS.since(before) == {"sts.GetCallerIdentity": 1}
    assert handlers.BUILTIN_HANDLERS.count(("before-call", API_CALLS)) == 1


@pytest.mark.usefixtures("aws")
def test_calls_from_several_threads_are_all_counted() -> None:
    shared = aws_client("s3")  # clients are thread-safe once made
    before = API_CALLS.snapshot()

    def call() -> None:
        for _ in range(CALLS_EACH):
            shared.list_buckets()

    threads = [threading.Thread(target=call) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert API_CALLS.since(before) == {"s3.ListBuckets": THREADS * CALLS_EACH}


@pytest.mark.usefixtures("aws")
def test_clearing_forgets_the_counts() -> None:
    counter = ApiCallCounter()
    register_for_new_clients("before-call", counter)
    try:
        aws_client("s3").list_buckets()
        counter.clear()
        assert counter.snapshot() == {}
    finally:
        handlers.BUILTIN_HANDLERS.remove(("before-call", counter))


def test_s3_control_reaches_a_moto_server_on_an_address(moto_server: str) -> None:
    reach_local_endpoints()
    s3control = new_client("s3control", endpoint_url=moto_server, region_name=REGION)
    settings = dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    s3control.put_public_access_block(AccountId=ACCOUNT, PublicAccessBlockConfiguration=settings)
    answer = s3control.get_public_access_block(AccountId=ACCOUNT)
    assert answer["PublicAccessBlockConfiguration"] == settings


def test_the_host_prefix_is_stripped_only_before_an_address_or_localhost() -> None:
    assert _signed_url("http://123456789012.127.0.0.1:5000/v20180820/configuration") == (
        "http://127.0.0.1:5000/v20180820/configuration"
    )
    assert _signed_url("http://123456789012.localhost/v20180820") == "http://localhost/v20180820"
    aws_host = "https://123456789012.s3-control.us-east-1.amazonaws.com/v20180820"
    assert _signed_url(aws_host) == aws_host
    assert _signed_url("http://s3.127.0.0.1:5000/") == "http://s3.127.0.0.1:5000/"


def _signed_url(url: str) -> str:
    request = AWSRequest(method="GET", url=url)
    strip_account_host_prefix(request)
    return str(request.url)


def aws_client(service: str) -> Any:
    return new_client(service, region_name=REGION)
