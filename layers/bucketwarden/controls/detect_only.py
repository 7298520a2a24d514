"""What a control that only reports is: it reads and judges, and never writes.

Its findings are what BucketWarden must not decide for people (how long data is kept, where it
is announced or copied): every verdict that is wrong is `fixable=False`, so the engine reports
it in any mode, and the function's role holds no write action for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.controls.base import Api, CannotFix, Control, State, without_metadata
from bucketwarden.settings import Mode


def configuration_or_none(read: Callable[[], Mapping[str, Any]], missing: str) -> State:
    """The configuration `read` answers, or None when S3 says there is none (error `missing`)."""
    try:
        return without_metadata(read())
    except ClientError as error:
        if error_code(error) == missing:
            return None
        raise


class DetectOnly(Control[Api]):
    write_actions: tuple[str, ...] = ()
    fixable = False
    default_mode = Mode.NOTIFY

    def apply(self, s3: Api, bucket: str, desired: State) -> None:
        # Never reached: every drift is unfixable, so the engine plans no write.
        raise CannotFix(f"{self.id} only reports; it changes nothing")
