"""Settings from the environment: defaults, and a clear error naming the variable otherwise."""

from __future__ import annotations

import pytest

from bucketwarden.settings import ConfigError, Settings


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env((), {})
    assert settings.tls_minimum == "1.2"
    assert settings.log_target_bucket is None
    assert (settings.object_lock_mode, settings.object_lock_days) == (None, 0)
    assert settings.baseline_delay_seconds == 0
    assert (settings.flap_threshold, settings.flap_window_minutes) == (3, 60)
    assert settings.region is None  # outside Lambda
    assert settings.account_id is None


def test_values_are_read_and_normalised() -> None:
    env = {
        "TLS_MINIMUM": "1.3",
        "LOG_TARGET_BUCKET": " central-logs ",
        "LOG_TARGET_PREFIX": "logs/",
        "OBJECT_LOCK_MODE": "compliance",
        "OBJECT_LOCK_DAYS": "365",
        "BASELINE_DELAY_SECONDS": "30",
        "FLAP_THRESHOLD": "5",
        "FLAP_WINDOW_MINUTES": " 120 ",
        "AWS_REGION": "eu-central-1",
        "ACCOUNT_ID": " 123456789012 ",
    }
    settings = Settings.from_env((), env)
    assert settings.tls_minimum == "1.3"
    assert (settings.log_target_bucket, settings.log_target_prefix) == ("central-logs", "logs/")
    assert (settings.object_lock_mode, settings.object_lock_days) == ("COMPLIANCE", 365)
    assert settings.baseline_delay_seconds == 30
    assert (settings.flap_threshold, settings.flap_window_minutes) == (5, 120)
    assert settings.region == "eu-central-1"
    assert settings.account_id == "123456789012"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TLS_MINIMUM": "1.1"}, "TLS_MINIMUM='1.1'"),
        ({"OBJECT_LOCK_MODE": "STRICT"}, "OBJECT_LOCK_MODE='STRICT'"),
        ({"OBJECT_LOCK_MODE": "GOVERNANCE"}, "needs OBJECT_LOCK_DAYS of at least 1"),
        ({"OBJECT_LOCK_DAYS": "ten"}, "OBJECT_LOCK_DAYS='ten': expected a whole number"),
        ({"OBJECT_LOCK_DAYS": "-1"}, "OBJECT_LOCK_DAYS='-1'"),
        ({"BASELINE_DELAY_SECONDS": "301"}, "from 0 to 300"),
        ({"MODE_VERSIONING": "fix"}, "MODE_VERSIONING='fix'"),
        ({"FLAP_THRESHOLD": "three"}, "FLAP_THRESHOLD='three'"),
        ({"FLAP_THRESHOLD": "101"}, "from 0 to 100"),
        ({"FLAP_WINDOW_MINUTES": "0"}, "FLAP_WINDOW_MINUTES='0': expected a whole number from 1"),
        ({"FLAP_WINDOW_MINUTES": "10081"}, "from 1 to 10080"),
        ({"ACCOUNT_ID": "12345"}, "ACCOUNT_ID='12345': expected a 12-digit"),
    ],
)
def test_an_invalid_value_is_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Settings.from_env(("versioning",), env)
