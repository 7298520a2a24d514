"""What a control that only reports is: it reads and judges, and never writes.

Its findings are what BucketWarden must not decide for people (how long data is kept, where it
is announced or copied): every verdict that is wrong is `fixable=False`, so the engine reports
it in any mode, and the function's role holds no write action for it.
"""

from __future__ import annotations

from bucketwarden.controls.base import Api, CannotFix, Control, State
from bucketwarden.settings import Mode


class DetectOnly(Control[Api]):
    write_actions: tuple[str, ...] = ()
    default_mode = Mode.NOTIFY

    def apply(self, s3: Api, bucket: str, desired: State) -> None:
        # Never reached: every drift is unfixable, so the engine plans no write.
        raise CannotFix(f"{self.id} only reports; it changes nothing")
