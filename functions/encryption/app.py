"""Lambda handler of the encryption family: parse, run the engine, return the outcomes."""

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketwarden.handler import process

FAMILY = "encryption"

logger = Logger(service="bucketwarden")
tracer = Tracer(service="bucketwarden")


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> list[dict[str, Any]]:
    return process(event, FAMILY, context)
