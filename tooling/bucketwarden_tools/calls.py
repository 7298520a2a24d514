"""Counting the API calls the engine makes, for the bench and the tests.

`count_api_calls()` registers `API_CALLS` for every botocore client made afterwards (see
`clients.register_for_new_clients`); the engine's cached clients are made after it once the
caller resets them (`bucketwarden.aws.reset_clients`). A tool's own clients, whose calls are not
the engine's, are taken out with `uncounted`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

from bucketwarden_tools.clients import register_for_new_clients


class ApiCallCounter:
    """A botocore `before-call` handler that counts calls by "service.Operation".

    Safe across threads: the sweep calls from several at once.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._counts[f"{model.service_model.service_name}.{model.name}"] += 1

    def snapshot(self) -> Counter[str]:
        """The counts so far (a copy: later calls do not change it)."""
        with self._lock:
            return Counter(self._counts)

    def since(self, before: Mapping[str, int]) -> dict[str, int]:
        """The calls made since `before` (a `snapshot()`), by name; names not called left out."""
        made = {name: count - before.get(name, 0) for name, count in self.snapshot().items()}
        return {name: count for name, count in made.items() if count}

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


# The process's one counter: every tool that counts reads the same calls.
API_CALLS = ApiCallCounter()


def count_api_calls() -> ApiCallCounter:
    """Count the calls of every client made from now on in `API_CALLS`, and return it."""
    register_for_new_clients("before-call", API_CALLS)
    return API_CALLS


def uncounted(client: Any) -> Any:
    """`client`, its calls no longer counted (a tool's own client, not the engine's)."""
    client.meta.events.unregister("before-call", API_CALLS)
    return client
