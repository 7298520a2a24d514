"""What every control is: one configuration surface, read, judged and (if wrong) put right.

A control is pure apart from `read` and `apply`: `evaluate` computes the complete desired state of
its surface from a fresh read, so repeated, reordered or concurrent events converge.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from bucketwarden.settings import Settings

# The surface's configuration as S3 returns it (ResponseMetadata removed), JSON-serialisable.
State = dict[str, Any] | None


@dataclass(frozen=True)
class Evaluation:
    compliant: bool
    reason: str
    desired: State = None
    # False when the fix cannot be made by the service (it is reported instead).
    fixable: bool = True


class Control(ABC):
    id: str
    family: str
    title: str
    surface: str
    trigger_events: tuple[str, ...]
    # IAM actions the control's function needs; the template test checks the roles against these.
    read_actions: tuple[str, ...]
    write_actions: tuple[str, ...]

    @abstractmethod
    def read(self, s3: Any, bucket: str) -> State:
        """Read the surface's current configuration (one S3 call)."""

    @abstractmethod
    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        """Judge `state` and compute the complete desired state if it is wrong."""

    @abstractmethod
    def apply(self, s3: Any, bucket: str, desired: State) -> None:
        """Write `desired` to the surface (one S3 call)."""

    def describe(self, state: State) -> str:
        """A one-line summary of a state for people (tables, notifications)."""
        return "none" if state is None else json.dumps(state, sort_keys=True)


def without_metadata(response: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in response.items() if key != "ResponseMetadata"}
