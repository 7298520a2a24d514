"""X-Ray tracing of a Lambda entry point, when the stack asks for it (TraceAwsCalls)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Tracer

# What a handler answers: a family's outcomes, the sweep's summary.
Answer = TypeVar("Answer")


def traced(
    handler: Callable[[dict[str, Any], Any], Answer],
) -> Callable[[dict[str, Any], Any], Answer]:
    # Powertools' Tracer loads the X-Ray SDK (half a second of cold start) even when
    # POWERTOOLS_TRACE_DISABLED is set, so it is only created when tracing is wanted.
    if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() in {"1", "true"}:
        return handler
    tracer = Tracer(service="bucketwarden")
    return tracer.capture_lambda_handler(handler, capture_response=False)
