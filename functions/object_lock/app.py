"""Lambda function of the object-lock family (control: object-lock-retention)."""

from bucketwarden.handler import lambda_handler_for

lambda_handler = lambda_handler_for("object-lock")
